"""site: every integration path of site.yml, on one host that carries all of them and on the same
integrations split over two hosts, driven by the real peers (the checks of `make lab`'s demo,
tests/peers/integration_paths.py). Then, against a host that was never configured: bad
inventory values stop site.yml before any host changes, and `--check --diff` of site.yml
finishes, prints no secret and leaves the host as it was."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
import uuid
from pathlib import Path

import pytest
import testinfra
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


# A file that puts the never-configured host into every integration group, on top of the
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
    "stunnel_tunnels": [
        {
            "name": "sip2",
            "mode": "client",
            "integration": "sip2",
            "accept_port": 70000,
            "connect_host": "cloud.example.org",
        }
    ]
}
# The site's own entry takes the name of a row the sftp_drop role contributes to preflight.
PREFLIGHT_NAME_CLASH = {
    "preflight_extra_endpoints": [
        {"name": "sftp-drop", "integration": "Staff workstation", "host": "192.0.2.1", "port": 22}
    ]
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
        {
            "stunnel_tunnels": [
                {"name": "sip2", "mode": "client", "accept_port": 6001, "connect_host": "cloud.example.org"}
            ]
        },
        [
            "site-fresh is in group sip2_gateways but stunnel_tunnels has no SIP2 tunnel",
            "(mode: client, integration: sip2)",
        ],
        id="sip2-without-a-sip2-tunnel",
    ),
    # The roles' preflight rows are built in the validation play, before any change.
    pytest.param(
        PREFLIGHT_NAME_CLASH,
        [
            "preflight_role_endpoints[",
            "(name: sftp-drop) (from sftp_drop_port): name 'sftp-drop' is already used by preflight_extra_endpoints[0]",
        ],
        id="preflight-name-clash",
    ),
    # Operations: a metrics directory that is no absolute path, an SPF include that is no domain.
    pytest.param(
        {"status_metrics_dir": "var/lib/prometheus"},
        ["status_metrics_dir must be an absolute path (got var/lib/prometheus)"],
        id="status-metrics-dir-relative",
    ),
    pytest.param(
        {"mail_relay_spf_watch_include": "spf vendor"},
        ["mail_relay_spf_watch_include (spf vendor) must be a domain name"],
        id="spf-include-not-a-domain",
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
    # The map of integrations decides which group carries which integration: with the print
    # integration moved to integration_hosts, the host is checked as a print proxy there.
    pytest.param(
        {"onprem_integration_groups": {"print": "integration_hosts"}, "print_proxy_printers": []},
        ["site-fresh is in group integration_hosts but print_proxy_printers is empty"],
        id="integration-group-renamed",
    ),
    pytest.param(
        {"onprem_integration_groups": {"ftp": "sftp_servers"}},
        ["onprem_integration_groups maps integrations (sip2, remote_storage, sftp, mail, print) to inventory group"],
        id="unknown-integration",
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


def _relay_from_the_vendor(sender: str, header_from: str) -> list[dict]:
    """Send one notice from the vendor's relay through site-mail to the campus; return what the
    hub stored for it (envelope and path), waiting up to 60 s for at least one message."""
    message_id = f"{uuid.uuid4().hex}@site.example.org"
    swaks = [
        "swaks", "--server", HOSTS["site-mail"].address, "--port", "25", "--tls", "--timeout", "20",
        "--helo", "relay.vendor.example.org", "--from", sender, "--to", "patron@library.example.edu",
        "--header", f"Message-Id: <{message_id}>", "--header", f"From: Library <{header_from}>",
        "--header", "Subject: Hold request ready for pickup", "--body", "Your hold request is ready.",
    ]  # fmt: skip
    sent = e2e.in_container(PEERS.vendor_relay, shlex.join(swaks))
    assert sent.returncode == 0, sent.stdout[-2000:]

    def found() -> str | None:
        files = e2e.in_container(PEERS.mail_hub, f"grep -l -F {shlex.quote(message_id)} {e2e.HUB_MAIL_DIR}/*.eml")
        return files.stdout if files.returncode == 0 else None

    stored = []
    for path in (e2e.wait_until(found, timeout=60, interval=2) or "").split():
        envelope = json.loads(e2e.in_container(PEERS.mail_hub, f"cat {path[:-4]}.json").stdout)
        stored.append(envelope | {"path": path})
    return stored


def test_shared_mail_host_rewrites_and_signs_relayed_mail_and_leaves_slips_alone() -> None:
    """site-mail carries mail_relay (bounce mailbox, From policy `require`) and print_proxy
    (a printer that takes slips from @vendor.example.org only) on one Postfix. A slip from the
    vendor's address prints, and the print handler saw that sender; relayed mail from the same
    address leaves with the bounce mailbox as its envelope sender and a valid DKIM signature;
    relayed mail with a From outside the institution is returned to its sender."""
    mail = podman_host("site-mail")
    slip = e2e.paths(PEERS)["print_proxies"]
    since = mail.check_output("date +%s")
    assert slip.check(HOSTS["site-mail"], PEERS)
    handled = mail.check_output(f"journalctl --since @{since} -o cat -t libsys-print-proxy")
    assert "printer=circdesk sender=alma@vendor.example.org " in handled and "outcome=printed" in handled, handled

    relayed = _relay_from_the_vendor("alma@vendor.example.org", "notices@library.example.edu")
    assert [(d["sender"], d["recipient"]) for d in relayed] == [
        ("bounces@library.example.edu", "patron@library.example.edu")
    ]
    key = mail.check_output(f"openssl pkey -in {e2e.DKIM_KEY} -pubout -outform DER | base64 -w0")
    verdict = e2e.in_container(PEERS.mail_hub, f"python3 -c {shlex.quote(e2e.DKIM_VERIFY)} {relayed[0]['path']} {key}")
    assert verdict.stdout.strip() == "valid", verdict.stdout + verdict.stderr

    returned = _relay_from_the_vendor("notices@library.example.edu", "someone@outside.example.org")
    # The bounce: the null sender, as the hub's pipe(8) delivery writes it.
    assert [(d["sender"], d["recipient"]) for d in returned] == [("MAILER-DAEMON", "notices@library.example.edu")], (
        returned
    )
    bounce = " ".join(e2e.in_container(PEERS.mail_hub, f"cat {returned[0]['path']}").stdout.split())
    assert "550 5.7.1 The From header must be an address of the institution" in bounce, bounce[-2000:]


# Drift planted by hand on converged hosts: a re-run of site.yml runs every task, so each is
# repaired by the task that owns the thing, or the run fails and names it.
DROP_IN_BEFORE_OURS = "/etc/ssh/sshd_config.d/00-aaa-local.conf"
STRAY_CLIENT_TABLE = "/etc/postfix/libsys/campus_relay_clients.cidr"


def test_a_drop_in_that_weakens_the_drop_accounts_fails_the_run_and_is_named() -> None:
    """(a) A drop-in that sorts before the role's and, for the drop group, turns passwords on
    and moves the chroot: sshd would apply it, so the run fails and names the file."""
    host_name = "site-tunnels"
    host = podman_host(host_name)
    weaker = "Match Group sftp-drop\\n    PasswordAuthentication yes\\n    ChrootDirectory /srv\\n"
    host.run_expect([0], f"printf '{weaker}' > {DROP_IN_BEFORE_OURS}")
    try:
        result = run_ansible_playbook(SITE, "-l", host_name, "--tags", "sftp")
        output = result.stdout + result.stderr
        assert result.returncode != 0, output[-3000:]
        assert f"set by {DROP_IN_BEFORE_OURS}, which sshd reads before" in output, output[-3000:]
        assert play_recap(output, host_name)["failed"] == 1, output[-3000:]
    finally:
        host.run_expect([0], f"rm -f {DROP_IN_BEFORE_OURS}")


def test_planted_drift_is_repaired() -> None:
    """(b) on the mail host, a client table of a role the host does not carry, letting everyone
    in, and main.cf edited to let every client in; (c) a firewall table deleted by hand; (d) a
    tunnel configuration edited by hand. One run of site.yml repairs all of them: main.cf is
    rendered whole again and names no table but its own inline ones, so the stray file is read
    by nothing."""
    aio, mail = podman_host("site-aio"), podman_host("site-mail")
    wanted_main_cf = mail.check_output("sha256sum /etc/postfix/main.cf")
    wanted_sip2 = aio.check_output("sha256sum /etc/stunnel/libsys/sip2.conf")
    mail.run_expect([0], f"printf '0.0.0.0/0 OK\\n' > {STRAY_CLIENT_TABLE}")
    widening = f"smtpd_client_restrictions = check_client_access cidr:{STRAY_CLIENT_TABLE}"
    mail.run_expect([0], f"printf '%s\\n' '{widening}' >> /etc/postfix/main.cf")
    aio.run_expect([0], "nft delete table inet libsys_stunnel")
    aio.run_expect([0], "printf 'debug = 7\\n' >> /etc/stunnel/libsys/sip2.conf")

    result = run_ansible_playbook(SITE, "-l", "site-aio,site-mail")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert play_recap(output, "site-aio")["changed"] > 0 and play_recap(output, "site-mail")["changed"] > 0

    assert mail.check_output("sha256sum /etc/postfix/main.cf") == wanted_main_cf
    assert STRAY_CLIENT_TABLE not in mail.check_output("postconf -n")
    assert "table inet libsys_stunnel" in aio.check_output("nft list tables")
    assert aio.check_output("sha256sum /etc/stunnel/libsys/sip2.conf") == wanted_sip2
    # The tunnel runs on the repaired configuration, and its table drops the outsider again.
    assert e2e.paths(PEERS)["sip2_gateways"].check(HOSTS["site-aio"], PEERS)
    assert e2e.paths(PEERS)["sip2_source_restriction"].check(HOSTS["site-aio"], PEERS)


# --- operations: libsys-onprem-status and its metrics ----------------------------------

STATUS = "/usr/local/sbin/libsys-onprem-status"
METRICS_FILE = "/var/lib/prometheus/node-exporter/libsys_onprem.prom"


def status_report(host: testinfra.host.Host) -> tuple[int, dict, str]:
    """(exit code, --json report, text report) of the status command on the host."""
    as_json = host.run(f"{STATUS} --json")
    text = host.run(STATUS)
    assert as_json.rc == text.rc, (as_json.stderr, text.stderr)
    return as_json.rc, json.loads(as_json.stdout), text.stdout


def check_of(report: dict, name: str) -> dict:
    found = [check for check in report["checks"] if check["name"] == name]
    assert len(found) == 1, [check["name"] for check in report["checks"]]
    return found[0]


def metrics(host: testinfra.host.Host) -> dict[str, float]:
    """The metrics file as its timer's service writes it (run now), sample -> value."""
    host.check_output("systemctl start libsys-onprem-status.service")
    samples = {}
    for line in host.check_output(f"cat {METRICS_FILE}").splitlines():
        if line and not line.startswith("#"):
            sample, value = line.rsplit(" ", 1)
            samples[sample] = float(value)
    return samples


