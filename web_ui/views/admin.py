"""Users (add, remove, roles, change passphrase) and the audit log page.

Every clinician sees who has an account and changes their own passphrase;
only an admin adds or removes accounts or changes roles, and at least one
admin always remains (:mod:`appliance.access.keys` refuses the rest).
"""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from appliance.access.keys import ADMIN, CLINICIAN, ROLES
from appliance.errors import KeysError, TooManyAttemptsError
from web_ui.views import attempts, audit_page
from web_ui.views.access import require_admin, viewer
from web_ui.views.auth import audit, passphrase_problem, username_problem
from web_ui.views.context import services

bp = Blueprint("admin", __name__)


def _users() -> list[dict]:
    return [{"username": u.username, "created_at": u.created_at, "last_login": u.last_login,
             "role": u.role} for u in services().keys.users()]


def _page(error: str | None = None, status: int = 200, form: dict | None = None):
    return render_template("users.html", users=_users(), error=error, form=form or {},
                           is_admin=viewer().admin, roles=ROLES), status


def _refused(error: KeysError):
    return _page(str(error)[:1].upper() + str(error)[1:] + ".",
                 404 if isinstance(error, LookupError) else 409)


@bp.route("/users")
def users():
    """Every clinician account, with forms to add and remove."""
    return _page()


@bp.route("/users/add", methods=["POST"])
def add_user():
    """Give another clinician an account and a key slot (an admin, on the unlocked device)."""
    require_admin()
    svc = services()
    username = request.form.get("username", "").strip()
    passphrase = request.form.get("passphrase", "")
    problem = username_problem(username) or passphrase_problem(
        passphrase, request.form.get("repeat", ""))
    if problem:
        return _page(problem, 400, {"username": username})
    role = ADMIN if request.form.get("role") == ADMIN else CLINICIAN
    try:
        svc.keys.add_user(username, passphrase, svc.keys.identity(), role=role)
    except KeysError as error:
        return _page(str(error).capitalize() + ".", 409, {"username": username})
    audit("user.add", detail=f"{username} ({role})")
    flash(f"{username} can now log in with the passphrase you chose. Ask them to change it.",
          "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/<username>/remove", methods=["POST"])
def remove_user(username: str):
    """Remove an account and its key slot (an admin); its sessions go to a colleague."""
    require_admin()
    svc = services()
    if username == g.user:
        return _page("You cannot remove your own account while logged in with it. "
                     "Ask another admin.", 409)
    heir = request.form.get("heir", "").strip() or g.user
    try:
        moved = svc.keys.remove_user(username, heir)
    except KeysError as error:
        return _refused(error)
    svc.logins.end_all(username)
    audit("user.remove", detail=f"{username}; {moved} sessions to {heir}")
    flash(f"{username} was removed and can no longer log in. "
          f"Their {moved} session{'' if moved == 1 else 's'} now belong to {heir}.", "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/<username>/role", methods=["POST"])
def set_role(username: str):
    """Make an account an admin or a clinician (an admin; one admin always remains)."""
    require_admin()
    role = request.form.get("role", "")
    try:
        changed = services().keys.set_role(username, role)
    except KeysError as error:
        return _refused(error)
    if changed:
        audit("user.role", detail=f"{username}: {role}")
        flash(f"{username} is now {'an admin' if role == ADMIN else 'a clinician'}.", "success")
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
        services().keys.change_passphrase(g.user, request.form.get("current", ""), new,
                                          attempts.counter_for(g.user))
    except TooManyAttemptsError as error:
        return attempts.refused("passphrase.html", error)
    except KeysError as error:
        audit("user.passphrase_failed")
        return render_template("passphrase.html", error=str(error).capitalize() + "."), 403
    audit("user.passphrase")
    flash("Passphrase changed. Use the new one from now on.", "success")
    return redirect(url_for("admin.users"))


@bp.route("/audit")
def audit_log():
    """The audit log: paged, filtered by user, action and date, with the chain check."""
    return audit_page.page()


@bp.route("/audit.csv")
def audit_export():
    """The entries the audit page's filters select, as a CSV file."""
    return audit_page.export()
