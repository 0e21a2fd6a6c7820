# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host-side status command of the status role (libsys-onprem-status): every check type
against real loopback servers, files and fake systemctl/postqueue/nft/openssl scripts, the exit
codes, the text and JSON reports and the Prometheus textfile."""

from __future__ import annotations

import calendar
import datetime
import json
import os
import re
import shlex
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.libsys.onprem.plugins.module_utils import sip2
from ansible_collections.libsys.onprem.tests.unit.loopback import LOOPBACK, SERVER_NAME, FakeDns, ThreadedServer
from ansible_collections.libsys.onprem.tests.unit.role_files import MODULE_UTILS, load_role_file

DAY = 86400

# The program with the modules the role installs next to it, as on a host.
status = load_role_file(
    "status",
    "libsys-onprem-status.py",
    "libsys_onprem_status",
    companions={f"libsys_onprem_{name}.py": MODULE_UTILS / f"{name}.py" for name in ("sip2", "spf")},
)
COMMAND = Path(status.__file__)


@pytest.fixture(autouse=True)
def no_real_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every program at a path that does not exist: a test runs the fakes it sets up, never
    this machine's systemctl, postqueue, nft or openssl."""
    for name in list(status.COMMANDS):
        monkeypatch.setitem(status.COMMANDS, name, str(tmp_path / ("missing-" + name)))


def fake_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, *, stdout: str = "", stderr: str = "", rc: int = 0
) -> Path:
    """A shell script standing in for `name` that prints the given output, exits with rc and
    keeps its arguments (one per line) in the file whose path is returned."""
    folder = tmp_path / ("fake-" + name)
    folder.mkdir()
    (folder / "stdout").write_text(stdout)
    (folder / "stderr").write_text(stderr)
    args = folder / "args"
    script = folder / name
    script.write_text(
        "#!/bin/sh\n"
        "printf '%%s\\n' \"$@\" > %s\n"
        "cat %s\n"
        "cat %s >&2\n"
        "exit %d\n" % (*(shlex.quote(str(p)) for p in (args, folder / "stdout", folder / "stderr")), rc)
    )
    script.chmod(0o755)
    monkeypatch.setitem(status.COMMANDS, name, str(script))
    return args


def write_config(tmp_path: Path, checks: list, host: str = "onprem1") -> str:
    path = tmp_path / "status.json"
    path.write_text(json.dumps({"host": host, "checks": checks}))
    return str(path)


def run_main(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = status.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------------------
# unit


def test_an_active_unit_is_ok_and_systemctl_is_asked_about_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = fake_command(tmp_path, monkeypatch, "systemctl", stdout="active\n")
    result = status.run_check({"name": "koha", "type": "unit", "unit": "koha-sip.service", "integration": "sip2"})
    assert result == {
        "name": "koha",
        "type": "unit",
        "integration": "sip2",
        "status": "ok",
        "summary": "koha-sip.service is active",
        "values": {"active": 1},
    }
    assert args.read_text().splitlines() == ["is-active", "koha-sip.service"]


@pytest.mark.parametrize(("state", "rc"), [("inactive", 3), ("failed", 3), ("activating", 3)])
def test_a_unit_that_is_not_active_is_critical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str, rc: int
) -> None:
    fake_command(tmp_path, monkeypatch, "systemctl", stdout=state + "\n", rc=rc)
    result = status.run_check({"name": "tunnel", "type": "unit", "unit": "stunnel@sip2.service"})
    assert (result["status"], result["summary"]) == ("critical", "stunnel@sip2.service is %s" % state)
    assert result["values"] == {"active": 0}


def test_a_unit_check_without_systemctl_is_critical() -> None:
    result = status.run_check({"name": "tunnel", "type": "unit", "unit": "stunnel@sip2.service"})
    assert result["status"] == "critical"
    assert "systemctl did not run" in result["summary"]


@pytest.mark.parametrize(
    ("shown", "expected", "words"),
    [
        (
            "Result=success\nExecMainExitTimestamp=Mon 2026-12-07 10:00:00 UTC\nExecMainStatus=0\n",
            "ok",
            "hook.service: last run ended Mon 2026-12-07 10:00:00 UTC",
        ),
        ("Result=success\nExecMainExitTimestamp=\nExecMainStatus=0\n", "ok", "hook.service: not run yet"),
        (
            "Result=exit-code\nExecMainExitTimestamp=Mon 2026-12-07 10:00:00 UTC\nExecMainStatus=3\n",
            "warning",
            "hook.service: the last run failed (exit-code, status 3) at Mon 2026-12-07 10:00:00 UTC",
        ),
    ],
    ids=["succeeded", "never-ran", "failed"],
)
def test_the_last_run_of_a_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shown: str, expected: str, words: str
) -> None:
    args = fake_command(tmp_path, monkeypatch, "systemctl", stdout=shown)
    result = status.run_check({"name": "hook", "type": "unit_result", "unit": "hook.service"})
    assert (result["status"], result["summary"]) == (expected, words)
    assert result["values"] == {"last_run_ok": 1 if expected == "ok" else 0}
    assert args.read_text().splitlines()[-1] == "hook.service"


# ---------------------------------------------------------------------------------------
# postfix_queue


def queue_entry(queue: str, age: float, reason: str = "") -> str:
    recipient = {"address": "patron@example.net"}
    if reason:
        recipient["delay_reason"] = reason
    entry = {
        "queue_name": queue,
        "queue_id": "4F0A1B2C3D",
        "arrival_time": int(time.time() - age),
        "message_size": 2048,
        "forced_expire": False,
        "sender": "koha@example.org",
        "recipients": [recipient],
    }
    return json.dumps(entry) + "\n"


REASON = "connect to mx.example.net[192.0.2.25]:25: Connection timed out"


