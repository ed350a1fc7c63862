"""A client's record for the clinic's files (``client_export.record``): PDF, Markdown or text.

Every signed note of the client, oldest session first, each with its addenda,
after a cover block (practice, clinician, client, date range, count). Drafts are
left out (a record holds what was signed), and so are case conceptualizations:
they are signed apart and never mixed into progress notes. Only the client's
clinician exports it, on the unlocked device; the audit entry names the client
by id and the format, never a name.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, abort, g

from appliance.clients.records import Client, load_client
from appliance.notes import pdf
from appliance.notes.render import md_escape
from appliance.store.db import Session
from web_ui.views import access, export, records
from web_ui.views.auth import audit
from web_ui.views.context import services
from web_ui.views.export_pdf import (
    client_name,
    pdf_response,
    practice,
    render,
    signed_filename,
    signer_names,
)
from web_ui.views.formatting import when
from web_ui.views.records import NoteRecord

bp = Blueprint("client_export", __name__)

FORMATS = ("pdf", "md", "txt")
NO_CLIENT = "There is no such client. It may have been deleted."
NOTHING_SIGNED = ("This client has no signed notes to export yet. Sign a session's note on its "
                  "session page, then export the record again.")


@dataclass(frozen=True)
class _Signed:
    session: Session
    record: NoteRecord


def _client(client_id: int) -> Client:
    """The viewer's own client, or 404 (a colleague's client is not confirmed to exist)."""
    svc = services()
    row = svc.storage.client(client_id)
    # Checked before anything is decrypted: a colleague's client record is never opened.
    if row is None or row.owner_id != access.viewer().user_id:
        abort(404, NO_CLIENT)
    found = load_client(svc.storage, client_id, svc.keys.identity())
    if found is None:  # deleted a moment ago
        abort(404, NO_CLIENT)
    return found


def _signed_notes(client: Client) -> list[_Signed]:
    """The client's signed, readable notes in session order (sessions of this clinician only)."""
    svc = services()
    identity, me = svc.keys.identity(), access.viewer().user_id
    found = []
    for session in svc.storage.client_sessions(client.id):
        if session.owner_id != me:
            continue
        record = records.load_note(svc.storage, svc.plain, identity, session.id)
        if record is not None and record.signed and not record.damaged:
            found.append(_Signed(session, record))
    return found


def _cover(client: Client, notes: list[_Signed]) -> pdf.PdfCover:
    first, last = notes[0].session.started_at, notes[-1].session.started_at
    return pdf.PdfCover(clinician=signer_names()(g.user), client=client_name(client) or "",
                        first=when(first, "%Y-%m-%d"), last=when(last, "%Y-%m-%d"),
                        count=len(notes))


def _text(cover: pdf.PdfCover, notes: list[_Signed], label: str) -> str:
    head = ["CLIENT RECORD", *(f"{k}: {v}" for k, v in pdf.cover_facts(cover, practice()))]
    bodies = [export.as_text(n.session, label, n.record) for n in notes]
    return "\n".join(head) + "\n\n" + "\n\n".join(f"{'=' * 60}\n\n{body}" for body in bodies)


def _markdown(cover: pdf.PdfCover, notes: list[_Signed], label: str) -> str:
    head = ["# Client record", "", *(f"- **{k}:** {md_escape(v)}"
                                     for k, v in pdf.cover_facts(cover, practice()))]
    bodies = [export.as_markdown(n.session, label, n.record) for n in notes]
    return "\n".join(head) + "\n\n" + "\n\n".join(f"---\n\n{body}" for body in bodies)


@bp.route("/clients/<int:client_id>/export.<fmt>")
def record(client_id: int, fmt: str):
    """The client's signed notes in date order, as ``fmt`` (pdf, md or txt)."""
    if fmt not in FORMATS:
        abort(404, f"There is no “.{fmt[:20]}” export. A client's record exports as "
                   ".pdf, .md or .txt.")
    client = _client(client_id)
    notes = _signed_notes(client)
    if not notes:
        abort(404, NOTHING_SIGNED)
    cover, label = _cover(client, notes), client_name(client)
    name = signed_filename(notes[-1].session.started_at, "client", client_id, fmt)
    if fmt == "pdf":
        names = signer_names()
        pages = [export.as_pdf_note(n.session, label, n.record, None, names) for n in notes]
        body = render(lambda: pdf.record_pdf(cover, pages, practice()))
        response = pdf_response(body, name)
    else:
        text = _text(cover, notes, label or "") if fmt == "txt" else _markdown(cover, notes,
                                                                                label or "")
        response = Response(text, mimetype="text/plain" if fmt == "txt" else "text/markdown",
                            headers={"Content-Disposition": f'attachment; filename="{name}"',
                                     "Cache-Control": "no-store"})
    audit("client.export", detail=f"client {client_id}; {fmt}; {len(notes)} notes")
    return response
