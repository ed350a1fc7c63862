"""Redraft: the session's clinician queues an unsigned note to be drafted again in another template.

The model never runs here: the route only writes the queue (the session's
drafting columns), the audit entry and the request file the drafting service
watches (<runtime_dir>/draft.request).
"""

from __future__ import annotations

import re
from datetime import date

import pytest

from appliance.access.keys import viewer
from appliance.clients.records import make_record, seal_record
from appliance.store.db import State
from tests.conftest import USER, make_config
from tests.support.web_support import (  # noqa: F401 - fixtures
    CHEN,
    START,
    Browser,
    app,
    browser,
    clock,
    colleague,
    recovery,
    result,
    seed,
    svc,
    user,
)
from tests.web_ui.test_drafted_note import LINES, drafted_note

COUPLES = {"name": "Couples", "sections": [
    {"key": "focus", "title": "Focus", "instruction": "What the couple brought today."}]}


@pytest.fixture
def cfg(tmp_path, request):
    """A device with the bundled model configured and one practice template of its own.

    A test parametrized with ``{}`` gets the default configuration (drafting off).
    """
    sections = getattr(request, "param", None)
    if sections is None:
        sections = {"drafting": {"model": "bundled-smollm2"},
                    "notes": {"custom_templates": [COUPLES]}}
    return make_config(tmp_path, **sections)


@pytest.fixture
def session_id(user, svc, clock) -> int:
    """dr.rivera's session whose drafting failed last night."""
    res = result(LINES)
    found = seed(svc, clock, started=START, res={**res.to_json(), "note": drafted_note()})
    svc.storage.update_session(found, drafting="failed", drafting_progress=0.5,
                               drafting_reason="The model stopped answering.")
    return found


def _redraft(browser: Browser, session_id: int, template: str = "DAP", page: str | None = None):
    return browser.submit(f"/sessions/{session_id}/redraft", {"template": template},
                          page=page or f"/sessions/{session_id}")


def _request_file(svc):
    return svc.cfg.paths.runtime_dir / "draft.request"


def _audited(svc, session_id: int) -> list[tuple[str, str | None]]:
    return [(e.action, e.detail) for e in svc.audit.entries(newest_first=False)
            if e.session_id == session_id and e.action == "note.redraft"]


def _not_queued(svc, session_id: int) -> None:
    session = svc.storage.get_session(session_id)
    assert (session.drafting, session.draft_template) == ("failed", None)
    assert _audited(svc, session_id) == []
    assert not _request_file(svc).exists()


def test_the_picker_offers_the_built_in_and_the_practices_templates(user, session_id):
    html = user.get(f"/sessions/{session_id}").text
    form = re.search(r'<form[^>]*data-testid="redraft-form".*?</form>', html, re.DOTALL).group(0)
    assert re.findall(r'<option value="([^"]+)"', form) == ["SOAP", "DAP", "BIRP", "Couples"]
    assert re.search(r'<option value="SOAP" selected>', form), "the note's template is preselected"
    assert "disabled" not in form


def test_the_clinician_redrafts_in_another_template(user, svc, session_id):
    response = _redraft(user, session_id, "dap")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/sessions/{session_id}#note")
    session = svc.storage.get_session(session_id)
    assert (session.drafting, session.draft_template, session.drafting_progress,
            session.drafting_reason) == ("queued", "DAP", 0.0, None)
    assert _audited(svc, session_id) == [("note.redraft", "DAP")]
    assert _request_file(svc).exists(), "the drafting service was not asked to start"
    page = user.get(f"/sessions/{session_id}").text
    assert "Redraft queued: runs at idle priority while the device is unlocked." in page
    assert 'data-testid="drafting-state">Drafting is queued' in page


def test_a_practice_template_can_be_picked(user, svc, session_id):
    assert _redraft(user, session_id, "Couples").status_code == 302
    assert svc.storage.get_session(session_id).draft_template == "Couples"


