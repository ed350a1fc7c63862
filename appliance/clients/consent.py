"""Consent on record: what a client agreed to, when, and whether it was withdrawn.

A consent has a date, a form version, who obtained it and a scope, a subset of
:data:`SCOPES`. It covers a session on the days from its date until (not
including) the day it was withdrawn. A withdrawal is dated and kept, so the
history shows what was agreed at any time. Drafting by the on-device model
stops for a client whose newest consent was withdrawn or does not include it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from appliance.store.clients import ConsentRow
from appliance.store.db import Storage

SCOPES = ("recording", "transcription", "drafting")
SCOPE_WORDS = {"recording": "recording", "transcription": "transcription",
               "drafting": "drafting by the on-device model"}
MAX_FORM_VERSION_CHARS = 60
MAX_OBTAINED_BY_CHARS = 120


class ConsentError(ValueError):
    """A consent that cannot be recorded as entered; the message says what to change."""


@dataclass(frozen=True)
class Consent:
    """One consent on record."""

    id: int
    client_id: int
    given_on: date
    form_version: str
    obtained_by: str
    scope: frozenset[str]
    withdrawn_on: date | None

    def covers(self, scope: str, on: date) -> bool:
        """Whether this consent covers ``scope`` on the day ``on``."""
        return (scope in self.scope and self.given_on <= on
                and (self.withdrawn_on is None or on < self.withdrawn_on))


def day(on: date) -> str:
    """A date as the pages write it: 5 Oct 2026."""
    return f"{on.day} {on:%b %Y}"


def _consent(row: ConsentRow) -> Consent:
    return Consent(row.id, row.client_id, row.given_on, row.form_version, row.obtained_by,
                   frozenset(row.scope), row.withdrawn_on)


def consents_of(storage: Storage, client_id: int) -> list[Consent]:
    """A client's consents, newest first."""
    return [_consent(row) for row in storage.consents(client_id)]


def in_scope(consents: Iterable[Consent], scope: str, on: date) -> bool:
    """Whether a consent given on or before ``on``, not withdrawn by then, includes ``scope``."""
    return any(c.covers(scope, on) for c in consents)


def gaps(consents: Sequence[Consent], on: date) -> tuple[str, ...]:
    """The scopes no consent covered on ``on``, in the order of :data:`SCOPES`."""
    return tuple(scope for scope in SCOPES if not in_scope(consents, scope, on))


def gap_message(missing: Sequence[str], on: date) -> str | None:
    """The mark a session gets: "No consent on record for recording on 5 Oct 2026"; None if none."""
    if not missing:
        return None
    words = [SCOPE_WORDS[s] for s in missing]
    listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    return f"No consent on record for {listed} on {day(on)}"


def withdrawn(consents: Sequence[Consent]) -> Consent | None:
    """The newest consent if it was withdrawn (the client's current wish), else None."""
    return consents[0] if consents and consents[0].withdrawn_on is not None else None


def drafting_blocked(storage: Storage, client_id: int, on: date) -> str | None:
    """Why drafting must not run for the client's session of ``on``, or None if it may.

    Blocked when the newest consent was withdrawn or does not include drafting:
    the client's current wish counts, whatever the session's date. A client with
    no consent on record is not blocked; that session is marked on its page.
    """
    consents = consents_of(storage, client_id)
    if not consents:
        return None
    newest = consents[0]
    if newest.withdrawn_on is not None:
        return (f"The client withdrew consent on {day(newest.withdrawn_on)}: no note is drafted "
                f"for this client (session of {day(on)}).")
    if "drafting" not in newest.scope:
        return (f"The client's consent of {day(newest.given_on)} does not cover drafting by the "
                f"on-device model: no note is drafted (session of {day(on)}).")
    return None


def _check_date(on: date, today: date, what: str) -> None:
    if on > today:
        raise ConsentError(f"The {what} {day(on)} is in the future; enter the day it happened "
                           f"(today is {day(today)} or earlier).")


def parse_date(text: str, what: str) -> date:
    """A form's YYYY-MM-DD date; :class:`ConsentError` naming the field otherwise."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ConsentError(f"The {what} {text.strip()!r} is not a date (YYYY-MM-DD).") from None


def record_consent(storage: Storage, client_id: int, *, given_on: date, form_version: str,
                   obtained_by: str, scope: Iterable[str], by: str, today: date) -> int:
    """Check and store a consent; its id. :class:`ConsentError`, nothing stored, if it is not valid."""
    _check_date(given_on, today, "consent date")
    chosen = tuple(s for s in SCOPES if s in set(scope))
    unknown = set(scope) - set(SCOPES)
    if unknown:
        raise ConsentError(f"Unknown consent scope {min(unknown)!r}; "
                           f"choose from {', '.join(SCOPES)}.")
    if not chosen:
        raise ConsentError("Tick at least one thing the client consented to "
                           "(recording, transcription, drafting).")
    form_version = " ".join(form_version.split())
    obtained_by = " ".join(obtained_by.split())
    if not form_version or len(form_version) > MAX_FORM_VERSION_CHARS:
        raise ConsentError(f"Enter the consent form's version (at most {MAX_FORM_VERSION_CHARS} "
                           "characters).")
    if not obtained_by or len(obtained_by) > MAX_OBTAINED_BY_CHARS:
        raise ConsentError(f"Enter who obtained the consent (at most {MAX_OBTAINED_BY_CHARS} "
                           "characters).")
    return storage.add_consent(client_id, given_on=given_on, form_version=form_version,
                               obtained_by=obtained_by, scope=chosen, by=by)


def withdraw(storage: Storage, client_id: int, consent_id: int, *, on: date, today: date) -> None:
    """Date a consent's withdrawal; :class:`ConsentError`, nothing changed, if it cannot be."""
    row = storage.consent(consent_id)
    if row is None or row.client_id != client_id:
        raise ConsentError("There is no such consent for this client; reload the page.")
    if row.withdrawn_on is not None:
        raise ConsentError(f"This consent was withdrawn already, on {day(row.withdrawn_on)}.")
    _check_date(on, today, "withdrawal date")
    if on < row.given_on:
        raise ConsentError(f"The withdrawal date {day(on)} is before the consent was given "
                           f"({day(row.given_on)}).")
    storage.withdraw_consent(consent_id, on)
