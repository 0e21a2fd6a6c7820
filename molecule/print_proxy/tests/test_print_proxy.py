"""print_proxy: the vendor's relay (a peer container) sends real mail with swaks to the print
proxies; CUPS prints to cups-pdf queues and the tests read the PDFs back with pdftotext, and
to a network printer peer over AppSocket (socket://, port 9100), IPP (ipp://, ippeveprinter)
and LPD (lpd://, RFC 1179), which keep the jobs they receive. Covers HTML slips, PDF pass-through,
mailbox mode over IMAPS from the campus peer and the IMAPS firewall, the hostile corpus, the
handler's size, part-count and decoded-size limits, CUPS failures leaving mail deferred, the
listening sockets, the status command (printed, failed and mailbox deliveries) and bad input."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import bad_input_tests, podman_host, run_ansible_playbook, wait_listening

HOSTS = {
    "onprem-pp-deb12": "198.51.100.170",
    "onprem-pp-deb13": "198.51.100.171",
}
CIRCDESK = "circdesk-printer@print.library.example.edu"
ILL = "ill-printer@print.library.example.edu"
RESERVES = "reserves-printer@print.library.example.edu"
STACKS = "stacks-printer@print.library.example.edu"  # socket://198.51.100.165:9100
ANNEX = "annex-printer@print.library.example.edu"  # ipp://198.51.100.165:8631/ipp/print
BINDERY = "bindery-printer@print.library.example.edu"  # lpd://198.51.100.165/bindery
PASSWORDS = {ILL: "molecule-test-only-ill-secret", RESERVES: "molecule-test-only-reserves-secret"}
VENDOR_SENDER = "alma@vendor.example.org"
PDF_DIR = "/var/spool/cups-pdf/libsys-print"
DEAD_LETTER = "/var/lib/libsys-print-proxy/dead-letter"
SCENARIO_DIR = Path(__file__).resolve().parent.parent

vendor = podman_host("onprem-pp-vendor")
outsider = podman_host("onprem-pp-outsider")
# The network printer, also the campus host of the print-proxy software that reads IMAPS.
printer_peer = podman_host("onprem-pp-printer")
PEER_JOBS = "/var/lib/peer-printer"


def token() -> str:
    return "SLIP" + uuid.uuid4().hex[:12].upper()


def make_pdf(text: str) -> bytes:
    """A small valid one-page PDF showing `text` (for attachments)."""
    stream = f"BT /F1 24 Tf 72 700 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def message(recipient: str, subject: str, sender: str = VENDOR_SENDER) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Library <{sender}>"
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Message-Id"] = f"<{uuid.uuid4().hex}@molecule.example.org>"
    return msg


def html_slip(recipient: str, text: str) -> EmailMessage:
    msg = message(recipient, "Request slip")
    msg.set_content(f"Request slip {text}")
    msg.add_alternative(
        "<!DOCTYPE html><html><body><h1>Request slip</h1>"
        f"<p>Item ready for pickup: <b>{text}</b></p>"
        '<img src="http://198.51.100.188:8080/logo.png"></body></html>',
        subtype="html",
    )
    return msg


def pdf_slip(recipient: str, body_text: str, pdf_text: str) -> EmailMessage:
    """A transit slip as a PDF attachment showing pdf_text, with a short body."""
    msg = message(recipient, "Transit slip")
    msg.set_content(f"See the attached slip {body_text}")
    msg.add_attachment(make_pdf(pdf_text), maintype="application", subtype="pdf", filename="transit-slip.pdf")
    return msg


def send(client, host: str, msg, sender: str = VENDOR_SENDER, recipient: str | None = None):
    """Send the message's bytes with swaks from a peer container; returns the result."""
    raw = msg if isinstance(msg, bytes) else msg.as_bytes()
    path = f"/root/msg-{uuid.uuid4().hex}.eml"
    subprocess.run(["podman", "exec", "-i", client.backend.name, "sh", "-c", f"cat > {path}"], input=raw, check=True)
    result = swaks_file(client, host, path, recipient or str(msg["To"]), sender=sender)
    client.run(f"rm -f {path}")
    return result


def swaks_file(client, host: str, path: str, recipient: str, *, sender: str = VENDOR_SENDER, timeout: int = 120):
    """Send the message in the peer's file `path` with swaks over SMTP+STARTTLS."""
    command = ["swaks", "--server", HOSTS[host], "--timeout", str(timeout), "--tls"]
    command += ["--helo", "relay.vendor.example.org", "--from", sender, "--to", recipient, "--data", f"@{path}"]
    return client.run(shlex.join(command))


def vendor_big_pdf_message(path: str, payload_mb: int, msgid: str) -> int:
    """Write, on the vendor peer, a message for circdesk whose only part is a base64 "PDF" of
    payload_mb MiB (random bytes after %PDF-); returns the file's size."""
    vendor.check_output(
        'python3 -c "import base64, os, sys; '
        "sys.stdout.write('From: alma@vendor.example.org\\r\\nTo: " + CIRCDESK + "\\r\\n"
        "Subject: big\\r\\nMessage-Id: " + msgid + "\\r\\nMIME-Version: 1.0\\r\\n"
        "Content-Type: application/pdf\\r\\nContent-Transfer-Encoding: base64\\r\\n\\r\\n'); "
        f"data = base64.encodebytes(b'%PDF-1.4 ' + os.urandom({payload_mb} * 1024 * 1024)).decode(); "
        'sys.stdout.write(data.replace(chr(10), chr(13) + chr(10)))" > ' + path
    )
    return int(vendor.check_output(f"stat -c %s {path}"))


