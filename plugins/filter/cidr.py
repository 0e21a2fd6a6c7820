# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that validate address lists once and render them for each consumer.

All filters take a list of IPv4/IPv6 addresses and networks in CIDR notation and first
normalise it: every entry must be a string; a bare address becomes a host network (/32 or
/128); a network must not have host bits set (``192.0.2.1/24`` is refused, it is usually
a typo for ``192.0.2.0/24``); the result is unique and sorted, IPv4 before IPv6. Errors
name the entry, its position and, when given, the variable (``what``).
"""

from __future__ import annotations

from typing import Any, Optional

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.parsing.convert_bool import boolean

try:
    import netaddr
except ImportError as imp_exc:
    NETADDR_IMPORT_ERROR: Optional[ImportError] = imp_exc
else:
    NETADDR_IMPORT_ERROR = None


def _require_netaddr() -> None:
    if NETADDR_IMPORT_ERROR is not None:
        raise AnsibleFilterError(
            "the libsys.onprem CIDR filters need the Python library netaddr on the controller: pip install netaddr"
        ) from NETADDR_IMPORT_ERROR


def _where(what: Optional[str], index: int) -> str:
    return "%s[%d]" % (what, index) if what else "entry %d" % index


def _parse(entry: Any, index: int, what: Optional[str]) -> netaddr.IPNetwork:
    where = _where(what, index)
    if not isinstance(entry, str):
        raise AnsibleFilterError(
            "%s: %r is a %s, expected a string such as '192.0.2.0/24'" % (where, entry, type(entry).__name__)
        )
    text = entry.strip()
    if not text:
        raise AnsibleFilterError("%s: empty string is not an address or network" % where)
    try:
        net = netaddr.IPNetwork(text)
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        raise AnsibleFilterError(
            "%s: %r is not a valid IPv4/IPv6 address or CIDR network (%s)" % (where, entry, to_native(exc))
        ) from exc
    if net.ip != net.network:
        raise AnsibleFilterError(
            "%s: %r has host bits set; did you mean %s/%d?" % (where, entry, net.network, net.prefixlen)
        )
    return net.cidr


def _networks(value: Any, what: Optional[str], allow_any: bool = True) -> list[netaddr.IPNetwork]:
    _require_netaddr()
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise AnsibleFilterError(
            "%s: expected a list of addresses or networks, got %s" % (what or "value", type(value).__name__)
        )
    nets = set()
    for index, entry in enumerate(value):
        net = _parse(entry, index, what)
        if net.prefixlen == 0 and not allow_any:
            raise AnsibleFilterError(
                "%s: %r lets in every address; an allowlist takes it only with the explicit opt-in "
                "onprem_allow_any_source: true" % (_where(what, index), entry)
            )
        nets.add(net)
    return sorted(nets, key=lambda n: (n.version, n.first, n.prefixlen))


def _is_host(net: netaddr.IPNetwork) -> bool:
    return net.prefixlen == (32 if net.version == 4 else 128)


def cidr_normalize(value: Any, what: Optional[str] = None, allow_any: bool = True) -> list[str]:
    """Validated, unique, sorted CIDR strings; hosts as /32 or /128. With ``allow_any`` false (an
    allowlist without its opt-in) a network of every address (``0.0.0.0/0``, ``::/0``) is refused."""
    # boolean(): a templated variable may arrive as the string "False" (ansible-core 2.16).
    return [str(net) for net in _networks(value, what, boolean(allow_any, strict=True))]


def _merged(value: Any, what: Optional[str]) -> list[netaddr.IPNetwork]:
    return sorted(netaddr.cidr_merge(_networks(value, what)), key=lambda n: (n.version, n.first, n.prefixlen))


def cidr_merge(value: Any, what: Optional[str] = None) -> list[str]:
    """Smallest list of CIDR networks covering exactly the same addresses."""
    return [str(net) for net in _merged(value, what)]


def cidr_postfix(value: Any, what: Optional[str] = None) -> list[str]:
    """Postfix ``mynetworks`` entries: ``192.0.2.0/24``, ``[2001:db8::]/32``."""
    return [
        "[%s]/%d" % (net.network, net.prefixlen) if net.version == 6 else str(net) for net in _networks(value, what)
    ]


def cidr_spf(value: Any, what: Optional[str] = None) -> list[str]:
    """SPF mechanisms: ``ip4:192.0.2.0/24``, ``ip4:192.0.2.5``, ``ip6:2001:db8::/32``."""
    return ["ip%d:%s" % (net.version, net.network if _is_host(net) else net) for net in _networks(value, what)]


def cidr_nft(value: Any, what: Optional[str] = None, family: Optional[str] = None) -> list[str]:
    """nftables interval-set elements: merged (sets refuse overlaps), hosts without prefix.

    ``family`` ``ipv4`` or ``ipv6`` keeps only that family, for a typed set
    (``type ipv4_addr; flags interval``).
    """
    versions = {None: (4, 6), "ipv4": (4,), "ipv6": (6,), "ip": (4,), "ip6": (6,)}
    if family not in versions:
        raise AnsibleFilterError("cidr_nft: family must be ipv4 or ipv6, got %r" % (family,))
    return [
        str(net.network) if _is_host(net) else str(net)
        for net in _merged(value, what)
        if net.version in versions[family]
    ]


def cidr_sshd(value: Any, what: Optional[str] = None) -> str:
    """sshd ``Match Address`` pattern list: comma-separated CIDRs, no spaces."""
    nets = _networks(value, what)
    if not nets:
        raise AnsibleFilterError("%s: an empty list makes an empty sshd Match Address pattern" % (what or "value"))
    return ",".join(str(net) for net in nets)


class FilterModule:
    """CIDR filters for libsys.onprem."""

    def filters(self) -> dict[str, Any]:
        return {
            "cidr_normalize": cidr_normalize,
            "cidr_merge": cidr_merge,
            "cidr_postfix": cidr_postfix,
            "cidr_spf": cidr_spf,
            "cidr_nft": cidr_nft,
            "cidr_sshd": cidr_sshd,
        }
