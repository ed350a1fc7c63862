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
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from appliance import age
from appliance.access import failures
from appliance.access.failures import failure_delay
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
from appliance.store.db import Storage, iso, put_setting

RECIPIENT_SETTING = "practice_recipient"
IDENTITY_FILE = "identity.txt"
MIN_PASSPHRASE = 10


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


def record_login(conn: sqlite3.Connection, username: str, moment: str) -> int | None:
    """Note a web login of ``username`` at ``moment``; the user's id, or None if unknown."""
    row = conn.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()
    if row is None:
        return None
    conn.execute("UPDATE users SET last_login = ? WHERE id = ?", (moment, row["id"]))
    return row["id"]


def user_count(storage: Storage) -> int:
    """How many clinician accounts exist (none before first-run setup)."""
    with storage.read() as conn:
        return conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]


class KeyStore:
    """Key slots and users in the database; the unlocked identity in ``runtime_dir``.

    ``sleep`` is injected so tests can observe the growing delay without waiting,
    and ``hasher`` so they can use a cheap Argon2 setting.
    """

    def __init__(
        self,
        storage: Storage,
        runtime_dir: Path,
        work_factor: int = 18,
        sleep: Callable[[float], None] = time.sleep,
        hasher: PasswordHasher | None = None,
    ):
        self.storage = storage
        self.runtime_dir = Path(runtime_dir)
        self.work_factor = work_factor
        self.sleep = sleep
        # Argon2id with the library's defaults (64 MiB, 3 passes); tests pass a cheaper one.
        self.hasher = hasher or PasswordHasher()

    @classmethod
    def for_config(cls, cfg: Config, storage: Storage) -> KeyStore:
        """The key store as configured: its runtime directory and scrypt work factor.

        Every process builds its key store here, so none falls back to a default
        work factor that differs from the configured one.
        """
        return cls(storage, cfg.paths.runtime_dir, cfg.security.scrypt_work_factor)

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
        return age.X25519Identity.from_str(text.strip())

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
            rows = conn.execute(
                "SELECT username, created_at, last_login FROM users ORDER BY username").fetchall()
        return [User(r["username"], datetime.fromisoformat(r["created_at"]),
                     datetime.fromisoformat(r["last_login"]) if r["last_login"] else None)
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
            self._insert_user(conn, username, passphrase, user_slot)
            conn.execute(
                "INSERT INTO key_slots(user_id, kind, slot_enc, created_at) "
                "VALUES(NULL, 'recovery', ?, ?)",
                (recovery_slot, iso(self.storage.now())),
            )
            put_setting(conn, RECIPIENT_SETTING, str(identity.to_recipient()))
        self._place(identity)
        return str(recovery)

    def add_user(self, username: str, passphrase: str, identity: age.X25519Identity) -> None:
        """Give another clinician a slot; needs the unlocked identity."""
        self._check_identity(identity)
        check_passphrase(passphrase)
        slot = self._seal(identity, passphrase)
        with self.storage.connect() as conn:
            self._insert_user(conn, username, passphrase, slot)

    def remove_user(self, username: str) -> None:
        """Delete a user and their slot; the last user cannot be removed."""
        with self.storage.connect() as conn:
            count = conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
            row = conn.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()
            if row is None:
                raise UnknownUserError(f"no user named {username!r}")
            if count == 1:
                raise KeysError(
                    f"{username!r} is the only user; add another before removing this one"
                )
            conn.execute("DELETE FROM users WHERE id = ?", (row["id"],))

    def change_passphrase(self, username: str, old: str, new: str) -> None:
        """Re-seal a user's slot under a new passphrase after checking the old one."""
        check_passphrase(new)
        identity = self.open_slot(username, old)
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
            if row is not None:
                conn.execute("DELETE FROM users WHERE id = ?", (row["id"],))
            self._insert_user(conn, username, new_passphrase, slot)
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

    def open_slot(self, username: str, passphrase: str) -> age.X25519Identity:
        """Decrypt a user's slot; waits longer after each consecutive failure.

        The failures are the account's in :mod:`appliance.access.failures`, the same
        count the web login keeps, so one rule covers every passphrase form.
        """
        with self.storage.connect() as conn:
            row = conn.execute(
                "SELECT k.slot_enc FROM users u "
                "JOIN key_slots k ON k.user_id = u.id WHERE u.username = ?",
                (username,),
            ).fetchone()
            count = failures.read(conn, failures.USER, failures.user_key(username))
        if row is None:
            raise UnknownUserError(f"no user named {username!r}")
        delay = failure_delay(count.failures if count else 0)
        if delay:
            self.sleep(delay)
        try:
            plain = age.decrypt(row["slot_enc"], [age.ScryptIdentity(passphrase, 22)])
        except NoIdentityMatchError:
            self._count_failure(username)
            raise WrongPassphraseError(
                f"wrong passphrase for {username!r}; nothing was changed"
            ) from None
        self._reset_failures(username)
        identity = age.parse_identities(plain.decode("ascii"))[0]
        if not isinstance(identity, age.X25519Identity):  # _seal only ever stores one
            raise KeyFormatError(f"the key slot of {username!r} does not hold an X25519 identity")
        return identity

    def unlock(self, username: str, passphrase: str) -> None:
        """Open a user's slot and place the identity in the runtime directory."""
        self._place(self.open_slot(username, passphrase))

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

    def _insert_user(self, conn, username: str, passphrase: str, slot: bytes) -> None:
        username = username.strip()
        if not username or len(username) > 64:
            raise UserExistsError("a user name needs 1 to 64 characters")
        if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
            raise UserExistsError(f"a user named {username!r} already exists")
        now = iso(self.storage.now())
        # A new account (or one re-created by recovery) starts with no failures.
        failures.clear(conn, failures.USER, failures.user_key(username))
        cursor = conn.execute(
            "INSERT INTO users(username, password_hash, created_at) VALUES(?, ?, ?)",
            (username, self.hasher.hash(passphrase), now),
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

    def _count_failure(self, username: str) -> None:
        with self.storage.connect() as conn:
            failures.record(conn, failures.USER, failures.user_key(username), self.storage.now())

    def _reset_failures(self, username: str) -> None:
        with self.storage.connect() as conn:
            failures.clear(conn, failures.USER, failures.user_key(username))