@pytest.mark.parametrize(
    ("lines", "expected", "words"),
    [
        ([], "ok", ["queue empty"]),
        ([queue_entry("active", 5), queue_entry("deferred", 600, REASON)], "ok", ["1 active", "1 deferred"]),
        ([queue_entry("deferred", 7200, REASON), queue_entry("deferred", 60, "x")], "warning", ["2h00m old", REASON]),
        ([queue_entry("deferred", 2 * DAY, REASON), queue_entry("active", 1)], "critical", ["2d00h old", REASON]),
        ([queue_entry("hold", 30)], "warning", ["1 hold"]),
    ],
    ids=["empty", "young-deferred", "deferred-2-hours", "deferred-2-days", "held"],
)
def test_the_postfix_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[str], expected: str, words: list[str]
) -> None:
    args = fake_command(tmp_path, monkeypatch, "postqueue", stdout="".join(lines))
    result = status.run_check({"name": "mail", "type": "postfix_queue", "integration": "mail"})
    assert result["status"] == expected, result
    for word in words:
        assert word in result["summary"]
    assert args.read_text().splitlines() == ["-j"]
    counts = result["values"]["messages"]
    assert set(counts) == set(status.POSTFIX_QUEUES)
    for queue in status.POSTFIX_QUEUES:
        assert counts[queue] == sum(1 for line in lines if json.loads(line)["queue_name"] == queue)
    deferred = [time.time() - json.loads(line)["arrival_time"] for line in lines if '"deferred"' in line]
    assert result["values"]["deferred_oldest_age_seconds"] == pytest.approx(max(deferred, default=0), abs=3)


def test_the_queue_thresholds_are_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_command(tmp_path, monkeypatch, "postqueue", stdout=queue_entry("deferred", 600, REASON))
    check = {"name": "mail", "type": "postfix_queue", "warn_age": 300, "critical_age": 900}
    assert status.run_check(check)["status"] == "warning"
    check["critical_age"] = 500
    assert status.run_check(check)["status"] == "critical"


def test_a_stopped_postfix_is_critical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = "postqueue: fatal: Queue report unavailable - mail system is down\n"
    fake_command(tmp_path, monkeypatch, "postqueue", stderr=stderr, rc=69)
    result = status.run_check({"name": "mail", "type": "postfix_queue"})
    assert result["status"] == "critical"
    assert result["summary"].startswith("Postfix is not running")
    assert result["values"] == {}


def test_another_postqueue_failure_is_critical_with_its_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_command(
        tmp_path, monkeypatch, "postqueue", stderr="postqueue: fatal: bad command startup -- throttling\n", rc=75
    )
    result = status.run_check({"name": "mail", "type": "postfix_queue"})
    assert result["status"] == "critical"
    assert result["summary"] == "postqueue -j failed (exit 75): postqueue: fatal: bad command startup -- throttling"


# ---------------------------------------------------------------------------------------
# sip2


def test_the_sc_status_request_carries_a_valid_checksum() -> None:
    request = status.SC_STATUS
    message = sip2.parse(request, require_checksum=True)
    assert (message.code, message.fixed["protocol_version"], message.sequence) == ("99", "2.00", 0)
    assert status.sip2_checksum_ok(sip2.build("98", "Y" * 6 + "030003" + sip2.sip2_date() + "2.00"))
    assert not status.sip2_checksum_ok(b"98YYYYNN030003AY0AZ0000\r")


def test_an_acs_that_answers_is_ok(sip2_server: sip2.Sip2Server) -> None:
    check = {"name": "acs", "type": "sip2", "host": LOOPBACK, "port": sip2_server.server_address[1], "timeout": 5}
    result = status.run_check(check)
    assert result["status"] == "ok", result
    assert result["summary"].startswith("ACS status in ")
    assert result["summary"].endswith("online Y")
    assert result["values"]["up"] == 1
    assert 0 <= result["values"]["latency_seconds"] < 5


def reply_with(data: bytes):
    def handle(conn: socket.socket) -> None:
        sip2.read_message(conn)
        conn.sendall(data)

    return handle


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n", 'reply "HTTP/1.1 400 Bad Request" is not an ACS status'),
        (b"96\r", 'reply "96" is not an ACS status'),
        (b"940AY0AZFDFF\r", "is not an ACS status"),
        (b"98YYYYNN030003", "connection closed after 14 bytes"),
    ],
    ids=["http", "resend", "login-refused", "cut-off"],
)
def test_an_acs_that_answers_something_else_is_critical(reply: bytes, words: str) -> None:
    server = ThreadedServer(reply_with(reply))
    try:
        result = status.run_check({"name": "acs", "type": "sip2", "host": LOOPBACK, "port": server.port})
    finally:
        server.close()
    assert result["status"] == "critical"
    assert words in result["summary"]
    assert result["values"]["up"] == 0


def test_an_acs_status_with_a_wrong_checksum_is_critical(sip2_bad_checksum_server: sip2.Sip2Server) -> None:
    port = sip2_bad_checksum_server.server_address[1]
    result = status.run_check({"name": "acs", "type": "sip2", "host": LOOPBACK, "port": port})
    assert result["status"] == "critical"
    assert "has a wrong checksum" in result["summary"]


def test_a_refused_sip2_connection_is_critical(closed_port: int) -> None:
    result = status.run_check({"name": "acs", "type": "sip2", "host": LOOPBACK, "port": closed_port})
    assert result["status"] == "critical"
    assert result["summary"] == "SIP2 connection to %s:%d refused" % (LOOPBACK, closed_port)
    assert result["values"] == {"up": 0}


def test_a_tcp_path_that_opens_is_ok_and_a_refused_one_critical(sip2_server, closed_port: int) -> None:
    port = sip2_server.server_address[1]
    opened = status.run_check({"name": "printer", "type": "tcp", "host": LOOPBACK, "port": port})
    assert (opened["status"], opened["values"]) == ("ok", {"up": 1})
    assert opened["summary"].startswith(f"TCP connection to {LOOPBACK}:{port} in ")
    refused = status.run_check({"name": "printer", "type": "tcp", "host": LOOPBACK, "port": closed_port})
    assert (refused["status"], refused["values"]) == ("critical", {"up": 0})
    assert refused["summary"] == f"TCP connection to {LOOPBACK}:{closed_port} refused"


