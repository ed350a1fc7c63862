"""One failed-login counter for every passphrase form: the web login and the unlock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from appliance.access import failures
from appliance.access.logins import LoginGuard
from appliance.errors import WrongPassphraseError
from tests.conftest import PASSPHRASE, USER

LAN = "192.168.1.20"


@pytest.fixture
def guard(storage):
    """The web login's guard on the test database, with the storage's clock."""
    return LoginGuard(storage, storage.now, max_failures=10, lockout_minutes=15)


def test_the_schedule_has_free_failures_then_doubles_up_to_a_limit():
    assert [failures.failure_delay(n) for n in range(7)] == [0, 0, 0, 1, 2, 4, 8]
    assert failures.failure_delay(50) == failures.MAX_DELAY_S


def test_web_failures_slow_the_next_unlock(keystore, recovery_key, guard, sleeps):
    keystore.lock()
    for _ in range(4):
        guard.failed(USER, LAN)
    keystore.unlock(USER, PASSPHRASE)
    assert sleeps == [2.0]


def test_unlock_failures_make_the_web_login_wait(keystore, recovery_key, guard):
    for _ in range(3):
        with pytest.raises(WrongPassphraseError):
            keystore.unlock(USER, "not the passphrase")
    refusal = guard.check(f"  {USER.upper()} ", "10.0.0.99")
    assert refusal is not None and not refusal.locked and "wait" in refusal.message


def test_a_success_anywhere_forgives_the_failures(keystore, recovery_key, guard, sleeps):
    for _ in range(4):
        guard.failed(USER, LAN)
    keystore.unlock(USER, PASSPHRASE)
    assert guard.check(USER, "10.0.0.99") is None


def test_an_account_recovered_starts_without_failures(keystore, recovery_key, guard, sleeps):
    for _ in range(5):
        guard.failed(USER, LAN)
    keystore.recover(recovery_key, USER, "a fresh passphrase here")
    keystore.lock()
    keystore.unlock(USER, "a fresh passphrase here")
    assert sleeps == []


def test_counts_and_lockouts_round_trip(storage):
    with storage.connect() as conn:
        now = storage.now()
        failures.record(conn, failures.ADDRESS, LAN, now)
        failures.lock(conn, failures.ADDRESS, LAN, now + timedelta(minutes=15))
        count = failures.read(conn, failures.ADDRESS, LAN)
        failures.clear(conn, failures.ADDRESS, LAN)
        assert failures.read(conn, failures.ADDRESS, LAN) is None
    assert count is not None and count.failures == 1
    assert count.locked_until == (now + timedelta(minutes=15)).replace(microsecond=0)
