"""The drafted note on the session page: its grounding, the drafting state, and Redraft.

A note the language model drafted carries, per section, the statements it wrote
and the transcript lines each one rests on (``citations``: exact copies of
segment starts, laid out by :mod:`appliance.drafting.note`). The page shows every verified
statement with its citations as links to those lines, lists the statements the
check left out beside the section (never inside the editable text), and marks
the clinician's own field. A note without a ``drafting`` key is shown exactly as
before. "Redraft" queues the session for the drafting service in another
template; the model itself never runs in the web process.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flask import abort, flash, redirect, request, url_for
from werkzeug.exceptions import BadRequest

from appliance.access.roles import Access
from appliance.clients import consent
from appliance.drafting.settings import PracticeSettings
from appliance.store.db import Session, State
from web_ui.views import access, records, wake
from web_ui.views.auth import audit
from web_ui.views.context import services
from web_ui.views.formatting import clock
from web_ui.views.transcript import TranscriptView, start_key

log = logging.getLogger(__name__)

# Touched to wake holdnote-draft.path, which starts `holdnote draft --queued`.
REQUEST_FILE = "draft.request"
QUEUED = "Redraft queued: runs at idle priority while the device is unlocked."
QUEUED_OVERNIGHT = ("Redraft queued. The device could not start it now, so it runs in "
                    "tonight's overnight job.")
OFF = ("Drafting is off on this device: set [drafting] model in the configuration "
       "(sudo ./install.sh --llm NAME installs a model).")
NO_TRANSCRIPT = ("This session has no transcript yet, so there is nothing to draft from. "
                 "It is drafted after tonight's transcription.")
SIGNED = "This note is signed and can no longer be redrafted. Add a dated addendum instead."
DAMAGED = "The stored note cannot be read, so it is not redrafted over. Nothing was changed."
LEFT_OUT_REASON = "the cited transcript lines do not support it"


@dataclass(frozen=True)
class Citation:
    """One transcript moment a statement rests on."""

    clock: str  # 1:23, as the transcript shows the line
    start: str  # the line's data-start (transcript.start_key)
    href: str | None  # the line's anchor, or None when the line is not on this page


@dataclass(frozen=True)
class Statement:
    """A verified drafted statement with its citations."""

    text: str
    citations: tuple[Citation, ...]
    source: str | None = None  # "risk screen" for flags inserted verbatim


@dataclass(frozen=True)
class LeftOut:
    """A statement the check dropped, and why."""

    text: str
    problem: str


@dataclass(frozen=True)
class Grounding:
    """What the page shows beside one drafted section."""

    statements: tuple[Statement, ...] = ()
    left_out: tuple[LeftOut, ...] = ()
    clinician: str | None = None  # the clinician's own field: "For you to write"


@dataclass(frozen=True)
class DraftingStatus:
    """The banner and the drafting state line above the note."""

    model: str | None  # who drafted it; None before anything was drafted
    state: str
    line: str | None  # queued / drafting / failed / off in words; when done, only a reason
    dropped: int = 0


@dataclass(frozen=True)
class RedraftForm:
    """The Redraft form: the templates to pick from, and why it is disabled if it is."""

    templates: tuple[str, ...]
    current: str
    disabled: str | None = None


# --- the page ----------------------------------------------------------------------------


def page_context(session: Session, record: records.NoteRecord | None,
                 view: TranscriptView | None, can_edit: bool) -> dict:
    """What session.html needs about drafting; empty values for an old note."""
    note = record.note if record is not None and not record.damaged else {}
    starts = _line_starts(view)
    return {
        "drafting": drafting_status(session, note),
        "grounding": {str(s.get("key", "")): grounding(s, starts)
                      for s in note.get("sections") or [] if isinstance(s, Mapping)},
        "redraft": redraft_form(session, note) if can_edit and record is not None
        and not record.signed and not record.damaged else None,
        "replaced": replaced_text(note) if record is not None and not record.signed else [],
    }


def replaced_text(note: Mapping) -> list[tuple[str, str]]:
    """What the clinician had typed in sections a redraft's template lacks: (title, text)."""
    replaced = note.get("kept_text")
    if not isinstance(replaced, Mapping):
        return []
    return [(str(title), text) for title, text in replaced.items()
            if isinstance(text, str) and text.strip()]


def _line_starts(view: TranscriptView | None) -> dict[str, str]:
    """The transcript lines on the page by start key, with the anchor a link can use."""
    if view is None:
        return {}
    return {start_key(line.start): f"#t-{int(line.start)}"
            for line in view.lines if line.kind == "segment"}


def drafting_status(session: Session, note: Mapping) -> DraftingStatus | None:
    """The banner and state line, or None for a note nobody asked the model to draft."""
    drafting = note.get("drafting")
    drafting = drafting if isinstance(drafting, Mapping) else {}
    # The session's columns are the queue (Redraft writes them); the note says what was drafted.
    state = session.drafting or drafting.get("state")
    if not state:
        return None
    reason = session.drafting_reason or drafting.get("reason")
    progress = session.drafting_progress or 0.0
    model = drafting.get("model") if isinstance(drafting.get("model"), str) else None
    dropped = drafting.get("dropped")
    return DraftingStatus(model or None, str(state), _state_line(str(state), reason, progress),
                          dropped if isinstance(dropped, int) else 0)


