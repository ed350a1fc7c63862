"""Reading a backup file: its header, and its tar members streamed as they decrypt.

A backup is one age file. Its header holds the practice's X25519 stanza, maybe
the offline backup recipient's, and the ``holdnote-key-slots`` stanza (read by
:mod:`appliance.backup.slots`), so a clinician's passphrase or the recovery key
opens it on a new device. The payload is a streamed tar; :func:`open_backup`
hands out its members one at a time and never holds a whole member in memory.

Every way a file can be wrong becomes one :class:`BackupFileError` sentence
(cut short, altered, another practice's, not a backup); a wrong passphrase or
recovery key stays a :class:`WrongPassphraseError`. Verify and restore share
these checks.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from appliance import age
from appliance.backup import slots as slots_mod
from appliance.errors import (
    BackupFileError,
    CryptoError,
    HeaderError,
    HeaderMacError,
    NoIdentityMatchError,
    PayloadError,
    TruncatedStreamError,
)

MANIFEST = "MANIFEST.json"
DB_MEMBER = "holdnote.db"
CONFIG_MEMBER = "config/holdnote.toml"
CERT_MEMBER = "tls/cert.pem"
KEY_MEMBER = "tls/key.pem"
FIXED_MEMBERS = (MANIFEST, DB_MEMBER, CONFIG_MEMBER, CERT_MEMBER, KEY_MEMBER)
# One flat directory of age files: no "..", no subdirectories, nothing absolute.
RECORDING = re.compile(r"recordings/[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.age")
FORMAT = 1

# What opens a backup: the recovery key, (user name, passphrase), or an identity
# (the offline backup key IT keeps, or the practice identity itself).
Opener = str | tuple[str, str] | age.X25519Identity

# The smallest age payload: a 16-byte nonce and one empty final chunk (its tag).
_NONCE, _TAG, _CHUNK = 16, 16, age.CHUNK_SIZE


@dataclass(frozen=True)
class Manifest:
    """``MANIFEST.json``, the first member: what the backup says it holds."""

    format: int
    created_at: str
    holdnote_version: str
    hostname: str
    sessions: int
    recordings: int
    members: tuple[str, ...]

    @classmethod
    def from_json(cls, data: bytes, name: str) -> Manifest:
        """Parse the manifest; :class:`BackupFileError` naming the file when it is not one."""
        try:
            doc = json.loads(data)
            manifest = cls(int(doc["format"]), str(doc["created_at"]),
                           str(doc.get("holdnote_version", "")), str(doc.get("hostname", "")),
                           int(doc["sessions"]), int(doc["recordings"]),
                           tuple(str(m) for m in doc["members"]))
        except (ValueError, KeyError, TypeError):
            raise BackupFileError(f"{name}: its MANIFEST.json is unreadable; "
                                  "it is not a Holdnote backup") from None
        if manifest.format != FORMAT:
            raise BackupFileError(f"{name}: backup format {manifest.format} is not one this "
                                  f"Holdnote reads (format {FORMAT}); update Holdnote first")
        return manifest

    def to_json(self) -> dict:
        """The manifest as JSON data."""
        return {"format": self.format, "created_at": self.created_at,
                "holdnote_version": self.holdnote_version, "hostname": self.hostname,
                "sessions": self.sessions, "recordings": self.recordings,
                "members": list(self.members)}


@dataclass(frozen=True)
class Header:
    """What a backup's header shows without any key: its stanzas and key slots."""

    stanzas: tuple[age.Stanza, ...]
    slots: slots_mod.KeySlots
    recipients: int  # X25519 stanzas: the practice, plus the offline backup key if set


class _Peek:
    """An age identity that notes the header's stanzas, then opens the file key.

    The stanzas arrive before the file key is needed, so the key slots inside
    them can turn a passphrase or the recovery key into the practice identity
    in the same single pass over the file. With no opener it only looks.
    """

    def __init__(self, opener: Opener | None):
        self.opener = opener
        self.stanzas: tuple[age.Stanza, ...] = ()

    def unwrap(self, stanzas: Sequence[age.Stanza]) -> bytes | None:
        self.stanzas = tuple(stanzas)
        if self.opener is None:
            return None
        if isinstance(self.opener, age.X25519Identity):
            # The offline backup key is a recipient of the file itself.
            file_key = self.opener.unwrap(self.stanzas)
            if file_key is not None:
                return file_key
        identity = slots_mod.open_identity(slots_mod.read_slots(self.stanzas), self.opener)
        return identity.unwrap(self.stanzas)


def describe(error: CryptoError, name: str, opener: Opener | None = None) -> BackupFileError:
    """The one sentence for an age failure while reading backup ``name``."""
    if isinstance(error, TruncatedStreamError) and "damaged" in str(error):
        # A short last chunk that fails to authenticate: age cannot tell cut from altered.
        why = "its end is damaged or missing (altered, or cut short); use another backup"
    elif isinstance(error, TruncatedStreamError):
        why = "it was cut short (an incomplete copy?); use another backup"
    elif isinstance(error, PayloadError):
        why = "its content was altered or damaged; use another backup"
    elif isinstance(error, HeaderMacError):
        why = "its header was altered; use another backup"
    elif isinstance(error, NoIdentityMatchError):
        why = ("that key does not open it (the offline backup key of another practice, "
               "or the file's header was altered)" if isinstance(opener, age.X25519Identity)
               else "it was encrypted to another practice's key, or its header was altered")
    elif "cut short" in str(error):
        why = "it was cut short (an incomplete copy?); use another backup"
    elif isinstance(error, HeaderError) and "not an age file" in str(error):
        why = "it is not a Holdnote backup (not an age file)"
    else:
        why = f"it is not a readable Holdnote backup ({error})"
    return BackupFileError(f"{name}: {why}")


