# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small SIP2 (3M Standard Interchange Protocol 2.00) codec and a fake ACS.

Standard library only and free of Ansible imports on purpose: the same file is used by
``libsys.onprem.port_check`` on managed hosts, by the unit tests, and copied as is into
test containers where it runs as a fake ACS::

    python3 sip2.py --host 127.0.0.1 --port 6001 --user sc --password secret

Message layout: two-digit command code, fixed-length fields, then variable fields
(two-letter id, value, ``|``), then the error-detection fields ``AY<n>AZ<xxxx>`` and CR.
The checksum is the 16-bit two's complement of the sum of all bytes up to and including
``AZ``, written as four uppercase hex digits.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import socket
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

TERMINATOR = b"\r"
DEFAULT_ENCODING = "utf-8"
PROTOCOL_VERSION = "2.00"

# Fixed fields per message code: (name, length), in wire order.
FIXED_FIELDS: dict[str, list[tuple[str, int]]] = {
    "23": [("language", 3), ("transaction_date", 18)],
    "24": [("patron_status", 14), ("language", 3), ("transaction_date", 18)],
    "93": [("uid_algorithm", 1), ("pwd_algorithm", 1)],
    "94": [("ok", 1)],
    "96": [],
    "97": [],
    "98": [
        ("online_status", 1),
        ("checkin_ok", 1),
        ("checkout_ok", 1),
        ("acs_renewal_policy", 1),
        ("status_update_ok", 1),
        ("offline_ok", 1),
        ("timeout_period", 3),
        ("retries_allowed", 3),
        ("date_time_sync", 18),
        ("protocol_version", 4),
    ],
    "99": [("status_code", 1), ("max_print_width", 3), ("protocol_version", 4)],
}

# Order of the messages in the BX "supported messages" field of a 98 response.
SUPPORTED_MESSAGES = (
    "patron_status",
    "checkout",
    "checkin",
    "block_patron",
    "sc_acs_status",
    "request_resend",
    "login",
    "patron_information",
    "end_patron_session",
    "fee_paid",
    "item_information",
    "item_status_update",
    "patron_enable",
    "hold",
    "renew",
    "renew_all",
)

_ERROR_DETECTION = re.compile(r"\|?AY(?P<seq>[0-9])\|?AZ(?P<checksum>[0-9A-Fa-f]{4})\|?$")


class Sip2Error(ValueError):
    """A message that cannot be parsed or fails its checksum."""


@dataclass
class Sip2Message:
    """A parsed SIP2 message."""

    code: str
    fixed: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    # Fields that may repeat (AF screen message, AG print line, ...) in order of appearance.
    repeated: list[tuple[str, str]] = field(default_factory=list)
    sequence: Optional[int] = None
    checksum: Optional[str] = None
    checksum_valid: Optional[bool] = None
    raw: bytes = b""


def checksum(data: bytes) -> str:
    """Return the SIP2 checksum of ``data`` (which must end with ``AZ``)."""
    return "%04X" % ((-sum(data)) & 0xFFFF)


def sip2_date(when: Optional[float] = None) -> str:
    """Format a SIP2 date: ``YYYYMMDDZZZZHHMMSS`` (four spaces as the local time zone)."""
    return time.strftime("%Y%m%d    %H%M%S", time.localtime(when))


def build(
    code: str,
    fixed: str = "",
    fields: Optional[list[tuple[str, str]]] = None,
    *,
    sequence: Optional[int] = 0,
    encoding: str = DEFAULT_ENCODING,
    with_checksum: bool = True,
) -> bytes:
    """Build a message from its code, the fixed part as one string and the variable fields.

    With ``sequence=None`` and ``with_checksum=False`` no error-detection fields are added.
    """
    if len(code) != 2 or not code.isdigit():
        raise Sip2Error("message code must be two digits, got %r" % (code,))
    body = code + fixed
    for field_id, raw_value in fields or []:
        if len(field_id) != 2:
            raise Sip2Error("field id must be two characters, got %r" % (field_id,))
        value = str(raw_value)
        if "|" in value or "\r" in value:
            raise Sip2Error("field %s contains a reserved character" % field_id)
        body += "%s%s|" % (field_id, value)
    if sequence is not None:
        if not 0 <= sequence <= 9:
            raise Sip2Error("sequence number must be 0..9, got %r" % (sequence,))
        body += "AY%d" % sequence
    data = body.encode(encoding)
    if with_checksum:
        data += b"AZ"
        data += checksum(data).encode("ascii")
    return data + TERMINATOR


