"""PDF export of a note and a client's record, and the profile that signs them, through the routes.

Dr Rivera (practice "Praxis Nord") has a client with three sessions: two signed notes and
a draft, and a signed case conceptualization. The PDF names the practice, the client and
Dr Rivera's full name and credentials; the record holds the signed notes oldest first
and nothing of the conceptualization; only Dr Rivera exports; the audit log says what
was exported by id and format, never a client's words or name.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from pypdf import PdfReader

from appliance import age
from appliance.clients.records import ClientRecord, seal_record
from appliance.store import formulations
from tests.conftest import USER, make_config
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
from web_ui.views import records

CLIENT = ClientRecord(name="Zoë Ångström", identifier="C-7")
SHOWN = "Zoë Ångström (C-7)"
WEEKS = {0: "Week one: sleeping badly since the move.", 7: "Week two: the worry log helped.",
         14: "Week three: still a draft."}
FORMULATION = "Predisposing factors: an anxious attachment (quokkafish)."


@pytest.fixture
def cfg(tmp_path):
    return make_config(tmp_path, practice={"name": "Praxis Nord"})


def _sign(svc, session_id: int, subjective: str) -> None:
    identity = svc.keys.identity()
    record = records.load_note(svc.storage, svc.plain, identity, session_id)
    note = records.edited_note(record.note, {"subjective": subjective, "assessment": "Stable.",
                                             "plan": "Review in a week."})
    records.sign_note(svc.storage, session_id, note, record.version, svc.keys.recipient(), USER)


@pytest.fixture
def story(user, svc, clock) -> dict:
    """The client, three sessions (created newest first) and a signed conceptualization."""
    owner = svc.storage.create_client(1, seal_record(CLIENT, svc.keys.recipient()))
    ids = {}
    for day in sorted(WEEKS, reverse=True):
        res = result([(5.0, "Client", "I keep thinking about the zebracorn."),
                      (10.0, "Clinician", "Tell me more.")])
        ids[day] = seed(svc, clock, started=START + timedelta(days=day), res=res, label="ZÅ")
        svc.storage.assign_client(ids[day], owner)
    for day in (0, 7):
        _sign(svc, ids[day], WEEKS[day])
    records.add_addendum(svc.storage, ids[0], "Called back: sleeping better.", svc.keys.recipient(),
                         USER)
    body = age.encrypt(FORMULATION.encode(), [svc.keys.recipient()])
    number = formulations.request(svc.storage, owner, USER)
    formulations.claim(svc.storage, owner, number)
    formulations.drafted(svc.storage, owner, number, body, progress=1.0, state="draft")
    formulations.sign(svc.storage, owner, number, body, USER)
    saved = user.submit("/account/profile", {"full_name": "Ana  Pérez",
                                             "credentials": "PhD, Licensed Psychologist"})
    assert saved.status_code == 302, saved.text
    return {"client": owner, **ids}


def _pdf_text(response) -> str:
    assert response.status_code == 200, response.text
    assert response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    pages = PdfReader(io.BytesIO(response.data)).pages
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in pages))


def _details(svc) -> list[str]:
    return [f"{e.action} {e.detail or ''}" for e in svc.audit.entries(newest_first=False)]


def test_a_signed_note_exports_as_pdf_signed_with_the_profile(user, svc, story):
    text = _pdf_text(user.get(f"/sessions/{story[0]}/export.pdf"))
    assert "Praxis Nord" in text and f"Client: {SHOWN}" in text
    assert text.index("Subjective") < text.index(WEEKS[0]) < text.index("Plan")
    assert "Called back: sleeping better." in text
    assert re.search(r"Signed by Ana Pérez, PhD, Licensed Psychologist on 2024-05-\d\d", text)
    assert "zebracorn" not in text and "DRAFT" not in text
    with_transcript = _pdf_text(user.get(f"/sessions/{story[0]}/export.pdf?transcript=1"))
    assert "zebracorn" in with_transcript
    draft = _pdf_text(user.get(f"/sessions/{story[14]}/export.pdf"))
    assert "DRAFT — not signed" in draft and "Signed by" not in draft
    for page in (f"/sessions/{story[0]}", f"/sessions/{story[0]}/export"):
        assert f'href="/sessions/{story[0]}/export.pdf"' in user.get(page).text
    assert f'/clients/{story["client"]}/export.pdf' in user.get(f"/sessions/{story[0]}/export").text
    logged = _details(svc)
    assert "session.export pdf" in logged and "session.export pdf with transcript" in logged
    assert "user.profile " in logged


def test_the_client_record_holds_signed_notes_in_date_order_and_no_conceptualization(user, svc,
                                                                                      story):
    url = f"/clients/{story['client']}/export"
    text = _pdf_text(user.get(f"{url}.pdf"))
    assert text.index("Client record") < text.index(WEEKS[0]) < text.index(WEEKS[7])
    for line in ("Practice: Praxis Nord", "Clinician: Ana Pérez, PhD, Licensed Psychologist",
                 f"Client: {SHOWN}", "Signed notes: 2", "Called back: sleeping better."):
        assert line in text
    markdown, plain = user.get(f"{url}.md"), user.get(f"{url}.txt")
    assert markdown.headers["Cache-Control"] == "no-store" == plain.headers["Cache-Control"]
    for body in (text, markdown.text, plain.text):
        assert WEEKS[14] not in body and "quokkafish" not in body and "Predisposing" not in body
    for body in (markdown.text, plain.text):
        assert body.index(WEEKS[0]) < body.index(WEEKS[7])
    assert 'filename="holdnote-client-' in markdown.headers["Content-Disposition"]
    exported = [d for d in _details(svc) if d.startswith("client.export")]
    assert [d.split(";")[1].strip() for d in exported] == ["pdf", "md", "txt"]
    # Ids and formats only: no client's name or words in any audit entry.
    assert not any(word in " ".join(_details(svc)) for word in ("Zoë", "Ångström", "C-7", "Week"))


def test_bad_requests_get_a_sentence(user, svc, story):
    empty = svc.storage.create_client(1, seal_record(ClientRecord(name="B."), svc.keys.recipient()))
    response = user.get(f"/clients/{empty}/export.pdf")
    assert response.status_code == 404 and "no signed notes to export yet" in response.text
    response = user.get(f"/clients/{story['client']}/export.docx")
    assert response.status_code == 404 and ".pdf, .md or .txt" in response.text
    assert user.get("/clients/999/export.pdf").status_code == 404


def test_only_the_clinician_exports_and_only_while_unlocked(app, user, svc, story):
    chen = colleague(app, svc)
    assert chen.get(f"/clients/{story['client']}/export.pdf").status_code == 404
    assert chen.get(f"/sessions/{story[0]}/export.pdf").status_code == 404
    svc.storage.share(story[0], 2, USER)
    refused = chen.get(f"/sessions/{story[0]}/export.pdf")
    assert refused.status_code == 403 and "Only the clinician" in refused.text
    svc.keys.lock()
    assert user.get(f"/sessions/{story[0]}/export.pdf").status_code != 200
    assert user.get(f"/clients/{story['client']}/export.pdf").status_code != 200
    assert "Zoë" not in " ".join(_details(svc))


def test_the_profile_form_keeps_what_was_typed_when_refused(user, svc):
    page = user.get("/account/profile")
    assert page.status_code == 200 and 'data-testid="profile-form"' in page.text
    refused = user.submit("/account/profile", {"full_name": "A" * 121, "credentials": "PhD"})
    assert refused.status_code == 400 and "at most 120" in refused.text
    assert 'value="PhD"' in refused.text
    assert "user.profile" not in actions(svc)
    assert user.submit("/account/profile", {"full_name": "Ana Pérez", "credentials": ""}
                       ).status_code == 302
    assert 'value="Ana Pérez"' in user.get("/account/profile").text
