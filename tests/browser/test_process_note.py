"""A private process note in a real browser: written, saved, still there after a reload, left
out of the printed page, and invisible to a colleague the session is shared with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from appliance.access.keys import KeyStore, viewer
from appliance.store.db import Storage
from tests.browser.helpers import USER, login, shot
from tests.support import seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COLLEAGUE, COLLEAGUE_PASSPHRASE = "dr.okafor", "dr okafor's own passphrase"
SECRET_WORD = "velvetcrane"
PRIVATE = f"Felt pulled to rescue again when the {SECRET_WORD} story came up. Supervision?"


def _shared_session(device) -> int:
    """dr.rivera's own drafted session (fifty days back), shared with a colleague."""
    clock = seed.Clock()
    storage = Storage(device.storage.data_dir, now=clock)
    started = (datetime.now(UTC) - timedelta(days=50)).replace(hour=13, minute=0, second=0,
                                                               microsecond=0)
    sid = seed.add_session(storage, clock, device.keys.recipient(), started_at=started,
                           result=seed.transcript_result(5, seed=21), label="S.T. 2024-150")
    keys = KeyStore(storage, device.keys.runtime_dir, work_factor=10)
    keys.add_user(COLLEAGUE, COLLEAGUE_PASSPHRASE, keys.identity())
    storage.share(sid, viewer(storage, COLLEAGUE).user_id, USER)
    return sid


def test_write_save_reload_and_a_colleague_with_a_share_does_not_see_it(logged_in, make_page,
                                                                         device):
    page = logged_in
    sid = _shared_session(device)
    page.goto(f"/sessions/{sid}")
    panel = page.get_by_test_id("process-note")
    assert "Only you can read this." in panel.inner_text()
    assert page.get_by_test_id("process-note-saved").inner_text() == "Not written yet."
    page.get_by_test_id("process-note-text").fill(PRIVATE)
    page.get_by_test_id("process-note-save").click()
    page.wait_for_load_state()
    assert "Process note saved" in page.get_by_test_id("flash").inner_text()
    page.reload()
    assert page.get_by_test_id("process-note-text").input_value() == PRIVATE
    assert page.get_by_test_id("process-note-saved").inner_text().startswith("Last saved ")
    panel.scroll_into_view_if_needed()
    shot(page, "process-note-desktop")
    page.emulate_media(media="print")
    assert not panel.is_visible(), "a printed session leaves the process note out"
    page.emulate_media(media="screen")

    other = login(make_page(), COLLEAGUE, COLLEAGUE_PASSPHRASE, f"/sessions/{sid}")
    assert other.get_by_test_id("session-label").inner_text() == "S.T. 2024-150"
    assert SECRET_WORD not in other.content()
    assert other.get_by_test_id("process-note-text").input_value() == ""
    assert other.get_by_test_id("process-note-saved").inner_text() == "Not written yet."
    assert other.get_by_test_id("process-note-delete").count() == 0
    shot(other, "process-note-colleague")
