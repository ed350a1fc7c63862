"""Users (add, remove, change passphrase) and the audit log page."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from appliance.errors import KeysError
from web_ui.views.auth import audit, passphrase_problem, username_problem
from web_ui.views.context import services

bp = Blueprint("admin", __name__)

AUDIT_PAGE = 100


def _users() -> list[dict]:
    return [{"username": u.username, "created_at": u.created_at, "last_login": u.last_login}
            for u in services().keys.users()]


def _page(error: str | None = None, status: int = 200, form: dict | None = None):
    return render_template("users.html", users=_users(), error=error, form=form or {}), status


@bp.route("/users")
def users():
    """Every clinician account, with forms to add and remove."""
    return _page()


@bp.route("/users/add", methods=["POST"])
def add_user():
    """Give another clinician an account and a key slot (needs the unlocked device)."""
    svc = services()
    username = request.form.get("username", "").strip()
    passphrase = request.form.get("passphrase", "")
    problem = username_problem(username) or passphrase_problem(
        passphrase, request.form.get("repeat", ""))
    if problem:
        return _page(problem, 400, {"username": username})
    try:
        svc.keys.add_user(username, passphrase, svc.keys.identity())
    except KeysError as error:
        return _page(str(error).capitalize() + ".", 409, {"username": username})
    audit("user.add", detail=username)
    flash(f"{username} can now log in with the passphrase you chose. Ask them to change it.",
          "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/<username>/remove", methods=["POST"])
def remove_user(username: str):
    """Remove an account and its key slot; its logins end at once."""
    svc = services()
    if username == g.user:
        return _page("You cannot remove your own account while logged in with it. "
                     "Ask a colleague, or log in as another user.", 409)
    try:
        svc.keys.remove_user(username)
    except KeysError as error:
        return _page(str(error).capitalize() + ".", 404 if isinstance(error, LookupError)
                     else 409)
    svc.logins.end_all(username)
    audit("user.remove", detail=username)
    flash(f"{username} was removed and can no longer log in.", "success")
    return redirect(url_for("admin.users"))


@bp.route("/account/passphrase", methods=["GET", "POST"])
def passphrase():
    """Change your own passphrase (re-seals your key slot)."""
    if request.method == "GET":
        return render_template("passphrase.html")
    new = request.form.get("new", "")
    problem = passphrase_problem(new, request.form.get("repeat", ""))
    if problem:
        return render_template("passphrase.html", error=problem), 400
    try:
        services().keys.change_passphrase(g.user, request.form.get("current", ""), new)
    except KeysError as error:
        audit("user.passphrase_failed")
        return render_template("passphrase.html", error=str(error).capitalize() + "."), 403
    audit("user.passphrase")
    flash("Passphrase changed. Use the new one from now on.", "success")
    return redirect(url_for("admin.users"))


@bp.route("/audit")
def audit_log():
    """The audit log, newest first, with the chain check."""
    svc = services()
    verdict = svc.audit.verify()
    page = max(1, request.args.get("page", 1, type=int) or 1)
    entries = svc.audit.entries(limit=AUDIT_PAGE * page)[AUDIT_PAGE * (page - 1):]
    return render_template("audit.html", verdict=verdict, entries=entries, page=page,
                           more=len(entries) == AUDIT_PAGE)
