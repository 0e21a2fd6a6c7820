# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""converged: record a snapshot, then every kind of drift makes the check say 'not converged'."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.libsys.onprem.plugins.module_utils import converged_state
from ansible_collections.libsys.onprem.plugins.modules import converged
from ansible_collections.libsys.onprem.tests.unit.module_harness import run_module_main

DIGEST = "d" * 64


def run(args: dict[str, Any]) -> dict[str, Any]:
    failed, result = run_module_main(converged.main, args)
    assert not failed, result
    return result


@pytest.fixture
def managed(tmp_path: Path) -> dict[str, Any]:
    """A small managed tree, a data directory recorded only as an entry, and a runtime 'command'."""
    config = tmp_path / "etc" / "demo"
    (config / "conf.d").mkdir(parents=True)
    (config / "demo.conf").write_text("listen = 6001\n")
    (config / "conf.d" / "sip2.conf").write_text("accept = 6001\n")
    (config / "cache").mkdir()
    (config / "cache" / "runtime.db").write_text("rewritten by the service\n")
    (config / "current").symlink_to("demo.conf")
    drop = tmp_path / "srv" / "drop"
    drop.mkdir(parents=True)
    (drop / "upload.csv").write_text("data\n")
    runtime = tmp_path / "runtime-table"
    runtime.write_text("table inet demo {}\n")
    watch = {
        "paths": [str(config), str(tmp_path / "etc" / "removed.conf")],
        "entries": [str(drop)],
        "exclude": [str(config / "cache")],
        "commands": [["cat", str(runtime)]],
    }
    return {"config": config, "drop": drop, "runtime": runtime, "watch": watch, "state_dir": str(tmp_path / "state")}


def record(managed: dict[str, Any], **extra: Any) -> dict[str, Any]:
    args = {"name": "demo", "state": "record", "digest": DIGEST, "watch": managed["watch"]}
    return run({**args, "state_dir": managed["state_dir"], **extra})


