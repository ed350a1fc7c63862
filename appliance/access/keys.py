"""The practice identity, its key slots, users, and the lock/unlock state.

The practice identity (an age X25519 private key) is never stored in the
clear on disk. It lives only in key slots: one per user, the identity
encrypted to that user's passphrase with age's scrypt stanza, plus one
recovery slot encrypted to a recovery key that is shown once. Unlocking opens
a slot and places the identity in the RAM-only runtime directory, where the
overnight job and the web UI read it; a reboot therefore locks the device.
The public recipient is stored in the clear: recording needs no secret.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from appliance import age
from appliance.access import failures
from appliance.access.failures import CONSOLE, Counter, Guard
from appliance.config import Config
from appliance.errors import (
    AlreadyInitializedError,
    DeviceLockedError,
    KeyFormatError,
    KeysError,
    NoIdentityMatchError,
    NotInitializedError,
    UnknownUserError,
    UserExistsError,
    WeakPassphraseError,
    WrongPassphraseError,
)
from appliance.fsutil import atomic_write
from appliance.store.db import Storage, Viewer, hand_over_sessions, iso, put_setting

RECIPIENT_SETTING = "practice_recipient"
IDENTITY_FILE = "identity.txt"
MIN_PASSPHRASE = 10
ADMIN = "admin"
CLINICIAN = "clinician"
ROLES = (ADMIN, CLINICIAN)
# Full name and credentials each fit on one signature line.
MAX_PROFILE_CHARS = 120


@dataclass(frozen=True)
class KeyStatus:
    """What ``holdnote keys status`` reports."""

    initialized: bool
    unlocked: bool
    recipient: str | None
    users: tuple[str, ...]
    has_recovery: bool


def check_passphrase(passphrase: str) -> None:
    """Refuse passphrases a thief could guess from a stolen SD card."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise WeakPassphraseError(
            f"passphrase must be at least {MIN_PASSPHRASE} characters; "
            "a few unrelated words are easy to remember and hard to guess"
        )


@dataclass(frozen=True)
class User:
    """A clinician account as the admin page lists it."""

    username: str
    created_at: datetime
    last_login: datetime | None
    id: int = 0
    role: str = CLINICIAN

    @property
    def admin(self) -> bool:
        """True for an account that manages users and the device."""
        return self.role == ADMIN


def record_login(conn: sqlite3.Connection, username: str, moment: str) -> int | None:
    """Note a web login of ``username`` at ``moment``; the user's id, or None if unknown."""
    row = conn.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()
    if row is None:
        return None
    conn.execute("UPDATE users SET last_login = ? WHERE id = ?", (moment, row["id"]))
    return row["id"]


def viewer(storage: Storage, username: str) -> Viewer | None:
    """The account ``username`` as session queries take it, or None if it is gone."""
    with storage.read() as conn:
        row = conn.execute("SELECT id, username, role FROM users WHERE username = ?",
                           (username,)).fetchone()
    return Viewer(row["id"], row["username"], row["role"] == ADMIN) if row else None


@dataclass(frozen=True)
class Profile:
    """What an exported or printed note says about its clinician ("" where unset)."""

    username: str
    full_name: str = ""
    credentials: str = ""

    @property
    def signature_name(self) -> str:
        """"Ana Pérez, PhD, Licensed Psychologist"; the user name while no full name is set."""
        name = self.full_name or self.username
        return f"{name}, {self.credentials}" if self.credentials else name


def profile(storage: Storage, username: str) -> Profile | None:
    """The profile of ``username``, or None if there is no such account (any more)."""
    with storage.read() as conn:
        row = conn.execute("SELECT username, full_name, credentials FROM users "
                           "WHERE username = ?", (username,)).fetchone()
    if row is None:
        return None
    return Profile(row["username"], row["full_name"] or "", row["credentials"] or "")


def _profile_field(value: str, what: str) -> str:
    value = " ".join(value.split())  # one line: it is printed in a heading and a signature
    if len(value) > MAX_PROFILE_CHARS:
        raise KeysError(f"the {what} is {len(value)} characters; at most {MAX_PROFILE_CHARS} fit "
                        "on a signature line")
    return value


