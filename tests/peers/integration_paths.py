"""End-to-end checks of the integration paths, each driven by a real client in a peer container.

Shared by the lab's demo (tools/lab-demo.py) and the multi-host Molecule scenario
(molecule/site). Every command runs inside a container that the lab or the scenario created
(``podman exec``); the only addresses used are the ones a `Site` names, which are the
containers' own addresses on their private podman network.

Each check returns a one-line description of what it proved, or raises `PathFailure`.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import uuid
from dataclasses import dataclass
from typing import Callable

KIOSK_CLIENT = "/usr/local/lib/libsys-peer/sip2_kiosk.py"
DKIM_KEY = "/etc/opendkim/keys/library.example.edu/libsys.private"
CUPS_PDF_DIR = "/var/spool/cups-pdf/libsys-print"
HUB_MAIL_DIR = "/var/lib/hub-mail"

DKIM_VERIFY = (
    "import dkim, sys\n"
    "message = open(sys.argv[1], 'rb').read()\n"
    "key = sys.argv[2].encode()\n"
    "record = b'v=DKIM1; k=rsa; p=' + key\n"
    "print('valid' if dkim.verify(message, dnsfunc=lambda name, timeout=5: record) else 'invalid')\n"
)


class PathFailure(Exception):
    """An integration path did not behave as the integration requires."""


@dataclass(frozen=True)
class Peers:
    """Container names of the simulated peers."""

    kiosk: str
    cloud: str
    vendor_relay: str
    mail_hub: str
    outsider: str


@dataclass(frozen=True)
class IntegrationHost:
    """One integration host: its container, its address, and what the cloud uses to reach it."""

    container: str
    address: str
    # The cloud peer's local port of its stunnel client towards this host's 5001 tunnel.
    asrs_client_port: int = 0
    sip2_port: int = 6001
    sftp_account: str = "vendor-sis"
    printer_address: str = "circdesk-printer@print.library.example.edu"


def in_container(container: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", "exec", container, "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_until(probe: Callable[[], str | None], timeout: float, interval: float) -> str | None:
    """Call probe until it returns something truthy or timeout seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(interval)


def sip2_through_the_tunnel(host: IntegrationHost, peers: Peers) -> str:
    result = in_container(peers.kiosk, f"python3 {KIOSK_CLIENT} {host.address} {host.sip2_port} exchange")
    steps = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if [step["step"] for step in steps] != ["93/94", "99/98", "23/24"]:
        raise PathFailure(f"expected 93/94, 99/98, 23/24; got {result.stdout.strip() or result.stderr.strip()}")
    bad = [step["step"] for step in steps if not step.get("checksum_ok") or "error" in step]
    if bad:
        raise PathFailure(f"bad responses: {', '.join(bad)}")
    return "93/94 login, 99/98 status, 23/24 patron status, checksums valid"


def asrs_through_5001(host: IntegrationHost, peers: Peers) -> str:
    if not host.asrs_client_port:
        raise PathFailure(f"no cloud-side stunnel client is set up towards {host.address}:5001")
    message = "printf 'STORE tote-42\\n' | timeout 5 nc -q 2 127.0.0.1"
    result = in_container(peers.cloud, f"{message} {host.asrs_client_port}")
    if result.stdout.strip() != "ASRS-ACK STORE tote-42":
        raise PathFailure(f"ASRS answered {result.stdout.strip()!r} {result.stderr.strip()}")
    return "cloud client cert verified on 5001, ASRS answered ASRS-ACK"


def outsider_is_refused(host: IntegrationHost, peers: Peers) -> str:
    result = in_container(peers.outsider, f"nc -z -w 3 {host.address} {host.sip2_port}")
    if result.returncode == 0:
        raise PathFailure(f"the outsider reached the SIP2 tunnel port {host.sip2_port}")
    return f"connection to {host.sip2_port} from the outsider dropped by the stunnel table"


def sftp_push_and_pull(host: IntegrationHost, peers: Peers) -> str:
    account = host.sftp_account
    ssh = f"-i /root/.ssh/{account} -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o ConnectTimeout=20"
    name = f"sis-{uuid.uuid4().hex[:8]}.csv"
    script = (
        f"printf 'id,name\\nP0001,Example Patron\\n' > /tmp/{name} && "
        f"printf 'put /tmp/{name} incoming/{name}\\nget incoming/{name} /tmp/{name}.back\\n' "
        f"| sftp {ssh} -b - {account}@{host.address} && cmp /tmp/{name} /tmp/{name}.back"
    )
    result = in_container(peers.cloud, script)
    if result.returncode != 0:
        raise PathFailure(f"sftp failed: {(result.stderr or result.stdout).strip()[-300:]}")
    shell = in_container(peers.cloud, f"ssh {ssh} {account}@{host.address} id")
    if shell.returncode == 0:
        raise PathFailure("the drop account got a shell")
    return "put and get in the chrooted account, key only; a shell is refused"


