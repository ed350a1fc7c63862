"""How ``holdnote`` fails: one line a person can act on, and an exit code.

Expected failures (a bad configuration file, a locked device, a damaged
database, a file that is not what it should be, a missing permission) become
``holdnote: …`` on standard error. Anything else is a bug and keeps its
traceback, so it gets reported rather than guessed at.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ConfigError, HoldnoteError
from appliance.store.db import DB_NAME, RECORDINGS

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
# What a shell reports for a program ended by SIGPIPE (``yes | head``).
EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE
_DAMAGE_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


@dataclass(frozen=True)
class Failure:
    """What to print (without the ``holdnote:`` prefix) and the exit code."""

    message: str
    code: int


def explain(error: Exception, data_dir: Callable[[], Path | None]) -> Failure | None:
    """The line and exit code for an expected failure; ``None`` for a bug.

    ``data_dir`` is asked only when the database turns out to be damaged, to
    name the file and where its backup belongs.
    """
    damage = _database_damage(error)
    if damage is not None:
        return Failure(damaged_database(damage, data_dir()), EXIT_ERROR)
    if isinstance(error, ConfigError):
        return Failure(str(error), EXIT_USAGE)
    if isinstance(error, HoldnoteError):
        return Failure(str(error), EXIT_ERROR)
    if isinstance(error, sqlite3.Error):
        return Failure(f"the database cannot be used ({error})", EXIT_ERROR)
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        return Failure(f"{where}{error.strerror or error}", EXIT_ERROR)
    return None


def _database_damage(error: BaseException | None) -> sqlite3.DatabaseError | None:
    """SQLite's corruption error behind ``error``, also when a module re-raised it as its own."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, sqlite3.DatabaseError) and getattr(
                error, "sqlite_errorcode", None) in _DAMAGE_CODES:
            return error
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


def damaged_database(error: sqlite3.DatabaseError, data_dir: Path | None) -> str:
    """Which file is damaged and how to get it back."""
    folder = data_dir or Path("/var/lib/holdnote")
    return (f"the database {folder / DB_NAME} is damaged ({error}). Stop the services "
            "(sudo systemctl stop 'holdnote-*'), keep a copy of the damaged file, and put "
            f"back {DB_NAME} from your backup of {folder}. The recordings in "
            f"{folder / RECORDINGS} are separate files; the recovery key still opens them")


def closed_stdout() -> int:
    """The reader of our output went away (``holdnote record status | head``).

    Not an error worth a word: point standard output at /dev/null so Python's
    final flush cannot fail again, and exit as a SIGPIPE'd program would.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):  # stdout may be no file (embedded use)
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_CLOSED_PIPE
