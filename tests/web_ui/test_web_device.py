"""The device page, live status, recorder control, /healthz and the audit log page."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from appliance import config as config_mod
from appliance.recorder.control import ControlServer
from appliance.store.db import State
from tests.conftest import make_config
from tests.support.web_support import (  # noqa: F401 - fixtures
    START, Browser, FakeClock, actions, app, browser, clock, recovery, seed, svc, user)
from web_ui import create_app
from web_ui.views import device, health, status
from web_ui.views.damage import current_damage


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
    body = response.get_json()
    assert body["db"] == "ok" and body["setup_done"] is True
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



# --- health: /healthz and the Device page tell the truth ----------------------------------


@pytest.fixture
def healthy(monkeypatch, svc):
    """Every probe outside the app says all is well: clock synchronised, units active, disk."""
    monkeypatch.setattr(health.CLOCK, "synchronised", lambda: True)
    monkeypatch.setattr(health.SERVICES, "states", lambda: [
        status.ServiceState(unit, "active") for unit in status.UNITS])
    monkeypatch.setattr(svc.storage, "free_bytes", lambda: 50 * 10**9)


def _checks(response) -> list[str]:
    return [p["check"] for p in response.get_json()["problems"]]


def test_healthz_answers_503_with_the_reason_while_the_recorder_is_down(user, healthy):
    response = user.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "error" and _checks(response) == ["recorder"]
    assert "holdnote-recorder" in body["problems"][0]["message"]


def test_healthz_is_ok_when_nothing_needs_it(user, healthy, recorder):
    response = user.get("/healthz")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ok" and body["problems"] == []
    assert body["recorder"] == "idle" and body["clock_synchronised"] is True


def test_healthz_reports_a_recorder_in_error(user, healthy, recorder):
    recorder.state = "error"
    response = user.get("/healthz")
    assert response.status_code == 503 and _checks(response) == ["recorder"]


def test_healthz_reports_a_failed_night_job(user, healthy, recorder, monkeypatch):
    monkeypatch.setattr(health.SERVICES, "states", lambda: [
        status.ServiceState(unit, "failed" if unit == health.TRANSCRIBE_UNIT else "active")
        for unit in status.UNITS])
    response = user.get("/healthz")
    assert response.status_code == 503 and _checks(response) == ["night_job"]
    assert "holdnote-transcribe" in response.get_json()["problems"][0]["message"]


def test_healthz_reports_sessions_the_night_job_could_not_transcribe(user, healthy, recorder,
                                                                      svc, clock):
    seed(svc, clock, started=START, state=State.FAILED, error="Model file missing: reinstall")
    response = user.get("/healthz")
    assert response.status_code == 503 and _checks(response) == ["night_job"]
    assert "1 session could not" in response.get_json()["problems"][0]["message"]


def test_healthz_reports_a_nearly_full_disk(user, healthy, recorder, svc, monkeypatch):
    nearly_full = svc.cfg.recorder.stop_free_mb * 1024 * 1024 + status.bytes_per_hour(svc.cfg)
    monkeypatch.setattr(svc.storage, "free_bytes", lambda: nearly_full)
    response = user.get("/healthz")
    assert response.status_code == 503 and _checks(response) == ["disk"]
    assert "1.0 h of recording" in response.get_json()["problems"][0]["message"]


def test_healthz_reports_an_unsynchronised_clock(user, healthy, recorder, monkeypatch):
    monkeypatch.setattr(health.CLOCK, "synchronised", lambda: False)
    response = user.get("/healthz")
    assert response.status_code == 503 and _checks(response) == ["clock"]
    assert response.get_json()["clock_synchronised"] is False


def test_an_unknown_clock_is_shown_but_not_a_failure(user, healthy, recorder, monkeypatch):
    monkeypatch.setattr(health.CLOCK, "synchronised", lambda: None)
    assert user.get("/healthz").status_code == 200
    assert "Not checked" in user.get("/device").text


def test_healthz_reports_a_damaged_stored_value(user, healthy, recorder, svc, clock):
    sid = seed(svc, clock, started=START, state=State.DRAFT, label="Client A")
    with svc.storage.connect() as conn:
        blob = bytearray(conn.execute("SELECT label_enc FROM sessions WHERE id = ?",
                                      (sid,)).fetchone()[0])
        blob[-20] ^= 0x01
        conn.execute("UPDATE sessions SET label_enc = ? WHERE id = ?", (bytes(blob), sid))
    user.get("/sessions")  # reading the list finds the damage
    assert current_damage(svc.storage), "the sessions list did not record the damage"
    response = user.get("/healthz")
    assert response.status_code == 503 and _checks(response) == ["damaged"]
    assert "Client A" not in response.get_data(as_text=True)


def test_the_device_page_lists_what_healthz_reports(user, healthy, monkeypatch):
    monkeypatch.setattr(health.CLOCK, "synchronised", lambda: False)
    page = user.get("/device").text
    reported = _checks(user.get("/healthz"))
    assert reported == ["recorder", "clock"]
    listed = [line.split('data-check="')[1].split('"')[0]
              for line in page.splitlines() if 'data-testid="problem"' in line]
    assert listed == reported
    assert 'data-testid="no-problems"' not in page


def _button(page: str, cmd: str) -> str:
    return page.split(f'data-testid="recorder-{cmd}"')[0].rsplit("<button", 1)[1] + \
        page.split(f'data-testid="recorder-{cmd}"')[1].split(">", 1)[0]


@pytest.mark.parametrize("state,enabled,primary", [
    ("unavailable", set(), None),
    ("idle", {"start"}, "start"),
    ("recording", {"stop", "mark"}, "stop"),
    ("stopping", set(), None),
])
def test_the_recorder_buttons_follow_its_state(user, request, state, enabled, primary):
    if state != "unavailable":  # "unavailable": no recorder answers the control socket
        request.getfixturevalue("recorder").state = state
    page = user.get("/device").text
    live = user.get("/device/status.json").get_json()["buttons"]
    for cmd in ("start", "stop", "mark"):
        button = _button(page, cmd)
        assert ("disabled" not in button) is (cmd in enabled), (cmd, button)
        assert ("btn-primary" in button) is (cmd == primary), (cmd, button)
        assert live[cmd] == {"enabled": cmd in enabled, "primary": cmd == primary}
    assert ("unavailable until the recorder is running" in page) is (state == "unavailable")
    assert device.buttons(state) == live


def test_healthz_reports_a_drafting_model_that_cannot_be_used(user, healthy, recorder, svc,
                                                             monkeypatch, tmp_path):
    data = svc.cfg.model_dump(mode="json")
    data["drafting"]["model"] = str(tmp_path / "gone.gguf")
    real = health.problems
    monkeypatch.setattr(health, "problems", lambda cfg, *rest: real(config_mod.from_dict(data), *rest))
    response = user.get("/healthz")
    assert response.status_code == 503 and _checks(response) == ["drafting"]
    message = response.get_json()["problems"][0]["message"]
    assert "gone.gguf is missing" in message and "install.sh --llm" in message


def test_healthz_reports_a_damaged_speaker_model(user, healthy, recorder, monkeypatch, tmp_path):
    from appliance.transcription.voice import model as voice_model

    assert user.get("/healthz").status_code == 200
    damaged = tmp_path / "campplus.onnx"
    damaged.write_bytes(voice_model.MODEL_PATH.read_bytes()[:1000])
    monkeypatch.setattr(voice_model, "MODEL_PATH", damaged)
    response = user.get("/healthz")
    assert response.status_code == 503 and _checks(response) == ["speakers"]
    message = response.get_json()["problems"][0]["message"]
    assert "is damaged" in message and "sudo ./install.sh" in message
