"""Shared fixtures for the Molecule verify steps (pytest-testinfra, podman backend).

Each scenario names its containers in molecule.yml and puts them in groups:
``integration_hosts`` for the hosts under test, ``peers`` (and finer groups) for the
simulated peers. Tests talk to containers with ``podman exec`` through testinfra's podman
backend, which is much faster than one Ansible task per command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

PROJECT_DIR = Path(__file__).resolve().parent.parent


def _inventory() -> AnsibleRunner:
    path = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not path:
        pytest.fail("MOLECULE_INVENTORY_FILE is not set: run these tests through `molecule verify`")
    return AnsibleRunner(path)


def hosts_in(group: str) -> list[str]:
    """Names of the scenario's containers in an inventory group."""
    return sorted(_inventory().get_hosts(group))


def podman_host(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{name}")


# A TCP connect from inside a container, told apart: "open", "refused" (a reset: nothing
# listens, or a reject) or "timeout" (2 s without an answer: a drop).
CONNECT_OUTCOME = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)\n"
    '    print("open")\n'
    "except TimeoutError:\n"
    '    print("timeout")\n'
    "except ConnectionRefusedError:\n"
    '    print("refused")\n'
)


def connect_outcome(client: testinfra.host.Host, address: str, port: int) -> str:
    """What a TCP connect from `client` to address:port meets: open, refused or timeout."""
    return client.check_output(f"python3 -c {shlex.quote(CONNECT_OUTCOME)} {address} {port}")


def stored_messages(store_host: testinfra.host.Host, store: str, message_id: str, timeout: float = 90) -> list[dict]:
    """The deliveries a peer_mail_hub stored in `store` (its envelope JSON, plus "path" of the
    message) whose text holds message_id, waiting up to timeout seconds for the first."""
    deadline = time.monotonic() + timeout
    while True:
        found = store_host.run(f"grep -l -F {shlex.quote(message_id)} {store}/*.eml")
        if found.rc == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    deliveries = []
    for eml in found.stdout.split():
        envelope = json.loads(store_host.check_output(f"cat {eml[:-4]}.json"))
        deliveries.append(envelope | {"path": eml})
    return deliveries


def host_variable(name: str, variable: str, default=None):
    """A variable of the container as the scenario's inventory gives it (host and group vars)."""
    return _inventory().get_variables(name).get(variable, default)


def wait_listening(host: testinfra.host.Host, port: int) -> bool:
    """Whether something listens on TCP `port` in `host` within 10 s (for a test's own server)."""
    check = f"for i in $(seq 20); do ss -Hltn 'sport = :{port}' | grep -q . && exit 0; sleep 0.5; done; exit 1"
    return host.run(check).rc == 0


def host_address(name: str) -> str:
    """The container's address on the scenario network, as the inventory sets it."""
    variables = _inventory().get_variables(name)
    return str(variables.get("scenario_address") or variables["inventory_hostname"])


@pytest.fixture(scope="session")
def integration_hosts() -> list[testinfra.host.Host]:
    names = hosts_in("integration_hosts")
    if not names:
        pytest.fail("the scenario has no host in the integration_hosts group")
    return [podman_host(name) for name in names]


@pytest.fixture(scope="session")
def peer() -> testinfra.host.Host:
    names = hosts_in("peers")
    if not names:
        pytest.fail("the scenario has no host in the peers group")
    return podman_host(names[0])


def venv_tool(name: str) -> str:
    """A command of the controller virtualenv that runs these tests (sslyze, ansible-playbook).

    The venv's bin directory, not the interpreter's real path: .venv/bin/python is a link to
    the base Python, whose directory has none of the venv's commands.
    """
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in the controller virtualenv ({path.parent})")
    return str(path)


def run_ansible_playbook(
    playbook: Path | str,
    *args: str,
    inventories: tuple[Path, ...] = (),
    timeout: float = 900,
    environment: dict[str, str] | None = None,
    extra_vars: dict | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ansible-playbook of the controller virtualenv against the scenario's inventory.

    ``inventories`` are added after Molecule's own (for example a file that puts one more
    container into the integration groups); ``args`` go to ansible-playbook as they are
    (``-l``, ``-e @file``, ``--check``); ``environment`` adds or overrides variables (for
    example ``ANSIBLE_CALLBACK_RESULT_FORMAT``); ``extra_vars`` go in as a JSON file (``-e @``),
    so values keep their types. Plain output, no colour, for assertions on the text.
    """
    scenario_inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    command = [venv_tool("ansible-playbook"), "-i", str(scenario_inventory)]
    for inventory in inventories:
        command += ["-i", str(inventory)]
    env = dict(
        os.environ,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        ANSIBLE_COLLECTIONS_PATH=str(PROJECT_DIR / ".build" / "collections"),
    )
    env.update(environment or {})
    with tempfile.TemporaryDirectory(prefix="libsys-onprem-extra-") as scratch:
        if extra_vars is not None:
            extra_file = Path(scratch) / "extra-vars.json"
            extra_file.write_text(json.dumps(extra_vars), encoding="utf-8")
            command += ["-e", f"@{extra_file}"]
        return subprocess.run(
            [*command, *args, str(playbook)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )


def play_recap(output: str, host: str) -> dict[str, int]:
    """The PLAY RECAP counters of ``host`` in ansible-playbook's output, for example
    ``{"ok": 40, "changed": 0, "failed": 0, ...}`` (the last recap when there are several)."""
    matches = re.findall(rf"^{re.escape(host)}\s*:\s*(.*)$", output.rsplit("PLAY RECAP", maxsplit=1)[-1], re.MULTILINE)
    assert matches, f"no PLAY RECAP line for {host}:\n{output[-3000:]}"
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", matches[0])}


# --- bad input, several cases per playbook run --------------------------------------------


class BadInputRun:
    """What one bad-input case got: its host alias's failure lines and PLAY RECAP counters."""

    def __init__(self, case: str, alias: str, output: str) -> None:
        self.case, self.alias, self.output = case, alias, output
        pattern = rf"^(?:fatal|failed): \[{re.escape(alias)}(?: -> [^\]]+)?\].*$"
        self.failures = "\n".join(re.findall(pattern, output, re.MULTILINE))
        self.recap = play_recap(output, alias)

    def check(self, *expected: str) -> None:
        """The case failed, every expected text is in its own failure lines, nothing changed."""
        tail = self.output[-3000:]
        assert self.recap["failed"] == 1, f"{self.case}: {self.recap}\n{tail}"
        assert self.recap["changed"] == 0, f"{self.case}: {self.recap}\n{tail}"
        for text in expected:
            assert text in self.failures, f"{self.case}: {text!r} not in its failures:\n{self.failures or tail}"


