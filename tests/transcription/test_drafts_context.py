"""Client context in the drafting job: last session's plan in the next draft, and the consent gate.

Real SQLite, real age, the real job with the bundled SmolLM2 model loaded. Drafting a
whole SOAP note with it takes about 45 s on this machine, so the practice here uses
a template whose sections are all the clinician's: the job runs end to end (layout,
context, checkpoint, finish) without asking the model for a sentence. The
follow-up section is made by code, so that is what it tests.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from appliance import age
from appliance.clients.records import ClientRecord, seal_record
from appliance.drafting import context
from appliance.drafting.runtime import LanguageModel
from appliance.store.db import State, Storage
from appliance.transcription.job import Job
from tests.drafting.conftest import drafting_config, smollm2, stored_draft  # noqa: F401 (fixture)
from tests.support.llm import ModelProxy
from web_ui.views.records import sign_note

pytestmark = pytest.mark.usefixtures("recovery_key")

PLAN = "- Slow breathing twice a day\n- Anxiety log from zero to ten\n- Call the GP about sleep"
OWN_ONLY = {"template": "Own", "custom_templates": [
    {"name": "Own", "sections": [{"key": "notes", "title": "Notes", "clinician": "[Your notes.]"}]}]}


class Clock:
    """The storage's clock: sessions a week apart."""

    def __init__(self):
        self.moment = datetime(2026, 10, 5, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment


class Counting(ModelProxy):
    """The real model, counting the answers asked of it."""

    def __init__(self, model: LanguageModel):
        super().__init__(model)
        self.calls = 0

    def chat(self, messages, *, max_tokens):
        self.calls += 1
        return super().chat(messages, max_tokens=max_tokens)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def storage(cfg, clock):
    return Storage(cfg.paths.data_dir, now=clock)


@pytest.fixture
def cfg(tmp_path: Path):
    return drafting_config(tmp_path, model="bundled-smollm2")


def own_config(tmp_path: Path, **drafting):
    from tests.conftest import make_config
    return make_config(tmp_path, drafting={"model": "bundled-smollm2", "context_tokens": 4096,
                                           **drafting}, notes=OWN_ONLY)


def client(storage, keystore) -> int:
    owner = keystore.users()[0].id
    return storage.create_client(owner, seal_record(ClientRecord("D.M."), keystore.recipient()))


def session_of(storage, keystore, clock, week: str, client_id: int | None, days: int):
    clock.moment = datetime(2026, 10, 5, 15, 0, tzinfo=UTC) + timedelta(days=days)
    session, result = stored_draft(storage, keystore.recipient(), week)
    if client_id is not None:
        storage.assign_client(session.id, client_id)
    return storage.get_session(session.id), result


def note_of(storage, keystore, sid: int) -> dict:
    return json.loads(age.decrypt(storage.load_note(sid)["note_enc"], [keystore.identity()]))


def sign_with_plan(storage, keystore, sid: int, plan: str) -> None:
    """The clinician fills every section, the plan with ``plan``, and signs."""
    note = note_of(storage, keystore, sid)
    for section in note["sections"]:
        if not section.get("auto"):
            section["text"] = plan if section["key"] == "plan" else "Written by the clinician."
    sign_note(storage, sid, note, "", keystore.recipient(), "dr.rivera")


def run_job(cfg, storage, keystore, model) -> None:
    Job(cfg, storage=storage, keys=keystore, language_model=model,
        recorder_status=lambda: None).run_drafts()


def followup_of(note: dict) -> dict | None:
    return next((s for s in note["sections"] if s["key"] == "followup"), None)


def test_the_next_draft_opens_with_last_sessions_plan_citing_where_it_was_discussed(
        tmp_path, storage, keystore, clock, smollm2):  # noqa: F811
    cfg = own_config(tmp_path)
    dm = client(storage, keystore)
    week1, _ = session_of(storage, keystore, clock, "week1", dm, 0)
    week2, result = session_of(storage, keystore, clock, "week2", dm, 7)
    other, _ = session_of(storage, keystore, clock, "week3", client(storage, keystore), 8)
    unassigned, _ = session_of(storage, keystore, clock, "week3", None, 9)
    storage.update_session(week1.id, drafting="done")  # its draft was made earlier
    # Week 1 is not signed yet: nothing is carried over from a draft.
    run_job(cfg, storage, keystore, smollm2)
    assert followup_of(note_of(storage, keystore, week2.id)) is None
    clock.moment = datetime(2026, 10, 5, 18, 0, tzinfo=UTC)  # signed the evening of the session
    sign_with_plan(storage, keystore, week1.id, PLAN)
    # Redraft: the job recomputes the draft, now with week 1's signed plan at the top.
    storage.update_session(week2.id, drafting="queued")
    run_job(cfg, storage, keystore, smollm2)
    note = note_of(storage, keystore, week2.id)
    section = note["sections"][0]
    assert section["key"] == "followup" and section["title"] == "From last session"
    first_line = result.segments[0]  # "How did the breathing log go this week?"
    assert section["text"].splitlines() == [
        "Plan of the note signed on 5 Oct 2026:",
        "Slow breathing twice a day (from last session): discussed at 0:00",
        "Anxiety log from zero to ten (from last session): discussed at 0:00",
        "Call the GP about sleep (from last session): not discussed in this session.",
    ]
    breathing, log, gp = section["statements"]
    assert breathing["citations"] == log["citations"] == [first_line.start]
    assert gp["citations"] == [] and all(s["verified"] for s in (breathing, log, gp))
    assert storage.get_session(week2.id).drafting == "done"
    # Another client's session and an unassigned one: drafted, with no context.
    for sid in (other.id, unassigned.id):
        assert storage.get_session(sid).drafting == "done"
        assert followup_of(note_of(storage, keystore, sid)) is None


def test_a_redraft_keeps_the_clinicians_text_in_the_section(
        tmp_path, storage, keystore, clock, smollm2):  # noqa: F811
    cfg = own_config(tmp_path)
    dm = client(storage, keystore)
    week1, _ = session_of(storage, keystore, clock, "week1", dm, 0)
    sign_with_plan(storage, keystore, week1.id, PLAN)
    week2, _ = session_of(storage, keystore, clock, "week2", dm, 7)
    run_job(cfg, storage, keystore, smollm2)
    note = note_of(storage, keystore, week2.id)
    note["sections"][0]["text"] = "Breathing practised on 4 of 7 days."
    storage.save_note(week2.id, age.encrypt(json.dumps(note).encode(), [keystore.recipient()]),
                      author="dr.rivera")
    storage.update_session(week2.id, drafting="queued")
    run_job(cfg, storage, keystore, smollm2)
    again = note_of(storage, keystore, week2.id)
    assert again["sections"][0]["key"] == "followup"
    assert again["sections"][0]["text"] == "Breathing practised on 4 of 7 days."


def test_withdrawn_consent_stops_drafting_before_the_model_runs(
        cfg, storage, keystore, clock, audit, smollm2):  # noqa: F811
    dm = client(storage, keystore)
    consent = storage.add_consent(dm, given_on=date(2026, 10, 1), form_version="v2",
                                  obtained_by="Dr Rivera", scope=("recording", "transcription",
                                                                  "drafting"), by="dr.rivera")
    storage.withdraw_consent(consent, date(2026, 10, 12))
    week3, _ = session_of(storage, keystore, clock, "week3", dm, 14)
    before = (storage.load_transcript(week3.id), storage.load_note(week3.id)["note_enc"])
    model = Counting(smollm2)
    run_job(cfg, storage, keystore, model)
    assert model.calls == 0
    after = storage.get_session(week3.id)
    assert (after.state, after.drafting) == (State.DRAFT, "off")
    assert "withdrew consent on 12 Oct 2026" in after.drafting_reason
    # The transcript and the facts note stay exactly as they were.
    assert (storage.load_transcript(week3.id), storage.load_note(week3.id)["note_enc"]) == before
    assert audit.entries(limit=1)[0].action == "note.draft_blocked"


def test_with_drafting_off_the_context_is_made_by_code(tmp_path, storage, keystore, clock):
    dm = client(storage, keystore)
    week1, _ = session_of(storage, keystore, clock, "week1", dm, 0)
    sign_with_plan(storage, keystore, week1.id, PLAN)
    week2, _ = session_of(storage, keystore, clock, "week2", dm, 7)
    storage.update_session(week2.id, drafting="off")
    assert context.refresh(storage, week2.id, keystore.identity(), keystore.recipient())
    section = followup_of(note_of(storage, keystore, week2.id))
    assert section is not None and "discussed at 0:00" in section["text"]
    # Twice changes nothing; a signed note is never touched.
    assert not context.refresh(storage, week2.id, keystore.identity(), keystore.recipient())
    signed = storage.load_note(week1.id)["note_enc"]
    assert not context.refresh(storage, week1.id, keystore.identity(), keystore.recipient())
    assert storage.load_note(week1.id)["note_enc"] == signed
