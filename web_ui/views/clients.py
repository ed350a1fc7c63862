"""The clients of the logged-in clinician: list, new, edit, close, delete, consent on record.

A client's record (name or initials, identifier, start date, goals) is
encrypted to the practice key; only its clinician sees it. Every view and
change is audited with the client's id, never its name. Assigning sessions
lives in :mod:`web_ui.views.client_assign`; the routes are here.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from appliance.access import keys
from appliance.clients import consent as consent_mod
from appliance.clients.records import Client, RecordError, make_record, seal_record
from appliance.store.clients import ACTIVE, CLOSED
from web_ui.views import access, client_assign
from web_ui.views.auth import audit
from web_ui.views.client_access import (
    audit_client,
    client_for,
    client_href,
    my_clients,
    today,
)
from web_ui.views.context import services

bp = Blueprint("clients", __name__)


@bp.route("/clients")
def index():
    """The clinician's clients: active first, closed ones apart."""
    listed, storage = my_clients(), services().storage
    newest = {c.id: next(iter(consent_mod.consents_of(storage, c.id)), None) for c in listed}
    sessions = {c.id: len(storage.client_sessions(c.id)) for c in listed}
    audit("client.list")
    return render_template("clients.html", active=[c for c in listed if c.active],
                           closed=[c for c in listed if not c.active], href=client_href,
                           newest=newest, sessions=sessions, day=consent_mod.day)


def _form_page(client: Client | None, error: str | None = None, status: int = 200):
    form = request.form if request.method == "POST" else {}
    return render_template("client_form.html", client=client, form=form, error=error), status


def _record_from_form():
    form = request.form
    return make_record(form.get("name", ""), form.get("identifier", ""),
                       form.get("start_date", ""), form.get("goals", ""))


@bp.route("/clients/new", methods=["GET", "POST"])
def new():
    """A new client; then their consent."""
    access.viewer()
    if request.method == "GET":
        return _form_page(None)
    svc = services()
    svc.keys.identity()
    try:
        record = _record_from_form()
    except RecordError as error:
        return _form_page(None, str(error), 400)
    client_id = svc.storage.create_client(access.viewer().user_id,
                                          seal_record(record, svc.keys.recipient()))
    audit_client("client.create", client_id)
    flash("Client added. Record the client's consent next.", "success")
    return redirect(url_for("clients.consent", client_id=client_id))


@bp.route("/clients/<int:client_id>/edit", methods=["GET", "POST"])
def edit(client_id: int):
    """Edit the record and status; the page also offers deletion."""
    client = client_for(client_id)
    if request.method == "GET":
        audit_client("client.view", client_id)
        return _form_page(client)
    svc = services()
    try:
        record = _record_from_form()
    except RecordError as error:
        return _form_page(client, str(error), 400)
    status = request.form.get("status", client.status)
    if status not in (ACTIVE, CLOSED):
        return _form_page(client, "Choose active or closed as the status.", 400)
    svc.storage.update_client(client_id, record_enc=seal_record(record, svc.keys.recipient()),
                              status=status)
    audit_client("client.edit", client_id)
    flash("Client saved.", "success")
    return redirect(url_for("clients.index"))


@bp.route("/clients/<int:client_id>/status", methods=["POST"])
def status(client_id: int):
    """Close a client (no new sessions assigned) or reopen one."""
    client_for(client_id)
    action = request.form.get("action", "")
    if action not in ("close", "reopen"):
        abort(400, "Choose close or reopen.")
    services().storage.update_client(client_id, status=CLOSED if action == "close" else ACTIVE)
    audit_client(f"client.{action}", client_id)
    flash("Client closed." if action == "close" else "Client reopened.", "success")
    return redirect(url_for("clients.index"))


@bp.route("/clients/<int:client_id>/delete", methods=["POST"])
def delete(client_id: int):
    """Delete a client once its name is typed; its sessions stay, unassigned."""
    client = client_for(client_id)
    typed = " ".join(request.form.get("confirm_name", "").split())
    if typed != client.record.name:  # a damaged record: the name shown stands in for it
        return _form_page(client, f"Type the client's name, {client.record.name}, exactly to "
                          "confirm. Nothing was deleted.", 400)
    sessions = len(services().storage.client_sessions(client_id))
    services().storage.delete_client(client_id)
    audit_client("client.delete", client_id, extra=f", {sessions} sessions unassigned")
    flash(f"The client was deleted. Their {sessions} session{'s' if sessions != 1 else ''} "
          "stay, unassigned.", "success")
    return redirect(url_for("clients.index"))


# --- consent ----------------------------------------------------------------------


def _obtained_by_default() -> str:
    found = keys.profile(services().storage, g.user)
    return (found.full_name or found.username) if found else g.user


def _consent_page(client: Client, error: str | None = None, status: int = 200):
    form = request.form if request.method == "POST" else {}
    return render_template(
        "client_consent.html", client=client, form=form, error=error, scopes=consent_mod.SCOPES,
        scope_words=consent_mod.SCOPE_WORDS, today=today().isoformat(),
        consents=consent_mod.consents_of(services().storage, client.id),
        obtained_by=_obtained_by_default(), day=consent_mod.day), status


@bp.route("/clients/<int:client_id>/consent", methods=["GET", "POST"])
def consent(client_id: int):
    """The consent form and history (GET); record or withdraw a consent (POST)."""
    client = client_for(client_id)
    if request.method == "GET":
        audit_client("consent.view", client_id)
        return _consent_page(client)
    form, storage = request.form, services().storage
    try:
        if form.get("action") == "withdraw":
            consent_id = form.get("consent_id", "")
            consent_mod.withdraw(storage, client_id, int(consent_id) if consent_id.isdigit() else 0,
                                 on=consent_mod.parse_date(form.get("withdrawn_on", ""),
                                                           "withdrawal date"), today=today())
            audit_client("consent.withdraw", client_id, extra=f", consent {consent_id}")
            flash("Consent withdrawn. Drafting stops for this client; each session page "
                  "offers deleting its audio.", "success")
        else:
            new_id = consent_mod.record_consent(
                storage, client_id, given_on=consent_mod.parse_date(form.get("given_on", ""),
                                                                    "consent date"),
                form_version=form.get("form_version", ""), obtained_by=form.get("obtained_by", ""),
                scope=form.getlist("scope"), by=g.user, today=today())
            audit_client("consent.add", client_id, extra=f", consent {new_id}")
            flash("Consent recorded.", "success")
    except consent_mod.ConsentError as error:
        return _consent_page(client, str(error), 400)
    return redirect(url_for("clients.consent", client_id=client_id))


# --- sessions and clients (web_ui/views/client_assign.py) ------------------------------


@bp.route("/sessions/<int:session_id>/client", methods=["POST"])
def assign(session_id: int):
    """Assign a session to one of the clinician's active clients (or unassign it)."""
    return client_assign.assign(session_id)


@bp.route("/sessions/assign", methods=["POST"])
def bulk_assign():
    """Assign the sessions ticked on the list to one client."""
    return client_assign.bulk_assign()


@bp.route("/sessions/<int:session_id>/audio/delete", methods=["POST"])
def delete_audio(session_id: int):
    """Delete the audio of a session whose client withdrew consent."""
    return client_assign.delete_audio(session_id)
