"""Waking an idle-priority service from the web page: touch the request file its
systemd path unit watches (``holdnote-draft.path``, ``holdnote-transcribe-now.path``).

The queue itself is always the sessions table, so a request file that cannot
be written loses nothing: the overnight job takes every queued session.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def touch_request(runtime_dir: str | os.PathLike, name: str, what: str) -> bool:
    """Touch ``runtime_dir/name`` to start the service now; False if it cannot be written.

    ``what`` names the work in the journal line ("drafting", "a transcription").
    """
    path = Path(runtime_dir) / name
    try:
        # Opened for writing and closed (and its time set), so the path unit sees a change
        # whether or not the file was there.
        with open(path, "a", encoding="utf-8"):
            pass
        os.utime(path)
    except OSError as error:
        log.warning("could not ask for %s now through %s (%s); it runs overnight",
                    what, path, error)
        return False
    return True
