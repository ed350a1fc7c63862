"""The parts of faster-whisper outside its public API, in one place.

Loading and decoding use the public API (``WhisperModel``,
``BatchedInferencePipeline``, ``decode_audio``, ``download_model``). The
recogniser also runs Silero VAD by itself and packs the speech into 30 s chunks
as ``WhisperModel.transcribe`` does, which takes helpers from
``faster_whisper.vad``, and asks the CTranslate2 model behind a
``WhisperModel`` whether it is multilingual. Those are internals that any
release may change: pyproject.toml pins faster-whisper to the minor version
below, and tests/transcription/test_whisper_adapter.py checks each assumption made here
against the installed package, so an upgrade that breaks one fails there rather
than overnight on a device.
"""

from __future__ import annotations

import numpy as np

# The faster-whisper minor version these internals were checked against.
MINOR_VERSION = "1.2"


def speech_timestamps(audio: np.ndarray, *, threshold: float, min_silence_ms: int, pad_ms: int,
                      max_speech_s: float) -> list[dict]:
    """Silero VAD over 16 kHz mono ``audio``: ``[{"start": sample, "end": sample}, ...]``.

    Regions are padded by ``pad_ms``, split at pauses of ``min_silence_ms`` and
    at most ``max_speech_s`` long.
    """
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(threshold=threshold, min_silence_duration_ms=min_silence_ms,
                         speech_pad_ms=pad_ms, max_speech_duration_s=max_speech_s)
    return get_speech_timestamps(audio, options)


def pack_chunks(audio: np.ndarray, spans: list[dict], rate: int,
                max_duration: float) -> tuple[list[np.ndarray], list[dict]]:
    """The audio of ``spans`` (samples) packed in order into chunks of at most ``max_duration`` s.

    A chunk closes when the next span would overflow it. Returns the chunks and,
    for each, its ``offset`` and ``duration`` in the packed audio (seconds).
    """
    from faster_whisper.vad import collect_chunks

    return collect_chunks(audio, spans, rate, max_duration=max_duration)


class Timeline:
    """Maps times in the packed audio of ``spans`` back to the original audio."""

    def __init__(self, spans: list[dict], rate: int):
        from faster_whisper.vad import SpeechTimestampsMap

        self._map = SpeechTimestampsMap(spans, rate)

    def original(self, start: float, end: float) -> tuple[float, float]:
        """A word's ``(start, end)`` in the original audio, both mapped through the span
        that holds the word's middle (so a word never straddles a removed pause)."""
        index = self._map.get_chunk_index((start + end) / 2)
        return (self._map.get_original_time(start, index),
                self._map.get_original_time(end, index))


def is_multilingual(model) -> bool:
    """True for a loaded ``WhisperModel`` that detects the language (names without ``.en``)."""
    return bool(model.model.is_multilingual)
