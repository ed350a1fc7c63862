"""The sessions list and the session page: transcript, note editing, signing, export, delete."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from appliance import age
from appliance.notes.draft import build_draft_note
from appliance.store.db import State
from tests.conftest import USER
from tests.support.web_support import (  # noqa: F401 - fixtures
    START, actions, app, browser, clock, recovery, result, seed, svc, user)

LINES = [(3.0, "Clinician", "How has the week been?"),
         (8.5, "Client", "Evenings are still the hardest part."),
         (40.0, "Client", "Sometimes I think everyone would be better off without me."),
         (46.0, "Clinician", "Thank you for telling me that.")]
FLAG = {"category": "suicide", "start": 40.0, "end": 44.0, "speaker": "Client",
        "quote": "better off without me", "negated": False, "term": "better off"}
# Every section the clinician writes, so the note can be signed.
WRITTEN = {"subjective": "Evenings remain hard; sleep a little better.",
           "assessment": "Low acute risk; safety plan reviewed.",
           "plan": "Weekly sessions; sleep diary."}


def _transcribed(svc, clock, **kwargs) -> int:
    res = result(LINES, flags=[FLAG], silences=[{"start": 13.0, "end": 39.0}],
                 bookmarks=[{"offset": 41.0, "segment_index": 2, "text": "review this"}])
    return seed(svc, clock, started=START, res=res, label="J.D. 2024-017", consent=True,
                **kwargs)


def _drafted(svc, clock) -> tuple[int, dict]:
    """A session whose note is the overnight job's draft: facts in Objective, prompts elsewhere."""
    res = result(LINES, flags=[FLAG])
    note = build_draft_note("SOAP", session_date=START, duration_s=res.duration_s,
                            metrics=res.metrics, silences=res.silences, flags=res.flags,
                            bookmarks=[], speakers=["Clinician", "Client"])
    return seed(svc, clock, started=START, res={**res.to_json(), "note": note}), note


def _prompts(note: dict) -> list[str]:
    return [s["prompt"] for s in note["sections"]]


def _note(svc, session_id: int) -> dict:
    row = svc.storage.load_note(session_id)
    return json.loads(age.decrypt(row["note_enc"], [svc.keys.identity()]))


def _version(page: str) -> str:
    return re.search(r'name="version" value="([^"]+)"', page).group(1)


def _save(user, session_id: int, action: str = "save", reviewed: bool = False, **texts):
    page = user.get(f"/sessions/{session_id}").text
    data = {f"section-{k}": v for k, v in texts.items()}
    data.update(version=_version(page), action=action)
    if reviewed:
        data["reviewed"] = "yes"
    return user.submit(f"/sessions/{session_id}/note", data, page=f"/sessions/{session_id}")


# --- list ---------------------------------------------------------------------------------


def test_the_list_shows_each_session_with_its_decrypted_details(user, svc, clock):
    _transcribed(svc, clock)
    seed(svc, clock, started=START - timedelta(days=1), state=State.TRANSCRIBING, progress=0.42)
    seed(svc, clock, started=START - timedelta(days=2), state=State.RECORDED,
         waiting_reason="Device locked: log in to the web page before the night run")
    seed(svc, clock, started=START - timedelta(days=3), state=State.FAILED,
         error="The audio file is damaged beyond the first 3 minutes")
    page = user.get("/sessions").text
    assert page.count('data-testid="session-row"') == 4
    assert "J.D. 2024-017" in page
    assert "1 to review" in page and "Documented" in page and "Not documented" in page
    assert 'value="42"' in page and "42 %" in page
    assert "Device locked: log in to the web page" in page
    assert "damaged beyond the first 3 minutes" in page
    # Newest first.
    ids = re.findall(r'data-session-id="(\d+)"', page)
    assert ids == ["1", "2", "3", "4"]


def test_the_list_filters_by_state_and_date(user, svc, clock):
    for day in range(5):
        state = State.SIGNED if day % 2 else State.DRAFT
        seed(svc, clock, started=START - timedelta(days=day), state=state)
    signed = user.get("/sessions?state=signed").text
    assert signed.count('data-testid="session-row"') == 2
    waiting = user.get("/sessions?state=waiting").text
    assert 'data-testid="sessions-empty"' in waiting
    one_day = (START - timedelta(days=2)).astimezone().date().isoformat()
    dated = user.get(f"/sessions?from={one_day}&to={one_day}").text
    assert dated.count('data-testid="session-row"') == 1
    garbage = user.get("/sessions?state=bogus&from=yesterday&page=-4")
    assert garbage.status_code == 200 and garbage.text.count('data-testid="session-row"') == 5


