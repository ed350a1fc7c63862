"""Who may do what with a session: the one place the rules between clinicians live.

Clinicians on one device share one practice key, so these rules are access
control, not cryptography (the README's security model says what that means).
Every web route asks :func:`access` before it reads or changes a session;
session queries that take a :class:`~appliance.store.db.Viewer` apply the same
rule in SQL (:meth:`~appliance.store.db.Storage.readable_ids`, the list filter).

- A session's **owner** reads and changes it, shares and hands it over.
- A colleague it is **shared** with reads it, and nothing more (a supervisor).
- An **unassigned** session (no owner yet) is listed to every clinician as its
  date and length only, with a Claim button.
- An **admin** manages users and the device; sessions of colleagues are listed
  to them the same way (date and length), so they can reassign or delete one,
  never read it. Deleting a signed note takes an admin.
- Anyone else gets "no such session", so ids are not confirmed.
"""

from __future__ import annotations

import enum

from appliance.store.db import RecordFacts, Session, Viewer


class Access(enum.IntEnum):
    """What a viewer may do with one session, each level including the ones below."""

    NONE = 0
    LISTED = 1  # date, length and state: to claim it (or, for an admin, to manage it)
    READ = 2  # everything shown, nothing changed: a read-only share
    OWN = 3  # read, edit, sign, add addenda, share, hand over, delete


def access(viewer: Viewer, session: Session, shared_with: list[int]) -> Access:
    """The level ``viewer`` has on ``session`` (``shared_with``: the accounts it is shared with)."""
    if session.owner_id == viewer.user_id:
        return Access.OWN
    if viewer.user_id in shared_with:
        return Access.READ
    if session.owner_id is None or viewer.admin:
        return Access.LISTED
    return Access.NONE


def may_reassign(viewer: Viewer, level: Access) -> bool:
    """The owner hands a session over; an admin reassigns any (a colleague left)."""
    return level == Access.OWN or viewer.admin


def deletion_refusal(viewer: Viewer, level: Access, facts: RecordFacts) -> str | None:
    """Why ``viewer`` may not delete this session, or ``None`` if they may.

    A signed note is a clinical record that record-keeping rules keep for
    years: deleting one takes an admin, whoever owns it.
    """
    if facts.signed and not viewer.admin:
        return ("This session has a signed note, a clinical record. Only an admin can "
                "delete it; ask an admin if it really must go.")
    if level == Access.OWN or viewer.admin:
        return None
    if level == Access.READ:
        return "This session is shared with you read-only; only its clinician can delete it."
    return "Claim this session first; only its clinician can delete it."
