"""Drafting in the job: queued notes drafted section by section with the real bundled model,
checkpointed per section, never over the clinician's text, and one reason when it cannot be done.

Real SQLite, real age, real llama.cpp with SmolLM2-135M's real weights. The tests
assert the grounding rules, not the prose of a 135M model.
"""

from __future__ import annotations

import json
import threading

import pytest

from appliance import age
from appliance.drafting import verify
from appliance.drafting.drafter import LINES_PER_SECTION
from appliance.drafting.note import RISK_SOURCE
from appliance.drafting.runtime import LanguageModel
from appliance.notes import render
from appliance.notes.facts import transcript_lines
from appliance.store.db import State
from appliance.transcription import commands
from appliance.transcription.job import Job
from tests.drafting.conftest import drafting_config, stored_draft
from tests.support.llm import ModelProxy

pytestmark = [pytest.mark.usefixtures("recovery_key"), pytest.mark.slow]


def job(cfg, storage, keystore, model=None, stop=None) -> Job:
    return Job(cfg, storage=storage, keys=keystore, language_model=model, stop=stop,
               recorder_status=lambda: None)


def stored_note(storage, keystore, sid: int) -> dict:
    return json.loads(age.decrypt(storage.load_note(sid)["note_enc"], [keystore.identity()]))


class Counting(ModelProxy):
    """The real model, counting its answers; can ask the job to stop after the first one,
    or do something else then (``then``)."""

    def __init__(self, model: LanguageModel, stop_after: threading.Event | None = None,
                 then=None):
        super().__init__(model)
        self.calls, self.stop_after, self.then = 0, stop_after, then

    def chat(self, messages, *, max_tokens):
        self.calls += 1
        if self.stop_after is not None:
            self.stop_after.set()
        if self.then is not None and self.calls == 1:
            self.then()
        return super().chat(messages, max_tokens=max_tokens)


def test_a_queued_note_is_drafted_and_every_statement_rests_on_a_transcript_line(
        cfg, storage, keystore, audit, smollm2):
    session, result = stored_draft(storage, keystore.recipient(), "week3")
    assert job(cfg, storage, keystore, smollm2).run_drafts() == 0
    after = storage.get_session(session.id)
    assert (after.state, after.drafting, after.drafting_progress) == (State.DRAFT, "done", 1.0)
    note = stored_note(storage, keystore, session.id)
    assert note["drafting"]["model"] == smollm2.choice.label
    assert note["drafting"]["state"] == "done"
    lines = transcript_lines(result.segments)
    starts = {line.start for line in lines}
    statements = [s for section in note["sections"] for s in section.get("statements", [])]
    for statement in statements:
        assert statement["citations"] and set(statement["citations"]) <= starts
    # The model's kept statements pass the check again; nothing unverified is in the text.
    for section in note["sections"]:
        text = render.section_text(section)
        for statement in section.get("statements", []):
            if not statement["verified"]:
                assert statement["text"] not in text
    # Lines the screen flagged are reported by it, never restated by the model.
    flagged = {f.start for f in result.flags}
    assert not [s for s in statements if s.get("source") != RISK_SOURCE
                and set(s["citations"]) & flagged]
    assert any(s["verified"] and s.get("source") != RISK_SOURCE for s in statements)
    # The risk screen's three flags are in the Assessment verbatim, at their times.
    assessment = next(s for s in note["sections"] if s["key"] == "assessment")
    risk = [s for s in assessment["statements"] if s.get("source") == RISK_SOURCE]
    assert [s["citations"][0] for s in risk] == [f.start for f in result.flags]
    assert all(f.quote in render.section_text(assessment) for f in result.flags)
    # Every section is filled (drafted text or "Not discussed."): the note can be signed.
    assert render.unfilled_sections(note) == []
    assert audit.entries(limit=1)[0].action == "note.drafted"


