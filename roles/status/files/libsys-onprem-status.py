# Managed by the libsys.onprem.status role; local changes are overwritten.
"""Run the health checks of this on-premises host and report them as text, JSON or metrics.

    libsys-onprem-status [--config PATH] [--json] [--textfile PATH] [--quiet]

The checks come from the config file (default /etc/libsys-onprem/status.json):
{"host": "onprem1", "state_file": PATH, "checks": [{"name": ..., "type": ..., ...}, ...]}.
Each check has a unique name, a type and an optional free-text integration ("sip2", "mail").
With state_file, every run keeps there when each check was last ok (JSON, name -> Unix time)
and reports it for each result ("last_ok"; in the text after a check that is not ok, and as a
metric), so that a failing SIP2 exchange says when the last one went through.
Types and their settings:

  tcp            host, port, timeout (5 s): a TCP connection opens (a path the host itself takes:
                 a printer, the remote storage system); refused or timed out is critical.
  unit           unit: `systemctl is-active UNIT` says "active" (anything else is critical).
  unit_result    unit: the last run of a unit that runs now and then (a hook) succeeded
                 (systemd's Result=success, also before its first run); a failure is a warning.
  sip2           host, port, timeout (5 s): an SC Status (99) sent over plain TCP, to the local
                 side of a stunnel client tunnel that adds TLS, gets an ACS Status (98) with a
                 right checksum back.
  tls            host, port, server_name, ca_path, timeout (5 s): a TLS handshake completes.
                 With ca_path (a file or directory of CA certificates) the chain and the name
                 (server_name, else host) are verified; without it nothing is verified and the
                 check only proves that TLS answers. A stunnel server tunnel wants a client
                 certificate, which this check never sends: at TLS 1.3 the client's handshake
                 completes before the server looks at the (missing) client certificate, so "ok"
                 means the tunnel listens and presents its certificate, not that a client
                 would be let through.
  certificate    path (PEM), warn_days (21), critical_days (7): days until the certificate's
                 notAfter; expired, unreadable or under critical_days is critical.
  postfix_queue  warn_age (3600 s), critical_age (86400 s): messages per Postfix queue
                 (`postqueue -j`); the oldest deferred message older than warn_age / critical_age
                 is a warning / critical, a message on hold is a warning.
  files          path, warn_above (0), critical_above: regular files under the directory
                 (recursive, dot-files too), e.g. dead-letter slips; a missing directory is ok.
  newest_file    path, max_age: the newest regular file under the directory (recursive); older
                 than max_age, or none at all while max_age is set, is a warning.
  nft_table      family, table: `nft list table FAMILY TABLE` succeeds.
  spf            domain, allowed (CIDRs), dns_server (default: the host's resolver), dns_port, timeout: the
                 networks the SPF record of domain lets send (ip4/ip6, include and redirect
                 followed; read-only DNS) are the allowlist's; a difference either way, or a
                 record that cannot be read, is a warning. Nothing is changed.

Checks run concurrently; the output keeps the config order (text: worst first). Exit code as a
Nagios/Icinga plugin: 0 all ok, 1 worst is a warning, 2 worst is critical or unknown (a check of
an unknown type or one that failed); 3 when the config cannot be read or the metrics cannot be
written (the report is still printed). --textfile also writes Prometheus metrics (node_exporter
textfile collector) to PATH, replaced atomically; --quiet prints nothing; --type TYPE runs only
the checks of that type (the daily certificate run: --type certificate).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Iterator, Tuple

# The SIP2 codec and the SPF comparison are the collection's (module_utils/sip2.py and spf.py,
# port_check's too); the role installs them next to this file. python3 -I leaves this file's
# directory out of sys.path.
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import libsys_onprem_sip2 as sip2  # pylint: disable=wrong-import-position
import libsys_onprem_spf as spf  # pylint: disable=wrong-import-position

CONFIG = "/etc/libsys-onprem/status.json"
COMMANDS = {
    "systemctl": "/usr/bin/systemctl",
    "postqueue": "/usr/sbin/postqueue",
    "nft": "/usr/sbin/nft",
    "openssl": "/usr/bin/openssl",
}
ENV = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C"}
MAX_WORKERS = 8
WIDTH = 100
SIP2_LIMIT = 65536
POSTFIX_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")
# Metric value of each status, and the order of the text report (unknown ranks with critical).
SEVERITY = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}
RANK = {"ok": 0, "warning": 1, "critical": 2, "unknown": 2}
TAGS = {"ok": "OK", "warning": "WARN", "critical": "CRIT", "unknown": "UNKN"}
OVERALL = ("ok", "warning", "critical")

# (status, summary, values) of one check.
Outcome = Tuple[str, str, dict]


class ConfigError(Exception):
    """The config file cannot be read or does not describe checks."""


def run(program: str, *args: str, timeout: float = 20) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(  # noqa: S603 - fixed programs, argument lists, no shell
            [COMMANDS[program], *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=ENV,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else ""


def duration(seconds: float) -> str:
    """A short human duration: 45s, 12m, 3h05m, 2d04h."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h{minutes % 60:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def utc(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def network_error(exc: OSError, host: str, port: int) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {host}:{port} refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"{host}:{port} timed out"
    return f"{host}:{port}: {exc}"


