"""print_proxy: the vendor's relay (a peer container) sends real mail with swaks to the print
proxies; CUPS prints to cups-pdf queues and the tests read the PDFs back with pdftotext.
Covers HTML slips, PDF pass-through, mailbox mode over IMAPS, the hostile corpus, CUPS
failures leaving mail deferred, the listening sockets, the status command and bad input."""

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
from conftest import podman_host, venv_tool

HOSTS = {
    "onprem-pp-deb12": "198.51.100.170",
    "onprem-pp-deb13": "198.51.100.171",
}
CIRCDESK = "circdesk-printer@print.library.example.edu"
ILL = "ill-printer@print.library.example.edu"
RESERVES = "reserves-printer@print.library.example.edu"
PASSWORDS = {ILL: "molecule-test-only-ill-secret", RESERVES: "molecule-test-only-reserves-secret"}
VENDOR_SENDER = "alma@vendor.example.org"
PDF_DIR = "/var/spool/cups-pdf/libsys-print"
DEAD_LETTER = "/var/lib/libsys-print-proxy/dead-letter"
SCENARIO_DIR = Path(__file__).resolve().parent.parent

vendor = podman_host("onprem-pp-vendor")
outsider = podman_host("onprem-pp-outsider")


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


def send(client, host: str, msg, sender: str = VENDOR_SENDER, recipient: str | None = None):
    """Send the message's bytes with swaks from a peer container; returns the result."""
    raw = msg if isinstance(msg, bytes) else msg.as_bytes()
    path = f"/root/msg-{uuid.uuid4().hex}.eml"
    subprocess.run(["podman", "exec", "-i", client.backend.name, "sh", "-c", f"cat > {path}"], input=raw, check=True)
    recipient = recipient or str(msg["To"])
    command = [
        "swaks",
        "--server",
        HOSTS[host],
        "--timeout",
        "120",
        "--tls",
        "--helo",
        "relay.vendor.example.org",
        "--from",
        sender,
        "--to",
        recipient,
        "--data",
        f"@{path}",
    ]
    result = client.run(shlex.join(command))
    client.run(f"rm -f {path}")
    return result


def refused_with(result, code: str) -> bool:
    """swaks saw this SMTP error reply (`<**` in clear text, `<~*` inside TLS)."""
    return result.rc != 0 and re.search(r"^<[*~]\* " + re.escape(code), result.stdout, re.M) is not None


def printed_with(host, text: str, timeout: float = 150) -> list[str]:
    """The cups-pdf output files whose text contains `text` (waits for them to appear)."""
    script = (
        f'for f in {PDF_DIR}/*.pdf; do [ -e "$f" ] || continue; '
        f'pdftotext -q "$f" - | grep -q {shlex.quote(text)} && echo "$f"; done; true'
    )
    deadline = time.monotonic() + timeout
    while True:
        found = host.check_output(script).split()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(3)


def journal_line(host, msgid: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        lines = host.run(f"journalctl -t libsys-print-proxy --no-pager -o cat | grep -F {shlex.quote(msgid)}")
        if lines.stdout.strip() or time.monotonic() > deadline:
            return lines.stdout
        time.sleep(2)


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
    # And from the network: CUPS and plain IMAP are not reachable, IMAPS is.
    assert vendor.run(f"nc -z -w 3 {HOSTS[name]} 631").rc != 0
    assert vendor.run(f"nc -z -w 3 {HOSTS[name]} 143").rc != 0
    assert vendor.run(f"nc -z -w 3 {HOSTS[name]} 993").rc == 0


@pytest.mark.parametrize("name", HOSTS)
def test_html_slip_prints_as_pdf_with_its_text(name: str) -> None:
    host = podman_host(name)
    text = token()
    result = send(vendor, name, html_slip(CIRCDESK, text))
    assert result.rc == 0, result.stdout + result.stderr
    files = printed_with(host, text)
    assert len(files) == 1, files
    info = host.check_output(f"pdfinfo {shlex.quote(files[0])}")
    assert "letter" in info.lower(), info  # the printer's paper_size: Letter
    # The remote image was not fetched: the renderer may fetch nothing.
    assert "Request slip" in host.check_output(f"pdftotext -q {shlex.quote(files[0])} -")


@pytest.mark.parametrize("name", HOSTS)
def test_pdf_attachment_prints_as_itself(name: str) -> None:
    host = podman_host(name)
    body_text, pdf_text = token(), token()
    msg = message(CIRCDESK, "Transit slip")
    msg.set_content(f"See the attached slip {body_text}")
    msg.add_attachment(make_pdf(pdf_text), maintype="application", subtype="pdf", filename="transit-slip.pdf")
    result = send(vendor, name, msg)
    assert result.rc == 0, result.stdout + result.stderr
    files = printed_with(host, pdf_text)
    assert len(files) == 1, files
    assert re.search(r"^Pages:\s+1$", host.check_output(f"pdfinfo {shlex.quote(files[0])}"), re.M)
    # Only the PDF printed: the body of a mail with PDF attachments is not printed.
    assert printed_with(host, body_text, timeout=5) == []


def imap_fetch(host: str, user: str, password: str, text: str, cafile: str | None) -> str:
    """Log in over IMAPS from the vendor peer and return the INBOX messages containing text."""
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
        ["podman", "exec", "-i", "onprem-pp-vendor", "sh", "-c", f"cat > {path}"], input=script.encode(), check=True
    )
    result = subprocess.run(
        ["podman", "exec", "-i", "onprem-pp-vendor", "python3", path],
        input=password.encode(),
        capture_output=True,
        check=False,
    )
    return result.stdout.decode() + result.stderr.decode()


