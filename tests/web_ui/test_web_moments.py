"""Moments to review on the pages: the session panel (owner only) and the client page over time.

dr.rivera's sessions are the shared series (reference lines, as the stereo pipeline
labels them): week 2 holds the client's "You don't understand" and the clinician's
"I'm sorry". dr.chen, with a read-only share, gets no panel.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from html import unescape

from appliance.notes import ruptures
from appliance.store.db import State
from appliance.transcript import Segment, TranscriptResult
from tests.clients import series
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


def _seed(svc, clock, week: str, res: TranscriptResult | None = None) -> int:
    day = series.FACTS["sessions"][week]["date"]
    started = datetime.fromisoformat(day).replace(hour=9, tzinfo=timezone.utc)
    return seed(svc, clock, started=started, res=res or series.result(week), state=State.DRAFT)


def _panel(page: str) -> str:
    return page.split('data-testid="moments"')[1].split("</details>")[0]


def test_the_owner_sees_the_moment_its_repair_and_links_to_both_lines(user, svc, clock):
    session_id = _seed(svc, clock, "week2")
    page = unescape(user.get(f"/sessions/{session_id}").text)
    panel = _panel(page)
    assert panel.count('data-testid="moment"') == 1
    assert "You don't understand" in panel and "The client pushed back" in panel
    assert "I'm sorry" in panel.split('data-testid="moment-repair"')[1]
    (moment,) = ruptures.candidates(series.result("week2"), "Clinician")
    for testid, start in (("moment-link", moment.start), ("moment-repair-link", moment.repair_start),
                          ("moment-trigger", moment.trigger_start)):
        second = int(start)
        assert f'href="#t-{second}" data-testid="{testid}"' in panel
        assert f'id="t-{second}"' in page  # the link lands on a line of the transcript
    assert "rupture" not in panel.lower() and "detected" not in panel.lower()
    assert "Only you see this panel" in panel and "style=" not in panel


def test_a_session_without_moments_says_so(user, svc, clock):
    panel = _panel(unescape(user.get(f"/sessions/{_seed(svc, clock, 'week1')}").text))
    assert 'data-testid="moments-none"' in panel and 'data-testid="moment"' not in panel


def test_a_colleague_with_a_share_sees_no_moments(app, user, svc, clock):
    session_id = _seed(svc, clock, "week2")
    chen = colleague(app, svc)
    user.submit(f"/sessions/{session_id}/share", {"user": CHEN}, page=f"/sessions/{session_id}")
    page = chen.get(f"/sessions/{session_id}").text
    assert 'data-testid="transcript"' in page
    assert 'data-testid="moments"' not in page and "Moments to review" not in page


def test_an_unlabelled_session_says_why_there_are_no_moments(user, svc, clock):
    lines = tuple(Segment(i * 5.0, i * 5.0 + 4, who, "You don't understand, you're not listening.")
                  for i, who in enumerate(("Speaker 1", "Speaker 2", "Speaker 1", "Speaker 2")))
    res = TranscriptResult(duration_s=20.0, model="test", language="en", segments=lines)
    panel = _panel(unescape(user.get(f"/sessions/{_seed(svc, clock, 'week1', res)}").text))
    assert "The speakers are not named" in panel.split('data-testid="moments-unavailable">')[1]
    assert 'data-testid="moment"' not in panel


def test_the_client_page_lists_the_moments_per_session_each_linked(user, svc, clock):
    response = user.submit("/clients/new", {"name": "Dana Marlowe", "start_date": "2026-10-01"},
                           page="/clients/new")
    client_id = int(re.search(r"/clients/(\d+)/", response.headers["Location"]).group(1))
    ids = {week: _seed(svc, clock, week) for week in series.WEEKS}
    for session_id in ids.values():
        svc.storage.assign_client(session_id, client_id)
    page = unescape(user.get(f"/clients/{client_id}").text)
    section = page.split('data-testid="client-moments"')[1].split("</section>")[0]
    rows = re.findall(r'data-testid="moment-row" data-session-id="(\d+)"', section)
    assert rows == [str(ids[w]) for w in ("week3", "week2", "week1")]  # newest first
    week2 = section.split(f'data-session-id="{ids["week2"]}"')[1].split("</tr>")[0]
    assert re.search(r'data-testid="moment-count">(\d+)<', week2).group(1) == "1"
    assert re.search(r'data-testid="moment-repairs">(\d+)<', week2).group(1) == "1"
    (moment,) = ruptures.candidates(series.result("week2"), "Clinician")
    assert f'href="/sessions/{ids["week2"]}#t-{int(moment.start)}"' in week2
    week1 = section.split(f'data-session-id="{ids["week1"]}"')[1].split("</tr>")[0]
    assert re.search(r'data-testid="moment-count">(\d+)<', week1).group(1) == "0"
