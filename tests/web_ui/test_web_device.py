"""The device page, live status, recorder control, /healthz and the audit log page."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from appliance.recorder.control import ControlServer
from appliance.store.db import State
from tests.conftest import make_config
from tests.support.web_support import (  # noqa: F401 - fixtures
    START, Browser, FakeClock, actions, app, browser, clock, recovery, seed, svc, user)
from web_ui import create_app
from web_ui.views import status


class FakeRecorder:
    """The recorder daemon's side of the control socket (the daemon is another module)."""

    def __init__(self):
        self.commands: list[str] = []
        self.state = "idle"

    def __call__(self, request: dict) -> dict:
        self.commands.append(request["cmd"])
        if request["cmd"] == "start":
            self.state = "recording"
        elif request["cmd"] == "stop":
            self.state = "idle"
        return {"ok": True, "state": self.state, "session_id": 7 if self.state == "recording"
                else None, "elapsed_s": 75.0 if self.state == "recording" else 0.0,
                "free_bytes": 10**9, "free_hours": 8.0, "error": None, "bookmarks": 0}


@pytest.fixture
def recorder(cfg):
    fake = FakeRecorder()
    server = ControlServer(cfg.paths.recorder_socket, fake)
    server.start()
    yield fake
    server.close()


def test_device_page_without_a_recorder_running(user, svc, clock):
    seed(svc, clock, started=START, state=State.RECORDED)
    seed(svc, clock, started=START, state=State.FAILED, error="Model file missing: reinstall")
    page = user.get("/device").text
    assert 'data-state="unavailable">Not running<' in page
    assert "the recorder is not running" in page.lower()
    assert 'data-testid="sessions-waiting">1<' in page
    assert "Model file missing: reinstall" in page
    assert 'data-testid="model">base.en<' in page
    assert 'data-testid="device-lock">Unlocked<' in page
    hours = float(page.split('data-testid="free-hours">')[1].split("<")[0])
    assert hours == round(status.free_hours(svc.cfg, svc.storage.free_bytes()), 1)


def test_starting_without_a_recorder_says_so(user, svc):
    response = user.submit("/device/recorder", {"cmd": "start"}, page="/device")
    assert response.status_code == 302
    page = user.get("/device").text
    assert "did not start" in page and "not running" in page
    entry = svc.audit.entries(limit=1)[0]
    assert (entry.action, entry.detail) == ("recorder.start", "refused")


def test_start_mark_stop_through_the_control_socket(user, svc, recorder):
    for cmd in ("start", "mark", "stop"):
        assert user.submit("/device/recorder", {"cmd": cmd}, page="/device").status_code == 302
    assert [c for c in recorder.commands if c != "status"] == ["start", "mark", "stop"]
    assert {"recorder.start", "recorder.mark", "recorder.stop"} <= set(actions(svc))
    assert user.submit("/device/recorder", {"cmd": "reboot"}, page="/device").status_code == 302
    assert "reboot" not in recorder.commands


def test_live_status_reports_the_recording(user, recorder):
    user.submit("/device/recorder", {"cmd": "start"}, page="/device")
    live = user.get("/device/status.json").get_json()
    assert live["recorder"]["state"] == "recording"
    assert live["recorder"]["elapsed"] == "1:15"
    assert live["locked"] is False and live["free_hours"] >= 0


def test_healthz_needs_no_login_and_holds_no_clinical_data(browser, svc, clock, recovery):
    seed(svc, clock, started=START, state=State.RECORDED, label="SECRET LABEL")
    response = browser.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["db"] == "ok" and body["setup_done"] is True
    assert body["sessions_waiting"] == 1 and body["recorder"] == "unavailable"
    assert body["locked"] is False and body["disk_free_bytes"] > 0
    assert "SECRET" not in json.dumps(body)
    assert Browser(browser.client, "203.0.113.9").get("/healthz").status_code == 403


def test_healthz_before_setup(tmp_path):
    app = create_app(make_config(tmp_path), now=FakeClock())
    body = Browser(app.test_client()).get("/healthz").get_json()
    assert body["setup_done"] is False and body["locked"] is True


def test_audit_page_shows_entries_and_the_verification(user, svc):
    page = user.get("/audit").text
    assert 'data-ok="true"' in page and "login.success" in page
    with svc.storage.connect() as conn:
        conn.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 1")
    page = user.get("/audit").text
    assert 'data-ok="false"' in page and "entry 1 was altered" in page


def test_next_run_is_tonight_or_tomorrow():
    evening = datetime(2024, 5, 6, 20, 0).astimezone()
    run = status.next_run("00:30", evening)
    assert (run.hour, run.minute) == (0, 30) and run > evening
    assert (run - evening).total_seconds() < 24 * 3600
    early = datetime(2024, 5, 6, 0, 10).astimezone()
    assert status.next_run("00:30", early).date() == early.date()


def test_free_hours_count_audio_bytes_and_keep_the_stop_margin(tmp_path):
    mono = make_config(tmp_path, recorder={"stop_free_mb": 100})
    hour = 16000 * 2 * 3600
    assert status.free_hours(mono, 100 * 1024 * 1024 + 3 * hour) == pytest.approx(3.0)
    stereo = make_config(tmp_path, audio={"channels": 2}, recorder={"stop_free_mb": 100})
    assert status.free_hours(stereo, 100 * 1024 * 1024 + 3 * hour) == pytest.approx(1.5)
    assert status.free_hours(mono, 10) == 0


def test_service_probe_never_fails_the_page():
    states = status.ServiceProbe().states()
    assert {s.unit for s in states} == set(status.UNITS)
    assert all(s.state for s in states)