def test_the_list_is_paginated(user, svc, clock):
    for n in range(53):
        seed(svc, clock, started=START - timedelta(hours=n))
    first = user.get("/sessions").text
    assert first.count('data-testid="session-row"') == 50 and "Page 1 of 2" in first
    second = user.get("/sessions?page=2").text
    assert second.count('data-testid="session-row"') == 3


# --- session page -------------------------------------------------------------------------


def test_the_session_page_shows_transcript_flags_silences_bookmarks_metrics(user, svc, clock):
    session_id = _transcribed(svc, clock)
    response = user.get(f"/sessions/{session_id}")
    page = response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert 'data-testid="draft-banner"' in page
    # Risk flags at the top, linking to the moment, whose anchor exists.
    assert page.index('data-testid="risk-flags"') < page.index('data-testid="transcript"')
    assert 'href="#t-40"' in page and 'id="t-40"' in page
    # Speakers get their colour class; timestamps read as m:ss.
    assert re.search(r'class="seg spk-clinician"[^>]*id="t-3"', page)
    assert re.search(r'class="seg spk-client flagged"[^>]*id="t-40"', page)
    assert ">0:08<" in page
    # Silence and bookmark sit in the timeline in time order.
    assert page.index("Evenings are still") < page.index("Silence, 26 s") < page.index(
        "Bookmark at 0:41") < page.index("better off without me.</p>")
    assert 'data-testid="metrics"' in page and "Words/min" in page
    assert 'data-testid="note-section-subjective"' in page
    assert actions(svc)[-1] == "session.view"


def test_a_session_waiting_for_the_night_says_so(user, svc, clock):
    session_id = seed(svc, clock, started=START, state=State.RECORDED,
                      waiting_reason="Device locked: log in before the night run")
    page = user.get(f"/sessions/{session_id}").text
    assert "waits for tonight's transcription" in page
    assert "Device locked: log in before the night run" in page
    assert 'data-testid="no-transcript"' in page


def test_odd_or_partial_results_still_render(user, svc, clock):
    odd = {"version": 1, "segments": [{"text": "no times here"}, "not a dict",
                                      {"start": "x", "speaker": None, "text": "bad start"}],
           "flags": [{"category": "abuse"}], "metrics": None,
           "note": {"sections": [{"key": "plan"}]}}
    session_id = seed(svc, clock, started=START, res=odd)
    page = user.get(f"/sessions/{session_id}")
    assert page.status_code == 200
    assert "no times here" in page.text and "bad start" in page.text


def test_times_and_lengths_read_the_same_everywhere(user, svc, clock):
    # A 104.6 s session with a bookmark at 18.7 s: every page cuts to the whole second.
    res = result(LINES[:1], bookmarks=[{"offset": 18.7, "segment_index": None, "text": ""}])
    note = build_draft_note("SOAP", session_date=START, duration_s=104.6, metrics=res.metrics,
                            silences=res.silences, flags=res.flags, bookmarks=[18.7],
                            speakers=["Clinician"])
    stored = {**res.to_json(), "duration_s": 104.6, "note": note}
    session_id = seed(svc, clock, started=START, res=stored, duration_s=104.6)
    page = user.get(f"/sessions/{session_id}").text
    assert "Bookmark at 0:18" in page and "  - 0:18" in page, "transcript and note agree"
    assert "0:19" not in page
    assert "Recorded duration: 1:44." in page and "1 min 44 s" in page
    assert re.search(r'data-label="Length">1 min 44 s<', user.get("/sessions").text)
    export = user.get(f"/sessions/{session_id}/export.txt?transcript=1").text
    assert "(1 min 44 s)" in export and "0:18 (bookmark)" in export


def test_a_fresh_draft_says_holdnote_drafted_it_until_someone_saves(user, svc, clock):
    session_id = _transcribed(svc, clock)
    page = user.get(f"/sessions/{session_id}").text
    assert "Drafted by Holdnote from the recording on" in page
    assert "by holdnote" not in page
    _save(user, session_id, subjective="Sleeps better.")
    saved = user.get(f"/sessions/{session_id}").text
    assert f"by {USER}." in saved and "Drafted by Holdnote" not in saved


