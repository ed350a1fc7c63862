"""Listening to a session: its recording as WAV, decrypted on the fly, with HTTP Range.

``GET /sessions/<id>/audio`` serves a 44-byte WAV header made from the
session's recorded format and the real length of its audio (the recorder's own
header says "unknown length", and a salvaged file's could be wrong), then the
PCM. The stored file's plaintext is the recorder's 44-byte header and the PCM,
so a byte of the served file sits at the same offset in the plaintext and a
Range request decrypts only the 64 KiB chunks it covers
(:class:`appliance.age.SeekableReader`). Nothing decrypted touches the disk;
``Cache-Control: no-store`` keeps it out of the browser's cache.

Only the session's own clinician may listen, and only while the device is
unlocked. An open-ended range is answered with at most :data:`MAX_OPEN_RANGE`
bytes, so a paused player never holds one of the few server threads; the
browser asks for the rest. Each playback is audited once (``audio.play``, when
the player loads from the start, past the header), not once per range. A chunk
damaged on disk plays as silence of its exact length, so the time after it stays
right.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, abort, make_response, request, url_for
from werkzeug.exceptions import RequestedRangeNotSatisfiable

from appliance import age
from appliance.access.roles import Access
from appliance.errors import CryptoError, DeviceLockedError
from appliance.store.db import Session, State
from appliance.transcription.encrypted import RECORDER_HEADER_BYTES
from web_ui.views import access, errors
from web_ui.views.auth import audit
from web_ui.views.context import services
from web_ui.views.formatting import when
from web_ui.views.retention_note import audio_deletion_note
from web_ui.views.transcript import TranscriptView

bp = Blueprint("audio", __name__)
log = logging.getLogger(__name__)

HEADER_BYTES = RECORDER_HEADER_BYTES  # ours is as long as the recorder's: offsets line up
SAMPLE_BYTES = 2  # the recorder writes 16-bit PCM
# About a minute of 16 kHz stereo: small enough to free the thread soon, big
# enough that a playing browser asks rarely.
MAX_OPEN_RANGE = 2 * 1024 * 1024
_RANGE = re.compile(r"(\d*)-(\d*)")

ONLY_OWNER = ("Only this session's clinician can play its recording. It is shared with you "
              "to read its transcript and note.")
LOCKED = "The device is locked: log in to unlock it, then play the recording again."
NO_RECORDING = "This session has no recording on the device."
UNREADABLE = ("The recording cannot be decrypted: its encrypted header is damaged or was "
              "made with another key. The transcript and the note are not affected.")


@dataclass(frozen=True)
class AudioInfo:
    """What the session page's player needs: where to play from, or why it cannot.

    ``url`` is None when the recording cannot be played and ``reason`` says why;
    ``deleted_note`` says when the audio will be or was deleted; ``gaps`` are the
    unreadable stretches ``(start, end)`` in seconds.
    """

    url: str | None
    reason: str = ""
    deleted_note: str = ""
    gaps: tuple[tuple[float, float], ...] = ()


def unavailable(session: Session) -> tuple[int, str] | None:
    """Why ``session`` has nothing to play (an HTTP status and a sentence), or None."""
    if session.state == State.RECORDING:
        return 409, ("This session is still recording. Its audio can be played once the "
                     "recording stops.")
    if session.audio_deleted_at is not None:
        return 410, (f"The recording was deleted on {when(session.audio_deleted_at)}, as the "
                     "retention setting says. The transcript and the note remain.")
    if session.audio_path is None or not session.audio_path.exists():
        return 404, NO_RECORDING
    return None


def page_context(session: Session, level: Access, view: object = None) -> dict:
    """The session page's ``audio`` entry (an :class:`AudioInfo`).

    ``view`` is the page's transcript view, whose gaps (damaged stretches) the player marks.
    """
    gaps = tuple((line.start, line.end) for line in view.lines if line.kind == "gap") \
        if isinstance(view, TranscriptView) else ()
    problem = unavailable(session)
    note = audio_deletion_note(services().cfg, session, services().storage.now())
    if level < Access.OWN:
        reason = ONLY_OWNER
    elif problem is not None:
        # Deleted: the note says when, in the page's words; one sentence, not two.
        reason = "" if session.audio_deleted_at is not None and note else problem[1]
    elif not services().keys.is_unlocked():
        reason = LOCKED
    else:
        return {"audio": AudioInfo(url_for("audio.stream", session_id=session.id),
                                   deleted_note=note, gaps=gaps)}
    return {"audio": AudioInfo(None, reason, deleted_note=note, gaps=gaps)}


def wav_header(channels: int, sample_rate: int, data_bytes: int) -> bytes:
    """A 44-byte header for ``data_bytes`` of 16-bit PCM."""
    data_bytes = min(data_bytes, 0xFFFFFFFF - 36)  # WAV's limit (about 37 h of 16 kHz stereo)
    frame = channels * SAMPLE_BYTES
    fmt = struct.pack("<HHIIHH", 1, channels, sample_rate, sample_rate * frame, frame,
                      SAMPLE_BYTES * 8)
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_bytes))


# --- the endpoint --------------------------------------------------------------------


@bp.route("/sessions/<int:session_id>/audio")
def stream(session_id: int):
    """The recording as ``audio/wav``: whole (200) or one byte range (206)."""
    session, level = access.session_for(session_id, Access.READ)
    if level < Access.OWN:
        abort(403, ONLY_OWNER)
    problem = unavailable(session)
    if problem is not None or session.audio_path is None:
        abort(*(problem or (404, NO_RECORDING)))
    reader = _open(session, session.audio_path)
    try:
        response = _respond(session, reader)
    except BaseException:
        reader.close()
        raise
    response.call_on_close(reader.close)
    return response


def _open(session: Session, path: Path) -> age.SeekableReader:
    try:
        identity = services().keys.identity()
    except DeviceLockedError:
        abort(423, LOCKED)
    # A recording the recorder was cut off from may end in a torn chunk, not damage.
    cut_off = session.state == State.INTERRUPTED or session.recovered_s is not None
    try:
        return age.SeekableReader(path, [identity], finished=not cut_off)
    except FileNotFoundError:  # deleted a moment ago
        abort(410, "The recording was deleted a moment ago. The transcript and the note remain.")
    except CryptoError as error:
        log.warning("session %s: the recording cannot be opened: %s", session.id, error)
        abort(500, UNREADABLE)


def _respond(session: Session, reader: age.SeekableReader) -> Response:
    frame = session.channels * SAMPLE_BYTES
    pcm = max(0, reader.size - HEADER_BYTES)
    pcm -= pcm % frame  # whole frames only: a torn end is not played as noise
    total = HEADER_BYTES + pcm
    wanted = byte_range(request.headers.get("Range"), total)
    start, stop = wanted if wanted is not None else (0, total)
    # The player's first load, not every range; not Safari's two-byte probe before it.
    if start == 0 and stop > HEADER_BYTES and request.method == "GET":
        audit("audio.play", session.id)
    header = wav_header(session.channels, session.sample_rate, pcm)
    response = Response(_body(session.id, reader, header, start, stop),
                        status=200 if wanted is None else 206, mimetype="audio/wav")
    response.headers["Content-Length"] = str(stop - start)
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["Cache-Control"] = "no-store"
    if wanted is not None:
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{total}"
    return response


def _body(session_id: int, reader: age.SeekableReader, header: bytes, start: int,
          stop: int) -> Iterator[bytes]:
    """The served bytes ``start``..``stop``: our header, then the plaintext at the same offsets."""
    if start < HEADER_BYTES:
        yield header[start:min(stop, HEADER_BYTES)]
    if stop > HEADER_BYTES:
        yield from reader.iter_range(max(start, HEADER_BYTES), stop)
    if reader.gaps:
        log.warning("session %s: %d damaged chunk(s) of the recording played as silence",
                    session_id, len(reader.gaps))


# --- the Range header ------------------------------------------------------------------


def byte_range(header: str | None, total: int) -> tuple[int, int] | None:
    """The bytes ``[start, stop)`` a Range header asks for; None without one.

    Ends the request with 400 (malformed, several ranges) or 416 (outside the file).
    """
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec:
        abort(400, "The Range header must look like 'bytes=START-END' (in bytes).")
    if "," in spec:
        abort(400, "Ask for one range per request (this Range header lists several).")
    match = _RANGE.fullmatch(spec.strip())
    if match is None or match.groups() == ("", ""):
        abort(400, f"The Range header {header[:60]!r} is not 'bytes=START-END'.")
    first, last = match.groups()
    if not first:  # "-N": the last N bytes
        start, stop = max(0, total - int(last)), total
        if int(last) == 0:
            _not_satisfiable(total)
    else:
        start = int(first)
        stop = min(total, int(last) + 1) if last else min(total, start + MAX_OPEN_RANGE)
        if last and int(last) < start:
            abort(400, "The Range header's end comes before its start.")
    if start >= total:
        _not_satisfiable(total)
    return start, stop


def _not_satisfiable(total: int) -> None:
    error = RequestedRangeNotSatisfiable(
        description=f"That range lies outside the recording, which is {total} bytes long.")
    response = make_response(errors.error_page(error))
    response.headers["Content-Range"] = f"bytes */{total}"
    abort(response)
