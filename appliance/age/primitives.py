"""The sizes fixed by the age v1 spec and the small primitives the rest of
:mod:`appliance.age` builds on: canonical unpadded base64, HKDF-SHA256,
sealing and opening a 16-byte file key under a wrap key, and an X25519 exchange
that refuses low-order points. Constants shared by more than one module (chunk,
tag, file-key and nonce sizes, the 64-column line width, the version line) live
here so that every module agrees on them.
"""

from __future__ import annotations

import binascii
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appliance.errors import HeaderError

CHUNK_SIZE = 64 * 1024
"""Plaintext bytes per STREAM chunk (fixed by the spec)."""

TAG_SIZE = 16
FILE_KEY_SIZE = 16
NONCE_SIZE = 16
_ZERO_NONCE = bytes(12)

VERSION_PREFIX = b"age-encryption.org/"
VERSION_LINE = b"age-encryption.org/v1\n"
COLUMNS = 64

_B64_RAW = re.compile(rb"[A-Za-z0-9+/]*")


def b64_encode(data: bytes) -> bytes:
    """Canonical base64 without padding, as age uses everywhere but the armor."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=")


def b64_decode(text: bytes, what: str) -> bytes:
    """Decode canonical unpadded base64, or raise :class:`HeaderError` naming ``what``."""
    if not _B64_RAW.fullmatch(text) or len(text) % 4 == 1:
        raise HeaderError(f"malformed age header: {what} is not unpadded base64")
    decoded = binascii.a2b_base64(text + b"=" * (-len(text) % 4))
    if b64_encode(decoded) != text:
        raise HeaderError(f"malformed age header: {what} is not canonical base64")
    return decoded


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA-256 with a 32-byte output, as every age key derivation uses it."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def seal_file_key(wrap_key: bytes, file_key: bytes) -> bytes:
    """Wrap the 16-byte file key under ``wrap_key`` (ChaCha20-Poly1305, zero nonce)."""
    # A zero nonce is safe: every wrap key is fresh (new share or new salt).
    return ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)


def open_file_key(wrap_key: bytes, body: bytes) -> bytes | None:
    """Unwrap a stanza body with ``wrap_key``; None if it does not authenticate."""
    try:
        return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        return None


def x25519_shared_secret(private: X25519PrivateKey, share: bytes) -> bytes:
    """X25519 that refuses low-order points (an all-zero shared secret), as age must."""
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(share))
    except ValueError:  # cryptography's refusal of an all-zero result
        shared = bytes(32)
    if shared == bytes(32):
        raise HeaderError("malformed age header: X25519 share is a low-order point")
    return shared
