"""`make bench`: run every benchmark section and print its figures.

Each ``bench_<section>.py`` has a ``main()`` that prints its own table, with
speed as ratios against a baseline run in the same invocation (the stock
``age`` CLI, bare faster-whisper, raw capture, ...). Sections run one after
another in separate processes so one section's memory does not colour the
next. ``python -m tests.bench crypto web`` runs only those sections;
``HOLDNOTE_BENCH_QUICK=1`` makes every section use smaller inputs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ("crypto", "recorder", "transcribe", "speakers", "risk", "drafting", "web", "playback",
         "backup", "clients", "formulation", "review")


def sections(wanted: list[str]) -> list[str]:
    """The section names to run, in a stable order."""
    found = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    ordered = [s for s in ORDER if s in found] + [s for s in found if s not in ORDER]
    return [s for s in ordered if not wanted or s in wanted]


def main(argv: list[str]) -> int:
    failed = []
    for name in sections(argv):
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        code = subprocess.call(
            [sys.executable, "-c", f"from tests.bench.bench_{name} import main; main()"],
            cwd=HERE.parents[1],
        )
        print(f"({name}: {time.monotonic() - started:.0f} s, exit {code})", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nsections that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
