# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The preflight rows each integration role publishes (entry point preflight), as Ansible renders them.

One ansible-playbook run on the controller (connection local, nothing changes): each inventory
host is a case with its role variables; the rows go through the preflight role's filter as the
preflight playbook passes them, so these tests see the report's rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ansible_collections.libsys.onprem.plugins.filter.preflight import preflight_plan
from ansible_collections.libsys.onprem.tests.playbooks.cases import run_cases

PLAYBOOK = Path(__file__).with_name("role_preflight_rows.yml")

SIP2_CLIENT = {
    "name": "sip2-selfcheck",
    "mode": "client",
    "integration": "sip2",
    "accept_address": "127.0.0.1",
    "accept_port": 6001,
    "connect_host": "sip2.alma.example.org",
    "sni": "cloud.example.org",
}
ASRS_SERVER = {
    "name": "asrs-in",
    "mode": "server",
    "accept_port": 5001,
    "connect_host": "192.0.2.50",
    "connect_port": 2001,
    "check_host": "cloud-client.example.org",
}
PRINTERS = [
    {"name": "circ", "address": "circ@print.example.edu", "device_uri": "ipp://printer1.example.edu/ipp/print"},
    {"name": "ill", "address": "ill@print.example.edu", "device_uri": "socket://192.0.2.77"},
    {"name": "lp", "address": "lp@print.example.edu", "device_uri": "lpd://lp.example.edu:5515/q"},
    {"name": "pdf", "address": "pdf@print.example.edu", "device_uri": "cups-pdf:/"},
    {
        "name": "desk",
        "address": "desk@print.example.edu",
        "mode": "mailbox",
        "mailbox_password": "a-long-mailbox-password",
    },
]
CASES: dict[str, dict[str, Any]] = {
    "sip2": {"case_steps": [["stunnel", "preflight"]], "stunnel_tunnels": [SIP2_CLIENT]},
    # A tunnel named "sip..." without integration: sip2 is remote storage; the name decides nothing.
    "named-sip": {
        "case_steps": [["stunnel", "preflight"]],
        "stunnel_tunnels": [
            {
                "name": "sip-kiosk",
                "mode": "client",
                "accept_port": 6002,
                "connect_host": "asrs.alma.example.org",
                "connect_port": 7443,
            }
        ],
        "stunnel_preflight_ca_path": "/etc/ca.pem",
        "stunnel_preflight_client_cert_path": "/etc/c.pem",
        "stunnel_cloud_port": 6443,
    },
    "server": {
        "case_steps": [["stunnel", "preflight"]],
        "stunnel_tunnels": [ASRS_SERVER],
    },
    "sftp": {
        "case_steps": [["sftp_drop", "preflight"]],
        "sftp_drop_accounts": [{"name": "sis"}],
        "sftp_drop_port": 2222,
    },
    "sftp-none": {"case_steps": [["sftp_drop", "preflight"]]},
    "mail": {
        "case_steps": [["mail_relay", "preflight"]],
        "mail_relay_submission_enabled": True,
        "mail_relay_relayhost": "[smtp.example.edu]:587",
        "mail_relay_allowed_sources": ["198.51.100.7", "192.0.2.0/28"],
        "mail_relay_spf_watch_include": "spf.vendor.example.org",
    },
    "mail-spf-dns": {
        "case_steps": [["mail_relay", "preflight"]],
        "mail_relay_allowed_sources": ["2001:db8:5::/48"],
        "mail_relay_spf_watch_include": "spf.vendor.example.org",
        "mail_relay_spf_watch_dns_server": "192.0.2.53",
    },
    # Valid printers pass the role's own checks first (each network URI form among them).
    "print": {
        "case_steps": [["print_proxy", "validate"], ["print_proxy", "preflight"]],
        "print_proxy_printers": PRINTERS,
        "print_proxy_allowed_clients": ["192.0.2.0/24"],
        "print_proxy_imap_allowed_sources": ["198.51.100.0/24"],
    },
    "mail-and-print": {
        "case_steps": [["mail_relay", "preflight"], ["print_proxy", "preflight"]],
        "print_proxy_printers": [PRINTERS[3]],
    },
    "bad-tunnel-integration": {
        "case_steps": [["stunnel", "validate"]],
        "stunnel_tunnels": [dict(ASRS_SERVER, integration="sip2")],
        "stunnel_server_allowed_sources": ["192.0.2.0/24"],
    },
    "bad-printer-port": {
        "case_steps": [["print_proxy", "validate"]],
        "print_proxy_printers": [dict(PRINTERS[1], device_uri="socket://192.0.2.77:99999")],
        "print_proxy_allowed_clients": ["192.0.2.0/24"],
    },
    "bad-printer-host": {
        "case_steps": [["print_proxy", "validate"]],
        "print_proxy_printers": [dict(PRINTERS[0], device_uri="ipp:///ipp/print")],
        "print_proxy_allowed_clients": ["192.0.2.0/24"],
    },
}
RELAYHOSTS = {
    "smtp.example.edu": ("smtp.example.edu", 25),
    "smtp.example.edu:2525": ("smtp.example.edu", 2525),
    "[192.0.2.25]": ("192.0.2.25", 25),
    "[ipv6:2001:db8::25]:26": ("2001:db8::25", 26),
}
for _index, _relayhost in enumerate(RELAYHOSTS):
    CASES["relayhost-%d" % _index] = {"case_steps": [["mail_relay", "preflight"]], "mail_relay_relayhost": _relayhost}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Run the playbook once for every case; host name -> {"rows": [...]} or {"error": "..."}."""
    return run_cases(PLAYBOOK, CASES, tmp_path_factory.mktemp("rows"))


def rows_of(published: dict[str, Any], case: str) -> dict[str, dict[str, Any]]:
    assert "rows" in published[case], published[case]
    return {row["name"]: row for row in published[case]["rows"]}


def plan(rows: list[dict[str, Any]], **inputs: Any) -> dict[str, dict[str, Any]]:
    given = {"host": "onprem1", "vendor": "Alma", "inbound_address": "203.0.113.10", "role_endpoints": rows}
    given.update(inputs)
    return {row["name"]: row for row in preflight_plan(given)}


def test_a_sip2_client_tunnel_gives_a_sip2_check_and_a_listener_check(published: dict[str, Any]) -> None:
    rows = plan(published["sip2"]["rows"])
    cloud = rows["stunnel-sip2-selfcheck-cloud"]
    assert cloud["integration"] == "Self-check"
    assert cloud["protocol"] == "TLS-secured SIP2"
    assert cloud["endpoint"] == {
        "name": "stunnel-sip2-selfcheck-cloud",
        "host": "sip2.alma.example.org",
        "port": 6443,
        "probe": "sip2",
        "tls_server_name": "cloud.example.org",
    }
    assert cloud["target"] == "Alma (sip2.alma.example.org)"
    listener = rows["stunnel-sip2-selfcheck-listener"]
    assert listener["direction"] == "local"
    assert listener["initiator"] == "SIP2 self-check stations"
    assert listener["endpoint"] == {
        "name": "stunnel-sip2-selfcheck-listener",
        "port": 6001,
        "probe": "listen",
        "listen_address": "127.0.0.1",
    }


def test_the_probe_comes_from_the_tunnel_integration_not_its_name(published: dict[str, Any]) -> None:
    rows = plan(published["named-sip"]["rows"])
    cloud = rows["stunnel-sip-kiosk-cloud"]
    assert (cloud["integration"], cloud["protocol"]) == ("Remote storage", "TLS-secured")
    assert cloud["endpoint"] == {
        "name": "stunnel-sip-kiosk-cloud",
        "host": "asrs.alma.example.org",
        "port": 7443,
        "probe": "tls",
        "tls_server_name": "asrs.alma.example.org",
        "ca_path": "/etc/ca.pem",
        "client_cert_path": "/etc/c.pem",
    }
    assert rows["stunnel-sip-kiosk-listener"]["initiator"] == "Remote storage system"


@pytest.mark.parametrize(
    ("outside", "probe_from", "endpoint_host"), [("outside1", "outside", "203.0.113.10"), (None, "host", None)]
)
def test_a_server_tunnel_gives_an_inbound_check_and_an_asrs_check(
    published: dict[str, Any], outside: Any, probe_from: str, endpoint_host: Any
) -> None:
    rows = plan(published["server"]["rows"], outside_probe_host=outside)
    inbound = rows["stunnel-asrs-in-inbound"]
    assert (inbound["direction"], inbound["probe_from"]) == ("inbound", probe_from)
    assert inbound["initiator"] == "Alma"
    assert inbound["endpoint"].get("host") == endpoint_host
    assert inbound["endpoint"]["probe"] == ("tcp" if outside else "listen")
    asrs = rows["stunnel-asrs-in-asrs"]
    assert asrs["endpoint"] == {"name": "stunnel-asrs-in-asrs", "host": "192.0.2.50", "port": 2001, "probe": "tcp"}
    assert asrs["target"] == "Remote storage system (192.0.2.50)"


def test_the_sftp_drop_gives_an_inbound_ssh_check_only_with_accounts(published: dict[str, Any]) -> None:
    rows = plan(published["sftp"]["rows"], outside_probe_host="outside1")
    assert rows["sftp-drop"]["endpoint"] == {"name": "sftp-drop", "port": 2222, "probe": "ssh", "host": "203.0.113.10"}
    assert rows["sftp-drop"]["integration"] == "S/FTP file-based integrations"
    assert published["sftp-none"] == {"rows": []}


def test_the_mail_relay_gives_inbound_smtp_checks_and_a_smarthost_check(published: dict[str, Any]) -> None:
    rows = plan(published["mail"]["rows"], outside_probe_host="o", outside_mail_probe_host="relay", ehlo_name="x.edu")
    assert rows["mail-relay-smtp"]["probe_from"] == "outside_mail"
    assert rows["mail-relay-smtp-587"]["endpoint"]["port"] == 587
    assert "ehlo_name" not in rows["mail-relay-smtp"]["endpoint"]
    assert rows["mail-relay-smarthost"]["endpoint"] == {
        "name": "mail-relay-smarthost",
        "host": "smtp.example.edu",
        "port": 587,
        "probe": "smtp",
        "ehlo_name": "x.edu",
    }


def test_the_spf_watch_gives_an_optional_dns_check_of_the_include_against_the_allowlist(
    published: dict[str, Any],
) -> None:
    rows = plan(published["mail"]["rows"], outside_probe_host="o")
    watch = rows["mail-relay-spf-watch"]
    assert watch["endpoint"] == {
        "name": "mail-relay-spf-watch",
        "port": 53,
        "probe": "spf",
        "required": False,
        "spf_domain": "spf.vendor.example.org",
        "spf_allowed": ["192.0.2.0/28", "198.51.100.7/32"],
    }
    assert (watch["direction"], watch["probe_from"], watch["protocol"]) == ("outbound", "host", "DNS (SPF)")
    assert watch["proves"].startswith("the SPF record of spf.vendor.example.org (includes followed), as the host's")
    asked = plan(published["mail-spf-dns"]["rows"])["mail-relay-spf-watch"]["endpoint"]
    assert (asked["host"], asked["spf_allowed"]) == ("192.0.2.53", ["2001:db8:5::/48"])
    assert "mail-relay-spf-watch" not in rows_of(published, "relayhost-0")


@pytest.mark.parametrize("index", range(len(RELAYHOSTS)))
def test_each_relayhost_form_gives_its_host_and_port(published: dict[str, Any], index: int) -> None:
    relayhost = list(RELAYHOSTS)[index]
    smarthost = rows_of(published, "relayhost-%d" % index)["mail-relay-smarthost"]
    assert (smarthost["host"], smarthost["port"]) == RELAYHOSTS[relayhost], relayhost


def test_the_print_proxy_gives_smtp_imaps_and_one_check_per_network_printer(published: dict[str, Any]) -> None:
    rows = plan(published["print"]["rows"], outside_probe_host="o")
    assert rows["print-proxy-smtp"]["probe_from"] == "outside"
    assert rows["print-proxy-imaps"]["endpoint"] == {"name": "print-proxy-imaps", "port": 993, "probe": "listen"}
    printers = {
        name: (row["endpoint"]["host"], row["endpoint"]["port"], row["protocol"])
        for name, row in rows.items()
        if name.startswith("print-proxy-printer-")
    }
    assert printers == {
        "print-proxy-printer-circ": ("printer1.example.edu", 631, "IPP"),
        "print-proxy-printer-ill": ("192.0.2.77", 9100, "Raw socket"),
        "print-proxy-printer-lp": ("lp.example.edu", 5515, "LPD"),
    }


def test_one_postfix_for_mail_and_print_is_one_check_naming_both(published: dict[str, Any]) -> None:
    rows = plan(published["mail-and-print"]["rows"], outside_probe_host="o")
    smtp = [row for row in rows.values() if row["port"] == 25]
    assert [row["name"] for row in smtp] == ["mail-relay-smtp"]
    assert smtp[0]["integration"] == "Email; Email (print via email messages)"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("bad-tunnel-integration", "stunnel_tunnels[0] (name: asrs-in): integration sip2 is for client tunnels"),
        ("bad-printer-port", "print_proxy_printers[0] (name: ill):"),
        ("bad-printer-host", "print_proxy_printers[0] (name: circ):"),
    ],
)
def test_bad_values_fail_the_validate_entry_point_naming_the_entry(
    published: dict[str, Any], case: str, message: str
) -> None:
    assert "error" in published[case], published[case]
    assert message in published[case]["error"]
