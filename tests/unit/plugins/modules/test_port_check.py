# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
from typing import Any

import pytest

from ansible_collections.libsys.onprem.plugins.modules import port_check
from ansible_collections.libsys.onprem.tests.unit.loopback import (
    LOOPBACK,
    SERVER_NAME,
    SIP2_LOGIN,
    Pki,
    SmtpServers,
    ThreadedServer,
    TlsServers,
)
from ansible_collections.libsys.onprem.tests.unit.module_harness import run_module_main


def run_module(args: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Return (failed, result)."""
    return run_module_main(port_check.main, args)


# --- validation before any probe ------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoints", "fragments"),
    [
        ([{"name": "sip2", "port": 6001, "probe": "sip2"}], ["endpoint 'sip2' (#0): host is required for probe sip2"]),
        ([{"name": "a", "host": LOOPBACK, "port": 0}], ["endpoint 'a' (#0): port 0 is outside 1-65535"]),
        ([{"name": "a", "host": LOOPBACK, "port": 70000}], ["port 70000 is outside 1-65535"]),
        (
            [{"name": "a", "host": LOOPBACK, "port": 1}, {"name": "a", "host": LOOPBACK, "port": 2}],
            ["endpoint 'a' (#1): duplicate name, also used by entry #0"],
        ),
        (
            [{"name": "a", "host": LOOPBACK, "port": 1, "probe": "tls", "ca_path": "/nonexistent/ca.pem"}],
            ["ca_path /nonexistent/ca.pem is missing or unreadable"],
        ),
        (
            [{"name": "a", "port": 1}, {"name": "b", "host": LOOPBACK, "port": -1}],
            ["endpoint 'a' (#0): host is required", "endpoint 'b' (#1): port -1 is outside"],
        ),
    ],
)
def test_validation_fails_before_probing(monkeypatch: pytest.MonkeyPatch, endpoints: list, fragments: list) -> None:
    def no_probing(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("probes ran despite invalid input")

    monkeypatch.setattr(port_check, "run_checks", no_probing)
    failed, result = run_module({"endpoints": endpoints})
    assert failed
    assert result["msg"].startswith("Invalid endpoints, nothing was probed: ")
    for fragment in fragments:
        assert fragment in result["msg"]
    assert len(result["errors"]) == len(fragments)
    assert "results" not in result


def test_unknown_probe_rejected_by_argument_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(port_check, "run_checks", None)
    failed, result = run_module({"endpoints": [{"name": "a", "host": LOOPBACK, "port": 1, "probe": "telnet"}]})
    assert failed
    assert "telnet" in result["msg"]
    assert "probe" in result["msg"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"workers": 0}, "workers must be at least 1"),
        ({"deadline": 0}, "deadline must be positive"),
    ],
)
def test_runner_settings_validated(args: dict, fragment: str) -> None:
    args["endpoints"] = [{"name": "a", "host": LOOPBACK, "port": 1}]
    failed, result = run_module(args)
    assert failed
    assert fragment in result["msg"]


def test_argument_spec_types_port() -> None:
    failed, result = run_module({"endpoints": [{"name": "a", "host": LOOPBACK, "port": "ssh"}]})
    assert failed
    assert "port" in result["msg"]


# --- real probes ----------------------------------------------------------------------


def test_all_ok(
    pki: Pki, ssh_server: ThreadedServer, tls_servers: TlsServers, smtp_servers: SmtpServers, sip2_server: Any
) -> None:
    failed, result = run_module(
        {
            "endpoints": [
                {"name": "sftp", "host": LOOPBACK, "port": ssh_server.port, "probe": "ssh"},
                {
                    "name": "ldaps",
                    "host": LOOPBACK,
                    "port": tls_servers.good.port,
                    "probe": "ldaps",
                    "ca_path": pki.ca_file,
                    "tls_server_name": SERVER_NAME,
                },
                {
                    "name": "relay",
                    "host": LOOPBACK,
                    "port": smtp_servers.starttls.port,
                    "probe": "smtp",
                    "starttls": True,
                    "ca_path": pki.ca_file,
                    "tls_server_name": "mail.example.org",
                },
                {
                    "name": "acs",
                    "host": LOOPBACK,
                    "port": sip2_server.server_address[1],
                    "probe": "sip2",
                    "sip2_login_user": SIP2_LOGIN[0],
                    "sip2_login_password": SIP2_LOGIN[1],
                },
                {"name": "listener", "port": ssh_server.port, "probe": "listen", "listen_address": LOOPBACK},
            ],
            "workers": 4,
            "deadline": 20,
        }
    )
    assert not failed, result.get("msg")
    assert result["changed"] is False
    assert [r["status"] for r in result["results"]] == ["ok"] * 5
    assert result["failed_endpoints"] == []
    assert result["summary"]["ok"] == 5
    assert result["summary"]["total"] == 5
    assert result["summary"]["failed_required"] == 0
    assert result["results"][2]["details"]["starttls_offered"] is True
    # Defaults filled in by the argument spec reach the probes.
    assert result["results"][0]["required"] is True


def test_required_failures_listed_in_one_message(ssh_server: ThreadedServer, closed_port: int) -> None:
    failed, result = run_module(
        {
            "endpoints": [
                {"name": "good", "host": LOOPBACK, "port": ssh_server.port},
                {"name": "optional", "host": LOOPBACK, "port": closed_port, "required": False},
                {"name": "must1", "host": LOOPBACK, "port": closed_port},
                {"name": "must2", "host": LOOPBACK, "port": ssh_server.port, "probe": "smtp", "timeout": 1},
            ]
        }
    )
    assert failed
    msg = result["msg"]
    assert msg.startswith("2 of 4 required endpoints failed: ")
    assert "must1 (127.0.0.1:%d, tcp): refused" % closed_port in msg
    assert "must2 (127.0.0.1:%d, smtp): protocol_error" % ssh_server.port in msg
    assert "optional" not in msg
    assert result["failed_endpoints"] == ["optional", "must1", "must2"]
    assert [r["status"] for r in result["results"]] == ["ok", "refused", "refused", "protocol_error"]
    assert result["summary"]["failed_required"] == 2
    assert result["summary"]["refused"] == 2


def test_only_optional_failures_pass(closed_port: int) -> None:
    failed, result = run_module(
        {"endpoints": [{"name": "optional", "host": LOOPBACK, "port": closed_port, "required": False}]}
    )
    assert not failed
    assert result["failed_endpoints"] == ["optional"]
    assert result["summary"]["failed_required"] == 0


def test_check_mode_probes_and_changes_nothing(ssh_server: ThreadedServer) -> None:
    failed, result = run_module(
        {
            "endpoints": [{"name": "a", "host": LOOPBACK, "port": ssh_server.port, "probe": "ssh"}],
            "_ansible_check_mode": True,
        }
    )
    assert not failed
    assert result["changed"] is False
    assert result["results"][0]["status"] == "ok"


def test_password_not_returned(sip2_server: Any) -> None:
    failed, result = run_module(
        {
            "endpoints": [
                {
                    "name": "acs",
                    "host": LOOPBACK,
                    "port": sip2_server.server_address[1],
                    "probe": "sip2",
                    "sip2_login_user": "sc01",
                    "sip2_login_password": "wrong-but-secret",
                }
            ]
        }
    )
    assert failed
    assert "wrong-but-secret" not in json.dumps(result)
    assert "login (93) refused" in result["msg"]


@pytest.mark.nft
def test_unanswered_is_timeout(unanswered_ports: list[int]) -> None:
    failed, result = run_module(
        {"endpoints": [{"name": "dropped", "host": LOOPBACK, "port": unanswered_ports[0], "timeout": 0.5}]}
    )
    assert failed
    assert result["results"][0]["status"] == "timeout"
    assert "dropped (127.0.0.1:%d, tcp): timeout" % unanswered_ports[0] in result["msg"]
