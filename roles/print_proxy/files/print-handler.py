# Managed by the libsys.onprem.print_proxy role; local changes are overwritten.
"""Print one e-mailed slip: called by Postfix pipe(8) with a fixed argv, message on stdin.

    print-handler --config FILE --sender=SENDER --recipient=RECIPIENT

Renders the HTML (or plain-text) body to PDF with WeasyPrint, passes PDF attachments through
(after checking the %PDF magic), refuses every other type (allowlist), and submits the PDFs
with ``lp -d QUEUE -- FILE`` (argument lists only, file names made here, never from the
message). Exit codes follow sysexits(3) as pipe(8) reads them:

  0   printed
  65  EX_DATAERR   hostile or unprintable input: bounced, copy kept in the dead-letter Maildir
  67  EX_NOUSER    the recipient is not a configured printer
  75  EX_TEMPFAIL  CUPS refused or failed (or an internal error): Postfix keeps it deferred
  77  EX_NOPERM    the sender may not print to this printer: bounced

One line per job goes to syslog (the journal): printer, sender, outcome, detail.
"""

from __future__ import annotations

import argparse
import codecs
import email
import email.policy
import fcntl
import html
import json
import mailbox
import os
import re
import resource
import signal
import subprocess
import sys
import syslog
import tempfile
import time
import uuid
from email.message import Message

EX_OK = 0
EX_DATAERR = 65
EX_NOUSER = 67
EX_TEMPFAIL = 75
EX_NOPERM = 77

BODY_TYPES = ("text/html", "text/plain")
PDF_TYPES = ("application/pdf", "application/x-pdf")
CONTAINER_TYPES = ("multipart/",)
INLINE_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")
# Charsets a body may be decoded from: Unicode, the ISO 8859 and Windows single-byte sets, KOI8
# and the common East Asian ones, all decoded in linear time. Another known codec (punycode
# decodes in quadratic time) is refused before any decoding; a label Python does not know is
# read as UTF-8 with replacement characters.
CHARSETS = frozenset(
    codecs.lookup(name).name
    for name in (
        "utf-8", "us-ascii", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "koi8-r", "koi8-u",
        "gb2312", "gbk", "gb18030", "big5", "shift_jis", "euc-jp", "iso-2022-jp", "euc-kr",
        *(f"iso-8859-{number}" for number in (*range(1, 12), *range(13, 17))),
        *(f"windows-{number}" for number in range(1250, 1259)),
    )
)
# A multipart Content-Type header with its continuation lines, and its boundary parameter.
MULTIPART_HEADER = re.compile(rb"(?im)^content-type:[ \t]*multipart/[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*")
BOUNDARY = re.compile(rb'(?i)\bboundary[ \t]*=[ \t]*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))')


class Reject(Exception):
    """Input we will not print: bounce with this text (and keep a dead-letter copy)."""

    def __init__(self, text: str, code: int = EX_DATAERR) -> None:
        super().__init__(text)
        self.code = code


class TempFail(Exception):
    """Printing failed for a reason that may go away (CUPS down): leave the mail deferred."""


def clean(value: object, limit: int = 200, spaces: bool = False) -> str:
    """A value safe for one log line: printable ASCII, no quotes (nor spaces), bounded."""
    text = re.sub(r"[^\x20-\x7e]" if spaces else r"[^\x21-\x7e]", "?", str(value))
    text = text.replace('"', "?")
    return text[:limit] or "-"


def message_id(raw: bytes) -> str:
    match = re.search(rb"(?im)^message-id:[ \t]*(<[^>\r\n]{1,200}>)", raw[:65536])
    return match.group(1).decode("ascii", "replace") if match else "-"


def log_job(printer: str, sender: str, msgid: str, outcome: str, detail: str) -> None:
    syslog.syslog(
        syslog.LOG_INFO if outcome == "printed" else syslog.LOG_WARNING,
        f"printer={clean(printer)} sender={clean(sender)} msgid={clean(msgid)} "
        f'outcome={outcome} detail="{clean(detail, 400, spaces=True)}"',
    )


