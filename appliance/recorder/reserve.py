"""Space held back on the data disk, so a recording cut off by a full disk can still be closed.

The free-space guard stops a recording cleanly while there is room, but another
program can fill the disk between two checks. The recorder's next write then
fails, and ending the session still needs a few database pages: the state
change, why it ended, the audit entry. SQLite cannot write those on a full
disk, so the recorder keeps a small file of allocated blocks beside the
database (:class:`DiskReserve`) and deletes it at that moment. It is made again
before the next recording starts, once there is room.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

RESERVE_NAME = ".recorder-reserve"
RESERVE_BYTES = 2 * 1024 * 1024  # many times what closing a session writes to SQLite's WAL
DISK_FULL = "the data disk filled up"
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class DiskReserve:
    """A file of ``size`` allocated bytes in ``directory``, given up when the disk fills."""

    def __init__(self, directory: Path, size: int = RESERVE_BYTES):
        self.path = Path(directory) / RESERVE_NAME
        self.size = size

    def ensure(self) -> bool:
        """Make sure the reserve exists; ``False`` (and a warning) when there is no room."""
        try:
            if self.path.stat().st_size >= self.size:
                return True
        except FileNotFoundError:
            pass
        partial = self.path.with_name(self.path.name + ".new")
        try:
            self._allocate(partial)
            os.replace(partial, self.path)
        except OSError as error:
            partial.unlink(missing_ok=True)
            log.warning("cannot hold %d MB in reserve on the data disk (%s); if the disk "
                        "fills during a recording, ending it may fail until space is freed",
                        self.size // (1024 * 1024), error.strerror or error)
            return False
        return True

    def _allocate(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            try:
                os.posix_fallocate(fd, 0, self.size)
            except OSError as error:
                if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                # A file system without fallocate: real zeros take the blocks too.
                os.write(fd, bytes(self.size))
            os.fsync(fd)
        finally:
            os.close(fd)

    def release(self) -> bool:
        """Delete the reserve so the database can be written; whether there was one."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        log.warning("released the %d MB held in reserve on the data disk to close the session",
                    self.size // (1024 * 1024))
        return True


def is_disk_full(error: BaseException | None) -> bool:
    """Whether ``error`` says the disk (or the user's quota) has no room left."""
    return isinstance(error, OSError) and error.errno in _FULL_ERRNOS


def write_failure_reason(error: BaseException | None) -> str:
    """Why a recording ended because writing it failed, in words for the session page."""
    if is_disk_full(error):
        return DISK_FULL
    if isinstance(error, OSError):
        return f"writing to the data disk failed ({error.strerror or error})"
    if error is None:
        return "writing the recording stopped responding"
    return f"writing the recording failed ({error})"
