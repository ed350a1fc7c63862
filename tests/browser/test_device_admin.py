"""The device page (live recorder state, controls), the audit log and the users page."""

from __future__ import annotations

import threading

import pytest

from appliance.recorder.control import ControlServer
from appliance.store.db import PENDING_STATES
from tests.browser.helpers import login, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIVE_UPDATE_MS = 15_000  # device.js polls every few seconds


class StandInRecorder:
    """Answers the recorder's control protocol (no microphone or GPIO here).

    Only the daemon behind the socket is a stand-in: the socket server is the
    real :class:`appliance.recorder.control.ControlServer` the recorder uses.
    """

    def __init__(self):
        self.state, self.bookmarks, self.commands = "idle", 0, []
        self.lock = threading.Lock()

    def __call__(self, request: dict) -> dict:
        with self.lock:
            command = request.get("cmd")
            if command != "status":
                self.commands.append(command)
            if command == "start":
                self.state, self.bookmarks = "recording", 0
            elif command == "stop":
                self.state = "idle"
            elif command == "mark":
                if self.state != "recording":
                    return {"ok": False, "state": self.state, "error": "not recording"}
                self.bookmarks += 1
            return {"ok": True, "state": self.state, "session_id": 999 if self.state ==
                    "recording" else None, "elapsed_s": 75.0 if self.state == "recording"
                    else None, "bookmarks": self.bookmarks, "error": None}


@pytest.fixture
def start_recorder(device):
    """Starts a control socket at the configured path, answered by :class:`StandInRecorder`."""
    servers = []

    def start() -> StandInRecorder:
        handler = StandInRecorder()
        servers.append(ControlServer(device.server.cfg.paths.recorder_socket, handler))
        servers[-1].start()
        return handler

    yield start
    for server in servers:
        server.close()


def test_device_page_without_a_recorder(logged_in, device, tls_cert):
    page = logged_in
    page.get_by_test_id("nav-device").click()
    page.wait_for_load_state()
    assert "not running" in page.get_by_test_id("recorder-error").inner_text()
    assert float(page.get_by_test_id("free-hours").inner_text()) > 0
    waiting = device.storage.count_sessions(tuple(str(s) for s in PENDING_STATES))
    assert int(page.get_by_test_id("sessions-waiting").inner_text()) == waiting
    assert page.get_by_test_id("device-lock").inner_text() == "Unlocked"
    assert page.get_by_test_id("cert-fingerprint").inner_text().strip() == tls_cert.fingerprint
    assert page.get_by_test_id("model").inner_text().strip()
    shot(page, "device-desktop")
    # Nothing to start while the recorder is down, and the page says why.
    assert page.get_by_test_id("recorder-start").is_disabled()
    assert "unavailable" in page.get_by_test_id("start-help").inner_text()
    checks = page.get_by_test_id("problem").evaluate_all(
        "items => items.map(item => item.dataset.check)")
    assert "recorder" in checks
    assert page.get_by_test_id("no-problems").count() == 0


def test_device_page_shows_the_recorder_live_and_controls_it(logged_in, start_recorder):
    page = logged_in
    page.goto("/device")
    assert "not running" in page.get_by_test_id("recorder-error").inner_text()
    # The recorder comes up after the page was loaded; the page notices by
    # itself, without a reload.
    recorder = start_recorder()
    start, stop = page.get_by_test_id("recorder-start"), page.get_by_test_id("recorder-stop")
    assert start.is_disabled() and stop.is_disabled()
    page.wait_for_function(
        "() => document.querySelector('[data-live=recorder-dot]').classList.contains('rec-idle')",
        timeout=LIVE_UPDATE_MS)
    assert page.get_by_test_id("recorder-error").inner_text().strip() == ""
    # The buttons followed too: Start is the main button, Stop has nothing to stop.
    assert start.is_enabled() and "btn-primary" in start.get_attribute("class")
    assert stop.is_disabled()

    start.click()
    page.wait_for_load_state()
    assert "Recording started" in page.get_by_test_id("flash").inner_text()
    assert page.get_by_test_id("recorder-state").get_attribute("data-state") == "recording"
    assert page.get_by_test_id("recorder-state").inner_text() == "Recording"
    # While recording, Stop is the main button and Start is off.
    assert stop.is_enabled() and "btn-primary" in stop.get_attribute("class")
    assert start.is_disabled() and "btn-primary" not in start.get_attribute("class")
    page.get_by_test_id("recorder-mark").click()
    page.wait_for_load_state()
    assert "marked" in page.get_by_test_id("flash").inner_text()
    shot(page, "device-recording-desktop")
    page.get_by_test_id("recorder-stop").click()
    page.wait_for_load_state()
    assert "Recording stopped" in page.get_by_test_id("flash").inner_text()
    assert recorder.commands == ["start", "mark", "stop"]
    assert recorder.bookmarks == 1


def test_audit_log_page_verifies_the_chain(logged_in, device):
    page = logged_in
    page.get_by_test_id("nav-audit").click()
    page.wait_for_load_state()
    verdict = page.get_by_test_id("audit-verify")
    assert verdict.get_attribute("data-ok") == "true"
    assert "intact" in verdict.inner_text()
    actions = page.get_by_test_id("audit-table").inner_text()
    assert "login.success" in actions
    shot(page, "audit-desktop")


def test_add_a_clinician_who_changes_passphrase_then_remove(make_page, device):
    admin = login(make_page())
    admin.get_by_test_id("nav-users").click()
    admin.get_by_test_id("add-username").fill("dr.lee")
    admin.get_by_test_id("add-passphrase").fill("first passphrase 123")
    admin.get_by_test_id("add-repeat").fill("first passphrase 123")
    admin.get_by_test_id("add-user-submit").click()
    admin.wait_for_load_state()
    assert admin.locator("[data-testid=user-row][data-username='dr.lee']").count() == 1
    shot(admin, "users-desktop")

    # The new clinician logs in and picks their own passphrase.
    lee = login(make_page(), "dr.lee", "first passphrase 123")
    assert lee.get_by_test_id("current-user").inner_text() == "dr.lee"
    lee.goto("/account/passphrase")
    lee.get_by_test_id("current-passphrase").fill("first passphrase 123")
    lee.get_by_test_id("new-passphrase").fill("lee's own secret words")
    lee.get_by_test_id("repeat-passphrase").fill("lee's own secret words")
    lee.get_by_test_id("passphrase-submit").click()
    lee.wait_for_load_state()
    assert "Passphrase changed" in lee.get_by_test_id("flash").inner_text()
    assert device.keys.verify_password("dr.lee", "lee's own secret words")

    # Removing the account ends its login at once.
    admin.reload()
    row = admin.locator("[data-testid=user-row][data-username='dr.lee']")
    row.get_by_test_id("remove-user").click()
    admin.wait_for_load_state()
    assert admin.locator("[data-testid=user-row][data-username='dr.lee']").count() == 0
    lee.goto("/sessions")
    assert "/login" in lee.url
    login(lee, "dr.lee", "lee's own secret words")
    assert "do not match" in lee.get_by_test_id("form-error").inner_text()
