"""``holdnote demo``: the whole appliance on this machine, with mock GPIO and demo audio.

One command for an evaluator. In a throw-away working directory it writes a
configuration, creates the practice keys with a demo login and a TLS
certificate, serves the web page with gunicorn on ``https://localhost:PORT``,
runs the real recorder daemon with gpiozero's mock pins and WAV files as the
microphone, presses the record button for the sample dialogue and for each session
of the shared client series, transcribes them at once with the bundled tiny.en
model, drafts their notes with the bundled SmolLM2 language model (the job drafts
after transcribing, as it does overnight), and keeps serving until Ctrl-C (or
SIGTERM), which stops everything it started.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from appliance import config as config_mod
from appliance import service
from appliance.app.demo_clients import SERIES_CLIENT, SeriesClient, setup_series_client
from appliance.app.demo_steps import JobProgress, enroll_series_clinician, playlist, why_no_drafting
from appliance.errors import HoldnoteError

# At import, not in the watcher: a request made while it imported would pass unseen.
from web_ui.views import drafts, transcribe_now

DEMO_USER = "demo"
MARKER = ".holdnote-demo"
# The shared sample dialogue (beside the checkout in development and CI).
SAMPLE = Path(__file__).resolve().parents[3] / "shared/testdata/speech/dialogue/sleep.mono.wav"
# Three weekly sessions with one client, recorded after the sample so the notes have real content.
SERIES = tuple(SAMPLE.parents[1] / "series" / f"week{n}.mono.wav" for n in (1, 2, 3))
LLM = "bundled-smollm2"
# The sample plays faster than real time so the demo is ready in seconds, not minutes.
PLAYBACK_SPEED = 8.0
# The session left waiting for "Transcribe now": the dialogue's first exchanges.
WAITING_CLIP_S = 18.0
# Moderate key-slot cost: logging in takes a moment, not a second.
DEMO_WORK_FACTOR = 14
SOCKET_PATH_MAX = 100  # AF_UNIX paths are limited to 108 bytes
PR_SET_PDEATHSIG = 1
# Spoken with espeak-ng when the shared sample is not there (a clone on its own).
FALLBACK_DIALOGUE = (
    ("en-us+f2", "Good morning. How have you been sleeping since our last session?"),
    ("en-us+m3", "Not very well. I wake up at three in the morning and cannot get back to sleep."),
    ("en-us+f2", "What goes through your mind when you wake up?"),
    ("en-us+m3", "Mostly work. Some nights I think everyone would be better off without me."),
    ("en-us+f2", "Thank you for telling me. Are you having thoughts of hurting yourself?"),
    ("en-us+m3", "No, not like that. I just feel like a burden."),
)


@dataclass
class Demo:
    """What one demo run started, so that it can all be stopped."""

    cfg: config_mod.Config
    workdir: Path
    out: TextIO
    stop: threading.Event
    web: subprocess.Popen | None = None
    recorder: threading.Thread | None = None
    transcriber: subprocess.Popen | None = None

    def say(self, text: str = "") -> None:
        """One line for the person running the demo."""
        print(text, file=self.out, flush=True)


# --- preparation -------------------------------------------------------------------------


def prepare_workdir(workdir: Path) -> None:
    """An empty working directory; an earlier demo's is replaced, anything else refused."""
    if workdir.exists():
        if not (workdir / MARKER).exists() and any(workdir.iterdir()):
            raise HoldnoteError(f"{workdir} exists and is not a demo directory; "
                                "give another one with --workdir")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, mode=0o700)
    (workdir / MARKER).write_text("made by holdnote demo; deleted by the next demo run\n")


def runtime_dir(workdir: Path) -> Path:
    """``workdir/run``, or a short temporary path when that is too long for a socket."""
    preferred = workdir / "run"
    if len(str(preferred / "recorder.sock")) <= SOCKET_PATH_MAX:
        return preferred
    return Path(tempfile.mkdtemp(prefix="holdnote-demo-"))