def test_a_logged_out_visit_returns_to_the_same_address_without_a_stray_question_mark(
        browser, recovery):
    plain = browser.get("/device").headers["Location"]
    assert plain.endswith("/login?next=/device"), plain
    query = browser.get("/sessions?state=signed").headers["Location"]
    assert query.endswith("/login?next=/sessions?state%3Dsigned"), query


# --- note ---------------------------------------------------------------------------------------


def test_saving_the_draft_stores_it_encrypted(user, svc, clock):
    session_id = _transcribed(svc, clock)
    response = _save(user, session_id, subjective="Client reports better sleep.",
                     plan="Continue weekly.")
    assert response.status_code == 302
    note = _note(svc, session_id)
    texts = {s["key"]: s["text"] for s in note["sections"]}
    assert texts["subjective"] == "Client reports better sleep."
    assert texts["objective"] == "Session length 50 min.", "untouched sections are kept"
    assert svc.storage.load_note(session_id)["updated_by"] == USER
    assert b"better sleep" not in (svc.storage.data_dir / "holdnote.db").read_bytes()
    assert actions(svc)[-1] == "note.edit"


def test_a_stale_edit_is_refused_and_the_typed_text_is_kept(user, svc, clock):
    session_id = _transcribed(svc, clock)
    page = user.get(f"/sessions/{session_id}").text
    _save(user, session_id, subjective="Saved in another tab.")
    response = user.submit(f"/sessions/{session_id}/note", {
        "version": _version(page), "action": "save", "section-subjective": "My long text"})
    assert response.status_code == 409
    assert "changed in another window" in response.text
    assert "My long text" in response.text
    assert {s["key"]: s["text"] for s in _note(svc, session_id)["sections"]}[
        "subjective"] == "Saved in another tab."


def test_signing_needs_the_review_box(user, svc, clock):
    session_id = _transcribed(svc, clock)
    response = _save(user, session_id, action="sign", subjective="Reviewed text")
    assert response.status_code == 400 and "I have reviewed this note" in response.text
    assert svc.storage.load_note(session_id)["signed_at"] is None
    assert svc.storage.get_session(session_id).state == State.DRAFT


def test_signing_makes_the_note_read_only_and_later_changes_addenda(user, svc, clock):
    session_id = _transcribed(svc, clock)
    response = _save(user, session_id, action="sign", reviewed=True, **WRITTEN)
    assert response.status_code == 302
    row = svc.storage.load_note(session_id)
    assert row["signed_by"] == USER and row["signed_at"] == clock().isoformat()
    assert svc.storage.get_session(session_id).state == State.SIGNED
    assert _note(svc, session_id)["status"] == "signed"
    page = user.get(f"/sessions/{session_id}").text
    assert 'data-testid="signed-banner"' in page and 'data-testid="note-form"' not in page
    assert "Low acute risk; safety plan reviewed." in page
    # An edit after signing is refused with a clear message and changes nothing.
    late = user.submit(f"/sessions/{session_id}/note", {
        "version": "", "action": "save", "section-assessment": "Rewritten later"},
        page=f"/sessions/{session_id}")
    assert late.status_code == 409 and "signed and can no longer be changed" in late.text
    assert "Rewritten later" not in json.dumps(_note(svc, session_id))
    # A dated addendum works.
    clock.advance(minutes=5)
    added = user.submit(f"/sessions/{session_id}/addendum",
                        {"text": "Client called; feeling safer."}, page=f"/sessions/{session_id}")
    assert added.status_code == 302
    page = user.get(f"/sessions/{session_id}").text
    assert "Client called; feeling safer." in page and 'data-testid="addendum"' in page
    assert {"note.sign", "note.addendum"} <= set(actions(svc))


def test_a_blank_note_cannot_be_signed_and_the_page_names_the_empty_sections(user, svc, clock):
    session_id = _transcribed(svc, clock)
    response = _save(user, session_id, action="sign", reviewed=True, subjective="Slept better.",
                     assessment="  \n ", plan="")
    assert response.status_code == 400
    error = re.search(r'data-testid="page-error">([^<]*)<', response.text).group(1)
    assert "cannot be signed yet: Assessment and Plan are empty" in error
    assert "Subjective" not in error and "Objective" not in error, "filled sections are not named"
    assert "Slept better." in response.text, "what was typed stays on the page"
    assert svc.storage.load_note(session_id)["signed_at"] is None
    assert svc.storage.get_session(session_id).state == State.DRAFT
    assert "note.sign" not in actions(svc)