def dead_lettered(host, msgid: str, reason: str) -> None:
    """The handler bounced the message (journal line with the reason) and kept it."""
    line = journal_line(host, msgid)
    assert "outcome=rejected" in line and reason in line, line
    kept = host.run(f"grep -rlF {shlex.quote(msgid)} {DEAD_LETTER}/new")
    assert kept.rc == 0 and kept.stdout.strip(), "the bounced message is not in the dead-letter Maildir"


def refused_with(result, code: str) -> bool:
    """swaks saw this SMTP error reply (`<**` in clear text, `<~*` inside TLS)."""
    return result.rc != 0 and re.search(r"^<[*~]\* " + re.escape(code), result.stdout, re.M) is not None


def wait_for(fetch, done, timeout: float):
    """Call fetch() every 3 s until done(its result) or the time is up; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(3)


def printed_with(host, text: str, timeout: float = 150) -> list[str]:
    """The cups-pdf output files whose text contains `text` (waits for them to appear)."""
    script = (
        f'for f in {PDF_DIR}/*.pdf; do [ -e "$f" ] || continue; '
        f'pdftotext -q "$f" - | grep -q {shlex.quote(text)} && echo "$f"; done; true'
    )
    return wait_for(lambda: host.check_output(script).split(), bool, timeout)


def journal_line(host, msgid: str, timeout: float = 60) -> str:
    command = f"journalctl -t libsys-print-proxy --no-pager -o cat | grep -F {shlex.quote(msgid)} || true"
    return wait_for(lambda: host.check_output(command), str.strip, timeout)


@pytest.mark.parametrize("name", HOSTS)
def test_services_running_and_discovery_off(name: str) -> None:
    host = podman_host(name)
    for unit in ("postfix.service", "cups.service", "dovecot.service"):
        assert host.service(unit).is_running, unit
    assert host.run("systemctl is-enabled cups-browsed.service").stdout.strip() == "masked"
    assert not host.package("cups-browsed").is_installed


@pytest.mark.parametrize("name", HOSTS)
def test_listeners_cups_loopback_only_imaps_only(name: str) -> None:
    host = podman_host(name)
    udp = host.check_output("ss -lnuH")
    assert ":631 " not in udp, udp
    tcp = [line.split()[3] for line in host.check_output("ss -lntH").splitlines()]
    cups = [addr for addr in tcp if addr.endswith(":631")]
    assert cups, tcp
    assert all(addr.startswith(("127.0.0.1:", "[::1]:")) for addr in cups), cups
    assert any(addr.endswith(":993") for addr in tcp), tcp
    assert not any(addr.endswith((":143", ":110", ":995")) for addr in tcp), tcp
    # And from the network: CUPS and plain IMAP are not reachable, IMAPS is (from the campus).
    assert printer_peer.run(f"nc -z -w 3 {HOSTS[name]} 631").rc != 0
    assert printer_peer.run(f"nc -z -w 3 {HOSTS[name]} 143").rc != 0
    assert printer_peer.run(f"nc -z -w 3 {HOSTS[name]} 993").rc == 0


@pytest.mark.parametrize("name", HOSTS)
def test_imaps_offers_only_mozilla_intermediate_groups(name: str) -> None:
    """IMAPS agrees on X25519 and refuses a client that offers only groups outside Mozilla's
    intermediate list (X448, P-521, ffdhe2048), which OpenSSL would accept by default."""

    def handshake(groups: str):
        return printer_peer.run(f"openssl s_client -connect {HOSTS[name]}:993 -groups {groups} -brief </dev/null")

    agreed = handshake("X25519")
    assert agreed.rc == 0 and "X25519" in agreed.stdout + agreed.stderr, agreed.stdout + agreed.stderr
    for groups in ("X448", "secp521r1", "ffdhe2048"):
        refused = handshake(groups)
        assert refused.rc != 0, (groups, refused.stdout + refused.stderr)


@pytest.mark.parametrize("name", HOSTS)
@pytest.mark.parametrize("client", ["onprem-pp-outsider", "onprem-pp-vendor"])
def test_imaps_dropped_for_sources_outside_the_campus(name: str, client: str) -> None:
    """The role's nftables table drops 993 from everyone outside print_proxy_imap_allowed_sources
    (the campus 198.51.100.160/29): the SYN is unanswered (timeout), not refused."""
    result = podman_host(client).run(f"nc -v -z -w 5 {HOSTS[name]} 993")
    assert result.rc != 0, result.stdout + result.stderr
    assert "timed out" in result.stderr, result.stderr
    # The loaded table is the role's, and Dovecot still listens: the drop is the firewall's.
    host = podman_host(name)
    assert "tcp dport 993 drop" in host.check_output("nft list table inet libsys_print_proxy")
    assert any(line.split()[3].endswith(":993") for line in host.check_output("ss -lntH").splitlines())


def test_imap_firewall_off_removes_the_table_and_the_next_run_restores_it() -> None:
    """print_proxy_imap_firewall false removes the table file and the live table (nftables
    table_absent), so the outsider reaches IMAPS; the next run with the default renders and
    loads the table again, and the outsider times out again. The value is given as a sysadmin
    types it, `-e print_proxy_imap_firewall=false`: the string "false", which must not count as
    true."""
    name = "onprem-pp-deb13"
    host, outsider = podman_host(name), podman_host("onprem-pp-outsider")
    table_file = "/etc/libsys-onprem/nftables.d/print_proxy.nft"
    try:
        off = run_ansible_playbook(SCENARIO_DIR / "converge.yml", "-l", name, "-e", "print_proxy_imap_firewall=false")
        output = off.stdout + off.stderr
        assert off.returncode == 0, output[-3000:]
        assert "Remove the table file" in output and "Unload the table" in output, output[-3000:]
        assert not host.file(table_file).exists
        assert host.run("nft list table inet libsys_print_proxy").rc != 0
        assert outsider.run(f"nc -z -w 5 {HOSTS[name]} 993").rc == 0
    finally:
        on = run_ansible_playbook(SCENARIO_DIR / "converge.yml", "-l", name)
    assert on.returncode == 0, (on.stdout + on.stderr)[-3000:]
    assert host.file(table_file).exists
    assert "tcp dport 993 drop" in host.check_output("nft list table inet libsys_print_proxy")
    result = outsider.run(f"nc -v -z -w 5 {HOSTS[name]} 993")
    assert result.rc != 0 and "timed out" in result.stderr, result.stderr


# Where html_slip's remote image points: a listener on the outsider that logs each client's
# address (started by the image_listener fixture).
IMAGE_LOG = "/root/image-listener.log"
IMAGE_LISTENER = (
    "import socket\n"
    "server = socket.socket()\n"
    "server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "server.bind(('0.0.0.0', 8080))\n"
    "server.listen(16)\n"
    "while True:\n"
    "    client, address = server.accept()\n"
    f"    with open('{IMAGE_LOG}', 'a') as log:\n"
    "        log.write(address[0] + '\\n')\n"
    "    client.close()\n"
)


@pytest.fixture(scope="module")
def image_listener():
    subprocess.run(["podman", "exec", "-d", "onprem-pp-outsider", "python3", "-c", IMAGE_LISTENER], check=True)
    assert wait_listening(outsider, 8080), "the image listener did not start"
    yield IMAGE_LOG
    outsider.run(f"pkill -f {IMAGE_LOG}; rm -f {IMAGE_LOG}")


@pytest.mark.parametrize("name", HOSTS)
def test_html_slip_prints_as_pdf_with_its_text(name: str, image_listener: str) -> None:
    host = podman_host(name)
    # The host can reach the slip's remote image: the listener sees this connection...
    reach = host.run("python3 -c 'import socket; socket.create_connection((\"198.51.100.188\", 8080), 5)'")
    assert reach.rc == 0, reach.stderr
    seen = wait_for(lambda: outsider.check_output(f"cat {image_listener}").split(), lambda a: HOSTS[name] in a, 10)
    assert HOSTS[name] in seen, seen
    outsider.check_output(f": > {image_listener}")
    text = token()
    result = send(vendor, name, html_slip(CIRCDESK, text))
    assert result.rc == 0, result.stdout + result.stderr
    files = printed_with(host, text)
    assert len(files) == 1, files
    info = host.check_output(f"pdfinfo {shlex.quote(files[0])}")
    assert "letter" in info.lower(), info  # the printer's paper_size: Letter
    assert "Request slip" in host.check_output(f"pdftotext -q {shlex.quote(files[0])} -")
    # ...and none while the slip was rendered: the renderer fetched nothing.
    assert HOSTS[name] not in outsider.check_output(f"cat {image_listener}").split()
    # cups-pdf's output is for the job's user (the handler's) only: no other local user reads it.
    assert host.check_output(f"stat -c '%U %a' {shlex.quote(files[0])}") == "libsys-print 600"
    assert host.run(f"runuser -u nobody -- cat {shlex.quote(files[0])}").rc != 0


@pytest.mark.parametrize("name", HOSTS)
def test_pdf_attachment_prints_as_itself(name: str) -> None:
    host = podman_host(name)
    body_text, pdf_text = token(), token()
    result = send(vendor, name, pdf_slip(CIRCDESK, body_text, pdf_text))
    assert result.rc == 0, result.stdout + result.stderr
    files = printed_with(host, pdf_text)
    assert len(files) == 1, files
    assert re.search(r"^Pages:\s+1$", host.check_output(f"pdfinfo {shlex.quote(files[0])}"), re.M)
    # Only the PDF printed: the body of a mail with PDF attachments is not printed.
    assert printed_with(host, body_text, timeout=5) == []


def imap_fetch(host: str, user: str, password: str, text: str, cafile: str | None) -> str:
    """Log in over IMAPS from the campus peer and return the INBOX messages containing text."""
    verify = (
        f"ctx = ssl.create_default_context(cafile={cafile!r})"
        if cafile
        else "ctx = ssl.create_default_context(cadata=ssl.get_server_certificate((HOST, 993)))\n"
        "ctx.check_hostname = False"
    )
    script = f"""
