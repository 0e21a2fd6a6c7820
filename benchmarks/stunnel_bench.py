#!/usr/bin/env python3
"""SIP2 through the stunnel tunnel pair versus straight to the ACS, measured in one run.

The on-prem side runs the configuration that the libsys.onprem.stunnel role itself renders
(roles/stunnel/templates/tunnel.conf.j2 with the role's defaults and vars, rendered by
ansible-playbook at the start of the run, not a copy), as the role's unit runs it: as the
stunnel4 user under systemd, logging to the journal. The cloud side is a stock stunnel server
that requires the institution's client certificate, in front of the fake ACS of
plugins/module_utils/sip2.py.

Everything runs on the loopback interface of one container (``bench-stunnel``, created from the
project's peer image with no network at all, removed at the end, also on failure), as the
issue's targets are stated: kiosk -> 127.0.0.1:6001 (role's client tunnel) -> TLS ->
cloud.example.org:6443 (= 127.0.0.1, cloud stunnel) -> 127.0.0.1:7001 (ACS); direct: kiosk ->
127.0.0.1:7001.

Figures, as medians over ROUNDS rounds (the machine is shared: each round measures direct and
tunnel back to back, so both see the same load):
- persistent session: 99/98 exchanges per second on one open connection, tunnel / direct
  (issue target: >= 0.8);
- new connection + one exchange (99/98): median milliseconds (issue target: <= 4 ms through
  the tunnel).

    .venv/bin/python benchmarks/stunnel_bench.py [--key-type ecdsa|rsa] [--rounds N]
        [-e '{"stunnel_...": ...}']      extra variables for rendering the role's template
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trustme

ROOT = Path(__file__).resolve().parent.parent
ROLE = ROOT / "roles" / "stunnel"
IMAGE = "localhost/libsys-onprem/peer:12"
CONTAINER = "bench-stunnel"
ACS_PORT, CLOUD_PORT, TUNNEL_PORT = 7001, 6443, 6001
SESSION_SECONDS = 3.0
NEW_CONNECTIONS = 200
# The paths the role's template refers to (roles/stunnel/vars/main.yml).
TLS_DIR = "/etc/stunnel/libsys/tls"

# The vendor's side: a stock stunnel server (only what the test cloud peer also sets).
CLOUD_CONF = f"""foreground = yes
pid =
syslog = no
[sip2]
accept = 127.0.0.1:{CLOUD_PORT}
connect = 127.0.0.1:{ACS_PORT}
cert = /bench/cloud.pem
CAfile = /bench/ca.pem
verifyChain = yes
requireCert = yes
"""

# The client tunnel of the role, rendered by the role's own template with its defaults.
RENDER = """---
- name: Render the libsys.onprem.stunnel client tunnel configuration for the benchmark
  hosts: localhost
  gather_facts: false
  vars_files:
    - {role}/defaults/main.yml
    - {role}/vars/main.yml
    - {role}/vars/Debian_12.yml
  tasks:
    - name: Render the role's tunnel template
      ansible.builtin.template:
        src: {role}/templates/tunnel.conf.j2
        dest: {dest}
        mode: "0644"
      vars:
        __stunnel_tunnel:
          name: sip2
          mode: client
          accept_address: 127.0.0.1
          accept_port: {tunnel_port}
          connect_host: cloud.example.org
          connect_port: {cloud_port}
"""

CLIENT = r"""
import json, socket, statistics, sys, time
sys.path.insert(0, "/bench")
import sip2
target = (sys.argv[1], int(sys.argv[2]))
session_seconds, new_connections = float(sys.argv[3]), int(sys.argv[4])
request = sip2.build_sc_status(sequence=1)
def exchange(sock):
    sock.sendall(request)
    reply = sip2.read_message(sock)
    assert reply.startswith(b"98"), reply
with socket.create_connection(target, timeout=10) as sock:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    exchange(sock)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < session_seconds and count < 1000000:
        exchange(sock)
        count += 1
    elapsed = time.perf_counter() - start
