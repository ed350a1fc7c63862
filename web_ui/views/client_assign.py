"""Sessions and clients on the web pages: assignment, the likely client, consent marks.

A clinician assigns their own sessions to their own active clients, one from
the session page or several from the list; every change is audited with ids
only. A session whose client had no consent in scope on its date is marked;
a client who withdrew consent is offered the deletion of the session's audio.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import abort, flash, redirect, request, url_for

from appliance.access.roles import Access
from appliance.clients import consent as consent_mod
from appliance.clients.records import Client
from appliance.clients.suggest import Seen, likely_client
from appliance.drafting import context
from appliance.errors import InvalidStateError, SessionNotFoundError
from appliance.store.clients import ClientClosedError, ClientNotFoundError
from appliance.store.db import Session, State
from web_ui.views import access
from web_ui.views.auth import audit
from web_ui.views.client_access import (
    NO_SUCH_CLIENT,
    any_client,
    audit_client,
    client_href,
    my_clients,
    session_day,
)
from web_ui.views.context import services

log = logging.getLogger(__name__)

CLOSED = "This client is closed: reopen the client first (on the client's edit page). Nothing was changed."
NOT_YOURS = ("Only the session's clinician assigns it to a client. Nothing was changed.")
# How many of the clinician's recent sessions the suggestion looks at.
HISTORY = 200


@dataclass(frozen=True)
class Shown:
    """A session's client as a page shows it."""

    id: int
    name: str
    href: str | None


def _history(session: Session) -> list[Seen]:
    me = access.viewer()
    recent = services().storage.list_sessions(limit=HISTORY, viewer=me)
    return [Seen(s.started_at.astimezone(), s.client_id) for s in recent
            if s.owner_id == me.user_id and s.client_id is not None and s.id != session.id]


def suggestion(session: Session, active: list[Client]) -> int | None:
    """The likely client of ``session`` among the clinician's active clients."""
    ids = {c.id for c in active}
    return likely_client(session.started_at.astimezone(), _history(session), ids)


def consent_marks(session: Session, client_id: int) -> tuple[list[str], consent_mod.Consent | None]:
    """The session's marks ("No consent on record for …") and the withdrawn consent, if any."""
    consents = consent_mod.consents_of(services().storage, client_id)
    on = session_day(session.started_at)
    mark = consent_mod.gap_message(consent_mod.gaps(consents, on), on)
    return ([mark] if mark else []), consent_mod.withdrawn(consents)


def session_context(session: Session, level: Access) -> dict:
    """What ``_client_assign.html`` needs on the session page."""
    me = access.viewer()
    client = any_client(session.client_id) if session.client_id is not None else None
    shown = None
    if client is not None:
        mine = client.owner_id == me.user_id
        shown = Shown(client.id, client.record.name, client_href(client.id) if mine else None)
    marks, withdrawn = consent_marks(session, client.id) if client else ([], None)
    active = [c for c in my_clients() if c.active] if level == Access.OWN else []
    suggested = session.client_id or (suggestion(session, active) if active else None)
    audio_left = session.audio_path is not None and session.audio_deleted_at is None
    return {"client": shown, "client_marks": marks, "consent_withdrawn": withdrawn,
            "offer_audio_deletion": bool(withdrawn and audio_left and level == Access.OWN),
            "client_choices": active, "client_suggested": suggested,
            "client_can_assign": level == Access.OWN}


def list_context(rows) -> dict:
    """Client names and consent marks for the rows of the sessions list, and the bulk choices."""
    me = access.viewer()
    clients: dict[int, Client | None] = {}
    names: dict[int, Shown] = {}
    marks: dict[int, str] = {}
    for row in rows:
        s = row.session
        if row.listed_only or s.client_id is None:
            continue
        if s.client_id not in clients:
            clients[s.client_id] = any_client(s.client_id)
        client = clients[s.client_id]
        if client is None:
            continue
        mine = client.owner_id == me.user_id
        names[s.id] = Shown(client.id, client.record.name, client_href(client.id) if mine else None)
        found, _ = consent_marks(s, client.id)
        if found:
            marks[s.id] = found[0]
    choices = [c for c in my_clients() if c.active]
    return {"client_names": names, "client_marks": marks, "bulk_choices": choices,
            "my_id": me.user_id}


