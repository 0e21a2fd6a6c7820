# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.libsys.onprem.plugins.filter import cidr
from ansible_collections.libsys.onprem.plugins.filter.cidr import (
    FilterModule,
    cidr_merge,
    cidr_nft,
    cidr_normalize,
    cidr_postfix,
    cidr_spf,
    cidr_sshd,
)

MIXED = ["198.51.100.0/24", "192.0.2.5", "2001:DB8::/32", "192.0.2.5/32", " 203.0.113.0/25 ", "2001:db8:1::7"]


def test_filters_registered() -> None:
    assert set(FilterModule().filters()) == {
        "cidr_normalize",
        "cidr_merge",
        "cidr_postfix",
        "cidr_spf",
        "cidr_nft",
        "cidr_sshd",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (MIXED, ["192.0.2.5/32", "198.51.100.0/24", "203.0.113.0/25", "2001:db8::/32", "2001:db8:1::7/128"]),
        ([], []),
        (["0.0.0.0/0", "::/0"], ["0.0.0.0/0", "::/0"]),
        (["192.0.2.0/255.255.255.0"], ["192.0.2.0/24"]),
        (["2001:0db8:0000:0000:0000:0000:0000:0001"], ["2001:db8::1/128"]),
        (["10.0.0.0/16", "10.0.0.0/8"], ["10.0.0.0/8", "10.0.0.0/16"]),
        (("192.0.2.1", "192.0.2.1"), ["192.0.2.1/32"]),
    ],
)
def test_normalize(value: list, expected: list) -> None:
    assert cidr_normalize(value) == expected


@pytest.mark.parametrize(
    ("value", "what", "fragment"),
    [
        (["192.0.2.1/24"], None, "entry 0: '192.0.2.1/24' has host bits set; did you mean 192.0.2.0/24?"),
        (
            ["192.0.2.0/24", "2001:db8::1/32"],
            "onprem_vendor_ranges",
            "onprem_vendor_ranges[1]: '2001:db8::1/32' has host bits set; did you mean 2001:db8::/32?",
        ),
        (["192.0.2.0/33"], "x", "x[0]: '192.0.2.0/33' is not a valid"),
        (["192.0.2"], None, "entry 0: '192.0.2' is not a valid"),
        (["127.1"], None, "'127.1' is not a valid"),
        (["example.org"], None, "'example.org' is not a valid"),
        (["fe80::1%eth0"], None, "is not a valid"),
        (["192.0.2.0/24", ""], "nets", "nets[1]: empty string"),
        ([3232235520], "nets", "nets[0]: 3232235520 is a int, expected a string"),
        ([None], None, "entry 0: None is a NoneType"),
        ([["192.0.2.0/24"]], None, "is a list, expected a string"),
        ("192.0.2.0/24", "onprem_campus", "onprem_campus: expected a list of addresses or networks, got str"),
        ({"a": "192.0.2.0/24"}, None, "value: expected a list"),
        (5, None, "expected a list"),
    ],
)
def test_normalize_errors(value: object, what: str, fragment: str) -> None:
    with pytest.raises(AnsibleFilterError) as err:
        cidr_normalize(value, what)
    assert fragment in str(err.value)


@pytest.mark.parametrize("everything", ["0.0.0.0/0", "::/0"])
def test_an_allowlist_takes_every_address_only_with_the_opt_in(everything: str) -> None:
    value = ["198.51.100.0/24", everything]
    with pytest.raises(AnsibleFilterError) as err:
        cidr_normalize(value, "stunnel_server_allowed_sources", allow_any=False)
    assert str(err.value) == (
        "stunnel_server_allowed_sources[1]: %r lets in every address; an allowlist takes it only "
        "with the explicit opt-in onprem_allow_any_source: true" % everything
    )
    assert everything in cidr_normalize(value, "stunnel_server_allowed_sources", allow_any=True)
    # A templated variable may arrive as a string: "False" is no opt-in.
    with pytest.raises(AnsibleFilterError, match="lets in every address"):
        cidr_normalize(value, "x", allow_any="False")
    # Narrower networks need no opt-in.
    assert cidr_normalize(["0.0.0.0/1", "::/1"], "x", allow_any=False) == ["0.0.0.0/1", "::/1"]