def verify(message: bytes) -> bool:
    """True when ``message`` carries an AZ checksum that matches its bytes."""
    data = message.rstrip(b"\r\n")
    pos = data.rfind(b"AZ")
    if pos < 0 or len(data) - pos != 6:
        return False
    return checksum(data[: pos + 2]) == data[pos + 2 :].decode("ascii", "replace").upper()


def parse(message: bytes, encoding: str = DEFAULT_ENCODING, require_checksum: bool = False) -> Sip2Message:
    """Parse a message into code, fixed fields and variable fields.

    Raises ``Sip2Error`` when the message is too short for its code's fixed fields, has
    a malformed variable field, or (with ``require_checksum``) has no valid checksum.
    """
    data = message.rstrip(b"\r\n")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise Sip2Error("message is not valid %s: %s" % (encoding, exc)) from exc
    if len(text) < 2 or not text[:2].isdigit():
        raise Sip2Error("message does not start with a two-digit code: %r" % (text[:20],))
    msg = Sip2Message(code=text[:2], raw=bytes(message))
    rest = text[2:]

    match = _ERROR_DETECTION.search(rest)
    if match:
        msg.sequence = int(match.group("seq"))
        msg.checksum = match.group("checksum").upper()
        msg.checksum_valid = verify(data)
        rest = rest[: match.start()]
    if require_checksum and not msg.checksum_valid:
        raise Sip2Error("missing checksum" if msg.checksum is None else "checksum mismatch")

    offset = 0
    for name, length in FIXED_FIELDS.get(msg.code, []):
        if offset + length > len(rest):
            raise Sip2Error("message %s too short for fixed field %s" % (msg.code, name))
        msg.fixed[name] = rest[offset : offset + length]
        offset += length
    rest = rest[offset:]

    for part in rest.split("|"):
        if not part:
            continue
        if len(part) < 2:
            raise Sip2Error("malformed variable field %r in message %s" % (part, msg.code))
        field_id, value = part[:2], part[2:]
        msg.repeated.append((field_id, value))
        msg.fields.setdefault(field_id, value)
    return msg


def _flag(value: bool) -> str:
    return "Y" if value else "N"


# ---------------------------------------------------------------------------------------
# Builders for the requests the checks send.


def build_login(
    user: str, password: str, location: str = "", *, sequence: Optional[int] = 0, encoding: str = DEFAULT_ENCODING
) -> bytes:
    """93 Login: plain-text user id (CN) and password (CO), optional location (CP)."""
    fields = [("CN", user), ("CO", password)]
    if location:
        fields.append(("CP", location))
    return build("93", "00", fields, sequence=sequence, encoding=encoding)


def build_sc_status(
    status_code: int = 0,
    max_print_width: int = 80,
    protocol_version: str = PROTOCOL_VERSION,
    *,
    sequence: Optional[int] = 0,
    encoding: str = DEFAULT_ENCODING,
) -> bytes:
    """99 SC Status: status code 0 ok, 1 out of paper, 2 shutting down."""
    fixed = "%d%03d%s" % (status_code, max_print_width, protocol_version)
    return build("99", fixed, sequence=sequence, encoding=encoding)


def build_patron_status(
    institution: str,
    patron: str,
    terminal_password: str = "",
    patron_password: str = "",
    *,
    language: str = "000",
    when: Optional[float] = None,
    sequence: Optional[int] = 0,
    encoding: str = DEFAULT_ENCODING,
) -> bytes:
    """23 Patron Status Request."""
    fields = [("AO", institution), ("AA", patron), ("AC", terminal_password), ("AD", patron_password)]
    return build("23", language + sip2_date(when), fields, sequence=sequence, encoding=encoding)


# ---------------------------------------------------------------------------------------
# Interpreting responses.


def parse_login_response(message: bytes, encoding: str = DEFAULT_ENCODING) -> dict:
    msg = _expect(message, "94", encoding)
    return {"ok": msg.fixed["ok"] == "1", "sequence": msg.sequence, "checksum_valid": msg.checksum_valid}


