"""Decrypted ciphertexts, kept in this worker's memory only.

Decrypting is deterministic, so a ciphertext's plaintext can be reused until
the ciphertext changes (every re-encryption produces different bytes, so the
ciphertext's digest is a safe key). Callers must fetch the identity first
(:meth:`KeyStore.identity` raises while the device is locked) so a locked
device never serves from here; locking also clears it. Nothing is written to
disk.

This is also the one place where the web pages turn a stored value that no
longer decrypts (a flipped bit on the SD card) into data: :meth:`PlainCache.text`
and :meth:`PlainCache.json` return a :class:`Damaged` marker instead of
raising, and report it once through ``on_damage``, so one bad value affects
only the part of the page that shows it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance import age
from appliance.errors import CryptoError

log = logging.getLogger(__name__)

# Enough for the session list, a few long transcripts and the search index
# working set, small enough for a Raspberry Pi with 2 GB and two workers.
MAX_BYTES = 48 * 1024 * 1024


@dataclass(frozen=True)
class Where:
    """Which stored value a ciphertext is: a session and one of its fields."""

    session_id: int
    field: str  # "label", "flags", "transcript", "note" or "addendum"


@dataclass(frozen=True)
class Damaged:
    """A stored value that cannot be decrypted or parsed; shown as such, never as a 500."""

    field: str
    reason: str


DamageReporter = Callable[[Where, bytes, str], None]


def _why(error: Exception) -> str:
    """A short reason for the logs and the audit entry (no plaintext can be in it)."""
    if isinstance(error, CryptoError):
        return f"does not decrypt ({type(error).__name__})"
    return f"decrypts but is not valid ({type(error).__name__})"


class PlainCache:
    """A bounded least-recently-used map from ciphertext digest to plaintext."""

    def __init__(self, max_bytes: int = MAX_BYTES, on_damage: DamageReporter | None = None):
        self.max_bytes = max_bytes
        self.on_damage = on_damage
        self._items: OrderedDict[tuple[str, bytes], tuple[Any, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def decrypt(self, blob: bytes, identity: age.X25519Identity) -> bytes:
        """The plaintext of an age ciphertext (raises the age errors on bad input)."""
        return self._get("raw", blob, lambda: age.decrypt(blob, [identity]))

    def open(self, blob: bytes, identity: age.X25519Identity, where: Where,
             parse: Callable[[bytes], Any] = bytes) -> Any:
        """``parse`` of the plaintext, not cached (a whole transcript), or :class:`Damaged`.

        ``parse`` may raise ``ValueError`` for a plaintext it cannot read;
        that counts as damage too.
        """
        return self._load(blob, identity, where, parse)

    def json(self, blob: bytes, identity: age.X25519Identity, where: Where) -> Any:
        """A decrypted JSON document, or :class:`Damaged`. Shared between requests: do not mutate it."""
        return self._get("json", blob, lambda: self._load(blob, identity, where, json.loads))

    def text(self, blob: bytes | None, identity: age.X25519Identity,
             where: Where) -> str | Damaged | None:
        """A decrypted UTF-8 text, :class:`Damaged`, or ``None`` for no ciphertext."""
        if blob is None:
            return None
        return self._get("text", blob, lambda: self._load(
            blob, identity, where, lambda raw: raw.decode("utf-8")))

    def damaged(self, where: Where, blob: bytes, error: Exception) -> Damaged:
        """Log and report a value that cannot be read; the marker the page shows instead."""
        reason = _why(error)
        log.warning("session %s: the stored %s %s", where.session_id, where.field, reason)
        if self.on_damage is not None:
            self.on_damage(where, blob, reason)
        return Damaged(where.field, reason)

    def _load(self, blob: bytes, identity: age.X25519Identity, where: Where,
              parse: Callable[[bytes], Any]) -> Any:
        # Only the parsed value is kept: caching the raw bytes too would double the memory.
        try:
            return parse(age.decrypt(blob, [identity]))
        except (CryptoError, ValueError) as error:  # UnicodeDecodeError is a ValueError
            return self.damaged(where, blob, error)

    def derived(self, kind: str, blob: bytes, produce, weight: int = 8) -> Any:
        """Something computed from a ciphertext's plaintext (a rendered view), cached alike.

        The caller must already hold the identity; ``produce`` does the work.
        Parsed Python objects take several times the bytes of their
        ciphertext; ``weight`` accounts for that against the memory bound.
        """
        return self._get(kind, blob, produce, weight)

    def clear(self) -> None:
        """Forget everything (the device was locked)."""
        with self._lock:
            self._items.clear()
            self._size = 0

    def _get(self, kind: str, blob: bytes, produce, weight: int = 2) -> Any:
        key = (kind, hashlib.blake2b(blob, digest_size=20).digest())
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit[0]
        value = produce()
        self._put(key, value, len(blob) * weight)
        return value

    def _put(self, key: tuple[str, bytes], value: Any, size: int) -> None:
        if size > self.max_bytes // 4:
            return  # a huge document would push everything else out
        with self._lock:
            if key in self._items:
                return
            self._items[key] = (value, size)
            self._size += size
            while self._size > self.max_bytes and self._items:
                _, (_, dropped) = self._items.popitem(last=False)
                self._size -= dropped
