"""mail_relay: real SMTP clients in peer containers talk to the relays; the campus hub (a real
Postfix) stores what arrives. Asserts delivery with DKIM and TLS, the envelope rewriting,
no open relay, TLS policy, queue durability (the outage of side_effect.yml), bounces, the
SMTP AUTH and size limit behaviour, the report and the refusal of bad input."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import (
    bad_input_tests,
    host_variable,
    podman_host,
    run_ansible_playbook,
    stored_messages,
    venv_tool,
    wait_listening,
)

RELAYS = {
    "onprem-mr-deb12": "198.51.100.138",
    "onprem-mr-deb13": "198.51.100.139",
}
DOMAIN = "library.example.edu"
HUB_STORE = "/var/lib/hub-mail"
SCENARIO_DIR = Path(__file__).resolve().parent.parent
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))

vendor = podman_host("onprem-mr-vendor")
outsider = podman_host("onprem-mr-outsider")
hub = podman_host("onprem-mr-hub")


def swaks(client, address: str, *args: str, port: int = 25, tls: bool = True):
    """Run swaks in a peer container; returns the testinfra CommandResult."""
    command = ["swaks", "--server", address, "--port", str(port), "--timeout", "20"]
    if tls:
        command.append("--tls")
    command.extend(args)
    return client.run(shlex.join(command))


def send(
    client,
    address: str,
    sender: str,
    recipient: str,
    *,
    header_from: str | None = None,
    port: int = 25,
    extra: tuple[str, ...] = (),
) -> tuple[str, object]:
    """Send one message with a unique Message-Id; returns (message id, swaks result)."""
    message_id = f"{uuid.uuid4().hex}@molecule.example.org"
    result = swaks(
        client,
        address,
        "--helo",
        "relay.vendor.example.org",
        "--from",
        sender,
        "--to",
        recipient,
        "--header",
        f"Message-Id: <{message_id}>",
        "--header",
        f"From: Library <{header_from or sender}>",
        "--header",
        "Subject: molecule mail_relay test",
        "--body",
        "Your hold request is ready for pickup.\n",
        *extra,
        port=port,
    )
    return message_id, result


# How the hub's pipe(8) delivery writes the null sender of a bounce (its null_sender default).
NULL_SENDER = "MAILER-DAEMON"


def stored(message_id: str, timeout: float = 90) -> list[dict]:
    """The hub's stored deliveries (envelope and path) whose text contains message_id."""
    return stored_messages(hub, HUB_STORE, message_id, timeout)


def dkim_public_key(relay: str, domain: str) -> str:
    selector = "relay13" if relay.endswith("deb13") else "libsys"
    return podman_host(relay).check_output(
        f"openssl pkey -in /etc/opendkim/keys/{domain}/{selector}.private -pubout -outform DER | base64 -w0"
    )


DKIM_VERIFY = (
    "import dkim, sys\n"
    "msg = open(sys.argv[1], 'rb').read()\n"
    "key = sys.argv[2].encode()\n"
    "ok = dkim.verify(msg, dnsfunc=lambda name, timeout=5: b'v=DKIM1; k=rsa; p=' + key)\n"
    "sig = dkim.DKIM(msg)\n"
    "print('valid' if ok else 'invalid')\n"
)


def verify_dkim_on_hub(path: str, public_key: str) -> str:
    return hub.check_output(f"python3 -c {shlex.quote(DKIM_VERIFY)} {path} {public_key}")


@pytest.mark.parametrize("name", sorted(RELAYS))
def test_postfix_and_opendkim_run(name: str) -> None:
    host = podman_host(name)
    assert host.run("postfix status").rc == 0
    assert host.service("opendkim.service").is_running
    # OpenDKIM is the milter of the relay pass only: the public listener, which also takes
    # mail for other dependents (print_proxy's printers), has none.
    assert "opendkim.sock" in host.check_output("postconf -P -h 127.0.0.1:10026/inet/smtpd_milters")
    assert host.check_output("postconf -h smtpd_milters") == ""


@pytest.mark.parametrize("name", sorted(RELAYS))
def test_vendor_mail_arrives_signed_over_tls(name: str) -> None:
    message_id, result = send(vendor, RELAYS[name], f"notices@{DOMAIN}", f"patron@{DOMAIN}")
    assert result.rc == 0, result.stdout + result.stderr
    assert "STARTTLS" in result.stdout
    deliveries = stored(message_id)
    assert len(deliveries) == 1
    delivery = deliveries[0]
    assert delivery["sender"] == f"notices@{DOMAIN}"
    assert delivery["recipient"] == f"patron@{DOMAIN}"
    text = hub.check_output(f"cat {delivery['path']}")
    assert "DKIM-Signature:" in text
    assert f"d={DOMAIN}" in text.replace("\n\t", " ").replace("\n ", " ")
    # Both legs were encrypted: the hub's and the relay's Received headers say so.
    assert text.count("(using TLSv1.") >= 2, text[:2000]
    assert verify_dkim_on_hub(delivery["path"], dkim_public_key(name, DOMAIN)) == "valid"


@pytest.mark.parametrize("name", sorted(RELAYS))
def test_dkim_signature_fails_with_another_key(name: str) -> None:
    """The DKIM check above can fail: the same message does not verify with another key."""
    message_id, result = send(vendor, RELAYS[name], f"notices@{DOMAIN}", f"patron@{DOMAIN}")
    assert result.rc == 0, result.stdout
    delivery = stored(message_id)[0]
    other = next(n for n in RELAYS if n != name)
    assert verify_dkim_on_hub(delivery["path"], dkim_public_key(other, DOMAIN)) == "invalid"