def test_a_stopped_draft_resumes_at_the_next_section_without_redoing_the_first(
        cfg, storage, keystore, smollm2):
    session, _ = stored_draft(storage, keystore.recipient(), "week1")
    stop = threading.Event()
    first = Counting(smollm2, stop_after=stop)
    job(cfg, storage, keystore, first, stop).run_drafts()
    halfway = stored_note(storage, keystore, session.id)
    # The job stops between sections: the one it was in is finished first.
    assert halfway["drafting"]["done"] == ["subjective"]
    asked_first = first.calls
    assert storage.get_session(session.id).drafting == "drafting"
    assert "next run" in storage.get_session(session.id).drafting_reason
    subjective = halfway["sections"][0]["text"]
    # The clinician writes the plan before the draft is finished: their words stay.
    halfway["sections"][3]["text"] = "Review the panic diary next week."
    storage.save_note(session.id, age.encrypt(json.dumps(halfway).encode(), [keystore.recipient()]),
                      author="dr.rivera")
    rest = Counting(smollm2)
    job(cfg, storage, keystore, rest).run_drafts()
    done = stored_note(storage, keystore, session.id)
    # Assessment and plan only: at most 3 lines each (brief); the subjective was not redone.
    assert rest.calls <= 2 * LINES_PER_SECTION["brief"] and asked_first <= LINES_PER_SECTION["brief"]
    assert done["sections"][0]["statements"] == halfway["sections"][0]["statements"]
    assert done["sections"][0]["text"] == subjective
    assert done["sections"][3]["text"] == "Review the panic diary next week."
    assert storage.get_session(session.id).drafting == "done"


def test_a_note_signed_while_it_is_drafted_stays_as_signed(cfg, storage, keystore, smollm2):
    from appliance.store.db import apply_transition, write_note

    session, result = stored_draft(storage, keystore.recipient(), "week2")
    signed_text = {**result.note, "status": "signed"}
    blob = age.encrypt(json.dumps(signed_text).encode(), [keystore.recipient()])

    def sign():
        with storage.connect() as conn:
            apply_transition(conn, session.id, State.SIGNED)
            write_note(conn, session.id, blob, "dr.rivera", storage.now(), signed=True)

    job(cfg, storage, keystore, Counting(smollm2, then=sign)).run_drafts()
    after = storage.get_session(session.id)
    assert after.state == State.SIGNED and after.drafting == "done"
    assert "signed before the draft was finished" in after.drafting_reason
    assert storage.load_note(session.id)["note_enc"] == blob


@pytest.mark.parametrize("content, reason", [
    (b"<html>Not Found</html>" + b"\0" * 100, "is not a GGUF model file"),
    (b"GGUF" + b"\0" * 1000, "truncated"),
])
def test_a_bad_model_file_gives_one_reason_and_keeps_the_session(tmp_path, storage, keystore,
                                                                content, reason):
    model_file = tmp_path / "model.gguf"
    model_file.write_bytes(content)
    cfg = drafting_config(tmp_path, model=str(model_file))
    session, result = stored_draft(storage, keystore.recipient())
    before = storage.load_note(session.id)["note_enc"]
    job(cfg, storage, keystore).run_drafts()
    after = storage.get_session(session.id)
    assert after.state == State.DRAFT and after.drafting == "queued"  # drafts once it is fixed
    assert reason in after.drafting_reason and after.drafting_reason.startswith("Cannot draft yet")
    assert storage.load_note(session.id)["note_enc"] == before
    assert storage.load_transcript(session.id) is not None


def test_a_model_that_llama_cpp_cannot_load_gives_one_reason(tmp_path, storage, keystore):
    pytest.importorskip("llama_cpp")
    model_file = tmp_path / "damaged.gguf"
    model_file.write_bytes(b"GGUF" + b"\x03\0\0\0" + b"\xff" * (9 * 1024 * 1024))
    cfg = drafting_config(tmp_path, model=str(model_file))
    session, _ = stored_draft(storage, keystore.recipient())
    job(cfg, storage, keystore).run_drafts()
    assert "llama.cpp cannot load" in storage.get_session(session.id).drafting_reason


