# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of libsys.onprem.converged: digest the role's inputs, then run the module.

The digest covers the values of every variable with one of the given prefixes, a few facts,
inventory_hostname, group_names, the ansible_managed header, the code of this collection (roles,
plugins, playbooks) and the versions of ansible-core and of the collections it depends on, so a
changed variable, a changed template or an upgraded collection always means a full run. Only the
digest is sent to the host; variable values never leave the controller and never appear in the
output.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from pathlib import Path

import yaml
from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.release import __version__ as ansible_version

from ansible_collections.libsys.onprem.plugins.module_utils.converged_state import (
    DEFAULT_STATE_DIR,
    check_states,
    reasons_from_fact,
)
from ansible_collections.libsys.onprem.plugins.modules.converged import DEFAULT_FACTS

COLLECTION_ROOT = Path(__file__).resolve().parents[2]
# The local fact the module installs with each recorded state: this collection's own copy.
FACT_SOURCE = COLLECTION_ROOT / "plugins" / "module_utils" / "converged_state.py"
CODE_DIRECTORIES = ("roles", "plugins", "playbooks")
_code_digest_cache: dict[str, str] = {}


def _collection_metadata(root: Path) -> dict:
    """name, version and dependencies from MANIFEST.json (installed) or galaxy.yml (a checkout)."""
    manifest = root / "MANIFEST.json"
    if manifest.is_file():
        return json.loads(manifest.read_text(encoding="utf-8")).get("collection_info", {})
    galaxy = root / "galaxy.yml"
    if galaxy.is_file():
        return yaml.safe_load(galaxy.read_text(encoding="utf-8")) or {}
    return {}


def dependency_versions(root: Path = COLLECTION_ROOT) -> dict[str, str]:
    """ansible-core's version and the installed version of each collection this one depends on."""
    versions = {"ansible-core": ansible_version}
    for name in sorted(_collection_metadata(root).get("dependencies") or {}):
        try:
            package = importlib.import_module(f"ansible_collections.{name}")
            versions[name] = str(_collection_metadata(Path(next(iter(package.__path__)))).get("version", "unknown"))
        except (ImportError, StopIteration, ValueError, OSError):
            versions[name] = "missing"
    return versions


def code_digest(root: Path = COLLECTION_ROOT) -> str:
    """SHA-256 over the collection's roles, plugins and playbooks (not their Markdown) and the
    versions of ansible-core and of the collections it depends on."""
    key = str(root)
    if key not in _code_digest_cache:
        digest = hashlib.sha256(json.dumps(dependency_versions(root), sort_keys=True).encode() + b"\0")
        for directory in CODE_DIRECTORIES:
            for folder, subfolders, files in sorted(os.walk(root / directory)):
                subfolders[:] = sorted(name for name in subfolders if name != "__pycache__")
                for name in sorted(files):
                    if name.endswith(".md"):
                        continue
                    path = Path(folder, name)
                    digest.update(str(path.relative_to(root)).encode() + b"\0")
                    digest.update(path.read_bytes() + b"\0")
        _code_digest_cache[key] = digest.hexdigest()
    return _code_digest_cache[key]


def inputs_digest(values: dict, code: str) -> str:
    text = json.dumps({"code": code, "values": values}, sort_keys=True, default=to_text)
    return hashlib.sha256(text.encode()).hexdigest()


class InputError(AnsibleError):
    """A variable of the digest could not be templated; ``variable`` names it."""

    def __init__(self, variable: str, cause: AnsibleError) -> None:
        super().__init__(f"converged: cannot evaluate the variable {variable}: {to_text(cause)}")
        self.variable = variable


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def _rendered(self, name: str, value):
        try:
            return self._templar.template(value)
        except AnsibleError as error:
            raise InputError(name, error) from error

    def _input_values(self, prefixes: list[str], facts: list[str], task_vars: dict) -> dict:
        names = sorted(name for name in task_vars if name.startswith(tuple(prefixes)))
        values = {name: self._rendered(name, task_vars[name]) for name in names}
        host_facts = task_vars.get("ansible_facts", {})
        values["ansible_facts"] = {fact: host_facts.get(fact) for fact in facts}
        values["inventory_hostname"] = task_vars.get("inventory_hostname")
        values["group_names"] = sorted(task_vars.get("group_names", []))
        # The header the roles' templates write: the ansible.cfg setting, or a variable of that name,
        # rendered like the others (a header made from other variables changes with them).
        managed = task_vars.get("ansible_managed")
        managed = None if managed is None else self._rendered("ansible_managed", managed)
        values["ansible_managed"] = [C.DEFAULT_MANAGED_STR, managed]
        return values

    @staticmethod
    def _argument_error(module_args: dict, prefixes) -> str | None:
        state = module_args.get("state", "check")
        if isinstance(prefixes, str) or not all(isinstance(prefix, str) and prefix for prefix in prefixes):
            return "prefixes must be a list of non-empty strings"
        if state == "digest" and module_args.get("states"):
            return "states is only for state=check"
        if state in ("check", "digest") and not module_args.get("states") and "digest" in module_args:
            return f"state={state} computes the digest from prefixes; do not set digest"
        if state == "record" and not module_args.get("digest"):
            # Record the digest the check computed before the run: the variables of roles the run
            # imports (their defaults) only become visible during the run.
            return f"state={state} needs the digest returned by the check (state=check)"
        return None

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        module_args = dict(self._task.args)
        prefixes = module_args.pop("prefixes", None) or []
        facts = module_args.pop("facts", None) or list(DEFAULT_FACTS)
        gathered = module_args.pop("gathered", None)
        error = self._argument_error(module_args, prefixes)
        if error:
            result.update(failed=True, msg=error)
            return result
        state = module_args.get("state", "check")
        if state == "digest":
            # Nothing reaches the host: the digest (and the shared states to check with it) for a later
            # state=check of several roles at once.
            result.update(changed=False, name=module_args.get("name"), requires=list(module_args.get("requires") or []))
            try:
                result["digest"] = inputs_digest(
                    self._input_values(list(prefixes), list(facts), task_vars), code_digest()
                )
            except InputError as failure:
                # No digest, so no fast path: the role's own checks then run and name the bad value.
                result["msg"] = (
                    f"no digest: the variable {failure.variable} cannot be evaluated; the role's checks will run"
                )
            return result
        if module_args.get("states"):
            # Registered results of state=digest: only what the module needs goes to the host.
            module_args["states"] = [
                {key: given[key] for key in ("name", "digest", "requires") if key in given}
                for given in module_args["states"]
            ]
            # The states came back with the facts of this run: compare here, with no call to the host.
            reasons_of = reasons_from_fact(gathered, module_args.get("state_dir") or DEFAULT_STATE_DIR)
            if reasons_of is not None and state == "check":
                result.update(check_states(module_args["states"], reasons_of), from_gathered=True)
                return result
        elif state == "check":
            module_args["digest"] = inputs_digest(
                self._input_values(list(prefixes), list(facts), task_vars), code_digest()
            )
        if state == "record":
            module_args["fact_source"] = FACT_SOURCE.read_text(encoding="utf-8")
        result.update(
            self._execute_module(
                module_name="libsys.onprem.converged",
                module_args=module_args,
                task_vars=task_vars,
            )
        )
        if module_args.get("states"):
            result["from_gathered"] = False
        return result
