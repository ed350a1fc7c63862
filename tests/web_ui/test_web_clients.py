"""Clients and consent on record through the web routes (web_ui/views/clients.py, client_assign.py).

dr.rivera (the first clinician) keeps clients; dr.chen is a colleague who
must neither see nor use them. Every refusal says what to do and changes
nothing; the audit log names clients by id, never by name.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import timedelta

import pytest

from appliance import age
from appliance.store.db import State
from web_ui.views.records import sign_note
from tests.support.web_support import (  # noqa: F401 - fixtures
    START,
    actions,
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

NAME = "Jordan Quillfeather"
OTHER = "Avery Brightwater"


def _new_client(user, name: str = NAME, **fields) -> int:
    data = {"name": name, "identifier": "C-0042", "start_date": "2024-04-01",
            "goals": "Return to work\nSleep through the night", **fields}
    response = user.submit("/clients/new", data, page="/clients/new")
    assert response.status_code == 302, response.text
    return int(re.search(r"/clients/(\d+)/consent", response.headers["Location"]).group(1))


def _consent(user, client_id: int, given_on: str = "2024-05-01",
             scope: tuple[str, ...] = ("recording", "transcription", "drafting"), **extra):
    data = {"given_on": given_on, "form_version": "v2", "obtained_by": "Dr Rivera",
            "scope": list(scope), **extra}
    return user.submit(f"/clients/{client_id}/consent", data, page=f"/clients/{client_id}/consent")


def _session(svc, clock, days: int = 0, owner: str | None = "dr.rivera") -> int:
    return seed(svc, clock, started=START - timedelta(days=days), owner=owner,
                res=result([(5.0, "Client", "The week was long."), (9.0, "Clinician", "Go on.")]))


def _assign(user, session_id: int, client_id: int | str, page: str | None = None):
    return user.submit(f"/sessions/{session_id}/client", {"client_id": str(client_id)},
                       page=page or f"/sessions/{session_id}")


def _client_of(svc, session_id: int):
    return svc.storage.get_session(session_id).client_id


def _audit_details(svc) -> str:
    rows = sqlite3.connect(svc.storage.db_path).execute("SELECT * FROM audit").fetchall()
    return repr(rows)


# --- the record ----------------------------------------------------------------------


def test_a_client_is_created_listed_edited_and_closed(user, svc):
    client_id = _new_client(user)
    page = user.get("/clients").text
    assert NAME in page and "C-0042" in page and "No consent on record" in page
    form = user.get(f"/clients/{client_id}/edit").text
    assert "Return to work\nSleep through the night" in form
    response = user.submit(f"/clients/{client_id}/edit", {
        "name": "J. Q.", "identifier": "", "start_date": "2024-04-02", "goals": "Return to work",
        "status": "active"}, page=f"/clients/{client_id}/edit")
    assert response.status_code == 302
    assert "J. Q." in user.get("/clients").text
    user.submit(f"/clients/{client_id}/status", {"action": "close"}, page="/clients")
    page = user.get("/clients").text
    closed = page.split('data-testid="closed-clients"')[1]
    assert "J. Q." in closed and 'data-testid="active-clients"' not in page
    assert b"Return to work" not in sqlite3.connect(svc.storage.db_path).execute(
        "SELECT record_enc FROM clients").fetchone()[0]


def test_a_client_without_a_name_is_refused_with_the_form_kept(user, svc):
    response = user.submit("/clients/new", {"name": " ", "identifier": "C-7", "goals": "Sleep"},
                           page="/clients/new")
    assert response.status_code == 400
    assert "Enter a display name or initials" in response.text
    assert 'value="C-7"' in response.text and ">Sleep</textarea>" in response.text
    assert svc.storage.clients_of(1) == []


def test_deleting_a_client_needs_its_name_and_keeps_its_sessions(user, svc, clock):
    client_id = _new_client(user)
    session_id = _session(svc, clock)
    assert _assign(user, session_id, client_id).status_code == 302
    wrong = user.submit(f"/clients/{client_id}/delete", {"confirm_name": "Jordan"},
                        page=f"/clients/{client_id}/edit")
    assert wrong.status_code == 400 and "Nothing was deleted" in wrong.text
    assert svc.storage.client(client_id) is not None
    done = user.submit(f"/clients/{client_id}/delete", {"confirm_name": f" {NAME} "},
                       page=f"/clients/{client_id}/edit")
    assert done.status_code == 302
    assert svc.storage.client(client_id) is None
    assert svc.storage.get_session(session_id).state == State.DRAFT
    assert _client_of(svc, session_id) is None
    assert "client.delete" in actions(svc)
    gone = _assign(user, session_id, client_id)
    assert gone.status_code == 404 and "no such client" in gone.text.lower()


# --- consent ---------------------------------------------------------------------------


def test_consent_is_recorded_with_its_history_and_withdrawn(user, svc):
    client_id = _new_client(user)
    form = user.get(f"/clients/{client_id}/consent").text
    assert 'value="dr.rivera"' in form, "obtained by defaults to the logged-in clinician"
    assert _consent(user, client_id, "2024-04-01", ("recording",)).status_code == 302
    assert _consent(user, client_id).status_code == 302
    newest = svc.storage.consents(client_id)[0]
    response = user.submit(f"/clients/{client_id}/consent", {
        "action": "withdraw", "consent_id": str(newest.id), "withdrawn_on": "2024-05-05"},
        page=f"/clients/{client_id}/consent")
    assert response.status_code == 302
    page = user.get(f"/clients/{client_id}/consent").text
    assert len(re.findall('data-testid="consent-row"', page)) == 2, "history kept"
    assert "5 May 2024" in page and "1 Apr 2024" in page
    assert [c.withdrawn_on is not None for c in svc.storage.consents(client_id)] == [True, False]


@pytest.mark.parametrize(("data", "message"), [
    ({"given_on": "2024-05-07"}, "7 May 2024 is in the future"),
    ({"given_on": "yesterday"}, "is not a date"),
    ({"scope": ()}, "Tick at least one"),
])
def test_a_bad_consent_is_refused_and_nothing_is_recorded(user, svc, data, message):
    client_id = _new_client(user)
    response = _consent(user, client_id, **data)
    assert response.status_code == 400
    assert message in response.text
    assert svc.storage.consents(client_id) == []


# --- assignment ------------------------------------------------------------------------------


def test_a_session_is_assigned_from_its_page_with_the_likely_client_suggested(user, svc, clock):
    regular, other = _new_client(user), _new_client(user, OTHER)
    last_week, yesterday, today = _session(svc, clock, 7), _session(svc, clock, 1), _session(svc, clock)
    svc.storage.assign_client(last_week, regular)
    svc.storage.assign_client(yesterday, other)
    page = user.get(f"/sessions/{today}").text
    assert re.search(rf'<option value="{regular}" selected>{NAME} \(likely\)', page), \
        "the client of this weekly slot, not the one seen yesterday"
    assert _assign(user, today, other).status_code == 302
    assert _client_of(svc, today) == other
    assert OTHER in user.get(f"/sessions/{today}").text
    row = user.get("/sessions").text.split(f'data-session-id="{today}"')[1].split("</tr>")[0]
    assert OTHER in row
    assert _assign(user, today, regular).status_code == 302, "reassignment"
    entries = [e for e in svc.audit.entries(newest_first=False) if e.action == "session.assign_client"]
    assert [e.detail for e in entries] == [f"client {other}", f"client {regular} (was client {other})"]


def test_bulk_assignment_assigns_every_ticked_session_or_none(user, svc, clock):
    client_id = _new_client(user)
    first, second = _session(svc, clock, 1), _session(svc, clock, 2)
    assert 'data-testid="bulk-tick"' in user.get("/sessions").text
    response = user.submit("/sessions/assign", {"session_id": [str(first), str(second)],
                                                 "client_id": str(client_id)})
    assert response.status_code == 302
    assert [s.id for s in svc.storage.client_sessions(client_id)] == [second, first]
    third = _session(svc, clock, 3)
    user.submit(f"/clients/{client_id}/status", {"action": "close"}, page="/clients")
    refused = user.submit("/sessions/assign", {"session_id": [str(third)],
                                               "client_id": str(client_id)})
    assert refused.status_code == 409 and "reopen the client first" in refused.text
    assert _client_of(svc, third) is None


def test_a_closed_or_deleted_client_cannot_be_assigned(user, svc, clock):
    client_id, session_id = _new_client(user), _session(svc, clock)
    user.submit(f"/clients/{client_id}/status", {"action": "close"}, page="/clients")
    closed = _assign(user, session_id, client_id)
    assert closed.status_code == 409 and "reopen the client first" in closed.text
    missing = _assign(user, session_id, 999)
    assert missing.status_code == 404 and "no such client" in missing.text.lower()
    assert _client_of(svc, session_id) is None


def test_a_colleague_can_neither_see_nor_assign_a_clinicians_client(app, user, svc, clock):
    client_id = _new_client(user)
    session_id = _session(svc, clock)
    chen = colleague(app, svc)
    chens = _session(svc, clock, 1, owner="dr.chen")
    assert NAME not in chen.get("/clients").text
    for path in (f"/clients/{client_id}/edit", f"/clients/{client_id}/consent"):
        assert chen.get(path).status_code == 404
    into_theirs = _assign(chen, chens, client_id)  # chen's own session, rivera's client
    assert into_theirs.status_code == 404 and "no such client" in into_theirs.text.lower()
    assert chen.submit(f"/clients/{client_id}/delete", {"confirm_name": NAME}).status_code == 404
    assert _assign(chen, session_id, "", "/sessions").status_code == 404, "not chen's session"
    bulk = chen.submit("/sessions/assign", {"session_id": [str(session_id)],
                                            "client_id": str(client_id)})
    assert bulk.status_code == 404
    assert (_client_of(svc, chens), _client_of(svc, session_id)) == (None, None)
    assert svc.storage.client(client_id) is not None


def test_the_audit_log_names_clients_by_id_only(user, svc, clock):
    client_id = _new_client(user)
    _consent(user, client_id)
    _assign(user, _session(svc, clock), client_id)
    user.get("/clients")
    user.get(f"/clients/{client_id}/edit")
    assert {"client.create", "consent.add", "session.assign_client", "client.list",
            "client.view"} <= set(actions(svc))
    details = _audit_details(svc)
    assert f"client {client_id}" in details
    assert "Jordan" not in details and "Quillfeather" not in details and "Return to work" not in details


# --- consent marks and withdrawal ----------------------------------------------------------------


def test_a_session_outside_its_clients_consent_is_marked(user, svc, clock):
    client_id = _new_client(user)
    _consent(user, client_id, "2024-05-01", ("recording", "transcription"))
    before, covered = _session(svc, clock, 10), _session(svc, clock, 1)
    svc.storage.assign_clients([before, covered], client_id)
    page = user.get(f"/sessions/{before}").text
    assert ("No consent on record for recording, transcription or drafting by the on-device "
            "model on 26 Apr 2024") in page
    assert "No consent on record for drafting by the on-device model on 5 May 2024" in user.get(
        f"/sessions/{covered}").text
    listed = user.get("/sessions").text
    assert len(re.findall('data-testid="row-consent-mark"', listed)) == 2


def test_a_withdrawn_consent_offers_deleting_only_the_audio(user, svc, clock):
    client_id = _new_client(user)
    _consent(user, client_id)
    session_id = _session(svc, clock, 1)
    svc.storage.assign_client(session_id, client_id)
    assert 'data-testid="consent-delete-audio"' not in user.get(f"/sessions/{session_id}").text
    early = user.submit(f"/sessions/{session_id}/audio/delete", page=f"/sessions/{session_id}")
    assert early.status_code == 409 and "has not withdrawn consent" in early.text
    consent_id = svc.storage.consents(client_id)[0].id
    user.submit(f"/clients/{client_id}/consent", {
        "action": "withdraw", "consent_id": str(consent_id), "withdrawn_on": "2024-05-06"},
        page=f"/clients/{client_id}/consent")
    page = user.get(f"/sessions/{session_id}").text
    assert "withdrew consent on 6 May 2024" in page and 'data-testid="consent-delete-audio"' in page
    audio = svc.storage.get_session(session_id).audio_path
    response = user.submit(f"/sessions/{session_id}/audio/delete", page=f"/sessions/{session_id}")
    assert response.status_code == 302
    assert not audio.exists()
    assert svc.storage.load_transcript(session_id) is not None, "the transcript stays"
    assert "session.audio_deleted" in actions(svc)


def _note(svc, session_id: int) -> dict:
    return json.loads(age.decrypt(svc.storage.load_note(session_id)["note_enc"],
                                  [svc.keys.identity()]))


def test_assigning_a_draft_follows_up_the_clients_last_signed_plan(user, svc, clock):
    client_id = _new_client(user)
    _consent(user, client_id)
    earlier = _session(svc, clock, 7)
    svc.storage.assign_client(earlier, client_id)
    note = _note(svc, earlier)
    for section in note["sections"]:
        section["text"] = "Keep a worry log each evening." if section["key"] == "plan" else "Seen."
    sign_note(svc.storage, earlier, note, "", svc.keys.recipient(), "dr.rivera")
    later = seed(svc, clock, started=START, res=result([
        (5.0, "Clinician", "How did the worry log go?"), (9.0, "Client", "I wrote in it most days.")]))
    assert _assign(user, later, client_id).status_code == 302
    # The overnight draft was made before the assignment: the plan is followed up now.
    followup = [s for s in _note(svc, later)["sections"] if s["key"] == "followup"]
    assert followup and "Keep a worry log each evening (from last session): discussed at 0:05" \
        in followup[0]["text"]
    page = user.get(f"/sessions/{later}").text
    # The citation links to the line it cites, on this session's page.
    assert 'href="#t-5"' in page and 'data-testid="citation-missing"' not in page
    # Unassigned, another client's plan must not stay in the note.
    _assign(user, later, "")
    assert not [s for s in _note(svc, later)["sections"] if s["key"] == "followup"]
