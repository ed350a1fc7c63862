"""Typing is never lost: the note editor saves as the clinician types, and before an idle logoff.

web_ui/static/editor.js saves in the background; web_ui/static/app.js warns a
minute before an idle logoff and has the editor save first. As in
test_lock_idle.py, the idle tests move both clocks: the login's recorded
activity in the database, and the page's timers on Playwright's clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from appliance.store.db import Storage
from tests.browser.helpers import USER, login, shot
from tests.browser.test_lock_idle import age_logins
from tests.support import seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _draft(device, days_ago: int) -> int:
    """A session of its own with a fresh draft note (so no other test's note is changed)."""
    clock = seed.Clock()
    storage = Storage(device.storage.data_dir, now=clock)
    started = (datetime.now(UTC) - timedelta(days=days_ago)).replace(hour=10, minute=0)
    return seed.add_session(storage, clock, device.keys.recipient(), started_at=started,
                            result=seed.transcript_result(3, seed=days_ago))


def _stored_bytes(device) -> bytes:
    return b"".join(path.read_bytes() for path in device.storage.data_dir.glob("holdnote.db*"))


def test_typing_is_saved_by_itself_and_is_there_after_a_reload(logged_in, device):
    from playwright.sync_api import expect

    page = logged_in
    session_id = _draft(device, days_ago=30)
    page.goto(f"/sessions/{session_id}")
    plan = page.get_by_test_id("note-section-plan")
    with page.expect_response("**/note/autosave") as saved:
        plan.press_sequentially("Weekly sessions; keep the sleep diary.", delay=20)
    assert saved.value.status == 200
    expect(page.get_by_test_id("autosave-status")).to_have_text(re.compile(r"^Saved \d\d:\d\d$"))
    shot(page, "session-autosaved-desktop")

    page.reload()
    assert page.get_by_test_id("note-section-plan").input_value() == (
        "Weekly sessions; keep the sleep diary.")
    assert device.storage.load_note(session_id)["updated_by"] == USER
    assert b"sleep diary" not in _stored_bytes(device), "saved encrypted"
    edits = [e for e in device.audit_entries()[:20]
             if (e.action, e.session_id, e.detail) == ("note.edit", session_id, "autosave")]
    assert len(edits) == 1, "one audit entry for the stretch of typing, not one per save"

    # "Save draft" after a background save is not mistaken for another window's edit.
    subjective = page.get_by_test_id("note-section-subjective")
    with page.expect_response("**/note/autosave"):
        subjective.press_sequentially("Evenings still hard.", delay=20)
    subjective.press_sequentially(" Better mornings.")
    page.get_by_test_id("save-note").click()
    page.wait_for_load_state()
    assert "Draft saved" in page.get_by_test_id("flash").first.inner_text()
    assert page.get_by_test_id("note-section-subjective").input_value() == (
        "Evenings still hard. Better mornings.")


def test_an_idle_logoff_saves_the_unsaved_text_first(make_page, device):
    from playwright.sync_api import expect

    session_id = _draft(device, days_ago=31)
    before = device.audit_entries()[0].seq
    page = make_page()
    page.clock.install()
    login(page, path=f"/sessions/{session_id}")

    # The network drops while the clinician types: the text is not saved yet, and the page says so.
    page.route("**/note/autosave", lambda route: route.abort())
    page.get_by_test_id("note-section-assessment").press_sequentially("Mood brighter; no plan.")
    expect(page.get_by_test_id("autosave-status")).to_contain_text("Not saved")
    page.unroute("**/note/autosave")
    with page.expect_response("**/keepalive"):
        page.clock.fast_forward("01:05")  # the typing is reported once a minute

    # Then nobody touches the page. A minute before the logoff it warns.
    age_logins(device.storage, minutes=13)
    page.clock.fast_forward("14:06")
    warning = page.get_by_test_id("idle-warning")
    assert "unsaved text will be saved and you will be logged off in" in warning.inner_text()
    shot(page, "idle-warning-desktop")

    # Half a minute later the editor saves, while the login is still valid ...
    with page.expect_response("**/note/autosave") as saved:
        page.clock.fast_forward("00:30")
    assert saved.value.status == 200
    # ... and at the deadline the page logs off as before.
    age_logins(device.storage, minutes=3)
    page.clock.fast_forward("00:40")
    page.wait_for_url("**/login**")
    assert "without activity" in page.get_by_test_id("flash").inner_text()
    assert "Mood brighter" not in page.content()
    assert [e.action for e in device.audit_entries() if e.seq > before].count("logout.idle") == 1

    login(page, path=f"/sessions/{session_id}")
    assert page.get_by_test_id("note-section-assessment").input_value() == "Mood brighter; no plan."


def test_a_click_during_the_idle_warning_keeps_the_login(make_page, device, seeded):
    page = make_page()
    page.clock.install()
    login(page, path="/sessions")
    page.clock.fast_forward("14:10")
    warning = page.get_by_test_id("idle-warning")
    assert "you will be logged off in" in warning.inner_text()
    assert "unsaved text" not in warning.inner_text(), "no editor on this page"

    with page.expect_response("**/keepalive") as response:
        page.locator("h1").first.click()
        page.clock.fast_forward(1500)
    assert response.value.status == 204
    assert warning.count() == 0
    page.clock.fast_forward("01:00")
    assert "/sessions" in page.url and page.get_by_test_id("idle-warning").count() == 0
