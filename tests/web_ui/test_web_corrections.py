"""Corrections on the web page (web_ui/views/corrections.py): lines, speakers, flags, history."""

from __future__ import annotations

import re

import pytest

from appliance import age
from appliance.transcript import TranscriptResult
from tests.support.web_support import (  # noqa: F401 - fixtures
    START,
    Browser,
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

MISHEARD = "I wake up around free in the morning, most days."
FIXED = "I wake up around three in the morning, most days."
LINES = [(2.0, "Speaker 1", "How have the mornings been?"),
         (8.0, "Speaker 2", MISHEARD),
         (14.0, "Speaker 1", "That sounds exhausting."),
         (20.0, "Speaker 2", "Sometimes I want to kill myself.")]
RISK = [{"category": "suicidal thoughts", "start": 20.0, "end": 24.0, "speaker": "Speaker 2",
         "quote": "Sometimes I want to kill myself.", "negated": False, "term": "kill myself"}]


@pytest.fixture
def sid(user, svc, clock) -> int:
    """dr.rivera's transcribed session, with one risk flag."""
    return seed(svc, clock, started=START, res=result(LINES, flags=RISK), label="R.T. 2024-001")


def _tv(page: str) -> str:
    return re.search(r'name="transcript_version" value="(\d+)"', page).group(1)


def _edit(user: Browser, sid: int, index: int, text: str, **more):
    path = f"/sessions/{sid}/transcript/lines/{index}"
    version = more.pop("transcript_version", None) or _tv(user.get(path).text)
    return user.submit(path, {"transcript_version": version, "text": text, "action": "save",
                              **more}, page=path)


def _speakers(user: Browser, sid: int, **form):
    version = _tv(user.get(f"/sessions/{sid}").text)
    return user.submit(f"/sessions/{sid}/transcript/speakers",
                       {"transcript_version": version, **form}, page=f"/sessions/{sid}")


def _stored(svc, sid: int) -> TranscriptResult:
    return TranscriptResult.from_bytes(age.decrypt(svc.storage.load_transcript(sid),
                                                   [svc.keys.identity()]))


def _hits(user: Browser, query: str) -> list[str]:
    return re.findall(r'data-testid="search-hit" data-session-id="(\d+)"',
                      user.get("/search", query_string={"q": query}).text)


def test_a_corrected_line_reaches_the_page_search_export_and_keeps_the_original(user, svc, sid):
    assert _hits(user, "free") == [str(sid)]
    page = user.get(f"/sessions/{sid}").text
    assert 'data-start="8.0" data-index="1"' in page
    assert f'href="/sessions/{sid}/transcript/lines/1"' in page, "each line links to its correction"
    saved = _edit(user, sid, 1, FIXED)
    assert saved.status_code == 302 and saved.location.endswith(f"/sessions/{sid}#t-8")
    page = user.get(f"/sessions/{sid}").text
    assert FIXED in page and MISHEARD not in page
    assert _hits(user, "three") == [str(sid)] and _hits(user, "free") == []
    export = user.get(f"/sessions/{sid}/export.txt?transcript=1").text
    assert FIXED in export and MISHEARD not in export
    history = user.get(f"/sessions/{sid}/transcript/history").text
    assert history.count('data-testid="version-row"') == 2 and "Line 2 text" in history
    assert "dr.rivera" in history and FIXED not in history and MISHEARD not in history
    original = user.get(f"/sessions/{sid}/transcript/history/0").text
    assert MISHEARD in original and "Correct</a>" not in original
    entries = [e for e in svc.audit.entries(newest_first=False) if e.action == "transcript.edit"]
    assert [(e.session_id, e.detail) for e in entries] == [(sid, "line 2 text; version 1")]
    assert "transcript.history" in actions(svc)


def test_a_line_break_splits_and_merge_joins(user, svc, sid):
    assert _edit(user, sid, 1, "I wake up around three\nin the morning, most days.").status_code == 302
    assert [s.text for s in _stored(svc, sid).segments][1:3] == [
        "I wake up around three", "in the morning, most days."]
    path = f"/sessions/{sid}/transcript/lines/1"
    merged = user.submit(path, {"transcript_version": _tv(user.get(path).text), "action": "merge",
                                "text": "ignored"}, page=path)
    assert merged.status_code == 302
    assert _stored(svc, sid).segments[1].text == FIXED
    assert len(_stored(svc, sid).segments) == len(LINES)
    done = [a for a in actions(svc) if a.startswith("transcript.") and a != "transcript.line_view"]
    assert done == ["transcript.split", "transcript.merge"]


def test_rename_and_swap_speakers_change_every_line_and_the_metrics(user, svc, sid):
    assert 'data-testid="corrected-transcript"' not in user.get(f"/sessions/{sid}").text
    assert _speakers(user, sid, action="rename", speaker="Speaker 1",
                     new_name="Dr Rivera").status_code == 302
    assert _stored(svc, sid).speakers == ("Dr Rivera", "Speaker 2")
    assert set(_stored(svc, sid).metrics.talk_time_s) == {"Dr Rivera", "Speaker 2"}
    assert _speakers(user, sid, action="swap", first="Dr Rivera",
                     second="Speaker 2").status_code == 302
    assert [s.speaker for s in _stored(svc, sid).segments] == [
        "Speaker 2", "Dr Rivera", "Speaker 2", "Dr Rivera"]
    details = {e.action: e.detail for e in svc.audit.entries() if e.action.startswith("transcript.")}
    assert details["transcript.rename"] == "speaker 1 renamed; version 1"
    assert details["transcript.swap"] == "speakers 1 and 2 swapped; version 2"
    assert "Rivera" not in str(details), "audit entries hold no names"
    # The note drafted before these changes may quote the old speakers: the page says so.
    assert "The transcript was corrected (2 changes)" in user.get(f"/sessions/{sid}").text


@pytest.mark.parametrize("form, message", [
    ({"text": "   "}, "cannot be empty"),
    ({"text": "x" * 5001}, "at most 5000"),
])
def test_a_bad_line_gets_one_clear_answer_and_keeps_what_was_typed(user, svc, sid, form, message):
    refused = _edit(user, sid, 1, **form)
    assert refused.status_code == 400 and message in refused.text
    assert _stored(svc, sid).segments[1].text == MISHEARD


def test_bad_speaker_changes_and_lines_out_of_range_are_refused(user, svc, sid):
    empty = _speakers(user, sid, action="rename", speaker="Speaker 1", new_name="  ")
    assert empty.status_code == 400 and "cannot be empty" in empty.text
    onto = _speakers(user, sid, action="rename", speaker="Speaker 1", new_name="Speaker 2")
    assert onto.status_code == 400 and "already speaks in this session" in onto.text
    assert 'value="Speaker 2"' in onto.text, "the typed name is shown back"
    assert user.get(f"/sessions/{sid}/transcript/lines/9").status_code == 404
    assert _stored(svc, sid).speakers == ("Speaker 1", "Speaker 2")


def test_a_correction_that_lost_a_race_is_refused_and_shown_back(user, svc, sid):
    path = f"/sessions/{sid}/transcript/lines/1"
    stale = _tv(user.get(path).text)
    assert _edit(user, sid, 1, FIXED).status_code == 302  # another tab saves first
    lost = _edit(user, sid, 1, "My own different wording.", transcript_version=stale)
    assert lost.status_code == 409 and "another tab" in lost.text
    assert "My own different wording." in lost.text and 'data-testid="reload-line"' in lost.text
    assert _stored(svc, sid).segments[1].text == FIXED
    assert len(svc.storage.transcript_versions(sid)) == 2


def test_a_removed_flag_must_be_confirmed_before_signing(user, svc, sid):
    assert 'data-testid="flag-count"' in user.get("/sessions").text
    assert _edit(user, sid, 3, "Sometimes I want to fill my shelf.").status_code == 302
    page = user.get(f"/sessions/{sid}").text
    assert 'data-testid="flag-removed"' in page and 'data-testid="flags-unconfirmed"' in page
    note_version = re.search(r'name="version" value="([^"]+)"', page).group(1)
    sign = {"version": note_version, "action": "sign", "reviewed": "yes",
            "section-subjective": "Reported.", "section-assessment": "Reviewed.",
            "section-plan": "Planned."}
    refused = user.submit(f"/sessions/{sid}/note", sign, page=f"/sessions/{sid}")
    assert refused.status_code == 409 and "waiting for your confirmation" in refused.text
    assert svc.storage.record_facts(sid).signed_at is None
    index = re.search(r'/transcript/flags/(\d+)/confirm', page).group(1)
    confirmed = user.submit(f"/sessions/{sid}/transcript/flags/{index}/confirm",
                            {"transcript_version": _tv(page)}, page=f"/sessions/{sid}")
    assert confirmed.status_code == 302
    assert _stored(svc, sid).flags == () and "transcript.flag_removal_confirmed" in actions(svc)
    assert 'data-testid="flag-count"' not in user.get("/sessions").text, "the list follows"
    signed = user.submit(f"/sessions/{sid}/note", sign, page=f"/sessions/{sid}")
    assert signed.status_code == 302, signed.text


def test_a_signed_transcript_is_read_only(user, svc, sid):
    page = user.get(f"/sessions/{sid}").text
    version = re.search(r'name="version" value="([^"]+)"', page).group(1)
    assert user.submit(f"/sessions/{sid}/note", {
        "version": version, "action": "sign", "reviewed": "yes",
        "section-subjective": "Reported.", "section-assessment": "Reviewed.",
        "section-plan": "Planned."}, page=f"/sessions/{sid}").status_code == 302
    page = user.get(f"/sessions/{sid}").text
    assert "/transcript/lines/" not in page and 'data-testid="speakers"' not in page
    refused = user.submit(f"/sessions/{sid}/transcript/lines/1",
                          {"transcript_version": "0", "text": FIXED}, page=f"/sessions/{sid}")
    assert refused.status_code == 409 and "signed" in refused.text and "addendum" in refused.text
    assert _stored(svc, sid).segments[1].text == MISHEARD


def test_a_colleague_cannot_correct(app, user, svc, sid):
    chen = colleague(app, svc)
    svc.storage.share(sid, _user_id(svc, "dr.chen"), "dr.rivera")
    page = chen.get(f"/sessions/{sid}").text
    assert "/transcript/lines/" not in page
    refused = chen.submit(f"/sessions/{sid}/transcript/lines/1",
                          {"transcript_version": "0", "text": FIXED}, page=f"/sessions/{sid}")
    assert refused.status_code == 403
    assert _stored(svc, sid).segments[1].text == MISHEARD


def _user_id(svc, name: str) -> int:
    return next(u.id for u in svc.keys.users() if u.username == name)


def test_deleting_the_transcript_removes_every_version(user, svc, sid):
    assert _edit(user, sid, 1, FIXED).status_code == 302
    assert len(svc.storage.transcript_versions(sid)) == 2
    assert svc.storage.delete_transcript(sid)
    assert svc.storage.transcript_versions(sid) == []
    assert svc.storage.transcript_version(sid, 0) is None