def test_a_silent_acs_times_out(silent_server: ThreadedServer) -> None:
    check = {"name": "acs", "type": "sip2", "host": LOOPBACK, "port": silent_server.port, "timeout": 1}
    result = status.run_check(check)
    assert result["status"] == "critical"
    assert result["summary"] == "SIP2 %s:%d timed out" % (LOOPBACK, silent_server.port)


def test_checks_run_at_the_same_time() -> None:
    """An ACS that answers only once four connections are open at once: all ok only if the checks overlap."""
    together = threading.Barrier(4, timeout=10)
    reply = sip2.build("98", "Y" * 6 + "030003" + sip2.sip2_date() + "2.00")

    def handle(conn: socket.socket) -> None:
        sip2.read_message(conn)
        together.wait()
        conn.sendall(reply)

    server = ThreadedServer(handle)
    checks = [
        {"name": "acs%d" % n, "type": "sip2", "host": LOOPBACK, "port": server.port, "timeout": 5} for n in range(4)
    ]
    try:
        results = status.run_checks(checks)
    finally:
        server.close()
    assert [r["name"] for r in results] == ["acs0", "acs1", "acs2", "acs3"]
    assert [r["status"] for r in results] == ["ok"] * 4, results


# ---------------------------------------------------------------------------------------
# tls


def tls_check(port: int, **settings) -> dict:
    return status.run_check({"name": "tunnel", "type": "tls", "host": LOOPBACK, "port": port, **settings})


def test_a_tls_server_with_a_valid_certificate_is_ok(tls_servers, pki) -> None:
    result = tls_check(tls_servers.good.port, server_name=SERVER_NAME, ca_path=pki.ca_file)
    assert result["status"] == "ok", result
    assert result["summary"] == "TLSv1.3 handshake with %s:%d, certificate valid for %s" % (
        LOOPBACK,
        tls_servers.good.port,
        SERVER_NAME,
    )
    assert result["values"] == {"up": 1}
    # Without server_name the host is the name: here an IP address, in the certificate's SANs.
    assert tls_check(tls_servers.good_tls12.port, ca_path=pki.ca_file)["summary"].startswith("TLSv1.2 handshake")


@pytest.mark.parametrize(
    ("server", "settings", "words"),
    [
        ("good", {"server_name": "wrong.example.org"}, "certificate not accepted: Hostname mismatch"),
        ("wrong_name", {"server_name": SERVER_NAME}, "certificate not accepted: Hostname mismatch"),
        ("wrong_ca", {"server_name": SERVER_NAME}, "certificate not accepted: unable to get local issuer"),
        ("expired", {"server_name": SERVER_NAME}, "certificate not accepted: certificate has expired"),
    ],
)
def test_a_tls_server_whose_certificate_does_not_verify_is_critical(
    tls_servers, pki, server: str, settings: dict, words: str
) -> None:
    result = tls_check(getattr(tls_servers, server).port, ca_path=pki.ca_file, **settings)
    assert result["status"] == "critical"
    assert words in result["summary"]
    assert result["values"] == {"up": 0}


def test_without_a_ca_the_handshake_alone_counts(tls_servers) -> None:
    result = tls_check(tls_servers.wrong_ca.port, server_name="anything.example.org")
    assert result["status"] == "ok"
    assert result["summary"].endswith("certificate not verified")
    # A server tunnel wanting a client certificate: at TLS 1.3 the client's side of the
    # handshake completes before the server refuses; at TLS 1.2 the refusal ends the handshake.
    assert tls_check(tls_servers.client_auth.port)["status"] == "ok"
    refused = tls_check(tls_servers.client_auth_tls12.port)
    assert refused["status"] == "critical"
    assert refused["summary"].startswith("TLS %s:%d: " % (LOOPBACK, tls_servers.client_auth_tls12.port))


def test_tls_to_a_closed_port_or_a_plain_server_is_critical(closed_port: int, sip2_server, pki) -> None:
    assert tls_check(closed_port)["summary"] == "TLS connection to %s:%d refused" % (LOOPBACK, closed_port)
    plain = tls_check(sip2_server.server_address[1], timeout=2)
    assert plain["status"] == "critical"
    missing = tls_check(closed_port, ca_path=str(Path(pki.tmp) / "no-such-ca.pem"))
    assert missing["status"] == "critical"
    assert missing["summary"].startswith("cannot load the CA certificates")


# ---------------------------------------------------------------------------------------
# certificate


