"""site: every integration path of site.yml, on one host that carries all of them and on the same
integrations split over two hosts, driven by the real peers (the checks of `make lab`'s demo,
tests/peers/integration_paths.py). Then, against a host that was never converged: bad
inventory values stop site.yml before any host changes, and `--check --diff` of site.yml
finishes, prints no secret and leaves the host as it was."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_DIR, hosts_in, play_recap, podman_host, run_ansible_playbook

sys.path.insert(0, str(PROJECT_DIR / "tests" / "peers"))

import integration_paths as e2e  # found through the path above

SITE = PROJECT_DIR / "playbooks" / "site.yml"
PEERS = e2e.Peers(
    kiosk="site-kiosk",
    cloud="site-cloud",
    vendor_relay="site-vendor-relay",
    mail_hub="site-mail-hub",
    outsider="site-outsider",
)
# Addresses and the cloud's stunnel client ports towards each 5001 tunnel, as molecule.yml
# sets them.
HOSTS = {
    "site-aio": e2e.IntegrationHost("site-aio", "198.51.100.202", asrs_client_port=15202),
    "site-tunnels": e2e.IntegrationHost("site-tunnels", "198.51.100.203", asrs_client_port=15203),
    "site-mail": e2e.IntegrationHost("site-mail", "198.51.100.204"),
}
FRESH = "site-fresh"
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
INTEGRATION_GROUPS = ["sip2_gateways", "storage_gateways", "sftp_servers", "mail_relays", "print_proxies"]
# Which group's hosts carry each path (the outsider check is a property of the SIP2 tunnel).
PATH_GROUPS = {path: path for path in INTEGRATION_GROUPS} | {"sip2_source_restriction": "sip2_gateways"}


def path_cases() -> list[tuple[str, str]]:
    return [(host, path) for path, group in PATH_GROUPS.items() for host in hosts_in(group)]


@pytest.mark.parametrize(("host", "path"), path_cases(), ids=lambda value: value)
def test_integration_path(host: str, path: str) -> None:
    check = e2e.paths(PEERS)[path]
    assert check.check(HOSTS[host], PEERS)


@pytest.mark.parametrize(
    ("host", "absent_ports"),
    [("site-tunnels", [25, 993]), ("site-mail", [5001, 6001])],
)
def test_split_hosts_carry_only_their_integrations(host: str, absent_ports: list[int]) -> None:
    listening = podman_host(host).check_output("ss -Hltn | awk '{print $4}'")
    ports = {int(address.rsplit(":", 1)[1]) for address in listening.split()}
    assert not ports & set(absent_ports), f"{host} listens on {sorted(ports & set(absent_ports))}"


# A file that puts the never-converged host into every integration group, on top of the
# scenario's inventory (its group_vars give it the same values as the other hosts).
@pytest.fixture(scope="module")
def fresh_inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    groups = {group: {"hosts": {FRESH: None}} for group in ["integration_hosts", *INTEGRATION_GROUPS]}
    path = tmp_path_factory.mktemp("inventory") / "fresh.yml"
    path.write_text(json.dumps({"all": {"children": groups}}), encoding="utf-8")
    return path


# Everything site.yml could touch on the fresh host: the installed packages and every file
# under /etc, /srv and /var/lib with its size and modification time.
FINGERPRINT = (
    "dpkg-query -W -f '${Package} ${Version}\\n' | sha256sum;"
    " find /etc /srv /var/lib -xdev -printf '%p %s %T@\\n' 2>/dev/null | sort | sha256sum"
)

# The drop account of molecule.yml, with the key the cloud peer holds (made by prepare).
VENDOR_SIS = {
    "name": "vendor-sis",
    "public_keys": ["{{ lookup('ansible.builtin.file', lab_dir ~ '/sftp-keys/vendor-sis.pub') }}"],
}
PORT_OUT_OF_RANGE = {
    "stunnel_tunnels": [{"name": "sip2", "mode": "client", "accept_port": 70000, "connect_host": "cloud.example.org"}]
}
SFTP_CIDR_TYPO = {"sftp_drop_accounts": [VENDOR_SIS | {"allowed_sources": ["198.51.100.300/32"]}]}
BAD_INVENTORY = [
    pytest.param({"onprem_region": "mars"}, ["onprem_region=mars is not one of", "scenario"], id="unknown-region"),
    pytest.param(
        {"onprem_campus_networks": ["198.51.100.216/33"]},
        ["site-fresh onprem_campus_networks[0]", "198.51.100.216/33"],
        id="cidr-typo",
    ),
    pytest.param(
        PORT_OUT_OF_RANGE,
        ["stunnel_tunnels[0] (name: sip2)", "accept_port 70000 is outside 1-65535"],
        id="port-out-of-range",
    ),
    pytest.param(
        {"print_proxy_printers": []},
        ["site-fresh is in group print_proxies but print_proxy_printers is empty"],
        id="group-without-its-variables",
    ),
    # The last integration's values are checked before the first integration's play runs.
    pytest.param(
        {
            "print_proxy_printers": [
                {"name": "circdesk", "address": "circdesk@print.library.example.edu", "device_uri": "gopher://x"}
            ]
        },
        ["print_proxy_printers[0]", "gopher"],
        id="bad-printer-uri",
    ),
    pytest.param(
        SFTP_CIDR_TYPO,
        ["sftp_drop_accounts[0] (name: vendor-sis).allowed_sources", "198.51.100.300/32"],
        id="sftp-cidr-typo",
    ),
]


@pytest.mark.parametrize(("extra", "expected"), BAD_INVENTORY)
def test_bad_inventory_stops_site_before_any_change(extra: dict, expected: list[str], fresh_inventory: Path) -> None:
    host = podman_host(FRESH)
    before = host.check_output(FINGERPRINT)
    result = run_ansible_playbook(SITE, "-l", FRESH, inventories=(fresh_inventory,), extra_vars=extra)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    failure = [line for line in output.splitlines() if line.startswith(("fatal:", "failed:"))]
    assert failure and all(f"[{FRESH}]" in line for line in failure), output[-3000:]
    for text in expected:
        assert text in output, output[-3000:]
    # The failure is in the validation play: no play that changes a host has started.
    assert "PLAY [SIP2 self-check" not in output and "PLAY [Build" not in output, output[-3000:]
    assert play_recap(output, FRESH)["changed"] == 0, output[-3000:]
    assert host.check_output(FINGERPRINT) == before


# A role used alone, in a playbook of the sysadmin's own: its checks run before anything it
# depends on (the nftables loader) touches the host.
ROLE_ALONE = [
    pytest.param(
        "libsys.onprem.stunnel",
        PORT_OUT_OF_RANGE,
        "accept_port 70000 is outside 1-65535",
        id="stunnel",
    ),
    pytest.param(
        "libsys.onprem.sftp_drop",
        SFTP_CIDR_TYPO,
        "198.51.100.300/32",
        id="sftp_drop",
    ),
]


@pytest.mark.parametrize(("role", "extra", "expected"), ROLE_ALONE)
def test_bad_values_stop_a_role_used_alone_before_any_change(
    role: str, extra: dict, expected: str, fresh_inventory: Path, tmp_path: Path
) -> None:
    host = podman_host(FRESH)
    before = host.check_output(FINGERPRINT)
    playbook = tmp_path / "role-alone.yml"
    playbook.write_text(json.dumps([{"hosts": FRESH, "roles": [role]}]), encoding="utf-8")
    result = run_ansible_playbook(playbook, inventories=(fresh_inventory,), extra_vars=extra)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert expected in output, output[-3000:]
    assert play_recap(output, FRESH)["changed"] == 0, output[-3000:]
    assert host.check_output(FINGERPRINT) == before


def secrets_of_the_inventory() -> list[str]:
    """The secret values the inventory of this scenario holds: the SASL password of the relay
    and every line of the private keys that site.yml deploys (from the test PKI)."""
    lines = [
        line
        for key in ("institution.key", "onprem-mail.key")
        for line in (EPHEMERAL / "pki" / key).read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("-----")
    ]
    assert lines, "no private key lines to look for"
    return ["site-scenario-sasl-secret-4f7c", *lines]


def test_check_diff_on_a_fresh_host_finishes_and_prints_no_secret(fresh_inventory: Path) -> None:
    host = podman_host(FRESH)
    before = host.check_output(FINGERPRINT)
    result = run_ansible_playbook(SITE, "--check", "--diff", "-l", FRESH, inventories=(fresh_inventory,), timeout=1800)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    counts = play_recap(output, FRESH)
    assert counts["failed"] == 0 and counts["unreachable"] == 0, counts
    # Check mode did evaluate the roles: it reports what a real run would change.
    assert counts["changed"] > 0, counts
    assert "--- before" in output, "no diff was printed"
    leaked = [secret for secret in secrets_of_the_inventory() if secret in output]
    assert not leaked, f"{len(leaked)} secret value(s) printed by --check --diff"
    assert "PRIVATE KEY" not in output
    assert host.check_output(FINGERPRINT) == before, "check mode changed the fresh host"


# The fast path of the roles (libsys.onprem.converged): an unchanged host skips the roles' tasks,
# and drift in a file, a directory, a service or the shared Postfix is found and repaired.
ROLES_WITH_A_FAST_PATH = ["stunnel", "sftp_drop", "mail_relay", "print_proxy"]
DRIFT = {
    "/etc/stunnel/libsys/sip2.conf": "echo '# drift' >> /etc/stunnel/libsys/sip2.conf",
    "/srv/sftp-drop/vendor-sis/incoming": "chmod 0777 /srv/sftp-drop/vendor-sis/incoming",
    "/etc/postfix/main.cf": "echo '# drift' >> /etc/postfix/main.cf",
    "service opendkim.service": "systemctl stop opendkim.service",
    # A live table gone with its file unchanged: no handler would run; the full run loads it again.
    "command nft -s list table inet libsys_sftp_drop": "nft delete table inet libsys_sftp_drop",
}
MANAGED_STATE = (
    "tail -n 1 /etc/stunnel/libsys/sip2.conf /etc/postfix/main.cf;"
    " stat -c '%a %U:%G' /srv/sftp-drop/vendor-sis/incoming; systemctl is-active opendkim.service || true;"
    " nft -s list table inet libsys_sftp_drop 2>&1 | sha256sum"
)


def task_result(output: str, title: str) -> str | None:
    """What the output says under the first task whose title starts with ``title`` (None: no such task)."""
    block = output.split(f"TASK [{title}", 1)
    return block[1].split("TASK [", 1)[0] if len(block) == 2 else None


def left_out_unchanged(output: str, host: str) -> bool:
    """Whether the validation play put ``host`` into onprem_unchanged_hosts, which the role plays leave out."""
    grouped = task_result(output, "Put a host whose roles are all as their last full run left them into")
    return grouped is not None and f"ok: [{host}]" in grouped


def roles_applied(output: str, host: str) -> list[str]:
    """The roles whose tasks ran on ``host``: their 'Apply the role' include was not skipped.

    A host the site's check found unchanged is left out of the role plays, so no task of theirs is
    in the output for it; the validation play must then have put it into onprem_unchanged_hosts, so
    that a role that vanished from the output for another reason is not taken for one. A role whose
    host changed elsewhere but which is itself converged skips its run.yml include.
    """
    if left_out_unchanged(output, host):
        for role in ROLES_WITH_A_FAST_PATH:
            assert task_result(output, f"libsys.onprem.{role} : Check the variables and the host, then apply") is None
        return []
    applied = []
    for role in ROLES_WITH_A_FAST_PATH:
        result = task_result(output, f"libsys.onprem.{role} : Apply the role")
        if result is None:
            whole = task_result(output, f"libsys.onprem.{role} : Check the variables and the host, then apply")
            assert whole is not None, f"{role}: neither its checks nor its tasks are in the output"
            assert f"skipping: [{host}]" in whole, f"{role}: no 'Apply the role' task, yet run.yml was not skipped"
        elif f"skipping: [{host}]" not in result:
            applied.append(role)
    return applied


def site_check_found_converged(output: str, host: str) -> bool:
    """Whether the validate play's check found every role of ``host`` as its last full run left it
    (it ran, and the task that prints its reasons had none to print)."""
    checked = task_result(output, "Check whether every role of this host is as its last full run left it")
    reasons = task_result(output, "Report why the roles' checks and tasks run")
    assert checked is not None and reasons is not None, "the site's converged check is not in the output"
    return f"ok: [{host}]" in checked and f"skipping: [{host}]" in reasons


def test_an_unchanged_host_skips_the_roles_and_drift_is_repaired() -> None:
    host_name = "site-aio"
    host = podman_host(host_name)
    converged = host.check_output(MANAGED_STATE)

    unchanged = run_ansible_playbook(SITE, "-l", host_name, "-v")
    output = unchanged.stdout + unchanged.stderr
    assert unchanged.returncode == 0, output[-3000:]
    assert play_recap(output, host_name)["changed"] == 0, output[-3000:]
    assert site_check_found_converged(output, host_name), output[-3000:]
    assert roles_applied(output, host_name) == [], output[-3000:]
    # The states came back with the facts (the local fact the roles' records installed): the check
    # compared them on the controller, with no call of its own to the host.
    checked = task_result(output, "Check whether every role of this host is as its last full run left it")
    assert re.search(r'"from_gathered": true', checked), checked
    # Left out of the role plays, the host still had its certificate's expiry checked (time passes).
    assert left_out_unchanged(output, host_name), output[-3000:]
    expiry = task_result(output, "libsys.onprem.stunnel : Check the institution's certificate expiry (fail")
    assert expiry is not None and f"ok: [{host_name}]" in expiry, output[-3000:]

    for command in DRIFT.values():
        host.run_expect([0], command)
    assert host.check_output(MANAGED_STATE) != converged
    repaired = run_ansible_playbook(SITE, "-l", host_name, timeout=1800)
    output = repaired.stdout + repaired.stderr
    assert repaired.returncode == 0, output[-3000:]
    assert not site_check_found_converged(output, host_name), output[-3000:]
    for drifted in DRIFT:
        assert drifted in output, f"the check did not report {drifted}:\n{output[-3000:]}"
    # The Postfix base is shared: the first role that finds it changed repairs it for both.
    assert roles_applied(output, host_name) == ["stunnel", "sftp_drop", "mail_relay"], output[-3000:]
    assert play_recap(output, host_name)["changed"] > 0
    assert host.check_output(MANAGED_STATE) == converged

    again = run_ansible_playbook(SITE, "-l", host_name)
    output = again.stdout + again.stderr
    assert again.returncode == 0, output[-3000:]
    assert play_recap(output, host_name)["changed"] == 0, output[-3000:]
    assert roles_applied(output, host_name) == [], output[-3000:]