times = []
for _ in range(new_connections):
    start = time.perf_counter()
    with socket.create_connection(target, timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        exchange(sock)
    times.append((time.perf_counter() - start) * 1000)
print(json.dumps({"per_second": count / elapsed, "median_ms": statistics.median(times),
                  "p90_ms": statistics.quantiles(times, n=10)[-1]}))
"""


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, timeout=300)


def in_container(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return podman("exec", CONTAINER, *args, check=check)


def cleanup() -> None:
    podman("rm", "-f", "-t", "0", CONTAINER, check=False)


def make_pki(directory: Path, key_type: str) -> None:
    kind = {"ecdsa": trustme.KeyType.ECDSA, "rsa": trustme.KeyType.RSA}[key_type]
    ca = trustme.CA(key_type=kind)
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    cloud = ca.issue_cert("cloud.example.org", key_type=kind)
    cloud.private_key_and_cert_chain_pem.write_to_path(str(directory / "cloud.pem"))
    institution = ca.issue_cert("library.example.edu", key_type=kind)
    institution.cert_chain_pems[0].write_to_path(str(directory / "institution.crt"))
    institution.private_key_pem.write_to_path(str(directory / "institution.key"))


def render_role_config(directory: Path, extra_vars: dict) -> str:
    playbook = directory / "render.yml"
    playbook.write_text(
        RENDER.format(role=ROLE, dest=directory / "host.conf", tunnel_port=TUNNEL_PORT, cloud_port=CLOUD_PORT)
    )
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    subprocess.run(
        [
            "ansible-playbook",
            "-i",
            "localhost,",
            "-c",
            "local",
            str(playbook),
            "-e",
            json.dumps({"ansible_python_interpreter": sys.executable, **extra_vars}),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=300,
    )
    return (directory / "host.conf").read_text()


def start(directory: Path) -> None:
    podman(
        "run", "-d", "--name", CONTAINER, "--network", "none", "--systemd", "always",
        "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
        "-v", f"{directory}:/bench:ro", IMAGE, "/sbin/init",
    )  # fmt: skip
    for _ in range(100):
        state = in_container("systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(0.2)
    in_container(
        "sh",
        "-c",
        "echo '127.0.0.1 cloud.example.org' >> /etc/hosts"
        f" && mkdir -p {TLS_DIR} && cp /bench/institution.crt /bench/institution.key {TLS_DIR}/"
        f" && cp /bench/ca.pem {TLS_DIR}/cloud-ca.pem && chown -R root:stunnel4 /etc/stunnel/libsys"
        f" && chmod 0750 /etc/stunnel/libsys {TLS_DIR} && chmod 0640 {TLS_DIR}/*",
    )
    # Units like the role's: the tunnel runs as stunnel4 and logs to the journal.
    in_container(
        "systemd-run", "--unit", "bench-acs", "python3", "/bench/sip2.py", "--host", "127.0.0.1",
        "--port", str(ACS_PORT),
    )  # fmt: skip
    in_container("systemd-run", "--unit", "bench-cloud", "stunnel4", "/bench/cloud.conf")
    in_container(
        "systemd-run", "--unit", "bench-tunnel", "-p", "User=stunnel4", "-p", "Group=stunnel4",
        "stunnel4", "/bench/host.conf",
    )  # fmt: skip
    for _ in range(100):
        ready = in_container(
            "sh",
            "-c",
            f"nc -z 127.0.0.1 {ACS_PORT} && nc -z 127.0.0.1 {CLOUD_PORT} && nc -z 127.0.0.1 {TUNNEL_PORT}",
            check=False,
        )
        if ready.returncode == 0:
            return
        time.sleep(0.2)
    logs = in_container("journalctl", "--no-pager", "-n", "40", check=False).stdout
    raise RuntimeError(f"the benchmark's ACS or stunnels did not start:\n{logs}")


def measure(port: int) -> dict:
    out = in_container(
        "python3", "/bench/client.py", "127.0.0.1", str(port), str(SESSION_SECONDS), str(NEW_CONNECTIONS)
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def session_reuse() -> str:
    """The client tunnel's own count of resumed sessions: stunnel logs its TLS statistics (at
    level 7) after each handshake, so ask a short-lived copy of the role's configuration with
    debug = 7 for one connection after two others, rather than raising the measured tunnel's
    log level."""
    in_container(
        "sh", "-c",
        "sed -e 's/^debug = .*/debug = 7/' -e 's/127.0.0.1:6001/127.0.0.1:6002/' /bench/host.conf"
        " > /etc/stunnel/bench-probe.conf && chmod 644 /etc/stunnel/bench-probe.conf",
    )  # fmt: skip
    in_container(
        "systemd-run", "--unit", "bench-probe", "-p", "User=stunnel4", "stunnel4", "/etc/stunnel/bench-probe.conf"
    )
    for _ in range(50):
        if in_container("nc", "-z", "127.0.0.1", "6002", check=False).returncode == 0:
            break
        time.sleep(0.2)
    in_container("python3", "/bench/client.py", "127.0.0.1", "6002", "0", "3")
    log = in_container("journalctl", "--no-pager", "-o", "cat", "-u", "bench-probe").stdout
    stats = [line.split("]:", 1)[1].strip() for line in log.splitlines() if "session reuse(s)" in line or
             "client connect(s) succeeded" in line]  # fmt: skip
    return ", ".join(stats[-2:]) + " (a copy of the tunnel at debug 7)" if stats else "no statistics logged"


def cpu_ticks(unit: str) -> int:
    """utime + stime (clock ticks) of a unit's main process in the container."""
    pid = in_container("systemctl", "show", "-p", "MainPID", "--value", unit).stdout.strip()
    fields = in_container("cat", f"/proc/{pid}/stat").stdout.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_per_connection() -> dict:
    """CPU time each stunnel spends per new connection + one exchange, in microseconds. Unlike
    latency, CPU time hardly depends on how many other processes wait for the cores."""
    before = {unit: cpu_ticks(unit) for unit in ("bench-tunnel", "bench-cloud")}
    connections = 2 * NEW_CONNECTIONS
    in_container("python3", "/bench/client.py", "127.0.0.1", str(TUNNEL_PORT), "0", str(connections))
    hz = int(in_container("getconf", "CLK_TCK").stdout.strip())
    return {unit: (cpu_ticks(unit) - ticks) * 1e6 / hz / connections for unit, ticks in before.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--key-type", choices=["ecdsa", "rsa"], default="ecdsa")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the container running (to look at it)")
    parser.add_argument("-e", "--extra-vars", default="{}", help="JSON: variables for rendering the role's template")
    args = parser.parse_args()
    cleanup()
    load_before = os.getloadavg()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench-stunnel-") as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)
        make_pki(directory, args.key_type)
        host_conf = render_role_config(directory, json.loads(args.extra_vars))
        (directory / "cloud.conf").write_text(CLOUD_CONF)
        (directory / "client.py").write_text(CLIENT)
        (directory / "sip2.py").write_text((ROOT / "plugins/module_utils/sip2.py").read_text())
        for path in directory.iterdir():
            path.chmod(0o644)
        try:
            start(directory)
            for _ in range(args.rounds):
                rounds.append(
                    {"direct": measure(ACS_PORT), "tunnel": measure(TUNNEL_PORT), "cpu": cpu_per_connection()}
                )
            resumed = session_reuse()
        finally:
            if not args.keep:
                cleanup()
    load_after = os.getloadavg()
    report(args, rounds, host_conf, {"load_before": load_before, "load_after": load_after, "resumed": resumed})
    return 0


