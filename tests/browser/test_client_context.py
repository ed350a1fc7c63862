"""The next draft of a client's session opens with what was planned last time, linked to the line.

One story on the running device: a client's week-1 note is signed with its plan;
the week-2 draft gets its "From last session" section from the code the job runs
(no model: the device has none), whose citation takes the clinician to the line
that took the plan up; a session of a client who withdrew consent says why it was
not drafted.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from appliance import age
from appliance.access.audit import AuditLog
from appliance.clients.records import ClientRecord, seal_record
from appliance.drafting import context
from appliance.store.db import Storage
from appliance.transcription.drafts import DraftRunner
from tests.browser.helpers import shot
from tests.conftest import make_config
from tests.drafting.conftest import series_result
from tests.support import seed
from web_ui.views.records import sign_note
from web_ui.views.transcript import start_key

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PLAN = "- Slow breathing twice a day\n- Anxiety log from zero to ten"


def _session(storage, clock, device, week: str, days_ago: int, client_id: int) -> int:
    started = (datetime.now(UTC) - timedelta(days=days_ago)).replace(hour=11, minute=0,
                                                                      second=0, microsecond=0)
    sid = seed.add_session(storage, clock, device.keys.recipient(), started_at=started,
                           result=series_result(week), label=f"D.M. {week}")
    storage.assign_client(sid, client_id)
    return sid


def _sign_with_plan(storage, device, sid: int) -> None:
    row = storage.load_note(sid)
    note = json.loads(age.decrypt(row["note_enc"], [device.keys.identity()]))
    for section in note["sections"]:
        if not section.get("auto"):
            section["text"] = PLAN if section["key"] == "plan" else "Written by the clinician."
    sign_note(storage, sid, note, "", device.keys.recipient(), "dr.rivera")


def test_the_draft_shows_last_sessions_plan_with_a_link_to_where_it_was_discussed(
        logged_in, device, tmp_path: Path):
    from playwright.sync_api import expect

    page = logged_in  # the device is unlocked now
    clock = seed.Clock()
    storage = Storage(device.storage.data_dir, now=clock)
    owner = next(u.id for u in device.keys.users() if u.username == "dr.rivera")
    dm = storage.create_client(owner, seal_record(ClientRecord("D.M."), device.keys.recipient()))
    week1 = _session(storage, clock, device, "week1", 33, dm)
    _sign_with_plan(storage, device, week1)
    week2 = _session(storage, clock, device, "week2", 26, dm)
    assert context.refresh(storage, week2, device.keys.identity(), device.keys.recipient())

    page.goto(f"/sessions/{week2}")
    section = page.get_by_test_id("note-section-followup")
    expect(section).to_contain_text("Slow breathing twice a day (from last session): discussed at 0:00")
    expect(page.locator('label[for="sec-followup"]')).to_contain_text("From last session")
    grounding = page.get_by_test_id("grounding-followup")
    expect(grounding.get_by_test_id("statement").first).to_contain_text(
        "from the Plan of the note signed on")
    first_line = series_result("week2").segments[0].start
    line = page.locator(f'li.seg[data-start="{start_key(first_line)}"]')
    grounding.get_by_test_id("citation").first.click()
    expect(line).to_have_class(re.compile(r"\bcited\b"))
    expect(line).to_contain_text("How did the breathing log go this week?")
    shot(page, "session-from-last-session")

    # Another client withdrew consent: the job does not draft their session and says why.
    ef = storage.create_client(owner, seal_record(ClientRecord("E.F."), device.keys.recipient()))
    consent = storage.add_consent(ef, given_on=date.today() - timedelta(days=45), form_version="v2",
                                  obtained_by="Dr Rivera", scope=("recording", "transcription",
                                                                  "drafting"), by="dr.rivera")
    storage.withdraw_consent(consent, date.today() - timedelta(days=21))
    blocked = _session(storage, clock, device, "week3", 19, ef)
    storage.update_session(blocked, drafting="queued")
    runner = DraftRunner(make_config(tmp_path, drafting={"model": "bundled-smollm2"}), storage,
                         AuditLog(storage), recipient=device.keys.recipient,
                         check_continue=lambda _sid: None)
    assert runner.run(device.keys.identity(), only=blocked) == 0
    page.goto(f"/sessions/{blocked}")
    expect(page.get_by_test_id("drafting-state")).to_contain_text("The client withdrew consent on")
    expect(page.get_by_test_id("note-section-followup")).to_have_count(0)
