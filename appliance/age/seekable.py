"""Random access to an age file: :class:`SeekableReader` decrypts only the
64 KiB chunks a byte range needs.

The STREAM payload makes this possible: chunk ``i`` of plaintext lies at payload
offset ``i * (64 KiB + 16)`` and is sealed under its own nonce (the counter
``i`` and the final-chunk flag), so it opens without its neighbours. The
plaintext size follows from the file size, so a seek reads the header and the
chunks it needs, never the whole file.

Like :class:`~appliance.age.SkippingReader` (and unlike the spec's strict
reader, which fails), a chunk that fails to authenticate reads as zeros of its
exact length and is reported as a :class:`~appliance.age.Gap`, so what follows
keeps its position (for audio, its time). A file cut short (a power cut while
recording) reads up to its last whole chunk and sets :attr:`truncated`.
Nothing unauthenticated is ever returned. Binary files only: armored text has
no fixed chunk offsets.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from appliance.age.header import open_payload
from appliance.age.primitives import CHUNK_SIZE, TAG_SIZE, VERSION_PREFIX
from appliance.age.skipping import Gap
from appliance.age.source import Source
from appliance.age.stanza import Identity
from appliance.age.stream import ENC_CHUNK_SIZE, open_chunk
from appliance.errors import HeaderError


@dataclass(frozen=True)
class Layout:
    """Where the payload starts, how many chunks it holds and how the stream ends."""

    payload_start: int
    chunks: int  # whole or short chunks on disk that can be read
    size: int  # plaintext bytes those chunks hold (damaged ones count, as zeros)
    truncated: bool  # the writer's final chunk is missing (cut short)


class _LineReads:
    """Hands the header parser one line per read, so it never reads past the header:
    afterwards the file position is exactly where the payload starts."""

    def __init__(self, fileobj: BinaryIO):
        self._file = fileobj

    def read(self, size: int = -1, /) -> bytes:
        return self._file.readline(size)


class SeekableReader:
    """Decrypt any byte range of an age file (a path), reading only the chunks it needs.

    ``finished`` says whether the writer is known to have closed the stream: a
    short last chunk that fails to authenticate is then damage (a gap of its
    length); without that knowledge it is the torn end of a stream cut off while
    a chunk was being written, and is left out (:attr:`truncated`). A wrong
    key, or a damaged or missing header, raises the usual
    :class:`~appliance.errors.CryptoError` when opening. Memory stays at one
    chunk; several threads must not share one reader.
    """

    def __init__(self, path: str | os.PathLike, identities: Sequence[Identity], *,
                 finished: bool = False):
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self._check_binary()
            self._aead = open_payload(Source(_LineReads(self._file)), identities)
            self._enc = memoryview(bytearray(ENC_CHUNK_SIZE))
            self._plain = memoryview(bytearray(CHUNK_SIZE))
            self._start = self._file.tell()
            self.layout = self._measure(self._start, finished)
        except BaseException:
            self._file.close()
            raise
        self.gaps: list[Gap] = []

    def _check_binary(self) -> None:
        head = self._file.read(64)
        self._file.seek(0)
        if not head.startswith(VERSION_PREFIX) and head.lstrip().startswith(b"-----BEGIN"):
            raise HeaderError("an armored age file cannot be read at random offsets; "
                              "dearmor it first ('age -d' reads it whole)")

    # -- the layout, from the file size and at most two trial decryptions

    def _measure(self, start: int, finished: bool) -> Layout:
        payload = os.fstat(self._file.fileno()).st_size - start
        whole, rest = divmod(payload, ENC_CHUNK_SIZE)
        if rest >= TAG_SIZE:  # a short last chunk: only the final one may be short
            last_len = rest - TAG_SIZE
            if self._opens(whole, rest, last=True) or finished:
                return Layout(start, whole + 1, whole * CHUNK_SIZE + last_len, False)
            return Layout(start, whole, whole * CHUNK_SIZE, True)  # torn while written
        size = whole * CHUNK_SIZE
        if rest or not whole:  # torn inside a tag, or no chunk at all
            return Layout(start, whole, size, True)
        # Ends on a chunk boundary: complete if the last chunk is marked final.
        return Layout(start, whole, size, not self._opens(whole - 1, ENC_CHUNK_SIZE, last=True))

    def _opens(self, index: int, length: int, last: bool) -> bool:
        data = self._read_sealed(index, length)
        return open_chunk(self._aead, index, last, data, self._plain[: length - TAG_SIZE])

    def _read_sealed(self, index: int, length: int) -> memoryview:
        self._file.seek(self._start + index * ENC_CHUNK_SIZE)
        got = self._file.readinto(self._enc[:length])
        return self._enc[:got]

    # -- reading

    @property
    def size(self) -> int:
        """Plaintext bytes that can be read (damaged chunks included, as zeros)."""
        return self.layout.size

    @property
    def truncated(self) -> bool:
        """True when the file was cut short: its end (the final chunk) is missing."""
        return self.layout.truncated

    def _chunk(self, index: int) -> memoryview:
        """Chunk ``index``'s plaintext (a view of the reader's buffer), or zeros, reported."""
        start = index * CHUNK_SIZE
        length = min(CHUNK_SIZE, self.size - start)
        data = self._read_sealed(index, length + TAG_SIZE)
        out = self._plain[:length]
        # Only the last chunk is marked final, unless the stream was cut short.
        last = index == self.layout.chunks - 1 and not self.truncated
        if len(data) == length + TAG_SIZE and open_chunk(self._aead, index, last, data, out):
            return out
        self._report(Gap(start, length))
        out[:] = bytes(length)
        return out

    def _report(self, gap: Gap) -> None:
        if gap not in self.gaps:
            self.gaps.append(gap)
            self.gaps.sort(key=lambda g: g.offset)

    def iter_range(self, start: int, stop: int) -> Iterator[bytes]:
        """The plaintext from ``start`` up to ``stop`` (clamped to :attr:`size`),
        one chunk's worth at a time."""
        if start < 0 or stop < start:
            raise ValueError(f"bad range {start}-{stop}: need 0 <= start <= stop")
        stop = min(stop, self.size)
        while start < stop:
            index, skip = divmod(start, CHUNK_SIZE)
            take = min(CHUNK_SIZE - skip, stop - start)
            yield bytes(self._chunk(index)[skip : skip + take])
            start += take

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes of plaintext from ``offset`` (fewer only at the end)."""
        return b"".join(self.iter_range(offset, offset + size))

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> SeekableReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