def certificate_file(pki, tmp_path: Path, days: float) -> tuple[str, datetime.datetime]:
    """A leaf certificate (then its CA, as a chain file has it) whose notAfter is `days` away."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    not_after = now + datetime.timedelta(days=days)
    leaf = pki.ca.issue_cert("onprem1.example.org", not_before=now - datetime.timedelta(days=400), not_after=not_after)
    path = tmp_path / "cert-{}.pem".format(days)
    for blob in leaf.cert_chain_pems:
        blob.write_to_path(str(path), append=True)
    return str(path), not_after


@pytest.mark.parametrize(
    ("days", "expected", "words"),
    [(3, "critical", "expires in 3 days"), (10, "warning", "expires in 10 days"), (100, "ok", "expires in 100 days")],
)
def test_a_certificate_by_its_days_left(pki, tmp_path: Path, days: int, expected: str, words: str) -> None:
    path, not_after = certificate_file(pki, tmp_path, days + 0.01)
    result = status.run_check({"name": "cert", "type": "certificate", "path": path})
    assert result["status"] == expected
    assert words in result["summary"]
    assert not_after.strftime("%Y-%m-%d %H:%M UTC") in result["summary"]
    assert result["values"]["expiry_timestamp_seconds"] == int(not_after.timestamp())
    assert result["values"]["days_left"] == pytest.approx(days, abs=0.05)


def test_an_expired_certificate_is_critical(pki, tmp_path: Path) -> None:
    path, not_after = certificate_file(pki, tmp_path, -1)
    result = status.run_check({"name": "cert", "type": "certificate", "path": path})
    assert result["status"] == "critical"
    assert result["summary"] == "%s expired on %s" % (path, not_after.strftime("%Y-%m-%d %H:%M UTC"))
    assert result["values"]["days_left"] < 0


def test_the_certificate_thresholds_are_settings(pki, tmp_path: Path) -> None:
    path, _not_after = certificate_file(pki, tmp_path, 40)
    check = {"name": "cert", "type": "certificate", "path": path, "warn_days": 60, "critical_days": 30}
    assert status.run_check(check)["status"] == "warning"
    check["critical_days"] = 45
    assert status.run_check(check)["status"] == "critical"


def test_an_unreadable_certificate_is_critical(tmp_path: Path) -> None:
    missing = status.run_check({"name": "cert", "type": "certificate", "path": str(tmp_path / "none.pem")})
    assert missing["status"] == "critical"
    assert missing["summary"].startswith("cannot read the certificate %s" % (tmp_path / "none.pem"))
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n")
    result = status.run_check({"name": "cert", "type": "certificate", "path": str(key)})
    assert (result["status"], result["summary"]) == ("critical", "no PEM certificate in %s" % key)
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    result = status.run_check({"name": "cert", "type": "certificate", "path": str(broken)})
    assert result["status"] == "critical"
    assert result["summary"].startswith("cannot read the certificate")
    assert result["values"] == {}


def test_without_the_private_decoder_openssl_reads_the_date(
    pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _not_after = certificate_file(pki, tmp_path, 5)
    monkeypatch.delattr(ssl._ssl, "_test_decode_cert")
    args = fake_command(tmp_path, monkeypatch, "openssl", stdout="notAfter=Dec  7 10:00:00 2099 GMT\n")
    result = status.run_check({"name": "cert", "type": "certificate", "path": path})
    assert args.read_text().splitlines() == ["x509", "-noout", "-enddate", "-in", path]
    assert result["status"] == "ok"
    assert result["values"]["expiry_timestamp_seconds"] == calendar.timegm((2099, 12, 7, 10, 0, 0))
    assert "(2099-12-07 10:00 UTC)" in result["summary"]


def test_an_openssl_failure_is_critical_with_its_message(pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _not_after = certificate_file(pki, tmp_path, 5)
    monkeypatch.delattr(ssl._ssl, "_test_decode_cert")
    fake_command(tmp_path, monkeypatch, "openssl", stderr="Could not read certificate from %s\n" % path, rc=1)
    result = status.run_check({"name": "cert", "type": "certificate", "path": path})
    assert result["status"] == "critical"
    assert result["summary"].endswith("Could not read certificate from %s" % path)


# ---------------------------------------------------------------------------------------
# files, newest_file


def test_a_missing_directory_has_no_files_yet(tmp_path: Path) -> None:
    path = str(tmp_path / "dead-letter")
    result = status.run_check({"name": "slips", "type": "files", "path": path, "integration": "print"})
    assert (result["status"], result["summary"], result["values"]) == ("ok", path + " does not exist yet", {"files": 0})


def test_files_are_counted_recursively(tmp_path: Path) -> None:
    top = tmp_path / "dead-letter"
    (top / "cur" / "deep").mkdir(parents=True)
    (top / "new").mkdir()
    check = {"name": "slips", "type": "files", "path": str(top)}
    assert status.run_check(check)["values"] == {"files": 0}
    assert status.run_check(check)["status"] == "ok"
    (top / "cur" / "1700000000.M1P2.host:2,S").write_text("slip")
    (top / "cur" / "deep" / ".hidden").write_text("counted too")
    (top / "new" / "1700000001.M1P2.host").write_text("slip")
    (top / "new" / "link").symlink_to(top / "new" / "1700000001.M1P2.host")  # not a regular file
    result = status.run_check(check)
    assert (result["status"], result["summary"], result["values"]) == ("warning", "3 files in %s" % top, {"files": 3})
    assert status.run_check({**check, "warn_above": 3})["status"] == "ok"
    assert status.run_check({**check, "warn_above": 5, "critical_above": 2})["status"] == "critical"
    assert status.run_check({**check, "critical_above": 3})["status"] == "warning"


def test_a_file_where_the_directory_should_be_is_not_ok(tmp_path: Path) -> None:
    path = tmp_path / "plain"
    path.write_text("x")
    result = status.run_check({"name": "slips", "type": "files", "path": str(path)})
    assert result["status"] == "unknown"
    assert "is not a directory" in result["summary"]


def test_the_newest_file_is_named_with_its_time(tmp_path: Path) -> None:
    top = tmp_path / "exports"
    (top / "2025").mkdir(parents=True)
    older, newer = top / "a.mrc", top / "2025" / "b.mrc"
    older.write_text("old")
    newer.write_text("new")
    when = calendar.timegm((2025, 12, 7, 10, 0, 0))
    os.utime(older, (when - 3600, when - 3600))
    os.utime(newer, (when, when))
    check = {"name": "export", "type": "newest_file", "path": str(top)}
    result = status.run_check(check)
    assert (result["status"], result["summary"]) == ("ok", "last file: 2025/b.mrc, 2025-12-07 10:00 UTC")
    assert result["values"] == {"newest_timestamp_seconds": when}
    late = status.run_check({**check, "max_age": 3600})
    assert late["status"] == "warning"
    assert late["summary"].startswith("last file: 2025/b.mrc, 2025-12-07 10:00 UTC (")
    assert late["summary"].endswith("ago, more than 60m)")
    os.utime(older, None)
    fresh = status.run_check({**check, "max_age": 3600})
    assert fresh["status"] == "ok"
    assert fresh["summary"].startswith("last file: a.mrc, ")


def test_no_newest_file_yet(tmp_path: Path) -> None:
    (tmp_path / "exports" / "empty").mkdir(parents=True)
    check = {"name": "export", "type": "newest_file", "path": str(tmp_path / "exports")}
    result = status.run_check(check)
    assert (result["status"], result["summary"]) == ("ok", "no file yet in %s" % (tmp_path / "exports"))
    assert result["values"] == {"newest_timestamp_seconds": 0}
    assert status.run_check({**check, "max_age": 86400})["status"] == "warning"
    missing = status.run_check({**check, "path": str(tmp_path / "none")})
    assert (missing["status"], missing["summary"]) == ("ok", "%s does not exist yet" % (tmp_path / "none"))


# ---------------------------------------------------------------------------------------
# nft_table


def test_a_loaded_nft_table_is_ok(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = fake_command(tmp_path, monkeypatch, "nft", stdout="table inet libsys_stunnel {\n}\n")
    result = status.run_check({"name": "fw", "type": "nft_table", "family": "inet", "table": "libsys_stunnel"})
    assert (result["status"], result["summary"]) == ("ok", "table inet libsys_stunnel is loaded")
    assert result["values"] == {"loaded": 1}
    assert args.read_text().splitlines() == ["list", "table", "inet", "libsys_stunnel"]


def test_a_missing_nft_table_is_critical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = "Error: No such file or directory\nlist table inet libsys_stunnel\n                ^^^^^^^^^^^^^^\n"
    fake_command(tmp_path, monkeypatch, "nft", stderr=stderr, rc=1)
    result = status.run_check({"name": "fw", "type": "nft_table", "family": "inet", "table": "libsys_stunnel"})
    assert (result["status"], result["summary"]) == ("critical", "table inet libsys_stunnel is not loaded")
    assert result["values"] == {"loaded": 0}


# ---------------------------------------------------------------------------------------
# The command: exit codes, reports, metrics


def unit_check(name: str, unit: str = "koha-sip.service", integration: str = "sip2") -> dict:
    return {"name": name, "type": "unit", "unit": unit, "integration": integration}


@pytest.mark.parametrize(("files", "expected"), [(0, 0), (1, 1), (3, 2)])
def test_the_exit_code_is_the_worst_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, files: int, expected: int
) -> None:
    fake_command(tmp_path, monkeypatch, "systemctl", stdout="active\n")
    slips = tmp_path / "slips"
    slips.mkdir()
    for number in range(files):
        (slips / str(number)).write_text("slip")
    checks = [unit_check("sip"), {"name": "slips", "type": "files", "path": str(slips), "critical_above": 2}]
    code, out, err = run_main(capsys, "--config", write_config(tmp_path, checks))
    assert code == expected
    assert out.splitlines()[0].startswith("libsys-onprem status on onprem1: %s (" % ("OK", "WARNING", "CRITICAL")[code])
    assert err == ""


def test_type_runs_only_the_checks_of_that_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The daily certificate run: a failing unit does not count, the certificate alone decides."""
    fake_command(tmp_path, monkeypatch, "systemctl", stdout="failed\n", rc=3)
    slips = tmp_path / "slips"
    slips.mkdir()
    checks = [unit_check("sip"), {"name": "slips", "type": "files", "path": str(slips)}]
    config = write_config(tmp_path, checks)
    code, out, _err = run_main(capsys, "--config", config, "--type", "files", "--json")
    assert code == 0
    assert [check["name"] for check in json.loads(out)["checks"]] == ["slips"]
    code, out, _err = run_main(capsys, "--config", config)
    assert code == 2


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "cannot read"),
        ("{not json", "cannot read"),
        ('["a list"]', "expected an object with a list of checks"),
        ('{"checks": {"a": 1}}', "expected an object with a list of checks"),
        ('{"checks": [{"type": "unit"}]}', "every check must be an object with a name"),
        ('{"checks": [{"name": "a", "type": "unit"}, {"name": "a", "type": "tls"}]}', "two checks are named 'a'"),
        ('{"state_file": 7, "checks": []}', "state_file must be a path"),
    ],
    ids=["missing", "not-json", "not-an-object", "checks-not-a-list", "no-name", "duplicate-name", "state-file"],
)
def test_a_config_that_cannot_be_used_exits_3(tmp_path: Path, capsys, content, words: str) -> None:
    path = tmp_path / "status.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run_main(capsys, "--config", str(path), "--json")
    assert (code, out) == (3, "")
    assert err.startswith("libsys-onprem-status: ")
    assert words in err


