"""sftp_drop: a real cloud-side client (OpenSSH sftp and paramiko) pushes and pulls files,
every escape is refused, the outsider is refused by nftables and by sshd, the accounts
changed in side_effect behave, ssh-audit finds no failure, administrators keep their access."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import host_variable, hosts_in, podman_host, run_ansible_playbook

TARGETS = {
    "onprem-sftp-deb12": "198.51.100.106",
    "onprem-sftp-deb13": "198.51.100.107",
}
HOSTS = [name for name in hosts_in("integration_hosts") if name in TARGETS]
CLIENT = hosts_in("sftp_clients")[0]
CLIENT_ADDRESS = "198.51.100.112"
SCENARIO_DIR = Path(__file__).resolve().parent.parent
OUTSIDER = hosts_in("outsiders")[0]
SSH_OPTS = (
    "-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
    "-o ConnectTimeout=20 -o LogLevel=ERROR"
)

PARAMIKO_ROUNDTRIP = r"""
import io, sys, paramiko
host, user, key, name = sys.argv[1:5]
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
pkey = paramiko.Ed25519Key.from_private_key_file(key)
client.connect(host, username=user, pkey=pkey, look_for_keys=False, allow_agent=False, timeout=10)
sftp = client.open_sftp()
payload = ("paramiko " + name + "\n").encode()
sftp.putfo(io.BytesIO(payload), "incoming/" + name)
back = io.BytesIO()
sftp.getfo("incoming/" + name, back)
assert back.getvalue() == payload, back.getvalue()
print(" ".join(sorted(sftp.listdir("/"))))
client.close()
"""


def client():
    return podman_host(CLIENT)


def sftp_batch(peer, address: str, user: str, commands: list[str], *, key: str | None = None, options: str = ""):
    script = "\n".join(commands) + "\n"
    return peer.run(
        f"printf %s {shlex.quote(script)} | sftp -b - -i /root/.ssh/{key or user} {SSH_OPTS} {options} {user}@{address}"
    )


def ssh(
    peer, address: str, user: str, options: str = "", command: str = "", *, key: str | None = None, timeout: int = 60
):
    return peer.run(
        f"timeout {timeout} ssh -i /root/.ssh/{key or user} {SSH_OPTS} {options} {user}@{address} {command} < /dev/null"
    )


def converge_again(name: str, *args: str, **extra):
    """converge.yml on one host with the account list side_effect.yml left (the tests of the
    removed and purged accounts depend on it), plus `extra` variables."""
    variables = {"sftp_drop_accounts": "{{ sftp_drop_accounts_after }}", **extra}
    return run_ansible_playbook(SCENARIO_DIR / "converge.yml", "-l", name, *args, extra_vars=variables)


@pytest.fixture(params=HOSTS)
def target(request):
    return request.param, TARGETS[request.param]


def test_push_and_pull_with_openssh_sftp_and_consumer_access(target) -> None:
    name, address = target
    host, peer = podman_host(name), client()
    tag = uuid.uuid4().hex[:8]
    # An executable local file: OpenSSH's sftp asks for its mode (0755) when it creates the copy.
    peer.check_output(f"echo payload-{tag} > /tmp/push-{tag}.txt && chmod 0755 /tmp/push-{tag}.txt")
    put = sftp_batch(
        peer,
        address,
        "vendor-sis",
        [f"put /tmp/push-{tag}.txt incoming/push-{tag}.txt", f"get incoming/push-{tag}.txt /tmp/pull-{tag}.txt"],
    )
    assert put.rc == 0, put.stderr
    assert peer.check_output(f"cat /tmp/pull-{tag}.txt") == f"payload-{tag}"
    landed = host.file(f"/srv/sftp-drop/vendor-sis/incoming/push-{tag}.txt")
    assert landed.user == "vendor-sis" and landed.group == "sftp-consumers"
    assert landed.mode & 0o007 == 0, oct(landed.mode)  # nothing for others
    assert landed.mode & 0o111 == 0, oct(landed.mode)  # sftp_drop_no_execute: never executable
    # The campus consumer reads incoming files and writes outgoing ones, the vendor pulls them.
    assert host.check_output(f"runuser -u sis-import -- cat {landed.path}") == f"payload-{tag}"
    host.check_output(
        f"runuser -u sis-import -- sh -c 'umask 0007; echo report-{tag} > "
        f"/srv/sftp-drop/vendor-sis/outgoing/report-{tag}.txt'"
    )
    pull = sftp_batch(peer, address, "vendor-sis", [f"get outgoing/report-{tag}.txt /tmp/report-{tag}.txt"])
    assert pull.rc == 0, pull.stderr
    assert peer.check_output(f"cat /tmp/report-{tag}.txt") == f"report-{tag}"


def test_push_and_pull_with_paramiko(target) -> None:
    name, address = target
    tag = f"paramiko-{uuid.uuid4().hex[:8]}.txt"
    out = client().run(f"python3 -c {shlex.quote(PARAMIKO_ROUNDTRIP)} {address} vendor-sis /root/.ssh/vendor-sis {tag}")
    assert out.rc == 0, out.stderr
    # The jail shows the account's directories and nothing of the host.
    # (dev/ holds only the root-owned syslog socket that internal-sftp logs through.)
    assert out.stdout.split() == ["archive", "dev", "incoming", "outgoing"]
    assert podman_host(name).file(f"/srv/sftp-drop/vendor-sis/incoming/{tag}").exists


def test_transfers_are_logged_to_the_journal(target) -> None:
    name, address = target
    tag = f"logged-{uuid.uuid4().hex[:8]}.txt"
    peer = client()
    peer.check_output(f"echo x > /tmp/{tag}")
    assert sftp_batch(peer, address, "vendor-sis", [f"put /tmp/{tag} incoming/{tag}"]).rc == 0
    journal = podman_host(name).check_output("journalctl --no-pager -q --since -2min -t internal-sftp -t sshd")
    assert f'open "/incoming/{tag}"' in journal, journal[-2000:]
    assert "session opened for local user vendor-sis" in journal
    # The relay that carried those lines out of the jail runs as its own unprivileged user.
    host = podman_host(name)
    pid = host.check_output("systemctl show -P MainPID libsys-sftp-drop-log.service")
    assert pid != "0", pid
    uids = host.check_output(f"awk '/^Uid:/ {{print $2, $3, $4, $5}}' /proc/{pid}/status").split()
    relay_user = host.user("libsys-sftp-log")
    assert relay_user.uid != 0 and relay_user.shell == "/usr/sbin/nologin"
    assert uids == [str(relay_user.uid)] * 4, uids  # real, effective, saved and filesystem


def test_only_drop_accounts_may_write_to_the_jail_log_socket(target) -> None:
    """The jails' syslog sockets take datagrams from the drop group only (the test above shows
    the accounts' lines arriving): another local user is refused by the kernel."""
    name, _ = target
    host = podman_host(name)
    socket_path = "/srv/sftp-drop/vendor-sis/dev/log"
    assert host.check_output(f"stat -c '%U %G %a' {socket_path}") == "root sftp-drop 660"
    send = (
        "import socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
        "s.sendto(b'<38>internal-sftp[1]: forged', sys.argv[1])"
    )
    # The path is open to everyone: the socket's group is what tells the two users apart.
    member = host.run(f"runuser -u vendor-sis -- python3 -c {shlex.quote(send)} {socket_path}")
    assert member.rc == 0, member.stderr
    outsider = host.run(f"runuser -u nobody -- python3 -c {shlex.quote(send)} {socket_path}")
    assert outsider.rc != 0
    assert "PermissionError" in outsider.stderr, outsider.stderr


