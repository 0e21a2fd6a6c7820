"""postfix: the contract of the shared Postfix base (postfix_dependents), driven by real SMTP.

converge.yml applies the base with the test-only consumer (roles/postfix_test_consumer), which
plugs in with data alone: its client, relay domain and transport to the sink (a real Postfix
that stores what it receives), a sender rewrite, a header check, a second smtpd on port 2525
and its firewall source. The peer sends with swaks; sessions from the hosts' own loopback run
Python's smtplib inside the host. The tests of the consumer come first; then the module fixture
`without_consumer` applies the same play with postfix_dependents empty (the base alone), and the
remaining tests prove that the consumer's listener, firewall source and maps are gone, that
Postfix still answers on loopback, and that the firewall drops the peer again. The tests run in
the order of this file."""

from __future__ import annotations

import json
import shlex
import time
import uuid
from pathlib import Path

import pytest
from conftest import connect_outcome, play_recap, podman_host, run_ansible_playbook, stored_messages

HOSTS = {
    # name: (address on the scenario network, postfix_myhostname)
    "onprem-pfx-deb12": ("198.51.100.234", "pfx12.example.org"),
    "onprem-pfx-deb13": ("198.51.100.235", "pfx13.example.org"),
}
PEER_ADDRESS = "198.51.100.236"
SINK_ADDRESS = "198.51.100.237"
SINK_STORE = "/var/lib/hub-mail"
# The consumer's inputs (molecule.yml).
DOMAIN = "consumer.example.net"
REWRITE_DOMAIN = "app.example.net"
REWRITE_TO = "noreply@consumer.example.net"
REFUSED_SUBJECT = "forbidden_by_consumer"
EXTRA_PORT = 2525
REFUSAL = "550 5.7.1 refused by the postfix_test_consumer policy"
CONVERGE = Path(__file__).resolve().parent.parent / "converge.yml"

peer = podman_host("onprem-pfx-peer")
sink = podman_host("onprem-pfx-sink")


# One SMTP session with smtplib, run inside a host under test: every reply as [code, text],
# "refused" or "timeout" when the connection fails.
SMTP_SESSION = (
    "import json, smtplib, sys\n"
    "a = json.loads(sys.argv[1])\n"
    "steps = {}\n"
    "s = smtplib.SMTP(timeout=10)\n"
    "try:\n"
    "    steps['connect'] = s.connect(a['server'], a['port'])\n"
    "    steps['ehlo'] = s.ehlo('client.example.org')\n"
    "    if 'sender' in a:\n"
    "        steps['mail'] = s.mail(a['sender'])\n"
    "        steps['rcpt'] = s.rcpt(a['recipient'])\n"
    "        if steps['rcpt'][0] == 250 and 'message' in a:\n"
    "            steps['data'] = s.data(a['message'].encode())\n"
    "    s.quit()\n"
    "except ConnectionRefusedError:\n"
    "    steps['connect'] = 'refused'\n"
    "except TimeoutError:\n"
    "    steps['connect'] = 'timeout'\n"
    "print(json.dumps({k: v if isinstance(v, str) else [v[0], v[1].decode()] for k, v in steps.items()}))\n"
)


def smtp_session(name: str, server: str, port: int = 25, **transaction: str) -> dict:
    """Replies of an SMTP session run on host `name` itself (sender, recipient, message)."""
    arguments = json.dumps({"server": server, "port": port, **transaction})
    return json.loads(
        podman_host(name).check_output(f"python3 -c {shlex.quote(SMTP_SESSION)} {shlex.quote(arguments)}")
    )


def message(subject: str, sender: str, recipient: str) -> tuple[str, str]:
    """(Message-Id, RFC 5322 text) of a small message with a unique Message-Id."""
    message_id = f"{uuid.uuid4().hex}@molecule.example.org"
    text = (
        f"From: {sender}\r\nTo: {recipient}\r\nSubject: {subject}\r\nMessage-Id: <{message_id}>\r\n\r\n"
        "Test message of molecule/postfix.\r\n"
    )
    return message_id, text


