# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Protocol-aware reachability probes for ``libsys.onprem.port_check`` (standard library only).

Each probe takes an endpoint dict (the module's suboptions) and a ``Budget`` (the time left
for this endpoint) and returns ``(status, details, message)``. Probes raise freely; the
runner turns every exception into one of the statuses below, so a check never crashes on a
network error.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import errno
import ipaddress
import os
import selectors
import socket
import ssl
import time
from typing import Any, Callable, Optional

from ansible_collections.libsys.onprem.plugins.module_utils import sip2, spf

STATUSES = (
    "ok",
    "refused",
    "timeout",
    "dns_error",
    "tls_error",
    "cert_expiring",
    "protocol_error",
    "not_listening",
    "mismatch",
    "error",
)
TLS_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
PROBES = ("tcp", "tls", "ssh", "smtp", "ldaps", "sip2", "listen", "spf")
# Time allowed after a TLS 1.3 handshake for the server to reject our (missing) client certificate:
# with TLS 1.3 the client finishes the handshake before the server has judged its certificate.
POST_HANDSHAKE_WAIT = 0.2
MAX_LINE = 4096


class ProbeError(Exception):
    """A failure with a known status (protocol_error, tls_error, cert_expiring, ...)."""

    def __init__(self, status: str, message: str, details: Optional[dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.details = details or {}


class Budget:
    """Time left for one endpoint; every blocking step asks it for its timeout."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + max(seconds, 0.0)

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        return left


# ---------------------------------------------------------------------------------------
# Building blocks


def connect(host: str, port: int, budget: Budget) -> socket.socket:
    """Non-blocking connect to each resolved address in turn until one answers."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    last_error: Optional[BaseException] = None
    for family, socktype, proto, _canon, address in infos:
        sock = socket.socket(family, socktype, proto)
        try:
            sock.setblocking(False)
            code = sock.connect_ex(address)
            if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
                raise OSError(code, os.strerror(code))
            if code != 0:
                with selectors.DefaultSelector() as sel:
                    sel.register(sock, selectors.EVENT_WRITE)
                    if not sel.select(budget.remaining()):
                        raise socket.timeout("connect timed out")
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise OSError(code, os.strerror(code))
            sock.settimeout(budget.remaining())
            return sock
        except OSError as exc:  # includes socket.timeout
            sock.close()
            last_error = exc
            if isinstance(exc, socket.timeout):
                break
    if last_error is None:
        raise socket.gaierror(socket.EAI_NONAME, "no address for %s" % host)
    raise last_error


def read_line(sock: socket.socket, budget: Budget, terminator: bytes = b"\n") -> bytes:
    buf = bytearray()
    while not buf.endswith(terminator):
        sock.settimeout(budget.remaining())
        chunk = sock.recv(1)
        if not chunk:
            raise ProbeError(
                "protocol_error", "connection closed by the server", {"received": bytes(buf).decode("utf-8", "replace")}
            )
        buf += chunk
        if len(buf) > MAX_LINE:
            raise ProbeError("protocol_error", "line longer than %d bytes" % MAX_LINE)
    return bytes(buf)


def tls_context(ep: dict[str, Any]) -> ssl.SSLContext:
    """Client context: always verifies the chain; ``check_hostname`` only toggles the name check."""
    ca_path = ep.get("ca_path")
    if ca_path and os.path.isdir(ca_path):
        ctx = ssl.create_default_context(capath=ca_path)
    elif ca_path:
        ctx = ssl.create_default_context(cafile=ca_path)
    else:
        ctx = ssl.create_default_context()
    ctx.check_hostname = bool(ep.get("check_hostname", True))
    ctx.minimum_version = TLS_VERSIONS[ep.get("min_tls_version") or "TLSv1.2"]
    if ep.get("client_cert_path"):
        load_client_certificate(ctx, ep)
    return ctx


def load_client_certificate(ctx: ssl.SSLContext, ep: dict[str, Any]) -> None:
    """Load the client certificate and its key. The key's passphrase comes from
    ``client_key_passphrase`` only: without a password callback OpenSSL would ask for it on the
    controlling terminal and wait there."""
    passphrase = ep.get("client_key_passphrase") or ""
    try:
        ctx.load_cert_chain(ep["client_cert_path"], ep.get("client_key_path") or None, password=lambda: passphrase)
    except ssl.SSLError as exc:
        key = ep.get("client_key_path") or ep["client_cert_path"]
        if key_is_encrypted(key):
            reason = "does not decrypt it" if passphrase else "is not set"
            message = "client key %s is encrypted and client_key_passphrase %s" % (key, reason)
            raise ProbeError("error", message) from exc
        raise ProbeError("error", "cannot load the client certificate or key: %s" % exc) from exc


def key_is_encrypted(path: str) -> bool:
    """Whether a PEM file holds an encrypted private key (PKCS#8 or the traditional format)."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(1 << 20)
    except OSError:
        return False
    return b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in text or b"Proc-Type: 4,ENCRYPTED" in text


def tls_wrap(sock: socket.socket, ep: dict[str, Any], budget: Budget) -> tuple[ssl.SSLSocket, dict[str, Any]]:
    """Handshake on a connected socket and describe the session and the server certificate."""
    server_name = ep.get("tls_server_name") or ep.get("host")
    ctx = tls_context(ep)
    sock.settimeout(budget.remaining())
    tls = ctx.wrap_socket(sock, server_hostname=server_name)
    version = tls.version()
    if version == "TLSv1.3":
        _wait_for_alert(tls, budget)
    details = describe_session(tls)
    return tls, details


def _wait_for_alert(tls: ssl.SSLSocket, budget: Budget) -> None:
    """Give a TLS 1.3 server a moment to reject our client certificate (it does so after the handshake)."""
    with contextlib.suppress(socket.timeout, ssl.SSLWantReadError):
        tls.settimeout(min(POST_HANDSHAKE_WAIT, budget.remaining()))
        tls.recv(1)
    with contextlib.suppress(socket.timeout):
        tls.settimeout(budget.remaining())


def _name_string(rdns: Any) -> str:
    return ", ".join("%s=%s" % (k, v) for rdn in rdns or () for k, v in rdn)


def describe_session(tls: ssl.SSLSocket) -> dict[str, Any]:
    cert = tls.getpeercert() or {}
    cipher = tls.cipher()
    details: dict[str, Any] = {
        "tls_version": tls.version(),
        "cipher": cipher[0] if cipher else None,
        "peer_subject": _name_string(cert.get("subject")),
        "peer_issuer": _name_string(cert.get("issuer")),
        "san": ["%s:%s" % (kind, value) for kind, value in cert.get("subjectAltName", ())],
        "not_after": None,
        "days_until_expiry": None,
    }
    if cert.get("notAfter"):
        expires = ssl.cert_time_to_seconds(cert["notAfter"])
        details["not_after"] = datetime.datetime.fromtimestamp(expires, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        details["days_until_expiry"] = int((expires - time.time()) // 86400)
    return details


def check_expiry(details: dict[str, Any], ep: dict[str, Any]) -> None:
    days = details.get("days_until_expiry")
    warn = int(ep.get("expiry_warn_days", 14) if ep.get("expiry_warn_days") is not None else 14)
    if days is not None and days < warn:
        raise ProbeError(
            "cert_expiring",
            "certificate expires in %d days (%s), threshold %d days" % (days, details.get("not_after"), warn),
            details,
        )


def _close(sock: Optional[socket.socket]) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


# ---------------------------------------------------------------------------------------
# Probes


def probe_tcp(ep: dict[str, Any], budget: Budget) -> tuple[str, dict[str, Any], str]:
    sock = connect(ep["host"], ep["port"], budget)
    try:
        peer = sock.getpeername()
        return "ok", {"peer_address": peer[0]}, "TCP connection accepted"
    finally:
        _close(sock)


def probe_tls(ep: dict[str, Any], budget: Budget) -> tuple[str, dict[str, Any], str]:
    sock = connect(ep["host"], ep["port"], budget)
    try:
        tls, details = tls_wrap(sock, ep, budget)
        sock = tls
        check_expiry(details, ep)
        return (
            "ok",
            details,
            "%s handshake ok, certificate valid for %s more days"
            % (details["tls_version"], details["days_until_expiry"]),
        )
    finally:
        _close(sock)


def probe_ldaps(ep: dict[str, Any], budget: Budget) -> tuple[str, dict[str, Any], str]:
    """LDAPS reachability is the TLS handshake on the port; no LDAP bind is attempted."""
    status, details, message = probe_tls(ep, budget)
    details["ldap_bind"] = "not attempted (TLS handshake only)"
    return status, details, message


def probe_ssh(ep: dict[str, Any], budget: Budget) -> tuple[str, dict[str, Any], str]:
    sock = connect(ep["host"], ep["port"], budget)
    try:
        # RFC 4253 lets a server send other lines before its identification string.
        seen: list[str] = []
        for _attempt in range(20):
            try:
                line = read_line(sock, budget).rstrip(b"\r\n").decode("utf-8", "replace")
            except socket.timeout:
                if not seen:
                    raise
                # It talked, but not SSH: another service on this port.
                raise ProbeError(
                    "protocol_error",
                    "no SSH identification string; the server sent %r" % seen[0][:80],
                    {"received": seen},
                ) from None
            if line.startswith("SSH-"):
                break
            seen.append(line)
        else:
            raise ProbeError("protocol_error", "no SSH identification string in the first 20 lines", {"received": seen})
        parts = line.split("-", 2)
        version = parts[1] if len(parts) > 1 else ""
        software = parts[2] if len(parts) > 2 else ""
        details = {"banner": line, "protocol_version": version, "software": software}
        if version not in ("2.0", "1.99"):
            raise ProbeError("protocol_error", "server speaks SSH protocol %s, not 2.0" % version, details)
        return "ok", details, "SSH banner %s" % line
    finally:
        _close(sock)


def _smtp_reply(sock: socket.socket, budget: Budget) -> tuple[int, list[str]]:
    lines = []
    while True:
        line = read_line(sock, budget).rstrip(b"\r\n").decode("utf-8", "replace")
        if len(line) < 3 or not line[:3].isdigit():
            raise ProbeError("protocol_error", "malformed SMTP reply %r" % line[:80])
        lines.append(line[4:])
        if len(line) == 3 or line[3] == " ":
            return int(line[:3]), lines


def _smtp_send(sock: socket.socket, budget: Budget, command: str) -> tuple[int, list[str]]:
    sock.settimeout(budget.remaining())
    sock.sendall(command.encode("ascii") + b"\r\n")
    return _smtp_reply(sock, budget)


def probe_smtp(ep: dict[str, Any], budget: Budget) -> tuple[str, dict[str, Any], str]:
    sock = connect(ep["host"], ep["port"], budget)
    try:
        code, lines = _smtp_reply(sock, budget)
        details: dict[str, Any] = {"banner": lines[0] if lines else ""}
        if code != 220:
            raise ProbeError("protocol_error", "SMTP greeting %d instead of 220: %s" % (code, " ".join(lines)), details)
        ehlo = ep.get("ehlo_name") or socket.gethostname() or "localhost"
        code, lines = _smtp_send(sock, budget, "EHLO %s" % ehlo)
        if code != 250:
            raise ProbeError("protocol_error", "EHLO answered %d: %s" % (code, " ".join(lines)), details)
        extensions = [line.split(" ", 1)[0].upper() for line in lines[1:]]
        details["extensions"] = extensions
        details["starttls_offered"] = "STARTTLS" in extensions
        message = "SMTP greeting and EHLO ok"
        if ep.get("starttls"):
            if not details["starttls_offered"]:
                raise ProbeError("protocol_error", "STARTTLS requested but not offered by the server", details)
            code, lines = _smtp_send(sock, budget, "STARTTLS")
            if code != 220:
                raise ProbeError("protocol_error", "STARTTLS answered %d: %s" % (code, " ".join(lines)), details)
            tls, tls_details = tls_wrap(sock, ep, budget)
            sock = tls
            details.update(tls_details)
            check_expiry(details, ep)
            code, lines = _smtp_send(sock, budget, "EHLO %s" % ehlo)
            if code != 250:
                raise ProbeError("protocol_error", "EHLO after STARTTLS answered %d" % code, details)
            message = "SMTP STARTTLS ok (%s), certificate valid for %s more days" % (
                details["tls_version"],
                details["days_until_expiry"],
            )
        with contextlib.suppress(OSError, ProbeError):
            _smtp_send(sock, budget, "QUIT")
        return "ok", details, message
    finally:
        _close(sock)


def _sip2_exchange(sock: socket.socket, budget: Budget, request: bytes) -> bytes:
    sock.settimeout(budget.remaining())
    sock.sendall(request)
    buf = bytearray()
    while not buf.endswith(sip2.TERMINATOR):
        sock.settimeout(budget.remaining())
        chunk = sock.recv(1)
        if not chunk:
            raise ProbeError(
                "protocol_error",
                "connection closed before a complete SIP2 answer",
                {"received": bytes(buf).decode("utf-8", "replace")},
            )
        buf += chunk
        if len(buf) > MAX_LINE:
            raise ProbeError("protocol_error", "SIP2 answer longer than %d bytes" % MAX_LINE)
    return bytes(buf)


def uses_tls(ep: dict[str, Any]) -> bool:
    return bool(ep.get("tls_server_name") or ep.get("ca_path") or ep.get("client_cert_path"))


def probe_sip2(ep: dict[str, Any], budget: Budget) -> tuple[str, dict[str, Any], str]:
    sock = connect(ep["host"], ep["port"], budget)
    details: dict[str, Any] = {"tls": uses_tls(ep)}
    try:
        if details["tls"]:
            tls, tls_details = tls_wrap(sock, ep, budget)
            sock = tls
            details.update(tls_details)
            check_expiry(details, ep)
        sequence = 0
        if ep.get("sip2_login_user"):
            answer = _sip2_exchange(
                sock,
                budget,
                sip2.build_login(
                    ep["sip2_login_user"],
                    ep.get("sip2_login_password") or "",
                    ep.get("sip2_location") or "",
                    sequence=sequence,
                ),
            )
            login = _sip2_parse(answer, "94", sip2.parse_login_response, details)
            details["login_ok"] = login["ok"]
            if not login["ok"]:
                raise ProbeError("protocol_error", "SIP2 login (93) refused by the ACS", details)
            sequence += 1
        answer = _sip2_exchange(sock, budget, sip2.build_sc_status(sequence=sequence))
        status = _sip2_parse(answer, "98", sip2.parse_acs_status, details)
        if status["sequence"] is not None and status["sequence"] != sequence:
            raise ProbeError(
                "protocol_error", "98 carries sequence %s, expected %d" % (status["sequence"], sequence), details
            )
        institution = ep.get("sip2_institution")
        details.update(
            {
                k: status[k]
                for k in (
                    "online",
                    "protocol_version",
                    "institution_id",
                    "library_name",
                    "supported_messages",
                    "checkin_ok",
                    "checkout_ok",
                )
            }
        )
        if institution and status["institution_id"] != institution:
            raise ProbeError(
                "protocol_error",
                "ACS institution is %r, expected %r" % (status["institution_id"], institution),
                details,
            )
        state = "online" if status["online"] else "OFFLINE"
        return "ok", details, "SIP2 ACS status received (ACS %s, protocol %s)" % (state, status["protocol_version"])
    finally:
        _close(sock)


def _sip2_parse(
    answer: bytes, code: str, parser: Callable[[bytes], dict[str, Any]], details: dict[str, Any]
) -> dict[str, Any]:
    details["last_response"] = answer.rstrip(b"\r").decode("utf-8", "replace")[:200]
    if answer[:2] == b"96":
        raise ProbeError("protocol_error", "ACS asked to resend (96): it did not accept our message", details)
    if not sip2.verify(answer):
        raise ProbeError("protocol_error", "SIP2 %s answer has a missing or wrong checksum" % code, details)
    try:
        return parser(answer)
    except sip2.Sip2Error as exc:
        raise ProbeError("protocol_error", "bad SIP2 answer: %s" % exc, details) from exc


def read_listeners(paths: tuple[str, ...] = ("/proc/net/tcp", "/proc/net/tcp6")) -> list[tuple[str, int]]:
    """Listening TCP sockets as (address, port) from /proc/net/tcp{,6} (state 0A)."""
    found = []
    for path in paths:
        try:
            with open(path) as handle:
                lines = handle.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) < 4 or cols[3] != "0A":
                continue
            hex_addr, hex_port = cols[1].split(":")
            found.append((_proc_address(hex_addr), int(hex_port, 16)))
    return found


def _proc_address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    # The kernel prints each 32-bit word in host byte order (little-endian on the hosts we run on).
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def probe_listen(ep: dict[str, Any], budget: Budget) -> tuple[str, dict[str, Any], str]:
    want = ep.get("listen_address") or ep.get("host") or ""
    port = ep["port"]
    want_ip = ipaddress.ip_address(want) if want not in ("", "*", "any") else None
    listeners = sorted({addr for addr, lport in read_listeners() if lport == port})
    details: dict[str, Any] = {"listen_address": want or "any", "listeners": listeners}
    for addr in listeners:
        ip = ipaddress.ip_address(addr)
        if want_ip is None or ip == want_ip or (ip.is_unspecified and (ip.version == 6 or want_ip.version == 4)):
            return "ok", details, "listening on %s port %d" % (addr, port)
    return "not_listening", details, "nothing listens on %s port %d" % (want or "any address", port)


def probe_spf(ep: dict[str, Any], budget: Budget) -> tuple[str, dict[str, Any], str]:
    """The SPF record of spf_domain (includes followed) against the spf_allowed networks, asked
    of host (default: the host's own resolver) on port; read-only DNS."""
    domain = ep["spf_domain"]
    try:
        server = (ep.get("host") or spf.nameserver(), int(ep["port"]))
        found = spf.compare(domain, ep.get("spf_allowed") or [], server, budget.remaining())
    except spf.DnsError as exc:
        raise ProbeError("dns_error", "cannot read the SPF record of %s: %s" % (domain, exc)) from exc
    details = dict(found, dns_server="%s:%d" % server)
    status = "mismatch" if found["missing"] or found["extra"] else "ok"
    return status, details, spf.describe(domain, found)


PROBE_FUNCTIONS: dict[str, Callable[[dict[str, Any], Budget], tuple[str, dict[str, Any], str]]] = {
    "tcp": probe_tcp,
    "tls": probe_tls,
    "ssh": probe_ssh,
    "smtp": probe_smtp,
    "ldaps": probe_ldaps,
    "sip2": probe_sip2,
    "listen": probe_listen,
    "spf": probe_spf,
}


# ---------------------------------------------------------------------------------------
# Runner

# Checked in order: subclasses before their bases (SSLError and gaierror are OSErrors).
_EXCEPTION_STATUS: tuple[tuple[Any, str, str], ...] = (
    (ssl.SSLError, "tls_error", "TLS failure: %s"),
    (socket.gaierror, "dns_error", "name resolution failed: %s"),
    ((socket.timeout, TimeoutError), "timeout", "timed out"),
    (ConnectionRefusedError, "refused", "connection refused"),
    ((ConnectionResetError, BrokenPipeError), "protocol_error", "connection reset by the server: %s"),
    (OSError, "error", "%s"),
)


def classify(exc: BaseException) -> tuple[str, dict[str, Any], str]:
    """Map an exception to (status, details, message)."""
    if isinstance(exc, ProbeError):
        return exc.status, exc.details, str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            "tls_error",
            {"verify_code": exc.verify_code, "verify_message": exc.verify_message},
            "certificate verification failed: %s" % (exc.verify_message or exc),
        )
    for kinds, status, template in _EXCEPTION_STATUS:
        if isinstance(exc, kinds):
            details = {"errno": exc.errno} if isinstance(exc, OSError) and exc.errno is not None else {}
            message = template % exc if "%s" in template else template
            return status, details, message or exc.__class__.__name__
    return "error", {"exception": exc.__class__.__name__}, str(exc) or exc.__class__.__name__


def run_probe(ep: dict[str, Any], timeout: Optional[float] = None) -> dict[str, Any]:
    """Run one endpoint's probe; never raises."""
    start = time.monotonic()
    probe = ep.get("probe") or "tcp"
    seconds = float(ep.get("timeout") or 5.0) if timeout is None else timeout
    try:
        func = PROBE_FUNCTIONS[probe]
        status, details, message = func(ep, Budget(seconds))
    except KeyError:
        status, details, message = "error", {}, "unknown probe %r" % probe
    except Exception as exc:  # every failure must become a status
        status, details, message = classify(exc)
    return make_result(ep, status, details, message, (time.monotonic() - start) * 1000.0)


def make_result(
    ep: dict[str, Any], status: str, details: dict[str, Any], message: str, latency_ms: float
) -> dict[str, Any]:
    return {
        "name": ep.get("name"),
        "host": ep.get("host"),
        "port": ep.get("port"),
        "probe": ep.get("probe") or "tcp",
        "required": bool(ep.get("required", True)),
        "status": status,
        "ok": status == "ok",
        "latency_ms": round(latency_ms, 1),
        "details": details,
        "message": message,
    }


def run_checks(endpoints: list[dict[str, Any]], workers: int = 32, deadline: float = 30.0) -> list[dict[str, Any]]:
    """Probe all endpoints in a bounded thread pool; results in input order.

    No probe gets more time than is left of the overall ``deadline``; endpoints still
    unfinished (or not started) when it passes are reported as ``timeout``.
    """
    if not endpoints:
        return []
    start = time.monotonic()
    end = start + max(deadline, 0.0)
    results: list[Optional[dict[str, Any]]] = [None] * len(endpoints)

    def task(ep: dict[str, Any]) -> dict[str, Any]:
        left = end - time.monotonic()
        return run_probe(ep, min(float(ep.get("timeout") or 5.0), left))

    pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, min(workers, len(endpoints))), thread_name_prefix="port-check"
    )
    try:
        futures = {pool.submit(task, ep): i for i, ep in enumerate(endpoints)}
        done, _pending = concurrent.futures.wait(futures, timeout=max(end - time.monotonic(), 0.0) + 0.25)
        for future in done:
            results[futures[future]] = future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    elapsed_ms = (time.monotonic() - start) * 1000.0
    for i, ep in enumerate(endpoints):
        if results[i] is None:
            results[i] = make_result(
                ep,
                "timeout",
                {"deadline": deadline},
                "not finished within the overall deadline of %gs" % deadline,
                elapsed_ms,
            )
    return [r for r in results if r is not None]