def test_hook_runs_when_a_file_lands_in_incoming(target) -> None:
    name, address = target
    tag = f"hooked-{uuid.uuid4().hex[:8]}.txt"
    peer = client()
    peer.check_output(f"echo x > /tmp/{tag}")
    assert sftp_batch(peer, address, "vendor-sis", [f"put /tmp/{tag} incoming/{tag}"]).rc == 0
    host = podman_host(name)
    listing = host.run(
        f"for i in $(seq 1 20); do grep -qx {tag} /srv/campus-import/hook-vendor-sis.list 2>/dev/null "
        "&& break; sleep 0.5; done; cat /srv/campus-import/hook-vendor-sis.list"
    )
    assert tag in listing.stdout.split(), listing.stdout
    assert host.file("/srv/campus-import/hook-vendor-sis.list").user == "sis-import"


def test_outsider_is_dropped_by_the_firewall(target) -> None:
    _, address = target
    outcome = podman_host(OUTSIDER).run(f"nc -z -w 3 {address} 22")
    assert outcome.rc != 0
    # The allowed client reaches the same port.
    assert client().run(f"nc -z -w 3 {address} 22").rc == 0


def test_firewall_off_removes_the_table_and_the_next_run_restores_it() -> None:
    """sftp_drop_firewall false (the string "false", as -e gives it) removes the table's file
    and the live table: the outsider reaches port 22 (sshd still refuses it, test below). The
    next run with the default loads it again and the outsider is dropped again."""
    name = HOSTS[0]
    host, outsider = podman_host(name), podman_host(OUTSIDER)
    table_file = "/etc/libsys-onprem/nftables.d/sftp_drop.nft"
    try:
        off = converge_again(name, "-e", "sftp_drop_firewall=false")
        assert off.returncode == 0, (off.stdout + off.stderr)[-3000:]
        assert not host.file(table_file).exists
        assert host.run("nft list table inet libsys_sftp_drop").rc != 0
        assert outsider.run(f"nc -z -w 3 {TARGETS[name]} 22").rc == 0
    finally:
        on = converge_again(name)
    assert on.returncode == 0, (on.stdout + on.stderr)[-3000:]
    assert host.file(table_file).exists
    result = outsider.run(f"nc -v -z -w 3 {TARGETS[name]} 22")
    assert result.rc != 0 and "timed out" in result.stderr, result.stderr


