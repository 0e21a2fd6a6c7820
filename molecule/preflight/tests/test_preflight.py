"""libsys.onprem.preflight: the reports on the controller hold the vendor table's rows with the
statuses the simulated peers make (live, refused, dropped), inbound paths are really probed
from the outside host when one is set, bad input fails before any probe, and a failed required
path fails the play only after the report is written."""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import play_recap, podman_host, run_ansible_playbook

DEB12 = "onprem-pre-deb12"  # inbound paths probed from the outside probe host
DEB13 = "onprem-pre-deb13"  # no outside probe host: inbound paths checked as listeners
OUTSIDE_ADDRESS = "198.51.100.56"
HOSTS = (DEB12, DEB13)
# sshd's lines by their syslog identifier: a pre-authentication process exits right after it
# logs, often before journald has read its cgroup, so "-u ssh" misses some of them.
SSHD_JOURNAL = "journalctl -t sshd --no-pager -o cat"
INBOUND_LOCAL = ("stunnel-asrs-in-inbound", "sftp-drop", "mail-relay-smtp")

STATUSES = {
    "staff-https": "ok",
    "primo-back-office": "refused",
    "oclc-connexion": "timeout",
    "z3950": "ok",
    "resource-sharing": "ok",
    "campus-ldaps": "ok",
    "stunnel-sip2-selfcheck-cloud": "ok",
    "stunnel-sip2-selfcheck-listener": "ok",
    "stunnel-asrs-out-cloud": "ok",
    "stunnel-asrs-out-listener": "ok",
    "stunnel-asrs-in-inbound": "ok",
    "stunnel-asrs-in-asrs": "ok",
    "sftp-drop": "ok",
    "mail-relay-smtp": "ok",
    "mail-relay-smarthost": "ok",
}
BANDWIDTH = {DEB12: (500, "5 MB"), DEB13: (120, "1.8 MB")}
COLUMNS = "| Integration type | Initiator | Target | Protocol | Port | A pass proves | Result |"


def report_dir() -> Path:
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "preflight-report"


def load_json(host: str) -> dict:
    return json.loads((report_dir() / f"{host}.json").read_text())


def rows_by_name(host: str) -> dict[str, dict]:
    return {row["name"]: row for row in load_json(host)["rows"]}


def run_converge(*args: str, extra_vars: dict | None = None) -> subprocess.CompletedProcess:
    """Run the scenario's converge playbook again with extra arguments (as molecule would)."""
    playbook = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "converge.yml"
    return run_ansible_playbook(playbook, *args, timeout=600, extra_vars=extra_vars)


@pytest.mark.parametrize("host", HOSTS)
def test_report_files_exist(host: str) -> None:
    for ext in ("json", "xml", "md"):
        path = report_dir() / f"{host}.{ext}"
        assert path.is_file() and path.stat().st_size > 0, path


@pytest.mark.parametrize("host", HOSTS)
def test_every_path_has_the_status_the_peers_make(host: str) -> None:
    statuses = {name: row["status"] for name, row in rows_by_name(host).items()}
    assert statuses == STATUSES
    summary = load_json(host)["summary"]
    assert summary["failed_required_names"] == ["oclc-connexion"]
    assert summary["total"] == len(STATUSES)


def test_inbound_paths_are_probed_from_the_outside_host() -> None:
    rows = rows_by_name(DEB12)
    for name in (*INBOUND_LOCAL, "campus-ldaps"):
        assert rows[name]["probe_from"] == "outside", name
        assert rows[name]["note"] == "probed from onprem-pre-outside"
    assert rows["sftp-drop"]["host"] == "198.51.100.42"
    assert rows["sftp-drop"]["probe"] == "ssh"
    assert rows["sftp-drop"]["details"]["banner"].startswith("SSH-2.0-")
    assert rows["mail-relay-smtp"]["probe"] == "smtp"


def test_the_outside_host_really_connected_to_the_integration_host() -> None:
    """The SSH and SMTP services of deb12 saw connections from the outside probe's address (the
    host's own sshd logs the probe, which reads its banner and closes)."""
    host = podman_host(DEB12)
    for unit in ("peer-listener-mail-relay", "peer-listener-asrs-in"):
        journal = host.check_output(f"journalctl -u {unit} --no-pager -o cat")
        assert f"connection from {OUTSIDE_ADDRESS}" in journal, unit
    assert f"Connection closed by {OUTSIDE_ADDRESS} port" in host.check_output(SSHD_JOURNAL)


def test_without_an_outside_host_inbound_paths_are_listen_checks() -> None:
    rows = rows_by_name(DEB13)
    for name in INBOUND_LOCAL:
        assert rows[name]["probe"] == "listen", name
        assert rows[name]["note"] == "checked locally (listen only)"
    # A site-given inbound path to another host is probed from the host itself, and said so.
    assert rows["campus-ldaps"]["probe_from"] == "host"
    assert rows["campus-ldaps"]["note"] == "probed from the host itself (no outside probe host)"
    # Listen checks do not connect: nobody ever connected to deb13's inbound services.
    host = podman_host(DEB13)
    for unit in ("peer-listener-mail-relay", "peer-listener-asrs-in"):
        journal = host.check_output(f"journalctl -u {unit} --no-pager -o cat")
        assert "connection from" not in journal, unit
    assert OUTSIDE_ADDRESS not in host.check_output(SSHD_JOURNAL)


