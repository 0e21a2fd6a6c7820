#!/usr/bin/python3
"""A self-check machine for tests: speaks SIP2 (with the collection's codec, sip2.py beside
this file) to a host and port and prints one JSON line per step.

    sip2_kiosk.py HOST PORT exchange          93/94, 99/98, 23/24 on one connection
    sip2_kiosk.py HOST PORT session SECONDS   93/94, then wait SECONDS (the test restarts the
                                              cloud meanwhile), 99/98 on the same connection,
                                              then 99/98 on a new connection
"""

from __future__ import annotations

import json
import socket
import sys
import time

sys.path.insert(0, "/usr/local/lib/libsys-peer")
import sip2

USER, PASSWORD, INSTITUTION, PATRON = "kiosk", "kiosk-secret", "EXAMPLE", "P0001"


def report(step: str, **values) -> None:
    print(json.dumps({"step": step, **values}), flush=True)


def ask(sock: socket.socket, request: bytes) -> bytes:
    sock.sendall(request)
    return sip2.read_message(sock)


def exchange(sock: socket.socket) -> None:
    raw = ask(sock, sip2.build_login(USER, PASSWORD, sequence=1))
    report("93/94", raw=raw.decode(), checksum_ok=sip2.verify(raw), **_safe(sip2.parse_login_response, raw))
    raw = ask(sock, sip2.build_sc_status(sequence=2))
    report("99/98", raw=raw.decode(), checksum_ok=sip2.verify(raw), **_safe(sip2.parse_acs_status, raw))
    raw = ask(sock, sip2.build_patron_status(INSTITUTION, PATRON, sequence=3))
    report("23/24", raw=raw.decode(), checksum_ok=sip2.verify(raw), **_safe(sip2.parse_patron_status, raw))


def _safe(parser, raw: bytes) -> dict:
    try:
        return {"parsed": parser(raw)}
    except sip2.Sip2Error as exc:
        return {"error": str(exc)}


def connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=10)
    sock.settimeout(10)
    return sock


def main() -> int:
    host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    try:
        sock = connect(host, port)
    except OSError as exc:
        report("connect", ok=False, error=type(exc).__name__)
        return 0
    if mode == "exchange":
        try:
            exchange(sock)
        except (OSError, sip2.Sip2Error) as exc:
            report("exchange", ok=False, error="%s: %s" % (type(exc).__name__, exc))
        return 0
    wait = float(sys.argv[4])
    raw = ask(sock, sip2.build_login(USER, PASSWORD, sequence=1))
    report("before", raw=raw.decode(errors="replace"))
    time.sleep(wait)
    try:
        raw = ask(sock, sip2.build_sc_status(sequence=2))
        report("same-connection", raw=raw.decode(errors="replace"))
    except (OSError, sip2.Sip2Error) as exc:
        report("same-connection", raw="", error=type(exc).__name__)
    sock.close()
    try:
        fresh = connect(host, port)
        raw = ask(fresh, sip2.build_sc_status(sequence=3))
        report("new-connection", raw=raw.decode(errors="replace"))
    except (OSError, sip2.Sip2Error) as exc:
        report("new-connection", raw="", error=type(exc).__name__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
