"""The end-to-end demo of `make lab`: drive each integration path of the lab with a real client
in a peer container and print one table row per path.

Every command runs inside a container of the lab (podman exec); the only addresses used are
the lab's own (203.0.113.128/25 on its private podman network).

    python tools/lab-demo.py [--report-dir DIR]

Exits non-zero when a row fails. Writes the table to DIR/demo.md as well.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ONPREM = "203.0.113.140"
KIOSK_CLIENT = "/usr/local/lib/libsys-peer/sip2_kiosk.py"


class DemoFailure(Exception):
    """A demo step did not behave as the integration requires."""


@dataclass
class Row:
    path: str
    client: str
    check: Callable[[], str]


def in_container(container: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", "exec", container, "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def sip2_through_the_tunnel() -> str:
    result = in_container("lab-kiosk", f"python3 {KIOSK_CLIENT} {ONPREM} 6001 exchange")
    steps = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if [step["step"] for step in steps] != ["93/94", "99/98", "23/24"]:
        raise DemoFailure(f"expected 93/94, 99/98, 23/24; got {result.stdout.strip() or result.stderr.strip()}")
    bad = [step["step"] for step in steps if not step.get("checksum_ok") or "error" in step]
    if bad:
        raise DemoFailure(f"bad responses: {', '.join(bad)}")
    return "93/94 login, 99/98 status, 23/24 patron status, checksums valid"


def asrs_through_5001() -> str:
    result = in_container("lab-cloud", "printf 'STORE tote-42\\n' | timeout 5 nc -q 2 127.0.0.1 15010")
    if result.stdout.strip() != "ASRS-ACK STORE tote-42":
        raise DemoFailure(f"ASRS answered {result.stdout.strip()!r} {result.stderr.strip()}")
    return "cloud client cert verified on 5001, ASRS answered ASRS-ACK"


def outsider_is_refused() -> str:
    result = in_container("lab-outsider", f"nc -z -w 3 {ONPREM} 6001")
    if result.returncode == 0:
        raise DemoFailure("the outsider reached the SIP2 tunnel port 6001")
    return "connection to 6001 from 203.0.113.200 dropped by the stunnel table"


DKIM_VERIFY = (
    "import dkim, sys\n"
    "message = open(sys.argv[1], 'rb').read()\n"
    "key = sys.argv[2].encode()\n"
    "record = b'v=DKIM1; k=rsa; p=' + key\n"
    "print('valid' if dkim.verify(message, dnsfunc=lambda name, timeout=5: record) else 'invalid')\n"
)


def mail_relayed_with_dkim() -> str:
    message_id = f"{uuid.uuid4().hex}@lab.example.org"
    swaks = [
        "swaks",
        "--server",
        ONPREM,
        "--port",
        "25",
        "--tls",
        "--timeout",
        "20",
        "--helo",
        "relay.vendor.example.org",
        "--from",
        "notices@library.example.edu",
        "--to",
        "patron@library.example.edu",
        "--header",
        f"Message-Id: <{message_id}>",
        "--header",
        "Subject: Hold request ready for pickup",
        "--body",
        "Your hold request is ready.",
    ]
    sent = in_container("lab-vendor-relay", shlex.join(swaks))
    if sent.returncode != 0:
        raise DemoFailure(f"the relay did not accept the message: {sent.stdout[-300:]}")
    deadline = time.monotonic() + 60
    while True:
        found = in_container("lab-mail-hub", f"grep -l -F {shlex.quote(message_id)} /var/lib/hub-mail/*.eml")
        if found.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(2)
    if found.returncode != 0:
        raise DemoFailure("the message did not reach the campus hub within 60 s")
    path = found.stdout.split()[0]
    key = in_container(
        "lab-onprem",
        "openssl pkey -in /etc/opendkim/keys/library.example.edu/libsys.private -pubout -outform DER | base64 -w0",
    ).stdout.strip()
    verdict = in_container("lab-mail-hub", f"python3 -c {shlex.quote(DKIM_VERIFY)} {path} {key}").stdout.strip()
    if verdict != "valid":
        raise DemoFailure(f"DKIM signature at the hub: {verdict or 'missing'}")
    return "STARTTLS in, TLS to the hub, DKIM signature d=library.example.edu valid"


def sftp_push_and_pull() -> str:
    ssh = "-i /root/.ssh/vendor-sis -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o ConnectTimeout=20"
    name = f"sis-{uuid.uuid4().hex[:8]}.csv"
    script = (
        f"printf 'id,name\\nP0001,Example Patron\\n' > /tmp/{name} && "
        f"printf 'put /tmp/{name} incoming/{name}\\nget incoming/{name} /tmp/{name}.back\\n' "
        f"| sftp {ssh} -b - vendor-sis@{ONPREM} && cmp /tmp/{name} /tmp/{name}.back"
    )
    result = in_container("lab-cloud", script)
    if result.returncode != 0:
        raise DemoFailure(f"sftp failed: {(result.stderr or result.stdout).strip()[-300:]}")
    shell = in_container("lab-cloud", f"ssh {ssh} vendor-sis@{ONPREM} id")
    if shell.returncode == 0:
        raise DemoFailure("the drop account got a shell")
    return "put and get in the chrooted account, key only; a shell is refused"


def slip_printed_to_pdf() -> str:
    token = uuid.uuid4().hex[:12]
    html = f"<!DOCTYPE html><html><body><h1>Request slip</h1><p>Item ready for pickup: <b>{token}</b></p></body></html>"
    swaks = [
        "swaks",
        "--server",
        ONPREM,
        "--port",
        "25",
        "--tls",
        "--timeout",
        "60",
        "--helo",
        "relay.vendor.example.org",
        "--from",
        "notices@library.example.edu",
        "--to",
        "circdesk-printer@print.library.example.edu",
        "--header",
        "Subject: Request slip",
        "--add-header",
        "MIME-Version: 1.0",
        "--add-header",
        "Content-Type: text/html; charset=utf-8",
        "--body",
        html,
    ]
    sent = in_container("lab-vendor-relay", shlex.join(swaks), timeout=120)
    if sent.returncode != 0:
        raise DemoFailure(f"the print proxy did not accept the slip: {sent.stdout[-300:]}")
    find = (
        'for f in /var/spool/cups-pdf/libsys-print/*.pdf; do [ -e "$f" ] || continue; '
        f'pdftotext -q "$f" - | grep -q {token} && echo "$f"; done; true'
    )
    deadline = time.monotonic() + 120
    while True:
        found = in_container("lab-onprem", find).stdout.split()
        if found or time.monotonic() > deadline:
            break
        time.sleep(3)
    if not found:
        raise DemoFailure("no PDF with the slip's text in the CUPS-PDF queue within 120 s")
    return f"HTML slip rendered and printed: {found[0]}"


ROWS = [
    Row("SIP2 self-check through stunnel (6443)", "lab-kiosk", sip2_through_the_tunnel),
    Row("Remote storage (ASRS) inbound (5001)", "lab-cloud", asrs_through_5001),
    Row("Source restriction on the SIP2 tunnel", "lab-outsider", outsider_is_refused),
    Row("SFTP drop: push and pull (22)", "lab-cloud", sftp_push_and_pull),
    Row("Mail from the vendor relay, DKIM-signed (25)", "lab-vendor-relay", mail_relayed_with_dkim),
    Row("Slip emailed to a printer, printed to PDF (25)", "lab-vendor-relay", slip_printed_to_pdf),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-dir", type=Path, default=Path("lab-report"))
    args = parser.parse_args()

    lines = ["| Path | Client | Result | Seconds | Details |", "| --- | --- | --- | --- | --- |"]
    failures = 0
    for row in ROWS:
        start = time.monotonic()
        try:
            details, result = row.check(), "PASS"
        except (DemoFailure, subprocess.TimeoutExpired) as exc:
            details, result = str(exc), "FAIL"
            failures += 1
        lines.append(f"| {row.path} | {row.client} | {result} | {time.monotonic() - start:.1f} | {details} |")

    table = "\n".join(lines)
    print(table)
    args.report_dir.mkdir(parents=True, exist_ok=True)
    (args.report_dir / "demo.md").write_text(table + "\n", encoding="utf-8")
    print(f"\n{len(ROWS) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
