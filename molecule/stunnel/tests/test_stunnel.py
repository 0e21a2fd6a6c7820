"""stunnel role: real SIP2 from a kiosk through the on-prem client tunnel to the simulated
cloud, the ASRS round trip through the 5001 server tunnel, and the refusals (foreign CA,
wrong host name, no client certificate, old TLS, weak ciphers, outsiders)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time

import pytest
from conftest import connect_outcome, host_variable, hosts_in, podman_host, venv_tool
from role_runs import run_role

ADDRESSES = {"onprem-stunnel-deb12": "198.51.100.74", "onprem-stunnel-deb13": "198.51.100.75"}
# Their IPv6 addresses (peer_ipv6, molecule.yml): the tunnels listen on both families.
IPV6_ADDRESSES = {"onprem-stunnel-deb12": "2001:db8:64::4a", "onprem-stunnel-deb13": "2001:db8:64::4b"}
ASRS_CLIENT_PORT = {"onprem-stunnel-deb12": 15074, "onprem-stunnel-deb13": 15075}
HOSTS = hosts_in("integration_hosts")
TUNNELS = ["sip2", "sip2-foreign-ca", "sip2-wrong-name", "asrs-in"]
KIOSK = "/usr/local/lib/libsys-peer/sip2_kiosk.py"
TLS = "/etc/libsys-peer/tls"


@pytest.fixture(scope="module")
def kiosk():
    return podman_host(hosts_in("kiosk")[0])


@pytest.fixture(scope="module")
def cloud():
    return podman_host(hosts_in("cloud")[0])


def kiosk_steps(kiosk, address: str, port: int, mode: str = "exchange", *extra: str) -> dict:
    out = kiosk.check_output(f"python3 {KIOSK} {address} {port} {mode} {' '.join(extra)}")
    return {step["step"]: step for step in map(json.loads, out.splitlines())}


def probe(cloud, address: str, options: str = "") -> str:
    return cloud.check_output(f"python3 /usr/local/bin/tls_probe.py {address} 5001 {options}")


GOOD_CLIENT = f"--cert {TLS}/cloud-client.crt --key {TLS}/cloud-client.key --ca {TLS}/vendor-ca.crt"


@pytest.mark.parametrize("name", HOSTS)
@pytest.mark.parametrize("tunnel", TUNNELS)
def test_each_tunnel_is_its_own_running_unit_as_unprivileged_user(name: str, tunnel: str) -> None:
    host = podman_host(name)
    service = host.service(f"stunnel-libsys@{tunnel}.service")
    assert service.is_enabled
    assert service.is_running
    props = service.systemd_properties
    assert props["User"] == "stunnel4"
    assert props["Restart"] == "on-failure"
    user = host.check_output(f"stat -c %U /proc/{props['MainPID']}")
    assert user == "stunnel4"


@pytest.mark.parametrize("name", HOSTS)
def test_a_running_tunnel_has_one_capability_no_new_privileges_and_its_syscall_filters(name: str) -> None:
    """What the kernel enforces on the running tunnel, read from /proc: only
    CAP_NET_BIND_SERVICE in every set, no_new_privs, and system-call filters of its own where
    stunnel_unit_seccomp is on (the Debian 12 host; the Debian 13 host turns it off, as systemd
    257 cannot install them in this container). The unit's mount-namespace settings
    (ProtectSystem, ProtectHome, PrivateTmp) cannot be shown here: systemd skips them in a
    container without CAP_SYS_ADMIN. With the filters systemd-analyze rates the unit at most 4.0."""
    host = podman_host(name)
    seccomp = host_variable(name, "stunnel_unit_seccomp", True)
    assert seccomp is ("deb12" in name)
    pid = host.service("stunnel-libsys@sip2.service").systemd_properties["MainPID"]
    status = dict(
        line.split(":\t", 1) for line in host.check_output(f"cat /proc/{pid}/status").splitlines() if ":\t" in line
    )
    net_bind_service = f"{1 << 10:016x}"
    assert [status[c] for c in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")] == [net_bind_service] * 5
    assert status["NoNewPrivs"] == "1"
    # Every process of the container runs under podman's own seccomp filter: PID 1 has only
    # that one, so the unit's filters are the tunnel's filters beyond PID 1's.
    container = host.check_output("awk '/^Seccomp_filters:/ {print $2}' /proc/1/status")
    if seccomp:
        assert int(status["Seccomp_filters"]) > int(container), (status["Seccomp_filters"], container)
        assert host.run("systemd-analyze security --threshold=40 stunnel-libsys@sip2.service").rc == 0
    else:
        assert status["Seccomp_filters"] == container


# The SC Status request exactly as the 3M SIP2 specification prints it (status OK, print width
# 030, protocol 2.00, sequence 1, checksum FCA5), sent by the kiosk as plain bytes: no part of
# the collection's SIP2 code is on the kiosk's side of this exchange.
SPEC_SC_STATUS = b"9900302.00AY1AZFCA5\r"
RAW_EXCHANGE = (
    "import socket, sys\n"
    "sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)\n"
    "sock.sendall(sys.argv[3].encode() + b'\\r')\n"
    "data = b''\n"
    "while not data.endswith(b'\\r'):\n"
    "    chunk = sock.recv(4096)\n"
    "    if not chunk:\n"
    "        break\n"
    "    data += chunk\n"
    "print(data.decode('ascii').rstrip('\\r'))\n"
)
# ACS Status: online flag and five Y/N flags, timeout and retries, an 18-character date,
# protocol version, variable fields, then the sequence number and checksum of the request.
ACS_STATUS = re.compile(r"98(?P<online>[YN])[YN]{5}\d{3}\d{3}.{18}\d\.\d\d(?P<fields>.*\|)AY1AZ(?P<sum>[0-9A-F]{4})")


@pytest.mark.parametrize("name", HOSTS)
def test_sip2_bytes_from_the_specification_through_the_tunnel(name: str, kiosk) -> None:
    request = SPEC_SC_STATUS.decode().rstrip("\r")
    # The checksum rule of the specification, with the specification's own example.
    assert "%04X" % (-sum(request[:-4].encode()) & 0xFFFF) == request[-4:]
    reply = kiosk.check_output(f"python3 -c {shlex.quote(RAW_EXCHANGE)} {ADDRESSES[name]} 6001 {request}")
    match = ACS_STATUS.fullmatch(reply)
    assert match, reply
    assert match["online"] == "Y"
    assert "AOEXAMPLE|" in match["fields"], reply
    assert match["sum"] == "%04X" % (-sum(reply[:-4].encode()) & 0xFFFF), reply


@pytest.mark.parametrize("name", HOSTS)
def test_kiosk_speaks_sip2_through_the_tunnel(name: str, kiosk) -> None:
    steps = kiosk_steps(kiosk, ADDRESSES[name], 6001)
    assert steps["93/94"]["parsed"]["ok"] is True
    status = steps["99/98"]["parsed"]
    assert status["online"] is True and status["institution_id"] == "EXAMPLE"
    patron = steps["23/24"]["parsed"]
    assert patron["patron_id"] == "P0001" and patron["valid_patron"] is True
    # Responses arrive intact: every checksum verifies and the sequence numbers match.
    assert all(steps[s]["checksum_ok"] for s in ("93/94", "99/98", "23/24"))
    assert [steps[s]["parsed"]["sequence"] for s in ("93/94", "99/98", "23/24")] == [1, 2, 3]


@pytest.mark.parametrize("name", HOSTS)
@pytest.mark.parametrize(("port", "reason"), [(6002, "foreign CA"), (6003, "wrong host name")])
def test_cloud_with_a_bad_certificate_is_refused(name: str, port: int, reason: str, kiosk) -> None:
    steps = kiosk_steps(kiosk, ADDRESSES[name], port)
    assert "93/94" not in steps, f"{reason}: the tunnel carried SIP2 to a cloud it should refuse"
    tunnel = {6002: "sip2-foreign-ca", 6003: "sip2-wrong-name"}[port]
    journal = podman_host(name).check_output(f"journalctl --no-pager -o cat -u stunnel-libsys@{tunnel}.service")
    assert "Certificate verification failed" in journal or "CERT: " in journal or "verify failed" in journal


@pytest.mark.parametrize("name", HOSTS)
def test_asrs_round_trip_through_the_5001_server_tunnel(name: str, cloud) -> None:
    port = ASRS_CLIENT_PORT[name]
    reply = cloud.check_output(f"printf 'STORE tote-42\\n' | timeout 5 nc -q 2 127.0.0.1 {port}")
    assert reply == "ASRS-ACK STORE tote-42"


@pytest.mark.parametrize("name", HOSTS)
def test_5001_accepts_the_clouds_client_certificate(name: str, cloud) -> None:
    assert probe(cloud, ADDRESSES[name], GOOD_CLIENT + " --server-name library.example.edu") == "ok ASRS-ACK PROBE"


@pytest.mark.parametrize("name", HOSTS)
@pytest.mark.parametrize(
    ("options", "what"),
    [
        (f"--ca {TLS}/vendor-ca.crt", "no client certificate"),
        (f"--cert {TLS}/foreign-client.crt --key {TLS}/foreign-client.key", "client certificate of a foreign CA"),
        (
            f"--cert {TLS}/other-tenant-client.crt --key {TLS}/other-tenant-client.key --ca {TLS}/vendor-ca.crt",
            "client certificate of another tenant from the vendor's CA",
        ),
        (GOOD_CLIENT + " --tls 1.1", "TLS 1.1"),
        (GOOD_CLIENT + " --tls 1.2 --ciphers AES128-SHA", "non-intermediate cipher AES128-SHA"),
        (GOOD_CLIENT + " --tls 1.2 --ciphers ECDHE-RSA-AES128-SHA", "non-intermediate cipher ECDHE-RSA-AES128-SHA"),
    ],
)
def test_5001_refuses(name: str, options: str, what: str, cloud) -> None:
    outcome = probe(cloud, ADDRESSES[name], options)
    assert outcome.startswith("refused"), f"{what}: {outcome}"


@pytest.mark.parametrize("name", HOSTS)
@pytest.mark.parametrize("port", [6001, 5001])
def test_outsider_is_dropped(name: str, port: int) -> None:
    outsider = podman_host(hosts_in("outsider")[0])
    outcome = connect_outcome(outsider, ADDRESSES[name], port)
    assert outcome == "timeout"


@pytest.mark.parametrize("name", HOSTS)
def test_kiosk_speaks_sip2_through_the_tunnel_over_ipv6(name: str, kiosk) -> None:
    """A kiosk on the campus's IPv6 network reaches the same tunnel (one dual-stack listener)."""
    steps = kiosk_steps(kiosk, IPV6_ADDRESSES[name], 6001)
    status = steps["99/98"]["parsed"]
    assert status["online"] is True and status["institution_id"] == "EXAMPLE"
    assert steps["23/24"]["parsed"]["valid_patron"] is True
    assert all(steps[s]["checksum_ok"] for s in ("93/94", "99/98", "23/24"))


