# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller-side filters of the ``libsys.onprem.preflight`` role.

``preflight_plan`` turns a host's paths (the site's entries and the rows its integration roles
contribute) into the rows of the vendor's network table, one per path, with the
``libsys.onprem.port_check`` endpoint that proves it; it knows no integration;
``preflight_report`` joins those rows with the probe results; ``preflight_junit`` and
``preflight_markdown`` render a report; ``preflight_changes`` compares two reports by status;
``bandwidth_mb`` applies the vendor's bandwidth rule. Standard library only.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET  # builds XML only, never parses input
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Optional

from ansible.errors import AnsibleFilterError

# The libsys.onprem.port_check endpoint options (see its DOCUMENTATION).
ENDPOINT_KEYS = frozenset(
    {
        "name",
        "host",
        "port",
        "probe",
        "required",
        "timeout",
        "tls_server_name",
        "ca_path",
        "client_cert_path",
        "client_key_path",
        "check_hostname",
        "min_tls_version",
        "expiry_warn_days",
        "starttls",
        "ehlo_name",
        "sip2_login_user",
        "sip2_login_password",
        "sip2_location",
        "sip2_institution",
        "listen_address",
        "spf_domain",
        "spf_allowed",
    }
)
# Keys that describe the row of the vendor's table, not the probe.
ROW_KEYS = frozenset({"integration", "initiator", "target", "protocol", "direction"})
# What the roles add to the rows they contribute: where the entry comes from (for messages).
CONTRIBUTED_KEYS = frozenset({"source"})
# Options that make port_check's sip2 probe speak TLS.
SIP2_TLS_KEYS = frozenset({"tls_server_name", "ca_path", "client_cert_path"})
PROBES = ("tcp", "tls", "ssh", "smtp", "ldaps", "sip2", "listen", "spf")
# Probes that need no host: listen looks at this host, spf asks its resolver by default.
HOSTLESS_PROBES = ("listen", "spf")
# local: a listener of the host for clients inside it or next to it (a tunnel's accept port).
DIRECTIONS = ("outbound", "inbound", "local")
PROTOCOL_OF_PROBE = {
    "tcp": "TCP",
    "tls": "TLS",
    "ssh": "SSH (S/FTP)",
    "smtp": "SMTP",
    "ldaps": "Secure LDAP (TLS)",
    "sip2": "SIP2",
    "listen": "TCP",
    "spf": "DNS (SPF)",
}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LOCAL_NOTE = "checked locally (listen only)"
INSIDE_NOTE = "probed from the host itself (no outside probe host)"
# (upper bound of named users or None, MB per user): the vendor's "Bandwidth Requirements".
BANDWIDTH_TIERS = ((50, Decimal("0.025")), (200, Decimal("0.015")), (None, Decimal("0.01")))
NOT_RUN = "not_run"


def _proves(endpoint: dict[str, Any], initiator: str, prober: str, outside: bool, inbound_from_inside: bool) -> str:
    """What a pass of this row proves, and what it does not (the report's "A pass proves" column)."""
    probe = endpoint.get("probe", "tcp")
    where = "%s:%s" % (endpoint.get("host", ""), endpoint["port"])
    verified = (
        "its certificate chain is verified"
        if endpoint.get("check_hostname") is False
        else "its certificate chain and name are verified"
    )
    if probe == "listen":
        return "a service of %s listens on port %s; nothing connected to it, so not that %s can reach it" % (
            prober,
            endpoint["port"],
            initiator,
        )
    checked = {
        "tcp": "a TCP connection to %s opens (the network path, not the service behind it)" % where,
        "tls": "a TLS handshake with %s completes and %s" % (where, verified),
        "ssh": "the SSH server at %s sends its identification (no login)" % where,
        "smtp": "the SMTP server at %s greets and answers EHLO%s"
        % (where, ", then STARTTLS with a verified certificate" if endpoint.get("starttls") else ""),
        "ldaps": "a TLS handshake with the LDAPS server at %s verifies (no bind)" % where,
        "sip2": "the SIP2 server behind %s answers a status request with a valid ACS status%s"
        % (where, " over TLS (%s)" % verified if SIP2_TLS_KEYS & set(endpoint) else ""),
        "spf": "the SPF record of %s (includes followed), as %s answers it, lets exactly the allowlist's networks send"
        % (endpoint.get("spf_domain"), endpoint.get("host") or "the host's resolver"),
    }[probe]
    text = "%s, from %s" % (checked, prober)
    if inbound_from_inside:
        text += "; not that %s can reach it from outside" % initiator
    elif outside:
        text += ", standing in for %s (not its own addresses)" % initiator
    elif prober != initiator and not initiator.endswith("(%s)" % prober):
        text += "; not from the %s's own network" % initiator
    return text


