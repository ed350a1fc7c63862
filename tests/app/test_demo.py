"""``holdnote demo``: the whole appliance comes up, produces drafted notes, and stops cleanly.

The end-to-end test runs the demo exactly as ``make demo`` does (a subprocess of the
``holdnote`` entry point), logs in with the printed demo login over TLS pinned to the
printed fingerprint, reads the transcribed sessions and their drafted notes, then
sends SIGINT (Ctrl-C) and checks that no process, socket or open port is left behind.
"""

from __future__ import annotations

import html
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import pytest

from appliance.app import demo
from appliance.errors import HoldnoteError
from appliance.store.db import Storage
from tests.conftest import REPO, need_tool
from tests.system.webclient import WebClient


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that mention ``text`` (the demo directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


class DemoProcess:
    """The demo in a subprocess; its output lines are collected by a reader thread."""

    def __init__(self, workdir: Path, port: int):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance.app.cli", "demo", "--workdir", str(workdir),
             "--port", str(port)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,  # its own process group, like a terminal's foreground job
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, marker: str, timeout: float) -> str:
        """All output up to the line containing ``marker``."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {marker!r} in {timeout} s:\n{''.join(self.output)}")
            if line is None:
                raise AssertionError(f"demo exited before {marker!r}:\n{''.join(self.output)}")
            self.output.append(line)
            if marker in line:
                return "".join(self.output)

    def close(self) -> None:
        """Kill the demo if it is still running; release its output pipe."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.reader.join(timeout=10)
        self.proc.stdout.close()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_records_transcribes_serves_and_stops_cleanly(tmp_path, testdata):
    workdir, port = tmp_path / "demo", free_port()
    run = DemoProcess(workdir, port)
    try:
        text = run.wait_for("Press Ctrl-C", timeout=600)
        login = re.search(r"demo login:\s+(\S+) / (\S+)", text)
        fingerprint = re.search(r"SHA-256 ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})", text).group(1)
        session_id = re.search(r"session (\d+) has a draft note", text).group(1)
        client = WebClient("127.0.0.1", port, fingerprint)
        assert client.login(login.group(1), login.group(2)).status == 200
        page = client.get(f"/sessions/{session_id}")
        assert page.status == 200
        words = page.visible_text().lower()
        # Words of the sample dialogue that the tiny model transcribes reliably.
        assert "sleep" in words and "morning" in words
        assert "draft" in words
        signed = assert_client_series(client, workdir, text)
        assert_notes_drafted(client, workdir, text, signed)
        assert_listen_and_correct(client, session_id)
        assert_transcribe_now(client, text)
        # Ctrl-C in a terminal: SIGINT to the whole foreground process group.
        os.killpg(run.proc.pid, signal.SIGINT)
        assert run.proc.wait(timeout=120) == 0
        assert "nothing is left running" in run.wait_for("nothing is left running", timeout=10)
    finally:
        run.close()
    assert processes_mentioning(str(workdir)) == []
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert not (workdir / "run").exists()  # the unlocked key went with it


def assert_client_series(client: WebClient, workdir: Path, output: str) -> list[int]:
    """The series is one client's: its page, week 3's follow-up of week 2's signed plan, and
    the signed notes as PDF. Returns the sessions whose notes the demo signed."""
    client_url = re.search(r"client:\s+https://localhost:\d+(/clients/(\d+))", output)
    series = [int(n) for n in re.search(r"sessions ([\d, ]+) assigned", output).group(1).split(", ")]
    signed = [int(n) for n in re.search(r"the notes of sessions ([\d, ]+) signed", output)
              .group(1).split(", ")]
    assert client_url and len(series) == 3 and signed == series[:2], output
    page = client.get(client_url.group(1))
    assert page.status == 200 and "D.M." in page.visible_text()
    assert all(f'href="/sessions/{n}' in page.text for n in series) and "<svg" in page.text
    # Week 3 is drafted again after week 2 was signed: it follows up week 2's plan.
    storage, week3 = Storage(workdir / "data"), series[2]
    deadline = time.monotonic() + 420
    while storage.get_session(week3).drafting != "done":
        assert time.monotonic() < deadline, "week 3 was not drafted again"
        time.sleep(2)
    followup = client.get(f"/sessions/{week3}").visible_text()
    assert "From last session" in followup and "(from last session): discussed at" in followup
    status, headers, body = client.fetch(f"/sessions/{signed[0]}/export.pdf", {})
    assert status == 200 and body.startswith(b"%PDF") and "no-store" in headers["Cache-Control"]
    status, _, body = client.fetch(f"{client_url.group(1)}/export.pdf", {})
    assert status == 200 and body.startswith(b"%PDF")
    return signed


