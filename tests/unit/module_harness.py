# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a module's main() in-process: arguments in, exit_json/fail_json results out."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

try:  # ansible-core >= 2.19
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core 2.16 to 2.18
    patch_module_args = None


class AnsibleExitJson(Exception):
    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__(kwargs.get("msg"))
        self.result = kwargs


class AnsibleFailJson(AnsibleExitJson):
    pass


@contextlib.contextmanager
def module_args(args: dict[str, Any]) -> Iterator[None]:
    """Hand ``args`` to AnsibleModule on ansible-core 2.16 to 2.19+.

    2.19 added a serialization profile next to the raw arguments and ships
    ``ansible.module_utils.testing.patch_module_args``; older releases read only
    ``basic._ANSIBLE_ARGS``.
    """
    if patch_module_args is not None:
        with patch_module_args(args):
            yield
        return
    payload = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(basic, "_ANSIBLE_ARGS", payload)
        mp.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
        yield


@pytest.fixture(autouse=True)
def patch_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    def exit_json(self: basic.AnsibleModule, **kwargs: Any) -> None:
        kwargs.setdefault("changed", False)
        raise AnsibleExitJson(kwargs)

    def fail_json(self: basic.AnsibleModule, msg: str, **kwargs: Any) -> None:
        kwargs["failed"] = True
        kwargs["msg"] = msg
        raise AnsibleFailJson(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)


def run_module_main(main: Callable[[], None], args: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Run a module's main() with ``args``; return (failed, result)."""
    with module_args(args):
        try:
            main()
        except AnsibleFailJson as exc:
            return True, exc.result
        except AnsibleExitJson as exc:
            return False, exc.result
    raise AssertionError("the module returned without exit_json or fail_json")