def test_a_broken_check_is_unknown_and_the_others_still_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    fake_command(tmp_path, monkeypatch, "systemctl", stdout="active\n")
    checks = [
        unit_check("sip"),
        {"name": "odd", "type": "bogus", "integration": "misc"},
        {"name": "no-unit", "type": "unit"},
        {"name": "bad-port", "type": "sip2", "host": LOOPBACK, "port": "sixty"},
        {"name": "untyped"},
        unit_check("print", "cups.service", "print"),
    ]
    code, out, _err = run_main(capsys, "--config", write_config(tmp_path, checks), "--json")
    assert code == 2
    report = json.loads(out)
    assert report["status"] == "critical"
    by_name = {c["name"]: c for c in report["checks"]}
    assert [c["name"] for c in report["checks"]] == [c["name"] for c in checks]
    assert by_name["odd"]["status"] == "unknown"
    assert by_name["odd"]["summary"] == "unknown check type 'bogus'"
    assert by_name["no-unit"]["summary"] == "the check has no 'unit' setting"
    assert by_name["bad-port"]["status"] == "unknown"
    assert by_name["bad-port"]["summary"].startswith("check failed: ValueError: ")
    assert by_name["untyped"]["summary"] == "the check has no type"
    assert by_name["sip"]["status"] == by_name["print"]["status"] == "ok"
    assert report["counts"] == {"ok": 2, "warning": 0, "critical": 0, "unknown": 4}