import imaplib, ssl, sys
HOST = {HOSTS[host]!r}
{verify}
ctx.minimum_version = ssl.TLSVersion.TLSv1_2
imap = imaplib.IMAP4_SSL(HOST, 993, ssl_context=ctx)
imap.login({user!r}, sys.stdin.read())
imap.select("INBOX", readonly=True)
typ, data = imap.search(None, "BODY", {text!r})
for num in data[0].split():
    print(imap.fetch(num, "(RFC822)")[1][0][1].decode(errors="replace"))
imap.logout()
"""
    path = f"/root/imap-{uuid.uuid4().hex}.py"
    subprocess.run(
        ["podman", "exec", "-i", "onprem-pp-printer", "sh", "-c", f"cat > {path}"], input=script.encode(), check=True
    )
    result = subprocess.run(
        ["podman", "exec", "-i", "onprem-pp-printer", "python3", path],
        input=password.encode(),
        capture_output=True,
        check=False,
    )
    return result.stdout.decode() + result.stderr.decode()


def wait_imap(name: str, user: str, text: str) -> str:
    cafile = "/etc/ssl/libsys-test/print-ca.crt" if name.endswith("deb12") else None
    return wait_for(lambda: imap_fetch(name, user, PASSWORDS[user], text, cafile), lambda found: text in found, 90)


@pytest.mark.parametrize("name", HOSTS)
def test_mailbox_mode_mail_is_readable_over_imaps(name: str) -> None:
    text = token()
    result = send(vendor, name, html_slip(ILL, text))
    assert result.rc == 0, result.stdout + result.stderr
    found = wait_imap(name, ILL, text)
    assert text in found, found
    # Nothing printed for a mailbox-only printer.
    assert printed_with(podman_host(name), text, timeout=5) == []
    # A wrong password is refused.
    refused = imap_fetch(
        name, ILL, "wrong-password-123", text, "/etc/ssl/libsys-test/print-ca.crt" if name.endswith("deb12") else None
    )
    assert "AUTHENTICATIONFAILED" in refused or "authentication failed" in refused.lower(), refused


@pytest.mark.parametrize("name", HOSTS)
def test_both_mode_prints_and_keeps_a_copy(name: str) -> None:
    text = token()
    result = send(vendor, name, html_slip(RESERVES, text))
    assert result.rc == 0, result.stdout + result.stderr
    assert len(printed_with(podman_host(name), text)) == 1
    assert text in wait_imap(name, RESERVES, text)


def peer_jobs_with(name: str, kind: str, text: str, timeout: float = 150) -> list[tuple[str, bytes]]:
    """The jobs the printer peer kept in PEER_JOBS/kind (socket, ipp or lpd) whose text contains
    `text`, read on the print proxy `name`: PDF with pdftotext, PostScript through Ghostscript
    (pdfwrite) and pdftotext. Waits for them to appear."""
    extract = (
        'cat > /tmp/peer-job; if head -c 4 /tmp/peer-job | grep -q "%!PS"; then '
        "gs -q -dSAFER -dBATCH -dNOPAUSE -sDEVICE=pdfwrite -sOutputFile=/tmp/peer-job.pdf /tmp/peer-job; "
        "else cp /tmp/peer-job /tmp/peer-job.pdf; fi; pdftotext -q /tmp/peer-job.pdf -"
    )
    seen: dict[str, bool] = {}

    def jobs() -> list[tuple[str, bytes]]:
        found = []
        for path in printer_peer.check_output(f"find {PEER_JOBS}/{kind} -type f ! -name '.*'").split():
            data = subprocess.run(
                ["podman", "exec", "onprem-pp-printer", "cat", path], capture_output=True, check=False
            ).stdout
            if path not in seen:
                text_of = subprocess.run(
                    ["podman", "exec", "-i", name, "sh", "-c", extract], input=data, capture_output=True, check=False
                ).stdout.decode(errors="replace")
                if text in text_of or b"%%EOF" in data[-64:]:  # a complete job: its answer is final
                    seen[path] = text in text_of
            if seen.get(path):
                found.append((path, data))
        return found

    return wait_for(jobs, bool, timeout)


# Queues with the generic PostScript driver: stacks over AppSocket/JetDirect, bindery over LPD
# (RFC 1179); the peer keeps what each protocol delivered.
POSTSCRIPT_PRINTERS = [
    pytest.param("stacks", STACKS, "socket://198.51.100.165:9100", "socket", id="socket"),
    pytest.param("bindery", BINDERY, "lpd://198.51.100.165/bindery", "lpd", id="lpd"),
]


@pytest.mark.parametrize("name", HOSTS)
@pytest.mark.parametrize(("queue", "address", "device_uri", "kind"), POSTSCRIPT_PRINTERS)
def test_slip_to_a_network_printer_arrives_as_postscript(
    name: str, queue: str, address: str, device_uri: str, kind: str
) -> None:
    assert device_uri in podman_host(name).check_output(f"lpstat -v {queue}")
    text = token()
    result = send(vendor, name, html_slip(address, text))
    assert result.rc == 0, result.stdout + result.stderr
    jobs = peer_jobs_with(name, kind, text)
    assert len(jobs) == 1, [path for path, _ in jobs]
    data = jobs[0][1]
    assert data.startswith(b"%!PS-Adobe-3.0"), data[:80]
    assert b"%%EOF" in data[-1024:], data[-200:]
    # Nothing went to the cups-pdf queues.
    assert printed_with(podman_host(name), text, timeout=5) == []


@pytest.mark.parametrize("name", HOSTS)
def test_slip_to_an_ipp_printer_arrives_as_pdf(name: str) -> None:
    """annex: ipp://198.51.100.165:8631/ipp/print (ippeveprinter, model everywhere)."""
    host = podman_host(name)
    assert "ipp://198.51.100.165:8631/ipp/print" in host.check_output("lpstat -v annex")
    result = send(vendor, name, pdf_slip(ANNEX, token(), pdf_text := token()))
    assert result.rc == 0, result.stdout + result.stderr
    jobs = peer_jobs_with(name, "ipp", pdf_text)
    assert len(jobs) == 1, [path for path, _ in jobs]
    assert jobs[0][1].startswith(b"%PDF-"), jobs[0][1][:80]
    # And an HTML slip, rendered on the proxy, arrives there too.
    text = token()
    assert send(vendor, name, html_slip(ANNEX, text)).rc == 0
    assert len(peer_jobs_with(name, "ipp", text)) == 1


