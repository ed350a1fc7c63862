"""Stanzas and the recipient / identity protocols: :class:`Stanza` is one
recipient entry of an age header, a :class:`Recipient` wraps the file key into
stanzas and an :class:`Identity` finds its stanza and unwraps it. The checks
that every stanza type shares (argument count, body size) and the loop that
tries each stanza in turn live here too, so each key type applies them alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from appliance.age.primitives import COLUMNS, FILE_KEY_SIZE, TAG_SIZE, b64_encode
from appliance.errors import HeaderError

ARG = re.compile(rb"[\x21-\x7e]+")


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza of an age header: a type, arguments and a binary body."""

    type: str
    args: tuple[str, ...]
    body: bytes

    def __post_init__(self) -> None:
        for arg in (self.type, *self.args):
            if not arg.isascii() or not ARG.fullmatch(arg.encode("ascii")):
                raise ValueError(f"stanza argument {arg!r} must be printable ASCII without spaces")

    def encode(self) -> bytes:
        """The stanza as header text: argument line, then body wrapped at 64 columns."""
        line = " ".join(("->", self.type, *self.args)).encode("ascii") + b"\n"
        text = b64_encode(self.body)
        rows = [text[i : i + COLUMNS] for i in range(0, len(text), COLUMNS)]
        if len(text) % COLUMNS == 0:
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


def check_body_size(stanza: Stanza) -> None:
    """Refuse a stanza whose body is not exactly one wrapped file key."""
    # Checked before any decryption attempt, against partitioning oracles.
    if len(stanza.body) != FILE_KEY_SIZE + TAG_SIZE:
        raise HeaderError(
            f"malformed age header: {stanza.type} stanza body is {len(stanza.body)} bytes, "
            f"expected {FILE_KEY_SIZE + TAG_SIZE}"
        )


def check_arg_count(stanza: Stanza, expected: int) -> None:
    """Refuse a stanza with other than ``expected`` arguments."""
    if len(stanza.args) != expected:
        raise HeaderError(
            f"malformed age header: {stanza.type} stanza has {len(stanza.args)} "
            f"arguments, expected {expected}"
        )


def unwrap_each(stanzas: Sequence[Stanza], unwrap_one) -> bytes | None:
    """The file key from the first stanza ``unwrap_one`` opens, or None."""
    for stanza in stanzas:
        file_key = unwrap_one(stanza)
        if file_key is not None:
            return file_key
    return None
