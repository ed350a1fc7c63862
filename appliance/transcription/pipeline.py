"""The transcription pipeline shared by the overnight job and ``transcribe-file``.

Audio is read a window at a time (``transcription.window_minutes``), cut in a
pause near the window's end. Each window goes through voice activity
detection, Whisper, and the per-window half of speaker labelling (stereo turns
by channel energy, or voice embeddings of a mono recording). The state after
each window (:class:`Progress`) is small and JSON-able, so the caller can save
it as an encrypted checkpoint; resuming from it gives the same transcript as
an uninterrupted run, because every window is cut and decoded from the same
audio either way. At the end the mono embeddings are clustered, each word gets
its speaker, words become transcript lines, and the notes module adds silences,
metrics, risk flags, bookmarks and the draft note: a
:class:`~appliance.transcript.TranscriptResult`. Stretches the reader could not
read (damaged chunks, read as silence of their true length) become the result's
``gaps``; no silence is claimed across one.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import ctypes
import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from appliance.errors import AudioFormatError, SpeakerModelError, TranscriptionError
from appliance.notes import derive, draft, times
from appliance.transcript import Gap, Segment, TranscriptResult
from appliance.transcription import asr, speakers
from appliance.transcription.reader import RATE, AudioReader

log = logging.getLogger(__name__)

# A pause this long inside one Whisper segment starts a new transcript line.
LINE_GAP_S = 1.5
# Stereo files whose channels differ by less than this (dB below the signal)
# are one microphone copied to both sides, and are labelled as mono.
DUAL_MONO_DB = -30.0


@dataclass(frozen=True)
class Settings:
    """Everything the pipeline needs from the configuration, decided once."""

    window_s: float = 600.0
    speaker_count: int | str = 2  # or "auto"
    clinician_channel: str = "left"
    clinician_name: str = speakers.CLINICIAN
    # Enrolled voices by the label a matching speaker gets (speakers.CLINICIAN for
    # the profile named "clinician", which is shown as clinician_name).
    voices: Mapping[str, np.ndarray] = field(default_factory=dict)
    silence_threshold_s: float = 10.0
    template: str = "SOAP"
    # A practice's own template: its (key, title, prompt) sections; None for SOAP, DAP, BIRP.
    template_sections: tuple[tuple[str, str, str], ...] | None = None
    risk_flags: bool = True

    @classmethod
    def from_config(cls, cfg, *, speakers_count: int | str | None = None,
                    clinician_channel: str | None = None,
                    voices: Mapping[str, np.ndarray] | None = None) -> Settings:
        """From the configuration, with ``transcribe-file`` overrides."""
        return cls(
            window_s=cfg.transcription.window_minutes * 60.0,
            speaker_count=speakers_count or cfg.speakers.count,
            clinician_channel=clinician_channel or cfg.audio.clinician_channel,
            clinician_name=cfg.speakers.clinician_name,
            voices=dict(voices or {}),
            silence_threshold_s=cfg.notes.silence_threshold_seconds,
            template=cfg.notes.template,
            template_sections=_custom_sections(cfg),
            risk_flags=cfg.notes.risk_flags,
        )


def _custom_sections(cfg) -> tuple[tuple[str, str, str], ...] | None:
    """The configured custom template's sections, each with the prompt the clinician sees."""
    for template in cfg.notes.custom_templates:
        if template.name == cfg.notes.template:
            return tuple((s.key, s.title, s.clinician or f"[{s.instruction}]") for s in template.sections)
    return None