def swaks(address: str, *args: str, port: int = 25) -> list[str]:
    """Run swaks on the peer; the server's replies, one line each ("<-  250 ..." or "<** 554 ...")."""
    command = ["swaks", "--server", address, "--port", str(port), "--timeout", "20", "--helo", "peer.example.org"]
    result = peer.run(shlex.join([*command, *args]))
    replies = [line for line in result.stdout.splitlines() if line.startswith(("<-  ", "<** "))]
    assert replies, result.stdout + result.stderr
    return replies


def queued_id(reply: str) -> str:
    prefix = "<-  250 2.0.0 Ok: queued as "
    assert reply.startswith(prefix), reply
    return reply[len(prefix) :]


def sink_deliveries(message_id: str, timeout: float = 60) -> list[dict]:
    """The sink's stored deliveries of one Message-Id: envelope, path and the message text."""
    deliveries = stored_messages(sink, SINK_STORE, message_id, timeout)
    return [d | {"text": sink.check_output(f"cat {d['path']}")} for d in deliveries]


def dports(rule: dict) -> list[int]:
    """The destination ports an nftables rule (JSON) matches first: a set, or one port."""
    right = rule["expr"][0]["match"]["right"]
    return sorted(right["set"]) if isinstance(right, dict) else [right]


# --- With the test-only consumer (the state converge.yml and the idempotence step left) ---


@pytest.mark.parametrize("port", [25, EXTRA_PORT])
@pytest.mark.parametrize("name", sorted(HOSTS))
def test_peer_mail_for_the_consumer_domain_lands_at_the_sink_rewritten(name: str, port: int) -> None:
    """relay_domains, transport and client_access let the peer send for the consumer's domain,
    on 25 and on the consumer's own listener; sender_canonical rewrites the envelope sender."""
    address, hostname = HOSTS[name]
    message_id = f"{uuid.uuid4().hex}@molecule.example.org"
    replies = swaks(
        address,
        "--from",
        f"alerts@{REWRITE_DOMAIN}",
        "--to",
        f"patron@{DOMAIN}",
        "--header",
        f"Message-Id: <{message_id}>",
        "--header",
        "Subject: consumer delivery",
        port=port,
    )
    banner = f"ESMTP{' postfix_test_consumer' if port == EXTRA_PORT else ''}"
    assert replies[0] == f"<-  220 {hostname} {banner}"
    assert "<-  250 2.1.5 Ok" in replies
    queue_id = queued_id(replies[-2])
    deliveries = sink_deliveries(message_id)
    assert len(deliveries) == 1
    delivery = deliveries[0]
    assert delivery["sender"] == REWRITE_TO
    assert delivery["recipient"] == f"patron@{DOMAIN}"
    # This host's Postfix passed it on (the queue id swaks was given); the header From stays.
    assert f"by {hostname} (Postfix) with ESMTP id {queue_id}\n" in delivery["text"]
    assert f"\nFrom: alerts@{REWRITE_DOMAIN}\n" in delivery["text"]


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_peer_message_with_the_refused_subject_is_rejected(name: str) -> None:
    """header_checks: the consumer's REJECT rule answers the end of DATA with its text."""
    replies = swaks(
        HOSTS[name][0],
        "--from",
        f"alerts@{REWRITE_DOMAIN}",
        "--to",
        f"patron@{DOMAIN}",
        "--header",
        f"Subject: a {REFUSED_SUBJECT} notice",
    )
    assert replies[-2:] == [f"<** {REFUSAL}", "<-  221 2.0.0 Bye"]


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_peer_may_not_relay_to_a_domain_the_consumer_does_not_list(name: str) -> None:
    replies = swaks(
        HOSTS[name][0],
        "--from",
        f"alerts@{REWRITE_DOMAIN}",
        "--to",
        "victim@elsewhere.example.org",
        "--quit-after",
        "RCPT",
    )
    assert replies[-2:] == ["<** 554 5.7.1 <victim@elsewhere.example.org>: Relay access denied", "<-  221 2.0.0 Bye"]


