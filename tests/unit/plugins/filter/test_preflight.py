# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.libsys.onprem.plugins.filter.preflight import (
    INSIDE_NOTE,
    LOCAL_NOTE,
    MARKDOWN_COLUMNS,
    FilterModule,
    bandwidth_mb,
    preflight_changes,
    preflight_junit,
    preflight_markdown,
    preflight_plan,
    preflight_probe_results,
    preflight_probe_share,
    preflight_report,
)

# Rows as the integration roles publish them (tests/playbooks checks what they publish).
SIP2_CLOUD = {
    "name": "stunnel-sip2-selfcheck-cloud",
    "source": "stunnel_tunnels[0] (name: sip2-selfcheck)",
    "integration": "Self-check",
    "direction": "outbound",
    "initiator": "Stunnel workstation (onprem1)",
    "protocol": "TLS-secured SIP2",
    "host": "sip2.alma.example.org",
    "port": 6443,
    "probe": "sip2",
    "tls_server_name": "cloud.example.org",
}
SIP2_LISTENER = {
    "name": "stunnel-sip2-selfcheck-listener",
    "source": "stunnel_tunnels[0] (name: sip2-selfcheck)",
    "integration": "Self-check",
    "direction": "local",
    "initiator": "SIP2 self-check stations",
    "target": "Stunnel workstation (onprem1), tunnel sip2-selfcheck",
    "protocol": "TCP (plain, into the tunnel)",
    "port": 6001,
    "probe": "listen",
    "listen_address": "127.0.0.1",
}
SFTP_ROW = {
    "name": "sftp-drop",
    "source": "sftp_drop_port",
    "integration": "S/FTP file-based integrations",
    "direction": "inbound",
    "target": "S/FTP server (onprem1)",
    "protocol": "S/FTP",
    "port": 2222,
    "probe": "ssh",
}
SMTP_ROW = {
    "name": "mail-relay-smtp",
    "source": "mail_relay",
    "integration": "Email",
    "direction": "inbound",
    "target": "Email server (onprem1)",
    "protocol": "SMTP",
    "port": 25,
    "probe": "smtp",
}
SMARTHOST = {
    "name": "mail-relay-smarthost",
    "source": "mail_relay_relayhost",
    "integration": "Email",
    "direction": "outbound",
    "initiator": "Email server (onprem1)",
    "target": "Campus smarthost (smtp.example.edu)",
    "protocol": "SMTP",
    "host": "smtp.example.edu",
    "port": 25,
    "probe": "smtp",
}
STAFF = {"name": "staff-https", "integration": "Staff workstation", "host": "myinst.alma.example.org", "port": 443}


def inputs(**kwargs: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"host": "onprem1", "vendor": "Alma", "inbound_address": "203.0.113.10"}
    base.update(kwargs)
    return base


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in rows}


def test_filters_registered() -> None:
    assert set(FilterModule().filters()) == {
        "preflight_probe_share",
        "preflight_probe_results",
        "preflight_plan",
        "preflight_report",
        "preflight_markdown",
        "preflight_junit",
        "preflight_changes",
        "bandwidth_mb",
    }


# --- bandwidth: the vendor's table and its two worked examples ---------------------------


@pytest.mark.parametrize(
    ("users", "expected"),
    [
        (0, 0.0),
        (1, 0.025),
        (10, 0.25),  # the vendor's example
        (50, 1.25),
        (51, 0.765),
        (120, 1.8),
        (200, 3.0),
        (201, 2.01),
        (500, 5.0),  # the vendor's example
        ("75", 1.125),
    ],
)
def test_bandwidth_mb(users: Any, expected: float) -> None:
    assert bandwidth_mb(users) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("users", [-1, 2.5, "many", None, True])
def test_bandwidth_mb_rejects_bad_counts(users: Any) -> None:
    with pytest.raises(AnsibleFilterError, match="named users"):
        bandwidth_mb(users)


# --- plan ------------------------------------------------------------------------------