@pytest.mark.parametrize("name", sorted(RELAYS))
def test_foreign_envelope_sender_is_rewritten_to_the_bounce_mailbox(name: str) -> None:
    message_id, result = send(
        vendor, RELAYS[name], "alma-noreply@vendor.example.org", f"patron@{DOMAIN}", header_from=f"notices@{DOMAIN}"
    )
    assert result.rc == 0, result.stdout
    delivery = stored(message_id)[0]
    assert delivery["sender"] == f"bounces@{DOMAIN}"


def test_mail_through_the_vendor_relays_postfix_arrives_signed() -> None:
    """The vendor peer's own Postfix relays (STARTTLS required) to the Debian 12 relay."""
    message_id = f"{uuid.uuid4().hex}@molecule.example.org"
    message = (
        f"From: Library <notices@{DOMAIN}>\nTo: patron@{DOMAIN}\n"
        f"Subject: via vendor postfix\nMessage-Id: <{message_id}>\n\nOverdue reminder.\n"
    )
    vendor.check_output(f"printf %s {shlex.quote(message)} | /usr/sbin/sendmail -f notices@{DOMAIN} patron@{DOMAIN}")
    deliveries = stored(message_id)
    assert len(deliveries) == 1
    text = hub.check_output(f"cat {deliveries[0]['path']}")
    assert "relay.vendor.example.org" in text
    assert verify_dkim_on_hub(deliveries[0]["path"], dkim_public_key("onprem-mr-deb12", DOMAIN)) == "valid"


# Open-relay probes: (client, envelope sender, recipient). None of them may get a 250 for
# RCPT. From the outsider everything is refused; from the vendor's allowed range only
# recipients in mail_relay_recipient_domains, in plain form, are accepted.
PROBES = [
    ("outsider", f"notices@{DOMAIN}", f"patron@{DOMAIN}"),
    ("outsider", f"notices@{DOMAIN}", "victim@outside.example.org"),
    ("outsider", "<>", f"patron@{DOMAIN}"),
    ("outsider", "spoof@outside.example.org", "victim@outside.example.org"),
    ("outsider", f"notices@{DOMAIN}", f"victim%outside.example.org@{DOMAIN}"),
    ("outsider", f"notices@{DOMAIN}", f"outside.example.org!victim@{DOMAIN}"),
    ("outsider", f"notices@{DOMAIN}", f"@{DOMAIN}:victim@outside.example.org"),
    ("outsider", f"notices@{DOMAIN}", f'"victim@outside.example.org"@{DOMAIN}'),
    ("outsider", f"postmaster@{DOMAIN}", "victim@[198.51.100.156]"),
    ("vendor", f"notices@{DOMAIN}", "victim@outside.example.org"),
    ("vendor", "<>", "victim@outside.example.org"),
    ("vendor", "spoof@outside.example.org", "victim@outside.example.org"),
    ("vendor", f"notices@{DOMAIN}", f"victim%outside.example.org@{DOMAIN}"),
    ("vendor", f"notices@{DOMAIN}", f"outside.example.org!victim@{DOMAIN}"),
    ("vendor", f"notices@{DOMAIN}", f"@{DOMAIN}:victim@outside.example.org"),
    ("vendor", f"notices@{DOMAIN}", f'"victim@outside.example.org"@{DOMAIN}'),
    ("vendor", f"notices@{DOMAIN}", f"victim@outside.example.org@{DOMAIN}"),
    ("vendor", f"notices@{DOMAIN}", "victim@[198.51.100.156]"),
    ("vendor", f"notices@{DOMAIN}", f"victim@sub.{DOMAIN}"),
    ("vendor", f"notices@{DOMAIN}", f"victim@{DOMAIN}.outside.example.org"),
    ("vendor", f"notices@{DOMAIN}", "victim@outside.example.org."),
    ("vendor", f"notices@{DOMAIN}", "victim"),
    ("vendor", f"notices@{DOMAIN}", "VICTIM@OUTSIDE.EXAMPLE.ORG"),
]
CLIENTS = {"outsider": outsider, "vendor": vendor}


OUTSIDER = "198.51.100.156"
NFT_SET = "inet libsys_postfix clients_v4"


def connect(client, address: str, port: int) -> object:
    """A bare TCP connection attempt (netcat, 8 s) from a peer container."""
    return client.run(f"nc -v -z -w 8 {address} {port}")


# The controller's own address on the scenario network (the bridge gateway), where sslyze runs.
CONTROLLER = "198.51.100.129"


def through_firewall(address: str):
    """Let one source through the relays' SMTP firewall table for one test (removed again
    afterwards): the outsider, so a test reaches Postfix's own refusal (defence in depth), or
    the controller, which runs sslyze."""
    for name in RELAYS:
        podman_host(name).check_output(f"nft add element {NFT_SET} '{{ {address} }}'")
    try:
        yield
    finally:
        for name in RELAYS:
            podman_host(name).run(f"nft delete element {NFT_SET} '{{ {address} }}'")


@pytest.fixture
def outsider_through_firewall():
    yield from through_firewall(OUTSIDER)