@pytest.mark.parametrize("port", [25, EXTRA_PORT])
@pytest.mark.parametrize("name", sorted(HOSTS))
def test_firewall_lets_in_the_consumer_source_and_drops_another(name: str, port: int) -> None:
    """firewall_sources and the inet service: the peer reaches 25 and 2525; the sink, in no
    dependent's sources, gets no answer at all (a drop, not a refusal)."""
    address = HOSTS[name][0]
    assert connect_outcome(peer, address, port) == "open"
    assert connect_outcome(sink, address, port) == "timeout"


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_loopback_message_with_the_refused_subject_is_rejected(name: str) -> None:
    """The consumer's header check applies to every client, loopback too (the counterpart of
    the test after the removal)."""
    _, text = message(f"a {REFUSED_SUBJECT} notice", f"alerts@{REWRITE_DOMAIN}", f"patron@[{SINK_ADDRESS}]")
    session = smtp_session(
        name, "127.0.0.1", sender=f"alerts@{REWRITE_DOMAIN}", recipient=f"patron@[{SINK_ADDRESS}]", message=text
    )
    assert session["rcpt"] == [250, "2.1.5 Ok"]
    assert session["data"] == [550, REFUSAL.removeprefix("550 ")]


def test_firewall_off_removes_the_table_and_the_next_run_restores_it() -> None:
    """postfix_firewall false (as a sysadmin types it, the string "false") removes the table's
    file and the live table: the sink, in no dependent's sources, reaches 25. The next run with
    the default loads it again and the sink is dropped again."""
    name = "onprem-pfx-deb13"
    host, address = podman_host(name), HOSTS[name][0]
    table_file = "/etc/libsys-onprem/nftables.d/postfix.nft"
    try:
        off = run_ansible_playbook(CONVERGE, "-l", name, "-e", "postfix_firewall=false")
        assert off.returncode == 0, (off.stdout + off.stderr)[-3000:]
        assert not host.file(table_file).exists
        assert host.run("nft list table inet libsys_postfix").rc != 0
        assert connect_outcome(sink, address, 25) == "open"
    finally:
        on = run_ansible_playbook(CONVERGE, "-l", name)
    assert on.returncode == 0, (on.stdout + on.stderr)[-3000:]
    assert host.file(table_file).exists
    assert connect_outcome(sink, address, 25) == "timeout"


# --- The base alone: the same play with postfix_dependents empty ---


@pytest.fixture(scope="module")
def without_consumer() -> None:
    """Apply converge.yml without the consumer (postfix_dependents: []) to both hosts, once."""
    result = run_ansible_playbook(CONVERGE, extra_vars={"postfix_scenario_with_consumer": False})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for name in HOSTS:
        recap = play_recap(output, name)
        assert recap["failed"] == 0
        # At least main.cf, master.cf, the firewall file and table, and the reload.
        assert recap["changed"] >= 5, output[-3000:]


@pytest.mark.usefixtures("without_consumer")
@pytest.mark.parametrize("name", sorted(HOSTS))
def test_without_consumer_the_peer_gets_no_answer_on_25_and_postfix_answers_loopback(name: str) -> None:
    """The consumer's firewall source is gone; Postfix runs (the drop is the firewall's doing)."""
    assert connect_outcome(peer, HOSTS[name][0], 25) == "timeout"
    session = smtp_session(name, "127.0.0.1")
    assert session["connect"] == [220, f"{HOSTS[name][1]} ESMTP"]
    assert session["ehlo"][0] == 250


@pytest.mark.usefixtures("without_consumer")
@pytest.mark.parametrize("name", sorted(HOSTS))
def test_without_consumer_nothing_listens_on_its_port(name: str) -> None:
    """The consumer's smtpd on 2525 is gone: refused on loopback (which the firewall lets in)
    and from the peer. The SMTP table no longer claims 2525 (it filters only Postfix's own
    listeners), so the peer's connection is refused as before the consumer, not dropped."""
    assert smtp_session(name, "127.0.0.1", port=EXTRA_PORT) == {"connect": "refused"}
    assert connect_outcome(peer, HOSTS[name][0], EXTRA_PORT) == "refused"


