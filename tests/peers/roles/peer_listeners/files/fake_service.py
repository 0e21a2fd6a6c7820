#!/usr/bin/python3
"""Tiny TCP services for reachability tests: tcp, ssh banner, smtp dialogue, https (TLS).

Standard library only; logs "connection from <address>" per client to stdout (the journal).
"""

from __future__ import annotations

import argparse
import socketserver
import ssl
import sys


def log(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class Handler(socketserver.BaseRequestHandler):
    kind = "tcp"
    context: ssl.SSLContext | None = None

    def handle(self) -> None:
        log("connection from %s" % self.client_address[0])
        sock = self.request
        sock.settimeout(10)
        try:
            getattr(self, "serve_" + self.kind)(sock)
        except (OSError, ssl.SSLError) as exc:
            log("client %s: %s" % (self.client_address[0], exc))

    def serve_tcp(self, sock) -> None:
        pass

    def serve_ssh(self, sock) -> None:
        sock.sendall(b"SSH-2.0-libsys_peer_1.0\r\n")
        sock.recv(256)

    def serve_smtp(self, sock) -> None:
        reader = sock.makefile("rb")
        sock.sendall(b"220 peer.example.org ESMTP libsys-peer\r\n")
        for raw in reader:
            verb = raw.decode("ascii", "replace").strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                sock.sendall(b"250-peer.example.org\r\n250 8BITMIME\r\n")
            elif verb == "QUIT":
                sock.sendall(b"221 bye\r\n")
                return
            else:
                sock.sendall(b"502 not implemented\r\n")

    def serve_https(self, sock) -> None:
        assert self.context is not None
        tls = self.context.wrap_socket(sock, server_side=True)
        try:
            tls.recv(4096)
            tls.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nlibsys peer\r\n")
        except (OSError, ssl.SSLError):
            pass
        finally:
            tls.close()


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=["tcp", "ssh", "smtp", "https"], required=True)
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a test peer in its container
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    Handler.kind = args.kind
    if args.kind == "https":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        Handler.context = context
    with Server((args.host, args.port), Handler) as server:
        log("%s listening on %s:%d" % (args.kind, args.host, args.port))
        server.serve_forever()


if __name__ == "__main__":
    main()
