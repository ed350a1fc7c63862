"""The age STREAM payload: :class:`StreamWriter` and :class:`StreamReader`
encrypt and decrypt 64 KiB ChaCha20-Poly1305 chunks with bounded memory, each
under its own nonce (a counter and the final-chunk flag, so none repeats), and
a stream that ends without its final chunk is an error unless salvaging. The
small I/O helpers they share (writing in full, fsync, opening a path they then
own) live here too.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from typing import BinaryIO, Literal, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from appliance.age.armor import open_input
from appliance.age.header import encode_header, open_payload
from appliance.age.keyfiles import check_recipients
from appliance.age.primitives import CHUNK_SIZE, FILE_KEY_SIZE, NONCE_SIZE, TAG_SIZE, hkdf
from appliance.age.stanza import Identity, Recipient
from appliance.errors import PayloadError, TruncatedStreamError

ENC_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
_LAST = b"\x01"
_NOT_LAST = b"\x00"

# decrypt_into/encrypt_into (newer cryptography releases) save an allocation per chunk.
_HAS_INTO = hasattr(ChaCha20Poly1305, "decrypt_into")

PathOrFile = str | os.PathLike | BinaryIO


class Sink(Protocol):
    """What plaintext or ciphertext is written to: a binary file or a pass-through writer."""

    def write(self, data: memoryview, /) -> int | None: ...

    def flush(self) -> None: ...


def chunk_nonce(counter: int, last: bool) -> bytes:
    """The nonce of chunk ``counter``; ``last`` sets the final-chunk flag."""
    # 11-byte big-endian counter plus the final-chunk flag. 2**88 chunks is
    # unreachable, so the counter cannot wrap.
    return counter.to_bytes(11, "big") + (_LAST if last else _NOT_LAST)


def open_chunk(aead: ChaCha20Poly1305, counter: int, last: bool, data: memoryview,
               out: memoryview) -> bool:
    """Decrypt chunk ``counter`` into ``out``; False if it fails to authenticate."""
    nonce = chunk_nonce(counter, last)
    try:
        if _HAS_INTO:
            aead.decrypt_into(nonce, data, None, out)
        else:
            out[:] = aead.decrypt(nonce, data, None)
    except InvalidTag:
        return False
    return True


def write_all(dst: Sink, data) -> None:
    """Write all of ``data`` to ``dst``, looping over short writes of raw files."""
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


def open_path(target: PathOrFile, mode: Literal["xb", "rb"]) -> tuple[BinaryIO, BinaryIO | None]:
    """The file to use, and the same file again if opened here (the caller closes it)."""
    if isinstance(target, (str, os.PathLike)):
        owned = open(target, mode)  # noqa: SIM115 - the caller closes it (it is returned as owned)
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
        recipients = check_recipients(recipients)
        self._dst, self._owned = open_path(fileobj, "xb")
        self._fsync_each_chunk = fsync_each_chunk
        self._buf = bytearray(CHUNK_SIZE)
        self._view = memoryview(self._buf)
        self._sealed = memoryview(bytearray(ENC_CHUNK_SIZE))
        self._fill = 0
        self._counter = 0
        self._state = "open"
        self.bytes_written = 0
        try:
            self._start(recipients)
        except BaseException:
            self._close_owned()
            # We created it (then fileobj is a path); it holds no usable data.
            if self._owned is not None and isinstance(fileobj, (str, os.PathLike)):
                os.unlink(fileobj)
            raise

    def _start(self, recipients: Sequence[Recipient]) -> None:
        file_key = os.urandom(FILE_KEY_SIZE)  # fresh per file: the STREAM key never repeats
        header = encode_header(recipients, file_key)
        nonce = os.urandom(NONCE_SIZE)
        self._aead = ChaCha20Poly1305(hkdf(file_key, nonce, b"payload"))
        write_all(self._dst, header + nonce)

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
        nonce = chunk_nonce(self._counter, last)
        out: memoryview | bytes
        if _HAS_INTO:
            out = self._sealed[: len(chunk) + TAG_SIZE]
            self._aead.encrypt_into(nonce, chunk, None, out)
        else:
            out = self._aead.encrypt(nonce, chunk, None)
        write_all(self._dst, out)
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


class ChunkReader(io.RawIOBase):
    """What every reader of an age payload shares: the opened header, one chunk of
    buffers, and the read-only file-object interface over ``_next_chunk``.

    Subclasses decide what a chunk that fails to authenticate means
    (:class:`StreamReader`: an error, as the spec requires;
    :class:`appliance.age.skipping.SkippingReader`: a gap).
    """

    def __init__(self, fileobj: PathOrFile, identities: Sequence[Identity]):
        super().__init__()
        self._owned = None
        source, self._owned = open_path(fileobj, "rb")
        try:
            self._src = open_input(source)
            self._aead = open_payload(self._src, identities)
        except BaseException:
            self._close_owned()
            raise
        self._enc = memoryview(bytearray(ENC_CHUNK_SIZE))
        self._plain = memoryview(bytearray(CHUNK_SIZE))
        self._out = self._plain[:0]  # plaintext ready, not yet returned
        self._counter = 0

    def _next_chunk(self) -> bool:
        """Put the next chunk's plaintext in ``_out``; False at the end of the stream."""
        raise NotImplementedError

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"I/O operation on a closed {type(self).__name__}")

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

    def _close_owned(self) -> None:
        owned = getattr(self, "_owned", None)
        if owned is not None:
            owned.close()

    def close(self) -> None:
        """Release the reader; closes the file only if it opened it from a path."""
        if not self.closed:
            self._close_owned()
        super().close()


class StreamReader(ChunkReader):
    """Decrypt an age file as a stream: a read-only binary file object.

    Memory stays bounded (one 64 KiB chunk). Each chunk is authenticated before
    any of it is returned; a stream that stops before its final chunk raises
    :class:`TruncatedStreamError` when the end is reached, after the earlier
    (authenticated) chunks have been handed out. With ``salvage=True`` the reader
    instead ends quietly at the first missing or damaged chunk and sets
    :attr:`truncated` (:class:`appliance.age.skipping.SkippingReader` goes on past
    a damaged chunk instead). Armored input is recognised and decoded on the fly.
    Iterating yields decrypted chunks.
    """

    def __init__(
        self, fileobj: PathOrFile, identities: Sequence[Identity], *, salvage: bool = False
    ):
        super().__init__(fileobj, identities)
        self._salvage = salvage
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
        if n < TAG_SIZE:
            raise self._cut_short("it ends inside a chunk")
        data, out = self._enc[:n], self._plain[: n - TAG_SIZE]
        full = n == ENC_CHUNK_SIZE
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
        return open_chunk(self._aead, self._counter, last, data, out)

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