def test_outsider_is_refused_by_sshd_too(target) -> None:
    name, address = target
    host = podman_host(name)
    host.check_output("nft delete table inet libsys_sftp_drop")
    try:
        outsider = podman_host(OUTSIDER)
        assert outsider.run(f"nc -z -w 3 {address} 22").rc == 0, "firewall table still in place"
        attempt = sftp_batch(outsider, address, "vendor-sis", ["ls"])
        assert attempt.rc != 0
        assert "Permission denied" in attempt.stderr
    finally:
        host.check_output("systemctl restart libsys-onprem-nftables.service")
    assert "table inet libsys_sftp_drop" in host.check_output("nft list tables")


def test_account_is_limited_to_its_own_sources(target) -> None:
    _, address = target
    attempt = sftp_batch(client(), address, "vendor-edi", ["ls"])
    assert attempt.rc != 0
    assert "Permission denied" in attempt.stderr


def test_no_shell_and_no_tty(target) -> None:
    _, address = target
    for options, command in (("", "id"), ("-tt", "id"), ("-tt", "/bin/sh -c id"), ("", "cat /etc/passwd")):
        result = ssh(client(), address, "vendor-sis", options, command, timeout=60)
        assert "uid=" not in result.stdout and "root:x:0" not in result.stdout, (command, result.stdout)
    # The same command as the administrator does run: the test can tell a shell from none.
    assert "uid=0" in ssh(client(), address, "root", "", "id", key="admin").stdout
    tty = ssh(client(), address, "vendor-sis", "-tt", "id", timeout=60)
    assert "PTY allocation request failed" in tty.stderr, tty.stderr


