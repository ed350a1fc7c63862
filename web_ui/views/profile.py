"""Your profile: the full name and credentials printed on your exported and printed notes.

Each clinician edits only their own (``profile.edit``); an unset full name
prints the user name. The audit entry says that the profile changed, not to what.
"""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from appliance.access import keys
from appliance.errors import KeysError
from web_ui.views.auth import audit
from web_ui.views.context import services

bp = Blueprint("profile", __name__)


def _page(form: dict, error: str | None = None, status: int = 200):
    return render_template("profile.html", form=form, error=error,
                           max_chars=keys.MAX_PROFILE_CHARS), status


@bp.route("/account/profile", methods=["GET", "POST"])
def edit():
    """Show and save the logged-in clinician's full name and credentials."""
    storage = services().storage
    if request.method == "GET":
        found = keys.profile(storage, g.user) or keys.Profile(g.user)
        return _page({"full_name": found.full_name, "credentials": found.credentials})
    form = {"full_name": request.form.get("full_name", ""),
            "credentials": request.form.get("credentials", "")}
    try:
        keys.set_profile(storage, g.user, form["full_name"], form["credentials"])
    except KeysError as error:
        return _page(form, str(error)[:1].upper() + str(error)[1:] + ".", 400)
    audit("user.profile")
    flash("Profile saved. Exported and printed notes now sign with it.", "success")
    return redirect(url_for("profile.edit"))
