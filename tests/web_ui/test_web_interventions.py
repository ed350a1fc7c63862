"""Your interventions on the pages: the session panel, the client page's charts, "My practice".

dr.rivera's sessions are the shared series (reference lines, as the stereo
pipeline labels them). The panel is the session owner's alone: dr.chen, with a
read-only share, does not get it. The practice page counts only the viewer's
own sessions and its audit entry carries no id and no text.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from html import unescape

import pytest

from appliance.access.keys import viewer
from appliance.notes.interventions import Interventions, Unavailable, session_interventions
from appliance.store.db import State
from appliance.transcript import Segment, TranscriptResult
from tests.clients import series
from tests.conftest import USER
from tests.support.web_support import (  # noqa: F401 - fixtures
    CHEN,
    app,
    browser,
    clock,
    colleague,
    recovery,
    seed,
    svc,
    user,
)
from web_ui.views.interventions import Group, trend_charts


def _started(week: str) -> datetime:
    day = series.FACTS["sessions"][week]["date"]
    return datetime.fromisoformat(day).replace(hour=9, tzinfo=timezone.utc)


def _seed(svc, clock, week: str, owner: str = USER) -> int:
    return seed(svc, clock, started=_started(week), res=series.result(week), state=State.DRAFT,
                owner=owner)


def _panel(page: str) -> str:
    return page.split('data-testid="interventions"')[1].split('data-testid="interventions-how"')[0]


@pytest.fixture(scope="module")
def week2() -> Interventions:
    found = session_interventions(series.result("week2"), "Clinician")
    assert isinstance(found, Interventions)
    return found


def test_the_owner_sees_the_panel_with_each_instance_linked_to_its_line(user, svc, clock, week2):
    session_id = _seed(svc, clock, "week2")
    page = unescape(user.get(f"/sessions/{session_id}").text)
    panel = _panel(page)
    assert re.search(r'data-testid="i-open">(\d+)<', panel).group(1) == str(len(week2.open_questions))
    assert re.search(r'data-testid="i-reflections">(\d+)<', panel).group(1) == str(
        len(week2.reflections))
    assert f"{round(week2.share * 100)} %" in panel
    links = re.findall(r'href="#t-(\d+)" data-testid="i-(?:open|closed|reflection)-line"', panel)
    expected = {int(s) for s in (*week2.open_questions, *week2.closed_questions,
                                 *week2.reflections)}
    assert {int(s) for s in links} == expected
    for second in expected:  # each link lands on a line of the transcript
        assert f'id="t-{second}"' in page
    assert "How these are counted" in page and "Only you see this panel" in page
    assert "style=" not in panel


def test_a_colleague_with_a_share_sees_no_panel(app, user, svc, clock):
    session_id = _seed(svc, clock, "week2")
    chen = colleague(app, svc)
    user.submit(f"/sessions/{session_id}/share", {"user": CHEN}, page=f"/sessions/{session_id}")
    page = chen.get(f"/sessions/{session_id}")
    assert page.status_code == 200 and 'data-testid="transcript"' in page.text
    assert 'data-testid="interventions' not in page.text


@pytest.mark.parametrize(("speakers", "reason"), [
    (("Speaker 1", "Speaker 1"), "The speakers are not labelled"),
    (("Clinician", "Clinician"), "Only you speak in this transcript"),
    (("Client", "Speaker 2"), "No line of this transcript is yours"),
])
def test_what_cannot_be_counted_says_why_and_shows_no_figures(user, svc, clock, speakers, reason):
    lines = tuple(Segment(i * 5.0, i * 5.0 + 4, who, "How are you? Fine, thanks.")
                  for i, who in enumerate(speakers))
    res = TranscriptResult(duration_s=20.0, model="test", language="en", segments=lines)
    session_id = seed(svc, clock, started=_started("week1"), res=res, state=State.DRAFT)
    panel = _panel(unescape(user.get(f"/sessions/{session_id}").text))
    assert reason in panel.split('data-testid="interventions-unavailable">')[1]
    assert 'data-testid="i-open"' not in panel


def test_the_client_page_draws_the_interventions_over_the_sessions(user, svc, clock):
    response = user.submit("/clients/new", {"name": "Dana Marlowe", "start_date": "2026-10-01"},
                           page="/clients/new")
    client_id = int(re.search(r"/clients/(\d+)/", response.headers["Location"]).group(1))
    for week in series.WEEKS:
        svc.storage.assign_client(_seed(svc, clock, week), client_id)
    page = unescape(user.get(f"/clients/{client_id}").text)
    section = page.split('data-testid="client-interventions"')[1].split("</section>")[0]
    for key in ("i-share", "i-open", "i-reflections", "i-latency"):
        chart = section.split(f'data-testid="chart-{key}"')[1].split("</svg>")[0]
        assert chart.count('class="chart-point"') == 3
    table = section.split('data-testid="chart-table-i-open"')[1].split("</table>")[0]
    counted = [len(session_interventions(series.result(w), "Clinician").open_questions)
               for w in series.WEEKS]
    assert re.findall(r"<td>(\d+)</td></tr>", table) == [str(n) for n in counted]


def test_my_practice_draws_months_once_there_are_two(user, svc, clock):
    for week, month in (("week1", 10), ("week2", 10), ("week3", 11)):
        seed(svc, clock, started=datetime(2026, month, 3 + len(week), 9, tzinfo=timezone.utc),
             res=series.result(week), state=State.DRAFT)
    page = unescape(user.get("/review").text)
    table = page.split('data-testid="chart-table-i-reflections"')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>([A-Z][a-z]{2} \d{4})</td><td>([\d.]+)</td></tr>", table)
    reflections = [len(session_interventions(series.result(w), "Clinician").reflections)
                   for w in series.WEEKS]
    assert rows == [("Oct 2026", f"{(reflections[0] + reflections[1]) / 2:.1f}"),
                    ("Nov 2026", f"{reflections[2]:.1f}")]


def test_my_practice_counts_only_my_own_sessions_and_is_audited_without_text(
        app, user, svc, clock):
    for week in ("week1", "week3"):  # both in October 2026
        _seed(svc, clock, week)
    colleague(app, svc)
    theirs = seed(svc, clock, started=datetime(2026, 11, 2, 9, tzinfo=timezone.utc),
                  res=series.result("week2"), state=State.DRAFT, owner=CHEN)
    svc.storage.share(theirs, viewer(svc.storage, USER).user_id, by=CHEN)
    page = unescape(user.get("/review").text)
    assert "2 of your 2 sessions counted" in page
    # Both in one month: a point a session (dr.chen's November session would add a month).
    table = page.split('data-testid="chart-table-i-open"')[1].split("</table>")[0]
    assert re.findall(r"<tr><td>(\d+ [A-Z][a-z]{2} \d{4})</td>", table) == [
        "5 Oct 2026", "19 Oct 2026"]
    opened = [len(session_interventions(series.result(w), "Clinician").open_questions)
              for w in ("week1", "week3")]
    assert re.findall(r"<td>([\d.]+)</td></tr>", table) == [f"{n:.1f}" for n in opened]
    entry = next(e for e in svc.audit.entries() if e.action == "practice.view")
    assert entry.actor == USER and entry.session_id is None and not entry.detail
    assert 'data-testid="nav-practice"' in page


def test_a_session_that_cannot_be_counted_is_a_gap_in_the_charts_with_its_reason(week2):
    reason = session_interventions(series.result("week2", {"clinician": "Speaker 1",
                                                            "client": "Speaker 2"}), "Clinician")
    assert isinstance(reason, Unavailable)
    groups = [Group("5 Oct 2026", (reason,)), Group("12 Oct 2026", (week2,)),
              Group("19 Oct 2026", (week2,))]
    html = unescape("".join(trend_charts(groups)))
    share = html.split('data-testid="chart-i-share"')[1].split("</svg>")[0]
    assert share.count('class="chart-point"') == 2
    table = html.split('data-testid="chart-table-i-share"')[1].split("</table>")[0]
    assert f"<td>5 Oct 2026</td><td>{reason.reason}</td>" in table