def test_contributed_rows_keep_their_cells_and_the_vendor_fills_the_rest() -> None:
    rows = by_name(preflight_plan(inputs(role_endpoints=[SIP2_CLOUD, SIP2_LISTENER])))
    cloud = rows["stunnel-sip2-selfcheck-cloud"]
    assert (cloud["integration"], cloud["protocol"], cloud["direction"]) == (
        "Self-check",
        "TLS-secured SIP2",
        "outbound",
    )
    assert cloud["initiator"] == "Stunnel workstation (onprem1)"
    assert cloud["target"] == "Alma (sip2.alma.example.org)"
    assert cloud["endpoint"] == {
        "name": "stunnel-sip2-selfcheck-cloud",
        "host": "sip2.alma.example.org",
        "port": 6443,
        "probe": "sip2",
        "tls_server_name": "cloud.example.org",
    }
    listener = rows["stunnel-sip2-selfcheck-listener"]
    assert listener["endpoint"] == {
        "name": "stunnel-sip2-selfcheck-listener",
        "port": 6001,
        "probe": "listen",
        "listen_address": "127.0.0.1",
    }
    assert (listener["probe_from"], listener["note"]) == ("host", "local listener")


@pytest.mark.parametrize(
    ("outside", "probe_from", "probe", "note", "host"),
    [
        ("outside1", "outside", "ssh", "probed from outside1", "203.0.113.10"),
        ("", "host", "listen", LOCAL_NOTE, None),
        (None, "host", "listen", LOCAL_NOTE, None),
    ],
)
def test_inbound_paths_follow_the_outside_probe_host(
    outside: Any, probe_from: str, probe: str, note: str, host: Any
) -> None:
    row = by_name(preflight_plan(inputs(outside_probe_host=outside, role_endpoints=[SFTP_ROW])))["sftp-drop"]
    assert (row["direction"], row["probe_from"], row["note"]) == ("inbound", probe_from, note)
    assert row["endpoint"].get("host") == host
    assert row["endpoint"]["probe"] == probe
    assert row["port"] == 2222
    assert row["initiator"] == "Alma"


def test_site_inbound_entry_with_a_host_is_probed_from_the_host_without_outside_probe() -> None:
    ldaps = {"name": "ldaps", "integration": "Staff authentication", "direction": "inbound"}
    ldaps.update(host="ldap.example.edu", port=636, probe="ldaps")
    row = preflight_plan(inputs(extra_endpoints=[ldaps]))[0]
    assert (row["probe_from"], row["note"]) == ("host", INSIDE_NOTE)
    assert row["endpoint"]["host"] == "ldap.example.edu"
    assert row["initiator"] == "Alma"
    row = preflight_plan(inputs(extra_endpoints=[ldaps], outside_probe_host="outside1"))[0]
    assert (row["probe_from"], row["endpoint"]["host"]) == ("outside", "ldap.example.edu")


@pytest.mark.parametrize(
    ("name", "outside", "proves"),
    [
        # Outbound from the host for a workstation row: the workstations' own path is not probed.
        (
            "staff-https",
            None,
            "a TLS handshake with myinst.alma.example.org:443 completes and its certificate chain and name"
            " are verified, from onprem1; not from the Staff workstation's own network",
        ),
        # The tunnel's own row: the host is the initiator, nothing is left out.
        (
            "stunnel-sip2-selfcheck-cloud",
            None,
            "the SIP2 server behind sip2.alma.example.org:6443 answers a status request with a valid ACS"
            " status over TLS (its certificate chain and name are verified), from onprem1",
        ),
        (
            "stunnel-sip2-selfcheck-listener",
            None,
            "a service of onprem1 listens on port 6001; nothing connected to it, so not that SIP2 self-check"
            " stations can reach it",
        ),
        # Inbound without an outside probe host: only a listening socket.
        (
            "sftp-drop",
            None,
            "a service of onprem1 listens on port 2222; nothing connected to it, so not that Alma can reach it",
        ),
        # Inbound from the outside probe host: a stand-in for the vendor, not its addresses.
        (
            "sftp-drop",
            "outside1",
            "the SSH server at 203.0.113.10:2222 sends its identification (no login), from outside1, standing"
            " in for Alma (not its own addresses)",
        ),
        # A site's inbound entry on another campus host, probed from the host itself.
        (
            "ldaps",
            None,
            "a TLS handshake with the LDAPS server at ldap.example.edu:636 verifies (no bind), from onprem1;"
            " not that Alma can reach it from outside",
        ),
        (
            "oclc",
            None,
            "a TCP connection to myinst.alma.example.org:5500 opens (the network path, not the service behind"
            " it), from onprem1; not from the OCLC Connexion's own network",
        ),
    ],
)
def test_each_row_says_what_a_pass_proves(name: str, outside: Any, proves: str) -> None:
    ldaps = {"name": "ldaps", "integration": "Staff authentication", "direction": "inbound"}
    ldaps.update(host="ldap.example.edu", port=636, probe="ldaps")
    oclc = dict(STAFF, name="oclc", integration="OCLC Connexion", initiator="OCLC Connexion", port=5500)
    rows = by_name(
        preflight_plan(
            inputs(
                vendor_endpoints=[dict(STAFF, probe="tls", initiator="Staff workstation"), oclc, ldaps],
                role_endpoints=[SIP2_CLOUD, SIP2_LISTENER, SFTP_ROW],
                outside_probe_host=outside,
            )
        )
    )
    assert rows[name]["proves"] == proves


