"""The data directory and the SQLite database: schema, migrations, sessions.

One owner for the data directory, the database file and its schema. The
database runs in WAL mode with
``secure_delete`` so deleted rows are overwritten, not merely unlinked.
Client-identifying text (client label, transcript, note) only ever reaches
this module as age ciphertext; the columns that hold it end in ``_enc``.

Each table's SQL lives in one module, its owner (``tests/test_sql_owners.py``
keeps it so); every other module goes through the owner's functions:

- ``sessions``, ``session_shares``, ``notes``, ``addenda``, ``settings``: this module
- ``transcripts``, ``transcript_versions``: :mod:`appliance.store.transcripts` (corrections
  keep every version)
- ``users``, ``key_slots``: :mod:`appliance.access.keys`
- ``login_failures``: :mod:`appliance.access.failures` (one counter for the web login
  and the key store's unlock)
- ``web_logins``: :mod:`appliance.access.logins`
- ``audit``: :mod:`appliance.access.audit`
- ``checkpoints``: :mod:`appliance.transcription.checkpoints`
- ``voice_profiles``: :mod:`appliance.store.voices`
- ``backups``: :mod:`appliance.store.backups`
- ``clients``, ``client_consents``: :mod:`appliance.store.clients` (a client's
  encrypted record and the consents on record; ``sessions.client_id`` is written here)
- ``formulations``: :mod:`appliance.store.formulations` (a client's case
  conceptualizations, one row per version)
- ``process_notes``: :mod:`appliance.store.process_notes` (a clinician's private note per session)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from appliance.errors import InvalidStateError, SessionNotFoundError, StorageError
from appliance.fsutil import fsync_dir
from appliance.store import clients, transcripts
from appliance.store.clients import ClientRow, ConsentRow
from appliance.store.lifecycle import PENDING_STATES as PENDING_STATES  # re-exported: callers import it here
from appliance.store.lifecycle import TRANSITIONS as TRANSITIONS
from appliance.store.lifecycle import State, illegal, sources
from appliance.store.schema import MIGRATIONS as MIGRATIONS  # re-exported: callers import it here
from appliance.store.transcripts import Stored, Version

DB_NAME = "holdnote.db"
RECORDINGS = "recordings"


_SESSION_COLUMNS = {
    "ended_at", "duration_s", "audio_path", "channels", "sample_rate",
    "bookmarks", "error", "progress", "waiting_reason", "recovered_s", "consent",
    "label_enc", "flags_enc", "audio_deleted_at", "transcribed_at",
    "owner_id", "unreadable_s", "end_reason",
    "drafting", "drafting_reason", "drafting_progress", "draft_template",
    "transcribe_requested_at",
}


def utcnow() -> datetime:
    """The current time in UTC (the default clock; tests pass their own)."""
    return datetime.now(UTC)


def apply_transition(conn: sqlite3.Connection, session_id: int, to: State,
                     **fields: object) -> None:
    """Move a session to ``to`` inside the caller's write transaction, setting ``fields`` too.

    The one writer of ``sessions.state``: the allowed sources come from
    :data:`appliance.store.lifecycle.TRANSITIONS`, checked in the same statement that
    writes, so two processes (say the web UI and the overnight job) cannot both
    act on a session. :class:`IllegalTransitionError` if the session's state
    does not allow the move, :class:`SessionNotFoundError` if there is none.
    Callers that change nothing else use :meth:`Storage.transition`.
    """
    Storage.check_columns(fields)
    values = {"state": str(to), **{k: Storage.column_value(v) for k, v in fields.items()}}
    assignments = ", ".join(f"{k} = ?" for k in values)
    allowed = [str(state) for state in sources(to)]
    marks = ",".join("?" * len(allowed))
    cursor = conn.execute(
        # Column names checked above; every value is a placeholder.
        f"UPDATE sessions SET {assignments} WHERE id = ? AND state IN ({marks})",  # noqa: S608
        (*values.values(), session_id, *allowed),
    )
    if cursor.rowcount == 0:
        row = conn.execute("SELECT state FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise SessionNotFoundError(f"no session {session_id}")
        raise illegal(session_id, row["state"], to)


@dataclass(frozen=True)
class SessionTexts:
    """A session's encrypted texts (each ``None`` or empty while it has none)."""

    label_enc: bytes | None = field(repr=False)
    note_enc: bytes | None = field(repr=False)
    addenda_enc: tuple[bytes, ...] = field(repr=False)
    result_enc: bytes | None = field(repr=False)


