"""Decrypted ciphertexts, kept in this worker's memory only.

Decrypting is deterministic, so a ciphertext's plaintext can be reused until
the ciphertext changes (every re-encryption produces different bytes, so the
ciphertext's digest is a safe key). Callers must fetch the identity first
(:meth:`KeyStore.identity` raises while the device is locked) so a locked
device never serves from here; locking also clears it. Nothing is written to
disk.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any

from appliance import age

# Enough for the session list, a few long transcripts and the search index
# working set, small enough for a Raspberry Pi with 2 GB and two workers.
MAX_BYTES = 48 * 1024 * 1024


class PlainCache:
    """A bounded least-recently-used map from ciphertext digest to plaintext."""

    def __init__(self, max_bytes: int = MAX_BYTES):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, bytes], tuple[Any, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def decrypt(self, blob: bytes, identity: age.X25519Identity) -> bytes:
        """The plaintext of an age ciphertext (raises the age errors on bad input)."""
        return self._get("raw", blob, lambda: age.decrypt(blob, [identity]))

    def json(self, blob: bytes, identity: age.X25519Identity) -> Any:
        """A decrypted JSON document. Shared between requests: do not mutate it."""
        return self._get("json", blob, lambda: json.loads(self.decrypt(blob, identity)))

    def text(self, blob: bytes | None, identity: age.X25519Identity) -> str | None:
        """A decrypted UTF-8 text, or ``None`` for no ciphertext."""
        if blob is None:
            return None
        return self.decrypt(blob, identity).decode("utf-8")

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
