"""The audit log page: pages, filters by user, action and date, CSV export, damage shown."""

from __future__ import annotations

import csv
import io

from appliance.access.audit import Filter
from tests.conftest import USER
from tests.support.web_support import (  # noqa: F401 - fixtures
    Browser, actions, app, browser, clock, recovery, svc, user)
from web_ui.views.audit_page import PER_PAGE


def rows(page) -> int:
    return page.text.count('data-testid="audit-row"')


def fill(svc, clock, count: int, actor: str = "dr.chen", action: str = "session.view") -> None:
    for n in range(count):
        svc.audit.append(actor, action, session_id=n + 1, source="192.168.1.21")


def test_the_log_is_paged_newest_first(user, svc, clock):
    fill(svc, clock, 2 * PER_PAGE)
    total = svc.audit.count(Filter())
    pages = -(-total // PER_PAGE)
    first = user.get("/audit")
    assert first.status_code == 200 and rows(first) == PER_PAGE
    assert f"Page 1 of {pages}" in first.text and f"{total} entries" in first.text
    last = user.get(f"/audit?page={pages}")
    assert rows(last) == total - (pages - 1) * PER_PAGE
    assert 'rel="next"' not in last.text and 'rel="prev"' in last.text


def test_a_page_number_out_of_range_gives_a_clear_page(user, svc, clock):
    fill(svc, clock, PER_PAGE + 5)
    huge = user.get("/audit?page=999999999999999999999")
    assert huge.status_code == 200
    assert "There is no page 999999999999999999999; showing the last page (2)" in huge.text
    assert rows(huge) > 0
    for odd in ("abc", "-3", "0", "²", "9" * 5000):
        page = user.get(f"/audit?page={odd}")
        assert page.status_code == 200 and rows(page) > 0, odd


def test_filters_select_by_user_action_and_date(user, svc, clock):
    fill(svc, clock, 3, actor="dr.chen")
    clock.advance(days=2)
    fill(svc, clock, 4, actor="dr.okafor", action="session.export")
    user.login()  # two days later
    by_user = user.get("/audit?user=dr.chen")
    assert rows(by_user) == 3 and "3 entries match the filter" in by_user.text
    by_action = user.get("/audit?action=session.export")
    assert rows(by_action) == 4
    day = clock().date().isoformat()
    by_date = user.get(f"/audit?from={day}&to={day}&action=session.view")
    assert rows(by_date) == 0 and "No entries match the filter" in by_date.text
    both = user.get(f"/audit?from={day}&user=dr.okafor")
    assert rows(both) == 4
    # The pager and the export keep the filter.
    assert "/audit.csv?user=dr.okafor" in both.text or "user=dr.okafor" in both.text


def test_filters_keep_across_pages(user, svc, clock):
    fill(svc, clock, PER_PAGE + 3, actor="dr.chen")
    page = user.get("/audit?user=dr.chen")
    assert "page=2&amp;user=dr.chen" in page.text or "user=dr.chen&amp;page=2" in page.text
    assert rows(user.get("/audit?user=dr.chen&page=2")) == 3


def test_export_is_csv_of_the_filtered_entries_and_is_audited(user, svc, clock):
    fill(svc, clock, 3, actor="dr.chen")
    fill(svc, clock, 2, actor="dr.okafor")
    response = user.get("/audit.csv?user=dr.chen")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0][:4] == ["seq", "time_utc", "user", "action"]
    assert [r[2] for r in table[1:]] == ["dr.chen"] * 3
    assert actions(svc)[-1] == "audit.export"
    assert svc.audit.entries(limit=1)[0].actor == USER


def test_export_cannot_smuggle_a_spreadsheet_formula(user, app, svc):
    Browser(app.test_client(), "192.168.1.50").login('=HYPERLINK("http://x","y")', "wrong one!!")
    table = list(csv.reader(io.StringIO(user.get("/audit.csv?action=login.failure").text)))
    assert table[1][6] == "'=HYPERLINK(\"http://x\",\"y\")"


def test_the_page_shows_a_cut_tail_after_the_next_login(user, app, svc, clock):
    fill(svc, clock, 6)
    with svc.storage.connect() as conn:
        conn.execute("DELETE FROM audit WHERE seq > (SELECT MAX(seq) FROM audit) - 3")
    Browser(app.test_client(), "192.168.1.51").login()
    page = user.get("/audit").text
    assert 'data-ok="false"' in page and "were removed" in page
