"""Correcting a transcript in a real browser: a misheard line, speaker names, the audit log."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from appliance.notes import corrections
from appliance.store.db import Storage
from tests.browser.helpers import shot
from tests.support import seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MISHEARD = "I just feel like a virgin to everyone at home."
FIXED = "I just feel like a burden to everyone at home."
NAMES = {seed.CLINICIAN: "Speaker 1", seed.CLIENT: "Speaker 2"}


def _session(device) -> int:
    """A drafted session of its own (nine days back), speakers not yet named."""
    clock = seed.Clock()
    storage = Storage(device.storage.data_dir, now=clock)
    recognised = seed.transcript_result(4, seed=13, flags=False, bookmarks=0,
                                        extra=[(60, seed.CLIENT, MISHEARD)])
    lines = tuple(dataclasses.replace(s, speaker=NAMES[s.speaker]) for s in recognised.segments)
    result = corrections.recompute(recognised, lines)
    started = (datetime.now(timezone.utc) - timedelta(days=9)).replace(
        hour=9, minute=0, second=0, microsecond=0)
    return seed.add_session(storage, clock, device.keys.recipient(), started_at=started,
                            result=result, label="Q.R. 2024-090")


def test_correct_a_line_rename_and_swap_speakers_then_read_the_audit_log(logged_in, device):
    page, sid = logged_in, _session(device)
    page.goto(f"/sessions/{sid}")
    line = page.locator("li.seg", has_text=MISHEARD)
    index = int(line.get_attribute("data-index"))
    line.get_by_test_id("correct-line").click()
    page.wait_for_load_state()
    page.get_by_test_id("line-text").fill(FIXED)
    page.get_by_test_id("save-line").click()
    page.wait_for_load_state()
    corrected = page.locator(f'li.seg[data-index="{index}"]')
    assert FIXED in corrected.inner_text()
    assert MISHEARD not in page.get_by_test_id("transcript").inner_text()
    # The drafted note still quotes the line as it was heard: the page says to check it.
    assert "The transcript was corrected (1 change)" in page.get_by_test_id(
        "corrected-transcript").inner_text()

    # "Speaker 1" is the clinician: name them, then notice the labels were the wrong way round.
    page.get_by_test_id("speakers").locator("summary").click()
    page.get_by_test_id("rename-speaker").select_option("Speaker 1")
    page.get_by_test_id("rename-new").fill("Dr Rivera")
    page.get_by_test_id("rename-button").click()
    page.wait_for_load_state()
    assert "Speaker 1" not in page.get_by_test_id("transcript").inner_text()
    assert "Dr Rivera" in page.get_by_test_id("metrics").inner_text()
    page.get_by_test_id("speakers").locator("summary").click()
    page.get_by_test_id("swap-first").select_option("Dr Rivera")
    page.get_by_test_id("swap-second").select_option("Speaker 2")
    page.get_by_test_id("swap-button").click()
    page.wait_for_load_state()
    speaker = page.locator(f'li.seg[data-index="{index}"] .spk').inner_text()
    assert speaker == "Dr Rivera", "the client's line is now under the other name"
    shot(page, "corrections-desktop")

    page.get_by_test_id("history-link").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("version-row").count() == 4
    page.get_by_test_id("view-version").first.click()
    page.wait_for_load_state()
    assert MISHEARD in page.get_by_test_id("version-transcript").inner_text()

    page.get_by_test_id("nav-audit").click()
    page.wait_for_load_state()
    table = page.get_by_test_id("audit-table").inner_text()
    for action in ("transcript.edit", "transcript.rename", "transcript.swap"):
        assert action in table
    assert "burden" not in table and "Rivera" not in table.replace("dr.rivera", "")
