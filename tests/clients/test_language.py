"""Language cues over a client's sessions (appliance/clients/language.py, language_cues.toml)."""

from __future__ import annotations

import re
from datetime import date

import pytest

from appliance.clients import language, lines
from appliance.transcript import Segment, TranscriptResult
from tests.clients import series

# Al-Mosaiwi & Johnstone (2018), their published absolutist dictionary.
PUBLISHED = {"absolutely", "all", "always", "complete", "completely", "constant", "constantly",
             "definitely", "entire", "ever", "every", "everyone", "everything", "full", "must",
             "never", "nothing", "totally", "whole"}


def _session(*lines_: tuple[str, str]) -> lines.SessionText:
    segments = tuple(Segment(4.0 * i, 4.0 * i + 3, who, text) for i, (who, text) in enumerate(lines_))
    return lines.SessionText(1, date(2026, 10, 5), TranscriptResult(60.0, "m", "en", segments))


def _rates(*lines_: tuple[str, str]) -> language.LanguagePoint:
    return language.series(lines.prepare([_session(*lines_)])).points[0]


def test_the_shipped_cues_hold_the_published_lists_with_explanation_and_source():
    cues = {cue.key: cue for cue in language.shipped_cues()}
    assert cues["absolutist"].words == PUBLISHED
    assert "Al-Mosaiwi" in cues["absolutist"].source and "2018" in cues["absolutist"].source
    assert {"i", "me", "my", "mine", "myself", "i'm"} <= cues["first_person"].words
    assert "Rude" in cues["first_person"].source and "2004" in cues["first_person"].source
    assert 80 <= len(cues["negative_emotion"].words) <= 130
    assert all("not a measure" in cue.explanation for cue in cues.values())


def test_rates_count_the_clients_words_only_per_hundred():
    point = _rates(("Clinician", "You always say you must. Everything, never, all of it."),
                   ("Client", "I always feel I must do everything. Nothing helps me."))
    # Ten client words: always, must, everything, nothing (4); I, I, me (3); no feeling word.
    assert point.client_words == 10
    assert point.rate("absolutist") == 40.0
    assert point.rate("first_person") == 30.0
    assert point.rate("negative_emotion") == 0.0


def test_contractions_typographic_apostrophes_and_case_count():
    point = _rates(("Clinician", "Go on."), ("Client", "I’m SCARED and I've been so ANXIOUS."))
    assert point.client_words == 7
    assert point.rate("first_person") == pytest.approx(100 * 2 / 7, abs=0.01)
    assert point.rate("negative_emotion") == pytest.approx(100 * 2 / 7, abs=0.01)


def test_an_unknown_client_gets_no_rate_and_a_reason():
    point = _rates(("Speaker 1", "I always worry."), ("Speaker 2", "Everything is fine."))
    assert point.client_words is None and point.rate("absolutist") is None
    assert point.unknown_reason == lines.UNNAMED


def test_the_series_trend_matches_the_reference_lines():
    points = language.series(lines.prepare(series.sessions())).points
    for point, week in zip(points, series.WEEKS, strict=True):
        said = [w for line in (series.SERIES / f"{week}.txt").read_text().splitlines()
                if line.split("\t")[2] == "client"
                for w in re.findall(r"[a-z']+", line.split("\t")[3].lower())]
        expected = 100 * sum(w in PUBLISHED for w in said) / len(said)
        assert point.rate("absolutist") == pytest.approx(expected, abs=0.01)
    assert points[2].rate("absolutist") > points[1].rate("absolutist")  # "never", "every night"


def test_a_broken_cue_file_is_refused_naming_what_is_wrong():
    with pytest.raises(ValueError, match="cue 1 lacks source"):
        language.parse_cues('[[cue]]\nkey="k"\nname="n"\nexplanation="e"\nwords=["a"]\n')
    with pytest.raises(ValueError, match="not valid TOML"):
        language.parse_cues("[[cue]\n")
    with pytest.raises(ValueError, match="no \\[\\[cue\\]\\] entries"):
        language.parse_cues("")