@pytest.mark.parametrize(
    ("mail_probe_host", "smtp_from", "sftp_from"),
    [
        (None, "outside", "outside"),
        ("o", "outside", "outside"),
        ("relay-probe", "outside_mail", "outside"),
    ],
)
def test_inbound_smtp_rows_follow_the_mail_probe_host(mail_probe_host: str, smtp_from: str, sftp_from: str) -> None:
    """The probe type decides (smtp), whichever list the row comes from."""
    site_smtp = {"name": "site-smtp", "integration": "Email", "direction": "inbound", "port": 2525, "probe": "smtp"}
    rows = by_name(
        preflight_plan(
            inputs(
                extra_endpoints=[site_smtp],
                role_endpoints=[SMTP_ROW, SFTP_ROW],
                outside_probe_host="o",
                outside_mail_probe_host=mail_probe_host,
            )
        )
    )
    assert [rows[name]["probe_from"] for name in ("mail-relay-smtp", "site-smtp")] == [smtp_from] * 2
    assert rows["sftp-drop"]["probe_from"] == sftp_from
    assert rows["mail-relay-smtp"]["note"] == "probed from %s" % (mail_probe_host or "o")
    assert rows["mail-relay-smtp"]["endpoint"]["host"] == "203.0.113.10"


def test_the_ehlo_name_goes_to_outbound_smtp_checks_that_set_none() -> None:
    own = dict(SMARTHOST, name="own-ehlo", ehlo_name="relay.example.edu")
    rows = by_name(
        preflight_plan(inputs(role_endpoints=[SMTP_ROW, SMARTHOST, own], ehlo_name="x.edu", outside_probe_host="o"))
    )
    assert rows["mail-relay-smarthost"]["endpoint"]["ehlo_name"] == "x.edu"
    assert rows["own-ehlo"]["endpoint"]["ehlo_name"] == "relay.example.edu"
    assert "ehlo_name" not in rows["mail-relay-smtp"]["endpoint"]


@pytest.mark.parametrize("outside", ["o", None])
def test_one_listener_for_two_integrations_is_one_check_naming_both(outside: Any) -> None:
    print_smtp = dict(SMTP_ROW, name="print-proxy-smtp", integration="Email (print via email messages)")
    print_smtp["target"] = "Print proxy (onprem1)"
    rows = preflight_plan(
        inputs(role_endpoints=[SMTP_ROW, print_smtp, dict(print_smtp, name="again")], outside_probe_host=outside)
    )
    assert [row["name"] for row in rows] == ["mail-relay-smtp"]
    assert rows[0]["integration"] == "Email; Email (print via email messages)"


def test_vendor_endpoint_defaults_and_timeout() -> None:
    rows = preflight_plan(inputs(vendor_endpoints=[STAFF, dict(STAFF, name="z3950", port=210, timeout=2)], timeout=5))
    assert rows[0]["initiator"] == "onprem1"
    assert rows[0]["target"] == "Alma (myinst.alma.example.org)"
    assert rows[0]["protocol"] == "TCP"
    assert rows[0]["endpoint"]["timeout"] == 5
    assert rows[1]["endpoint"]["timeout"] == 2
    assert all(row["required"] for row in rows)


