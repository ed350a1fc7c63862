"""The one lock of the transcription and drafting runs (`transcribe.lock` in the runtime dir).

The overnight job, "Transcribe now", `holdnote draft` and the case
conceptualizations all take it, so two models are never in memory at once.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def single_instance(runtime_dir: Path,
                    keep_trying: Callable[[], bool] | None = None) -> Iterator[bool]:
    """An exclusive lock so the timer and a manual run never work at once.

    While another run holds it, ``keep_trying`` (which waits a moment) says whether to
    try again; without it, or once it says no, this run gets False.
    """
    runtime_dir.mkdir(parents=True, exist_ok=True)
    with open(runtime_dir / "transcribe.lock", "w") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if keep_trying is None or not keep_trying():
                    yield False
                    return
        yield True