def set_profile(storage: Storage, username: str, full_name: str, credentials: str) -> Profile:
    """Store the full name and credentials of ``username`` (spacing tidied); the result.

    Raises :class:`KeysError` for a value too long to print, :class:`UnknownUserError`
    for an unknown account.
    """
    updated = Profile(username, _profile_field(full_name, "full name"),
                      _profile_field(credentials, "credentials"))
    with storage.connect() as conn:
        changed = conn.execute("UPDATE users SET full_name = ?, credentials = ? WHERE username = ?",
                               (updated.full_name or None, updated.credentials or None,
                                username)).rowcount
    if not changed:
        raise UnknownUserError(f"no user named {username!r}")
    return updated


def room_owner(storage: Storage, clinician: str | None) -> int | None:
    """Whose a new recording is: the room's configured clinician, else the only account.

    ``None`` (unassigned until a clinician claims it) when the configured name
    is not an account, or when nothing is configured and several clinicians
    share the device: guessing would show one client's words to another clinician.
    """
    with storage.read() as conn:
        if clinician:
            row = conn.execute("SELECT id FROM users WHERE username = ?",
                               (clinician,)).fetchone()
            return row["id"] if row else None
        rows = conn.execute("SELECT id FROM users LIMIT 2").fetchall()
    return rows[0]["id"] if len(rows) == 1 else None


def _admins(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM users WHERE role = ?", (ADMIN,)).fetchone()[0]


def _last_admin(username: str) -> KeysError:
    return KeysError(f"{username!r} is the only admin; make another user an admin first, "
                     "so someone can still manage users and the device")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise KeysError(f"a role is one of {', '.join(ROLES)}, not {role!r}")


def user_count(storage: Storage) -> int:
    """How many clinician accounts exist (none before first-run setup)."""
    with storage.read() as conn:
        return conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]


@dataclass(frozen=True)
class SealedSlot:
    """A key slot as stored: the practice identity encrypted (an age file) to a
    user's passphrase (``kind`` "passphrase", ``user`` their name) or to the
    recovery key (``kind`` "recovery", ``user`` None). Backups carry these."""

    kind: str
    user: str | None
    sealed: bytes


def sealed_slots(storage: Storage) -> list[SealedSlot]:
    """Every key slot as stored, the recovery slot last; opening one needs its secret."""
    with storage.read() as conn:
        rows = conn.execute(
            "SELECT k.kind, u.username, k.slot_enc FROM key_slots k "
            "LEFT JOIN users u ON u.id = k.user_id ORDER BY k.kind = 'recovery', u.username"
        ).fetchall()
    return [SealedSlot(r["kind"], r["username"], bytes(r["slot_enc"])) for r in rows]


