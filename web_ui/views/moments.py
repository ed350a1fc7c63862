"""Moments to review: the session page's panel and the client page's list over time.

From :func:`appliance.notes.ruptures.candidates`, with the clinician and the client
told apart as the client page tells them (:func:`appliance.clients.lines.identify`).
Only the session's own clinician gets them: a colleague with a read-only share
sees no panel. Worded as cues to look at, never as findings. Computed from the
decrypted transcript and kept in this worker's plaintext cache under the
ciphertext (and the clinician's name and voices), like the transcript view.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from flask import url_for

from appliance.access.roles import Access
from appliance.clients.lines import SessionText, identify
from appliance.notes import ruptures
from appliance.store.db import Session
from appliance.store.voices import voice_names
from appliance.transcript import TranscriptResult
from web_ui.views.context import services
from web_ui.views.plaincache import Damaged, Where

# What each kind is called on the page: what happened, not what it means.
KIND_WORDS = {
    ruptures.CONFRONTATION: "The client pushed back",
    ruptures.WITHDRAWAL: "The client's answers grew short, or they closed a topic",
    ruptures.SILENCE: "A long silence after an interpretation",
}
UNREADABLE = "The transcript cannot be read, so no moment can be looked for."
_WEIGHT = 1  # a few quotes per session: far smaller than the transcript


@dataclass(frozen=True)
class Panel:
    """One session's moments to review, or (``reason``) why none can be looked for."""

    moments: tuple[ruptures.Moment, ...] = ()
    reason: str = ""

    @property
    def repairs(self) -> int:
        """How many of the moments a repair followed."""
        return sum(m.repair_start is not None for m in self.moments)


@dataclass(frozen=True)
class ClientRow:
    """One session on the client page's list of moments."""

    session_id: int
    when: date
    href: str
    panel: Panel


def review(result: TranscriptResult, clinician_name: str, enrolled: Sequence[str]) -> Panel:
    """The moments of one transcript, or why there are none to look for."""
    who = identify(result, clinician_name, enrolled)
    if who.client is None:
        return Panel(reason=who.reason)
    clinician = who.clinician or result.clinician_label(clinician_name, enrolled)
    missing = ruptures.unavailable(result, clinician, who.client)
    if missing is not None:
        return Panel(reason=missing.reason)
    return Panel(ruptures.candidates(result, clinician, who.client))


def _names() -> tuple[str, list[str]]:
    svc = services()
    return svc.cfg.speakers.clinician_name, voice_names(svc.storage)


def session_context(session: Session, level: Access, identity) -> dict:
    """What ``_moments.html`` needs: the panel for the session's owner, nothing for anyone else."""
    svc = services()
    blob = svc.storage.load_transcript(session.id) if level == Access.OWN else None
    if blob is None:
        return {"moments": None, "moment_words": KIND_WORDS}
    name, enrolled = _names()

    def produce() -> Panel:
        result = svc.plain.open(blob, identity, Where(session.id, "transcript"),
                                TranscriptResult.from_bytes)
        return Panel(reason=UNREADABLE) if isinstance(result, Damaged) else (
            review(result, name, enrolled))

    key = blob + json.dumps([name, enrolled]).encode()
    return {"moments": svc.plain.derived("moments", key, produce, _WEIGHT),
            "moment_words": KIND_WORDS}


def client_rows(key: bytes, load: Callable[[], Sequence[SessionText]]) -> list[ClientRow]:
    """Each transcribed session's moments, newest first, each linked to its session page.

    ``key`` is the client page's cache key (the transcripts' version tags); ``load``
    reads the transcripts, called only when the cache has nothing under ``key``.
    """
    name, enrolled = _names()

    def produce() -> list[tuple[int, date, Panel]]:
        return [(t.session_id, t.when, review(t.result, name, enrolled)) for t in load()]

    found = services().plain.derived("client-moments", key, produce, _WEIGHT)
    return [ClientRow(sid, when, url_for("sessions.show", session_id=sid), panel)
            for sid, when, panel in sorted(found, key=lambda row: (row[1], row[0]), reverse=True)]
