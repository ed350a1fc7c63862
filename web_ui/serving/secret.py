"""The key that signs the session cookie, shared by every gunicorn worker.

Generated once and kept in the data directory (0600). Creation is race-free:
each worker writes a complete candidate file and hard-links it into place;
the first link wins and the others read the winner's key, so all workers
always sign with the same key.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from appliance.errors import StorageError
from appliance.fsutil import atomic_output

SECRET_FILE = "web_secret.key"  # noqa: S105 - the name of the file, not a secret
KEY_BYTES = 32


def load_or_create(data_dir: Path) -> bytes:
    """The cookie-signing key, creating it on first use."""
    path = Path(data_dir) / SECRET_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    # Hard-linked into place, not renamed: the first worker's key wins and the
    # others read it, so every worker signs with the same key.
    with atomic_output(path, keep_existing=True) as handle:
        handle.write(secrets.token_hex(KEY_BYTES).encode("ascii"))
    return _read(path)


def _read(path: Path) -> bytes:
    data = path.read_bytes().strip()
    if len(data) < 2 * KEY_BYTES:
        raise StorageError(
            f"{path} is damaged (too short); delete it and restart the web service "
            "(everyone will have to log in again)"
        )
    return data
