# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.libsys.onprem.plugins.module_utils import sip2

# Messages captured from production ACS systems and the SIP2 specification's examples.
REAL_MESSAGES = [
    b"9900302.00AY1AZFCA5\r",
    b"98YYYYYN60000320130424    1135112.00AOEPLMNA|AMEPLMNA|BXYYYYYYYYYYYNNYYY|ANSIPCHK|AY1AZE80C\r",
]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"9900302.00AY1AZ", "FCA5"),
        (b"9900802.00AY1AZ", "FCA0"),
        (b"98YYYYYN60000320130424    1135112.00AOEPLMNA|AMEPLMNA|BXYYYYYYYYYYYNNYYY|ANSIPCHK|AY1AZ", "E80C"),
        (b"", "0000"),
        (b"\x01", "FFFF"),
    ],
)
def test_checksum_known_values(data: bytes, expected: str) -> None:
    assert sip2.checksum(data) == expected


@pytest.mark.parametrize("message", REAL_MESSAGES)
def test_verify_real_messages(message: bytes) -> None:
    assert sip2.verify(message)


@pytest.mark.parametrize(
    "message",
    [
        b"9900302.00AY1AZFCA6\r",  # last digit off by one
        b"9900302.00AY2AZFCA5\r",  # sequence changed, checksum kept
        b"9900302.00AY1AZ\r",  # no checksum digits
        b"9900302.00\r",  # no error detection at all
        b"9900402.00AY1AZFCA5\r",  # body changed
    ],
)
def test_verify_rejects_wrong_or_missing_checksum(message: bytes) -> None:
    assert not sip2.verify(message)


def test_verify_accepts_lowercase_hex() -> None:
    assert sip2.verify(b"9900302.00AY1AZfca5\r")


def test_build_sc_status_matches_reference() -> None:
    assert sip2.build_sc_status(max_print_width=30, sequence=1) == b"9900302.00AY1AZFCA5\r"


def test_build_login_layout() -> None:
    msg = sip2.build_login("sc01", "s3cret", "MAIN", sequence=4)
    assert msg.startswith(b"9300CNsc01|COs3cret|CPMAIN|AY4AZ")
    assert msg.endswith(b"\r")
    assert sip2.verify(msg)
    parsed = sip2.parse(msg)
    assert parsed.fixed == {"uid_algorithm": "0", "pwd_algorithm": "0"}
    assert parsed.fields == {"CN": "sc01", "CO": "s3cret", "CP": "MAIN"}
    assert parsed.sequence == 4


def test_build_login_without_location_omits_cp() -> None:
    assert b"CP" not in sip2.build_login("u", "p")


def test_build_patron_status_layout() -> None:
    when = time.mktime((2024, 3, 5, 9, 7, 1, 0, 0, -1))
    msg = sip2.build_patron_status("EXAMPLE", "P0001", "tpw", "ppw", when=when, sequence=2)
    assert msg.startswith(b"2300020240305    090701AOEXAMPLE|AAP0001|ACtpw|ADppw|AY2AZ")
    parsed = sip2.parse(msg, require_checksum=True)
    assert parsed.fixed["transaction_date"] == "20240305    090701"
    assert parsed.fields["AA"] == "P0001"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"code": "9"}, "two digits"),
        ({"code": "ab"}, "two digits"),
        ({"code": "99", "fields": [("A", "x")]}, "two characters"),
        ({"code": "99", "fields": [("AF", "a|b")]}, "reserved"),
        ({"code": "99", "sequence": 10}, "0..9"),
    ],
)
def test_build_rejects_bad_input(kwargs: dict, error: str) -> None:
    with pytest.raises(sip2.Sip2Error, match=error):
        sip2.build(**kwargs)


def test_build_without_error_detection() -> None:
    assert sip2.build("99", "0", sequence=None, with_checksum=False) == b"990\r"


def test_parse_acs_status_real_message() -> None:
    status = sip2.parse_acs_status(REAL_MESSAGES[1])
    assert status["online"] is True
    assert status["offline_ok"] is False
    assert status["status_update_ok"] is True
    assert status["timeout_period"] == 600
    assert status["retries_allowed"] == 3
    assert status["date_time_sync"] == "20130424    113511"
    assert status["protocol_version"] == "2.00"
    assert status["institution_id"] == "EPLMNA"
    assert status["terminal_location"] == "SIPCHK"
    assert "item_status_update" not in status["supported_messages"]
    assert "renew_all" in status["supported_messages"]
    assert len(status["supported_messages"]) == 14
    assert status["sequence"] == 1
    assert status["checksum_valid"] is True


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (b"9\r", "two-digit code"),
        (b"XX123\r", "two-digit code"),
        (b"98YYY\r", "too short"),
        (b"94\r", "too short"),
        (b"941X|AY1AZ0000\r", "malformed"),
        (b"\xff\xfe\r", "not valid"),
    ],
)
def test_parse_rejects_malformed(message: bytes, error: str) -> None:
    with pytest.raises(sip2.Sip2Error, match=error):
        sip2.parse(message)


def test_parse_require_checksum() -> None:
    with pytest.raises(sip2.Sip2Error, match="mismatch"):
        sip2.parse(b"9900302.00AY1AZFCA6\r", require_checksum=True)
    with pytest.raises(sip2.Sip2Error, match="missing"):
        sip2.parse(b"9900302.00\r", require_checksum=True)


def test_parse_keeps_repeated_fields_in_order() -> None:
    msg = sip2.parse(
        sip2.build(
            "24", " " * 14 + "000" + "20240101    000000", [("AO", "EX"), ("AF", "one"), ("AF", "two"), ("AA", "P1")]
        )
    )
    assert [v for k, v in msg.repeated if k == "AF"] == ["one", "two"]
    assert msg.fields["AF"] == "one"


