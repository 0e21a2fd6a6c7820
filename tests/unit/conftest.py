# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the unit tests: loopback servers (loopback.py) and the in-process module runner (module_harness.py)."""

from __future__ import annotations

import os

import pytest

pytest_plugins = [
    "ansible_collections.libsys.onprem.tests.unit.loopback",
    # patch_exits (autouse): AnsibleModule's exit_json/fail_json raise, for run_module_main.
    "ansible_collections.libsys.onprem.tests.unit.module_harness",
]


def pytest_configure(config) -> None:
    # ansible-test runs pytest with its own ini file and --strict-markers: register ours here.
    config.addinivalue_line("markers", "nft: needs root and nftables (unanswered ports made with a drop rule)")


# Under `make test` (tools/run-tests.sh sets it) every test must run: a test skipped because a
# tool it needs is missing (nft, openssl, root for the drop rules) would pass silently.
REQUIRE_ALL = "LIBSYS_REQUIRE_TOOLS"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get(REQUIRE_ALL) == "1" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = "skipped under %s=1, which requires every test to run: %s" % (REQUIRE_ALL, reason)
