"""Speaker labelling: who spoke when.

Stereo recordings (a lavalier per person) are labelled by channel energy
(sleep 0.4 %, quiet 0.5 % DER). Mono recordings, the usual table microphone,
by voice embeddings: CAM++ (:mod:`appliance.transcription.voice.model`, an ONNX
model shipped with the project, run by onnxruntime) of 1.5 s windows inside the
speech regions, grouped by k-means (:mod:`appliance.transcription.voice.cluster`,
where the choice is measured), then smoothed into turns. A cluster is named
only when an enrolled voice clearly matches it; otherwise speakers are
"Speaker 1", "Speaker 2", ... Nothing is downloaded.

Until this model, mono labelling clustered MFCC and pitch statistics; that
method is kept as the benchmark's baseline (``tests/bench/speakers_mfcc.py``),
and ``make bench`` prints both side by side.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from appliance.errors import AudioFormatError
from appliance.transcription.voice import cluster
from appliance.transcription.voice import model as voice_model

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
CLINICIAN = "Clinician"
CLIENT = "Client"
UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Turn:
    """One stretch of speech by one speaker, in seconds from the recording start."""

    start: float
    end: float
    speaker: str


# --- framing, energy and a simple voice-activity detector ---------------------------

_CHUNK_FRAMES = 6000  # frames are processed a minute at a time to bound memory

# Hysteresis thresholds above the noise floor: max(dB, fraction of the floor-to-peak span).
_VAD_HIGH_DB, _VAD_HIGH_FRACTION = 10.0, 0.35
_VAD_LOW_DB, _VAD_LOW_FRACTION = 5.0, 0.15


def _check_audio(audio: np.ndarray, name: str = "audio") -> np.ndarray:
    array = np.asarray(audio, dtype=np.float32)
    if array.ndim != 1:
        raise AudioFormatError(f"{name} must be a 1-D array of samples, got shape {array.shape}")
    return array


def _check_rate(sample_rate: int) -> None:
    if sample_rate != SAMPLE_RATE:
        raise ValueError(
            f"sample_rate must be {SAMPLE_RATE} Hz for voice features, got {sample_rate}; "
            "decode with faster_whisper.audio.decode_audio, which resamples"
        )


def _frame_db(audio: np.ndarray, size: int, hop: int) -> np.ndarray:
    """RMS level in dB of frames ``size`` long every ``hop`` samples."""
    if len(audio) < size:
        return np.zeros(0)
    frames = np.lib.stride_tricks.sliding_window_view(audio, size)[::hop]
    # In blocks: a float64 copy of every frame of an hour would take gigabytes.
    blocks = (frames[i : i + _CHUNK_FRAMES] for i in range(0, len(frames), _CHUNK_FRAMES))
    power = np.concatenate([np.mean(block.astype(np.float64) ** 2, axis=1) for block in blocks])
    return 10 * np.log10(power + 1e-10)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs in a boolean array."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _label_runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of runs of equal values."""
    if len(labels) == 0:
        return []
    cuts = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    edges = [0, *cuts.tolist(), len(labels)]
    return list(itertools.pairwise(edges))