def wait_imap(name: str, user: str, text: str) -> str:
    cafile = "/etc/ssl/libsys-test/print-ca.crt" if name.endswith("deb12") else None
    deadline = time.monotonic() + 90
    while True:
        found = imap_fetch(name, user, PASSWORDS[user], text, cafile)
        if text in found or time.monotonic() > deadline:
            return found
        time.sleep(3)


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
    path = "/root/big.eml"
    vendor.run(
        'python3 -c "import base64, os, sys, textwrap; '
        "sys.stdout.write('From: alma@vendor.example.org\\r\\nTo: " + CIRCDESK + "\\r\\n"
        "Subject: big\\r\\nMIME-Version: 1.0\\r\\nContent-Type: application/pdf\\r\\n"
        "Content-Transfer-Encoding: base64\\r\\n\\r\\n'); "
        "data = base64.encodebytes(b'%PDF-1.4 ' + os.urandom(45 * 1024 * 1024)).decode(); "
        'sys.stdout.write(data.replace(chr(10), chr(13) + chr(10)))" > ' + path
    )
    assert int(vendor.check_output(f"stat -c %s {path}")) > 60 * 1000 * 1000
    command = [
        "swaks",
        "--server",
        HOSTS[name],
        "--timeout",
        "300",
        "--tls",
        "--helo",
        "relay.vendor.example.org",
        "--from",
        VENDOR_SENDER,
        "--to",
        CIRCDESK,
        "--data",
        f"@{path}",
    ]
    result = vendor.run(shlex.join(command))
    assert refused_with(result, "552"), result.stdout[-600:]


@pytest.mark.parametrize("name", HOSTS)
def test_deeply_nested_multipart_is_bounced_and_kept(name: str) -> None:
    host = podman_host(name)
    text = token()
    msgid = f"<{uuid.uuid4().hex}@molecule.example.org>"
    depth = 60
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
    raw = ("\r\n".join(lines) + "\r\n").encode()
    result = send(vendor, name, raw, recipient=CIRCDESK)
    assert result.rc == 0, result.stdout
    line = journal_line(host, msgid)
    assert "outcome=rejected" in line and "nesting" in line, line
    assert printed_with(host, text, timeout=5) == []
    kept = host.run(f"grep -rlF {shlex.quote(msgid)} {DEAD_LETTER}/new")
    assert kept.rc == 0 and kept.stdout.strip(), "the bounced message is not in the dead-letter Maildir"


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
    from_outsider = send(outsider, name, html_slip(CIRCDESK, token()))
    assert refused_with(from_outsider, "554"), from_outsider.stdout[-600:]


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


@pytest.mark.parametrize("name", HOSTS)
def test_status_command_counts_jobs_per_printer(name: str) -> None:
    host = podman_host(name)
    rows = {row["printer"]: row for row in json.loads(host.check_output("libsys-print-status --json"))}
    assert set(rows) == {"circdesk", "ill-office", "reserves"}
    assert rows["circdesk"]["printed"] >= 1
    assert rows["circdesk"]["rejected"] >= 1
    assert rows["circdesk"]["deferred"] >= 1
    assert rows["reserves"]["printed"] >= 1
    table = host.check_output("libsys-print-status")
    assert "PRINTED" in table and "circdesk" in table


STATE = (
    "lpstat -v; cat /etc/postfix/main.cf /etc/postfix/libsys/print_proxy_* "
    "/etc/libsys-onprem/print-proxy/printers.json | sha256sum"
)
GOOD = {"name": "x1", "address": "x1@print.library.example.edu", "device_uri": "cups-pdf:/"}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"print_proxy_printers": [GOOD, {**GOOD, "name": "x2", "address": "not an address"}]},
            "print_proxy_printers[1] (name: x2)",
        ),
        (
            {"print_proxy_printers": [GOOD, {**GOOD, "device_uri": "cups-pdf:/x"}]},
            "print_proxy_printers[0] (name: x1): duplicate printer",
        ),
        (
            {"print_proxy_printers": [{**GOOD, "device_uri": "file:///etc/passwd"}]},
            "print_proxy_printers[0] (name: x1): mode must be print",
        ),
        (
            {"print_proxy_printers": [{**GOOD, "allowed_clients": ["198.51.100.300/24"]}]},
            "print_proxy_printers[0] (name: x1).allowed_clients",
        ),
    ],
    ids=["invalid-address", "duplicate-printer", "unknown-scheme", "bad-cidr"],
)
def test_bad_input_fails_before_any_change(extra: dict, expected: str, tmp_path: Path) -> None:
    host = podman_host("onprem-pp-deb12")
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
            "onprem-pp-deb12",
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