# ---------------------------------------------------------------------------------------
# Validation shared by the module and direct callers


def validate_endpoints(endpoints: list[dict[str, Any]]) -> list[str]:
    """Return one message per problem, each naming the entry; empty when all is well."""
    errors: list[str] = []
    seen: dict[str, int] = {}
    for index, ep in enumerate(endpoints):
        label = "endpoint %r (#%d)" % (ep.get("name"), index) if ep.get("name") else "endpoint #%d" % index
        name = ep.get("name")
        if not name:
            errors.append("%s: name is required" % label)
        elif name in seen:
            errors.append("%s: duplicate name, also used by entry #%d" % (label, seen[name]))
        else:
            seen[name] = index
        errors.extend("%s: %s" % (label, problem) for problem in _entry_problems(ep))
    return errors


def _client_key_problems(ep: dict[str, Any]) -> list[str]:
    key = ep.get("client_key_path") or ep.get("client_cert_path")
    if ep.get("client_key_passphrase") and not ep.get("client_cert_path"):
        return ["client_key_passphrase given without client_cert_path"]
    if key and os.path.isfile(key) and key_is_encrypted(key) and not ep.get("client_key_passphrase"):
        return ["client key %s is encrypted: set client_key_passphrase (vaulted)" % key]
    return []


def _spf_problems(ep: dict[str, Any]) -> list[str]:
    errors = []
    if not ep.get("spf_domain"):
        errors.append("spf_domain is required for probe spf")
    allowed = ep.get("spf_allowed")
    if not isinstance(allowed, list) or not allowed:
        errors.append("spf_allowed (the allowlist to compare) is required for probe spf")
        allowed = []
    for entry in allowed:
        try:
            ipaddress.ip_network(str(entry), strict=False)
        except ValueError:
            errors.append("spf_allowed entry %r is not an IP network" % (entry,))
    return errors


