"""A drafted statement's citation takes the clinician to the transcript line it rests on.

web_ui/static/citations.js scrolls the cited line into view and highlights it
(class ``cited``). The note is built by hand in the documented format and
stored as the overnight job stores it; the model never runs.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from datetime import UTC, datetime, timedelta

import pytest

from appliance.store.db import Storage
from tests.browser.helpers import shot
from tests.support import seed
from web_ui.views.transcript import start_key

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MODEL = "SmolLM2-135M-Instruct Q4_1 (bundled)"


def _drafted(device) -> tuple[int, float]:
    """A session of its own whose Plan cites a line near the end of a 50-minute transcript."""
    result = seed.transcript_result(50, seed=41, flags=False)
    cited = result.segments[len(result.segments) * 3 // 4]
    note = copy.deepcopy(dict(result.note))
    note["drafting"] = {"state": "done", "model": MODEL, "reason": None, "dropped": 1,
                        "finished_at": None}
    plan = next(s for s in note["sections"] if s["key"] == "plan")
    plan.update(text="Keep a sleep diary.", drafted=True, clinician=None, statements=[
        {"text": "Keep a sleep diary.", "citations": [cited.start], "verified": True,
         "problem": None},
        {"text": "Review on Tuesday.", "citations": [cited.start], "verified": False,
         "problem": "\u201cTuesday\u201d is not in the cited lines"}])
    result = dataclasses.replace(result, note=note)
    clock = seed.Clock()
    storage = Storage(device.storage.data_dir, now=clock)
    started = (datetime.now(UTC) - timedelta(days=40)).replace(hour=10, minute=0)
    return seed.add_session(storage, clock, device.keys.recipient(), started_at=started,
                            result=result), cited.start


def test_a_citation_scrolls_to_and_highlights_its_transcript_line(logged_in, device):
    from playwright.sync_api import expect

    page = logged_in
    session_id, start = _drafted(device)
    page.goto(f"/sessions/{session_id}")
    expect(page.get_by_test_id("drafted-banner")).to_contain_text(f"Drafted by {MODEL}")
    expect(page.get_by_test_id("left-out")).to_contain_text("Left out by the check: Review on Tuesday.")
    line = page.locator(f'li.seg[data-start="{start_key(start)}"]')
    expect(line).not_to_be_in_viewport()
    shot(page, "session-drafted-desktop")

    page.get_by_test_id("citation").click()
    expect(line).to_have_class(re.compile(r"\bcited\b"))
    expect(line).to_be_in_viewport()
    assert page.locator("li.seg.cited").count() == 1
    shot(page, "session-citation-desktop")