@pytest.mark.parametrize("name", HOSTS)
def test_hostile_attachment_names_run_nothing_and_escape_nothing(name: str) -> None:
    host = podman_host(name)
    host.run("rm -f /tmp/pwn; touch /tmp/molecule-marker")
    names = ["$(touch /tmp/pwn).pdf", "../../x.pdf", "-o.pdf", "`touch /tmp/pwn`;.pdf"]
    texts = []
    for filename in names:
        text = token()
        texts.append(text)
        msg = message(CIRCDESK, f"$(touch /tmp/pwn) {filename}")
        msg.set_content("hostile names")
        msg.add_attachment(make_pdf(text), maintype="application", subtype="pdf", filename=filename)
        result = send(vendor, name, msg)
        assert result.rc == 0, result.stdout + result.stderr
    for text in texts:
        assert len(printed_with(host, text)) == 1, text
    assert not host.file("/tmp/pwn").exists  # noqa: S108 - what the hostile names try to create
    escaped = host.run(
        "find / -xdev -newer /tmp/molecule-marker \\( -name x.pdf -o -name -o.pdf -o -name '*touch*' \\) -print"
    )
    assert escaped.stdout.strip() == "", escaped.stdout


@pytest.mark.parametrize("name", HOSTS)
def test_60_mb_attachment_is_refused_with_5xx(name: str) -> None:
    """Above the instance's message_size_limit (25 MB): refused at SMTP time."""
    path = "/root/big.eml"
    assert vendor_big_pdf_message(path, 45, f"<{uuid.uuid4().hex}@molecule.example.org>") > 60 * 1000 * 1000
    result = swaks_file(vendor, name, path, CIRCDESK, timeout=300)
    vendor.run(f"rm -f {path}")
    assert refused_with(result, "552"), result.stdout[-600:]