@pytest.fixture
def controller_through_firewall():
    yield from through_firewall(CONTROLLER)


@pytest.mark.parametrize("name", sorted(RELAYS))
def test_outsider_is_dropped_by_the_firewall(name: str) -> None:
    """The outsider's SYN is dropped by the postfix role's nftables table: no 554, no reset,
    the connection attempt times out. The vendor's relay connects to the same ports."""
    ports = [25, 587] if name.endswith("deb13") else [25]
    for port in ports:
        dropped = connect(outsider, RELAYS[name], port)
        assert dropped.rc != 0
        assert "timed out" in dropped.stderr, dropped.stderr
        allowed = connect(vendor, RELAYS[name], port)
        assert allowed.rc == 0, allowed.stderr
    table = podman_host(name).check_output("nft list table inet libsys_postfix")
    assert "198.51.100.144/29" in table
    assert OUTSIDER not in table


@pytest.mark.usefixtures("outsider_through_firewall")
@pytest.mark.parametrize("name", sorted(RELAYS))
def test_no_open_relay(name: str) -> None:
    assert len(PROBES) >= 16
    accepted = []
    for client, sender, recipient in PROBES:
        result = swaks(
            CLIENTS[client],
            RELAYS[name],
            "--helo",
            "probe.example.org",
            "--from",
            sender,
            "--to",
            recipient,
            "--quit-after",
            "RCPT",
        )
        if result.rc == 0:
            accepted.append((client, sender, recipient, result.stdout[-400:]))
    assert accepted == []
    # The probes can fail: the same path accepts an allowed recipient.
    control = swaks(
        vendor, RELAYS[name], "--from", f"notices@{DOMAIN}", "--to", f"patron@{DOMAIN}", "--quit-after", "RCPT"
    )
    assert control.rc == 0, control.stdout


@pytest.mark.usefixtures("outsider_through_firewall")
@pytest.mark.parametrize("name", sorted(RELAYS))
def test_outsider_is_refused_before_any_recipient(name: str) -> None:
    result = swaks(
        outsider,
        RELAYS[name],
        "--from",
        f"notices@{DOMAIN}",
        "--to",
        f"patron@{DOMAIN}",
        "--quit-after",
        "RCPT",
        tls=False,
    )
    assert result.rc != 0
    assert "554" in result.stdout


@pytest.mark.parametrize("name", sorted(RELAYS))
def test_tls_1_1_is_refused_and_tls_1_2_accepted(name: str) -> None:
    base = f"openssl s_client -connect {RELAYS[name]}:25 -starttls smtp -brief"
    # SECLEVEL=0 lets the client offer TLS 1.1, so a refusal comes from the relay.
    old = vendor.run(f"echo QUIT | timeout 20 {base} -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'")
    assert old.rc != 0
    assert "Protocol version: TLSv1.1" not in old.stdout + old.stderr
    new = vendor.run(f"echo QUIT | timeout 20 {base} -tls1_2")
    assert new.rc == 0, new.stderr
    assert "Protocol version: TLSv1.2" in new.stdout + new.stderr


