"""The age v1 file format (https://age-encryption.org/v1), built on ``cryptography``.

Every recording, transcript and note Holdnote stores is an age file, so the stock
tool opens it: ``age -d -i key.txt rec.wav.age > rec.wav``.

What this module gives:

- keys: :class:`X25519Identity` / :class:`X25519Recipient` (``AGE-SECRET-KEY-1…`` /
  ``age1…``), passphrases (:class:`ScryptRecipient` / :class:`ScryptIdentity`) and,
  when the installed ``cryptography`` has ML-KEM, the post-quantum hybrid
  (:class:`HybridIdentity` / :class:`HybridRecipient`, ``AGE-SECRET-KEY-PQ-1…``);
- one-shot :func:`encrypt` / :func:`decrypt`, which never return partial plaintext;
- streaming :class:`StreamWriter` / :class:`StreamReader` in 64 KiB chunks with
  bounded memory, plus :func:`salvage` for a stream that lost its final chunk
  (for example after a power cut while recording);
- atomic :func:`encrypt_file` / :func:`decrypt_file` (temporary name, fsync, rename);
- strict ASCII armor: :func:`dearmor`, :func:`read_armored`, :func:`armor`.

Parsing is as strict as the reference implementation: anything the spec calls
non-canonical is rejected, and every C2SP/CCTV test vector is classified the same
way. Failures are :class:`~appliance.errors.CryptoError` subclasses; an
authentication failure is one opaque error per kind and says nothing about why.
"""

from __future__ import annotations

import binascii
import contextlib
import errno
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Protocol, Sequence, Union, runtime_checkable

from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from appliance.errors import (
    ArmorError,
    HeaderError,
    HeaderMacError,
    KeyFormatError,
    NoIdentityMatchError,
    PayloadError,
    TruncatedStreamError,
)

try:  # ML-KEM needs a recent cryptography (and backend); the Pi may run an older one.
    from cryptography.hazmat.primitives import hpke as _hpke
    from cryptography.hazmat.primitives.asymmetric import mlkem as _mlkem

    _HYBRID_SUITE = _hpke.Suite(
        _hpke.KEM.MLKEM768_X25519, _hpke.KDF.HKDF_SHA256, _hpke.AEAD.CHACHA20_POLY1305
    )
except (ImportError, AttributeError, UnsupportedAlgorithm):
    _hpke = _mlkem = _HYBRID_SUITE = None

__all__ = [
    "CHUNK_SIZE",
    "HYBRID_SUPPORTED",
    "HybridIdentity",
    "HybridRecipient",
    "Identity",
    "Recipient",
    "SalvageResult",
    "ScryptIdentity",
    "ScryptRecipient",
    "Stanza",
    "StreamReader",
    "StreamWriter",
    "X25519Identity",
    "X25519Recipient",
    "armor",
    "bech32_decode",
    "bech32_encode",
    "dearmor",
    "decrypt",
    "decrypt_file",
    "encrypt",
    "encrypt_file",
    "parse_identities",
    "parse_recipients",
    "read_armored",
    "salvage",
]

CHUNK_SIZE = 64 * 1024
"""Plaintext bytes per STREAM chunk (fixed by the spec)."""

HYBRID_SUPPORTED = _HYBRID_SUITE is not None
"""True when the installed ``cryptography`` can do ML-KEM-768 + X25519."""

DEFAULT_SCRYPT_WORK_FACTOR = 18  # age's own default: about 1 s and 256 MiB
MAX_SCRYPT_WORK_FACTOR = 22  # age's decryption limit: 4 GiB of memory

_TAG_SIZE = 16
_ENC_CHUNK_SIZE = CHUNK_SIZE + _TAG_SIZE
_FILE_KEY_SIZE = 16
_NONCE_SIZE = 16
_ZERO_NONCE = bytes(12)
_LAST = b"\x01"
_NOT_LAST = b"\x00"

_VERSION_PREFIX = b"age-encryption.org/"
_VERSION_LINE = b"age-encryption.org/v1\n"
_COLUMNS = 64
_BYTES_PER_LINE = _COLUMNS // 4 * 3
# Bounds on what a hostile header can make us buffer and try. The largest native
# stanza line (mlkem768p256tag) is about 1.6 KB.
_MAX_LINE = 16 * 1024
_MAX_HEADER = 1024 * 1024

_X25519_LABEL = b"age-encryption.org/v1/X25519"
_SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
_HYBRID_LABEL = b"age-encryption.org/mlkem768x25519"
_MLKEM768_PUBLIC_SIZE = 1184
_MLKEM768_CIPHERTEXT_SIZE = 1088
_HYBRID_PUBLIC_SIZE = _MLKEM768_PUBLIC_SIZE + 32
_HYBRID_ENC_SIZE = _MLKEM768_CIPHERTEXT_SIZE + 32

_B64_RAW = re.compile(rb"[A-Za-z0-9+/]*")
_B64_PADDED = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_ARG = re.compile(rb"[\x21-\x7e]+")
_WORK_FACTOR = re.compile(r"[1-9][0-9]*")

# decrypt_into/encrypt_into (newer cryptography releases) save an allocation per chunk.
_HAS_INTO = hasattr(ChaCha20Poly1305, "decrypt_into")

PathOrFile = Union[str, os.PathLike, BinaryIO]


# --- Bech32 (BIP 173, without its 90-character limit, as age specifies) -------