def demo_config(workdir: Path, port: int, run_dir: Path, llm: str = LLM) -> config_mod.Config:
    """The demo's configuration: everything inside ``workdir``, served on localhost only."""
    data = workdir / "data"
    return config_mod.from_dict({
        "paths": {"data_dir": str(data), "runtime_dir": str(run_dir),
                  "recorder_socket": str(run_dir / "recorder.sock")},
        "transcription": {"model": "bundled-tiny"},
        "drafting": {"model": llm},
        # A small disk must not stop the demo; the sample is a few MB.
        "recorder": {"min_free_mb": 50, "stop_free_mb": 20},
        "web": {"bind": "127.0.0.1", "port": port, "workers": 1,
                "tls_cert": str(data / "tls/cert.pem"), "tls_key": str(data / "tls/key.pem")},
        "security": {"scrypt_work_factor": DEMO_WORK_FACTOR},
    })


def write_config(cfg: config_mod.Config, path: Path) -> None:
    """Save the configuration, so ``holdnote --config PATH …`` works against the demo."""
    path.write_text(config_mod.to_toml(cfg), encoding="utf-8")


def init_keys(cfg: config_mod.Config) -> str:
    """Create the practice keys with the demo clinician; the demo passphrase."""
    from appliance.access.audit import AuditLog
    from appliance.access.keys import KeyStore
    from appliance.store.db import Storage

    storage = Storage(cfg.paths.data_dir)
    passphrase = "demo-" + secrets.token_urlsafe(9)
    KeyStore.for_config(cfg, storage).init(
        DEMO_USER, passphrase)
    AuditLog(storage).append("cli", "keys.init", source="demo", detail=DEMO_USER)
    return passphrase


def demo_recordings(workdir: Path) -> list[Path]:
    """What the demo records: the sample dialogue, then the client series when it is here."""
    recordings = [demo_audio(workdir)]
    if recordings[0] == SAMPLE and all(p.is_file() for p in SERIES):
        recordings += SERIES
    return recordings


def waiting_clip(source: Path, target: Path, seconds: float = WAITING_CLIP_S) -> Path:
    """The first ``seconds`` of ``source`` as a WAV file: the session the demo leaves waiting."""
    with wave.open(str(source), "rb") as src, wave.open(str(target), "wb") as out:
        out.setparams(src.getparams())
        out.writeframes(src.readframes(int(seconds * src.getframerate())))
    return target


def demo_audio(workdir: Path) -> Path:
    """The sample dialogue, or one spoken by espeak-ng when the sample is not here."""
    if SAMPLE.is_file():
        return SAMPLE
    if shutil.which("espeak-ng") is None:
        raise HoldnoteError(f"no demo audio: {SAMPLE} is missing and espeak-ng is not "
                            "installed (apt-get install espeak-ng)")
    return synthesize_dialogue(workdir / "dialogue.wav")