def check(managed: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return run({"name": "demo", "digest": DIGEST, "state_dir": managed["state_dir"], **extra})


def test_never_recorded_is_not_converged(managed: dict[str, Any]) -> None:
    result = check(managed)
    assert result["converged"] is False
    assert "demo: no recorded state" in result["reasons"][0]


def test_record_then_check_is_converged_and_record_again_writes_nothing(managed: dict[str, Any]) -> None:
    first = record(managed)
    assert (first["changed"], first["written"]) == (False, ["demo"])
    state_file = Path(managed["state_dir"]) / "demo.json"
    assert oct(state_file.stat().st_mode & 0o777) == "0o600"
    assert oct(state_file.parent.stat().st_mode & 0o777) == "0o700"
    result = check(managed)
    assert result == {
        "changed": False,
        "converged": True,
        "reasons": [],
        "state_file": str(state_file),
        "digest": DIGEST,
    }
    assert record(managed)["written"] == []


def test_record_in_check_mode_writes_nothing(managed: dict[str, Any]) -> None:
    assert record(managed, _ansible_check_mode=True)["written"] == ["demo"]
    assert not Path(managed["state_dir"]).exists()


def test_a_started_full_run_forgets_the_state_until_it_records_again(managed: dict[str, Any]) -> None:
    record(managed)
    state_file = Path(managed["state_dir"]) / "demo.json"
    assert check(managed, state="absent", _ansible_check_mode=True)["removed"] is True
    assert state_file.exists()
    removed = check(managed, state="absent")
    assert (removed["changed"], removed["removed"]) == (False, True)
    assert not state_file.exists()
    assert check(managed, state="absent")["removed"] is False
    assert "no recorded state" in check(managed)["reasons"][0]


def test_runtime_data_is_not_drift(managed: dict[str, Any]) -> None:
    record(managed)
    (managed["config"] / "cache" / "runtime.db").write_text("rewritten again\n")
    (managed["drop"] / "upload.csv").write_text("new data\n")
    (managed["drop"] / "another.csv").write_text("more\n")
    assert check(managed)["converged"] is True


@pytest.mark.parametrize(
    ("drift", "reason"),
    [
        (lambda m: (m["config"] / "demo.conf").write_text("listen = 6002\n"), "demo.conf: changed"),
        (lambda m: (m["config"] / "demo.conf").chmod(0o600), "demo.conf: changed"),
        (lambda m: (m["config"] / "conf.d" / "sip2.conf").unlink(), "sip2.conf: gone"),
        (lambda m: (m["config"] / "conf.d" / "extra.conf").write_text("x\n"), "extra.conf: new (file)"),
        (lambda m: Path(m["config"].parent / "removed.conf").write_text("back\n"), "removed.conf: changed"),
        (lambda m: os.utime(m["drop"], None) or m["drop"].chmod(0o777), "drop: changed"),
        (lambda m: (m["config"] / "current").unlink() or (m["config"] / "current").symlink_to("x"), "current: changed"),
        (lambda m: m["runtime"].write_text("table inet demo { chain input {} }\n"), "command cat "),
    ],
    ids=["content", "mode", "deleted", "new-file", "removed-file-back", "entry-mode", "symlink", "runtime-state"],
)
def test_every_kind_of_drift_is_found(managed: dict[str, Any], drift: Any, reason: str) -> None:
    record(managed)
    drift(managed)
    result = check(managed)
    assert result["converged"] is False
    assert any(reason in line for line in result["reasons"]), result["reasons"]


def test_changed_inputs_are_not_converged(managed: dict[str, Any]) -> None:
    record(managed)
    result = check(managed, digest="e" * 64)
    assert result["converged"] is False
    assert result["reasons"] == ["demo: the role's variables or the collection's code changed since the last full run"]


def test_required_shared_state_is_checked_too(managed: dict[str, Any], tmp_path: Path) -> None:
    base = tmp_path / "etc" / "base.cf"
    base.write_text("inet_interfaces = all\n")
    record(managed, shared=[{"name": "base", "watch": {"paths": [str(base)]}}])
    shared_state = json.loads((Path(managed["state_dir"]) / "base.json").read_text())
    assert shared_state["digest"] == ""
    assert check(managed, requires=["base"])["converged"] is True
    base.write_text("inet_interfaces = loopback-only\n")
    result = check(managed, requires=["base"])
    assert result["converged"] is False
    assert result["reasons"] == [f"{base}: changed"]
    assert check(managed, requires=["missing"])["reasons"][0].startswith("missing: no recorded state")


def test_several_states_are_checked_in_one_call(managed: dict[str, Any], tmp_path: Path) -> None:
    base = tmp_path / "etc" / "base.cf"
    base.write_text("inet_interfaces = all\n")
    record(managed, shared=[{"name": "base", "watch": {"paths": [str(base)]}}])
    other = tmp_path / "etc" / "other.conf"
    other.write_text("port = 25\n")
    run(
        {
            "name": "other",
            "state": "record",
            "digest": DIGEST,
            "watch": {"paths": [str(other)]},
            "state_dir": managed["state_dir"],
        }
    )
    states = [
        {"name": "demo", "digest": DIGEST, "requires": ["base"]},
        {"name": "other", "digest": DIGEST, "requires": ["base"]},
    ]
    result = run({"states": states, "state_dir": managed["state_dir"]})
    assert result["converged"] is True
    both_converged = {"converged": True, "reasons": []}
    assert result["by_state"] == {"demo": both_converged, "other": both_converged}

    base.write_text("inet_interfaces = loopback-only\n")
    other.write_text("port = 2525\n")
    result = run({"states": [*states[:1], {**states[1], "digest": "e" * 64}], "state_dir": managed["state_dir"]})
    assert result["converged"] is False
    assert result["by_state"]["demo"] == {"converged": False, "reasons": [f"{base}: changed"]}
    # A changed digest says so and nothing else; the shared state's drift is reported for both.
    assert result["by_state"]["other"]["reasons"] == [
        "other: the role's variables or the collection's code changed since the last full run",
        f"{base}: changed",
    ]
    assert result["reasons"][0] == f"demo: {base}: changed"


def test_one_state_of_several_never_recorded_is_not_converged(managed: dict[str, Any]) -> None:
    record(managed)
    states = [{"name": "demo", "digest": DIGEST}, {"name": "never", "digest": DIGEST}]
    result = run({"states": states, "state_dir": managed["state_dir"]})
    assert result["converged"] is False
    assert result["by_state"]["demo"]["converged"] is True
    assert result["by_state"]["never"]["reasons"][0].startswith("never: no recorded state")


def test_reasons_are_capped(managed: dict[str, Any]) -> None:
    record(managed)
    for number in range(30):
        (managed["config"] / f"extra{number}.conf").write_text("x\n")
    reasons = check(managed)["reasons"]
    assert len(reasons) == converged_state.MAX_REASONS + 1
    assert reasons[-1] == "... and 10 more"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"name": "demo"}, "digest is missing"),
        ({"name": "../etc/passwd", "digest": DIGEST}, "use letters, digits and underscores only"),
        ({"name": "demo", "digest": DIGEST, "state": "record"}, "watch is required with state=record"),
        ({"name": "demo", "state": "digest"}, "computed on the controller"),
        ({"states": [{"name": "demo", "digest": DIGEST}], "state": "record"}, "states is only for state=check"),
        ({"state": "absent"}, "state=absent needs name"),
        ({"digest": DIGEST}, "state=check needs name (or states)"),
        ({"name": "demo", "states": [{"name": "demo", "digest": DIGEST}]}, "mutually exclusive"),
    ],
)
def test_bad_arguments_fail_clearly(tmp_path: Path, args: dict[str, Any], fragment: str) -> None:
    failed, result = run_module_main(converged.main, {"state_dir": str(tmp_path), **args})
    assert failed
    assert fragment in result["msg"]
    assert not list(tmp_path.iterdir())


