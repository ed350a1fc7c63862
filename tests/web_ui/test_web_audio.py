"""Listening (web_ui/views/audio.py): the recording as WAV decrypted on the fly, with Range.

The stored file is what the recorder writes (its 44-byte header, then PCM, through
the age StreamWriter); the served WAV has a header made from the real length.
"""

from __future__ import annotations

import io
import random
import wave

from appliance.age import CHUNK_SIZE
from appliance.store.db import State
from tests.age.test_age import chunk_offset
from tests.conftest import USER
from tests.support import seed as seeding
from tests.support.web_support import (  # noqa: F401 - fixtures
    START, Browser, actions, app, browser, clock, recovery, result, seed, svc, user)
from web_ui.views.audio import MAX_OPEN_RANGE

CHEN, CHEN_PASSPHRASE = "dr.chen", "a passphrase for dr chen"
HEADER = 44
# Just over MAX_OPEN_RANGE of mono 16 kHz noise (about 70 s), and an odd byte at the
# end, as a recording cut mid-frame leaves: the served WAV ends on a whole frame.
PCM = random.Random(5).randbytes(MAX_OPEN_RANGE + 3 * CHUNK_SIZE + 1)
WHOLE = len(PCM) - 1
SIZE = HEADER + WHOLE


def _recorded(svc, clock, *, owner: str | None = USER, damage_chunk: int | None = None,
              **fields) -> int:
    """A drafted session whose recording of PCM is kept on disk, encrypted."""
    session_id = seed(svc, clock, started=START, res=result([(3.0, "Client", "Hello.")]),
                      owner=owner, **fields)
    session = svc.storage.get_session(session_id)
    session.audio_path.unlink()  # seed's plain dummy
    seeding.write_recording(session, svc.keys.recipient(), [PCM])
    if damage_chunk is not None:
        data = bytearray(session.audio_path.read_bytes())
        data[chunk_offset(data, damage_chunk) + 100] ^= 0x01
        session.audio_path.write_bytes(bytes(data))
    return session_id


def _audio(browser: Browser, session_id: int, range_header: str | None = None):
    headers = {"Range": range_header} if range_header else {}
    response = browser.get(f"/sessions/{session_id}/audio", headers=headers)
    response.get_data()  # read it all, then close it as a server does (closes the file)
    response.close()
    return response


