"""Transcribe now: the session's clinician asks for a waiting session to be transcribed at once.

The job never runs here: the route marks the session (``transcribe_requested_at``),
audits, and touches the request file the transcribe-now service's path unit
watches (<runtime_dir>/transcribe.request). The job itself is tested in
tests/transcription/test_job.py.
"""

from __future__ import annotations

import pytest

from appliance.access.keys import viewer
from appliance.store.db import State
from tests.conftest import USER
from tests.support.web_support import (  # noqa: F401 - fixtures
    CHEN,
    START,
    Browser,
    app,
    browser,
    clock,
    colleague,
    recovery,
    seed,
    svc,
    user,
)
from web_ui.views import transcribe_now

BUTTON = 'data-testid="transcribe-now-button"'


@pytest.fixture
def waiting_id(user, svc, clock) -> int:
    """dr.rivera's session recorded today, waiting for tonight (locked at last night's run)."""
    return seed(svc, clock, started=START, state=State.RECORDED,
                waiting_reason="Device locked: log in to the web page before the night run.")


def _ask(browser: Browser, session_id: int, page: str | None = None):
    return browser.submit(f"/sessions/{session_id}/transcribe", {},
                          page=page or f"/sessions/{session_id}")


def _request_file(svc):
    return svc.cfg.paths.runtime_dir / transcribe_now.REQUEST_FILE


def _requests(svc, session_id: int) -> list[str]:
    return [e.actor for e in svc.audit.entries(newest_first=False)
            if e.session_id == session_id and e.action == "transcribe.requested"]


def _not_queued(svc, session_id: int) -> None:
    assert svc.storage.get_session(session_id).transcribe_requested_at is None
    assert _requests(svc, session_id) == []
    assert not _request_file(svc).exists()


def _status(browser: Browser, session_id: int) -> dict:
    response = browser.get(f"/sessions/{session_id}/transcription.json")
    assert response.status_code == 200
    return response.get_json()


def test_the_clinician_transcribes_a_waiting_session_now_and_the_page_follows_the_job(
        user, svc, clock, waiting_id):
    page = user.get(f"/sessions/{waiting_id}").text
    assert "tomorrow morning" in page and BUTTON in page
    response = _ask(user, waiting_id)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/sessions/{waiting_id}#note")
    session = svc.storage.get_session(waiting_id)
    assert session.transcribe_requested_at == clock.at
    assert session.waiting_reason is None, "last night's reason no longer applies"
    assert _requests(svc, waiting_id) == [USER]
    assert _request_file(svc).exists(), "the transcribe-now service was not asked to start"
    page = user.get(f"/sessions/{waiting_id}").text
    assert transcribe_now.QUEUED in page and BUTTON not in page
    assert "tomorrow morning" not in page
    assert _status(user, waiting_id) == {"state": "recorded", "line": transcribe_now.QUEUED,
                                         "reason": "", "done": False}
    # The job takes it: the page's script shows its progress, then says it is done.
    svc.storage.transition(waiting_id, State.TRANSCRIBING, progress=0.4)
    assert _status(user, waiting_id)["line"] == "Transcribing now: 40 % done."
    svc.storage.update_session(waiting_id, waiting_reason="Paused while a session is being "
                               "recorded; continues afterwards.")
    assert _status(user, waiting_id)["reason"].startswith("Paused while a session")
    svc.storage.transition(waiting_id, State.DRAFT, transcribe_requested_at=None)
    assert _status(user, waiting_id) == {"state": "draft", "line": transcribe_now.READY,
                                         "reason": "Paused while a session is being "
                                         "recorded; continues afterwards.", "done": True}


def test_a_failed_session_can_be_transcribed_again(user, svc, clock):
    failed = seed(svc, clock, started=START, state=State.FAILED, error="Out of memory")
    assert BUTTON in user.get(f"/sessions/{failed}").text
    assert _ask(user, failed).status_code == 302
    assert svc.storage.get_session(failed).transcribe_requested_at is not None
    assert transcribe_now.QUEUED in user.get(f"/sessions/{failed}").text


def test_a_request_that_cannot_be_made_now_runs_overnight(user, svc, waiting_id):
    _request_file(svc).mkdir(parents=True)  # in the way: the file cannot be written
    assert _ask(user, waiting_id).status_code == 302
    assert svc.storage.get_session(waiting_id).transcribe_requested_at is not None
    page = user.get(f"/sessions/{waiting_id}").text
    assert "it runs in tonight&#39;s overnight job" in page
    assert transcribe_now.QUEUED not in page, "the page must not promise it runs now"


def test_a_locked_device_says_to_log_in_and_queues_nothing(user, svc, waiting_id):
    token = user.token(f"/sessions/{waiting_id}")
    svc.keys.lock()
    response = user.post(f"/sessions/{waiting_id}/transcribe", {"csrf_token": token})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "Log in again to unlock it" in user.get(response.headers["Location"]).text
    _not_queued(svc, waiting_id)


@pytest.mark.parametrize("state", [State.DRAFT, State.RECORDING])
def test_a_session_not_waiting_is_refused_with_its_state(user, svc, clock, state):
    session_id = seed(svc, clock, started=START, state=state)
    assert BUTTON not in user.get(f"/sessions/{session_id}").text
    response = _ask(user, session_id)
    assert response.status_code == 409
    assert "only a session waiting for its transcription" in response.text
    assert ("Draft note" if state == State.DRAFT else "Recording") in response.text
    _not_queued(svc, session_id)


def test_a_colleague_cannot_ask(app, user, svc, waiting_id):
    chen = colleague(app, svc)
    assert _ask(chen, waiting_id, page="/sessions").status_code == 404
    assert chen.get(f"/sessions/{waiting_id}/transcription.json").status_code == 404
    svc.storage.share(waiting_id, viewer(svc.storage, CHEN).user_id, USER)
    assert BUTTON not in chen.get(f"/sessions/{waiting_id}").text
    response = _ask(chen, waiting_id)
    assert response.status_code == 403 and "only its clinician can change it" in response.text
    _not_queued(svc, waiting_id)


def test_the_request_needs_its_csrf_token(user, svc, waiting_id):
    assert user.post(f"/sessions/{waiting_id}/transcribe", {}).status_code == 400
    _not_queued(svc, waiting_id)