def test_empty_inputs_give_an_empty_plan() -> None:
    assert preflight_plan(inputs()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"extra_endpoints": [dict(STAFF, name="ldaps", port=70000)]},
            "preflight_extra_endpoints[0] (name: ldaps): port 70000 is outside 1-65535",
        ),
        ({"vendor_endpoints": [dict(STAFF, port=True)]}, "(name: staff-https): port True is outside 1-65535"),
        ({"vendor_endpoints": [dict(STAFF, probe="http")]}, "probe 'http' is not one of"),
        ({"vendor_endpoints": [dict(STAFF, prot=1)]}, "unknown key(s) prot"),
        # source is for the rows the roles contribute only.
        ({"vendor_endpoints": [dict(STAFF, source="x")]}, "unknown key(s) source"),
        ({"vendor_endpoints": [{k: v for k, v in STAFF.items() if k != "integration"}]}, "integration"),
        ({"vendor_endpoints": [{k: v for k, v in STAFF.items() if k != "host"}]}, "host is required"),
        ({"vendor_endpoints": [dict(STAFF, direction="sideways")]}, "direction 'sideways'"),
        ({"vendor_endpoints": [dict(STAFF, direction="local")]}, "probe must be listen, got 'tcp'"),
        (
            {"extra_endpoints": [dict(STAFF, name="spf", probe="spf", port=53, spf_domain="spf.example.org")]},
            "preflight_extra_endpoints[0] (name: spf): an spf probe needs spf_domain and the list spf_allowed",
        ),
        ({"vendor_endpoints": [dict(STAFF, required="yes")]}, "required must be true or false"),
        ({"vendor_endpoints": [dict(STAFF, timeout=0)]}, "timeout must be a positive number"),
        ({"vendor_endpoints": [dict(STAFF, name="has space")]}, "name 'has space'"),
        ({"vendor_endpoints": [STAFF, STAFF]}, "name 'staff-https' is already used by preflight_vendor_endpoints[0]"),
        ({"vendor_endpoints": ["staff"]}, "preflight_vendor_endpoints[0]: expected a dict"),
        ({"vendor_endpoints": {"name": "x"}}, "preflight_vendor_endpoints: expected a list"),
        ({"role_endpoints": {"name": "x"}}, "preflight_role_endpoints: expected a list"),
        (
            {"role_endpoints": [dict(SFTP_ROW, port=70022)]},
            "preflight_role_endpoints[0] (name: sftp-drop) (from sftp_drop_port): port 70022 is outside 1-65535",
        ),
        # The site's names win: the role's row is the one named in the error.
        (
            {"vendor_endpoints": [dict(STAFF, name="sftp-drop")], "role_endpoints": [SFTP_ROW]},
            "preflight_role_endpoints[0] (name: sftp-drop) (from sftp_drop_port): name 'sftp-drop' is already used"
            " by preflight_vendor_endpoints[0]",
        ),
    ],
)
def test_bad_input_names_the_entry(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(AnsibleFilterError, match="nothing was probed") as info:
        preflight_plan(inputs(**kwargs))
    assert message in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(AnsibleFilterError) as info:
        preflight_plan(inputs(vendor_endpoints=[dict(STAFF, port=0), dict(STAFF, name="b", probe="x")]))
    assert "2 problem(s)" in str(info.value)


# --- report and its renderings ---------------------------------------------------------


def make_report(**kwargs: Any) -> dict[str, Any]:
    checks = preflight_plan(
        inputs(
            vendor_endpoints=[STAFF, dict(STAFF, name="primo-bo", port=1443, required=False)],
            extra_endpoints=[dict(STAFF, name="oclc", integration="OCLC Connexion", port=5500)],
            role_endpoints=[dict(SFTP_ROW, port=22)],
        )
    )
    results = [
        {"name": "staff-https", "status": "ok", "ok": True, "latency_ms": 12.5, "message": "TCP connection accepted"},
        {"name": "primo-bo", "status": "refused", "ok": False, "latency_ms": 0.4, "message": "connection refused"},
        {"name": "oclc", "status": "timeout", "ok": False, "latency_ms": 2000.0, "message": "timed out"},
        {"name": "sftp-drop", "status": "ok", "ok": True, "latency_ms": 0.1, "message": "listening on 0.0.0.0 port 22"},
    ]
    args: dict[str, Any] = {"host": "onprem1", "generated_at": "2026-01-01T00:00:00Z", "named_users": 10}
    args.update(kwargs)
    return preflight_report(checks, results, **args)


def test_report_summary_and_bandwidth() -> None:
    report = make_report()
    assert report["summary"]["total"] == 4
    assert report["summary"]["failed_required_names"] == ["oclc"]
    assert report["summary"]["by_status"] == {"ok": 2, "refused": 1, "timeout": 1}
    assert report["summary"]["checked_locally"] == 1
    assert report["bandwidth"]["minimum_mb"] == 0.25
    assert report["inbound"] == LOCAL_NOTE
    json.dumps(report)  # serialisable as it is written
    assert "endpoint" not in report["rows"][0]


def test_report_without_named_users_has_no_bandwidth() -> None:
    assert make_report(named_users=0)["bandwidth"] is None


def test_missing_result_is_not_run_and_failed() -> None:
    checks = preflight_plan(inputs(role_endpoints=[SFTP_ROW], outside_probe_host="outside1"))
    report = preflight_report(checks, [], host="onprem1", outside_probe_host="outside1", not_run_reason="unreachable")
    row = report["rows"][0]
    assert (row["status"], row["ok"], row["message"]) == ("not_run", False, "no result: unreachable")
    assert report["summary"]["failed_required"] == 1


def test_junit_failures_and_skipped() -> None:
    text = preflight_junit(make_report())
    root = ET.fromstring(text)  # noqa: S314 - our own output
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "1")
    failures = suite.findall("testcase/failure")
    assert [f.get("type") for f in failures] == ["timeout"]
    assert suite.find("properties/property[@name='bandwidth_minimum_mb']").get("value") == "0.25"
    assert len(suite.findall("testcase/skipped")) == 1
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')


