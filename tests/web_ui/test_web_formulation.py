"""The case-conceptualization page (web_ui/views/formulation.py): routes, refusals, owner only.

The model never runs here: drafting is queued (and the drafting service woken
through the request file); a drafted version is seeded as the runner stores it.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from appliance import age
from appliance.clients import formulation as types
from appliance.clients.formulation import Citation, Section, Statement
from appliance.clients.records import ClientRecord, seal_record
from appliance.store import formulations as table
from appliance.store.db import State, apply_transition, write_note
from tests.conftest import make_config
from tests.support.web_support import (  # noqa: F401 - fixtures
    START,
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
KEPT = "The client said panic attacks started at work after a promotion."
LEFT_OUT = "The client said their parrot wakes them."
TYPED = "Panic at work since the promotion; avoids the Monday meeting."
LINES = [(4.0, "Client", "Since my promotion I have been having panic attacks at work."),
         (12.0, "Clinician", "What happens when one starts?")]


@pytest.fixture
def cfg(tmp_path):
    """A device with the bundled model configured (drafting on)."""
    return make_config(tmp_path, drafting={"model": "bundled-smollm2"})


def _client(svc, status: str = "active") -> int:
    owner = next(u.id for u in svc.keys.users() if u.username == "dr.rivera")
    client_id = svc.storage.create_client(owner, seal_record(ClientRecord(NAME, "", None, ()),
                                                             svc.keys.recipient()))
    if status != "active":
        svc.storage.update_client(client_id, status=status)
    return client_id


def _session(svc, clock, client_id: int, *, signed: bool = True) -> int:
    sid = seed(svc, clock, started=START - timedelta(days=2), res=result(LINES))
    svc.storage.assign_client(sid, client_id)
    if signed:
        blob = age.encrypt(json.dumps({"sections": []}).encode(), [svc.keys.recipient()])
        with svc.storage.connect() as conn:
            apply_transition(conn, sid, State.SIGNED)
            write_note(conn, sid, blob, "dr.rivera", svc.storage.now(), signed=True)
    return sid


def _drafted(svc, client_id: int, sid: int) -> int:
    """A version as the runner leaves it: one kept statement, one kept out, the rest empty."""
    number = table.request(svc.storage, client_id, "dr.rivera")
    table.claim(svc.storage, client_id, number)
    days = {sid: "4 May 2024"}
    kept = Statement(KEPT, (Citation(sid, 4.0),), True)
    out = Statement(LEFT_OUT, (Citation(sid, 4.0),), False, "says more than the cited lines")
    sections = [Section(s.key, s.title, types.section_text([kept, out], days), (kept, out))
                if s.key == "presenting" else s for s in types.empty_sections()]
    body = types.body_of(sections, approach="cbt", model="SmolLM2", sessions=days)
    table.drafted(svc.storage, client_id, number, types.seal(body, svc.keys.recipient()),
                  progress=1.0, state="draft")
    return number


def _page(client_id: int) -> str:
    return f"/clients/{client_id}/formulation"


def _details(svc) -> str:
    return repr([(e.action, e.detail) for e in svc.audit.entries()])


def test_citations_link_to_the_session_line_then_save_sign_and_a_new_version(user, svc, clock, cfg):
    client_id = _client(svc)
    sid = _session(svc, clock, client_id)
    _drafted(svc, client_id, sid)
    page = user.get(_page(client_id)).text
    assert f'href="/sessions/{sid}#t-4"' in page and "4 May 2024 0:04" in page
    assert KEPT in page and f"Left out by the check: {LEFT_OUT}" in page
    assert page.count(types.NOTHING_YET) == 4
    form = {"version": "1", "text_presenting": TYPED}
    assert user.submit(_page(client_id) + "/save", form, page=_page(client_id)).status_code == 302
    refused = user.submit(_page(client_id) + "/sign", form, page=_page(client_id))
    assert refused.status_code == 400 and "Nothing was signed" in refused.text
    signed = user.submit(_page(client_id) + "/sign", {**form, "reviewed": "yes"}, page=_page(client_id))
    assert signed.status_code == 302
    frozen = types.newest(svc.storage, client_id, svc.keys.identity())
    assert (frozen.state, frozen.signed_by, frozen.sections[0].text) == ("signed", "dr.rivera", TYPED)
    late = user.submit(_page(client_id) + "/save", {"version": "1", "text_presenting": "later"},
                       page=_page(client_id))
    assert late.status_code == 409 and "signed" in late.text and "later" in late.text
    assert user.submit(_page(client_id) + "/draft", {}, page=_page(client_id)).status_code == 302
    assert (cfg.paths.runtime_dir / "draft.request").exists()
    assert [v.version for v in table.versions(svc.storage, client_id)] == [2, 1]
    assert table.version(svc.storage, client_id, 1).state == "signed"
    listing = user.get(_page(client_id)).text
    assert "Version 2" in listing and f"{_page(client_id)}?version=1" in listing
    assert TYPED in user.get(_page(client_id) + "?version=1").text
    details = _details(svc)
    for action in ("formulation.view", "formulation.save", "formulation.sign", "formulation.draft"):
        assert action in details
    assert NAME not in details and "Panic" not in details and "panic" not in details


def test_a_client_without_a_signed_note_is_refused_and_nothing_is_queued(user, svc, clock):
    client_id = _client(svc)
    _session(svc, clock, client_id, signed=False)
    response = user.submit(_page(client_id) + "/draft", {}, page=_page(client_id))
    assert response.status_code == 409
    assert "Sign at least one session note of this client first" in response.text
    assert table.versions(svc.storage, client_id) == []


def test_a_closed_clients_case_conceptualization_is_readable_but_not_drafted(user, svc, clock):
    client_id = _client(svc)
    sid = _session(svc, clock, client_id)
    _drafted(svc, client_id, sid)
    svc.storage.update_client(client_id, status="closed")
    page = user.get(_page(client_id))
    assert page.status_code == 200 and KEPT in page.text and "reopen the client" in page.text
    refused = user.submit(_page(client_id) + "/draft", {}, page=_page(client_id))
    assert refused.status_code == 409 and "reopen the client" in refused.text
    assert table.newest(svc.storage, client_id).state == "draft"


def test_another_clinician_gets_404_and_changes_nothing(user, app, svc, clock):
    client_id = _client(svc)
    sid = _session(svc, clock, client_id)
    _drafted(svc, client_id, sid)
    chen = colleague(app, svc)
    assert chen.get(_page(client_id)).status_code == 404
    assert chen.get(_page(client_id) + "/status").status_code == 404
    token_page = "/clients"
    for action in ("draft", "save", "sign"):
        response = chen.submit(_page(client_id) + f"/{action}",
                               {"version": "1", "text_presenting": "x", "reviewed": "yes"},
                               page=token_page)
        assert response.status_code == 404, action
    row = table.newest(svc.storage, client_id)
    assert (row.version, row.state) == (1, "draft")


def test_it_is_never_in_an_exported_note_or_client_record(user, svc, clock):
    client_id = _client(svc)
    sid = _session(svc, clock, client_id)
    _drafted(svc, client_id, sid)
    user.submit(_page(client_id) + "/save", {"version": "1", "text_presenting": TYPED},
                page=_page(client_id))
    for path in (f"/sessions/{sid}/export.txt", f"/sessions/{sid}/export.md",
                 f"/clients/{client_id}/export.md", f"/clients/{client_id}/export.txt"):
        response = user.get(path)
        assert response.status_code == 200, path
        text = response.get_data(as_text=True)
        assert TYPED not in text and KEPT not in text and not re.search("conceptuali", text, re.I)


def test_a_consent_without_drafting_stops_the_draft(user, svc, clock):
    client_id = _client(svc)
    _session(svc, clock, client_id)
    svc.storage.add_consent(client_id, given_on=(START - timedelta(days=30)).date(), form_version="v2",
                            obtained_by="Dr Rivera", scope=("recording", "transcription"),
                            by="dr.rivera")
    response = user.submit(_page(client_id) + "/draft", {}, page=_page(client_id))
    assert response.status_code == 409 and "does not cover drafting" in response.text
    assert table.versions(svc.storage, client_id) == []
