"""Audio retention on the page: signing deletes the audio (the default), and the page says when.

``retention.audio = "delete_after_signing"``: the web process deletes the audio as
the note is signed (it may write the data directory, as deleting a session does),
audits it, and the session page says when the audio goes or went. The nightly
sweep is tested in tests/transcription/test_retention.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from appliance.store.db import State
from tests.conftest import USER, make_config
from tests.support.web_support import (  # noqa: F401 - fixtures
    START,
    app,
    browser,
    clock,
    recovery,
    seed,
    svc,
    user,
)
from tests.web_ui.test_web_sessions import WRITTEN, _save, _transcribed
from web_ui.views.retention_note import DAMAGED, audio_deletion_note, day


@pytest.fixture
def cfg(tmp_path, request):
    """The default configuration, or the ``[retention]`` a test parametrizes."""
    return make_config(tmp_path, retention=getattr(request, "param", {}))


def _retention_entries(svc, session_id: int) -> list[tuple[str, str, str | None]]:
    return [(e.actor, e.action, e.detail) for e in svc.audit.entries(newest_first=False)
            if e.session_id == session_id and e.action.startswith("retention.")]


def _note(svc, clock, session_id: int) -> str:
    return audio_deletion_note(svc.cfg, svc.storage.get_session(session_id), clock.at)


def _sign(user, session_id: int):
    response = _save(user, session_id, action="sign", reviewed=True, **WRITTEN)
    assert response.status_code == 302, response.text
    return user.get(f"/sessions/{session_id}").text


def test_signing_deletes_the_audio_and_the_page_says_when(user, svc, clock):
    session_id = _transcribed(svc, clock, transcribed_at=clock.at)
    audio = svc.storage.get_session(session_id).audio_path
    limit = day(clock.at + timedelta(days=7))
    kept = f"The audio is kept until the note is signed (at most until {limit})."
    assert _note(svc, clock, session_id) == kept
    assert f'data-testid="audio-deleted-note">{kept}<' in user.get(f"/sessions/{session_id}").text
    page = _sign(user, session_id)
    assert not audio.exists()
    assert svc.storage.get_session(session_id).audio_deleted_at == clock.at
    assert _retention_entries(svc, session_id) == [
        (USER, "retention.audio_deleted", "deleted after signing")]
    assert "The audio of this session was deleted now that the note is signed." in page
    gone = f"The audio was deleted on {day(clock.at)} (retention)."
    assert _note(svc, clock, session_id) == gone
    assert f'data-testid="audio-deleted-note">{gone}<' in page


def test_damaged_audio_is_kept_when_the_note_is_signed(user, svc, clock):
    session_id = _transcribed(svc, clock, transcribed_at=clock.at, unreadable_s=2.0)
    audio = svc.storage.get_session(session_id).audio_path
    page = _sign(user, session_id)
    assert audio.exists() and svc.storage.get_session(session_id).audio_deleted_at is None
    assert [action for _, action, _ in _retention_entries(svc, session_id)] == [
        "retention.audio_kept"]
    assert "The audio is kept: part of it is damaged." in page
    assert _note(svc, clock, session_id) == DAMAGED


@pytest.mark.parametrize("cfg", [{"audio": "keep_days", "audio_keep_days": 3}], indirect=True)
def test_with_keep_days_signing_keeps_the_audio_until_its_day(user, svc, clock):
    session_id = _transcribed(svc, clock, transcribed_at=clock.at)
    audio = svc.storage.get_session(session_id).audio_path
    _sign(user, session_id)
    assert audio.exists() and _retention_entries(svc, session_id) == []
    assert _note(svc, clock, session_id) == (
        f"The audio is kept until {day(clock.at + timedelta(days=3))}.")
    clock.advance(days=4)
    assert _note(svc, clock, session_id) == "The audio is deleted tonight (kept 3 days)."


def test_the_note_before_transcription_and_for_an_unsigned_note_past_its_limit(user, svc, clock):
    waiting = seed(svc, clock, started=START, state=State.RECORDED)
    assert _note(svc, clock, waiting) == (
        "The audio is kept until the note is signed (at most 7 days after transcription).")
    draft = _transcribed(svc, clock, transcribed_at=clock.at)
    clock.advance(days=8)
    assert _note(svc, clock, draft) == "The audio is deleted tonight (kept 7 days)."
