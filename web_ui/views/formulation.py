"""A client's case conceptualization: the five Ps, drafted on demand, edited, signed, versioned.

"Draft case conceptualization" queues a version and wakes ``holdnote-draft.path``
(the same request file a Redraft touches); the model never runs in the web
process. The page shows the newest version (or one asked for) with each drafted
statement's citations as links to the session line, the statements the check
kept out with the reason, an editable text per P, and Sign. Only the client's
clinician sees it; a closed client's is readable, not drafted. It is never part
of an exported session note. Audit entries carry ids only.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for

from appliance.clients import consent
from appliance.clients import formulation as types
from appliance.clients.formulation import Formulation, Section
from appliance.errors import InvalidStateError
from appliance.notes import times
from appliance.store import formulations as table
from appliance.store.db import State
from web_ui.views import access, drafts
from web_ui.views.client_access import audit_client, client_for, client_href, today
from web_ui.views.context import services
from web_ui.views.records import clean_text

bp = Blueprint("formulation", __name__)

CLOSED = "This client is closed: reopen the client to draft a case conceptualization."
NOT_REVIEWED = ("Tick \u201cI have reviewed this case conceptualization\u201d to sign it. "
                "Nothing was signed; your text was saved.")
MAX_CHARS = 20_000


@dataclass(frozen=True)
class Cite:
    """A citation as a link to the session line."""

    label: str
    href: str


def _cites(statement: types.Statement, formulation: Formulation) -> tuple[Cite, ...]:
    return tuple(Cite(types.cite_label(c, formulation.sessions),
                      url_for("sessions.show", session_id=c.session_id) + f"#t-{int(c.start_s)}")
                 for c in statement.citations)


def _state_line(f: Formulation) -> str | None:
    if f.state == "queued":
        return ("Drafting is queued: it runs at idle priority while the device is unlocked, "
                "after any notes waiting for the model.")
    if f.state == "drafting":
        return f"Drafting now: {round(f.progress * 100)} % done."
    if f.state == "failed":
        return f"It could not be drafted: {(f.reason or 'no reason was recorded').rstrip('.')}."
    return None


def _signed_sessions(client_id: int) -> int:
    storage = services().storage
    return sum(1 for s in storage.client_sessions(client_id) if s.state == State.SIGNED)


def _page(client_id: int, number: int | None = None, *, error: str | None = None,
          typed: dict[str, str] | None = None, status: int = 200):
    client = client_for(client_id)
    svc = services()
    identity = svc.keys.identity()
    every = types.versions(svc.storage, client_id, identity)
    shown = next((f for f in every if f.version == number), None) if number else next(iter(every), None)
    if number and shown is None:
        abort(404, "There is no such version of this case conceptualization.")
    audit_client("formulation.view", client_id, extra=f", version {shown.version}" if shown else "")
    return render_template(
        "formulation.html", client=client, f=shown, versions=every, error=error, typed=typed or {},
        cites=lambda st: _cites(st, shown) if shown else (), state_line=_state_line(shown) if shown else None,
        newest=bool(shown and every and shown.version == every[0].version),
        refusal=_refusal(client_id, client.active), back=client_href(client_id),
        clock=times.clock), status


def _refusal(client_id: int, active: bool) -> str | None:
    """Why a draft cannot be asked for now, in one sentence; None when it can."""
    if not active:
        return CLOSED
    if drafts.drafting_off():
        return drafts.OFF
    if not _signed_sessions(client_id):
        return types.NO_SIGNED_NOTES
    return consent.drafting_blocked(services().storage, client_id, today())


@bp.route("/clients/<int:client_id>/formulation")
def page(client_id: int):
    """The newest version (or ``?version=N``), its citations, the form and the versions."""
    number = request.args.get("version", type=int)
    return _page(client_id, number)


@bp.route("/clients/<int:client_id>/formulation/status")
def status_json(client_id: int):
    """The newest version's state and progress, for the page to reload when it changes."""
    client_for(client_id)
    row = table.newest(services().storage, client_id)
    return jsonify(state=row.state if row else None, version=row.version if row else None,
                   progress=row.progress if row else 0.0)


@bp.route("/clients/<int:client_id>/formulation/draft", methods=["POST"])
def draft(client_id: int):
    """Queue a draft from the client's signed notes and wake the drafting service."""
    client = client_for(client_id)
    refusal = _refusal(client_id, client.active)
    if refusal:
        return _page(client_id, error=refusal, status=409)
    svc = services()
    number = table.request(svc.storage, client_id, access.viewer().username)
    audit_client("formulation.draft", client_id, extra=f", version {number}")
    if drafts.request_drafting(svc.cfg.paths.runtime_dir):
        flash("Case conceptualization queued: it is drafted at idle priority while the device "
              "is unlocked.", "success")
    else:
        flash("Case conceptualization queued, but the device could not start drafting now: "
              "tonight's overnight run drafts it (or ask an administrator to check the "
              "holdnote-draft service).", "warning")
    return redirect(url_for("formulation.page", client_id=client_id))


def _edited(current: Formulation) -> tuple[list[Section], dict[str, str]]:
    """The sections with the form's text; a P whose text changed is the clinician's from now on."""
    typed, sections = {}, []
    for section in current.sections:
        raw = request.form.get(f"text_{section.key}")
        if raw is None:
            sections.append(section)
            continue
        text = clean_text(raw, MAX_CHARS).strip()
        typed[section.key] = text
        changed = text != section.text.strip()
        sections.append(Section(section.key, section.title, text or types.NOTHING_YET,
                                section.statements, section.edited or changed, section.dropped))
    return sections, typed


def _store(client_id: int, sign: bool):
    client_for(client_id)
    svc = services()
    identity = svc.keys.identity()
    number = request.form.get("version", type=int)
    row = table.version(svc.storage, client_id, number) if number else None
    if row is None:
        abort(400, "The form names no version of this case conceptualization; reload the page.")
    current = types.from_row(row, identity)
    sections, typed = _edited(current)
    body = types.seal(types.body_of(sections, approach=current.approach, model=current.model,
                                    sessions=current.sessions), svc.keys.recipient())
    me = access.viewer().username
    try:
        if sign and request.form.get("reviewed") != "yes":
            table.save(svc.storage, client_id, current.version, body, me)
            audit_client("formulation.save", client_id, extra=f", version {current.version}")
            return _page(client_id, current.version, error=NOT_REVIEWED, typed=typed, status=400)
        (table.sign if sign else table.save)(svc.storage, client_id, current.version, body, me)
    except InvalidStateError as error:
        return _page(client_id, current.version, error=str(error), typed=typed, status=409)
    audit_client("formulation.sign" if sign else "formulation.save", client_id,
                 extra=f", version {current.version}")
    flash("Case conceptualization signed." if sign else "Case conceptualization saved.", "success")
    return redirect(url_for("formulation.page", client_id=client_id, version=current.version))


@bp.route("/clients/<int:client_id>/formulation/save", methods=["POST"])
def save(client_id: int):
    """Save the clinician's text of the newest unsigned version."""
    return _store(client_id, sign=False)


@bp.route("/clients/<int:client_id>/formulation/sign", methods=["POST"])
def sign(client_id: int):
    """Save and sign: the version is frozen; a later draft starts the next one."""
    return _store(client_id, sign=True)