def test_parse_wrong_code_for_helper() -> None:
    with pytest.raises(sip2.Sip2Error, match="expected message 98, got 94"):
        sip2.parse_acs_status(b"941AY0AZFDFC\r")


field_text = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x24F, exclude_characters="|\r"), max_size=30
)


@given(
    fields=st.lists(st.tuples(st.sampled_from(["AO", "AA", "AE", "AF", "CN", "ZZ"]), field_text), max_size=6),
    sequence=st.integers(0, 9),
)
def test_build_parse_round_trip(fields: list[tuple[str, str]], sequence: int) -> None:
    msg = sip2.build("24", "Y" * 14 + "001" + "20240101    120000", fields, sequence=sequence)
    assert sip2.verify(msg)
    parsed = sip2.parse(msg, require_checksum=True)
    assert parsed.code == "24"
    assert parsed.sequence == sequence
    assert parsed.fixed["patron_status"] == "Y" * 14
    assert parsed.repeated == fields


@given(data=st.binary(min_size=1, max_size=200), flip=st.integers(0, 199))
def test_single_byte_change_breaks_checksum(data: bytes, flip: int) -> None:
    message = b"99" + data.replace(b"\r", b"x") + b"AY0AZ"
    message += sip2.checksum(message).encode() + b"\r"
    assert sip2.verify(message)
    index = flip % (len(message) - 7)  # a byte before the checksum digits
    changed = bytearray(message)
    changed[index] = (changed[index] + 1) % 256
    assert not sip2.verify(bytes(changed))


# --- The fake ACS ---------------------------------------------------------------------


def test_responder_login_and_status() -> None:
    acs = sip2.Sip2Responder(users={"sc01": "s3cret"}, institution="EXAMPLE")
    assert sip2.parse_login_response(acs.respond(sip2.build_login("sc01", "s3cret", sequence=3))) == {
        "ok": True,
        "sequence": 3,
        "checksum_valid": True,
    }
    assert sip2.parse_login_response(acs.respond(sip2.build_login("sc01", "wrong")))["ok"] is False
    answer = acs.respond(sip2.build_sc_status(sequence=5))
    assert sip2.verify(answer)
    status = sip2.parse_acs_status(answer)
    assert status["sequence"] == 5
    assert status["institution_id"] == "EXAMPLE"
    assert status["online"] is True
    assert acs.requests == ["93", "93", "99"]


def test_responder_patron_status() -> None:
    acs = sip2.Sip2Responder(patrons={"P42": "Grace Example"})
    known = sip2.parse_patron_status(acs.respond(sip2.build_patron_status("EXAMPLE", "P42", sequence=7)))
    assert known["valid_patron"] is True
    assert known["personal_name"] == "Grace Example"
    assert known["patron_status"] == " " * 14
    assert known["sequence"] == 7
    unknown = sip2.parse_patron_status(acs.respond(sip2.build_patron_status("EXAMPLE", "P404")))
    assert unknown["valid_patron"] is False
    assert unknown["patron_status"].startswith("YYYY")


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"9900302.00AY1AZFCA6\r",  # wrong checksum
        b"garbage\r",
        b"01N20240101    000000AOEX|ALblocked|AY0AZ0000\r",  # unsupported message
    ],
)
def test_responder_asks_resend(request_bytes: bytes) -> None:
    assert sip2.Sip2Responder().respond(request_bytes) == b"96\r"


def test_responder_offline_and_corrupt_checksum() -> None:
    offline = sip2.Sip2Responder(online=False)
    assert sip2.parse_acs_status(offline.respond(sip2.build_sc_status()))["online"] is False
    corrupt = sip2.Sip2Responder(corrupt_checksum=True)
    answer = corrupt.respond(sip2.build_sc_status())
    assert answer.startswith(b"98")
    assert not sip2.verify(answer)


def test_responder_require_login() -> None:
    acs = sip2.Sip2Responder(users={"u": "p"}, require_login=True)
    assert acs.respond(sip2.build_sc_status()).startswith(b"940")
    acs.respond(sip2.build_login("u", "p"))
    assert acs.respond(sip2.build_sc_status()).startswith(b"98")


def _exchange(port: int, requests: list[bytes]) -> list[bytes]:
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for request in requests:
            sock.sendall(request)
            answers.append(sip2.read_message(sock))
    return answers


def test_server_over_tcp(sip2_server: sip2.Sip2Server) -> None:
    login, status = _exchange(
        sip2_server.server_address[1],
        [sip2.build_login("sc01", "s3cret", sequence=0), sip2.build_sc_status(sequence=1)],
    )
    assert login.startswith(b"941")
    assert sip2.parse_acs_status(status)["sequence"] == 1


def test_server_runs_as_plain_script(tmp_path) -> None:
    """Test containers copy sip2.py and run it with python3, without Ansible installed."""
    script = tmp_path / "sip2.py"
    script.write_bytes(Path(sip2.__file__).read_bytes())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-I",
            str(script),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--user",
            "u",
            "--password",
            "p",
        ],
        cwd=str(tmp_path),
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                answers = _exchange(port, [sip2.build_login("u", "p"), sip2.build_sc_status(sequence=1)])
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert answers[0].startswith(b"941")
        assert sip2.verify(answers[1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_read_message_errors() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"9900")
        left.shutdown(socket.SHUT_WR)
        with pytest.raises(sip2.Sip2Error, match="middle"):
            sip2.read_message(right)
    left, right = socket.socketpair()
    with left, right:
        left.close()
        assert sip2.read_message(right) == b""
