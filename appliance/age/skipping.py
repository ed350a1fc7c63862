"""Salvage past damage: :class:`SkippingReader` reads an age STREAM payload and
skips the chunks that fail to authenticate, reporting each stretch it skipped
as a :class:`Gap`.

This is an explicit salvage mode, never the normal path. The age spec requires
a reader to fail on a chunk that does not authenticate, and
:class:`~appliance.age.stream.StreamReader` (and so :func:`~appliance.age.decrypt`
and the stock ``age -d``) still does. Skipping is possible because each chunk is
sealed under its own nonce (its counter and the final-chunk flag): a damaged
chunk does not stop the ones after it from opening. Nothing unauthenticated is
ever returned; the skipped bytes read as zeros, so what follows keeps its
position (for audio, its time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from appliance.age.primitives import CHUNK_SIZE, TAG_SIZE
from appliance.age.stanza import Identity
from appliance.age.stream import ENC_CHUNK_SIZE, ChunkReader, PathOrFile, open_chunk


@dataclass(frozen=True)
class Gap:
    """Plaintext bytes that could not be read: ``length`` bytes from ``offset``."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        """The offset just past the gap."""
        return self.offset + self.length


class SkippingReader(ChunkReader):
    """Decrypt an age file, reading the chunks that fail to authenticate as zeros.

    A read-only binary file object with bounded memory (one chunk). Every
    damaged chunk becomes part of :attr:`gaps` (adjacent ones merge), at its
    exact plaintext offset and length: a middle chunk is 64 KiB, a damaged final
    chunk is as long as its ciphertext minus the tag. :attr:`truncated` is True
    when the stream ends after an intact chunk that is not marked final (it was
    cut off) or inside a tag; :attr:`trailing_data` when bytes follow the final
    chunk (they are ignored). A damaged or wrong header still raises: without it
    no chunk can be opened.

    ``finished`` says whether the writer is known to have closed the stream. A
    short last chunk that fails to authenticate is then damage (a gap); without
    that knowledge it is taken for the torn end of a stream cut off while a
    chunk was being written (a power cut), which is not a gap but the end: the
    stream counts as :attr:`truncated`, as :func:`~appliance.age.salvage` does.
    """

    def __init__(self, fileobj: PathOrFile, identities: Sequence[Identity], *,
                 finished: bool = False):
        super().__init__(fileobj, identities)
        self._zeros = memoryview(bytes(CHUNK_SIZE))
        self._offset = 0  # plaintext bytes produced, gaps included
        self._done = False
        self._finished = finished
        self._last_was_gap = False
        self.gaps: list[Gap] = []
        self.truncated = False
        self.trailing_data = False

    @property
    def chunks(self) -> int:
        """Chunks passed so far, damaged ones included."""
        return self._counter

    def _next_chunk(self) -> bool:
        """Load the next chunk (or its zeros) into ``_out``; False at the end."""
        if self._done:
            return False
        n = self._src.readinto(self._enc)
        if n < TAG_SIZE:  # the end, or a chunk torn inside its tag
            self._done = True
            # After a damaged chunk the end cannot be judged: that chunk may have been the final one.
            self.truncated = n > 0 or not self._last_was_gap
            return False
        data, out = self._enc[:n], self._plain[: n - TAG_SIZE]
        full = n == ENC_CHUNK_SIZE
        if full and open_chunk(self._aead, self._counter, False, data, out):
            self._advance(out, gap=False)
        elif open_chunk(self._aead, self._counter, True, data, out):
            self._done = True
            self.trailing_data = full and bool(self._src.read(1))
            self._advance(out, gap=False)
        elif not full and not self._finished:
            self._done = self.truncated = True  # a torn end, not damage
            return False
        else:
            self._done = not full  # only the final chunk may be short
            self._advance(self._zeros[: len(out)], gap=True)
        return True

    def _advance(self, out: memoryview, gap: bool) -> None:
        if gap:
            last = self.gaps[-1] if self.gaps else None
            if last is not None and last.end == self._offset:
                self.gaps[-1] = Gap(last.offset, last.length + len(out))
            else:
                self.gaps.append(Gap(self._offset, len(out)))
        self._out = out
        self._counter += 1
        self._offset += len(out)
        self._last_was_gap = gap