def update_stats(state_dir: str, printer: str, outcome: str) -> None:
    """Count jobs per printer and outcome in a small JSON file (for libsys-print-status)."""
    path = os.path.join(state_dir, "stats.json")
    try:
        with open(os.path.join(state_dir, "stats.lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with open(path, encoding="utf-8") as handle:
                    stats = json.load(handle)
            except (OSError, ValueError):
                stats = {}
            entry = stats.setdefault(printer, {})
            entry[outcome] = int(entry.get(outcome, 0)) + 1
            entry["last_" + outcome] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".stats-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(stats, handle, indent=1, sort_keys=True)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    except OSError as error:
        syslog.syslog(syslog.LOG_ERR, f"cannot update {path}: {clean(error)}")


def dead_letter(directory: str, raw: bytes) -> str:
    try:
        return mailbox.Maildir(directory, create=False).add(raw)
    except Exception as error:  # never lose the verdict because of this
        syslog.syslog(syslog.LOG_ERR, f"cannot store a dead letter in {directory}: {clean(error)}")
        return "-"


def read_message(limit: int) -> bytes:
    raw = sys.stdin.buffer.read(limit + 1)
    if len(raw) > limit:
        raise Reject(f"message larger than {limit} bytes")
    return raw


def prescan(raw: bytes, limits: dict) -> None:
    """Bound the MIME structure on the raw bytes, before the parser sees them: the email
    package's time grows faster than linearly with the nesting depth (380 levels took minutes).
    A multipart part spans its Content-Type header to its closing delimiter; the most spans
    open at once is the nesting depth. Cheap: at most max_parts searches of the message."""
    headers = MULTIPART_HEADER.findall(raw)
    if len(headers) > limits["max_parts"]:
        raise Reject(f"more than {limits['max_parts']} MIME parts")
    events = []
    position = 0
    for header in headers:
        start = raw.find(header, position)
        position = start + len(header)
        match = BOUNDARY.search(header)
        if match is None:
            continue
        closing = raw.find(b"--" + (match.group(1) or match.group(2)) + b"--", position)
        events += [(start, 1), (closing if closing >= 0 else len(raw), -1)]
    depth = deepest = 0
    for _position, step in sorted(events):
        depth += step
        deepest = max(deepest, depth)
    if deepest > limits["max_depth"]:
        raise Reject(f"MIME nesting deeper than {limits['max_depth']}")


def walk(part: Message, limits: dict, depth: int = 0, counter: list | None = None):
    """Yield the leaf parts with their depth, enforcing the part count and nesting depth."""
    counter = counter if counter is not None else [0]
    counter[0] += 1
    if counter[0] > limits["max_parts"]:
        raise Reject(f"more than {limits['max_parts']} MIME parts")
    if depth > limits["max_depth"]:
        raise Reject(f"MIME nesting deeper than {limits['max_depth']}")
    # Before is_multipart(): the parser gives an attached message a list payload too, and
    # walking into it would print the attachments of a message someone forwarded.
    if part.get_content_type() == "message/rfc822":
        raise Reject("attached messages (message/rfc822) are not printed")
    if part.is_multipart():
        payload = part.get_payload()
        if not isinstance(payload, list):
            raise Reject("malformed multipart")
        for child in payload:
            yield from walk(child, limits, depth + 1, counter)
    else:
        yield part


def decoded(part: Message, budget: list) -> bytes:
    data = part.get_payload(decode=True) or b""
    budget[0] -= len(data)
    if budget[0] < 0:
        raise Reject("decoded content larger than the limit")
    return data


def classify(message: Message, limits: dict) -> tuple[Message | None, list[bytes], dict]:
    """Pick the body to render, the PDF attachments and the inline images (by Content-ID)."""
    if message.defects and any(
        type(defect).__name__ in ("StartBoundaryNotFoundDefect", "MultipartInvariantViolationDefect")
        for defect in message.defects
    ):
        raise Reject("malformed MIME structure")
    budget = [limits["max_decoded"]]
    bodies: dict[str, Message] = {}
    pdfs: list[bytes] = []
    images: dict[str, tuple[str, bytes]] = {}
    for part in walk(message, limits):
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "inline").lower()
        if ctype in BODY_TYPES and disposition != "attachment":
            bodies.setdefault(ctype, part)
            decoded(part, budget)
        elif ctype in PDF_TYPES or (ctype == "application/octet-stream" and disposition == "attachment"):
            data = decoded(part, budget)
            if not data.startswith(b"%PDF-"):
                if ctype == "application/octet-stream":
                    raise Reject("attachment of type application/octet-stream is not a PDF")
                raise Reject("an application/pdf part does not start with %PDF-")
            pdfs.append(data)
        elif ctype in INLINE_IMAGE_TYPES and part.get("Content-ID"):
            cid = str(part.get("Content-ID")).strip().strip("<>")
            images[cid] = (ctype, decoded(part, budget))
        elif ctype in BODY_TYPES:
            raise Reject(f"{ctype} attachments are not printed; send a PDF")
        else:
            raise Reject(f"content type {clean(ctype, 60)} is not on the allowlist")
    body = bodies.get("text/html") or bodies.get("text/plain")
    return body, pdfs, images


def body_html(part: Message) -> str:
    label = part.get_content_charset() or "utf-8"
    try:
        charset = codecs.lookup(label).name
    except LookupError:
        charset = "utf-8"
    if charset not in CHARSETS:
        raise Reject(f"charset {clean(label, 40)} is not on the allowlist")
    data = part.get_payload(decode=True) or b""
    text = data.decode(charset, errors="replace")
    if part.get_content_type() == "text/html":
        return text
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
        "<pre style='white-space: pre-wrap; font-family: monospace; font-size: 10pt'>"
        f"{html.escape(text)}</pre></body></html>"
    )


