"""The post-quantum ML-KEM-768 + X25519 hybrid keys, :class:`HybridRecipient`
(``age1pq1…``) and :class:`HybridIdentity` (``AGE-SECRET-KEY-PQ-1…``), and the
mlkem768x25519 stanza they write and read through HPKE. ML-KEM needs a recent
``cryptography``; where it is missing, :data:`HYBRID_SUPPORTED` is False and
making a hybrid key raises :class:`~appliance.errors.KeyFormatError` saying to
upgrade.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from appliance.age.bech32 import bech32_decode, bech32_encode
from appliance.age.primitives import b64_decode, b64_encode, x25519_shared_secret
from appliance.age.stanza import Stanza, check_arg_count, check_body_size, unwrap_each
from appliance.age.x25519 import bad_recipient
from appliance.errors import HeaderError, KeyFormatError

try:  # ML-KEM needs a recent cryptography (and backend); the Pi may run an older one.
    from cryptography.hazmat.primitives import hpke as _hpke
    from cryptography.hazmat.primitives.asymmetric import mlkem as _mlkem

    _HYBRID_SUITE = _hpke.Suite(
        _hpke.KEM.MLKEM768_X25519, _hpke.KDF.HKDF_SHA256, _hpke.AEAD.CHACHA20_POLY1305
    )
except (ImportError, AttributeError, UnsupportedAlgorithm):
    # Typed as the real modules: every use is behind _require_hybrid().
    _hpke = _mlkem = _HYBRID_SUITE = None  # type: ignore[assignment]

HYBRID_SUPPORTED = _HYBRID_SUITE is not None
"""True when the installed ``cryptography`` can do ML-KEM-768 + X25519."""

_HYBRID_LABEL = b"age-encryption.org/mlkem768x25519"
_MLKEM768_PUBLIC_SIZE = 1184
_MLKEM768_CIPHERTEXT_SIZE = 1088
_HYBRID_PUBLIC_SIZE = _MLKEM768_PUBLIC_SIZE + 32
_HYBRID_ENC_SIZE = _MLKEM768_CIPHERTEXT_SIZE + 32


def _require_hybrid() -> None:
    if not HYBRID_SUPPORTED:
        raise KeyFormatError(
            "post-quantum (AGE-SECRET-KEY-PQ / age1pq) keys need a cryptography "
            "release with ML-KEM-768 support; upgrade the 'cryptography' package"
        )


def _hybrid_public_key(public: bytes):
    mlkem_public = _mlkem.MLKEM768PublicKey.from_public_bytes(public[:_MLKEM768_PUBLIC_SIZE])
    x25519_public = X25519PublicKey.from_public_bytes(public[_MLKEM768_PUBLIC_SIZE:])
    return _hpke.MLKEM768X25519PublicKey(mlkem_public, x25519_public)


class HybridRecipient:
    """A post-quantum age public key (``age1pq1…``, ML-KEM-768 + X25519)."""

    __slots__ = ("_key", "_public")

    def __init__(self, public_bytes: bytes):
        _require_hybrid()
        if len(public_bytes) != _HYBRID_PUBLIC_SIZE:
            raise KeyFormatError(f"a hybrid public key must be {_HYBRID_PUBLIC_SIZE} bytes")
        try:
            self._key = _hybrid_public_key(bytes(public_bytes))
        except ValueError:
            raise KeyFormatError("invalid ML-KEM-768 + X25519 public key") from None
        self._public = bytes(public_bytes)

    @classmethod
    def from_str(cls, text: str) -> HybridRecipient:
        """Parse ``age1pq1…``."""
        try:
            hrp, data = bech32_decode(text)
        except KeyFormatError as exc:
            raise bad_recipient(text, str(exc)) from None
        if hrp != "age1pq":
            raise bad_recipient(text, "a post-quantum recipient starts with 'age1pq1'")
        return cls(data)

    def wrap(self, file_key: bytes) -> list[Stanza]:
        """HPKE-seal ``file_key`` to this key (fresh encapsulation each time)."""
        sealed = _HYBRID_SUITE.encrypt(file_key, self._key, info=_HYBRID_LABEL)
        enc, body = sealed[:_HYBRID_ENC_SIZE], sealed[_HYBRID_ENC_SIZE:]
        return [Stanza("mlkem768x25519", (b64_encode(enc).decode("ascii"),), body)]

    def __str__(self) -> str:
        return bech32_encode("age1pq", self._public)

    def __repr__(self) -> str:
        return f"<HybridRecipient {str(self)[:20]}…>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HybridRecipient) and other._public == self._public

    def __hash__(self) -> int:
        return hash(self._public)


class HybridIdentity:
    """A post-quantum age secret key (``AGE-SECRET-KEY-PQ-1…``): a 32-byte seed."""

    __slots__ = ("_key", "_recipient", "_seed", "_x25519")

    def __init__(self, seed: bytes):
        _require_hybrid()
        if len(seed) != 32:
            raise KeyFormatError("a hybrid secret key must be a 32-byte seed")
        # Seed expansion of draft-ietf-hpke-pq / X-Wing: SHAKE256 to 96 bytes,
        # 64 for the ML-KEM-768 (d, z) seed, 32 for the X25519 scalar.
        shake = hashes.Hash(hashes.SHAKE256(96))
        shake.update(bytes(seed))
        expanded = shake.finalize()
        mlkem_private = _mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
        self._x25519 = X25519PrivateKey.from_private_bytes(expanded[64:])
        self._key = _hpke.MLKEM768X25519PrivateKey(mlkem_private, self._x25519)
        self._seed = bytes(seed)
        public = (
            mlkem_private.public_key().public_bytes_raw()
            + self._x25519.public_key().public_bytes_raw()
        )
        self._recipient = HybridRecipient(public)

    @classmethod
    def generate(cls) -> HybridIdentity:
        """A new random post-quantum identity."""
        return cls(os.urandom(32))

    @classmethod
    def from_str(cls, text: str) -> HybridIdentity:
        """Parse ``AGE-SECRET-KEY-PQ-1…``; the message never repeats the secret."""
        hrp, data = bech32_decode(text)
        if hrp != "AGE-SECRET-KEY-PQ-" or len(data) != 32:
            raise KeyFormatError(
                "malformed secret key: expected 'AGE-SECRET-KEY-PQ-1' (upper case) and 32 bytes"
            )
        return cls(data)

    def to_recipient(self) -> HybridRecipient:
        """The public key that files for this identity are encrypted to."""
        return self._recipient

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        """The file key from the first mlkem768x25519 stanza addressed to this identity."""
        return unwrap_each(stanzas, self._unwrap_one)

    def _unwrap_one(self, stanza: Stanza) -> bytes | None:
        if stanza.type != "mlkem768x25519":
            return None
        check_arg_count(stanza, 1)
        enc = b64_decode(stanza.args[0].encode("ascii"), "mlkem768x25519 encapsulation")
        if len(enc) != _HYBRID_ENC_SIZE:
            raise HeaderError(
                f"malformed age header: mlkem768x25519 encapsulation is {len(enc)} bytes, "
                f"not {_HYBRID_ENC_SIZE}"
            )
        check_body_size(stanza)
        # HPKE does not reject a low-order X25519 share on its own; age must.
        x25519_shared_secret(self._x25519, enc[_MLKEM768_CIPHERTEXT_SIZE:])
        try:
            return _HYBRID_SUITE.decrypt(enc + stanza.body, self._key, info=_HYBRID_LABEL)
        except (InvalidTag, ValueError):
            return None

    def __str__(self) -> str:
        return bech32_encode("AGE-SECRET-KEY-PQ-", self._seed)

    def __repr__(self) -> str:
        return f"<HybridIdentity for {str(self._recipient)[:20]}…>"
