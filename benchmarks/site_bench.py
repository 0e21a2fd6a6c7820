# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark site.yml on the lab: an idempotent re-run versus a play that only gathers facts.

Uses the lab of `make lab` (tools/lab.sh; podman containers on 203.0.113.128/25, nothing
leaves the bridge). When no lab is running, or with --fresh, the benchmark brings one up and
reports the first converge of site.yml (and the other steps of `make lab`); a lab it started
is removed at the end unless --keep.

Then, on the converged lab, in rotating order for --rounds rounds:
  * facts:  benchmarks/site_facts_only.yml, the same hosts as site.yml, gather_facts only;
  * re-run: playbooks/site.yml, which must report changed=0 (otherwise the figure is not
            an idempotent re-run and the benchmark says so and fails);
  * roles:  the same re-run with --skip-tags preflight, to show what the roles cost apart from
            preflight, whose probes are real network checks that run on every run.
Prints the medians and the ratios to facts (target <= 3x for the re-run), plus the tasks the
re-run executed and its ten slowest tasks (ansible.posix.profile_tasks), to show where the
time goes.

    python benchmarks/site_bench.py [--rounds 3] [--fresh] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LAB = ROOT / "tools" / "lab.sh"
SITE = ROOT / "playbooks" / "site.yml"
FACTS_ONLY = HERE / "site_facts_only.yml"
TARGET_RATIO = 3.0


def lab_is_running() -> bool:
    probe = ["podman", "inspect", "-f", "{{.State.Running}}", "lab-onprem"]
    result = subprocess.run(probe, capture_output=True, text=True, check=False)
    return result.returncode == 0 and result.stdout.strip() == "true"


def run(command: list[str]) -> tuple[float, str]:
    start = time.monotonic()
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, env=dict(os.environ, ANSIBLE_NOCOLOR="1")
    )
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed (rc {result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}")
    return elapsed, result.stdout


def recap_totals(output: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for line in output.split("PLAY RECAP", 1)[-1].splitlines():
        for key, value in re.findall(r"(\w+)=(\d+)", line):
            totals[key] = totals.get(key, 0) + int(value)
    return totals


def slowest_tasks(output: str, count: int = 10) -> list[str]:
    """The profile_tasks summary lines ("name ---- 12.34s") of a playbook's output."""
    lines = [line for line in output.splitlines() if re.search(r" -{3,} +\d+\.\d+s$", line)]
    return lines[:count]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="remove a running lab and start a new one")
    parser.add_argument("--keep", action="store_true", help="leave a lab this benchmark started running")
    args = parser.parse_args()

    started_here = False
    if args.fresh or not lab_is_running():
        subprocess.run([str(LAB), "down"], check=False, capture_output=True)
        print("bringing the lab up (make lab): first converge")
        elapsed, output = run([str(LAB), "up"])
        started_here = True
        steps = output.split("The lab ran:", 1)[-1].split("Containers", 1)[0].strip()
        print(f"  make lab from nothing: {elapsed:.0f} s, of which\n    " + "\n    ".join(steps.splitlines()))
    else:
        print("first converge: not measured in this run (a lab was already running; use --fresh)")

    commands = {
        "facts": [str(LAB), "play", str(FACTS_ONLY)],
        "rerun": [str(LAB), "play", str(SITE)],
        "roles": [str(LAB), "play", str(SITE), "--skip-tags", "preflight"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    last_rerun = ""
    for round_number in range(args.rounds):
        order = list(commands)[round_number % 3 :] + list(commands)[: round_number % 3]
        for what in order:
            elapsed, output = run(commands[what])
            if what != "facts":
                totals = recap_totals(output)
                if totals.get("changed", 0) != 0 or totals.get("failed", 0) != 0:
                    sys.exit(f"site.yml re-run ({what}) was not idempotent: {totals}")
            if what == "rerun":
                last_rerun = output
            times[what].append(elapsed)
        print(
            f"  round {round_number + 1}: facts {times['facts'][-1]:.1f} s, site.yml re-run {times['rerun'][-1]:.1f} s,"
            f" without preflight {times['roles'][-1]:.1f} s"
        )

    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["rerun"] / medians["facts"]
    totals = recap_totals(last_rerun)
    load = os.getloadavg()
    print()
    print(f"facts-only play (median of {args.rounds}):          {medians['facts']:6.1f} s")
    print(f"site.yml idempotent re-run (median of {args.rounds}):  {medians['rerun']:6.1f} s  (changed=0)")
    print(f"  the same with --skip-tags preflight:     {medians['roles']:6.1f} s  (changed=0)")
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"ratio re-run / facts: {ratio:.1f}x  (target <= {TARGET_RATIO:.0f}x: {verdict})")
    print(f"ratio re-run without preflight / facts: {medians['roles'] / medians['facts']:.1f}x")
    print(f"tasks in the re-run: ok={totals.get('ok', 0)} skipped={totals.get('skipped', 0)}")
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("slowest tasks of the last re-run (profile_tasks):")
    for line in slowest_tasks(last_rerun):
        print(f"  {line}")
    if started_here and not args.keep:
        subprocess.run([str(LAB), "down"], check=False, capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
