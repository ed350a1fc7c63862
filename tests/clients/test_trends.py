"""Talk trends of a client's sessions (appliance/clients/trends.py, lines.py) on the shared series."""

from __future__ import annotations

import dataclasses
import random

import pytest

from appliance.clients import lines, trends
from appliance.transcript import REMOVED
from tests.clients import series


@pytest.fixture(scope="module")
def measured() -> trends.TrendSeries:
    shuffled = series.sessions()
    random.Random(3).shuffle(shuffled)
    return trends.series(lines.prepare(shuffled))


def _reference(week: str) -> tuple[float, float, int]:
    """(client talk seconds, all talk seconds, client words) straight from the reference lines."""
    rows = [line.split("\t") for line in (series.SERIES / f"{week}.txt").read_text().splitlines()]
    talk = {who: sum(float(e) - float(s) for s, e, w, _ in rows if w == who)
            for who in ("client", "clinician")}
    words = sum(len(text.split()) for _, _, who, text in rows if who == "client")
    return talk["client"], talk["client"] + talk["clinician"], words


def test_sessions_come_oldest_first_with_the_client_found(measured):
    assert [p.session_id for p in measured.points] == [1, 2, 3]
    assert [p.when.isoformat() for p in measured.points] == [
        series.FACTS["sessions"][w]["date"] for w in series.WEEKS]
    assert all(p.client == "Client" and not p.unknown_reason for p in measured.points)


def test_the_clients_share_and_rate_are_the_clients_own(measured):
    for point, week in zip(measured.points, series.WEEKS, strict=True):
        client_s, all_s, words = _reference(week)
        assert point.client_share == pytest.approx(client_s / all_s, abs=1e-3)
        assert point.client_words == words
        assert point.client_wpm == pytest.approx(60 * words / client_s, abs=0.1)


def test_turns_silences_and_flags_follow_the_sessions(measured):
    for point, week in zip(measured.points, series.WEEKS, strict=True):
        speakers = [line.split("\t")[2] for line in
                    (series.SERIES / f"{week}.txt").read_text().splitlines()]
        assert point.turns == 1 + sum(a != b for a, b in zip(speakers, speakers[1:], strict=False))
        assert point.silence_count >= 1 and point.silence_total_s > 0
        # Risk language is in the session facts.json says it is in, and only there.
        assert (point.flags > 0) == bool(series.FACTS["sessions"][week]["risk"])
    assert "hopelessness" in measured.points[2].flag_categories


def test_unnamed_speakers_leave_the_client_figures_empty_and_say_why():
    unnamed = series.sessions({"clinician": "Speaker 1", "client": "Speaker 2"})
    points = trends.series(lines.prepare(unnamed)).points
    assert all(p.client is None and p.client_share is None and p.client_wpm is None
               for p in points)
    assert all(p.unknown_reason == lines.UNNAMED for p in points)
    assert [p.turns for p in points] == [p.turns for p in trends.series(
        lines.prepare(series.sessions())).points]


def test_an_enrolled_clinician_voice_tells_the_client_apart():
    named = series.sessions({"clinician": "Dr Rivera", "client": "Speaker 2"})
    prepared = lines.prepare(named, "Clinician", enrolled=("Dr Rivera",))
    assert {p.who.client for p in prepared} == {"Speaker 2"}
    assert all(p.client_share is not None for p in trends.series(prepared).points)


def test_one_voice_or_a_crowd_is_not_guessed():
    result = series.result("week1", {"clinician": "Speaker 1", "client": "Speaker 1"})
    assert lines.identify(result).reason == lines.ONE_VOICE
    crowd = dataclasses.replace(result, segments=tuple(
        dataclasses.replace(s, speaker=name) for s, name in
        zip(result.segments, ["Clinician", "Speaker 2", "Speaker 3"] * 10, strict=False)))
    assert lines.identify(crowd).client is None
    assert lines.identify(crowd).reason == lines.CROWDED


def test_old_results_without_metrics_and_removed_flags():
    result = series.result("week3")
    removed = dataclasses.replace(result.flags[0], review=REMOVED)
    old = dataclasses.replace(result, metrics=None, flags=(removed, *result.flags[1:]))
    point = trends.series(lines.prepare([lines.SessionText(9, series.sessions()[2].when, old)])
                          ).points[0]
    fresh = trends.series(lines.prepare([series.sessions()[2]])).points[0]
    assert point.client_share == fresh.client_share and point.turns == fresh.turns
    assert point.flags == fresh.flags - 1
