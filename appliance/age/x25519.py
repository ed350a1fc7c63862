"""Native X25519 age keys: :class:`X25519Recipient` (``age1…``) and
:class:`X25519Identity` (``AGE-SECRET-KEY-1…``), and the X25519 stanza they
write and read. It also owns :func:`bad_recipient`, the error for a recipient
string that cannot be used, which the hybrid keys share; it never repeats a
secret key.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.age.bech32 import bech32_decode, bech32_encode
from appliance.age.primitives import (
    b64_decode,
    b64_encode,
    hkdf,
    open_file_key,
    seal_file_key,
    x25519_shared_secret,
)
from appliance.age.stanza import Stanza, check_arg_count, check_body_size, unwrap_each
from appliance.errors import HeaderError, KeyFormatError

_X25519_LABEL = b"age-encryption.org/v1/X25519"


def bad_recipient(text: object, problem: str) -> KeyFormatError:
    """The error for a bad recipient string; it never repeats a secret key."""
    if isinstance(text, str) and text[:14].upper() == "AGE-SECRET-KEY":
        return KeyFormatError(
            "that is a secret key (AGE-SECRET-KEY-…), not a recipient: give its public key "
            "(age1…) instead"
        )
    shown = repr(text) if len(repr(text)) <= 80 else repr(text)[:76] + "…"
    return KeyFormatError(f"{shown} is not an age recipient: {problem}")


class X25519Recipient:
    """An age public key (``age1…``). Encrypting to it needs no secret."""

    __slots__ = ("_public",)

    def __init__(self, public_bytes: bytes):
        if len(public_bytes) != 32:
            raise KeyFormatError("an X25519 public key must be 32 bytes")
        self._public = bytes(public_bytes)

    @classmethod
    def from_str(cls, text: str) -> X25519Recipient:
        """Parse ``age1…``; raises :class:`KeyFormatError` saying what is wrong."""
        try:
            hrp, data = bech32_decode(text)
        except KeyFormatError as exc:
            raise bad_recipient(text, str(exc)) from None
        if hrp != "age" or len(data) != 32:
            raise bad_recipient(text, "expected 'age1' followed by 32 bytes")
        return cls(data)

    @property
    def public_bytes(self) -> bytes:
        """The raw 32-byte Curve25519 point."""
        return self._public

    def wrap(self, file_key: bytes) -> list[Stanza]:
        """Wrap ``file_key`` for this recipient with a fresh ephemeral key."""
        ephemeral = X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes_raw()
        try:
            shared = x25519_shared_secret(ephemeral, self._public)
        except HeaderError:
            raise KeyFormatError(f"{self} is a low-order point, not a usable key") from None
        wrap_key = hkdf(shared, share + self._public, _X25519_LABEL)
        body = seal_file_key(wrap_key, file_key)
        return [Stanza("X25519", (b64_encode(share).decode("ascii"),), body)]

    def __str__(self) -> str:
        return bech32_encode("age", self._public)

    def __repr__(self) -> str:
        return f"X25519Recipient.from_str({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, X25519Recipient) and other._public == self._public

    def __hash__(self) -> int:
        return hash(self._public)


class X25519Identity:
    """An age secret key (``AGE-SECRET-KEY-1…``). Its repr never shows the secret."""

    __slots__ = ("_private", "_recipient")

    def __init__(self, secret: bytes):
        if len(secret) != 32:
            raise KeyFormatError("an X25519 secret key must be 32 bytes")
        self._private = X25519PrivateKey.from_private_bytes(bytes(secret))
        self._recipient = X25519Recipient(self._private.public_key().public_bytes_raw())

    @classmethod
    def generate(cls) -> X25519Identity:
        """A new random identity."""
        return cls(X25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_str(cls, text: str) -> X25519Identity:
        """Parse ``AGE-SECRET-KEY-1…``; the message never repeats the secret."""
        hrp, data = bech32_decode(text)
        if hrp != "AGE-SECRET-KEY-" or len(data) != 32:
            raise KeyFormatError(
                "malformed secret key: expected 'AGE-SECRET-KEY-1' (upper case) and 32 bytes"
            )
        return cls(data)

    def to_recipient(self) -> X25519Recipient:
        """The public key that files for this identity are encrypted to."""
        return self._recipient

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        """The file key from the first X25519 stanza addressed to this identity."""
        return unwrap_each(stanzas, self._unwrap_one)

    def _unwrap_one(self, stanza: Stanza) -> bytes | None:
        if stanza.type != "X25519":
            return None
        check_arg_count(stanza, 1)
        share = b64_decode(stanza.args[0].encode("ascii"), "X25519 share")
        if len(share) != 32:
            raise HeaderError(f"malformed age header: X25519 share is {len(share)} bytes, not 32")
        check_body_size(stanza)
        shared = x25519_shared_secret(self._private, share)
        wrap_key = hkdf(shared, share + self._recipient.public_bytes, _X25519_LABEL)
        return open_file_key(wrap_key, stanza.body)

    def __str__(self) -> str:
        return bech32_encode("AGE-SECRET-KEY-", self._private.private_bytes_raw())

    def __repr__(self) -> str:
        return f"<X25519Identity for {self._recipient}>"
