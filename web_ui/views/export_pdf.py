"""A session's note as PDF (``export.note_pdf``), and what the client record reuses.

The PDF says what the text export says (``export.as_pdf_note``), with the
practice name (``[practice] name``) and the clinician's full name and
credentials (their profile) on the signature line. Only the session's own
clinician exports a PDF: a colleague it is shared with reads it on the page.
Responses are never cached (``Cache-Control: no-store``); the audit entry
names the session and the format only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Blueprint, Response, abort, request

from appliance import age
from appliance.access import keys
from appliance.access.roles import Access
from appliance.clients.records import Client, load_client
from appliance.notes import pdf
from appliance.store.db import Session
from web_ui.views import access, export, records, sessions
from web_ui.views.auth import audit
from web_ui.views.context import services
from web_ui.views.formatting import when
from web_ui.views.plaincache import Damaged, Where
from web_ui.views.transcript import TranscriptView

bp = Blueprint("export", __name__)

NOT_OWNER = ("Only the clinician this session belongs to can export it as a PDF. "
             "Ask them for a copy; you can still read the note on the session page.")
NO_NOTE = "This session has no note to export yet."
DAMAGED_NOTE = ("The note of this session cannot be read, so there is nothing to export. "
                "The session page says what is damaged and what still works.")
NO_TRANSCRIPT = ("The transcript of this session cannot be read, so it cannot be added. "
                 "Export the note without it.")


def practice() -> str:
    """The practice name for headers ("" while unset: nothing is printed then)."""
    return services().cfg.practice.name


def signer_names() -> Callable[[str], str]:
    """A user name to "Full Name, credentials" (the name itself for an account without a
    profile or one since removed), looked up once per name."""
    storage, seen = services().storage, {}

    def name(username: str) -> str:
        if username not in seen:
            found = keys.profile(storage, username)
            seen[username] = found.signature_name if found else username
        return seen[username]
    return name


def client_name(client: Client | None) -> str | None:
    """"Display name (identifier)" of an assigned client; None when none is assigned."""
    if client is None:
        return None
    record = client.record
    return f"{record.name} ({record.identifier})" if record.identifier else record.name


def label_for(session: Session, identity: age.X25519Identity) -> str | None:
    """What the exports call the client: the assigned client (when it is the clinician's
    whose session it is), else the session's label."""
    svc = services()
    row = svc.storage.client(session.client_id) if session.client_id is not None else None
    # A colleague a session is shared with sees its client's name, as on the page.
    if row is not None and row.owner_id == session.owner_id:
        found = client_name(load_client(svc.storage, row.id, identity))
        if found:
            return found
    label = svc.plain.text(session.label_enc, identity, Where(session.id, "label"))
    return "(the stored label cannot be read)" if isinstance(label, Damaged) else label


def pdf_response(body: bytes, name: str) -> Response:
    """A PDF download, never kept by the browser's or a proxy's cache."""
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


def render(make: Callable[[], bytes]) -> bytes:
    """The PDF, or 503 saying which font package to install."""
    try:
        return make()
    except pdf.PdfFontError as error:
        abort(503, str(error))


def signed_filename(moment: datetime, kind: str, number: int, fmt: str) -> str:
    """holdnote-client-3-2024-05-03.pdf: ids and dates only, never client text."""
    return f"holdnote-{kind}-{number}-{when(moment, '%Y-%m-%d')}.{fmt}"


def _note(session: Session, with_transcript: bool) -> pdf.PdfNote:
    identity = services().keys.identity()
    record = records.load_note(services().storage, services().plain, identity, session.id)
    if record is None:
        abort(404, NO_NOTE)
    if record.damaged:
        abort(409, DAMAGED_NOTE)
    view = None
    if with_transcript:
        # The session page's cached view: the same lines the page and text export show.
        view = sessions.transcript_view(session.id, identity)[0]
        if not isinstance(view, TranscriptView):
            abort(409, NO_TRANSCRIPT)
    return export.as_pdf_note(session, label_for(session, identity), record, view,
                              signer_names())


@bp.route("/sessions/<int:session_id>/export.pdf")
def note_pdf(session_id: int):
    """The note as a PDF; ``?transcript=1`` adds the transcript after it."""
    session, level = access.session_for(session_id)
    if level != Access.OWN:
        abort(403, NOT_OWNER)
    with_transcript = request.args.get("transcript") == "1"
    note = _note(session, with_transcript)
    body = render(lambda: pdf.note_pdf(note, practice()))
    audit("session.export", session_id, detail="pdf with transcript" if with_transcript else "pdf")
    return pdf_response(body, export.filename(session, "pdf"))


@bp.app_context_processor
def print_globals() -> dict:
    """What the session page prints around the note (templates/_print.html), as the PDF does."""
    names = signer_names()

    def owner(session: Session) -> str:
        username = access.names().get(session.owner_id or 0)
        return names(username) if username else ""

    def client(session: Session) -> str | None:
        return label_for(session, services().keys.identity())

    return {"print_practice": practice(), "print_signer": names, "print_owner": owner,
            "print_client": client}