# ---------------------------------------------------------------------------------------
# tcp: a path the host itself opens (the local preflight of the timer)


def check_tcp(check: dict) -> Outcome:
    host, port = check["host"], int(check["port"])
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=float(check.get("timeout", 5))):
            latency = time.monotonic() - start
    except OSError as exc:
        return "critical", f"TCP {network_error(exc, host, port)}", {"up": 0}
    return "ok", f"TCP connection to {host}:{port} in {latency * 1000:.0f} ms", {"up": 1}


# ---------------------------------------------------------------------------------------
# unit


def check_unit(check: dict) -> Outcome:
    unit = check["unit"]
    result = run("systemctl", "is-active", unit)
    if result is None:
        return "critical", f"systemctl did not run for {unit}", {"active": 0}
    state = result.stdout.strip()
    if state == "active":
        return "ok", f"{unit} is active", {"active": 1}
    if not state:
        reason = first_line(result.stderr) or f"exit {result.returncode}"
        return "critical", f"systemctl cannot tell whether {unit} is active: {reason}", {"active": 0}
    return "critical", f"{unit} is {state}", {"active": 0}


def check_unit_result(check: dict) -> Outcome:
    """The last run of a unit that runs now and then (a hook, a timer's service) succeeded."""
    unit = check["unit"]
    result = run("systemctl", "show", "--property=Result,ExecMainExitTimestamp,ExecMainStatus", unit)
    if result is None or result.returncode != 0:
        return "critical", f"systemctl cannot show {unit}", {"last_run_ok": 0}
    fields = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    outcome, when = fields.get("Result", ""), fields.get("ExecMainExitTimestamp", "")
    if outcome == "success":
        last = f"last run ended {when}" if when else "not run yet"
        return "ok", f"{unit}: {last}", {"last_run_ok": 1}
    status = fields.get("ExecMainStatus", "")
    return (
        "warning",
        f"{unit}: the last run failed ({outcome}, status {status}) at {when or 'an unknown time'}",
        {"last_run_ok": 0},
    )


# ---------------------------------------------------------------------------------------
# sip2


# 99 SC Status: status ok, print width 030, protocol 2.00, sequence 0 and checksum.
SC_STATUS = sip2.build_sc_status(max_print_width=30)


def sip2_checksum_ok(reply: bytes) -> bool:
    """True when the reply has no AZ field or an AZ field with the right checksum."""
    data = reply.rstrip(b"\r\n")
    position = data.rfind(b"AZ")
    if position < 0:
        return True
    return data[position + 2 :].decode("ascii", "replace").upper() == sip2.checksum(data[: position + 2])


def read_reply(sock: socket.socket, deadline: float) -> bytes:
    """Read up to and including the first CR before the deadline."""
    buffer = bytearray()
    while b"\r" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out")
        sock.settimeout(remaining)
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buffer)} bytes without a complete reply")
        buffer += chunk
        if len(buffer) > SIP2_LIMIT:
            raise ConnectionError(f"no complete reply in the first {SIP2_LIMIT} bytes")
    return bytes(buffer[: buffer.index(b"\r") + 1])


def sip2_exchange(host: str, port: int, timeout: float) -> tuple[bytes, float]:
    start = time.monotonic()
    deadline = start + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(SC_STATUS)
        reply = read_reply(sock, deadline)
    return reply, time.monotonic() - start


