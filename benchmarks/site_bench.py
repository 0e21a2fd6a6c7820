# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark site.yml on the lab over SSH: a full idempotent run, plain and with Mitogen.

Uses the lab of `make lab` (tools/lab.sh; podman containers on 203.0.113.128/25, nothing leaves
the bridge). The integration host lab-onprem is reached as users reach theirs: SSH as an
administrator with sudo, pipelining and ControlPersist (inventories/lab). When no lab is
running, or with --fresh, the benchmark brings one up and reports its first converge; a lab it
started is removed at the end unless --keep.

Then, in rotating order for --rounds rounds:
  * facts:   benchmarks/site_facts_only.yml, the hosts of site.yml, the same gather_subset as
             site.yml's validation play (min, network): the baseline;
  * plain:   playbooks/site.yml, every task, which must report changed=0 (otherwise the figure is
             not an idempotent run and the benchmark says so and fails);
  * mitogen: the same with the mitogen_linear strategy (Mitogen from requirements/controller.txt).
Prints the medians, the ratios to the facts-only play, and whether each target is met:
plain SSH at most 45 s, Mitogen at most 20 s (the 2-core machine, the all-in-one lab host). Also
the task headers of a run and the tasks that reached the integration host (a callback of this
directory counts them), and the ten slowest tasks.

    python benchmarks/site_bench.py [--rounds 3] [--fresh] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ansible_mitogen  # Mitogen, from requirements/controller.txt

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LAB = ROOT / "tools" / "lab.sh"
SITE = ROOT / "playbooks" / "site.yml"
FACTS_ONLY = HERE / "site_facts_only.yml"
TARGETS = {"plain": 45.0, "mitogen": 20.0}


def mitogen_strategy_dir() -> str:
    return str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy")


def lab_is_running() -> bool:
    probe = ["podman", "inspect", "-f", "{{.State.Running}}", "lab-onprem"]
    result = subprocess.run(probe, capture_output=True, text=True, check=False)
    return result.returncode == 0 and result.stdout.strip() == "true"


def run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.monotonic()
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, env=dict(os.environ, ANSIBLE_NOCOLOR="1", **(env or {}))
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

    counts_file = Path(tempfile.mkstemp(prefix="libsys-site-bench-", suffix=".json")[1])
    counting = {
        "ANSIBLE_CALLBACK_PLUGINS": str(HERE / "callback_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks,host_tasks",
        "LIBSYS_HOST_TASKS_FILE": str(counts_file),
    }
    # Mitogen runs its own ssh and does not pass the inventory's known_hosts option on: the lab's
    # host keys are new with every lab, so its host-key check is off for the lab only.
    mitogen = {
        "ANSIBLE_STRATEGY_PLUGINS": mitogen_strategy_dir(),
        "ANSIBLE_STRATEGY": "mitogen_linear",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
    }
    commands = {
        "facts": ([str(LAB), "play", str(FACTS_ONLY)], {}),
        "plain": ([str(LAB), "play", str(SITE)], counting),
        "mitogen": ([str(LAB), "play", str(SITE)], mitogen),
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    last_plain = ""
    for round_number in range(args.rounds):
        order = list(commands)[round_number % 3 :] + list(commands)[: round_number % 3]
        for what in order:
            command, env = commands[what]
            elapsed, output = run(command, env)
            if what != "facts":
                totals = recap_totals(output)
                if totals.get("changed", 0) != 0 or totals.get("failed", 0) != 0:
                    sys.exit(f"site.yml ({what}) was not an idempotent run: {totals}")
            if what == "plain":
                last_plain = output
            times[what].append(elapsed)
        print(
            f"  round {round_number + 1}: facts {times['facts'][-1]:.1f} s, site.yml plain SSH "
            f"{times['plain'][-1]:.1f} s, with Mitogen {times['mitogen'][-1]:.1f} s"
        )

    failed = report(times, counts_file, last_plain, args.rounds)
    if started_here and not args.keep:
        subprocess.run([str(LAB), "down"], check=False, capture_output=True)
    return 1 if failed else 0


def report(times: dict[str, list[float]], counts_file: Path, last_plain: str, rounds: int) -> bool:
    """Print the figures and whether each target is met; True when a target is not met."""
    medians = {name: statistics.median(values) for name, values in times.items()}
    counts = json.loads(counts_file.read_text(encoding="utf-8"))
    counts_file.unlink()
    totals = recap_totals(last_plain)
    load = os.getloadavg()
    print()
    print(f"facts-only play, gather_subset min+network (median of {rounds}): {medians['facts']:6.1f} s")
    failed = False
    for what, label in (("plain", "plain SSH"), ("mitogen", "Mitogen")):
        met = medians[what] <= TARGETS[what]
        failed |= not met
        print(
            f"site.yml full run, changed=0, {label} (median of {rounds}): {medians[what]:6.1f} s, "
            f"{medians[what] / medians['facts']:.1f}x the facts  "
            f"(target <= {TARGETS[what]:.0f} s: {'target met' if met else 'target NOT met'})"
        )
    reached = counts["reached"].get("lab-onprem", 0)
    print(f"task headers of a run: {counts['task_headers']}; tasks that reached lab-onprem: {reached}")
    print(f"results of a run: ok={totals.get('ok', 0)} skipped={totals.get('skipped', 0)} changed=0")
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("slowest tasks of the last plain run (profile_tasks):")
    for line in slowest_tasks(last_plain):
        print(f"  {line}")
    return failed


if __name__ == "__main__":
    sys.exit(main())
