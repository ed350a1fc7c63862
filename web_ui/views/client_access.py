"""The gate to a client on the web pages, and the opened records a page shows.

A client is its clinician's: anyone else (a colleague, an admin) gets the
same 404 as for a client that never existed, so trying ids in the address
bar confirms nothing. Audit entries name a client by id only.
"""

from __future__ import annotations

from datetime import date, datetime

from flask import abort, url_for

from appliance.clients import records
from appliance.clients.records import Client
from web_ui.views import access
from web_ui.views.auth import audit
from web_ui.views.context import services
from web_ui.views.formatting import local

NO_SUCH_CLIENT = "There is no such client. It may have been deleted."


def opener():
    """Decrypt with this worker's cache and the unlocked identity (raises while locked)."""
    svc = services()
    identity = svc.keys.identity()
    return lambda blob: svc.plain.decrypt(blob, identity)


def client_for(client_id: int) -> Client:
    """The logged-in clinician's client, or 404 with a sentence."""
    svc = services()
    row = svc.storage.client(client_id) if client_id < 2**63 else None
    if row is None or row.owner_id != access.viewer().user_id:
        abort(404, NO_SUCH_CLIENT)
    return records.client_from_row(row, opener())


def my_clients() -> list[Client]:
    """The logged-in clinician's clients, active first."""
    svc = services()
    return records.clients_for(svc.storage, access.viewer().user_id, svc.keys.identity(), opener())


def any_client(client_id: int) -> Client | None:
    """A client whatever its owner (for a session its reader may see), or None."""
    row = services().storage.client(client_id)
    return records.client_from_row(row, opener()) if row else None


def client_href(client_id: int) -> str:
    """The client's page."""
    return url_for("clients.page", client_id=client_id)


def today() -> date:
    """The device's local date (the clock is the app's, so tests set it)."""
    now = services().now()
    return (local(now) or now).date()


def session_day(started_at: datetime) -> date:
    """The local date a session was recorded on."""
    return (local(started_at) or started_at).date()


def audit_client(action: str, client_id: int, session_id: int | None = None,
                 extra: str = "") -> None:
    """An audit entry about a client: its id, never its name or goals."""
    audit(action, session_id, detail=f"client {client_id}{extra}")
