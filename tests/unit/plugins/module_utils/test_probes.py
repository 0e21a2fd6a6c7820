# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import time
from typing import Any, Iterator, Optional

import pytest

from ansible_collections.libsys.onprem.plugins.module_utils import probes, spf
from ansible_collections.libsys.onprem.plugins.module_utils.sip2 import Sip2Server
from ansible_collections.libsys.onprem.tests.unit.loopback import (
    LOOPBACK,
    SERVER_NAME,
    SIP2_LOGIN,
    FakeDns,
    HeldPort,
    Pki,
    SmtpServers,
    ThreadedServer,
    TlsServers,
    banner_handler,
)


def ep(**kwargs: Any) -> dict[str, Any]:
    # Generous: a loopback probe that should succeed must not turn into "timeout" on a busy
    # 2-core machine (tests that expect a timeout set their own short one).
    base = {"name": "t", "host": LOOPBACK, "probe": "tcp", "required": True, "timeout": 15.0}
    base.update(kwargs)
    return base


def run(**kwargs: Any) -> dict[str, Any]:
    return probes.run_probe(ep(**kwargs))


# --- tcp ------------------------------------------------------------------------------


def test_tcp_ok(ssh_server: ThreadedServer) -> None:
    result = run(port=ssh_server.port)
    assert result["status"] == "ok"
    assert result["ok"] is True
    assert result["details"] == {"peer_address": LOOPBACK}
    assert result["latency_ms"] >= 0


def test_tcp_ok_ipv6() -> None:
    server = ThreadedServer(banner_handler(b"hello\r\n"), host="::1")
    try:
        result = run(host="::1", port=server.port)
        assert result["status"] == "ok", result
        assert result["details"]["peer_address"] == "::1"
    finally:
        server.close()


def test_tcp_refused(closed_port: int) -> None:
    result = run(port=closed_port)
    assert result["status"] == "refused"
    assert result["ok"] is False
    assert result["message"] == "connection refused"


def test_localhost_name_resolves_and_falls_through(ssh_server: ThreadedServer) -> None:
    # 'localhost' may resolve to ::1 first; the server only listens on 127.0.0.1.
    assert run(host="localhost", port=ssh_server.port)["status"] == "ok"


def test_dns_error() -> None:
    # .invalid never resolves (RFC 6761); the resolver answers locally from /etc/hosts or fails.
    result = run(host="no-such-host.invalid", port=80)
    assert result["status"] == "dns_error"


@pytest.mark.nft
def test_tcp_timeout_unanswered(unanswered_ports: list[int]) -> None:
    start = time.monotonic()
    result = run(port=unanswered_ports[0], timeout=0.5)
    elapsed = time.monotonic() - start
    assert result["status"] == "timeout"
    assert 0.4 <= elapsed < 3.0


# --- tls / ldaps ----------------------------------------------------------------------


def tls_ep(pki: Pki, port: int, **kwargs: Any) -> dict[str, Any]:
    options = {"probe": "tls", "port": port, "ca_path": pki.ca_file, "tls_server_name": SERVER_NAME}
    options.update(kwargs)
    return ep(**options)


def test_tls_ok_reports_certificate(pki: Pki, tls_servers: TlsServers) -> None:
    result = probes.run_probe(tls_ep(pki, tls_servers.good.port))
    assert result["status"] == "ok", result
    details = result["details"]
    assert details["tls_version"] == "TLSv1.3"
    assert details["cipher"]
    assert "DNS:%s" % SERVER_NAME in details["san"]
    assert "IP Address:%s" % LOOPBACK in details["san"]
    assert 364 <= details["days_until_expiry"] <= 366
    assert details["not_after"].endswith("Z")
    assert "TLSv1.3 handshake ok" in result["message"]


def test_tls_ok_by_ip_without_server_name(pki: Pki, tls_servers: TlsServers) -> None:
    result = probes.run_probe(ep(probe="tls", port=tls_servers.good.port, ca_path=pki.ca_file))
    assert result["status"] == "ok", result