def synthesize_dialogue(path: Path, rate: int = 16000) -> Path:
    """Speak :data:`FALLBACK_DIALOGUE` with two voices into a 16 kHz mono WAV."""
    import numpy as np
    from faster_whisper import decode_audio

    pause = np.zeros(int(0.8 * rate), dtype=np.float32)
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (voice, text) in enumerate(FALLBACK_DIALOGUE):
            turn = Path(tmp) / f"{index}.wav"
            subprocess.run(
                ["espeak-ng", "-v", voice, "-s", "150", "-w", str(turn), text],  # noqa: S607 - from PATH
                check=True, capture_output=True,
            )
            parts += [decode_audio(str(turn), sampling_rate=rate), pause]
    pcm = (np.clip(np.concatenate(parts), -1, 1) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return path


def check_port_free(port: int) -> None:
    """Fail early, with the fix, when another program holds the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise HoldnoteError(f"port {port} is in use; run: holdnote demo --port "
                                f"{port + 1}") from None


# --- the running pieces ----------------------------------------------------------------------


def _die_with_parent() -> None:
    """In a child: get SIGTERM if the demo itself dies, so nothing is left behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_web(demo: Demo) -> None:
    """gunicorn over TLS, logging into the working directory."""
    from web_ui.serving.serve import spawn

    with open(demo.workdir / "web.log", "ab") as log:  # gunicorn keeps its own copy
        demo.web = spawn(demo.cfg, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         preexec_fn=_die_with_parent)
    wait_for(demo, lambda: healthz_answers(demo.cfg.web.port), "the web page", 90)


def healthz_answers(port: int) -> bool:
    """True once the web server on this machine answers /healthz over TLS."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the demo's self-signed certificate
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=context,
                                    timeout=5) as reply:
            return reply.status == 200
    except urllib.error.HTTPError as error:
        return error.code == 503  # serving, and reporting a problem (say, the clock)
    except OSError:
        return False


def wait_for(demo: Demo, ready: Callable[[], bool], what: str, timeout: float) -> None:
    """Wait until ``ready()``; stop on Ctrl-C; raise if a part died or time ran out."""
    deadline = time.monotonic() + timeout
    while True:
        # Ctrl-C first: the terminal's SIGINT also reaches gunicorn and the transcriber,
        # whose exit is then expected, not an error.
        if demo.stop.is_set():
            raise KeyboardInterrupt
        if ready():
            return
        if demo.web is not None and demo.web.poll() is not None:
            raise HoldnoteError(f"the web server exited ({demo.web.returncode}); "
                                f"see {demo.workdir / 'web.log'}")
        if demo.recorder is not None and not demo.recorder.is_alive():
            raise HoldnoteError(f"the recorder stopped; see {demo.workdir / 'demo.log'}")
        if time.monotonic() > deadline:
            raise HoldnoteError(f"{what} did not come up in {timeout:.0f} s")
        demo.stop.wait(0.25)


def start_recorder(demo: Demo, recordings: list[Path]):
    """The real recorder daemon in a thread, on mock pins, with the WAV files as microphone."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from appliance.recorder.daemon import run_daemon

    factory = MockFactory(pin_class=MockPWMPin)
    source = playlist(recordings, PLAYBACK_SPEED, demo.cfg.audio.frames_per_buffer)
    demo.recorder = threading.Thread(
        target=run_daemon, name="holdnote-demo-recorder", daemon=True,
        kwargs={"cfg": demo.cfg, "pin_factory": factory, "source": source,
                "stop_event": demo.stop},
    )
    demo.recorder.start()
    wait_for(demo, lambda: recorder_status(demo).get("state") == "idle", "the recorder", 60)
    return factory


def recorder_status(demo: Demo) -> dict:
    """The recorder's status over its control socket (``state: unavailable`` while it is not answering)."""
    from appliance.recorder import control

    return control.recorder_status(demo.cfg.paths.recorder_socket)


def press_record_button(factory, pin: int) -> None:
    """What a finger does: pull the pin low, then let go."""
    button = factory.pin(pin)
    button.drive_low()
    time.sleep(0.2)  # a real press lasts a fraction of a second
    button.drive_high()


def record_sample(demo: Demo, factory, seconds: float, what: str = "dialogue") -> int:
    """Press the button, let the sample play through, return the session id."""
    press_record_button(factory, demo.cfg.gpio.record_button_pin)
    wait_for(demo, lambda: recorder_status(demo).get("state") == "recording",
             "the recording", 15)
    session_id = recorder_status(demo)["session_id"]
    demo.say(f"Recording session {session_id}: the record button was pressed (mock GPIO pin "
             f"{demo.cfg.gpio.record_button_pin}); {seconds:.0f} s of {what} play at "
             f"{PLAYBACK_SPEED:g}x speed …")
    # The file source ends the recording itself at the end of the file.
    wait_for(demo, lambda: recorder_status(demo).get("state") == "idle",
             "the end of the recording", seconds / PLAYBACK_SPEED + 60)
    return session_id


REDRAFT_POLL_S = 1.0


def transcribe(demo: Demo, config_path: Path, session_ids: list[int]) -> None:
    """``holdnote transcribe`` now, as the overnight job would: every recording, then the drafts."""
    from appliance.store.db import Storage

    progress = JobProgress(demo.say, Storage(demo.cfg.paths.data_dir), session_ids)
    with open(demo.workdir / "transcribe.log", "ab") as log:
        transcriber = demo.transcriber = subprocess.Popen(
            [sys.executable, "-m", "appliance.app.cli", "--config", str(config_path),
             "transcribe"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - the only way to set PR_SET_PDEATHSIG
        )
    wait_for(demo, lambda: progress.poll() or transcriber.poll() is not None, "the transcription", 1800)
    progress.poll()
    if demo.stop.is_set():
        raise KeyboardInterrupt
    if transcriber.returncode != 0:
        raise HoldnoteError(f"transcription failed ({transcriber.returncode}); "
                            f"see {demo.workdir / 'transcribe.log'}")


def shutdown(demo: Demo) -> None:
    """Stop everything this run started, waiting for each to end."""
    demo.stop.set()
    for proc in (demo.transcriber, demo.web):
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    if demo.recorder is not None:
        demo.recorder.join(timeout=30)
    # Like a reboot of the appliance: the unlocked key (RAM only) is gone.
    shutil.rmtree(demo.cfg.paths.runtime_dir, ignore_errors=True)


# --- entry point ---------------------------------------------------------------------------


def _audio_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def _log_to_file(path: Path) -> Callable[[], None]:
    """Keep the terminal for the demo's own lines: log details go to ``path``."""
    root = logging.getLogger()
    quieted = [(h, h.level) for h in root.handlers if isinstance(h, logging.StreamHandler)
               and not isinstance(h, logging.FileHandler)]
    for handler, _ in quieted:
        handler.setLevel(logging.WARNING)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(to_file)

    def restore() -> None:
        root.removeHandler(to_file)
        to_file.close()
        for handler, level in quieted:
            handler.setLevel(level)

    return restore


def run(workdir: Path, port: int, out: TextIO | None = None) -> int:
    """Run the demo until Ctrl-C or SIGTERM; 0 after a clean stop."""
    out = out or sys.stdout
    workdir = workdir.resolve()
    check_port_free(port)
    prepare_workdir(workdir)
    cfg = demo_config(workdir, port, runtime_dir(workdir))
    no_drafting = why_no_drafting(cfg)
    if no_drafting:
        cfg = demo_config(workdir, port, Path(cfg.paths.runtime_dir), llm="none")
    demo = Demo(cfg, workdir, out, threading.Event())
    if no_drafting:
        demo.say(f"Drafting is off in this demo: {no_drafting}.")
    restore_signals = service.install_stop_signals(demo.stop)
    restore_logging = _log_to_file(workdir / "demo.log")
    try:
        return _run(demo)
    except KeyboardInterrupt:
        return 0
    finally:
        demo.say("Stopping …")
        shutdown(demo)
        restore_logging()
        restore_signals()
        demo.say("Stopped; nothing is left running.")


def _run(demo: Demo) -> int:
    from web_ui.serving.serve import init_tls

    config_path = demo.workdir / "holdnote.toml"
    write_config(demo.cfg, config_path)
    passphrase = init_keys(demo.cfg)
    fingerprint = init_tls(demo.cfg)
    recordings = demo_recordings(demo.workdir)
    if len(recordings) > 1:
        demo.say(enroll_series_clinician(demo.cfg, recordings[1], demo.workdir))
    start_web(demo)
    url = f"https://localhost:{demo.cfg.web.port}/"
    demo.say(f"Holdnote demo in {demo.workdir}\n\n  web page:    {url}\n"
             f"  demo login:  {DEMO_USER} / {passphrase}\n"
             f"  certificate: SHA-256 {fingerprint}\n"
             "               (your browser warns about the self-signed certificate once)\n"
             f"  logs:        {demo.workdir}/demo.log, web.log, transcribe.log\n")
    later = waiting_clip(recordings[0], demo.workdir / "later.wav")
    factory = start_recorder(demo, [*recordings, later])
    session_ids = [record_sample(demo, factory, _audio_seconds(audio),
                                 "dialogue" if n == 0 else f"the client series (week {n})")
                   for n, audio in enumerate(recordings)]
    transcribe(demo, config_path, session_ids)
    session_id, *series = session_ids
    client = series_client(demo, series)
    # Recorded after the night run: it waits, for "Transcribe now" on its page.
    waiting = record_sample(demo, factory, _audio_seconds(later), "a session for tonight")
    more = (f"  client:      {url}clients/{client.client_id} ({SERIES_CLIENT}: the series' "
            f"three weeks, trends, themes; notes of weeks 1–2 signed)\n"
            f"  your review: each session's interventions and moments to review, a private "
            f"process note, a supervision excerpt; all your sessions: {url}review\n"
            if client else "")
    demo.say(f"\nReady: session {session_id} has a draft note: {url}sessions/{session_id}\n{more}"
             "  listen:      click a transcript line to play the recording from it (kept until "
             "the note is signed); Correct a line or rename a speaker under the transcript\n"
             f"  waiting:     session {waiting} waits for tonight: {url}sessions/{waiting} "
             "has Transcribe now\n"
             f"  demo login:  {DEMO_USER} / {passphrase}\n"
             f"  try also:    .venv/bin/holdnote --config {config_path} record status\n"
             "Press Ctrl-C to stop.")
    serve_redrafts(demo, config_path, redraft_now=bool(client and client.redrafted))
    return 0


def series_client(demo: Demo, series: list[int]) -> SeriesClient | None:
    """The series as one client's sessions (see demo_clients); None without the series."""
    if not series:
        return None
    client = setup_series_client(demo.cfg, series, SERIES[0].parent, DEMO_USER,
                                 redraft=why_no_drafting(demo.cfg) is None)
    demo.say(f"Client {SERIES_CLIENT}: consent on record, sessions {', '.join(map(str, series))} "
             f"assigned; the notes of sessions {', '.join(map(str, client.signed))} signed with "
             "the plan agreed in them (the demo stands in for the clinician).")
    if client.redrafted:
        demo.say(f"Drafting session {client.redrafted} again: its draft says where last week's "
                 "plan was taken up …")
    return client


def serve_redrafts(demo: Demo, config_path: Path, redraft_now: bool = False) -> None:
    """Until stopped, do what holdnote-draft.path and holdnote-transcribe-now.path do on the
    appliance: a Redraft (or Transcribe now) on the page writes its request file, and
    ``holdnote draft --queued`` (or ``holdnote transcribe --queued``) runs. ``redraft_now``:
    drafts are queued already, so ``holdnote draft --queued`` runs at once."""
    watched = [(Path(demo.cfg.paths.runtime_dir) / drafts.REQUEST_FILE, ["draft", "--queued"],
                "Redraft asked for on the page: drafting the queued notes …"),
               (Path(demo.cfg.paths.runtime_dir) / transcribe_now.REQUEST_FILE,
                ["transcribe", "--queued"],
                "Transcribe now asked for on the page: transcribing at idle priority …")]
    seen = {request: redraft_stamp(request) for request, _, _ in watched}
    if redraft_now:
        seen[watched[0][0]] = -1.0  # differs from any stamp, so the first turn drafts
    while not demo.stop.wait(REDRAFT_POLL_S):
        for request, command, message in watched:
            stamp = redraft_stamp(request)
            if stamp == seen[request] or (demo.transcriber is not None
                                          and demo.transcriber.poll() is None):
                continue
            seen[request] = stamp
            demo.say(message)
            with open(demo.workdir / "transcribe.log", "ab") as log:
                demo.transcriber = subprocess.Popen(
                    [sys.executable, "-m", "appliance.app.cli", "--config", str(config_path),
                     *command],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 - the only way to set PR_SET_PDEATHSIG
                )


def redraft_stamp(request: Path) -> float | None:
    """When the page last asked through ``request`` (a Redraft, Transcribe now; None: never)."""
    try:
        return request.stat().st_mtime
    except OSError:
        return None
