# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Count, per host, the tasks of a run that reached it (for benchmarks/site_bench.py).

A task reaches a host when its result for that host is not "skipped", it is not delegated to
the controller and its action is not one that Ansible runs on the controller alone (assert,
debug, set_fact, the include and import actions...). Loop items count once: the figure is
tasks, not module executions. Written as JSON to the file named by
LIBSYS_HOST_TASKS_FILE when the play ends.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: host_tasks
type: aggregate
short_description: Count the tasks of a run that reached each host
description:
  - Benchmark helper of libsys.onprem (not part of the collection).
requirements:
  - enable in callbacks_enabled, set LIBSYS_HOST_TASKS_FILE
"""

CONTROLLER_ONLY = {
    "assert",
    "debug",
    "set_fact",
    "fail",
    "meta",
    "include_tasks",
    "import_tasks",
    "include_role",
    "import_role",
    "include_vars",
    "add_host",
    "group_by",
    "set_stats",
    "validate_argument_spec",
}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "host_tasks"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.headers = 0
        self.reached: dict[str, set[str]] = {}

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self.headers += 1

    def v2_playbook_on_handler_task_start(self, task) -> None:
        self.headers += 1

    def _record(self, result) -> None:
        task = result._task
        action = task.action.rsplit(".", 1)[-1]
        if action in CONTROLLER_ONLY or task.delegate_to in ("localhost", "127.0.0.1"):
            return
        self.reached.setdefault(result._host.get_name(), set()).add(task._uuid)

    v2_runner_on_ok = _record
    v2_runner_on_failed = _record

    def v2_playbook_on_stats(self, stats) -> None:
        path = os.environ.get("LIBSYS_HOST_TASKS_FILE")
        if path:
            summary = {"task_headers": self.headers, "reached": {h: len(t) for h, t in self.reached.items()}}
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(summary, handle)
