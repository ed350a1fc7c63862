"""systemd integration: readiness, watchdog, status lines, journald logging, clock sync.

Everything here degrades to a no-op outside systemd, so the same daemon runs
under a unit, in a terminal and in tests (which bind their own
``NOTIFY_SOCKET`` to read the messages).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from systemd import daemon

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# systemd-timesyncd creates this (in RAM, so every boot starts without it) once
# NTP has set the clock.
TIMESYNC_MARKER = Path("/run/systemd/timesync/synchronized")


def under_systemd() -> bool:
    """True when started by systemd with its output going to the journal."""
    return bool(os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"))


def setup_logging(verbose: bool = False) -> None:
    """Log to journald under systemd (with priorities), otherwise to stderr."""
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler: logging.Handler
    if under_systemd():
        from systemd.journal import JournalHandler

        handler = JournalHandler(SYSLOG_IDENTIFIER="holdnote")
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)


def notify(message: str) -> bool:
    """Send one sd_notify message; False (and nothing else) outside systemd."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return False
    return bool(daemon.notify(message))


def ready(status: str = "") -> None:
    """Tell systemd start-up is complete."""
    notify("READY=1" + (f"\nSTATUS={status}" if status else ""))


def status(text: str) -> None:
    """The one-line status ``systemctl status`` shows."""
    notify(f"STATUS={text}")


def watchdog() -> None:
    """Ping the watchdog; call from the loop whose stall should restart us."""
    notify("WATCHDOG=1")


def stopping() -> None:
    """Tell systemd a clean shutdown has begun."""
    notify("STOPPING=1")


def watchdog_interval() -> float | None:
    """Seconds between pings systemd expects (half its timeout), or None."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and int(pid) != os.getpid():
        return None
    return int(usec) / 1e6 / 2


def extend_timeout(seconds: float) -> None:
    """Ask systemd for more time to start or stop (long recovery work)."""
    notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1e6)}")


def set_from_signal(event: threading.Event) -> None:
    """Set ``event`` from a signal handler without risking a deadlock.

    A handler runs in the main thread between bytecodes, possibly while that
    thread is inside ``event.wait()`` holding the event's internal (non
    re-entrant) lock; calling ``event.set()`` there would wait for itself for
    ever. A short-lived thread takes the lock once the main thread lets go.
    """
    threading.Thread(target=event.set, name="holdnote-signal", daemon=True).start()


def install_stop_signals(stop_event: threading.Event,
                         signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT),
                         ) -> Callable[[], None]:
    """Make ``signals`` set ``stop_event``; returns a function that restores the old handlers.

    Outside the main thread (where Python allows no handlers) nothing changes.
    The handler only sets the event (from a thread, see :func:`set_from_signal`):
    the caller's loop notices within one tick, and touching anything else from
    a handler could deadlock.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handle(signum, frame) -> None:
        set_from_signal(stop_event)

    previous = {sig: signal.signal(sig, handle) for sig in signals}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def clock_synchronised(marker: Path = TIMESYNC_MARKER,
                       timedatectl: str | None = "timedatectl") -> bool | None:
    """Whether the system clock has been set from the network since boot.

    A Raspberry Pi has no battery clock: until NTP answers it runs from the
    time it last saved, and signatures and the night timer would use that.
    True when systemd-timesyncd's marker exists; otherwise what
    ``timedatectl show -p NTPSynchronized`` says (it asks the kernel, so it
    also covers chrony). None where neither is there to ask (no systemd: a
    container or a development machine), which callers report as unknown.
    """
    if marker.exists():
        return True
    tool = shutil.which(timedatectl) if timedatectl else None
    if tool is None:
        return None
    try:
        done = subprocess.run([tool, "show", "-p", "NTPSynchronized", "--value"],
                              capture_output=True, text=True, timeout=3, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    answer = done.stdout.strip()
    if done.returncode != 0 or answer not in ("yes", "no"):
        return None  # timedated not reachable (no D-Bus): cannot tell
    return answer == "yes"
