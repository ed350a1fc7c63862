"""Voice embeddings (appliance/transcription/voice): the shipped CAM++ model, features,
clustering, the speaker count, enrollment and named voices, on the real test recordings."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import numpy as np
import pytest
from faster_whisper import decode_audio

from appliance.errors import AudioFormatError, SpeakerModelError
from appliance.transcription import asr, speakers
from appliance.transcription.speakers import CLIENT, CLINICIAN
from appliance.transcription.voice import cluster, fbank
from appliance.transcription.voice import model as voice_model
from tests.support.der import der, parse_rttm

RATE = speakers.SAMPLE_RATE


@functools.lru_cache(maxsize=None)
def load(path: Path, stereo: bool = False):
    return decode_audio(str(path), sampling_rate=RATE, split_stereo=stereo)


def series(testdata: Path, name: str) -> Path:
    return testdata / "speech" / "series" / name


def silero(audio: np.ndarray) -> list[tuple[float, float]]:
    """Speech regions as the pipeline finds them."""
    return [(s / RATE, e / RATE) for s, e in asr.speech_regions(audio)]


def lavalier_sample(testdata: Path, name: str, who: str) -> np.ndarray:
    """One speaker's turns from their own lavalier: another microphone than the mono mix."""
    left, right = load(series(testdata, f"{name}.stereo.wav"), True)
    channel = left if who == "clinician" else right
    turns = parse_rttm(series(testdata, f"{name}.rttm"))[name]
    return np.concatenate([channel[int(t.start * RATE) : int(t.end * RATE)]
                           for t in turns if t.speaker == who])


# --- the model file ---------------------------------------------------------------------


def test_shipped_model_matches_its_checksum():
    # The export is reproducible (tests/tools/export_campplus.py); this pins the file that ships.
    assert voice_model.file_sha256(voice_model.MODEL_PATH) == voice_model.expected_sha256()
    assert voice_model.expected_sha256() == (
        "866dcb85bc65137cb74a1aafa756fa51f7372b5d30f1fc62b96e8766218dcbea")


def test_a_damaged_or_missing_model_is_refused_with_the_fix(tmp_path):
    damaged = tmp_path / "campplus.onnx"
    shutil.copy(voice_model.MODEL_PATH, damaged)
    with damaged.open("r+b") as file:
        file.seek(1_000_000)
        file.write(b"\0" * 16)
    with pytest.raises(SpeakerModelError, match="damaged.*reinstall"):
        voice_model.load(damaged)
    with pytest.raises(SpeakerModelError, match="missing.*reinstall"):
        voice_model.load(tmp_path / "absent.onnx")


# --- features -------------------------------------------------------------------------


def test_fbank_frames_and_mel_placement():
    assert fbank.frame_count(RATE) == 98  # Kaldi, edges snipped: 1 + (16000 - 400) // 160
    assert fbank.frame_count(399) == 0
    tone = np.sin(2 * np.pi * 1000 * np.arange(RATE) / RATE).astype(np.float32)
    features = fbank.fbank(tone)
    assert features.shape == (98, fbank.N_MELS)
    # Kaldi's mel scale, 1127 ln(1 + f/700), 80 bins over 20 Hz - 8 kHz: 1 kHz is the
    # centre of bin 26.9, so the tone's energy peaks in bin 27.
    assert int(np.argmax(features.mean(axis=0))) == 27


def test_a_quieter_voice_is_the_same_voice(testdata):
    # A client further from the microphone: the embedding must not follow the level.
    audio = load(series(testdata, "week1.mono.wav"))
    windows = [(10.0, 11.5), (15.0, 16.5)]
    quiet, loud = (voice_model.load().embed(audio * gain, windows) for gain in (0.2, 1.0))
    assert np.min(np.sum(quiet * loud, axis=1)) > 0.99


# --- clustering and counting ------------------------------------------------------------


@pytest.mark.parametrize("name", ["week1", "week2", "week3"])
def test_series_sessions_are_labelled_within_target(testdata, name):
    # The three sessions the MFCC method scored 6.9 / 21.4 / 13.5 % on (issue 17).
    audio = load(series(testdata, f"{name}.mono.wav"))
    truth = parse_rttm(series(testdata, f"{name}.rttm"))[name]
    result = der(truth, speakers.diarize_mono(audio, silero(audio)))
    assert result.der < 0.05, str(result)


def test_same_embeddings_give_the_same_labels(testdata):
    # Resuming from a checkpoint re-clusters saved embeddings: labels must not move.
    audio = load(series(testdata, "week2.mono.wav"))
    regions = silero(audio)
    embeddings, windows = speakers.embed_windows(audio, regions)
    first = speakers.cluster_embeddings(embeddings, windows, regions)
    again = speakers.cluster_embeddings(embeddings.astype(np.float32), list(windows), regions)
    assert first == again


