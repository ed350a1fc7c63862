"""The sessions list and the session page: transcript, note, sign, export, delete.

Every view, edit, sign, export and delete is audited; audit entries name the
session by id only, never by client text.
"""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from appliance.access.roles import Access
from appliance.errors import InvalidStateError, TranscriptFormatError
from appliance.notes.render import unfilled_sections
from appliance.store.db import PENDING_STATES, State
from appliance.store.voices import voice_names
from appliance.transcript import TranscriptResult
from web_ui.views import (
    access,
    audio,
    client_assign,
    corrections,
    damage,
    deletion,
    drafts,
    export,
    interventions,
    moments,
    process_notes,
    records,
    retention_note,
    transcribe_now,
    transcript,
)
from web_ui.views.auth import audit
from web_ui.views.context import services
from web_ui.views.formatting import STATE_LABELS, day_bounds, local_date, parse_day, when
from web_ui.views.plaincache import Damaged, Where

bp = Blueprint("sessions", __name__)
log = logging.getLogger(__name__)

PAGE_SIZE = 50
WAITING = "waiting"
STATE_FILTERS = {WAITING: PENDING_STATES,
                 **{s.value: (s,) for s in State}}


def _session_or_404(session_id: int, need: Access = Access.READ):
    """The session if the logged-in clinician may ``need`` it; 404 (or 403 read-only) if not."""
    return access.session_for(session_id, need)[0]


# --- list -------------------------------------------------------------------------


@bp.route("/")
@bp.route("/sessions")
def index():
    """All sessions, newest first, filtered by state and date, 50 to a page."""
    svc = services()
    state = request.args.get("state", "")
    states = STATE_FILTERS.get(state)
    first, last = parse_day(request.args.get("from")), parse_day(request.args.get("to"))
    since, until = day_bounds(first, last)
    page = max(1, request.args.get("page", 1, type=int) or 1)
    identity = svc.keys.identity()
    total = svc.storage.count_sessions(states, since, until, viewer=access.viewer())
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(page, pages)
    rows = records.list_rows(svc.storage, svc.plain, identity, states=states, since=since,
                             until=until, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
                             viewer=access.viewer())
    filters = {"state": state if states else "", "from": first.isoformat() if first else "",
               "to": last.isoformat() if last else ""}
    return render_template("sessions.html", rows=rows, total=total, page=page, pages=pages,
                           filters=filters, state_labels=STATE_LABELS, owners=access.names(),
                           is_admin=access.viewer().admin,
                           active={k: v for k, v in filters.items() if v},
                           **client_assign.list_context(rows))


# --- one session -------------------------------------------------------------------


def transcript_view(session_id: int, identity, correct_href: str | None = None) -> tuple:
    """The transcript view and its rendered timeline, cached per ciphertext in this worker.

    ``(None, "")`` before there is a transcript; ``(Damaged, "")`` when it cannot be decrypted.
    With ``correct_href`` each line links to its correction (the owner's page, cached apart).
    """
    svc = services()
    blob = svc.storage.load_transcript(session_id)
    if blob is None:
        return None, ""

    def produce():
        # Parsed directly, not through the cache: only the smaller view is kept.
        plain = svc.plain.open(blob, identity, Where(session_id, "transcript"))
        if isinstance(plain, Damaged):
            return plain, ""
        try:
            result = TranscriptResult.from_bytes(plain)
        except TranscriptFormatError as error:  # the page still shows the note, and says why
            log.warning("session %s: transcript unreadable: %s", session_id, error)
            return transcript.unreadable(str(error)), ""
        clinician = result.clinician_label(svc.cfg.speakers.clinician_name,
                                           voice_names(svc.storage))
        view = transcript.build(result, clinician)
        return view, transcript.timeline_html(view)

    view, timeline = svc.plain.derived("view", blob, produce)
    if correct_href and isinstance(view, transcript.TranscriptView) and view.lines:
        timeline = svc.plain.derived(
            "timeline-correct", blob, lambda: transcript.timeline_html(view, correct_href))
    return view, timeline