def test_the_whole_recording_is_a_wav_with_its_real_length(user, svc, clock):
    session_id = _recorded(svc, clock)
    response = _audio(user, session_id)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/wav"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Cache-Control"] == "no-store"
    assert int(response.headers["Content-Length"]) == SIZE == len(response.data)
    with wave.open(io.BytesIO(response.data)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (1, 16000, 2)
        assert wav.getnframes() == WHOLE // 2
        assert wav.readframes(wav.getnframes()) == PCM[:WHOLE]


RANGES = [
    ("bytes=0-99", 0, 99),  # the header and the start of the audio
    ("bytes=0-1", 0, 1),  # Safari's probe: inside the header
    ("bytes=40-50", 40, 50),  # across the synthesized header's end
    (f"bytes={CHUNK_SIZE - 10}-{3 * CHUNK_SIZE + 7}", CHUNK_SIZE - 10, 3 * CHUNK_SIZE + 7),
    ("bytes=-500", SIZE - 500, SIZE - 1),  # the last 500 bytes
    (f"bytes=1000-{SIZE + 999}", 1000, SIZE - 1),  # an end past the file is clamped
    (f"bytes={SIZE - 10}-", SIZE - 10, SIZE - 1),
    ("bytes=200-", 200, 200 + MAX_OPEN_RANGE - 1),  # open-ended: at most MAX_OPEN_RANGE
]


def test_a_range_is_206_with_the_bytes_of_the_whole_file(user, svc, clock):
    session_id = _recorded(svc, clock)
    whole = _audio(user, session_id).data
    for asked, first, last in RANGES:
        response = _audio(user, session_id, asked)
        assert response.status_code == 206, asked
        assert response.headers["Content-Range"] == f"bytes {first}-{last}/{SIZE}", asked
        assert int(response.headers["Content-Length"]) == last - first + 1, asked
        assert response.data == whole[first:last + 1], asked
        assert response.headers["Cache-Control"] == "no-store"


def test_each_playback_is_audited_once_not_per_range(user, svc, clock):
    session_id = _recorded(svc, clock)
    before = len(actions(svc))
    _audio(user, session_id, "bytes=0-1")  # Safari's probe before it loads
    _audio(user, session_id, "bytes=0-")  # the player's first load
    _audio(user, session_id, f"bytes={MAX_OPEN_RANGE}-")  # it goes on playing
    _audio(user, session_id, "bytes=90000-")  # a seek
    assert actions(svc)[before:] == ["audio.play"]
    entry = svc.audit.entries(newest_first=True)[0]
    assert (entry.session_id, entry.actor) == (session_id, USER)
    assert not entry.detail


def test_a_damaged_chunk_plays_as_silence_and_the_rest_is_intact(user, svc, clock):
    session_id = _recorded(svc, clock, damage_chunk=2)
    body = _audio(user, session_id).data
    # The served WAV and the stored plaintext (the recorder's header, then PCM) share offsets.
    expected = bytearray(body[:HEADER] + PCM[:WHOLE])
    expected[2 * CHUNK_SIZE:3 * CHUNK_SIZE] = bytes(CHUNK_SIZE)
    assert len(body) == SIZE and body == bytes(expected)
    after = 3 * CHUNK_SIZE - HEADER
    seek = _audio(user, session_id, f"bytes={3 * CHUNK_SIZE}-{3 * CHUNK_SIZE + 99}")
    assert seek.data == PCM[after:after + 100]


BAD_RANGES = [
    ("pages=0-10", 400, "bytes=START-END"),
    ("bytes=ten-twenty", 400, "not &#39;bytes=START-END&#39;"),
    ("bytes=-", 400, "not &#39;bytes=START-END&#39;"),
    ("bytes=50-10", 400, "end comes before its start"),
    ("bytes=0-10,20-30", 400, "one range per request"),
    (f"bytes={SIZE}-", 416, "outside the recording"),
    ("bytes=-0", 416, "outside the recording"),
]


def test_a_bad_range_gets_one_clear_answer(user, svc, clock):
    session_id = _recorded(svc, clock)
    for asked, status, words in BAD_RANGES:
        response = _audio(user, session_id, asked)
        assert response.status_code == status, asked
        assert words in response.text, asked
        if status == 416:
            assert response.headers["Content-Range"] == f"bytes */{SIZE}"
    assert "audio.play" not in actions(svc)


def test_only_the_sessions_clinician_may_listen(user, app, svc, clock):
    svc.keys.add_user(CHEN, CHEN_PASSPHRASE, svc.keys.identity())
    mine = _recorded(svc, clock)
    chens = _recorded(svc, clock, owner=CHEN)
    chen = Browser(app.test_client())
    assert chen.login(CHEN, CHEN_PASSPHRASE).status_code == 302
    user.submit(f"/sessions/{mine}/share", {"user": CHEN}, page=f"/sessions/{mine}")
    shared = _audio(chen, mine, "bytes=0-")
    assert shared.status_code == 403 and "Only this session&#39;s clinician" in shared.text
    assert "Only this session&#39;s clinician" in chen.get(f"/sessions/{mine}").text
    # dr.rivera is the admin: a colleague's session does not exist for her.
    assert _audio(user, chens).status_code == 404
    assert _audio(chen, chens).status_code == 200
    assert f'src="/sessions/{mine}/audio"' in user.get(f"/sessions/{mine}").text


def test_a_locked_device_answers_423_and_says_to_log_in(user, svc, clock):
    session_id = _recorded(svc, clock)
    svc.keys.lock()
    response = _audio(user, session_id, "bytes=0-")
    assert response.status_code == 423 and "log in to unlock" in response.text


def test_deleted_still_recording_and_missing_audio_say_why(user, svc, clock):
    deleted = _recorded(svc, clock)
    svc.storage.delete_audio(deleted)
    response = _audio(user, deleted)
    assert response.status_code == 410 and "recording was deleted" in response.text
    missing = _recorded(svc, clock)
    svc.storage.get_session(missing).audio_path.unlink()
    response = _audio(user, missing)
    assert response.status_code == 404 and "no recording on the device" in response.text
    recording = seed(svc, clock, started=START, state=State.RECORDING)
    response = _audio(user, recording)
    assert response.status_code == 409 and "still recording" in response.text
    assert "audio.play" not in actions(svc)
