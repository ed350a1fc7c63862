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
from pathlib import Path

import pytest

from appliance import age
from appliance.errors import TranscriptFormatError
from appliance.transcription.pipeline import Pipeline, Progress, Settings
from appliance.transcript import (
    CURRENT_VERSION, Bookmark, Metrics, RiskFlag, Segment, Silence, TranscriptResult, migrate)
from tests.conftest import make_config
from tests.support.web_support import (  # noqa: F401 - fixtures
    START, app, browser, clock, recovery, seed, svc, user)
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
    assert result.version == CURRENT_VERSION == 2
    assert result.segments[1] == Segment(
        8.0, 12.9, "Client", "Sometimes I think everyone would be better off without me.")
    assert result.speakers == (CLINICIAN, "Client")
    assert result.silences == (Silence(12.9, 40.0), Silence(48.4, 60.0))
    assert isinstance(result.metrics, Metrics) and result.metrics.turns == 4
    assert [(f.category, f.start) for f in result.flags] == [("suicide", 8.0), ("abuse", 47.0)]
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
    # values as the release before, only the version number moved on.
    expected = {**_v1(), "version": CURRENT_VERSION}
    assert json.dumps(_result().to_json()) == json.dumps(expected)
    assert _result().to_bytes() == json.dumps(expected).encode()


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
    assert migrated == _result()
    assert migrate(old) == {**old, "version": CURRENT_VERSION}
    assert TranscriptResult.from_json({k: v for k, v in old.items() if k != "version"}) == \
        migrated, "a result without a version is version 1"


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


# --- refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version, message", [
    (3, r"version 3, written by a newer Holdnote; this one reads versions 1 to 2: update"),
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
        TranscriptResult.from_json({"version": 3})


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
