# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real servers on loopback for the probe and module tests (fixtures re-exported by conftest.py).

Everything listens on 127.0.0.1 or ::1 only. "Unanswered" ports are made with an nftables
drop rule on the loopback interface, in a table this session creates and deletes.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Callable, Optional

import pytest
import trustme

from ansible_collections.libsys.onprem.plugins.module_utils import sip2

LOOPBACK = "127.0.0.1"
SERVER_NAME = "acs.example.org"
# The fake ACS accepts this SIP2 login (user, password).
SIP2_LOGIN = ("sc01", "s3cret")


class ThreadedServer:
    """Accepts on loopback and runs ``handler(conn)`` in a thread per connection."""

    def __init__(self, handler: Callable[[socket.socket], None], host: str = LOOPBACK) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            self.handler(conn)
        except (OSError, ValueError) as exc:  # clients hang up at will; keep what happened for debugging
            self.errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def drain(conn: socket.socket) -> None:
    """Read until the client hangs up (lets a TLS 1.3 server send its alerts)."""
    while conn.recv(4096):
        pass


def tls_handler(context: ssl.SSLContext) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        try:
            tls = context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            drain(tls)
        except (ssl.SSLError, OSError):
            pass
        finally:
            tls.close()

    return handle


@dataclass
class Pki:
    ca: trustme.CA
    other_ca: trustme.CA
    ca_file: str
    other_ca_file: str
    client_cert_file: str
    client_key_file: str
    tmp: str


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    tmp = tmp_path_factory.mktemp("pki")
    ca, other = trustme.CA(), trustme.CA()
    ca_file, other_file = tmp / "ca.pem", tmp / "other-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    other.cert_pem.write_to_path(str(other_file))
    client = ca.issue_cert("sc01.example.edu", common_name="sc01.example.edu")
    client_cert, client_key = tmp / "client.pem", tmp / "client.key"
    for blob in client.cert_chain_pems:
        blob.write_to_path(str(client_cert), append=True)
    client.private_key_pem.write_to_path(str(client_key))
    os.chmod(client_key, 0o600)
    return Pki(ca, other, str(ca_file), str(other_file), str(client_cert), str(client_key), str(tmp))