@pytest.mark.parametrize("name", HOSTS)
def test_message_above_the_handler_size_limit_is_bounced_unread(name: str) -> None:
    """Between the handler's limit (print_proxy_max_message_size, 10 MiB) and the instance's:
    accepted, then bounced by pipe(8) (size=) without running the handler: nothing printed,
    no handler journal line."""
    host = podman_host(name)
    path, msgid = "/root/eleven.eml", f"<{uuid.uuid4().hex}@molecule.example.org>"
    size = vendor_big_pdf_message(path, 8, msgid)
    assert 10 * 1024 * 1024 < size < 25 * 1024 * 1024, size
    result = swaks_file(vendor, name, path, CIRCDESK)
    vendor.run(f"rm -f {path}")
    assert result.rc == 0, result.stdout[-600:]
    queue_id = re.search(r"queued as ([0-9A-Za-z]+)", result.stdout).group(1)
    command = f"journalctl --no-pager -o cat -t postfix/pipe | grep -F {queue_id}: || true"
    log = wait_for(lambda: host.check_output(command), lambda log: "status=" in log, 120)
    assert f"to=<{CIRCDESK}>" in log and "relay=libsys-print_proxy" in log, log
    assert "dsn=5.2.3" in log and "status=bounced (message too large)" in log, log
    assert journal_line(host, msgid, timeout=5) == ""