class KeyStore:
    """Key slots and users in the database; the unlocked identity in ``runtime_dir``.

    ``guard`` applies the one rule for wrong passphrases (by default its
    defaults on ``storage``), and ``hasher`` is injected so tests can use a cheap
    Argon2 setting.
    """

    def __init__(
        self,
        storage: Storage,
        runtime_dir: Path,
        work_factor: int = 18,
        guard: Guard | None = None,
        hasher: PasswordHasher | None = None,
    ):
        self.storage = storage
        self.runtime_dir = Path(runtime_dir)
        self.work_factor = work_factor
        self.guard = guard or Guard(storage, storage.now)
        # Argon2id with the library's defaults (64 MiB, 3 passes); tests pass a cheaper one.
        self.hasher = hasher or PasswordHasher()

    @classmethod
    def for_config(cls, cfg: Config, storage: Storage) -> KeyStore:
        """The key store as configured: its runtime directory and scrypt work factor.

        Every process builds its key store here, so none falls back to a default
        work factor that differs from the configured one.
        """
        guard = Guard(storage, storage.now, cfg.security.max_failed_logins,
                      cfg.security.lockout_minutes)
        return cls(storage, cfg.paths.runtime_dir, cfg.security.scrypt_work_factor, guard)

    # --- state -----------------------------------------------------------------

    @property
    def identity_path(self) -> Path:
        """Where the unlocked identity lives (tmpfs on the appliance)."""
        return self.runtime_dir / IDENTITY_FILE

    def is_initialized(self) -> bool:
        """True once ``init`` has created the practice keys."""
        return self.storage.get_setting(RECIPIENT_SETTING) is not None

    def recipient(self) -> age.X25519Recipient:
        """The practice public key that every recording is encrypted to."""
        text = self.storage.get_setting(RECIPIENT_SETTING)
        if text is None:
            raise NotInitializedError(
                "the practice keys do not exist yet: finish setup in the web page "
                "or run 'holdnote keys init'"
            )
        return age.X25519Recipient.from_str(text)

    def is_unlocked(self) -> bool:
        """True while the identity is in the runtime directory."""
        return self.identity_path.exists()

    def identity(self) -> age.X25519Identity:
        """The unlocked practice identity; :class:`DeviceLockedError` when locked."""
        try:
            text = self.identity_path.read_text(encoding="ascii")
        except FileNotFoundError:
            raise DeviceLockedError(
                "the device is locked: a clinician must log in to the web page "
                "(or run 'holdnote keys unlock')"
            ) from None
        except UnicodeDecodeError:
            text = ""  # binary junk: reported below, like any other damage
        try:
            return age.X25519Identity.from_str(text.strip())
        except KeyFormatError:
            # Locked in effect; unlocking again rewrites the file. Never quote its content.
            raise DeviceLockedError(
                f"{self.identity_path} is damaged (it does not hold the practice identity); "
                "unlock again to replace it: log in to the web page or run "
                "'holdnote keys unlock USER'") from None

    def status(self) -> KeyStatus:
        """A summary for the CLI, the device page and the health check."""
        with self.storage.connect() as conn:
            users = tuple(r[0] for r in conn.execute("SELECT username FROM users ORDER BY id"))
            recovery = conn.execute(
                "SELECT COUNT(*) FROM key_slots WHERE kind = 'recovery'"
            ).fetchone()[0]
        return KeyStatus(
            initialized=self.is_initialized(),
            unlocked=self.is_unlocked(),
            recipient=self.storage.get_setting(RECIPIENT_SETTING),
            users=users,
            has_recovery=bool(recovery),
        )

    def users(self) -> list[User]:
        """Every account, by name."""
        with self.storage.read() as conn:
            rows = conn.execute("SELECT id, username, role, created_at, last_login FROM users "
                                "ORDER BY username").fetchall()
        return [User(r["username"], datetime.fromisoformat(r["created_at"]),
                     datetime.fromisoformat(r["last_login"]) if r["last_login"] else None,
                     r["id"], r["role"])
                for r in rows]

    # --- creating and changing slots ---------------------------------------------

    def init(self, username: str, passphrase: str) -> str:
        """Create the practice identity, the first user and the recovery slot.

        Returns the recovery key text, which is shown once and never stored.
        Leaves the device unlocked, as the person who just set it up expects.
        """
        if self.is_initialized():
            raise AlreadyInitializedError(
                "the practice keys already exist; use 'holdnote keys add-user'"
            )
        check_passphrase(passphrase)
        identity = age.X25519Identity.generate()
        recovery = age.X25519Identity.generate()
        recovery_slot = age.encrypt(str(identity).encode(), [recovery.to_recipient()])
        user_slot = self._seal(identity, passphrase)
        with self.storage.connect() as conn:
            # Checked again under the write lock: of two setups at once, one wins.
            if conn.execute("SELECT 1 FROM key_slots WHERE kind = 'recovery'").fetchone():
                raise AlreadyInitializedError("the practice keys were created a moment ago")
            # The account that sets the device up manages it.
            self._insert_user(conn, username, passphrase, user_slot, role=ADMIN)
            conn.execute(
                "INSERT INTO key_slots(user_id, kind, slot_enc, created_at) "
                "VALUES(NULL, 'recovery', ?, ?)",
                (recovery_slot, iso(self.storage.now())),
            )
            put_setting(conn, RECIPIENT_SETTING, str(identity.to_recipient()))
        self._place(identity)
        return str(recovery)

    def add_user(self, username: str, passphrase: str, identity: age.X25519Identity,
                 role: str = CLINICIAN) -> None:
        """Give another clinician a slot; needs the unlocked identity."""
        self._check_identity(identity)
        check_passphrase(passphrase)
        _check_role(role)
        slot = self._seal(identity, passphrase)
        with self.storage.connect() as conn:
            self._insert_user(conn, username, passphrase, slot, role=role)

    def remove_user(self, username: str, heir: str | None = None) -> int:
        """Delete a user and their slot, handing their sessions to ``heir``.

        The last user and the last admin cannot be removed. Without an heir the
        sessions go to the first remaining admin (the command line's case): they
        never become unassigned, where any colleague could claim them. How many
        sessions moved.
        """
        with self.storage.connect() as conn:
            row = self._row(conn, username)
            if conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 1:
                raise KeysError(
                    f"{username!r} is the only user; add another before removing this one"
                )
            if row["role"] == ADMIN and _admins(conn) == 1:
                raise _last_admin(username)
            heir_row = self._row(conn, heir) if heir is not None else conn.execute(
                "SELECT id, role FROM users WHERE role = ? AND id != ? ORDER BY id LIMIT 1",
                (ADMIN, row["id"])).fetchone()
            if heir_row["id"] == row["id"]:
                raise KeysError("choose a colleague to take over the sessions, "
                                f"not {username!r} themselves")
            moved = hand_over_sessions(conn, row["id"], heir_row["id"])
            conn.execute("DELETE FROM users WHERE id = ?", (row["id"],))
        return moved

    def set_role(self, username: str, role: str) -> bool:
        """Make ``username`` an admin or a clinician; False if that was their role already.

        The last admin cannot become a clinician.
        """
        _check_role(role)
        with self.storage.connect() as conn:
            row = self._row(conn, username)
            if row["role"] == role:
                return False
            if row["role"] == ADMIN and _admins(conn) == 1:
                raise _last_admin(username)
            conn.execute("UPDATE users SET role = ? WHERE id = ?", (role, row["id"]))
        return True

    @staticmethod
    def _row(conn: sqlite3.Connection, username: str) -> sqlite3.Row:
        row = conn.execute("SELECT id, role FROM users WHERE username = ?",
                           (username,)).fetchone()
        if row is None:
            raise UnknownUserError(f"no user named {username!r}")
        return row

    def change_passphrase(self, username: str, old: str, new: str,
                          counter: Counter | None = None) -> None:
        """Re-seal a user's slot under a new passphrase after checking the old one.

        ``counter``: where a wrong ``old`` counts, as for :meth:`open_slot`.
        """
        check_passphrase(new)
        identity = self.open_slot(username, old, counter)
        slot = self._seal(identity, new)
        with self.storage.connect() as conn:
            conn.execute(
                "UPDATE key_slots SET slot_enc = ?, created_at = ? WHERE user_id = "
                "(SELECT id FROM users WHERE username = ?)",
                (slot, iso(self.storage.now()), username),
            )
            conn.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?",
                (self.hasher.hash(new), username),
            )

    def recover(self, recovery_key: str, username: str, new_passphrase: str) -> None:
        """Open the device with the recovery key and give ``username`` a new slot.

        For a clinician who forgot their passphrase: the slot is replaced (the
        account is created if it does not exist) and the device is unlocked.
        """
        check_passphrase(new_passphrase)
        identity = self._open_recovery(recovery_key)
        slot = self._seal(identity, new_passphrase)
        with self.storage.connect() as conn:
            row = conn.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()
            if row is None:
                # Whoever holds the recovery key holds the practice: a new account
                # made with it may manage the device.
                self._insert_user(conn, username, new_passphrase, slot, role=ADMIN)
            else:
                # Replaced in place: the account keeps its id, role and sessions.
                failures.clear(conn, failures.USER, failures.user_key(username))
                conn.execute("UPDATE users SET password_hash = ? WHERE id = ?",
                             (self.hasher.hash(new_passphrase), row["id"]))
                conn.execute("UPDATE key_slots SET slot_enc = ?, created_at = ? "
                             "WHERE user_id = ?", (slot, iso(self.storage.now()), row["id"]))
        self._place(identity)

    # --- opening slots -------------------------------------------------------------

    def verify_password(self, username: str, passphrase: str) -> bool:
        """Check a login password against its memory-hard hash (no slot opened)."""
        with self.storage.connect() as conn:
            row = conn.execute(
                "SELECT password_hash FROM users WHERE username = ?", (username,)
            ).fetchone()
        if row is None:
            # Spend the same effort for unknown users, so timing reveals nothing.
            with contextlib.suppress(VerificationError, InvalidHashError):
                self.hasher.verify(self.hasher.hash("x"), passphrase)
            return False
        try:
            return self.hasher.verify(row["password_hash"], passphrase)
        except (VerificationError, InvalidHashError):
            return False

    def open_slot(self, username: str, passphrase: str,
                  counter: Counter | None = None) -> age.X25519Identity:
        """Decrypt a user's slot, under the one rule for wrong passphrases.

        The attempt counts in ``counter`` of :mod:`appliance.access.failures` (by
        default the device's console); too many failures there raise
        :class:`TooManyAttemptsError` before the passphrase is tried. Nothing sleeps.
        """
        with self.storage.read() as conn:
            row = conn.execute(
                "SELECT k.slot_enc FROM users u "
                "JOIN key_slots k ON k.user_id = u.id WHERE u.username = ?",
                (username,),
            ).fetchone()
        if row is None:
            raise UnknownUserError(f"no user named {username!r}")
        ticket = self.guard.begin(
            counter or failures.counter(username, known=True, device=CONSOLE))
        try:
            plain = age.decrypt(row["slot_enc"], [age.ScryptIdentity(passphrase, 22)])
        except NoIdentityMatchError:
            raise WrongPassphraseError(
                f"wrong passphrase for {username!r}; nothing was changed"
            ) from None
        self.guard.forgive(ticket)
        identity = age.parse_identities(plain.decode("ascii"))[0]
        if not isinstance(identity, age.X25519Identity):  # _seal only ever stores one
            raise KeyFormatError(f"the key slot of {username!r} does not hold an X25519 identity")
        return identity

    def unlock(self, username: str, passphrase: str, counter: Counter | None = None) -> None:
        """Open a user's slot and place the identity in the runtime directory."""
        self._place(self.open_slot(username, passphrase, counter))

    def unlock_with_recovery(self, recovery_key: str) -> None:
        """Unlock with the recovery key alone."""
        self._place(self._open_recovery(recovery_key))

    def lock(self) -> bool:
        """Remove the identity from the runtime directory; True if it was there."""
        try:
            self.identity_path.unlink()
        except FileNotFoundError:
            return False
        return True

    # --- helpers -------------------------------------------------------------------

    def _seal(self, identity: age.X25519Identity, passphrase: str) -> bytes:
        text = f"# Holdnote practice identity\n{identity}\n"
        return age.encrypt(text.encode("ascii"), [age.ScryptRecipient(passphrase, self.work_factor)])

    def _insert_user(self, conn, username: str, passphrase: str, slot: bytes,
                     role: str = CLINICIAN) -> None:
        username = username.strip()
        if not username or len(username) > 64:
            raise UserExistsError("a user name needs 1 to 64 characters")
        if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
            raise UserExistsError(f"a user named {username!r} already exists")
        now = iso(self.storage.now())
        # A new account (or one re-created by recovery) starts with no failures.
        failures.clear(conn, failures.USER, failures.user_key(username))
        cursor = conn.execute(
            "INSERT INTO users(username, password_hash, created_at, role) VALUES(?, ?, ?, ?)",
            (username, self.hasher.hash(passphrase), now, role),
        )
        conn.execute(
            "INSERT INTO key_slots(user_id, kind, slot_enc, created_at) "
            "VALUES(?, 'passphrase', ?, ?)",
            (cursor.lastrowid, slot, now),
        )

    def _open_recovery(self, recovery_key: str) -> age.X25519Identity:
        try:
            key = age.X25519Identity.from_str(recovery_key.strip())
        except KeyFormatError:
            raise WrongPassphraseError(
                "that is not a recovery key: it starts with AGE-SECRET-KEY-1"
            ) from None
        with self.storage.connect() as conn:
            row = conn.execute("SELECT slot_enc FROM key_slots WHERE kind = 'recovery'").fetchone()
        if row is None:
            raise NotInitializedError("this device has no recovery slot")
        try:
            plain = age.decrypt(row["slot_enc"], [key])
        except NoIdentityMatchError:
            raise WrongPassphraseError("that recovery key does not belong to this device") from None
        return age.X25519Identity.from_str(plain.decode("ascii").strip())

    def _check_identity(self, identity: age.X25519Identity) -> None:
        if str(identity.to_recipient()) != str(self.recipient()):
            raise WrongPassphraseError("that identity does not belong to this device")

    def _place(self, identity: age.X25519Identity) -> None:
        self._check_identity(identity)
        self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(self.identity_path, f"{identity}\n".encode("ascii"), mode=0o600)