def check_sip2(check: dict) -> Outcome:
    host, port = check["host"], int(check["port"])
    try:
        reply, latency = sip2_exchange(host, port, float(check.get("timeout", 5)))
    except OSError as exc:
        return "critical", f"SIP2 {network_error(exc, host, port)}", {"up": 0}
    values = {"up": 0, "latency_seconds": round(latency, 6)}
    shown = reply.rstrip(b"\r\n").decode("utf-8", "replace")
    if not reply.startswith(b"98"):
        return "critical", f'reply "{shown[:60]}" is not an ACS status', values
    if not sip2_checksum_ok(reply):
        return "critical", f'ACS status "{shown[:60]}" has a wrong checksum', values
    values["up"] = 1
    online = reply[2:3].decode("ascii", "replace")
    return "ok", f"ACS status in {latency * 1000:.0f} ms, online {online}", values


# ---------------------------------------------------------------------------------------
# tls


def tls_context(ca_path: str | None) -> ssl.SSLContext:
    if not ca_path:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if os.path.isdir(ca_path):
        return ssl.create_default_context(capath=ca_path)
    return ssl.create_default_context(cafile=ca_path)


def tls_handshake(address: tuple[str, int], context: ssl.SSLContext, name: str, timeout: float) -> str:
    """The TLS version of a completed handshake (the socket timeout covers the handshake)."""
    with socket.create_connection(address, timeout) as raw, context.wrap_socket(raw, server_hostname=name) as tls:
        return str(tls.version())


def check_tls(check: dict) -> Outcome:
    host, port = check["host"], int(check["port"])
    server_name = check.get("server_name") or host
    ca_path = check.get("ca_path")
    try:
        context = tls_context(ca_path)
    except (OSError, ValueError) as exc:
        return "critical", f"cannot load the CA certificates {ca_path}: {exc}", {"up": 0}
    try:
        version = tls_handshake((host, port), context, server_name, float(check.get("timeout", 5)))
    except ssl.SSLCertVerificationError as exc:
        return "critical", f"TLS {host}:{port}: certificate not accepted: {exc.verify_message}", {"up": 0}
    except OSError as exc:  # ssl.SSLError is an OSError
        return "critical", f"TLS {network_error(exc, host, port)}", {"up": 0}
    verified = f"certificate valid for {server_name}" if ca_path else "certificate not verified"
    return "ok", f"{version} handshake with {host}:{port}, {verified}", {"up": 1}


# ---------------------------------------------------------------------------------------
# certificate


def certificate_not_after(path: str) -> float:
    """notAfter (epoch seconds) of the first certificate in a PEM file: CPython's private
    decoder when it is there and works, else `openssl x509 -enddate`."""
    try:
        return ssl.cert_time_to_seconds(ssl._ssl._test_decode_cert(path)["notAfter"])
    except (AttributeError, KeyError, OSError, ValueError):
        pass
    result = run("openssl", "x509", "-noout", "-enddate", "-in", path)
    if result is None:
        raise ValueError("openssl did not run")
    if result.returncode != 0 or not result.stdout.startswith("notAfter="):
        raise ValueError(first_line(result.stderr) or f"openssl x509 failed (exit {result.returncode})")
    return ssl.cert_time_to_seconds(result.stdout.strip().split("=", 1)[1])


def check_certificate(check: dict) -> Outcome:
    path = check["path"]
    warn_days = float(check.get("warn_days", 21))
    critical_days = float(check.get("critical_days", 7))
    try:
        with open(path, "rb") as handle:
            if b"-----BEGIN CERTIFICATE-----" not in handle.read():
                return "critical", f"no PEM certificate in {path}", {}
        not_after = certificate_not_after(path)
    except (OSError, ValueError) as exc:
        return "critical", f"cannot read the certificate {path}: {exc}", {}
    days_left = (not_after - time.time()) / 86400
    values = {"expiry_timestamp_seconds": int(not_after), "days_left": round(days_left, 2)}
    if days_left < 0:
        return "critical", f"{path} expired on {utc(not_after)}", values
    summary = f"{path} expires in {days_left:.0f} days ({utc(not_after)})"
    if days_left < critical_days:
        return "critical", summary, values
    return ("warning" if days_left < warn_days else "ok"), summary, values