def status_metric(check: str, kind: str, integration: str) -> str:
    return f'libsys_onprem_check_status{{check="{check}",type="{kind}",integration="{integration}"}}'


def assert_state(host: testinfra.host.Host, check: str, state: str, metric: str, value: float) -> dict:
    """The check is in `state` in the JSON and the text report, the exit code is the worst state,
    and the metrics file says the same."""
    rc, report, text = status_report(host)
    found = check_of(report, check)
    assert found["status"] == state, found
    assert rc == report["exit_code"] == {"ok": 0, "warning": 1, "critical": 2}[report["status"]]
    assert report["status"] != "ok" or state == "ok"
    if state != "ok":
        assert rc >= (1 if state == "warning" else 2)
    tag = {"ok": "OK", "warning": "WARN", "critical": "CRIT"}[state]
    assert any(line.split()[:1] == [tag] and check in line.split() for line in text.splitlines()), text
    samples = metrics(host)
    code = {"ok": 0, "warning": 1, "critical": 2}[state]
    assert samples[status_metric(check, found["type"], found["integration"])] == code, samples
    assert samples[metric] == value, samples
    return found


def timer_run(host: testinfra.host.Host, service: str) -> tuple[bool, str]:
    """Start a timer's service now, as its timer would: (whether it succeeded, what this run
    wrote to the journal)."""
    started = host.run(f"systemctl start {service}")
    invocation = host.check_output(f"systemctl show --property=InvocationID --value {service}")
    journal = host.check_output(f"journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID={invocation}")
    state = host.run(f"systemctl is-failed {service}").stdout.strip()
    assert (started.rc == 0) == (state != "failed"), (started.rc, state, journal)
    return started.rc == 0, journal


