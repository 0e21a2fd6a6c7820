# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark libsys.onprem.sftp_drop: SFTP throughput into a chrooted drop account versus an
unrestricted account on the same sshd and host.

Creates its own podman network (198.51.100.240/28, the benchmarks' subnet) and two
containers (names bench-sftp_drop-*), applies the role to the server container with
ansible-playbook (podman connection), adds an ordinary login account with a home directory to
the same sshd, then from the client container uploads and downloads a file (1 GiB by
default) with OpenSSH sftp into both accounts. Each round measures upload then download for
both accounts, the account that goes first alternating from round to round; every transfer
starts after `sync` (no dirty pages of the previous transfer left to write back) and every
uploaded file is removed after its download. Prints, per direction, the median MiB/s of each
account, the median of the per-round ratios chrooted / unrestricted (target >= 0.95) and the
load average seen during the run. Traffic goes only to the containers this script creates;
everything it creates is removed at the end (unless --keep).

    ANSIBLE_COLLECTIONS_PATH=.build/collections .venv/bin/python benchmarks/sftp_drop_bench.py \\
        [--size-mib 1024] [--rounds 5] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from offline_containers import NETWORK_OPTIONS, container_options

PREFIX = "bench-sftp_drop"
NETWORK = f"{PREFIX}-net"
SUBNET = "198.51.100.240/28"
SERVER = f"{PREFIX}-server"
CLIENT = f"{PREFIX}-client"
SERVER_ADDRESS = "198.51.100.250"
CLIENT_ADDRESS = "198.51.100.251"
SERVER_IMAGE = "localhost/libsys-onprem/debian:12"
CLIENT_IMAGE = "localhost/libsys-onprem/peer:12"
APT_CACHE = "/var/cache/libsys-onprem/apt/sftp_drop-bench"
TARGET_RATIO = 0.95
HERE = Path(__file__).resolve().parent
SSH_OPTS = [
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
]


def run(*args: str, check: bool = True, capture: bool = True, timeout: int = 1800) -> str:
    result = subprocess.run(list(args), capture_output=capture, text=True, check=False, timeout=timeout)
    if check and result.returncode != 0:
        output = (result.stderr or "") + (result.stdout or "")
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {output}")
    return result.stdout if capture else ""


def pexec(container: str, command: str, timeout: int = 1800) -> str:
    return run("podman", "exec", container, "bash", "-c", command, timeout=timeout)


def start_containers() -> str:
    run("podman", "network", "create", *NETWORK_OPTIONS, "--subnet", SUBNET, NETWORK)
    os.makedirs(APT_CACHE, exist_ok=True)
    common = [
        "--systemd=always",
        "--network",
        NETWORK,
        "--cap-add",
        "NET_ADMIN",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        *container_options(),
    ]
    run(
        "podman",
        "run",
        "-d",
        "--name",
        SERVER,
        "--ip",
        SERVER_ADDRESS,
        *common,
        "-v",
        f"{APT_CACHE}:/var/cache/apt/archives",
        SERVER_IMAGE,
        "/sbin/init",
    )
    run("podman", "run", "-d", "--name", CLIENT, "--ip", CLIENT_ADDRESS, *common, CLIENT_IMAGE, "/sbin/init")
    return SERVER_ADDRESS


def converge(client_key: str, workdir: Path) -> None:
    inventory = workdir / "inventory.yml"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {
                        SERVER: {
                            "ansible_connection": "containers.podman.podman",
                            "ansible_python_interpreter": "/usr/bin/python3",
                        }
                    }
                }
            }
        )
    )
    playbook = workdir / "bench.yml"
    playbook.write_text(
        json.dumps(
            [
                {
                    "name": "Apply the sftp_drop role for the benchmark",
                    "hosts": SERVER,
                    "gather_facts": True,
                    "vars": {
                        "onprem_vendor_ranges": [f"{CLIENT_ADDRESS}/32"],
                        "onprem_campus_networks": [],
                        "sftp_drop_accounts": [
                            {
                                "name": "bench-drop",
                                "public_keys": [client_key],
                                "directories": [{"name": "incoming"}, {"name": "archive"}],
                            }
                        ],
                    },
                    "roles": [{"role": "libsys.onprem.sftp_drop"}],
                },
            ]
        )
    )
    env = dict(os.environ)
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", str(HERE.parent / ".build" / "collections"))
    result = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), str(playbook)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError("converge failed:\n" + result.stdout[-4000:] + result.stderr[-2000:])
    # The unrestricted account: an ordinary login user with a home and a shell, same sshd.
    pexec(
        SERVER,
        "id bench-free >/dev/null 2>&1 || useradd -m -s /bin/bash bench-free; "
        "install -d -m 0700 -o bench-free -g bench-free /home/bench-free/.ssh /home/bench-free/incoming; "
        f"echo '{client_key}' > /home/bench-free/.ssh/authorized_keys; "
        "chown bench-free: /home/bench-free/.ssh/authorized_keys; "
        "chmod 0600 /home/bench-free/.ssh/authorized_keys",
    )


def cpu_seconds(container: str) -> float:
    """CPU time used so far by every process of the container (cgroup v1 cpuacct or v2 cpu.stat)."""
    text = pexec(
        container,
        "cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null "
        "|| awk '$1 == \"usage_usec\" {print $2 * 1000}' /sys/fs/cgroup/cpu.stat",
    )
    return int(float(text.split()[0])) / 1e9


