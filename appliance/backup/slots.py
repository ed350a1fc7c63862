"""The key slots a backup carries, so a new device can open it.

A backup is encrypted to the practice recipient, whose identity exists on the
device only inside key slots. So the backup's age header carries one extra
stanza of type ``holdnote-key-slots`` holding those slots as JSON::

    {"format": 1, "recipient": "age1…",
     "slots": [{"kind": "passphrase" | "recovery" | "backup", "user": name | null,
                "slot": base64}]}

Each slot is already an age file (scrypt for a clinician's passphrase, X25519
for the recovery key; ``backup``: to ``backup.recipient``, the offline key IT
keeps, added when the device was unlocked at backup time). The stanza opens no
file key itself: age identities skip stanza types they do not know, so our age
module and the stock ``age`` CLI still decrypt the backup with the practice
identity, and the header MAC covers the stanza, so it cannot be swapped.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from appliance import age
from appliance.access import keys
from appliance.age.armor import open_input
from appliance.age.header import parse_header
from appliance.errors import (
    BackupFileError,
    CryptoError,
    KeyFormatError,
    NoIdentityMatchError,
    NotInitializedError,
    UnknownUserError,
    WrongPassphraseError,
)
from appliance.store.db import Storage

STANZA_TYPE = "holdnote-key-slots"
FORMAT = 1
KINDS = ("passphrase", "recovery", "backup")
# Reading a passphrase slot: up to age's own limit, like KeyStore.open_slot.
_READ_WORK_FACTOR = age.MAX_SCRYPT_WORK_FACTOR

Opener = str | tuple[str, str] | age.X25519Identity


@dataclass(frozen=True)
class KeySlot:
    """One slot: the practice identity sealed to a passphrase, the recovery key or the backup key."""

    kind: str
    user: str | None
    sealed: bytes


@dataclass(frozen=True)
class KeySlots:
    """What the stanza holds: the practice recipient and the slots that open its identity."""

    recipient: str
    slots: tuple[KeySlot, ...]

    @property
    def users(self) -> tuple[str, ...]:
        """The clinicians whose passphrase opens this backup."""
        return tuple(s.user for s in self.slots if s.kind == "passphrase" and s.user)

    def to_stanza(self) -> age.Stanza:
        """The header stanza holding these slots."""
        body = {"format": FORMAT, "recipient": self.recipient, "slots": [
            {"kind": s.kind, "user": s.user, "slot": base64.b64encode(s.sealed).decode("ascii")}
            for s in self.slots]}
        return age.Stanza(STANZA_TYPE, (), json.dumps(body, separators=(",", ":")).encode())


class SlotsRecipient:
    """A recipient-like object for :class:`age.StreamWriter`: it adds the slots stanza.

    It wraps nothing: the file key reaches no one through it, so a file must
    also have a real recipient (the practice one).
    """

    def __init__(self, slots: KeySlots):
        self.slots = slots
        self.stanza = slots.to_stanza()

    def wrap(self, file_key: bytes) -> list[age.Stanza]:
        """The slots stanza, the same for every file key."""
        return [self.stanza]


def device_slots(storage: Storage, *, identity: age.X25519Identity | None = None,
                 backup_recipient: str | None = None) -> KeySlots:
    """The device's key slots; plus a ``backup`` slot when both ``identity`` and
    ``backup_recipient`` are given (the offline key then opens the practice data too)."""
    recipient = storage.get_setting(keys.RECIPIENT_SETTING)
    if recipient is None:
        raise NotInitializedError("the practice keys do not exist yet: finish setup in the "
                                  "web page before a backup")
    slots = [KeySlot(s.kind, s.user, s.sealed) for s in keys.sealed_slots(storage)]
    if identity is not None and backup_recipient:
        sealed = age.encrypt(f"{identity}\n".encode("ascii"),
                             [age.X25519Recipient.from_str(backup_recipient)])
        slots.append(KeySlot("backup", None, sealed))
    return KeySlots(recipient, tuple(slots))


def slots_stanza(storage: Storage, **kwargs) -> SlotsRecipient:
    """The writer's recipient-like object for this device's slots (see :func:`device_slots`)."""
    return SlotsRecipient(device_slots(storage, **kwargs))


def header_stanzas(source: str | Path | BinaryIO) -> tuple[age.Stanza, ...]:
    """The stanzas of an age file's header (syntax checked; the MAC needs the key, later)."""
    if isinstance(source, (str, Path)):
        with open(source, "rb") as handle:
            return header_stanzas(handle)
    try:
        return parse_header(open_input(source)).stanzas
    except CryptoError as exc:
        raise BackupFileError(f"not a Holdnote backup: {exc}") from None