def test_status_sees_the_cloud_sip2_server_go_and_come_back() -> None:
    aio, cloud = podman_host("site-aio"), podman_host("site-cloud")
    up = 'libsys_onprem_sip2_up{check="stunnel-sip2-sip2"}'
    last_ok = assert_state(aio, "stunnel-sip2-sip2", "ok", up, 1)["last_ok"]
    stopped_at = time.time()  # the containers share this machine's clock
    cloud.check_output("systemctl stop peer-sip2-acs.service")
    try:
        # The wording depends on how stunnel ends the connection (reset or closed); the state,
        # the exit code and the metric are what a sysadmin and the monitoring read.
        found = assert_state(aio, "stunnel-sip2-sip2", "critical", up, 0)
        # ... and when the last exchange went through: a run before the stop.
        assert last_ok <= found["last_ok"] <= stopped_at, (last_ok, found, stopped_at)
        since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(found["last_ok"]))
        text = status_report(aio)[2]
        assert any(line.startswith("CRIT") and line.endswith(f"(last ok {since})") for line in text.splitlines())
        # The hourly local preflight fails and names the path in the journal.
        succeeded, journal = timer_run(aio, "libsys-onprem-preflight.service")
        assert not succeeded
        assert any(line.split()[:3] == ["CRIT", "sip2", "stunnel-sip2-sip2"] for line in journal.splitlines()), journal
    finally:
        cloud.check_output("systemctl start peer-sip2-acs.service")
    assert_state(aio, "stunnel-sip2-sip2", "ok", up, 1)
    succeeded, journal = timer_run(aio, "libsys-onprem-preflight.service")
    assert succeeded, journal
    # Only the path checks: no unit, certificate, queue or firewall check in this run.
    assert "stunnel-certificate" not in journal