# What the search index compares to find changed sessions: the tail of each
# ciphertext (its authentication tag) changes whenever the text does.
_FINGERPRINTS = """
SELECT s.id, s.started_at, s.state, s.client_id,
       hex(substr(s.label_enc, -16)) AS label_v,
       hex(substr(n.note_enc, -16)) AS note_v,
       a.v AS addenda_v
FROM sessions s
LEFT JOIN notes n ON n.session_id = s.id
LEFT JOIN (SELECT session_id, COUNT(*) || ':' || MAX(id) AS v
             FROM addenda GROUP BY session_id) a ON a.session_id = s.id
"""


@dataclass(frozen=True)
class RecordFacts:
    """The clinical record of a session, as deleting it or retention must weigh it."""

    has_note: bool
    signed_at: datetime | None
    signed_by: str | None
    addenda: int
    has_transcript: bool

    @property
    def signed(self) -> bool:
        """True once the note was signed: a clinical record, kept unless deleted on purpose."""
        return self.signed_at is not None


def hand_over_sessions(conn: sqlite3.Connection, from_id: int, to_id: int) -> int:
    """Move every session of one account to another (inside the caller's transaction).

    Removing an account calls this first, so its sessions never fall back to
    "unassigned", where any colleague could claim them. How many moved.
    """
    conn.execute("DELETE FROM session_shares WHERE user_id = ? AND session_id IN "
                 "(SELECT id FROM sessions WHERE owner_id = ?)", (to_id, from_id))
    cursor = conn.execute("UPDATE sessions SET owner_id = ? WHERE owner_id = ?",
                          (to_id, from_id))
    return cursor.rowcount


def read_setting(conn: sqlite3.Connection, key: str) -> str | None:
    """A setting read inside the caller's transaction (``None`` if absent)."""
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return row["value"] if row else None


