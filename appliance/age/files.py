"""One-shot and file-level operations built on the streams: :func:`encrypt` and
:func:`decrypt` in memory (never returning partial plaintext), :func:`salvage`
and its :class:`SalvageResult` for a stream that lost its end, and the atomic
:func:`encrypt_file` / :func:`decrypt_file`, which write to a temporary name,
fsync and rename, so a failure leaves the destination as it was.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass

from appliance.age.keyfiles import check_recipients
from appliance.age.primitives import CHUNK_SIZE
from appliance.age.stanza import Identity, Recipient
from appliance.age.stream import PathOrFile, Sink, StreamReader, StreamWriter, write_all
from appliance.errors import HeaderError, HeaderMacError, NoIdentityMatchError, PayloadError
from appliance.fsutil import atomic_output


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


def salvage(src: PathOrFile, dst: Sink, identities: Sequence[Identity]) -> SalvageResult:
    """Copy every complete, authenticated chunk of ``src`` to ``dst``.

    For a stream that lost its end (power cut) or has a damaged chunk: copying
    stops at the first chunk that is missing or fails to authenticate. A damaged
    or wrong header still raises, since nothing can be recovered without it.
    """
    with StreamReader(src, identities, salvage=True) as reader:
        for view in reader._views():
            write_all(dst, view)
    dst.flush()
    return SalvageResult(reader.bytes_recovered, reader.truncated, reader.chunks, reader.corrupted)


def _name_file(exc: Exception, path: str | os.PathLike) -> Exception:
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
        with StreamReader(src_path, identities) as reader, atomic_output(dst_path) as out:
            for view in reader._views():
                write_all(out, view)
    except (HeaderError, NoIdentityMatchError, HeaderMacError, PayloadError) as exc:
        raise _name_file(exc, src_path) from exc


def encrypt_file(
    src_path: str | os.PathLike, dst_path: str | os.PathLike, recipients: Sequence[Recipient]
) -> None:
    """Encrypt ``src_path`` into ``dst_path`` atomically (temporary name, fsync, rename)."""
    recipients = check_recipients(recipients)
    buf = bytearray(16 * CHUNK_SIZE)
    view = memoryview(buf)
    with open(src_path, "rb") as src, atomic_output(dst_path) as out:
        writer = StreamWriter(out, recipients)
        while n := src.readinto(buf):
            writer.write(view[:n])
        writer.close()
