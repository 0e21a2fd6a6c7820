# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a playbook once on the controller with one inventory host per case (connection local).

Each case's playbook writes <case_out>/<host>.json; the result maps each case to that JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml


def run_cases(playbook: Path, cases: dict[str, dict[str, Any]], out: Path, *args: str) -> dict[str, dict[str, Any]]:
    playbook_bin = shutil.which("ansible-playbook")
    assert playbook_bin, "ansible-playbook is not on PATH (source tools/collection-env.sh)"
    hosts = {
        name: dict(case, ansible_connection="local", ansible_python_interpreter=sys.executable, case_out=str(out))
        for name, case in cases.items()
    }
    inventory = out / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}), encoding="utf-8")
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORKS="8", ANSIBLE_RETRY_FILES_ENABLED="0")
    result = subprocess.run(
        [playbook_bin, "-i", str(inventory), *args, str(playbook)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    found = {}
    for name in cases:
        path = out / ("%s.json" % name)
        assert path.exists(), "no result for case %s:\n%s%s" % (name, result.stdout, result.stderr)
        found[name] = json.loads(path.read_text(encoding="utf-8"))
    return found