def _context(session_id: int) -> dict:
    svc = services()
    session, level = access.session_for(session_id)
    identity = svc.keys.identity()
    fixes = corrections.page_context(session, level)
    view, timeline = transcript_view(session_id, identity, fixes["corrections"].line_href)
    label = svc.plain.text(session.label_enc, identity, Where(session_id, "label"))
    record = records.load_note(svc.storage, svc.plain, identity, session_id)
    # The flag summary is only shown in the list; read here so the page can say it is damaged.
    flags = (svc.plain.json(session.flags_enc, identity, Where(session_id, "flags"))
             if session.flags_enc else None)
    addenda = [a.text for a in (record.addenda if record else ())]
    found = [value for value in (label, flags, view, record and record.damaged, *addenda)
             if isinstance(value, Damaged)]
    return {
        "s": session,
        "label": None if isinstance(label, Damaged) else label,
        "label_damaged": isinstance(label, Damaged),
        "view": None if isinstance(view, Damaged) else view,
        "transcript_damaged": isinstance(view, Damaged),
        "timeline": timeline,
        "record": record,
        "damage": damage.explain(session, [d.field for d in found], transcript=view,
                                 record=record),
        "session_date": local_date(session.started_at),
        **access.page_context(session, level),
        **drafts.page_context(session, record, None if isinstance(view, Damaged) else view,
                              level == Access.OWN),
        **audio.page_context(session, level, view),
        **transcribe_now.page_context(session, level == Access.OWN),
        **process_notes.page_context(session, level),
        **client_assign.session_context(session, level),
        **interventions.page_context(session, level, identity),
        **moments.session_context(session, level, identity),
        **fixes,
    }


@bp.route("/sessions/<int:session_id>")
def show(session_id: int):
    """The session page."""
    context = _context(session_id)
    audit("session.view", session_id)
    process_notes.audit_view(context)
    return render_template("session.html", **context)


def _rerender(session_id: int, error: str, status: int, texts: dict | None = None):
    """The session page again with an error, keeping what the clinician typed."""
    context = _context(session_id)
    return render_template("session.html", error=error, typed=texts or {}, **context), status


@bp.route("/sessions/<int:session_id>/note", methods=["POST"])
def save_note(session_id: int):
    """Save the draft, or save and sign it."""
    svc = services()
    _session_or_404(session_id, Access.OWN)
    identity = svc.keys.identity()
    record = records.load_note(svc.storage, svc.plain, identity, session_id)
    texts = _typed()
    if record is None:
        return _rerender(session_id, "This session has no note yet.", 409)
    if record.damaged:
        return _rerender(session_id, "The stored note cannot be read, so it cannot be saved "
                         "or signed here: saving would replace it. Nothing was saved.", 409, texts)
    if record.signed:
        return _rerender(session_id, "This note is signed and can no longer be changed. "
                         "Add a dated addendum below instead.", 409, texts)
    signing = request.form.get("action") == "sign"
    if signing and corrections.awaiting_confirmation(session_id):
        return _rerender(session_id, corrections.SIGN_REFUSED, 409, texts)
    if signing and request.form.get("reviewed") != "yes":
        return _rerender(session_id, "To sign, tick \u201cI have reviewed this note\u201d. "
                         "Nothing was saved yet.", 400, texts)
    try:
        note = records.edited_note(record.note, texts)
        base = request.form.get("version", "")
        if signing:
            records.sign_note(svc.storage, session_id, note, base, svc.keys.recipient(), g.user)
        else:
            records.save_note(svc.storage, session_id, note, base, svc.keys.recipient(), g.user)
    except records.IncompleteNoteError as error:
        return _rerender(session_id, str(error), 400, texts)
    except (InvalidStateError, ValueError) as error:
        return _rerender(session_id, str(error), 409, texts)
    audit("note.sign" if signing else "note.edit", session_id)
    if signing:
        retention_note.after_signing(session_id)
    flash("Note signed. It is now read-only; later changes are dated addenda."
          if signing else "Draft saved.", "success")
    return redirect(url_for("sessions.show", session_id=session_id) + "#note")


def _typed() -> dict[str, str]:
    """The section texts the form sent, by section key."""
    return {key[len("section-"):]: value for key, value in request.form.items()
            if key.startswith("section-")}


