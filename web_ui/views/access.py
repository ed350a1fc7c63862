"""The web side of the rules between clinicians: every session route loads through here.

:func:`session_for` is the one gate: it loads a session for the logged-in
person at the level a route needs, or ends the request. A session the person
may not see answers 404 exactly like one that does not exist, so trying ids
in the address bar confirms nothing; one shared read-only answers 403 to a
change, with a sentence saying why.
"""

from __future__ import annotations

from flask import abort, g
from werkzeug.exceptions import BadRequest, Forbidden, NotFound

from appliance.access import keys
from appliance.access.roles import Access, access, may_reassign
from appliance.errors import SessionNotFoundError
from appliance.store.db import Session, Viewer
from web_ui.views import records
from web_ui.views.context import services

NOT_FOUND = "There is no such session. It may have been deleted."
READ_ONLY = ("This session is shared with you read-only: you can read and export it, "
             "but only its clinician can change it.")
ADMIN_ONLY = "Only an admin can do that. Ask an admin on the Users page."


def viewer() -> Viewer:
    """The logged-in account as session queries take it (looked up once per request)."""
    if g.get("viewer") is None:
        found = keys.viewer(services().storage, g.user)
        if found is None:  # removed a moment ago; its logins end with it
            abort(403, "This account no longer exists. Log in as another user.")
        g.viewer = found
    return g.viewer


def require_admin() -> Viewer:
    """The viewer if they are an admin; 403 with a sentence otherwise."""
    found = viewer()
    if not found.admin:
        abort(403, ADMIN_ONLY)
    return found


def session_for(session_id: int, need: Access = Access.READ) -> tuple[Session, Access]:
    """The session and the viewer's level on it, if that level is at least ``need``."""
    storage = services().storage
    try:
        session = records.get_session(storage, session_id)
    except SessionNotFoundError:
        raise NotFound(NOT_FOUND) from None
    level = access(viewer(), session, storage.shared_with(session.id))
    if level >= need:
        return session, level
    raise Forbidden(READ_ONLY) if level >= Access.READ else NotFound(NOT_FOUND)


def colleague(name: str) -> tuple[int, str]:
    """The account called ``name``, or 400 with a sentence."""
    for user_id, username in names().items():
        if username == name:
            return user_id, username
    raise BadRequest(f"There is no user named {name!r}. Choose a colleague from the list.")


def names() -> dict[int, str]:
    """Every account's name by id."""
    return {u.id: u.username for u in services().keys.users()}


def page_context(session: Session, level: Access) -> dict:
    """What the session page shows about ownership and sharing, and which forms it offers."""
    who = names()
    me = viewer()
    shared = [who[i] for i in services().storage.shared_with(session.id) if i in who]
    return {
        "can_edit": level == Access.OWN,
        "owner_name": who.get(session.owner_id) if session.owner_id else None,
        "shared_names": shared,
        "colleagues": [n for i, n in sorted(who.items(), key=lambda x: x[1])
                       if i not in (me.user_id, session.owner_id)],
        "may_reassign": may_reassign(me, level),
        "viewer_admin": me.admin,
    }