def put_setting(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Store a setting inside the caller's write transaction."""
    conn.execute(
        "INSERT INTO settings(key, value) VALUES(?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def require_session(conn: sqlite3.Connection, session_id: int) -> None:
    """:class:`SessionNotFoundError` unless the session exists (inside the caller's transaction)."""
    if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
        raise SessionNotFoundError(f"no session {session_id}")


def note_for_update(conn: sqlite3.Connection, session_id: int) -> sqlite3.Row | None:
    """The note's ciphertext and signature time, read inside the caller's write transaction."""
    return conn.execute(
        "SELECT note_enc, signed_at FROM notes WHERE session_id = ?", (session_id,)
    ).fetchone()


def write_note(conn: sqlite3.Connection, session_id: int, note_enc: bytes, author: str,
               moment: datetime, signed: bool = False) -> None:
    """Replace an existing note; ``signed`` also records ``author`` as its signer."""
    if signed:
        conn.execute(
            "UPDATE notes SET note_enc = ?, updated_at = ?, updated_by = ?, signed_at = ?, "
            "signed_by = ? WHERE session_id = ?",
            (note_enc, iso(moment), author, iso(moment), author, session_id))
    else:
        conn.execute(
            "UPDATE notes SET note_enc = ?, updated_at = ?, updated_by = ? WHERE session_id = ?",
            (note_enc, iso(moment), author, session_id))


def iso(moment: datetime) -> str:
    """A timestamp as stored: ISO 8601 in UTC with seconds."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Session:
    """One recorded session as stored (ciphertext fields stay encrypted)."""

    id: int
    started_at: datetime
    ended_at: datetime | None
    duration_s: float
    state: State
    audio_path: Path | None
    channels: int
    sample_rate: int
    bookmarks: tuple[float, ...] = ()
    error: str | None = None
    progress: float = 0.0
    waiting_reason: str | None = None
    recovered_s: float | None = None
    consent: bool = False
    label_enc: bytes | None = field(default=None, repr=False)
    flags_enc: bytes | None = field(default=None, repr=False)
    audio_deleted_at: datetime | None = None
    transcribed_at: datetime | None = None
    owner_id: int | None = None
    unreadable_s: float = 0.0
    end_reason: str | None = None
    drafting: str | None = None
    drafting_reason: str | None = None
    drafting_progress: float = 0.0
    draft_template: str | None = None
    # Set by "Transcribe now" on the page; cleared once the job has a transcript or failed.
    transcribe_requested_at: datetime | None = None
    # The client the session is assigned to (None: not assigned); see Storage.assign_client.
    client_id: int | None = None


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _session_from_row(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        started_at=datetime.fromisoformat(row["started_at"]),
        ended_at=_when(row["ended_at"]),
        duration_s=row["duration_s"],
        state=State(row["state"]),
        audio_path=Path(row["audio_path"]) if row["audio_path"] else None,
        channels=row["channels"],
        sample_rate=row["sample_rate"],
        bookmarks=tuple(json.loads(row["bookmarks"])),
        error=row["error"],
        progress=row["progress"],
        waiting_reason=row["waiting_reason"],
        recovered_s=row["recovered_s"],
        consent=bool(row["consent"]),
        label_enc=row["label_enc"],
        flags_enc=row["flags_enc"],
        audio_deleted_at=_when(row["audio_deleted_at"]),
        transcribed_at=_when(row["transcribed_at"]),
        owner_id=row["owner_id"],
        unreadable_s=row["unreadable_s"],
        end_reason=row["end_reason"],
        drafting=row["drafting"],
        drafting_reason=row["drafting_reason"],
        drafting_progress=row["drafting_progress"],
        draft_template=row["draft_template"],
        transcribe_requested_at=_when(row["transcribe_requested_at"]),
        client_id=row["client_id"],
    )


@dataclass(frozen=True)
class Viewer:
    """The person a session query is for: their account id and whether they are an admin.

    Queries that take a viewer return only what that person may see (see
    :mod:`appliance.access.roles` for the rules); ``None`` means the device itself
    (the overnight job, the CLI), which sees everything.
    """

    user_id: int
    username: str
    admin: bool = False


# Sessions a person may read: their own and those shared with them.
_READABLE = ("(owner_id = ? OR id IN "
             "(SELECT session_id FROM session_shares WHERE user_id = ?))")
# Sessions a person sees in the list: readable ones and unassigned ones (to claim).
_LISTED = ("(owner_id = ? OR owner_id IS NULL OR id IN "
           "(SELECT session_id FROM session_shares WHERE user_id = ?))")


def session_filter(states: tuple[str, ...] | None = None, since: datetime | None = None,
                   until: datetime | None = None,
                   viewer: Viewer | None = None) -> tuple[str, list]:
    """The ``WHERE`` clause (or "") and its arguments for the session list filters.

    A ``viewer`` who is not an admin sees their own, shared and unassigned sessions;
    an admin sees every session listed (their content stays behind the same rule).
    """
    where: list[str] = []
    args: list[object] = []
    if viewer is not None and not viewer.admin:
        where.append(_LISTED)
        args += [viewer.user_id, viewer.user_id]
    if states:
        where.append(f"state IN ({','.join('?' * len(states))})")
        args += [str(s) for s in states]
    if since:
        where.append("started_at >= ?")
        args.append(iso(since))
    if until:
        where.append("started_at < ?")
        args.append(iso(until))
    return (" WHERE " + " AND ".join(where)) if where else "", args


def _statements(script: str) -> Iterator[str]:
    """The SQL statements of a migration script, one at a time.

    ``executescript`` would commit the surrounding transaction first, giving up
    the lock that makes migrations safe against a concurrent start-up.
    """
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip():
        yield pending


class Storage:
    """The data directory and its database.

    ``now`` is the clock (a callable returning an aware datetime), passed in so
    tests are deterministic. Connections are opened per call because the
    recorder, the web workers and the overnight job use the database from
    different threads and processes.
    """

    def __init__(self, data_dir: Path, now: Callable[[], datetime] = utcnow):
        self.data_dir = Path(data_dir)
        self.now = now
        self._prepare_dirs()
        self.db_path = self.data_dir / DB_NAME
        self.migrate()

    # --- files -------------------------------------------------------------

    def _prepare_dirs(self) -> None:
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.data_dir, 0o700)
            self.recordings_dir.mkdir(mode=0o700, exist_ok=True)
        except OSError as error:
            raise StorageError(
                f"cannot use data directory {self.data_dir}: {error.strerror}; "
                "check paths.data_dir and that it belongs to the holdnote user"
            ) from None

    @property
    def recordings_dir(self) -> Path:
        """Where encrypted recordings live."""
        return self.data_dir / RECORDINGS

    def recording_path(self, session_id: int) -> Path:
        """The age file of a session's audio."""
        return self.recordings_dir / f"{session_id:06d}.wav.age"

    def free_bytes(self) -> int:
        """Free space on the data directory's file system."""
        return shutil.disk_usage(self.data_dir).free

    # --- database ----------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in a write transaction: committed on success, rolled back on error.

        ``BEGIN IMMEDIATE`` takes the write lock up front, so a read-then-write
        (a state check, the audit chain's head) cannot interleave with another
        process doing the same.
        """
        conn = self._open()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection on one consistent snapshot.

        A deferred transaction on a ``query_only`` connection: in WAL mode it
        neither waits for writers nor blocks them, so page views and status
        queries never queue behind the recorder or the overnight job.
        """
        conn = self._open()
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("ROLLBACK")
        finally:
            conn.close()

    def migrate(self) -> int:
        """Bring the schema to the newest version; return that version.

        The version is read under the write lock, so services starting at the
        same moment on a fresh device cannot both run the same migration.
        """
        conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
            os.chmod(self.db_path, 0o600)
            return len(MIGRATIONS)
        except sqlite3.DatabaseError as error:
            raise StorageError(f"database {self.db_path} cannot be opened: {error}") from None
        finally:
            conn.close()

    # --- settings ----------------------------------------------------------

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        """A value from the settings table."""
        with self.read() as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else default

    def set_setting(self, key: str, value: str | None) -> None:
        """Store (or, with ``None``, remove) a setting."""
        with self.connect() as conn:
            if value is None:
                conn.execute("DELETE FROM settings WHERE key = ?", (key,))
            else:
                put_setting(conn, key, value)

    # --- sessions ----------------------------------------------------------

    def create_session(self, channels: int = 1, sample_rate: int = 16000,
                       owner_id: int | None = None) -> Session:
        """A new session in state ``recording``, with its audio path assigned.

        ``owner_id`` is the clinician it belongs to (``None``: unassigned until claimed).
        One microphone, one recording: :class:`InvalidStateError` while another
        session is still ``recording`` (checked in the same write transaction).
        """
        with self.connect() as conn:
            open_row = conn.execute("SELECT id FROM sessions WHERE state = ? LIMIT 1",
                                    (State.RECORDING,)).fetchone()
            if open_row is not None:
                raise InvalidStateError(
                    f"session {open_row['id']} is still recording; stop it before starting "
                    "another (the recorder closes a session left open before it starts one)")
            cursor = conn.execute(
                "INSERT INTO sessions(started_at, state, channels, sample_rate, owner_id) "
                "VALUES(?, ?, ?, ?, ?)",
                (iso(self.now()), State.RECORDING, channels, sample_rate, owner_id),
            )
            session_id = cursor.lastrowid
            if session_id is None:  # sqlite3 sets it after every INSERT
                raise StorageError("the new session got no id")
            conn.execute(
                "UPDATE sessions SET audio_path = ? WHERE id = ?",
                (str(self.recording_path(session_id)), session_id),
            )
        return self.get_session(session_id)

    def get_session(self, session_id: int) -> Session:
        """One session; :class:`SessionNotFoundError` if there is none."""
        with self.read() as conn:
            row = conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise SessionNotFoundError(f"no session {session_id}")
        return _session_from_row(row)

    def list_sessions(
        self,
        states: tuple[str, ...] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
        oldest_first: bool = False,
        viewer: Viewer | None = None,
    ) -> list[Session]:
        """Sessions, newest first unless ``oldest_first``, optionally filtered.

        With a ``viewer``: only the sessions they may see listed (:func:`session_filter`).
        """
        clause, args = session_filter(states, since, until, viewer)
        sql = "SELECT * FROM sessions" + clause  # noqa: S608 - the clause has only placeholders
        sql += " ORDER BY started_at " + ("ASC" if oldest_first else "DESC") + ", id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        with self.read() as conn:
            return [_session_from_row(r) for r in conn.execute(sql, args)]

    def drafts_waiting(self) -> list[Session]:
        """Unsigned draft sessions whose note waits for the model (queued or interrupted), oldest first."""
        with self.read() as conn:
            rows = conn.execute(
                "SELECT * FROM sessions WHERE drafting IN ('queued', 'drafting') AND state = ? "
                "AND id NOT IN (SELECT session_id FROM notes WHERE signed_at IS NOT NULL) "
                "ORDER BY started_at ASC, id", (str(State.DRAFT),)).fetchall()
        return [_session_from_row(r) for r in rows]

    def count_drafts_failed(self) -> int:
        """Unsigned sessions whose note could not be drafted (``drafting = 'failed'``)."""
        with self.read() as conn:
            return conn.execute("SELECT count(*) FROM sessions WHERE drafting = 'failed' AND state = ?",
                                (str(State.DRAFT),)).fetchone()[0]

    def count_sessions(self, states: tuple[str, ...] | None = None,
                       since: datetime | None = None, until: datetime | None = None,
                       viewer: Viewer | None = None) -> int:
        """How many sessions match the same filters as :meth:`list_sessions`."""
        clause, args = session_filter(states, since, until, viewer)
        with self.read() as conn:
            count_sql = "SELECT COUNT(*) FROM sessions" + clause  # noqa: S608 - placeholders only
            return conn.execute(count_sql, args).fetchone()[0]

    def update_session(self, session_id: int, **fields: object) -> Session:
        """Change columns of a session; unknown column names are a programming error."""
        self.check_columns(fields)
        values = {k: self.column_value(v) for k, v in fields.items()}
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self.connect() as conn:
            cursor = conn.execute(
                # Column names checked above; every value is a placeholder.
                f"UPDATE sessions SET {assignments} WHERE id = ?",  # noqa: S608
                (*values.values(), session_id),
            )
            if cursor.rowcount == 0:
                raise SessionNotFoundError(f"no session {session_id}")
        return self.get_session(session_id)

    @staticmethod
    def check_columns(fields: Mapping[str, object]) -> None:
        """Column names go into SQL text, so they must be known ones.

        ``state`` is refused: only :func:`apply_transition` writes it.
        """
        if "state" in fields:
            raise ValueError("the session state changes only through Storage.transition, "
                             "which checks appliance.store.lifecycle.TRANSITIONS")
        unknown = set(fields) - _SESSION_COLUMNS
        if unknown:
            raise ValueError(f"not session columns: {sorted(unknown)}")

    @staticmethod
    def column_value(value: object) -> object:
        """A Python value as the sessions table stores it."""
        if isinstance(value, datetime):
            return iso(value)
        if isinstance(value, (list, tuple)):
            return json.dumps(list(value))
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, State):
            return str(value)
        return value

    def transition(self, session_id: int, to: State, **fields: object) -> Session:
        """Move a session to ``to`` if the lifecycle allows it, setting ``fields`` too.

        The session as it is afterwards. :class:`IllegalTransitionError` if
        :data:`appliance.store.lifecycle.TRANSITIONS` has no move from its current
        state to ``to``; see :func:`apply_transition`.
        """
        with self.connect() as conn:
            apply_transition(conn, session_id, to, **fields)
        return self.get_session(session_id)

    def add_bookmark(self, session_id: int, offset_s: float) -> Session:
        """Append a bookmark (seconds from the start of the recording)."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT bookmarks FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if row is None:
                raise SessionNotFoundError(f"no session {session_id}")
            marks = [*json.loads(row["bookmarks"]), round(offset_s, 2)]
            conn.execute(
                "UPDATE sessions SET bookmarks = ? WHERE id = ?", (json.dumps(marks), session_id)
            )
        return self.get_session(session_id)

    # --- results -------------------------------------------------------------

    def save_transcript(self, session_id: int, result_enc: bytes) -> None:
        """Store the encrypted transcription result (replacing any earlier one and its versions)."""
        with self.connect() as conn:
            transcripts.save(conn, session_id, result_enc, iso(self.now()))

    def load_transcript(self, session_id: int) -> bytes | None:
        """The encrypted transcription result as it reads now (corrected, if it was), or ``None``."""
        stored = self.stored_transcript(session_id)
        return stored.result_enc if stored else None

    def stored_transcript(self, session_id: int) -> Stored | None:
        """The current transcript with its version number (what a correction is based on)."""
        with self.read() as conn:
            return transcripts.load(conn, session_id)

    def save_correction(self, session_id: int, *, based_on: int, result_enc: bytes,
                        flags_enc: bytes | None, author: str, summary: str) -> int:
        """Replace the transcript with a correction of version ``based_on``; the new version.

        The session's flag summary (``flags_enc``) changes in the same transaction.
        :class:`appliance.store.transcripts.VersionConflictError` (nothing written)
        when another correction was saved since ``based_on``.
        """
        with self.connect() as conn:
            version = transcripts.correct(conn, session_id, based_on=based_on,
                                          result_enc=result_enc, when=iso(self.now()),
                                          author=author, summary=summary)
            conn.execute("UPDATE sessions SET flags_enc = ? WHERE id = ?", (flags_enc, session_id))
        return version

    def transcript_versions(self, session_id: int) -> list[Version]:
        """The saved versions of a transcript, the recognised one first (empty before a correction)."""
        with self.read() as conn:
            return transcripts.versions(conn, session_id)

    def transcript_version(self, session_id: int, number: int) -> Version | None:
        """One saved version with its ciphertext, or None."""
        with self.read() as conn:
            return transcripts.version(conn, session_id, number)

    def save_note(self, session_id: int, note_enc: bytes, author: str | None = None) -> None:
        """Store an encrypted note; refused once the note is signed."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT signed_at FROM notes WHERE session_id = ?", (session_id,)
            ).fetchone()
            if row is not None and row["signed_at"]:
                raise InvalidStateError(
                    f"the note of session {session_id} is signed; add an addendum instead"
                )
            conn.execute(
                "INSERT INTO notes(session_id, note_enc, updated_at, updated_by) "
                "VALUES(?, ?, ?, ?) ON CONFLICT(session_id) DO UPDATE SET "
                "note_enc = excluded.note_enc, updated_at = excluded.updated_at, "
                "updated_by = excluded.updated_by",
                (session_id, note_enc, iso(self.now()), author),
            )

    def load_note(self, session_id: int) -> sqlite3.Row | None:
        """The note row (``note_enc``, ``updated_at``, ``signed_at``, ``signed_by``…)."""
        with self.read() as conn:
            return conn.execute(
                "SELECT * FROM notes WHERE session_id = ?", (session_id,)
            ).fetchone()

    def load_note_with_addenda(
            self, session_id: int) -> tuple[sqlite3.Row | None, list[sqlite3.Row]]:
        """The note row and its addenda (oldest first) from one snapshot; ``(None, [])`` before a draft."""
        with self.read() as conn:
            row = conn.execute(
                "SELECT * FROM notes WHERE session_id = ?", (session_id,)).fetchone()
            if row is None:
                return None, []
            addenda = conn.execute(
                "SELECT id, text_enc, created_at, author FROM addenda WHERE session_id = ? "
                "ORDER BY id", (session_id,)).fetchall()
        return row, addenda

    def add_addendum(self, session_id: int, text_enc: bytes, author: str) -> None:
        """Append an encrypted addendum; refused unless the note is signed."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT signed_at FROM notes WHERE session_id = ?", (session_id,)).fetchone()
            if row is None or not row["signed_at"]:
                raise InvalidStateError("Addenda are for signed notes; edit the draft instead.")
            conn.execute(
                "INSERT INTO addenda(session_id, text_enc, created_at, author) VALUES(?, ?, ?, ?)",
                (session_id, text_enc, iso(self.now()), author))

    # --- owners and shares -------------------------------------------------------

    def readable_ids(self, viewer: Viewer) -> set[int]:
        """The sessions ``viewer`` may read: their own and those shared with them."""
        with self.read() as conn:
            rows = conn.execute("SELECT id FROM sessions WHERE " + _READABLE,  # noqa: S608 - constant
                                (viewer.user_id, viewer.user_id)).fetchall()
        return {r["id"] for r in rows}

    def shared_with(self, session_id: int) -> list[int]:
        """The accounts a session is shared with (read-only), oldest share first."""
        with self.read() as conn:
            rows = conn.execute("SELECT user_id FROM session_shares WHERE session_id = ? "
                                "ORDER BY created_at, user_id", (session_id,)).fetchall()
        return [r["user_id"] for r in rows]

    def claim(self, session_id: int, user_id: int) -> bool:
        """Make an unassigned session ``user_id``'s; False if someone owns it already."""
        with self.connect() as conn:
            cursor = conn.execute("UPDATE sessions SET owner_id = ? "
                                  "WHERE id = ? AND owner_id IS NULL", (user_id, session_id))
        return cursor.rowcount == 1

    def assign(self, session_id: int, user_id: int) -> None:
        """Give a session to ``user_id`` (a share they had becomes ownership)."""
        with self.connect() as conn:
            require_session(conn, session_id)
            conn.execute("UPDATE sessions SET owner_id = ? WHERE id = ?", (user_id, session_id))
            conn.execute("DELETE FROM session_shares WHERE session_id = ? AND user_id = ?",
                         (session_id, user_id))

    def share(self, session_id: int, user_id: int, by: str) -> bool:
        """Let ``user_id`` read a session; False if it was shared with them already."""
        with self.connect() as conn:
            require_session(conn, session_id)
            cursor = conn.execute(
                "INSERT INTO session_shares(session_id, user_id, created_at, created_by) "
                "VALUES(?, ?, ?, ?) ON CONFLICT(session_id, user_id) DO NOTHING",
                (session_id, user_id, iso(self.now()), by))
        return cursor.rowcount == 1

    def unshare(self, session_id: int, user_id: int) -> bool:
        """End a share; False if there was none."""
        with self.connect() as conn:
            cursor = conn.execute("DELETE FROM session_shares WHERE session_id = ? "
                                  "AND user_id = ?", (session_id, user_id))
        return cursor.rowcount == 1

    def record_facts(self, session_id: int) -> RecordFacts:
        """What deleting a session would destroy: its signed note, addenda, transcript."""
        with self.read() as conn:
            note = conn.execute("SELECT signed_at, signed_by FROM notes WHERE session_id = ?",
                                (session_id,)).fetchone()
            addenda = conn.execute("SELECT COUNT(*) FROM addenda WHERE session_id = ?",
                                   (session_id,)).fetchone()[0]
            transcript = transcripts.exists(conn, session_id)
        return RecordFacts(
            has_note=note is not None,
            signed_at=_when(note["signed_at"]) if note else None,
            signed_by=note["signed_by"] if note else None,
            addenda=addenda, has_transcript=transcript)

    # --- clients (tables in appliance.store.clients) -------------------------------

    def create_client(self, owner_id: int, record_enc: bytes) -> int:
        """A new active client of ``owner_id`` with its encrypted record; its id."""
        with self.connect() as conn:
            return clients.create(conn, owner_id, record_enc, iso(self.now()))

    def client(self, client_id: int) -> ClientRow | None:
        """One client, or None (never created, or deleted)."""
        with self.read() as conn:
            return clients.get(conn, client_id)

    def clients_of(self, owner_id: int) -> list[ClientRow]:
        """A clinician's clients, active first."""
        with self.read() as conn:
            return clients.of_owner(conn, owner_id)

    def client_sessions(self, client_id: int) -> list[Session]:
        """The sessions assigned to a client, oldest first."""
        with self.read() as conn:
            rows = conn.execute("SELECT * FROM sessions WHERE client_id = ? "
                                "ORDER BY started_at, id", (client_id,)).fetchall()
        return [_session_from_row(r) for r in rows]

    def assign_client(self, session_id: int, client_id: int | None, *,
                      owner_id: int | None = None) -> None:
        """Assign a session to an active client (``None``: unassign it).

        With ``owner_id``, both the session and the client must be that
        clinician's (checked in the same transaction as the write).
        :class:`SessionNotFoundError`, :class:`~appliance.store.clients.ClientNotFoundError`
        or :class:`InvalidStateError` (a closed client, another's session), nothing written.
        """
        self.assign_clients((session_id,), client_id, owner_id=owner_id)

    def assign_clients(self, session_ids: tuple[int, ...] | list[int], client_id: int | None, *,
                       owner_id: int | None = None) -> None:
        """Assign several sessions at once: all of them or, on any refusal, none."""
        with self.connect() as conn:
            if client_id is not None:
                row = clients.require_active(conn, client_id)
                if owner_id is not None and row.owner_id != owner_id:
                    raise clients.ClientNotFoundError(f"no client {client_id} of yours")
            for session_id in session_ids:
                found = conn.execute("SELECT owner_id FROM sessions WHERE id = ?",
                                     (session_id,)).fetchone()
                if found is None:
                    raise SessionNotFoundError(f"no session {session_id}")
                if owner_id is not None and found["owner_id"] != owner_id:
                    raise InvalidStateError(f"session {session_id} is not yours to assign")
                conn.execute("UPDATE sessions SET client_id = ? WHERE id = ?",
                             (client_id, session_id))

    def update_client(self, client_id: int, *, record_enc: bytes | None = None,
                      status: str | None = None) -> None:
        """Replace a client's encrypted record and/or status ('active' or 'closed')."""
        with self.connect() as conn:
            clients.update(conn, client_id, iso(self.now()), record_enc=record_enc, status=status)

    def delete_client(self, client_id: int) -> None:
        """Remove a client and its consents; its sessions stay, unassigned."""
        with self.connect() as conn:
            clients.delete(conn, client_id)
        self.checkpoint()

    def add_consent(self, client_id: int, *, given_on: date, form_version: str,
                    obtained_by: str, scope: tuple[str, ...], by: str) -> int:
        """Record a consent of a client; its id. ``by`` is the account that entered it."""
        with self.connect() as conn:
            return clients.add_consent(conn, client_id, given_on=given_on,
                                       form_version=form_version, obtained_by=obtained_by,
                                       scope=scope, when=iso(self.now()), by=by)

    def withdraw_consent(self, consent_id: int, on: date) -> bool:
        """Date a consent's withdrawal; False if absent or already withdrawn."""
        with self.connect() as conn:
            return clients.withdraw_consent(conn, consent_id, on)

    def consents(self, client_id: int) -> list[ConsentRow]:
        """A client's consents, newest first."""
        with self.read() as conn:
            return clients.consents(conn, client_id)

    def consent(self, consent_id: int) -> ConsentRow | None:
        """One consent, or None."""
        with self.read() as conn:
            return clients.consent(conn, consent_id)

    # --- search ----------------------------------------------------------------

    def search_fingerprints(self) -> list[dict]:
        """Every session's id, start, state and tags that change with its texts.

        ``label_v``, ``transcript_v``, ``note_v`` and ``addenda_v`` change when
        the label, transcript, note or addenda do, ``client_id`` and ``client_v``
        when the session's client or that client's record does, so a search
        index decrypts only the sessions that changed.
        """
        with self.read() as conn:
            rows = conn.execute(_FINGERPRINTS).fetchall()
            versions = transcripts.fingerprints(conn)
            records = clients.fingerprints(conn)
        return [{**dict(row), "transcript_v": versions.get(row["id"]),
                 "client_v": records.get(row["client_id"])} for row in rows]

    def session_texts(self, session_id: int) -> SessionTexts:
        """The ciphertexts a search index reads for one session, from one snapshot."""
        with self.read() as conn:
            label = conn.execute("SELECT label_enc FROM sessions WHERE id = ?",
                                 (session_id,)).fetchone()
            note = conn.execute("SELECT note_enc FROM notes WHERE session_id = ?",
                                (session_id,)).fetchone()
            addenda = conn.execute("SELECT text_enc FROM addenda WHERE session_id = ? "
                                   "ORDER BY id", (session_id,)).fetchall()
            result = transcripts.load(conn, session_id)
        if label is None:
            raise SessionNotFoundError(f"no session {session_id}")
        return SessionTexts(label["label_enc"], note["note_enc"] if note else None,
                            tuple(a["text_enc"] for a in addenda),
                            result.result_enc if result else None)

    # --- deletion ------------------------------------------------------------

    def delete_audio(self, session_id: int) -> None:
        """Remove a session's encrypted audio file and record when."""
        session = self.get_session(session_id)
        if session.audio_path and session.audio_path.exists():
            session.audio_path.unlink()
            fsync_dir(session.audio_path.parent)
        self.update_session(session_id, audio_deleted_at=self.now())

    def delete_transcript(self, session_id: int) -> bool:
        """Remove a session's transcript and its versions (note and addenda stay); False if none."""
        with self.connect() as conn:
            deleted = transcripts.delete(conn, session_id)
        if deleted:
            self.checkpoint()
        return deleted

    def delete_session(self, session_id: int) -> None:
        """Remove a session's files and every row that belongs to it."""
        session = self.get_session(session_id)
        if session.audio_path and session.audio_path.exists():
            session.audio_path.unlink()
            fsync_dir(session.audio_path.parent)
        with self.connect() as conn:
            conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        self.checkpoint()

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database and empty it.

        After a deletion the WAL still holds the old pages; ``secure_delete``
        zeroes them in the main file only once they are checkpointed.
        """
        conn = sqlite3.connect(self.db_path, timeout=30)
        try:
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
