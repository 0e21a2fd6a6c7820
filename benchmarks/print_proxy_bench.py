# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark libsys.onprem.print_proxy: slips per minute and latency per slip.

Everything runs in podman containers this script creates on its own network
(bench-print_proxy-net, 198.51.100.240/28; 192.0.2.0/24 is this machine's own LAN) and removes at the end:

  proxy   (Debian 12)   libsys.onprem.print_proxy applied with ansible-playbook, one cups-pdf:/
                        printer (the slips end up as PDF files, as in the Molecule scenario)
  source  (peer image)  a Python SMTP client sending the slips over STARTTLS, one connection

Measured, each over N slips:
  html      HTML request slips (rendered by WeasyPrint in the handler, then printed)
  pdf       slips as a PDF attachment (the handler only checks and submits them)
  baseline  the same PDF submitted with `lp` directly on the proxy (CUPS + cups-pdf alone,
            no mail, no handler): what the printing path costs by itself

For each: slips per minute from the first SMTP acceptance (or first lp) to the last finished
job (the cups-pdf output file written), and the median / p90 latency per slip from its SMTP
acceptance (the 250 after DATA, clocked in the source container; containers share the host's
clock) to its output file's modification time. Ratios are against the baseline.

    sudo .venv/bin/python benchmarks/print_proxy_bench.py [--slips 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from offline_containers import NETWORK_OPTIONS, container_options

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PREFIX = "bench-print_proxy"
NETWORK = f"{PREFIX}-net"
SUBNET = "198.51.100.240/28"
ADDR = {"proxy": "198.51.100.244", "source": "198.51.100.245"}
IMAGES = {"proxy": "localhost/libsys-onprem/debian:12", "source": "localhost/libsys-onprem/peer:12"}
APT_CACHE = "/var/cache/libsys-onprem/apt/print_proxy-12"
PRINTER = "bench-printer@print.library.example.edu"
OUT_DIR = "/var/spool/cups-pdf/libsys-print"

SEND = r"""
import json, smtplib, ssl, subprocess, sys, time
from email.message import EmailMessage
host, kind, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
accepted = {}
s = smtplib.SMTP(host, 25, timeout=120)
s.ehlo("relay.vendor.example.org"); s.starttls(context=ctx); s.ehlo("relay.vendor.example.org")
for n in range(count):
    tag = "BENCH%s%04d" % (kind.upper(), n)
    m = EmailMessage()
    m["From"] = "alma@vendor.example.org"; m["To"] = "@PRINTER@"; m["Subject"] = "Request slip " + tag
    if kind == "html":
        m.set_content("Request slip " + tag)
        m.add_alternative("<html><body><h1>Request slip</h1><p>" + tag + "</p>"
                          + "<table>" + "<tr><td>Item</td><td>Call number QA76.9</td></tr>" * 15
                          + "</table></body></html>", subtype="html")
    else:
        m.set_content("See attachment " + tag)
        # Each attachment carries its own tag, so its output file can be matched.
        pdf = subprocess.run(["python3", "/root/mkpdf.py", tag], capture_output=True, check=True).stdout
        m.add_attachment(pdf, maintype="application", subtype="pdf", filename=tag + ".pdf")
    s.send_message(m, "alma@vendor.example.org", ["@PRINTER@"])
    accepted[tag] = time.time()
s.quit()
print(json.dumps(accepted))
""".replace("@PRINTER@", PRINTER)

PLAYBOOK = """
- name: Apply the print proxy for the benchmark
  hosts: proxy
  gather_facts: true
  vars:
    postfix_dependents: "{{ [print_proxy_postfix_dependent] }}"
  roles:
    - role: libsys.onprem.postfix
    - role: libsys.onprem.print_proxy
"""


def run(*cmd: str, check: bool = True, timeout: int = 1800, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), check=check, text=True, timeout=timeout, capture_output=True, **kw)


def pexec(name: str, command: str, check: bool = True, timeout: int = 900) -> str:
    return run("podman", "exec", f"{PREFIX}-{name}", "sh", "-c", command, check=check, timeout=timeout).stdout


def cleanup() -> None:
    for name in ADDR:
        run("podman", "rm", "-f", "-t", "2", f"{PREFIX}-{name}", check=False)
    run("podman", "network", "rm", "-f", NETWORK, check=False)


def start() -> None:
    run("podman", "network", "create", *NETWORK_OPTIONS, "--subnet", SUBNET, NETWORK)
    os.makedirs(APT_CACHE, exist_ok=True)
    for name, image in IMAGES.items():
        volumes = ["-v", f"{APT_CACHE}:/var/cache/apt/archives"] if name == "proxy" else []
        run(
            "podman",
            "run",
            "-d",
            "--name",
            f"{PREFIX}-{name}",
            "--hostname",
            f"{name}.example.org",
            "--network",
            NETWORK,
            "--ip",
            ADDR[name],
            "--systemd=always",
            "--cap-add",
            "NET_ADMIN",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            *container_options(),
            *volumes,
            image,
            "/sbin/init",
        )
    time.sleep(3)


def converge(workdir: Path) -> None:
    inventory = {
        "all": {
            "hosts": {
                "proxy": {
                    "ansible_connection": "containers.podman.podman",
                    "ansible_host": f"{PREFIX}-proxy",
                    "ansible_python_interpreter": "/usr/bin/python3",
                    "postfix_myhostname": "proxy.library.example.edu",
                    "postfix_client_connection_rate_limit": 0,
                    "postfix_client_message_rate_limit": 0,
                    "onprem_vendor_mail_relays": [f"{ADDR['source']}/32"],
                    "print_proxy_printers": [{"name": "bench", "address": PRINTER, "device_uri": "cups-pdf:/"}],
                }
            }
        }
    }
    (workdir / "inventory.json").write_text(json.dumps(inventory))
    (workdir / "play.yml").write_text(PLAYBOOK)
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build" / "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOST_KEY_CHECKING="0",
    )
    venv = Path(sys.executable).parent
    result = run(
        str(venv / "ansible-playbook"),
        "-i",
        str(workdir / "inventory.json"),
        str(workdir / "play.yml"),
        check=False,
        env=env,
        timeout=3600,
    )
    if result.returncode != 0:
        sys.exit("converge failed:\n" + result.stdout[-4000:] + result.stderr[-2000:])