def assert_notes_drafted(client: WebClient, workdir: Path, output: str,
                         signed: list[int]) -> None:
    """Every recorded session was drafted by the bundled model, and the page shows it."""
    recorded = [int(n) for n in re.findall(r"Recording session (\d+)", output)]
    drafting = [int(n) for n in re.findall(r"Drafting the note of session (\d+) with the bundled SmolLM2",
                                           output)]
    # The sample dialogue, the client series' three weeks, then one left waiting for the night.
    assert len(recorded) == 5, output
    recorded = recorded[:4]
    assert sorted(drafting) == sorted(recorded), output
    storage = Storage(workdir / "data")
    assert [storage.get_session(n).drafting for n in recorded] == ["done"] * 4
    pages = [client.get(f"/sessions/{n}").text for n in recorded]
    # A signed note no longer carries the "check every statement" banner.
    assert all(('data-testid="drafted-banner"' in page) == (n not in signed)
               for n, page in zip(recorded, pages, strict=True))
    # The sample's risk flags are statements citing their lines; the model's own statements
    # are in the note or listed as left out by the check, never silently lost.
    assert 'data-testid="citation"' in pages[0]
    assert all('data-testid="statement"' in page or 'data-testid="left-out"' in page
               for page in pages[1:])
    # The series clinician was enrolled by name: their lines carry it in every week.
    assert "Enrolled the series clinician's voice as Dr Rivera" in output
    assert all(">Dr Rivera<" in page and ">Client<" in page for page in pages[1:])
    # Labelled sessions give the clinician's own review: interventions and moments to review.
    assert all('data-testid="interventions"' in page and 'data-testid="moments"' in page
               and 'data-testid="moments-unavailable"' not in page for page in pages[1:])


def assert_listen_and_correct(client: WebClient, session_id: str) -> None:
    """The recording was kept for listening, and a speaker can be renamed on the page."""
    where = f"/sessions/{session_id}"
    status, headers, body = client.fetch(f"{where}/audio", {"Range": "bytes=0-65535"})
    assert status == 206 and body[:4] == b"RIFF" and len(body) == 65536, status
    assert headers["Content-Range"].startswith("bytes 0-65535/")
    page = client.get(where)
    version = re.search(r'name="transcript_version" value="(\d+)"', page.text).group(1)
    first = html.unescape(re.search(r'id="rename-speaker"[^>]*>\s*<option value="([^"]+)"',
                                    page.text).group(1))
    renamed = client.post(f"{where}/transcript/speakers",
                          {"transcript_version": version, "action": "rename",
                           "speaker": first, "new_name": "Ms Okafor"}, page.csrf())
    assert renamed.status == 200, renamed.text[-1500:]
    timeline = renamed.text.split('data-testid="transcript"', 1)[1].split("</ol>", 1)[0]
    assert ">Ms Okafor<" in timeline and f">{html.escape(first)}<" not in timeline


def assert_transcribe_now(client: WebClient, output: str) -> None:
    """The session recorded after the night run waits; Transcribe now transcribes it."""
    waiting = re.search(r"session (\d+) waits for tonight", output).group(1)
    where = f"/sessions/{waiting}"
    page = client.get(where)
    assert "Transcribe now" in page.text and 'data-testid="transcript"' not in page.text
    queued = client.post(f"{where}/transcribe", {}, page.csrf())
    assert "Transcription queued" in queued.text
    deadline = time.monotonic() + 300
    while "sleeping" not in client.get(where).visible_text().lower():
        assert time.monotonic() < deadline, "Transcribe now did not transcribe the waiting session"
        time.sleep(2)