def report(args, rounds: list[dict], host_conf: str, conditions: dict) -> None:
    def med(side: str, key: str) -> float:
        return statistics.median(r[side][key] for r in rounds)

    ratios = [r["tunnel"]["per_second"] / r["direct"]["per_second"] for r in rounds]
    print("stunnel benchmark: SIP2 99/98 on loopback, kiosk -> role's client tunnel -> TLS -> cloud stunnel -> ACS")
    print(f"  certificates: {args.key_type}; rounds: {len(rounds)}; extra vars: {args.extra_vars}")
    print(f"  load average before: {' '.join(f'{x:.2f}' for x in conditions['load_before'])}, after: "
          f"{' '.join(f'{x:.2f}' for x in conditions['load_after'])} (2 cores, shared)")  # fmt: skip
    print("  the role's rendered client tunnel (options):")
    for line in host_conf.splitlines():
        if line and not line.startswith(";"):
            print(f"    {line}")
    for i, r in enumerate(rounds, 1):
        print(
            f"  round {i}: session direct {r['direct']['per_second']:.0f}/s tunnel {r['tunnel']['per_second']:.0f}/s"
            f" ratio {r['tunnel']['per_second'] / r['direct']['per_second']:.2f};"
            f" new connection median direct {r['direct']['median_ms']:.2f} ms tunnel {r['tunnel']['median_ms']:.2f} ms"
            f" (p90 {r['tunnel']['p90_ms']:.2f} ms)"
        )
    print(f"  persistent session, direct : {med('direct', 'per_second'):9.0f} exchanges/s (median of rounds)")
    print(f"  persistent session, tunnel : {med('tunnel', 'per_second'):9.0f} exchanges/s (median of rounds)")
    print(
        f"  persistent session ratio   : {statistics.median(ratios):9.2f} x direct (median of rounds; target >= 0.80)"
    )
    print(f"  new connection + exchange, direct : median {med('direct', 'median_ms'):.2f} ms (median of rounds)")
    print(
        f"  new connection + exchange, tunnel : median {med('tunnel', 'median_ms'):.2f} ms (median of rounds;"
        " target <= 4 ms)"
    )
    print(
        "  CPU per new connection + exchange (median of rounds):"
        f" role's client tunnel {statistics.median(r['cpu']['bench-tunnel'] for r in rounds):.0f} us,"
        f" cloud stunnel {statistics.median(r['cpu']['bench-cloud'] for r in rounds):.0f} us"
    )
    print(f"  TLS connections of the client tunnel that resumed a session: {conditions['resumed']}")


if __name__ == "__main__":
    sys.exit(main())
