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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from appliance import age
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
from appliance.storage import Storage, atomic_write, iso

RECIPIENT_SETTING = "practice_recipient"
IDENTITY_FILE = "identity.txt"
MIN_PASSPHRASE = 10
# Failures before each unlock attempt starts to wait, and the longest wait.
FREE_FAILURES = 2
MAX_DELAY_S = 30.0


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


def failure_delay(failures: int) -> float:
    """Seconds to wait before an attempt after ``failures`` consecutive failures."""
    if failures <= FREE_FAILURES:
        return 0.0
    return min(MAX_DELAY_S, 2.0 ** (failures - FREE_FAILURES - 1))


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
            conn.execute(
                "INSERT INTO settings(key, value) VALUES(?, ?)",
                (RECIPIENT_SETTING, str(identity.to_recipient())),
            )
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
        """Decrypt a user's slot; waits longer after each consecutive failure."""
        with self.storage.connect() as conn:
            row = conn.execute(
                "SELECT u.id, u.failed_logins, k.slot_enc FROM users u "
                "JOIN key_slots k ON k.user_id = u.id WHERE u.username = ?",
                (username,),
            ).fetchone()
        if row is None:
            raise UnknownUserError(f"no user named {username!r}")
        delay = failure_delay(row["failed_logins"])
        if delay:
            self.sleep(delay)
        try:
            plain = age.decrypt(row["slot_enc"], [age.ScryptIdentity(passphrase, 22)])
        except NoIdentityMatchError:
            self._count_failure(row["id"])
            raise WrongPassphraseError(
                f"wrong passphrase for {username!r}; nothing was changed"
            ) from None
        self._reset_failures(row["id"])
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

    def _count_failure(self, user_id: int) -> None:
        with self.storage.connect() as conn:
            conn.execute(
                "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ?", (user_id,)
            )

    def _reset_failures(self, user_id: int) -> None:
        with self.storage.connect() as conn:
            conn.execute("UPDATE users SET failed_logins = 0 WHERE id = ?", (user_id,))