@pytest.mark.parametrize("func", [cidr_merge, cidr_postfix, cidr_spf, cidr_nft, cidr_sshd])
def test_every_renderer_validates(func) -> None:
    with pytest.raises(AnsibleFilterError, match=r"ranges\[2\]: '198.51.100.7/24' has host bits set"):
        func(["192.0.2.0/24", "2001:db8::/32", "198.51.100.7/24"], "ranges")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["192.0.2.0/25", "192.0.2.128/25", "192.0.2.7"], ["192.0.2.0/24"]),
        (["192.0.2.0/24", "192.0.3.0/24"], ["192.0.2.0/23"]),
        (["192.0.3.0/24", "192.0.4.0/24"], ["192.0.3.0/24", "192.0.4.0/24"]),  # adjacent but not alignable
        (["2001:db8::/33", "2001:db8:8000::/33", "::1"], ["::1/128", "2001:db8::/32"]),
        (["10.0.0.0/8", "2001:db8::/32", "10.1.0.0/16"], ["10.0.0.0/8", "2001:db8::/32"]),
        ([], []),
    ],
)
def test_merge(value: list, expected: list) -> None:
    assert cidr_merge(value) == expected


def test_postfix() -> None:
    assert cidr_postfix(["127.0.0.0/8", "::1", "192.0.2.0/24", "2001:db8::/32"]) == [
        "127.0.0.0/8",
        "192.0.2.0/24",
        "[::1]/128",
        "[2001:db8::]/32",
    ]


def test_spf() -> None:
    assert cidr_spf(["192.0.2.5", "198.51.100.0/24", "2001:db8::/32", "2001:db8:1::1/128"]) == [
        "ip4:192.0.2.5",
        "ip4:198.51.100.0/24",
        "ip6:2001:db8::/32",
        "ip6:2001:db8:1::1",
    ]


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        (None, ["192.0.2.5", "198.51.100.0/24", "2001:db8::/32"]),
        ("ipv4", ["192.0.2.5", "198.51.100.0/24"]),
        ("ipv6", ["2001:db8::/32"]),
    ],
)
def test_nft(family: str, expected: list) -> None:
    value = ["198.51.100.0/25", "198.51.100.128/25", "192.0.2.5", "2001:db8::/32", "2001:db8::1"]
    assert cidr_nft(value, "ranges", family) == expected


def test_nft_bad_family() -> None:
    with pytest.raises(AnsibleFilterError, match="family must be ipv4 or ipv6"):
        cidr_nft(["192.0.2.0/24"], family="inet")


def test_sshd() -> None:
    assert cidr_sshd(["2001:db8::/32", "192.0.2.5", "192.0.2.0/24"]) == "192.0.2.0/24,192.0.2.5/32,2001:db8::/32"


def test_sshd_empty_is_error() -> None:
    with pytest.raises(AnsibleFilterError, match="sshd_allow: an empty list"):
        cidr_sshd([], "sshd_allow")


def test_missing_netaddr_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cidr, "NETADDR_IMPORT_ERROR", ImportError("No module named 'netaddr'"))
    with pytest.raises(AnsibleFilterError, match="need the Python library netaddr"):
        cidr_normalize(["192.0.2.0/24"])


