"""First-run setup, login (which unlocks the device), logout and lock.

Every endpoint requires a login unless it is listed in ``PUBLIC``: a new
page is private by default. Until the first account exists every page leads
to setup, which needs the one-time setup code printed on the device.
"""

from __future__ import annotations

import contextlib
import logging
import re

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from appliance.access.keys import check_passphrase
from appliance.access.logins import Ended, Login
from appliance.errors import (
    AlreadyInitializedError,
    DeviceLockedError,
    KeysError,
    TooManyAttemptsError,
    UserExistsError,
)
from web_ui.views import attempts
from web_ui.views.context import here, services

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

PUBLIC = {"auth.login", "auth.setup", "device.healthz", "static"}
SETUP = {"auth.setup", "device.healthz", "static"}
# Polled by pages in the background: they must not count as activity, or a
# page left open would never be logged off. The note editor's background save
# too: typing is reported by the keepalive, and the save made just before an
# idle logoff must not keep the unattended login alive.
PASSIVE = {"device.status_json", "sessions.autosave_note", "transcribe_now.status_json",
           "formulation.status_json"}
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
SETUP_DONE = "holdnote.setup_done"
SESSION_KEY = "login"
# app.config switch: build the search index in the background after login.
WARM_SEARCH = "HOLDNOTE_WARM_SEARCH"


def username_problem(name: str) -> str | None:
    """Why a new user name is unacceptable, or ``None``."""
    if not USERNAME.match(name):
        return ("A user name is 1 to 64 letters, digits, dots, dashes, underscores or @, "
                "starting with a letter or digit.")
    return None


def passphrase_problem(passphrase: str, repeat: str) -> str | None:
    """Why a new passphrase is unacceptable, or ``None``."""
    if passphrase != repeat:
        return "The two passphrases differ."
    try:
        check_passphrase(passphrase)
    except KeysError as error:
        return str(error).capitalize() + "."
    return None


def safe_next(target: str | None) -> str:
    """Where to go after login: only a path on this site."""
    if (target and target.startswith("/") and not target.startswith("//")
            and "\\" not in target and target.isprintable()):
        return target.rstrip("?") or "/"
    return url_for("sessions.index")


def setup_done() -> bool:
    """True once an account exists (cached once true: accounts never all vanish)."""
    if not current_app.extensions.get(SETUP_DONE):
        current_app.extensions[SETUP_DONE] = services().codes.setup_done()
    return current_app.extensions[SETUP_DONE]


def audit(action: str, session_id: int | None = None, detail: str | None = None,
          actor: str | None = None) -> None:
    """Append to the audit log as the current user, from the client's address."""
    services().audit.append(actor or g.get("user") or "anonymous", action,
                            session_id=session_id, source=request.remote_addr, detail=detail)


def start_login(username: str) -> None:
    """A fresh cookie session (new CSRF token) bound to a new server-side login."""
    token = services().logins.create(username, request.remote_addr)
    session.clear()
    session[SESSION_KEY] = token
    g.user = username


def _load_login():
    svc = services()
    g.user = None
    if not svc.keys.is_unlocked():
        svc.forget_plaintext()
    endpoint = request.endpoint
    if endpoint is None or endpoint == "static":
        return None
    if not setup_done():
        return None if endpoint in SETUP else redirect(url_for("auth.setup"))
    token = session.get(SESSION_KEY)
    if token:
        state = svc.logins.check(token, touch=endpoint not in PASSIVE)
        if isinstance(state, Login):
            g.user = state.username
            _warm_search(svc)
        else:
            session.pop(SESSION_KEY, None)
            _audit_logoff(state)
            if endpoint not in PUBLIC:
                flash(state.reason, "info")
    if g.user is None and endpoint not in PUBLIC:
        if endpoint in PASSIVE or request.accept_mimetypes.best == "application/json":
            return jsonify(error="logged out"), 401
        return redirect(url_for("auth.login", next=here()))
    return None


def _audit_logoff(ended: Ended) -> None:
    """An idle logoff or an expired login is an event like a logout: audit it."""
    if ended.username and ended.cause:
        audit(f"logout.{ended.cause}", actor=ended.username)


def _warm_search(svc) -> None:
    """Start building this worker's search index once someone is logged in."""
    if (current_app.config.get(WARM_SEARCH) and svc.index.needs_warming()
            and svc.keys.is_unlocked()):
        # Locked between the two calls: the next page says so.
        with contextlib.suppress(DeviceLockedError):
            svc.index.warm(svc.keys.identity())


def _device_locked(error: DeviceLockedError):
    """The device was locked under a logged-in page: logging in again unlocks it."""
    svc = services()
    svc.forget_plaintext()
    token = session.pop(SESSION_KEY, None)
    if token:
        svc.logins.end(token)
    if request.endpoint in PASSIVE:
        return jsonify(error="device locked"), 423
    flash("The device is locked (it was restarted or someone locked it). "
          "Log in again to unlock it.", "info")
    return redirect(url_for("auth.login", next=here()))


def install(app: Flask) -> None:
    """Register the login check (after the network boundary) and the blueprint."""
    app.before_request(_load_login)
    app.register_error_handler(DeviceLockedError, _device_locked)
    app.register_blueprint(bp)