@pytest.mark.parametrize("name", HOSTS)
@pytest.mark.parametrize("port", [6001, 5001])
def test_outsider_is_dropped_over_ipv6(name: str, port: int) -> None:
    outsider = podman_host(hosts_in("outsider")[0])
    assert connect_outcome(outsider, IPV6_ADDRESSES[name], port) == "timeout"


def test_firewall_off_removes_the_table_and_the_next_run_restores_it() -> None:
    """stunnel_manage_firewall false (the string "false", as -e gives it) removes the table's
    file and the live table: the outsider reaches the kiosk port. The next run with the default
    loads it again and the outsider is dropped again."""
    name = "onprem-stunnel-deb13"
    host, outsider = podman_host(name), podman_host(hosts_in("outsider")[0])
    table_file = "/etc/libsys-onprem/nftables.d/stunnel.nft"
    try:
        off = run_role(name, {"stunnel_manage_firewall": "false"})
        assert off.returncode == 0, (off.stdout + off.stderr)[-3000:]
        assert not host.file(table_file).exists
        assert host.run("nft list table inet libsys_stunnel").rc != 0
        assert connect_outcome(outsider, ADDRESSES[name], 6001) == "open"
    finally:
        on = run_role(name, {})
    assert on.returncode == 0, (on.stdout + on.stderr)[-3000:]
    assert host.file(table_file).exists
    assert connect_outcome(outsider, ADDRESSES[name], 6001) == "timeout"


