"""Shared fixtures for the Molecule verify steps (pytest-testinfra, podman backend).

Each scenario names its containers in molecule.yml and puts them in groups:
``integration_hosts`` for the hosts under test, ``peers`` (and finer groups) for the
simulated peers. Tests talk to containers with ``podman exec`` through testinfra's podman
backend, which is much faster than one Ansible task per command.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner


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
