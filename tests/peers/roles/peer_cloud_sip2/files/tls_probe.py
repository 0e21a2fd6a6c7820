#!/usr/bin/python3
"""Connect with TLS the way a (mis)configured peer would, send one line, print the outcome.

    tls_probe.py HOST PORT [--cert C --key K] [--ca CA] [--tls 1.1|1.2|1.3] [--ciphers LIST]
                 [--server-name NAME]

Prints "ok <reply>" when the handshake completes and a reply line comes back, otherwise
"refused <reason>". The server (the on-prem 5001 tunnel) decides; this only tries.
"""

from __future__ import annotations

import argparse
import socket
import ssl

VERSIONS = {"1.1": ssl.TLSVersion.TLSv1_1, "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--ca")
    parser.add_argument("--tls", choices=sorted(VERSIONS))
    parser.add_argument("--ciphers")
    parser.add_argument("--server-name")
    args = parser.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if args.ca:
        context.load_verify_locations(args.ca)
        context.check_hostname = bool(args.server_name)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    if args.tls:
        context.minimum_version = context.maximum_version = VERSIONS[args.tls]
    if args.tls == "1.1" or args.ciphers:
        # Let the client offer what the server must refuse (OpenSSL 3 would not, by default).
        context.set_ciphers((args.ciphers or "DEFAULT") + ":@SECLEVEL=0")
    try:
        with (
            socket.create_connection((args.host, args.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=args.server_name or args.host) as tls,
        ):
            tls.sendall(b"PROBE\n")
            reply = tls.recv(4096)
            if not reply:
                print("refused closed-after-handshake")
                return
            print("ok " + reply.decode(errors="replace").strip())
    except (ssl.SSLError, OSError) as exc:
        print("refused %s: %s" % (type(exc).__name__, exc))


if __name__ == "__main__":
    main()