@pytest.mark.usefixtures("without_consumer")
@pytest.mark.parametrize("name", sorted(HOSTS))
def test_without_consumer_a_client_no_dependent_lists_is_rejected(name: str) -> None:
    """No open relay: the host's own network address reaches smtpd (through loopback, which the
    firewall lets in) but is not in mynetworks, and no dependent lists it."""
    address = HOSTS[name][0]
    session = smtp_session(name, address, sender=f"root@{HOSTS[name][1]}", recipient="victim@elsewhere.example.org")
    assert session["connect"] == [220, f"{HOSTS[name][1]} ESMTP"]
    assert session["rcpt"] == [554, f"5.7.1 <{name}[{address}]>: Client host rejected: Access denied"]


@pytest.mark.usefixtures("without_consumer")
@pytest.mark.parametrize("name", sorted(HOSTS))
def test_without_consumer_neither_header_check_nor_rewrite_applies(name: str) -> None:
    """The same loopback message that was refused before is accepted and arrives unrewritten."""
    sender = f"alerts@{REWRITE_DOMAIN}"
    message_id, text = message(f"a {REFUSED_SUBJECT} notice", sender, f"patron@[{SINK_ADDRESS}]")
    session = smtp_session(name, "127.0.0.1", sender=sender, recipient=f"patron@[{SINK_ADDRESS}]", message=text)
    assert session["data"][0] == 250, session
    deliveries = sink_deliveries(message_id)
    assert len(deliveries) == 1
    assert deliveries[0]["sender"] == sender
    assert f"\nSubject: a {REFUSED_SUBJECT} notice\n" in deliveries[0]["text"]


@pytest.mark.usefixtures("without_consumer")
@pytest.mark.parametrize("name", sorted(HOSTS))
def test_without_consumer_its_domain_no_longer_goes_to_the_sink(name: str) -> None:
    """The transport is gone: mail for the consumer's domain (accepted from loopback) waits for
    the domain's MX in DNS, which nothing answers here, instead of going to the sink."""
    host = podman_host(name)
    _, text = message("after the removal", f"root@{HOSTS[name][1]}", f"patron@{DOMAIN}")
    session = smtp_session(
        name, "127.0.0.1", sender=f"root@{HOSTS[name][1]}", recipient=f"patron@{DOMAIN}", message=text
    )
    queue_id = session["data"][1].removeprefix("2.0.0 Ok: queued as ")
    deadline = time.monotonic() + 30
    while True:
        queued = [json.loads(line) for line in host.check_output("postqueue -j").splitlines()]
        entry = next((q for q in queued if q["queue_id"] == queue_id), None)
        if (entry and entry["recipients"][0].get("delay_reason")) or time.monotonic() > deadline:
            break
        time.sleep(1)
    host.run_expect([0], f"postsuper -d {queue_id}")
    assert entry is not None, queued
    assert entry["queue_name"] == "deferred"
    assert entry["recipients"] == [
        {
            "address": f"patron@{DOMAIN}",
            "delay_reason": (
                f"Host or domain name not found. Name service error for name={DOMAIN} type=MX: "
                "Host not found, try again"
            ),
        }
    ]


@pytest.mark.usefixtures("without_consumer")
@pytest.mark.parametrize("name", sorted(HOSTS))
def test_without_consumer_the_live_configuration_holds_none_of_its_data(name: str) -> None:
    """A supplement to the behaviour above: main.cf, master.cf and the firewall table."""
    host = podman_host(name)
    main_cf = host.check_output("postconf -n")
    for value in (DOMAIN, REWRITE_DOMAIN, REFUSED_SUBJECT, PEER_ADDRESS, "pfxtest", "postfix_test_consumer"):
        assert value not in main_cf
    assert host.check_output(
        "postconf -h relay_domains transport_maps sender_canonical_maps header_checks smtpd_client_restrictions"
    ).splitlines() == ["", "", "", "", "permit_mynetworks reject"]
    services = [line.split()[:2] for line in host.check_output("postconf -M").splitlines()]
    assert ["2525", "inet"] not in services
    assert ["pfxtest-out", "unix"] not in services
    assert ["smtp", "inet"] in services
    table = json.loads(host.check_output("nft -j list table inet libsys_postfix"))["nftables"]
    elements = [item["set"].get("elem", []) for item in table if "set" in item]
    assert elements == [[], []]
    assert {tuple(dports(item["rule"])) for item in table if "rule" in item} == {(25,)}