def multipart_message(msgid: str, parts: list[str], attachment: tuple[str, bytes] | None = None) -> bytes:
    """A multipart/mixed message for circdesk with one text/plain part per entry of parts and
    optionally one application/pdf attachment (file name, data) with a hostile file name."""
    msg = message(CIRCDESK, "$(touch /tmp/pwn-limits) parts")
    msg.replace_header("Message-Id", msgid)
    msg.set_content(parts[0])
    msg.make_mixed()
    for text in parts[1:]:
        extra = EmailMessage()
        extra.set_content(text)
        msg.attach(extra)
    if attachment:
        msg.add_attachment(attachment[1], maintype="application", subtype="pdf", filename=attachment[0])
    return msg.as_bytes()


def too_many_parts(msgid: str, text: str) -> bytes:
    """60 text parts, more than print_proxy_max_mime_parts (50)."""
    return multipart_message(msgid, [f"part {number} {text}" for number in range(60)])


def too_much_decoded(msgid: str, text: str) -> bytes:
    """A 1.5 MiB PDF, more than print_proxy_max_decoded_size (1 MiB in this scenario), in a
    message far below the message size limit (10 MiB)."""
    pdf = make_pdf(text) + b"%" + os.urandom(1536 * 1024).hex().encode()[: 1536 * 1024]
    return multipart_message(msgid, [f"body {text}"], ("$(touch /tmp/pwn-limits).pdf", pdf))


@pytest.mark.parametrize("name", HOSTS)
@pytest.mark.parametrize(
    ("build", "reason"),
    [(too_many_parts, "more than 50 MIME parts"), (too_much_decoded, "decoded content larger than the limit")],
    ids=["mime-parts", "decoded-size"],
)
def test_handler_limits_bounce_and_keep_the_message(name: str, build, reason: str) -> None:
    """Over a handler limit: bounced (65) with the reason, kept in the dead-letter Maildir,
    nothing printed, nothing from the hostile subject or file name run."""
    host = podman_host(name)
    text = token()
    msgid = f"<{uuid.uuid4().hex}@molecule.example.org>"
    raw = build(msgid, text)
    assert len(raw) < 10 * 1024 * 1024
    result = send(vendor, name, raw, recipient=CIRCDESK)
    assert result.rc == 0, result.stdout
    dead_lettered(host, msgid, reason)
    assert printed_with(host, text, timeout=5) == []
    assert not host.file("/tmp/pwn-limits").exists  # noqa: S108 - what the hostile names try


def nested_message(msgid: str, text: str, depth: int) -> bytes:
    """A message for circdesk with `depth` multipart/mixed levels around one text part."""
    lines = [
        f"From: {VENDOR_SENDER}",
        f"To: {CIRCDESK}",
        "Subject: nested",
        f"Message-Id: {msgid}",
        "MIME-Version: 1.0",
    ]
    for level in range(depth):
        lines += [f'Content-Type: multipart/mixed; boundary="b{level}"', "", f"--b{level}"]
    lines += ["Content-Type: text/plain", "", text]
    for level in reversed(range(depth)):
        lines += [f"--b{level}--"]
    return ("\r\n".join(lines) + "\r\n").encode()


