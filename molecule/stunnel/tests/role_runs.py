"""Re-run the role from verify (what an operator would do) and look at hosts before and after.

Shared by the bad-input and the certificate life-cycle tests. Each run is a real
ansible-playbook run of converge.yml against one scenario host, with extra variables."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import podman_host

EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")
PKI = os.path.join(EPHEMERAL, "pki")
CONVERGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "converge.yml")
# What must not change when a run fails validation: every file the role writes, the tunnels'
# processes and the firewall table.
FINGERPRINT = (
    "find /etc/stunnel /etc/libsys-onprem /etc/systemd/system -type f -print0 | sort -z | xargs -0 sha256sum; "
    "systemctl show -p MainPID 'stunnel-libsys@*.service'; nft list table inet libsys_stunnel"
)


def run_role(host: str, extra: dict) -> subprocess.CompletedProcess:
    """ansible-playbook converge.yml --limit HOST -e EXTRA; results printed as JSON (one line per
    string, no YAML folding or quoting in the way of the tests' substring checks)."""
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(EPHEMERAL, "ansible.cfg"),
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
        NO_COLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.path.join(EPHEMERAL, "inventory"),
            "--limit",
            host,
            CONVERGE,
            "-e",
            json.dumps(extra),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=env,
    )


def recap(result: subprocess.CompletedProcess, host: str) -> dict[str, int]:
    """The PLAY RECAP counters of HOST, e.g. {"ok": 40, "changed": 0, "failed": 0, ...}."""
    for line in result.stdout.split("PLAY RECAP")[-1].splitlines():
        if line.startswith(host + " "):
            return {k: int(v) for k, v in (pair.split("=") for pair in line.split(":", 1)[1].split())}
    raise AssertionError(f"no PLAY RECAP line for {host}:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")


def fingerprint(host: str) -> str:
    return podman_host(host).check_output(FINGERPRINT)
