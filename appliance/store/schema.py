"""The database schema: every migration since the first release, in order.

Data, not code: :meth:`appliance.store.db.Storage.migrate` applies the entries
a database has not seen yet, one transaction each. Which module may read or
write each table is listed in :mod:`appliance.store.db`.
"""

from __future__ import annotations

# Each entry moves the schema from version i to i+1. Never edit a released
# entry: append a new one, so an upgraded device migrates in place.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        duration_s REAL NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        audio_path TEXT,
        channels INTEGER NOT NULL DEFAULT 1,
        sample_rate INTEGER NOT NULL DEFAULT 16000,
        bookmarks TEXT NOT NULL DEFAULT '[]',
        error TEXT,
        progress REAL NOT NULL DEFAULT 0,
        waiting_reason TEXT,
        recovered_s REAL,
        consent INTEGER NOT NULL DEFAULT 0,
        label_enc BLOB,
        flags_enc BLOB,
        audio_deleted_at TEXT,
        transcribed_at TEXT
    );
    CREATE INDEX sessions_started ON sessions(started_at);
    CREATE INDEX sessions_state ON sessions(state);
    CREATE TABLE transcripts (
        session_id INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
        result_enc BLOB NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE notes (
        session_id INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
        note_enc BLOB NOT NULL,
        updated_at TEXT NOT NULL,
        updated_by TEXT,
        signed_at TEXT,
        signed_by TEXT
    );
    CREATE TABLE addenda (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        text_enc BLOB NOT NULL,
        created_at TEXT NOT NULL,
        author TEXT NOT NULL
    );
    CREATE TABLE checkpoints (
        session_id INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
        offset_s REAL NOT NULL,
        partial_enc BLOB NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        failed_logins INTEGER NOT NULL DEFAULT 0,
        locked_until TEXT,
        last_login TEXT
    );
    CREATE TABLE key_slots (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER UNIQUE REFERENCES users(id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('passphrase', 'recovery')),
        slot_enc BLOB NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE voice_profiles (
        name TEXT PRIMARY KEY,
        profile_enc BLOB NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        ts TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        session_id INTEGER,
        source TEXT,
        detail TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: web logins (server side, so logging out or removing a user ends them
    # in every gunicorn worker) and failed-login counters per account and per
    # client address, shared by all workers.
    """
    CREATE TABLE web_logins (
        token_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        username TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        source TEXT
    );
    CREATE TABLE login_failures (
        scope TEXT NOT NULL CHECK (scope IN ('user', 'address')),
        key TEXT NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0,
        last_failure TEXT,
        locked_until TEXT,
        PRIMARY KEY (scope, key)
    );
    """,
    # 3: one failed-login counter. The unlock delay counted in
    # users.failed_logins now counts in login_failures with the web login, so
    # the column goes (its counts carried over); users.locked_until was never
    # used. DROP COLUMN needs SQLite 3.35 (bookworm has 3.40).
    """
    INSERT INTO login_failures(scope, key, failures, last_failure)
        SELECT 'user', lower(trim(username)), failed_logins,
               strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')
        FROM users WHERE failed_logins > 0
        ON CONFLICT(scope, key) DO UPDATE SET failures = max(failures, excluded.failures);
    ALTER TABLE users DROP COLUMN failed_logins;
    ALTER TABLE users DROP COLUMN locked_until;
    """,
    # 4: roles and ownership, damage and why a recording ended. The first
    # account (the one that set the device up) becomes the admin; on a device
    # with one account its sessions become that clinician's, on a shared one
    # they stay unassigned until a clinician claims them. unreadable_s counts
    # the seconds of audio the salvage reader had to skip (never deleted
    # automatically while > 0); end_reason says why a recording stopped when
    # it was not the button (disk full, crash recovered).
    """
    ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'clinician'
        CHECK (role IN ('admin', 'clinician'));
    UPDATE users SET role = 'admin' WHERE id = (SELECT min(id) FROM users);
    ALTER TABLE sessions ADD COLUMN owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL;
    UPDATE sessions SET owner_id = (SELECT min(id) FROM users)
        WHERE (SELECT count(*) FROM users) = 1;
    CREATE INDEX sessions_owner ON sessions(owner_id);
    ALTER TABLE sessions ADD COLUMN unreadable_s REAL NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN end_reason TEXT;
    CREATE TABLE session_shares (
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        PRIMARY KEY (session_id, user_id)
    );
    """,
    # 5: the drafted note. drafting is NULL until a transcript exists, then
    # 'queued' (waiting for the model, or a Redraft asked for), 'drafting',
    # 'done', 'failed' (drafting_reason says why; the transcript and facts stay)
    # or 'off' (no model configured). draft_template is the template a Redraft
    # asked for (NULL: the practice's). The overnight job and `holdnote draft`
    # pick up queued and interrupted drafts from these columns, so they never
    # decrypt a note to find work.
    """
    ALTER TABLE sessions ADD COLUMN drafting TEXT
        CHECK (drafting IN ('queued', 'drafting', 'done', 'failed', 'off'));
    ALTER TABLE sessions ADD COLUMN drafting_reason TEXT;
    ALTER TABLE sessions ADD COLUMN drafting_progress REAL NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN draft_template TEXT;
    CREATE INDEX sessions_drafting ON sessions(drafting) WHERE drafting IS NOT NULL;
""",
    # 6: corrections. transcripts.result_enc holds the corrected transcript and
    # transcripts.version counts the corrections (0: as recognised); each earlier
    # result is kept encrypted in transcript_versions (version 0: the recognised
    # one, saved at the first correction). summary names what changed without
    # client text ("line 12 text"). Deleting the session deletes them all.
    """
    ALTER TABLE transcripts ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE transcript_versions (
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        author TEXT,
        summary TEXT NOT NULL,
        result_enc BLOB NOT NULL,
        PRIMARY KEY (session_id, version)
    );
""",
    # 7: "Transcribe now". When the clinician asked for a waiting session to be
    # transcribed at once (NULL: not asked); `holdnote transcribe --queued` takes
    # these sessions, the overnight job too, and the job clears it once the
    # session has a transcript or failed.
    """
    ALTER TABLE sessions ADD COLUMN transcribe_requested_at TEXT;
""",
    # 8: backups. One row per backup attempt: the file written to target_dir
    # (an encrypted age file), its size and session count, when it was verified
    # (NULL: not yet, or the check failed) and why it failed (NULL: it did not).
    # The device page and /healthz read the newest verified one.
    """
    CREATE TABLE backups (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at TEXT NOT NULL,
        file_name TEXT NOT NULL,
        target_dir TEXT NOT NULL,
        size_bytes INTEGER NOT NULL DEFAULT 0,
        sessions INTEGER NOT NULL DEFAULT 0,
        verified_at TEXT,
        error TEXT
    );
    CREATE INDEX backups_created ON backups(created_at);
""",
    # 9: clients over time. A client belongs to a clinician like a session does;
    # record_enc is the encrypted record (display name or initials, optional
    # identifier, start date, treatment goals). client_consents keeps every
    # consent given (date, form version, who obtained it, scope as a
    # comma-separated subset of recording,transcription,drafting) and when it was
    # withdrawn. sessions.client_id assigns a session (NULL: not assigned).
    # formulations are a client's case conceptualizations, each version a row,
    # drafted on demand and signed apart from session notes. users gain the
    # profile fields an exported note prints (full name, credentials).
    """
    CREATE TABLE clients (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
        record_enc BLOB NOT NULL,
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX clients_owner ON clients(owner_id);
    CREATE TABLE client_consents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
        given_on TEXT NOT NULL,
        form_version TEXT NOT NULL,
        obtained_by TEXT NOT NULL,
        scope TEXT NOT NULL,
        withdrawn_on TEXT,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL
    );
    CREATE INDEX client_consents_client ON client_consents(client_id);
    ALTER TABLE sessions ADD COLUMN client_id INTEGER REFERENCES clients(id) ON DELETE SET NULL;
    CREATE INDEX sessions_client ON sessions(client_id) WHERE client_id IS NOT NULL;
    CREATE TABLE formulations (
        client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'drafting', 'draft', 'failed', 'signed')),
        reason TEXT,
        progress REAL NOT NULL DEFAULT 0,
        body_enc BLOB,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        updated_by TEXT,
        signed_at TEXT,
        signed_by TEXT,
        PRIMARY KEY (client_id, version)
    );
    ALTER TABLE users ADD COLUMN full_name TEXT;
    ALTER TABLE users ADD COLUMN credentials TEXT;
""",
    # 10: process notes. A clinician's private note on a session (psychotherapy
    # notes in the health-privacy sense): one per session and author, encrypted,
    # readable only by its author, never exported, searched or given to a model.
    # Deleting the session or the author deletes it.
    """
    CREATE TABLE process_notes (
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        author_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        body_enc BLOB NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (session_id, author_id)
    );
""",
)
