"""The example role: the loader service is on, the table is loaded, and a real peer sees the
dropped port as unanswered while the open port answers. The table entry points the other roles
use: a table deleted by hand is loaded again from its file, and a table turned off goes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import hosts_in, play_recap, podman_host, run_ansible_playbook

ENTRY_POINT = Path(__file__).resolve().parent.parent / "entry_point.yml"
TABLES_DIR = "/etc/libsys-onprem/nftables.d"

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

TARGETS = {
    "onprem-nft-deb12": "198.51.100.10",
    "onprem-nft-deb13": "198.51.100.11",
}


@pytest.mark.parametrize("name", hosts_in("integration_hosts"))
def test_loader_service_is_enabled_and_active(name: str) -> None:
    service = podman_host(name).service("libsys-onprem-nftables.service")
    assert service.is_enabled
    assert service.is_running or service.systemd_properties["ActiveState"] == "active"


@pytest.mark.parametrize("name", hosts_in("integration_hosts"))
def test_only_the_owned_table_is_replaced(name: str) -> None:
    tables = podman_host(name).check_output("nft list tables")
    assert "table inet molecule_example" in tables


@pytest.mark.parametrize("name", hosts_in("integration_hosts"))
def test_peer_reaches_open_port_and_not_dropped_port(name: str, peer) -> None:
    address = TARGETS[name]
    open_port = peer.run(f"nc -z -w 3 {address} 9998")
    assert open_port.rc == 0, open_port.stderr
    # A drop, not a reject: the peer's connect times out instead of being refused.
    outcome = peer.check_output(f"python3 -c '{CONNECT_OUTCOME}' {address} 9999")
    assert outcome == "timeout"


def run_entry_point(name: str, entry_point: str, *options: str, **variables: str) -> subprocess.CompletedProcess:
    return run_ansible_playbook(
        ENTRY_POINT, "-l", name, *options, extra_vars={"nftables_entry_point": entry_point, **variables}
    )


def changes(result: subprocess.CompletedProcess, name: str) -> int:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return play_recap(output, name)["changed"]


@pytest.mark.parametrize("name", hosts_in("integration_hosts"))
def test_a_table_deleted_by_hand_is_loaded_again_from_its_file(name: str) -> None:
    host = podman_host(name)
    table = {"nftables_table_name": "molecule_example", "nftables_table_file": f"{TABLES_DIR}/molecule-example.nft"}
    loaded = host.check_output("nft -s list table inet molecule_example")
    host.run_expect([0], "nft delete table inet molecule_example")

    # Check mode tells that the table would be loaded, and loads nothing.
    assert changes(run_entry_point(name, "table_loaded", "--check", **table), name) == 1
    assert host.run("nft list table inet molecule_example").rc != 0
    assert changes(run_entry_point(name, "table_loaded", **table), name) == 1
    assert host.check_output("nft -s list table inet molecule_example") == loaded
    # The same table again: loaded from the file all the same, but nothing differed.
    assert changes(run_entry_point(name, "table_loaded", **table), name) == 0
    assert changes(run_entry_point(name, "table_loaded", "--check", **table), name) == 0


@pytest.mark.parametrize("name", hosts_in("integration_hosts"))
def test_a_table_turned_off_leaves_no_file_and_no_rule(name: str) -> None:
    host = podman_host(name)
    table_file = f"{TABLES_DIR}/molecule-off.nft"
    table = {"nftables_table_name": "molecule_off", "nftables_table_file": table_file}
    host.run_expect(
        [0],
        f"printf '%s\\n' 'table inet molecule_off' 'delete table inet molecule_off'"
        f" 'table inet molecule_off {{' '  chain input {{' '    type filter hook input priority filter;'"
        f" '    tcp dport 9997 drop' '  }}' '}}'"
        f" > {table_file} && nft -f {table_file}",
    )
    assert "table inet molecule_off" in host.check_output("nft list tables")

    # Check mode reports the file and the table that would go, and removes neither.
    assert changes(run_entry_point(name, "table_absent", "--check", **table), name) == 2
    assert host.file(table_file).exists
    assert "table inet molecule_off" in host.check_output("nft list tables")
    assert changes(run_entry_point(name, "table_absent", **table), name) == 2
    assert not host.file(table_file).exists
    assert "molecule_off" not in host.check_output("nft list tables")
    assert changes(run_entry_point(name, "table_absent", **table), name) == 0
    assert changes(run_entry_point(name, "table_absent", "--check", **table), name) == 0
    assert "table inet molecule_example" in host.check_output("nft list tables")


@pytest.mark.parametrize("entry_point", ["table_loaded", "table_absent"])
def test_an_entry_point_without_its_variables_fails_naming_them(entry_point: str) -> None:
    name = hosts_in("integration_hosts")[0]
    tables = podman_host(name).check_output("nft -s list ruleset | sha256sum; ls -l " + TABLES_DIR)
    result = run_entry_point(name, entry_point, nftables_table_file=f"{TABLES_DIR}/molecule-example.nft")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "nftables_table_name" in output, output[-3000:]
    assert play_recap(output, name)["changed"] == 0
    assert podman_host(name).check_output("nft -s list ruleset | sha256sum; ls -l " + TABLES_DIR) == tables
