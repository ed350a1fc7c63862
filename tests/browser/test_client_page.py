"""The client page in a real browser: charts drawn with no CSP violation, a theme opens the line.

One story on the running device: dr.rivera's client has the three sessions of
the shared series; the client page draws its charts as inline SVG styled from
a static stylesheet (the console reports no Content-Security-Policy refusal),
and the "stairs" theme's link opens the session at the line that says it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from appliance.clients.records import ClientRecord, seal_record
from appliance.store.db import Storage
from tests.browser.helpers import shot
from tests.clients import series
from tests.support import seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _client(device) -> tuple[int, list[int]]:
    """A client of dr.rivera with the three series sessions, a week apart."""
    clock = seed.Clock()
    storage = Storage(device.storage.data_dir, now=clock)
    owner = next(u.id for u in device.keys.users() if u.username == "dr.rivera")
    record = ClientRecord("D.M. (page)", "DM-7", goals=("Present at the team meeting",))
    client_id = storage.create_client(owner, seal_record(record, device.keys.recipient()))
    ids = []
    for weeks_ago, week in zip((6, 5, 4), series.WEEKS, strict=True):
        started = (datetime.now(UTC) - timedelta(weeks=weeks_ago)).replace(
            hour=10, minute=0, second=0, microsecond=0)
        sid = seed.add_session(storage, clock, device.keys.recipient(), started_at=started,
                               result=series.result(week), label=f"D.M. {week}")
        storage.assign_client(sid, client_id)
        ids.append(sid)
    return client_id, ids


def test_the_client_page_draws_its_charts_and_a_theme_opens_the_session_at_the_line(
        logged_in, device):
    from playwright.sync_api import expect

    page = logged_in
    client_id, ids = _client(device)
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.goto(f"/clients/{client_id}")
    expect(page.get_by_test_id("client-name")).to_have_text("D.M. (page)")
    expect(page.get_by_test_id("timeline-row")).to_have_count(3)
    charts = page.locator("svg.chart")
    assert charts.count() >= 9
    # Styled by the static stylesheet: the line has no fill and a visible stroke.
    line = page.locator('[data-testid="chart-share"] polyline.chart-line')
    assert line.evaluate("e => getComputedStyle(e).fill") == "none"
    assert line.evaluate("e => getComputedStyle(e).strokeWidth") == "2px"
    page.get_by_test_id("figure-share").locator("summary").click()
    expect(page.get_by_test_id("chart-table-share").locator("tbody tr")).to_have_count(3)
    expect(page.get_by_test_id("client-cues")).to_contain_text("Al-Mosaiwi")
    shot(page, "client-page", full_page=True)
    refused = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
    assert not refused, refused

    more = page.get_by_test_id("more-themes")
    if more.count():  # the themes after the first twelve are folded away
        more.locator("summary").click()
    stairs = page.get_by_test_id("theme").filter(
        has=page.get_by_test_id("theme-label").get_by_text("stairs", exact=True))
    stairs.get_by_test_id("theme-link").first.click()
    page.wait_for_load_state()
    assert f"/sessions/{ids[1]}#t-" in page.url
    anchor = page.url.rsplit("#", 1)[1]
    target = page.locator(f"li.seg#{anchor}")
    expect(target).to_contain_text("stairs")
    expect(target).to_be_in_viewport()
    refused = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
    assert not refused, refused