# --- setup ------------------------------------------------------------------------


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    """First run: the setup code, the first clinician account and the practice keys."""
    if setup_done():
        return redirect(url_for("auth.login"))
    if request.method == "GET":
        return render_template("setup.html", form={})
    svc = services()
    form = {k: request.form.get(k, "") for k in ("code", "username")}
    try:
        ticket = svc.guard.begin(attempts.counter_for(None))
    except TooManyAttemptsError as error:
        return attempts.refused("setup.html", error, form=form)
    if not svc.codes.check(request.form.get("code", "")):
        if svc.codes.setup_done():  # the code was spent by a setup that finished just now
            svc.guard.forgive(ticket)
            return _set_up_elsewhere()
        audit("setup.code_rejected")
        return render_template("setup.html", form=form, error=(
            "That setup code is not right or has expired. On the device, run "
            "'sudo -u holdnote holdnote setup-code' for a new one.")), 403
    svc.guard.forgive(ticket)
    return _create_first_account(form)


def _create_first_account(form: dict):
    svc = services()
    username = form["username"].strip()
    passphrase = request.form.get("passphrase", "")
    problem = username_problem(username) or passphrase_problem(
        passphrase, request.form.get("repeat", ""))
    if problem:
        return render_template("setup.html", form=form, error=problem), 400
    try:
        recovery = svc.keys.init(username, passphrase)
    except (AlreadyInitializedError, UserExistsError):
        return _set_up_elsewhere()
    svc.codes.consume()
    current_app.extensions[SETUP_DONE] = True
    start_login(username)
    attempts.remember(username)
    audit("setup.done", detail=username)
    audit("login.success")
    log.info("setup complete; first account %s created", username)
    # Rendered straight into this response and never stored: shown exactly once.
    return render_template("setup_recovery.html", recovery_key=recovery)


def _set_up_elsewhere():
    """Someone else finished setup a moment earlier (two tabs, two people)."""
    flash("This device was set up a moment ago by someone else, so your account was "
          "not created. Log in with the account they made, or ask them to add you.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/setup/confirm", methods=["POST"])
def setup_confirm():
    """The clinician confirms the recovery key is saved."""
    if request.form.get("saved") == "yes":
        audit("setup.recovery_saved")
        flash("Setup is complete. Recordings made from now on can be read only "
              "after logging in.", "success")
    else:
        audit("setup.recovery_unconfirmed")
        flash("You did not confirm saving the recovery key. It cannot be shown again: "
              "if it is lost, a forgotten passphrase means the notes cannot be read. "
              "Add a second clinician account as a safeguard.", "warning")
    return redirect(url_for("sessions.index"))


# --- login and logout ------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Check the passphrase; on success unlock the device if it is locked."""
    target = safe_next(request.values.get("next"))
    if g.user:
        return redirect(target)
    if request.method == "GET":
        return render_template("login.html", next=target, username="")
    svc = services()
    username = request.form.get("username", "").strip()[:64]
    passphrase = request.form.get("passphrase", "")
    counter = attempts.counter_for(username)
    try:
        ticket = svc.guard.begin(counter)
    except TooManyAttemptsError as error:
        return attempts.refused("login.html", error, next=target, username=username)
    if not (username and passphrase and svc.keys.verify_password(username, passphrase)):
        return _failed_login(username, target, ticket.locks)
    svc.guard.forgive(ticket)
    start_login(username)
    attempts.remember(username)
    audit("login.success")
    _unlock(username, passphrase, counter)
    _warm_search(svc)
    return redirect(target)


def _failed_login(username: str, target: str, locks: bool):
    audit("login.failure", detail=username or "(empty)", actor="anonymous")
    if locks:
        audit("login.lockout", detail=username or "(empty)", actor="anonymous")
    return render_template("login.html", next=target, username=username,
                           error="That user name and passphrase do not match."), 401


def _unlock(username: str, passphrase: str, counter) -> None:
    svc = services()
    if svc.keys.is_unlocked():
        return
    try:
        svc.keys.unlock(username, passphrase, counter)
    except KeysError as error:
        log.error("login of %s could not unlock the device: %s", username, error)
        flash(f"Logged in, but the device could not be unlocked: {error}", "warning")
        return
    audit("device.unlock")
    flash("Device unlocked. Tonight's transcription can run.", "success")


@bp.route("/logout", methods=["POST"])
def logout():
    """End this login; the device stays unlocked for the overnight job."""
    token = session.pop(SESSION_KEY, None)
    if token:
        services().logins.end(token)
    audit("logout")
    session.clear()
    flash("You are logged out. The device stays unlocked so tonight's transcription "
          "can run; use \u201cLock device\u201d to stop that.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/lock", methods=["POST"])
def lock():
    """Forget the practice key now and log everyone out."""
    svc = services()
    svc.keys.lock()
    svc.forget_plaintext()
    audit("device.lock")
    ended = svc.logins.end_all()
    log.info("device locked from the web page by %s (%d logins ended)", g.user, ended)
    session.clear()
    flash("The device is locked. Nothing can be read or transcribed until a clinician "
          "logs in again. Recording still works.", "success")
    return redirect(url_for("auth.login"))


@bp.route("/keepalive", methods=["POST"])
def keepalive():
    """Called by the page while someone is typing, so idle logoff spares them."""
    return "", 204