def test_tls_ca_directory(pki: Pki, tls_servers: TlsServers, tmp_path) -> None:
    # An empty CA directory trusts nothing.
    assert probes.run_probe(tls_ep(pki, tls_servers.good.port, ca_path=str(tmp_path)))["status"] == "tls_error"
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make the hash link of a CA directory")
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", pki.ca_file], check=True, capture_output=True, text=True
    ).stdout.strip()
    shutil.copy(pki.ca_file, tmp_path / ("%s.0" % subject_hash))
    result = probes.run_probe(tls_ep(pki, tls_servers.good.port, ca_path=str(tmp_path)))
    assert result["status"] == "ok", result


def test_tls12_server(pki: Pki, tls_servers: TlsServers) -> None:
    result = probes.run_probe(tls_ep(pki, tls_servers.good_tls12.port))
    assert result["status"] == "ok"
    assert result["details"]["tls_version"] == "TLSv1.2"


def test_min_tls13_against_tls12_server(pki: Pki, tls_servers: TlsServers) -> None:
    result = probes.run_probe(tls_ep(pki, tls_servers.good_tls12.port, min_tls_version="TLSv1.3"))
    assert result["status"] == "tls_error"


@pytest.mark.parametrize(
    ("server", "options", "expected_message"),
    [
        ("expired", {}, "certificate has expired"),
        ("wrong_ca", {}, "unable to get local issuer certificate"),
        ("wrong_name", {}, "Hostname mismatch"),
    ],
)
def test_tls_verification_failures(
    pki: Pki, tls_servers: TlsServers, server: str, options: dict, expected_message: str
) -> None:
    result = probes.run_probe(tls_ep(pki, getattr(tls_servers, server).port, **options))
    assert result["status"] == "tls_error"
    assert expected_message in result["message"]
    assert result["details"]["verify_code"] != 0


def test_tls_wrong_name_allowed_without_hostname_check(pki: Pki, tls_servers: TlsServers) -> None:
    result = probes.run_probe(tls_ep(pki, tls_servers.wrong_name.port, check_hostname=False))
    assert result["status"] == "ok", result
    assert result["details"]["san"] == ["DNS:other.example.org"]


def test_tls_wrong_ca_still_fails_without_hostname_check(pki: Pki, tls_servers: TlsServers) -> None:
    result = probes.run_probe(tls_ep(pki, tls_servers.wrong_ca.port, check_hostname=False))
    assert result["status"] == "tls_error"


@pytest.mark.parametrize(("warn_days", "expected"), [(14, "cert_expiring"), (6, "cert_expiring"), (5, "ok"), (0, "ok")])
def test_tls_expiry_threshold(pki: Pki, tls_servers: TlsServers, warn_days: int, expected: str) -> None:
    # The certificate is valid for 5 days and one hour: 5 full days left; fails when days left < threshold.
    result = probes.run_probe(tls_ep(pki, tls_servers.expiring.port, expiry_warn_days=warn_days))
    assert result["details"]["days_until_expiry"] == 5
    assert result["status"] == expected, result


@pytest.mark.parametrize("server", ["client_auth", "client_auth_tls12"])
def test_client_certificate_required(pki: Pki, tls_servers: TlsServers, server: str) -> None:
    port = getattr(tls_servers, server).port
    without = probes.run_probe(tls_ep(pki, port))
    assert without["status"] == "tls_error", without
    with_cert = probes.run_probe(
        tls_ep(pki, port, client_cert_path=pki.client_cert_file, client_key_path=pki.client_key_file)
    )
    assert with_cert["status"] == "ok", with_cert


