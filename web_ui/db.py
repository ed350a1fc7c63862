"""Read-only database access for the web pages.

:meth:`Storage.connect` opens every transaction with ``BEGIN IMMEDIATE``,
which takes SQLite's write lock: right for writes, but it makes concurrent
page views queue behind each other. Pages read through :func:`reading`
instead: a deferred transaction on a ``query_only`` connection, which in WAL
mode neither waits for writers nor blocks them, and sees one consistent
snapshot.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from appliance.storage import Storage


@contextlib.contextmanager
def reading(storage: Storage) -> Iterator[sqlite3.Connection]:
    """A connection for reads only, in one snapshot."""
    conn = sqlite3.connect(storage.db_path, timeout=30, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("ROLLBACK")
    finally:
        conn.close()