def _state_line(state: str, reason: object, progress: float) -> str | None:
    if state == "queued":
        return ("Drafting is queued: it runs at idle priority while the device is unlocked, "
                "or in tonight's overnight job.")
    if state == "drafting":
        return (f"Drafting now: {round(float(progress) * 100)} % done. Reload the page to see "
                "the sections written so far.")
    if state == "failed":
        why = str(reason).rstrip(".") if reason else "no reason was recorded"
        return (f"Drafting failed: {why}. The transcript and the facts are still here: "
                "write the note yourself, or Redraft.")
    if state == "off":  # the device has no model, or (the reason) the client's consent stops it
        return str(reason) if reason else OFF
    # Done, but the check left nothing of the model's answers: the drafter says why.
    return str(reason) if reason else None


def grounding(section: Mapping, starts: Mapping[str, str]) -> Grounding | None:
    """The statements, left-out statements and clinician field of a drafted section."""
    raw = section.get("statements")
    clinician = section.get("clinician")
    if not isinstance(raw, list) and not section.get("drafted"):
        return None  # an old note's section: shown as before
    kept, dropped = [], []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, Mapping) or not isinstance(item.get("text"), str):
            continue
        if item.get("verified") is True:
            kept.append(_statement(item, starts))
        else:
            problem = item.get("problem")
            dropped.append(LeftOut(item["text"], problem if isinstance(problem, str) and problem
                                   else LEFT_OUT_REASON))
    return Grounding(tuple(kept), tuple(dropped),
                     clinician if isinstance(clinician, str) and clinician else None)


def _statement(item: Mapping, starts: Mapping[str, str]) -> Statement:
    cited = item.get("citations")
    citations = []
    for value in cited if isinstance(cited, list) else []:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            key = start_key(value)
            citations.append(Citation(clock(value), key, starts.get(key)))
    source = item.get("source")
    return Statement(item["text"], tuple(citations), source if isinstance(source, str) else None)


def templates() -> tuple[str, ...]:
    """The templates the clinician can redraft in: built-in ones, then the practice's own."""
    return tuple(PracticeSettings.from_config(services().cfg).template_names())


def redraft_form(session: Session, note: Mapping) -> RedraftForm:
    """The Redraft form for an unsigned note of the session's clinician."""
    cfg = services().cfg
    current = session.draft_template or note.get("template") or cfg.notes.template
    return RedraftForm(templates(), str(current), OFF if drafting_off() else None)


def drafting_off() -> bool:
    """True when this device has no language model configured."""
    return services().cfg.drafting.model == "none"


# --- Redraft ----------------------------------------------------------------------------


def redraft(session_id: int):
    """Queue the session for drafting again in the template the clinician picked."""
    svc = services()
    session, _ = access.session_for(session_id, Access.OWN)
    template = _picked(request.form.get("template", ""))
    refusal = _refusal(session)
    if refusal:
        abort(409, refusal)
    svc.storage.update_session(session_id, drafting="queued", draft_template=template,
                               drafting_progress=0.0, drafting_reason=None)
    audit("note.redraft", session_id, detail=template)
    if request_drafting(svc.cfg.paths.runtime_dir):
        flash(QUEUED, "success")
    else:
        flash(QUEUED_OVERNIGHT, "warning")
    return redirect(url_for("sessions.show", session_id=session_id) + "#note")


def _picked(name: str) -> str:
    """The template named by the form, as configured; 400 with the choices otherwise."""
    choices = templates()
    for choice in choices:
        if choice.casefold() == name.strip().casefold():
            return choice
    raise BadRequest(f"There is no note template called {name.strip()!r}. "
                     f"Pick one of: {', '.join(choices)}.")


def _refusal(session: Session) -> str | None:
    """Why this session cannot be redrafted now, in one sentence; None if it can."""
    svc = services()
    if drafting_off():
        return OFF
    if session.client_id is not None:
        # The job would refuse too; saying so now spares a "Redraft queued" that never drafts.
        blocked = consent.drafting_blocked(svc.storage, session.client_id,
                                           session.started_at.astimezone().date())
        if blocked:
            return blocked
    record = records.load_note(svc.storage, svc.plain, svc.keys.identity(), session.id)
    if (record is not None and record.signed) or session.state == State.SIGNED:
        return SIGNED
    if svc.storage.load_transcript(session.id) is None or record is None:
        return NO_TRANSCRIPT
    if record.damaged:
        return DAMAGED
    return None


def request_drafting(runtime_dir: Path) -> bool:
    """Touch the request file that starts the service now; False if it cannot be written."""
    return wake.touch_request(runtime_dir, REQUEST_FILE, "drafting")