def _swaks(
    host: IntegrationHost, recipient: str, timeout: int, extra: list[str], sender: str = "notices@library.example.edu"
) -> list[str]:
    return [
        "swaks",
        "--server",
        host.address,
        "--port",
        "25",
        "--tls",
        "--timeout",
        str(timeout),
        "--helo",
        "relay.vendor.example.org",
        "--from",
        sender,
        "--to",
        recipient,
        *extra,
    ]


def mail_relayed_with_dkim(host: IntegrationHost, peers: Peers) -> str:
    message_id = f"{uuid.uuid4().hex}@lab.example.org"
    swaks = _swaks(
        host,
        "patron@library.example.edu",
        20,
        [
            "--header",
            f"Message-Id: <{message_id}>",
            "--header",
            "Subject: Hold request ready for pickup",
            "--body",
            "Your hold request is ready.",
        ],
    )
    sent = in_container(peers.vendor_relay, shlex.join(swaks))
    if sent.returncode != 0:
        raise PathFailure(f"the relay did not accept the message: {sent.stdout[-300:]}")

    def delivered() -> str | None:
        found = in_container(peers.mail_hub, f"grep -l -F {shlex.quote(message_id)} {HUB_MAIL_DIR}/*.eml")
        return found.stdout.split()[0] if found.returncode == 0 else None

    path = wait_until(delivered, timeout=60, interval=2)
    if not path:
        raise PathFailure("the message did not reach the campus hub within 60 s")
    key = in_container(host.container, f"openssl pkey -in {DKIM_KEY} -pubout -outform DER | base64 -w0").stdout.strip()
    verdict = in_container(peers.mail_hub, f"python3 -c {shlex.quote(DKIM_VERIFY)} {path} {key}").stdout.strip()
    if verdict != "valid":
        raise PathFailure(f"DKIM signature at the hub: {verdict or 'missing'}")
    return "STARTTLS in, TLS to the hub, DKIM signature d=library.example.edu valid"


def slip_printed_to_pdf(host: IntegrationHost, peers: Peers) -> str:
    """A slip as the vendor sends it, from its own address: on a host that is also the mail
    relay, the relay's sender rewriting and From policy must leave it alone (the printers of
    the lab and the site scenario accept only @vendor.example.org)."""
    token = uuid.uuid4().hex[:12]
    html = f"<!DOCTYPE html><html><body><h1>Request slip</h1><p>Item ready for pickup: <b>{token}</b></p></body></html>"
    swaks = _swaks(
        host,
        host.printer_address,
        60,
        [
            "--header",
            "Subject: Request slip",
            "--header",
            "From: Alma <alma@vendor.example.org>",
            "--add-header",
            "MIME-Version: 1.0",
            "--add-header",
            "Content-Type: text/html; charset=utf-8",
            "--body",
            html,
        ],
        sender="alma@vendor.example.org",
    )
    sent = in_container(peers.vendor_relay, shlex.join(swaks), timeout=120)
    if sent.returncode != 0:
        raise PathFailure(f"the print proxy did not accept the slip: {sent.stdout[-300:]}")
    find = (
        f'for f in {CUPS_PDF_DIR}/*.pdf; do [ -e "$f" ] || continue; '
        f'pdftotext -q "$f" - | grep -q {token} && echo "$f"; done; true'
    )

    def printed() -> str | None:
        found = in_container(host.container, find).stdout.split()
        return found[0] if found else None

    pdf = wait_until(printed, timeout=120, interval=3)
    if not pdf:
        raise PathFailure("no PDF with the slip's text in the CUPS-PDF queue within 120 s")
    return f"HTML slip rendered and printed: {pdf}"


@dataclass(frozen=True)
class Path:
    """One row of the demo: an integration path, the peer that drives it, and the check."""

    title: str
    client: str
    check: Callable[[IntegrationHost, Peers], str]


def paths(peers: Peers) -> dict[str, Path]:
    """The integration paths by the inventory group whose hosts carry them."""
    return {
        "sip2_gateways": Path("SIP2 self-check through stunnel (6443)", peers.kiosk, sip2_through_the_tunnel),
        "storage_gateways": Path("Remote storage (ASRS) inbound (5001)", peers.cloud, asrs_through_5001),
        "sip2_source_restriction": Path("Source restriction on the SIP2 tunnel", peers.outsider, outsider_is_refused),
        "sftp_servers": Path("SFTP drop: push and pull (22)", peers.cloud, sftp_push_and_pull),
        "mail_relays": Path("Mail from the vendor relay, DKIM-signed (25)", peers.vendor_relay, mail_relayed_with_dkim),
        "print_proxies": Path(
            "Slip emailed to a printer, printed to PDF (25)", peers.vendor_relay, slip_printed_to_pdf
        ),
    }
