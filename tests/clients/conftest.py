"""Fixtures for the client tests: accounts on a real database and a practice key."""

from __future__ import annotations

import pytest

from appliance import age
from appliance.store.db import Storage


def add_users(storage: Storage, *names: str) -> list[int]:
    """Rows in ``users`` for the foreign keys (ids 1, 2, … in order)."""
    with storage.connect() as conn:  # the users table belongs to access.keys; a bare row suffices here
        for number, name in enumerate(names, start=1):
            conn.execute("INSERT INTO users(id, username, password_hash, created_at) "
                         "VALUES(?, ?, 'x', '2024-01-01')", (number, name))
    return list(range(1, len(names) + 1))


@pytest.fixture(scope="module")
def identity() -> age.X25519Identity:
    """A practice identity (generating one is cheap, but one per module is enough)."""
    return age.X25519Identity.generate()
