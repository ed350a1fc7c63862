"""Benchmark the case-conceptualization draft of the series client with the bundled model.

Run from the repository root:  python -m tests.bench formulation   (or: make bench)

The shared client series (three sessions, reference transcripts, signed notes
written from facts.json) is stored as one client's signed sessions in a fresh
data directory; then, each in a process of its own so that its peak RSS (VmHWM)
is that work's alone, in the same run:

* baseline 1: loading SmolLM2-135M (the bundled model) and nothing else;
* baseline 2: drafting the three session notes (SOAP) with the same model, as the
  overnight job does (skipped with HOLDNOTE_BENCH_QUICK=1);
* the case conceptualization: queued, then drafted by the runner ``holdnote draft
  --queued`` uses (five Ps, the configured length: brief, 3 lines a P).

Figures: wall time, generated tokens per second, model calls, peak RSS, and the
statements kept / marked (kept out with the reason) / dropped by the check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout, installed or not

from appliance.drafting.runtime import Completion  # noqa: E402
from tests.support.llm import ModelProxy  # noqa: E402

QUICK = os.environ.get("HOLDNOTE_BENCH_QUICK") == "1"


def status_mb(field: str) -> float:
    """A memory line of /proc/self/status (VmRSS, VmHWM) in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(row for row in status if row.startswith(field + ":"))
    return int(line.split()[1]) / 1024


class Counted(ModelProxy):
    """The real model, summing what its answers cost."""

    def __init__(self, model):
        super().__init__(model)
        self.calls = self.generated = 0
        self.generate_s = self.prompt_s = 0.0

    def chat(self, messages: list[dict], *, max_tokens: int) -> Completion:
        completion = self.model.chat(messages, max_tokens=max_tokens)
        self.calls += 1
        self.generated += completion.generated_tokens
        self.generate_s += completion.generate_s
        self.prompt_s += completion.prompt_s
        return completion


def _config(root: Path):
    from tests.drafting.conftest import drafting_config
    return drafting_config(root, max_tokens_per_section=400)


def _load(cfg) -> tuple[Counted, float]:
    from appliance.transcription import drafts
    started = time.monotonic()
    model = drafts.load_model(cfg)
    return Counted(model), time.monotonic() - started


def child(mode: str, out: Path) -> None:
    """One measured piece of work, its figures written to ``out``."""
    root = Path(tempfile.mkdtemp(prefix="bench-formulation-"))
    cfg = _config(root)
    figures: dict = {"rss_before_mb": status_mb("VmHWM")}
    model, load_s = _load(cfg)
    figures["load_s"] = load_s
    started = time.monotonic()
    if mode == "notes":
        _notes(cfg, model, figures)
    elif mode == "formulation":
        _formulation(cfg, model, figures)
    figures.update(wall_s=figures.get("draft_s", time.monotonic() - started), calls=model.calls,
                   generated=model.generated, generate_s=model.generate_s, prompt_s=model.prompt_s,
                   peak_mb=status_mb("VmHWM"))
    out.write_text(json.dumps(figures))


def _notes(cfg, model, figures: dict) -> None:
    from appliance.transcription import drafts
    from tests.drafting.conftest import series_result
    from tests.drafting.formulation_data import WEEKS
    kept = 0
    for week in WEEKS:
        note, _ = drafts.draft_in_memory(cfg, series_result(week), model, "2026-10-20T09:00:00+00:00")
        kept += sum(1 for s in note["sections"] for x in s.get("statements", []) if x.get("verified"))
    figures["kept"] = kept


def _formulation(cfg, model, figures: dict) -> None:
    from appliance import age
    from appliance.access.audit import AuditLog
    from appliance.clients import formulation as types
    from appliance.store import formulations as table
    from appliance.store.db import Storage
    from appliance.transcription.formulations import FormulationRunner
    from tests.clients.conftest import add_users
    from tests.drafting.formulation_data import WEEKS, Clock, add_session
    clock = Clock()
    storage = Storage(cfg.paths.data_dir, clock)
    (owner,) = add_users(storage, "dr.rivera")
    identity = age.X25519Identity.generate()
    client_id = storage.create_client(owner, b"sealed")
    for week in WEEKS:
        add_session(storage, clock, identity.to_recipient(), week, client_id, owner)
    table.request(storage, client_id, "dr.rivera")
    started = time.monotonic()  # the drafting only: seeding the sessions is not timed
    FormulationRunner(cfg, storage, AuditLog(storage), recipient=identity.to_recipient,
                      model=lambda: model).run(identity)
    figures["draft_s"] = time.monotonic() - started
    drafted = types.newest(storage, client_id, identity)
    statements = [s for section in drafted.sections for s in section.statements]
    figures.update(state=drafted.state, kept=sum(s.verified for s in statements),
                   marked=sum(not s.verified for s in statements),
                   dropped=sum(section.dropped for section in drafted.sections),
                   empty=sum(section.text == types.NOTHING_YET for section in drafted.sections))


def _measure(mode: str) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "figures.json"
        subprocess.run([sys.executable, "-m", "tests.bench.bench_formulation", "--child", mode,
                        str(out)], cwd=ROOT, check=True)
        return json.loads(out.read_text())


def _row(label: str, data: dict) -> None:
    rate = data["generated"] / data["generate_s"] if data["generate_s"] else 0.0
    print(f"   {label:<30} {data['load_s']:6.1f} {data['wall_s']:7.1f} {data['prompt_s']:7.1f} "
          f"{data['calls']:6d} {data['generated']:6d} {rate:7.1f} {data['peak_mb']:8.0f}")


def main() -> None:
    """Print the figures of the three pieces of work."""
    print("Case conceptualization of the series client (3 signed sessions), SmolLM2-135M, "
          f"{os.cpu_count()} cores{' (quick: no notes baseline)' if QUICK else ''}")
    load = _measure("load")
    notes = None if QUICK else _measure("notes")
    formulation = _measure("formulation")
    print(f"   peak RSS before loading the model {formulation['rss_before_mb']:.0f} MiB; load average "
          f"{os.getloadavg()[0]:.1f} (other work on the machine slows every figure)")
    print("   work                           load s  work s  prompt s  calls  tokens  tok/s  peak RSS MiB")
    _row("baseline: load the model only", load)
    if notes is not None:
        _row("baseline: 3 session notes", notes)
    _row("case conceptualization", formulation)
    print(f"   statements kept / marked / dropped: {formulation['kept']} / {formulation['marked']} / "
          f"{formulation['dropped']}; Ps saying nothing yet: {formulation['empty']} of 5; "
          f"state {formulation['state']}")
    if notes is not None and notes["wall_s"]:
        print(f"   the case conceptualization takes {formulation['wall_s'] / notes['wall_s']:.2f}x "
              f"the time of drafting the three notes ({notes['kept']} statements kept)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]))
    else:
        main()
