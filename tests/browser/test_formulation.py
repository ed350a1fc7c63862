"""A case conceptualization in a real browser: a citation opens the session at its line, then Sign.

The model drafts out of the browser (``holdnote draft --queued``): the version is
seeded as the runner stores it, citing week 1's line at 0:04 of the shared series.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from appliance import age
from appliance.clients import formulation as types
from appliance.clients.formulation import Citation, Section, Statement
from appliance.clients.records import ClientRecord, seal_record
from appliance.store import formulations as table
from appliance.store.db import State, Storage, apply_transition, write_note
from tests.browser.helpers import shot
from tests.clients import series
from tests.support import seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KEPT = "The client said panic attacks at work started after a promotion."


def _drafted(device) -> tuple[int, int]:
    """dr.rivera's client with week 1 signed and a drafted version citing its line at 0:04."""
    clock = seed.Clock()
    storage = Storage(device.storage.data_dir, now=clock)
    recipient = device.keys.recipient()
    owner = next(u.id for u in device.keys.users() if u.username == "dr.rivera")
    client_id = storage.create_client(owner, seal_record(ClientRecord("D.M. (5 Ps)"), recipient))
    started = (datetime.now(UTC) - timedelta(weeks=3)).replace(hour=10, minute=0, second=0, microsecond=0)
    sid = seed.add_session(storage, clock, recipient, started_at=started, result=series.result("week1"))
    storage.assign_client(sid, client_id)
    with storage.connect() as conn:
        apply_transition(conn, sid, State.SIGNED)
        write_note(conn, sid, age.encrypt(json.dumps({"sections": []}).encode(), [recipient]),
                   "dr.rivera", clock(), signed=True)
    days = {sid: types.day_label(started.date())}
    kept = Statement(KEPT, (Citation(sid, 4.18),), True)
    sections = [Section(s.key, s.title, types.section_text([kept], days), (kept,))
                if s.key == "presenting" else s for s in types.empty_sections()]
    number = table.request(storage, client_id, "dr.rivera")
    table.claim(storage, client_id, number)
    table.drafted(storage, client_id, number, types.seal(types.body_of(
        sections, approach="cbt", model="SmolLM2", sessions=days), recipient), progress=1.0, state="draft")
    return client_id, sid


def test_a_citation_opens_the_session_line_and_the_version_is_signed(logged_in, device):
    from playwright.sync_api import expect

    page = logged_in
    client_id, sid = _drafted(device)
    page.goto(f"/clients/{client_id}/formulation")
    expect(page.get_by_test_id("formulation-version")).to_contain_text("Version 1")
    page.get_by_test_id("citation").first.click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/sessions/{sid}#t-4")
    expect(page.locator("#t-4")).to_contain_text("promotion")
    page.go_back()
    page.wait_for_load_state()
    page.get_by_test_id("formulation-reviewed").check()
    page.get_by_test_id("formulation-sign").click()
    page.wait_for_load_state()
    expect(page.get_by_test_id("formulation-signed")).to_contain_text("dr.rivera")
    expect(page.get_by_test_id("p-text-presenting")).to_contain_text(KEPT)
    assert page.get_by_test_id("formulation-sign").count() == 0
    shot(page, "formulation-signed")