def test_the_json_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    fake_command(tmp_path, monkeypatch, "systemctl", stdout="active\n")
    slips = tmp_path / "slips"
    (slips / "held").mkdir(parents=True)
    (slips / "1").write_text("slip")
    (slips / "held" / "2").write_text("slip")
    checks = [unit_check("sip"), {"name": "slips", "type": "files", "path": str(slips), "integration": "print"}]
    before = time.time()
    code, out, _err = run_main(capsys, "--config", write_config(tmp_path, checks, host="onprem7"), "--json")
    report = json.loads(out)
    assert out.startswith('{\n  "host": "onprem7",\n')  # indent=2
    assert set(report) == {"host", "generated_at", "status", "exit_code", "counts", "checks"}
    assert (report["status"], report["exit_code"], code) == ("warning", 1, 1)
    generated = datetime.datetime.strptime(report["generated_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(calendar.timegm(generated.timetuple()) - before) < 5
    assert report["counts"] == {"ok": 1, "warning": 1, "critical": 0, "unknown": 0}
    assert report["checks"][0] == {
        "name": "sip",
        "type": "unit",
        "integration": "sip2",
        "status": "ok",
        "summary": "koha-sip.service is active",
        "values": {"active": 1},
    }
    assert report["checks"][1]["values"] == {"files": 2}
    assert report["checks"][1]["integration"] == "print"


def test_the_text_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, closed_port: int) -> None:
    fake_command(tmp_path, monkeypatch, "systemctl", stdout="active\n")
    long_dir = tmp_path / ("very-long-directory-name-" * 4)
    long_dir.mkdir()
    (long_dir / "slip").write_text("x")
    checks = [
        unit_check("sip"),
        {"name": "slips", "type": "files", "path": str(long_dir), "integration": "print"},
        {"name": "acs", "type": "sip2", "host": LOOPBACK, "port": closed_port, "integration": "sip2"},
        {"name": "odd", "type": "bogus"},
        unit_check("cups", "cups.service", "print"),
    ]
    code, out, _err = run_main(capsys, "--config", write_config(tmp_path, checks))
    lines = out.splitlines()
    assert code == 2
    assert lines[0] == "libsys-onprem status on onprem1: CRITICAL (1 critical, 1 warning, 2 ok, 1 unknown)"
    assert [line.split()[0] for line in lines[1:]] == ["CRIT", "UNKN", "WARN", "OK", "OK"]
    assert [line[6:].split()[1] for line in lines[1:]] == ["acs", "odd", "slips", "sip", "cups"]
    assert lines[2].startswith("UNKN  -      odd    unknown check type")
    assert lines[1] == "CRIT  sip2   acs    SIP2 connection to %s:%d refused" % (LOOPBACK, closed_port)
    assert all(len(line) <= 100 for line in lines[1:])
    assert lines[3].endswith("…")
    assert len(lines[3]) == 100
    reported = json.loads(run_main(capsys, "--config", write_config(tmp_path, checks), "--json")[1])["checks"]
    assert "…" not in reported[1]["summary"]


def parse_metrics(text: str) -> tuple[list[tuple[str, dict, float]], dict[str, list[str]]]:
    """Samples (name, labels, value) and the comment lines per metric family."""
    samples, comments = [], {}
    for line in text.splitlines():
        if line.startswith("#"):
            kind, family, rest = line[2:].split(" ", 2)
            comments.setdefault(family, []).append(kind + " " + rest)
            continue
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        assert match, line
        labels = {
            key: re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)
            for key, value in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or "")
        }
        samples.append((match.group(1), labels, float(match.group(3))))
    return samples, comments


def test_the_textfile_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, sip2_server) -> None:
    fake_command(tmp_path, monkeypatch, "systemctl", stdout="inactive\n", rc=3)
    fake_command(tmp_path, monkeypatch, "nft", stdout="table inet libsys_stunnel {\n}\n")
    fake_command(tmp_path, monkeypatch, "postqueue", stdout=queue_entry("deferred", 7200, REASON))
    odd_name = 'say "hi" \\ twice\nplease'
    checks = [
        {"name": odd_name, "type": "unit", "unit": "stunnel@sip2.service", "integration": "sip2"},
        {"name": "acs", "type": "sip2", "host": LOOPBACK, "port": sip2_server.server_address[1]},
        {"name": "mail", "type": "postfix_queue", "integration": "mail"},
        {"name": "fw", "type": "nft_table", "family": "inet", "table": "libsys_stunnel"},
        {"name": "slips", "type": "files", "path": str(tmp_path / "none")},
        {"name": "odd", "type": "bogus"},
    ]
    metrics_dir = tmp_path / "textfile"
    metrics_dir.mkdir()
    target = metrics_dir / "libsys_onprem.prom"
    target.write_text("stale\n")
    before = time.time()
    code, out, err = run_main(capsys, "--config", write_config(tmp_path, checks), "--textfile", str(target), "--quiet")
    assert (code, out, err) == (2, "", "")
    assert os.listdir(metrics_dir) == ["libsys_onprem.prom"]  # no temporary file left
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    text = target.read_text()
    assert '\\"hi\\" \\\\ twice\\nplease' in text
    samples, comments = parse_metrics(text)
    families = [name for name, _labels, _value in samples]
    assert set(comments) == set(families)
    for family, lines in comments.items():
        assert lines == ["HELP " + status.METRICS[family], "TYPE gauge"], family
    # Each family's samples follow its HELP and TYPE lines, together.
    current, seen = None, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            current = line.split()[2]
            seen.append(current)
        elif not line.startswith("#"):
            assert line.startswith(current + ("{" if "{" in line else " ")), line
    assert seen == list(dict.fromkeys(families))

    values = {(name, tuple(sorted(labels.items()))): value for name, labels, value in samples}

    def value(name: str, **labels: str) -> float:
        return values[(name, tuple(sorted(labels.items())))]

    assert value("libsys_onprem_check_status", check=odd_name, type="unit", integration="sip2") == 2
    assert value("libsys_onprem_check_status", check="acs", type="sip2", integration="") == 0
    assert value("libsys_onprem_check_status", check="mail", type="postfix_queue", integration="mail") == 1
    assert value("libsys_onprem_check_status", check="odd", type="bogus", integration="") == 3
    assert value("libsys_onprem_unit_active", check=odd_name, unit="stunnel@sip2.service") == 0
    assert value("libsys_onprem_sip2_up", check="acs") == 1
    for queue in ("maildrop", "incoming", "active", "deferred", "hold"):
        assert value("libsys_onprem_postfix_queue_messages", check="mail", queue=queue) == (queue == "deferred")
    assert value("libsys_onprem_postfix_deferred_oldest_age_seconds", check="mail") == pytest.approx(7200, abs=5)
    assert value("libsys_onprem_nftables_table_loaded", check="fw", family="inet", table="libsys_stunnel") == 1
    assert value("libsys_onprem_files", check="slips", path=str(tmp_path / "none")) == 0
    assert before - 1 <= value("libsys_onprem_status_last_run_timestamp_seconds") <= time.time() + 1
    # Families without a sample are left out.
    for absent in ("tls_up", "certificate_expiry_timestamp_seconds", "newest_file_timestamp_seconds"):
        assert "libsys_onprem_" + absent not in text
    assert len(samples) == 6 + 1 + 1 + 5 + 1 + 1 + 1 + 1


