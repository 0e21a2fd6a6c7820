# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The networks an SPF record lets send, against an allowlist (standard library only).

Shared by ``libsys.onprem.port_check`` (probe ``spf``, the preflight row of the vendor's SPF
include) and the status role's host command, which installs this file next to itself as
``libsys_onprem_spf.py``: it must import nothing but the standard library.

Read-only DNS: TXT queries to one resolver (the host's own unless one is given) over UDP, again
over TCP when the answer is cut; ip4/ip6 mechanisms, include and redirect are followed, within
RFC 7208's ten lookups; a, mx, exists and ptr are named, not followed.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import struct
from typing import Any

RESOLV_CONF = "/etc/resolv.conf"
DNS_TXT = 16
SPF_LOOKUPS = 10  # RFC 7208 section 4.6.4


class DnsError(Exception):
    """The SPF record cannot be read: no answer, an error code, not exactly one record."""


def nameserver() -> str:
    """The host's own resolver: the first nameserver of resolv.conf."""
    with open(RESOLV_CONF, encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                return fields[1]
    raise DnsError("no nameserver in %s" % RESOLV_CONF)


def dns_question(name: str, ident: int) -> bytes:
    labels = b"".join(
        bytes([len(part)]) + part for part in (label.encode("idna") for label in name.rstrip(".").split("."))
    )
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 1)  # recursion desired; one EDNS0 record
    edns = b"\x00" + struct.pack("!HHIH", 41, 4096, 0, 0)  # OPT: 4096-byte UDP answers
    return header + labels + b"\x00" + struct.pack("!HH", DNS_TXT, 1) + edns


def skip_name(data: bytes, offset: int) -> int:
    while True:
        length = data[offset]
        if length >= 0xC0:  # compression pointer: two bytes, the name ends here
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def txt_records(answer: bytes, ident: int, name: str) -> list[str]:
    """The TXT records of an answer (each record's strings joined, as SPF reads them)."""
    got, flags, questions, answers = struct.unpack("!HHHH", answer[:8])
    if got != ident:
        raise DnsError("answer for another query (id %d)" % got)
    rcode = flags & 0x000F
    if rcode == 3:
        raise DnsError("%s does not exist (NXDOMAIN)" % name)
    if rcode:
        raise DnsError("the resolver answered rcode %d for %s" % (rcode, name))
    offset = 12
    for _question in range(questions):
        offset = skip_name(answer, offset) + 4
    records = []
    for _answer in range(answers):
        offset = skip_name(answer, offset)
        kind, _cls, _ttl, length = struct.unpack("!HHIH", answer[offset : offset + 10])
        offset += 10
        data, offset = answer[offset : offset + length], offset + length
        if kind != DNS_TXT:
            continue  # a CNAME on the way
        strings, position = [], 0
        while position < len(data):
            size = data[position]
            strings.append(data[position + 1 : position + 1 + size])
            position += 1 + size
        records.append(b"".join(strings).decode("utf-8", "replace"))
    return records


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise DnsError("the resolver closed the TCP connection")
        data += chunk
    return data


def dns_txt(name: str, server: tuple[str, int], timeout: float) -> list[str]:
    """TXT records of name from server, over UDP, again over TCP when the answer was cut."""
    ident = random.randrange(65536)  # noqa: S311 - a query id, not a secret
    query = dns_question(name, ident)
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as udp:
        udp.settimeout(timeout)
        udp.sendto(query, server)
        answer = udp.recv(65535)
    if struct.unpack("!H", answer[2:4])[0] & 0x0200:  # truncated
        with socket.create_connection(server, timeout=timeout) as tcp:
            tcp.sendall(struct.pack("!H", len(query)) + query)
            size = struct.unpack("!H", read_exactly(tcp, 2))[0]
            answer = read_exactly(tcp, size)
    return txt_records(answer, ident, name)


def spf_networks(domain: str, server: tuple[str, int], timeout: float, seen: list[str]) -> tuple[set[Any], list[str]]:
    """The networks an SPF record lets send (ip4, ip6; include and redirect followed), and notes
    on the mechanisms that are not followed (a, mx, exists, ptr)."""
    if len(seen) >= SPF_LOOKUPS:
        raise DnsError("more than %d DNS lookups (RFC 7208)" % SPF_LOOKUPS)
    seen.append(domain)
    records = [r for r in dns_txt(domain, server, timeout) if r.lower().startswith("v=spf1")]
    if len(records) != 1:
        raise DnsError("%s has %d SPF records, not one" % (domain, len(records)))
    networks: set[Any] = set()
    notes: list[str] = []
    redirect = None
    for term in records[0].split()[1:]:
        qualifier, mechanism = (term[0], term[1:]) if term[0] in "+-~?" else ("+", term)
        kind, _sep, value = mechanism.partition(":")
        kind = kind.lower()
        if kind in ("ip4", "ip6") and qualifier == "+":
            networks.add(ipaddress.ip_network(value, strict=False))
        elif kind == "include" and qualifier == "+":
            more, more_notes = spf_networks(value, server, timeout, seen)
            networks |= more
            notes += more_notes
        elif mechanism.lower().startswith("redirect="):
            redirect = mechanism.split("=", 1)[1]
        elif kind in ("a", "mx", "exists", "ptr") or kind.startswith(("a/", "mx/")):
            notes.append("%s in %s not followed" % (term, domain))
    if redirect and not any(t.lstrip("+-~?").lower() == "all" for t in records[0].split()):
        more, more_notes = spf_networks(redirect, server, timeout, seen)
        networks |= more
        notes += more_notes
    return networks, notes


def covered(network: Any, others: Any) -> bool:
    return any(network.version == other.version and network.subnet_of(other) for other in others)


def compare(domain: str, allowed: list[str], server: tuple[str, int], timeout: float) -> dict[str, Any]:
    """The SPF record of domain against the allowlist: {published, missing, extra, notes}.

    missing: networks the record lets send that no allowlist entry covers; extra: allowlist
    entries no published network covers. Raises DnsError, OSError or ValueError when the record
    cannot be read."""
    networks = {ipaddress.ip_network(entry, strict=False) for entry in allowed}
    published, notes = spf_networks(domain, server, timeout, [])
    return {
        "published": sorted(str(n) for n in published),
        "missing": sorted(str(n) for n in published if not covered(n, networks)),
        "extra": sorted(str(n) for n in networks if not covered(n, published)),
        "notes": notes,
    }


def describe(domain: str, found: dict[str, Any]) -> str:
    """One line for a comparison: what differs, or that the allowlist matches."""
    parts = []
    if found["missing"]:
        parts.append("%s lets %s send, not in the allowlist" % (domain, ", ".join(found["missing"])))
    if found["extra"]:
        parts.append("the allowlist has %s, no longer in %s" % (", ".join(found["extra"]), domain))
    if not parts:
        count = len(found["published"])
        parts.append("the allowlist matches the %d network%s of %s" % (count, "" if count == 1 else "s", domain))
    return "; ".join(parts + found["notes"])
