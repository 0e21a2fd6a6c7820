"""A tiny authoritative DNS responder for the mail_relay verify step (stdlib only).

Runs inside the scenario's hub container, answers UDP queries on port 53 from a JSON zone
file that it re-reads on every query (so a test can change a record between two runs):

    {"example.edu": {"MX": [[10, "hub.example.edu"]], "TXT": ["v=spf1 ..."]},
     "hub.example.edu": {"A": ["198.51.100.150"]}}

Names not in the zone get NXDOMAIN, known names without the type an empty answer. Every
query is appended to the log file as "<type> <name>".
Usage: python3 dns_responder.py ZONE LOG ADDRESS (the container's own address to listen on)
"""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
import sys

TYPES = {1: "A", 15: "MX", 16: "TXT", 28: "AAAA"}


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def decode_name(data: bytes, offset: int) -> tuple[str, int]:
    labels = []
    while data[offset]:
        length = data[offset]
        labels.append(data[offset + 1 : offset + 1 + length].decode("ascii"))
        offset += 1 + length
    return ".".join(labels).lower(), offset + 1


def rdata(rtype: str, value) -> bytes:
    if rtype == "A":
        return ipaddress.IPv4Address(value).packed
    if rtype == "AAAA":
        return ipaddress.IPv6Address(value).packed
    if rtype == "MX":
        return struct.pack("!H", value[0]) + encode_name(value[1])
    text = value.encode()
    return b"".join(bytes([len(text[i : i + 255])]) + text[i : i + 255] for i in range(0, len(text), 255))


def answer(query: bytes, zone: dict, log) -> bytes:
    ident, flags = struct.unpack("!HH", query[:4])
    name, end = decode_name(query, 12)
    qtype, qclass = struct.unpack("!HH", query[end : end + 4])
    question = query[12 : end + 4]
    rtype = TYPES.get(qtype, str(qtype))
    log.write(f"{rtype} {name}\n")
    log.flush()
    records = zone.get(name)
    rcode = 3 if records is None else 0
    answers = b""
    count = 0
    for value in (records or {}).get(rtype, []):
        data = rdata(rtype, value)
        answers += b"\xc0\x0c" + struct.pack("!HHIH", qtype, qclass, 60, len(data)) + data
        count += 1
    # QR, opcode copied, AA, RD copied, RA; one question, the answers, no other sections.
    reply_flags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode
    return struct.pack("!HHHHHH", ident, reply_flags, 1, count, 0, 0) + question + answers


def main() -> int:
    zone_file, log_file, address = sys.argv[1], sys.argv[2], sys.argv[3]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    with open(log_file, "a", encoding="utf-8") as log:
        while True:
            query, peer = sock.recvfrom(4096)
            try:
                with open(zone_file, encoding="utf-8") as handle:
                    zone = {k.lower(): v for k, v in json.load(handle).items()}
                sock.sendto(answer(query, zone, log), peer)
            except (ValueError, IndexError, struct.error, OSError) as exc:
                log.write(f"error {exc}\n")
                log.flush()


if __name__ == "__main__":
    sys.exit(main())