def render(document: str, images: dict, paper: str, out: str) -> None:
    """HTML to PDF with WeasyPrint; it may fetch nothing but the message's own cid: images."""
    import weasyprint  # noqa: PLC0415 - imported here: PDF-only jobs do not pay for it

    def fetcher(url: str, *args, **kwargs) -> dict:
        if url.startswith("cid:") and url[4:] in images:
            mime, data = images[url[4:]]
            return {"string": data, "mime_type": mime}
        raise ValueError(f"fetching {url[:80]} is not allowed")

    page = weasyprint.CSS(string=f"@page {{ size: {paper}; margin: 12mm }}")
    weasyprint.HTML(string=document, url_fetcher=fetcher, base_url="cid:/").write_pdf(out, stylesheets=[page])


def submit(queue: str, path: str, title: str, timeout: int) -> str:
    command = ["/usr/bin/lp", "-d", queue, "-t", title, "--", path]
    try:
        # An argument list (no shell); the file name was made here, "--" ends the options.
        result = subprocess.run(  # noqa: S603 - argument list, no shell
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise TempFail(f"lp failed: {error}") from error
    if result.returncode != 0:
        raise TempFail(f"lp exited {result.returncode}: {result.stderr.strip()[:200]}")
    match = re.search(r"request id is (\S+)", result.stdout)
    return match.group(1) if match else "?"


def sender_allowed(sender: str, allowed: list[str]) -> bool:
    if not allowed:
        return True
    sender = sender.lower()
    domain = sender.rpartition("@")[2]
    # The same matches as Postfix's check_sender_access: the address, or the domain and its
    # subdomains for an @domain entry.
    return any(
        entry == sender or (entry.startswith("@") and (domain == entry[1:] or domain.endswith("." + entry[1:])))
        for entry in allowed
    )


def process(args: argparse.Namespace, config: dict, raw: bytes) -> tuple[str, str]:
    printer = config["printers"].get(args.recipient.lower())
    if printer is None:
        raise Reject(f"{args.recipient} is not a printer of this print proxy", EX_NOUSER)
    if not sender_allowed(args.sender, printer["allowed_senders"]):
        raise Reject(f"sender {args.sender} may not print to {args.recipient}", EX_NOPERM)
    limits = config["limits"]
    prescan(raw, limits)
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    body, pdfs, images = classify(message, limits)
    print_body = body is not None and (not pdfs or printer["print_body_with_attachments"])
    if not print_body and not pdfs:
        raise Reject("nothing printable: no text/html or text/plain body, no PDF attachment")
    jobs = []
    with tempfile.TemporaryDirectory(prefix="job-", dir=config["spool_dir"]) as work:
        files = []
        if print_body:
            document = body_html(body)
            out = os.path.join(work, "body.pdf")
            try:
                render(document, images, printer["paper_css"], out)
            except Reject:
                raise
            except Exception as error:  # any renderer failure is unprintable input
                raise Reject(f"the body could not be rendered: {clean(error, 200)}") from error
            files.append(out)
        for number, data in enumerate(pdfs, 1):
            out = os.path.join(work, f"attachment-{number}.pdf")
            with open(out, "wb") as handle:
                handle.write(data)
            files.append(out)
        # The input is read and rendered: from here on lp's own timeout decides (TempFail).
        signal.alarm(0)
        job_id = uuid.uuid4().hex[:12]
        for number, path in enumerate(files, 1):
            jobs.append(submit(printer["queue"], path, f"slip-{job_id}-{number}", config["lp_timeout"]))
    return printer["name"], f"jobs={','.join(jobs)}"


def limit_time(cpu_seconds: int, wall_seconds: int) -> None:
    """Past cpu_seconds of CPU (the soft limit: SIGXCPU) or wall_seconds of wall-clock time
    (SIGALRM) the run raises Reject: a permanent rejection with a dead letter and a journal
    line, not a kill that Postfix would retry for days. The hard CPU limit, 15 s above the soft
    one, still kills a run stuck where Python cannot raise."""

    def over(what: str):
        def handler(signum: int, _frame) -> None:
            signal.signal(signum, signal.SIG_IGN)  # once: the cleanup must not be interrupted
            raise Reject(what)

        return handler

    signal.signal(signal.SIGXCPU, over(f"used more than {cpu_seconds} s of CPU"))
    signal.signal(signal.SIGALRM, over(f"took longer than {wall_seconds} s"))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 15))
    signal.alarm(wall_seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--sender", required=True)
    parser.add_argument("--recipient", required=True)
    args = parser.parse_args()
    syslog.openlog("libsys-print-proxy", syslog.LOG_PID, syslog.LOG_MAIL)
    os.umask(0o077)
    try:
        with open(args.config, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as error:
        syslog.syslog(syslog.LOG_ERR, f"cannot read {args.config}: {clean(error)}")
        print(f"print proxy configuration unreadable: {error}")
        return EX_TEMPFAIL
    limits = config["limits"]
    # Fontconfig's cache (WeasyPrint) in the handler's own spool, not a home it cannot write.
    os.environ["XDG_CACHE_HOME"] = os.path.join(config["spool_dir"], ".cache")
    limit_time(limits["cpu_seconds"], limits["wall_seconds"])
    name = config["printers"].get(args.recipient.lower(), {}).get("name", args.recipient)
    raw = b""
    try:
        raw = read_message(limits["max_message"])
        name, detail = process(args, config, raw)
    except Reject as error:
        signal.alarm(0)
        stored = dead_letter(config["dead_letter_dir"], raw) if raw else "-"
        outcome = "refused" if error.code in (EX_NOPERM, EX_NOUSER) else "rejected"
        log_job(name, args.sender, message_id(raw), outcome, f"{error} dead_letter={stored}")
        update_stats(config["state_dir"], name, outcome)
        print(f"print proxy: {error}")
        return error.code
    except TempFail as error:
        log_job(name, args.sender, message_id(raw), "deferred", str(error))
        update_stats(config["state_dir"], name, "deferred")
        print(f"print proxy: printing failed, will retry: {error}")
        return EX_TEMPFAIL
    except RecursionError:
        stored = dead_letter(config["dead_letter_dir"], raw)
        log_job(name, args.sender, message_id(raw), "rejected", f"MIME structure too deep dead_letter={stored}")
        update_stats(config["state_dir"], name, "rejected")
        print("print proxy: MIME structure too deep")
        return EX_DATAERR
    except Exception as error:  # an internal error must not lose the mail
        log_job(name, args.sender, message_id(raw), "deferred", f"internal error {type(error).__name__}: {error}")
        update_stats(config["state_dir"], name, "deferred")
        print("print proxy: internal error, will retry")
        return EX_TEMPFAIL
    log_job(name, args.sender, message_id(raw), "printed", detail)
    update_stats(config["state_dir"], name, "printed")
    return EX_OK


if __name__ == "__main__":
    sys.exit(main())
