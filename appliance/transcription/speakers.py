"""Speaker labelling: who spoke when.

Stereo recordings (a lavalier per person) are labelled by channel energy; mono
recordings by clustering voice embeddings, with the clinician named only when an
enrolled voice sample clearly matches one cluster. Everything is numpy, runs on a
Raspberry Pi and downloads nothing.

How the method was chosen (DER %, collar 0.25 s, from ``tests/bench/bench_speakers.py``
and a development set of 7 extra espeak-ng dialogues with same-gender voice pairs;
three kinds of speech regions: reference / own energy VAD / reference regions
bridged over gaps < 2 s and padded 0.4 s, as Silero VAD in faster-whisper gives):

- Stereo, frame energy difference with 0.5 s median smoothing: sleep 0.4, quiet 0.5.
- Mono, mean DER over the 11 dialogues (three region kinds) / mean over the six
  AMI clips with two or more speakers (reference regions):

  =====================================================  ==================  =====
  variant                                                dialogues           AMI
  =====================================================  ==================  =====
  k-means++ (10 restarts), MFCC mean+std + 3 pitch stats 7.6 / 5.2 / 12.6    35
  spherical k-means, same features                       2.6 / 3.0 / 12.3    41
  AHC (average linkage, cosine), same features           2.4 / 1.6 / 11.6    39
  AHC + spherical k-means refinement, same features      1.8 / 1.7 / 10.3    37
  AHC + refinement, MFCC mean+std + median pitch (kept)  1.8 / 1.6 / 9.9     35
  ... MFCC mean+std only                                 1.9 / 1.8 / 9.5     33
  ... MFCC mean + pitch (no spreads)                     4.6 / 10 / 20       33
  ... + delta-MFCC spreads                               2.7 / 1.9 / 12      39
  ... PCA to 3/5/10 dims before clustering               worse or equal
  ... windows 1.0/0.5 s, 2.0/1.0 s, 3.0/1.0 s            8.6/4.4/21 .. 2.3/2.4/10
  ... median smoothing over 5 windows instead of 3       1.5 / 1.2 / 10.6    37
  ... split regions at pauses >= 0.5 s first             1.9 / 1.8 / 9.4     32
  =====================================================  ==================  =====

  The kept variant stays within a point of the best on every column; pitch is
  kept because it does not depend on the microphone, which matters when an
  enrollment sample is recorded apart from the session. As implemented (short
  windows left out of the fit, every window then given its nearest centroid)
  it scores 2.4 / 1.6 / 9.9 and 31 on AMI; the test dialogues sleep and quiet
  score 0.0 with reference regions and 0.2 / 0.0 with the energy VAD. With
  coarse regions the remaining error is mostly false alarm on the padding, not
  confusion: labelling every window from the reference scores 6.7 there.
- Every variant scored 0 confusion on the mixed-gender pairs; the errors are on
  the same-gender pairs, worst on two close male espeak voices (13 / 8 / 21).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from appliance.errors import AudioFormatError

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


# --- mono: frame features --------------------------------------------------------------

_HOP_S = 0.01
_WIN = 400  # 25 ms analysis window at 16 kHz
_N_FFT = 512
_N_MELS = 40
_N_MFCC = 20
_PITCH_MIN_HZ, _PITCH_MAX_HZ = 60.0, 400.0
_VOICING = 0.45  # normalised autocorrelation peak above which a frame is voiced
_FEATURE_CHUNK = 2000  # 20 s of frames at a time keeps peak memory near 100 MB


@dataclass(frozen=True)
class _Frames:
    """Per-frame (10 ms) features of a recording."""

    mfcc: np.ndarray  # (frames, _N_MFCC); column 0 is log energy
    db: np.ndarray  # (frames,) level in dB
    pitch: np.ndarray  # (frames,) log2 F0, NaN where unvoiced


def _mel_filters() -> np.ndarray:
    """Triangular mel filterbank 60-7600 Hz, shape (_N_MELS, _N_FFT // 2 + 1)."""
    def to_mel(hz):
        return 2595 * np.log10(1 + hz / 700)

    edges = 700 * (10 ** (np.linspace(to_mel(60.0), to_mel(7600.0), _N_MELS + 2) / 2595) - 1)
    bins = np.fft.rfftfreq(_N_FFT, 1 / SAMPLE_RATE)
    rising = (bins[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    falling = (edges[2:, None] - bins[None, :]) / (edges[2:, None] - edges[1:-1, None])
    return np.maximum(0, np.minimum(rising, falling))


def _dct_matrix() -> np.ndarray:
    n = np.arange(_N_MELS)
    k = np.arange(_N_MFCC)[:, None]
    return np.cos(np.pi * k * (2 * n + 1) / (2 * _N_MELS)) * np.sqrt(2 / _N_MELS)


def _frame_features(audio: np.ndarray) -> _Frames:
    hop = round(_HOP_S * SAMPLE_RATE)
    total = max(1, len(audio) // hop)
    filters, dct = _mel_filters(), _dct_matrix()
    parts = [
        _chunk_features(audio, hop, first, min(total, first + _FEATURE_CHUNK), filters, dct)
        for first in range(0, total, _FEATURE_CHUNK)
    ]
    return _Frames(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _chunk_features(audio, hop, first, last, filters, dct):
    size = 4 * hop  # 40 ms, so the pitch search sees two periods of a low voice
    needed = (last - first - 1) * hop + size
    piece = audio[first * hop : first * hop + needed].astype(np.float64)
    piece = np.pad(piece, (0, needed - len(piece)))
    frames = np.lib.stride_tricks.sliding_window_view(piece, size)[::hop]
    frames = frames - frames.mean(axis=1, keepdims=True)
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    short = frames[:, :_WIN]
    emphasised = short - 0.97 * np.concatenate([short[:, :1], short[:, :-1]], axis=1)
    spectrum = np.abs(np.fft.rfft(emphasised * np.hamming(_WIN), _N_FFT)) ** 2
    mfcc = np.log(spectrum @ filters.T + 1e-8) @ dct.T
    return mfcc, db, _pitch(frames)


def _pitch(frames: np.ndarray) -> np.ndarray:
    """log2 F0 per frame by normalised autocorrelation; NaN where unvoiced."""
    size = frames.shape[1]
    n_fft = 1 << int(np.ceil(np.log2(2 * size)))
    window = np.hanning(size)
    acf = np.fft.irfft(np.abs(np.fft.rfft(frames * window, n_fft)) ** 2, n_fft)[:, :size]
    # Divide out the window's own autocorrelation so long lags are not penalised.
    window_acf = np.correlate(window, window, "full")[size - 1 :]
    acf = acf / np.maximum(window_acf, 1e-3) / np.maximum(acf[:, :1] / window_acf[0], 1e-12)
    low, high = int(SAMPLE_RATE / _PITCH_MAX_HZ), int(SAMPLE_RATE / _PITCH_MIN_HZ)
    lag = low + np.argmax(acf[:, low:high], axis=1)
    peak = acf[np.arange(len(acf)), lag]
    return np.where(peak > _VOICING, np.log2(SAMPLE_RATE / lag), np.nan)


# --- mono: windows, embeddings, enrollment ------------------------------------------------

_WINDOW_S = 1.5
_WINDOW_HOP_S = 0.75
_MIN_REGION_S = 0.1  # shorter regions carry no usable voice and are skipped
_ACTIVE_DB = 30.0  # frames this far below a window's loudest are pauses, not voice
EMBEDDING_SIZE = 2 * (_N_MFCC - 1) + 1
_MIN_ENROLL_SPEECH_S = 5.0


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


def _pool(frames: _Frames, window: tuple[float, float], offset_s: float) -> np.ndarray:
    """One raw embedding: MFCC means and spreads and median pitch of a window's voice.

    ``frames`` start at ``offset_s`` into the recording.
    """
    first = max(0, round((window[0] - offset_s) / _HOP_S))
    last = min(len(frames.db), max(round((window[1] - offset_s) / _HOP_S), first + 1))
    db = frames.db[first:last]
    active = db > db.max() - _ACTIVE_DB
    mfcc = frames.mfcc[first:last][active, 1:]  # c0 is loudness: distance to the mic, not voice
    pitch = frames.pitch[first:last][active]
    voiced = pitch[~np.isnan(pitch)]
    f0 = np.median(voiced) if len(voiced) >= 3 else np.nan
    return np.concatenate([mfcc.mean(axis=0), mfcc.std(axis=0), [f0]])


def embed_windows(
    audio: np.ndarray, regions: Sequence, sample_rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Raw voice embeddings of ~1.5 s windows (hop 0.75 s) inside ``regions``.

    Returns ``(embeddings, windows)``: one row of ``EMBEDDING_SIZE`` values per
    window (19 MFCC means, 19 MFCC spreads, median log2 pitch; NaN pitch where a
    window has no voiced frame) and each window's ``(start_s, end_s)``. A region
    shorter than a window is one window. Rows are not standardised:
    :func:`diarize_mono` scales them per recording.
    """
    audio = _check_audio(audio)
    _check_rate(sample_rate)
    rows, windows = [], []
    hop = round(_HOP_S * SAMPLE_RATE)
    for start, end in _clean_regions(regions, len(audio) / sample_rate):
        # Features of this region only: sessions are long and mostly not speech.
        first, last = int(start / _HOP_S), int(np.ceil(end / _HOP_S))
        frames = _frame_features(audio[first * hop : (last + 3) * hop])
        for window in _region_windows(start, end):
            rows.append(_pool(frames, window, first * _HOP_S))
            windows.append(window)
    if not windows:
        return np.zeros((0, EMBEDDING_SIZE)), []
    return np.stack(rows), windows


def enroll(audio: np.ndarray, sample_rate: int = SAMPLE_RATE,
           regions: Sequence[tuple[float, float]] | None = None) -> np.ndarray:
    """A voice profile (``EMBEDDING_SIZE`` values) from a clean sample of the clinician.

    The sample should hold at least 5 s of the clinician speaking alone,
    ideally 30 s or more, recorded with the session microphone. ``regions``
    are its speech ``(start_s, end_s)`` (the device passes Silero VAD's);
    without them the energy detector (:func:`speech_regions`) finds them.
    Pass the result to :func:`diarize_mono` as ``clinician_voice``.
    """
    audio = _check_audio(audio)
    _check_rate(sample_rate)
    regions = list(regions) if regions is not None else speech_regions(audio, sample_rate)
    speech_s = sum(e - s for s, e in regions)
    if speech_s < _MIN_ENROLL_SPEECH_S:
        raise AudioFormatError(
            f"the enrollment sample holds {speech_s:.1f} s of speech; "
            f"record at least {_MIN_ENROLL_SPEECH_S:.0f} s of the clinician speaking"
        )
    embeddings, _ = embed_windows(audio, regions, sample_rate)
    return _column_stat(embeddings, np.mean)


# --- mono: clustering -------------------------------------------------------------------

# Windows shorter than this (short regions) are labelled by their nearest cluster
# rather than allowed to steer the clustering with their noisy statistics.
_FULL_WINDOW_S = 1.0
# Average linkage needs n^2 memory: cluster at most this many windows (about 40 min
# of speech, 36 MB), spread evenly, and give the rest their nearest cluster.
_MAX_CLUSTER_WINDOWS = 3000
_REFINE_ITERATIONS = 10


def _standardise(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-scores per column (NaN -> column median); also returns (mean, scale)."""
    filled = embeddings.astype(np.float64, copy=True)
    median = np.nan_to_num(_column_stat(filled, np.median))
    rows, cols = np.nonzero(np.isnan(filled))
    filled[rows, cols] = median[cols]
    mean, scale = filled.mean(axis=0), filled.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    return (filled - mean) / scale, mean, scale


def _column_stat(values: np.ndarray, stat) -> np.ndarray:
    """``stat`` of each column over its non-NaN entries; NaN for an all-NaN column.

    (numpy's nanmean/nanmedian warn on all-NaN columns, e.g. pitch of whispering.)
    """
    result = np.full(values.shape[1], np.nan)
    for column in range(values.shape[1]):
        present = values[~np.isnan(values[:, column]), column]
        if len(present):
            result[column] = stat(present)
    return result


def _unit(points: np.ndarray) -> np.ndarray:
    return points / np.maximum(np.linalg.norm(points, axis=-1, keepdims=True), 1e-12)


def _ahc(points: np.ndarray, k: int) -> np.ndarray:
    """Average-linkage agglomerative clustering on cosine distance, cut at ``k``.

    The nearest-neighbour-chain algorithm builds the whole dendrogram in O(n^2)
    time and memory; the ``n - k`` lowest merges are then replayed.
    """
    n = len(points)
    unit = _unit(points)
    distance = (1.0 - unit @ unit.T).astype(np.float32)
    np.fill_diagonal(distance, np.inf)
    merges = _nn_chain(distance, np.ones(n))
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for _, a, b in sorted(merges)[: n - k]:
        parent[root(a)] = root(b)
    return np.unique([root(i) for i in range(n)], return_inverse=True)[1]


def _nn_chain(distance: np.ndarray, size: np.ndarray) -> list[tuple[float, int, int]]:
    """All merges (height, a, b) of average linkage; ``distance`` is overwritten."""
    merges: list[tuple[float, int, int]] = []
    chain: list[int] = []
    alive = np.ones(len(size), dtype=bool)
    while len(merges) < len(size) - 1:
        if not chain:
            chain.append(int(np.flatnonzero(alive)[0]))
        a = chain[-1]
        b = int(np.argmin(distance[a]))
        if len(chain) > 1 and distance[a, chain[-2]] <= distance[a, b]:
            b = chain[-2]  # ties go back down the chain, or it could cycle
        if len(chain) > 1 and b == chain[-2]:
            del chain[-2:]
            merges.append((float(distance[a, b]), a, b))
            merged = (size[a] * distance[a] + size[b] * distance[b]) / (size[a] + size[b])
            distance[b], distance[:, b] = merged, merged
            distance[b, b] = np.inf
            distance[a], distance[:, a] = np.inf, np.inf
            size[b] += size[a]
            alive[a] = False
        else:
            chain.append(b)
    return merges


def _refine(points: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Spherical k-means from the AHC partition: each window to its nearest centroid.

    Average linkage can leave a window on the wrong side of a chained merge; a
    few reassignment rounds fix that. A round that would empty a cluster is undone.
    """
    unit = _unit(points)
    for _ in range(_REFINE_ITERATIONS):
        centroids = _unit(np.stack([unit[labels == j].mean(axis=0) for j in range(k)]))
        updated = np.argmax(unit @ centroids.T, axis=1)
        if len(np.unique(updated)) < k or np.array_equal(updated, labels):
            break
        labels = updated
    return labels


def _cluster(points: np.ndarray, durations: np.ndarray, k: int) -> np.ndarray:
    """A cluster index per window, ``k`` clusters (fewer if there are fewer windows)."""
    k = min(k, len(points))
    if k <= 1:
        return np.zeros(len(points), dtype=int)
    fit = np.flatnonzero(durations >= _FULL_WINDOW_S)
    if len(fit) < 2 * k:
        fit = np.arange(len(points))
    if len(fit) > _MAX_CLUSTER_WINDOWS:
        fit = fit[np.linspace(0, len(fit) - 1, _MAX_CLUSTER_WINDOWS).astype(int)]
    labels = _refine(points[fit], _ahc(points[fit], k), k)
    unit = _unit(points[fit])
    centroids = _unit(np.stack([unit[labels == j].mean(axis=0) for j in range(k)]))
    return np.argmax(_unit(points) @ centroids.T, axis=1)


# --- mono: from window labels to turns ------------------------------------------------------

_SMOOTH_WINDOWS = 3


def _mode_filter(labels: np.ndarray, width: int) -> np.ndarray:
    """Most common label in a centred window (ties keep the current label)."""
    if width <= 1 or len(labels) < 3:
        return labels.copy()
    half = width // 2
    smoothed = labels.copy()
    for index in range(len(labels)):
        values, counts = np.unique(labels[max(0, index - half) : index + half + 1], return_counts=True)
        if counts.max() > counts[values == labels[index]][0]:
            smoothed[index] = values[counts.argmax()]
    return smoothed


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


# --- mono: naming the clusters -------------------------------------------------------------

# The enrolled voice names a cluster only when its cosine similarity to that
# cluster's centroid (in the recording's standardised space) is at least
# _ENROLL_MIN_SIMILARITY, beats the next cluster by _ENROLL_MIN_MARGIN, and it lies
# within _ENROLL_MAX_RADIUS times the cluster's 90th-percentile radius. Measured:
# the right voice (recorded on another microphone) scored 0.55-0.85 at 0.3-0.8
# radii on 6 of 7 dialogues and 0.35 at 1.03 on the hardest male-male pair (which
# then stays "Speaker 1/2"); a stranger (JFK) scored below 0.2 at 1.6-2.6 radii.
_ENROLL_MIN_SIMILARITY = 0.5
_ENROLL_MIN_MARGIN = 0.25
_ENROLL_MAX_RADIUS = 1.0


def _clinician_cluster(points, labels, k, voice, mean, scale) -> int | None:
    """The cluster the enrolled voice clearly matches, or None when unsure."""
    probe = (np.where(np.isnan(voice), mean, voice) - mean) / scale
    centroids = np.stack([points[labels == j].mean(axis=0) for j in range(k)])
    similarity = _unit(centroids) @ _unit(probe)
    order = np.argsort(similarity)[::-1]
    best = int(order[0])
    members = points[labels == best]
    radius = np.percentile(np.linalg.norm(members - centroids[best], axis=1), 90)
    reach = np.linalg.norm(probe - centroids[best]) / max(radius, 1e-9)
    margin = similarity[best] - similarity[order[1]]
    confident = (
        similarity[best] >= _ENROLL_MIN_SIMILARITY
        and margin >= _ENROLL_MIN_MARGIN
        and reach <= _ENROLL_MAX_RADIUS
    )
    log.debug(
        "clinician voice: similarity %.2f, margin %.2f, %.2f radii from cluster %d: %s",
        similarity[best], margin, reach, best, "named" if confident else "not named",
    )
    return best if confident else None


def _names(order: list[int], clinician: int | None, k: int) -> dict[int, str]:
    """Speaker names by first appearance; the clinician's cluster named if known.

    The other speaker is "Client" only in a two-person session.
    """
    if clinician is None:
        return {cluster: f"Speaker {i}" for i, cluster in enumerate(order, start=1)}
    others = [c for c in order if c != clinician]
    names = {clinician: CLINICIAN}
    if k == 2:
        names.update(dict.fromkeys(others, CLIENT))
    else:
        names.update({c: f"Speaker {i}" for i, c in enumerate(others, start=1)})
    return names


def diarize_mono(
    audio: np.ndarray,
    speech_regions: Sequence,
    num_speakers: int = 2,
    clinician_voice: np.ndarray | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> list[Turn]:
    """Turns of a one-microphone recording, covering the given speech regions.

    Windows of 1.5 s (hop 0.75 s) inside each region are embedded
    (:func:`embed_windows`) and labelled by :func:`cluster_embeddings`.

    Speakers are "Speaker 1", "Speaker 2", ... by first appearance. With
    ``clinician_voice`` (from :func:`enroll`) the cluster that voice clearly
    matches is "Clinician" and, with two speakers, the other "Client"; when the
    match is not clear nobody is named.
    """
    audio = _check_audio(audio)
    _check_rate(sample_rate)
    regions = _clean_regions(speech_regions, len(audio) / sample_rate)
    embeddings, windows = embed_windows(audio, regions, sample_rate)
    return cluster_embeddings(embeddings, windows, regions, num_speakers, clinician_voice)


def cluster_embeddings(
    embeddings: np.ndarray,
    windows: Sequence,
    speech_regions: Sequence,
    num_speakers: int = 2,
    clinician_voice: np.ndarray | None = None,
) -> list[Turn]:
    """Turns from window embeddings gathered earlier, e.g. a chunk of audio at a time.

    ``embeddings`` and ``windows`` are what :func:`embed_windows` returned
    (concatenated over chunks, times from the recording start); the turns cover
    ``speech_regions``. Steps: standardise over the recording; cluster into
    ``num_speakers`` (average-linkage AHC on cosine distance, refined by
    spherical k-means); a 3-window mode filter inside each region; each region
    split between its windows' labels; names as in :func:`diarize_mono`.
    """
    if num_speakers < 1:
        raise ValueError(f"num_speakers must be at least 1, got {num_speakers}")
    embeddings = np.asarray(embeddings, dtype=np.float64).reshape(-1, EMBEDDING_SIZE)
    if len(embeddings) != len(windows):
        raise ValueError(f"{len(embeddings)} embeddings for {len(windows)} windows; they must pair up")
    if not len(windows):
        return []
    order = sorted(range(len(windows)), key=lambda i: _span(windows[i]))
    windows = [_span(windows[i]) for i in order]
    points, mean, scale = _standardise(embeddings[order])
    durations = np.array([e - s for s, e in windows])
    labels = _cluster(points, durations, num_speakers)
    pieces = _smoothed_pieces(_clean_regions(speech_regions, np.inf), windows, labels)
    k = int(labels.max()) + 1
    clinician = None
    if clinician_voice is not None:
        voice = _check_voice(clinician_voice)
        if k >= 2 and all(np.any(labels == j) for j in range(k)):
            clinician = _clinician_cluster(points, labels, k, voice, mean, scale)
    names = _names(list(dict.fromkeys(label for _, _, label in pieces)), clinician, num_speakers)
    return [Turn(round(s, 3), round(e, 3), names[label]) for s, e, label in pieces]


def _check_voice(voice) -> np.ndarray:
    voice = np.asarray(voice, dtype=np.float64)
    if voice.shape != (EMBEDDING_SIZE,):
        raise ValueError(
            f"clinician_voice must have {EMBEDDING_SIZE} values, got shape {voice.shape}; "
            "enroll the clinician again with this version"
        )
    return voice


def _smoothed_pieces(regions, windows, labels) -> list[tuple[float, float, int]]:
    """(start, end, cluster) pieces covering every region that has windows."""
    pieces, cursor = [], 0
    for region in regions:
        mine = []
        while cursor < len(windows) and windows[cursor][0] < region[1]:
            mine.append(cursor)
            cursor += 1
        if mine:
            smoothed = _mode_filter(labels[mine], _SMOOTH_WINDOWS)
            pieces += _region_pieces(region, [windows[i] for i in mine], smoothed)
    return pieces