@dataclass
class Progress:
    """The pipeline's state after a number of whole windows: what a checkpoint holds."""

    offset: int = 0  # 16 kHz frames done
    mode: str | None = None  # "stereo" or "mono", decided on the first window
    pieces: list = field(default_factory=list)  # [start, end, [[s, e, text, p], ...]]
    regions: list = field(default_factory=list)  # [start, end] speech, seconds
    turns: list = field(default_factory=list)  # stereo: [start, end, speaker]
    windows: list = field(default_factory=list)  # mono: [start, end] per embedding
    embeddings: np.ndarray | None = None  # mono: one row per window
    warnings: list = field(default_factory=list)
    salvaged: bool = False
    language: str | None = None
    gaps: list = field(default_factory=list)  # [start, end] seconds that could not be read

    @property
    def seconds(self) -> float:
        """Audio done, in seconds."""
        return self.offset / RATE

    def to_json(self) -> dict:
        """A JSON-able dict (embeddings as base64 float32)."""
        data = {k: v for k, v in self.__dict__.items() if k != "embeddings"}
        if self.embeddings is not None:
            data["embeddings"] = {
                "shape": list(self.embeddings.shape),
                "data": base64.b64encode(self.embeddings.astype("<f4").tobytes()).decode("ascii"),
            }
        return data

    @classmethod
    def from_json(cls, data: dict) -> Progress:
        """Inverse of :meth:`to_json`."""
        data = dict(data)
        packed = data.pop("embeddings", None)
        progress = cls(**data)
        if packed:
            if packed["shape"][-1] != speakers.EMBEDDING_SIZE:
                # Saved by the older voice features: those windows must be embedded again.
                raise ValueError(f"embeddings of {packed['shape'][-1]} values, not "
                                 f"{speakers.EMBEDDING_SIZE} (an older speaker model)")
            raw = np.frombuffer(base64.b64decode(packed["data"]), dtype="<f4")
            progress.embeddings = raw.reshape(packed["shape"]).copy()
        return progress