def test_junit_says_what_each_case_proves() -> None:
    root = ET.fromstring(preflight_junit(make_report()))  # noqa: S314 - our own output
    proves = [p.get("value") for p in root.findall("testsuite/testcase/properties/property[@name='proves']")]
    assert len(proves) == 4
    assert (
        proves[3] == "a service of onprem1 listens on port 22; nothing connected to it, so not that Alma can reach it"
    )


def test_junit_escapes_names() -> None:
    report = make_report()
    report["rows"][0]["integration"] = 'Staff <"&> workstation'
    root = ET.fromstring(preflight_junit(report))  # noqa: S314 - our own output
    assert root.find("testsuite/testcase").get("classname") == "preflight.onprem1.staff_workstation"


def test_markdown_table_layout() -> None:
    text = preflight_markdown(make_report())
    lines = text.splitlines()
    header = "| %s |" % " | ".join(MARKDOWN_COLUMNS)
    assert header == "| Integration type | Initiator | Target | Protocol | Port | A pass proves | Result |"
    start = lines.index(header)
    assert lines[start + 1] == "| --- | --- | --- | --- | --- | --- | --- |"
    rows = lines[start + 2 :]
    assert rows[0] == (
        "| Staff workstation | onprem1 | Alma (myinst.alma.example.org) | TCP | 443 | a TCP connection to"
        " myinst.alma.example.org:443 opens (the network path, not the service behind it), from onprem1 |"
        " ok (12.5 ms) |"
    )
    assert "**REFUSED** (optional): connection refused" in rows[1]
    assert rows[2].endswith("from onprem1 | **TIMEOUT**: timed out |")
    assert "checked locally (listen only): ok" in rows[3]
    assert "Bandwidth: 10 named users need at least 0.25 MB (0.025 MB per user" in text


def test_markdown_escapes_pipes() -> None:
    report = make_report()
    report["rows"][0]["target"] = "a|b\nc"
    assert "| a\\|b c |" in preflight_markdown(report)


