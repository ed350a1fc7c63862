"""The client page through the web routes (web_ui/views/client_page.py).

dr.rivera's client has the three sessions of the shared series; the page
shows their timeline, charts, themes linked to the lines, goals and cues.
dr.chen, a colleague, gets the same 404 as for no client; a locked device
sends the clinician to log in; the audit names the client by id only.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from datetime import datetime, timezone
from html import unescape

from appliance.store.db import State
from tests.clients import series
from tests.support.web_support import (  # noqa: F401 - fixtures
    app,
    browser,
    clock,
    colleague,
    encrypt_json,
    recovery,
    seed,
    svc,
    user,
)
from web_ui.views import charts
from web_ui.views.charts import NO_SESSION, ONE_SESSION

NAME = "Dana Marlowe"
GOAL = "present at the team meeting"


def _client(svc, user, clock, weeks=series.WEEKS) -> tuple[int, list[int]]:
    """A client of dr.rivera with the series sessions of ``weeks``; (client id, session ids)."""
    response = user.submit("/clients/new", {"name": NAME, "identifier": "DM-1",
                                            "start_date": "2026-10-01", "goals": GOAL},
                           page="/clients/new")
    client_id = int(re.search(r"/clients/(\d+)/", response.headers["Location"]).group(1))
    ids = []
    for week in weeks:
        day = series.FACTS["sessions"][week]["date"]
        started = datetime.fromisoformat(day).replace(hour=9, tzinfo=timezone.utc)
        session_id = seed(svc, clock, started=started,
                          res=series.result(week), state=State.DRAFT)
        svc.storage.assign_client(session_id, client_id)
        ids.append(session_id)
    return client_id, ids


def _links(page: str) -> list[tuple[int, int]]:
    """Every theme link as (session id, second)."""
    return [(int(s), int(t)) for s, t in re.findall(
        r'href="/sessions/(\d+)#t-(\d+)" data-testid="theme-link"', page)]


def test_the_owner_sees_timeline_charts_themes_goals_and_cues(user, svc, clock):
    client_id, ids = _client(svc, user, clock)
    response = user.get(f"/clients/{client_id}")
    assert response.status_code == 200
    page = unescape(response.text)
    assert NAME in page and "DM-1" in page and "No consent on record" in page
    assert page.count('data-testid="timeline-row"') == 3
    for key in ("share", "wpm", "turns", "silences", "flags", "cue-absolutist",
                "cue-first_person", "cue-negative_emotion"):
        chart = page.split(f'data-testid="chart-{key}"')[1].split("</svg>")[0]
        assert chart.count('class="chart-point"') == 3 and "<polyline" in chart
    assert "style=" not in page.split('data-testid="client-trends"')[1]
    assert "Al-Mosaiwi" in page and "Rude, S., Gortner" in page
    assert "cue to look at, not a measure" in page
    # Week 3's risk language is on the timeline.
    week3 = page.split(f'data-session-id="{ids[2]}"')[1].split("</tr>")[0]
    assert "Hopelessness" in week3 or "hopelessness" in week3.lower()
    # The goal: week 1 and week 3 say something about presenting at the meeting; week 2 nothing.
    goal = page.split('data-testid="goal"')[1]
    assert goal.count('data-testid="goal-link"') >= 2 and "nothing said about it" in goal


def test_each_theme_links_to_the_session_lines_that_say_it(user, svc, clock):
    client_id, ids = _client(svc, user, clock)
    page = unescape(user.get(f"/clients/{client_id}").text)
    labels = re.findall(r'data-testid="theme-label">([^<]+)<', page)
    followed = {w for week in series.WEEKS
                for item in series.FACTS["sessions"][week].get("followed_up", ())
                for w in item.split()}
    assert followed <= set(labels), followed - set(labels)  # "breathing", "log", "stairs" …
    starts = {(sid, int(seg.start)): seg.text.lower()
              for sid, week in zip(ids, series.WEEKS, strict=True)
              for seg in series.result(week).segments}
    theme = page.split('data-testid="theme-label">stairs<')[1].split("</li>")[0]
    links = _links(theme)
    assert {sid for sid, _ in links} == {ids[1], ids[2]}
    assert all("stairs" in starts[link] for link in links)


def test_a_corrected_transcript_changes_the_page(user, svc, clock):
    client_id, ids = _client(svc, user, clock)
    before = unescape(user.get(f"/clients/{client_id}").text)
    assert 'data-testid="theme-label">stairs<' in before
    week3 = series.result("week3")
    renamed = tuple(dataclasses.replace(seg, text=seg.text.replace("stairs", "steps"))
                    for seg in week3.segments)
    stored = svc.storage.stored_transcript(ids[2])
    svc.storage.save_correction(
        ids[2], based_on=stored.version, flags_enc=None, author="dr.rivera", summary="words",
        result_enc=encrypt_json(dataclasses.replace(week3, segments=renamed).to_json(),
                                svc.keys.recipient()))
    after = unescape(user.get(f"/clients/{client_id}").text)
    assert 'data-testid="theme-label">stairs<' not in after  # now said in week 2 only


def test_a_single_session_says_there_is_no_trend_yet(user, svc, clock):
    client_id, _ = _client(svc, user, clock, weeks=("week1",))
    page = unescape(user.get(f"/clients/{client_id}").text)
    share = page.split('data-testid="figure-share"')[1].split("</figure>")[0]
    assert ONE_SESSION in share and share.count('class="chart-point"') == 1
    assert "<polyline" not in share
    assert 'data-testid="no-themes"' in page


def test_a_client_without_sessions_draws_no_chart_and_says_so(user, svc, clock):
    client_id, _ = _client(svc, user, clock, weeks=())
    page = unescape(user.get(f"/clients/{client_id}").text)
    assert 'data-testid="no-sessions"' in page and "<svg" not in page
    assert page.count(NO_SESSION) >= 6


def test_a_colleague_and_a_locked_device_see_nothing_and_the_audit_has_the_id_only(
        app, user, svc, clock):
    client_id, _ = _client(svc, user, clock, weeks=("week1",))
    chen = colleague(app, svc)
    response = chen.get(f"/clients/{client_id}")
    assert response.status_code == 404 and NAME not in response.text
    assert "no such client" in response.text.lower()
    assert user.get("/clients/999").status_code == 404
    user.get(f"/clients/{client_id}")
    rows = sqlite3.connect(svc.storage.db_path).execute(
        "SELECT action, detail FROM audit WHERE action = 'client.view'").fetchall()
    assert (("client.view", f"client {client_id}") in rows)
    assert NAME not in repr(rows) and GOAL not in repr(rows)
    svc.keys.lock()
    locked = user.get(f"/clients/{client_id}")
    assert locked.status_code == 302 and "/login" in locked.headers["Location"]


# --- the charts (web_ui/views/charts.py) -------------------------------------------------


def _chart(values):
    return charts.chart("k", "Turns", "changes", [f"{n} Oct" for n in range(1, len(values) + 1)],
                        values, ["cannot be told"] * len(values), decimals=0)


def test_a_chart_draws_its_points_axes_and_a_table():
    drawn = _chart([10.0, None, 30.0, 40.0])
    svg = str(charts.svg(drawn))
    assert svg.count('class="chart-point"') == 3 and svg.count('class="chart-axis"') == 2
    assert '<title id="chart-title-k">Turns (changes)</title>' in svg
    assert svg.count("<polyline") == 1  # the missing session breaks the line
    assert ">1 Oct<" in svg and ">4 Oct<" in svg and ">40<" in svg  # dates and the top
    assert "style" not in svg and "<script" not in svg
    heights = [float(y) for y in re.findall(r'class="chart-point" cx="[\d.]+" cy="([\d.]+)"', svg)]
    assert heights[0] > heights[1] > heights[2]  # larger values sit higher
    figure = str(charts.figure(drawn))
    assert "<details>" in figure and "cannot be told" in figure and ONE_SESSION not in figure


def test_one_session_draws_a_point_and_says_no_trend_yet():
    figure = str(charts.figure(_chart([12.0])))
    assert figure.count('class="chart-point"') == 1 and "<polyline" not in figure
    assert ONE_SESSION in figure


def test_no_session_draws_nothing_and_says_so():
    figure = str(charts.figure(_chart([None, None])))
    assert "<svg" not in figure and NO_SESSION in figure
    assert str(charts.svg(_chart([]))) == ""
