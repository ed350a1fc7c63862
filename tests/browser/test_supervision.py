"""A supervision excerpt in a real browser: pick a bookmark and a line, comment, preview, download."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from appliance.store.db import Storage
from tests.browser.helpers import shot
from tests.support import seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LABEL = "Priya Natarajan, week 4"
PINNED = "Priya's brother Marcus called on 14 March and I froze."
COMMENT = "I moved on too fast here. What else could I have said?"


def _session(device) -> int:
    clock = seed.Clock()
    storage = Storage(device.storage.data_dir, now=clock)
    result = seed.transcript_result(4, seed=21, flags=False, bookmarks=1,
                                    extra=[(90, seed.CLIENT, PINNED)])
    started = datetime(2026, 3, 17, 9, 0, tzinfo=timezone.utc)
    return seed.add_session(storage, clock, device.keys.recipient(), started_at=started,
                            result=result, label=LABEL)


def test_pick_a_bookmark_and_a_line_comment_preview_and_download_the_markdown(logged_in, device):
    page, sid = logged_in, _session(device)
    page.goto(f"/sessions/{sid}")
    page.get_by_test_id("supervision-link").click()
    page.wait_for_load_state()
    page.get_by_test_id("pick-bookmark").first.check()
    page.locator("label", has_text=PINNED).get_by_test_id("pick-line").check()
    page.get_by_test_id("supervision-other-names").fill("Marcus")
    page.get_by_test_id("supervision-preview-button").first.click()
    page.wait_for_load_state()

    assert page.get_by_test_id("supervision-comment").count() == 2
    page.locator(".field", has_text="brother Marcus").get_by_test_id(
        "supervision-comment").fill(COMMENT)
    page.get_by_test_id("supervision-preview-button").first.click()
    page.wait_for_load_state()
    preview = page.get_by_test_id("supervision-preview").inner_text()
    assert preview.startswith("# Supervision excerpt")
    assert "Session: March 2026" in preview
    assert "**Client:** Client's brother [name] called on March and I froze." in preview
    assert COMMENT in preview
    for secret in ("Priya", "Natarajan", "Marcus", "week 4", "14 March", "March 17", "2026-03"):
        assert secret not in preview, secret
    shot(page, "supervision-desktop")

    with page.expect_download() as info:
        page.get_by_test_id("supervision-download-md").click()
    download = info.value
    assert download.suggested_filename == "supervision-excerpt.md"
    assert Path(download.path()).read_text(encoding="utf-8") == preview
    exported = [e for e in device.audit_entries() if e.action == "supervision.export"]
    assert [(e.session_id, e.detail) for e in exported] == [(sid, "md, 2 moments")]