def test_the_model_is_loaded_once_for_every_note_of_the_run(cfg, storage, keystore, monkeypatch):
    pytest.importorskip("llama_cpp")
    loads = []
    real = LanguageModel.load.__func__

    def counting(cls, choice, **options):
        loads.append(choice)
        return real(cls, choice, **options)

    monkeypatch.setattr(LanguageModel, "load", classmethod(counting))
    sessions = [stored_draft(storage, keystore.recipient(), week)[0] for week in ("week1", "week2")]
    job(cfg, storage, keystore).run_drafts()
    assert len(loads) == 1
    assert [storage.get_session(s.id).drafting for s in sessions] == ["done", "done"]


def test_with_drafting_off_a_new_transcript_says_so(tmp_path):
    from appliance.transcription.drafts import OFF_REASON, DraftRunner
    from tests.conftest import make_config

    runner = DraftRunner(make_config(tmp_path), None, None, recipient=None, check_continue=None)
    assert runner.state_after_transcript() == {"drafting": "off", "drafting_reason": OFF_REASON,
                                               "drafting_progress": 0.0}


def test_transcribe_file_json_has_statements_with_citations(cfg, recognizer, smollm2):
    from tests.conftest import TESTDATA

    audio = TESTDATA / "speech" / "series" / "week3.mono.wav"
    result = commands.transcribe_file(cfg, audio, recognizer=recognizer, language_model=smollm2)
    data = result.to_json()
    starts = {segment["start"] for segment in data["segments"]}
    sections = data["note"]["sections"]
    assert data["note"]["drafting"]["state"] == "done"
    assert all("text" in s for s in sections)
    drafted = [s for s in sections if s.get("drafted")]
    assert drafted and all(isinstance(s["statements"], list) for s in drafted)
    for section in drafted:
        for statement in section["statements"]:
            assert set(statement) >= {"text", "citations", "verified"}
            assert set(statement["citations"]) <= starts
            if statement["verified"]:
                raw = verify.parse.Raw(statement["text"], ())
                assert raw.text in section["text"]


def test_the_overnight_job_transcribes_then_drafts_in_one_run(cfg, storage, keystore, recognizer,
                                                             smollm2):
    from datetime import datetime

    from tests.conftest import TESTDATA
    from tests.transcription.test_asr import load
    from tests.transcription.test_job import add_session

    audio = load(TESTDATA / "speech" / "series" / "week2.mono.wav")
    session = add_session(storage, keystore.recipient(), audio)
    one_am = datetime(2026, 10, 13, 1, 0).astimezone()
    assert commands.run_job(cfg, overnight=True, now=lambda: one_am, recognizer=recognizer,
                            recorder_status=lambda: None, language_model=smollm2) == 0
    after = storage.get_session(session.id)
    assert (after.state, after.drafting) == (State.DRAFT, "done")
    note = stored_note(storage, keystore, session.id)
    transcript = json.loads(age.decrypt(storage.load_transcript(session.id), [keystore.identity()]))
    starts = {segment["start"] for segment in transcript["segments"]}
    statements = [s for section in note["sections"] for s in section["statements"]]
    assert statements and all(set(s["citations"]) <= starts for s in statements)
    assert render.unfilled_sections(note) == []


def test_a_model_failing_mid_answer_fails_the_draft_not_the_session(cfg, storage, keystore,
                                                                   smollm2, monkeypatch):
    def broken(**_options):
        raise RuntimeError("llama_decode returned -1")

    monkeypatch.setattr(smollm2._llama, "create_chat_completion", broken)
    session, _ = stored_draft(storage, keystore.recipient(), "week1")
    assert job(cfg, storage, keystore, smollm2).run_drafts() == 0
    after = storage.get_session(session.id)
    assert (after.state, after.drafting) == (State.DRAFT, "failed")
    assert "the model failed while drafting (llama_decode returned -1)" in after.drafting_reason
    assert storage.load_transcript(session.id) is not None


def test_a_template_removed_from_the_config_gives_one_reason(tmp_path, storage, keystore, smollm2):
    session, _ = stored_draft(storage, keystore.recipient(), "week1")
    storage.update_session(session.id, draft_template="Couples")  # asked for, then removed
    job(drafting_config(tmp_path), storage, keystore, smollm2).run_drafts()
    after = storage.get_session(session.id)
    assert after.drafting == "failed" and "no template named 'Couples'" in after.drafting_reason
