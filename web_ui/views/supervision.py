"""A supervision excerpt of a session (``supervision.page``): pick moments, comment, preview, download.

The form offers the session's bookmarks, its moments to review
(:func:`appliance.notes.ruptures.candidates`) and every transcript line. The
client's record name (and each of its words), identifier, the session's
label and a client voice with a name are always replaced, whatever the form
says; the label's capitalised words start the form's own list. "Preview"
shows the Markdown exactly as it leaves; the downloads post the same fields
and are refused when the result is not what was previewed (a comment
changed since), so nothing unseen leaves. Nothing is kept
on the server. Only the session's own clinician, while the device is
unlocked; ``Cache-Control: no-store`` as on every page (:mod:`security`).
The audit names the session, the format and how many moments, never a word.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from flask import Blueprint, Response, abort, render_template, request

from appliance.access.roles import Access
from appliance.clients.lines import identify
from appliance.clients.records import load_client
from appliance.notes import ruptures, supervision
from appliance.notes.supervision import ExcerptError, Pick, Roles
from appliance.notes.supervision_pdf import excerpt_pdf
from appliance.store.db import Session
from appliance.store.voices import voice_names
from appliance.transcript import TranscriptResult
from web_ui.views import access
from web_ui.views.auth import audit
from web_ui.views.client_access import session_day
from web_ui.views.context import services
from web_ui.views.export_pdf import pdf_response, render
from web_ui.views.plaincache import Where

bp = Blueprint("supervision", __name__)

NOT_OWNER = ("Only the clinician this session belongs to can make a supervision excerpt of it.")
NO_TRANSCRIPT = "This session has no readable transcript, so there are no moments to pick."
CHANGED = ("The form changed since the preview, so nothing was downloaded. Read the new preview "
           "below, then download again.")
BAD_CONTEXT = "The context is a number of lines (0 to 20) before and after each moment."
MAX_NAMES_CHARS = 5_000
MAX_COMMENT_CHARS = 5_000
_GENERIC = re.compile(r"(?i)(clinician|client|unknown|speaker \d+)")


@dataclass(frozen=True)
class Loaded:
    """The session, its transcript, who speaks, and the names that are always replaced."""

    session: Session
    result: TranscriptResult
    roles: Roles
    always: tuple[str, ...]
    suggested: tuple[str, ...]  # the label's capitalised words: the form starts with them
    others: tuple[str, ...]  # other speakers' labels that are names: "Other names" starts so


@dataclass(frozen=True)
class Form:
    """What the form posted, as typed (a refused form comes back with it)."""

    picked: tuple[str, ...]  # line starts as the form sends them
    comments: dict[str, str]
    context: str
    client_names: str
    other_names: str


def _load(session_id: int) -> Loaded:
    session, level = access.session_for(session_id)
    if level != Access.OWN:
        abort(403, NOT_OWNER)
    svc = services()
    identity = svc.keys.identity()  # locked: the login page says so
    blob = svc.storage.load_transcript(session_id)
    result = (svc.plain.open(blob, identity, Where(session_id, "transcript"),
                             TranscriptResult.from_bytes) if blob is not None else None)
    if not isinstance(result, TranscriptResult) or not result.segments:
        abort(404, NO_TRANSCRIPT)
    who = identify(result, svc.cfg.speakers.clinician_name, voice_names(svc.storage))
    label = svc.plain.text(session.label_enc, identity, Where(session.id, "label"))
    label = label if isinstance(label, str) else ""
    always = _client_names(session, label, who.client, identity)
    suggested = tuple(w for w in dict.fromkeys(_words(label))
                      if w[:1].isupper() and w.isalpha() and w not in always)
    others = tuple(name for name in result.speakers if name not in (who.clinician, who.client)
                   and not _GENERIC.fullmatch(name))
    return Loaded(session, result, Roles(who.clinician, who.client), always, suggested, others)


def _client_names(session: Session, label: str, client_label: str | None,
                  identity) -> tuple[str, ...]:
    """The client's name, its words, identifier, the session label and a named client voice."""
    svc = services()
    names: list[str] = []
    row = svc.storage.client(session.client_id) if session.client_id is not None else None
    client = load_client(svc.storage, row.id, identity) if row is not None else None
    if client is not None and not client.record.damaged:
        names += [client.record.name, *_words(client.record.name), client.record.identifier]
    names.append(label)
    if client_label and not _GENERIC.fullmatch(client_label):
        names.append(client_label)
    return tuple(dict.fromkeys(n.strip() for n in names if n and n.strip()))