def punycode_message(msgid: str, size: int) -> bytes:
    """A text/plain body of `size` bytes in charset punycode, whose decoder takes quadratic time
    (1.2 MB used to exhaust the handler's 120 s of CPU)."""
    lines = [
        f"From: {VENDOR_SENDER}",
        f"To: {CIRCDESK}",
        "Subject: slip",
        f"Message-Id: {msgid}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=punycode",
        "Content-Transfer-Encoding: 8bit",
        "",
    ]
    body = b"\r\n".join(b"a" * 70 + b"-" + b"9" * 7 for _ in range(size // 80))
    return ("\r\n".join(lines) + "\r\n").encode() + body + b"\r\n"


@pytest.mark.parametrize("name", HOSTS)
def test_deeply_nested_multipart_is_bounced_and_kept(name: str) -> None:
    """20 levels (print_proxy_max_mime_depth is 6, the part count of 50 not reached): refused
    on the raw message, before the parser sees it."""
    host = podman_host(name)
    text = token()
    msgid = f"<{uuid.uuid4().hex}@molecule.example.org>"
    result = send(vendor, name, nested_message(msgid, text, 20), recipient=CIRCDESK)
    assert result.rc == 0, result.stdout
    dead_lettered(host, msgid, "MIME nesting deeper than 6")
    assert printed_with(host, text, timeout=5) == []


@pytest.mark.parametrize("name", HOSTS)
def test_expensive_mail_is_refused_for_good_and_the_next_slip_prints(name: str) -> None:
    """A 900 kB punycode body (below this scenario's 1 MiB decoded-size limit) and 380 nested
    levels: each bounced and kept once, with its reason, nothing left deferred for a retry; a
    normal slip sent right after prints within 10 s."""
    host = podman_host(name)
    punycode, nested = (f"<{uuid.uuid4().hex}@molecule.example.org>" for _ in range(2))
    hostile = {
        punycode: (punycode_message(punycode, 900 * 1024), "charset punycode is not on the allowlist"),
        nested: (nested_message(nested, token(), 380), "more than 50 MIME parts"),
    }
    for raw, _ in hostile.values():
        result = send(vendor, name, raw, recipient=CIRCDESK)
        assert result.rc == 0, result.stdout
    slip = message(CIRCDESK, "Request slip")
    text = token()
    slip.set_content(f"<html><body><h1>Request slip</h1><p>{text}</p></body></html>", subtype="html")
    result = send(vendor, name, slip)
    assert result.rc == 0, result.stdout
    assert printed_with(host, text, timeout=10) != []
    for msgid, (_, reason) in hostile.items():
        dead_lettered(host, msgid, reason)
        # Bounced by the handler's exit code (65), not deferred for Postfix to try again.
        queue_id = host.check_output(f"journalctl -t postfix/cleanup --no-pager -o cat | grep -F {shlex.quote(msgid)}")
        queue_id = queue_id.split(":")[0]
        pipe = host.check_output(f"journalctl -t postfix/pipe --no-pager -o cat | grep -F {queue_id}:")
        assert "status=bounced" in pipe and "status=deferred" not in pipe, pipe


@pytest.mark.parametrize("name", HOSTS)
def test_old_dead_letters_are_removed_by_the_daily_clean_up(name: str) -> None:
    """systemd-tmpfiles' clean-up (what its daily timer runs) removes dead letters older than
    print_proxy_dead_letter_days (30) and keeps the younger ones."""
    host = podman_host(name)
    tag = uuid.uuid4().hex[:8]
    old, young = f"{DEAD_LETTER}/new/old-{tag}", f"{DEAD_LETTER}/new/young-{tag}"
    host.check_output(
        f"runuser -u libsys-print -- sh -c 'echo x > {old}; echo x > {young}'"
        f" && touch -d '31 days ago' {old} && touch -d '29 days ago' {young}"
    )
    host.check_output("systemd-tmpfiles --clean /etc/tmpfiles.d/libsys-print-proxy.conf")
    assert not host.file(old).exists
    assert host.file(young).exists
    host.check_output(f"rm -f {young}")


@pytest.mark.parametrize("name", HOSTS)
def test_type_not_on_the_allowlist_is_bounced(name: str) -> None:
    host = podman_host(name)
    msg = message(CIRCDESK, "Not a PDF")
    msg.set_content("see attachment")
    msg.add_attachment(b"MZ\x90\x00 fake program", maintype="application", subtype="x-msdownload", filename="slip.exe")
    result = send(vendor, name, msg)
    assert result.rc == 0, result.stdout
    line = journal_line(host, str(msg["Message-Id"]))
    assert "outcome=rejected" in line and "allowlist" in line, line


@pytest.mark.parametrize("name", HOSTS)
def test_sender_not_allowed_and_outsider_are_rejected(name: str) -> None:
    bad_sender = send(vendor, name, html_slip(CIRCDESK, token()), sender="evil@attacker.example.org")
    assert refused_with(bad_sender, "554 5.7.1"), bad_sender.stdout[-600:]
    unknown = send(vendor, name, html_slip("nobody@print.library.example.edu", token()))
    assert refused_with(unknown, "554 5.1.1"), unknown.stdout[-600:]
    # The outsider is dropped by the shared Postfix base's SMTP firewall table (postfix_firewall
    # is on, the default, in this scenario) before Postfix sees it.
    host = podman_host(name)
    assert host.run("nft list table inet libsys_postfix").rc == 0
    dropped = outsider.run(f"nc -v -z -w 5 {HOSTS[name]} 25")
    assert dropped.rc != 0 and "timed out" in dropped.stderr, dropped.stderr


@pytest.mark.parametrize("name", HOSTS)
def test_cups_failure_leaves_mail_deferred_then_prints(name: str) -> None:
    host = podman_host(name)
    text = token()
    host.check_output("cupsreject circdesk")
    try:
        result = send(vendor, name, html_slip(CIRCDESK, text))
        assert result.rc == 0, result.stdout
        deadline = time.monotonic() + 120
        while True:
            queue = [json.loads(line) for line in host.check_output("postqueue -j").splitlines() if line.strip()]
            held = [
                rcpt
                for entry in queue
                if entry["queue_name"] == "deferred"
                for rcpt in entry["recipients"]
                if rcpt["address"] == CIRCDESK and "will retry" in rcpt.get("delay_reason", "")
            ]
            if held or time.monotonic() > deadline:
                break
            time.sleep(3)
        assert held, queue
        assert printed_with(host, text, timeout=5) == []
    finally:
        host.check_output("cupsaccept circdesk")
    host.check_output("postqueue -f")
    assert len(printed_with(host, text)) == 1


def status(host) -> dict[str, dict]:
    return {row["printer"]: row for row in json.loads(host.check_output("libsys-print-status --json"))}


def wait_status(host, check, timeout: float = 120) -> dict[str, dict]:
    """Poll libsys-print-status until check(rows) holds (or the time is up); returns the rows."""
    return wait_for(lambda: status(host), check, timeout)


@pytest.mark.parametrize("name", HOSTS)
def test_status_command_counts_jobs_per_printer(name: str) -> None:
    host = podman_host(name)
    rows = status(host)
    assert set(rows) == {"circdesk", "ill-office", "reserves", "stacks", "annex", "bindery"}
    # What the tests before this one did.
    assert rows["circdesk"]["printed"] >= 1
    assert rows["circdesk"]["rejected"] >= 1
    assert rows["circdesk"]["deferred"] >= 1
    assert rows["reserves"]["printed"] >= 1
    assert rows["stacks"]["printed"] >= 1 and rows["annex"]["printed"] >= 2
    assert rows["bindery"]["printed"] >= 1
    assert rows["ill-office"]["delivered"] >= 1 and rows["reserves"]["delivered"] >= 1
    table = host.check_output("libsys-print-status")
    assert "PRINTED" in table and "DELIVERED" in table and "circdesk" in table


@pytest.mark.parametrize("name", HOSTS)
def test_status_counts_each_outcome_exactly(name: str) -> None:
    """One more printed, rejected, mailbox-only and both-mode delivery: each counter moves by one."""
    host = podman_host(name)
    before = status(host)
    pdf = pdf_slip(CIRCDESK, token(), token())
    bad = message(CIRCDESK, "Not a PDF")
    bad.set_content("see attachment")
    bad.add_attachment(b"MZ\x90\x00", maintype="application", subtype="x-msdownload", filename="slip.exe")
    for recipient_msg in (pdf, bad, html_slip(ILL, token()), html_slip(RESERVES, token())):
        assert send(vendor, name, recipient_msg).rc == 0
    expected = {
        ("circdesk", "printed"): before["circdesk"]["printed"] + 1,
        ("circdesk", "rejected"): before["circdesk"]["rejected"] + 1,
        ("ill-office", "delivered"): before["ill-office"]["delivered"] + 1,
        ("ill-office", "in_mailbox"): before["ill-office"]["in_mailbox"] + 1,
        ("reserves", "printed"): before["reserves"]["printed"] + 1,
        ("reserves", "delivered"): before["reserves"]["delivered"] + 1,
    }

    def reached(rows: dict) -> bool:
        return all(rows[printer][key] == value for (printer, key), value in expected.items())

    after = wait_status(host, reached)
    assert {key: after[key[0]][key[1]] for key in expected} == expected
    # A mailbox-only printer prints nothing and its deliveries do not touch the print counters.
    assert after["ill-office"]["printed"] == 0 and after["ill-office"]["queue"] == "-"
    assert after["ill-office"]["deferred_mail"] == 0


@pytest.mark.parametrize("name", HOSTS)
def test_status_shows_a_failed_mailbox_delivery_until_it_is_delivered(name: str) -> None:
    """Dovecot down: the mailbox delivery fails and waits in Postfix's deferred queue, which the
    status shows; once Dovecot is back and the queue is flushed, it is counted as delivered."""
    host = podman_host(name)
    before = status(host)
    text = token()
    host.check_output("systemctl stop dovecot.service")
    try:
        assert send(vendor, name, html_slip(ILL, text)).rc == 0
        during = wait_status(host, lambda rows: rows["ill-office"]["deferred_mail"] == 1)
        assert during["ill-office"]["deferred_mail"] == 1, during["ill-office"]
        assert during["circdesk"]["deferred_mail"] == 0, during["circdesk"]
        line = next(line for line in host.check_output("libsys-print-status").splitlines() if line.startswith("ill-"))
        assert line.split()[-2] == "1", line  # DEFERRED-MAIL column
    finally:
        host.check_output("systemctl start dovecot.service")
    host.check_output("postqueue -f")
    delivered = before["ill-office"]["delivered"] + 1
    after = wait_status(
        host, lambda rows: rows["ill-office"]["delivered"] == delivered and rows["ill-office"]["deferred_mail"] == 0
    )
    assert (after["ill-office"]["delivered"], after["ill-office"]["deferred_mail"]) == (delivered, 0), after
    assert text in wait_imap(name, ILL, text)


STATE = (
    "lpstat -v; cat /etc/postfix/main.cf /etc/postfix/master.cf "
    "/etc/libsys-onprem/print-proxy/printers.json | sha256sum"
)
GOOD = {"name": "x1", "address": "x1@print.library.example.edu", "device_uri": "cups-pdf:/"}


BAD_INPUT = {
    "invalid-address": (
        {"print_proxy_printers": [GOOD, {**GOOD, "name": "x2", "address": "not an address"}]},
        "print_proxy_printers[1] (name: x2)",
    ),
    "duplicate-printer": (
        {"print_proxy_printers": [GOOD, {**GOOD, "device_uri": "cups-pdf:/x"}]},
        "print_proxy_printers[0] (name: x1): duplicate printer",
    ),
    "unknown-scheme": (
        {"print_proxy_printers": [{**GOOD, "device_uri": "file:///etc/passwd"}]},
        "print_proxy_printers[0] (name: x1): mode must be print",
    ),
    "bad-cidr": (
        {"print_proxy_printers": [{**GOOD, "allowed_clients": ["198.51.100.300/24"]}]},
        "print_proxy_printers[0] (name: x1).allowed_clients",
    ),
}


bad_input, test_bad_input_fails_before_any_change, test_bad_input_changes_nothing = bad_input_tests(
    SCENARIO_DIR / "bad_input.yml", "onprem-pp-deb12", BAD_INPUT, STATE
)
