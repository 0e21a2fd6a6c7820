"""The end-to-end demo of `make lab`: drive each integration path of the lab with a real client
in a peer container and print one table row per path.

The checks themselves live in tests/peers/integration_paths.py (the multi-host Molecule
scenario runs the same ones). Every command runs inside a container of the lab (podman exec);
the only addresses used are the lab's own (203.0.113.128/25 on its private podman network).

    python tools/lab-demo.py [--report-dir DIR]

Exits non-zero when a row fails. Writes the table to DIR/demo.md as well.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "peers"))

import integration_paths as e2e  # found through the path above

PEERS = e2e.Peers(
    kiosk="lab-kiosk",
    cloud="lab-cloud",
    vendor_relay="lab-vendor-relay",
    mail_hub="lab-mail-hub",
    outsider="lab-outsider",
)
# The lab's one integration host carries every integration (inventories/lab/hosts.yml).
ONPREM = e2e.IntegrationHost(container="lab-onprem", address="203.0.113.140", asrs_client_port=15010)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-dir", type=Path, default=Path("lab-report"))
    args = parser.parse_args()

    lines = ["| Path | Client | Result | Seconds | Details |", "| --- | --- | --- | --- | --- |"]
    rows = list(e2e.paths(PEERS).values())
    failures = 0
    for row in rows:
        start = time.monotonic()
        try:
            details, result = row.check(ONPREM, PEERS), "PASS"
        except (e2e.PathFailure, subprocess.TimeoutExpired) as exc:
            details, result = str(exc), "FAIL"
            failures += 1
        lines.append(f"| {row.title} | {row.client} | {result} | {time.monotonic() - start:.1f} | {details} |")

    table = "\n".join(lines)
    print(table)
    args.report_dir.mkdir(parents=True, exist_ok=True)
    (args.report_dir / "demo.md").write_text(table + "\n", encoding="utf-8")
    print(f"\n{len(rows) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