def read_slots(stanzas: Sequence[age.Stanza]) -> KeySlots:
    """The key slots from a backup's header stanzas; :class:`BackupFileError` if absent or bad."""
    found = [s for s in stanzas if s.type == STANZA_TYPE]
    if len(found) != 1:
        raise BackupFileError("not a Holdnote backup: its header carries no key slots "
                              "(an age file, but not one `holdnote backup` wrote)")
    try:
        body = json.loads(found[0].body)
        if body["format"] != FORMAT:
            raise BackupFileError(f"this backup's key slots are format {body['format']!r}; "
                                  "this Holdnote reads format 1: restore with a newer Holdnote")
        slots = tuple(_slot(item) for item in body["slots"])
        recipient = str(age.X25519Recipient.from_str(body["recipient"]))
    except (ValueError, KeyError, TypeError, binascii.Error, KeyFormatError):
        raise BackupFileError("this backup's key slots are damaged: it cannot be opened "
                              "with a passphrase or the recovery key") from None
    return KeySlots(recipient, slots)


def _slot(item: dict) -> KeySlot:
    if item["kind"] not in KINDS or not (item["user"] is None or isinstance(item["user"], str)):
        raise ValueError("bad slot")
    return KeySlot(item["kind"], item["user"], base64.b64decode(item["slot"], validate=True))


def open_identity(slots: KeySlots, opener: Opener) -> age.X25519Identity:
    """The practice identity from ``slots``, opened with ``opener``.

    ``opener``: the recovery key (``AGE-SECRET-KEY-1…``), ``(username, passphrase)``,
    or an identity (the practice identity itself, or the offline backup key).
    A wrong one raises :class:`WrongPassphraseError` saying which.
    """
    if isinstance(opener, tuple):
        identity = _open_passphrase(slots, *opener)
    elif isinstance(opener, age.X25519Identity):
        identity = _open_with_key(slots, opener)
    else:
        identity = _open_recovery(slots, opener)
    if str(identity.to_recipient()) != slots.recipient:
        raise BackupFileError("this backup's key slot does not hold its practice key: "
                              "the backup was tampered with")
    return identity


def _open_passphrase(slots: KeySlots, username: str, passphrase: str) -> age.X25519Identity:
    slot = next((s for s in slots.slots if s.kind == "passphrase" and s.user == username), None)
    if slot is None:
        raise UnknownUserError(f"this backup has no key slot for {username!r}; it opens with "
                               f"the passphrase of {', '.join(slots.users) or 'no one'} "
                               "or with the recovery key")
    try:
        return _unseal(slot, age.ScryptIdentity(passphrase, _READ_WORK_FACTOR))
    except NoIdentityMatchError:
        raise WrongPassphraseError(f"wrong passphrase for {username!r} (as it was when "
                                   "the backup was made); nothing was changed") from None


def _open_recovery(slots: KeySlots, text: str) -> age.X25519Identity:
    try:
        key = age.X25519Identity.from_str(text.strip())
    except KeyFormatError:
        raise WrongPassphraseError("that is not a recovery key: it starts with "
                                   "AGE-SECRET-KEY-1") from None
    try:
        return _open_with_key(slots, key)
    except WrongPassphraseError:
        raise WrongPassphraseError("that recovery key does not open this backup: it belongs "
                                   "to another device or practice; nothing was changed") from None


def _open_with_key(slots: KeySlots, key: age.X25519Identity) -> age.X25519Identity:
    if str(key.to_recipient()) == slots.recipient:
        return key  # the practice identity itself
    for slot in slots.slots:
        if slot.kind in ("recovery", "backup"):
            try:
                return _unseal(slot, key)
            except NoIdentityMatchError:
                continue
    raise WrongPassphraseError("that key does not open this backup: it is neither the practice "
                               "key, its recovery key nor its backup key; nothing was changed")


def _unseal(slot: KeySlot, identity: age.Identity) -> age.X25519Identity:
    try:
        plain = age.decrypt(slot.sealed, [identity])
        found = age.parse_identities(plain.decode("ascii"))[0]
    except NoIdentityMatchError:
        raise
    except (CryptoError, UnicodeDecodeError, IndexError):
        raise BackupFileError("a key slot in this backup is damaged") from None
    if not isinstance(found, age.X25519Identity):
        raise BackupFileError("a key slot in this backup does not hold an X25519 identity")
    return found
