"""Buffered binary input shared by the armor decoder, the header parser and the
payload reader: :class:`Source` serves line reads for the header and bulk reads
for the payload, and keeps whatever the header parser read ahead for the payload
reader, so the underlying file object needs nothing but ``read``.
"""

from __future__ import annotations

from typing import Protocol


class Readable(Protocol):
    """All :class:`Source` needs of the file it reads (binary files, raw streams)."""

    def read(self, size: int = -1, /) -> bytes: ...


class Source:
    """Buffered binary input: line reads for the header, bulk reads for the payload.

    Whatever the header parser reads ahead stays here and is handed to the payload
    reader first, so the underlying file object needs nothing but ``read``.
    """

    __slots__ = ("_buf", "_eof", "_pos", "_raw", "_raw_readinto")

    def __init__(self, raw: Readable):
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
