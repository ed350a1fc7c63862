"""Which client a new session is likely for, from the clinician's recent sessions.

Therapy is usually weekly at a fixed slot, so the best guess is the client
whose sessions most often fell on the same weekday at about the same hour
(within :data:`HOUR_SLACK`, which absorbs a late start and a clock change);
with no such session, the client seen most recently. Only active clients are
suggested. Pure: the caller passes the sessions and the clients.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

HOUR_SLACK = 1


@dataclass(frozen=True)
class Seen:
    """One earlier session of the clinician: when it started and whose it was."""

    started_at: datetime
    client_id: int


def _same_slot(a: datetime, b: datetime) -> bool:
    minutes = abs((a.hour * 60 + a.minute) - (b.hour * 60 + b.minute))
    return a.weekday() == b.weekday() and minutes <= HOUR_SLACK * 60


def likely_client(started_at: datetime, history: Iterable[Seen],
                  active: Collection[int]) -> int | None:
    """The likely client of a session that started at ``started_at``, or None.

    ``history`` holds the clinician's assigned sessions other than this one (any
    order); ``active`` the ids of their active clients. Ties in the weekly slot
    go to the client seen most recently.
    """
    seen = sorted((s for s in history if s.client_id in active),
                  key=lambda s: s.started_at, reverse=True)
    if not seen:
        return None
    slot = Counter(s.client_id for s in seen if _same_slot(s.started_at, started_at))
    if slot:
        best = max(slot.values())
        # ``seen`` is newest first, so the first client with the best count is the most recent.
        return next(s.client_id for s in seen if slot.get(s.client_id) == best)
    return seen[0].client_id