@pytest.mark.parametrize("name", HOSTS)
def test_kiosk_cannot_reach_the_server_tunnel(name: str, kiosk) -> None:
    outcome = connect_outcome(kiosk, ADDRESSES[name], 5001)
    assert outcome == "timeout"


@pytest.mark.parametrize("name", HOSTS)
def test_sslyze_mozilla_intermediate_on_5001(name: str) -> None:
    pki = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "pki")
    sslyze = venv_tool("sslyze")
    result = subprocess.run(
        # The test CA is the trust anchor (certificate path validation is part of the check); the
        # listener requires a client certificate, so sslyze presents the cloud's.
        [
            sslyze,
            "--mozilla_config=intermediate",
            f"--certinfo_ca_file={pki}/vendor-ca.crt",
            f"--cert={pki}/cloud-client.crt",
            f"--key={pki}/cloud-client.key",
            f"{ADDRESSES[name]}:5001",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "OK - Compliant" in result.stdout


@pytest.mark.parametrize("name", HOSTS)
def test_cloud_restart_mid_session_then_new_connection_works(name: str, kiosk, cloud) -> None:
    address = ADDRESSES[name]
    log = f"/root/session-{name}.jsonl"
    kiosk.check_output(f"rm -f {log}; (python3 {KIOSK} {address} 6001 session 6 > {log} 2>&1 &)")
    for _ in range(50):
        if kiosk.run(f"grep -q before {log}").rc == 0:
            break
        time.sleep(0.2)
    host = podman_host(name)
    # Keepalive on both sockets of the open session: kiosk side (6001) and cloud side (6443).
    sockets = host.check_output("ss -Htno state established '( sport = :6001 or dport = :6443 )'")
    assert sockets.count("keepalive") >= 2, sockets
    pid_before = host.service("stunnel-libsys@sip2.service").systemd_properties["MainPID"]
    cloud.check_output("systemctl restart peer-cloud-stunnel.service peer-sip2-acs.service")
    for _ in range(60):
        if kiosk.run(f"grep -q new-connection {log}").rc == 0:
            break
        time.sleep(0.5)
    steps = {s["step"]: s for s in map(json.loads, kiosk.check_output(f"cat {log}").splitlines())}
    assert steps["before"]["raw"].startswith("941")
    assert not steps["same-connection"]["raw"].startswith("98"), "the old session should end with the cloud"
    assert steps["new-connection"]["raw"].startswith("98"), steps
    # No action on the host: the same stunnel process served the new connection.
    assert host.service("stunnel-libsys@sip2.service").systemd_properties["MainPID"] == pid_before


# Run on the cloud peer: two connections to 5001 with the cloud's client certificate, the second
# offering the first one's session (after a clean TLS shutdown); prints whether each was resumed
# and whether the server handed out a ticket.
RESUME_PROBE = f"""
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations("{TLS}/vendor-ca.crt")
ctx.load_cert_chain("{TLS}/cloud-client.crt", "{TLS}/cloud-client.key")
ctx.check_hostname = False
ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, sys.argv[2])
def once(session=None):
    with socket.create_connection((sys.argv[1], 5001), timeout=5) as raw:
        with ctx.wrap_socket(raw, session=session) as tls:
            tls.sendall(b"PROBE\\n")
            tls.recv(4096)
            session, reused = tls.session, tls.session_reused
            tls.unwrap()
            return session, reused
first, reused_first = once()
_, reused_second = once(first)
print(reused_first, reused_second, first.has_ticket)
"""


@pytest.mark.parametrize("name", HOSTS)
def test_5001_resumes_sessions_from_its_cache_without_tickets(name: str, cloud) -> None:
    cloud.check_output(f"cat > /root/resume_probe.py << 'EOF'\n{RESUME_PROBE}\nEOF")
    # TLS 1.2: resumed by session ID from the tunnel's own cache, and no stateless ticket issued
    # (options = NO_TICKET).
    assert cloud.check_output(f"python3 /root/resume_probe.py {ADDRESSES[name]} TLSv1_2") == "False True False"
    # TLS 1.3: resumed (with NO_TICKET, OpenSSL's TLS 1.3 tickets are references to that cache).
    assert cloud.check_output(f"python3 /root/resume_probe.py {ADDRESSES[name]} TLSv1_3").startswith("False True ")


@pytest.mark.parametrize("name", HOSTS)
def test_only_the_roles_own_table_and_ports(name: str) -> None:
    table = podman_host(name).check_output("nft list table inet libsys_stunnel")
    ports = {int(line.split("dport")[1].split()[0]) for line in table.splitlines() if "dport" in line}
    assert ports == {6001, 6002, 6003, 5001}