def _median_filter(values: np.ndarray, width: int) -> np.ndarray:
    """Running median with an odd window, edges padded by repetition."""
    if width <= 1 or len(values) == 0:
        return values.copy()
    padded = np.pad(values, width // 2, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, width), axis=1)


def _speech_mask(db: np.ndarray, hop_s: float, min_silence_s: float, min_speech_s: float) -> np.ndarray:
    """Frames that are speech, from an energy track, by hysteresis thresholds.

    The noise floor is the 10th-percentile level and the speech level the 99th.
    A run must rise above the upper threshold to count and lasts while above the
    lower one, so quiet word endings stay attached to their words.
    """
    if len(db) == 0:
        return np.zeros(0, dtype=bool)
    floor, loud = np.percentile(db, [10, 99])
    span = max(loud - floor, 1e-6)
    high = floor + max(_VAD_HIGH_DB, _VAD_HIGH_FRACTION * span)
    low = floor + max(_VAD_LOW_DB, _VAD_LOW_FRACTION * span)
    mask = np.zeros(len(db), dtype=bool)
    for start, end in _runs(db > low):
        if np.any(db[start:end] > high):
            mask[start:end] = True
    _fill_gaps(mask, round(min_silence_s / hop_s))
    for start, end in _runs(mask):
        if end - start < round(min_speech_s / hop_s):
            mask[start:end] = False
    return mask


def _fill_gaps(mask: np.ndarray, max_gap: int) -> None:
    """Set to True the False runs shorter than ``max_gap`` between two True runs."""
    for start, end in _runs(~mask):
        if start > 0 and end < len(mask) and end - start < max_gap:
            mask[start:end] = True


def _pad_turns(turns: Sequence[Turn], pad_s: float, duration_s: float) -> list[Turn]:
    """Widen each turn by ``pad_s`` each side without crossing its neighbours."""
    padded = []
    for index, turn in enumerate(turns):
        # Each side may take at most half of the gap to its neighbour.
        low = (turns[index - 1].end + turn.start) / 2 if index > 0 else 0.0
        high = (turn.end + turns[index + 1].start) / 2 if index + 1 < len(turns) else duration_s
        start = max(turn.start - pad_s, min(low, turn.start))
        end = min(turn.end + pad_s, max(high, turn.end))
        padded.append(Turn(round(start, 3), round(end, 3), turn.speaker))
    return padded


def speech_regions(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    *,
    min_silence_s: float = 0.5,
    min_speech_s: float = 0.25,
    pad_s: float = 0.1,
) -> list[tuple[float, float]]:
    """A simple energy voice-activity detector: ``[(start_s, end_s), ...]``.

    The pipeline normally passes Silero-VAD or Whisper segment times to
    :func:`diarize_mono`; this serves enrollment samples, stereo labelling and
    benchmarks. Pauses shorter than ``min_silence_s`` are bridged (sentence
    breaks stay inside a turn), bursts shorter than ``min_speech_s`` dropped, and
    each region widened by ``pad_s`` for soft onsets and word tails.
    """
    audio = _check_audio(audio)
    hop = sample_rate // 100
    db = _frame_db(audio, 3 * hop, hop)
    mask = _speech_mask(db, 0.01, min_silence_s, min_speech_s)
    duration = len(audio) / sample_rate
    regions = [Turn(s * 0.01, min(e * 0.01 + 0.02, duration), "") for s, e in _runs(mask)]
    return [(t.start, t.end) for t in _pad_turns(regions, pad_s, duration)]


# --- segments and turns ---------------------------------------------------------------

# A segment no turn overlaps takes the nearest turn's speaker within this distance.
_NEAREST_TURN_S = 1.0


def _span(segment) -> tuple[float, float]:
    """(start, end) of a segment given as a tuple/list or an object with attributes."""
    if hasattr(segment, "start") and hasattr(segment, "end"):
        start, end = segment.start, segment.end
    else:
        start, end = segment[0], segment[1]
    return float(start), float(end)


def _overlap_label(span: tuple[float, float], turns: Sequence[Turn]) -> str | None:
    talk: dict[str, float] = {}
    for turn in turns:
        overlap = min(span[1], turn.end) - max(span[0], turn.start)
        if overlap > 0:
            talk[turn.speaker] = talk.get(turn.speaker, 0.0) + overlap
    return max(talk, key=lambda speaker: talk[speaker]) if talk else None


def _nearest_label(span: tuple[float, float], turns: Sequence[Turn]) -> str:
    gaps = [(max(turn.start - span[1], span[0] - turn.end), turn.speaker) for turn in turns]
    near = [g for g in gaps if g[0] <= _NEAREST_TURN_S]
    return min(near)[1] if near else UNKNOWN


def assign_segments(segments: Sequence, turns: Sequence[Turn]) -> list[str]:
    """The speaker of each segment: the one whose turns overlap it most.

    Segments are ``(start, end, ...)`` tuples or objects with ``start`` and
    ``end`` (faster-whisper segments). A segment no turn overlaps takes the
    speaker of the nearest turn within a second, else ``"Unknown"``.
    """
    labels = []
    for segment in segments:
        span = _span(segment)
        labels.append(_overlap_label(span, turns) or _nearest_label(span, turns))
    return labels


# --- stereo: one lavalier per person --------------------------------------------------

_STEREO_SMOOTH_S = 0.5
# Same-speaker pauses up to this long stay inside one turn (sentence breaks).
_MERGE_GAP_S = 0.6
# Energy detection misses soft onsets and word tails; a little padding recovers them.
_PAD_S = 0.1
# A change of speaker shorter than this is a cough or a plosive, not a turn.
_MIN_TURN_S = 0.3


def _check_pair(left, right, clinician_channel: str) -> tuple[np.ndarray, np.ndarray]:
    """(clinician, client) channels, validated."""
    left, right = _check_audio(left, "left"), _check_audio(right, "right")
    if len(left) != len(right):
        raise AudioFormatError(
            f"left and right channels differ in length: {len(left)} vs {len(right)} samples"
        )
    if clinician_channel not in ("left", "right"):
        raise ValueError(f"clinician_channel must be 'left' or 'right', got {clinician_channel!r}")
    return (left, right) if clinician_channel == "left" else (right, left)


def diarize_stereo(
    left: np.ndarray,
    right: np.ndarray,
    clinician_channel: str = "left",
    sample_rate: int = SAMPLE_RATE,
    frame_s: float = 0.02,
) -> list[Turn]:
    """Turns of "Clinician" and "Client" from a two-lavalier stereo recording.

    A frame is speech when the louder channel rises clearly above the noise
    floor; its speaker is whichever channel is louder there. Crosstalk reaches
    the other lavalier some 10 dB down, so the sign of the level difference is a
    reliable vote; it is median-smoothed over half a second so a cough on the far
    microphone does not flip a turn. Pauses under 0.6 s inside a speaker's turn
    are bridged and turns padded by 0.1 s.
    """
    clinician, client = _check_pair(left, right, clinician_channel)
    if frame_s <= 0:
        raise ValueError(f"frame_s must be > 0 seconds, got {frame_s}")
    hop = max(1, round(frame_s * sample_rate))
    db_clinician = _frame_db(clinician, 2 * hop, hop)
    db_client = _frame_db(client, 2 * hop, hop)
    speech = _speech_mask(np.maximum(db_clinician, db_client), frame_s, 0.3, 0.25)
    width = 2 * round(_STEREO_SMOOTH_S / frame_s / 2) + 1
    names = np.where(_median_filter(db_clinician - db_client, width) > 0, CLINICIAN, CLIENT)
    min_run = round(_MIN_TURN_S / frame_s)
    turns = []
    for start, end in _runs(speech):
        labels = _absorb_short_runs(names[start:end], min_run)
        for offset, stop in _label_runs(labels):
            # A frame spans two hops: the run's last frame reaches one hop further.
            tail = frame_s if start + stop == end else 0.0
            begin, finish = (start + offset) * frame_s, (start + stop) * frame_s + tail
            turns.append(Turn(begin, finish, str(labels[offset])))
    duration = len(clinician) / sample_rate
    return _pad_turns(_merge_turns(turns, _MERGE_GAP_S), _PAD_S, duration)


def _absorb_short_runs(labels: np.ndarray, min_run: int) -> np.ndarray:
    """Relabel runs shorter than ``min_run`` with the label of the run before (or after)."""
    labels = labels.copy()
    runs = _label_runs(labels)
    if len(runs) < 2:
        return labels
    for index, (start, stop) in enumerate(runs):
        if stop - start < min_run:
            neighbour = runs[index - 1][0] if index > 0 else runs[index + 1][0]
            labels[start:stop] = labels[neighbour]
    return labels


def _merge_turns(turns: Sequence[Turn], max_gap_s: float) -> list[Turn]:
    """Join consecutive turns of the same speaker separated by < ``max_gap_s``."""
    merged: list[Turn] = []
    for turn in sorted(turns, key=lambda t: t.start):
        last = merged[-1] if merged else None
        if last and last.speaker == turn.speaker and turn.start - last.end < max_gap_s:
            merged[-1] = Turn(last.start, max(last.end, turn.end), last.speaker)
        else:
            merged.append(turn)
    return merged


def label_stereo(
    left: np.ndarray,
    right: np.ndarray,
    segments: Sequence,
    clinician_channel: str = "left",
    sample_rate: int = SAMPLE_RATE,
) -> list[str]:
    """"Clinician" or "Client" for each segment of a two-lavalier recording.

    A segment takes the speaker of the stereo turns (:func:`diarize_stereo`) it
    overlaps most, so a segment spanning a change of speaker goes to whoever
    spoke longer in it. A segment too quiet to hold any turn is decided by its
    overall channel levels, or is "Unknown" when they are within 3 dB (such a
    segment is usually noise). Use :func:`diarize_stereo` for sub-segment turns.
    """
    clinician, client = _check_pair(left, right, clinician_channel)
    turns = diarize_stereo(clinician, client, "left", sample_rate)
    labels = []
    for segment in segments:
        span = _span(segment)
        labels.append(_overlap_label(span, turns) or _louder_channel(clinician, client, span, sample_rate))
    return labels


# Crosstalk arrives ~10 dB down; channels closer than this carry no clear speaker.
_STEREO_MIN_DB = 3.0


def _louder_channel(clinician, client, span, sample_rate) -> str:
    start, end = (max(0, round(t * sample_rate)) for t in span)
    a, b = clinician[start:end].astype(np.float64), client[start:end].astype(np.float64)
    difference = 10 * np.log10((np.sum(a**2) + 1e-10) / (np.sum(b**2) + 1e-10))
    if abs(difference) < _STEREO_MIN_DB:
        return UNKNOWN
    return CLINICIAN if difference > 0 else CLIENT


# --- mono: windows, embeddings, enrollment ------------------------------------------------

_WINDOW_S = 1.5
_WINDOW_HOP_S = 0.75
_MIN_REGION_S = 0.1  # shorter regions carry no usable voice and are skipped
EMBEDDING_SIZE = voice_model.EMBEDDING_SIZE
_MIN_ENROLL_SPEECH_S = 5.0
# Below this many windows (about 15 s of speech) any two halves of one voice differ
# too much to tell a second voice: JFK's 11 s split 0.74-0.77 alike.
_TWO_VOICE_MIN_WINDOWS = 20


def _clean_regions(regions: Sequence, duration_s: float) -> list[tuple[float, float]]:
    """Regions clipped to the recording, sorted, overlaps merged, slivers dropped."""
    spans = sorted((max(0.0, s), min(duration_s, e)) for s, e in map(_span, regions))
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        elif end > start:
            merged.append((start, end))
    return [(s, e) for s, e in merged if e - s >= _MIN_REGION_S]


def _region_windows(start: float, end: float) -> list[tuple[float, float]]:
    """Windows of 1.5 s every 0.75 s; the last aligned to the region's end."""
    if end - start <= _WINDOW_S:
        return [(start, end)]
    count = int(np.ceil((end - start - _WINDOW_S) / _WINDOW_HOP_S)) + 1
    firsts = [min(start + i * _WINDOW_HOP_S, end - _WINDOW_S) for i in range(count)]
    return [(f, min(f + _WINDOW_S, end)) for f in firsts]


def embed_windows(
    audio: np.ndarray, regions: Sequence, sample_rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Voice embeddings of ~1.5 s windows (hop 0.75 s) inside ``regions``.

    Returns ``(embeddings, windows)``: one row of ``EMBEDDING_SIZE`` values per
    window (CAM++, length 1) and each window's ``(start_s, end_s)``. A region
    shorter than a window is one window. Raises
    :class:`~appliance.errors.SpeakerModelError` when the model cannot be used.
    """
    audio = _check_audio(audio)
    _check_rate(sample_rate)
    windows = [window for start, end in _clean_regions(regions, len(audio) / sample_rate)
               for window in _region_windows(start, end)]
    if not windows:
        return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32), []
    return voice_model.load().embed(audio, windows), windows


def enroll(audio: np.ndarray, sample_rate: int = SAMPLE_RATE,
           regions: Sequence[tuple[float, float]] | None = None) -> np.ndarray:
    """A voice profile (``EMBEDDING_SIZE`` values, length 1) from a sample of one person.

    The sample should hold at least 5 s of that person speaking alone, ideally
    30 s or more, recorded with the session microphone. ``regions`` are its
    speech ``(start_s, end_s)`` (the device passes Silero VAD's); without them
    the energy detector (:func:`speech_regions`) finds them. Raises
    :class:`~appliance.errors.AudioFormatError` for a sample with too little
    speech or with two voices in it.
    """
    audio = _check_audio(audio)
    _check_rate(sample_rate)
    regions = list(regions) if regions is not None else speech_regions(audio, sample_rate)
    speech_s = sum(e - s for s, e in regions)
    if speech_s < _MIN_ENROLL_SPEECH_S:
        raise AudioFormatError(
            f"the enrollment sample holds {speech_s:.1f} s of speech; "
            f"record at least {_MIN_ENROLL_SPEECH_S:.0f} s of one person speaking alone"
        )
    embeddings, _ = embed_windows(audio, regions, sample_rate)
    halves = cluster.kmeans(embeddings, 2)
    if (len(halves) >= _TWO_VOICE_MIN_WINDOWS and len(np.unique(halves)) == 2
            and min(np.bincount(halves)) >= 0.25 * len(halves)):
        means = cluster.centroids(embeddings, halves)
        # The automatic count's rule: halves less alike than one person's are two voices.
        if float(means[0] @ means[1]) < cluster.ONE_VOICE_SIMILARITY:
            raise AudioFormatError(
                "the enrollment sample seems to hold two voices; record one person speaking alone")
    return voice_model.unit(embeddings.mean(axis=0)).astype(np.float64)


# --- mono: from window labels to turns ------------------------------------------------------


def _region_pieces(region, windows, labels) -> list[tuple[float, float, int]]:
    """Split one region between its windows' labels at midpoints of window centres."""
    start, end = region
    centres = [(a + b) / 2 for a, b in windows]
    pieces: list[tuple[float, float, int]] = []
    for index, label in enumerate(labels):
        left = start if index == 0 else (centres[index - 1] + centres[index]) / 2
        right = end if index == len(labels) - 1 else (centres[index] + centres[index + 1]) / 2
        if pieces and pieces[-1][2] == label:
            pieces[-1] = (pieces[-1][0], right, int(label))
        else:
            pieces.append((left, right, int(label)))
    return pieces


def _by_region(regions, windows) -> list[tuple[tuple[float, float], list[int]]]:
    """Each region with the indices of its windows (both sorted by time), empty ones left out."""
    grouped, cursor = [], 0
    for region in regions:
        mine = []
        while cursor < len(windows) and windows[cursor][0] < region[1]:
            mine.append(cursor)
            cursor += 1
        if mine:
            grouped.append((region, mine))
    return grouped


def _resegmented_pieces(regions, windows, similarity: np.ndarray) -> list[tuple[float, float, int]]:
    """(start, end, cluster) pieces covering every region that has windows.

    Inside each region the windows' speakers are re-decided together
    (:func:`~appliance.transcription.voice.cluster.resegment`), then the region is
    split between them.
    """
    pieces = []
    for region, mine in _by_region(regions, windows):
        labels = cluster.resegment(similarity[mine])
        pieces += _region_pieces(region, [windows[i] for i in mine], labels)
    return pieces


# --- mono: naming the clusters -------------------------------------------------------------


def _names(order: list[int], named: Mapping[int, str], k: int) -> dict[int, str]:
    """Speaker names: enrolled voices where they matched, else "Speaker N" by first appearance.

    In a two-person session where one voice is named, the other is "Client".
    """
    others = [c for c in order if c not in named]
    if len(named) == 1 and k == 2:
        return {**named, **dict.fromkeys(others, CLIENT)}
    return {**named, **{c: f"Speaker {i}" for i, c in enumerate(others, start=1)}}


def diarize_mono(
    audio: np.ndarray,
    speech_regions: Sequence,
    num_speakers: int | str = 2,
    voices: Mapping[str, np.ndarray] | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> list[Turn]:
    """Turns of a one-microphone recording, covering the given speech regions.

    Windows of 1.5 s (hop 0.75 s) inside each region are embedded
    (:func:`embed_windows`) and labelled by :func:`cluster_embeddings`, which
    says how speakers are counted and named.
    """
    audio = _check_audio(audio)
    _check_rate(sample_rate)
    regions = _clean_regions(speech_regions, len(audio) / sample_rate)
    embeddings, windows = embed_windows(audio, regions, sample_rate)
    return cluster_embeddings(embeddings, windows, regions, num_speakers, voices)


def cluster_embeddings(
    embeddings: np.ndarray,
    windows: Sequence,
    speech_regions: Sequence,
    num_speakers: int | str = 2,
    voices: Mapping[str, np.ndarray] | None = None,
) -> list[Turn]:
    """Turns from window embeddings gathered earlier, e.g. a chunk of audio at a time.

    ``embeddings`` and ``windows`` are what :func:`embed_windows` returned
    (concatenated over chunks, times from the recording start); the turns cover
    ``speech_regions``. ``num_speakers`` is a count, or ``"auto"`` to estimate
    1 to 4 (:func:`~appliance.transcription.voice.cluster.estimate_count`).
    Steps: k-means on the unit embeddings
    (:mod:`appliance.transcription.voice.cluster`); inside each region the
    windows' speakers re-decided together (Viterbi over their similarity to
    each speaker's mean voice, a cost per change); each region split between
    its windows' labels.
    Speakers are "Speaker 1", "Speaker 2", ... by first appearance, except that
    a cluster an enrolled voice in ``voices`` (``{name: profile}`` from
    :func:`enroll`) clearly matches takes that name, and then in a two-person
    session the other is "Client".
    """
    embeddings = np.asarray(embeddings, dtype=np.float64).reshape(-1, EMBEDDING_SIZE)
    if len(embeddings) != len(windows):
        raise ValueError(f"{len(embeddings)} embeddings for {len(windows)} windows; they must pair up")
    if not len(windows):
        return []
    order = sorted(range(len(windows)), key=lambda i: _span(windows[i]))
    windows = [_span(windows[i]) for i in order]
    points = voice_model.unit(embeddings[order])
    k = _count(points, num_speakers)
    labels = cluster.kmeans(points, k)
    means = cluster.centroids(points, labels)
    pieces = _resegmented_pieces(_clean_regions(speech_regions, np.inf), windows, points @ means.T)
    k = len(means)
    named = cluster.match_voices(means, _check_voices(voices)) if k >= 2 else {}
    names = _names(list(dict.fromkeys(label for _, _, label in pieces)), named, k)
    return [Turn(round(s, 3), round(e, 3), names[label]) for s, e, label in pieces]


def _count(points: np.ndarray, num_speakers: int | str) -> int:
    if num_speakers == "auto":
        count = cluster.estimate_count(points)
        log.info("speaker count estimated: %d", count)
        return count
    if not isinstance(num_speakers, int) or num_speakers < 1:
        raise ValueError(f"num_speakers must be a count of at least 1 or 'auto', got {num_speakers!r}")
    return num_speakers


def _check_voices(voices: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    checked = {}
    for name, given in (voices or {}).items():
        voice = np.asarray(given, dtype=np.float64)
        if voice.shape != (EMBEDDING_SIZE,):
            raise ValueError(
                f"voice profile {name!r} has {voice.size} values, not {EMBEDDING_SIZE}; "
                "enroll that voice again with this version")
        checked[name] = voice
    return checked