def server_context(
    ca: trustme.CA,
    *names: str,
    days: Optional[float] = 365,
    expired: bool = False,
    max_version: Optional[ssl.TLSVersion] = None,
    client_ca: Optional[trustme.CA] = None,
) -> ssl.SSLContext:
    now = datetime.datetime.now(datetime.timezone.utc)
    if expired:
        leaf = ca.issue_cert(
            *names, not_before=now - datetime.timedelta(days=30), not_after=now - datetime.timedelta(days=1)
        )
    else:
        leaf = ca.issue_cert(
            *names,
            not_before=now - datetime.timedelta(days=1),
            not_after=now + datetime.timedelta(days=days or 365, hours=1),
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(ctx)
    if max_version is not None:
        ctx.maximum_version = max_version
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        client_ca.configure_trust(ctx)
    return ctx


@dataclass
class TlsServers:
    good: ThreadedServer
    good_tls12: ThreadedServer
    expired: ThreadedServer
    expiring: ThreadedServer
    wrong_ca: ThreadedServer
    wrong_name: ThreadedServer
    client_auth: ThreadedServer
    client_auth_tls12: ThreadedServer


@pytest.fixture(scope="session")
def tls_servers(pki: Pki) -> Iterator[TlsServers]:
    names = (SERVER_NAME, LOOPBACK)
    servers = TlsServers(
        good=ThreadedServer(tls_handler(server_context(pki.ca, *names))),
        good_tls12=ThreadedServer(tls_handler(server_context(pki.ca, *names, max_version=ssl.TLSVersion.TLSv1_2))),
        expired=ThreadedServer(tls_handler(server_context(pki.ca, *names, expired=True))),
        expiring=ThreadedServer(tls_handler(server_context(pki.ca, *names, days=5))),
        wrong_ca=ThreadedServer(tls_handler(server_context(pki.other_ca, *names))),
        wrong_name=ThreadedServer(tls_handler(server_context(pki.ca, "other.example.org"))),
        client_auth=ThreadedServer(tls_handler(server_context(pki.ca, *names, client_ca=pki.ca))),
        client_auth_tls12=ThreadedServer(
            tls_handler(server_context(pki.ca, *names, client_ca=pki.ca, max_version=ssl.TLSVersion.TLSv1_2))
        ),
    )
    yield servers
    for server in vars(servers).values():
        server.close()


def _read_line(conn: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            return buf
        buf += chunk
    return buf


def smtp_handler(
    tls_context: Optional[ssl.SSLContext],
    greeting: bytes = b"220 mail.example.org ESMTP test\r\n",
    offer_starttls: bool = True,
) -> Callable[[socket.socket], None]:
    """A minimal SMTP server: greeting, EHLO, STARTTLS, QUIT."""

    def handle(conn: socket.socket) -> None:
        conn.sendall(greeting)
        secure = False
        while True:
            line = _read_line(conn)
            if not line:
                return
            verb = line.strip().split(b" ", 1)[0].upper()
            if verb in (b"EHLO", b"HELO"):
                ext = [b"250-mail.example.org", b"250-PIPELINING", b"250-SIZE 10240000"]
                if offer_starttls and not secure and tls_context is not None:
                    ext.append(b"250-STARTTLS")
                ext.append(b"250 8BITMIME")
                conn.sendall(b"\r\n".join(ext) + b"\r\n")
            elif verb == b"STARTTLS" and tls_context is not None and not secure:
                conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                conn = tls_context.wrap_socket(conn, server_side=True)
                secure = True
            elif verb == b"QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                conn.sendall(b"502 5.5.2 Error: command not recognized\r\n")

    return handle


@dataclass
class SmtpServers:
    starttls: ThreadedServer
    plain: ThreadedServer
    rejecting: ThreadedServer
    expiring: ThreadedServer


@pytest.fixture(scope="session")
def smtp_servers(pki: Pki) -> Iterator[SmtpServers]:
    ctx = server_context(pki.ca, "mail.example.org", LOOPBACK)
    servers = SmtpServers(
        starttls=ThreadedServer(smtp_handler(ctx)),
        plain=ThreadedServer(smtp_handler(None)),
        rejecting=ThreadedServer(smtp_handler(ctx, greeting=b"554-mail.example.org\r\n554 No SMTP service here\r\n")),
        expiring=ThreadedServer(smtp_handler(server_context(pki.ca, "mail.example.org", days=3))),
    )
    yield servers
    for server in vars(servers).values():
        server.close()


def banner_handler(data: bytes) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        conn.sendall(data)
        drain(conn)

    return handle


@pytest.fixture(scope="session")
def ssh_server() -> Iterator[ThreadedServer]:
    server = ThreadedServer(banner_handler(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"))
    yield server
    server.close()


@pytest.fixture(scope="session")
def silent_server() -> Iterator[ThreadedServer]:
    """Accepts and never says a word (an application that hangs)."""
    server = ThreadedServer(drain)
    yield server
    server.close()


@pytest.fixture(scope="session")
def sip2_server() -> Iterator[sip2.Sip2Server]:
    with sip2.Sip2Server((LOOPBACK, 0), users=dict([SIP2_LOGIN]), institution="EXAMPLE") as server:
        yield server


@pytest.fixture(scope="session")
def sip2_tls_server(pki: Pki) -> Iterator[sip2.Sip2Server]:
    ctx = server_context(pki.ca, SERVER_NAME, LOOPBACK)
    with sip2.Sip2Server((LOOPBACK, 0), ssl_context=ctx, users=dict([SIP2_LOGIN])) as server:
        yield server


@pytest.fixture(scope="session")
def sip2_bad_checksum_server() -> Iterator[sip2.Sip2Server]:
    with sip2.Sip2Server((LOOPBACK, 0), corrupt_checksum=True) as server:
        yield server


class HeldPort:
    """A loopback port that is bound but never listened on, for as long as it is held.

    Connecting to it is refused (RST). Binding it without SO_REUSEADDR keeps the kernel from
    giving the same port to another server of the run (the unit tests run in parallel
    workers): a port that was only bound and released could be handed to, say, a SIP2 server
    that a drop rule for "unanswered" ports would then silence."""

    def __init__(self, host: str = LOOPBACK, port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if family == socket.AF_INET6:
                # "::" holds the IPv6 port only, never the IPv4 one of the same number.
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        self.port: int = self.sock.getsockname()[1]

    def __enter__(self) -> HeldPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    with HeldPort() as held:
        yield held.port


def nft_available() -> Optional[str]:
    """None when the nftables drop rule can be made, else the reason why not."""
    if os.geteuid() != 0:
        return "needs root to add an nftables drop rule on loopback"
    if shutil.which("nft") is None:
        return "needs the nft command (Debian package nftables)"
    return None


DROP_TABLE_PREFIX = "libsys_onprem_test_"


class DropRule:
    """An nftables table with a rule that silently drops TCP to the given ports on loopback."""

    def __init__(self, ports: list[int], table: str) -> None:
        self.ports = ports
        self.table = table

    def __enter__(self) -> DropRule:
        ports = ", ".join(str(p) for p in self.ports)
        script = (
            "table inet %s {\n"
            "  chain input {\n"
            "    type filter hook input priority -10; policy accept;\n"
            '    iif "lo" tcp dport { %s } drop\n'
            "  }\n"
            "}\n" % (self.table, ports)
        )
        subprocess.run(["nft", "-f", "-"], input=script.encode(), check=True, capture_output=True)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["nft", "delete", "table", "inet", self.table], check=False, capture_output=True)


def delete_stale_drop_rules() -> None:
    """Delete the drop-rule tables of test processes that are gone. A forked test runner
    (ansible-test units uses pytest-forked) ends each test's process with os._exit, so a rule
    left behind there would silence whatever server later gets one of its ports."""
    listing = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False).stdout
    for pid in re.findall(r"^table inet %s(\d+)$" % DROP_TABLE_PREFIX, listing, re.MULTILINE):
        if not os.path.exists("/proc/%s" % pid):
            table = DROP_TABLE_PREFIX + pid
            subprocess.run(["nft", "delete", "table", "inet", table], check=False, capture_output=True)


# Function scope: the rule is made and removed in the process that runs the test, also under
# a forked runner, where session-scoped teardown never runs in the child.
@pytest.fixture
def unanswered_ports() -> Iterator[list[int]]:
    """Two loopback ports whose SYNs are dropped, so a connect times out."""
    reason = nft_available()
    if reason:
        pytest.skip(reason)
    delete_stale_drop_rules()
    with HeldPort() as first, HeldPort() as second:
        ports = [first.port, second.port]
        try:
            rule = DropRule(ports, DROP_TABLE_PREFIX + str(os.getpid())).__enter__()
        except subprocess.CalledProcessError as exc:
            pytest.skip("nft refused the drop rule: %s" % exc.stderr.decode(errors="replace").strip())
        try:
            yield ports
        finally:
            rule.__exit__(None, None, None)


# ---------------------------------------------------------------------------------------
# DNS: TXT records on loopback (UDP, and TCP for answers it cuts)


class FakeDns:
    """Answers TXT queries from `zone` (name -> records) over UDP and TCP on 127.0.0.1; unknown
    names get NXDOMAIN. With `truncate`, every UDP answer is cut (TC) and TCP gives it whole."""

    def __init__(self, zone: dict[str, list[str]], truncate: bool = False) -> None:
        self.zone, self.truncate, self.queries = zone, truncate, []
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((LOOPBACK, 0))
        self.port = self.udp.getsockname()[1]
        self.tcp_socket = socket.create_server((LOOPBACK, self.port))
        threading.Thread(target=self.serve_udp, daemon=True).start()
        threading.Thread(target=self.serve_tcp, daemon=True).start()

    def answer(self, query: bytes, cut: bool) -> bytes:
        ident = struct.unpack("!H", query[:2])[0]
        labels, offset = [], 12
        while query[offset]:
            labels.append(query[offset + 1 : offset + 1 + query[offset]].decode())
            offset += 1 + query[offset]
        name, question = ".".join(labels), query[12 : offset + 5]
        self.queries.append(name)
        records = self.zone.get(name)
        flags = 0x8180 | (3 if records is None else 0) | (0x0200 if cut else 0)
        answers = b""
        for record in [] if cut else records or []:
            data = record.encode()
            rdata = b"".join(bytes([len(data[i : i + 255])]) + data[i : i + 255] for i in range(0, len(data), 255))
            answers += struct.pack("!HHHIH", 0xC00C, 16, 1, 60, len(rdata)) + rdata
        count = 0 if cut else len(records or [])
        return struct.pack("!HHHHHH", ident, flags, 1, count, 0, 0) + question + answers

    def serve_udp(self) -> None:
        while True:
            try:
                query, peer = self.udp.recvfrom(4096)
            except OSError:
                return
            self.udp.sendto(self.answer(query, self.truncate), peer)

    def serve_tcp(self) -> None:
        while True:
            try:
                conn, _peer = self.tcp_socket.accept()
            except OSError:
                return
            with conn:
                size = struct.unpack("!H", conn.recv(2))[0]
                reply = self.answer(conn.recv(size), False)
                conn.sendall(struct.pack("!H", len(reply)) + reply)

    def close(self) -> None:
        self.udp.close()
        self.tcp_socket.close()
