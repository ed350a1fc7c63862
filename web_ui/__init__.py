"""The clinician's web page: a Flask app served by gunicorn over TLS on the office LAN.

``create_app()`` with no argument reads the configuration file (honouring
``HOLDNOTE_CONFIG``); gunicorn runs ``web_ui:create_app()``. Tests pass a
configuration and a fake clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from flask import Flask, g
from flask_wtf.csrf import CSRFProtect

from appliance import config as config_mod
from appliance.store.db import utcnow

log = logging.getLogger(__name__)

# Big enough for the longest note a clinician writes; refuses floods.
MAX_FORM_BYTES = 1024 * 1024


def create_app(config: config_mod.Config | None = None, *,
               now: Callable[[], datetime] | None = None) -> Flask:
    """Build the web app for ``config`` (default: the configuration file) and clock ``now``."""
    from web_ui.serving import secret
    from web_ui.views import (
        admin,
        audio,
        auth,
        corrections,
        device,
        errors,
        formatting,
        owners,
        search,
        security,
        sessions,
        transcribe_now,
    )
    from web_ui.views.context import EXTENSION, Services

    cfg = config if config is not None else config_mod.load()
    app = Flask(__name__)
    app.extensions[EXTENSION] = Services.build(cfg, now or utcnow)
    app.config.update(
        SECRET_KEY=secret.load_or_create(cfg.paths.data_dir),
        # __Host- makes the browser refuse the cookie unless it is Secure, for
        # this host only and for every path.
        SESSION_COOKIE_NAME="__Host-holdnote",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PREFERRED_URL_SCHEME="https",
        MAX_CONTENT_LENGTH=MAX_FORM_BYTES,
        # Tokens live as long as the login (which has its own limits): a note
        # typed for an hour must still save.
        WTF_CSRF_TIME_LIMIT=None,
        # Referrer-Policy is no-referrer, so browsers send no Referer to
        # check; the token and SameSite=Strict cookies carry the protection.
        WTF_CSRF_SSL_STRICT=False,
        HOLDNOTE_WARM_SEARCH=True,
    )
    # Order matters: the network boundary before anything else looks at the
    # request, then the CSRF check, then the login check.
    security.install(app)
    CSRFProtect(app)
    auth.install(app)
    for blueprint in (sessions.bp, owners.bp, search.bp, device.bp, admin.bp, audio.bp,
                      transcribe_now.bp, corrections.bp):
        app.register_blueprint(blueprint)
    from web_ui.views import client_export, export_pdf, profile  # PDF, client record, profile
    for blueprint in (export_pdf.bp, client_export.bp, profile.bp):
        app.register_blueprint(blueprint)
    from web_ui.views import (
        client_page,  # noqa: F401  (adds clients.page to clients.bp)
        clients,  # clients and consent on record
    )
    app.register_blueprint(clients.bp)
    from web_ui.views import formulation  # a client's case conceptualization
    app.register_blueprint(formulation.bp)
    from web_ui.views import process_notes  # the clinician's private note on a session
    app.register_blueprint(process_notes.bp)
    from web_ui.views import supervision  # de-identified excerpts for supervision
    app.register_blueprint(supervision.bp)
    from web_ui.views import practice  # "My practice": your interventions over time
    app.register_blueprint(practice.bp)
    formatting.install(app)
    errors.install(app)

    @app.context_processor
    def page_globals():
        svc = app.extensions[EXTENSION]
        return {"current_user": g.get("user"), "unlocked": svc.keys.is_unlocked(),
                "idle_seconds": cfg.web.idle_minutes * 60}

    return app