def output_times(prefix: str, count: int, timeout: float) -> dict[str, float]:
    """tag -> mtime of its cups-pdf output file, waiting until all `count` are there."""
    script = (
        f'for f in {OUT_DIR}/*.pdf; do [ -e "$f" ] || continue; '
        f"t=$(pdftotext -q -l 1 \"$f\" - | grep -o '{prefix}[0-9]*' | head -1); "
        f'[ -n "$t" ] && echo "$t $(stat -c %.Y "$f")"; done; true'
    )
    deadline = time.monotonic() + timeout
    while True:
        found = {}
        for line in pexec("proxy", script).splitlines():
            tag, mtime = line.split()
            found[tag] = float(mtime)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(2)


def figures(accepted: dict[str, float], done: dict[str, float]) -> dict[str, float]:
    latencies = sorted(done[tag] - accepted[tag] for tag in accepted if tag in done)
    span = max(done.values()) - min(accepted.values())
    return {
        "slips": len(latencies),
        "slips_per_minute": round(60 * len(latencies) / span, 1) if span > 0 else 0.0,
        "median_latency_s": round(statistics.median(latencies), 2) if latencies else -1,
        "p90_latency_s": round(latencies[int(0.9 * (len(latencies) - 1))], 2) if latencies else -1,
    }


def baseline(count: int) -> dict[str, float]:
    """The same PDFs through `lp` directly on the proxy (as the handler's user)."""
    pexec("proxy", "mkdir -p /srv/bench-slips && chmod 755 /srv/bench-slips")
    for n in range(count):
        tag = "BENCHLP%04d" % n
        pexec("proxy", f"python3 /root/mkpdf.py {tag} > /srv/bench-slips/{tag}.pdf")
    accepted = {}
    for n in range(count):
        tag = "BENCHLP%04d" % n
        pexec("proxy", f"runuser -u libsys-print -- lp -d bench -t {tag} -- /srv/bench-slips/{tag}.pdf")
        accepted[tag] = time.time()
    return figures(accepted, output_times("BENCHLP", count, 600))


MKPDF = r"""
import sys
text = sys.argv[1]
stream = ("BT /F1 24 Tf 72 700 Td (%s) Tj ET" % text).encode()
objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
out = bytearray(b"%PDF-1.4\n"); offs = []
for i, body in enumerate(objs, 1):
    offs.append(len(out)); out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
x = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
for o in offs:
    out += b"%010d 00000 n \n" % o
out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, x)
sys.stdout.buffer.write(bytes(out))
"""


def smtp_run(kind: str, count: int) -> dict[str, float]:
    accepted = json.loads(pexec("source", f"python3 /root/send.py {ADDR['proxy']} {kind} {count}"))
    return figures(accepted, output_times("BENCH" + kind.upper(), count, 900))


def copy_in(name: str, path: str, content: str) -> None:
    subprocess.run(
        ["podman", "exec", "-i", f"{PREFIX}-{name}", "sh", "-c", f"cat > {path}"], input=content.encode(), check=True
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slips", type=int, default=30, help="slips per measurement (max 500)")
    args = parser.parse_args()
    count = max(1, min(args.slips, 500))
    if os.geteuid() != 0:
        sys.exit("run as root (podman containers and networks)")
    cleanup()
    try:
        start()
        with tempfile.TemporaryDirectory() as tmp:
            converge(Path(tmp))
        pexec("proxy", "apt-get install -y -q poppler-utils >/dev/null 2>&1", timeout=900)
        for name in ADDR:
            copy_in(name, "/root/mkpdf.py", MKPDF)
        copy_in("source", "/root/send.py", SEND)
        results = {"baseline": baseline(count)}
        results["pdf"] = smtp_run("pdf", count)
        results["html"] = smtp_run("html", count)
    finally:
        cleanup()
    base = results["baseline"]["slips_per_minute"] or 1
    print(
        f"print_proxy benchmark, {count} slips per measurement (1 SMTP connection, pipe maxproc 2, Debian 12 container)"
    )
    print(f"{'path':10} {'slips/min':>10} {'median s':>9} {'p90 s':>7} {'vs baseline':>12}")
    for name in ("baseline", "pdf", "html"):
        r = results[name]
        print(
            f"{name:10} {r['slips_per_minute']:>10} {r['median_latency_s']:>9} {r['p90_latency_s']:>7} "
            f"{r['slips_per_minute'] / base:>11.2f}x"
        )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
