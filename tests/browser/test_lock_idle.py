"""Lock device, log out, and idle logoff, in a real browser against gunicorn.

Idle logoff involves two clocks: the server's (the login's last activity,
kept in the database) and the page's (its script reloads an idle page so
clinical text does not stay on screen). Rather than sit through fifteen real
minutes, the tests move both: the login's recorded activity is moved back
in the database, as if the time had passed, and the page's timers run on
Playwright's controllable clock. The server's own clock and checks are real.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.browser.helpers import login, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def age_logins(storage, minutes: float) -> None:
    """Make every web login look as if its last request was ``minutes`` longer ago."""
    shift = timedelta(minutes=minutes)
    with storage.connect() as conn:
        for row in conn.execute("SELECT token_hash, created_at, last_seen FROM web_logins"
                                ).fetchall():
            conn.execute(
                "UPDATE web_logins SET created_at = ?, last_seen = ? WHERE token_hash = ?",
                ((datetime.fromisoformat(row["created_at"]) - shift).isoformat(),
                 (datetime.fromisoformat(row["last_seen"]) - shift).isoformat(),
                 row["token_hash"]))


def latest_activity(storage) -> datetime:
    """The most recent request any login made, as the server recorded it."""
    with storage.connect() as conn:
        return max(datetime.fromisoformat(r[0])
                   for r in conn.execute("SELECT last_seen FROM web_logins"))


def test_lock_device_forgets_the_key_and_ends_every_login(make_page, device, seeded):
    first = login(make_page(), path=f"/sessions/{seeded.long}")
    second = login(make_page(), path="/sessions")
    assert device.keys.is_unlocked()

    first.get_by_test_id("lock-device").click()
    first.wait_for_load_state()
    assert "/login" in first.url
    assert "locked" in first.get_by_test_id("flash").inner_text()
    assert not device.keys.is_unlocked()
    shot(first, "locked-login-desktop")

    # The other browser is logged out too and sees no clinical text.
    second.goto(f"/sessions/{seeded.long}")
    assert "/login" in second.url
    assert seeded.labels[seeded.long] not in second.content()

    # Logging in again unlocks the device and lands on the page asked for.
    login(second, path=f"/sessions/{seeded.long}")
    assert second.url.endswith(f"/sessions/{seeded.long}")
    assert second.get_by_test_id("session-label").inner_text() == seeded.labels[seeded.long]
    assert device.keys.is_unlocked()
    actions = [e.action for e in device.audit_entries()[:20]]
    assert actions.index("device.unlock") < actions.index("device.lock")


def test_log_out_is_one_click_and_leaves_the_device_unlocked(logged_in, device):
    page = logged_in
    page.get_by_test_id("logout").click()
    page.wait_for_load_state()
    assert "/login" in page.url
    assert "logged out" in page.get_by_test_id("flash").inner_text()
    assert device.keys.is_unlocked()  # tonight's transcription can still run
    page.goto("/search")
    assert "/login" in page.url


def test_idle_page_returns_to_login_by_itself(make_page, device, seeded):
    before = device.audit_entries()[0].seq  # other tests log off idle pages too
    page = make_page()
    page.clock.install()
    login(page, path=f"/sessions/{seeded.long}")
    assert page.get_by_test_id("transcript").is_visible()

    # Nobody touches the page for 17 minutes (idle logoff is 15, plus the page's margin).
    age_logins(device.storage, minutes=17)
    page.clock.fast_forward("17:00")
    page.wait_for_url("**/login**")
    assert "without activity" in page.get_by_test_id("flash").inner_text()
    assert page.get_by_test_id("transcript").count() == 0
    shot(page, "idle-logged-out-desktop")
    # The idle logoff is in the audit log, under the clinician it logged off.
    idle = [e for e in device.audit_entries()[:20]
            if e.action == "logout.idle" and e.seq > before]
    assert len(idle) == 1 and idle[0].actor != "anonymous"

    # The old cookie is worthless now.
    page.goto(f"/sessions/{seeded.long}")
    assert "/login" in page.url


def test_typing_a_long_note_keeps_the_login_alive(make_page, device, seeded):
    page = make_page()
    page.clock.install()
    login(page, path=f"/sessions/{seeded.long}")
    age_logins(device.storage, minutes=14)  # one minute from idle logoff

    page.clock.fast_forward(1000)
    page.get_by_test_id("note-section-assessment").press_sequentially("Mood brighter")
    with page.expect_response("**/keepalive") as response:
        page.clock.fast_forward("01:05")
    assert response.value.status == 204
    assert datetime.now(timezone.utc) - latest_activity(device.storage) < timedelta(minutes=1)

    page.get_by_test_id("save-note").click()
    page.wait_for_load_state()
    assert "Draft saved" in page.get_by_test_id("flash").inner_text()
    assert page.get_by_test_id("note-section-assessment").input_value().endswith("Mood brighter")