FACT_SOURCE = Path(converged_state.__file__).read_text(encoding="utf-8")


def gather_fact(state_dir: str) -> dict[str, Any]:
    """Run the installed local fact the way setup does (an executable in fact_path) and parse it."""
    script = Path(state_dir) / "facts.d" / "converged.fact"
    output = subprocess.run([str(script)], capture_output=True, text=True, check=True).stdout
    return json.loads(output)


def test_record_installs_the_local_fact_once_root_only(managed: dict[str, Any]) -> None:
    assert record(managed, fact_source=FACT_SOURCE)["written"] == ["demo", "converged.fact"]
    script = Path(managed["state_dir"]) / "facts.d" / "converged.fact"
    assert script.stat().st_mode & 0o777 == 0o700
    assert script.read_text().startswith(f"#!{sys.executable}\n")
    assert record(managed, fact_source=FACT_SOURCE)["written"] == []
    script.chmod(0o755)
    assert record(managed, fact_source=FACT_SOURCE)["written"] == ["converged.fact"]
    assert script.stat().st_mode & 0o777 == 0o700


def test_record_in_check_mode_installs_no_local_fact(managed: dict[str, Any]) -> None:
    assert record(managed, fact_source=FACT_SOURCE, _ansible_check_mode=True)["written"] == ["demo", "converged.fact"]
    assert not Path(managed["state_dir"]).exists()


def check_both_ways(managed: dict[str, Any], states: list[dict[str, Any]]) -> tuple[dict, dict]:
    """The module's check on the host, and the controller's check from the gathered local fact."""
    on_host = run({"states": states, "state_dir": managed["state_dir"]})
    reasons_of = converged_state.reasons_from_fact(gather_fact(managed["state_dir"]), managed["state_dir"])
    assert reasons_of is not None
    from_fact = converged_state.check_states(states, reasons_of)
    return on_host, from_fact


@pytest.mark.parametrize(
    "drift",
    [
        lambda m: None,
        lambda m: (m["config"] / "demo.conf").write_text("listen = 6002\n"),
        lambda m: (m["config"] / "conf.d" / "sip2.conf").unlink(),
        lambda m: m["runtime"].write_text("table inet demo { chain input {} }\n"),
        lambda m: (Path(m["state_dir"]) / "base.json").write_text("{}"),
        lambda m: (Path(m["state_dir"]) / "base.json").unlink(),
    ],
    ids=["none", "content", "deleted", "runtime-state", "unreadable-shared", "missing-shared"],
)
@pytest.mark.parametrize("digest", [DIGEST, "e" * 64], ids=["same-inputs", "changed-inputs"])
def test_the_gathered_fact_gives_the_same_answer_as_the_host(
    managed: dict[str, Any], tmp_path: Path, drift: Any, digest: str
) -> None:
    base = tmp_path / "etc" / "base.cf"
    base.write_text("inet_interfaces = all\n")
    record(managed, shared=[{"name": "base", "watch": {"paths": [str(base)]}}], fact_source=FACT_SOURCE)
    drift(managed)
    states = [
        {"name": "demo", "digest": digest, "requires": ["base"]},
        {"name": "never", "digest": DIGEST, "requires": []},
    ]
    on_host, from_fact = check_both_ways(managed, states)
    assert {key: on_host[key] for key in from_fact} == from_fact
    assert from_fact["converged"] is False
    assert from_fact["by_state"]["never"]["reasons"][0].startswith("never: no recorded state")


@pytest.mark.parametrize(
    "fact",
    [
        None,
        "/bin/sh: converged.fact: error loading fact",
        {"version": 0, "states": {}},
        {"version": 1, "state_dir": "/elsewhere", "states": {}},
        {"version": 1, "state_dir": "STATE", "states": []},
    ],
    ids=["not-gathered", "failed-script", "other-version", "other-state-dir", "malformed"],
)
def test_a_fact_that_cannot_serve_means_the_host_is_checked(fact: Any, tmp_path: Path) -> None:
    if isinstance(fact, dict) and fact.get("state_dir") == "STATE":
        fact = {**fact, "state_dir": str(tmp_path)}
    assert converged_state.reasons_from_fact(fact, str(tmp_path)) is None


def test_a_state_missing_from_the_fact_or_malformed_in_it_is_not_converged(tmp_path: Path) -> None:
    fact = {"version": 1, "state_dir": str(tmp_path), "states": {"odd": {"digest": DIGEST}}}
    reasons_of = converged_state.reasons_from_fact(fact, str(tmp_path))
    result = converged_state.check_states(
        [{"name": "odd", "digest": DIGEST}, {"name": "new", "digest": DIGEST}], reasons_of
    )
    assert result["converged"] is False
    assert result["by_state"]["odd"]["reasons"][0].startswith("odd: unreadable recorded state")
    assert result["by_state"]["new"]["reasons"][0].startswith("new: no recorded state")