def _target() -> int | None:
    """The client id the form chose ("" unassigns); 400 for anything else."""
    text = request.form.get("client_id", "").strip()
    if not text:
        return None
    if not text.isdigit():
        abort(400, "Choose a client from the list.")
    return int(text)


def _apply(session_ids: list[int], client_id: int | None) -> None:
    """Assign in one transaction, or end the request with why nothing changed."""
    me = access.viewer()
    try:
        services().storage.assign_clients(session_ids, client_id, owner_id=me.user_id)
    except ClientNotFoundError:
        abort(404, NO_SUCH_CLIENT + " Nothing was changed.")
    except SessionNotFoundError:
        abort(404, access.NOT_FOUND)
    except ClientClosedError:
        abort(409, CLOSED)
    except InvalidStateError:
        abort(403, NOT_YOURS)
    _refresh_followups(session_ids)


def _refresh_followups(session_ids: list[int]) -> None:
    """Unsigned drafts follow their (new) client: last session's plan in, another's out.

    The overnight draft was made before the assignment, so without this the section
    would wait for a Redraft. Made by code, so it is quick; a failure leaves the
    assignment standing and the next Redraft makes the section.
    """
    svc = services()
    for session_id in session_ids:
        try:
            context.refresh(svc.storage, session_id, svc.keys.identity(), svc.keys.recipient(),
                            svc.cfg.speakers.clinician_name)
        except Exception:
            log.exception("could not update the follow-up section of session %s", session_id)


def assign(session_id: int):
    """Assign one session to a client (or unassign it); audited with ids only."""
    session, _ = access.session_for(session_id, Access.OWN)
    client_id = _target()
    _apply([session_id], client_id)
    was = f" (was client {session.client_id})" if session.client_id else ""
    if client_id is None:
        audit("session.unassign_client", session_id,
              detail=f"was client {session.client_id}" if session.client_id else None)
        flash("The session is no longer assigned to a client.", "success")
    else:
        audit_client("session.assign_client", client_id, session_id, was)
        flash("Session assigned to the client.", "success")
    return redirect(url_for("sessions.show", session_id=session_id) + "#client")


def bulk_assign():
    """Assign the ticked sessions of the list to one client: all of them or none."""
    ids = [int(v) for v in request.form.getlist("session_id") if v.isdigit()]
    if not ids:
        flash("Tick the sessions to assign first. Nothing was changed.", "error")
        return redirect(url_for("sessions.index"))
    client_id = _target()
    if client_id is None:
        abort(400, "Choose the client to assign the ticked sessions to. Nothing was changed.")
    # Each session must be the clinician's own: 404 or 403 (nothing changed) otherwise.
    before = {i: access.session_for(i, Access.OWN)[0].client_id for i in ids}
    _apply(ids, client_id)
    for session_id, was in before.items():
        audit_client("session.assign_client", client_id, session_id,
                     f" (was client {was})" if was else "")
    flash(f"{len(ids)} session{'s' if len(ids) != 1 else ''} assigned to the client.", "success")
    return redirect(url_for("sessions.index"))


def delete_audio(session_id: int):
    """Delete only the audio of a session whose client withdrew consent (transcript and note stay)."""
    session, _ = access.session_for(session_id, Access.OWN)
    if session.client_id is None or not consent_marks(session, session.client_id)[1]:
        abort(409, "This session's client has not withdrawn consent; delete the audio with the "
              "whole session (Delete…) or let retention do it. Nothing was deleted.")
    if session.audio_deleted_at is not None or session.audio_path is None:
        abort(409, "This session has no audio left to delete.")
    if session.state in (State.RECORDING, State.TRANSCRIBING):
        abort(409, "The audio is in use (recording or being transcribed); try again once that "
              "has finished. Nothing was deleted.")
    services().storage.delete_audio(session_id)
    audit("session.audio_deleted", session_id, detail="consent withdrawn")
    flash("The audio of this session was deleted. The transcript and note stay.", "success")
    return redirect(url_for("sessions.show", session_id=session_id))
