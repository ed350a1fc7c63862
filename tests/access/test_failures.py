"""One rule for every passphrase form: which row an attempt counts in, and the limits under load."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from appliance.access import failures
from appliance.access.failures import CONSOLE, Guard
from appliance.errors import TooManyAttemptsError, WrongPassphraseError
from tests.conftest import PASSPHRASE, USER

LAN = "192.168.1.20"
MAX = 5


class Clock:
    """A clock that moves only when told, starting 0.7 s into a second."""

    def __init__(self):
        self.now = datetime(2026, 3, 2, 9, 0, 0, 700_000, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(storage, clock) -> Guard:
    return Guard(storage, clock, max_failures=MAX, lockout_minutes=15)


def account(name: str = USER, device: str | None = None) -> failures.Counter:
    return failures.counter(name, known=True, address=LAN, device=device)


def lock_out(storage, row: failures.Counter) -> None:
    """The state after MAX failures: counted and locked for a quarter of an hour."""
    with storage.connect() as conn:
        for _ in range(MAX):
            failures.record(conn, row.scope, row.key, storage.now())
        failures.lock(conn, row.scope, row.key, storage.now() + timedelta(minutes=15))


def fail(guard: Guard, row: failures.Counter, times: int) -> None:
    for _ in range(times):
        guard.begin(row)  # counted in advance; never forgiven: a wrong passphrase


def test_the_schedule_has_free_failures_then_doubles_up_to_a_limit():
    assert [failures.failure_delay(n) for n in range(7)] == [0, 0, 0, 1, 2, 4, 8]
    assert failures.failure_delay(50) == failures.MAX_DELAY_S


def test_each_attempt_counts_in_one_row():
    assert account() == failures.Counter(failures.USER, USER)
    assert account(f" {USER.upper()} ") == account(), "one account however it is typed"
    assert account(device="b1").trusted and not account().trusted
    unknown = failures.counter("nobody", known=False, address="fd00::1:2:3:4")
    assert unknown == failures.Counter(failures.ADDRESS, "fd00::/64")
    assert failures.counter(None, known=False, address="::ffff:10.0.0.7") == failures.Counter(
        failures.ADDRESS, "10.0.0.7")


def test_concurrent_attempts_get_no_more_checks_than_the_rule_allows(guard):
    """30 threads at once on real SQLite: check and count are one transaction."""
    start = threading.Barrier(30)
    allowed, refused = [], []

    def attempt():
        start.wait()
        try:
            allowed.append(guard.begin(account()))
        except TooManyAttemptsError as error:
            refused.append(error)

    threads = [threading.Thread(target=attempt) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The free failures, then a wait: the clock does not move, so nothing else gets in.
    assert len(allowed) == failures.FREE_FAILURES + 1
    assert len(refused) == 30 - len(allowed)
    assert all("wait" in str(e) for e in refused)


def test_a_one_second_wait_does_not_pass_after_a_third_of_a_second(guard, clock):
    fail(guard, account(), failures.FREE_FAILURES + 1)
    clock.advance(0.3)  # crosses into the next whole second
    with pytest.raises(TooManyAttemptsError, match="wait 1 second") as early:
        guard.begin(account())
    assert early.value.retry_after_s == 1 and not early.value.locked
    clock.advance(0.7)
    guard.begin(account())


def test_the_lockout_comes_after_max_failures_and_ends(guard, clock):
    row = account()
    for n in range(MAX):
        guard.begin(row)
        clock.advance(failures.failure_delay(n + 1))
    with pytest.raises(TooManyAttemptsError, match="15 minutes") as locked:
        guard.begin(row)
    assert locked.value.locked
    clock.advance(15 * 60)
    guard.forgive(guard.begin(row))


def test_guessing_an_account_elsewhere_leaves_its_own_browser_and_colleagues_alone(guard, clock):
    for _ in range(MAX):
        guard.begin(account())
        clock.advance(60)
    with pytest.raises(TooManyAttemptsError, match="not logged in from before"):
        guard.begin(account())
    # The owner's browser counts on its own; a colleague's account is untouched.
    guard.forgive(guard.begin(account(device="owner-browser")))
    guard.forgive(guard.begin(account("dr.chen")))
    guard.forgive(guard.begin(account("dr.chen", device="shared-pc")))


def test_unknown_names_count_per_address(guard, clock):
    for n in range(MAX):
        guard.begin(failures.counter(f"guess{n}", known=False, address=LAN))
        clock.advance(60)
    with pytest.raises(TooManyAttemptsError, match="from this computer"):
        guard.begin(failures.counter("guess9", known=False, address=LAN))
    # A real account from that computer is judged by its own row.
    guard.forgive(guard.begin(account()))


def test_a_success_from_a_new_computer_forgives_every_row_of_the_account(guard, storage):
    fail(guard, account(device="b1"), 2)
    guard.forgive(guard.begin(account()))
    with storage.read() as conn:
        assert failures.read(conn, failures.USER, f"{USER}\tb1") is None


def test_unlock_never_sleeps_it_refuses_until_the_wait_is_over(keystore, recovery_key):
    keystore.lock()
    for _ in range(failures.FREE_FAILURES + 1):
        with pytest.raises(WrongPassphraseError):
            keystore.unlock(USER, "not the passphrase")
    # Too soon: refused before the passphrase is even tried, right or not.
    with pytest.raises(TooManyAttemptsError, match="wait"):
        keystore.unlock(USER, PASSPHRASE)
    assert not keystore.is_unlocked()


def test_console_unlocks_and_the_web_count_in_their_own_rows(keystore, recovery_key, storage):
    web = Guard(storage, storage.now)
    lock_out(storage, account())
    keystore.lock()
    keystore.unlock(USER, PASSPHRASE)  # at the device's console: not held up by LAN guesses
    with pytest.raises(TooManyAttemptsError):
        web.begin(account())
    with storage.read() as conn:
        assert failures.read(conn, failures.USER, f"{USER}\t{CONSOLE}") is None


def test_an_account_recovered_starts_without_failures(keystore, recovery_key, storage):
    web = Guard(storage, storage.now)
    lock_out(storage, account())
    keystore.recover(recovery_key, USER, "a fresh passphrase here")
    web.forgive(web.begin(account()))


def test_counts_and_lockouts_round_trip_to_the_microsecond(storage, clock):
    with storage.connect() as conn:
        now = clock()
        failures.record(conn, failures.ADDRESS, LAN, now)
        failures.lock(conn, failures.ADDRESS, LAN, now + timedelta(minutes=15))
        count = failures.read(conn, failures.ADDRESS, LAN)
        failures.clear(conn, failures.ADDRESS, LAN)
        assert failures.read(conn, failures.ADDRESS, LAN) is None
    assert count is not None and count.failures == 1
    assert count.last_failure == now
    assert count.locked_until == now + timedelta(minutes=15)