def _is_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def _label(what: str, index: int, entry: Any) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return "%s[%d] (name: %s)" % (what, index, name) if name else "%s[%d]" % (what, index)


# ---------------------------------------------------------------------------------------
# Bandwidth


def bandwidth_mb(named_users: Any) -> float:
    """Minimum bandwidth in MB for a number of named users, by the vendor's table.

    The rate of the user count's tier applies to every user (10 users: 0.25 MB; 500 users: 5 MB).
    """
    if isinstance(named_users, bool) or not isinstance(named_users, int):
        if isinstance(named_users, str) and named_users.strip().isdigit():
            named_users = int(named_users.strip())
        else:
            raise AnsibleFilterError("bandwidth_mb: named users must be a whole number, got %r" % (named_users,))
    if named_users < 0:
        raise AnsibleFilterError("bandwidth_mb: named users must not be negative, got %d" % named_users)
    return float(Decimal(named_users) * bandwidth_rate(named_users))


def bandwidth_rate(named_users: int) -> Decimal:
    for limit, rate in BANDWIDTH_TIERS:
        if limit is None or named_users <= limit:
            return rate
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------------------
# Plan: the rows of the vendor's table for one host


def _endpoint_problems(entry: dict[str, Any], extra_keys: frozenset[str] = frozenset()) -> list[str]:
    problems = []
    unknown = sorted(set(entry) - ENDPOINT_KEYS - ROW_KEYS - extra_keys)
    if unknown:
        problems.append("unknown key(s) %s" % ", ".join(unknown))
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.append("name %r must be 1-64 characters of letters, digits, '.', '_', '-'" % (name,))
    if not _is_port(entry.get("port")):
        problems.append("port %r is outside 1-65535" % (entry.get("port"),))
    probe = entry.get("probe", "tcp")
    if probe not in PROBES:
        problems.append("probe %r is not one of %s" % (probe, ", ".join(PROBES)))
    direction = entry.get("direction", "outbound")
    if direction not in DIRECTIONS:
        problems.append("direction %r is not one of %s" % (direction, ", ".join(DIRECTIONS)))
    integration = entry.get("integration")
    if not isinstance(integration, str) or not integration.strip():
        problems.append("integration (the row's name in the vendor's table) is required")
    if "required" in entry and not isinstance(entry["required"], bool):
        problems.append("required must be true or false, got %r" % (entry["required"],))
    timeout = entry.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        problems.append("timeout must be a positive number, got %r" % (timeout,))
    if direction == "outbound" and probe not in HOSTLESS_PROBES and not entry.get("host"):
        problems.append("host is required for an outbound %s probe" % probe)
    if probe == "spf" and (not entry.get("spf_domain") or not isinstance(entry.get("spf_allowed"), list)):
        problems.append("an spf probe needs spf_domain and the list spf_allowed")
    if direction == "local" and probe != "listen":
        problems.append("a local row is a listener of this host: probe must be listen, got %r" % probe)
    return problems


