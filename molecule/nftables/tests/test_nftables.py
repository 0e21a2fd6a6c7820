"""The example role: the loader service is on, the table is loaded, and a real peer sees the
dropped port as unanswered while the open port answers. The table entry points the other roles
use: a table deleted by hand is loaded again from its file, and a table turned off goes."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import connect_outcome, hosts_in, play_recap, podman_host, run_ansible_playbook

ENTRY_POINT = Path(__file__).resolve().parent.parent / "entry_point.yml"
CONVERGE = Path(__file__).resolve().parent.parent / "converge.yml"
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
TABLES_DIR = "/etc/libsys-onprem/nftables.d"


TARGETS = {
    "onprem-nft-deb12": "198.51.100.10",
    "onprem-nft-deb13": "198.51.100.11",
}


@pytest.mark.parametrize("name", hosts_in("integration_hosts"))
def test_loader_service_is_enabled_and_active(name: str) -> None:
    service = podman_host(name).service("libsys-onprem-nftables.service")
    assert service.is_enabled
    assert service.is_running or service.systemd_properties["ActiveState"] == "active"


FOREIGN_TABLE = (
    "table inet campus_local {\n"
    "  chain input {\n"
    "    type filter hook input priority filter + 10; policy accept;\n"
    "    tcp dport 9996 counter accept\n"
    "  }\n"
    "}\n"
)
HOST_FIREWALL = "#!/usr/sbin/nft -f\nflush ruleset\n" + FOREIGN_TABLE


def dropped(peer, name: str) -> str:
    """What the peer's connection to the scenario's dropped port 9999 of host `name` meets."""
    return connect_outcome(peer, TARGETS[name], 9999)


@pytest.mark.parametrize("name", hosts_in("integration_hosts"))
def test_a_run_replaces_only_its_own_tables(name: str) -> None:
    """A table of another tool, loaded before the role runs, is the same after a full run and a
    restart of the loader."""
    host = podman_host(name)
    host.run_expect([0], f"printf '{FOREIGN_TABLE}' | nft -f -")
    before = host.check_output("nft -s list table inet campus_local")
    try:
        result = run_ansible_playbook(CONVERGE, "-l", name)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        host.run_expect([0], "systemctl restart libsys-onprem-nftables.service")
        assert host.check_output("nft -s list table inet campus_local") == before
        assert "table inet molecule_example" in host.check_output("nft list tables")
    finally:
        host.run("nft delete table inet campus_local")


@pytest.mark.parametrize("name", hosts_in("integration_hosts"))
def test_the_hosts_nftables_service_never_opens_the_ports(name: str, peer) -> None:
    """Debian's nftables.service flushes the whole ruleset when it starts, reloads (its
    /etc/nftables.conf begins with flush ruleset) and stops. After each, the collection's
    tables are back at once and the peer is still dropped; the host's own table is there too
    while the host's unit is active."""
    host = podman_host(name)
    host.run_expect([0], f"printf '{HOST_FIREWALL}' > /etc/nftables.conf")
    try:
        for action, host_table in [
            ("enable --now", True),
            ("restart", True),
            ("reload", True),
            ("stop", False),
            ("start", True),
        ]:
            host.run_expect([0], f"systemctl {action} nftables.service")
            tables = host.check_output("nft list tables")
            assert "table inet molecule_example" in tables, (action, tables)
            assert ("table inet campus_local" in tables) == host_table, (action, tables)
            assert dropped(peer, name) == "timeout", action
    finally:
        host.run("systemctl disable --now nftables.service; rm -f /etc/nftables.conf")


@pytest.mark.parametrize("name", hosts_in("integration_hosts"))
def test_the_tables_are_back_after_a_reboot_with_the_hosts_firewall_enabled(name: str, peer) -> None:
    """The container restarts with the host's nftables unit enabled: at boot that unit flushes
    the ruleset too, and the tables come back all the same."""
    host = podman_host(name)
    host.run_expect([0], f"printf '{HOST_FIREWALL}' > /etc/nftables.conf && systemctl enable nftables.service")
    try:
        reboot(name, peer)
        tables = host.check_output("nft list tables")
        assert "table inet molecule_example" in tables and "table inet campus_local" in tables, tables
        assert dropped(peer, name) == "timeout"
    finally:
        host.run("systemctl disable --now nftables.service; rm -f /etc/nftables.conf")


def reboot(name: str, peer) -> None:
    """Restart the container (systemd boots again) and wait until it has booted and this machine
    and the peer reach its sshd again (the container comes back with a new MAC address, which
    their neighbour caches learn within seconds). Ansible's SSH connections died with it: their
    control masters are closed, so the next run connects anew."""
    subprocess.run(["podman", "restart", "--time", "20", name], check=True, capture_output=True, timeout=120)
    for control in (EPHEMERAL / "ssh" / "cp").glob("*"):
        subprocess.run(["ssh", "-o", f"ControlPath={control}", "-O", "exit", name], capture_output=True, check=False)
    state, deadline = "", time.monotonic() + 90
    while time.monotonic() < deadline:
        state = podman_host(name).run("systemctl is-system-running").stdout.strip()
        if state == "running" and reaches(TARGETS[name]) and peer.run(f"nc -z -w 2 {TARGETS[name]} 22").rc == 0:
            return
        time.sleep(1)
    raise AssertionError(f"{name} is not back within 90 s (systemd: {state})")


def reaches(address: str) -> bool:
    try:
        socket.create_connection((address, 22), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("name", hosts_in("integration_hosts"))
def test_peer_reaches_open_port_and_not_dropped_port(name: str, peer) -> None:
    address = TARGETS[name]
    open_port = peer.run(f"nc -z -w 3 {address} 9998")
    assert open_port.rc == 0, open_port.stderr
    # A drop, not a reject: the peer's connect times out instead of being refused.
    assert dropped(peer, name) == "timeout"


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