def _probe_problems(ep: dict[str, Any]) -> list[str]:
    probe = ep.get("probe") or "tcp"
    if probe not in PROBE_FUNCTIONS:
        return ["unknown probe %r (choose from %s)" % (probe, ", ".join(PROBES))]
    if probe == "spf":
        return _spf_problems(ep)
    if probe != "listen" and not ep.get("host"):
        return ["host is required for probe %s" % probe]
    return []


def _entry_problems(ep: dict[str, Any]) -> list[str]:
    """Problems of one entry other than its name."""
    errors = _probe_problems(ep)
    port = ep.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        errors.append("port %r is outside 1-65535" % (port,))
    timeout = ep.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        errors.append("timeout must be a positive number, got %r" % (timeout,))
    if ep.get("min_tls_version") and ep["min_tls_version"] not in TLS_VERSIONS:
        errors.append("min_tls_version %r is not one of %s" % (ep["min_tls_version"], ", ".join(TLS_VERSIONS)))
    if ep.get("listen_address") and ep["listen_address"] not in ("*", "any"):
        try:
            ipaddress.ip_address(ep["listen_address"])
        except ValueError:
            errors.append("listen_address %r is not an IP address" % (ep["listen_address"],))
    for key in ("ca_path", "client_cert_path", "client_key_path"):
        path = ep.get(key)
        if path and not os.access(path, os.R_OK):
            errors.append("%s %s is missing or unreadable" % (key, path))
        elif path and key != "ca_path" and not os.path.isfile(path):
            errors.append("%s %s is not a file" % (key, path))
    if ep.get("client_key_path") and not ep.get("client_cert_path"):
        errors.append("client_key_path given without client_cert_path")
    errors += _client_key_problems(ep)
    if ep.get("sip2_login_password") and not ep.get("sip2_login_user"):
        errors.append("sip2_login_password given without sip2_login_user")
    return errors


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {status: 0 for status in STATUSES}
    for result in results:
        counts[result["status"]] = counts.get(result["status"], 0) + 1
    counts_total = dict(counts)
    counts_total["total"] = len(results)
    counts_total["failed_required"] = sum(1 for r in results if r["required"] and not r["ok"])
    return counts_total
