"""Kaldi-compatible log mel filterbank features, in numpy, as CAM++ was trained on.

The same computation as Kaldi's ``compute-fbank-feats`` (and torchaudio's
``compliance.kaldi.fbank``) with the options 3D-Speaker uses: 16 kHz, 25 ms
frames every 10 ms, no dither, DC offset removed, pre-emphasis 0.97, Povey
window, 512-point FFT, power spectrum, 80 mel bins from 20 Hz to 8 kHz, natural
log. Each window's features are then centred (mean over time subtracted), which
also makes them independent of the recording level.
"""

from __future__ import annotations

import functools

import numpy as np

SAMPLE_RATE = 16000
FRAME = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512
N_MELS = 80
_LOW_HZ, _HIGH_HZ = 20.0, SAMPLE_RATE / 2
_PREEMPHASIS = 0.97
_FLOOR = np.finfo(np.float32).eps


def _mel(hz):
    return 1127.0 * np.log(1.0 + np.asarray(hz) / 700.0)


@functools.cache
def _filters() -> np.ndarray:
    """Kaldi's triangular mel filters, shape (N_FFT // 2 + 1, N_MELS); Nyquist bin unused."""
    low, high = _mel(_LOW_HZ), _mel(_HIGH_HZ)
    delta = (high - low) / (N_MELS + 1)
    left = low + delta * np.arange(N_MELS)
    centre, right = left + delta, left + 2 * delta
    bins = _mel(np.arange(N_FFT // 2) * SAMPLE_RATE / N_FFT)[:, None]
    rising = (bins - left) / (centre - left)
    falling = (right - bins) / (right - centre)
    weights = np.where((bins > left) & (bins < right), np.minimum(rising, falling), 0.0)
    return np.vstack([weights, np.zeros((1, N_MELS))]).astype(np.float32)


@functools.cache
def _window() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME) / (FRAME - 1))) ** 0.85


def frame_count(samples: int) -> int:
    """Frames Kaldi makes of ``samples`` samples (edges snipped)."""
    return 0 if samples < FRAME else 1 + (samples - FRAME) // HOP


def fbank(audio: np.ndarray) -> np.ndarray:
    """Log mel energies of 16 kHz float samples: shape (frames, 80), float32, not centred."""
    count = frame_count(len(audio))
    if count == 0:
        return np.zeros((0, N_MELS), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(audio.astype(np.float64), FRAME)[::HOP][:count]
    frames = frames - frames.mean(axis=1, keepdims=True)
    emphasised = frames - _PREEMPHASIS * np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    spectrum = np.abs(np.fft.rfft(emphasised * _window(), N_FFT)) ** 2
    energies = spectrum.astype(np.float32) @ _filters()
    return np.log(np.maximum(energies, _FLOOR))


def centred(features: np.ndarray) -> np.ndarray:
    """Features with their mean over time removed (per-window mean normalisation)."""
    return features - features.mean(axis=0, keepdims=True) if len(features) else features
