"""The morning routine in a real browser: log in, the list, a session, edit, sign, delete."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from appliance.store.db import State, Storage
from tests.browser.helpers import PASSPHRASE, USER, XSS, login, shot
from tests.support import seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _row(page, session_id: int):
    return page.locator(f"[data-testid=session-row][data-session-id='{session_id}']")


def test_login_refuses_a_wrong_passphrase_and_unlocks_the_device(page, device):
    device.keys.lock()
    page.goto("/sessions")
    assert "/login" in page.url
    shot(page, "login-desktop")

    login(page, USER, "not the passphrase at all")
    assert "do not match" in page.get_by_test_id("form-error").inner_text()
    assert not device.keys.is_unlocked()

    login(page, USER, PASSPHRASE)
    assert page.get_by_test_id("current-user").inner_text() == USER
    assert page.get_by_test_id("lock-state").inner_text() == "Unlocked"
    assert device.keys.is_unlocked()


def test_sessions_list_shows_state_labels_flags_and_consent(logged_in, seeded):
    page = logged_in
    page.goto("/sessions")
    long = _row(page, seeded.long)
    assert long.get_by_test_id("session-label").inner_text() == seeded.labels[seeded.long]
    assert long.get_by_test_id("flag-count").inner_text().startswith("3")
    assert long.get_by_test_id("consent-yes").is_visible()
    waiting = _row(page, seeded.waiting)
    assert "device was locked" in waiting.get_by_test_id("waiting-reason").inner_text()
    assert "40" in _row(page, seeded.transcribing).get_by_test_id("progress").inner_text()
    assert "Tell IT" in _row(page, seeded.failed).get_by_test_id("session-error").inner_text()
    assert _row(page, seeded.waiting).get_by_test_id("consent-no").is_visible()
    # A label full of markup is shown as text, not run.
    assert _row(page, seeded.xss).get_by_test_id("session-label").inner_text() == XSS
    shot(page, "sessions-desktop", full_page=True)

    # Filter by state: only the sessions waiting for the overnight job.
    page.get_by_test_id("filter-state").select_option("waiting")
    page.get_by_test_id("filter-apply").click()
    page.wait_for_load_state()
    shown = {int(i) for i in page.locator("[data-testid=session-row]").evaluate_all(
        "rows => rows.map(r => r.dataset.sessionId)")}
    assert shown == {seeded.waiting, seeded.transcribing, seeded.interrupted, seeded.delete_me}

    # Filter by date: one day holds one session.
    day = seeded.dates[seeded.long]
    page.goto(f"/sessions?from={day}&to={day}")
    shown = page.locator("[data-testid=session-row]").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.sessionId))")
    assert shown == [seeded.long]


def test_session_page_shows_transcript_flags_bookmarks_and_silences(logged_in, seeded):
    page = logged_in
    page.goto("/sessions")
    _row(page, seeded.long).get_by_test_id("session-link").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/sessions/{seeded.long}")
    assert page.get_by_test_id("session-label").inner_text() == seeded.labels[seeded.long]
    assert page.get_by_test_id("draft-banner").is_visible()
    assert page.get_by_test_id("risk-flag").count() == 3
    assert "negated" in page.get_by_test_id("risk-flags").inner_text()
    assert page.get_by_test_id("bookmark").count() >= 1
    assert page.get_by_test_id("silence").count() >= 1
    assert page.get_by_test_id("metrics").is_visible()
    # Speakers get different colours.
    colours = page.evaluate("""() => {
        const colour = sel => getComputedStyle(document.querySelector(sel + ' .spk')).color;
        return [colour('.seg.spk-clinician'), colour('.seg.spk-client')];
    }""")
    assert colours[0] != colours[1]
    shot(page, "session-desktop")

    # A risk flag links to its moment, which scrolls into view.
    link = page.get_by_test_id("flag-link").first
    anchor = link.get_attribute("href")
    link.click()
    assert page.url.endswith(anchor)
    target = page.locator(anchor)
    assert "flagged" in target.get_attribute("class")
    assert target.is_visible() and page.evaluate(
        "el => { const r = el.getBoundingClientRect(); return r.top >= 0 && "
        "r.top < window.innerHeight; }", target.element_handle())
    shot(page, "session-flag-moment-desktop")


def test_markup_in_a_transcript_renders_inert(logged_in, seeded):
    """A transcript, note and label holding <script> show it as text; nothing runs."""
    page = logged_in
    page.goto(f"/sessions/{seeded.xss}")
    page.wait_for_load_state("load")  # images (the onerror payload) settled too
    assert page.get_by_test_id("session-label").inner_text() == XSS
    assert page.get_by_test_id("transcript").get_by_text(XSS, exact=True).count() == 1
    assert page.locator("textarea[name^=section-]").first.input_value() == XSS
    assert page.locator("#main script, #main img[src=x]").count() == 0
    assert page.dialogs == []


def test_edit_sign_and_add_an_addendum(logged_in, seeded, device):
    page = logged_in
    session_id = seeded.sign_me
    page.goto(f"/sessions/{session_id}")
    subjective = page.get_by_test_id("note-section-subjective")
    subjective.fill("Client reports better sleep since starting the evening routine.")
    page.get_by_test_id("save-note").click()
    page.wait_for_load_state()
    assert "Draft saved" in page.get_by_test_id("flash").first.inner_text()
    assert subjective.input_value().startswith("Client reports better sleep")

    # Signing needs the review box; nothing is signed without it.
    page.get_by_test_id("note-section-plan").fill("Continue weekly; review sleep diary.")
    page.get_by_test_id("sign-note").click()
    page.wait_for_load_state()
    assert "reviewed" in page.get_by_test_id("page-error").inner_text()
    assert page.get_by_test_id("note-section-plan").input_value().startswith("Continue weekly")
    assert device.storage.get_session(session_id).state == State.DRAFT

    # Nor while a section is still empty: the page names it and keeps the text.
    page.get_by_test_id("reviewed").check()
    page.get_by_test_id("sign-note").click()
    page.wait_for_load_state()
    error = page.get_by_test_id("page-error").inner_text()
    assert "Assessment is empty" in error and "Plan" not in error
    assert page.get_by_test_id("note-section-plan").input_value().startswith("Continue weekly")
    assert device.storage.get_session(session_id).state == State.DRAFT

    page.get_by_test_id("note-section-assessment").fill("Sleep improving; low acute risk.")
    page.get_by_test_id("reviewed").check()
    page.get_by_test_id("sign-note").click()
    page.wait_for_load_state()
    banner = page.get_by_test_id("signed-banner").inner_text()
    assert USER in banner
    assert page.get_by_test_id("note-form").count() == 0
    assert page.locator("textarea[name^=section-]").count() == 0
    assert "review sleep diary" in page.get_by_test_id("note-readonly").inner_text()
    assert device.storage.get_session(session_id).state == State.SIGNED
    assert device.storage.load_note(session_id)["signed_by"] == USER

    page.get_by_test_id("addendum-text").fill("Client called on Friday: sleep still improving.")
    page.get_by_test_id("addendum-submit").click()
    page.wait_for_load_state()
    addendum = page.get_by_test_id("addendum").first.inner_text()
    assert "sleep still improving" in addendum and USER in addendum
    page.goto(f"/sessions/{session_id}")  # from the top, not scrolled to #addenda
    assert page.get_by_test_id("signed-banner").is_visible()
    shot(page, "session-signed-desktop")

    page.goto(f"/sessions?state={State.SIGNED}")
    assert _row(page, session_id).get_by_test_id("session-state").inner_text() == "Signed"
    actions = [(e.action, e.session_id) for e in device.audit_entries()]
    for action in ("note.edit", "note.sign", "note.addendum", "session.view"):
        assert (action, session_id) in actions


def test_delete_needs_the_date_and_removes_everything(logged_in, seeded, device):
    page = logged_in
    session_id = seeded.delete_me
    audio = device.storage.get_session(session_id).audio_path
    assert audio.exists()
    page.goto(f"/sessions/{session_id}")
    page.get_by_test_id("delete-link").click()
    page.wait_for_load_state()

    page.get_by_test_id("confirm-date").fill("2000-01-01")
    page.get_by_test_id("confirm-delete").click()
    page.wait_for_load_state()
    assert "Nothing was deleted" in page.get_by_test_id("form-error").inner_text()
    assert audio.exists()

    page.get_by_test_id("confirm-date").fill(seeded.dates[session_id])
    page.get_by_test_id("confirm-delete").click()
    page.wait_for_load_state()
    assert "/sessions" in page.url and "deleted" in page.get_by_test_id("flash").inner_text()
    assert _row(page, session_id).count() == 0
    assert not audio.exists()
    response = page.goto(f"/sessions/{session_id}")
    assert response.status == 404


def _flip(storage, sql_select: str, sql_update: str, session_id: int) -> None:
    """XOR one payload byte of a stored ciphertext, as a failing SD card does."""
    with sqlite3.connect(storage.db_path) as conn:
        blob = bytearray(conn.execute(sql_select, (session_id,)).fetchone()[0])
        blob[-20] ^= 0x01
        conn.execute(sql_update, (bytes(blob), session_id))


def test_a_damaged_session_says_what_is_lost_and_everything_else_works(logged_in, device):
    page = logged_in
    clock = seed.Clock()
    storage = Storage(device.storage.data_dir, now=clock)
    started = (datetime.now(timezone.utc) - timedelta(days=40)).replace(hour=9, minute=0)
    session_id = seed.add_session(storage, clock, device.keys.recipient(), started_at=started,
                                  result=seed.transcript_result(3, seed=9), label="Q.R. 2024-090")
    _flip(storage, "SELECT label_enc FROM sessions WHERE id = ?",
          "UPDATE sessions SET label_enc = ? WHERE id = ?", session_id)
    _flip(storage, "SELECT result_enc FROM transcripts WHERE session_id = ?",
          "UPDATE transcripts SET result_enc = ? WHERE session_id = ?", session_id)

    page.goto("/sessions")
    damaged = _row(page, session_id).get_by_test_id("label-damaged")
    assert damaged.is_visible() and damaged.inner_text() == "Cannot be read"
    assert page.get_by_test_id("session-row").count() > 1, "the other sessions are listed"

    page.goto(f"/sessions/{session_id}")
    notice = page.get_by_test_id("damage-notice")
    assert notice.is_visible()
    assert "transcript cannot be read" in notice.inner_text()
    assert "draft note can be read" in notice.inner_text()
    assert page.get_by_test_id("note-form").is_visible()
    shot(page, "session-damaged-desktop")

    page.goto("/device")
    assert page.get_by_test_id("damaged-value").count() >= 2


def test_dead_ends_lead_back_into_the_site(logged_in, seeded):
    page = logged_in
    # The address a failed signature leaves in the bar, opened again later.
    page.goto(f"/sessions/{seeded.long}/note")
    assert page.url.endswith(f"/sessions/{seeded.long}#note")
    assert "only receives a form" in page.get_by_test_id("flash").first.inner_text()
    response = page.goto("/no/such/page")
    assert response.status == 404
    assert page.get_by_test_id("nav-sessions").is_visible()
    assert "no page at this address" in page.get_by_test_id("error-page").inner_text()
    shot(page, "error-404-desktop")
