"""First-run setup, login (which unlocks), lockout, idle logoff, logout, lock, users."""

from __future__ import annotations

import re

import pytest

from appliance.access.keys import KeyStore
from appliance.access.setup_code import SetupCodes
from tests.conftest import PASSPHRASE, USER
from tests.support.web_support import (  # noqa: F401 - fixtures
    Browser, actions, app, browser, clock, recovery, svc, user)

NEW_PASS = "a different long passphrase"


def _setup(browser: Browser, code: str, username: str = USER, passphrase: str = PASSPHRASE,
           repeat: str | None = None):
    return browser.post("/setup", {
        "csrf_token": browser.token("/setup"), "code": code, "username": username,
        "passphrase": passphrase, "repeat": passphrase if repeat is None else repeat})


# --- first run ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/sessions", "/sessions/1", "/search?q=x", "/device",
                                  "/users", "/audit", "/login", "/account/passphrase"])
def test_without_an_account_every_page_leads_to_setup(browser, path):
    response = browser.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/setup")


def test_setup_refuses_a_wrong_code_and_creates_nothing(browser, svc):
    SetupCodes(svc.storage).issue()
    response = _setup(browser, "AAAA-BBBB-CCCC")
    assert response.status_code == 403
    assert "setup code is not right" in response.text
    assert not svc.keys.is_initialized()
    assert "setup.code_rejected" in actions(svc)


def test_setup_without_any_issued_code_is_refused(browser, svc):
    assert _setup(browser, "").status_code == 403
    assert not svc.keys.is_initialized()


def test_setup_code_works_once_and_shows_a_working_recovery_key(browser, svc, cfg):
    code = SetupCodes(svc.storage).issue()
    response = _setup(browser, code.lower())  # typed on a phone, in lower case
    assert response.status_code == 200
    recovery = re.search(r'data-testid="recovery-key"[^>]*>([^<]+)<', response.text).group(1)
    assert response.headers["Cache-Control"] == "no-store"
    # The key shown really opens this device's practice key.
    keys = KeyStore(svc.storage, cfg.paths.runtime_dir, work_factor=10)
    keys.lock()
    keys.unlock_with_recovery(recovery)
    assert keys.is_unlocked()
    # The code is spent: a second setup goes nowhere, and the person is logged in.
    assert not SetupCodes(svc.storage).check(code)
    assert browser.get("/setup").headers["Location"].endswith("/login")
    assert browser.get("/sessions").status_code == 200
    assert {"setup.done", "login.success"} <= set(actions(svc))


def test_the_recovery_key_is_shown_only_once(browser, svc):
    code = SetupCodes(svc.storage).issue()
    recovery = re.search(r"AGE-SECRET-KEY-1[0-9A-Z]+", _setup(browser, code).text).group(0)
    confirm = browser.submit("/setup/confirm", {"saved": "yes"}, page="/sessions")
    assert confirm.status_code == 302
    for path in ["/sessions", "/device", "/users", "/audit", "/setup", "/login"]:
        assert recovery not in browser.get(path, follow_redirects=True).text
    assert "setup.recovery_saved" in actions(svc)
    # Nothing on disk holds it either.
    for path in svc.storage.data_dir.rglob("*"):
        if path.is_file():
            assert recovery.encode() not in path.read_bytes(), path


def test_expired_setup_code_is_refused(browser, svc, clock):
    code = SetupCodes(svc.storage).issue()
    clock.advance(days=8)
    assert _setup(browser, code).status_code == 403
    assert not svc.keys.is_initialized()


def test_setup_keeps_the_code_valid_when_the_passphrase_is_unacceptable(browser, svc):
    code = SetupCodes(svc.storage).issue()
    short = _setup(browser, code, passphrase="short", repeat="short")
    assert short.status_code == 400 and "at least 10 characters" in short.text
    differ = _setup(browser, code, repeat="something else entirely")
    assert differ.status_code == 400 and "differ" in differ.text
    bad_name = _setup(browser, code, username="<script>")
    assert bad_name.status_code == 400 and 'value="&lt;script&gt;"' in bad_name.text
    assert not svc.keys.is_initialized()
    assert _setup(browser, code).status_code == 200


# --- login ---------------------------------------------------------------------------------


def test_login_redirects_to_the_page_asked_for_and_is_audited(browser, recovery, svc):
    page = browser.get("/device")
    assert page.status_code == 302 and "/login?next=/device" in page.headers["Location"]
    response = browser.post("/login", {
        "username": USER, "passphrase": PASSPHRASE, "next": "/device",
        "csrf_token": browser.token("/login")})
    assert response.headers["Location"].endswith("/device")
    entry = svc.audit.entries(limit=1)[0]
    assert (entry.actor, entry.action, entry.source) == (USER, "login.success", "192.168.1.20")


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "\\\\evil"])
def test_login_never_redirects_off_site(browser, recovery, target):
    response = browser.post("/login", {"username": USER, "passphrase": PASSPHRASE,
                                       "next": target, "csrf_token": browser.token("/login")})
    assert response.headers["Location"].endswith("/sessions")


