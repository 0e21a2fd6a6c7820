# Managed by the libsys.onprem.print_proxy role; local changes are overwritten.
"""Show, per printer of the print proxy, the jobs printed and failed, and the CUPS queue state.

    libsys-print-status [--json]

Counts come from the print handler's state file (one increment per e-mailed job: printed,
rejected = bounced as unprintable/hostile and kept in the dead-letter Maildir, refused =
sender not allowed, deferred = CUPS failed, Postfix retries); the queue state and the jobs
still waiting in CUPS come from lpstat.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CONFIG = "/etc/libsys-onprem/print-proxy/printers.json"
OUTCOMES = ("printed", "rejected", "refused", "deferred")


def lpstat(*args: str) -> str:
    try:
        result = subprocess.run(  # noqa: S603 - fixed program, argument list, no shell
            ["/usr/bin/lpstat", *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env={"PATH": "/usr/bin:/bin", "LANG": "C"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout


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
    header = ("PRINTER", "MODE", "QUEUE", "PRINTED", "REJECTED", "REFUSED", "DEFERRED", "PENDING")
    lines = [header] + [
        (
            r["printer"],
            r["mode"],
            r["queue"],
            str(r["printed"]),
            str(r["rejected"]),
            str(r["refused"]),
            str(r["deferred"]),
            str(r["cups_pending"]),
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
