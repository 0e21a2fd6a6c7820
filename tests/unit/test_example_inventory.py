# -*- coding: utf-8 -*-
# Copyright (c) libsys.onprem maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The example inventory's preflight list: every row of the vendor's table, every entry valid."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ansible_collections.libsys.onprem.plugins.filter.preflight import preflight_plan

EXAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "example" / "group_vars" / "all" / "preflight.yml"
# A commented-out entry: "# " at the left margin, then the list's own indentation ("  - {")
# or a continuation line's.
COMMENTED_ENTRY = re.compile(r"^# (  - \{.*|     .*)$", re.MULTILINE)

# The rows of the vendor's network table that a campus host takes part in and no role of the
# collection derives: (integration cell, port). The others are built by a role (25, 22, 6443,
# 5001) or have both ends outside the campus (cloud to cloud, a PC's own RFID driver).
PROBED_ROWS = {
    ("Staff workstation", 443),
    ("Staff workstation", 1443),
    ("Patron workstation", 443),
    ("Staff authentication", 443),
    ("Staff authentication", 636),
    ("Alma-Primo end-user authentication", 443),
    ("Alma-Primo end-user authentication", 636),
    ("Ex Libris APIs", 443),
    ("Resource sharing (peer to peer)", 9001),
    ("Resource sharing (broker)", 443),
    ("OCLC Connexion", 5500),
    ("Z39.50 data providing", 210),
    ("Z39.50 data providing", 1921),
    ("OAI-PMH data providing", 443),
    ("SRU-SRW data providing", 443),
    ("Aleph Central Catalog", 8991),
}


def load(uncomment: bool) -> list[dict[str, Any]]:
    text = EXAMPLE.read_text(encoding="utf-8")
    if uncomment:
        text = COMMENTED_ENTRY.sub(r"\1", text)
    return yaml.safe_load(text)["preflight_vendor_endpoints"]


def test_the_active_entries_are_the_three_most_campuses_have() -> None:
    assert [e["name"] for e in load(uncomment=False)] == ["staff-https", "primo-back-office", "oclc-connexion"]


def test_every_row_of_the_vendor_table_has_an_entry() -> None:
    entries = load(uncomment=True)
    assert {(e["integration"], e["port"]) for e in entries} >= PROBED_ROWS


def test_every_entry_is_valid_and_says_who_initiates() -> None:
    entries = load(uncomment=True)
    # Inbound rows are initiated by the cloud, so they need a probe host outside the campus.
    rows = preflight_plan({"host": "onprem1", "outside_probe_host": "probe1", "vendor_endpoints": entries})
    assert len(rows) == len(entries)
    for entry, row in zip(entries, rows):
        assert {"integration", "initiator", "target", "protocol"} <= set(entry), entry["name"]
        assert row["direction"] == entry.get("direction", "outbound")
        assert row["probe_from"] == ("outside" if row["direction"] == "inbound" else "host"), entry["name"]
