"""First run in a real browser: certificate, setup code, first account, recovery key."""

from __future__ import annotations

import re

import pytest

from appliance.access.audit import AuditLog
from appliance.access.keys import KeyStore
from appliance.access.setup_code import SetupCodes
from tests.browser.helpers import shot
from tests.browser.server import served_fingerprint

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NEW_USER = "dr.okafor"
NEW_PASSPHRASE = "quiet river morning tea"


def test_the_served_certificate_is_the_one_init_tls_printed(fresh_device, tls_cert):
    """What a clinician compares in the browser's certificate dialog matches the install output."""
    server = fresh_device.server
    assert tls_cert.fingerprint and tls_cert.fingerprint.count(":") == 31
    assert served_fingerprint(server.host, server.port, server.context) == tls_cert.fingerprint


def _fill_setup(page, code: str) -> None:
    page.get_by_test_id("setup-code").fill(code)
    page.get_by_test_id("setup-username").fill(NEW_USER)
    page.get_by_test_id("setup-passphrase").fill(NEW_PASSPHRASE)
    page.get_by_test_id("setup-repeat").fill(NEW_PASSPHRASE)
    page.get_by_test_id("setup-submit").click()
    page.wait_for_load_state()


def test_first_run_setup_with_the_one_time_code(make_page, fresh_device, tmp_path):
    page = make_page(target=fresh_device)

    # Every page leads to setup while no account exists.
    page.goto("/sessions")
    assert page.url.endswith("/setup")
    shot(page, "setup-desktop")

    # A wrong code is refused with a way forward, and creates nothing.
    _fill_setup(page, "AAAA-BBBB-CCCC")
    assert "setup code" in page.get_by_test_id("form-error").inner_text().lower()
    assert not fresh_device.keys.is_initialized()

    # The right code creates the keys and the account, and shows the recovery key once.
    with page.expect_response(lambda r: r.url.endswith("/setup")
                              and r.request.method == "POST") as answer:
        _fill_setup(page, fresh_device.setup_code)
    # Never kept by the browser, so Back cannot bring it up again.
    assert "no-store" in answer.value.headers["cache-control"]
    key_text = page.get_by_test_id("recovery-key").inner_text().strip()
    assert re.fullmatch(r"AGE-SECRET-KEY-1[0-9A-Z]{58}", key_text), key_text
    shot(page, "setup-recovery-key")

    # The key on screen really opens this practice's data (checked on a copy of
    # the runtime directory, leaving the device's own unlocked state alone).
    spare = KeyStore(fresh_device.storage, tmp_path / "spare-run")
    spare.unlock_with_recovery(key_text)
    assert spare.identity().to_recipient() == fresh_device.keys.recipient()

    # Continuing needs the "I have saved it" confirmation.
    page.get_by_test_id("recovery-continue").click()
    assert page.get_by_test_id("recovery-key").is_visible()
    assert page.evaluate("() => !document.querySelector('[data-testid=recovery-saved]')"
                         ".checkValidity()")
    page.get_by_test_id("recovery-saved").check()
    page.get_by_test_id("recovery-continue").click()
    page.wait_for_load_state()

    # Logged in, device unlocked, an empty list that says what to do.
    assert page.get_by_test_id("current-user").inner_text() == NEW_USER
    assert page.get_by_test_id("lock-state").inner_text() == "Unlocked"
    assert "record button" in page.get_by_test_id("sessions-empty").inner_text()
    assert fresh_device.keys.is_unlocked()
    shot(page, "sessions-empty-desktop")

    # The setup code is used up.
    assert not SetupCodes(fresh_device.storage).check(fresh_device.setup_code)
    other = make_page(target=fresh_device)
    other.goto("/setup")
    assert "/login" in other.url
    actions = [e.action for e in AuditLog(fresh_device.storage).entries(newest_first=False)]
    assert actions.index("setup.code_rejected") < actions.index("setup.done")
    assert "setup.recovery_saved" in actions