@pytest.mark.parametrize("variant", [
    lambda prompt: prompt,
    lambda prompt: "  \n" + "\n   ".join(prompt.split()) + "\t\n",
    lambda prompt: prompt.strip("[]"),
])
def test_a_section_holding_only_its_prompt_cannot_be_signed(user, svc, clock, variant):
    session_id, note = _drafted(svc, clock)
    prompt = next(s["prompt"] for s in note["sections"] if s["key"] == "plan")
    response = _save(user, session_id, action="sign", reviewed=True,
                     **{**WRITTEN, "plan": variant(prompt)})
    assert response.status_code == 400
    assert "Plan is empty or still holds only its template prompt" in response.text
    assert svc.storage.load_note(session_id)["signed_at"] is None


def test_a_written_note_signs_with_the_drafted_facts_as_objective(user, svc, clock):
    session_id, _ = _drafted(svc, clock)
    # The Objective facts were drafted from the recording; the clinician wrote the rest.
    response = _save(user, session_id, action="sign", reviewed=True, **WRITTEN)
    assert response.status_code == 302
    assert svc.storage.get_session(session_id).state == State.SIGNED
    signed = {s["key"]: s["text"] for s in _note(svc, session_id)["sections"]}
    assert signed["objective"].startswith("Recorded duration:")
    assert signed["plan"] == WRITTEN["plan"]


def test_an_addendum_before_signing_is_refused(user, svc, clock):
    session_id = _transcribed(svc, clock)
    response = user.submit(f"/sessions/{session_id}/addendum", {"text": "too early"},
                           page=f"/sessions/{session_id}")
    assert response.status_code == 409 and "for signed notes" in response.text


def test_client_label_and_consent_are_saved_encrypted(user, svc, clock):
    session_id = seed(svc, clock, started=START, state=State.RECORDED)
    response = user.submit(f"/sessions/{session_id}/details",
                           {"label": "  M.K.   2024-031 ", "consent": "yes"},
                           page=f"/sessions/{session_id}")
    assert response.status_code == 302
    session = svc.storage.get_session(session_id)
    assert session.consent
    assert age.decrypt(session.label_enc, [svc.keys.identity()]) == b"M.K. 2024-031"
    for path in svc.storage.data_dir.rglob("*"):
        if path.is_file():
            assert b"M.K. 2024-031" not in path.read_bytes(), path
    too_long = user.submit(f"/sessions/{session_id}/details", {"label": "x" * 121},
                           page=f"/sessions/{session_id}")
    assert too_long.status_code == 400
    assert "session.edit_details" in actions(svc)


# --- export -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt,mime,heading", [("txt", "text/plain", "SUBJECTIVE"),
                                              ("md", "text/markdown", "## Subjective")])
def test_export_downloads_the_note(user, svc, clock, fmt, mime, heading):
    session_id = _transcribed(svc, clock)
    _save(user, session_id, subjective="Sleep improved.")
    response = user.get(f"/sessions/{session_id}/export.{fmt}")
    assert response.status_code == 200 and response.mimetype == mime
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and f'session-{session_id}-' in disposition
    assert "J.D." not in disposition, "no client label in file names"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.text
    assert heading.lower() in body.lower() and "Sleep improved." in body
    assert "J.D. 2024-017" in body.replace("\\", "")
    assert "DRAFT" in body
    assert "Evenings are still" not in body, "the transcript only when asked for"
    full = user.get(f"/sessions/{session_id}/export.{fmt}?transcript=1").text
    assert "Evenings are still the hardest part." in full
    entry = svc.audit.entries(limit=1)[0]
    assert (entry.action, entry.session_id, entry.detail) == ("session.export", session_id, fmt)


def test_export_page_offers_copy_and_download(user, svc, clock):
    session_id = _transcribed(svc, clock)
    page = user.get(f"/sessions/{session_id}/export").text
    assert 'data-testid="copy-txt"' in page and 'data-testid="download-md"' in page
    assert "Client: J.D. 2024-017" in page and "- **Client:** J.D. 2024-017" in page


