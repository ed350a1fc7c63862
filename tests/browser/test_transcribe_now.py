"""Transcribe now, in a browser: the button queues the session and the page follows the job.

web_ui/static/transcribe.js polls the session's transcription status; the test
moves the session as the job would (the job itself: tests/transcription/test_job.py)
and watches the line change without the page reloading.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from appliance.store.db import State, Storage
from tests.browser.helpers import shot
from tests.support import seed
from web_ui.views.transcribe_now import QUEUED, READY

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# transcribe.js asks every 4 s; a loaded CI machine may be slower.
POLLED_MS = 20_000


def test_transcribe_now_queues_and_the_page_shows_the_progress_without_a_reload(logged_in,
                                                                                device):
    clock = seed.Clock()
    storage = Storage(device.storage.data_dir, now=clock)
    # A day of its own (nine days back), so the list tests' days are unchanged.
    started = (datetime.now(UTC) - timedelta(days=9)).replace(hour=9, minute=0, second=0,
                                                              microsecond=0)
    session_id = seed.add_session(storage, clock, device.keys.recipient(), started_at=started,
                                  state=State.RECORDED, label="Q.R. 2024-080")
    page = logged_in
    page.goto(f"/sessions/{session_id}")
    line = page.get_by_test_id("transcription-line")
    expect(line).to_contain_text("tomorrow morning")
    page.get_by_test_id("transcribe-now-button").click()
    expect(line).to_have_text(QUEUED)
    expect(page.get_by_test_id("transcribe-now-button")).to_have_count(0)
    assert any(e.action == "transcribe.requested" and e.session_id == session_id
               for e in device.audit_entries())
    page.evaluate("window.holdnoteNotReloaded = true")

    device.storage.transition(session_id, State.TRANSCRIBING, progress=0.4)
    expect(line).to_have_text("Transcribing now: 40 % done.", timeout=POLLED_MS)
    shot(page, "transcribe-now-progress")
    device.storage.transition(session_id, State.DRAFT, transcribe_requested_at=None)
    expect(line).to_have_text(READY, timeout=POLLED_MS)
    assert page.evaluate("window.holdnoteNotReloaded") is True
