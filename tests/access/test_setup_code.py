"""The one-time setup code that guards first-run setup."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from appliance.access.setup_code import SetupCodes
from appliance.store.db import Storage


def test_only_the_current_code_is_accepted(storage):
    codes = SetupCodes(storage)
    first = codes.issue()
    second = codes.issue()
    assert not codes.check(first)
    assert codes.check(second)
    assert codes.check(second.lower().replace("-", " "))  # forgiving about typing
    assert not codes.check("AAAA-BBBB-CCCC")


def test_code_is_stored_only_as_a_hash(storage):
    code = SetupCodes(storage).issue()
    with storage.connect() as conn:
        values = " ".join(r[0] for r in conn.execute("SELECT value FROM settings"))
    assert code.replace("-", "") not in values.replace("-", "")


def test_code_expires(tmp_path):
    clock = [datetime(2026, 11, 21, tzinfo=timezone.utc)]
    codes = SetupCodes(Storage(tmp_path / "d", now=lambda: clock[0]))
    code = codes.issue()
    clock[0] += timedelta(days=8)
    assert not codes.check(code)


def test_consumed_code_no_longer_works(storage):
    codes = SetupCodes(storage)
    code = codes.issue()
    codes.consume()
    assert not codes.check(code)


def test_code_is_useless_once_a_user_exists(storage, recovery_key):
    codes = SetupCodes(storage)
    assert codes.setup_done()
    assert not codes.check(codes.issue())
