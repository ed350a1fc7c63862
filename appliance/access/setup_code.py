"""The one-time setup code that guards first-run setup.

Until the first account exists, anyone on the LAN could open the setup page;
the code that ``install.sh`` prints (``holdnote setup-code``) proves the person
at the page is the one who installed the device. Only its hash is stored, it
expires, and it is consumed by a successful setup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from appliance.access.keys import user_count
from appliance.store.db import Storage, iso

HASH_SETTING = "setup_code_hash"
EXPIRES_SETTING = "setup_code_expires"
LIFETIME = timedelta(days=7)
# No 0/O or 1/I/L: the code is read off a terminal and typed on a phone.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def _digest(code: str) -> str:
    normal = code.strip().upper().replace("-", "").replace(" ", "")
    return hashlib.sha256(normal.encode()).hexdigest()


class SetupCodes:
    """Issue, check and consume the setup code stored in the settings table."""

    def __init__(self, storage: Storage):
        self.storage = storage

    def setup_done(self) -> bool:
        """True once any user exists."""
        return user_count(self.storage) > 0

    def issue(self) -> str:
        """A new code (replacing any earlier one), formatted XXXX-XXXX-XXXX."""
        raw = "".join(secrets.choice(ALPHABET) for _ in range(12))
        self.storage.set_setting(HASH_SETTING, _digest(raw))
        self.storage.set_setting(EXPIRES_SETTING, iso(self.storage.now() + LIFETIME))
        return "-".join(raw[i:i + 4] for i in range(0, 12, 4))

    def check(self, code: str) -> bool:
        """True if ``code`` is the current, unexpired code (not consumed)."""
        stored = self.storage.get_setting(HASH_SETTING)
        expires = self.storage.get_setting(EXPIRES_SETTING)
        if not stored or not expires or self.setup_done():
            return False
        if self.storage.now() >= datetime.fromisoformat(expires):
            return False
        return hmac.compare_digest(stored, _digest(code))

    def consume(self) -> None:
        """Invalidate the code after a successful setup."""
        self.storage.set_setting(HASH_SETTING, None)
        self.storage.set_setting(EXPIRES_SETTING, None)
