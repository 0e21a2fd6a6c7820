# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The print handler's defences against mail that is cheap to send and expensive to read:
the charset allowlist, the structure checks on the raw message, and the CPU and wall-clock
limits that end in a permanent rejection. (Driven end to end by the print_proxy scenario.)"""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys

import pytest

from ansible_collections.libsys.onprem.tests.unit.role_files import ROLES, load_role_file

HANDLER = ROLES / "print_proxy" / "files" / "print-handler.py"
LIMITS = {"max_parts": 50, "max_depth": 6}


handler = load_role_file("print_proxy", "print-handler.py", "print_handler")


def nested(depth: int) -> bytes:
    """`depth` nested multipart/mixed levels around one text part."""
    lines = ["From: a@example.org", "MIME-Version: 1.0"]
    for level in range(depth):
        lines += ['Content-Type: multipart/mixed; boundary="b%d"' % level, "", "--b%d" % level]
    lines += ["Content-Type: text/plain", "", "text"]
    lines += ["--b%d--" % level for level in reversed(range(depth))]
    return ("\r\n".join(lines) + "\r\n").encode()


def side_by_side(count: int) -> bytes:
    """One multipart/mixed holding `count` multipart/alternative parts (folded header lines),
    each with one text part: depth 2, whatever the count."""
    lines = ["From: a@example.org", "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="top"', ""]
    for number in range(count):
        lines += ["--top", "Content-Type: multipart/alternative;", ' boundary="s%d"' % number, ""]
        lines += ["--s%d" % number, "Content-Type: text/plain", "", "text", "--s%d--" % number]
    lines += ["--top--"]
    return ("\r\n".join(lines) + "\r\n").encode()


def text_part(charset: str, data: bytes):
    raw = b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n\r\n" + data
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def test_380_levels_are_refused_on_the_raw_message_by_their_count() -> None:
    with pytest.raises(handler.Reject, match="more than 50 MIME parts"):
        handler.prescan(nested(380), LIMITS)


def test_nesting_is_measured_on_the_raw_message() -> None:
    with pytest.raises(handler.Reject, match="MIME nesting deeper than 6"):
        handler.prescan(nested(7), LIMITS)
    handler.prescan(nested(6), LIMITS)
    # Parts side by side are not nested in each other.
    handler.prescan(side_by_side(20), {"max_parts": 50, "max_depth": 2})
    with pytest.raises(handler.Reject, match="more than 50 MIME parts"):
        handler.prescan(side_by_side(60), LIMITS)


@pytest.mark.parametrize(("raw", "depth"), [(nested(5), 5), (side_by_side(10), 2)], ids=["nested", "side-by-side"])
def test_the_raw_check_agrees_with_the_parser(raw: bytes, depth: int) -> None:
    """At the message's depth both let it through; one level less and both refuse it."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    handler.prescan(raw, {"max_parts": 50, "max_depth": depth})
    assert list(handler.walk(message, {"max_parts": 50, "max_depth": depth}))
    below = {"max_parts": 50, "max_depth": depth - 1}
    with pytest.raises(handler.Reject, match="MIME nesting deeper than %d" % (depth - 1)):
        handler.prescan(raw, below)
    with pytest.raises(handler.Reject, match="MIME nesting deeper than %d" % (depth - 1)):
        list(handler.walk(message, below))


def test_an_attached_message_is_refused_not_walked_into() -> None:
    """A message/rfc822 part is refused: its own parts (here a PDF) are never printed."""
    raw = (
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="m"\r\n\r\n'
        b"--m\r\nContent-Type: text/plain\r\n\r\nsee the attached message\r\n"
        b"--m\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
        b"--m--\r\n"
    )
    handler.prescan(raw, LIMITS)
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    with pytest.raises(handler.Reject, match=r"attached messages \(message/rfc822\) are not printed"):
        handler.classify(message, {"max_parts": 50, "max_depth": 6, "max_decoded": 1 << 20})


def test_a_punycode_body_is_refused_before_it_is_decoded() -> None:
    body = b"a" * 1_500_000 + b"-" + b"9" * 7
    with pytest.raises(handler.Reject, match="charset punycode is not on the allowlist"):
        handler.body_html(text_part("punycode", body))


@pytest.mark.parametrize(
    ("charset", "data", "text"),
    [
        ("iso-8859-1", "Bibliothèque".encode("latin-1"), "Bibliothèque"),
        ("windows-1250", "Knihovna č. 5".encode("cp1250"), "Knihovna č. 5"),
        ("shift_jis", "図書館".encode("shift_jis"), "図書館"),
        ("x-unknown-label", "naïve".encode(), "naïve"),
    ],
)
def test_allowed_and_unknown_charsets_are_read(charset: str, data: bytes, text: str) -> None:
    assert text in handler.body_html(text_part(charset, data))


LIMITED_RUN = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("print_handler", sys.argv[1])
handler = importlib.util.module_from_spec(spec)
spec.loader.exec_module(handler)
handler.limit_time(int(sys.argv[2]), int(sys.argv[3]))
try:
    if sys.argv[4] == "cpu":
        while True:
            pass
    time.sleep(30)
except handler.Reject as error:
    print("REJECT " + str(error))
"""


@pytest.mark.parametrize(
    ("cpu", "wall", "work", "expected"),
    [(1, 20, "cpu", "REJECT used more than 1 s of CPU"), (5, 1, "sleep", "REJECT took longer than 1 s")],
    ids=["cpu", "wall-clock"],
)
def test_a_run_past_its_limit_ends_in_a_rejection(cpu: int, wall: int, work: str, expected: str) -> None:
    """The soft CPU limit and the alarm raise Reject (a bounce with a dead letter), so the
    process is not killed by a signal, which Postfix would retry for days."""
    result = subprocess.run(
        [sys.executable, "-B", "-c", LIMITED_RUN, str(HANDLER), str(cpu), str(wall), work],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout.strip()) == (0, expected), result.stderr
