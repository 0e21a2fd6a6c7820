"""Simulated AppSocket/JetDirect printer (libsys.onprem tests): keep each job as a file.

    python3 socket_printer.py --port 9100 --dir /var/lib/peer-printer/socket

Each connection is one job: its bytes are written to a dot-file, which is renamed to
job-<time>-<n>.prn once the client closed its side, so a reader never sees half a job.
"""

from __future__ import annotations

import argparse
import os
import socket
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.dir, mode=0o755, exist_ok=True)
    server = socket.create_server(("", args.port), family=socket.AF_INET6, dualstack_ipv6=True)
    number = 0
    while True:
        conn, peer = server.accept()
        number += 1
        name = f"job-{time.strftime('%Y%m%dT%H%M%S')}-{number}.prn"
        partial = os.path.join(args.dir, "." + name)
        size = 0
        with conn, open(partial, "wb") as out:
            conn.settimeout(300)
            try:
                while chunk := conn.recv(65536):
                    out.write(chunk)
                    size += len(chunk)
            except OSError as error:
                print(f"job {number} from {peer[0]}: {error}", flush=True)
        os.replace(partial, os.path.join(args.dir, name))
        print(f"job {number} from {peer[0]}: {size} bytes -> {name}", flush=True)


if __name__ == "__main__":
    main()
