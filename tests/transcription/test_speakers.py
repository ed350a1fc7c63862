"""Speaker labelling (appliance/transcription/speakers.py) on the real test recordings.

The synthetic dialogues have a clinician and a client (espeak-ng voices); the
stereo files carry a lavalier per person with 30% crosstalk. DER is scored
with tests/support/der.py against each file's reference RTTM.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from faster_whisper import decode_audio

from appliance.errors import AudioFormatError
from appliance.transcription import speakers
from appliance.transcription.speakers import CLIENT, CLINICIAN, Turn
from tests.support.der import der, parse_rttm

RATE = speakers.SAMPLE_RATE
NAMES = {"clinician": CLINICIAN, "client": CLIENT}


@functools.lru_cache(maxsize=None)
def load(path: Path, stereo: bool = False):
    return decode_audio(str(path), sampling_rate=RATE, split_stereo=stereo)


def dialogue(testdata: Path, name: str) -> Path:
    return testdata / "speech" / "dialogue" / name


def reference(testdata: Path, name: str, named: bool = False) -> list[Turn]:
    turns = parse_rttm(dialogue(testdata, f"{name}.rttm"))[name]
    return [Turn(t.start, t.end, NAMES[t.speaker]) for t in turns] if named else turns


def lines(testdata: Path, name: str) -> list[tuple[float, float, str, str]]:
    rows = [line.split("\t") for line in dialogue(testdata, f"{name}.txt").read_text().splitlines()]
    return [(float(s), float(e), who, text) for s, e, who, text in rows]


def union(turns) -> list[tuple[float, float]]:
    return [(t.start, t.end) for t in sorted(turns, key=lambda t: t.start)]


def clinician_sample(testdata: Path, name: str) -> np.ndarray:
    """The clinician's turns cut from the left lavalier: a different microphone from the mono mix."""
    left, _ = load(dialogue(testdata, f"{name}.stereo.wav"), True)
    return np.concatenate([left[int(t.start * RATE) : int(t.end * RATE)]
                           for t in reference(testdata, name) if t.speaker == "clinician"])


# --- stereo -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sleep", "quiet"])
def test_stereo_turns_name_both_speakers_with_low_der(testdata, name):
    left, right = load(dialogue(testdata, f"{name}.stereo.wav"), True)
    turns = speakers.diarize_stereo(left, right)
    result = der(reference(testdata, name, named=True), turns)
    assert result.der < 0.05, str(result)
    assert set(result.mapping) == {(CLINICIAN, CLINICIAN), (CLIENT, CLIENT)}


def test_stereo_turns_are_ordered_and_do_not_overlap(testdata):
    left, right = load(dialogue(testdata, "sleep.stereo.wav"), True)
    turns = speakers.diarize_stereo(left, right)
    assert all(t.start < t.end for t in turns)
    assert all(a.end <= b.start for a, b in zip(turns, turns[1:]))


def test_clinician_on_the_right_channel_swaps_the_names(testdata):
    left, right = load(dialogue(testdata, "sleep.stereo.wav"), True)
    turns = speakers.diarize_stereo(left, right, clinician_channel="right")
    swapped = [Turn(t.start, t.end, CLIENT if t.speaker == CLINICIAN else CLINICIAN)
               for t in reference(testdata, "sleep", named=True)]
    assert der(swapped, turns).der < 0.05


def test_label_stereo_names_every_transcript_line(testdata):
    left, right = load(dialogue(testdata, "sleep.stereo.wav"), True)
    rows = lines(testdata, "sleep")
    labels = speakers.label_stereo(left, right, [(s, e, text) for s, e, _, text in rows])
    assert labels == [NAMES[who] for _, _, who, _ in rows]


