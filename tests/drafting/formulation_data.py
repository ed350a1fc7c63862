"""The shared client series as a client's signed sessions, for the case-conceptualization tests
and the bench: reference transcripts, and signed notes written from facts.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from appliance import age
from appliance.store.db import State, Storage, apply_transition, write_note
from tests.drafting.conftest import SERIES, series_result

WEEKS = ("week1", "week2", "week3")


def series_facts() -> dict:
    """facts.json of the shared series."""
    return json.loads((SERIES / "facts.json").read_text())


class Clock:
    """A clock the tests move: each session starts on its date in the series."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment

    def on(self, day: str) -> None:
        """Move to 09:00 UTC on ``day`` (ISO date)."""
        self.moment = datetime.fromisoformat(f"{day}T09:00:00+00:00")


def signed_note(week: str) -> dict:
    """A SOAP note the clinician signed, in their words from facts.json."""
    session = series_facts()["sessions"][week]
    said = " ".join(f"{fact['fact'].capitalize()}." for fact in session["facts"])
    plan = " ".join(f"{step.capitalize()}." for step in session["plan"])
    return {"template": "SOAP", "header": f"SOAP session note, {session['date']}", "sections": [
        {"key": "subjective", "title": "Subjective", "text": said},
        {"key": "objective", "title": "Objective", "text": "Attended on time."},
        {"key": "assessment", "title": "Assessment", "text": "Engaged throughout."},
        {"key": "plan", "title": "Plan", "text": plan}]}


def add_session(storage: Storage, clock: Clock, recipient, week: str, client_id: int,
                owner_id: int, *, sign: bool = True) -> int:
    """One session of the series: transcript stored, its note signed (or left a draft)."""
    clock.on(series_facts()["sessions"][week]["date"])
    result = series_result(week)
    sid = storage.create_session(channels=1, owner_id=owner_id).id
    storage.transition(sid, State.RECORDED, ended_at=storage.now(), duration_s=result.duration_s)
    storage.transition(sid, State.TRANSCRIBING)
    storage.save_transcript(sid, age.encrypt(result.to_bytes(), [recipient]))
    note = signed_note(week)
    storage.save_note(sid, age.encrypt(json.dumps(note).encode(), [recipient]), author="holdnote")
    storage.transition(sid, State.DRAFT, progress=1.0, drafting="done")
    storage.assign_client(sid, client_id)
    if sign:
        blob = age.encrypt(json.dumps({**note, "status": "signed"}).encode(), [recipient])
        with storage.connect() as conn:
            apply_transition(conn, sid, State.SIGNED)
            write_note(conn, sid, blob, "dr.rivera", storage.now(), signed=True)
    return sid
