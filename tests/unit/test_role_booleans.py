# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every boolean option of the roles' argument specs goes through ``| bool`` where it is used.

``-e stunnel_manage_firewall=false`` and INI inventories give the string "false". The argument
spec accepts it as a boolean but does not convert the variable, so a bare ``{% if %}`` or
``when:`` would read the non-empty string as true (ansible-core 2.16) or fail the task
(2.19). This test reads the roles' tasks, handlers, variables and templates and names every
place that uses such an option without ``| bool``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

COLLECTION = Path(__file__).resolve().parents[2]
ROLES = COLLECTION / "roles"
CONDITION_KEYS = {"when", "that", "failed_when", "changed_when", "until"}
JINJA = re.compile(r"{{(.*?)}}|{%(.*?)%}", re.S)
STRING_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")


def boolean_options() -> set[str]:
    names = set()
    for spec_file in ROLES.glob("*/meta/argument_specs.yml"):
        specs = yaml.safe_load(spec_file.read_text(encoding="utf-8"))["argument_specs"]
        for entry_point in specs.values():
            for name, option in (entry_point.get("options") or {}).items():
                if option.get("type") == "bool":
                    names.add(name)
    return names


def expressions_of_yaml(node, key: str | None = None):
    """The Jinja expressions of a YAML document: conditionals whole, other strings' {{ }} parts."""
    if isinstance(node, dict):
        for child_key, child in node.items():
            yield from expressions_of_yaml(child, str(child_key))
    elif isinstance(node, list):
        for child in node:
            yield from expressions_of_yaml(child, key)
    elif isinstance(node, str):
        if key in CONDITION_KEYS:
            yield node
        else:
            yield from expressions_of_text(node)


def expressions_of_text(text: str):
    for match in JINJA.finditer(text):
        yield match.group(1) if match.group(1) is not None else match.group(2)


def bare_uses(expression: str, names: set[str]) -> list[str]:
    code = STRING_LITERAL.sub("''", expression)
    found = []
    for name in names:
        for match in re.finditer(r"(?<![\w.'\"])%s\b" % re.escape(name), code):
            rest = code[match.end() :]
            # name | bool, or name | default(...) | bool
            if re.match(r"\s*\|\s*(default\([^()]*\)\s*\|\s*)?bool\b", rest):
                continue
            # default(name) | bool (a per-item value falling back to the role's option)
            before = code[: match.start()]
            if re.search(r"default\(\s*$", before) and re.match(r"\s*\)\s*\|\s*bool\b", rest):
                continue
            found.append(name)
    return found


def role_sources():
    for path in sorted(ROLES.glob("*/*/**/*")):
        if not path.is_file() or path.parts[len(ROLES.parts) + 1] == "meta" or "__pycache__" in path.parts:
            continue
        yield path


def test_the_roles_have_boolean_options() -> None:
    assert {"stunnel_manage_firewall", "mail_relay_dkim_enabled", "sftp_drop_firewall"} <= boolean_options()


def test_every_boolean_option_is_used_through_the_bool_filter() -> None:
    names = boolean_options()
    problems = []
    for path in role_sources():
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yml", ".yaml"):
            expressions = list(expressions_of_yaml(yaml.safe_load(text)))
        elif path.suffix == ".j2":
            expressions = list(expressions_of_text(text))
        else:
            continue
        for expression in expressions:
            for name in bare_uses(expression, names):
                problems.append(f"{path.relative_to(COLLECTION)}: {name} in {expression.strip()[:80]!r}")
    assert not problems, "use '| bool':\n" + "\n".join(sorted(set(problems)))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("stunnel_manage_firewall", ["stunnel_manage_firewall"]),
        ("stunnel_manage_firewall | bool", []),
        ("not stunnel_manage_firewall|bool or x", []),
        ("postfix_firewall | default(true) | bool", []),
        ("t.flag | default(stunnel_resolve_each_connection) | bool", []),
        ("'stunnel_manage_firewall is off'", []),
        ("x if stunnel_generate_key else []", ["stunnel_generate_key"]),
        ("item.stunnel_manage_firewall", []),
    ],
)
def test_bare_uses_finds_only_unfiltered_names(expression: str, expected: list[str]) -> None:
    names = {"stunnel_manage_firewall", "postfix_firewall", "stunnel_resolve_each_connection", "stunnel_generate_key"}
    assert bare_uses(expression, names) == expected
