"""The session lifecycle: the states a session passes through and the allowed moves.

This module owns the rules; :func:`appliance.store.db.apply_transition` (and
:meth:`appliance.store.db.Storage.transition` around it) is the one place that
writes ``sessions.state``, and it asks :data:`TRANSITIONS` which moves are
legal. A move the table does not list raises :class:`IllegalTransitionError`.
::

                          create_session()
                                 │
                                 ▼
                             recording
                  stop button │     │ crash or power cut (recovery at start-up)
                              ▼     ▼
                       recorded     interrupted ─┐ the stream could not be
                              │     │     ▲      │ completed: recovery retries
                              │     │     └──────┘
                              └──┬──┘
                                 ▼  the overnight job takes it
              ┌────────────▶ transcribing ─┐ stopped (deadline, memory, lock):
              │ retry:         │      │ ▲  │ resumed from its checkpoint
              │ holdnote       │error │ └──┘
              │ transcribe     ▼      ▼ done
              │ --session ID failed   draft ── sign ──▶ signed (final)
              └────────────────┘

Deletion is not a state: :meth:`Storage.delete_session` removes the row and
its files. Who may delete what is decided by the caller (the web page refuses a
session still recording; retention keeps sessions whose audio waits).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from appliance.errors import IllegalTransitionError


class State(StrEnum):
    """Where a session is in its life. See ARCHITECTURE.md section 3."""

    RECORDING = "recording"
    RECORDED = "recorded"
    INTERRUPTED = "interrupted"
    TRANSCRIBING = "transcribing"
    DRAFT = "draft"
    SIGNED = "signed"
    FAILED = "failed"


# Every move the code makes, and no other. A new move is added here first.
TRANSITIONS: Mapping[State, frozenset[State]] = MappingProxyType({
    # The recorder stops it, or recovery closes it after a crash.
    State.RECORDING: frozenset({State.RECORDED, State.INTERRUPTED}),
    State.RECORDED: frozenset({State.TRANSCRIBING}),
    # Recovery runs again on a session whose stream it could not complete before.
    State.INTERRUPTED: frozenset({State.INTERRUPTED, State.TRANSCRIBING}),
    # TRANSCRIBING again: a run stopped mid-way resumes from its checkpoint.
    State.TRANSCRIBING: frozenset({State.TRANSCRIBING, State.DRAFT, State.FAILED}),
    # A failed session is transcribed again when someone asks for it by id.
    State.FAILED: frozenset({State.TRANSCRIBING}),
    State.DRAFT: frozenset({State.SIGNED}),
    State.SIGNED: frozenset(),
})

# States whose audio still waits for the overnight job (each can become TRANSCRIBING).
PENDING_STATES = (State.RECORDED, State.INTERRUPTED, State.TRANSCRIBING)


def can_become(current: State | str, to: State) -> bool:
    """Whether a session in ``current`` may move to ``to``."""
    return to in TRANSITIONS[State(current)]


def sources(to: State) -> tuple[State, ...]:
    """The states a session may be in to move to ``to``, in declaration order."""
    return tuple(state for state in State if to in TRANSITIONS[state])


def illegal(session_id: int, current: State | str, to: State) -> IllegalTransitionError:
    """The error for a refused move, naming what the session can do instead."""
    current = State(current)
    allowed = sources(to)
    onward = ", ".join(sorted(TRANSITIONS[current]))
    return IllegalTransitionError(
        f"session {session_id} is {current}, cannot become {to}: "
        + (f"only a {' or '.join(allowed)} session can" if allowed
           else f"no move leads to {to}, sessions start there")
        + (f"; from {current} it can become {onward}" if onward else f"; {current} is final"),
        session_id=session_id, current=current, to=to)