@pytest.fixture
def encrypted_client_key(pki: Pki, tmp_path) -> str:
    """The client certificate's key, encrypted with the passphrase "molecule-test-only"."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - trustme's dependency

    with open(pki.client_key_file, "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), None)
    path = tmp_path / "encrypted.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"molecule-test-only"),
        )
    )
    return str(path)


@pytest.mark.parametrize(
    "case",
    [
        ("molecule-test-only", "ok", None),
        ("wrong", "error", "is encrypted and client_key_passphrase does not decrypt it"),
        (None, "error", "is encrypted and client_key_passphrase is not set"),
    ],
    ids=["right-passphrase", "wrong-passphrase", "no-passphrase"],
)
def test_encrypted_client_key(pki: Pki, tls_servers: TlsServers, encrypted_client_key: str, case: tuple) -> None:
    passphrase, status, message = case
    endpoint = tls_ep(
        pki,
        tls_servers.client_auth.port,
        client_cert_path=pki.client_cert_file,
        client_key_path=encrypted_client_key,
        client_key_passphrase=passphrase,
    )
    result = probes.run_probe(endpoint)
    assert result["status"] == status, result
    if message:
        assert result["message"] == "client key %s %s" % (encrypted_client_key, message)


def test_encrypted_client_key_without_passphrase_is_refused_before_any_probe(pki: Pki, encrypted_client_key) -> None:
    entry = {
        "name": "x",
        "host": "h",
        "port": 1,
        "probe": "tls",
        "client_cert_path": pki.client_cert_file,
        "client_key_path": encrypted_client_key,
    }
    assert probes.validate_endpoints([entry]) == [
        "endpoint 'x' (#0): client key %s is encrypted: set client_key_passphrase (vaulted)" % encrypted_client_key
    ]


NO_PROMPT = """
import sys
from ansible_collections.libsys.onprem.plugins.module_utils import probes, spf
try:
    probes.tls_context({"client_cert_path": sys.argv[1], "client_key_path": sys.argv[2]})
except probes.ProbeError as error:
    print("REFUSED " + str(error))
