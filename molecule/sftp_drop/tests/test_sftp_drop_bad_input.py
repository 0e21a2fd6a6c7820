"""Bad input fails in validate.yml, naming the entry, before anything on the host changes; a
candidate drop-in that loses to a weaker drop-in is refused and the running config stays."""

from __future__ import annotations

import os
import pathlib
import subprocess

from conftest import bad_input_tests, hosts_in, podman_host, run_ansible_playbook

HOST = sorted(hosts_in("integration_hosts"))[0]
SCENARIO = pathlib.Path(__file__).resolve().parent.parent
STATE = (
    "md5sum /etc/ssh/sshd_config.d/00-libsys-sftp-drop.conf /etc/ssh/sftp-drop-keys/* "
    "/etc/libsys-onprem/nftables.d/sftp_drop.nft; getent passwd | sort; getent shadow | sort; "
    "find /srv/sftp-drop | sort"
)


def _key(name: str) -> str:
    key_dir = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "sftp-keys"
    return (key_dir / f"{name}.pub").read_text(encoding="utf-8").strip()


def _account(name: str, **extra) -> dict:
    return {"name": name, "public_keys": [_key("vendor-sis")], **extra}


def _run_role(accounts: list[dict]) -> subprocess.CompletedProcess:
    return run_ansible_playbook(
        SCENARIO / "converge.yml",
        "--limit",
        HOST,
        extra_vars={"sftp_drop_accounts": accounts},
        timeout=600,
        environment={"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"},
    )


def _output(result: subprocess.CompletedProcess) -> str:
    """stdout and stderr with whitespace runs folded, so wrapped messages still match."""
    return " ".join((result.stdout + " " + result.stderr).split())


ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x@example.org"
RSA_LABEL_ON_ED25519_DATA = ED25519.replace("ssh-ed25519", "ssh-rsa", 1)


def _cases() -> list[tuple[str, list[dict], str]]:
    return [
        (
            "invalid name",
            [{"name": "Vendor SIS", "public_keys": [ED25519]}],
            "sftp_drop_accounts[1] (name: Vendor SIS): the name must start",
        ),
        (
            "malformed key base64",
            [{"name": "vendor-bad", "public_keys": ["ssh-ed25519 AAAA*notbase64 x"]}],
            "(name: vendor-bad): public_keys[0] (ssh-ed25519) is not valid base64",
        ),
        (
            "key type does not match key data",
            [{"name": "vendor-bad", "public_keys": [RSA_LABEL_ON_ED25519_DATA]}],
            "(name: vendor-bad): public_keys[0] is malformed",
        ),
        (
            "key with options",
            [{"name": "vendor-bad", "public_keys": ['command="/bin/sh" ' + ED25519]}],
            "(name: vendor-bad): public_keys[0] is not",
        ),
        (
            "invalid CIDR",
            [{"name": "vendor-bad", "public_keys": [ED25519], "allowed_sources": ["198.51.100.300/24"]}],
            "sftp_drop_accounts[1] (name: vendor-bad).allowed_sources[0]",
        ),
        (
            "CIDR with host bits",
            [{"name": "vendor-bad", "public_keys": [ED25519], "allowed_sources": ["198.51.100.113/29"]}],
            "has host bits set",
        ),
        (
            "duplicate accounts",
            [{"name": "vendor-dup", "public_keys": [ED25519]}, {"name": "vendor-dup", "public_keys": [ED25519]}],
            "duplicate account name(s): vendor-dup",
        ),
        (
            "directory outside the jail",
            [{"name": "vendor-bad", "public_keys": [ED25519], "directories": [{"name": "../../etc"}]}],
            "(name: vendor-bad): directories[0] '../../etc' must be a relative path inside the jail",
        ),
        (
            "read-only archive with retention",
            [
                {
                    "name": "vendor-bad",
                    "public_keys": [ED25519],
                    "directories": [{"name": "incoming"}, {"name": "archive", "writable": False}],
                    "retention_days": 7,
                }
            ],
            "(name: vendor-bad): archive_dir archive is read-only (writable: false): retention could neither",
        ),
        (
            "name of an existing system user",
            [{"name": "sis-import", "public_keys": [ED25519]}],
            "(name: sis-import): a local user of that name exists",
        ),
    ]


# Every case in one run, each on its own alias of HOST (conftest.bad_input_tests): the drop
# account of the scenario plus the bad one. Not in check mode: if validation let an entry
# through, the run would change the host (STATE compares it before and after).
BAD_INPUT = {
    case: ({"sftp_drop_accounts": [_account("vendor-sis"), *accounts]}, message) for case, accounts, message in _cases()
}
bad_input, test_bad_input_fails_before_any_change, test_bad_input_changes_nothing = bad_input_tests(
    SCENARIO / "converge.yml", HOST, BAD_INPUT, STATE
)


def test_weaker_drop_in_sorting_first_is_refused_and_running_config_kept() -> None:
    host = podman_host(HOST)
    weak = "/etc/ssh/sshd_config.d/00-aaa-weak.conf"
    host.check_output(f"printf 'Match Group sftp-drop\\n    PasswordAuthentication yes\\n' > {weak}")
    try:
        before = host.check_output("md5sum /etc/ssh/sshd_config.d/00-libsys-sftp-drop.conf")
        # A change (one more account) so the drop-in is rendered again and checked.
        result = _run_role([_account("vendor-sis"), _account("vendor-extra")])
        assert result.returncode != 0
        assert "passwordauthentication is 'yes', expected 'no'" in _output(result), _output(result)[-3000:]
        assert host.check_output("md5sum /etc/ssh/sshd_config.d/00-libsys-sftp-drop.conf") == before
        assert "vendor-extra" not in host.file("/etc/ssh/sshd_config.d/00-libsys-sftp-drop.conf").content_string
    finally:
        host.check_output(
            f"rm -f {weak}; userdel vendor-extra 2>/dev/null || true; "
            "rm -rf /srv/sftp-drop/vendor-extra /etc/ssh/sftp-drop-keys/vendor-extra"
        )
    assert host.run("sshd -t").rc == 0