# ---------------------------------------------------------------------------------------
# postfix_queue


def parse_postqueue(output: str) -> tuple[dict[str, int], dict | None]:
    """Messages per queue and the oldest deferred message of `postqueue -j` output."""
    counts = dict.fromkeys(POSTFIX_QUEUES, 0)
    oldest = None
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        queue = str(entry.get("queue_name", ""))
        counts[queue] = counts.get(queue, 0) + 1
        if queue == "deferred" and (oldest is None or entry.get("arrival_time", 0) < oldest.get("arrival_time", 0)):
            oldest = entry
    return counts, oldest


def delay_reason(entry: dict) -> str:
    for recipient in entry.get("recipients") or []:
        if recipient.get("delay_reason"):
            return str(recipient["delay_reason"])
    return ""


def postqueue_failure(result: subprocess.CompletedProcess | None) -> str:
    if result is None:
        return "postqueue did not run"
    message = first_line(result.stderr)
    lowered = result.stderr.lower()
    if "mail system is down" in lowered or "not running" in lowered:
        return f"Postfix is not running ({message})"
    return f"postqueue -j failed (exit {result.returncode}): {message}"


def check_postfix_queue(check: dict) -> Outcome:
    warn_age = float(check.get("warn_age", 3600))
    critical_age = float(check.get("critical_age", 86400))
    result = run("postqueue", "-j")
    if result is None or result.returncode != 0:
        return "critical", postqueue_failure(result), {}
    counts, oldest = parse_postqueue(result.stdout)
    age = max(0.0, time.time() - float(oldest.get("arrival_time", 0))) if oldest else 0.0
    values = {"messages": counts, "deferred_oldest_age_seconds": int(age)}
    parts = [f"{count} {queue}" for queue, count in counts.items() if count] or ["queue empty"]
    status = "ok"
    if oldest:
        reason = delay_reason(oldest)
        parts.append(f"oldest deferred {duration(age)} old" + (f": {reason}" if reason else ""))
        status = "critical" if age > critical_age else "warning" if age > warn_age else "ok"
    if counts["hold"] and status == "ok":
        status = "warning"
    return status, ", ".join(parts), values


# ---------------------------------------------------------------------------------------
# files, newest_file


def regular_files(top: str) -> Iterator[os.DirEntry]:
    """Every regular file under top, recursively, symbolic links not followed; an unreadable
    directory raises (the check becomes unknown rather than undercounting)."""
    pending = [top]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    yield entry


def newest_file(top: str) -> tuple[str, float] | None:
    """(path, mtime) of the most recently modified regular file under top, None when none."""
    newest = None
    for entry in regular_files(top):
        mtime = entry.stat(follow_symlinks=False).st_mtime
        if newest is None or mtime > newest[1]:
            newest = (entry.path, mtime)
    return newest


def missing_directory(path: str) -> str | None:
    if not os.path.lexists(path):
        return f"{path} does not exist yet"
    if not os.path.isdir(path):
        raise NotADirectoryError(f"{path} is not a directory")
    return None


def check_files(check: dict) -> Outcome:
    path = check["path"]
    warn_above = int(check.get("warn_above", 0))
    critical_above = check.get("critical_above")
    missing = missing_directory(path)
    if missing:
        return "ok", missing, {"files": 0}
    count = sum(1 for _entry in regular_files(path))
    summary = f"{count} file{'' if count == 1 else 's'} in {path}"
    if critical_above is not None and count > int(critical_above):
        return "critical", summary, {"files": count}
    return ("warning" if count > warn_above else "ok"), summary, {"files": count}


def check_newest_file(check: dict) -> Outcome:
    path = check["path"]
    max_age = check.get("max_age")
    missing = missing_directory(path)
    newest = None if missing else newest_file(path)
    if newest is None:
        summary = missing or f"no file yet in {path}"
        return ("ok" if max_age is None else "warning"), summary, {"newest_timestamp_seconds": 0}
    newest_path, mtime = newest
    age = time.time() - mtime
    summary = f"last file: {os.path.relpath(newest_path, path)}, {utc(mtime)}"
    values = {"newest_timestamp_seconds": int(mtime)}
    if max_age is not None and age > float(max_age):
        return "warning", f"{summary} ({duration(age)} ago, more than {duration(float(max_age))})", values
    return "ok", summary, values


