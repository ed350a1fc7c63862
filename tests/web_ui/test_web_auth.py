"""First-run setup, login (which unlocks), lockout, idle logoff, logout, lock, users."""

from __future__ import annotations

import re
import threading

import pytest

from appliance.access import failures
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


def _wrong_until_locked(guesser: Browser, cfg, clock, username: str = USER) -> None:
    for _ in range(cfg.security.max_failed_logins):
        assert guesser.login(username, "wrong one!!").status_code == 401
        clock.advance(seconds=40)


def test_an_account_guessed_from_new_computers_is_locked_there_not_at_its_owners(
        app, recovery, clock, cfg, svc):
    owner = Browser(app.test_client(), "192.168.1.20")
    assert owner.login().status_code == 302  # the owner's own browser, used before
    owner.post("/logout", {"csrf_token": owner.token("/sessions")})
    for n in range(cfg.security.max_failed_logins):
        Browser(app.test_client(), f"10.0.0.{n + 1}").login(passphrase="wrong one!!")
        clock.advance(seconds=40)
    locked = Browser(app.test_client(), "10.0.9.9").login()
    assert locked.status_code == 429 and locked.headers["Retry-After"]
    assert "not logged in from before" in locked.text
    assert "login.lockout" in actions(svc)
    # The clinician at their own computer is not locked out by the guesser.
    assert owner.login().status_code == 302
    clock.advance(minutes=cfg.security.lockout_minutes)
    assert Browser(app.test_client(), "10.0.9.9").login().status_code == 302


def test_guessing_one_account_does_not_lock_a_colleague_out_of_that_computer(app, svc, recovery,
                                                                             clock, cfg):
    svc.keys.add_user("dr.chen", NEW_PASS, svc.keys.identity())
    shared = Browser(app.test_client(), "192.168.1.66")
    _wrong_until_locked(shared, cfg, clock, USER)
    assert shared.login(USER, "wrong one!!").status_code == 429
    # Dr. Chen, at the same computer, types the right passphrase and is let in.
    assert shared.login("dr.chen", NEW_PASS).status_code == 302


def test_unknown_names_lock_the_address_but_not_real_accounts(app, svc, recovery, clock, cfg):
    svc.keys.add_user("dr.chen", NEW_PASS, svc.keys.identity())
    guesser = Browser(app.test_client(), "192.168.1.66")
    for n in range(cfg.security.max_failed_logins):
        guesser.login(username=f"guess{n}", passphrase="wrong one!!")
        clock.advance(seconds=40)
    refused = guesser.login("guess99", "wrong one!!")
    assert refused.status_code == 429 and "from this computer" in refused.text
    assert guesser.login("dr.chen", NEW_PASS).status_code == 302


def test_concurrent_wrong_logins_get_no_more_checks_than_the_rule_allows(app, svc, recovery):
    """30 real threads at once: the check and the count are one transaction."""
    start = threading.Barrier(30)
    statuses: list[int] = []

    def guess(n: int) -> None:
        browser = Browser(app.test_client(), f"10.0.1.{n + 1}")
        token = browser.token("/login")
        start.wait()
        statuses.append(browser.post("/login", {
            "username": USER, "passphrase": f"wrong guess {n}", "csrf_token": token}).status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The clock stands still: the free failures are checked, everything else waits.
    assert statuses.count(401) == failures.FREE_FAILURES + 1
    assert statuses.count(429) == 30 - statuses.count(401)


def test_a_one_second_wait_does_not_pass_after_a_third_of_a_second(browser, recovery, clock):
    clock.advance(seconds=0.7)
    for _ in range(failures.FREE_FAILURES + 1):
        assert browser.login(passphrase="wrong passphrase!").status_code == 401
    clock.advance(seconds=0.3)  # into the next whole second, 0.3 s after the failure
    assert browser.login().status_code == 429
    clock.advance(seconds=0.7)
    assert browser.login().status_code == 302


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


@pytest.mark.parametrize("name", ["__Host-holdnote=", "__Host-holdnote-device="])
def test_cookies_are_secure_httponly_samesite_strict(browser, recovery, name):
    response = browser.login()
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(name))
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


def _change(user: Browser, current: str):
    return user.submit("/account/passphrase", {"current": current, "new": NEW_PASS,
                                               "repeat": NEW_PASS}, page="/account/passphrase")


def test_wrong_current_passphrases_get_429_not_a_sleeping_worker(user, svc):
    for _ in range(failures.FREE_FAILURES + 1):
        assert _change(user, "not my passphrase").status_code == 403
    # The next one is refused at once, before the passphrase is tried: even the right one.
    early = _change(user, PASSPHRASE)
    assert early.status_code == 429 and early.headers["Retry-After"] == "1"
    assert "wait 1 second" in early.text
    assert svc.keys.verify_password(USER, PASSPHRASE), "nothing was changed"


def test_the_passphrase_form_and_the_login_share_one_counter(user, app, clock):
    for _ in range(failures.FREE_FAILURES + 1):
        _change(user, "not my passphrase")
    elsewhere = Browser(app.test_client(), "192.168.1.40")
    # Same browser, same row: logging in again from here must wait as well.
    user.post("/logout", {"csrf_token": user.token("/sessions")})
    assert user.login().status_code == 429
    clock.advance(seconds=1)
    assert user.login().status_code == 302
    assert elsewhere.login().status_code == 302


def test_concurrent_setups_make_one_account_and_tell_the_others(app, svc):
    """Four people finish setup at once (real threads, real SQLite): one account, no 500."""
    code = SetupCodes(svc.storage).issue()
    start = threading.Barrier(4)
    responses: dict[str, object] = {}

    def set_up(name: str) -> None:
        browser = Browser(app.test_client(), "192.168.1.30")
        token = browser.token("/setup")
        start.wait()
        responses[name] = browser.post("/setup", {
            "csrf_token": token, "code": code, "username": name, "passphrase": PASSPHRASE,
            "repeat": PASSPHRASE}, follow_redirects=True)

    names = ["dr.a", "dr.b", "dr.c", "dr.d"]
    threads = [threading.Thread(target=set_up, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # A loser is told someone else set the device up; or, when three or more attempts from
    # one address overlap before the first is settled, the failure guard asks it to wait a
    # second (it lets through only as many concurrent attempts as its rule allows). Never a 500.
    assert all(r.status_code in (200, 429) for r in responses.values())
    winners = [n for n, r in responses.items() if "recovery-key" in r.text]
    assert len(winners) == 1
    assert [u.username for u in svc.keys.users()] == winners
    for name in set(names) - set(winners):
        told = responses[name].text
        assert ("set up a moment ago by someone else" in told if responses[name].status_code == 200
                else "before trying again" in told)


def test_idle_logoffs_and_expired_logins_are_audited_once(user, app, svc, clock, cfg):
    copy = Browser(app.test_client())
    copy.client.set_cookie("__Host-holdnote", user.client.get_cookie("__Host-holdnote").value,
                           domain="localhost")
    clock.advance(minutes=cfg.web.idle_minutes)
    assert user.get("/sessions").status_code == 302
    assert copy.get("/sessions").status_code == 302
    idle = [e for e in svc.audit.entries() if e.action == "logout.idle"]
    assert [(e.actor, e.source) for e in idle] == [(USER, "192.168.1.20")]