@bp.route("/sessions/<int:session_id>/note/autosave", methods=["POST"])
def autosave_note(session_id: int):
    """The editor's background save while the clinician types (JSON for editor.js).

    Stored encrypted exactly like "Save draft", against the version the page
    holds; never onto a signed note (409). Audited once per stretch of editing
    (see ``records.AUTOSAVE_AUDIT_GAP``), not once per pause in typing. Passive
    for idle logoff (web_ui/views/auth.py): the keepalive reports typing, so the
    save the idle warning makes does not keep an unattended login alive.
    """
    svc = services()
    _session_or_404(session_id, Access.OWN)
    record = records.load_note(svc.storage, svc.plain, svc.keys.identity(), session_id)
    if record is None or record.damaged or record.signed:
        return jsonify(error=_not_editable(record)), 409
    base = request.form.get("version", "")
    if not base:  # without it a save from another window could be overwritten
        return jsonify(error="The page did not say which version it edits. Reload the page."), 400
    try:
        note = records.edited_note(record.note, _typed())
        version = records.save_note(svc.storage, session_id, note, base, svc.keys.recipient(),
                                    g.user)
    except InvalidStateError as error:
        return jsonify(error=str(error)), 409
    except ValueError as error:
        return jsonify(error=str(error).capitalize() + "."), 400
    moment = svc.storage.now()
    if record.starts_burst(g.user, moment):
        audit("note.edit", session_id, detail="autosave")
    return jsonify(version=version, saved_at=when(moment, "%H:%M"))


def _not_editable(record: records.NoteRecord | None) -> str:
    if record is None:
        return "This session has no note yet."
    if record.damaged:
        return "The stored note cannot be read, so nothing is saved over it."
    return "This note is signed and can no longer be changed. Add a dated addendum instead."


@bp.route("/sessions/<int:session_id>/addendum", methods=["POST"])
def addendum(session_id: int):
    """Add a dated addendum to a signed note."""
    svc = services()
    _session_or_404(session_id, Access.OWN)
    svc.keys.identity()
    text = request.form.get("text", "")
    try:
        records.add_addendum(svc.storage, session_id, text, svc.keys.recipient(), g.user)
    except (InvalidStateError, ValueError) as error:
        return _rerender(session_id, str(error).capitalize(), 409, {"addendum": text})
    audit("note.addendum", session_id)
    flash("Addendum added.", "success")
    return redirect(url_for("sessions.show", session_id=session_id) + "#addenda")


@bp.route("/sessions/<int:session_id>/details", methods=["POST"])
def details(session_id: int):
    """Client label and whether consent to record was documented."""
    svc = services()
    _session_or_404(session_id, Access.OWN)
    svc.keys.identity()
    try:
        records.save_details(svc.storage, session_id, request.form.get("label", ""),
                             request.form.get("consent") == "yes", svc.keys.recipient())
    except ValueError as error:
        return _rerender(session_id, str(error).capitalize() + ".", 400)
    audit("session.edit_details", session_id)
    flash("Session details saved.", "success")
    return redirect(url_for("sessions.show", session_id=session_id))


@bp.route("/sessions/<int:session_id>/redraft", methods=["POST"])
def redraft(session_id: int):
    """Queue the note to be drafted again in another template (see drafts.py)."""
    return drafts.redraft(session_id)


# --- export ------------------------------------------------------------------------------


def _export_parts(session_id: int):
    context = _context(session_id)
    if context["record"] is None:
        abort(404, "This session has no note to export yet.")
    if context["record"].damaged:
        abort(409, "The note of this session cannot be read, so there is nothing to export. "
              "The session page says what is damaged and what still works.")
    view = context["view"] if request.args.get("transcript") == "1" else None
    if context["label_damaged"]:
        context = {**context, "label": "(the stored label cannot be read)"}
    return context, view


@bp.route("/sessions/<int:session_id>/export")
def export_page(session_id: int):
    """The note as text and Markdown, with copy and download buttons."""
    context, view = _export_parts(session_id)
    args = (context["s"], context["label"], context["record"], view)
    audit("session.export", session_id, detail="view")
    return render_template("export.html", text=export.as_text(*args),
                           markdown=export.as_markdown(*args),
                           unfilled=unfilled_sections(context["record"].note),
                           with_transcript=view is not None, **context)


@bp.route("/sessions/<int:session_id>/export.<any(txt, md):fmt>")
def export_file(session_id: int, fmt: str):
    """Download the note as a .txt or .md file."""
    context, view = _export_parts(session_id)
    args = (context["s"], context["label"], context["record"], view)
    body = export.as_text(*args) if fmt == "txt" else export.as_markdown(*args)
    audit("session.export", session_id, detail=fmt)
    mime = "text/plain" if fmt == "txt" else "text/markdown"
    return Response(body, mimetype=mime, headers={
        "Content-Disposition": f'attachment; filename="{export.filename(context["s"], fmt)}"'})


# --- delete ----------------------------------------------------------------------------------


@bp.route("/sessions/<int:session_id>/delete", methods=["GET", "POST"])
def delete(session_id: int):
    """Delete audio, transcript and note after the session's date is typed (see deletion.py)."""
    return deletion.delete(session_id)