# ---------------------------------------------------------------------------------------
# nft_table


def check_nft_table(check: dict) -> Outcome:
    family, table = check["family"], check["table"]
    result = run("nft", "list", "table", family, table)
    if result is None:
        return "critical", f"nft did not run (table {family} {table})", {"loaded": 0}
    if result.returncode == 0:
        return "ok", f"table {family} {table} is loaded", {"loaded": 1}
    summary = f"table {family} {table} is not loaded"
    message = first_line(result.stderr)
    if message and "No such file or directory" not in message:
        summary += f" ({message})"
    return "critical", summary, {"loaded": 0}


# ---------------------------------------------------------------------------------------
# spf: the vendor's SPF include against the allowlist of its mail relays


def check_spf(check: dict) -> Outcome:
    domain = check["domain"]
    try:
        server = (check.get("dns_server") or spf.nameserver(), int(check.get("dns_port", 53)))
        found = spf.compare(domain, check["allowed"], server, float(check.get("timeout", 5)))
    except (OSError, spf.DnsError, ValueError, IndexError, struct.error) as exc:
        return "warning", f"cannot read the SPF record of {domain}: {exc}", {}
    matches = not found["missing"] and not found["extra"]
    values = {"matches": int(matches), "published": len(found["published"]), "missing": len(found["missing"])}
    return ("ok" if matches else "warning"), spf.describe(domain, found), values


CHECKS: Dict[str, Callable[[dict], Outcome]] = {
    "tcp": check_tcp,
    "unit": check_unit,
    "unit_result": check_unit_result,
    "sip2": check_sip2,
    "tls": check_tls,
    "certificate": check_certificate,
    "postfix_queue": check_postfix_queue,
    "files": check_files,
    "newest_file": check_newest_file,
    "nft_table": check_nft_table,
    "spf": check_spf,
}


# ---------------------------------------------------------------------------------------
# Running the checks


def run_check(check: dict) -> dict:
    """One check's result; never raises (a failing check is unknown, with the reason)."""
    kind = str(check.get("type", ""))
    result = {
        "name": check["name"],
        "type": kind,
        "integration": str(check.get("integration") or ""),
        "status": "unknown",
        "summary": "",
        "values": {},
    }
    function = CHECKS.get(kind)
    if function is None:
        result["summary"] = f"unknown check type {kind!r}" if kind else "the check has no type"
        return result
    try:
        result["status"], result["summary"], result["values"] = function(check)
    except KeyError as exc:
        result["summary"] = f"the check has no {exc.args[0]!r} setting"
    except Exception as exc:  # one broken check must not stop the others
        result["summary"] = f"check failed: {type(exc).__name__}: {exc}"
    return result


def run_checks(checks: list[dict]) -> list[dict]:
    if not checks:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(checks))) as executor:
        return list(executor.map(run_check, checks))


