"""A capture device with no sound card: an ALSA ``file`` PCM that plays a raw file.

PyAudio (PortAudio on ALSA) opens it like any microphone and captures the
file byte for byte, so tests exercise the real capture path. Facts that shape
this helper (ARCHITECTURE.md section 8):

- the raw file must already be in the format the stream opens (S16_LE, the
  rate and channels of the test): there is no ``plug`` converter in front of
  it, because a converter would drop samples;
- reading past the end of the file returns stale data, so the file is padded
  with silence well beyond what a test captures;
- ALSA reads ``$HOME/.asoundrc``: point ``HOME`` at the directory written here
  (in-process with ``monkeypatch.setenv``, or in a subprocess's environment);
- capture runs faster than real time unless paced (PyAudioSource paces it).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

PCM_NAME = "holdnote_test"


def signal(seconds: float, rate: int = 16000, channels: int = 1, seed: int = 1) -> np.ndarray:
    """A deterministic test signal (interleaved int16): noise under a slow tone.

    Noise makes every sample different, so a dropped, repeated or shifted
    sample cannot hide in a comparison.
    """
    frames = int(seconds * rate)
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / rate
    tone = 8000 * np.sin(2 * np.pi * 220 * t)
    data = tone[:, None] + rng.integers(-6000, 6000, size=(frames, channels))
    return data.astype("<i2").reshape(-1)


def write_pcm(path: Path, samples: np.ndarray, pad_seconds: float = 60.0,
              rate: int = 16000, channels: int = 1) -> Path:
    """The raw S16_LE file the PCM plays: ``samples`` then ``pad_seconds`` of silence."""
    pad = np.zeros(int(pad_seconds * rate) * channels, dtype="<i2")
    np.concatenate([samples.astype("<i2"), pad]).tofile(path)
    return path


def write_asoundrc(home: Path, infile: Path, name: str = PCM_NAME) -> Path:
    """``home/.asoundrc`` defining capture PCM ``name`` that reads ``infile``."""
    home.mkdir(parents=True, exist_ok=True)
    rc = home / ".asoundrc"
    rc.write_text(
        f"pcm.{name} {{\n"
        "    type file\n"
        '    slave.pcm "null"\n'
        '    file "/dev/null"\n'
        f'    infile "{infile}"\n'
        '    format "raw"\n'
        "}\n",
        encoding="ascii",
    )
    return rc


def make_device(directory: Path, samples: np.ndarray, rate: int = 16000,
                channels: int = 1, pad_seconds: float = 60.0) -> Path:
    """Write the raw file and the ``.asoundrc``; returns the directory to use as ``HOME``."""
    home = directory / "alsa-home"
    home.mkdir(parents=True, exist_ok=True)
    infile = write_pcm(home / "input.raw", samples, pad_seconds, rate, channels)
    write_asoundrc(home, infile)
    return home


def environ(home: Path, **extra: str) -> dict[str, str]:
    """A copy of the environment with ``HOME`` pointing at the ALSA configuration."""
    env = dict(os.environ, HOME=str(home))
    env.update(extra)
    return env
