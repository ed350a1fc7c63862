"""The MFCC labelling as of commit 810bd1d, kept only to print the bench's before column.

Mono speaker labelling before CAM++: per-window MFCC means and spreads and
median pitch, z-scored over the recording, clustered by average-linkage AHC
refined by spherical k-means, with the clinician named from one enrolled voice.
Everything the new module still has unchanged (turns, regions, windows, the
smoothing of window labels) is imported from
:mod:`appliance.transcription.speakers`, so only the old method lives here.
Not shipped; used by ``tests/bench/bench_speakers.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from appliance.errors import AudioFormatError
from appliance.transcription.speakers import (
    CLIENT,
    CLINICIAN,
    SAMPLE_RATE,
    Turn,
    _check_audio,
    _check_rate,
    _clean_regions,
    _region_windows,
    _by_region,
    _region_pieces,
    speech_regions,
)
from appliance.transcription.voice.model import unit as _unit

log = logging.getLogger(__name__)

__all__ = ["EMBEDDING_SIZE", "diarize_mono", "embed_windows", "enroll"]
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


# --- mono: embeddings and enrollment ---------------------------------------------------

_ACTIVE_DB = 30.0  # frames this far below a window's loudest are pauses, not voice
EMBEDDING_SIZE = 2 * (_N_MFCC - 1) + 1


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


def enroll(audio: np.ndarray, regions: Sequence[tuple[float, float]] | None = None) -> np.ndarray:
    """A voice profile (``EMBEDDING_SIZE`` values) from a clean 16 kHz sample of the clinician.

    ``regions`` are its speech ``(start_s, end_s)``; without them the energy
    detector finds them. Pass the result to :func:`diarize_mono` as ``clinician_voice``.
    """
    audio = _check_audio(audio)
    embeddings, _ = embed_windows(audio, speech_regions(audio) if regions is None else regions)
    if not len(embeddings):
        raise AudioFormatError("the enrollment sample holds no speech")
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


def diarize_mono(audio: np.ndarray, regions: Sequence, num_speakers: int = 2,
                 clinician_voice: np.ndarray | None = None) -> list[Turn]:
    """Turns of a one-microphone recording (16 kHz), covering the given speech regions.

    Windows of 1.5 s (hop 0.75 s) inside each region are embedded, standardised
    over the recording and clustered into ``num_speakers``; a 3-window mode
    filter inside each region, then each region split between its windows'
    labels. Speakers are "Speaker 1", "Speaker 2", ... by first appearance; with
    ``clinician_voice`` (from :func:`enroll`) the cluster it clearly matches is
    "Clinician" and, with two speakers, the other "Client".
    """
    if num_speakers < 1:
        raise ValueError(f"num_speakers must be at least 1, got {num_speakers}")
    audio = _check_audio(audio)
    kept = _clean_regions(regions, len(audio) / SAMPLE_RATE)
    embeddings, windows = embed_windows(audio, kept)  # in time order, as regions are
    if not windows:
        return []
    points, mean, scale = _standardise(embeddings)
    labels = _cluster(points, np.array([e - s for s, e in windows]), num_speakers)
    pieces = _smoothed_pieces(kept, windows, labels)
    k = int(labels.max()) + 1
    clinician = None
    if clinician_voice is not None and k >= 2 and all(np.any(labels == j) for j in range(k)):
        voice = np.asarray(clinician_voice, dtype=np.float64)
        if voice.shape != (EMBEDDING_SIZE,):
            raise ValueError(f"clinician_voice must have {EMBEDDING_SIZE} values, got {voice.shape}")
        clinician = _clinician_cluster(points, labels, k, voice, mean, scale)
    names = _names(list(dict.fromkeys(label for _, _, label in pieces)), clinician, num_speakers)
    return [Turn(round(s, 3), round(e, 3), names[label]) for s, e, label in pieces]


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


def _smoothed_pieces(regions, windows, labels) -> list[tuple[float, float, int]]:
    """(start, end, cluster) pieces: a 3-window majority filter inside each region."""
    pieces = []
    for region, mine in _by_region(regions, windows):
        smoothed = _mode_filter(labels[mine], _SMOOTH_WINDOWS)
        pieces += _region_pieces(region, [windows[i] for i in mine], smoothed)
    return pieces