def transfer(user: str, address: str, direction: str, size_mib: int) -> tuple[float, float, float]:
    """Wall seconds, server CPU seconds and client CPU seconds of one put or get of the test
    file, started with no dirty pages left."""
    remote = "incoming/bench.bin"
    command = f"put /root/bench.bin {remote}" if direction == "upload" else f"get {remote} /root/bench.back"
    sftp = ["podman", "exec", "-i", CLIENT, "sftp", "-b", "-", "-i", "/root/.ssh/bench", *SSH_OPTS, f"{user}@{address}"]
    run("sync")
    server_cpu, client_cpu = cpu_seconds(SERVER), cpu_seconds(CLIENT)
    start = time.monotonic()
    result = subprocess.run(sftp, input=command + "\n", capture_output=True, text=True, check=False, timeout=1800)
    elapsed = time.monotonic() - start
    server_cpu, client_cpu = cpu_seconds(SERVER) - server_cpu, cpu_seconds(CLIENT) - client_cpu
    if result.returncode != 0:
        raise RuntimeError(f"sftp {direction} as {user} failed: {result.stderr}")
    if direction == "download":
        size = int(pexec(CLIENT, "stat -c %s /root/bench.back && rm -f /root/bench.back").strip())
        if size != size_mib * 1024 * 1024:
            raise RuntimeError(f"download as {user} returned {size} bytes")
    return elapsed, server_cpu, client_cpu


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


Samples = dict[tuple[str, str], list[tuple[float, float, float]]]


def measure(address: str, size_mib: int, rounds: int) -> tuple[Samples, list[float]]:
    """(wall, server CPU, client CPU) seconds per (account, direction) for each round, and the
    1-minute load averages seen."""
    samples: Samples = {}
    loads = [load_average()]
    homes = {"bench-free": "/home/bench-free", "bench-drop": "/srv/sftp-drop/bench-drop"}
    for number in range(rounds):
        order = ("bench-free", "bench-drop") if number % 2 == 0 else ("bench-drop", "bench-free")
        for user in order:
            for direction in ("upload", "download"):
                samples.setdefault((user, direction), []).append(transfer(user, address, direction, size_mib))
                loads.append(load_average())
            pexec(SERVER, f"rm -f {homes[user]}/incoming/bench.bin")
        line = "  ".join(
            f"{direction} {size_mib / samples[('bench-free', direction)][-1][0]:6.1f}/"
            f"{size_mib / samples[('bench-drop', direction)][-1][0]:6.1f} MiB/s"
            f" (server CPU {samples[('bench-free', direction)][-1][1]:5.2f}/"
            f"{samples[('bench-drop', direction)][-1][1]:5.2f} s)"
            for direction in ("upload", "download")
        )
        print(
            f"  round {number + 1} ({order[0]} first) unrestricted/chrooted: {line}  load {loads[-1]:.2f}", flush=True
        )
    return samples, loads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the containers and network for inspection")
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("podman"):
        print("sftp_drop_bench: needs root and podman", file=sys.stderr)
        return 2
    rounds = max(1, min(args.rounds, 15))
    try:
        address = start_containers()
        pexec(CLIENT, "ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/bench <<< y >/dev/null 2>&1 || true")
        client_key = pexec(CLIENT, "cat /root/.ssh/bench.pub").strip()
        with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-") as tmp:
            converge(client_key, Path(tmp))
        pexec(CLIENT, f"head -c {args.size_mib}M /dev/urandom > /root/bench.bin")
        openssh = pexec(SERVER, "sshd -V 2>&1 | head -1").strip()
        print(f"sftp_drop benchmark: {args.size_mib} MiB file, {rounds} round(s), {openssh}, same sshd and host")
        samples, loads = measure(address, args.size_mib, rounds)
    finally:
        if not args.keep:
            for container in (CLIENT, SERVER):
                subprocess.run(["podman", "rm", "-f", "-t", "2", container], capture_output=True, check=False)
            subprocess.run(["podman", "network", "rm", "-f", NETWORK], capture_output=True, check=False)
    ok = True
    for direction in ("upload", "download"):
        free = samples[("bench-free", direction)]
        drop = samples[("bench-drop", direction)]
        # Throughput ratio chrooted / unrestricted of each round = its time ratio inverted.
        ratios = [f[0] / d[0] for f, d in zip(free, drop)]
        ratio = statistics.median(ratios)
        ok = ok and ratio >= TARGET_RATIO
        print(
            f"  {direction:8s} unrestricted {args.size_mib / statistics.median(f[0] for f in free):8.1f} MiB/s"
            f"   chrooted {args.size_mib / statistics.median(d[0] for d in drop):8.1f} MiB/s"
            f"   ratio {ratio:5.3f} (median of rounds; min {min(ratios):5.3f}, max {max(ratios):5.3f};"
            f" target >= {TARGET_RATIO})"
        )
        # CPU time per transfer hardly depends on what else runs on the machine: it tells a real
        # cost of the chrooted path from noise in the wall-clock figures.
        for side, index in (("server", 1), ("client", 2)):
            cost_free = statistics.median(f[index] for f in free)
            cost_drop = statistics.median(d[index] for d in drop)
            print(
                f"  {'':8s} {side} CPU seconds per transfer: unrestricted {cost_free:6.2f}"
                f"   chrooted {cost_drop:6.2f}   chrooted / unrestricted {cost_drop / cost_free:5.3f}"
            )
    print(
        f"  load average (1 min) during the run: min {min(loads):.2f}, median {statistics.median(loads):.2f},"
        f" max {max(loads):.2f} on {os.cpu_count()} CPUs"
    )
    print("  result: " + ("meets the target" if ok else "BELOW the target"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
