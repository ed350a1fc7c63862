"""``holdnote record``: send one command to the recorder and say what it answered.

By default the answer is sentences a person reads ("Recording session 12 since
14:02 (3 min 10 s)."); ``--json`` prints the recorder's reply itself, for
scripts. Times are the device's local time, as on the wall clock in the room.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from datetime import datetime, timedelta

from appliance.config import Config
from appliance.errors import HoldnoteError
from appliance.notes.times import length
from appliance.recorder import control
from appliance.store.db import Session, Storage

log = logging.getLogger(__name__)


def run(cfg: Config, action: str, as_json: bool = False) -> int:
    """Send ``action`` (start, stop, mark, status); print the answer; 0 if it succeeded.

    A refused command exits 1 with the recorder's reason on standard error.
    """
    # start/stop wait for files to be fsynced, which a busy SD card can make slow.
    timeout = 5.0 if action == "status" else control.COMMAND_TIMEOUT
    reply = control.send(cfg.paths.recorder_socket, {"cmd": action}, timeout=timeout)
    if as_json:
        print(json.dumps(reply, indent=2))
        return 0 if reply.get("ok") else 1
    now = datetime.now().astimezone()
    if reply.get("ok"):
        print(describe(reply, session_of(cfg, reply), now))
        return 0
    # Refused: the state on standard output, the reason once, on standard error.
    print(describe({**reply, "error": None}, session_of(cfg, reply), now))
    print(f"holdnote: record {action} refused: {reply.get('error')}", file=sys.stderr)
    return 1


def session_of(cfg: Config, reply: dict) -> Session | None:
    """The session a reply speaks of (the current one, else the last), if readable.

    Only for wording (start and end times): a database that cannot be read
    must not hide the recorder's answer.
    """
    wanted = reply.get("session_id") or reply.get("last_session_id")
    try:
        storage = Storage(cfg.paths.data_dir)
        if wanted:
            return storage.get_session(int(wanted))
        newest = storage.list_sessions(limit=1)
    except (HoldnoteError, OSError, sqlite3.Error) as error:
        log.debug("no session details for the status line: %s", error)
        return None
    return newest[0] if newest else None


def clock(moment: datetime, now: datetime) -> str:
    """``14:02`` today, ``2026-11-30 14:02`` on another day (local time)."""
    local = moment.astimezone()
    if local.date() == now.astimezone().date():
        return local.strftime("%H:%M")
    return local.strftime("%Y-%m-%d %H:%M")


def describe(reply: dict, session: Session | None, now: datetime) -> str:
    """The recorder's state in one sentence, then its free space and any error.

    ``session`` is the recording in progress, or when idle the last one
    recorded (``None`` when there is none, or the database cannot be read).
    """
    lines = [_state_sentence(reply, session, now)]
    if reply.get("free_hours") is not None:
        lines.append(f"Space for about {reply['free_hours']:g} h of audio.")
    if reply.get("error"):
        lines.append(f"Problem: {reply['error']}")
    return "\n".join(lines)


def _state_sentence(reply: dict, session: Session | None, now: datetime) -> str:
    state = reply.get("state")
    if state == "recording":
        return _recording(reply, session, now)
    if state == "stopping":
        return f"Stopping; saving session {reply.get('session_id')}."
    if state == "idle":
        return _idle(reply, session, now)
    if state == "not_set_up":
        return "Waiting for setup: create the first account on the web page."
    if state == "error":
        return "Not recording: the recorder has a problem."
    return f"The recorder reports the state {state!r}."


def _recording(reply: dict, session: Session | None, now: datetime) -> str:
    elapsed = float(reply.get("elapsed_s") or 0.0)
    started = session.started_at if session else now - timedelta(seconds=elapsed)
    marks = int(reply.get("bookmarks") or 0)
    bookmarks = f", {marks} bookmark{'' if marks == 1 else 's'}" if marks else ""
    return (f"Recording session {reply.get('session_id')} since {clock(started, now)} "
            f"({length(elapsed)}{bookmarks}).")


def _idle(reply: dict, session: Session | None, now: datetime) -> str:
    if session is None:
        last = reply.get("last_session_id")
        return f"Idle; last session {last}." if last else "Idle; nothing recorded yet."
    if session.ended_at is None:
        return f"Idle; last session {session.id}."
    return f"Idle; last session {session.id} ended {clock(session.ended_at, now)}."