def _words(name: str) -> list[str]:
    """The words of a name that can stand alone ("Dana", not an initial "W.")."""
    return [w for w in re.split(r"[\s,]+", name) if len(w.strip(".")) > 1]


def _form(loaded: Loaded) -> Form:
    if request.method == "GET":
        return Form((), {}, str(supervision.DEFAULT_CONTEXT), "\n".join(loaded.suggested),
                    "\n".join(loaded.others))
    picked = tuple(dict.fromkeys(request.form.getlist("moment")))
    comments = {key: request.form.get(f"comment-{key}", "")[:MAX_COMMENT_CHARS] for key in picked}
    return Form(picked, comments, request.form.get("context", "3").strip(),
                request.form.get("client_names", "")[:MAX_NAMES_CHARS],
                request.form.get("other_names", "")[:MAX_NAMES_CHARS])


def _names(text: str) -> list[str]:
    return [n.strip() for n in re.split(r"[\n,;]+", text) if n.strip()]


def _excerpt(loaded: Loaded, form: Form) -> supervision.Excerpt:
    """The excerpt the form asks for, or :class:`ExcerptError` saying why not."""
    try:
        context = int(form.context)
    except ValueError:
        raise ExcerptError(BAD_CONTEXT) from None
    try:
        picks = [Pick(float(key), form.comments.get(key, "")) for key in form.picked]
    except ValueError:
        raise ExcerptError(supervision.UNKNOWN_LINE) from None
    return supervision.build(
        loaded.result, picks, when=session_day(loaded.session.started_at), roles=loaded.roles,
        client_names=(*loaded.always, *_names(form.client_names)),
        other_names=_names(form.other_names), context=context)


def digest(text: str) -> str:
    """What the download compares with the preview's."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _choices(loaded: Loaded) -> dict:
    """What the form offers: bookmarks, moments to review and every line (keyed by start)."""
    result = loaded.result
    segments = result.segments
    marks = [(segments[b.segment_index], b.text or b.snippet) for b in result.bookmarks
             if b.segment_index is not None and 0 <= b.segment_index < len(segments)]
    clinician = loaded.roles.clinician or services().cfg.speakers.clinician_name
    found = ruptures.candidates(result, clinician, loaded.roles.client)
    return {"bookmarks": marks, "moments": found, "lines": segments,
            "speakers": supervision.speaker_roles(result, loaded.roles), "key": repr}


def _page(loaded: Loaded, form: Form, *, markdown: str | None = None, error: str | None = None,
          status: int = 200):
    return render_template(
        "supervision.html", s=loaded.session, form=form, always=loaded.always, error=error,
        markdown=markdown, previewed=digest(markdown) if markdown else "",
        by_key={repr(seg.start): seg for seg in loaded.result.segments},
        clock=supervision.clock, **_choices(loaded)), status


@bp.route("/sessions/<int:session_id>/supervision", methods=["GET", "POST"])
def page(session_id: int):
    """The form (GET), its preview (POST action=preview) or a download (action=md or pdf)."""
    loaded = _load(session_id)
    form = _form(loaded)
    action = request.form.get("action", "preview") if request.method == "POST" else None
    if action is None:
        audit("supervision.view", session_id)
        return _page(loaded, form)
    try:
        excerpt = _excerpt(loaded, form)
    except ExcerptError as error:
        return _page(loaded, form, error=str(error), status=400)
    text = supervision.markdown(excerpt)
    if action not in ("md", "pdf"):
        audit("supervision.view", session_id, detail=f"preview, {len(excerpt.moments)} moments")
        return _page(loaded, form, markdown=text)
    if request.form.get("previewed") != digest(text):
        return _page(loaded, form, markdown=text, error=CHANGED, status=409)
    return _download(session_id, excerpt, text, action)


def _download(session_id: int, excerpt: supervision.Excerpt, text: str, fmt: str) -> Response:
    name = f"supervision-excerpt.{fmt}"  # no id or date: the name leaves with the file
    if fmt == "pdf":
        body = render(lambda: excerpt_pdf(excerpt))
        audit("supervision.export", session_id, detail=f"pdf, {len(excerpt.moments)} moments")
        return pdf_response(body, name)
    audit("supervision.export", session_id, detail=f"md, {len(excerpt.moments)} moments")
    return Response(text, mimetype="text/markdown", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})