def test_filters_in_a_playbook_task(tmp_path) -> None:
    """The filters work through Jinja as playbooks use them (FQCN, positional ``what``), and fail clearly."""
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
    if not os.access(ansible, os.X_OK):
        pytest.skip("the ansible command is not installed next to %s" % sys.executable)
    # .../ansible_collections/libsys/onprem/plugins/filter/cidr.py -> the directory holding ansible_collections
    collections_path = str(Path(cidr.__file__).parents[5])
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=collections_path,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(tmp_path),
        ANSIBLE_HOME=str(tmp_path),
    )

    def debug(expression: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                ansible,
                "localhost",
                "-i",
                "localhost,",
                "-c",
                "local",
                "-e",
                "ansible_python_interpreter=%s" % sys.executable,
                "-e",
                '{"onprem_vendor_ranges": ["192.0.2.5", "2001:db8::/32"], "typo": ["192.0.2.1/24"]}',
                "-m",
                "ansible.builtin.debug",
                "-a",
                "msg={{ %s }}" % expression,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    good = debug("onprem_vendor_ranges | libsys.onprem.cidr_spf('onprem_vendor_ranges') | join(' ')")
    assert good.returncode == 0, good.stdout + good.stderr
    assert '"msg": "ip4:192.0.2.5 ip6:2001:db8::/32"' in good.stdout
    bad = debug("typo | libsys.onprem.cidr_normalize('typo')")
    assert bad.returncode != 0
    assert "typo[0]: '192.0.2.1/24' has host bits set; did you mean 192.0.2.0/24?" in bad.stdout + bad.stderr


# --- properties -----------------------------------------------------------------------


@st.composite
def network_text(draw: st.DrawFn) -> str:
    """A valid entry: a bare address or a network written without host bits, v4 or v6."""
    version = draw(st.sampled_from([4, 6]))
    bits = 32 if version == 4 else 128
    address = draw(st.integers(0, 2**bits - 1))
    if draw(st.booleans()):
        return str(ipaddress.ip_address(address) if version == 4 else ipaddress.IPv6Address(address))
    prefix = draw(st.integers(0, bits))
    net = ipaddress.ip_network((address if version == 4 else ipaddress.IPv6Address(address), prefix), strict=False)
    text = str(net)
    return text.upper() if version == 6 and draw(st.booleans()) else text


# Networks drawn near each other so that merges and overlaps actually happen.
@st.composite
def clustered_network_text(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from([0xC0000200, 0xC6336400]))  # 192.0.2.0, 198.51.100.0
    prefix = draw(st.integers(22, 32))
    offset = draw(st.integers(0, 1023))
    net = ipaddress.ip_network((base + offset, prefix), strict=False)
    return str(net)


entries = st.lists(st.one_of(network_text(), clustered_network_text()), max_size=25)


def _addresses(nets: list[str]) -> list[tuple[int, int, int]]:
    """Sorted, merged (version, first, last) ranges covered by the networks."""
    ranges = sorted(
        (n.version, int(n.network_address), int(n.broadcast_address)) for n in (ipaddress.ip_network(x) for x in nets)
    )
    merged: list[tuple[int, int, int]] = []
    for version, first, last in ranges:
        if merged and merged[-1][0] == version and first <= merged[-1][2] + 1:
            merged[-1] = (version, merged[-1][1], max(last, merged[-1][2]))
        else:
            merged.append((version, first, last))
    return merged


@settings(max_examples=200, deadline=None)
@given(entries)
def test_normalize_is_idempotent(value: list[str]) -> None:
    once = cidr_normalize(value)
    assert cidr_normalize(once) == once
    assert len(set(once)) == len(once)
    assert all(ipaddress.ip_network(x, strict=True) for x in once)


@settings(max_examples=200, deadline=None)
@given(entries)
def test_merge_covers_exactly_the_same_addresses(value: list[str]) -> None:
    merged = cidr_merge(value)
    assert _addresses(merged) == _addresses(cidr_normalize(value))
    # Nothing left to merge: no two results overlap or could be joined into one network.
    assert cidr_merge(merged) == merged
    nets = [ipaddress.ip_network(x) for x in merged]
    for a in nets:
        for b in nets:
            assert a is b or a.version != b.version or not a.overlaps(b)


@settings(max_examples=200, deadline=None)
@given(entries)
def test_spf_round_trip(value: list[str]) -> None:
    parsed = []
    for mechanism in cidr_spf(value):
        kind, _sep, rest = mechanism.partition(":")
        net = ipaddress.ip_network(rest)
        assert kind == "ip%d" % net.version
        assert "/" in rest or net.prefixlen == net.max_prefixlen
        parsed.append(rest)
    assert cidr_normalize(parsed) == cidr_normalize(value)


@settings(max_examples=200, deadline=None)
@given(entries)
def test_postfix_round_trip(value: list[str]) -> None:
    parsed = []
    for item in cidr_postfix(value):
        if item.startswith("["):
            address, _sep, prefix = item[1:].partition("]/")
            assert ipaddress.ip_address(address).version == 6
            parsed.append("%s/%s" % (address, prefix))
        else:
            assert ipaddress.ip_network(item).version == 4
            parsed.append(item)
    assert cidr_normalize(parsed) == cidr_normalize(value)


@settings(max_examples=200, deadline=None)
@given(entries)
def test_nft_round_trip(value: list[str]) -> None:
    elements = cidr_nft(value)
    assert cidr_normalize(elements) == cidr_merge(value)
    assert _addresses(elements) == _addresses(cidr_normalize(value))
    v4, v6 = cidr_nft(value, family="ipv4"), cidr_nft(value, family="ipv6")
    assert v4 + v6 == elements
    assert all(ipaddress.ip_network(e).version == 4 for e in v4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(network_text(), clustered_network_text()), min_size=1, max_size=25))
def test_sshd_round_trip(value: list[str]) -> None:
    pattern = cidr_sshd(value)
    assert " " not in pattern
    assert cidr_normalize(pattern.split(",")) == cidr_normalize(value)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 31))
def test_host_bits_always_rejected(address: int, prefix: int) -> None:
    net = ipaddress.ip_network((address, prefix), strict=False)
    if int(net.network_address) == address:
        return
    text = "%s/%d" % (ipaddress.IPv4Address(address), prefix)
    with pytest.raises(AnsibleFilterError, match="did you mean %s" % net):
        cidr_normalize([text])
