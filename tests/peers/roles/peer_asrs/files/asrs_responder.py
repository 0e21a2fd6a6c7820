#!/usr/bin/python3
"""A stand-in for the ASRS (remote storage) host: answers each line with "ASRS-ACK <line>".

asrs_responder.py [--host ADDRESS] [--port 4000]   (default: all addresses)
"""

from __future__ import annotations

import argparse
import socketserver


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(b"ASRS-ACK " + line.rstrip(b"\r\n") + b"\n")
            self.wfile.flush()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="")
    parser.add_argument("--port", type=int, default=4000)
    args = parser.parse_args()
    with Server((args.host, args.port), Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
