"""The objects every request works with, built once per app.

The app factory builds one :class:`Services` and keeps it in
``app.extensions``; views reach it through :func:`services`. Nothing here is
global, so two apps (two tests) in one process never share state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, request

from appliance.access.audit import AuditLog
from appliance.access.failures import Guard
from appliance.access.keys import KeyStore
from appliance.access.logins import Logins
from appliance.access.setup_code import SetupCodes
from appliance.config import Config
from appliance.store.db import Storage
from web_ui.views.damage import DamageLog
from web_ui.views.plaincache import PlainCache
from web_ui.views.search_index import SearchIndex

EXTENSION = "holdnote"


@dataclass
class Services:
    """Configuration, storage, keys, audit and the per-worker caches."""

    cfg: Config
    now: Callable[[], datetime]
    storage: Storage
    keys: KeyStore
    audit: AuditLog
    codes: SetupCodes
    logins: Logins
    guard: Guard
    plain: PlainCache
    index: SearchIndex
    damage: DamageLog

    @classmethod
    def build(cls, cfg: Config, now: Callable[[], datetime]) -> Services:
        """Open the data directory and wire everything to one clock."""
        storage = Storage(cfg.paths.data_dir, now=now)
        audit = AuditLog(storage)
        damage = DamageLog(storage, audit)
        plain = PlainCache(on_damage=damage.report)
        return cls(
            cfg=cfg,
            now=now,
            storage=storage,
            keys=KeyStore.for_config(cfg, storage),
            audit=audit,
            codes=SetupCodes(storage),
            logins=Logins(storage, now, cfg.web.idle_minutes, cfg.web.session_hours),
            guard=Guard(storage, now, cfg.security.max_failed_logins,
                        cfg.security.lockout_minutes),
            plain=plain,
            index=SearchIndex(storage, plain),
            damage=damage,
        )

    def forget_plaintext(self) -> None:
        """Drop every decrypted byte this worker holds (on lock)."""
        self.plain.clear()
        self.index.clear()


def here() -> str:
    """The current path and query, for a login's ``next``.

    Werkzeug's ``request.full_path`` ends in a bare "?" when there is no
    query, which then shows in the address bar after logging in.
    """
    query = request.query_string.decode("latin-1")
    return f"{request.path}?{query}" if query else request.path


def services() -> Services:
    """The services of the app handling the current request."""
    return current_app.extensions[EXTENSION]