def test_label_stereo_accepts_segment_objects_and_quiet_segments(testdata):
    left, right = load(dialogue(testdata, "quiet.stereo.wav"), True)
    Segment = namedtuple("Segment", "id start end text")
    rows = lines(testdata, "quiet")
    segments = [Segment(i, s, e, text) for i, (s, e, _, text) in enumerate(rows)]
    assert speakers.label_stereo(left, right, segments) == [NAMES[who] for _, _, who, _ in rows]
    # A segment in a long silence holds the same noise on both channels: no name.
    assert speakers.label_stereo(left, right, [(70.0, 71.0)]) == [speakers.UNKNOWN]
    # A quiet word on one lavalier only is named by its channel's level.
    quiet_word = np.zeros_like(left)
    quiet_word[RATE : 2 * RATE] = 0.001
    assert speakers.label_stereo(np.zeros_like(left), quiet_word, [(1.0, 2.0)]) == [CLIENT]


def test_stereo_rejects_mismatched_channels():
    with pytest.raises(AudioFormatError, match="differ in length"):
        speakers.diarize_stereo(np.zeros(100, np.float32), np.zeros(99, np.float32))
    with pytest.raises(ValueError, match="clinician_channel"):
        speakers.diarize_stereo(np.zeros(100, np.float32), np.zeros(100, np.float32), "centre")
    with pytest.raises(AudioFormatError, match="1-D"):
        speakers.diarize_stereo(np.zeros((100, 2), np.float32), np.zeros(100, np.float32))


# --- speech regions and segments --------------------------------------------------------------


def tone_bursts(spans: list[tuple[float, float]], total_s: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.001, int(total_s * RATE)).astype(np.float32)
    for start, end in spans:
        t = np.arange(int((end - start) * RATE)) / RATE
        audio[int(start * RATE) : int(start * RATE) + len(t)] += 0.3 * np.sin(2 * np.pi * 220 * t)
    return audio


def test_speech_regions_find_bursts_and_bridge_short_pauses():
    audio = tone_bursts([(1.0, 2.0), (2.2, 3.0), (5.0, 6.0)], 8.0)
    regions = speakers.speech_regions(audio)
    assert len(regions) == 2  # the 0.2 s pause is bridged, the 2 s one is not
    assert regions[0] == pytest.approx((1.0, 3.0), abs=0.15)
    assert regions[1] == pytest.approx((5.0, 6.0), abs=0.15)


def test_speech_regions_of_the_dialogue_match_the_reference(testdata):
    audio = load(dialogue(testdata, "sleep.mono.wav"))
    regions = speakers.speech_regions(audio)
    hypothesis = [Turn(s, e, "speech") for s, e in regions]
    truth = [Turn(t.start, t.end, "speech") for t in reference(testdata, "sleep")]
    assert der(truth, hypothesis).der < 0.05


def test_assign_segments_by_overlap_then_nearest_then_unknown():
    turns = [Turn(0.0, 5.0, "A"), Turn(5.0, 9.0, "B")]
    segments = [(0.5, 4.0), (4.0, 8.5), (9.5, 10.0), (30.0, 31.0)]
    assert speakers.assign_segments(segments, turns) == ["A", "B", "B", speakers.UNKNOWN]
    assert speakers.assign_segments([], turns) == []


# --- mono ---------------------------------------------------------------------------------


def test_turn_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Turn(0.0, 1.0, "x").speaker = "y"


@pytest.mark.parametrize("name", ["sleep", "quiet"])
def test_mono_with_reference_regions_is_under_target(testdata, name):
    audio = load(dialogue(testdata, f"{name}.mono.wav"))
    truth = reference(testdata, name)
    turns = speakers.diarize_mono(audio, union(truth), num_speakers=2)
    assert der(truth, turns).der < 0.15
    # Unknown voices are numbered by first appearance; the clinician opens both sessions.
    assert turns[0].speaker == "Speaker 1"
    assert {t.speaker for t in turns} == {"Speaker 1", "Speaker 2"}


@pytest.mark.parametrize("name", ["sleep", "quiet"])
def test_mono_with_energy_vad_regions_is_under_target(testdata, name):
    audio = load(dialogue(testdata, f"{name}.mono.wav"))
    turns = speakers.diarize_mono(audio, speakers.speech_regions(audio))
    assert der(reference(testdata, name), turns).der < 0.15


