"""The example role: the loader service is on, the table is loaded, and a real peer sees the
dropped port as unanswered while the open port answers."""

from __future__ import annotations

import pytest
from conftest import hosts_in, podman_host

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