def test_the_textfile_comes_with_the_text_report_unless_quiet(
    tmp_path: Path, pki, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, not_after = certificate_file(pki, tmp_path, 100)
    newest = tmp_path / "exports"
    newest.mkdir()
    (newest / "x").write_text("x")
    os.utime(newest / "x", (1_700_000_000, 1_700_000_000))
    checks = [
        {"name": "cert", "type": "certificate", "path": cert},
        {"name": "export", "type": "newest_file", "path": str(newest)},
    ]
    target = tmp_path / "metrics.prom"
    code, out, _err = run_main(capsys, "--config", write_config(tmp_path, checks), "--textfile", str(target))
    assert code == 0
    assert out.startswith("libsys-onprem status on onprem1: OK (0 critical, 0 warning, 2 ok)\n")
    samples, _families = parse_metrics(target.read_text())
    assert (
        "libsys_onprem_certificate_expiry_timestamp_seconds",
        {"check": "cert", "path": cert},
        not_after.timestamp(),
    ) in samples
    assert ("libsys_onprem_newest_file_timestamp_seconds", {"check": "export", "path": str(newest)}, 1.7e9) in samples
    # An unwritable textfile is reported and makes the run fail (3, not a check's 1 or 2), the checks still print.
    code, out, err = run_main(
        capsys, "--config", write_config(tmp_path, checks), "--textfile", str(tmp_path / "no-dir" / "m.prom")
    )
    assert code == 3
    assert out.startswith("libsys-onprem status on onprem1: OK")
    assert "cannot write %s" % (tmp_path / "no-dir" / "m.prom") in err
    assert not (tmp_path / "no-dir").exists()


def test_the_command_runs_as_a_script(tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"name": "slips", "type": "files", "path": str(tmp_path / "none")}])
    env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-I", str(COMMAND), "--config", config, "--json"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["checks"][0]["summary"] == "%s does not exist yet" % (tmp_path / "none")
    usage = subprocess.run(
        [sys.executable, "-I", str(COMMAND), "--help"], check=False, capture_output=True, text=True, env=env
    )
    assert "usage: libsys-onprem-status [-h] [--config CONFIG] [--json] [--textfile PATH] [--quiet]" in usage.stdout


# ---------------------------------------------------------------------------------------
# The last success of each check (state_file)


def state_config(tmp_path: Path, checks: list, state_file: Path) -> str:
    path = tmp_path / "status.json"
    path.write_text(json.dumps({"host": "onprem1", "state_file": str(state_file), "checks": checks}))
    return str(path)


def last_ok_of(out: str) -> dict:
    return {check["name"]: check["last_ok"] for check in json.loads(out)["checks"]}


def test_a_check_that_fails_says_when_it_was_last_ok(tmp_path: Path, capsys) -> None:
    slips, full = tmp_path / "dead-letter", tmp_path / "full"
    slips.mkdir()
    full.mkdir()
    (full / "slip.eml").write_text("x")
    checks = [
        {"name": "slips", "type": "files", "path": str(slips), "integration": "print"},
        {"name": "never", "type": "files", "path": str(full)},
    ]
    config = state_config(tmp_path, checks, tmp_path / "last-ok.json")
    before = time.time()
    code, out, err = run_main(capsys, "--config", config, "--json")
    first = last_ok_of(out)
    assert (code, err) == (1, "")
    assert before <= first["slips"] <= time.time()
    assert first["never"] is None
    # A dead letter arrives: the check warns and says when it was last ok.
    (slips / "slip.eml").write_text("x")
    code, out, err = run_main(capsys, "--config", config)
    assert (code, err) == (1, "")
    lines = {line.split()[2]: line for line in out.splitlines()[1:]}
    assert lines["slips"].startswith("WARN") and lines["slips"].endswith(f"(last ok {status.utc(first['slips'])})")
    assert lines["never"].endswith("(no success recorded)")
    code, out, err = run_main(capsys, "--config", config, "--json")
    assert last_ok_of(out) == first
    target = tmp_path / "libsys_onprem.prom"
    run_main(capsys, "--config", config, "--textfile", str(target), "--quiet")
    samples = {(name, labels.get("check")): value for name, labels, value in parse_metrics(target.read_text())[0]}
    assert samples[("libsys_onprem_check_last_ok_timestamp_seconds", "slips")] == first["slips"]
    assert ("libsys_onprem_check_last_ok_timestamp_seconds", "never") not in samples
    # Cleared: the time moves on.
    (slips / "slip.eml").unlink()
    code, out, err = run_main(capsys, "--config", config, "--json")
    assert last_ok_of(out)["slips"] > first["slips"]


def test_the_record_drops_removed_checks_and_keeps_those_that_did_not_run(tmp_path: Path, capsys) -> None:
    slips = tmp_path / "dead-letter"
    slips.mkdir()
    state = tmp_path / "last-ok.json"
    state.write_text(json.dumps({"removed": 1.5, "slips": 2.5, "fw": 3.5}))
    checks = [
        {"name": "slips", "type": "files", "path": str(slips)},
        {"name": "fw", "type": "nft_table", "family": "inet", "table": "libsys_stunnel"},
    ]
    before = time.time()
    code, _out, err = run_main(capsys, "--config", state_config(tmp_path, checks, state), "--type", "files", "--json")
    assert (code, err) == (0, "")
    kept = json.loads(state.read_text())
    assert set(kept) == {"slips", "fw"}
    assert kept["fw"] == 3.5
    assert kept["slips"] >= before