def test_status_sees_a_firewall_table_go_and_the_loader_bring_it_back() -> None:
    tunnels = podman_host("site-tunnels")
    loaded = 'libsys_onprem_nftables_table_loaded{check="stunnel-firewall",family="inet",table="libsys_stunnel"}'
    assert_state(tunnels, "stunnel-firewall", "ok", loaded, 1)
    tunnels.check_output("nft delete table inet libsys_stunnel")
    try:
        assert_state(tunnels, "stunnel-firewall", "critical", loaded, 0)
    finally:
        tunnels.check_output("systemctl restart libsys-onprem-nftables.service")
    assert_state(tunnels, "stunnel-firewall", "ok", loaded, 1)


def test_status_warns_of_a_certificate_within_its_warning_window() -> None:
    """The institution's certificate of the test PKI is valid for a year: a warning window
    longer than that, set in the inventory, puts it inside; the default takes it out again."""
    aio = podman_host("site-aio")
    expiry = 'libsys_onprem_certificate_expiry_timestamp_seconds{check="stunnel-certificate",'
    expiry += 'path="/etc/stunnel/libsys/tls/institution.crt"}'
    not_after = metrics(aio)[expiry]
    for warn_days, state in ((3650, "warning"), (21, "ok")):
        result = run_ansible_playbook(
            SITE, "--limit", "site-aio", "--tags", "status", extra_vars={"status_certificate_warn_days": warn_days}
        )
        assert result.returncode == 0, result.stdout[-3000:]
        found = assert_state(aio, "stunnel-certificate", state, expiry, not_after)
        assert found["values"]["days_left"] > 300, found
        # The daily check: failed, and the certificate named in the journal, while in the window.
        succeeded, journal = timer_run(aio, "libsys-onprem-certificates.service")
        assert succeeded == (state == "ok"), journal
        tag = {"ok": "OK", "warning": "WARN"}[state]
        assert any(line.split()[:1] == [tag] and "stunnel-certificate" in line.split() for line in journal.splitlines())


def test_status_shows_mail_held_during_a_hub_outage_and_clears() -> None:
    """The campus hub stops: a relayed notice waits in the deferred queue; held by the
    administrator it is a warning; the hub back and the mail released, the queue empties."""
    mail, hub = podman_host("site-mail"), podman_host("site-mail-hub")
    held = 'libsys_onprem_postfix_queue_messages{check="postfix-queue",queue="hold"}'
    assert_state(mail, "postfix-queue", "ok", held, 0)
    hub.check_output("systemctl stop postfix.service")
    try:
        swaks = [
            "swaks", "--server", HOSTS["site-mail"].address, "--port", "25", "--tls", "--timeout", "20",
            "--helo", "relay.vendor.example.org", "--from", "alma@vendor.example.org",
            "--to", "patron@library.example.edu", "--body", "Held during the outage.",
        ]  # fmt: skip
        sent = e2e.in_container(PEERS.vendor_relay, shlex.join(swaks))
        assert sent.returncode == 0, sent.stdout[-2000:]

        def deferred() -> str | None:
            found = check_of(status_report(mail)[1], "postfix-queue")
            return "yes" if found["values"]["messages"]["deferred"] >= 1 else None

        assert e2e.wait_until(deferred, timeout=60, interval=2), "the notice never reached the deferred queue"
        mail.check_output("postsuper -h ALL deferred")
        found = assert_state(mail, "postfix-queue", "warning", held, 1)
        assert "hold" in found["summary"], found
    finally:
        hub.check_output("systemctl start postfix.service")
        mail.check_output("postsuper -H ALL && postqueue -f")

    def empty() -> str | None:
        found = check_of(status_report(mail)[1], "postfix-queue")
        return "yes" if not any(found["values"]["messages"].values()) else None

    assert e2e.wait_until(empty, timeout=90, interval=3), "the released mail never left"
    assert_state(mail, "postfix-queue", "ok", held, 0)