"""


def test_an_encrypted_key_never_waits_for_a_terminal(pki: Pki, encrypted_client_key: str) -> None:
    """With a controlling terminal OpenSSL would ask there for the passphrase and wait: the
    process gets one (a pseudo-terminal), and still ends at once with the message."""
    import os  # noqa: PLC0415
    import pty  # noqa: PLC0415
    import select  # noqa: PLC0415
    import sys  # noqa: PLC0415

    pid, terminal = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pseudo-terminal
        # An argument list, no shell: the test's own interpreter, script and module path.
        command = [sys.executable, "-c", NO_PROMPT, pki.client_cert_file, encrypted_client_key]
        os.execve(sys.executable, command, dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))  # noqa: S606
    output = b""
    deadline = time.monotonic() + 30
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([terminal], [], [], remaining)[0]:
            os.kill(pid, 9)  # still waiting (for a passphrase): the defect this test is about
            break
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the child closed the terminal: it ended
            break
        if not chunk:
            break
        output += chunk
    os.waitpid(pid, 0)
    assert output.decode().strip() == "REFUSED client key %s is encrypted and client_key_passphrase is not set" % (
        encrypted_client_key
    ), output


def test_client_certificate_from_other_ca_refused(pki: Pki, tls_servers: TlsServers, tmp_path) -> None:
    leaf = pki.other_ca.issue_cert("intruder.example.org")
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    result = probes.run_probe(
        tls_ep(pki, tls_servers.client_auth.port, client_cert_path=str(cert), client_key_path=str(key))
    )
    assert result["status"] == "tls_error"


def test_tls_against_plain_tcp_server(pki: Pki, ssh_server: ThreadedServer) -> None:
    result = probes.run_probe(tls_ep(pki, ssh_server.port))
    assert result["status"] == "tls_error"


def test_tls_silent_server_times_out(pki: Pki, silent_server: ThreadedServer) -> None:
    result = probes.run_probe(tls_ep(pki, silent_server.port, timeout=0.5))
    assert result["status"] == "timeout"


def test_ldaps_is_tls_handshake(pki: Pki, tls_servers: TlsServers) -> None:
    result = probes.run_probe(tls_ep(pki, tls_servers.good.port, probe="ldaps"))
    assert result["status"] == "ok"
    assert result["probe"] == "ldaps"
    assert result["details"]["ldap_bind"].startswith("not attempted")


def test_ldaps_expired(pki: Pki, tls_servers: TlsServers) -> None:
    assert probes.run_probe(tls_ep(pki, tls_servers.expired.port, probe="ldaps"))["status"] == "tls_error"


# --- ssh ------------------------------------------------------------------------------


def test_ssh_banner(ssh_server: ThreadedServer) -> None:
    result = run(probe="ssh", port=ssh_server.port)
    assert result["status"] == "ok"
    assert result["details"] == {
        "banner": "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
        "protocol_version": "2.0",
        "software": "OpenSSH_9.2p1 Debian-2+deb12u3",
    }


@pytest.mark.parametrize(
    ("payload", "status", "detail"),
    [
        (b"Welcome to the drop box\r\nSSH-2.0-OpenSSH_9.2\r\n", "ok", "OpenSSH_9.2"),
        (b"SSH-1.99-Cisco-1.25\r\n", "ok", "Cisco-1.25"),
        (b"SSH-1.5-OldServer\r\n", "protocol_error", "OldServer"),
        (b"220 mail.example.org ESMTP\r\n", "protocol_error", None),
        (b"", "protocol_error", None),
    ],
)
def test_ssh_banner_variants(payload: bytes, status: str, detail: str) -> None:
    def handler(conn: socket.socket) -> None:
        conn.sendall(payload)
        if not payload:
            return
        while conn.recv(1024):
            pass

    server = ThreadedServer(handler)
    try:
        result = run(probe="ssh", port=server.port, timeout=1.0)
    finally:
        server.close()
    assert result["status"] == status, result
    if detail:
        assert result["details"]["software"] == detail


def test_ssh_silent_server_times_out(silent_server: ThreadedServer) -> None:
    result = run(probe="ssh", port=silent_server.port, timeout=0.3)
    assert result["status"] == "timeout"
    assert result["latency_ms"] >= 250


# --- smtp -----------------------------------------------------------------------------


def test_smtp_plain_reports_starttls_offered(smtp_servers: SmtpServers) -> None:
    result = run(probe="smtp", port=smtp_servers.starttls.port, ehlo_name="probe.example.org")
    assert result["status"] == "ok", result
    assert result["details"]["starttls_offered"] is True
    assert result["details"]["banner"] == "mail.example.org ESMTP test"
    assert "PIPELINING" in result["details"]["extensions"]
    assert "tls_version" not in result["details"]


def test_smtp_starttls(pki: Pki, smtp_servers: SmtpServers) -> None:
    result = run(
        probe="smtp",
        port=smtp_servers.starttls.port,
        starttls=True,
        ca_path=pki.ca_file,
        tls_server_name="mail.example.org",
    )
    assert result["status"] == "ok", result
    assert result["details"]["tls_version"] == "TLSv1.3"
    assert "DNS:mail.example.org" in result["details"]["san"]


def test_smtp_starttls_name_mismatch(pki: Pki, smtp_servers: SmtpServers) -> None:
    result = run(
        probe="smtp",
        port=smtp_servers.starttls.port,
        starttls=True,
        ca_path=pki.ca_file,
        tls_server_name="relay.example.org",
    )
    assert result["status"] == "tls_error"


def test_smtp_starttls_not_offered(smtp_servers: SmtpServers) -> None:
    result = run(probe="smtp", port=smtp_servers.plain.port, starttls=True)
    assert result["status"] == "protocol_error"
    assert result["details"]["starttls_offered"] is False
    assert "not offered" in result["message"]


def test_smtp_rejecting_greeting(smtp_servers: SmtpServers) -> None:
    result = run(probe="smtp", port=smtp_servers.rejecting.port)
    assert result["status"] == "protocol_error"
    assert "554" in result["message"]


def test_smtp_starttls_expiring(pki: Pki, smtp_servers: SmtpServers) -> None:
    result = run(
        probe="smtp",
        port=smtp_servers.expiring.port,
        starttls=True,
        ca_path=pki.ca_file,
        tls_server_name="mail.example.org",
        expiry_warn_days=14,
    )
    assert result["status"] == "cert_expiring"
    assert result["details"]["days_until_expiry"] == 3


def test_smtp_against_ssh_server(ssh_server: ThreadedServer) -> None:
    assert run(probe="smtp", port=ssh_server.port)["status"] == "protocol_error"


# --- sip2 -----------------------------------------------------------------------------


def test_sip2_status_without_login(sip2_server: Sip2Server) -> None:
    result = run(probe="sip2", port=sip2_server.server_address[1])
    assert result["status"] == "ok", result
    assert result["details"]["online"] is True
    assert result["details"]["institution_id"] == "EXAMPLE"
    assert result["details"]["protocol_version"] == "2.00"
    assert result["details"]["tls"] is False
    assert "login_ok" not in result["details"]


def test_sip2_login_ok(sip2_server: Sip2Server) -> None:
    result = run(
        probe="sip2",
        port=sip2_server.server_address[1],
        sip2_login_user=SIP2_LOGIN[0],
        sip2_login_password=SIP2_LOGIN[1],
        sip2_location="MAIN",
        sip2_institution="EXAMPLE",
    )
    assert result["status"] == "ok", result
    assert result["details"]["login_ok"] is True


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sip2_login_user": "sc01", "sip2_login_password": "wrong"}, "login (93) refused"),
        ({"sip2_institution": "OTHER"}, "institution is 'EXAMPLE'"),
    ],
)
def test_sip2_failures(sip2_server: Sip2Server, options: dict, message: str) -> None:
    result = run(probe="sip2", port=sip2_server.server_address[1], **options)
    assert result["status"] == "protocol_error"
    assert message in result["message"]


def test_sip2_bad_checksum(sip2_bad_checksum_server: Sip2Server) -> None:
    result = run(probe="sip2", port=sip2_bad_checksum_server.server_address[1])
    assert result["status"] == "protocol_error"
    assert "checksum" in result["message"]
    assert result["details"]["last_response"].startswith("98")


def test_sip2_over_tls(pki: Pki, sip2_tls_server: Sip2Server) -> None:
    result = run(
        probe="sip2",
        port=sip2_tls_server.server_address[1],
        ca_path=pki.ca_file,
        tls_server_name=SERVER_NAME,
        sip2_login_user=SIP2_LOGIN[0],
        sip2_login_password=SIP2_LOGIN[1],
    )
    assert result["status"] == "ok", result
    assert result["details"]["tls"] is True
    assert result["details"]["tls_version"] == "TLSv1.3"
    assert result["details"]["login_ok"] is True


def test_sip2_plain_against_tls_server(sip2_tls_server: Sip2Server) -> None:
    result = run(probe="sip2", port=sip2_tls_server.server_address[1], timeout=1.0)
    assert result["status"] in ("protocol_error", "timeout")
    assert result["ok"] is False


def test_sip2_against_ssh_banner(ssh_server: ThreadedServer) -> None:
    # The SSH server talks first and never sends CR-terminated SIP2; it is not an ACS.
    result = run(probe="sip2", port=ssh_server.port, timeout=1.0)
    assert result["status"] == "protocol_error", result


def test_sip2_silent_server(silent_server: ThreadedServer) -> None:
    assert run(probe="sip2", port=silent_server.port, timeout=0.3)["status"] == "timeout"


# --- listen ---------------------------------------------------------------------------


@contextlib.contextmanager
def port_alone(listen_on: Optional[str] = None) -> Iterator[int]:
    """A port number that, while held, only ``listen_on`` listens on (nobody when None).

    /proc/net/tcp{,6} is the whole machine's: a parallel test (or anything else) listening on the
    same number in the other address family would turn an expected "not_listening" into "ok".
    A HeldPort on a family's wildcard address keeps everyone from listening there on that port;
    when someone already does, take another number.
    """
    for _attempt in range(50):
        with contextlib.ExitStack() as held:
            try:
                if listen_on is None:
                    port = held.enter_context(HeldPort("0.0.0.0")).port  # noqa: S104 - bound, never listening
                    other_wildcard = "::"
                else:
                    family = socket.AF_INET6 if ":" in listen_on else socket.AF_INET
                    listener = held.enter_context(contextlib.closing(socket.socket(family, socket.SOCK_STREAM)))
                    listener.bind((listen_on, 0))
                    listener.listen(1)
                    port = listener.getsockname()[1]
                    other_wildcard = "0.0.0.0" if family == socket.AF_INET6 else "::"  # noqa: S104
                held.enter_context(HeldPort(other_wildcard, port))
            except OSError:
                continue
            yield port
            return
    raise RuntimeError("no port free in both address families after 50 tries")


def test_listen_found() -> None:
    with port_alone(LOOPBACK) as port:
        result = run(probe="listen", host=None, port=port, listen_address="127.0.0.1")
    assert result["status"] == "ok"
    assert "127.0.0.1" in result["details"]["listeners"]


def test_listen_any_address() -> None:
    with port_alone(LOOPBACK) as port:
        assert run(probe="listen", host=None, port=port)["status"] == "ok"


def test_listen_wrong_address() -> None:
    with port_alone(LOOPBACK) as port:
        result = run(probe="listen", host=None, port=port, listen_address="::1")
    assert result["status"] == "not_listening"
    assert result["details"]["listeners"] == ["127.0.0.1"]


def test_listen_ipv6() -> None:
    with port_alone("::1") as port:
        assert run(probe="listen", host="::1", port=port)["status"] == "ok"
        assert run(probe="listen", port=port, listen_address="127.0.0.1")["status"] == "not_listening"


def test_listen_wildcard_counts() -> None:
    with port_alone("0.0.0.0") as port:  # noqa: S104 - a wildcard listener is what this test is about
        result = run(probe="listen", port=port, listen_address="127.0.0.1")
    assert result["status"] == "ok"
    assert result["details"]["listeners"] == ["0.0.0.0"]  # noqa: S104


def test_listen_nothing() -> None:
    with port_alone() as port:
        result = run(probe="listen", port=port)
    assert result["status"] == "not_listening"
    assert result["details"]["listeners"] == []


@pytest.mark.parametrize(
    ("hex_addr", "expected"),
    [
        ("0100007F", "127.0.0.1"),
        ("00000000", "0.0.0.0"),  # noqa: S104
        ("00000000000000000000000001000000", "::1"),
        ("B80D0120000000000000000001000000", "2001:db8::1"),
    ],
)
def test_proc_address(hex_addr: str, expected: str) -> None:
    assert probes._proc_address(hex_addr) == expected


def test_read_listeners_parses_files(tmp_path) -> None:
    tcp = tmp_path / "tcp"
    tcp.write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n"
        "   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n"
    )
    assert probes.read_listeners((str(tcp), str(tmp_path / "missing"))) == [("127.0.0.1", 8080)]


# --- classification and runner --------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ConnectionRefusedError(111, "refused"), "refused"),
        (socket.timeout("timed out"), "timeout"),
        (TimeoutError(), "timeout"),
        (socket.gaierror(-2, "Name or service not known"), "dns_error"),
        (ssl.SSLError(1, "handshake failure"), "tls_error"),
        (ConnectionResetError(104, "reset"), "protocol_error"),
        (OSError(113, "No route to host"), "error"),
        (RuntimeError("boom"), "error"),
        (probes.ProbeError("cert_expiring", "soon"), "cert_expiring"),
    ],
)
def test_classify(exc: BaseException, status: str) -> None:
    assert probes.classify(exc)[0] == status


def test_probe_exception_becomes_status(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(_ep: dict, _budget: probes.Budget) -> None:
        raise KeyError("surprise")

    monkeypatch.setitem(probes.PROBE_FUNCTIONS, "tcp", explode)
    result = run(port=1)
    assert result["status"] == "error"


def test_run_checks_order_and_mix(ssh_server: ThreadedServer, sip2_server: Sip2Server, closed_port: int) -> None:
    endpoints = [
        ep(name="a", port=ssh_server.port, probe="ssh"),
        ep(name="b", port=closed_port, required=False),
        ep(name="c", port=sip2_server.server_address[1], probe="sip2"),
        ep(name="d", port=closed_port),
    ]
    results = probes.run_checks(endpoints, workers=2, deadline=10)
    assert [r["name"] for r in results] == ["a", "b", "c", "d"]
    assert [r["status"] for r in results] == ["ok", "refused", "ok", "refused"]
    assert [r["required"] for r in results] == [True, False, True, True]
    summary = probes.summarize(results)
    assert summary["ok"] == 2
    assert summary["refused"] == 2
    assert summary["total"] == 4
    assert summary["failed_required"] == 1
    assert set(results[0]) == {
        "name",
        "host",
        "port",
        "probe",
        "required",
        "status",
        "ok",
        "latency_ms",
        "details",
        "message",
    }


def test_run_checks_empty() -> None:
    assert probes.run_checks([], workers=4, deadline=1) == []


def test_run_checks_deadline_caps_slow_endpoints(silent_server: ThreadedServer) -> None:
    endpoints = [ep(name="slow%d" % i, probe="ssh", port=silent_server.port, timeout=30) for i in range(6)]
    start = time.monotonic()
    results = probes.run_checks(endpoints, workers=2, deadline=0.5)
    elapsed = time.monotonic() - start
    assert elapsed < 5
    assert [r["status"] for r in results] == ["timeout"] * 6


@pytest.mark.nft
def test_run_checks_parallel_unanswered(unanswered_ports: list[int], ssh_server: ThreadedServer) -> None:
    endpoints = [ep(name="u%d" % i, port=unanswered_ports[i % 2], timeout=1.0) for i in range(20)]
    endpoints.append(ep(name="open", port=ssh_server.port))
    start = time.monotonic()
    results = probes.run_checks(endpoints, workers=32, deadline=10)
    elapsed = time.monotonic() - start
    assert [r["status"] for r in results[:20]] == ["timeout"] * 20
    assert results[20]["status"] == "ok"
    # Concurrency, not speed: in series the 20 one-second timeouts would take at least 20 s.
    assert elapsed < 15


# --- spf --------------------------------------------------------------------------------

SPF_ZONE = {
    "_spf.vendor.example.org": ["v=spf1 ip4:192.0.2.0/28 include:_spf2.vendor.example.org ~all"],
    "_spf2.vendor.example.org": ["v=spf1 ip4:198.51.100.7 ip6:2001:db8:5::/48 -all"],
}
SPF_ALLOWED = ["192.0.2.0/28", "198.51.100.7/32", "2001:db8:5::/48"]


def run_spf(zone: dict[str, list[str]], allowed: list[str], **kwargs: Any) -> tuple[dict[str, Any], list[str]]:
    """The spf probe against a FakeDns serving zone: (the result, the names the DNS was asked)."""
    dns = FakeDns(zone)
    try:
        endpoint = ep(probe="spf", port=dns.port, spf_domain="_spf.vendor.example.org", spf_allowed=allowed)
        return probes.run_probe(dict(endpoint, **kwargs)), dns.queries
    finally:
        dns.close()


def test_spf_matching_allowlist_is_ok() -> None:
    result, queries = run_spf(SPF_ZONE, SPF_ALLOWED)
    assert result["status"] == "ok", result
    assert result["message"] == "the allowlist matches the 3 networks of _spf.vendor.example.org"
    assert result["details"]["published"] == ["192.0.2.0/28", "198.51.100.7/32", "2001:db8:5::/48"]
    assert result["details"]["dns_server"] == "%s:%d" % (LOOPBACK, result["port"])
    assert queries == ["_spf.vendor.example.org", "_spf2.vendor.example.org"]


def test_spf_difference_is_a_mismatch_naming_both_sides() -> None:
    result, _queries = run_spf(SPF_ZONE, ["192.0.2.0/28", "198.51.100.8/32", "2001:db8:5::/48"])
    assert result["status"] == "mismatch"
    assert not result["ok"]
    assert result["details"]["missing"] == ["198.51.100.7/32"]
    assert result["details"]["extra"] == ["198.51.100.8/32"]
    assert result["message"] == (
        "_spf.vendor.example.org lets 198.51.100.7/32 send, not in the allowlist; "
        "the allowlist has 198.51.100.8/32, no longer in _spf.vendor.example.org"
    )


def test_spf_record_that_cannot_be_read_is_a_dns_error() -> None:
    result, _queries = run_spf({}, SPF_ALLOWED)
    assert result["status"] == "dns_error"
    assert result["message"] == (
        "cannot read the SPF record of _spf.vendor.example.org: _spf.vendor.example.org does not exist (NXDOMAIN)"
    )


def test_spf_asks_the_host_resolver_without_a_host(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver %s\n" % LOOPBACK)
    monkeypatch.setattr(spf, "RESOLV_CONF", str(resolv))
    result, queries = run_spf(SPF_ZONE, SPF_ALLOWED, host=None)
    assert result["status"] == "ok", result
    assert queries[0] == "_spf.vendor.example.org"


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"name": "x", "port": 22}, "endpoint 'x' (#0): host is required for probe tcp"),
        ({"name": "x", "host": "h", "port": 0}, "port 0 is outside 1-65535"),
        ({"name": "x", "host": "h", "port": 65536}, "port 65536 is outside 1-65535"),
        ({"name": "x", "host": "h", "port": 1, "probe": "telnet"}, "unknown probe 'telnet'"),
        (
            {"name": "x", "host": "h", "port": 1, "ca_path": "/nonexistent/ca.pem"},
            "ca_path /nonexistent/ca.pem is missing",
        ),
        (
            {
                "name": "x",
                "host": "h",
                "port": 1,
                "client_key_path": "/etc/hostname",
                "client_cert_path": "/etc/hostname",
            },
            None,
        ),
        ({"name": "x", "host": "h", "port": 1, "client_key_path": "/etc/hostname"}, "without client_cert_path"),
        ({"name": "x", "host": "h", "port": 1, "timeout": 0}, "timeout must be a positive number"),
        ({"name": "x", "port": 1, "probe": "listen", "listen_address": "localhost"}, "is not an IP address"),
        ({"name": "x", "port": 1, "probe": "listen"}, None),
        ({"host": "h", "port": 1}, "endpoint #0: name is required"),
        ({"name": "x", "port": 53, "probe": "spf", "spf_allowed": ["192.0.2.0/24"]}, "spf_domain is required"),
        ({"name": "x", "port": 53, "probe": "spf", "spf_domain": "d.example"}, "spf_allowed (the allowlist"),
        (
            {"name": "x", "port": 53, "probe": "spf", "spf_domain": "d.example", "spf_allowed": ["192.0.2.0/33"]},
            "spf_allowed entry '192.0.2.0/33' is not an IP network",
        ),
        ({"name": "x", "port": 53, "probe": "spf", "spf_domain": "d.example", "spf_allowed": ["192.0.2.1"]}, None),
    ],
)
def test_validate_single_entry(entry: dict, fragment: str) -> None:
    errors = probes.validate_endpoints([entry])
    if fragment is None:
        assert errors == []
    else:
        assert any(fragment in e for e in errors), errors


def test_validate_duplicates_and_unreadable(tmp_path) -> None:
    unreadable = tmp_path / "key.pem"
    unreadable.write_text("x")
    unreadable.chmod(0)
    errors = probes.validate_endpoints(
        [
            {"name": "a", "host": "h", "port": 1},
            {"name": "b", "host": "h", "port": 1},
            {"name": "a", "host": "h", "port": 2},
            {"name": "c", "host": "h", "port": 2, "client_cert_path": str(tmp_path)},
        ]
    )
    assert "endpoint 'a' (#2): duplicate name, also used by entry #0" in errors
    assert any("endpoint 'c' (#3): client_cert_path" in e and "is not a file" in e for e in errors)
    assert len(errors) == 2
