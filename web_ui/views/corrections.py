"""Corrections of a session's transcript: a line, the speakers, removed flags, the history.

Only the session's clinician corrects, while the device is unlocked, and only
until the note is signed (then the transcript is read-only like the note:
409). The corrected transcript replaces the stored one, so the page, search,
export and a redraft read it with no change of their own; every earlier
version stays encrypted and can be read on the history page. Each save is a
compare-and-swap on the version the form was based on: a correction that lost
a race with another tab is refused (409) and shown back, so nothing typed is
lost. Every change is audit-logged with ids and line numbers, never words.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from appliance import age
from appliance.access.roles import Access
from appliance.errors import TranscriptFormatError
from appliance.notes import corrections
from appliance.notes.corrections import Correction, CorrectionError
from appliance.store.db import Session
from appliance.store.transcripts import VersionConflictError
from appliance.transcript import TranscriptResult
from web_ui.views import access, transcript
from web_ui.views.auth import audit
from web_ui.views.context import services
from web_ui.views.plaincache import Damaged, Where

bp = Blueprint("corrections", __name__)

SIGNED = "This session's note is signed: its transcript is read-only. Add an addendum to the note."
LOST_RACE = ("The transcript was corrected in another tab or window since this page was opened, "
             "so this change was not saved. It is shown below: reload the transcript and make "
             "it again.")
NO_TRANSCRIPT = "This session has no transcript to correct."
SIGN_REFUSED = ("A correction removed a risk flag that is still waiting for your confirmation "
                "(see \u201cRisk language to review\u201d). Confirm it before signing. "
                "Nothing was signed; the draft was not saved either.")


@dataclass(frozen=True)
class Loaded:
    """A session with its current transcript, decrypted."""

    session: Session
    result: TranscriptResult
    version: int


@dataclass(frozen=True)
class PageCorrections:
    """What the session page offers for corrections."""

    allowed: bool  # the viewer may correct now (their session, not signed)
    version: int | None  # the version the page's forms are based on
    line_href: str | None  # the line edit address without its index


def page_context(session: Session, level: Access) -> dict:
    """The ``corrections`` key of the session page."""
    storage = services().storage
    stored = storage.stored_transcript(session.id)
    allowed = (level == Access.OWN and stored is not None
               and not storage.record_facts(session.id).signed)
    href = url_for("corrections.line", session_id=session.id, index=0)[:-1] if allowed else None
    return {"corrections": PageCorrections(allowed, stored.version if stored else None, href)}


def awaiting_confirmation(session_id: int) -> int:
    """How many risk flags a correction removed that the clinician has not confirmed yet."""
    svc = services()
    stored = svc.storage.stored_transcript(session_id)
    if stored is None:
        return 0
    result = _parse(session_id, stored.result_enc)
    return len(corrections.unconfirmed_removals(result)) if result else 0


# --- loading and saving -------------------------------------------------------------------


def _parse(session_id: int, blob: bytes) -> TranscriptResult | None:
    plain = services().plain.open(blob, services().keys.identity(),
                                  Where(session_id, "transcript"))
    if isinstance(plain, Damaged):
        return None
    try:
        return TranscriptResult.from_bytes(plain)
    except TranscriptFormatError:
        return None


def _load(session_id: int, *, need: Access = Access.OWN, editing: bool = True) -> Loaded:
    """The session and its transcript, or the request ends with a sentence saying why."""
    session, _ = access.session_for(session_id, need)
    storage = services().storage
    stored = storage.stored_transcript(session_id)
    if stored is None:
        abort(404, NO_TRANSCRIPT)
    if editing and storage.record_facts(session_id).signed:
        abort(409, SIGNED)
    result = _parse(session_id, stored.result_enc)
    if result is None:
        abort(409, "The stored transcript cannot be read, so it cannot be corrected here.")
    return Loaded(session, result, stored.version)


def _based_on() -> int:
    raw = request.form.get("transcript_version", "")
    if not raw.isdigit():
        abort(400, "The form did not say which version of the transcript it corrects. Reload the page.")
    return int(raw)


def _rules() -> corrections.Rules:
    notes = services().cfg.notes
    return corrections.Rules(silence_threshold_s=notes.silence_threshold_seconds,
                             risk_flags=notes.risk_flags)


def _save(loaded: Loaded, change: Correction, based_on: int) -> int:
    """Store ``change`` over version ``based_on`` and audit it; the new version.

    :class:`VersionConflictError` when another save came first (nothing written).
    """
    svc = services()
    recipient = svc.keys.recipient()
    counts = Counter(flag.category for flag in change.result.flags)
    summary = [{"category": c, "count": n} for c, n in sorted(counts.items())]
    version = svc.storage.save_correction(
        loaded.session.id, based_on=based_on,
        result_enc=age.encrypt(change.result.to_bytes(), [recipient]),
        flags_enc=age.encrypt(json.dumps(summary).encode(), [recipient]),
        author=g.user, summary=change.summary)
    action = ("transcript.flag_removal_confirmed" if change.action == "flag"
              else f"transcript.{change.action}")
    audit(action, loaded.session.id, detail=f"{change.summary}; version {version}")
    return version


def _back(session_id: int, anchor: str = "transcript"):
    return redirect(url_for("sessions.show", session_id=session_id) + f"#{anchor}")


# --- one line -----------------------------------------------------------------------------


@bp.route("/sessions/<int:session_id>/transcript/lines/<int:index>", methods=["GET", "POST"])
def line(session_id: int, index: int):
    """Correct one line: its words, its speaker, split it (line breaks) or merge it with the next."""
    loaded = _load(session_id)
    if not 0 <= index < len(loaded.result.segments):
        abort(404, f"There is no line {index + 1}: this transcript has "
                   f"{len(loaded.result.segments)} lines.")
    if request.method == "GET":
        return _line_page(loaded, index)
    typed = request.form.get("text", "")
    try:
        based_on = _based_on()
        if request.form.get("action") == "merge":
            change = corrections.merge_with_next(loaded.result, index, _rules())
        else:
            change = corrections.edit_line(loaded.result, index, typed, _speaker(), _rules())
        _save(loaded, change, based_on)
    except CorrectionError as error:
        return _line_page(loaded, index, typed, str(error)), 400
    except VersionConflictError:
        return _line_page(loaded, index, typed, LOST_RACE, lost=True), 409
    flash(f"Saved: {change.summary.capitalize()}.", "success")
    return _back(session_id, f"t-{int(loaded.result.segments[index].start)}")


def _speaker() -> str | None:
    """The speaker the form chose: a new name typed in, else one from the list (None: unchanged)."""
    typed = request.form.get("new_speaker", "").strip()
    return typed or request.form.get("speaker") or None


def _line_page(loaded: Loaded, index: int, typed: str | None = None, error: str | None = None,
               *, lost: bool = False):
    segment = loaded.result.segments[index]
    if request.method == "GET":
        audit("transcript.line_view", loaded.session.id, detail=f"line {index + 1}")
    return render_template(
        "transcript_line.html", s=loaded.session, index=index, segment=segment,
        text=segment.text if typed is None else typed, speakers=loaded.result.speakers,
        chosen=request.form.get("new_speaker") or request.form.get("speaker") or segment.speaker,
        version=loaded.version, error=error, lost=lost,
        last=index == len(loaded.result.segments) - 1)


# --- speakers -----------------------------------------------------------------------------


@bp.route("/sessions/<int:session_id>/transcript/speakers", methods=["POST"])
def speakers(session_id: int):
    """Rename one speaker across the session, or swap two."""
    loaded = _load(session_id)
    form = request.form
    try:
        based_on = _based_on()
        if form.get("action") == "swap":
            change = corrections.swap_speakers(loaded.result, form.get("first", ""),
                                               form.get("second", ""), _rules())
        else:
            change = corrections.rename_speaker(loaded.result, form.get("speaker", ""),
                                                form.get("new_name", ""),
                                                merge=form.get("merge") == "yes", rules=_rules())
        _save(loaded, change, based_on)
    except CorrectionError as error:
        return _speakers_page(loaded, str(error)), 400
    except VersionConflictError:
        return _speakers_page(loaded, LOST_RACE), 409
    flash(f"Saved: {change.summary.capitalize()}.", "success")
    return _back(session_id)


def _speakers_page(loaded: Loaded, error: str):
    return render_template("transcript_speakers.html", s=loaded.session, error=error,
                           speakers=loaded.result.speakers, version=loaded.version,
                           typed=request.form)


# --- risk flags a correction removed ------------------------------------------------------


@bp.route("/sessions/<int:session_id>/transcript/flags/<int:index>/confirm", methods=["POST"])
def confirm_flag(session_id: int, index: int):
    """The clinician confirms that a flag a correction removed no longer applies."""
    loaded = _load(session_id)
    try:
        based_on = _based_on()
        _save(loaded, corrections.confirm_removal(loaded.result, index), based_on)
    except CorrectionError as error:
        abort(409, str(error))
    except VersionConflictError:
        abort(409, "The transcript was corrected in another tab since this page was opened; "
                   "nothing was confirmed. Reload the session and confirm again.")
    flash("Removal confirmed: the flag is no longer listed.", "success")
    return _back(session_id, "flags-title")


# --- history ------------------------------------------------------------------------------


@bp.route("/sessions/<int:session_id>/transcript/history")
@bp.route("/sessions/<int:session_id>/transcript/history/<int:number>")
def history(session_id: int, number: int | None = None):
    """Every version of the transcript (when, who, what changed); one of them read-only."""
    loaded = _load(session_id, need=Access.READ, editing=False)
    versions = services().storage.transcript_versions(session_id)
    shown = timeline = None
    if number is not None:
        shown = services().storage.transcript_version(session_id, number)
        if shown is None or shown.result_enc is None:
            abort(404, f"There is no version {number} of this transcript.")
        result = _parse(session_id, shown.result_enc)
        if result is None:
            abort(409, f"Version {number} of this transcript cannot be read.")
        timeline = transcript.timeline_html(
            transcript.build(result, services().cfg.speakers.clinician_name))
    audit("transcript.history", session_id, detail=None if number is None else f"version {number}")
    return render_template("transcript_history.html", s=loaded.session, versions=versions,
                           current=loaded.version, shown=shown, timeline=timeline)