def parse_acs_status(message: bytes, encoding: str = DEFAULT_ENCODING) -> dict:
    """98 ACS Status as a dict with booleans and integers where the protocol has them."""
    msg = _expect(message, "98", encoding)
    f = msg.fixed
    supported = msg.fields.get("BX", "")
    return {
        "online": f["online_status"] == "Y",
        "checkin_ok": f["checkin_ok"] == "Y",
        "checkout_ok": f["checkout_ok"] == "Y",
        "renewal_policy": f["acs_renewal_policy"] == "Y",
        "status_update_ok": f["status_update_ok"] == "Y",
        "offline_ok": f["offline_ok"] == "Y",
        "timeout_period": _int_or_none(f["timeout_period"]),
        "retries_allowed": _int_or_none(f["retries_allowed"]),
        "date_time_sync": f["date_time_sync"],
        "protocol_version": f["protocol_version"],
        "institution_id": msg.fields.get("AO", ""),
        "library_name": msg.fields.get("AM", ""),
        "terminal_location": msg.fields.get("AN", ""),
        "supported_messages": [name for name, flag in zip(SUPPORTED_MESSAGES, supported) if flag == "Y"],
        "screen_messages": [v for k, v in msg.repeated if k == "AF"],
        "sequence": msg.sequence,
        "checksum_valid": msg.checksum_valid,
    }


def parse_patron_status(message: bytes, encoding: str = DEFAULT_ENCODING) -> dict:
    msg = _expect(message, "24", encoding)
    return {
        "patron_status": msg.fixed["patron_status"],
        "language": msg.fixed["language"],
        "transaction_date": msg.fixed["transaction_date"],
        "institution_id": msg.fields.get("AO", ""),
        "patron_id": msg.fields.get("AA", ""),
        "personal_name": msg.fields.get("AE", ""),
        "valid_patron": msg.fields.get("BL") == "Y",
        "valid_patron_password": msg.fields.get("CQ") == "Y",
        "screen_messages": [v for k, v in msg.repeated if k == "AF"],
        "sequence": msg.sequence,
        "checksum_valid": msg.checksum_valid,
    }


def _expect(message: bytes, code: str, encoding: str) -> Sip2Message:
    msg = parse(message, encoding)
    if msg.code != code:
        raise Sip2Error("expected message %s, got %s" % (code, msg.code))
    return msg


def _int_or_none(value: str) -> Optional[int]:
    return int(value) if value.strip().isdigit() else None


# ---------------------------------------------------------------------------------------
# A fake ACS for tests and test containers.


class Sip2Responder:
    """Answers 93 with 94, 99 with 98 and 23 with 24, with correct checksums.

    A request whose checksum is wrong gets ``96`` (request resend), as a real ACS does.
    ``corrupt_checksum`` makes every answer carry a wrong checksum (to test clients).
    ``require_login`` refuses 99 and 23 until a successful 93 on the same responder.
    """

    def __init__(
        self,
        users: Optional[dict[str, str]] = None,
        *,
        institution: str = "EXAMPLE",
        library_name: str = "Example Library",
        online: bool = True,
        corrupt_checksum: bool = False,
        require_login: bool = False,
        patrons: Optional[dict[str, str]] = None,
        encoding: str = DEFAULT_ENCODING,
    ) -> None:
        self.users = dict(users or {})
        self.institution = institution
        self.library_name = library_name
        self.online = online
        self.corrupt_checksum = corrupt_checksum
        self.require_login = require_login
        self.patrons = dict(patrons or {"P0001": "Ada Example"})
        self.encoding = encoding
        self.logged_in = False
        self.requests: list[str] = []

    def respond(self, request: bytes) -> bytes:
        try:
            msg = parse(request, self.encoding)
        except Sip2Error:
            return b"96" + TERMINATOR
        self.requests.append(msg.code)
        if msg.checksum is not None and not msg.checksum_valid:
            return b"96" + TERMINATOR
        seq = msg.sequence if msg.sequence is not None else 0
        handler = {"93": self._login, "99": self._status, "23": self._patron_status}.get(msg.code)
        if handler is None:
            return b"96" + TERMINATOR
        if self.require_login and not self.logged_in and msg.code != "93":
            # An ACS that wants a login first typically drops or answers 94 0; we answer 940.
            return self._finish(build("94", "0", sequence=seq, encoding=self.encoding))
        return self._finish(handler(msg, seq))

    def _finish(self, data: bytes) -> bytes:
        if not self.corrupt_checksum:
            return data
        body = data[:-5]
        wrong = "%04X" % ((int(data[-5:-1], 16) + 1) & 0xFFFF)
        return body + wrong.encode("ascii") + TERMINATOR

    def _login(self, msg: Sip2Message, seq: int) -> bytes:
        user, password = msg.fields.get("CN", ""), msg.fields.get("CO", "")
        ok = user in self.users and self.users[user] == password
        self.logged_in = self.logged_in or ok
        return build("94", "1" if ok else "0", sequence=seq, encoding=self.encoding)

    def _status(self, msg: Sip2Message, seq: int) -> bytes:
        online = self.online
        fixed = "".join([_flag(online), "Y", "Y", "Y", "N", "Y", "030", "003", sip2_date(), PROTOCOL_VERSION])
        supported = "".join(_flag(name != "end_patron_session") for name in SUPPORTED_MESSAGES)
        fields = [("AO", self.institution), ("AM", self.library_name), ("BX", supported), ("AN", "fake-acs")]
        return build("98", fixed, fields, sequence=seq, encoding=self.encoding)

    def _patron_status(self, msg: Sip2Message, seq: int) -> bytes:
        patron = msg.fields.get("AA", "")
        name = self.patrons.get(patron)
        status = " " * 14 if name is not None else "Y" * 4 + " " * 10
        fields = [
            ("AO", self.institution),
            ("AA", patron),
            ("AE", name or ""),
            ("BL", _flag(name is not None)),
            ("CQ", "N"),
        ]
        return build(
            "24", status + msg.fixed.get("language", "000") + sip2_date(), fields, sequence=seq, encoding=self.encoding
        )


