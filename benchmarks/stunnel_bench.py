#!/usr/bin/env python3
"""SIP2 through the stunnel tunnel pair versus straight to the ACS, measured in one run.

Creates its own podman network and containers (``bench-stunnel-*``) from the project's peer
image, removes them at the end (also on failure), and prints figures and ratios:

- persistent session: 99/98 exchanges per second on one open connection, tunnel / direct
  (issue target: >= 0.8);
- new connection + one exchange (99/98): median milliseconds, tunnel and direct
  (issue target: <= 4 ms through the tunnel).

The on-prem side runs stunnel with the TLS and socket options of the libsys.onprem.stunnel
role's template (client tunnel: pinned CA, verifyChain, checkHost, SNI, TLS >= 1.2, Mozilla
intermediate, keepalive, TCP_NODELAY); the cloud side runs a plain stunnel server requiring the
institution's client certificate in front of the fake ACS of plugins/module_utils/sip2.py.
Traffic stays on the benchmark's own bridge. Run as root: .venv/bin/python benchmarks/stunnel_bench.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trustme

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "localhost/libsys-onprem/peer:12"
NETWORK = "bench-stunnel-net"
SUBNET = "198.51.100.224/27"
CLOUD, HOST, KIOSK = "198.51.100.234", "198.51.100.235", "198.51.100.236"
CONTAINERS = {"bench-stunnel-cloud": CLOUD, "bench-stunnel-host": HOST, "bench-stunnel-kiosk": KIOSK}
SESSION_SECONDS = 5.0
NEW_CONNECTIONS = 300

CLOUD_CONF = """foreground = yes
pid =
[sip2]
accept = 6443
connect = 127.0.0.1:6001
cert = /bench/cloud.pem
CAfile = /bench/ca.pem
verifyChain = yes
requireCert = yes
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
"""

# Same options as roles/stunnel/templates/tunnel.conf.j2 renders for a client tunnel.
HOST_CONF = """foreground = yes
syslog = no
pid =
debug = 5
[sip2]
client = yes
accept = 6001
connect = cloud.example.org:6443
delay = yes
cert = /bench/institution.pem
CAfile = /bench/ca.pem
verifyChain = yes
checkHost = cloud.example.org
sni = cloud.example.org
sslVersionMin = TLSv1.2
ciphers = ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:\
ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305
ciphersuites = TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
curves = X25519:prime256v1:secp384r1
options = NO_RENEGOTIATION
options = NO_COMPRESSION
TIMEOUTidle = 43200
socket = l:SO_KEEPALIVE=1
socket = r:SO_KEEPALIVE=1
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
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


def cleanup() -> None:
    for name in CONTAINERS:
        podman("rm", "-f", "-t", "0", name, check=False)
    podman("network", "rm", "-f", NETWORK, check=False)


def make_pki(directory: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    cloud = ca.issue_cert("cloud.example.org", CLOUD)
    cloud.private_key_and_cert_chain_pem.write_to_path(str(directory / "cloud.pem"))
    institution = ca.issue_cert("library.example.edu")
    institution.private_key_and_cert_chain_pem.write_to_path(str(directory / "institution.pem"))
    (directory / "cloud.conf").write_text(CLOUD_CONF)
    (directory / "host.conf").write_text(HOST_CONF)
    (directory / "client.py").write_text(CLIENT)
    (directory / "sip2.py").write_text((ROOT / "plugins/module_utils/sip2.py").read_text())


def start(directory: Path) -> None:
    podman("network", "create", "--subnet", SUBNET, NETWORK)
    for name, address in CONTAINERS.items():
        podman(
            "run",
            "-d",
            "--name",
            name,
            "--network",
            NETWORK,
            "--ip",
            address,
            "--add-host",
            f"cloud.example.org:{CLOUD}",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "-v",
            f"{directory}:/bench:ro",
            IMAGE,
            "sleep",
            "3600",
        )
    # The fake ACS listens on all addresses of the cloud container: the direct baseline reaches
    # it on the bridge, the cloud's stunnel on loopback.
    podman("exec", "-d", "bench-stunnel-cloud", "python3", "/bench/sip2.py", "--host", "", "--port", "6001")
    podman("exec", "-d", "bench-stunnel-cloud", "stunnel4", "/bench/cloud.conf")
    podman("exec", "-d", "bench-stunnel-host", "stunnel4", "/bench/host.conf")
    for _ in range(50):
        ready = podman(
            "exec",
            "bench-stunnel-kiosk",
            "sh",
            "-c",
            f"nc -z {CLOUD} 6001 && nc -z {CLOUD} 6443 && nc -z {HOST} 6001",
            check=False,
        )
        if ready.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("the benchmark's ACS or stunnels did not start")


def measure(address: str, port: int) -> dict:
    out = podman(
        "exec",
        "bench-stunnel-kiosk",
        "python3",
        "/bench/client.py",
        address,
        str(port),
        str(SESSION_SECONDS),
        str(NEW_CONNECTIONS),
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    cleanup()
    with tempfile.TemporaryDirectory(prefix="bench-stunnel-") as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)
        make_pki(directory)
        for path in directory.iterdir():
            path.chmod(0o644)
        try:
            start(directory)
            direct = measure(CLOUD, 6001)
            tunnel = measure(HOST, 6001)
        finally:
            cleanup()
    ratio = tunnel["per_second"] / direct["per_second"]
    print("stunnel benchmark: SIP2 99/98, kiosk -> on-prem stunnel -> TLS -> cloud stunnel -> ACS")
    print(f"  persistent session, direct : {direct['per_second']:9.0f} exchanges/s")
    print(f"  persistent session, tunnel : {tunnel['per_second']:9.0f} exchanges/s")
    print(f"  persistent session ratio   : {ratio:9.2f} x direct (target >= 0.80)")
    print(f"  new connection + exchange, direct : median {direct['median_ms']:.2f} ms, p90 {direct['p90_ms']:.2f} ms")
    print(
        f"  new connection + exchange, tunnel : median {tunnel['median_ms']:.2f} ms, p90 {tunnel['p90_ms']:.2f} ms"
        " (target <= 4 ms)"
    )
    print(f"  new connection ratio       : {tunnel['median_ms'] / direct['median_ms']:9.1f} x direct")
    return 0


if __name__ == "__main__":
    sys.exit(main())