def test_login_unlocks_a_locked_device(browser, recovery, svc):
    svc.keys.lock()
    assert browser.login().status_code == 302
    assert svc.keys.is_unlocked()
    assert "device.unlock" in actions(svc)


def test_wrong_passphrase_is_refused_and_audited_without_the_password(browser, recovery, svc):
    response = browser.login(passphrase="not the passphrase at all")
    assert response.status_code == 401
    assert "do not match" in response.text
    assert browser.get("/sessions").status_code == 302
    entry = svc.audit.entries(limit=1)[0]
    assert entry.action == "login.failure" and entry.detail == USER
    assert all("not the passphrase" not in (e.detail or "") for e in svc.audit.entries())


def test_failures_bring_a_growing_wait_without_sleeping(browser, recovery, clock):
    for _ in range(3):
        assert browser.login(passphrase="wrong passphrase!").status_code == 401
    # The fourth attempt comes too soon: refused before the password is checked.
    early = browser.login()
    assert early.status_code == 429
    assert "wait" in early.text and early.headers["Retry-After"]
    clock.advance(seconds=int(early.headers["Retry-After"]))
    assert browser.login().status_code == 302


def test_account_is_locked_out_whatever_address_the_attempts_come_from(app, recovery, clock, cfg):
    for n in range(cfg.security.max_failed_logins):
        attempt = Browser(app.test_client(), f"10.0.0.{n + 1}").login(passphrase="wrong one!!")
        assert attempt.status_code in (401, 429)
        clock.advance(seconds=40)
    fresh = Browser(app.test_client(), "10.0.9.9")
    locked = fresh.login()
    assert locked.status_code == 429 and "Too many failed logins" in locked.text
    clock.advance(minutes=cfg.security.lockout_minutes)
    assert fresh.login().status_code == 302


def test_an_address_is_locked_out_whatever_account_it_tries(app, svc, recovery, clock, cfg):
    svc.keys.add_user("dr.chen", NEW_PASS, svc.keys.identity())
    guesser = Browser(app.test_client(), "192.168.1.66")
    for n in range(cfg.security.max_failed_logins):
        guesser.login(username=f"guess{n}", passphrase="wrong one!!")
        clock.advance(seconds=40)
    assert guesser.login("dr.chen", NEW_PASS).status_code == 429
    assert "login.lockout" in actions(svc)
    # The clinician at another desk is not affected.
    assert Browser(app.test_client(), "192.168.1.67").login("dr.chen", NEW_PASS).status_code == 302


def test_success_clears_the_failure_count(browser, recovery, clock):
    for _ in range(2):
        browser.login(passphrase="wrong passphrase!")
    assert browser.login().status_code == 302
    browser.post("/logout", {"csrf_token": browser.token("/sessions")})
    for _ in range(2):
        assert browser.login(passphrase="wrong passphrase!").status_code == 401
    assert browser.login().status_code == 302  # no wait: the earlier failures were forgiven


# --- login lifetime ---------------------------------------------------------------------------


def test_idle_logoff_after_the_configured_minutes(user, clock, cfg):
    clock.advance(minutes=cfg.web.idle_minutes - 1)
    assert user.get("/sessions").status_code == 200
    clock.advance(minutes=cfg.web.idle_minutes - 1)  # active a minute before: still in
    assert user.get("/sessions").status_code == 200
    clock.advance(minutes=cfg.web.idle_minutes)
    response = user.get("/sessions")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    login_page = user.get(response.headers["Location"])
    assert f"logged out after {cfg.web.idle_minutes} minutes" in login_page.text


def test_background_polling_does_not_keep_a_login_alive(user, clock, cfg):
    for _ in range(cfg.web.idle_minutes):
        clock.advance(minutes=1)
        polled = user.get("/device/status.json")
    assert polled.status_code == 401
    assert user.get("/sessions").status_code == 302


def test_typing_keeps_a_login_alive_through_keepalive(user, clock, cfg):
    token = user.token("/sessions")
    for _ in range(3):
        clock.advance(minutes=cfg.web.idle_minutes - 2)
        assert user.post("/keepalive", headers={"X-CSRFToken": token}).status_code == 204
    assert user.get("/sessions").status_code == 200


def test_absolute_lifetime_ends_even_an_active_login(user, clock, cfg):
    token = user.token("/sessions")
    for _ in range(cfg.web.session_hours * 5 - 1):
        clock.advance(minutes=12)
        assert user.post("/keepalive", headers={"X-CSRFToken": token}).status_code == 204
    clock.advance(minutes=12)
    response = user.get("/sessions", follow_redirects=True)
    assert f"at most {cfg.web.session_hours} hours" in response.text