def test_demo_refuses_a_directory_it_did_not_make(tmp_path):
    (tmp_path / "notes.txt").write_text("someone's files")
    with pytest.raises(HoldnoteError, match="not a demo directory"):
        demo.prepare_workdir(tmp_path)
    assert (tmp_path / "notes.txt").exists()


def test_demo_replaces_its_own_earlier_directory(tmp_path):
    workdir = tmp_path / "demo"
    demo.prepare_workdir(workdir)
    (workdir / "data").mkdir()
    demo.prepare_workdir(workdir)
    assert sorted(p.name for p in workdir.iterdir()) == [demo.MARKER]


def test_demo_names_the_fix_when_the_port_is_taken():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(HoldnoteError, match=f"--port {port + 1}"):
            demo.check_port_free(port)


def test_demo_config_keeps_everything_in_the_workdir_and_on_localhost(tmp_path):
    cfg = demo.demo_config(tmp_path, 9443, demo.runtime_dir(tmp_path))
    for path in (cfg.paths.data_dir, cfg.paths.runtime_dir, cfg.paths.recorder_socket,
                 cfg.web.tls_cert, cfg.web.tls_key):
        assert Path(path).is_relative_to(tmp_path)
    assert (cfg.web.bind, cfg.web.port) == ("127.0.0.1", 9443)
    assert cfg.transcription.model == "bundled-tiny"
    assert cfg.drafting.model == "bundled-smollm2"


def test_demo_records_the_client_series_after_the_sample(tmp_path, testdata):
    assert [p.name for p in demo.demo_recordings(tmp_path)] == [
        "sleep.mono.wav", "week1.mono.wav", "week2.mono.wav", "week3.mono.wav"]


def test_demo_runtime_dir_stays_short_enough_for_the_socket(tmp_path):
    deep = tmp_path / ("d" * 90)
    run_dir = demo.runtime_dir(deep)
    try:
        assert len(str(run_dir / "recorder.sock")) <= demo.SOCKET_PATH_MAX
    finally:
        if not run_dir.is_relative_to(deep):
            shutil.rmtree(run_dir)


@pytest.mark.slow
def test_fallback_dialogue_is_16k_mono_speech(tmp_path):
    """Without the shared sample (a clone on its own), espeak-ng speaks a dialogue."""
    need_tool("espeak-ng")
    path = demo.synthesize_dialogue(tmp_path / "dialogue.wav")
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert wav.getnframes() / wav.getframerate() > 15


def test_a_redraft_on_the_demo_page_runs_the_drafts_as_the_path_unit_would(tmp_path, monkeypatch):
    import io
    import time

    cfg = demo.demo_config(tmp_path, 9443, demo.runtime_dir(tmp_path))
    Path(cfg.paths.runtime_dir).mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    run = demo.Demo(cfg, tmp_path, out, threading.Event())
    monkeypatch.setattr(demo, "REDRAFT_POLL_S", 0.05)
    watcher = threading.Thread(target=demo.serve_redrafts, args=(run, tmp_path / "absent.toml"))
    watcher.start()
    try:
        time.sleep(0.2)
        assert run.transcriber is None  # nothing asked yet
        (Path(cfg.paths.runtime_dir) / "draft.request").touch()  # what the Redraft button does
        deadline = time.monotonic() + 10
        while run.transcriber is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        run.stop.set()
        watcher.join(5)
    assert run.transcriber is not None and run.transcriber.args[-2:] == ["draft", "--queued"]
    run.transcriber.wait(60)
    assert "Redraft asked for on the page" in out.getvalue()
    shutil.rmtree(cfg.paths.runtime_dir, ignore_errors=True)