def run_sslyze(address: str, ca_file: Path) -> subprocess.CompletedProcess:
    sslyze = venv_tool("sslyze")
    return subprocess.run(
        [
            str(sslyze),
            "--starttls",
            "smtp",
            "--mozilla_config=intermediate",
            f"--certinfo_ca_file={ca_file}",
            f"{address}:25",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.usefixtures("controller_through_firewall")
def test_sslyze_mozilla_intermediate_compliant() -> None:
    """Debian 12 relay, certificate from the test CA: fully compliant."""
    result = run_sslyze(RELAYS["onprem-mr-deb12"], EPHEMERAL / "pki" / "mail-ca.crt")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "OK - Compliant" in result.stdout


@pytest.mark.usefixtures("controller_through_firewall")
def test_sslyze_self_signed_relay_only_lacks_a_trusted_certificate(tmp_path: Path) -> None:
    """Debian 12 relay with the generated self-signed certificate: protocols, ciphers, curves
    and key are compliant; the only finding is that no CA vouches for the certificate."""
    ca_file = tmp_path / "selfsigned.crt"
    ca_file.write_text(
        podman_host("onprem-mr-deb13").check_output("cat /etc/postfix/libsys/tls/postfix-selfsigned.crt") + "\n"
    )
    result = run_sslyze(RELAYS["onprem-mr-deb13"], ca_file)
    compliance = result.stdout.split("COMPLIANCE AGAINST", 1)[-1]
    findings = [line.strip() for line in compliance.splitlines() if line.strip().startswith("* ")]
    assert findings, result.stdout[-3000:]
    assert all(f.startswith("* certificate_path_validation:") for f in findings), findings


@pytest.mark.parametrize("name", sorted(RELAYS))
def test_outage_messages_delivered_exactly_once(name: str) -> None:
    """side_effect.yml sent 5 messages per relay while the hub was down, then restarted the
    relay (Debian 13: rebooted the container) and brought the hub back."""
    for seq in range(5):
        deliveries = stored(f"outage-{name}-{seq}@molecule.example.org", timeout=120)
        assert len(deliveries) == 1, (seq, deliveries)
    assert podman_host(name).check_output("postqueue -j | wc -l") == "0"


@pytest.mark.parametrize("name", sorted(RELAYS))
def test_hub_5xx_bounces_to_the_envelope_sender(name: str) -> None:
    message_id, result = send(vendor, RELAYS[name], f"notices@{DOMAIN}", f"reject-me@{DOMAIN}")
    assert result.rc == 0, result.stdout  # accepted by the relay, refused by the hub
    bounces = [d for d in stored(message_id) if d["sender"] == NULL_SENDER]
    assert len(bounces) == 1
    assert bounces[0]["recipient"] == f"notices@{DOMAIN}"
    assert "550 5.1.1" in hub.check_output(f"cat {bounces[0]['path']}")


@pytest.mark.parametrize("name", sorted(RELAYS))
def test_bounce_of_a_foreign_sender_comes_home(name: str) -> None:
    message_id, result = send(
        vendor, RELAYS[name], "alma-noreply@vendor.example.org", f"reject-me@{DOMAIN}", header_from=f"notices@{DOMAIN}"
    )
    assert result.rc == 0, result.stdout
    bounces = [d for d in stored(message_id) if d["sender"] == NULL_SENDER]
    assert len(bounces) == 1
    assert bounces[0]["recipient"] == f"bounces@{DOMAIN}"


def test_header_from_policy_require_returns_foreign_from_to_its_sender() -> None:
    """`require` is applied in the relay pass, after the public listener accepted the message
    (that listener also takes print_proxy's mail, which no From policy may touch): the message
    is not relayed, and its envelope sender gets a bounce with the reason at once (a permanent
    refusal, not retried). The bounce itself passes the policy and reaches the hub."""
    message_id, result = send(
        vendor,
        RELAYS["onprem-mr-deb13"],
        f"notices@{DOMAIN}",
        f"patron@{DOMAIN}",
        header_from="someone@outside.example.org",
    )
    assert result.rc == 0, result.stdout
    deliveries = stored(message_id)
    assert [(d["sender"], d["recipient"]) for d in deliveries] == [(NULL_SENDER, f"notices@{DOMAIN}")], deliveries
    bounce = " ".join(hub.check_output(f"cat {deliveries[0]['path']}").split())  # unfolded
    assert "said: 550 5.7.1 The From header must be an address of the institution" in bounce, bounce[-2000:]
    assert podman_host("onprem-mr-deb13").check_output("postqueue -j | wc -l") == "0"


def header(text: str, name: str) -> str:
    """The unfolded value of the first header `name` of a stored message."""
    parsed = email.message_from_string(text, policy=email.policy.compat32)
    value = parsed[name]
    assert value is not None, text[:2000]
    return " ".join(value.split())


# (From header as the vendor sends it, From header expected at the hub). The Debian 12 relay
# rewrites a From outside the institution's domains to notices@ and shows the original.
FROM_REWRITES = [
    (
        '"Circulation Desk" <someone@vendor.example.org>',
        f'"Circulation Desk (someone@vendor.example.org)" <notices@{DOMAIN}>',
    ),
    ("Acquisitions <acq@vendor.example.org>", f'Acquisitions "(acq@vendor.example.org)" <notices@{DOMAIN}>'),
    ("alma@vendor.example.org", f'"alma@vendor.example.org" <notices@{DOMAIN}>'),
    (f"Library <circ@{DOMAIN}>", f"Library <circ@{DOMAIN}>"),
]


@pytest.mark.parametrize(("sent", "expected"), FROM_REWRITES, ids=["quoted", "atoms", "bare", "own-domain"])
def test_foreign_header_from_is_rewritten_and_signed(sent: str, expected: str) -> None:
    """The rewritten From is what OpenDKIM signed (header_checks run in cleanup before the
    milter sees the headers): the signature verifies at the hub with d= the institution's
    domain, and the envelope sender is the bounce mailbox."""
    name = "onprem-mr-deb12"
    message_id = f"{uuid.uuid4().hex}@molecule.example.org"
    result = swaks(
        vendor,
        RELAYS[name],
        "--helo",
        "relay.vendor.example.org",
        "--from",
        "alma-noreply@vendor.example.org",
        "--to",
        f"patron@{DOMAIN}",
        "--header",
        f"Message-Id: <{message_id}>",
        "--header",
        f"From: {sent}",
        "--header",
        "Subject: header From rewriting",
        "--body",
        "Your hold request is ready for pickup.\n",
    )
    assert result.rc == 0, result.stdout
    deliveries = stored(message_id)
    assert len(deliveries) == 1
    assert deliveries[0]["sender"] == f"bounces@{DOMAIN}"
    text = hub.check_output(f"cat {deliveries[0]['path']}")
    assert header(text, "From") == expected
    signature = header(text, "DKIM-Signature").replace(" ", "")
    assert f"d={DOMAIN};" in signature
    assert verify_dkim_on_hub(deliveries[0]["path"], dkim_public_key(name, DOMAIN)) == "valid"


def test_smtp_auth_on_submission() -> None:
    address = RELAYS["onprem-mr-deb13"]
    good = swaks(
        vendor,
        address,
        "--from",
        f"notices@{DOMAIN}",
        "--to",
        f"patron@{DOMAIN}",
        "--auth",
        "PLAIN",
        "--auth-user",
        "alma",
        "--auth-password",
        "molecule-test-only-secret",
        "--quit-after",
        "RCPT",
        port=587,
    )
    assert good.rc == 0, good.stdout
    assert "235 2.7.0" in good.stdout
    bad = swaks(
        vendor,
        address,
        "--from",
        f"notices@{DOMAIN}",
        "--to",
        f"patron@{DOMAIN}",
        "--auth",
        "PLAIN",
        "--auth-user",
        "alma",
        "--auth-password",
        "wrong-password-123",
        "--quit-after",
        "RCPT",
        port=587,
    )
    assert bad.rc != 0
    assert "535" in bad.stdout
    # No AUTH before STARTTLS, and no plaintext at all on 587.
    plain = swaks(vendor, address, "--quit-after", "EHLO", port=587, tls=False)
    assert "AUTH" not in plain.stdout.split("EHLO", 1)[-1]
    plain_mail = swaks(
        vendor,
        address,
        "--from",
        f"notices@{DOMAIN}",
        "--to",
        f"patron@{DOMAIN}",
        "--quit-after",
        "RCPT",
        port=587,
        tls=False,
    )
    assert plain_mail.rc != 0


RATE_SOURCE = "198.51.100.145"


@pytest.fixture(scope="module")
def rate_source():
    """A second address of the vendor peer inside the allowed range but not among the
    scenario's rate-limit exceptions (molecule.yml: 6 connections, 3 messages a minute)."""
    vendor.check_output(f"ip address add {RATE_SOURCE}/27 dev eth0")
    try:
        yield RATE_SOURCE
    finally:
        vendor.run(f"ip address del {RATE_SOURCE}/27 dev eth0")


@pytest.mark.parametrize("name", sorted(RELAYS))
def test_anvil_rate_limits(name: str, rate_source: str) -> None:
    """Where mail_relay_rate_limit_allowed_sources is on (Debian 12), messages beyond the
    per-minute limit get 450 (4.7.1) at MAIL FROM and connections beyond it 421, from a vendor
    address, while an exempt address sends on. By default (Debian 13) the vendor's range is
    exempt: the same seven sessions all pass. Each relay counts for itself."""
    limits = podman_host(name).check_output(
        "postconf -h smtpd_client_message_rate_limit smtpd_client_connection_rate_limit"
    )
    assert limits.split() == ["3", "6"]
    limited = host_variable(name, "mail_relay_rate_limit_allowed_sources", False)
    assert limited is (name == "onprem-mr-deb12")
    replies = []
    for _ in range(7):
        result = swaks(
            vendor,
            RELAYS[name],
            "--local-interface",
            rate_source,
            "--from",
            f"notices@{DOMAIN}",
            "--to",
            f"patron@{DOMAIN}",
            "--quit-after",
            "RCPT",
            tls=False,
        )
        replies.append((result.rc, result.stdout))
    accepted = [rc for rc, _ in replies if rc == 0]
    if not limited:
        assert len(accepted) == 7, [out[-300:] for _, out in replies]
        assert not any(re.search(r"^<[*~]\* 4", out, re.M) for _, out in replies), replies
        return
    assert len(accepted) == 3, [out[-300:] for _, out in replies]
    assert any("450 4.7.1" in out and "too much mail from" in out for _, out in replies), replies[3][1][-600:]
    assert "421 4.7.0" in replies[6][1] and "too many connections" in replies[6][1], replies[6][1][-600:]
    exempt = swaks(
        vendor, RELAYS[name], "--from", f"notices@{DOMAIN}", "--to", f"patron@{DOMAIN}", "--quit-after", "RCPT"
    )
    assert exempt.rc == 0, exempt.stdout[-600:]


def test_smarthost_login_with_sasl() -> None:
    """The Debian 13 relay delivers through the hub's submission port, which relays only
    after SMTP AUTH: the message arrives and the hub's Received header names the login."""
    message_id, result = send(vendor, RELAYS["onprem-mr-deb13"], f"notices@{DOMAIN}", f"patron@{DOMAIN}")
    assert result.rc == 0, result.stdout
    deliveries = stored(message_id)
    assert len(deliveries) == 1
    text = hub.check_output(f"cat {deliveries[0]['path']}")
    assert "(Authenticated sender: relay13@hub.example.edu)" in text, text[:2000]
    # The same port refuses a client without AUTH, so the delivery above needed the login.
    refused = swaks(vendor, "198.51.100.150", "--from", f"notices@{DOMAIN}", "--to", f"patron@{DOMAIN}", port=587)
    assert refused.rc != 0
    assert "554 5.7.1" in refused.stdout, refused.stdout[-600:]
    password_file = podman_host("onprem-mr-deb13").file("/etc/postfix/libsys/mail_relay/relayhost_password")
    assert (password_file.user, password_file.group, password_file.mode) == ("root", "root", 0o600)


def run_playbook(host: str, extra: dict, *options: str) -> subprocess.CompletedProcess:
    """Apply the role (bad_input.yml is the plain role) to one relay with extra variables."""
    return run_ansible_playbook(SCENARIO_DIR / "bad_input.yml", "-l", host, *options, extra_vars=extra)


# A smarthost that offers AUTH but not STARTTLS, on the vendor peer: it logs every command.
FAKE_SMTP_LOG = "/root/fake-smtp.log"
FAKE_SMTP = (
    "import socketserver\n"
    "class Session(socketserver.StreamRequestHandler):\n"
    "    def handle(self):\n"
    "        self.wfile.write(b'220 fake.example.org ESMTP\\r\\n')\n"
    "        for line in self.rfile:\n"
    "            command = line.decode('ascii', 'replace').strip()\n"
    f"            with open('{FAKE_SMTP_LOG}', 'a') as log:\n"
    "                log.write(command + '\\n')\n"
    "            verb = command.upper()[:4]\n"
    "            if verb in ('EHLO', 'HELO'):\n"
    "                self.wfile.write(b'250-fake.example.org\\r\\n250-AUTH PLAIN LOGIN\\r\\n250 8BITMIME\\r\\n')\n"
    "            elif verb == 'QUIT':\n"
    "                self.wfile.write(b'221 bye\\r\\n')\n"
    "                return\n"
    "            else:\n"
    "                self.wfile.write(b'250 ok\\r\\n')\n"
    "socketserver.ThreadingTCPServer.allow_reuse_address = True\n"
    "socketserver.ThreadingTCPServer(('0.0.0.0', 2525), Session).serve_forever()\n"
)


def deferral(host, recipient: str, timeout: float = 90) -> str:
    """The reason Postfix gives for keeping the message to `recipient` in its queue."""
    deadline = time.monotonic() + timeout
    while True:
        for line in host.check_output("postqueue -j").splitlines():
            for entry in json.loads(line).get("recipients", []):
                if entry.get("address") == recipient and entry.get("delay_reason"):
                    return entry["delay_reason"]
        if time.monotonic() > deadline:
            return ""
        time.sleep(3)


@pytest.mark.parametrize("case", ["no-starttls", "wrong-name"])
def test_the_smarthost_login_is_never_sent_without_verified_tls(case: str) -> None:
    """The Debian 13 relay logs in at its smarthost (level secure). A smarthost that offers
    AUTH but no STARTTLS, and the real hub when its certificate does not carry the expected
    name: the mail stays deferred with the reason, and no AUTH reaches either server."""
    name = "onprem-mr-deb13"
    relay = podman_host(name)
    recipient = f"patron-{uuid.uuid4().hex[:8]}@{DOMAIN}"
    if case == "no-starttls":
        extra = {"mail_relay_relayhost": "[198.51.100.144]:2525"}
        subprocess.run(["podman", "exec", "-d", "onprem-mr-vendor", "python3", "-c", FAKE_SMTP], check=True)
        assert wait_listening(vendor, 2525), "the fake smarthost did not start"
        reason = "TLS is required, but was not offered"
    else:
        extra = {"mail_relay_smtp_tls_match": ["wrong.example.edu"]}
        reason = "Server certificate not verified"
    since = hub.check_output("date +%s")
    try:
        applied = run_playbook(name, extra)
        assert applied.returncode == 0, (applied.stdout + applied.stderr)[-3000:]
        _, result = send(vendor, RELAYS[name], f"notices@{DOMAIN}", recipient)
        assert result.rc == 0, result.stdout[-600:]
        assert reason in deferral(relay, recipient)
        if case == "no-starttls":
            commands = vendor.check_output(f"cat {FAKE_SMTP_LOG}").splitlines()
            assert any(c.upper().startswith("EHLO") for c in commands), commands  # it did connect
            assert not any(c.upper().startswith("AUTH") for c in commands), commands
        else:
            log = hub.check_output(f"journalctl --no-pager -o cat --since @{since} -t postfix/submission/smtpd")
            assert re.search(rf"connect from \S*\[{re.escape(RELAYS[name])}\]", log), log[-2000:]  # it did connect
            assert "sasl_username" not in log and "after AUTH" not in log, log[-2000:]
    finally:
        relay.run("postsuper -d ALL deferred")
        vendor.run(f"pkill -f fake.example.org; rm -f {FAKE_SMTP_LOG}")
        restored = run_playbook(name, {})
    assert restored.returncode == 0, (restored.stdout + restored.stderr)[-3000:]


def test_smarthost_password_is_never_printed() -> None:
    """A changed smarthost password in check mode with --diff: the task reports the change,
    but neither the new nor the current password appears in the output."""
    new_secret = f"molecule-new-{uuid.uuid4().hex}"
    result = run_playbook(
        "onprem-mr-deb13", {"mail_relay_relayhost_sasl_password": new_secret}, "--check", "--diff", "-v"
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Write the smarthost login" in output
    assert "changed: [onprem-mr-deb13]" in output.split("Write the smarthost login", 1)[1][:600], output[-3000:]
    assert new_secret not in output
    assert "molecule-test-only-hub-secret" not in output


@pytest.mark.parametrize("name", sorted(RELAYS))
def test_message_size_limit(name: str) -> None:
    limit = int(podman_host(name).check_output("postconf -h message_size_limit"))
    vendor.check_output(f"head -c {limit + 200000} /dev/zero | base64 > /tmp/big.txt")
    _, big = send(vendor, RELAYS[name], f"notices@{DOMAIN}", f"patron@{DOMAIN}", extra=("--attach", "@/tmp/big.txt"))
    assert big.rc != 0
    assert "552" in big.stdout


@pytest.mark.parametrize("name", sorted(RELAYS))
def test_report_on_the_controller(name: str) -> None:
    report = json.loads((EPHEMERAL / "reports" / f"{name}.json").read_text())
    spf = report["spf"]["record"]
    assert spf == f"v=spf1 ip4:{RELAYS[name]} include:spf.vendor.example.org ~all"
    assert report["spf"]["dns_querying_terms"] == 1
    dkim = {entry["domain"]: entry for entry in report["dkim"]}
    assert dkim[DOMAIN]["record"] == "v=DKIM1; k=rsa; p=" + dkim_public_key(name, DOMAIN)
    assert all(len(s) <= 255 for s in dkim[DOMAIN]["strings"])
    assert "".join(dkim[DOMAIN]["strings"]) == dkim[DOMAIN]["record"]
    assert report["dmarc"]["record"].startswith("v=DMARC1; p=none")
    assert (EPHEMERAL / "reports" / f"{name}.md").read_text().count("IN TXT") >= 3


HUB = "198.51.100.150"
SPF_DEB12 = f"v=spf1 ip4:{RELAYS['onprem-mr-deb12']} include:spf.vendor.example.org ~all"


def write_in(container: str, path: str, content: str) -> None:
    subprocess.run(["podman", "exec", "-i", container, "sh", "-c", f"cat > {path}"], input=content.encode(), check=True)


def set_zone(txt: list[str]) -> None:
    zone = {
        DOMAIN: {"TXT": txt, "MX": [[10, "hub.example.edu"]]},
        "example.edu": {"MX": [[10, "hub.example.edu"]]},
        "hub.example.edu": {"A": [HUB]},
    }
    write_in("onprem-mr-hub", "/root/libsys-test-zone.json", json.dumps(zone))


@pytest.fixture
def test_dns():
    """A DNS responder in the hub container (molecule/mail_relay/files/dns_responder.py)."""
    subprocess.run(
        ["podman", "cp", str(SCENARIO_DIR / "files" / "dns_responder.py"), "onprem-mr-hub:/root/dns_responder.py"],
        check=True,
    )
    set_zone([SPF_DEB12])
    hub.check_output("rm -f /root/libsys-test-dns.log")
    hub.check_output(
        "systemd-run --unit=libsys-test-dns python3 /root/dns_responder.py"
        f" /root/libsys-test-zone.json /root/libsys-test-dns.log {HUB}"
    )
    try:
        yield
    finally:
        hub.run("systemctl stop libsys-test-dns.service")


def report(name: str) -> dict:
    return json.loads((EPHEMERAL / "reports" / f"{name}.json").read_text())


@pytest.mark.usefixtures("test_dns")
def test_direct_mx_delivery_spf_comparison_and_firewall_union() -> None:
    """Re-applies the role to the Debian 12 relay three times with a test DNS server on the
    hub (TXT and MX records of the scenario's domains):

    1. direct delivery (no relayhost) and the SPF comparison against a matching TXT record,
       with a second dependent of the shared Postfix whose firewall_sources hold the outsider:
       the firewall table takes the union of the dependents'; the relay, pointed at the test
       DNS for this test only, delivers by MX lookup;
    2. back to the smarthost and to mail_relay alone, the TXT record now differs: reported,
       the play still passes, the other dependent's map is gone and the firewall drops the
       outsider again;
    3. check mode with mail_relay_spf_compare_fail: the difference fails the play.
    """
    name = "onprem-mr-deb12"
    relay = podman_host(name)
    dns = {"mail_relay_spf_compare_dns": True, "mail_relay_spf_dns_server": HUB}
    other = {"name": "other", "client_access": [f"{OUTSIDER}/32 OK"], "firewall_sources": [f"{OUTSIDER}/32"]}
    dependents = {"postfix_dependents": ["{{ mail_relay_postfix_dependent }}", other]}
    original_resolv = relay.check_output("cat /etc/resolv.conf")
    try:
        first = run_playbook(name, {**dns, **dependents, "mail_relay_relayhost": ""})
        assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
        assert relay.check_output("postconf -P -h 127.0.0.1:10026/inet/content_filter") == "libsys-mail_relay:"
        spf = report(name)["spf"]
        assert (spf["matches_dns"], spf["published"], spf["lookup_error"]) == (True, [SPF_DEB12], None)
        # The firewall takes the other dependent's sources too (the union of the dependents').
        assert OUTSIDER in relay.check_output("nft list set inet libsys_postfix clients_v4")
        assert connect(outsider, RELAYS[name], 25).rc == 0

        relay.check_output(f"echo 'nameserver {HUB}' > /etc/resolv.conf")
        message_id, result = send(vendor, RELAYS[name], f"notices@{DOMAIN}", "patron@example.edu")
        assert result.rc == 0, result.stdout
        deliveries = stored(message_id)
        assert [d["recipient"] for d in deliveries] == ["patron@example.edu"]
        # The relay pass's queue id: the second cleanup line of the message.
        queue_id = relay.check_output(
            f"journalctl -o cat | grep -F 'message-id=<{message_id}>' | sed -n 2p | cut -d: -f1"
        )
        assert queue_id, "no log line of the relay pass's cleanup for the message"
        log = relay.check_output(f"journalctl -o cat | grep -F '{queue_id}: to=<patron@example.edu>'")
        assert f"relay=hub.example.edu[{HUB}]:25" in log and "status=sent" in log, log
        assert "MX example.edu" in hub.check_output("cat /root/libsys-test-dns.log")
    finally:
        relay.run(f"printf '%s\\n' {shlex.quote(original_resolv)} > /etc/resolv.conf")

    set_zone(["v=spf1 ip4:192.0.2.99 -all", "unrelated=record"])
    second = run_playbook(name, dns)
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    assert relay.check_output("postconf -P -h 127.0.0.1:10026/inet/content_filter") == f"libsys-mail_relay:[{HUB}]:25"
    assert OUTSIDER not in relay.check_output("postconf -h smtpd_client_restrictions"), (
        "the other dependent is still in"
    )
    spf = report(name)["spf"]
    assert (spf["matches_dns"], spf["published"]) == (False, ["v=spf1 ip4:192.0.2.99 -all"])
    assert "(differs)" in (EPHEMERAL / "reports" / f"{name}.md").read_text()
    assert OUTSIDER not in relay.check_output("nft list set inet libsys_postfix clients_v4")
    assert "timed out" in connect(outsider, RELAYS[name], 25).stderr

    third = run_playbook(name, {**dns, "mail_relay_spf_compare_fail": True}, "--check")
    assert third.returncode != 0
    assert "DNS publishes" in third.stdout + third.stderr, (third.stdout + third.stderr)[-3000:]


# Bad input: case -> (variables, text its failure must contain). All cases run in one
# ansible-playbook run, each on its own alias of the relay (bad_input_tests); each must
# fail in its checks, naming the bad entry, before any change: its recap shows changed=0 and
# the relay's configuration files and services are the same after the run.
BAD_INPUT = {
    "address-out-of-range": ({"mail_relay_allowed_sources": ["198.51.100.300/29"]}, "198.51.100.300/29"),
    "host-bits-set": ({"mail_relay_allowed_sources": ["198.51.100.145/29"]}, "mail_relay_allowed_sources[0]"),
    "dkim-internal-not-a-network": (
        {"mail_relay_dkim_internal_hosts": ["192.0.2.0/24", "not-a-network"]},
        "mail_relay_dkim_internal_hosts[1]",
    ),
    "institution-domain": ({"mail_relay_institution_domain": "library_example"}, "mail_relay_institution_domain"),
    "recipient-domain-space": (
        {"mail_relay_recipient_domains": ["example.edu", "exa mple.edu"]},
        "mail_relay_recipient_domains[1]",
    ),
    "sender-domain-hyphen": ({"mail_relay_sender_domains": ["-bad-.example.edu"]}, "mail_relay_sender_domains[0]"),
    "bounce-address-outside": (
        {"mail_relay_bounce_address": "bounces@outside.example.org"},
        "mail_relay_bounce_address",
    ),
    "dkim-selector": (
        {"mail_relay_dkim_keys": [{"domain": DOMAIN, "selector": "bad_selector!"}]},
        "mail_relay_dkim_keys[0]",
    ),
    "dkim-two-selectors-one-domain": (
        {"mail_relay_dkim_keys": [{"domain": DOMAIN, "selector": "a"}, {"domain": DOMAIN, "selector": "b"}]},
        "mail_relay_dkim_keys[0]",
    ),
    "dkim-unreadable-key": (
        {
            "mail_relay_dkim_keys": [
                {"domain": DOMAIN, "selector": "s1", "private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n"}
            ]
        },
        "private_key is not a readable",
    ),
    "dkim-512-bits": ({"mail_relay_dkim_keys": [{"domain": DOMAIN, "selector": "s1", "bits": 512}]}, "bits"),
    "relayhost-port": ({"mail_relay_relayhost": "[smtp.example.edu]:99999"}, "mail_relay_relayhost"),
    "relayhost-space": ({"mail_relay_relayhost": "smtp example.edu"}, "mail_relay_relayhost"),
    "relayhost-bracket": ({"mail_relay_relayhost": "[smtp.example.edu:25"}, "mail_relay_relayhost"),
    "tls-may-without-opt-in": ({"mail_relay_smtp_tls_security_level": "may"}, "mail_relay_allow_plaintext_fallback"),
    "dane-without-dnssec": (
        {"mail_relay_smtp_tls_security_level": "dane"},
        "dane and dane-only need mail_relay_smtp_dnssec: true",
    ),
    "smarthost-login-encrypt": (
        {
            "mail_relay_relayhost_sasl_username": "relay12",
            "mail_relay_relayhost_sasl_password": "molecule-test-only-secret",
            "mail_relay_smtp_tls_security_level": "encrypt",
        },
        "only with mail_relay_smtp_tls_security_level verify or secure",
    ),
    "spf-eleven-includes": ({"mail_relay_spf_includes": [f"spf{i}.example.org" for i in range(11)]}, "fails the lint"),
    "spf-all-only": ({"mail_relay_spf_mechanisms": ["-all"]}, "fails the lint"),
    "header-from-outside": (
        {"mail_relay_header_from_address": "notices@outside.example.org"},
        "mail_relay_header_from_address",
    ),
    "event-limit-exception-cidr": (
        {"postfix_client_event_limit_exceptions": ["192.0.2.0/33"]},
        "postfix_client_event_limit_exceptions[0]",
    ),
    "missing-certificate": (
        {"postfix_tls_cert_file": "/etc/ssl/missing.crt", "postfix_tls_key_file": "/etc/ssl/missing.key"},
        "/etc/ssl/missing.crt",
    ),
}

STATE = (
    "find /etc/postfix /etc/opendkim /etc/opendkim.conf -type f -print0 | sort -z | xargs -0 sha256sum;"
    " postfix status 2>/dev/null && systemctl is-active opendkim.service"
)


bad_input, test_bad_input_fails_before_any_change, test_bad_input_changes_nothing = bad_input_tests(
    SCENARIO_DIR / "bad_input.yml", "onprem-mr-deb12", BAD_INPUT, STATE
)