def read_message(sock, limit: int = 65536) -> bytes:
    """Read one CR-terminated message from a socket (or SSL socket). b"" on clean EOF."""
    buf = bytearray()
    while True:
        chunk = sock.recv(1)
        if not chunk:
            if buf:
                raise Sip2Error("connection closed in the middle of a message")
            return b""
        buf += chunk
        if chunk == TERMINATOR:
            return bytes(buf)
        if len(buf) > limit:
            raise Sip2Error("message longer than %d bytes" % limit)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        conn = self.request
        if server.ssl_context is not None:  # type: ignore[attr-defined]
            try:
                conn = server.ssl_context.wrap_socket(conn, server_side=True)  # type: ignore[attr-defined]
            except (ssl.SSLError, OSError):
                return
        conn.settimeout(server.idle_timeout)  # type: ignore[attr-defined]
        responder = server.responder_factory()  # type: ignore[attr-defined]
        try:
            while True:
                request = read_message(conn)
                if not request:
                    return
                conn.sendall(responder.respond(request))
        except (OSError, Sip2Error):
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()


class Sip2Server(socketserver.ThreadingTCPServer):
    """Threaded TCP (optionally TLS) server that answers with a fresh ``Sip2Responder`` per connection.

    Use as a context manager in tests::

        with Sip2Server(("127.0.0.1", 0), users={"sc": "pw"}) as srv:
            port = srv.server_address[1]
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        ssl_context: Optional[ssl.SSLContext] = None,
        idle_timeout: float = 30.0,
        **responder_options,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.ssl_context = ssl_context
        self.idle_timeout = idle_timeout
        self.responder_options = responder_options
        self._thread: Optional[threading.Thread] = None

    def responder_factory(self) -> Sip2Responder:
        return Sip2Responder(**self.responder_options)

    def start(self) -> Sip2Server:
        self._thread = threading.Thread(target=self.serve_forever, name="sip2-acs", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> Sip2Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Fake SIP2 ACS for tests (answers 93, 99, 23).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6001)
    parser.add_argument("--user", default="", help="login user accepted by 93")
    parser.add_argument("--password", default="")
    parser.add_argument("--institution", default="EXAMPLE")
    parser.add_argument("--offline", action="store_true", help="report the ACS as offline in 98")
    parser.add_argument("--require-login", action="store_true")
    parser.add_argument("--cert", help="PEM certificate (chain) to serve TLS")
    parser.add_argument("--key", help="PEM private key for --cert")
    args = parser.parse_args(argv)
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    users = {args.user: args.password} if args.user else {}
    server = Sip2Server(
        (args.host, args.port),
        ssl_context=context,
        users=users,
        institution=args.institution,
        online=not args.offline,
        require_login=args.require_login,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
