"""The Holdnote exception tree.

Every error Holdnote raises on purpose is a :class:`HoldnoteError`. Where a
builtin exception means the same thing, the class also subclasses it (a bad
config value is also a ``ValueError``), so callers can catch either. Messages
name the bad value and say what a person can do about it.
"""

from __future__ import annotations


class HoldnoteError(Exception):
    """Base class of every error Holdnote raises deliberately."""


# --- configuration -----------------------------------------------------------


class ConfigError(HoldnoteError, ValueError):
    """The configuration file is missing, malformed or has invalid values.

    ``problems`` lists one ``"key.path: reason"`` string per problem found.
    """

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


# --- cryptography (age) --------------------------------------------------------


class CryptoError(HoldnoteError):
    """An age file or key could not be used. Subclasses say which part failed."""


class KeyFormatError(CryptoError, ValueError):
    """A key, recipient or identity string is malformed."""


class HeaderError(CryptoError, ValueError):
    """The age header is malformed, unsupported or not canonical."""


class ArmorError(HeaderError):
    """The ASCII armor around an age file is malformed."""


class NoIdentityMatchError(CryptoError):
    """None of the given identities can open this file (wrong key or passphrase)."""


class HeaderMacError(CryptoError):
    """The header's MAC does not match: the header was altered."""


class PayloadError(CryptoError):
    """The encrypted payload failed to authenticate or is malformed."""


class TruncatedStreamError(PayloadError):
    """The payload ends without its final chunk (for example after a power cut).

    The salvage reader can recover the complete chunks before the cut.
    """


# --- keys and unlocking ----------------------------------------------------------


class KeysError(HoldnoteError):
    """Base for key-slot problems."""


class NotInitializedError(KeysError):
    """The practice keys have not been created yet (run ``holdnote keys init``)."""


class AlreadyInitializedError(KeysError):
    """The practice keys already exist; refusing to overwrite them."""


class WrongPassphraseError(KeysError, PermissionError):
    """The passphrase or recovery key did not open the key slot."""


class UnknownUserError(KeysError, LookupError):
    """No user or key slot by that name."""


class WeakPassphraseError(KeysError, ValueError):
    """The new passphrase is too short or otherwise unacceptable."""


class UserExistsError(KeysError, ValueError):
    """A user by that name already exists."""


class DeviceLockedError(KeysError, PermissionError):
    """The practice identity is not unlocked; a clinician must log in first."""


class TooManyAttemptsError(KeysError, PermissionError):
    """Too many wrong passphrases: this attempt was refused unchecked.

    ``retry_after_s`` says when to try again; ``locked`` is True for a lockout
    (minutes) rather than a short wait.
    """

    def __init__(self, message: str, retry_after_s: int, locked: bool = False):
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.locked = locked


# --- storage and audit -----------------------------------------------------------


class StorageError(HoldnoteError):
    """The database or data directory cannot be used."""


class SessionNotFoundError(StorageError, LookupError):
    """No session with that id."""


class InvalidStateError(StorageError):
    """The session is not in a state that allows this action."""


class IllegalTransitionError(InvalidStateError):
    """A session state change that :data:`appliance.store.lifecycle.TRANSITIONS` does not allow.

    The message names the session, its state, the state asked for and where it
    can go instead; ``session_id``, ``current`` and ``to`` hold the same for code.
    No builtin fits (it is neither a bad argument nor a missing thing), so like
    its parent it is caught as :class:`InvalidStateError` or :class:`StorageError`.
    """

    def __init__(self, message: str, *, session_id: int, current: str, to: str):
        super().__init__(message)
        self.session_id, self.current, self.to = session_id, current, to


class AuditError(HoldnoteError):
    """The audit log cannot be written or read."""


# --- recorder --------------------------------------------------------------------


class RecorderError(HoldnoteError):
    """The recorder refused or failed an action."""


class AudioDeviceError(RecorderError, OSError):
    """The microphone is missing or failed."""


class DiskSpaceError(RecorderError, OSError):
    """Too little free space to start or continue a recording."""


class RecorderUnavailableError(RecorderError, ConnectionError):
    """The recorder daemon is not answering on its control socket."""


# --- transcription -----------------------------------------------------------------


class TranscriptionError(HoldnoteError):
    """A recording could not be transcribed."""


class AudioFormatError(TranscriptionError, ValueError):
    """The audio file is empty, corrupt or in an unsupported format."""


class SpeakerModelError(TranscriptionError):
    """The speaker-embedding model file is missing or damaged.

    A session is still transcribed: its lines are left unlabelled, with this reason.
    """


class TranscriptFormatError(HoldnoteError, ValueError):
    """A stored transcript result cannot be read: malformed, or from a newer Holdnote.

    The message names the field at fault (``segments[3].start``) or the version
    found, and what to do. Not a :class:`TranscriptionError`: the recording is
    fine, only the stored result is not.
    """


class ModelNotFoundError(TranscriptionError, FileNotFoundError):
    """The configured Whisper model cannot be found or loaded."""


class DraftingError(HoldnoteError):
    """The note cannot be drafted: the language model is missing, damaged or misbehaves.

    Drafting is an extra on top of the transcript: the session keeps its
    transcript and facts, and the reason is shown on it.
    """


# --- backups -------------------------------------------------------------------


class BackupError(HoldnoteError):
    """Base for backup and restore problems; the previous backups and the device's data stay."""


class BackupTargetError(BackupError, OSError):
    """The backup target cannot take a backup: missing, not mounted, read-only or full.

    The message says which, and what IT should do about it.
    """


class BackupFileError(BackupError, ValueError):
    """A file is not a usable backup: cut short, tampered with, another practice's, or not one."""


class RestoreRefusedError(BackupError):
    """The device already has data and the restore was not asked to replace it."""
