# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller-side digest of libsys.onprem.converged."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ansible_collections.libsys.onprem.plugins.action import converged


def test_digest_follows_every_value_and_the_code() -> None:
    values = {"stunnel_tunnels": [{"name": "sip2", "accept_port": 6001}], "group_names": ["sip2_gateways"]}
    same = converged.inputs_digest(dict(values), "code-1")
    assert same == converged.inputs_digest(dict(values), "code-1")
    other_port = {**values, "stunnel_tunnels": [{"name": "sip2", "accept_port": 6002}]}
    assert same != converged.inputs_digest(other_port, "code-1")
    assert same != converged.inputs_digest(values, "code-2")


def test_code_digest_covers_roles_plugins_and_playbooks(tmp_path: Path) -> None:
    for folder in ("roles/demo/tasks", "plugins/modules", "playbooks"):
        (tmp_path / folder).mkdir(parents=True)
    template = tmp_path / "roles" / "demo" / "tasks" / "main.yml"
    template.write_text("---\n")
    (tmp_path / "plugins" / "modules" / "demo.py").write_text("# demo\n")
    first = converged.code_digest(tmp_path)
    converged._code_digest_cache.clear()
    template.write_text("--- # changed\n")
    assert converged.code_digest(tmp_path) != first
    converged._code_digest_cache.clear()
    (tmp_path / "README.md").write_text("docs are not code\n")
    (tmp_path / "roles" / "demo" / "README.md").write_text("nor is a role's README\n")
    template.write_text("---\n")
    assert converged.code_digest(tmp_path) == first


def test_the_real_collection_has_a_code_digest() -> None:
    assert len(converged.code_digest()) == 64


def test_dependency_versions_follow_the_installed_collections(tmp_path: Path) -> None:
    (tmp_path / "galaxy.yml").write_text("dependencies:\n  community.crypto: '>=2.15.0'\n  no_such.collection: '*'\n")
    versions = converged.dependency_versions(tmp_path)
    assert versions["ansible-core"]
    assert versions["no_such.collection"] == "missing"
    # ansible-test's unit venvs may not have community.crypto; where it is, its version is read.
    try:
        installed = importlib.util.find_spec("ansible_collections.community.crypto") is not None
    except ModuleNotFoundError:
        installed = False
    assert (versions["community.crypto"] not in ("missing", "unknown")) == installed, versions