class Pipeline:
    """Recording in, :class:`TranscriptResult` out (see :meth:`run`)."""

    def __init__(self, recognizer: asr.Recognizer, settings: Settings = Settings()):
        self.recognizer = recognizer
        self.settings = settings

    # -- windows

    def run(self, reader: AudioReader, progress: Progress | None = None, *,
            bookmarks: Sequence[float] = (), session_date=None,
            on_window: Callable[[Progress], None] | None = None,
            stop: threading.Event | None = None) -> TranscriptResult:
        """Transcribe everything ``reader`` holds from ``progress`` on; the result.

        ``on_window`` is called after each window with the new state (save a
        checkpoint there; raising :class:`asr.Stopped` ends the run cleanly).
        """
        progress = progress or Progress()
        if progress.offset and reader.skip(progress.offset) < progress.offset:
            raise TranscriptionError(
                "the recording is shorter than its checkpoint says; it changed since the last run")
        carry = np.zeros((0, reader.channels), np.float32)
        while True:
            buffer, final = self._next_buffer(reader, carry)
            if len(buffer) == 0:
                break
            used = self._window(progress, buffer, final, stop)
            carry = buffer[used:].copy()  # a copy, so the window's buffer can be freed
            del buffer
            if final:
                self._note_reading(progress, reader)
            release_memory()
            if on_window is not None:
                on_window(progress)
            if final:
                break
        if progress.offset == 0:
            raise AudioFormatError(
                "the recording holds no audio (it is empty); nothing to transcribe")
        return self.finish(progress, bookmarks, session_date)

    def _next_buffer(self, reader: AudioReader, carry: np.ndarray) -> tuple[np.ndarray, bool]:
        """The next window plus look-ahead; True when the audio ends inside it."""
        want = int((self.settings.window_s + asr.LOOKAHEAD_S) * RATE) - len(carry)
        block = reader.read(want)
        buffer = np.concatenate([carry, block]) if len(carry) else block
        return buffer, len(block) < want

    def _window(self, progress: Progress, buffer: np.ndarray, final: bool, stop) -> int:
        """Transcribe one window; update ``progress`` only when all of it is done."""
        mono = buffer.mean(axis=1) if buffer.shape[1] == 2 else buffer[:, 0]
        regions = self.recognizer.speech_regions(mono)
        target = int(self.settings.window_s * RATE)
        cut = len(buffer) if final else asr.choose_cut(mono, regions, target)
        regions = asr.clip_regions(regions, cut)
        mode = progress.mode or self._mode(buffer)
        pieces = self.recognizer.transcribe(mono[:cut], regions, stop)
        base = progress.seconds
        seconds = [(s / RATE, e / RATE) for s, e in regions]
        if mode == "stereo":
            turns = speakers.diarize_stereo(buffer[:cut, 0], buffer[:cut, 1],
                                            self.settings.clinician_channel)
            progress.turns += [[round(t.start + base, 3), round(t.end + base, 3), t.speaker]
                               for t in turns]
        else:
            self._embed(progress, mono[:cut], seconds, base)
        progress.mode = mode
        progress.language = progress.language or self.recognizer.language
        progress.pieces += [_piece_json(p, base) for p in pieces]
        progress.regions += [[round(s + base, 3), round(e + base, 3)] for s, e in seconds]
        progress.offset += cut
        log.info("transcribed %.0f s of audio (%d segments so far)", progress.seconds,
                 len(progress.pieces))
        return cut

    def _mode(self, buffer: np.ndarray) -> str:
        """Stereo labelling needs two different microphones, not one copied twice."""
        if buffer.shape[1] != 2:
            return "mono"
        difference = float(np.sqrt(np.mean((buffer[:, 0] - buffer[:, 1]) ** 2)) + 1e-12)
        signal = float(np.sqrt(np.mean(buffer.mean(axis=1) ** 2)) + 1e-12)
        if 20 * np.log10(difference / signal) < DUAL_MONO_DB:
            log.info("both channels carry the same signal: labelling speakers as in mono")
            return "mono"
        return "stereo"

    def _embed(self, progress: Progress, mono: np.ndarray, regions, base: float) -> None:
        try:
            embeddings, windows = speakers.embed_windows(mono, regions)
        except SpeakerModelError as error:
            # The words matter more than who said them: transcribe on, unlabelled.
            warning = f"Speakers are not labelled: {error}."
            if warning not in progress.warnings:
                log.error("%s", warning)
                progress.warnings.append(warning)
            return
        if not len(windows):
            return
        progress.windows += [[round(s + base, 3), round(e + base, 3)] for s, e in windows]
        embeddings = embeddings.astype(np.float32)  # as a checkpoint keeps them
        progress.embeddings = (embeddings if progress.embeddings is None
                               else np.concatenate([progress.embeddings, embeddings]))

    @staticmethod
    def _note_reading(progress: Progress, reader: AudioReader) -> None:
        """Say in the result what went wrong reading the audio, if anything."""
        status = reader.status
        progress.warnings += [w[0].upper() + w[1:] + "." for w in status.warnings]
        progress.gaps = [[round(start, 2), round(end, 2)] for start, end in status.gaps]
        if status.truncated:
            progress.salvaged = True
            reason = status.reason or "the audio ends early"
            progress.warnings.append(
                f"Only the first {times.clock(progress.seconds)} of the recording could be read: "
                f"{reason}. The transcript covers that part.")

    # -- the end: speakers, lines, notes

    def finish(self, progress: Progress, bookmarks: Sequence[float] = (),
               session_date: dt.date | dt.datetime | str | None = None) -> TranscriptResult:
        """The result of a complete :class:`Progress`."""
        turns = self._turns(progress)
        segments = _lines(progress.pieces, turns, self._display)
        duration = round(progress.seconds, 2)
        warnings = list(progress.warnings)
        if progress.gaps:
            warnings.append(_gaps_warning(progress.gaps))
        if not segments:
            warnings.append("No speech was recognised in this recording.")
        elif self.settings.speaker_count == "auto" and progress.mode == "mono":
            voices = len({turn.speaker for turn in turns})
            warnings.append(f"Speakers were counted automatically: {voices} voice"
                            f"{'s' if voices != 1 else ''} found. Check the labels.")
        facts = self._notes(segments, duration, bookmarks, progress.gaps,
                            session_date or dt.date.today())  # noqa: DTZ011 - the local date
        return TranscriptResult(
            duration_s=duration, model=self.recognizer.name, language=progress.language,
            segments=tuple(segments), salvaged=progress.salvaged, warnings=tuple(warnings),
            gaps=tuple(Gap(start, end) for start, end in progress.gaps), **facts)

    def _display(self, label: str) -> str:
        return self.settings.clinician_name if label == speakers.CLINICIAN else label

    def _turns(self, progress: Progress) -> list[speakers.Turn]:
        if progress.mode == "stereo":
            return [speakers.Turn(s, e, name) for s, e, name in progress.turns]
        if progress.embeddings is None or not len(progress.windows):
            return []
        return cluster_mono(progress.embeddings, progress.windows, progress.regions,
                            self.settings.speaker_count, self.settings.voices)

    def _notes(self, segments: list[Segment], duration: float, bookmarks: Sequence[float],
               gaps: list, session_date) -> dict:
        """Silences, metrics, risk flags, bookmarks and the draft note (appliance.notes), by field."""
        settings = self.settings
        found = derive.derive(segments, duration, bookmarks=bookmarks, gaps=gaps,
                              silence_threshold_s=settings.silence_threshold_s,
                              risk_flags=settings.risk_flags)
        note = draft.build_draft_note(
            settings.template, session_date=session_date, duration_s=duration,
            metrics=found.metrics, silences=list(found.silences),
            flags=None if found.flags is None else list(found.flags),
            bookmarks=[mark.to_json() for mark in found.bookmarks],
            speakers=list(dict.fromkeys(s.speaker for s in segments)),
            silence_threshold_s=settings.silence_threshold_s, sections=settings.template_sections)
        return {
            "silences": found.stored_silences,
            "metrics": found.metrics,
            "flags": found.flags or (),
            "bookmarks": found.bookmarks,
            "note": note,
        }