def test_exports_never_print_a_template_prompt(user, svc, clock):
    session_id, note = _drafted(svc, clock)
    _save(user, session_id, subjective="Sleep improved; evenings hard.")
    bodies = {fmt: user.get(f"/sessions/{session_id}/export.{fmt}").text for fmt in ("txt", "md")}
    bodies["page"] = user.get(f"/sessions/{session_id}/export").text
    for where, body in bodies.items():
        flat = " ".join(body.replace("\\", "").replace("&#39;", "'").split())
        for prompt in _prompts(note):
            assert prompt.strip("[]") not in flat, (where, prompt)
        assert "Sleep improved; evenings hard." in flat, where
        assert "Recorded duration:" in flat, f"{where}: the drafted facts are exported"
        panes = 2 if where == "page" else 1  # the page shows the text and the Markdown
        assert flat.count("Not completed.") == 2 * panes, f"{where}: Assessment and Plan unwritten"
    assert "Not completed yet: Assessment, Plan." in bodies["page"]


def test_a_signed_export_names_the_signer(user, svc, clock):
    session_id = _transcribed(svc, clock)
    _save(user, session_id, action="sign", reviewed=True, **WRITTEN)
    body = user.get(f"/sessions/{session_id}/export.txt").text
    assert f"Signed by {USER}" in body and "DRAFT" not in body


def test_a_session_without_a_note_has_nothing_to_export(user, svc, clock):
    session_id = seed(svc, clock, started=START, state=State.RECORDED)
    assert user.get(f"/sessions/{session_id}/export.txt").status_code == 404


# --- delete --------------------------------------------------------------------------------------------


def test_delete_needs_the_date_then_removes_everything(user, svc, clock):
    # Partly damaged, so signing keeps its audio (the default deletes it on signing).
    session_id = _transcribed(svc, clock, unreadable_s=1.0)
    _save(user, session_id, action="sign", reviewed=True, **WRITTEN)
    user.submit(f"/sessions/{session_id}/addendum", {"text": "later"},
                page=f"/sessions/{session_id}")
    audio = svc.storage.get_session(session_id).audio_path
    assert audio.exists()
    date = START.astimezone().date().isoformat()
    wrong = user.submit(f"/sessions/{session_id}/delete", {"confirm_date": "2024-01-01"},
                        page=f"/sessions/{session_id}/delete")
    assert wrong.status_code == 400 and date in wrong.text
    assert audio.exists() and svc.storage.load_transcript(session_id) is not None
    done = user.submit(f"/sessions/{session_id}/delete", {"confirm_date": date},
                       page=f"/sessions/{session_id}/delete")
    assert done.status_code == 302
    assert not audio.exists()
    with svc.storage.connect() as conn:
        for table, column in [("sessions", "id"), ("transcripts", "session_id"),
                              ("notes", "session_id"), ("addenda", "session_id")]:
            count = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?",
                                 (session_id,)).fetchone()[0]
            assert count == 0, table
    assert user.get(f"/sessions/{session_id}").status_code == 404
    assert actions(svc)[-1] == "session.delete"


def test_a_session_still_recording_cannot_be_deleted(user, svc, clock):
    session_id = seed(svc, clock, started=START, state=State.RECORDING)
    date = START.astimezone().date().isoformat()
    response = user.submit(f"/sessions/{session_id}/delete", {"confirm_date": date},
                           page=f"/sessions/{session_id}/delete")
    assert response.status_code == 409 and "still recording" in response.text
    assert svc.storage.get_session(session_id).audio_path.exists()


def test_an_enrolled_voice_name_is_shown_as_the_clinician(user, svc, clock):
    # The job labels a clinician enrolled with `enroll-voice --name "Dr Lee"` by that name.
    lines = [(3.0, "Dr Lee", "How has the week been?"), (8.5, "Client", "Evenings are hard.")]
    session_id = seed(svc, clock, started=START, res=result(lines))
    page = user.get(f"/sessions/{session_id}").text
    assert not re.search(r'class="seg spk-clinician"[^>]*id="t-3"', page)  # not enrolled yet
    with svc.storage.connect() as conn:
        conn.execute("INSERT INTO voice_profiles(name, profile_enc, created_at) VALUES(?, ?, ?)",
                     ("Dr Lee", b"age-encryption.org/v1 sealed", "2026-12-01T00:00:00Z"))
    other = seed(svc, clock, started=START, res=result(lines))
    page = user.get(f"/sessions/{other}").text
    assert re.search(r'class="seg spk-clinician"[^>]*id="t-3"', page)
