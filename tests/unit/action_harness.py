# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run one of the collection's action plugins in-process, with a task made of plain arguments."""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock

from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.template import Templar


def make_action(action_class: type, args: dict[str, Any], check_mode: bool = False) -> Any:
    """An action plugin instance whose task has ``args``; the connection is a mock that must not be used."""
    task = MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = check_mode
    play_context = PlayContext()
    play_context.check_mode = check_mode
    loader = DataLoader()
    return action_class(
        task=task,
        connection=MagicMock(),
        play_context=play_context,
        loader=loader,
        templar=Templar(loader=loader),
        shared_loader_obj=None,
    )
