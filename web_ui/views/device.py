"""The device page (recorder, disk, queue, services, errors), its live status and /healthz."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from appliance.store.db import State
from web_ui.serving import tls
from web_ui.views import health, status
from web_ui.views.auth import audit, setup_done
from web_ui.views.backup_status import NOT_CONFIGURED, backup_status, size_text
from web_ui.views.context import services
from web_ui.views.damage import current_damage
from web_ui.views.formatting import clock, when

bp = Blueprint("device", __name__)

COMMANDS = {"start": "Recording started.", "stop": "Recording stopped.",
            "mark": "Moment marked."}
RECORDER_STATES = {"idle": "Ready to record", "recording": "Recording",
                   "stopping": "Stopping", "error": "Needs attention",
                   "not_set_up": "Waiting for setup", "unavailable": "Not running"}
BUTTON_LABELS = {"start": "Start recording", "stop": "Stop", "mark": "Mark moment"}


def buttons(state: str) -> dict[str, dict[str, bool]]:
    """Which recorder buttons work in ``state``, and which one is the main one.

    Start only when the recorder is ready; Stop and Mark only while it records
    (then Stop is the main button); none while it is down, stopping or not set up.
    """
    recording = state == "recording"
    return {
        "start": {"enabled": state == "idle", "primary": state == "idle"},
        "stop": {"enabled": recording, "primary": recording},
        "mark": {"enabled": recording, "primary": False},
    }


def _live() -> dict:
    """The part of the device page that changes by the second (also served as JSON)."""
    svc = services()
    recorder = status.recorder_status(svc.cfg)
    free = svc.storage.free_bytes()
    state = str(recorder.get("state") or "unavailable")
    error = str(recorder.get("error") or "")
    return {
        "buttons": buttons(state),
        "problems": [p.to_json() for p in health.problems(svc.cfg, svc.storage, recorder,
                                                          free)],
        "recorder": {
            "state": state,
            "label": RECORDER_STATES.get(state, state.replace("_", " ").capitalize()),
            "session_id": recorder.get("session_id"),
            "elapsed": clock(recorder.get("elapsed_s")) if recorder.get("elapsed_s") else "",
            "bookmarks": recorder.get("bookmarks") or 0,
            "error": error[:1].upper() + error[1:],
        },
        "free_bytes": free,
        "free_hours": round(status.free_hours(svc.cfg, free), 1),
        "locked": not svc.keys.is_unlocked(),
        "waiting": status.waiting_sessions(svc.storage),
    }


@bp.route("/device")
def index():
    """Recorder state, free space, queue, next run, model, lock state, backups, services, errors."""
    svc = services()
    now = svc.now()
    return render_template(
        "device.html", live=_live(), next_run=when(status.next_run(
            svc.cfg.transcription.night_start, now), "%a %Y-%m-%d %H:%M"),
        night_end=svc.cfg.transcription.night_end, model=status.model_name(svc.cfg),
        services=health.SERVICES.states(), failed=status.failed_sessions(svc.storage),
        clock_synchronised=health.CLOCK.synchronised(), button_labels=BUTTON_LABELS,
        journal=status.journal_errors(now), cert=tls.describe(svc.cfg.web.tls_cert),
        version=status.version(), recording_state=State.RECORDING,
        damaged=current_damage(svc.storage), backup=backup_status(svc.cfg, svc.storage),
        backup_size=size_text, backup_off=NOT_CONFIGURED)


@bp.route("/device/status.json")
def status_json():
    """Live status for the device page's script (does not count as activity)."""
    return jsonify(_live())


@bp.route("/device/recorder", methods=["POST"])
def recorder():
    """Start, stop or mark through the recorder's control socket."""
    command = request.form.get("cmd", "")
    if command not in COMMANDS:
        flash("Unknown recorder command.", "error")
        return redirect(url_for("device.index"))
    reply = status.recorder_command(services().cfg, command)
    audit(f"recorder.{command}", reply.get("session_id") if isinstance(
        reply.get("session_id"), int) else None, detail="ok" if reply.get("ok") else "refused")
    if reply.get("ok"):
        flash(COMMANDS[command], "success")
    else:
        flash(f"The recorder did not {command}: {reply.get('error') or 'no reason given'}.",
              "error")
    return redirect(url_for("device.index"))


@bp.route("/healthz")
def healthz():
    """Machine-readable health for IT: no clinical data, no login, still LAN-only.

    503 whenever something needs IT (the ``problems`` say what), so a plain
    HTTP monitor notices a stopped recorder, not only a stopped web server.
    """
    svc = services()
    body: dict[str, object] = {"version": status.version(), "db": "ok"}
    found: list[health.Problem] = []
    free = svc.storage.free_bytes()
    recorder = status.recorder_status(svc.cfg, timeout=1.0)
    try:
        body["setup_done"] = setup_done()
        body["sessions_waiting"] = status.waiting_sessions(svc.storage)
        found = health.problems(svc.cfg, svc.storage, recorder, free)
    except Exception as error:  # noqa: BLE001 - the point is to report it
        body["db"] = f"error: {type(error).__name__}"
        found = [health.Problem("db", f"The database cannot be read ({type(error).__name__}).")]
    body.update({
        "locked": not svc.keys.is_unlocked(),
        "disk_free_bytes": free,
        "disk_free_hours": round(status.free_hours(svc.cfg, free), 1),
        "recorder": str(recorder.get("state") or "unavailable"),
        "clock_synchronised": health.CLOCK.synchronised(),
        "problems": [problem.to_json() for problem in found],
        "status": "error" if found else "ok",
    })
    return jsonify(body), 503 if found else 200
