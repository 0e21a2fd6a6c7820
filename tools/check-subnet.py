"""Refuse a test network whose subnet would capture traffic that is not ours.

A podman network adds a route for its subnet on this host. If that subnet held the host's own
address, its gateway, or the address of the package mirror (as it can on machines whose
mirrors live in documentation ranges), the lab would cut the machine off and the tests'
traffic could reach somebody else's address. Usage:

    python3 tools/check-subnet.py 203.0.113.128/25

Exit 0 when the subnet is free, 1 (with the reason) otherwise.
"""

import ipaddress
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse


def mirror_hosts() -> set:
    """Host names of this machine's apt sources (read from /etc/apt, never hard-coded)."""
    names = set()
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.sources")]:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        for url in re.findall(r"(?:^URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text, re.MULTILINE):
            if urlparse(url).hostname:
                names.add(urlparse(url).hostname)
    return names


def addresses_in_use() -> dict:
    """Addresses this host must keep reaching, with where each comes from."""
    found = {}
    # Resolved once per run by tools/collection-env.sh: a test run looks no name up itself.
    resolved = os.environ.get("LIBSYS_MIRROR_ADDRESSES", "").split()
    for address in resolved:
        found[address] = "the package mirror"
    for name in [] if resolved else mirror_hosts():
        try:
            for info in socket.getaddrinfo(name, None, socket.AF_INET):
                found[info[4][0]] = f"the package mirror {name}"
        except OSError:
            pass
    routes = subprocess.run(["ip", "-4", "route", "show", "default"], capture_output=True, text=True, check=False)
    for gateway in re.findall(r"via (\S+)", routes.stdout):
        found[gateway] = "the default gateway"
    addresses = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False)
    for line in addresses.stdout.splitlines():
        match = re.search(r"^\d+: (\S+)\s+inet (\S+)", line)
        if match and not match.group(1).startswith(("lo", "podman", "cni", "veth")):
            interface = ipaddress.ip_interface(match.group(2))
            found[str(interface.network)] = f"the network of interface {match.group(1)}"
    return found


def main() -> int:
    subnet = ipaddress.ip_network(sys.argv[1])
    for address, what in addresses_in_use().items():
        if ipaddress.ip_network(address).overlaps(subnet):
            print(f"subnet {subnet} overlaps {address} ({what}) on this machine: choose another range", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
