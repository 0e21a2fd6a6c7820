# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark libsys.onprem.port_check against an ansible.builtin.wait_for loop.

200 endpoints on loopback: open (listeners started here), refused (closed ports) and
unanswered (SYNs dropped by an nftables rule on lo, in a table this script creates and
deletes), each with a 2 s timeout. Traffic goes to 127.0.0.1 only.

    PYTHONPATH=.build/collections ANSIBLE_COLLECTIONS_PATH=.build/collections \\
        python benchmarks/port_check_bench.py

Measured:
  * port_check's runner (module_utils.probes.run_checks) in a child process: wall time and
    peak RSS (getrusage ru_maxrss of that child);
  * the module through `ansible localhost -m libsys.onprem.port_check` (includes Ansible's start-up);
  * a `wait_for` loop in ansible-playbook over a 20-endpoint sample with the same mix, scaled
    linearly to 200 (start-up overhead, measured with an empty play, counted once).
Needs root and nft for the unanswered ports; without them those endpoints are replaced by refused
ones (said so), still 200 in all.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"
TIMEOUT = 2.0
TOTAL = 200
SAMPLE = 20
MIX = {"open": 0.5, "refused": 0.3, "unanswered": 0.2}
WORKERS = 64
TARGETS = {"wall_s": 3.0, "ratio": 100.0, "rss_mb": 100.0}
HERE = Path(__file__).resolve().parent
DEFAULT_COLLECTIONS = HERE.parent / ".build" / "collections"


def collections_path() -> str:
    for var in ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS"):
        if os.environ.get(var):
            return os.environ[var].split(os.pathsep)[0]
    return str(DEFAULT_COLLECTIONS)


def child_env() -> dict[str, str]:
    path = collections_path()
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=path,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOST_KEY_CHECKING="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    env["PYTHONPATH"] = os.pathsep.join(p for p in (path, os.environ.get("PYTHONPATH")) if p)
    return env


class Listeners:
    """Open ports: accept and close, in one thread."""

    def __init__(self, count: int) -> None:
        self.socks = []
        for _ in range(count):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, 0))
            sock.listen(256)
            sock.setblocking(False)
            self.socks.append(sock)
        self.ports = [s.getsockname()[1] for s in self.socks]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        with selectors.DefaultSelector() as sel:
            for sock in self.socks:
                sel.register(sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select(0.1):
                    try:
                        conn, _ = key.fileobj.accept()
                        conn.close()
                    except OSError:
                        pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for sock in self.socks:
            sock.close()


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((HOST, 0))
        socks.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in socks:
        sock.close()
    return ports


class DropTable:
    def __init__(self, ports: list[int]) -> None:
        self.table = "libsys_onprem_bench_%d" % os.getpid()
        self.ports = ports
        self.active = False

    def create(self) -> str | None:
        if os.geteuid() != 0:
            return "not root"
        if shutil.which("nft") is None:
            return "nft not installed"
        script = (
            "table inet %s {\n chain input {\n  type filter hook input priority -10; policy accept;\n"
            '  iif "lo" tcp dport { %s } drop\n }\n}\n' % (self.table, ", ".join(map(str, self.ports)))
        )
        proc = subprocess.run(["nft", "-f", "-"], input=script.encode(), capture_output=True, check=False)
        if proc.returncode:
            return "nft failed: %s" % proc.stderr.decode(errors="replace").strip()
        self.active = True
        return None

    def delete(self) -> None:
        if self.active:
            subprocess.run(["nft", "delete", "table", "inet", self.table], capture_output=True, check=False)
            self.active = False


def build_endpoints(total: int, open_ports: list[int], refused: list[int], dropped: list[int]) -> list[dict]:
    counts = {kind: round(total * share) for kind, share in MIX.items()}
    if not dropped:
        counts["refused"] += counts.pop("unanswered")
    counts["open"] += total - sum(counts.values())
    pools = {"open": open_ports, "refused": refused, "unanswered": dropped}
    endpoints = []
    # Interleave kinds so a sample of the first N keeps the mix.
    order = []
    for kind, count in counts.items():
        order += [(i / count, kind) for i in range(count)]
    for n, (_, kind) in enumerate(sorted(order)):
        pool = pools[kind]
        endpoints.append(
            {
                "name": "%s-%03d" % (kind, n),
                "host": HOST,
                "port": pool[n % len(pool)],
                "probe": "tcp",
                "timeout": TIMEOUT,
                "required": False,
            }
        )
    return endpoints


def run_child(path: str) -> None:
    """Child mode: time the runner and report wall time, statuses and our own peak RSS."""
    # Imported here so the parent, which only starts processes, does not need the collection on sys.path.
    from ansible_collections.libsys.onprem.plugins.module_utils.probes import (  # noqa: PLC0415
        run_checks,
        summarize,
    )

    with open(path) as handle:
        job = json.load(handle)
    start = time.perf_counter()
    results = run_checks(job["endpoints"], workers=job["workers"], deadline=job["deadline"])
    wall = time.perf_counter() - start
    print(
        json.dumps(
            {
                "wall_s": wall,
                "summary": summarize(results),
                "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


def time_runner(endpoints: list[dict], tmp: str) -> dict:
    path = os.path.join(tmp, "job.json")
    with open(path, "w") as handle:
        json.dump({"endpoints": endpoints, "workers": WORKERS, "deadline": 30}, handle)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", path],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ansible_bin(name: str) -> str:
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.access(candidate, os.X_OK) else (shutil.which(name) or name)


def time_module(endpoints: list[dict]) -> tuple[float, str]:
    args = json.dumps({"endpoints": endpoints, "workers": WORKERS, "deadline": 30})
    cmd = [
        ansible_bin("ansible"),
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        "ansible_python_interpreter=%s" % sys.executable,
        "-m",
        "libsys.onprem.port_check",
        "-a",
        args,
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=180, check=False)
    wall = time.perf_counter() - start
    return wall, "rc=%d" % proc.returncode if "SUCCESS" in proc.stdout else "FAILED: %s" % (
        proc.stdout[-500:] + proc.stderr[-500:]
    )


def run_playbook(path: str) -> float:
    cmd = [ansible_bin("ansible-playbook"), "-i", "localhost,", "-c", "local", path]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=600, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError("ansible-playbook failed:\n%s\n%s" % (proc.stdout[-2000:], proc.stderr[-2000:]))
    return wall


def time_wait_for(sample: list[dict], tmp: str) -> tuple[float, float]:
    header = (
        "- name: Baseline\n  hosts: localhost\n  gather_facts: false\n"
        "  vars:\n    ansible_python_interpreter: %s\n" % json.dumps(sys.executable)
    )
    empty = os.path.join(tmp, "empty.yml")
    with open(empty, "w") as handle:
        handle.write(header + "  tasks: []\n")
    loop = os.path.join(tmp, "wait_for.yml")
    with open(loop, "w") as handle:
        handle.write(
            header
            + "    sample: %s\n" % json.dumps([{"host": e["host"], "port": e["port"]} for e in sample])
            + "  tasks:\n    - name: Wait for each endpoint\n      ansible.builtin.wait_for:\n"
            '        host: "{{ item.host }}"\n        port: "{{ item.port }}"\n'
            '        timeout: %d\n      loop: "{{ sample }}"\n      ignore_errors: true\n' % int(TIMEOUT)
        )
    overhead = run_playbook(empty)
    return run_playbook(loop), overhead


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--skip-module", action="store_true", help="do not run the module through `ansible`")
    opts = parser.parse_args()
    if opts.child:
        run_child(opts.child)
        return 0

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    listeners = Listeners(10)
    refused = free_ports(10)
    dropped = free_ports(10)
    drop = DropTable(dropped)
    try:
        reason = drop.create()
        if reason:
            print("NOTE: no unanswered endpoints (%s); they are replaced by refused ones." % reason)
            dropped = []
        endpoints = build_endpoints(TOTAL, listeners.ports, refused, dropped)
        sample = endpoints[:SAMPLE]
        kinds = {k: sum(1 for e in endpoints if e["name"].startswith(k)) for k in MIX}
        sample_kinds = {k: sum(1 for e in sample if e["name"].startswith(k)) for k in MIX}
        print(
            "Endpoints: %d on %s, mix %s, timeout %.0f s, workers %d" % (len(endpoints), HOST, kinds, TIMEOUT, WORKERS)
        )
        with tempfile.TemporaryDirectory(prefix="port-check-bench-") as tmp:
            runner = time_runner(endpoints, tmp)
            summary = runner["summary"]
            print(
                "port_check runner: %.2f s wall, statuses ok=%d refused=%d timeout=%d, peak RSS %.1f MB"
                % (runner["wall_s"], summary["ok"], summary["refused"], summary["timeout"], runner["maxrss_kb"] / 1024)
            )
            if not opts.skip_module:
                wall, outcome = time_module(endpoints)
                print(
                    "port_check module via `ansible localhost -m` (with Ansible start-up): %.2f s (%s)"
                    % (wall, outcome)
                )
            loop_wall, overhead = time_wait_for(sample, tmp)
            scaled = overhead + (loop_wall - overhead) * (TOTAL / SAMPLE)
            print(
                "wait_for loop, ansible-playbook, %d-endpoint sample %s: %.2f s (empty play %.2f s)"
                % (SAMPLE, sample_kinds, loop_wall, overhead)
            )
            print(
                "wait_for scaled linearly to %d endpoints (start-up counted once): %.1f s  [ESTIMATE]" % (TOTAL, scaled)
            )
        ratio = scaled / runner["wall_s"]
        rss_mb = runner["maxrss_kb"] / 1024
        print()
        print("Targets:")
        print(
            "  port_check wall time  %6.2f s   target <= %.0f s    %s"
            % (runner["wall_s"], TARGETS["wall_s"], "met" if runner["wall_s"] <= TARGETS["wall_s"] else "NOT met")
        )
        print(
            "  speed-up vs wait_for  %6.0fx    target >= %.0fx    %s"
            % (ratio, TARGETS["ratio"], "met" if ratio >= TARGETS["ratio"] else "NOT met")
        )
        print(
            "  peak RSS (runner)     %6.1f MB  target < %.0f MB   %s"
            % (rss_mb, TARGETS["rss_mb"], "met" if rss_mb < TARGETS["rss_mb"] else "NOT met")
        )
        if not dropped:
            print("  (no unanswered endpoints were included, so the times are optimistic)")
    finally:
        drop.delete()
        listeners.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