def load_config(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(config, dict) or not isinstance(config.get("checks", []), list):
        raise ConfigError(f"{path}: expected an object with a list of checks")
    names = set()
    for check in config.get("checks", []):
        name = check.get("name") if isinstance(check, dict) else None
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{path}: every check must be an object with a name")
        if name in names:
            raise ConfigError(f"{path}: two checks are named {name!r}")
        names.add(name)
    state_file = config.get("state_file") or None
    if state_file is not None and not isinstance(state_file, str):
        raise ConfigError(f"{path}: state_file must be a path")
    return {
        "host": str(config.get("host") or socket.gethostname()),
        "checks": config.get("checks", []),
        "state_file": state_file,
    }


def record_last_ok(path: str, results: list[dict], known: set[str], now: float) -> str | None:
    """Keep in PATH (JSON: check name -> Unix time) when each check was last ok, and give every
    result its "last_ok" (None: no success recorded). Names no longer in the config are
    dropped; checks that did not run this time (--type) keep theirs. Returns a problem to
    report, or None."""
    problem = None
    try:
        with open(path, encoding="utf-8") as handle:
            seen = json.load(handle)
    except FileNotFoundError:
        seen = {}
    except (OSError, ValueError) as exc:
        seen, problem = {}, f"cannot read {path}, starting again: {exc}"
    if not isinstance(seen, dict):
        seen, problem = {}, f"cannot read {path}, starting again: not a JSON object"
    seen = {name: when for name, when in seen.items() if name in known and isinstance(when, (int, float))}
    for result in results:
        if result["status"] == "ok":
            seen[result["name"]] = round(now, 3)
        result["last_ok"] = seen.get(result["name"])
    try:
        write_atomically(path, json.dumps(seen, sort_keys=True) + "\n")
    except OSError as exc:
        problem = f"cannot record the last successful checks in {path}: {exc}"
    return problem


def build_report(host: str, results: list[dict], now: float) -> dict:
    counts = {status: sum(1 for r in results if r["status"] == status) for status in SEVERITY}
    worst = max((RANK[r["status"]] for r in results), default=0)
    return {
        "host": host,
        "generated_at": datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "status": OVERALL[worst],
        "exit_code": worst,
        "counts": counts,
        "checks": results,
    }


# ---------------------------------------------------------------------------------------
# Output


def truncate(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def text_report(report: dict) -> list[str]:
    counts = report["counts"]
    tally = f"{counts['critical']} critical, {counts['warning']} warning, {counts['ok']} ok"
    if counts["unknown"]:
        tally += f", {counts['unknown']} unknown"
    lines = [f"libsys-onprem status on {report['host']}: {report['status'].upper()} ({tally})"]
    checks = report["checks"]
    ordered = sorted(range(len(checks)), key=lambda i: (-RANK[checks[i]["status"]], i))
    integration_width = max((len(c["integration"] or "-") for c in checks), default=1)
    name_width = max((len(c["name"]) for c in checks), default=1)
    summary_width = max(WIDTH - (4 + 2 + integration_width + 2 + name_width + 2), 40)
    for index in ordered:
        check = checks[index]
        since = ""
        if check["status"] != "ok" and "last_ok" in check:
            since = f" (last ok {utc(check['last_ok'])})" if check["last_ok"] else " (no success recorded)"
        columns = (
            TAGS[check["status"]].ljust(4),
            (check["integration"] or "-").ljust(integration_width),
            check["name"].ljust(name_width),
            truncate(check["summary"], summary_width) + since,  # a line that is not ok may be longer
        )
        lines.append("  ".join(columns).rstrip())
    return lines


METRICS = {
    "libsys_onprem_check_status": "Result of the check: 0 ok, 1 warning, 2 critical, 3 unknown.",
    "libsys_onprem_unit_active": "Whether the systemd unit is active (1) or not (0).",
    "libsys_onprem_unit_last_run_ok": "Whether the last run of the systemd unit succeeded (1) or not (0).",
    "libsys_onprem_sip2_up": "Whether the ACS answered an SC Status with a valid ACS Status (1) or not (0).",
    "libsys_onprem_tls_up": "Whether the TLS handshake completed (1) or not (0).",
    "libsys_onprem_tcp_up": "Whether the TCP connection opened (1) or not (0).",
    "libsys_onprem_certificate_expiry_timestamp_seconds": "The certificate's notAfter as a Unix timestamp.",
    "libsys_onprem_postfix_queue_messages": "Messages in the Postfix queue.",
    "libsys_onprem_postfix_deferred_oldest_age_seconds": "Age of the oldest deferred message (0 when none).",
    "libsys_onprem_files": "Regular files in the directory, recursively.",
    "libsys_onprem_newest_file_timestamp_seconds": "Modification time of the newest file (0 when none).",
    "libsys_onprem_nftables_table_loaded": "Whether the nftables table is loaded (1) or not (0).",
    "libsys_onprem_spf_allowlist_match": "Whether the allowlist matches the SPF include's networks (1) or not (0).",
    "libsys_onprem_check_last_ok_timestamp_seconds": "When the check was last ok, as a Unix timestamp.",
    "libsys_onprem_status_last_run_timestamp_seconds": "When libsys-onprem-status last ran, as a Unix timestamp.",
}

# type -> (metric, value key, labels from the check's settings)
TYPE_METRICS = {
    "unit": ("libsys_onprem_unit_active", "active", ("unit",)),
    "unit_result": ("libsys_onprem_unit_last_run_ok", "last_run_ok", ("unit",)),
    "sip2": ("libsys_onprem_sip2_up", "up", ()),
    "tls": ("libsys_onprem_tls_up", "up", ()),
    "tcp": ("libsys_onprem_tcp_up", "up", ()),
    "certificate": ("libsys_onprem_certificate_expiry_timestamp_seconds", "expiry_timestamp_seconds", ("path",)),
    "postfix_queue": ("libsys_onprem_postfix_deferred_oldest_age_seconds", "deferred_oldest_age_seconds", ()),
    "files": ("libsys_onprem_files", "files", ("path",)),
    "newest_file": ("libsys_onprem_newest_file_timestamp_seconds", "newest_timestamp_seconds", ("path",)),
    "nft_table": ("libsys_onprem_nftables_table_loaded", "loaded", ("family", "table")),
    "spf": ("libsys_onprem_spf_allowlist_match", "matches", ("domain",)),
}

# (metric family, labels, value)
Sample = Tuple[str, Dict[str, str], float]


def check_samples(check: dict, result: dict) -> list[Sample]:
    name, kind, values = result["name"], result["type"], result["values"]
    labels = {"check": name, "type": kind, "integration": result["integration"]}
    samples = [("libsys_onprem_check_status", labels, SEVERITY[result["status"]])]
    if result.get("last_ok"):
        samples.append(("libsys_onprem_check_last_ok_timestamp_seconds", labels, result["last_ok"]))
    metric, key, setting_labels = TYPE_METRICS.get(kind, ("", "", ()))
    if metric and key in values:
        labels = {"check": name, **{label: str(check.get(label, "")) for label in setting_labels}}
        samples.append((metric, labels, values[key]))
    if kind == "postfix_queue":
        for queue, count in values.get("messages", {}).items():
            samples.append(("libsys_onprem_postfix_queue_messages", {"check": name, "queue": queue}, count))
    return samples


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def number(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def metrics_text(checks: list[dict], results: list[dict], now: float) -> str:
    samples: list[Sample] = []
    for check, result in zip(checks, results):
        samples.extend(check_samples(check, result))
    samples.append(("libsys_onprem_status_last_run_timestamp_seconds", {}, round(now, 3)))
    lines = []
    for family, help_text in METRICS.items():
        family_samples = [s for s in samples if s[0] == family]
        if not family_samples:
            continue
        lines += [f"# HELP {family} {help_text}", f"# TYPE {family} gauge"]
        for _family, labels, value in family_samples:
            label_text = ",".join(f'{key}="{escape(text)}"' for key, text in labels.items())
            lines.append(f"{family}{{{label_text}}} {number(value)}" if label_text else f"{family} {number(value)}")
    return "\n".join(lines) + "\n"


def write_atomically(path: str, text: str) -> None:
    """Write PATH.tmp.<pid> next to PATH, fsync it, make it 0644 and move it over PATH."""
    temporary = f"{path}.tmp.{os.getpid()}"
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="libsys-onprem-status", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=CONFIG, help=f"the checks (default {CONFIG})")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--textfile", metavar="PATH", help="also write Prometheus textfile-collector metrics to PATH")
    parser.add_argument("--quiet", action="store_true", help="print nothing (with --textfile: only write the metrics)")
    parser.add_argument(
        "--type", dest="types", action="append", metavar="TYPE", help="only the checks of this type (repeatable)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"libsys-onprem-status: {exc}", file=sys.stderr)
        return 3
    known = {check["name"] for check in config["checks"]}
    if args.types:
        config["checks"] = [check for check in config["checks"] if check.get("type") in args.types]
    now = time.time()
    results = run_checks(config["checks"])
    if config["state_file"]:
        problem = record_last_ok(config["state_file"], results, known, now)
        if problem:
            print(f"libsys-onprem-status: {problem}", file=sys.stderr)
    report = build_report(config["host"], results, now)
    code = report["exit_code"]
    if args.textfile:
        try:
            write_atomically(args.textfile, metrics_text(config["checks"], results, time.time()))
        except OSError as exc:
            # Not 1 or 2: the systemd unit takes those as a run that wrote its metrics.
            print(f"libsys-onprem-status: cannot write {args.textfile}: {exc}", file=sys.stderr)
            code = 3
    if not args.quiet:
        print(json.dumps(report, indent=2) if args.json else "\n".join(text_report(report)))
    return code


if __name__ == "__main__":
    sys.exit(main())
