# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Loopback server fixtures; the servers themselves live in loopback.py so tests can import helpers."""

from __future__ import annotations

pytest_plugins = ["ansible_collections.libsys.onprem.tests.unit.loopback"]


def pytest_configure(config) -> None:
    # ansible-test runs pytest with its own ini file and --strict-markers: register ours here.
    config.addinivalue_line("markers", "nft: needs root and nftables (unanswered ports made with a drop rule)")
