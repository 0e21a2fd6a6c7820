# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""libsys.onprem.report_files: write a host's report files on the controller, in this process."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase


def file_needs_writing(path: Path, content: bytes, mode: int) -> bool:
    try:
        return path.read_bytes() != content or (path.stat().st_mode & 0o7777) != mode
    except FileNotFoundError:
        return True


def write_file(path: Path, content: bytes, mode: int) -> None:
    """Replace path atomically: a temporary file in the same directory, then rename."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def checked_mode(args: dict) -> int:
    """The mode as a number, once the arguments are checked; ValueError names what is wrong."""
    unknown = sorted(set(args) - {"dest", "files", "mode"})
    if unknown:
        raise ValueError(f"unknown options: {', '.join(unknown)}")
    if not isinstance(args.get("dest"), str) or not args["dest"]:
        raise ValueError("dest must be a directory path")
    files = args.get("files")
    if not isinstance(files, list) or not files:
        raise ValueError("files must be a non-empty list of {name, content}")
    for index, given in enumerate(files):
        if not isinstance(given, dict) or set(given) != {"name", "content"}:
            raise ValueError(f"files[{index}] must have exactly the keys name and content")
        name = given["name"]
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            raise ValueError(f"files[{index}].name must be a file name without a directory part: {name!r}")
    try:
        mode = int(str(args.get("mode", "0644")), 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"mode must be an octal string such as 0644: {args.get('mode')!r}")
    return mode


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars or {})
        args = dict(self._task.args)
        try:
            mode = checked_mode(args)
        except ValueError as error:
            result.update(failed=True, msg=f"report_files: {error}")
            return result
        directory = Path(os.path.expanduser(args["dest"]))
        pending = []
        for given in args["files"]:
            path = directory / given["name"]
            content = to_text(given["content"]).encode("utf-8")
            if file_needs_writing(path, content, mode):
                pending.append((path, content))
        if pending and not self._play_context.check_mode:
            try:
                directory.mkdir(mode=0o755, parents=True, exist_ok=True)
                for path, content in pending:
                    write_file(path, content, mode)
            except OSError as failure:
                result.update(failed=True, msg=f"report_files: cannot write in {directory}: {failure}")
                return result
        result.update(changed=bool(pending), written=[str(entry[0]) for entry in pending])
        return result
