"""The typed transcript result: round trip, versions, and results already stored on devices.

``tests/data/transcript_v1.json`` is a version-1 result exactly as the release
before the typed result wrote it: made by that release's ``Pipeline.finish``
from the :func:`_progress` below. ``transcript_v1.timeline.html`` is the
session page's timeline that release rendered from it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from pathlib import Path

import pytest

from appliance import age
from appliance.errors import TranscriptFormatError
from appliance.transcript import (
    CURRENT_VERSION,
    Bookmark,
    Gap,
    Metrics,
    RiskFlag,
    Segment,
    Silence,
    TranscriptResult,
    migrate,
)
from appliance.transcription.pipeline import Pipeline, Progress, Settings
from tests.conftest import make_config
from tests.support.web_support import START, app, browser, clock, recovery, seed, svc, user  # noqa: F401 - fixtures
from web_ui.views import transcript as view

DATA = Path(__file__).parent / "data"
CLINICIAN = "Dr. Rivera"


def _v1() -> dict:
    return json.loads((DATA / "transcript_v1.json").read_text(encoding="utf-8"))


class _Named:
    """What :meth:`Pipeline.finish` asks of a recognizer: its name."""

    name = "tiny.en"


def _progress() -> Progress:
    """Four lines in two stereo turns, after a power loss (the fixture's input)."""
    lines = [(3.0, "How has the week been since we last met?"),
             (8.0, "Sometimes I think everyone would be better off without me."),
             (40.0, "Thank you for telling me that. Are you safe at home?"),
             (47.0, "No, not really.")]
    pieces = []
    for start, text in lines:
        words = [[round(start + 0.5 * i, 2), round(start + 0.5 * i + 0.4, 2), " " + w, 0.9]
                 for i, w in enumerate(text.split())]
        pieces.append([words[0][0], words[-1][1], words])
    turns = [[0.0, 7.5, "Clinician"], [7.5, 39.0, "Client"], [39.0, 46.5, "Clinician"],
             [46.5, 60.0, "Client"]]
    return Progress(offset=60 * 16000, mode="stereo", pieces=pieces, turns=turns,
                    warnings=["Recording interrupted: power loss; about 1:00 can be recovered"],
                    salvaged=True, language="en")


def _result() -> TranscriptResult:
    settings = Settings(silence_threshold_s=10.0, template="SOAP", clinician_name=CLINICIAN)
    return Pipeline(_Named(), settings).finish(  # type: ignore[arg-type]
        _progress(), bookmarks=[10.5, 0.2], session_date=dt.date(2026, 11, 30))


# --- the current version ---------------------------------------------------------------------


def test_the_pipeline_builds_a_typed_result():
    result = _result()
    assert result.version == CURRENT_VERSION == 4
    assert result.segments[1] == Segment(
        8.0, 12.9, "Client", "Sometimes I think everyone would be better off without me.")
    assert result.speakers == (CLINICIAN, "Client")
    assert result.silences == (Silence(12.9, 40.0), Silence(48.4, 60.0))
    assert isinstance(result.metrics, Metrics) and result.metrics.turns == 4
    assert [(f.category, f.start) for f in result.flags] == [("passive wish", 8.0),
                                                             ("abuse", 47.0)]
    assert isinstance(result.flags[0], RiskFlag)
    assert result.bookmarks[1] == Bookmark(10.5, 1, "Client", result.segments[1].text,
                                           result.segments[1].text)
    assert result.note["template"] == "SOAP" and result.salvaged


def test_round_trip_gives_the_same_result():
    result = _result()
    assert TranscriptResult.from_json(result.to_json()) == result
    assert TranscriptResult.from_bytes(result.to_bytes()) == result
    assert TranscriptResult.from_json(json.loads(json.dumps(result.to_json()))) == result


def test_the_json_keeps_the_layout_of_version_1():
    # ``transcribe-file --json`` and the stored bytes: the same keys, order and
    # values as the release before, only the version number moved on and the
    # keys of later versions follow.
    # The drafted note's wording follows today's rules (one time rule and finer
    # risk categories since issue 11), so the note and the flags' categories are
    # compared on their own; everything else byte for byte.
    now = _result().to_json()
    expected = {**_v1(), "version": CURRENT_VERSION, "gaps": [], "note": now["note"],
                "flags": _recategorised(_reviewed(_v1()["flags"]), now["flags"])}
    assert json.dumps(now) == json.dumps(expected)
    assert _result().to_bytes() == json.dumps(expected).encode()
    assert _note_without_times(now["note"]) == _note_without_times(_v1()["note"])


def test_the_result_and_its_parts_are_frozen():
    result = _result()
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.model = "large"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.segments[0].text = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.version = 1  # type: ignore[misc]
    assert isinstance(result.segments, tuple) and isinstance(result.flags, tuple)


# --- results stored on devices (version 1) -------------------------------------------------


def test_a_version_1_result_migrates_to_the_same_content():
    old = _v1()
    migrated = TranscriptResult.from_json(old)
    # The stored draft is carried as written; today's pipeline words its
    # lengths by the one time rule, so only the note differs.
    assert migrated.note == old["note"]
    assert [f.category for f in migrated.flags] == [f["category"] for f in old["flags"]]
    fresh = _result()
    assert dataclasses.replace(migrated, note=fresh.note, flags=tuple(
        dataclasses.replace(f, category=g.category) for f, g in zip(migrated.flags, fresh.flags,
                                                                     strict=True))) == fresh
    assert migrate(old) == {**old, "version": CURRENT_VERSION, "gaps": [],
                            "flags": _reviewed(old["flags"])}
    assert TranscriptResult.from_json({k: v for k, v in old.items() if k != "version"}) == \
        migrated, "a result without a version is version 1"


def _reviewed(flags: list[dict]) -> list[dict]:
    """Flags as version 4 writes them: none removed by a correction."""
    return [{**flag, "review": ""} for flag in flags]


def _recategorised(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` flags with ``new``'s categories, checked to be the only change.

    "suicide" became finer categories ("passive wish", "suicidal thoughts", …).
    """
    assert [{**f, "category": ""} for f in old] == [{**f, "category": ""} for f in new]
    return [{**f, "category": g["category"]} for f, g in zip(old, new, strict=True)]


def _note_without_times(note: dict) -> str:
    """A note's text with its times, lengths and flag categories blanked (what changed)."""
    text = re.sub(r"\d+:\d\d|\d+ s\b", "T", json.dumps(note))
    return re.sub(r"(Client|Dr\. Rivera) \([a-z ,-]+\):", r"\1 (C):", text)


def test_a_version_1_result_renders_the_same_session_timeline():
    rendered = view.timeline_html(view.build(TranscriptResult.from_json(_v1()), CLINICIAN))
    assert str(rendered) + "\n" == (DATA / "transcript_v1.timeline.html").read_text("utf-8")


def test_odd_version_1_values_become_gaps_not_errors():
    odd = {"version": 1, "segments": [{"text": "no times here"}, "not a dict",
                                      {"start": "x", "speaker": None, "text": "bad start"}],
           "flags": [{"category": "abuse"}], "metrics": None, "note": {"sections": []}}
    result = TranscriptResult.from_json(odd)
    assert result.segments == (Segment(0.0, 0.0, "", "no times here"),
                               Segment(0.0, 0.0, "", "bad start"))
    assert result.flags[0].category == "abuse" and result.metrics is None
    assert result.duration_s == 0.0 and result.warnings == () and result.model == ""


# --- results stored by version 2, and unreadable stretches (version 3) ----------------------


def test_a_version_2_result_reads_with_no_gaps():
    v2 = {k: v for k, v in _result().to_json().items() if k != "gaps"} | {"version": 2}
    assert TranscriptResult.from_json(v2) == _result()
    assert TranscriptResult.from_json(v2).gaps == () and _result().unreadable_s == 0


def test_a_version_3_result_reads_with_every_flag_standing():
    v3 = _result().to_json() | {"version": 3}
    v3["flags"] = [{k: v for k, v in flag.items() if k != "review"} for flag in v3["flags"]]
    assert v3["flags"], "the fixture has risk flags"
    read = TranscriptResult.from_json(v3)
    assert read == _result() and not any(flag.removed for flag in read.flags)


def test_a_flag_removed_by_a_correction_round_trips():
    result = _result()
    removed = dataclasses.replace(result, flags=(
        dataclasses.replace(result.flags[0], review="removed"), *result.flags[1:]))
    again = TranscriptResult.from_bytes(removed.to_bytes())
    assert again == removed and again.flags[0].removed and not again.flags[1:][0].removed


def test_gaps_round_trip_and_add_up():
    result = dataclasses.replace(_result(), gaps=(Gap(41.0, 43.05), Gap(70.5, 72.5)))
    assert TranscriptResult.from_bytes(result.to_bytes()) == result
    assert result.to_json()["gaps"] == [{"start": 41.0, "end": 43.05}, {"start": 70.5, "end": 72.5}]
    assert result.unreadable_s == 4.05
    without = {k: v for k, v in result.to_json().items() if k != "gaps"}
    assert TranscriptResult.from_json(without).gaps == (), "absent gaps mean none"


def test_the_pipeline_claims_no_silence_across_a_gap_and_says_what_was_lost():
    progress = _progress()
    progress.gaps = [[20.0, 22.05]]
    settings = Settings(silence_threshold_s=10.0, template="SOAP", clinician_name=CLINICIAN)
    result = Pipeline(_Named(), settings).finish(progress)  # type: ignore[arg-type]
    assert result.gaps == (Gap(20.0, 22.05),) and result.unreadable_s == 2.05
    assert result.silences == (Silence(48.4, 60.0),)  # 12.9-40.0 holds unreadable audio
    assert any("2 s of the recording could not be read" in w and "0:20" in w
               for w in result.warnings)


def test_each_gap_is_shown_in_place_on_the_timeline():
    result = dataclasses.replace(_result(), gaps=(Gap(41.0, 43.05), Gap(59.7, 60.0)))
    lines = str(view.timeline_html(view.build(result, CLINICIAN))).splitlines()
    gap = next(i for i, line in enumerate(lines) if "2 s unreadable at 0:41" in line)
    assert "0:40" in lines[gap - 1] and "0:47" in lines[gap + 1]  # between the lines around it
    assert any("under 1 s unreadable at 0:59" in line for line in lines)


def test_the_session_page_and_list_mark_a_damaged_recording(user, svc, clock):
    result = dataclasses.replace(_result(), gaps=(Gap(41.0, 43.05),))
    damaged = seed(svc, clock, started=START, res=result, unreadable_s=2.05, label="D 1")
    whole = seed(svc, clock, started=START, res=_result(), label="W 2")
    page = user.get(f"/sessions/{damaged}").text
    assert "2 s unreadable at 0:41" in page
    assert 'data-testid="unreadable-mark"' in page and "Needs attention" in page
    assert 'data-testid="unreadable-mark"' not in user.get(f"/sessions/{whole}").text
    listing = user.get("/sessions").text
    rows = {int(m.group(1)): m.group(2) for m in re.finditer(
        r'data-session-id="(\d+)"(.*?)</tr>', listing, re.DOTALL)}
    assert 'data-testid="unreadable-mark"' in rows[damaged]
    assert 'data-testid="unreadable-mark"' not in rows[whole]


# --- refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version, message", [
    (5, r"version 5, written by a newer Holdnote; this one reads versions 1 to 4: update"),
    (99, r"version 99"),
    (0, r"whole number from 1, got 0"),
    ("2", r"whole number from 1, got '2'"),
    (True, r"whole number from 1, got True"),
])
def test_an_unknown_version_is_refused_with_a_clear_error(version, message):
    with pytest.raises(TranscriptFormatError, match=message):
        TranscriptResult.from_json({**_result().to_json(), "version": version})


def test_a_transcript_format_error_is_a_value_error():
    with pytest.raises(ValueError, match="newer Holdnote"):
        TranscriptResult.from_json({"version": 5})


def _broken(change) -> dict:
    data = _result().to_json()
    change(data)
    return data


@pytest.mark.parametrize("data, message", [
    ([1, 2], "must be a JSON object, got an array"),
    (_broken(lambda d: d["segments"][1].update(start="I want to die")),
     r"segments\[1\]\.start must be a number, got a string"),
    (_broken(lambda d: d.pop("metrics")), "has no metrics"),
    (_broken(lambda d: d["metrics"].update(turns=4.5)), r"metrics\.turns must be a whole number"),
    (_broken(lambda d: d["flags"][0].update(negated="no")),
     r"flags\[0\]\.negated must be true or false, got a string"),
    (_broken(lambda d: d["segments"].append("text")), r"segments\[4\] must be an object"),
    (_broken(lambda d: d["bookmarks"][0].pop("snippet")), r"no bookmarks\[0\]\.snippet"),
    (_broken(lambda d: d.update(warnings=[1])), "warnings must be an array of strings"),
    (_broken(lambda d: d.update(gaps=[{"start": 41.0}])), r"no gaps\[0\]\.end"),
])
def test_malformed_input_is_refused_naming_the_field(data, message):
    with pytest.raises(TranscriptFormatError, match=message) as caught:
        TranscriptResult.from_json(data)
    assert "die" not in str(caught.value), "client words never reach the message (or the log)"


def test_bytes_that_are_not_json_are_refused():
    with pytest.raises(TranscriptFormatError, match="not JSON"):
        TranscriptResult.from_bytes(b"\xff{not json")


# --- an upgraded device: rows written by the release before ---------------------------------


@pytest.fixture
def cfg(tmp_path):
    """The test configuration, with the clinician name the fixture's lines carry."""
    return make_config(tmp_path, speakers={"clinician_name": CLINICIAN})


def test_an_upgraded_device_shows_and_finds_its_stored_version_1_result(user, svc, clock):
    # Stored as the release before did: the v1 dict's JSON, age-encrypted, in result_enc.
    session_id = seed(svc, clock, started=START, res=_v1(), label="J.D. 2024-017")
    raw = svc.storage.load_transcript(session_id)
    assert json.loads(age.decrypt(raw, [svc.keys.identity()]))["version"] == 1
    page = user.get(f"/sessions/{session_id}").text
    page = re.sub(r'<a class="fix no-print" [^>]*>Correct</a>', "", page)  # the owner's links
    assert (DATA / "transcript_v1.timeline.html").read_text("utf-8").strip() in page
    assert "Recording interrupted: power loss" in page and "model tiny.en" in page
    hits = user.get("/search", query_string={"q": "everyone would be better"}).text
    assert f'href="/sessions/{session_id}#t-8"' in hits
    export = user.get(f"/sessions/{session_id}/export.txt?transcript=1").text
    assert "0:08 Client: Sometimes I think everyone would be better off without me." in export


def test_a_result_from_a_newer_release_is_explained_on_the_page(user, svc, clock):
    newer = {**_result().to_json(), "version": CURRENT_VERSION + 1}
    session_id = seed(svc, clock, started=START, res=newer, label="K.L. 2024-060")
    page = user.get(f"/sessions/{session_id}")
    assert page.status_code == 200
    assert "The transcript cannot be shown" in page.text and "update Holdnote" in page.text
    assert "better off without me" not in page.text.split('data-testid="transcript"')[-1]
    hits = user.get("/search", query_string={"q": "K.L."}).text
    assert f'data-session-id="{session_id}"' in hits, "the label stays searchable"
