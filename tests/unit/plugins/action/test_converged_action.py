# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller-side digest of libsys.onprem.converged."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleError

from ansible_collections.libsys.onprem.plugins.action import converged
from ansible_collections.libsys.onprem.tests.unit.action_harness import make_action


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


class Unreadable:
    """A variable whose templating fails, like a lookup of a certificate file that is not there."""


def run_action(args: dict, task_vars: dict, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, list[dict]]:
    """Run the action plugin; returns its result and the module arguments it sent to the host."""
    action = make_action(converged.ActionModule, args)
    sent: list[dict] = []

    def execute_module(module_name: str, module_args: dict, task_vars: dict) -> dict:
        sent.append(module_args)
        return {"converged": True, "reasons": []}

    def template(value):
        if isinstance(value, Unreadable):
            raise AnsibleError("could not locate file in lookup: /etc/pki/missing.crt")
        return value

    monkeypatch.setattr(action, "_execute_module", execute_module)
    monkeypatch.setattr(action._templar, "template", template)
    return action.run(task_vars=task_vars), sent


TASK_VARS = {
    "stunnel_tunnels": [{"name": "sip2", "accept_port": 6001}],
    "unrelated": "not in the digest",
    "inventory_hostname": "onprem1",
    "group_names": ["sip2_gateways"],
    "ansible_facts": {"fqdn": "onprem1.example.edu"},
}


def test_state_digest_stays_on_the_controller(monkeypatch: pytest.MonkeyPatch) -> None:
    args = {"name": "stunnel", "state": "digest", "prefixes": ["stunnel_"], "requires": ["nftables"]}
    result, sent = run_action(args, TASK_VARS, monkeypatch)
    assert sent == []
    assert result["name"] == "stunnel" and result["requires"] == ["nftables"] and not result.get("changed")
    # The same digest as the role's own check sends to the host.
    sent = run_action({"name": "stunnel", "prefixes": ["stunnel_"]}, TASK_VARS, monkeypatch)[1]
    assert sent[0]["digest"] == result["digest"]
    other = run_action(args, {**TASK_VARS, "stunnel_tunnels": []}, monkeypatch)[0]
    assert other["digest"] != result["digest"]
    unrelated = run_action(args, {**TASK_VARS, "unrelated": "changed"}, monkeypatch)[0]
    assert unrelated["digest"] == result["digest"]


def test_the_managed_header_is_part_of_the_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    # The roles' templates write {{ ansible_managed }}: another header must mean a full run.
    args = {"name": "mail_relay", "state": "digest", "prefixes": ["mail_relay_"]}
    default = run_action(args, TASK_VARS, monkeypatch)[0]["digest"]
    as_variable = run_action(args, {**TASK_VARS, "ansible_managed": "Managed by the library"}, monkeypatch)[0]
    assert as_variable["digest"] != default
    monkeypatch.setattr(converged.C, "DEFAULT_MANAGED_STR", "Managed by the library")
    assert run_action(args, TASK_VARS, monkeypatch)[0]["digest"] not in (default, as_variable["digest"])


def test_the_managed_header_variable_is_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rendered like the role's variables: one that cannot be rendered leaves the digest out and is named.
    args = {"name": "mail_relay", "state": "digest", "prefixes": ["mail_relay_"]}
    result = run_action(args, {**TASK_VARS, "ansible_managed": Unreadable()}, monkeypatch)[0]
    assert "digest" not in result and not result.get("failed")
    assert "ansible_managed" in result["msg"]


def test_a_digest_that_cannot_be_made_is_left_out_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    args = {"name": "stunnel", "state": "digest", "prefixes": ["stunnel_"]}
    result, sent = run_action(args, {**TASK_VARS, "stunnel_cert_pem": Unreadable()}, monkeypatch)
    assert sent == [] and not result.get("failed")
    assert "digest" not in result
    assert "stunnel_cert_pem" in result["msg"]
    # The role's own check fails on it, naming the variable.
    with pytest.raises(converged.InputError, match="stunnel_cert_pem"):
        run_action(
            {"name": "stunnel", "prefixes": ["stunnel_"]}, {**TASK_VARS, "stunnel_cert_pem": Unreadable()}, monkeypatch
        )


def test_states_send_only_name_digest_and_requires(monkeypatch: pytest.MonkeyPatch) -> None:
    registered = {"name": "stunnel", "digest": "d" * 64, "requires": [], "changed": False, "failed": False}
    result, sent = run_action({"states": [registered]}, TASK_VARS, monkeypatch)
    assert sent == [{"states": [{"name": "stunnel", "digest": "d" * 64, "requires": []}]}]
    assert result["converged"] is True


def test_states_gathered_with_the_facts_are_checked_with_no_call(monkeypatch: pytest.MonkeyPatch) -> None:
    states = [{"name": "stunnel", "digest": "d" * 64, "requires": ["nftables"]}]
    gathered = {
        "version": 1,
        "state_dir": "/var/lib/libsys-onprem/converged",
        "states": {
            "stunnel": {"readable": True, "digest": "d" * 64, "reasons": []},
            "nftables": {"readable": True, "digest": "", "reasons": []},
        },
    }
    result, sent = run_action({"states": states, "gathered": gathered}, TASK_VARS, monkeypatch)
    assert sent == []
    assert result["converged"] is True and result["from_gathered"] is True
    gathered["states"]["nftables"]["reasons"] = ["command nft -s list table inet libsys_stunnel: changed"]
    result, sent = run_action({"states": states, "gathered": gathered}, TASK_VARS, monkeypatch)
    assert sent == [] and result["converged"] is False
    assert result["reasons"] == ["stunnel: command nft -s list table inet libsys_stunnel: changed"]


def test_a_fact_from_another_state_dir_means_the_host_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    states = [{"name": "stunnel", "digest": "d" * 64, "requires": []}]
    gathered = {"version": 1, "state_dir": "/var/lib/libsys-onprem/converged", "states": {}}
    args = {"states": states, "gathered": gathered, "state_dir": "/srv/state"}
    result, sent = run_action(args, TASK_VARS, monkeypatch)
    assert sent == [{"states": states, "state_dir": "/srv/state"}]
    assert result["from_gathered"] is False


def test_record_sends_the_local_fact_it_installs(monkeypatch: pytest.MonkeyPatch) -> None:
    args = {"name": "stunnel", "state": "record", "digest": "d" * 64, "watch": {"paths": ["/etc/stunnel"]}}
    sent = run_action(args, TASK_VARS, monkeypatch)[1]
    assert sent[0]["fact_source"] == converged.FACT_SOURCE.read_text(encoding="utf-8")
    assert "def local_fact(" in sent[0]["fact_source"]