def release_memory() -> None:
    """Hand freed heap memory back to the system (glibc; a no-op elsewhere).

    numpy and CTranslate2 free a window's buffers to malloc, which keeps much
    of them; returning them after each window keeps the peak from creeping up.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _piece_json(piece: asr.Piece, base: float) -> list:
    return [round(piece.start + base, 2), round(piece.end + base, 2),
            [[round(w.start + base, 2), round(w.end + base, 2), w.text, w.probability]
             for w in piece.words]]


def _gaps_warning(gaps: list) -> str:
    total = sum(end - start for start, end in gaps)
    places = ", ".join(times.clock(start) for start, _ in gaps[:5]) + (", …" if len(gaps) > 5 else "")
    amount = f"{total:.0f} s" if total >= 1 else "under 1 s"
    return (f"{amount} of the recording could not be read (damaged on the storage; "
            f"at {places}): the transcript marks each place, and the times after it stay true.")


# --- words to lines --------------------------------------------------------------------------


def _word_labels(words: list, turns: list[speakers.Turn]) -> list[str]:
    """Each word's speaker, looking only at the turns near it (turns are sorted)."""
    if not turns:
        return [speakers.UNKNOWN] * len(words)
    starts = [t.start for t in turns]
    labels = []
    for start, end, *_ in words:
        low = max(0, bisect.bisect_left(starts, start - 30.0) - 1)
        high = bisect.bisect_right(starts, end + 2.0)
        labels += speakers.assign_segments([(start, end)], turns[low:high])
    return labels


def _lines(pieces: list, turns: list[speakers.Turn],
           display: Callable[[str], str]) -> list[Segment]:
    """Transcript lines: Whisper segments split where the speaker changes or a pause falls."""
    lines = []
    for _, _, words in pieces:
        labels = _word_labels(words, turns)
        current: list = []
        for word, label in zip(words, labels, strict=True):
            if current and (label != current[-1][1] or word[0] - current[-1][0][1] > LINE_GAP_S):
                lines.append(_line(current, display))
                current = []
            current.append((word, label))
        if current:
            lines.append(_line(current, display))
    return [line for line in lines if line.text]


def _line(items: list, display: Callable[[str], str]) -> Segment:
    words = [word for word, _ in items]
    return Segment(words[0][0], words[-1][1], display(items[0][1]),
                   "".join(w[2] for w in words).strip())


# --- mono clustering over the whole recording ------------------------------------------------

def cluster_mono(embeddings: np.ndarray, windows: list, regions: list, count: int | str,
                 voices: Mapping[str, np.ndarray]) -> list[speakers.Turn]:
    """Speaker turns from embeddings gathered window by window.

    :func:`speakers.diarize_mono` needs the whole recording in memory; here the
    embeddings were computed a window at a time and only they (about 10 KB a
    minute) are kept, then clustered once over the whole recording.
    """
    return speakers.cluster_embeddings(embeddings, windows, regions, count, voices)
