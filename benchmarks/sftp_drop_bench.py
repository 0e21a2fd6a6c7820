# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark libsys.onprem.sftp_drop: SFTP throughput into a chrooted drop account versus an
unrestricted account on the same sshd and host.

Creates its own podman network and two containers (names bench-sftp_drop-*), applies the
role to the server container with ansible-playbook (podman connection), adds an ordinary
login account with a home directory to the same sshd, then from the client container
uploads and downloads a file (1 GiB by default) with OpenSSH sftp, alternating the two
accounts, and prints MiB/s per direction and the ratio chrooted / unrestricted (target
>= 0.95). Traffic goes only to the containers this script creates; everything it creates
is removed at the end.

    ANSIBLE_COLLECTIONS_PATH=.build/collections .venv/bin/python benchmarks/sftp_drop_bench.py \\
        [--size-mib 1024] [--rounds 3]
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

PREFIX = "bench-sftp_drop"
NETWORK = f"{PREFIX}-net"
SERVER = f"{PREFIX}-server"
CLIENT = f"{PREFIX}-client"
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
    run("podman", "network", "create", NETWORK)
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
    ]
    run(
        "podman",
        "run",
        "-d",
        "--name",
        SERVER,
        *common,
        "-v",
        f"{APT_CACHE}:/var/cache/apt/archives",
        SERVER_IMAGE,
        "/sbin/init",
    )
    run("podman", "run", "-d", "--name", CLIENT, *common, CLIENT_IMAGE, "/sbin/init")
    inspect = json.loads(run("podman", "inspect", SERVER))
    return next(iter(inspect[0]["NetworkSettings"]["Networks"].values()))["IPAddress"]


def converge(server_address: str, client_key: str, workdir: Path) -> None:
    networks = json.loads(run("podman", "inspect", CLIENT))[0]["NetworkSettings"]["Networks"]
    client_address = networks[NETWORK]["IPAddress"]
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
                        "onprem_vendor_ranges": [f"{client_address}/32"],
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


def transfer(user: str, address: str, direction: str) -> float:
    """Seconds for one put or get of the test file."""
    remote = "incoming/bench.bin"
    command = f"put /root/bench.bin {remote}" if direction == "upload" else f"get {remote} /root/bench.back"
    sftp = ["podman", "exec", "-i", CLIENT, "sftp", "-b", "-", "-i", "/root/.ssh/bench", *SSH_OPTS, f"{user}@{address}"]
    start = time.monotonic()
    result = subprocess.run(sftp, input=command + "\n", capture_output=True, text=True, check=False, timeout=1800)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        raise RuntimeError(f"sftp {direction} as {user} failed: {result.stderr}")
    if direction == "download":
        pexec(CLIENT, "rm -f /root/bench.back")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("podman"):
        print("sftp_drop_bench: needs root and podman", file=sys.stderr)
        return 2
    rounds = max(1, min(args.rounds, 10))
    results: dict[tuple[str, str], list[float]] = {}
    try:
        address = start_containers()
        pexec(CLIENT, "ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/bench <<< y >/dev/null 2>&1 || true")
        client_key = pexec(CLIENT, "cat /root/.ssh/bench.pub").strip()
        with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-") as tmp:
            converge(address, client_key, Path(tmp))
        pexec(CLIENT, f"head -c {args.size_mib}M /dev/urandom > /root/bench.bin")
        for _ in range(rounds):
            for user in ("bench-free", "bench-drop"):
                for direction in ("upload", "download"):
                    seconds = transfer(user, address, direction)
                    results.setdefault((user, direction), []).append(seconds)
                home = "/home/bench-free" if user == "bench-free" else "/srv/sftp-drop/bench-drop"
                pexec(SERVER, f"rm -f {home}/incoming/bench.bin")
        openssh = pexec(SERVER, "sshd -V 2>&1 | head -1").strip()
    finally:
        for container in (CLIENT, SERVER):
            subprocess.run(["podman", "rm", "-f", "-t", "2", container], capture_output=True, check=False)
        subprocess.run(["podman", "network", "rm", "-f", NETWORK], capture_output=True, check=False)
    print(f"sftp_drop benchmark: {args.size_mib} MiB file, {rounds} round(s), {openssh}, same sshd and host")
    ok = True
    for direction in ("upload", "download"):
        free = statistics.median(results[("bench-free", direction)])
        drop = statistics.median(results[("bench-drop", direction)])
        ratio = free / drop  # throughput ratio chrooted / unrestricted = time ratio inverted
        ok = ok and ratio >= TARGET_RATIO
        print(
            f"  {direction:8s} unrestricted {args.size_mib / free:8.1f} MiB/s"
            f"   chrooted {args.size_mib / drop:8.1f} MiB/s   ratio {ratio:5.3f} (target >= {TARGET_RATIO})"
        )
    print("  result: " + ("meets the target" if ok else "BELOW the target"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
