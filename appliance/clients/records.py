"""A client's record: display name or initials, identifier, start date, treatment goals.

The record is one JSON document sealed to the practice recipient with age,
like a session's label: the database holds only its ciphertext, the owner,
the status and dates. It is opened with the unlocked practice identity, so a
locked device shows no client at all.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from appliance import age
from appliance.errors import CryptoError
from appliance.store.clients import ClientRow
from appliance.store.db import Storage

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 120
MAX_IDENTIFIER_CHARS = 60
MAX_GOALS = 20
MAX_GOAL_CHARS = 300

# How a record's ciphertext is opened: by default age with the identity; the web
# pages pass their in-memory cache's decrypt so a list does not decrypt twice.
Decrypt = Callable[[bytes], bytes]


class RecordError(ValueError):
    """A client record that cannot be saved as entered; the message says what to change."""


@dataclass(frozen=True)
class ClientRecord:
    """What identifies a client and what the work is for (encrypted at rest)."""

    name: str
    identifier: str = ""
    start_date: date | None = None
    goals: tuple[str, ...] = ()
    # True when the stored record did not decrypt (the name then says so).
    damaged: bool = False


@dataclass(frozen=True)
class Client:
    """A client with its record opened."""

    id: int
    owner_id: int | None
    status: str
    record: ClientRecord
    created_at: str

    @property
    def active(self) -> bool:
        """Whether sessions may be assigned to the client."""
        return self.status == "active"


def make_record(name: str, identifier: str = "", start_date: str = "",
                goals: str = "") -> ClientRecord:
    """A record from form text (goals one per line); :class:`RecordError` naming the bad field."""
    name = " ".join(name.split())
    identifier = " ".join(identifier.split())
    if not name:
        raise RecordError("Enter a display name or initials for the client.")
    if len(name) > MAX_NAME_CHARS:
        raise RecordError(f"The display name may have at most {MAX_NAME_CHARS} characters.")
    if len(identifier) > MAX_IDENTIFIER_CHARS:
        raise RecordError(f"The identifier may have at most {MAX_IDENTIFIER_CHARS} characters.")
    lines = tuple(" ".join(line.split()) for line in goals.splitlines())
    kept = tuple(line for line in lines if line)
    if len(kept) > MAX_GOALS:
        raise RecordError(f"Enter at most {MAX_GOALS} treatment goals, one per line.")
    if any(len(goal) > MAX_GOAL_CHARS for goal in kept):
        raise RecordError(f"Each treatment goal may have at most {MAX_GOAL_CHARS} characters.")
    return ClientRecord(name, identifier, _date(start_date), kept)


def _date(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RecordError(f"The start date {text!r} is not a date (YYYY-MM-DD).") from None


def seal_record(record: ClientRecord, recipient: age.X25519Recipient) -> bytes:
    """The record as an age ciphertext to the practice recipient."""
    document = {"name": record.name, "identifier": record.identifier,
                "start_date": record.start_date.isoformat() if record.start_date else None,
                "goals": list(record.goals)}
    return age.encrypt(json.dumps(document, ensure_ascii=False).encode("utf-8"), [recipient])


def open_record(row: ClientRow, decrypt: Decrypt) -> ClientRecord:
    """The record of a stored client; a record that does not open is marked, not raised."""
    try:
        document = json.loads(decrypt(row.record_enc))
        start = document.get("start_date")
        return ClientRecord(name=str(document["name"]), identifier=str(document.get("identifier", "")),
                            start_date=date.fromisoformat(start) if start else None,
                            goals=tuple(str(g) for g in document.get("goals", ())))
    except (CryptoError, ValueError, KeyError, TypeError) as error:
        log.warning("client %s: the stored record cannot be read (%s)", row.id, type(error).__name__)
        return ClientRecord(name=f"Client {row.id} (record unreadable)", damaged=True)


def _decrypt_with(identity: age.X25519Identity, decrypt: Decrypt | None) -> Decrypt:
    return decrypt or (lambda blob: age.decrypt(blob, [identity]))


def client_from_row(row: ClientRow, decrypt: Decrypt) -> Client:
    """A stored client with its record opened."""
    return Client(row.id, row.owner_id, row.status, open_record(row, decrypt), row.created_at)


def load_client(storage: Storage, client_id: int, identity: age.X25519Identity,
                decrypt: Decrypt | None = None) -> Client | None:
    """One client with its record opened, or None if there is no such client."""
    row = storage.client(client_id)
    return client_from_row(row, _decrypt_with(identity, decrypt)) if row else None


def clients_for(storage: Storage, owner_id: int, identity: age.X25519Identity,
                decrypt: Decrypt | None = None) -> list[Client]:
    """A clinician's clients with their records opened: active first, then closed."""
    opener = _decrypt_with(identity, decrypt)
    return [client_from_row(row, opener) for row in storage.clients_of(owner_id)]
