"""Passphrase encryption with scrypt: :class:`ScryptRecipient` and
:class:`ScryptIdentity`, the scrypt stanza they write and read, and the work
factor bounds, age's default of 18 for writing and a limit of 22 for reading so
that a hostile file cannot demand hours of work and gigabytes of memory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from appliance.age.primitives import b64_decode, b64_encode, open_file_key, seal_file_key
from appliance.age.stanza import Stanza, check_arg_count, check_body_size, unwrap_each
from appliance.errors import HeaderError

DEFAULT_SCRYPT_WORK_FACTOR = 18  # age's own default: about 1 s and 256 MiB
MAX_SCRYPT_WORK_FACTOR = 22  # age's decryption limit: 4 GiB of memory

_SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
_WORK_FACTOR = re.compile(r"[1-9][0-9]*")


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
        args = (b64_encode(salt).decode("ascii"), str(self._work_factor))
        return [Stanza("scrypt", args, seal_file_key(wrap_key, file_key))]

    def __repr__(self) -> str:
        return f"<ScryptRecipient work_factor={self._work_factor}>"


class ScryptIdentity:
    """Open a passphrase-encrypted file; refuses work factors above ``max_work_factor``."""

    __slots__ = ("_max_work_factor", "_passphrase")

    def __init__(self, passphrase: str, max_work_factor: int = MAX_SCRYPT_WORK_FACTOR):
        self._passphrase = _check_passphrase(passphrase)
        self._max_work_factor = _check_work_factor(max_work_factor, "max_work_factor")

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        """The file key from the scrypt stanza, or None if the passphrase is wrong."""
        return unwrap_each(stanzas, self._unwrap_one)

    def _unwrap_one(self, stanza: Stanza) -> bytes | None:
        if stanza.type != "scrypt":
            return None
        check_arg_count(stanza, 2)
        salt = b64_decode(stanza.args[0].encode("ascii"), "scrypt salt")
        if len(salt) != 16:
            raise HeaderError(f"malformed age header: scrypt salt is {len(salt)} bytes, not 16")
        work_factor = self._parse_work_factor(stanza.args[1])
        check_body_size(stanza)
        return open_file_key(_scrypt_key(self._passphrase, salt, work_factor), stanza.body)

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
