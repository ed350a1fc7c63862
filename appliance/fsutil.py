"""Durable file writes: whole-or-nothing replacement and directory fsync.

Standard library only and below every other module (the age code uses it
too), so there is one way to write a file that survives a power cut.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: int = 0o600, suffix: str = ".tmp", *,
                  keep_existing: bool = False) -> Iterator[BinaryIO]:
    """A file to write that takes the place of ``path`` only if the block completes.

    Temporary file in the same directory, fsync, rename, fsync the directory:
    after a crash ``path`` holds either the old or the new content, never a mix.
    With ``keep_existing`` the file is hard-linked into place instead, so when
    several processes race to create ``path`` the first one wins and the
    others leave it as it is.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if keep_existing:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # gone after a replace; the spare copy after a link
    fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` so that ``path`` holds either the old or the new content."""
    with atomic_output(path, mode) as handle:
        handle.write(data)


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems cannot sync a directory: nothing to do there
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)