def test_mono_splits_regions_that_span_a_change_of_speaker(testdata):
    # Regions bridged over the pauses between turns, as a lenient VAD gives them.
    audio = load(dialogue(testdata, "sleep.mono.wav"))
    truth = reference(testdata, "sleep")
    regions = [(0.6, 24.32), (33.13, 61.31), (80.26, 103.81)]
    result = der(truth, speakers.diarize_mono(audio, regions))
    assert result.confusion / result.total < 0.05, str(result)


def test_enrolled_clinician_voice_names_the_clinician(testdata):
    voice = speakers.enroll(clinician_sample(testdata, "sleep"))
    assert voice.shape == (speakers.EMBEDDING_SIZE,)
    audio = load(dialogue(testdata, "sleep.mono.wav"))
    truth = reference(testdata, "sleep", named=True)
    turns = speakers.diarize_mono(audio, union(truth), voices={CLINICIAN: voice})
    result = der(truth, turns)
    assert result.der < 0.15
    assert set(result.mapping) == {(CLINICIAN, CLINICIAN), (CLIENT, CLIENT)}


def test_a_stranger_enrolled_names_nobody(testdata):
    stranger = speakers.enroll(load(testdata / "speech" / "jfk.flac"))
    audio = load(dialogue(testdata, "quiet.mono.wav"))
    turns = speakers.diarize_mono(audio, union(reference(testdata, "quiet")), voices={"Dr Kennedy": stranger})
    assert {t.speaker for t in turns} == {"Speaker 1", "Speaker 2"}


def test_enroll_needs_enough_speech():
    with pytest.raises(AudioFormatError, match="at least 5 s"):
        speakers.enroll(tone_bursts([(0.5, 2.0)], 4.0))


def test_a_voice_profile_of_the_wrong_size_is_rejected(testdata):
    audio = load(dialogue(testdata, "quiet.mono.wav"))
    with pytest.raises(ValueError, match="enroll that voice again"):
        speakers.diarize_mono(audio, [(0.6, 3.0), (39.0, 43.0)], voices={"Dr Rivera": np.zeros(39)})


def test_cluster_embeddings_matches_diarize_mono(testdata):
    audio = load(dialogue(testdata, "sleep.mono.wav"))
    regions = union(reference(testdata, "sleep"))
    embeddings, windows = speakers.embed_windows(audio, regions)
    assert embeddings.shape == (len(windows), speakers.EMBEDDING_SIZE)
    assert all(any(s <= ws and we <= e for s, e in regions) for ws, we in windows)
    assert speakers.cluster_embeddings(embeddings, windows, regions) == speakers.diarize_mono(audio, regions)


def test_one_speaker_and_edge_cases(testdata):
    audio = load(dialogue(testdata, "quiet.mono.wav"))
    regions = union(reference(testdata, "quiet"))
    assert {t.speaker for t in speakers.diarize_mono(audio, regions, num_speakers=1)} == {"Speaker 1"}
    assert speakers.diarize_mono(audio, []) == []
    assert speakers.diarize_mono(audio, [(200.0, 210.0)]) == []  # past the end
    with pytest.raises(ValueError, match="num_speakers"):
        speakers.diarize_mono(audio, regions, num_speakers=0)
    with pytest.raises(ValueError, match="16000"):
        speakers.diarize_mono(audio, regions, sample_rate=8000)


def test_more_speakers_than_windows_still_labels_everything():
    audio = tone_bursts([(0.5, 1.5)], 3.0)
    turns = speakers.diarize_mono(audio, [(0.5, 1.5)], num_speakers=4)
    assert [(t.start, t.end, t.speaker) for t in turns] == [(0.5, 1.5, "Speaker 1")]


def test_ami_meeting_with_four_speakers_runs(testdata):
    ami = testdata / "speech" / "ami_debug"
    truth = parse_rttm(ami / "train.rttm")["trn05"]
    turns = speakers.diarize_mono(load(ami / "trn05.wav"), union(truth), num_speakers=4)
    assert 1 < len({t.speaker for t in turns}) <= 4
    assert der(truth, turns).der < 1.0  # hard real meeting: no target, only sanity
