# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""libsys.onprem.report_files: report files written on the controller, in one step."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ansible_collections.libsys.onprem.plugins.action import report_files
from ansible_collections.libsys.onprem.tests.unit.action_harness import make_action


def run(args: dict, check_mode: bool = False) -> dict:
    return make_action(report_files.ActionModule, args, check_mode=check_mode).run(task_vars={})


def files(**contents: str) -> list[dict]:
    return [{"name": name.replace("_", "."), "content": content} for name, content in contents.items()]


def test_writes_the_files_and_the_directory_then_nothing_more(tmp_path: Path) -> None:
    dest = tmp_path / "reports" / "preflight"
    args = {"dest": str(dest), "files": files(onprem1_json='{"ok": true}\n', onprem1_md="# Preflight\n")}
    first = run(args)
    assert first["changed"] is True and not first.get("failed")
    assert sorted(first["written"]) == [str(dest / "onprem1.json"), str(dest / "onprem1.md")]
    assert (dest / "onprem1.md").read_text() == "# Preflight\n"
    assert stat.S_IMODE((dest / "onprem1.json").stat().st_mode) == 0o644
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    again = run(args)
    assert again["changed"] is False and again["written"] == []
    assert sorted(path.name for path in dest.iterdir()) == ["onprem1.json", "onprem1.md"]  # no temporary left


def test_only_a_changed_file_or_mode_is_written(tmp_path: Path) -> None:
    args = {"dest": str(tmp_path), "files": files(a_md="one\n", b_md="two\n")}
    run(args)
    changed = run({**args, "files": files(a_md="one\n", b_md="three\n")})
    assert changed["written"] == [str(tmp_path / "b.md")]
    mode = run({**args, "files": files(a_md="one\n", b_md="three\n"), "mode": "0600"})
    assert sorted(mode["written"]) == [str(tmp_path / "a.md"), str(tmp_path / "b.md")]
    assert stat.S_IMODE((tmp_path / "a.md").stat().st_mode) == 0o600


def test_check_mode_writes_nothing_and_says_what_it_would(tmp_path: Path) -> None:
    dest = tmp_path / "new"
    result = run({"dest": str(dest), "files": files(a_md="one\n")}, check_mode=True)
    assert result["changed"] is True and result["written"] == [str(dest / "a.md")]
    assert not dest.exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"files": [{"name": "a.md", "content": "x"}]}, "dest must be a directory path"),
        ({"dest": "REPLACED", "files": []}, "files must be a non-empty list"),
        ({"dest": "REPLACED", "files": [{"name": "../escape.md", "content": "x"}]}, "without a directory part"),
        ({"dest": "REPLACED", "files": [{"name": "a.md"}]}, "exactly the keys name and content"),
        ({"dest": "REPLACED", "files": [{"name": "a.md", "content": "x"}], "mode": "rw-r--r--"}, "octal string"),
        ({"dest": "REPLACED", "files": [{"name": "a.md", "content": "x"}], "owner": "root"}, "unknown options: owner"),
    ],
)
def test_bad_arguments_fail_clearly_and_write_nothing(tmp_path: Path, args: dict, fragment: str) -> None:
    if args.get("dest") == "REPLACED":
        args = {**args, "dest": str(tmp_path / "reports")}
    result = run(args)
    assert result["failed"] is True
    assert fragment in result["msg"]
    assert list(tmp_path.iterdir()) == []