def _same_path(endpoint: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two endpoints the same check, whatever their names."""
    return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in endpoint.items() if k != "name"))


class _Plan:
    """Collects rows and their endpoints; names must be unique across the host's plan."""

    def __init__(self, inputs: dict[str, Any]) -> None:
        self.host = str(inputs.get("host") or "this host")
        self.vendor = str(inputs.get("vendor") or "Alma")
        self.outside = inputs.get("outside_probe_host") or None
        # SMTP inbound comes from the vendor's mail relays, not from its platform ranges: the
        # host probing an inbound SMTP path may be another one (a firewall may let only the
        # relays reach port 25).
        self.outside_mail = inputs.get("outside_mail_probe_host") or self.outside
        self.inbound_address = inputs.get("inbound_address") or self.host
        self.timeout = inputs.get("timeout")
        self.ehlo_name = inputs.get("ehlo_name") or None
        self.rows: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.names: dict[str, str] = {}
        self.paths: dict[tuple[Any, ...], dict[str, Any]] = {}

    def _placed(
        self, endpoint: dict[str, Any], direction: str, outside: Optional[str]
    ) -> tuple[dict[str, Any], str, str]:
        """Where a path is probed from: (the endpoint as probed, probe_from, note)."""
        name = endpoint["name"]
        if direction == "inbound" and not outside and endpoint.get("host"):
            # A service on another host (given by the site) and nobody outside: probe it from here.
            return endpoint, "host", INSIDE_NOTE
        if direction == "inbound" and not outside:
            # No host outside to probe from: prove at least that the service listens here.
            local = {"name": name, "port": endpoint["port"], "probe": "listen"}
            for key in ("required", "timeout", "listen_address"):
                if key in endpoint:
                    local[key] = endpoint[key]
            return local, "host", LOCAL_NOTE
        if direction == "inbound":
            endpoint.setdefault("host", self.inbound_address)
            return endpoint, ("outside_mail" if outside != self.outside else "outside"), "probed from %s" % outside
        return endpoint, "host", ("local listener" if direction == "local" else "")

    def add(
        self, row: dict[str, Any], endpoint: dict[str, Any], direction: str, origin: str, merge: bool = False
    ) -> None:
        name = endpoint["name"]
        if name in self.names:
            self.errors.append("%s: name %r is already used by %s" % (origin, name, self.names[name]))
            return
        self.names[name] = origin
        endpoint = {k: v for k, v in endpoint.items() if v is not None}
        probe = endpoint.get("probe", "tcp")
        outside = self.outside_mail if probe == "smtp" else self.outside
        if self.timeout is not None:
            endpoint.setdefault("timeout", self.timeout)
        if probe == "smtp" and direction == "outbound" and self.ehlo_name:
            endpoint.setdefault("ehlo_name", self.ehlo_name)
        endpoint, probe_from, note = self._placed(endpoint, direction, outside)
        if endpoint.get("probe") != "listen":
            endpoint.pop("listen_address", None)
        # Two roles' rows for one listener (one Postfix for the mail relay and the print proxy)
        # are one path: probe it once, under the first name, and name both in the row. The site's
        # own entries are taken as given.
        path = _same_path(dict(endpoint, direction=direction))
        if merge and path in self.paths:
            first = self.paths[path]
            if row["integration"] not in first["integration"].split("; "):
                first["integration"] += "; " + row["integration"]
            return
        prober = outside if probe_from.startswith("outside") else self.host
        proves = _proves(endpoint, row["initiator"], prober, probe_from.startswith("outside"), note == INSIDE_NOTE)
        self.rows.append(
            {
                "name": name,
                "integration": row["integration"],
                "initiator": row["initiator"],
                "target": row["target"],
                "protocol": row["protocol"],
                "port": endpoint["port"],
                "direction": direction,
                "probe_from": probe_from,
                "note": note,
                "proves": proves,
                "required": bool(endpoint.get("required", True)),
                "endpoint": endpoint,
            }
        )
        if merge:
            self.paths.setdefault(path, self.rows[-1])

    def listed(self, what: str, entries: Any, default_direction: str, contributed: bool = False) -> None:
        if not isinstance(entries, list):
            self.errors.append("%s: expected a list, got %s" % (what, type(entries).__name__))
            return
        for index, entry in enumerate(entries):
            label = _label(what, index, entry)
            if not isinstance(entry, dict):
                self.errors.append("%s: expected a dict, got %s" % (label, type(entry).__name__))
                continue
            if contributed and entry.get("source"):
                label = "%s (from %s)" % (label, entry["source"])
            problems = _endpoint_problems(entry, CONTRIBUTED_KEYS if contributed else frozenset())
            if problems:
                self.errors.extend("%s: %s" % (label, p) for p in problems)
                continue
            direction = entry.get("direction", default_direction)
            probe = entry.get("probe", "tcp")
            target_host = entry.get("host") or self.host
            if direction == "outbound":
                initiator = entry.get("initiator") or self.host
                target = entry.get("target") or "%s (%s)" % (self.vendor, target_host)
            else:
                initiator = entry.get("initiator") or self.vendor
                target = entry.get("target") or target_host
            row = {
                "integration": entry["integration"].strip(),
                "initiator": initiator,
                "target": target,
                "protocol": entry.get("protocol") or PROTOCOL_OF_PROBE[probe],
            }
            endpoint = {k: v for k, v in entry.items() if k in ENDPOINT_KEYS}
            endpoint.setdefault("probe", probe)
            self.add(row, endpoint, direction, label, merge=contributed)


def preflight_plan(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """The checks of one host, one per row of the vendor's table; fails naming every bad entry.

    ``inputs`` keys: host, vendor, inbound_address, outside_probe_host, outside_mail_probe_host
    (inbound SMTP probes; default outside_probe_host), timeout, ehlo_name (outbound SMTP probes
    that set none), vendor_endpoints and extra_endpoints (the site's), role_endpoints (the rows
    the integration roles contribute, each may name its ``source``). Every list has the same
    schema: port_check endpoint options plus the row keys integration, initiator, target,
    protocol and direction (outbound, inbound, local).
    """
    if not isinstance(inputs, dict):
        raise AnsibleFilterError("preflight_plan: expected a dict of inputs, got %s" % type(inputs).__name__)
    plan = _Plan(inputs)
    # Site-given entries first: their names win, a contributed row with the same name is the error.
    plan.listed("preflight_vendor_endpoints", inputs.get("vendor_endpoints") or [], "outbound")
    plan.listed("preflight_extra_endpoints", inputs.get("extra_endpoints") or [], "outbound")
    plan.listed("preflight_role_endpoints", inputs.get("role_endpoints") or [], "outbound", contributed=True)
    if plan.errors:
        raise AnsibleFilterError(
            "preflight: %d problem(s), nothing was probed: %s" % (len(plan.errors), "; ".join(plan.errors))
        )
    return plan.rows


# ---------------------------------------------------------------------------------------
# Probing in parallel: every host of the play probes in one task, its own paths and the
# inbound paths of the hosts that name it as their outside probe host.

OWNER_SEPARATOR = "|"


def _host_var(hostvars: Any, host: str, name: str) -> Any:
    if host not in hostvars:
        return None
    return hostvars[host].get(name)


def preflight_probe_share(hostvars: Any, hosts: list[str], prober: str) -> list[dict[str, Any]]:
    """The endpoints ``prober`` probes for the hosts of the play, each named ``<owner>|<name>``.

    Every host's ``__preflight_probe_plan`` (a fact: host endpoints, and the outside and mail
    probe hosts with their endpoints) says what it needs; ``prober`` takes its own host endpoints
    and the inbound endpoints of every host that names it.
    """
    share: list[dict[str, Any]] = []
    for owner in hosts:
        plan = _host_var(hostvars, owner, "__preflight_probe_plan")
        if not isinstance(plan, Mapping):
            continue
        endpoints = list(plan.get("host") or []) if owner == prober else []
        for side in ("outside", "outside_mail"):
            given = plan.get(side) or {}
            if given.get("probe_host") == prober:
                endpoints.extend(given.get("endpoints") or [])
        share.extend(dict(endpoint, name=owner + OWNER_SEPARATOR + endpoint["name"]) for endpoint in endpoints)
    return share


def preflight_probe_results(hostvars: Any, hosts: list[str], owner: str) -> list[dict[str, Any]]:
    """The results of ``owner``'s endpoints, from every host of the play that probed some of them."""
    prefix = owner + OWNER_SEPARATOR
    found: list[dict[str, Any]] = []
    for prober in hosts:
        registered = _host_var(hostvars, prober, "__preflight_probes")
        results = registered.get("results") if isinstance(registered, Mapping) else None
        for result in results or []:
            name = result.get("name") if isinstance(result, Mapping) else None
            if isinstance(name, str) and name.startswith(prefix):
                found.append(dict(result, name=name[len(prefix) :]))
    return found


# ---------------------------------------------------------------------------------------
# Report


def preflight_report(
    checks: list[dict[str, Any]],
    results: Optional[list[dict[str, Any]]] = None,
    *,
    host: str = "",
    generated_at: str = "",
    outside_probe_host: Optional[str] = None,
    named_users: Any = None,
    vendor: str = "Alma",
    not_run_reason: str = "",
) -> dict[str, Any]:
    """Join the plan's rows with the port_check results (by name) into the report."""
    by_name = {r.get("name"): r for r in results or [] if isinstance(r, dict)}
    rows = []
    for check in checks:
        result = by_name.get(check["name"])
        row = {k: v for k, v in check.items() if k != "endpoint"}
        row["host"] = check["endpoint"].get("host")
        row["probe"] = check["endpoint"].get("probe", "tcp")
        if result is None:
            row.update(
                status=NOT_RUN,
                ok=False,
                latency_ms=None,
                message="no result: %s" % (not_run_reason or "the probe did not run"),
                details={},
            )
        else:
            row.update(
                status=result.get("status", "error"),
                ok=bool(result.get("ok")),
                latency_ms=result.get("latency_ms"),
                message=result.get("message", ""),
                details=result.get("details") or {},
            )
        rows.append(row)
    by_status: dict[str, int] = {}
    for row in rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
    summary = {
        "total": len(rows),
        "ok": sum(1 for r in rows if r["ok"]),
        "failed": sum(1 for r in rows if not r["ok"]),
        "failed_required": sum(1 for r in rows if not r["ok"] and r["required"]),
        "failed_required_names": [r["name"] for r in rows if not r["ok"] and r["required"]],
        "checked_locally": sum(1 for r in rows if r["note"] == LOCAL_NOTE),
        "by_status": dict(sorted(by_status.items())),
    }
    bandwidth = None
    if named_users not in (None, "", 0, "0"):
        minimum = bandwidth_mb(named_users)  # validates the count
        users = int(named_users)
        bandwidth = {
            "named_users": users,
            "mb_per_user": float(bandwidth_rate(users)),
            "minimum_mb": minimum,
            "rule": "up to 50 named users 0.025 MB per user, above 50 0.015, above 200 0.01 (vendor's table)",
        }
    return {
        "host": host,
        "vendor": vendor,
        "generated_at": generated_at,
        "generated_by": "libsys.onprem.preflight",
        "outside_probe_host": outside_probe_host or None,
        "inbound": ("probed from %s" % outside_probe_host) if outside_probe_host else LOCAL_NOTE,
        "summary": summary,
        "bandwidth": bandwidth,
        "rows": rows,
    }


def _result_text(row: dict[str, Any]) -> str:
    if row["ok"]:
        text = "ok"
        if row.get("latency_ms") is not None:
            text += " (%s ms)" % row["latency_ms"]
    else:
        text = "**%s**%s: %s" % (
            row["status"].upper(),
            "" if row["required"] else " (optional)",
            row.get("message") or "",
        )
    if row.get("note") in (LOCAL_NOTE, INSIDE_NOTE):
        text = "%s: %s" % (row["note"], text)
    return text


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ").strip()


MARKDOWN_COLUMNS = ("Integration type", "Initiator", "Target", "Protocol", "Port", "A pass proves", "Result")


def preflight_markdown(report: dict[str, Any]) -> str:
    """A Markdown page with the rows laid out like the vendor's network table."""
    summary = report["summary"]
    lines = [
        "# Preflight report: %s" % report.get("host", ""),
        "",
        "Generated %s by %s. Inbound paths (initiated by %s): %s."
        % (
            report.get("generated_at", ""),
            report.get("generated_by", "libsys.onprem.preflight"),
            report.get("vendor"),
            report.get("inbound"),
        ),
        "",
        "Summary: %d paths, %d ok, %d failed (%d required)."
        % (summary["total"], summary["ok"], summary["failed"], summary["failed_required"]),
        "",
    ]
    bandwidth = report.get("bandwidth")
    if bandwidth:
        lines += [
            "Bandwidth: %d named users need at least %g MB (%g MB per user; rule: %s)."
            % (bandwidth["named_users"], bandwidth["minimum_mb"], bandwidth["mb_per_user"], bandwidth["rule"]),
            "",
        ]
    lines.append("| %s |" % " | ".join(MARKDOWN_COLUMNS))
    lines.append("|%s" % (" --- |" * len(MARKDOWN_COLUMNS)))
    for row in report["rows"]:
        cells = (
            row["integration"],
            row["initiator"],
            row["target"],
            row["protocol"],
            row["port"],
            row.get("proves", ""),
            _result_text(row),
        )
        lines.append("| %s |" % " | ".join(_cell(c) for c in cells))
    return "\n".join(lines) + "\n"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "path"


def preflight_junit(report: dict[str, Any]) -> str:
    """JUnit XML: one testcase per row; a failed required row is a failure, a failed optional one is skipped."""
    host = report.get("host", "")
    rows = report["rows"]
    failures = sum(1 for r in rows if not r["ok"] and r["required"])
    skipped = sum(1 for r in rows if not r["ok"] and not r["required"])
    seconds = sum((r.get("latency_ms") or 0) for r in rows) / 1000.0
    counts = {"tests": str(len(rows)), "failures": str(failures), "errors": "0", "skipped": str(skipped)}
    suites = ET.Element("testsuites", name="libsys.onprem.preflight", time="%.3f" % seconds, **counts)
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="preflight.%s" % host,
        hostname=host,
        timestamp=str(report.get("generated_at", "")),
        time="%.3f" % seconds,
        **counts,
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="inbound", value=str(report.get("inbound", "")))
    if report.get("bandwidth"):
        ET.SubElement(props, "property", name="bandwidth_minimum_mb", value="%g" % report["bandwidth"]["minimum_mb"])
        ET.SubElement(props, "property", name="named_users", value=str(report["bandwidth"]["named_users"]))
    for row in rows:
        case = ET.SubElement(
            suite,
            "testcase",
            classname="preflight.%s.%s" % (_slug(host), _slug(row["integration"])),
            name="%s: %s -> %s, %s %s" % (row["name"], row["initiator"], row["target"], row["protocol"], row["port"]),
            time="%.3f" % ((row.get("latency_ms") or 0) / 1000.0),
        )
        if row.get("proves"):
            case_props = ET.SubElement(case, "properties")
            ET.SubElement(case_props, "property", name="proves", value=str(row["proves"]))
        text = "%s (%s:%s, probe %s%s): %s" % (
            row["status"],
            row.get("host") or "local",
            row["port"],
            row["probe"],
            ", " + row["note"] if row.get("note") else "",
            row.get("message", ""),
        )
        if not row["ok"] and row["required"]:
            ET.SubElement(case, "failure", type=row["status"], message=text).text = text
        elif not row["ok"]:
            ET.SubElement(case, "skipped", message="optional path failed: " + text)
        elif row.get("note"):
            ET.SubElement(case, "system-out").text = "%s: %s" % (row["note"], row.get("message", ""))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def preflight_changes(report: dict[str, Any], previous: Any) -> list[str]:
    """Rows whose status differs from the previous report (JSON text or dict); one line each."""
    if isinstance(previous, str):
        if not previous.strip():
            return ["no previous report"]
        try:
            previous = json.loads(previous)
        except ValueError:
            return ["previous report is not valid JSON"]
    if not isinstance(previous, dict) or not isinstance(previous.get("rows"), list):
        return ["no previous report"]
    before = {r.get("name"): r.get("status") for r in previous["rows"] if isinstance(r, dict)}
    now = {r["name"]: r["status"] for r in report["rows"]}
    changes = []
    for name, status in now.items():
        if name not in before:
            changes.append("%s: new path (%s)" % (name, status))
        elif before[name] != status:
            changes.append("%s: %s -> %s" % (name, before[name], status))
    changes.extend("%s: path no longer checked" % name for name in before if name not in now)
    return changes


class FilterModule:
    """Filters of the preflight role."""

    def filters(self) -> dict[str, Any]:
        return {
            "preflight_plan": preflight_plan,
            "preflight_report": preflight_report,
            "preflight_markdown": preflight_markdown,
            "preflight_junit": preflight_junit,
            "preflight_changes": preflight_changes,
            "preflight_probe_share": preflight_probe_share,
            "preflight_probe_results": preflight_probe_results,
            "bandwidth_mb": bandwidth_mb,
        }