def spf_watch_row(report_dir: Path) -> dict:
    """The SPF watch's row of site-mail's preflight report (JSON), and its Markdown line."""
    rows = json.loads((report_dir / "site-mail.json").read_text())["rows"]
    found = [row for row in rows if row["name"] == "mail-relay-spf-watch"]
    assert len(found) == 1, [row["name"] for row in rows]
    markdown = (report_dir / "site-mail.md").read_text().splitlines()
    lines = [line for line in markdown if "Vendor's SPF include (spf.vendor.example.org)" in line]
    assert len(lines) == 1, markdown
    return dict(found[0], markdown=lines[0])


def test_status_and_preflight_watch_the_vendor_spf_include_against_the_relay_allowlist(tmp_path: Path) -> None:
    """The vendor's DNS lists another relay address in its SPF include: the mail host's status
    warns and names both sides, and so does a preflight run (an optional row); the allowlist is
    left as it is. The record back, the status clears."""
    mail, dns = podman_host("site-mail"), podman_host("site-vendor-relay")
    match = 'libsys_onprem_spf_allowlist_match{check="mail-relay-spf-watch",domain="spf.vendor.example.org"}'
    assert_state(mail, "mail-relay-spf-watch", "ok", match, 1)
    # site.yml's own preflight run, at the end of the converge.
    converged = spf_watch_row(EPHEMERAL / "preflight-report")
    assert (converged["status"], converged["probe"], converged["port"]) == ("ok", "spf", 53), converged
    assert converged["message"] == "the allowlist matches the 1 network of spf.vendor.example.org"
    # The allowlist lives in main.cf (inline maps) and the SMTP table: neither may change.
    allowlist = "sha256sum /etc/postfix/main.cf && nft list table inet libsys_postfix"
    allowlist_before = mail.check_output(allowlist)
    dns.check_output("sed -i 's/ip4:198.51.100.211 /ip4:198.51.100.212 /' /etc/peer-dns.conf")
    dns.check_output("systemctl restart peer-dns.service")
    try:
        found = assert_state(mail, "mail-relay-spf-watch", "warning", match, 0)
        assert "198.51.100.212/32 send, not in the allowlist" in found["summary"], found
        assert "the allowlist has 198.51.100.211/32, no longer in spf.vendor.example.org" in found["summary"]
        # An optional row: the run reports the mismatch and does not fail.
        result = run_ansible_playbook(
            PROJECT_DIR / "playbooks" / "preflight.yml",
            "--limit",
            "site-mail",
            extra_vars={"preflight_report_dir": str(tmp_path)},
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        row = spf_watch_row(tmp_path)
        assert (row["status"], row["ok"], row["required"]) == ("mismatch", False, False), row
        assert row["message"] == (
            "spf.vendor.example.org lets 198.51.100.212/32 send, not in the allowlist; "
            "the allowlist has 198.51.100.211/32, no longer in spf.vendor.example.org"
        )
        assert row["details"]["dns_server"] == "198.51.100.211:53"
        assert "**MISMATCH** (optional): spf.vendor.example.org lets 198.51.100.212/32 send" in row["markdown"]
        assert mail.check_output(allowlist) == allowlist_before
    finally:
        dns.check_output("sed -i 's/ip4:198.51.100.212 /ip4:198.51.100.211 /' /etc/peer-dns.conf")
        dns.check_output("systemctl restart peer-dns.service")
    assert_state(mail, "mail-relay-spf-watch", "ok", match, 1)