_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_VALUES = {c: i for i, c in enumerate(_BECH32_CHARSET)}
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _bech32_polymod(values: Iterable[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ value
        for i, generator in enumerate(_BECH32_GENERATOR):
            if (top >> i) & 1:
                chk ^= generator
    return chk


def _bech32_hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Iterable[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out = []
    max_value = (1 << to_bits) - 1
    max_acc = (1 << (from_bits + to_bits - 1)) - 1
    for value in data:
        acc = ((acc << from_bits) | value) & max_acc
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & max_value)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & max_value)
    elif bits >= from_bits or (acc << (to_bits - bits)) & max_value:
        raise KeyFormatError("malformed key: invalid Bech32 padding")
    return out


def _check_hrp(hrp: str) -> None:
    if not hrp or any(not 33 <= ord(c) <= 126 for c in hrp):
        raise KeyFormatError("malformed key: invalid Bech32 prefix")


def bech32_encode(hrp: str, data: bytes) -> str:
    """Encode ``data`` as Bech32 with prefix ``hrp``; an uppercase ``hrp`` gives uppercase."""
    _check_hrp(hrp)
    if hrp.lower() != hrp and hrp.upper() != hrp:
        raise KeyFormatError(f"Bech32 prefix {hrp!r} mixes upper and lower case")
    lower = hrp.lower()
    values = _convert_bits(data, 8, 5, pad=True)
    polymod = _bech32_polymod(_bech32_hrp_expand(lower) + values + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    text = lower + "1" + "".join(_BECH32_CHARSET[v] for v in values + checksum)
    return text if hrp == lower else text.upper()


def bech32_decode(text: str) -> tuple[str, bytes]:
    """Decode a Bech32 string into ``(prefix, data)``; the prefix keeps its case.

    Raises :class:`KeyFormatError` without echoing ``text``, which may be a secret key.
    """
    if not isinstance(text, str) or not text.isascii():
        raise KeyFormatError("malformed key: not an ASCII string")
    if text.lower() != text and text.upper() != text:
        raise KeyFormatError("malformed key: mixes upper and lower case")
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise KeyFormatError("malformed key: no Bech32 separator or too short")
    hrp = text[:pos]
    _check_hrp(hrp)
    try:
        values = [_BECH32_VALUES[c] for c in text[pos + 1 :].lower()]
    except KeyError:
        raise KeyFormatError("malformed key: invalid Bech32 character") from None
    if _bech32_polymod(_bech32_hrp_expand(hrp.lower()) + values) != 1:
        raise KeyFormatError("malformed key: Bech32 checksum does not match (typo?)")
    return hrp, bytes(_convert_bits(values[:-6], 5, 8, pad=False))


# --- small primitives ----------------------------------------------------------


def _b64_encode(data: bytes) -> bytes:
    """Canonical base64 without padding, as age uses everywhere but the armor."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=")


def _b64_decode(text: bytes, what: str) -> bytes:
    """Decode canonical unpadded base64, or raise :class:`HeaderError` naming ``what``."""
    if not _B64_RAW.fullmatch(text) or len(text) % 4 == 1:
        raise HeaderError(f"malformed age header: {what} is not unpadded base64")
    decoded = binascii.a2b_base64(text + b"=" * (-len(text) % 4))
    if _b64_encode(decoded) != text:
        raise HeaderError(f"malformed age header: {what} is not canonical base64")
    return decoded


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _seal_file_key(wrap_key: bytes, file_key: bytes) -> bytes:
    # A zero nonce is safe: every wrap key is fresh (new share or new salt).
    return ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)


def _open_file_key(wrap_key: bytes, body: bytes) -> bytes | None:
    try:
        return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        return None


def _check_body_size(stanza: Stanza) -> None:
    # Checked before any decryption attempt, against partitioning oracles.
    if len(stanza.body) != _FILE_KEY_SIZE + _TAG_SIZE:
        raise HeaderError(
            f"malformed age header: {stanza.type} stanza body is {len(stanza.body)} bytes, "
            f"expected {_FILE_KEY_SIZE + _TAG_SIZE}"
        )


def _check_arg_count(stanza: Stanza, expected: int) -> None:
    if len(stanza.args) != expected:
        raise HeaderError(
            f"malformed age header: {stanza.type} stanza has {len(stanza.args)} "
            f"arguments, expected {expected}"
        )


def _x25519(private: X25519PrivateKey, share: bytes) -> bytes:
    """X25519 that refuses low-order points (an all-zero shared secret), as age must."""
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(share))
    except ValueError:  # cryptography's refusal of an all-zero result
        shared = bytes(32)
    if shared == bytes(32):
        raise HeaderError("malformed age header: X25519 share is a low-order point")
    return shared


# --- stanzas and the recipient / identity protocols ----------------------------


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza of an age header: a type, arguments and a binary body."""

    type: str
    args: tuple[str, ...]
    body: bytes

    def __post_init__(self) -> None:
        for arg in (self.type, *self.args):
            if not arg.isascii() or not _ARG.fullmatch(arg.encode("ascii")):
                raise ValueError(f"stanza argument {arg!r} must be printable ASCII without spaces")

    def encode(self) -> bytes:
        """The stanza as header text: argument line, then body wrapped at 64 columns."""
        line = " ".join(("->", self.type, *self.args)).encode("ascii") + b"\n"
        text = _b64_encode(self.body)
        rows = [text[i : i + _COLUMNS] for i in range(0, len(text), _COLUMNS)]
        if len(text) % _COLUMNS == 0:
            rows.append(b"")  # a body always ends with a short (maybe empty) line
        return line + b"\n".join(rows) + b"\n"


@runtime_checkable
class Recipient(Protocol):
    """Something a file can be encrypted to: wraps the file key into stanzas."""

    def wrap(self, file_key: bytes) -> list[Stanza]: ...


@runtime_checkable
class Identity(Protocol):
    """Something that can open a file: finds its stanza and returns the file key.

    ``unwrap`` returns None when no stanza is addressed to it, and raises
    :class:`HeaderError` for a stanza of its type that is malformed.
    """

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None: ...


def _unwrap_each(stanzas: Sequence[Stanza], unwrap_one) -> bytes | None:
    for stanza in stanzas:
        file_key = unwrap_one(stanza)
        if file_key is not None:
            return file_key
    return None


# --- X25519 ------------------------------------------------------------------------


def _bad_recipient(text: object, problem: str) -> KeyFormatError:
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
            raise _bad_recipient(text, str(exc)) from None
        if hrp != "age" or len(data) != 32:
            raise _bad_recipient(text, "expected 'age1' followed by 32 bytes")
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
            shared = _x25519(ephemeral, self._public)
        except HeaderError:
            raise KeyFormatError(f"{self} is a low-order point, not a usable key") from None
        wrap_key = _hkdf(shared, share + self._public, _X25519_LABEL)
        body = _seal_file_key(wrap_key, file_key)
        return [Stanza("X25519", (_b64_encode(share).decode("ascii"),), body)]

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
        return _unwrap_each(stanzas, self._unwrap_one)

    def _unwrap_one(self, stanza: Stanza) -> bytes | None:
        if stanza.type != "X25519":
            return None
        _check_arg_count(stanza, 1)
        share = _b64_decode(stanza.args[0].encode("ascii"), "X25519 share")
        if len(share) != 32:
            raise HeaderError(f"malformed age header: X25519 share is {len(share)} bytes, not 32")
        _check_body_size(stanza)
        shared = _x25519(self._private, share)
        wrap_key = _hkdf(shared, share + self._recipient.public_bytes, _X25519_LABEL)
        return _open_file_key(wrap_key, stanza.body)

    def __str__(self) -> str:
        return bech32_encode("AGE-SECRET-KEY-", self._private.private_bytes_raw())

    def __repr__(self) -> str:
        return f"<X25519Identity for {self._recipient}>"


# --- scrypt (passphrases) --------------------------------------------------------------


def _check_work_factor(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 30:
        raise ValueError(f"{name} must be an integer from 1 to 30, got {value!r}")
    return value


def _check_passphrase(passphrase: str) -> bytes:
    if not isinstance(passphrase, str) or not passphrase:
        raise ValueError("passphrase must be a non-empty string")
    return passphrase.encode("utf-8")


def _scrypt_key(passphrase: bytes, salt: bytes, work_factor: int) -> bytes:
    kdf = Scrypt(salt=_SCRYPT_LABEL + salt, length=32, n=1 << work_factor, r=8, p=1)
    return kdf.derive(passphrase)


class ScryptRecipient:
    """Encrypt to a passphrase. It must be the only recipient of a file (spec rule)."""

    __slots__ = ("_passphrase", "_work_factor")

    def __init__(self, passphrase: str, work_factor: int = DEFAULT_SCRYPT_WORK_FACTOR):
        self._passphrase = _check_passphrase(passphrase)
        self._work_factor = _check_work_factor(work_factor, "work_factor")

    @property
    def work_factor(self) -> int:
        """log2 of scrypt's N; 18 takes about a second and 256 MiB."""
        return self._work_factor

    def wrap(self, file_key: bytes) -> list[Stanza]:
        """Wrap ``file_key`` under the passphrase with a fresh 16-byte salt."""
        salt = os.urandom(16)
        wrap_key = _scrypt_key(self._passphrase, salt, self._work_factor)
        args = (_b64_encode(salt).decode("ascii"), str(self._work_factor))
        return [Stanza("scrypt", args, _seal_file_key(wrap_key, file_key))]

    def __repr__(self) -> str:
        return f"<ScryptRecipient work_factor={self._work_factor}>"


class ScryptIdentity:
    """Open a passphrase-encrypted file; refuses work factors above ``max_work_factor``."""

    __slots__ = ("_passphrase", "_max_work_factor")

    def __init__(self, passphrase: str, max_work_factor: int = MAX_SCRYPT_WORK_FACTOR):
        self._passphrase = _check_passphrase(passphrase)
        self._max_work_factor = _check_work_factor(max_work_factor, "max_work_factor")

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        """The file key from the scrypt stanza, or None if the passphrase is wrong."""
        return _unwrap_each(stanzas, self._unwrap_one)

    def _unwrap_one(self, stanza: Stanza) -> bytes | None:
        if stanza.type != "scrypt":
            return None
        _check_arg_count(stanza, 2)
        salt = _b64_decode(stanza.args[0].encode("ascii"), "scrypt salt")
        if len(salt) != 16:
            raise HeaderError(f"malformed age header: scrypt salt is {len(salt)} bytes, not 16")
        work_factor = self._parse_work_factor(stanza.args[1])
        _check_body_size(stanza)
        return _open_file_key(_scrypt_key(self._passphrase, salt, work_factor), stanza.body)

    def _parse_work_factor(self, text: str) -> int:
        if not _WORK_FACTOR.fullmatch(text):
            raise HeaderError(
                f"malformed age header: scrypt work factor {text[:20]!r} is not a decimal"
            )
        # The length test keeps int() away from absurdly long digit strings.
        if len(text) > 2 or int(text) > self._max_work_factor:
            raise HeaderError(
                f"scrypt work factor {text[:20]} is above the limit of {self._max_work_factor}: "
                "it would take too long; raise max_work_factor only for a trusted file"
            )
        return int(text)

    def __repr__(self) -> str:
        return f"<ScryptIdentity max_work_factor={self._max_work_factor}>"


# --- ML-KEM-768 + X25519 hybrid (post-quantum), when cryptography supports it ----------


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

    __slots__ = ("_public", "_key")

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
            raise _bad_recipient(text, str(exc)) from None
        if hrp != "age1pq":
            raise _bad_recipient(text, "a post-quantum recipient starts with 'age1pq1'")
        return cls(data)

    def wrap(self, file_key: bytes) -> list[Stanza]:
        """HPKE-seal ``file_key`` to this key (fresh encapsulation each time)."""
        sealed = _HYBRID_SUITE.encrypt(file_key, self._key, info=_HYBRID_LABEL)
        enc, body = sealed[:_HYBRID_ENC_SIZE], sealed[_HYBRID_ENC_SIZE:]
        return [Stanza("mlkem768x25519", (_b64_encode(enc).decode("ascii"),), body)]

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

    __slots__ = ("_seed", "_key", "_x25519", "_recipient")

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
        return _unwrap_each(stanzas, self._unwrap_one)

    def _unwrap_one(self, stanza: Stanza) -> bytes | None:
        if stanza.type != "mlkem768x25519":
            return None
        _check_arg_count(stanza, 1)
        enc = _b64_decode(stanza.args[0].encode("ascii"), "mlkem768x25519 encapsulation")
        if len(enc) != _HYBRID_ENC_SIZE:
            raise HeaderError(
                f"malformed age header: mlkem768x25519 encapsulation is {len(enc)} bytes, "
                f"not {_HYBRID_ENC_SIZE}"
            )
        _check_body_size(stanza)
        # HPKE does not reject a low-order X25519 share on its own; age must.
        _x25519(self._x25519, enc[_MLKEM768_CIPHERTEXT_SIZE:])
        try:
            return _HYBRID_SUITE.decrypt(enc + stanza.body, self._key, info=_HYBRID_LABEL)
        except (InvalidTag, ValueError):
            return None

    def __str__(self) -> str:
        return bech32_encode("AGE-SECRET-KEY-PQ-", self._seed)

    def __repr__(self) -> str:
        return f"<HybridIdentity for {str(self._recipient)[:20]}…>"


# --- identity and recipient files ----------------------------------------------------


def _key_lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield number, line


def parse_identities(text: str) -> list[X25519Identity | HybridIdentity]:
    """Parse identity-file text (``age-keygen`` output): keys, ``#`` comments, blank lines.

    Raises :class:`KeyFormatError` naming the line number (never the key itself).
    """
    identities: list[X25519Identity | HybridIdentity] = []
    for number, line in _key_lines(text):
        cls = HybridIdentity if line.startswith("AGE-SECRET-KEY-PQ-") else X25519Identity
        try:
            identities.append(cls.from_str(line))
        except KeyFormatError as exc:
            raise KeyFormatError(f"identity file line {number}: {exc}") from None
    if not identities:
        raise KeyFormatError("identity file contains no keys (only comments or blank lines)")
    return identities


def parse_recipients(text: str) -> list[X25519Recipient | HybridRecipient]:
    """Parse recipients-file text: one ``age1…`` per line, ``#`` comments, blank lines."""
    recipients: list[X25519Recipient | HybridRecipient] = []
    for number, line in _key_lines(text):
        cls = HybridRecipient if line.startswith("age1pq1") else X25519Recipient
        try:
            recipients.append(cls.from_str(line))
        except KeyFormatError as exc:
            raise KeyFormatError(f"recipients file line {number}: {exc}") from None
    if not recipients:
        raise KeyFormatError("recipients file contains no keys (only comments or blank lines)")
    return recipients


def _check_recipients(recipients: Sequence[Recipient]) -> list[Recipient]:
    if isinstance(recipients, (str, bytes)):
        raise TypeError("recipients must be a list of recipient objects, not a string")
    items = list(recipients)
    if not items:
        raise ValueError("at least one recipient is required")
    for item in items:
        if not isinstance(item, Recipient):
            raise TypeError(
                f"{type(item).__name__} is not an age recipient; parse strings with "
                "X25519Recipient.from_str"
            )
    if len(items) > 1 and any(isinstance(r, ScryptRecipient) for r in items):
        raise ValueError("a passphrase (ScryptRecipient) must be the only recipient of a file")
    hybrid = [isinstance(r, HybridRecipient) for r in items]
    if any(hybrid) and not all(hybrid):
        raise ValueError(
            "mixing post-quantum (age1pq) and classic recipients would undo the "
            "post-quantum protection; use only age1pq recipients"
        )
    return items


def _check_identities(identities: Sequence[Identity]) -> list[Identity]:
    if isinstance(identities, (str, bytes)):
        raise TypeError("identities must be a list of identity objects, not a string")
    items = list(identities)
    for item in items:
        if not isinstance(item, Identity):
            raise TypeError(
                f"{type(item).__name__} is not an age identity; parse strings with "
                "parse_identities or X25519Identity.from_str"
            )
    return items


# --- buffered input ------------------------------------------------------------------


class _Source:
    """Buffered binary input: line reads for the header, bulk reads for the payload.

    Whatever the header parser reads ahead stays here and is handed to the payload
    reader first, so the underlying file object needs nothing but ``read``.
    """

    __slots__ = ("_raw", "_raw_readinto", "_buf", "_pos", "_eof")

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._raw_readinto = getattr(raw, "readinto", None)
        self._buf = bytearray()
        self._pos = 0
        self._eof = False

    def _fill(self, size: int = 8192) -> bool:
        if self._eof:
            return False
        data = self._raw.read(size)
        if not data:
            self._eof = True
            return False
        del self._buf[: self._pos]
        self._pos = 0
        self._buf += data
        return True

    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[self._pos : self._pos + n])
        self._pos += n
        return data

    def peek(self, n: int) -> bytes:
        """Up to ``n`` bytes without consuming them."""
        while len(self._buf) - self._pos < n and self._fill():
            pass
        return bytes(self._buf[self._pos : self._pos + n])

    def readline(self, limit: int) -> bytes:
        """Bytes up to and including the next LF; at most ``limit``; shorter at EOF."""
        while True:
            end = self._buf.find(b"\n", self._pos, self._pos + limit)
            if end >= 0:
                return self._take(end + 1 - self._pos)
            if len(self._buf) - self._pos >= limit or not self._fill():
                return self._take(min(limit, len(self._buf) - self._pos))

    def readinto(self, view: memoryview) -> int:
        """Fill ``view`` as far as the input goes; fewer bytes only at end of input."""
        want = len(view)
        n = min(want, len(self._buf) - self._pos)
        if n:
            view[:n] = self._buf[self._pos : self._pos + n]
            self._pos += n
        while n < want and not self._eof:
            got = self._read_raw_into(view[n:])
            if not got:
                self._eof = True
            n += got
        return n

    def _read_raw_into(self, view: memoryview) -> int:
        if self._raw_readinto is not None:
            return self._raw_readinto(view) or 0
        data = self._raw.read(len(view))
        view[: len(data)] = data
        return len(data)

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; fewer only at end of input."""
        buf = bytearray(n)
        got = self.readinto(memoryview(buf))
        return bytes(buf[:got])


# --- ASCII armor ----------------------------------------------------------------------

_ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
_ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"
_ARMOR_MAX_WHITESPACE = 1024


def armor(data: bytes) -> bytes:
    """Wrap an age file in the strict PEM-style armor (64 columns, LF line ends)."""
    text = binascii.b2a_base64(data, newline=False)
    rows = [text[i : i + _COLUMNS] for i in range(0, len(text), _COLUMNS)]
    return b"\n".join([_ARMOR_BEGIN, *rows, _ARMOR_END]) + b"\n"


def _decode_armor_line(line: bytes) -> bytes:
    if not line:
        raise ArmorError("invalid armor: empty line inside the armored block")
    if len(line) > _COLUMNS:
        raise ArmorError(f"invalid armor: line longer than {_COLUMNS} columns")
    if len(line) % 4 or not _B64_PADDED.fullmatch(line):
        raise ArmorError("invalid armor: line is not padded base64")
    data = binascii.a2b_base64(line)
    if binascii.b2a_base64(data, newline=False) != line:
        raise ArmorError("invalid armor: base64 is not canonical")
    return data


class ArmorReader(io.RawIOBase):
    """Streaming, strict decoder of an armored age file (RFC 7468 strict, age rules).

    Accepted: whitespace before and after the block, LF or CRLF line ends, a last
    base64 line of 1 to 64 columns. Everything else raises :class:`ArmorError`.
    """

    def __init__(self, fileobj: BinaryIO | _Source):
        super().__init__()
        self._src = fileobj if isinstance(fileobj, _Source) else _Source(fileobj)
        self._state = "start"
        self._pending = b""
        self._error: ArmorError | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        while len(self._pending) < len(view) and self._state != "done":
            if self._error is not None:  # a broken armor stays broken
                raise self._error
            try:
                self._pending += self._decode_some()
            except ArmorError as exc:
                self._error = exc
                raise
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _line(self, limit: int = _COLUMNS + 3) -> bytes | None:
        line = self._src.readline(limit)  # room for 64 columns and CRLF
        if not line:
            return None
        if line.endswith(b"\n"):
            line = line[:-1]
        elif len(line) >= limit:
            raise ArmorError(f"invalid armor: line longer than {_COLUMNS} columns")
        return line[:-1] if line.endswith(b"\r") else line

    def _decode_some(self) -> bytes:
        if self._state == "start":
            self._skip_to_begin()
        out = bytearray()
        while self._state == "body" and len(out) < CHUNK_SIZE:
            line = self._line()
            if line is None:
                raise ArmorError("invalid armor: no '-----END AGE ENCRYPTED FILE-----' line")
            if line == _ARMOR_END:
                self._finish()
                break
            data = _decode_armor_line(line)
            out += data
            if len(data) < _BYTES_PER_LINE:  # only the last line may be short
                if self._line() != _ARMOR_END:
                    raise ArmorError("invalid armor: a short line must be the last before END")
                self._finish()
        return bytes(out)

    def _skip_to_begin(self) -> None:
        skipped = 0
        while True:
            line = self._line(_ARMOR_MAX_WHITESPACE + 2)
            if line is None:
                raise ArmorError("invalid armor: no '-----BEGIN AGE ENCRYPTED FILE-----' line")
            if line.strip():
                break
            skipped += len(line) + 1
            if skipped > _ARMOR_MAX_WHITESPACE:
                raise ArmorError("invalid armor: too much leading whitespace")
        if line != _ARMOR_BEGIN:
            raise ArmorError(
                "invalid armor: first line is not '-----BEGIN AGE ENCRYPTED FILE-----'"
            )
        self._state = "body"

    def _finish(self) -> None:
        rest = self._src.read(_ARMOR_MAX_WHITESPACE + 1)
        if rest.strip():
            raise ArmorError("invalid armor: data after the END line")
        if len(rest) > _ARMOR_MAX_WHITESPACE:
            raise ArmorError("invalid armor: too much trailing whitespace")
        self._state = "done"


def read_armored(fileobj: BinaryIO) -> ArmorReader:
    """A streaming reader of the age file inside an armored ``fileobj``."""
    return ArmorReader(fileobj)


def dearmor(data: bytes) -> bytes:
    """The age file inside armored ``data``; raises :class:`ArmorError` if not strict."""
    return ArmorReader(io.BytesIO(data)).readall()


def _open_input(fileobj: BinaryIO) -> _Source:
    """A source over ``fileobj``, transparently de-armoring armored input."""
    src = _Source(fileobj)
    head = src.peek(_ARMOR_MAX_WHITESPACE + len(_ARMOR_BEGIN))
    if head.startswith(_VERSION_PREFIX):
        return src
    # Armor starts with '-' or whitespace; a BEGIN line after other text is
    # still armor (with garbage in front), which ArmorReader reports as such.
    stripped = head.lstrip()
    if head and (not stripped or stripped.startswith(b"-") or _ARMOR_BEGIN in head):
        return _Source(ArmorReader(src))
    return src


# --- header ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    stanzas: tuple[Stanza, ...]
    mac: bytes
    mac_input: bytes  # the header up to and including "---"


def _header_line(src: _Source, raw: bytearray, limit: int = _MAX_LINE) -> bytes:
    line = src.readline(limit)
    if not line.endswith(b"\n"):
        if len(line) >= limit:
            raise HeaderError(f"malformed age header: a header line is longer than {limit} bytes")
        raise HeaderError("age header is incomplete: the file was cut short inside its header")
    raw += line
    if len(raw) > _MAX_HEADER:
        raise HeaderError(f"malformed age header: header is larger than {_MAX_HEADER} bytes")
    return line


def _check_version(src: _Source, raw: bytearray) -> None:
    line = src.readline(len(_VERSION_LINE) + 64)
    if not line:
        raise HeaderError("input is empty: it is not an age file")
    if not line.startswith(_VERSION_PREFIX):
        raise HeaderError(
            "input is not an age file: it does not begin with 'age-encryption.org/v1'"
        )
    if line == _VERSION_LINE[:-1]:
        raise HeaderError("age header is incomplete: the file was cut short inside its header")
    if line == _VERSION_LINE[:-1] + b"\r\n":
        raise HeaderError(
            "age header has CRLF line ends: the file was altered in transfer (copied as "
            "text?); age files are binary"
        )
    if line != _VERSION_LINE:
        version = line[len(_VERSION_PREFIX) :].rstrip(b"\n")[:32]
        raise HeaderError(f"unsupported age format version {version!r}: only v1 can be read")
    raw += line


def _parse_stanza(first: bytes, src: _Source, raw: bytearray) -> Stanza:
    parts = first[:-1].split(b" ")
    if parts[0] != b"->" or len(parts) < 2 or not all(_ARG.fullmatch(p) for p in parts[1:]):
        raise HeaderError(f"malformed age header: bad stanza line {first[:40]!r}")
    body = bytearray()
    while True:
        line = _header_line(src, raw)[:-1]
        if len(line) > _COLUMNS:
            raise HeaderError(
                f"malformed age header: stanza body line longer than {_COLUMNS} columns"
            )
        if line.startswith((b"->", b"---")):
            raise HeaderError("malformed age header: stanza ended without its short final line")
        body += _b64_decode(line, "stanza body")
        if len(line) < _COLUMNS:
            args = tuple(p.decode("ascii") for p in parts[2:])
            return Stanza(parts[1].decode("ascii"), args, bytes(body))


def _parse_mac_line(line: bytes) -> bytes:
    parts = line[:-1].split(b" ")
    if parts[0] != b"---" or len(parts) != 2:
        raise HeaderError("malformed age header: bad MAC line")
    mac = _b64_decode(parts[1], "header MAC")
    if len(mac) != 32:
        raise HeaderError("malformed age header: header MAC is not 32 bytes")
    return mac


def _parse_header(src: _Source) -> _Header:
    raw = bytearray()
    _check_version(src, raw)
    stanzas = []
    while True:
        line = _header_line(src, raw)
        if line.startswith(b"---"):
            mac = _parse_mac_line(line)
            mac_input = bytes(raw[: len(raw) - len(line) + 3])
            break
        if not line.startswith(b"->"):
            raise HeaderError(f"malformed age header: unexpected line {line[:40]!r}")
        stanzas.append(_parse_stanza(line, src, raw))
    if not stanzas:
        raise HeaderError("malformed age header: no recipient stanzas")
    return _Header(tuple(stanzas), mac, mac_input)


def _header_mac(file_key: bytes, mac_input: bytes) -> _hmac.HMAC:
    mac = _hmac.HMAC(_hkdf(file_key, b"", b"header"), hashes.SHA256())
    mac.update(mac_input)
    return mac


def _encode_header(recipients: Sequence[Recipient], file_key: bytes) -> bytes:
    stanzas = [stanza for r in recipients for stanza in r.wrap(file_key)]
    mac_input = _VERSION_LINE + b"".join(s.encode() for s in stanzas) + b"---"
    mac = _header_mac(file_key, mac_input).finalize()
    return mac_input + b" " + _b64_encode(mac) + b"\n"


def _unwrap_file_key(header: _Header, identities: Sequence[Identity]) -> bytes:
    if len(header.stanzas) > 1 and any(s.type == "scrypt" for s in header.stanzas):
        raise HeaderError(
            "malformed age header: a passphrase (scrypt) stanza must be the only stanza"
        )
    for identity in identities:
        file_key = identity.unwrap(header.stanzas)
        if file_key is not None:
            if len(file_key) != _FILE_KEY_SIZE:
                raise HeaderError("malformed age header: wrapped file key is not 16 bytes")
            return file_key
    raise NoIdentityMatchError(
        "no identity matched: this file was encrypted to a different key or passphrase"
    )


def _verify_mac(header: _Header, file_key: bytes) -> None:
    try:
        _header_mac(file_key, header.mac_input).verify(header.mac)
    except InvalidSignature:
        raise HeaderMacError(
            "header MAC does not match: the file header was altered or damaged"
        ) from None


def _open_payload(src: _Source, identities: Sequence[Identity]) -> ChaCha20Poly1305:
    """Parse and authenticate the header; return the payload cipher."""
    identities = _check_identities(identities)
    header = _parse_header(src)
    file_key = _unwrap_file_key(header, identities)
    _verify_mac(header, file_key)
    nonce = src.read(_NONCE_SIZE)
    if len(nonce) != _NONCE_SIZE:
        raise HeaderError("age file is incomplete: the payload nonce is missing (file cut short)")
    return ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))


# --- STREAM ---------------------------------------------------------------------------


def _chunk_nonce(counter: int, last: bool) -> bytes:
    # 11-byte big-endian counter plus the final-chunk flag. 2**88 chunks is
    # unreachable, so the counter cannot wrap.
    return counter.to_bytes(11, "big") + (_LAST if last else _NOT_LAST)


def _write_all(dst: BinaryIO, data) -> None:
    view = memoryview(data)
    while view:
        n = dst.write(view)
        if n is None or n >= len(view):  # raw files may write short
            return
        view = view[n:]


def _fsync(fileobj: BinaryIO) -> None:
    try:
        fd = fileobj.fileno()
    except (AttributeError, io.UnsupportedOperation, ValueError):
        return  # an in-memory buffer: nothing to make durable
    os.fsync(fd)


def _open_path(target: PathOrFile, mode: str) -> tuple[BinaryIO, BinaryIO | None]:
    if isinstance(target, (str, os.PathLike)):
        owned = open(target, mode)
        return owned, owned
    return target, None


class StreamWriter:
    """Encrypt a stream to ``recipients``, 64 KiB at a time, as the age STREAM.

    The header goes out at once; each chunk is written as soon as the writer knows
    it is not the last (that is, when a byte beyond it arrives), so a stream cut off
    by a power failure keeps every completed chunk. ``close`` writes the final
    chunk. Leaving a ``with`` block by an exception does *not* write it: the file
    then reads as truncated (recoverable with :func:`salvage`) instead of looking
    complete. A path is opened exclusively (an existing file is never overwritten)
    and closed again; a file object is left open.
    """

    def __init__(
        self,
        fileobj: PathOrFile,
        recipients: Sequence[Recipient],
        *,
        fsync_each_chunk: bool = False,
    ):
        recipients = _check_recipients(recipients)
        self._dst, self._owned = _open_path(fileobj, "xb")
        self._fsync_each_chunk = fsync_each_chunk
        self._buf = bytearray(CHUNK_SIZE)
        self._view = memoryview(self._buf)
        self._sealed = memoryview(bytearray(_ENC_CHUNK_SIZE))
        self._fill = 0
        self._counter = 0
        self._state = "open"
        self.bytes_written = 0
        try:
            self._start(recipients)
        except BaseException:
            self._close_owned()
            if self._owned is not None:  # we created it; it holds no usable data
                os.unlink(fileobj)
            raise

    def _start(self, recipients: Sequence[Recipient]) -> None:
        file_key = os.urandom(_FILE_KEY_SIZE)  # fresh per file: the STREAM key never repeats
        header = _encode_header(recipients, file_key)
        nonce = os.urandom(_NONCE_SIZE)
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        _write_all(self._dst, header + nonce)

    def write(self, data) -> int:
        """Accept any number of bytes (any bytes-like object); returns ``len(data)``."""
        if self._state != "open":
            raise ValueError(f"StreamWriter is {self._state}; cannot write")
        view = memoryview(data).cast("B")
        total, pos = len(view), 0
        try:
            while pos < total:
                if self._fill == CHUNK_SIZE:  # more data arrived, so this one is not last
                    self._seal(self._view, last=False)
                    self._fill = 0
                if self._fill == 0 and total - pos > CHUNK_SIZE:
                    # Straight from the caller's buffer, skipping a copy.
                    self._seal(view[pos : pos + CHUNK_SIZE], last=False)
                    pos += CHUNK_SIZE
                    continue
                take = min(CHUNK_SIZE - self._fill, total - pos)
                self._view[self._fill : self._fill + take] = view[pos : pos + take]
                self._fill += take
                pos += take
        except BaseException:
            self._state = "broken"
            raise
        self.bytes_written += total
        return total

    def _seal(self, chunk: memoryview, last: bool) -> None:
        nonce = _chunk_nonce(self._counter, last)
        if _HAS_INTO:
            out = self._sealed[: len(chunk) + _TAG_SIZE]
            self._aead.encrypt_into(nonce, chunk, None, out)
        else:
            out = self._aead.encrypt(nonce, chunk, None)
        _write_all(self._dst, out)
        self._counter += 1
        if self._fsync_each_chunk and not last:
            self.flush(fsync=True)

    def flush(self, fsync: bool = False) -> None:
        """Push every completed chunk to the file; with ``fsync`` make them durable.

        A partial chunk stays buffered (only the final chunk may be short), and so
        does a just-filled chunk until a byte beyond it arrives.
        """
        if self._state == "closed":
            return
        self._dst.flush()
        if fsync:
            _fsync(self._dst)

    def close(self) -> None:
        """Write the final chunk, flush and fsync. Closes the file only if it opened it.

        After a failed :meth:`write` the stream is not finished off (it would look
        complete while missing data); the file is left salvageable instead.
        """
        if self._state == "closed":
            return
        try:
            if self._state == "open":
                self._seal(self._view[: self._fill], last=True)
                self.flush(fsync=True)
        finally:
            self._state = "closed"
            self._close_owned()

    def abort(self) -> None:
        """Stop without the final chunk: completed chunks are flushed and fsynced."""
        if self._state == "closed":
            return
        try:
            if self._state == "open":
                self.flush(fsync=True)
        finally:
            self._state = "closed"
            self._close_owned()

    def _close_owned(self) -> None:
        if self._owned is not None:
            self._owned.close()

    @property
    def closed(self) -> bool:
        """True after :meth:`close` or :meth:`abort`."""
        return self._state == "closed"

    def __enter__(self) -> StreamWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class StreamReader(io.RawIOBase):
    """Decrypt an age file as a stream: a read-only binary file object.

    Memory stays bounded (one 64 KiB chunk). Each chunk is authenticated before
    any of it is returned; a stream that stops before its final chunk raises
    :class:`TruncatedStreamError` when the end is reached, after the earlier
    (authenticated) chunks have been handed out. With ``salvage=True`` the reader
    instead ends quietly at the first missing or damaged chunk and sets
    :attr:`truncated`. Armored input is recognised and decoded on the fly.
    Iterating yields decrypted chunks.
    """

    def __init__(
        self, fileobj: PathOrFile, identities: Sequence[Identity], *, salvage: bool = False
    ):
        super().__init__()
        self._owned = None
        source, self._owned = _open_path(fileobj, "rb")
        try:
            self._src = _open_input(source)
            self._aead = _open_payload(self._src, identities)
        except BaseException:
            self._close_owned()
            raise
        self._salvage = salvage
        self._enc = memoryview(bytearray(_ENC_CHUNK_SIZE))
        self._plain = memoryview(bytearray(CHUNK_SIZE))
        self._out = self._plain[:0]  # decrypted, not yet returned
        self._counter = 0
        self._finished = False
        self._error: PayloadError | None = None
        self.truncated = False
        self.corrupted = False
        self.bytes_recovered = 0
        self.chunks = 0

    # -- chunk machinery

    def _next_chunk(self) -> bool:
        """Decrypt the next chunk into ``_out``; False at the end of the stream."""
        if self._error is not None:
            raise self._error
        if self._finished:
            return False
        try:
            self._out = self._decrypt_next()
        except PayloadError as exc:
            self._finished = True
            if self._salvage:
                return False
            self._error = exc
            raise
        return True

    def _decrypt_next(self) -> memoryview:
        n = self._src.readinto(self._enc)
        if n == 0:
            raise self._cut_short("its final chunk is missing")
        if n < _TAG_SIZE:
            raise self._cut_short("it ends inside a chunk")
        data, out = self._enc[:n], self._plain[: n - _TAG_SIZE]
        full = n == _ENC_CHUNK_SIZE
        if full and self._open(data, out, last=False):
            return self._accept(out)
        # A short chunk can only be the last; a full one may be the last too.
        if not self._open(data, out, last=True):
            if full:
                self.truncated = self.corrupted = True
                raise PayloadError(
                    f"chunk {self._counter} failed to authenticate: the file is damaged or "
                    f"was altered; salvage can recover the {self.bytes_recovered} bytes before it"
                )
            raise self._cut_short("it ends with an incomplete or damaged chunk")
        self._finished = True
        if not out and self._counter:
            raise PayloadError("the final chunk is empty: the file was altered")
        if full and self._src.read(1) and not self._salvage:
            self._error = PayloadError("data after the final chunk: the file was altered")
        return self._accept(out)

    def _open(self, data: memoryview, out: memoryview, last: bool) -> bool:
        nonce = _chunk_nonce(self._counter, last)
        try:
            if _HAS_INTO:
                self._aead.decrypt_into(nonce, data, None, out)
            else:
                out[:] = self._aead.decrypt(nonce, data, None)
        except InvalidTag:
            return False
        return True

    def _accept(self, out: memoryview) -> memoryview:
        self._counter += 1
        self.chunks += 1
        self.bytes_recovered += len(out)
        return out

    def _cut_short(self, how: str) -> TruncatedStreamError:
        self.truncated = True
        n = self.bytes_recovered
        advice = f"use salvage to recover those {n} bytes" if n else "no complete chunk to recover"
        return TruncatedStreamError(
            f"file was cut short after {n} bytes of plaintext ({how}): {advice}"
        )

    def _views(self) -> Iterator[memoryview]:
        """Remaining plaintext as views of the internal buffer, chunk by chunk."""
        self._check_open()
        if self._out:
            yield self._out
            self._out = self._plain[:0]
        while self._next_chunk():
            out, self._out = self._out, self._plain[:0]
            yield out

    # -- file-object interface

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on a closed StreamReader")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        """Fill ``buffer`` with plaintext; fewer bytes only at the end of the stream."""
        self._check_open()
        view = memoryview(buffer).cast("B")
        n = 0
        while n < len(view) and (self._out or self._next_chunk()):
            k = min(len(view) - n, len(self._out))
            view[n : n + k] = self._out[:k]
            self._out = self._out[k:]
            n += k
        return n

    def read(self, size: int | None = -1) -> bytes:
        """``size`` bytes of plaintext (fewer only at the end); all of it if negative."""
        if size is None or size < 0:
            return self.readall()
        self._check_open()
        parts = []
        while size and (self._out or self._next_chunk()):
            k = min(size, len(self._out))
            parts.append(bytes(self._out[:k]))
            self._out = self._out[k:]
            size -= k
        return b"".join(parts)

    def readall(self) -> bytes:
        """All remaining plaintext."""
        return b"".join(bytes(view) for view in self._views())

    def __next__(self) -> bytes:
        """The next decrypted chunk (up to 64 KiB): iteration yields chunks, not lines."""
        self._check_open()
        if not self._out and not self._next_chunk():
            raise StopIteration
        out, self._out = bytes(self._out), self._plain[:0]
        return out

    def _close_owned(self) -> None:
        if getattr(self, "_owned", None) is not None:
            self._owned.close()

    def close(self) -> None:
        """Release the reader; closes the file only if it opened it from a path."""
        if not self.closed:
            self._close_owned()
        super().close()


# --- one-shot and file helpers --------------------------------------------------------------


def encrypt(plaintext: bytes, recipients: Sequence[Recipient]) -> bytes:
    """Encrypt ``plaintext`` to ``recipients``; returns the binary age file."""
    out = io.BytesIO()
    with StreamWriter(out, recipients) as writer:
        writer.write(plaintext)
    return out.getvalue()


def decrypt(ciphertext: bytes, identities: Sequence[Identity]) -> bytes:
    """Decrypt a whole age file (binary or armored) in memory.

    Either returns all of the plaintext or raises; nothing partial ever comes out.
    """
    with StreamReader(io.BytesIO(ciphertext), identities) as reader:
        return reader.readall()


@dataclass(frozen=True)
class SalvageResult:
    """What :func:`salvage` recovered.

    ``truncated`` is True when no authenticated final chunk was found (the file was
    cut short, or damaged); ``corrupted`` when a complete chunk failed to
    authenticate, so data after it is lost even though it may exist.
    """

    bytes_recovered: int
    truncated: bool
    chunks: int
    corrupted: bool = False


def salvage(src: PathOrFile, dst: BinaryIO, identities: Sequence[Identity]) -> SalvageResult:
    """Copy every complete, authenticated chunk of ``src`` to ``dst``.

    For a stream that lost its end (power cut) or has a damaged chunk: copying
    stops at the first chunk that is missing or fails to authenticate. A damaged
    or wrong header still raises, since nothing can be recovered without it.
    """
    with StreamReader(src, identities, salvage=True) as reader:
        for view in reader._views():
            _write_all(dst, view)
    dst.flush()
    return SalvageResult(reader.bytes_recovered, reader.truncated, reader.chunks, reader.corrupted)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems cannot sync a directory
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def _atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A temporary file next to ``path`` that replaces it only on success."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _name_file(exc: Exception, path: PathOrFile) -> Exception:
    # Same class (callers catch by class), message prefixed with the file name.
    return type(exc)(f"{os.fspath(path)}: {exc}")


def decrypt_file(
    src_path: str | os.PathLike, dst_path: str | os.PathLike, identities: Sequence[Identity]
) -> None:
    """Decrypt ``src_path`` into ``dst_path`` atomically.

    The plaintext appears under ``dst_path`` only once all of it is authenticated
    and on disk; on any failure the temporary file is removed and ``dst_path`` is
    left as it was.
    """
    try:
        with StreamReader(src_path, identities) as reader, _atomic_output(Path(dst_path)) as out:
            for view in reader._views():
                _write_all(out, view)
    except (HeaderError, NoIdentityMatchError, HeaderMacError, PayloadError) as exc:
        raise _name_file(exc, src_path) from exc


def encrypt_file(
    src_path: str | os.PathLike, dst_path: str | os.PathLike, recipients: Sequence[Recipient]
) -> None:
    """Encrypt ``src_path`` into ``dst_path`` atomically (temporary name, fsync, rename)."""
    recipients = _check_recipients(recipients)
    buf = bytearray(16 * CHUNK_SIZE)
    view = memoryview(buf)
    with open(src_path, "rb") as src, _atomic_output(Path(dst_path)) as out:
        writer = StreamWriter(out, recipients)
        while n := src.readinto(buf):
            writer.write(view[:n])
        writer.close()
