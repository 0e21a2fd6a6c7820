# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Import a Python program that a role installs on the hosts (roles/<role>/files/<name>)."""

from __future__ import annotations

import atexit
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

ROLES = Path(__file__).resolve().parents[2] / "roles"
MODULE_UTILS = ROLES.parent / "plugins" / "module_utils"


def install_role_file(role: str, name: str, companions: dict[str, Path] | None = None) -> Path:
    """The program copied into a directory of its own, with the files the role installs next to
    it (target name -> source), as on a host; removed when the test session ends."""
    folder = Path(tempfile.mkdtemp(prefix="libsys-role-file-"))
    atexit.register(shutil.rmtree, folder, True)
    shutil.copyfile(ROLES / role / "files" / name, folder / name)
    for target, source in (companions or {}).items():
        shutil.copyfile(source, folder / target)
    return folder / name


def load_role_file(role: str, name: str, module_name: str, companions: dict[str, Path] | None = None) -> ModuleType:
    """The program as a module, installed as install_role_file does, without writing bytecode."""
    path = install_role_file(role, name, companions)
    before, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = before
    return module
