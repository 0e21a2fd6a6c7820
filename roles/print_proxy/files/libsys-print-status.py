# Managed by the libsys.onprem.print_proxy role; local changes are overwritten.
"""Show, per printer of the print proxy, the jobs printed and failed, the mailbox deliveries,
the mail still waiting in Postfix and the CUPS queue state.

    libsys-print-status [--json]

Print path (modes print and both), from the print handler's state file, one increment per
e-mailed job: printed; rejected = bounced as unprintable/hostile and kept in the dead-letter
Maildir; refused = sender not allowed; deferred = CUPS failed, Postfix retries.
Mailbox path (modes mailbox and both), from Dovecot (doveadm): delivered = messages ever
delivered to the printer's INBOX (its UIDNEXT - 1: IMAP UIDs are never reused, so mail the
print-proxy software fetched and deleted still counts), in_mailbox = messages there now.
Both paths: deferred_mail = messages for the printer's address that Postfix holds in its
deferred queue now (a mailbox or print delivery that failed and will be retried).
CUPS: the queue state and the jobs still waiting there, from lpstat.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CONFIG = "/etc/libsys-onprem/print-proxy/printers.json"
OUTCOMES = ("printed", "rejected", "refused", "deferred")


def run(*command: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(  # noqa: S603 - fixed programs, argument lists, no shell
            list(command),
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env={"PATH": "/usr/bin:/bin", "LANG": "C"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def lpstat(*args: str) -> str:
    result = run("/usr/bin/lpstat", *args)
    return result.stdout if result else ""


def mailbox_counts(address: str) -> tuple[int | None, int | None]:
    """(delivered ever, messages now) of the printer's INBOX, None when Dovecot cannot tell."""
    result = run("/usr/bin/doveadm", "-f", "flow", "mailbox", "status", "-u", address, "messages uidnext", "INBOX")
    if result is None or result.returncode != 0:
        return None, None
    fields = dict(item.split("=", 1) for item in result.stdout.split() if "=" in item)
    try:
        return int(fields["uidnext"]) - 1, int(fields["messages"])
    except (KeyError, ValueError):
        return None, None


def deferred_mail() -> dict[str, int] | None:
    """Recipients (lowercase, +mailbox folded) of the messages in Postfix's deferred queue."""
    result = run("/usr/sbin/postqueue", "-j")
    if result is None or result.returncode != 0:
        return None
    counts: dict[str, int] = {}
    for line in result.stdout.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("queue_name") != "deferred":
            continue
        for recipient in {r.get("address", "").lower().replace("+mailbox@", "@") for r in entry.get("recipients", [])}:
            counts[recipient] = counts.get(recipient, 0) + 1
    return counts


def show(value: int | None) -> str:
    return "?" if value is None else str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    with open(CONFIG, encoding="utf-8") as handle:
        config = json.load(handle)
    try:
        with open(os.path.join(config["state_dir"], "stats.json"), encoding="utf-8") as handle:
            stats = json.load(handle)
    except (OSError, ValueError):
        stats = {}
    waiting = deferred_mail()
    rows = []
    for address, printer in sorted(config["printers"].items()):
        counts = stats.get(printer["name"], {})
        row = {
            "printer": printer["name"],
            "address": address,
            "mode": printer["mode"],
            "queue": printer["queue"] or "-",
        }
        row.update({outcome: int(counts.get(outcome, 0)) for outcome in OUTCOMES})
        if printer["mode"] in ("mailbox", "both"):
            row["delivered"], row["in_mailbox"] = mailbox_counts(address)
        else:
            row["delivered"], row["in_mailbox"] = 0, 0
        row["deferred_mail"] = None if waiting is None else waiting.get(address, 0)
        if printer["queue"]:
            state = lpstat("-p", printer["queue"]).strip().splitlines()
            row["cups_state"] = state[0] if state else "queue missing"
            row["cups_pending"] = len(lpstat("-o", printer["queue"]).strip().splitlines())
        else:
            row["cups_state"], row["cups_pending"] = "-", 0
        rows.append(row)
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
        return 0
    header = (
        "PRINTER",
        "MODE",
        "QUEUE",
        "PRINTED",
        "REJECTED",
        "REFUSED",
        "DEFERRED",
        "DELIVERED",
        "IN-MAILBOX",
        "DEFERRED-MAIL",
        "PENDING",
    )
    lines = [header] + [
        (
            r["printer"],
            r["mode"],
            r["queue"],
            *(show(r[key]) for key in (*OUTCOMES, "delivered", "in_mailbox", "deferred_mail", "cups_pending")),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(value.ljust(width) for value, width in zip(line, widths)).rstrip())
    for row in rows:
        print(f"{row['printer']}: {row['cups_state']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
