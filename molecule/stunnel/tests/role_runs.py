"""Re-run the role from verify (what an operator would do) and look at hosts before and after.

Shared by the bad-input and the certificate life-cycle tests. Each run is a real
ansible-playbook run of converge.yml against one scenario host, with extra variables."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import play_recap, podman_host, run_ansible_playbook

EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")
PKI = os.path.join(EPHEMERAL, "pki")
CONVERGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "converge.yml")
# What must not change when a run fails validation: every file the role writes, the tunnels'
# processes and the firewall table.
FINGERPRINT = (
    "find /etc/stunnel /etc/libsys-onprem /etc/systemd/system -type f -print0 | sort -z | xargs -0 sha256sum; "
    "systemctl show -p MainPID 'stunnel-libsys@*.service'; nft list table inet libsys_stunnel"
)


def run_role(host: str, extra: dict) -> subprocess.CompletedProcess[str]:
    """ansible-playbook converge.yml --limit HOST -e EXTRA; results printed as JSON (one line per
    string, no YAML folding or quoting in the way of the tests' substring checks)."""
    return run_ansible_playbook(
        CONVERGE,
        "--limit",
        host,
        "-e",
        json.dumps(extra),
        environment={
            "ANSIBLE_CONFIG": os.path.join(EPHEMERAL, "ansible.cfg"),
            "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        },
    )


def recap(result: subprocess.CompletedProcess[str], host: str) -> dict[str, int]:
    """The PLAY RECAP counters of HOST, e.g. {"ok": 40, "changed": 0, "failed": 0, ...}."""
    return play_recap(result.stdout, host)


def fingerprint(host: str) -> str:
    return podman_host(host).check_output(FINGERPRINT)
