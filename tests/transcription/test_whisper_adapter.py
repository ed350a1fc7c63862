"""The faster-whisper internals behind appliance/transcription/whisper_adapter.py, against
the installed package.

Each test states one assumption the adapter (and asr.py's chunk grouping) makes
about faster-whisper outside its public API. When an upgrade changes one, the
test fails here, naming it, and the pin in pyproject.toml says which minor
version the adapter was written for.
"""

from __future__ import annotations

import inspect
import itertools
import tomllib

import faster_whisper
import numpy as np
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from appliance.transcription import asr, whisper_adapter
from appliance.transcription.reader import open_audio
from tests.conftest import REPO

RATE = 16000


def test_installed_version_is_the_one_the_adapter_was_written_for():
    installed = Version(faster_whisper.__version__)
    assert f"{installed.major}.{installed.minor}" == whisper_adapter.MINOR_VERSION


def test_pyproject_pins_the_adapters_minor_version():
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [Requirement(d).specifier for d in dependencies
               if Requirement(d).name == "faster-whisper"]
    major, minor = map(int, whisper_adapter.MINOR_VERSION.split("."))
    assert f"{major}.{minor}.0" in spec and f"{major}.{minor}.99" in spec
    assert f"{major}.{minor + 1}.0" not in spec and f"{major}.{minor - 1}.99" not in spec


def test_the_internal_names_exist_with_the_parameters_used():
    from faster_whisper import vad

    options = inspect.signature(vad.VadOptions).parameters
    for name in ("threshold", "min_silence_duration_ms", "speech_pad_ms", "max_speech_duration_s"):
        assert name in options
    assert list(inspect.signature(vad.get_speech_timestamps).parameters)[:2] == [
        "audio", "vad_options"]
    assert "max_duration" in inspect.signature(vad.collect_chunks).parameters
    timeline = vad.SpeechTimestampsMap([{"start": 0, "end": RATE}], RATE)
    assert callable(timeline.get_chunk_index) and callable(timeline.get_original_time)


def test_vad_finds_no_speech_in_silence():
    silence = np.zeros(5 * RATE, np.float32)
    assert whisper_adapter.speech_timestamps(silence, threshold=0.5, min_silence_ms=1000,
                                             pad_ms=400, max_speech_s=30.0) == []


def test_vad_returns_padded_sample_spans_within_the_audio(testdata):
    with open_audio(testdata / "speech" / "jfk.flac") as reader:
        audio = reader.read(60 * RATE).mean(axis=1).astype(np.float32)
    found = whisper_adapter.speech_timestamps(audio, threshold=0.5, min_silence_ms=1000,
                                              pad_ms=400, max_speech_s=30.0)
    assert found, "no speech found in jfk.flac"
    for span in found:
        assert set(span) >= {"start", "end"}
        assert isinstance(span["start"], int) and isinstance(span["end"], int)
        assert 0 <= span["start"] < span["end"] <= len(audio)
        assert span["end"] - span["start"] <= 30 * RATE + 2 * 400 * RATE // 1000
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(found))


def test_pack_chunks_closes_a_chunk_when_the_next_span_would_overflow():
    audio = np.arange(100 * RATE, dtype=np.float32)
    # 12 s + 12 s fit in 30 s; the next 12 s does not; then 20 s + 5 s fit again.
    spans = [{"start": s * RATE, "end": e * RATE} for s, e in
             [(0, 12), (14, 26), (30, 42), (50, 70), (80, 85)]]
    chunks, meta = whisper_adapter.pack_chunks(audio, spans, RATE, max_duration=30.0)
    assert [len(c) / RATE for c in chunks] == [24.0, 12.0, 25.0]
    assert [(m["offset"], m["duration"]) for m in meta] == [(0.0, 24.0), (24.0, 12.0),
                                                            (36.0, 25.0)]
    packed = np.concatenate(chunks)
    assert np.array_equal(packed, np.concatenate([audio[s["start"]:s["end"]] for s in spans]))
    # asr.py groups regions assuming exactly this packing.
    assert asr._chunk_groups(spans, 1) == [spans[:2], spans[2:3], spans[3:]]


def test_timeline_maps_packed_times_back_through_the_span_of_the_words_middle():
    spans = [{"start": 1 * RATE, "end": 3 * RATE}, {"start": 10 * RATE, "end": 12 * RATE}]
    timeline = whisper_adapter.Timeline(spans, RATE)
    assert timeline.original(0.5, 1.0) == (1.5, 2.0)
    assert timeline.original(2.5, 3.0) == (10.5, 11.0)
    # A word across the join belongs to the span holding its middle, whole.
    assert timeline.original(1.8, 2.4) == (9.8, 10.4)
    assert timeline.original(1.6, 2.2) == (2.6, 3.2)


def test_is_multilingual_reads_the_loaded_model(tiny_model):
    assert whisper_adapter.is_multilingual(tiny_model) is False


@pytest.mark.parametrize("name", ["WhisperModel", "BatchedInferencePipeline", "decode_audio",
                                  "download_model"])
def test_the_public_names_used_elsewhere_are_exported(name):
    assert name in faster_whisper.__all__