class BadInputRuns:
    """The cases of one run by name, and the host's state (``state``'s output) before and after."""

    def __init__(self, cases: dict[str, BadInputRun], before: str, after: str) -> None:
        self.cases, self.before, self.after = cases, before, after


def run_bad_input_cases(
    playbook: Path | str,
    host: str,
    cases: dict[str, dict],
    state: str,
    *,
    forks: int = 8,
    timeout: float = 900,
) -> BadInputRuns:
    """Apply ``playbook`` once for every bad-input case, each on its own alias of ``host``.

    An alias is ``host`` again under another inventory name (``<host>-bad-<n>``): the same
    address, groups and variables, plus the case's variables as host variables. One run with
    ``forks`` aliases at a time costs one ansible-playbook start and one SSH connection
    (the aliases share its ControlMaster) instead of one each. Every alias must fail in its
    checks before any change, so nothing of one case can reach another; the caller compares
    the host's state before and after the run. Results are one JSON line per task result, so
    each alias's failure lines name only its own entry. ``state`` is a shell command whose
    output, in the host's container, must be the same after the run as before.
    """
    before = podman_host(host).check_output(state)
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    shown = subprocess.run(
        [venv_tool("ansible-inventory"), "-i", str(inventory), "--host", host],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(PROJECT_DIR / ".build" / "collections")),
    )
    base = json.loads(shown.stdout)
    groups = sorted(set(host_variable(host, "group_names", [])) - {"all", "ungrouped"})
    aliases = {case: f"{host}-bad-{index}" for index, case in enumerate(cases)}
    hosts = {aliases[case]: {**base, **variables} for case, variables in cases.items()}
    extra = {"all": {"hosts": hosts, "children": {group: {"hosts": dict.fromkeys(hosts)} for group in groups}}}
    with tempfile.TemporaryDirectory(prefix="libsys-onprem-bad-input-") as scratch:
        extra_inventory = Path(scratch) / "bad-input.yml"
        extra_inventory.write_text(json.dumps(extra), encoding="utf-8")
        result = run_ansible_playbook(
            playbook,
            "--limit",
            ",".join(hosts),
            inventories=(extra_inventory,),
            timeout=timeout,
            environment={
                "ANSIBLE_FORKS": str(forks),
                "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
                "ANSIBLE_CALLBACK_FORMAT_PRETTY": "false",
            },
        )
    output = result.stdout + result.stderr
    runs = {case: BadInputRun(case, alias, output) for case, alias in aliases.items()}
    return BadInputRuns(runs, before, podman_host(host).check_output(state))


def bad_input_tests(playbook: Path | str, host: str, cases: dict[str, tuple[dict, str | list[str]]], state: str):
    """A module-scoped fixture and the two tests of a scenario's bad-input cases, for a test
    module to take in as its own names (pytest collects them there):

        bad_input, test_bad_input_fails_before_any_change, test_bad_input_changes_nothing = (
            bad_input_tests(PLAYBOOK, HOST, BAD_INPUT, STATE)
        )

    ``cases``: name -> (variables, the text or texts its failure must contain).
    """

    @pytest.fixture(scope="module")
    def bad_input() -> BadInputRuns:
        return run_bad_input_cases(playbook, host, {case: variables for case, (variables, _) in cases.items()}, state)

    @pytest.mark.parametrize("case", cases)
    def test_bad_input_fails_before_any_change(bad_input: BadInputRuns, case: str) -> None:
        expected = cases[case][1]
        bad_input.cases[case].check(*([expected] if isinstance(expected, str) else expected))

    def test_bad_input_changes_nothing(bad_input: BadInputRuns) -> None:
        assert bad_input.after == bad_input.before

    return bad_input, test_bad_input_fails_before_any_change, test_bad_input_changes_nothing
