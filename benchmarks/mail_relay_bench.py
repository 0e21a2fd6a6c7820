# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark libsys.onprem.mail_relay against a stock Debian Postfix relay, same TLS.

Everything runs in podman containers this script creates on its own network
(bench-mail_relay-net, 198.51.100.240/28, the benchmarks' documentation range) and removes at
the end:

  source  (peer image)  a Python SMTP client, N parallel connections, STARTTLS, several
                        messages per connection (smtp-source cannot speak TLS)
  relay   (Debian 12)   libsys.onprem.mail_relay applied with ansible-playbook (DKIM signing,
                        envelope rewriting, recipient-domain checks, TLS 1.2+)
  stock   (peer image)  Debian's stock Postfix main.cf plus relayhost, mynetworks and the same
                        TLS (certificate, smtpd "may", smtp "encrypt", TLS 1.2+)
  sink    (peer image)  a Postfix receiving over STARTTLS and discarding (smtp-sink cannot
                        speak TLS either)

For each relay: messages/s from the first MAIL FROM to the last "status=sent" in the relay's
log, and the queue latency (Postfix's delay= per delivery) p50/p99. Rounds alternate relay and
stock; the figures are medians over the rounds. The anvil rate limits are off on both (they
would cap the source, not measure the relay).

Then an overdue-notice run: the relay with Postfix's default per-client limits (60 connections
and 600 messages a minute), 2,000 notices in 200 sessions from one vendor address, first with
mail_relay_rate_limit_allowed_sources true (the baseline: 4xx replies), then with the role's
default (the vendor's relays exempt). Target: all 2,000 accepted within 60 s, no 4xx.
Run as root: python benchmarks/mail_relay_bench.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from offline_containers import NETWORK_OPTIONS, container_options

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PREFIX = "bench-mail_relay"
NETWORK = f"{PREFIX}-net"
# The benchmarks' /28 of the documentation range 198.51.100.0/24 (CONTRIBUTING, Tests).
SUBNET = "198.51.100.240/28"
# Filled in by start_containers() from podman: each container's address.
ADDR = {"sink": "", "source": "", "relay": "", "stock": ""}
IMAGES = {
    "sink": "localhost/libsys-onprem/peer:12",
    "source": "localhost/libsys-onprem/peer:12",
    "relay": "localhost/libsys-onprem/debian:12",
    "stock": "localhost/libsys-onprem/peer:12",
}
APT_CACHE = "/var/cache/libsys-onprem/apt/bench-mail_relay-12"
TARGET_RATIO = 0.8

LOAD = r"""
import smtplib, ssl, sys, threading, time, uuid
host, total, conns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
body = ("From: Library <notices@library.example.edu>\r\nTo: patron@library.example.edu\r\n"
        "Subject: Hold request ready\r\nMessage-Id: <%s@bench.example.org>\r\n\r\n"
        + "Your hold request is ready for pickup at the circulation desk.\r\n" * 20)
errors = []
def worker(n):
    try:
        s = smtplib.SMTP(host, 25, timeout=60)
        s.ehlo("bench.example.org"); s.starttls(context=ctx); s.ehlo("bench.example.org")
        for _ in range(n):
            s.sendmail("notices@library.example.edu", ["patron@library.example.edu"], body % uuid.uuid4().hex)
        s.quit()
    except Exception as exc:  # noqa: BLE001 - reported, the run is then invalid
        errors.append(repr(exc))
per = [total // conns + (1 if i < total % conns else 0) for i in range(conns)]
start = time.time()
threads = [threading.Thread(target=worker, args=(n,)) for n in per]
[t.start() for t in threads]; [t.join() for t in threads]
print("%.6f %.6f %d" % (start, time.time(), len(errors)))
for e in errors[:3]:
    print(e, file=sys.stderr)
"""


# An overdue-notice run from one vendor address: SESSIONS SMTP sessions of PER messages each,
# at most PARALLEL at a time, as fast as the relay takes them. Counts the 4xx replies (anvil's
# 421 and 450) and the messages accepted.
NOTICE_RUN = r"""
import smtplib, ssl, sys, threading, time, uuid
host, sessions, per, parallel = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
body = ("From: Library <notices@library.example.edu>\r\nTo: patron@library.example.edu\r\n"
        "Subject: Overdue notice\r\nMessage-Id: <%s@bench.example.org>\r\n\r\n"
        + "An item you borrowed is overdue.\r\n" * 10)
lock = threading.Lock()
counts = {"accepted": 0, "4xx": 0, "other": 0}
queue = list(range(sessions))
def session():
    accepted = 0
    try:
        s = smtplib.SMTP(host, 25, timeout=60)
        s.ehlo("bench.example.org"); s.starttls(context=ctx); s.ehlo("bench.example.org")
        for _ in range(per):
            s.sendmail("notices@library.example.edu", ["patron@library.example.edu"], body % uuid.uuid4().hex)
            accepted += 1
        s.quit()
        kind = None
    except smtplib.SMTPResponseException as exc:
        kind = "4xx" if 400 <= exc.smtp_code < 500 else "other"
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        kind = "4xx" if any(400 <= code < 500 for code in codes) else "other"
    except Exception:  # noqa: BLE001 - counted
        kind = "other"
    with lock:
        counts["accepted"] += accepted
        if kind:
            counts[kind] += 1
def worker():
    while True:
        with lock:
            if not queue:
                return
            queue.pop()
        session()
start = time.time()
threads = [threading.Thread(target=worker) for _ in range(parallel)]
[t.start() for t in threads]; [t.join() for t in threads]
print("%.3f %d %d %d" % (time.time() - start, counts["accepted"], counts["4xx"], counts["other"]))
"""
NOTICE_SESSIONS, NOTICE_PER_SESSION, NOTICE_PARALLEL = 200, 10, 20


def run(*cmd: str, check: bool = True, capture: bool = True, timeout: int = 900, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), check=check, text=True, timeout=timeout, capture_output=capture, **kw)


def pexec(name: str, command: str, check: bool = True, timeout: int = 900) -> str:
    return run("podman", "exec", f"{PREFIX}-{name}", "bash", "-c", command, check=check, timeout=timeout).stdout


def cleanup() -> None:
    for name in ADDR:
        run("podman", "rm", "-f", "-t", "0", f"{PREFIX}-{name}", check=False)
    run("podman", "network", "rm", "-f", NETWORK, check=False)


def start_containers() -> None:
    run("podman", "network", "create", *NETWORK_OPTIONS, "--subnet", SUBNET, NETWORK)
    Path(APT_CACHE).mkdir(parents=True, exist_ok=True)
    for name, image in IMAGES.items():
        volume = ["-v", f"{APT_CACHE}:/var/cache/apt/archives"] if name == "relay" else []
        run(
            "podman",
            "run",
            "-d",
            "--name",
            f"{PREFIX}-{name}",
            "--hostname",
            f"{name}.bench.example.org",
            "--network",
            NETWORK,
            "--systemd=always",
            "--cap-add",
            "NET_ADMIN",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            *container_options(),
            *volume,
            image,
            "/sbin/init",
        )
    for name in ADDR:
        ADDR[name] = run(
            "podman",
            "inspect",
            "-f",
            f'{{{{(index .NetworkSettings.Networks "{NETWORK}").IPAddress}}}}',
            f"{PREFIX}-{name}",
        ).stdout.strip()
        for _ in range(60):
            state = run("podman", "exec", f"{PREFIX}-{name}", "systemctl", "is-system-running", check=False)
            if state.stdout.strip() in ("running", "degraded"):
                break
            time.sleep(1)


# Debian's stock main.cf (the "Internet Site" one its installer writes), then a certificate.
CERT = (
    "cp /usr/share/postfix/main.cf.debian /etc/postfix/main.cf && newaliases && "
    "(test -f /etc/ssl/bench.crt || openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 30 "
    "-subj /CN=$(hostname) -keyout /etc/ssl/bench.key -out /etc/ssl/bench.crt 2>/dev/null)"
)


def setup_sink() -> None:
    pexec(
        "sink",
        CERT
        + " && "
        + " && ".join(
            f"postconf -e {shlex_quote(s)}"
            for s in [
                "mydestination =",
                "relay_domains =",
                f"mynetworks = 127.0.0.0/8 {SUBNET}",
                "inet_protocols = ipv4",
                "smtpd_relay_restrictions = permit_mynetworks, reject",
                "default_transport = discard:",
                "smtpd_tls_cert_file = /etc/ssl/bench.crt",
                "smtpd_tls_key_file = /etc/ssl/bench.key",
                "smtpd_tls_security_level = may",
            ]
        )
        + " && systemctl restart postfix",
    )


def setup_stock() -> None:
    pexec(
        "stock",
        CERT
        + " && "
        + " && ".join(
            f"postconf -e {shlex_quote(s)}"
            for s in [
                f"relayhost = [{ADDR['sink']}]:25",
                f"mynetworks = 127.0.0.0/8 {SUBNET}",
                "inet_protocols = ipv4",
                "myhostname = stock.bench.example.org",
                "mydestination = localhost",
                "smtpd_tls_cert_file = /etc/ssl/bench.crt",
                "smtpd_tls_key_file = /etc/ssl/bench.key",
                "smtpd_tls_security_level = may",
                "smtp_tls_security_level = encrypt",
                "smtpd_tls_protocols = >=TLSv1.2",
                "smtp_tls_protocols = >=TLSv1.2",
                "smtpd_tls_mandatory_protocols = >=TLSv1.2",
                "smtp_tls_mandatory_protocols = >=TLSv1.2",
                "maillog_file = /var/log/postfix-bench.log",
            ]
        )
        + " && systemctl restart postfix",
    )


def shlex_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


PLAYBOOK = """---
- name: Apply libsys.onprem.mail_relay for the benchmark
  hosts: relay
  gather_facts: true
  vars:
    onprem_vendor_mail_relays: [%(subnet)s]
    onprem_institution_domain: library.example.edu
    postfix_myhostname: relay.bench.example.org
    postfix_inet_protocols: ipv4
%(limits)s
    mail_relay_relayhost: "[%(sink)s]:25"
    mail_relay_recipient_domains: [library.example.edu]
    mail_relay_bounce_address: bounces@library.example.edu
    mail_relay_report_dir: ""
    # The role's entry, and a dependent of the benchmark's own that logs to a file.
    postfix_dependents:
      - "{{ mail_relay_postfix_dependent }}"
      - {name: bench, main_cf: {maillog_file: /var/log/postfix-bench.log}}
  roles:
    - role: libsys.onprem.postfix
    - role: libsys.onprem.mail_relay
"""


# Throughput rounds: the anvil rate limits off (they would cap the source, not measure the
# relay). The notice run: the default limits, with the vendor's relays exempt (the role's
# default) or, as its baseline, limited (mail_relay_rate_limit_allowed_sources: true).
NO_LIMITS = """    postfix_client_connection_rate_limit: 0
    postfix_client_message_rate_limit: 0
    postfix_client_recipient_rate_limit: 0"""
DEFAULT_LIMITS_EXEMPT = "    mail_relay_rate_limit_allowed_sources: false"
DEFAULT_LIMITS_LIMITED = "    mail_relay_rate_limit_allowed_sources: true"


def setup_relay(workdir: Path, limits: str = NO_LIMITS) -> None:
    (workdir / "inventory.yml").write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {
                        "relay": {
                            "ansible_connection": "containers.podman.podman",
                            "ansible_host": f"{PREFIX}-relay",
                            "ansible_python_interpreter": "/usr/bin/python3",
                        }
                    }
                }
            }
        )
    )
    (workdir / "bench.yml").write_text(PLAYBOOK % {"subnet": SUBNET, "sink": ADDR["sink"], "limits": limits})
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".build" / "collections"),
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_NOCOLOR="1",
    )
    bindir = Path(sys.executable).parent
    result = run(
        str(bindir / "ansible-playbook"),
        "-i",
        str(workdir / "inventory.yml"),
        str(workdir / "bench.yml"),
        check=False,
        env=env,
        timeout=1800,
    )
    if result.returncode != 0:
        print(result.stdout[-4000:], result.stderr[-2000:])
        raise SystemExit("applying the role failed")