@pytest.mark.parametrize("content", ["{not json", '["a list"]'], ids=["not-json", "not-an-object"])
def test_an_unreadable_record_starts_again(tmp_path: Path, capsys, content: str) -> None:
    state = tmp_path / "last-ok.json"
    state.write_text(content)
    (tmp_path / "empty").mkdir()
    config = state_config(tmp_path, [{"name": "slips", "type": "files", "path": str(tmp_path / "empty")}], state)
    code, out, err = run_main(capsys, "--config", config, "--json")
    assert code == 0
    assert err.startswith(f"libsys-onprem-status: cannot read {state}, starting again: ")
    assert set(json.loads(state.read_text())) == {"slips"}
    assert last_ok_of(out)["slips"] is not None


def test_a_record_that_cannot_be_written_is_reported_and_changes_no_exit_code(tmp_path: Path, capsys) -> None:
    state = tmp_path / "missing" / "last-ok.json"
    (tmp_path / "empty").mkdir()
    config = state_config(tmp_path, [{"name": "slips", "type": "files", "path": str(tmp_path / "empty")}], state)
    code, out, err = run_main(capsys, "--config", config, "--json")
    assert code == 0
    assert err.startswith(f"libsys-onprem-status: cannot record the last successful checks in {state}: ")
    assert last_ok_of(out)["slips"] is not None  # this run's own result still says it


# ---------------------------------------------------------------------------------------
# spf: against a DNS responder on loopback (FakeDns)


VENDOR_ZONE = {
    "_spf.vendor.example.org": ["v=spf1 ip4:192.0.2.0/28 include:_spf2.vendor.example.org ~all"],
    "_spf2.vendor.example.org": ["v=spf1 ip4:198.51.100.7 ip6:2001:db8:5::/48 -ip4:203.0.113.9 -all"],
}
ALLOWLIST = ["192.0.2.0/28", "198.51.100.7/32", "2001:db8:5::/48"]


def spf_run(
    zone: dict[str, list[str]], allowed: list[str], domain: str = "_spf.vendor.example.org", truncate: bool = False
) -> tuple[dict, list[str]]:
    """The spf check against a FakeDns serving zone; (its result, the names the DNS was asked)."""
    dns = FakeDns(zone, truncate=truncate)
    check = {"name": "relays", "type": "spf", "domain": domain, "allowed": allowed}
    try:
        return status.run_check(dict(check, dns_server=LOOPBACK, dns_port=dns.port, timeout=2)), dns.queries
    finally:
        dns.close()


@pytest.mark.parametrize("truncate", [False, True], ids=["udp", "cut-then-tcp"])
def test_an_allowlist_that_matches_the_spf_include_is_ok(truncate: bool) -> None:
    result, queries = spf_run(VENDOR_ZONE, ALLOWLIST, truncate=truncate)
    assert result["status"] == "ok", result
    assert result["summary"] == "the allowlist matches the 3 networks of _spf.vendor.example.org"
    assert result["values"] == {"matches": 1, "published": 3, "missing": 0}
    assert list(dict.fromkeys(queries)) == ["_spf.vendor.example.org", "_spf2.vendor.example.org"]
    assert len(queries) == (4 if truncate else 2)  # cut over UDP, asked again over TCP


def test_a_changed_spf_include_is_a_warning_naming_both_sides() -> None:
    zone = dict(VENDOR_ZONE, **{"_spf2.vendor.example.org": ["v=spf1 ip4:198.51.100.8 ip6:2001:db8:5::/48 -all"]})
    result, _queries = spf_run(zone, ALLOWLIST)
    assert result["status"] == "warning"
    assert result["summary"] == (
        "_spf.vendor.example.org lets 198.51.100.8/32 send, not in the allowlist; "
        "the allowlist has 198.51.100.7/32, no longer in _spf.vendor.example.org"
    )
    assert result["values"]["matches"] == 0


def test_a_wider_allowlist_network_covers_the_include_but_not_the_other_way() -> None:
    result, _queries = spf_run(VENDOR_ZONE, ["192.0.2.0/24", "198.51.100.7/32", "2001:db8:5::/48"])
    assert result["status"] == "warning"
    assert "the allowlist has 192.0.2.0/24, no longer in" in result["summary"]


def test_a_missing_spf_record_is_a_warning_that_says_why() -> None:
    result, _queries = spf_run({"other.example.org": ["v=spf1 -all"]}, ALLOWLIST)
    assert result["status"] == "warning"
    assert result["summary"] == (
        "cannot read the SPF record of _spf.vendor.example.org: _spf.vendor.example.org does not exist (NXDOMAIN)"
    )


def test_mechanisms_that_need_more_lookups_are_named_not_followed() -> None:
    zone = {"_spf.vendor.example.org": ["v=spf1 ip4:192.0.2.0/28 mx a:relay.vendor.example.org ~all"]}
    result, _queries = spf_run(zone, ["192.0.2.0/28"])
    assert result["status"] == "ok"
    assert result["summary"].endswith(
        "; mx in _spf.vendor.example.org not followed"
        "; a:relay.vendor.example.org in _spf.vendor.example.org not followed"
    )


def test_an_include_loop_stops_at_ten_lookups() -> None:
    zone = {"loop.example.org": ["v=spf1 include:loop.example.org -all"]}
    result, queries = spf_run(zone, ALLOWLIST, domain="loop.example.org")
    assert result["status"] == "warning"
    assert "more than 10 DNS lookups" in result["summary"]
    assert len(queries) == 10


def test_the_host_resolver_is_the_first_nameserver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# managed\nsearch example.org\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n")
    monkeypatch.setattr(status.spf, "RESOLV_CONF", str(resolv))
    assert status.spf.nameserver() == "192.0.2.53"
