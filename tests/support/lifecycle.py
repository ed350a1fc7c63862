"""Bringing a test session to any state the legal way, through ``Storage.transition``.

Tests and seeders never write ``sessions.state`` directly (a guard in
test_storage.py checks that): they walk a session along the moves the recorder,
recovery, the overnight job and signing make.
"""

from __future__ import annotations

from appliance.store.db import State, Storage

# A legal way from a new (recording) session to each state: see appliance.store.lifecycle.
ROUTES: dict[State, tuple[State, ...]] = {
    State.RECORDING: (),
    State.RECORDED: (State.RECORDED,),
    State.INTERRUPTED: (State.INTERRUPTED,),
    State.TRANSCRIBING: (State.RECORDED, State.TRANSCRIBING),
    State.FAILED: (State.RECORDED, State.TRANSCRIBING, State.FAILED),
    State.DRAFT: (State.RECORDED, State.TRANSCRIBING, State.DRAFT),
    State.SIGNED: (State.RECORDED, State.TRANSCRIBING, State.DRAFT, State.SIGNED),
}


def walk_to(storage: Storage, session_id: int, state: State, **fields: object) -> None:
    """Move a new session to ``state`` along :data:`ROUTES`; ``fields`` go with the last move."""
    route = ROUTES[state]
    for step in route[:-1]:
        storage.transition(session_id, step)
    if route:
        storage.transition(session_id, route[-1], **fields)
    elif fields:
        storage.update_session(session_id, **fields)