def test_logout_ends_the_login_everywhere_the_cookie_was_copied(user, app, svc):
    stolen = Browser(app.test_client())
    stolen.client.set_cookie("__Host-holdnote", user.client.get_cookie("__Host-holdnote").value,
                             domain="localhost")
    assert stolen.get("/sessions").status_code == 200
    response = user.post("/logout", {"csrf_token": user.token("/sessions")})
    assert response.headers["Location"].endswith("/login")
    assert stolen.get("/sessions").status_code == 302
    assert svc.keys.is_unlocked(), "logout keeps the device unlocked for the night run"
    assert "logout" in actions(svc)


def test_lock_device_forgets_the_key_and_logs_everyone_out(user, app, svc):
    other = Browser(app.test_client(), "192.168.1.30")
    other.login()
    response = user.post("/lock", {"csrf_token": user.token("/sessions")})
    assert response.status_code == 302
    assert not svc.keys.is_unlocked()
    assert other.get("/sessions").status_code == 302
    assert "device.lock" in actions(svc)
    assert user.login().status_code == 302 and svc.keys.is_unlocked()


def test_a_device_locked_underneath_a_login_asks_to_log_in_again(user, svc):
    svc.keys.lock()  # as after a reboot: the login row survives, the key does not
    response = user.get("/sessions")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "device is locked" in user.get(response.headers["Location"]).text
    assert user.login().status_code == 302
    assert user.get("/sessions").status_code == 200


def test_session_cookie_is_secure_httponly_samesite_strict(browser, recovery):
    response = browser.login()
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-holdnote=")
    for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert flag in cookie
    assert "Domain" not in cookie


def test_login_rotates_the_cookie_session(browser, recovery):
    before = browser.token("/login")
    browser.login()
    assert browser.token("/sessions") != before


# --- users -------------------------------------------------------------------------------------


def test_add_a_clinician_who_can_then_log_in_and_unlock(user, app, svc):
    response = user.submit("/users/add", {"username": "dr.chen", "passphrase": NEW_PASS,
                                          "repeat": NEW_PASS}, page="/users")
    assert response.status_code == 302
    assert "dr.chen" in user.get("/users").text
    svc.keys.lock()
    assert Browser(app.test_client(), "192.168.1.31").login("dr.chen", NEW_PASS).status_code == 302
    assert svc.keys.is_unlocked()
    assert "user.add" in actions(svc)


@pytest.mark.parametrize("name,passphrase,repeat,message", [
    ("dr chen", NEW_PASS, NEW_PASS, "user name"),
    ("dr.chen", "short", "short", "at least 10"),
    ("dr.chen", NEW_PASS, NEW_PASS + "x", "differ"),
    (USER, NEW_PASS, NEW_PASS, "already exists"),
])
def test_adding_a_user_refuses_bad_input(user, name, passphrase, repeat, message):
    response = user.submit("/users/add", {"username": name, "passphrase": passphrase,
                                          "repeat": repeat}, page="/users")
    assert response.status_code in (400, 409)
    assert message in response.text


def test_remove_a_clinician_ends_their_logins(user, app, svc):
    svc.keys.add_user("dr.chen", NEW_PASS, svc.keys.identity())
    chen = Browser(app.test_client(), "192.168.1.31")
    chen.login("dr.chen", NEW_PASS)
    response = user.submit("/users/dr.chen/remove", page="/users")
    assert response.status_code == 302
    assert chen.get("/sessions").status_code == 302
    assert chen.login("dr.chen", NEW_PASS).status_code == 401
    assert "user.remove" in actions(svc)


def test_you_cannot_remove_yourself_and_unknown_users_are_404(user):
    assert user.submit(f"/users/{USER}/remove", page="/users").status_code == 409
    assert user.submit("/users/nobody/remove", page="/users").status_code == 404


def test_change_passphrase(user, app, svc):
    wrong = user.submit("/account/passphrase", {"current": "not my passphrase",
                                                "new": NEW_PASS, "repeat": NEW_PASS},
                        page="/account/passphrase")
    assert wrong.status_code == 403
    ok = user.submit("/account/passphrase", {"current": PASSPHRASE, "new": NEW_PASS,
                                             "repeat": NEW_PASS}, page="/account/passphrase")
    assert ok.status_code == 302
    svc.keys.lock()
    fresh = Browser(app.test_client(), "192.168.1.32")
    assert fresh.login(passphrase=PASSPHRASE).status_code == 401
    assert fresh.login(passphrase=NEW_PASS).status_code == 302
    assert svc.keys.is_unlocked(), "the re-sealed slot opens with the new passphrase"
    assert "user.passphrase" in actions(svc)