def named(error: BackupFileError, name: str) -> BackupFileError:
    """``error`` with the backup's file name in front, as every other message has it."""
    text = str(error)
    return error if text.startswith(f"{name}:") else BackupFileError(f"{name}: {text}")


def _payload_fits(size: int, header_end: int) -> bool:
    """True when ``size`` can end an age payload that starts at ``header_end``."""
    payload = size - header_end - _NONCE
    if payload < _TAG:
        return False
    chunks = -(-payload // (_CHUNK + _TAG))
    last = payload - (chunks - 1) * (_CHUNK + _TAG)
    return last >= _TAG + (1 if chunks > 1 else 0)


def read_header(path: Path) -> Header:
    """Check a backup's structure without a key: an age v1 header with the key
    slots stanza and at least one X25519 recipient, and a size a whole payload can have.

    The header MAC and the content need the key; :func:`open_backup` checks those.
    """
    peek = _Peek(None)
    try:
        with open(path, "rb") as handle:
            with contextlib.suppress(NoIdentityMatchError):
                age.StreamReader(handle, [peek]).close()
            header_end = _header_end(handle, peek)
            size = os.fstat(handle.fileno()).st_size
    except CryptoError as error:
        raise describe(error, path.name) from None
    try:
        slots = slots_mod.read_slots(peek.stanzas)
    except BackupFileError as error:
        raise named(error, path.name) from None
    recipients = sum(1 for s in peek.stanzas if s.type == "X25519")
    if not recipients:
        raise BackupFileError(f"{path.name}: it has no practice recipient; "
                              "it is not a Holdnote backup")
    if not _payload_fits(size, header_end):
        raise BackupFileError(f"{path.name}: it was cut short (an incomplete copy?); "
                              "use another backup")
    return Header(peek.stanzas, slots, recipients)


def _header_end(handle: IO[bytes], peek: _Peek) -> int:
    # The header ends with the MAC line; find it again to know where the payload starts.
    if not peek.stanzas:
        raise HeaderError("input is not an age file")
    handle.seek(0)
    head = handle.read(2 * 1024 * 1024)
    mac = head.find(b"\n--- ")
    end = head.find(b"\n", mac + 1) if mac >= 0 else -1
    if end < 0:
        raise HeaderError("age header is incomplete")
    return end + 1


@dataclass(frozen=True)
class Member:
    """One tar member as it streams past: its name, size and a file to read it from."""

    name: str
    size: int
    stream: IO[bytes]


def check_member(info: tarfile.TarInfo, name: str) -> None:
    """Refuse tar members that are not ours: only regular files with known names."""
    if not info.isfile() or not (info.name in FIXED_MEMBERS or RECORDING.fullmatch(info.name)):
        raise BackupFileError(f"{name}: it holds {info.name!r}, which no Holdnote backup "
                              "has; it is not a Holdnote backup")


@contextlib.contextmanager
def open_backup(path: Path, opener: Opener) -> Iterator[tuple[Manifest, Iterator[Member]]]:
    """Open backup ``path`` with ``opener``: its manifest and its members, streamed.

    Every chunk is authenticated before its bytes come out, and the end of the
    stream is checked, so a cut or altered file raises :class:`BackupFileError`
    by the time the members are exhausted. A wrong passphrase or recovery key
    raises :class:`WrongPassphraseError` before anything is read.
    """
    name = path.name
    try:
        reader = age.StreamReader(path, [_Peek(opener)])
    except CryptoError as error:
        raise describe(error, name, opener) from None
    except BackupFileError as error:  # the key slots (read on the way) are damaged
        raise named(error, name) from None
    except FileNotFoundError:
        raise BackupFileError(f"{path}: no such file") from None
    try:
        with reader, tarfile.open(fileobj=reader, mode="r|") as tar:
            members = _members(tar, name)
            yield _manifest(members, name), members
            for _ in members:  # read to the end: the final chunk proves nothing was cut
                pass
            while reader.read(_CHUNK):
                pass
    except CryptoError as error:
        raise describe(error, name, opener) from None
    except tarfile.TarError as error:
        raise BackupFileError(f"{name}: its content is not the archive a backup holds "
                              f"({error}); it is not a Holdnote backup") from None


def _members(tar: tarfile.TarFile, name: str) -> Iterator[Member]:
    for info in tar:
        check_member(info, name)
        stream = tar.extractfile(info)
        if stream is None:  # only for non-files, refused above
            raise BackupFileError(f"{name}: member {info.name!r} cannot be read")
        yield Member(info.name, info.size, stream)


def _manifest(members: Iterator[Member], name: str) -> Manifest:
    first = next(members, None)
    if first is None or first.name != MANIFEST:
        raise BackupFileError(f"{name}: it does not start with MANIFEST.json; "
                              "it is not a Holdnote backup")
    if first.size > 16 * 1024 * 1024:
        raise BackupFileError(f"{name}: its MANIFEST.json is implausibly large")
    return Manifest.from_json(first.stream.read(), name)


def copy_member(member: Member, dest: Path, mode: int = 0o600) -> None:
    """Stream ``member`` into a new file ``dest`` (created exclusively), fsynced."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        while block := member.stream.read(1024 * 1024):
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    if dest.stat().st_size != member.size:
        raise BackupFileError(f"{member.name} came out {dest.stat().st_size} bytes, "
                              f"not {member.size}: the backup is damaged")


def drain(member: Member) -> int:
    """Read a member to its end (decrypting, so every chunk is checked); its size."""
    total = 0
    while block := member.stream.read(1024 * 1024):
        total += len(block)
    return total
