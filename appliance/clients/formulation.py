"""A client's case conceptualization: the five Ps, each statement citing a session line.

A version is stored encrypted (``formulations.body_enc``, :mod:`appliance.store.formulations`)
as JSON; this module is its shape as frozen dataclasses and the way between the two.
Each section (one of the five Ps) holds the statements the model drafted, each with
the session and the second of the line it rests on and whether the check kept it,
and the section's editable text: the kept statements with their citations, or what
the clinician typed (``edited``), which a later draft never writes over.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from appliance import age
from appliance.notes import times
from appliance.store import formulations as table
from appliance.store.formulations import FormulationRow

NOTHING_YET = "Nothing in the signed notes yet."
NO_SIGNED_NOTES = "Sign at least one session note of this client first."
# The five Ps, in the order clinicians write them, with what each is about.
FIVE_PS: tuple[tuple[str, str, str], ...] = (
    ("presenting", "Presenting problem", "what the client came with: the difficulties and how they show"),
    ("predisposing", "Predisposing factors", "what made the client vulnerable: history, background"),
    ("precipitating", "Precipitating factors", "what set the problem off: events, changes"),
    ("perpetuating", "Perpetuating factors", "what keeps the problem going: avoidance, habits"),
    ("protective", "Protective factors", "strengths and supports: people, skills, what helps"),
)


@dataclass(frozen=True)
class Citation:
    """A transcript line a statement rests on: the session and the second the line starts at."""

    session_id: int
    start_s: float


@dataclass(frozen=True)
class Statement:
    """One drafted statement: kept (``verified``) or kept out with the reason (``problem``)."""

    text: str
    citations: tuple[Citation, ...]
    verified: bool
    problem: str | None = None


@dataclass(frozen=True)
class Section:
    """One of the five Ps: its drafted statements and its editable text."""

    key: str
    title: str
    text: str
    statements: tuple[Statement, ...] = ()
    edited: bool = False  # the clinician typed the text: a later draft keeps it
    dropped: int = 0


@dataclass(frozen=True)
class Formulation:
    """One version of a client's case conceptualization, decrypted."""

    client_id: int
    version: int
    state: str  # queued | drafting | draft | failed | signed
    reason: str | None
    progress: float
    sections: tuple[Section, ...]
    approach: str = ""
    model: str | None = None
    sessions: Mapping[int, str] = field(default_factory=dict)  # session id -> its date, as cited
    created_at: str = ""
    updated_at: str = ""
    updated_by: str | None = None
    signed_at: str | None = None
    signed_by: str | None = None

    @property
    def signed(self) -> bool:
        """True once signed: the version is frozen."""
        return self.state == "signed"


def cite_label(citation: Citation, sessions: Mapping[int, str]) -> str:
    """``12 Oct 2026 4:12``: the session's date and the line's time, as the text cites it."""
    day = sessions.get(citation.session_id) or f"session {citation.session_id}"
    return f"{day} {times.clock(citation.start_s)}"


def day_label(day: date) -> str:
    """A session's date as citations show it (``5 Oct 2026``)."""
    return f"{day.day} {day:%b %Y}"


def section_text(statements: Sequence[Statement], sessions: Mapping[int, str]) -> str:
    """The kept statements, one a line with their citations, or :data:`NOTHING_YET`."""
    kept = [s for s in statements if s.verified]
    if not kept:
        return NOTHING_YET
    return "\n".join(f"- {s.text} [{'; '.join(cite_label(c, sessions) for c in s.citations)}]"
                     for s in kept)


def empty_sections() -> tuple[Section, ...]:
    """The five Ps before anything was drafted."""
    return tuple(Section(key, title, NOTHING_YET) for key, title, _ in FIVE_PS)


# --- the stored body ---------------------------------------------------------------------


def body_of(sections: Sequence[Section], *, approach: str, model: str | None,
            sessions: Mapping[int, str]) -> dict:
    """The JSON body a version stores (encrypted)."""
    return {
        "approach": approach, "model": model,
        "sessions": {str(k): v for k, v in sessions.items()},
        "sections": [{"key": s.key, "title": s.title, "text": s.text, "edited": s.edited,
                      "dropped": s.dropped,
                      "statements": [{"text": st.text, "verified": st.verified, "problem": st.problem,
                                      "citations": [[c.session_id, c.start_s] for c in st.citations]}
                                     for st in s.statements]}
                     for s in sections],
    }


def seal(body: Mapping, recipient: age.Recipient) -> bytes:
    """The body encrypted to the practice."""
    return age.encrypt(json.dumps(body).encode(), [recipient])


def open_body(blob: bytes | None, identity) -> dict:
    """The decrypted body ({} before anything was drafted)."""
    if not blob:
        return {}
    body = json.loads(age.decrypt(blob, [identity]))
    return body if isinstance(body, dict) else {}


def sections_of(body: Mapping) -> tuple[Section, ...]:
    """The body's sections, in the order of the five Ps (missing ones empty)."""
    stored = {s.get("key"): s for s in body.get("sections") or [] if isinstance(s, Mapping)}
    found = []
    for key, title, _ in FIVE_PS:
        raw = stored.get(key) or {}
        statements = tuple(
            Statement(str(st.get("text", "")),
                      tuple(Citation(int(c[0]), float(c[1])) for c in st.get("citations") or []),
                      bool(st.get("verified")), st.get("problem"))
            for st in raw.get("statements") or [])
        found.append(Section(key, title, str(raw.get("text") or NOTHING_YET), statements,
                             bool(raw.get("edited")), int(raw.get("dropped") or 0)))
    return tuple(found)


def sessions_of(body: Mapping) -> dict[int, str]:
    """The cited sessions' dates by id."""
    raw = body.get("sessions") or {}
    return {int(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def from_row(row: FormulationRow, identity) -> Formulation:
    """One stored version, decrypted."""
    body = open_body(row.body_enc, identity)
    return Formulation(row.client_id, row.version, row.state, row.reason, row.progress,
                       sections_of(body) if body else empty_sections(),
                       str(body.get("approach") or ""), body.get("model"), sessions_of(body),
                       row.created_at, row.updated_at, row.updated_by, row.signed_at, row.signed_by)


def versions(storage, client_id: int, identity) -> list[Formulation]:
    """Every version of the client's case conceptualization, newest first."""
    return [from_row(row, identity) for row in table.versions(storage, client_id)]


def newest(storage, client_id: int, identity) -> Formulation | None:
    """The newest version, or None before the first was asked for."""
    row = table.newest(storage, client_id)
    return None if row is None else from_row(row, identity)