def sent_delays(name: str) -> list[float]:
    out = pexec(name, "grep -h 'status=sent' /var/log/postfix-bench.log 2>/dev/null | grep -o ' delay=[0-9.]*' || true")
    return [float(x.split("=")[1]) for x in out.split()]


def one_round(name: str, total: int, conns: int) -> dict:
    pexec(name, ": > /var/log/postfix-bench.log; postqueue -f >/dev/null 2>&1 || true")
    before = len(sent_delays(name))
    out = pexec("source", f"python3 -c {shlex_quote(LOAD)} {ADDR[name]} {total} {conns}")
    start, accepted_at, errors = out.split()[:3]
    if int(errors):
        raise SystemExit(f"{name}: {errors} SMTP sessions failed")
    deadline = time.time() + 600
    while True:
        delays = sent_delays(name)[before:]
        if len(delays) >= total or time.time() > deadline:
            break
        time.sleep(0.25)
    done = time.time()
    if len(delays) < total:
        raise SystemExit(f"{name}: only {len(delays)} of {total} delivered in time")
    elapsed = done - float(start)
    delays.sort()
    return {
        "msgs_per_s": total / elapsed,
        "accept_per_s": total / (float(accepted_at) - float(start)),
        "p50": delays[len(delays) // 2],
        "p99": delays[min(len(delays) - 1, int(len(delays) * 0.99))],
    }


def notice_run(workdir: Path, limits: str) -> dict:
    """Apply the relay with the default rate limits (and `limits`), then the notice run."""
    setup_relay(workdir, limits)
    pexec("relay", "postsuper -d ALL >/dev/null 2>&1 || true")
    out = pexec(
        "source",
        f"python3 -c {shlex_quote(NOTICE_RUN)} {ADDR['relay']} "
        f"{NOTICE_SESSIONS} {NOTICE_PER_SESSION} {NOTICE_PARALLEL}",
    )
    elapsed, accepted, temporary, other = out.split()[:4]
    return {"seconds": float(elapsed), "accepted": int(accepted), "4xx": int(temporary), "other": int(other)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500, help="messages per round (default 500)")
    parser.add_argument("--connections", type=int, default=8, help="parallel SMTP sessions (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per relay (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the containers (debugging)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root (podman networks with fixed subnets)")
        return 2
    cleanup()
    workdir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-"))
    try:
        start_containers()
        setup_sink()
        setup_stock()
        setup_relay(workdir)
        for name in ("relay", "stock"):  # warm-up (TLS session caches, process pools)
            one_round(name, 50, args.connections)
        results: dict[str, list[dict]] = {"relay": [], "stock": []}
        for _ in range(args.rounds):
            for name in ("relay", "stock"):
                results[name].append(one_round(name, args.messages, args.connections))
        summary = {
            name: {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
            for name, rounds in results.items()
        }
        ratio = summary["relay"]["msgs_per_s"] / summary["stock"]["msgs_per_s"]
        print(
            f"mail_relay benchmark: {args.rounds} rounds x {args.messages} messages, "
            f"{args.connections} STARTTLS sessions, TLS on both legs (medians)"
        )
        for name, label in (("relay", "libsys.onprem.mail_relay"), ("stock", "stock Postfix relay")):
            s = summary[name]
            print(
                f"  {label:28s} {s['msgs_per_s']:7.1f} msg/s relayed  {s['accept_per_s']:7.1f} msg/s accepted  "
                f"queue latency p50 {s['p50']:.2f} s  p99 {s['p99']:.2f} s"
            )
        print(
            f"  ratio mail_relay / stock: {ratio:.2f} x (target >= {TARGET_RATIO} x: "
            f"{'met' if ratio >= TARGET_RATIO else 'NOT met'})"
        )
        # The overdue-notice run, with the default anvil limits (60 connections and 600
        # messages a minute per client): the baseline with the vendor's address limited, then
        # the role's default, where it is exempt.
        limited = notice_run(workdir, DEFAULT_LIMITS_LIMITED)
        exempt = notice_run(workdir, DEFAULT_LIMITS_EXEMPT)
        total = NOTICE_SESSIONS * NOTICE_PER_SESSION
        print(
            f"notice run: {total} notices in {NOTICE_SESSIONS} sessions from one vendor address, "
            f"{NOTICE_PARALLEL} at a time, default rate limits"
        )
        for label, r in (("vendor relays limited (baseline)", limited), ("vendor relays exempt (default)", exempt)):
            print(
                f"  {label:34s} {r['accepted']:5d} accepted  {r['4xx']:4d} sessions with 4xx  "
                f"{r['other']:3d} other failures  in {r['seconds']:.1f} s"
            )
        met = exempt["accepted"] == total and exempt["4xx"] == 0 and exempt["other"] == 0 and exempt["seconds"] <= 60
        print(
            f"  accepted exempt / limited: {exempt['accepted'] / max(limited['accepted'], 1):.1f} x "
            f"(target: all {total} accepted within 60 s, no 4xx: {'met' if met else 'NOT met'})"
        )
        print(json.dumps({"summary": summary, "ratio": ratio, "rounds": results, "notice_run": [limited, exempt]}))
    finally:
        if not args.keep:
            cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
