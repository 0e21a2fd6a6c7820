# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The checks each role gives libsys.onprem.status (<role>_status_checks), as Ansible renders them
and as the status role's own validation takes them (one ansible-playbook run, nothing changes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ansible_collections.libsys.onprem.tests.playbooks.cases import run_cases

PLAYBOOK = Path(__file__).with_name("role_status_checks.yml")
# The postfix role names the master's unit by the Debian release (the controller's, here).
RELEASE = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
POSTFIX_UNIT = "postfix@-.service" if RELEASE.get("VERSION_ID", "").strip('"') == "12" else "postfix.service"
CASES: dict[str, dict[str, Any]] = {
    "tunnels": {
        "case_roles": ["stunnel"],
        "stunnel_tunnels": [
            {
                "name": "sip2",
                "mode": "client",
                "integration": "sip2",
                "accept_port": 6001,
                "connect_host": "c.example.org",
            },
            {"name": "asrs-out", "mode": "client", "accept_port": 6002, "connect_host": "c.example.org"},
            {
                "name": "asrs-in",
                "mode": "server",
                "accept_address": "192.0.2.7",
                "accept_port": 5001,
                "connect_host": "192.0.2.50",
                "connect_port": 4000,
                "check_host": "cloud.example.org",
            },
        ],
    },
    "no-tunnels": {"case_roles": ["stunnel"]},
    "drop": {
        "case_roles": ["sftp_drop"],
        "sftp_drop_accounts": [
            {"name": "sis", "incoming_dir": "in", "hook": {"command": "/usr/local/bin/load", "user": "loader"}},
            {"name": "erp"},
            {"name": "old", "state": "absent"},
        ],
        "sftp_drop_firewall": False,
    },
    "mail": {
        "case_roles": ["postfix", "mail_relay"],
        "mail_relay_relayhost": "[smtp.example.edu]:587",
        "mail_relay_allowed_sources": ["192.0.2.25", "2001:db8::/64"],
        "mail_relay_spf_watch_include": "spf.vendor.example.org",
    },
    "print": dict(
        case_roles=["postfix", "print_proxy"],
        print_proxy_printers=[
            {"name": "desk", "mode": "mailbox"},
            {"name": "circ", "device_uri": "ipp://p.example.edu/"},
        ],
        postfix_firewall=False,
    ),
    # A check of the site that breaks the status role's schema is named.
    "bad-extra": {"case_roles": ["stunnel"], "status_extra_checks": [{"name": "x", "type": "sip2", "host": "h"}]},
}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return run_cases(PLAYBOOK, CASES, tmp_path_factory.mktemp("status"), "--tags", "case")


def checks(published: dict[str, Any], case: str) -> dict[str, dict[str, Any]]:
    assert "checks" in published[case], published[case]
    return {check.pop("name"): check for check in published[case]["checks"]}


def test_the_tunnels_give_units_a_sip2_exchange_a_tls_handshake_the_certificate_and_the_table(
    published: dict[str, Any],
) -> None:
    assert checks(published, "tunnels") == {
        "stunnel-sip2": {"integration": "sip2", "type": "unit", "unit": "stunnel-libsys@sip2.service"},
        "stunnel-sip2-sip2": {"integration": "sip2", "type": "sip2", "host": "127.0.0.1", "port": 6001},
        "stunnel-asrs-out": {
            "integration": "remote_storage",
            "type": "unit",
            "unit": "stunnel-libsys@asrs-out.service",
        },
        "stunnel-asrs-out-cloud": {
            "integration": "remote_storage",
            "type": "tcp",
            "host": "c.example.org",
            "port": 6443,
        },
        "stunnel-asrs-in": {"integration": "remote_storage", "type": "unit", "unit": "stunnel-libsys@asrs-in.service"},
        "stunnel-asrs-in-tls": {"integration": "remote_storage", "type": "tls", "host": "192.0.2.7", "port": 5001},
        "stunnel-asrs-in-asrs": {"integration": "remote_storage", "type": "tcp", "host": "192.0.2.50", "port": 4000},
        "stunnel-certificate": {
            "integration": "stunnel",
            "type": "certificate",
            "path": "/etc/stunnel/libsys/tls/institution.crt",
        },
        "stunnel-firewall": {
            "integration": "stunnel",
            "type": "nft_table",
            "family": "inet",
            "table": "libsys_stunnel",
        },
    }
    assert published["no-tunnels"] == {"checks": []}


def test_the_drop_gives_sshd_the_last_file_of_each_account_and_each_hook(published: dict[str, Any]) -> None:
    assert checks(published, "drop") == {
        "sftp-drop-sshd": {"integration": "sftp", "type": "unit", "unit": "ssh.service"},
        "sftp-drop-sis-last-file": {"integration": "sftp", "type": "newest_file", "path": "/srv/sftp-drop/sis/in"},
        "sftp-drop-sis-hook": {
            "integration": "sftp",
            "type": "unit_result",
            "unit": "libsys-sftp-drop-hook-sis.service",
        },
        "sftp-drop-erp-last-file": {
            "integration": "sftp",
            "type": "newest_file",
            "path": "/srv/sftp-drop/erp/incoming",
        },
    }


def test_the_mail_relay_and_its_postfix(published: dict[str, Any]) -> None:
    assert checks(published, "mail") == {
        "postfix": {"integration": "postfix", "type": "unit", "unit": POSTFIX_UNIT},
        "postfix-queue": {"integration": "postfix", "type": "postfix_queue"},
        "postfix-firewall": {
            "integration": "postfix",
            "type": "nft_table",
            "family": "inet",
            "table": "libsys_postfix",
        },
        "mail-relay-opendkim": {"integration": "mail", "type": "unit", "unit": "opendkim.service"},
        "mail-relay-smarthost": {"integration": "mail", "type": "tcp", "host": "smtp.example.edu", "port": 587},
        "mail-relay-spf-watch": {
            "integration": "mail",
            "type": "spf",
            "domain": "spf.vendor.example.org",
            "allowed": ["192.0.2.25/32", "2001:db8::/64"],
        },
    }


def test_the_print_proxy_and_its_postfix(published: dict[str, Any]) -> None:
    assert checks(published, "print") == {
        "postfix": {"integration": "postfix", "type": "unit", "unit": POSTFIX_UNIT},
        "postfix-queue": {"integration": "postfix", "type": "postfix_queue"},
        "print-proxy-cups": {"integration": "print", "type": "unit", "unit": "cups.service"},
        "print-proxy-dead-letters": {
            "integration": "print",
            "type": "files",
            "path": "/var/lib/libsys-print-proxy/dead-letter",
            "warn_above": 0,
        },
        "print-proxy-dovecot": {"integration": "print", "type": "unit", "unit": "dovecot.service"},
        "print-proxy-firewall": {
            "integration": "print",
            "type": "nft_table",
            "family": "inet",
            "table": "libsys_print_proxy",
        },
        "print-proxy-printer-circ": {"integration": "print", "type": "tcp", "host": "p.example.edu", "port": 631},
    }


def test_a_bad_site_check_is_named(published: dict[str, Any]) -> None:
    assert "error" in published["bad-extra"], published["bad-extra"]
    assert "status_extra_checks[0]: a check needs a name" in published["bad-extra"]["error"]
    assert "(host, port)" in published["bad-extra"]["error"]