@pytest.mark.parametrize("host", HOSTS)
def test_sip2_over_tls_reached_the_acs(host: str) -> None:
    row = rows_by_name(host)["stunnel-sip2-selfcheck-cloud"]
    assert row["probe"] == "sip2"
    assert row["details"]["tls"] is True
    assert row["details"]["online"] is True
    assert row["details"]["institution_id"] == "EXAMPLE"
    assert row["details"]["tls_version"] in ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize("host", HOSTS)
def test_junit_counts_one_failure_and_one_skipped(host: str) -> None:
    root = ET.parse(report_dir() / f"{host}.xml").getroot()  # noqa: S314 - our own report
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    failures = [c for c in cases if c.find("failure") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert len(cases) == int(suite.get("tests")) == len(STATUSES)
    assert len(failures) == int(suite.get("failures")) == int(root.get("failures")) == 1
    assert failures[0].get("name").startswith("oclc-connexion:")
    assert failures[0].find("failure").get("type") == "timeout"
    assert len(skipped) == int(suite.get("skipped")) == 1
    assert skipped[0].get("name").startswith("primo-back-office:")


@pytest.mark.parametrize("host", HOSTS)
def test_markdown_has_the_vendor_table_and_the_bandwidth(host: str) -> None:
    text = (report_dir() / f"{host}.md").read_text()
    lines = text.splitlines()
    assert COLUMNS in lines
    table = lines[lines.index(COLUMNS) + 2 :]
    assert len([line for line in table if line.startswith("| ")]) == len(STATUSES)
    by_port = {}
    for line in table:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        by_port.setdefault(cells[4], []).append(cells)
    assert any(c[0] == "OCLC Connexion" and "TIMEOUT" in c[6] for c in by_port["5500"])
    assert any(c[0] == "Staff workstation" and "REFUSED" in c[6] and "(optional)" in c[6] for c in by_port["1443"])
    assert all(c[6].startswith(("ok", "checked locally", "probed from")) for c in by_port["6443"])
    users, figure = BANDWIDTH[host]
    assert f"Bandwidth: {users} named users need at least {figure} " in text
    # What a pass of the S/FTP row proves follows who probed it.
    (sftp,) = by_port["22"]
    if host == DEB13:
        assert "checked locally (listen only): ok" in sftp[6]
        assert (
            sftp[5] == f"a service of {host} listens on port 22; nothing connected to it, so not that Alma can reach it"
        )
    else:
        assert sftp[5] == (
            "the SSH server at 198.51.100.42:22 sends its identification (no login), from onprem-pre-outside,"
            " standing in for Alma (not its own addresses)"
        )


def test_bad_input_fails_before_probing_and_names_the_entry() -> None:
    before = (report_dir() / f"{DEB12}.json").stat().st_mtime_ns
    bad = {
        "preflight_extra_endpoints": [
            {"name": "campus-ldaps", "integration": "Staff authentication", "host": "198.51.100.48", "port": 636},
            {"name": "bad-port", "integration": "Staff workstation", "host": "198.51.100.48", "port": 70000},
        ]
    }
    result = run_converge("--check", "--limit", DEB12, extra_vars=bad)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "preflight_extra_endpoints[1] (name: bad-port): port 70000 is outside 1-65535" in output
    assert "Probe the outbound paths" not in output
    assert (report_dir() / f"{DEB12}.json").stat().st_mtime_ns == before


def test_failed_required_path_fails_the_play_after_the_report() -> None:
    path = report_dir() / f"{DEB12}.json"
    before = path.stat().st_mtime_ns
    result = run_converge("--limit", DEB12, extra_vars={"preflight_fail_on_required": True})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "1 required path(s) failed on onprem-pre-deb12: oclc-connexion: timeout" in output
    assert path.stat().st_mtime_ns > before
    assert rows_by_name(DEB12)["oclc-connexion"]["status"] == "timeout"


def test_changed_is_reported_only_when_a_path_status_changes() -> None:
    """The report files are rewritten every run (timings); 'changed' means a status changed."""
    cloud = podman_host("onprem-pre-cloud")
    cloud.check_output("systemctl stop peer-listener-z3950.service")
    try:
        result = run_converge("--limit", DEB12)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "z3950: ok -> refused" in output
        assert play_recap(output, DEB12)["changed"] == 1, output
        assert rows_by_name(DEB12)["z3950"]["status"] == "refused"
    finally:
        cloud.check_output("systemctl start peer-listener-z3950.service")
    result = run_converge("--limit", DEB12)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "z3950: refused -> ok" in output
    assert play_recap(output, DEB12)["changed"] == 1, output
    assert rows_by_name(DEB12)["z3950"]["status"] == "ok"