def test_the_administrator_ansible_connects_as_keeps_a_shell(target) -> None:
    """After side_effect's converge, which changed the drop-in, a new SSH connection of the
    administrator Ansible connects as (from the controller, in sftp_drop_firewall_admin_sources)
    gets a shell and sudo; side_effect checked the same after the first converge. A drop
    account's key gets no shell (test_no_shell_and_no_tty)."""
    _, address = target
    key = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ssh" / "admin"
    result = subprocess.run(
        ["ssh", *SSH_OPTS.split(), "-o", "ControlPath=none", "-i", str(key), f"admin@{address}", "sudo -n id -u"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "0", result.stderr


def test_local_and_dynamic_forwarding_are_refused(target) -> None:
    _, address = target
    peer = client()
    for port, flag in ((40101, "-L 127.0.0.1:40101:127.0.0.1:22"), (40102, "-D 127.0.0.1:40102")):
        started = peer.run(
            f"ssh -N -o ExitOnForwardFailure=yes {flag} -i /root/.ssh/vendor-sis {SSH_OPTS} "
            f"vendor-sis@{address} </dev/null >/dev/null 2>&1 & echo $!"
        )
        pid = started.stdout.strip()
        assert started.rc == 0 and pid.isdigit(), started.stderr
        try:
            peer.run(f"for i in $(seq 1 20); do nc -z 127.0.0.1 {port} && break; sleep 0.5; done")
            if flag.startswith("-L"):
                probe = peer.run(f"timeout 5 nc -w 3 127.0.0.1 {port} < /dev/null")
            else:
                probe = peer.run(f"timeout 5 nc -w 3 -X 5 -x 127.0.0.1:{port} 127.0.0.1 22 < /dev/null")
            assert "SSH-2.0" not in probe.stdout, (flag, probe.stdout)
        finally:
            peer.run(f"kill {pid}")


def test_remote_forwarding_is_refused(target) -> None:
    _, address = target
    result = ssh(client(), address, "vendor-sis", "-N -o ExitOnForwardFailure=yes -R 40103:127.0.0.1:22", timeout=60)
    assert result.rc not in (0, 124), result
    assert "forwarding failed" in result.stderr, result.stderr


def test_jail_hides_the_host_and_other_accounts(target) -> None:
    name, address = target
    peer = client()
    peer.run("rm -f /root/stolen-*")
    for path in (
        "/etc/passwd",
        "../../etc/passwd",
        "/srv/sftp-drop/vendor-erp/incoming",
        "../vendor-erp/incoming",
        "/vendor-erp",
    ):
        attempt = sftp_batch(peer, address, "vendor-sis", [f"get -r {path} /root/stolen-x"])
        assert attempt.rc != 0, path
    assert not peer.file("/root/stolen-x").exists
    listing = sftp_batch(peer, address, "vendor-sis", ["cd ..", "cd ..", "pwd", "ls -1a"])
    assert listing.rc == 0, listing.stderr
    assert "Remote working directory: /" in listing.stdout
    assert "vendor-erp" not in listing.stdout and "etc" not in listing.stdout.split()
    # Another account's files are not reachable from the host's side either (mode 2770).
    assert podman_host(name).run("runuser -u vendor-sis -s /bin/sh -- ls /srv/sftp-drop/vendor-erp/incoming").rc != 0


def test_symlink_and_hardlink_creation_is_denied(target) -> None:
    name, address = target
    tag = uuid.uuid4().hex[:8]
    peer = client()
    peer.check_output(f"echo x > /tmp/link-{tag}")
    assert sftp_batch(peer, address, "vendor-sis", [f"put /tmp/link-{tag} incoming/link-{tag}"]).rc == 0
    for command in (
        f"symlink / incoming/root-{tag}",
        f"ln -s / incoming/root-{tag}",
        f"ln incoming/link-{tag} incoming/hard-{tag}",
    ):
        attempt = sftp_batch(peer, address, "vendor-sis", [command])
        assert attempt.rc != 0, command
    host = podman_host(name)
    assert not host.file(f"/srv/sftp-drop/vendor-sis/incoming/root-{tag}").exists
    assert not host.file(f"/srv/sftp-drop/vendor-sis/incoming/hard-{tag}").exists


def test_accounts_cannot_change_modes(target) -> None:
    """chmod of an uploaded file or of the account's incoming directory (777 would open it to
    every local user until the next run) is refused and changes nothing."""
    name, address = target
    tag = uuid.uuid4().hex[:8]
    peer, host = client(), podman_host(name)
    incoming = "/srv/sftp-drop/vendor-sis/incoming"
    peer.check_output(f"echo x > /tmp/mode-{tag}")
    assert sftp_batch(peer, address, "vendor-sis", [f"put /tmp/mode-{tag} incoming/mode-{tag}"]).rc == 0
    before = host.check_output(f"stat -c %a {incoming}/mode-{tag} {incoming}")
    for command in (f"chmod 755 incoming/mode-{tag}", "chmod 777 incoming"):
        attempt = sftp_batch(peer, address, "vendor-sis", [command])
        assert attempt.rc != 0 and "Permission denied" in attempt.stderr, (command, attempt.stderr)
    assert host.check_output(f"stat -c %a {incoming}/mode-{tag} {incoming}") == before


def test_password_login_is_not_offered_to_drop_accounts(target) -> None:
    _, address = target
    no_key = "-o PubkeyAuthentication=no -o PreferredAuthentications=password,keyboard-interactive"
    drop = ssh(client(), address, "vendor-sis", no_key)
    assert drop.rc != 0
    assert "Permission denied (publickey)" in drop.stderr, drop.stderr
    # cloud-init's drop-in still applies to everybody else: the Match block is what protects.
    admin = ssh(client(), address, "root", no_key, key="admin")
    assert "password" in admin.stderr, admin.stderr


def test_administrators_keep_their_shell(target) -> None:
    _, address = target
    result = ssh(client(), address, "root", "", "id -u", key="admin")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "0"


def _switch(name: str, variable: str) -> bool:
    """Whether molecule.yml turns the boolean `variable` on for this host."""
    return bool(host_variable(name, variable, False))


def _legacy_ssh_rsa(name: str) -> bool:
    return _switch(name, "sftp_drop_legacy_ssh_rsa")


def _sshd_log_after(host, since: str, expected: str | None = None) -> str:
    """What sshd (and OpenSSH 10's sshd-session) logged on the host since the epoch second
    `since`, once `expected` (default: the SHA-1 refusal) is there or after 5 s (the journal
    may lag a little). Read by syslog identifier: a pre-authentication process often exits
    before journald has read its cgroup, so "-u ssh.service" would miss its lines."""
    journal = f"journalctl --no-pager -q -t sshd -t sshd-session --since @{since}"
    wanted = shlex.quote(expected or SHA1_REFUSED)
    return host.check_output(
        f"for i in $(seq 1 10); do {journal} | grep -qF {wanted} && break; sleep 0.5; done; {journal}"
    )


SHA1_REFUSED = "signature algorithm ssh-rsa not in PubkeyAcceptedAlgorithms"


def test_scenario_covers_both_states_of_the_ssh_rsa_switch() -> None:
    # Each state needs a host, or the tests below would only ever see one of them.
    assert sorted(_legacy_ssh_rsa(name) for name in HOSTS) == [False, True]


def test_evaluated_pubkey_algorithms_follow_the_switch_for_drop_accounts_only(target) -> None:
    name, address = target
    host = podman_host(name)
    spec = f"addr=198.51.100.112,host=x,laddr={address},lport=22"
    drop = host.check_output(f"sshd -T -C user=vendor-erp,{spec} | grep -i '^pubkeyacceptedalgorithms '")
    admin = host.check_output(f"sshd -T -C user=root,{spec} | grep -i '^pubkeyacceptedalgorithms '")
    assert ("ssh-rsa" in drop.split()[1].split(",")) is _legacy_ssh_rsa(name), drop
    assert "ssh-rsa" not in admin.split()[1].split(","), admin
    assert "rsa-sha2-512" in drop.split()[1].split(","), drop


def test_ssh_rsa_signature_from_openssh_client(target) -> None:
    """An OpenSSH client that may only sign with ssh-rsa (SHA-1).

    The client sends ssh-rsa only if the server lists it in server-sig-algs, which sshd sends
    before it knows the user: OpenSSH 9.2 lists every algorithm it implements (ssh-rsa too),
    OpenSSH 10.0 only the global PubkeyAcceptedAlgorithms (no ssh-rsa). Against the latter a
    current client gives up by itself; old clients that ignore server-sig-algs are the paramiko
    test below.
    """
    name, address = target
    peer = client()
    modern = sftp_batch(peer, address, "vendor-erp", ["ls"])
    assert modern.rc == 0, modern.stderr
    since = podman_host(name).check_output("date +%s")
    legacy = peer.run(
        f"printf 'ls\\n' | sftp -b - -o PubkeyAcceptedAlgorithms=ssh-rsa -i /root/.ssh/vendor-erp "
        f"{SSH_OPTS} -vvv vendor-erp@{address}"
    )
    announced = re.search(r"server-sig-algs=<([^>]*)>", legacy.stderr)
    assert announced, legacy.stderr[-3000:]
    if "ssh-rsa" not in announced.group(1).split(","):
        assert legacy.rc != 0
        assert "no mutual signature algorithm" in legacy.stderr, legacy.stderr[-3000:]
        return
    # The client did send the key with ssh-rsa, the only algorithm it may use; whether the
    # server takes it is the switch's business.
    assert "Offering public key: /root/.ssh/vendor-erp RSA" in legacy.stderr, legacy.stderr[-3000:]
    assert "no mutual signature algorithm" not in legacy.stderr, legacy.stderr[-3000:]
    if _legacy_ssh_rsa(name):
        assert legacy.rc == 0, legacy.stderr[-3000:]
        assert "signing using ssh-rsa" in legacy.stderr, legacy.stderr[-3000:]
        assert "incoming" in legacy.stdout
    else:
        assert legacy.rc != 0
        assert "Server accepts key" not in legacy.stderr, legacy.stderr[-3000:]
        assert "Permission denied" in legacy.stderr, legacy.stderr[-3000:]
        assert SHA1_REFUSED in _sshd_log_after(podman_host(name), since)


# A client from before RFC 8332/8308 (old Java/.NET SSH libraries): it signs with an RSA key
# using ssh-rsa (SHA-1) whatever the server announces. paramiko is made to behave like one.
PARAMIKO_OLD_CLIENT = r"""
import sys, paramiko
from paramiko.auth_handler import AuthHandler
host, user, key = sys.argv[1:4]
used = []
def old_client_algorithm(self, key_type):
    used.append("ssh-rsa" if "rsa" in key_type else key_type)
    return used[-1]
AuthHandler._finalize_pubkey_algorithm = old_client_algorithm
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
try:
    client.connect(host, username=user, pkey=paramiko.RSAKey.from_private_key_file(key),
                   look_for_keys=False, allow_agent=False, timeout=10)
    print("LISTING " + " ".join(sorted(client.open_sftp().listdir("/"))))
except paramiko.AuthenticationException as error:
    print("REFUSED " + str(error))
finally:
    client.close()
print("SIGNED-WITH " + ",".join(used))
"""


def test_ssh_rsa_signature_from_an_old_client(target) -> None:
    name, address = target
    # The account's RSA key works with SHA-2 signatures: a refusal below is the algorithm's.
    assert sftp_batch(client(), address, "vendor-erp", ["ls"]).rc == 0
    host = podman_host(name)
    since = host.check_output("date +%s")
    result = client().run(f"python3 -c {shlex.quote(PARAMIKO_OLD_CLIENT)} {address} vendor-erp /root/.ssh/vendor-erp")
    assert result.rc == 0, result.stderr
    assert result.stdout.split("SIGNED-WITH ")[-1].strip() == "ssh-rsa", result.stdout
    if _legacy_ssh_rsa(name):
        assert result.stdout.startswith("LISTING ") and "incoming" in result.stdout.split(), result.stdout
        assert SHA1_REFUSED not in _sshd_log_after(host, since)
    else:
        assert result.stdout.startswith("REFUSED "), result.stdout
        # sshd itself names the reason.
        assert SHA1_REFUSED in _sshd_log_after(host, since)


def test_administrators_refuse_ssh_rsa_from_an_old_client(target) -> None:
    name, address = target
    peer = client()
    # The administrator's RSA key works with SHA-2 signatures: the refusal below is the algorithm's.
    modern = ssh(peer, address, "root", "", "id -u", key="admin-rsa")
    assert modern.rc == 0 and modern.stdout.strip() == "0", modern.stderr
    host = podman_host(name)
    since = host.check_output("date +%s")
    result = peer.run(f"python3 -c {shlex.quote(PARAMIKO_OLD_CLIENT)} {address} root /root/.ssh/admin-rsa")
    assert result.rc == 0, result.stderr
    assert result.stdout.split("SIGNED-WITH ")[-1].strip() == "ssh-rsa", result.stdout
    assert result.stdout.startswith("REFUSED "), result.stdout
    assert SHA1_REFUSED in _sshd_log_after(host, since)


def test_ssh_rsa_host_key_signatures_are_never_offered(target) -> None:
    # The switch is about user keys only: sshd's host key algorithms are global, and stay SHA-2.
    _, address = target
    result = ssh(client(), address, "root", "-v -o HostKeyAlgorithms=ssh-rsa", "id -u", key="admin")
    assert result.rc != 0
    assert "no matching host key type found" in result.stderr, result.stderr


def test_read_only_directory_refuses_uploads(target) -> None:
    _, address = target
    peer = client()
    peer.check_output("echo x > /tmp/ro.txt")
    assert sftp_batch(peer, address, "vendor-erp", ["put /tmp/ro.txt reports/ro.txt"]).rc != 0
    assert sftp_batch(peer, address, "vendor-erp", ["put /tmp/ro.txt incoming/rw.txt"]).rc == 0


def test_removed_account_is_disabled_and_its_files_kept(target) -> None:
    name, address = target
    host = podman_host(name)
    attempt = sftp_batch(client(), address, "vendor-old", ["ls"])
    assert attempt.rc != 0
    assert "Permission denied" in attempt.stderr
    assert host.file("/srv/sftp-drop/vendor-old/incoming/kept.txt").exists
    assert not host.file("/etc/ssh/sftp-drop-keys/vendor-old").exists
    shadow = host.check_output("getent shadow vendor-old").split(":")
    assert shadow[1].startswith("!")
    assert shadow[7] == "1"  # expired on day 1 of the epoch
    # side_effect left an SFTP session of vendor-old open before the re-run: it was ended.
    leftover = host.run("pgrep --list-full --uid vendor-old")
    assert leftover.rc == 1, leftover.stdout


def test_purged_account_is_gone_and_new_account_works(target) -> None:
    name, address = target
    host = podman_host(name)
    assert not host.user("vendor-gone").exists
    assert not host.file("/srv/sftp-drop/vendor-gone").exists
    assert sftp_batch(client(), address, "vendor-gone", ["ls"]).rc != 0
    new = sftp_batch(client(), address, "vendor-new", ["ls -1"])
    assert new.rc == 0, new.stderr
    assert "incoming" in new.stdout


def test_retention_archives_processed_files_and_deletes_expired_ones(target) -> None:
    name, _ = target
    host = podman_host(name)
    base = "/srv/sftp-drop/vendor-erp"
    assert host.file(f"{base}/archive/processed.csv").exists
    assert not host.file(f"{base}/incoming/processed.csv").exists
    assert host.file(f"{base}/incoming/fresh.csv").exists
    assert not host.file(f"{base}/archive/expired.csv").exists
    assert host.service("libsys-sftp-drop-retention.timer").is_enabled
    # Subdirectories too, to the same place below the archive.
    assert host.file(f"{base}/archive/batch/deep.csv").exists
    # Made by the account with its search bits and the consumers' set-group-ID directory.
    batch = host.file(f"{base}/archive/batch")
    assert (batch.user, batch.group, batch.mode) == ("vendor-erp", "sftp-consumers", 0o2770), oct(batch.mode)
    assert not host.file(f"{base}/incoming/batch/deep.csv").exists
    # One journal line per file, its name quoted: a line break in a name forges no line.
    journal = host.check_output("journalctl -u libsys-sftp-drop-retention.service --no-pager -o cat").splitlines()
    assert "retention: vendor-erp: archive batch/deep.csv" in journal
    assert "retention: vendor-erp: archive $'forged\\nretention: vendor-sis: delete everything'" in journal
    assert not any(line.lstrip().startswith("retention: vendor-sis") for line in journal), journal


def test_evaluated_configuration_turns_password_off_for_drop_accounts(target) -> None:
    name, address = target
    evaluated = podman_host(name).check_output(
        f"sshd -T -C user=vendor-sis,addr=198.51.100.112,host=x,laddr={address},lport=22"
    )
    settings = dict(line.split(" ", 1) for line in evaluated.splitlines() if " " in line)
    assert settings["passwordauthentication"] == "no"
    assert settings["kbdinteractiveauthentication"] == "no"
    assert settings["chrootdirectory"] == "/srv/sftp-drop/%u"
    assert settings["forcecommand"].startswith("internal-sftp")


# The vendor's SFTP client as the security review measured it (JSch): what it offers for key
# exchange, MACs and ciphers. ecdh-sha2-nistp* fail ssh-audit; the group exchange does not.
VENDOR_OFFER = (
    "-o KexAlgorithms=ecdh-sha2-nistp256,ecdh-sha2-nistp384,diffie-hellman-group14-sha1,"
    "diffie-hellman-group-exchange-sha256,diffie-hellman-group-exchange-sha1 "
    "-o MACs=hmac-sha2-256,hmac-sha1 -o Ciphers=aes128-ctr,aes256-ctr"
)
JSCH_SOURCE = Path(__file__).resolve().parent.parent / "files" / "JschRoundTrip.java"


def test_the_vendor_client_offer_gets_in_with_the_default_profile(target) -> None:
    """Default profile (vendor): the offer above meets the group exchange, hmac-sha2-256 and
    aes128-ctr, and the account lists its directory."""
    _, address = target
    result = sftp_batch(client(), address, "vendor-sis", ["ls"], options=f"{VENDOR_OFFER} -v")
    assert result.rc == 0, result.stderr[-3000:]
    assert re.search(r"kex: algorithm: diffie-hellman-group-exchange-sha256\s*$", result.stderr, re.M), result.stderr
    assert "kex: server->client cipher: aes128-ctr MAC: hmac-sha2-256 " in result.stderr, result.stderr[-3000:]
    assert "incoming" in result.stdout.split()


def test_the_vendors_jsch_client_pushes_and_pulls(target) -> None:
    """Debian's JSch (0.1.55) with its own offer and the vendor account's RSA key. It can
    verify only ssh-rsa, ssh-dss and ECDSA host keys and signs only with ssh-rsa: it gets in
    where sftp_drop_legacy_host_key and sftp_drop_legacy_ssh_rsa are on, and elsewhere stops
    at the host key, after the key exchange, ciphers and MACs matched."""
    name, address = target
    host, peer = podman_host(name), client()
    tag = uuid.uuid4().hex[:8]
    # JSch 0.1.55 reads PEM private keys only (a copy in root's own directory of the peer).
    key = f"/root/.ssh/jsch-{tag}"
    peer.check_output(f"cp /root/.ssh/vendor-erp {key} && ssh-keygen -q -p -m PEM -N '' -P '' -f {key}")
    source = "/root/JschRoundTrip.java"
    peer.check_output(f"printf %s {shlex.quote(JSCH_SOURCE.read_text(encoding='utf-8'))} > {source}")
    since = host.check_output("date +%s")
    result = peer.run(
        f"timeout 120 java -cp /usr/share/java/jsch.jar {source} {address} vendor-erp {key} incoming/jsch-{tag}.txt"
    )
    assert result.rc == 0, result.stdout + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    if _switch(name, "sftp_drop_legacy_host_key") and _legacy_ssh_rsa(name):
        assert lines[-1] == "ROUNDTRIP-OK", result.stdout
        assert "kex: server->client aes128-ctr hmac-sha2-256 none" in lines, result.stdout
        assert "kex: host key algorithm: ecdsa-sha2-nistp256" in lines, result.stdout
        landed = host.file(f"/srv/sftp-drop/vendor-erp/incoming/jsch-{tag}.txt")
        assert landed.user == "vendor-erp" and landed.content_string == f"jsch incoming/jsch-{tag}.txt\n"
    else:
        assert lines[-1] == "REFUSED Algorithm negotiation fail", result.stdout
        refusal = f"Unable to negotiate with {CLIENT_ADDRESS} port"
        log = _sshd_log_after(host, since, refusal)
        assert re.search(rf"{re.escape(refusal)} \d+: no matching host key type found", log), log[-3000:]


def test_the_strict_profile_refuses_the_vendor_client_offer() -> None:
    """sftp_drop_crypto_profile=strict on one host: the offer above finds no key exchange.
    The host is converged back to its own settings afterwards."""
    name = HOSTS[0]
    try:
        strict = converge_again(name, sftp_drop_crypto_profile="strict")
        assert strict.returncode == 0, strict.stdout[-3000:]
        result = sftp_batch(client(), TARGETS[name], "vendor-sis", ["ls"], options=f"{VENDOR_OFFER} -v")
        assert result.rc != 0
        assert "no matching key exchange method found" in result.stderr, result.stderr[-3000:]
        assert sftp_batch(client(), TARGETS[name], "vendor-sis", ["ls"]).rc == 0
    finally:
        back = converge_again(name)
    assert back.returncode == 0, back.stdout[-3000:]
    assert sftp_batch(client(), TARGETS[name], "vendor-sis", ["ls"], options=VENDOR_OFFER).rc == 0


def _ssh_audit() -> list[str]:
    found = shutil.which("ssh-audit", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if not found:
        pytest.fail("ssh-audit is not installed on the controller")
    usage = subprocess.run([found, "-h"], capture_output=True, text=True, check=False).stdout
    if "ssh-audit v1." in usage or "ssh-audit v2." in usage:
        pytest.fail(f"{found} is ssh-audit 2.x, which misreads OpenSSH 10 and strict kex; install ssh-audit>=3")
    return [found]


@pytest.mark.parametrize("name", HOSTS)
def test_ssh_audit_reports_no_failure(name: str) -> None:
    command = [*_ssh_audit(), "-jj", "-p", "22", TARGETS[name]]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    # ssh-audit's exit code: 2 for warnings (the default profile has some), 3 for a failure
    # (the ECDSA host key of sftp_drop_legacy_host_key, on one host).
    expected = 3 if _switch(name, "sftp_drop_legacy_host_key") else 2
    assert result.returncode == expected, (result.returncode, result.stdout[-2000:], result.stderr)
    report = json.loads(result.stdout)
    failures = [
        entry["algorithm"]
        for kind in ("kex", "key", "enc", "mac")
        for entry in report.get(kind, [])
        if entry.get("notes", {}).get("fail")
    ]
    # The one documented exception: the ECDSA host key of sftp_drop_legacy_host_key.
    assert failures == (["ecdsa-sha2-nistp256"] if _switch(name, "sftp_drop_legacy_host_key") else [])
    # The default profile's additions for the vendor's client are there, with warnings only.
    offered = {entry["algorithm"] for kind in ("kex", "mac") for entry in report.get(kind, [])}
    assert {"diffie-hellman-group-exchange-sha256", "hmac-sha2-256", "hmac-sha2-512"} <= offered
    # With or without sftp_drop_legacy_ssh_rsa, no host key signs with SHA-1.
    assert [entry["algorithm"] for entry in report.get("key", []) if entry["algorithm"] == "ssh-rsa"] == []
    # The only critical recommendation is to drop the ECDSA host key where the switch added it.
    critical = report.get("recommendations", {}).get("critical", {})
    legacy = {"del": {"key": [{"name": "ecdsa-sha2-nistp256", "notes": ""}]}}
    assert critical == (legacy if _switch(name, "sftp_drop_legacy_host_key") else {})
    assert [cve for cve in report.get("cves", []) if cve.get("cvssv2", 0) >= 7.0] == []
