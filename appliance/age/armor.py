"""Strict ASCII armor, the PEM-style ``-----BEGIN AGE ENCRYPTED FILE-----``
block: :func:`armor` writes it; the streaming :class:`ArmorReader`, with
:func:`read_armored` and :func:`dearmor`, reads it and rejects anything not
strictly canonical; and :func:`open_input` recognises armored input so that
readers decode it on the fly.
"""

from __future__ import annotations

import binascii
import io
import re
from typing import BinaryIO

from appliance.age.primitives import CHUNK_SIZE, COLUMNS, VERSION_PREFIX
from appliance.age.source import Source
from appliance.errors import ArmorError

_BYTES_PER_LINE = COLUMNS // 4 * 3
_B64_PADDED = re.compile(rb"[A-Za-z0-9+/]*={0,2}")

_ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
_ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"
_ARMOR_MAX_WHITESPACE = 1024


def armor(data: bytes) -> bytes:
    """Wrap an age file in the strict PEM-style armor (64 columns, LF line ends)."""
    text = binascii.b2a_base64(data, newline=False)
    rows = [text[i : i + COLUMNS] for i in range(0, len(text), COLUMNS)]
    return b"\n".join([_ARMOR_BEGIN, *rows, _ARMOR_END]) + b"\n"


def _decode_armor_line(line: bytes) -> bytes:
    if not line:
        raise ArmorError("invalid armor: empty line inside the armored block")
    if len(line) > COLUMNS:
        raise ArmorError(f"invalid armor: line longer than {COLUMNS} columns")
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

    def __init__(self, fileobj: BinaryIO | Source):
        super().__init__()
        self._src = fileobj if isinstance(fileobj, Source) else Source(fileobj)
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

    def _line(self, limit: int = COLUMNS + 3) -> bytes | None:
        line = self._src.readline(limit)  # room for 64 columns and CRLF
        if not line:
            return None
        if line.endswith(b"\n"):
            line = line[:-1]
        elif len(line) >= limit:
            raise ArmorError(f"invalid armor: line longer than {COLUMNS} columns")
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


def open_input(fileobj: BinaryIO) -> Source:
    """A source over ``fileobj``, transparently de-armoring armored input."""
    src = Source(fileobj)
    head = src.peek(_ARMOR_MAX_WHITESPACE + len(_ARMOR_BEGIN))
    if head.startswith(VERSION_PREFIX):
        return src
    # Armor starts with '-' or whitespace; a BEGIN line after other text is
    # still armor (with garbage in front), which ArmorReader reports as such.
    stripped = head.lstrip()
    if head and (not stripped or stripped.startswith(b"-") or _ARMOR_BEGIN in head):
        return Source(ArmorReader(src))
    return src
