"""Client context in a draft: the previous signed note's plan, and where this session took it up.

For a session assigned to a client, the newest signed note of the same client
from an earlier session (:mod:`appliance.clients.history`) gives its plan items
(:mod:`followup`); each becomes a statement in a section at the top of the
draft, "From last session", citing the line of this transcript that took it
up or saying it was not discussed. It is made by code, not by the model, so it
is there also when drafting is off; the clinician's own text in the section
is never written over.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from appliance import age
from appliance.clients.history import SignedNote, previous_signed_note
from appliance.drafting import followup
from appliance.notes.facts import Line, transcript_lines
from appliance.store.db import Session, Storage
from appliance.store.voices import voice_names
from appliance.transcript import TranscriptResult


def _day(moment: datetime) -> str:
    local = moment.astimezone() if moment.tzinfo else moment
    return f"{local.day} {local:%b %Y}"


def source_line(previous: SignedNote) -> str:
    """Where the items came from, as the page and the note say it."""
    started, signed = _day(previous.started_at), _day(previous.signed_at)
    if started == signed:
        return f"Plan of the note signed on {signed}"
    return f"Plan of the note of {started}, signed on {signed}"


def section_from(previous: SignedNote | None, lines: Sequence[Line],
                 clinician: str = "Clinician") -> dict | None:
    """The "From last session" section, or None when there is no earlier signed plan."""
    if previous is None:
        return None
    items = followup.note_plan_items(previous.note)
    if not items:
        return None
    source = source_line(previous)
    made = followup.statements(items, lines, source, clinician)
    text = (followup.section_text(made, source)
            or f"{source}: no item could be checked against this transcript.")
    return {"key": followup.KEY, "title": followup.TITLE, "text": text, "machine_text": text,
            "auto": False, "prompt": "", "clinician": None, "drafted": False,
            "statements": made, "source": {"session_id": previous.session_id,
                                           "signed_at": previous.signed_at.isoformat()}}


def section_for(storage: Storage, session: Session, identity, lines: Sequence[Line],
                clinician: str = "Clinician") -> dict | None:
    """The section for ``session`` from its client's previous signed note (None: no context)."""
    return section_from(previous_signed_note(storage, session, identity), lines, clinician)


def put(note: dict, section: Mapping | None) -> bool:
    """Put the section at the top of ``note`` (or take a machine-made one out); True if changed.

    A section the clinician wrote in keeps their text; only its statements are renewed.
    """
    sections = note.setdefault("sections", [])
    index = next((i for i, s in enumerate(sections) if s.get("key") == followup.KEY), None)
    old = sections[index] if index is not None else None
    typed = old is not None and old.get("text") != old.get("machine_text")
    if section is None:
        if old is None or typed:
            return False
        del sections[index]
        return True
    new = dict(section)
    if old is not None and typed:
        new["text"] = old["text"]  # never written over (it differs from machine_text)
    if old is not None:
        sections[index] = new
    else:
        sections.insert(0, new)
    return old != new


def refresh(storage: Storage, session_id: int, identity, recipient,
            clinician_name: str = "Clinician") -> bool:
    """Recompute the section in a stored unsigned draft, without a model; True if it changed.

    For a session whose note the model does not draft (drafting off, or a session
    assigned to a client after its draft was made). A signed note, or a session
    without a transcript or note yet, is left alone (False).
    """
    session = storage.get_session(session_id)
    row, raw = storage.load_note(session_id), storage.load_transcript(session_id)
    if row is None or raw is None or row["signed_at"]:
        return False
    note = json.loads(age.decrypt(row["note_enc"], [identity]))
    result = TranscriptResult.from_bytes(age.decrypt(raw, [identity]))
    lines = transcript_lines(result.segments)
    section = section_for(storage, session, identity, lines,
                          result.clinician_label(clinician_name, voice_names(storage)))
    if not isinstance(note, dict) or not put(note, section):
        return False
    storage.save_note(session_id, age.encrypt(json.dumps(note).encode(), [recipient]),
                      author="holdnote")
    return True
