"""mail_relay: real SMTP clients in peer containers talk to the relays; the campus hub (a real
Postfix) stores what arrives. Asserts delivery with DKIM and TLS, the envelope rewriting,
no open relay, TLS policy, queue durability (the outage of side_effect.yml), bounces, the
SMTP AUTH and size limit behaviour, the report and the refusal of bad input."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import podman_host, venv_tool

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


def stored(message_id: str, timeout: float = 90) -> list[dict]:
    """The hub's stored deliveries (envelope + raw message) whose text contains message_id."""
    deadline = time.monotonic() + timeout
    while True:
        found = hub.run(f"grep -l -F {shlex.quote(message_id)} {HUB_STORE}/*.eml")
        if found.rc == 0 or time.monotonic() > deadline:
            break
        time.sleep(2)
    deliveries = []
    for eml in found.stdout.split():
        envelope = json.loads(hub.check_output(f"cat {eml[:-4]}.json"))
        envelope["path"] = eml
        deliveries.append(envelope)
    return deliveries


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
    # The mail_relay fragment made it into the live configuration.
    assert "opendkim.sock" in host.check_output("postconf -h smtpd_milters")


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


def test_sslyze_mozilla_intermediate_compliant() -> None:
    """Debian 12 relay, certificate from the test CA: fully compliant."""
    result = run_sslyze(RELAYS["onprem-mr-deb12"], EPHEMERAL / "pki" / "mail-ca.crt")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "OK - Compliant" in result.stdout


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
    bounces = [d for d in stored(message_id) if d["sender"] in ("", "MAILER-DAEMON")]
    assert len(bounces) == 1
    assert bounces[0]["recipient"] == f"notices@{DOMAIN}"
    assert "550 5.1.1" in hub.check_output(f"cat {bounces[0]['path']}")


@pytest.mark.parametrize("name", sorted(RELAYS))
def test_bounce_of_a_foreign_sender_comes_home(name: str) -> None:
    message_id, result = send(
        vendor, RELAYS[name], "alma-noreply@vendor.example.org", f"reject-me@{DOMAIN}", header_from=f"notices@{DOMAIN}"
    )
    assert result.rc == 0, result.stdout
    bounces = [d for d in stored(message_id) if d["sender"] in ("", "MAILER-DAEMON")]
    assert len(bounces) == 1
    assert bounces[0]["recipient"] == f"bounces@{DOMAIN}"


def test_header_from_policy_require_refuses_foreign_from() -> None:
    _, refused = send(
        vendor,
        RELAYS["onprem-mr-deb13"],
        f"notices@{DOMAIN}",
        f"patron@{DOMAIN}",
        header_from="someone@outside.example.org",
    )
    assert refused.rc != 0
    assert "From header must be an address of the institution" in refused.stdout
    message_id, kept = send(
        vendor,
        RELAYS["onprem-mr-deb12"],
        f"notices@{DOMAIN}",
        f"patron@{DOMAIN}",
        header_from="someone@outside.example.org",
    )
    assert kept.rc == 0, kept.stdout
    assert len(stored(message_id)) == 1


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


# Bad input: (extra vars, text the failure must contain). Each run must fail before any
# change: the play recap shows changed=0 and the relay's configuration files are unchanged.
BAD_INPUT = [
    ({"mail_relay_allowed_sources": ["198.51.100.300/29"]}, "198.51.100.300/29"),
    ({"mail_relay_allowed_sources": ["198.51.100.145/29"]}, "mail_relay_allowed_sources[0]"),
    ({"mail_relay_dkim_internal_hosts": ["192.0.2.0/24", "not-a-network"]}, "mail_relay_dkim_internal_hosts[1]"),
    ({"mail_relay_institution_domain": "library_example"}, "mail_relay_institution_domain"),
    ({"mail_relay_recipient_domains": ["example.edu", "exa mple.edu"]}, "mail_relay_recipient_domains[1]"),
    ({"mail_relay_sender_domains": ["-bad-.example.edu"]}, "mail_relay_sender_domains[0]"),
    ({"mail_relay_bounce_address": "bounces@outside.example.org"}, "mail_relay_bounce_address"),
    ({"mail_relay_dkim_keys": [{"domain": DOMAIN, "selector": "bad_selector!"}]}, "mail_relay_dkim_keys[0]"),
    (
        {"mail_relay_dkim_keys": [{"domain": DOMAIN, "selector": "a"}, {"domain": DOMAIN, "selector": "b"}]},
        "mail_relay_dkim_keys[0]",
    ),
    (
        {
            "mail_relay_dkim_keys": [
                {"domain": DOMAIN, "selector": "s1", "private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n"}
            ]
        },
        "private_key is not a readable",
    ),
    ({"mail_relay_dkim_keys": [{"domain": DOMAIN, "selector": "s1", "bits": 512}]}, "bits"),
    ({"mail_relay_relayhost": "[smtp.example.edu]:99999"}, "mail_relay_relayhost"),
    ({"mail_relay_relayhost": "smtp example.edu"}, "mail_relay_relayhost"),
    ({"mail_relay_relayhost": "[smtp.example.edu:25"}, "mail_relay_relayhost"),
    ({"mail_relay_smtp_tls_security_level": "may"}, "mail_relay_allow_plaintext_fallback"),
    ({"mail_relay_spf_includes": [f"spf{i}.example.org" for i in range(11)]}, "fails the lint"),
    ({"mail_relay_spf_mechanisms": ["-all"]}, "fails the lint"),
    (
        {"postfix_tls_cert_file": "/etc/ssl/missing.crt", "postfix_tls_key_file": "/etc/ssl/missing.key"},
        "/etc/ssl/missing.crt",
    ),
]

STATE = (
    "find /etc/postfix /etc/opendkim /etc/opendkim.conf -type f -print0 | sort -z | xargs -0 sha256sum;"
    " postfix status 2>/dev/null && systemctl is-active opendkim.service"
)


@pytest.mark.parametrize(("extra", "expected"), BAD_INPUT, ids=[str(i) for i in range(len(BAD_INPUT))])
def test_bad_input_fails_before_any_change(extra: dict, expected: str, tmp_path: Path) -> None:
    host = podman_host("onprem-mr-deb12")
    before = host.check_output(STATE)
    extra_file = tmp_path / "bad.json"
    extra_file.write_text(json.dumps(extra))
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    venv_bin = Path(venv_tool("ansible-playbook")).parent
    env = dict(
        os.environ,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        ANSIBLE_COLLECTIONS_PATH=str(SCENARIO_DIR.parent.parent / ".build" / "collections"),
    )
    result = subprocess.run(
        [
            str(venv_bin / "ansible-playbook"),
            "-i",
            str(inventory),
            "-l",
            "onprem-mr-deb12",
            "-e",
            f"@{extra_file}",
            str(SCENARIO_DIR / "bad_input.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert expected in output, output[-3000:]
    assert "changed=0" in output, output[-3000:]
    assert host.check_output(STATE) == before
