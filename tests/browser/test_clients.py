"""Clients in a real browser: add one, record consent, assign a session, see the name in the list."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from appliance.store.db import Storage
from tests.browser.helpers import shot
from tests.support import seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NAME = "Marisol Vantongeren"


def _session(device) -> int:
    """A drafted session of its own, eleven days back, not yet any client's."""
    clock = seed.Clock()
    storage = Storage(device.storage.data_dir, now=clock)
    started = (datetime.now(timezone.utc) - timedelta(days=11)).replace(
        hour=15, minute=0, second=0, microsecond=0)
    return seed.add_session(storage, clock, device.keys.recipient(), started_at=started,
                            result=seed.transcript_result(3, seed=21, flags=False, bookmarks=0),
                            label="M.V. 2024-111")


def test_add_a_client_record_consent_and_assign_a_session(logged_in, device):
    page, sid = logged_in, _session(device)
    page.get_by_test_id("nav-clients").click()
    page.wait_for_load_state()
    page.get_by_test_id("new-client").click()
    page.wait_for_load_state()
    page.get_by_test_id("client-name-input").fill(NAME)
    page.get_by_test_id("client-goals").fill("Sleep through the night\nReturn to work")
    page.get_by_test_id("client-save").click()
    page.wait_for_load_state()

    # Straight to the consent form: given a month ago, every scope ticked by default.
    assert NAME in page.get_by_test_id("consent-client-name").inner_text()
    page.get_by_test_id("consent-date").fill((date.today() - timedelta(days=30)).isoformat())
    page.get_by_test_id("consent-form-version").fill("Consent form v3")
    page.get_by_test_id("consent-submit").click()
    page.wait_for_load_state()
    assert "Consent form v3" in page.get_by_test_id("consent-history").inner_text()

    page.goto(f"/sessions/{sid}")
    panel = page.get_by_test_id("client-panel")
    assert "Not assigned" in panel.inner_text()
    panel.get_by_test_id("client-assign-select").select_option(label=NAME)
    panel.get_by_test_id("client-assign-submit").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("session-client").inner_text() == NAME
    assert page.get_by_test_id("consent-mark").count() == 0, "the consent covered this session"
    shot(page, "clients-session-assigned")

    page.get_by_test_id("nav-sessions").click()
    page.wait_for_load_state()
    row = page.locator(f'tr[data-session-id="{sid}"]')
    assert NAME in row.get_by_test_id("row-client").inner_text()
    page.get_by_test_id("nav-clients").click()
    page.wait_for_load_state()
    listed = page.get_by_test_id("client-row").filter(has_text=NAME)
    assert listed.get_by_test_id("client-sessions").inner_text() == "1"
