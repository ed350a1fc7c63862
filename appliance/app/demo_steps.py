"""The demo's drafting steps: whether the bundled model can draft here, the recordings
played one after another as the microphone, and what the job is doing, said as it happens.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from appliance import config as config_mod
from appliance.errors import DraftingError


def why_no_drafting(cfg: config_mod.Config) -> str | None:
    """Why the bundled language model cannot draft here (None when it can)."""
    from appliance.drafting.runtime import resolve_model

    try:
        resolve_model(cfg)
    except DraftingError as error:
        return str(error)
    if importlib.util.find_spec("llama_cpp") is None:
        return "the language-model runtime (llama-cpp-python) is not installed in this venv"
    return None


def playlist(paths: list[Path], speed: float, frames_per_buffer: int):
    """A file "microphone" that plays the next file at each recording (the last one again after that)."""
    from appliance.recorder.capture import WavFileSource

    class Playlist(WavFileSource):
        def __init__(self) -> None:
            super().__init__(paths[0], speed=speed, frames_per_buffer=frames_per_buffer)
            self.played = 0

        def open(self, sink):
            self.path = paths[min(self.played, len(paths) - 1)]
            self.description = f"file {self.path.name} ({self.format.describe()})"
            self.played += 1
            return super().open(sink)

    return Playlist()


class JobProgress:
    """Says what the job is doing, from the sessions' states, each step once."""

    def __init__(self, say: Callable[[str], None], storage, session_ids: list[int]):
        self.say = say
        self.storage = storage
        self.session_ids = session_ids
        self.said: set[tuple[int, str]] = set()

    def poll(self) -> bool:
        """Print the steps reached since the last call; always False (for :func:`wait_for`)."""
        from appliance.store.db import State

        for sid in self.session_ids:
            session = self.storage.get_session(sid)
            if session.state == State.TRANSCRIBING:
                self._once(sid, "asr", f"Transcribing session {sid} with the bundled tiny.en model …")
            if session.drafting == "drafting":
                self._once(sid, "draft", f"Drafting the note of session {sid} with the bundled "
                           "SmolLM2 (SmolLM2-135M-Instruct, a small test model) …")
            if session.drafting == "done":
                self._once(sid, "end", f"Session {sid}: note drafted; each statement on the page "
                           f"links to the moments it cites. {session.drafting_reason or ''}".rstrip())
            elif session.drafting == "failed":
                self._once(sid, "end", f"Session {sid}: not drafted: {session.drafting_reason}")
        return False

    def _once(self, sid: int, step: str, text: str) -> None:
        if (sid, step) not in self.said:
            self.said.add((sid, step))
            self.say(text)


# The series clinician's voice, enrolled under this name, labels their lines in the demo.
DEMO_VOICE = "Dr Rivera"


def enroll_series_clinician(cfg: config_mod.Config, week1_mono: Path, workdir: Path) -> str:
    """Enroll the client series' clinician from the week-1 lavalier (their own microphone).

    What a practice does once per clinician with ``holdnote enroll-voice``: the
    series sessions then show that name instead of "Speaker 1". Returns what to say.
    """
    import wave

    import numpy as np
    from faster_whisper import decode_audio

    from appliance.transcription import commands

    stereo, rttm = week1_mono.with_name("week1.stereo.wav"), week1_mono.with_name("week1.rttm")
    left, _ = decode_audio(str(stereo), split_stereo=True)
    turns = [line.split() for line in rttm.read_text().splitlines() if line.startswith("SPEAKER")]
    sample = np.concatenate([left[int(float(t[3]) * 16000):int((float(t[3]) + float(t[4])) * 16000)]
                             for t in turns if t[7] == "clinician"])
    path = workdir / "clinician-voice.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.clip(sample, -1, 1) * 32767).astype("<i2").tobytes())
    commands.enroll_voice(cfg, path, name=DEMO_VOICE)
    path.unlink()
    return (f"Enrolled the series clinician's voice as {DEMO_VOICE} (as `holdnote enroll-voice "
            f"--name` does): their lines in the series carry that name.")
