"""The key that signs the session cookie, shared by every gunicorn worker.

Generated once and kept in the data directory (0600). Creation is race-free:
each worker writes a complete candidate file and hard-links it into place;
the first link wins and the others read the winner's key, so all workers
always sign with the same key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from appliance.errors import StorageError
from appliance.storage import fsync_dir

SECRET_FILE = "web_secret.key"  # noqa: S105 - the name of the file, not a secret
KEY_BYTES = 32


def load_or_create(data_dir: Path) -> bytes:
    """The cookie-signing key, creating it on first use."""
    path = Path(data_dir) / SECRET_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{SECRET_FILE}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(secrets.token_hex(KEY_BYTES).encode("ascii"))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
            fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return _read(path)


def _read(path: Path) -> bytes:
    data = path.read_bytes().strip()
    if len(data) < 2 * KEY_BYTES:
        raise StorageError(
            f"{path} is damaged (too short); delete it and restart the web service "
            "(everyone will have to log in again)"
        )
    return data
