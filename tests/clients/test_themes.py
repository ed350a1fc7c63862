"""Recurring themes and goals across a client's sessions (appliance/clients/themes.py, goals.py).

Checked against the shared series' facts.json: what was followed up from one
session to the next must come out as a theme, and every theme must link to
lines that say it.
"""

from __future__ import annotations

import re

import pytest

from appliance.clients import goals, lines, themes
from tests.clients import series


@pytest.fixture(scope="module")
def prepared() -> tuple[lines.Prepared, ...]:
    return lines.prepare(series.sessions())


@pytest.fixture(scope="module")
def found(prepared) -> tuple[themes.Theme, ...]:
    return themes.themes(prepared)


def _words(week: str) -> set[str]:
    text = (series.SERIES / f"{week}.txt").read_text().lower()
    return set(re.findall(r"[a-z']+", text))


def test_what_was_followed_up_is_a_theme(found):
    labels = {theme.label for theme in found}
    followed = {word for week in series.WEEKS
                for item in series.FACTS["sessions"][week].get("followed_up", ())
                for word in item.split()}
    assert followed and followed <= labels, followed - labels


def test_every_fact_said_in_two_sessions_is_a_theme(prepared):
    every = themes.themes(prepared, limit=None)
    stop = themes.stop_words()
    terms = {term for week in series.WEEKS for fact in series.FACTS["sessions"][week]["facts"]
             for term in fact["any"] if " " not in term}
    for term in terms:
        weeks = [w for w in series.WEEKS if any(word.startswith(term) for word in _words(w))]
        if len(weeks) < 2 or term in stop:
            continue
        assert any(form.startswith(term) for theme in every for form in theme.forms), term


def test_each_mention_is_a_line_that_says_the_theme(found, prepared):
    by_id = {p.session.session_id: p for p in prepared}
    for theme in found:
        assert theme.spread >= themes.MIN_SESSIONS
        assert {m.session_id for m in theme.mentions} == set(theme.sessions)
        for mention in theme.mentions:
            segment = by_id[mention.session_id].session.result.segments[mention.line]
            assert segment.start == mention.start and segment.text == mention.text
            said = " ".join(lines.words_of(segment.text))
            assert any(form in said for form in theme.forms), (theme.label, said)


def test_words_of_one_session_and_stop_words_are_no_theme(found):
    forms = {form for theme in found for form in theme.forms}
    folded = {week: {themes.fold(w) for w in _words(week)} for week in series.WEEKS}
    once = {w for w in _words("week2")
            if themes.fold(w) not in folded["week1"] | folded["week3"]}
    assert "grocery" in once and not forms & once
    assert not forms & themes.stop_words()


def test_forms_fold_together():
    assert themes.fold("stairs") == themes.fold("stair")
    assert themes.fold("presented") == themes.fold("present")
    assert themes.fold("nights") == themes.fold("night")
    assert themes.fold("stopped") == themes.fold("stop")
    assert themes.fold("class") == "class"


def test_a_goal_gets_each_sessions_lines_about_it(prepared):
    track, = goals.tracks(["Present at the team meeting"], prepared)
    assert [len(s.mentions) > 0 for s in track.sessions] == [True, False, True]
    for session in track.sessions:
        for mention in session.mentions:
            said = set(lines.words_of(mention.text))
            assert said & {"present", "presented", "team", "meeting"}
    assert track.mentioned_in == 2


def test_a_goal_without_key_words_says_so(prepared):
    track, = goals.tracks(["Be OK"], prepared)
    assert track.sessions == () and track.note == goals.NO_KEY_WORDS