def test_a_request_that_cannot_be_made_now_runs_overnight(user, svc, session_id):
    _request_file(svc).mkdir(parents=True)  # in the way: the file cannot be written
    assert _redraft(user, session_id).status_code == 302
    assert svc.storage.get_session(session_id).drafting == "queued"
    page = user.get(f"/sessions/{session_id}").text
    assert "it runs in tonight&#39;s overnight job" in page


def test_an_unknown_template_is_refused_with_the_choices(user, svc, session_id):
    response = _redraft(user, session_id, "SOAPY")
    assert response.status_code == 400
    assert ("There is no note template called &#39;SOAPY&#39;. Pick one of: SOAP, DAP, BIRP, "
            "Couples.") in response.text
    _not_queued(svc, session_id)


def test_a_colleague_cannot_redraft(app, user, svc, session_id):
    chen = colleague(app, svc)
    assert _redraft(chen, session_id, page="/sessions").status_code == 404
    svc.storage.share(session_id, viewer(svc.storage, CHEN).user_id, USER)
    page = chen.get(f"/sessions/{session_id}").text
    assert "redraft-form" not in page, "a read-only share offers no Redraft"
    response = _redraft(chen, session_id)
    assert response.status_code == 403
    assert "only its clinician can change it" in response.text
    _not_queued(svc, session_id)


def test_a_signed_note_is_not_redrafted(user, svc, session_id):
    note = drafted_note()
    page = user.get(f"/sessions/{session_id}").text
    version = re.search(r'name="version" value="([^"]+)"', page).group(1)
    signed = user.submit(f"/sessions/{session_id}/note", {
        "version": version, "action": "sign", "reviewed": "yes",
        "section-assessment": "Early waking; no risk indicators discussed.",
        "section-plan": note["sections"][3]["text"]}, page=f"/sessions/{session_id}")
    assert signed.status_code == 302, signed.text
    response = _redraft(user, session_id)
    assert response.status_code == 409
    assert "This note is signed and can no longer be redrafted." in response.text
    _not_queued(svc, session_id)


def test_a_session_without_a_transcript_is_not_redrafted(user, svc, clock):
    waiting = seed(svc, clock, started=START, state=State.RECORDED)
    assert "redraft-form" not in user.get(f"/sessions/{waiting}").text
    response = _redraft(user, waiting)
    assert response.status_code == 409
    assert "This session has no transcript yet, so there is nothing to draft from." in response.text
    assert svc.storage.get_session(waiting).drafting is None


def test_the_redraft_form_needs_its_csrf_token(user, svc, session_id):
    response = user.post(f"/sessions/{session_id}/redraft", {"template": "DAP"})
    assert response.status_code == 400
    _not_queued(svc, session_id)


@pytest.mark.parametrize("cfg", [{}], indirect=True)
def test_with_drafting_off_the_form_says_so_and_redraft_is_refused(user, svc, session_id):
    html = user.get(f"/sessions/{session_id}").text
    form = re.search(r'<form[^>]*data-testid="redraft-form".*?</form>', html, re.DOTALL).group(0)
    assert "Drafting is off on this device: set [drafting] model" in form
    assert '<fieldset class="redraft-fields" disabled>' in form
    response = _redraft(user, session_id)
    assert response.status_code == 409
    assert "Drafting is off on this device" in response.text
    _not_queued(svc, session_id)


def test_a_client_who_withdrew_consent_to_drafting_is_not_redrafted(user, svc, session_id):
    client_id = svc.storage.create_client(
        viewer(svc.storage, "dr.rivera").user_id,
        seal_record(make_record("J.Q."), svc.keys.recipient()))
    consent_id = svc.storage.add_consent(
        client_id, given_on=date(2024, 1, 2), form_version="v1", obtained_by="Dr Rivera",
        scope=("recording", "transcription", "drafting"), by="dr.rivera")
    svc.storage.assign_client(session_id, client_id)
    svc.storage.withdraw_consent(consent_id, date(2024, 1, 3))
    response = _redraft(user, session_id)
    # Refused on the page, not queued to be refused again by the drafting job.
    assert response.status_code == 409 and "withdrew consent on 3 Jan 2024" in response.text
    _not_queued(svc, session_id)