def one_voice(testdata: Path, name: str, who: str) -> np.ndarray:
    """One speaker's turns cut from the mono mix, half a second of silence between them."""
    audio = load(series(testdata, f"{name}.mono.wav"))
    turns = parse_rttm(series(testdata, f"{name}.rttm"))[name]
    pause = np.zeros(RATE // 2, dtype=np.float32)
    return np.concatenate([np.concatenate([audio[int(t.start * RATE) : int(t.end * RATE)], pause])
                           for t in turns if t.speaker == who])


@pytest.mark.parametrize("who", ["clinician", "client"])
def test_automatic_count_hears_one_voice_as_one(testdata, who):
    audio = one_voice(testdata, "week1", who)
    turns = speakers.diarize_mono(audio, silero(audio), num_speakers="auto")
    assert {t.speaker for t in turns} == {"Speaker 1"}


def test_automatic_count_finds_the_two_people_of_a_session_and_a_meeting(testdata):
    # The series' two voices are as alike as one person's halves: turn-taking tells them apart.
    audio = load(series(testdata, "week2.mono.wav"))
    assert len({t.speaker for t in speakers.diarize_mono(audio, silero(audio), "auto")}) == 2
    ami = testdata / "speech" / "ami_debug"
    meeting = load(ami / "dev00.wav")
    truth = parse_rttm(ami / "development.rttm")["dev00"]
    two = speakers.diarize_mono(meeting, silero(meeting), num_speakers="auto")
    assert len({t.speaker for t in two}) == len({t.speaker for t in truth}) == 2


def test_a_bad_count_is_refused():
    with pytest.raises(ValueError, match="'auto'"):
        speakers.cluster_embeddings(np.ones((2, speakers.EMBEDDING_SIZE)), [(0, 1), (1, 2)],
                                    [(0, 2)], num_speakers="three")


def test_no_speech_gives_no_turns():
    silence = np.zeros(RATE * 5, dtype=np.float32)
    assert speakers.diarize_mono(silence, silero(silence), num_speakers="auto") == []


# --- enrollment and names -----------------------------------------------------------------


def test_each_enrolled_clinician_names_their_own_voice(testdata):
    rivera = speakers.enroll(lavalier_sample(testdata, "week1", "clinician"))
    other = speakers.enroll(load(testdata / "speech" / "jfk.flac"))
    audio = load(series(testdata, "week2.mono.wav"))
    truth = parse_rttm(series(testdata, "week2.rttm"))["week2"]
    turns = speakers.diarize_mono(audio, silero(audio), voices={"Dr Rivera": rivera, "Dr Kent": other})
    result = der(truth, turns)
    assert {t.speaker for t in turns} == {"Dr Rivera", CLIENT}
    assert ("clinician", "Dr Rivera") in result.mapping and result.der < 0.05


def test_the_client_enrolled_is_not_taken_for_the_clinician(testdata):
    client = speakers.enroll(lavalier_sample(testdata, "week1", "client"))
    audio = load(series(testdata, "week3.mono.wav"))
    truth = parse_rttm(series(testdata, "week3.rttm"))["week3"]
    turns = speakers.diarize_mono(audio, silero(audio), voices={CLINICIAN: client})
    # The profile matches the client's voice: that speaker is named with it, never the clinician.
    assert ("client", CLINICIAN) in der(truth, turns).mapping


@pytest.mark.parametrize("problem, audio, message", [
    ("too short", lambda t: load(t / "speech" / "jfk.flac")[: RATE * 4], "at least 5 s"),
    ("silent", lambda t: np.zeros(RATE * 20, dtype=np.float32), "at least 5 s"),
])
def test_an_unusable_enrollment_sample_is_refused(testdata, problem, audio, message):
    sample = audio(testdata)
    with pytest.raises(AudioFormatError, match=message):
        speakers.enroll(sample, regions=silero(sample))


def test_an_enrollment_sample_with_two_voices_is_refused(testdata):
    ami = testdata / "speech" / "ami_debug"
    meeting = load(ami / "dev00.wav")
    with pytest.raises(AudioFormatError, match="two voices"):
        speakers.enroll(meeting, regions=silero(meeting))


def test_an_unsure_match_names_nobody():
    means = voice_model.unit(np.array([[1.0, 0.6, 0.0], [1.0, 0.0, 0.6]]))
    # Equally close to both clusters: no confident choice.
    assert cluster.match_voices(means, {"Dr Rivera": np.array([1.0, 0.3, 0.3])}) == {}
    assert cluster.match_voices(means, {"Dr Rivera": means[1]}) == {1: "Dr Rivera"}


def test_resegmenting_keeps_clear_turns_and_absorbs_an_unclear_window():
    # Similarities of 8 windows to two voices: a clear change after window 3, and
    # window 6 leaning the other way by less than the cost of two changes.
    similarity = np.array([[0.9, 0.5], [0.9, 0.4], [0.8, 0.5], [0.4, 0.9],
                           [0.5, 0.9], [0.62, 0.58], [0.4, 0.8], [0.5, 0.9]])
    assert cluster.resegment(similarity).tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    assert cluster.resegment(similarity, switch_cost=0.0).tolist() == [0, 0, 0, 1, 1, 0, 1, 1]
    assert cluster.resegment(np.zeros((0, 2))).tolist() == []


def test_counting_identical_windows_does_not_fail():
    # Silence-like input where k-means cannot make two groups: one speaker, no crash.
    points = np.tile(voice_model.unit(np.ones(speakers.EMBEDDING_SIZE)), (30, 1))
    assert cluster.estimate_count(points) == 1
    assert cluster.kmeans(points, 3).tolist() == [0] * 30
