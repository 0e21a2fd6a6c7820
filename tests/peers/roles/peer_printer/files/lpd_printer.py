"""Simulated LPD printer (RFC 1179, libsys.onprem tests): keep each print file it receives.

    python3 lpd_printer.py --port 515 --dir /var/lib/peer-printer/lpd

Only the "receive a printer job" command (02) is served, with its subcommands: control file
(02), data file (03) and abort (01); any queue name is accepted. Each data file is written to
a dot-file and renamed to job-<time>-<n>.prn once all its bytes and the closing zero byte
have arrived, so a reader never sees half a job. Control files are logged, not kept.
"""

from __future__ import annotations

import argparse
import os
import socket
import time

ACK = b"\0"
NACK = b"\1"


def read_line(conn: socket.socket) -> bytes:
    """One LF-terminated command line (without the LF); b"" when the client closed."""
    line = bytearray()
    while (byte := conn.recv(1)) and byte != b"\n":
        line += byte
        if len(line) > 1024:
            raise ValueError("command line longer than 1024 bytes")
    return bytes(line)


def read_exactly(conn: socket.socket, count: int, out) -> None:
    while count > 0:
        chunk = conn.recv(min(count, 65536))
        if not chunk:
            raise ValueError(f"connection closed with {count} bytes of the file missing")
        out.write(chunk)
        count -= len(chunk)


def receive_job(conn: socket.socket, directory: str, number: int) -> list[str]:
    """Serve the subcommands of one 02 command; the names of the data files kept."""
    kept = []
    while line := read_line(conn):
        code, rest = line[:1], line[1:].decode("ascii", "replace")
        if code == b"\1":  # abort: drop what this job sent so far
            conn.sendall(ACK)
            return []
        if code not in (b"\2", b"\3"):
            conn.sendall(NACK)
            raise ValueError(f"unknown subcommand {line[:20]!r}")
        count_text, _, file_name = rest.partition(" ")
        count = int(count_text)
        conn.sendall(ACK)
        name = f"job-{time.strftime('%Y%m%dT%H%M%S')}-{number}-{len(kept)}.prn"
        partial = os.path.join(directory, "." + name)
        with open(partial if code == b"\3" else os.devnull, "wb") as out:
            read_exactly(conn, count, out)
        if conn.recv(1) != b"\0":
            raise ValueError(f"file {file_name!r} not followed by a zero byte")
        conn.sendall(ACK)
        if code == b"\3":
            os.replace(partial, os.path.join(directory, name))
            kept.append(f"{name} ({count} bytes, sent as {file_name})")
        else:
            print(f"job {number}: control file {file_name} ({count} bytes)", flush=True)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=515)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.dir, mode=0o755, exist_ok=True)
    server = socket.create_server(("", args.port), family=socket.AF_INET6, dualstack_ipv6=True)
    number = 0
    while True:
        conn, peer = server.accept()
        number += 1
        with conn:
            conn.settimeout(300)
            try:
                command = read_line(conn)
                if command[:1] != b"\2":
                    conn.sendall(NACK)
                    print(f"connection {number} from {peer[0]}: command {command[:20]!r} refused", flush=True)
                    continue
                conn.sendall(ACK)
                kept = receive_job(conn, args.dir, number)
                queue = command[1:].decode("ascii", "replace")
                print(f"job {number} from {peer[0]} for queue {queue}: {kept}", flush=True)
            except (OSError, ValueError) as error:
                print(f"job {number} from {peer[0]}: {error}", flush=True)


if __name__ == "__main__":
    main()
