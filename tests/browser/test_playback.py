"""Listening to a session in a real browser: a line plays from its time, speed, keys, seeking.

The session (``listening`` in conftest.py) has a 25-minute recording kept
encrypted on the device, 8 kHz mono: 16,000 bytes of PCM per second after the
44-byte WAV header. The page streams it from ``/sessions/<id>/audio``.
"""

from __future__ import annotations

import pytest

from tests.browser.helpers import LISTENING_GAP, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BYTES_PER_S = 16_000
HEADER = 44
AUDIO = "document.querySelector('[data-testid=player-audio]')"


def _audio(page, expression: str):
    """Evaluate ``expression`` with ``a`` bound to the page's media element."""
    return page.evaluate(f"() => {{ const a = {AUDIO}; return {expression}; }}")


def _wait_playing_past(page, seconds: float) -> None:
    """Until the media element plays and its time has moved beyond ``seconds``."""
    page.wait_for_function(f"t => {{ const a = {AUDIO}; return !a.paused && a.currentTime > t; }}",
                           arg=seconds)


def _line(page, index: int):
    line = page.locator("li.seg[data-start]").nth(index)
    return line, float(line.get_attribute("data-start"))


def _range_start(header: str | None) -> int | None:
    """The first byte a "bytes=N-" Range header asks for."""
    if not header or not header.startswith("bytes="):
        return None
    return int(header[len("bytes="):].split("-", 1)[0])


def test_a_clicked_line_plays_from_its_time_at_the_chosen_speed(logged_in, listening, seeded):
    page = logged_in
    # A session whose audio retention deleted: the player's place says so.
    page.goto(f"/sessions/{seeded.long}")
    assert page.get_by_test_id("player-audio").count() == 0
    said = page.get_by_test_id("player").inner_text()
    assert "The audio was deleted on" in said and said.count("deleted") == 1  # said once

    page.goto(f"/sessions/{listening}")
    assert page.get_by_test_id("player-audio").is_visible()
    assert "Click a line to play" in page.get_by_test_id("player").inner_text()

    page.get_by_test_id("player-speed").select_option("1.5")
    line, start = _line(page, 6)
    line.locator(".txt").click()
    _wait_playing_past(page, start)
    assert _audio(page, "a.currentTime") >= start
    assert _audio(page, "a.playbackRate") == 1.5
    assert "playing" in line.get_attribute("class")
    assert line.get_attribute("aria-current") == "true"
    assert page.locator("li.seg.playing").count() == 1
    shot(page, "playback-desktop")

    # Keys: K pauses and plays again, J goes back five seconds.
    page.locator("body").press("k")
    page.wait_for_function(f"() => {AUDIO}.paused")
    before = _audio(page, "a.currentTime")
    page.locator("body").press("j")
    assert _audio(page, "a.currentTime") == pytest.approx(max(0.0, before - 5), abs=0.3)
    page.locator("body").press("k")
    _wait_playing_past(page, before - 5)

    # Typing "k" into the note is writing, not a shortcut.
    editor = page.locator("textarea[name^=section-]").first
    editor.click()
    editor.press("k")
    assert _audio(page, "!a.paused")
    assert editor.input_value().endswith("k")

    # A stretch the device could not read is skipped, and the page says so.
    first, last = LISTENING_GAP
    page.evaluate(f"() => {{ {AUDIO}.currentTime = {first + 1}; }}")
    status = page.get_by_test_id("player-status")
    status.get_by_text("Skipped 20 s unreadable at 2:00").wait_for()
    assert _audio(page, "a.currentTime") >= last

    # The chosen speed is remembered for the next page.
    page.reload()
    assert page.get_by_test_id("player-speed").input_value() == "1.5"
    page.wait_for_function(f"() => {AUDIO}.playbackRate === 1.5")


def test_listening_keeps_the_login_alive(logged_in, listening):
    # The page's idle timer runs on Playwright's clock (see test_lock_idle.py); the audio
    # plays in real time. Nobody touches the page after the click that starts it.
    page = logged_in
    page.clock.install()
    page.goto(f"/sessions/{listening}")
    line, start = _line(page, 3)
    line.locator(".txt").click()
    _wait_playing_past(page, start)
    with page.expect_response("**/keepalive"):  # the click was activity
        page.clock.fast_forward("01:05")
    played = _audio(page, "a.currentTime")
    _wait_playing_past(page, played + 0.5)
    with page.expect_response("**/keepalive") as response:  # and so is listening
        page.clock.fast_forward("01:05")
    assert response.value.status == 204


def test_seeking_in_a_long_recording_fetches_only_that_part_and_is_audited(
        logged_in, listening, device):
    page = logged_in
    requests = []
    page.on("request", lambda r: requests.append(r.headers.get("range"))
            if r.url.endswith(f"/sessions/{listening}/audio") else None)
    page.goto(f"/sessions/{listening}")
    page.wait_for_function(f"() => {AUDIO}.readyState >= 1")
    assert _audio(page, "a.duration") == pytest.approx(25 * 60, abs=1)

    # The last line, 24-odd minutes in: scrolled to and its time clicked like a person would.
    line, start = _line(page, -1)
    assert start > 24 * 60
    line.locator("a.ts").click()
    _wait_playing_past(page, start + 0.5)
    assert "playing" in line.get_attribute("class")
    assert page.url.endswith(f"#t-{int(start)}")  # the address names the moment

    # The browser asked for the bytes from about there on, and holds nothing of the middle.
    target = HEADER + int(start - 30) * BYTES_PER_S
    starts = [_range_start(h) for h in requests]
    assert any(s is not None and s >= target for s in starts), requests
    middle = 12 * 60
    assert not _audio(page, f"""[...Array(a.buffered.length).keys()].some(
        i => a.buffered.start(i) <= {middle} && a.buffered.end(i) >= {middle})""")

    # Each playback is in the audit log, naming the session by its id only.
    page.goto("/audit?action=audio.play")
    sessions = page.locator("[data-testid=audit-row] td[data-label=Session]").all_inner_texts()
    assert str(listening) in sessions
    assert {e.action for e in device.audit_entries() if e.session_id == listening} >= {
        "session.view", "audio.play"}

    # The device is locked while the page is open: the next part cannot load, and the
    # page says why instead of a silent, stuck player.
    page.goto(f"/sessions/{listening}")
    page.wait_for_function(f"() => {AUDIO}.readyState >= 1")
    device.keys.lock()
    line, _ = _line(page, 150)  # about the middle: not loaded yet
    line.locator(".txt").click()
    status = page.get_by_test_id("player-status")
    status.get_by_text("The device was locked: log in again to listen.").wait_for()
    shot(page, "playback-locked")