@pytest.mark.parametrize(
    ("previous", "expected"),
    [
        ("", ["no previous report"]),
        ("{not json", ["previous report is not valid JSON"]),
        (None, ["no previous report"]),
        ("same", []),
        ("flip", ["oclc: ok -> timeout"]),
        ("fewer", ["sftp-drop: new path (ok)"]),
        ("more", ["gone: path no longer checked"]),
    ],
)
def test_changes_compare_statuses_only(previous: Any, expected: list[str]) -> None:
    report = make_report()
    old = make_report(generated_at="2025-01-01T00:00:00Z")
    for row in old["rows"]:
        row["latency_ms"] = 999.0  # timings never count as a change
    if previous == "same":
        previous = json.dumps(old)
    elif previous == "flip":
        old["rows"][2]["status"] = "ok"
        previous = json.dumps(old)
    elif previous == "fewer":
        old["rows"] = old["rows"][:3]
        previous = old
    elif previous == "more":
        old["rows"].append({"name": "gone", "status": "ok"})
        previous = old
    assert preflight_changes(report, previous) == expected


def endpoint(name: str, port: int) -> dict[str, Any]:
    return {"name": name, "host": "203.0.113.10", "port": port}


def probe_plan(host: list, outside: str, inbound: list, mail: str = "", mail_inbound: list | None = None) -> dict:
    return {
        "host": host,
        "outside": {"probe_host": outside, "endpoints": inbound},
        "outside_mail": {"probe_host": mail or outside, "endpoints": mail_inbound or []},
    }


HOSTVARS = {
    "onprem1": {
        "__preflight_probe_plan": probe_plan(
            [endpoint("sip2-cloud", 6443)], "cloud", [endpoint("sftp-drop", 22)], "relay", [endpoint("smtp", 25)]
        )
    },
    "onprem2": {
        "__preflight_probe_plan": probe_plan([endpoint("sip2-cloud", 6443)], "cloud", [endpoint("sftp-drop", 22)])
    },
    "cloud": {},
    "relay": {},
}
PLAY = ["onprem1", "onprem2", "cloud", "relay"]


def test_each_host_probes_its_own_paths_and_the_inbound_paths_of_the_hosts_that_name_it() -> None:
    share = preflight_probe_share
    assert [e["name"] for e in share(HOSTVARS, PLAY, "onprem1")] == ["onprem1|sip2-cloud"]
    assert [e["name"] for e in share(HOSTVARS, PLAY, "cloud")] == ["onprem1|sftp-drop", "onprem2|sftp-drop"]
    assert [e["name"] for e in share(HOSTVARS, PLAY, "relay")] == ["onprem1|smtp"]
    # Only hosts of the play count, and the endpoints themselves are not changed.
    assert share(HOSTVARS, ["cloud"], "cloud") == []
    assert share(HOSTVARS, PLAY, "cloud")[0] == {**endpoint("sftp-drop", 22), "name": "onprem1|sftp-drop"}
    assert HOSTVARS["onprem1"]["__preflight_probe_plan"]["outside"]["endpoints"][0]["name"] == "sftp-drop"


def test_every_result_goes_back_to_its_own_host_under_its_own_name() -> None:
    registered = {
        "onprem1": {"__preflight_probes": {"results": [{"name": "onprem1|sip2-cloud", "ok": True}]}},
        "onprem2": {"__preflight_probes": {"results": [{"name": "onprem2|sip2-cloud", "ok": False}]}},
        "cloud": {
            "__preflight_probes": {
                "results": [{"name": "onprem1|sftp-drop", "ok": True}, {"name": "onprem2|sftp-drop", "ok": True}]
            }
        },
        # An unreachable probe host registered no results: its rows will be reported as not run.
        "relay": {"__preflight_probes": {"unreachable": True, "msg": "Failed to connect"}},
    }
    mine = preflight_probe_results(registered, PLAY, "onprem1")
    assert mine == [{"name": "sip2-cloud", "ok": True}, {"name": "sftp-drop", "ok": True}]
    assert preflight_probe_results(registered, PLAY, "onprem2") == [
        {"name": "sip2-cloud", "ok": False},
        {"name": "sftp-drop", "ok": True},
    ]
    # A host whose name another host's name starts with gets none of that host's results.
    assert preflight_probe_results(registered, PLAY, "onprem") == []
