"""Seed a data directory the way the appliance fills it: keys, users, sessions, results.

Used by the browser tests and the web benchmark (and free for any other test).
Everything goes through the real modules: :class:`appliance.access.keys.KeyStore` for
the practice keys, :class:`appliance.store.db.Storage` for sessions and their
state transitions, :mod:`appliance.age` to encrypt the transcription result,
the draft note, the client label and the flag summary to the practice
recipient, exactly as the recorder and the overnight job store them. Only
the words are invented: a deterministic generator writes a plausible therapy
conversation (two speakers, silences, bookmarks, risk-language flags).

Example::

    storage = Storage(cfg.paths.data_dir, now=clock)
    recovery = init_practice(storage, cfg)
    recipient = KeyStore(storage, cfg.paths.runtime_dir).recipient()
    result = transcript_result(minutes=50, seed=1)
    session_id = add_session(storage, clock, recipient, started_at=..., result=result,
                             label="J.D. 2024-017")
"""

from __future__ import annotations

import array
import copy
import dataclasses
import io
import json
import math
import random
import sys
import wave
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from appliance import age
from appliance.access.keys import KeyStore, viewer
from appliance.recorder.capture import AudioFormat, wav_header
from appliance.store.db import Session, State, Storage
from appliance.transcript import CURRENT_VERSION, Gap, TranscriptResult

USER = "dr.rivera"
PASSPHRASE = "correct horse battery staple"
CLINICIAN = "Clinician"
CLIENT = "Client"
MODEL = "tiny.en"

# --- the words ---------------------------------------------------------------------

_CLINICIAN_LINES = (
    "How has the week been since we last met?",
    "What did you notice in your body when that happened?",
    "It sounds like that conversation stayed with you.",
    "Can you say a little more about what you mean by that?",
    "Last time we talked about the evenings being the hardest part.",
    "What would you like to focus on today?",
    "How did the breathing exercise go when you tried it?",
    "That makes sense, given everything that has been going on.",
    "I notice you paused there. What came up for you?",
    "On a scale from one to ten, how intense was the worry?",
    "What helped, even a little, this week?",
    "Let's slow down for a moment and stay with that feeling.",
    "Who else knows about how you have been feeling?",
    "What would you say to a friend in the same situation?",
    "Shall we write that down as something to practise before next time?",
    "How are you sleeping at the moment?",
)

_CLIENT_LINES = (
    "It was a mixed week, honestly. Monday was fine but Wednesday was hard.",
    "I kept replaying the meeting with my manager over and over.",
    "My chest gets tight and I can't really think straight.",
    "I tried the breathing twice, and the second time it actually helped.",
    "Evenings are still the worst. Once the house is quiet my mind starts racing.",
    "I went for a walk on Saturday with my sister, which was nice.",
    "I don't know. I guess I feel like I am letting everyone down.",
    "Sleep is better on the weekends, maybe six hours.",
    "I wrote in the journal most days, like we said.",
    "When my mother called I just didn't pick up. I couldn't face it.",
    "Work has been piling up and I keep putting things off.",
    "I think I'd like to talk about the argument with my partner.",
    "It was maybe a seven. It came down after about twenty minutes.",
    "I noticed I was holding my breath in the car again.",
    "Cooking dinner helped. It gave me something to do with my hands.",
    "I haven't told anyone at work. I don't want them to think less of me.",
    "Part of me knows it's not my fault, but it still feels like it is.",
    "I managed to get to the gym once, which felt like a win.",
)

# (category, speaker, quote, negated, term): the passages the risk-flag pass marks.
_FLAG_LINES = (
    ("suicide", CLIENT, "Sometimes I think everyone would be better off without me.",
     False, "better off without me"),
    ("self_harm", CLIENT, "I would never hurt myself, I just feel so tired of it all.",
     True, "hurt myself"),
    ("abuse", CLIENT, "He used to shout and push me when he had been drinking.",
     False, "push me"),
)

_BOOKMARK_TEXTS = ("review this moment", "follow up next session", "")


@dataclass
class Clock:
    """A settable clock for :class:`Storage` (sessions get past start times)."""

    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def __call__(self) -> datetime:
        return self.at


def _segments(rng: random.Random, seconds: float, extra: Iterable[tuple[float, str, str]]
              ) -> tuple[list[dict], list[dict]]:
    """Alternating turns filling ``seconds``, with a few long silences between them."""
    pinned = sorted(extra)
    segments, silences, t, turn = [], [], 3.0, 0
    recent: list[str] = []
    while t < seconds - 5:
        if pinned and pinned[0][0] <= t:
            _, speaker, text = pinned.pop(0)
        else:
            speaker = CLINICIAN if turn % 2 == 0 else CLIENT
            bank = _CLINICIAN_LINES if speaker == CLINICIAN else _CLIENT_LINES
            # No line again until most of the others were said: reads less robotic.
            text = rng.choice([line for line in bank if line not in recent])
            recent = (recent + [text])[-10:]
            turn += 1
        length = min(1.0 + len(text) / 22 + rng.uniform(0, 1.2), seconds - t)
        segments.append({"start": round(t, 2), "end": round(t + length, 2),
                         "speaker": speaker, "text": " " + text})
        t += length + rng.uniform(0.2, 0.9)
        if rng.random() < 0.01:  # a long, explicit silence every now and then
            gap = rng.uniform(12, 40)
            silences.append({"start": round(t, 2), "end": round(t + gap, 2)})
            t += gap
    for _, speaker, text in pinned:  # pinned lines past the end still appear
        segments.append({"start": round(t, 2), "end": round(t + 4, 2),
                         "speaker": speaker, "text": " " + text})
        t += 5
    return segments, silences


def _metrics(segments: list[dict], silences: list[dict], seconds: float) -> dict:
    talk: dict[str, float] = {}
    words: dict[str, int] = {}
    for s in segments:
        talk[s["speaker"]] = talk.get(s["speaker"], 0.0) + s["end"] - s["start"]
        words[s["speaker"]] = words.get(s["speaker"], 0) + len(s["text"].split())
    total = sum(talk.values()) or 1.0
    turns = sum(1 for a, b in zip(segments, segments[1:]) if a["speaker"] != b["speaker"])
    return {
        "duration_s": round(seconds, 1),
        "talk_time_s": {k: round(v, 1) for k, v in talk.items()},
        "talk_share": {k: round(v / total, 3) for k, v in talk.items()},
        "longest_silence_s": round(max((x["end"] - x["start"] for x in silences), default=0), 1),
        "words_per_minute": {k: round(words[k] / (talk[k] / 60), 1) for k in talk if talk[k]},
        "turns": turns,
        "word_count": sum(words.values()),
        "words": words,
        "silence_count": len(silences),
        "silence_total_s": round(sum(x["end"] - x["start"] for x in silences), 1),
    }


def _flags(segments: list[dict]) -> list[dict]:
    flags = []
    for category, speaker, quote, negated, term in _FLAG_LINES:
        for s in segments:
            if s["text"].strip() == quote:
                flags.append({"category": category, "start": s["start"], "end": s["end"],
                              "speaker": speaker, "quote": quote, "negated": negated,
                              "term": term, "context": ""})
                break
    return flags


def _bookmarks(rng: random.Random, segments: list[dict], count: int) -> list[dict]:
    marks = []
    for n in range(count):
        index = rng.randrange(len(segments))
        marks.append({"offset": segments[index]["start"], "segment_index": index,
                      "speaker": segments[index]["speaker"],
                      "snippet": segments[index]["text"].strip(),
                      "text": _BOOKMARK_TEXTS[n % len(_BOOKMARK_TEXTS)]})
    return sorted(marks, key=lambda m: m["offset"])


def transcript_result(minutes: float = 50, *, seed: int = 0, flags: bool = True,
                      bookmarks: int = 2, extra: Iterable[tuple[float, str, str]] = (),
                      template: str = "SOAP") -> TranscriptResult:
    """A transcription result, checked by :meth:`TranscriptResult.from_json` on the way.

    ``extra`` pins lines ``(seconds, speaker, text)`` into the conversation
    (a unique search word, a ``<script>`` tag for an XSS check). With
    ``flags`` the three risk passages are spoken in the first third. A
    two-hour result has about 1,500 segments.
    """
    rng = random.Random(seed)
    seconds = minutes * 60
    pinned = list(extra)
    if flags:
        pinned += [(seconds * (0.1 + 0.1 * i), speaker, quote)
                   for i, (_, speaker, quote, _, _) in enumerate(_FLAG_LINES)]
    segments, silences = _segments(rng, seconds, pinned)
    metrics = _metrics(segments, silences, seconds)
    result = {
        "version": CURRENT_VERSION, "duration_s": round(seconds, 1), "model": MODEL,
        "language": "en",
        "segments": segments, "silences": silences, "metrics": metrics,
        "flags": _flags(segments) if flags else [],
        "bookmarks": _bookmarks(rng, segments, bookmarks) if segments else [],
        "salvaged": False, "warnings": [],
    }
    result["note"] = draft_note(result, template)
    return TranscriptResult.from_json(result)


def with_first_section(result: TranscriptResult, text: str) -> TranscriptResult:
    """``result`` with ``text`` in its draft note's first section."""
    note = copy.deepcopy(dict(result.note))
    note["sections"][0]["text"] = text
    return dataclasses.replace(result, note=note)


_SECTIONS = {
    "SOAP": (("subjective", "Subjective"), ("objective", "Objective"),
             ("assessment", "Assessment"), ("plan", "Plan")),
    "DAP": (("data", "Data"), ("assessment", "Assessment"), ("plan", "Plan")),
    "BIRP": (("behavior", "Behavior"), ("intervention", "Intervention"),
             ("response", "Response"), ("plan", "Plan")),
}


def draft_note(result: dict, template: str = "SOAP") -> dict:
    """The draft note the overnight job writes: objective facts filled, the rest empty.

    ``result`` is the stored JSON form of the result the note belongs to.
    """
    m = result["metrics"]
    share = m["talk_share"]
    facts = (f"Session length {round(m['duration_s'] / 60)} min. Talk share: "
             + ", ".join(f"{k} {round(v * 100)} %" for k, v in share.items())
             + f". {m['turns']} turns; longest silence {round(m['longest_silence_s'])} s.")
    if result.get("flags"):
        facts += " Risk language flagged for review: " + ", ".join(
            sorted({f["category"].replace("_", "-") for f in result["flags"]})) + "."
    sections = []
    for key, title in _SECTIONS[template]:
        auto = key in ("objective", "data", "behavior")
        sections.append({"key": key, "title": title, "text": facts if auto else "",
                         "auto": auto})
    return {"template": template, "status": "draft",
            "header": "Individual psychotherapy session", "sections": sections}


# --- the practice and its sessions -------------------------------------------------


def init_practice(storage: Storage, runtime_dir, username: str = USER,
                  passphrase: str = PASSPHRASE, work_factor: int = 10) -> str:
    """Create the practice keys and the first clinician (device left unlocked).

    Returns the recovery key. ``work_factor`` is the scrypt cost of the key
    slot; the web app opens it with the configuration's factor, so keep them equal.
    """
    keys = KeyStore(storage, runtime_dir, work_factor=work_factor)
    return keys.init(username, passphrase)


def encrypt_json(value: object, recipient: age.X25519Recipient) -> bytes:
    """A JSON value as an age ciphertext to the practice recipient."""
    return age.encrypt(json.dumps(value, ensure_ascii=False).encode("utf-8"), [recipient])


def _silent_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))
    return buf.getvalue()


def flag_summary(result: TranscriptResult | None) -> list[dict]:
    """The sessions row's flag summary: [{"category", "count"}]."""
    counts: dict[str, int] = {}
    for flag in result.flags if result else ():
        counts[flag.category] = counts.get(flag.category, 0) + 1
    return [{"category": k, "count": v} for k, v in sorted(counts.items())]


def add_session(storage: Storage, clock: Clock, recipient: age.X25519Recipient, *,
                started_at: datetime, result: TranscriptResult | None = None,
                label: str | None = None,
                consent: bool = False, state: State = State.DRAFT,
                duration_s: float | None = None, progress: float = 0.0,
                waiting_reason: str | None = None, error: str | None = None,
                owner: str | None = USER) -> int:
    """One session walked through the states the recorder and the overnight job use.

    ``state`` is where it stops: RECORDED or INTERRUPTED (waiting, with an
    encrypted one-second recording on disk), TRANSCRIBING (with ``progress``),
    DRAFT (transcript and draft note stored, audio deleted as the default
    retention does) or FAILED (with ``error``). SIGNED is not seeded: sign
    through the page.
    ``clock`` must be the clock ``storage`` was built with. The session belongs
    to the account ``owner`` (``None``: unassigned, for a clinician to claim).
    """
    if state in (State.RECORDING, State.SIGNED):
        raise ValueError(f"add_session cannot seed a {state} session; sign through the page")
    if duration_s is None:
        duration_s = result.duration_s if result else 50 * 60.0
    clock.at = started_at
    account = viewer(storage, owner) if owner else None
    session = storage.create_session(owner_id=account.user_id if account else None)
    clock.at = started_at + timedelta(seconds=duration_s)
    ended = State.INTERRUPTED if state == State.INTERRUPTED else State.RECORDED
    storage.transition(session.id, ended, ended_at=clock.at,
                       duration_s=duration_s, recovered_s=duration_s if ended ==
                       State.INTERRUPTED else None)
    details = {"consent": int(consent)}
    if label:
        details["label_enc"] = age.encrypt(label.encode("utf-8"), [recipient])
    storage.update_session(session.id, **details)
    if state in (State.RECORDED, State.INTERRUPTED):
        session.audio_path.write_bytes(age.encrypt(_silent_wav(), [recipient]))
        if waiting_reason:
            storage.update_session(session.id, waiting_reason=waiting_reason)
        return session.id
    clock.at += timedelta(hours=10)  # the overnight run
    storage.transition(session.id, State.TRANSCRIBING, progress=progress)
    if state == State.TRANSCRIBING:
        session.audio_path.write_bytes(age.encrypt(_silent_wav(), [recipient]))
        return session.id
    if state == State.FAILED:
        storage.transition(session.id, State.FAILED, error=error)
        return session.id
    _store_result(storage, session.id, result, recipient)
    storage.transition(session.id, State.DRAFT, progress=1.0,
                       transcribed_at=clock.at)
    storage.delete_audio(session.id)  # retention: delete_after_transcription
    return session.id


def _store_result(storage: Storage, session_id: int, result: TranscriptResult | None,
                  recipient: age.X25519Recipient) -> None:
    if result is None:
        raise ValueError("a transcribed session needs a result")
    storage.save_transcript(session_id, encrypt_json(result.to_json(), recipient))
    storage.save_note(session_id, encrypt_json(result.note, recipient), author="overnight")
    summary = flag_summary(result)
    if summary:
        storage.update_session(session_id, flags_enc=encrypt_json(summary, recipient))


# --- sessions with their recording kept (for listening) -----------------------------------


def tone_pcm(seconds: float, rate: int = 8000, hz: float = 440.0) -> Iterator[bytes]:
    """``seconds`` of a quiet sine tone as 16-bit mono PCM, one second at a time.

    Cheap to make at any length: one second is computed and repeated (a whole
    number of cycles, so the repeats join without a click).
    """
    second = array.array("h", (int(3000 * math.sin(2 * math.pi * hz * n / rate))
                               for n in range(rate)))
    if sys.byteorder == "big":  # WAV is little-endian
        second.byteswap()
    one = second.tobytes()
    whole, part = divmod(round(seconds * rate), rate)
    for _ in range(whole):
        yield one
    if part:
        yield one[:part * 2]


def write_recording(session: Session, recipient: age.X25519Recipient, pcm: Iterable[bytes]) -> int:
    """Encrypt a recording to ``session.audio_path`` as the recorder does; its size in bytes.

    A 44-byte WAV header for the session's format, then the PCM, through
    :class:`age.StreamWriter` to the practice recipient.
    """
    fmt = AudioFormat(sample_rate=session.sample_rate, channels=session.channels)
    with age.StreamWriter(session.audio_path, [recipient]) as stream:
        stream.write(wav_header(fmt))
        for block in pcm:
            stream.write(block)
    return session.audio_path.stat().st_size


def with_gap(result: TranscriptResult, start: float, end: float) -> TranscriptResult:
    """``result`` with ``start``..``end`` unreadable, as a damaged chunk leaves it: no lines there.

    For a result without bookmarks or flags (their segment indexes would move).
    """
    kept = tuple(s for s in result.segments if s.end <= start or s.start >= end)
    return dataclasses.replace(result, segments=kept, gaps=(*result.gaps, Gap(start, end)))


def add_recorded_session(storage: Storage, clock: Clock, recipient: age.X25519Recipient, *,
                         started_at: datetime, result: TranscriptResult,
                         label: str | None = None, sample_rate: int = 8000,
                         owner: str | None = USER) -> int:
    """A drafted session whose recording is kept (retention "delete_after_signing").

    The recording is ``result.duration_s`` of :func:`tone_pcm` at
    ``sample_rate`` (8 kHz keeps a 25-minute file at 24 MB), so its times
    match the transcript's. Otherwise like :func:`add_session` with DRAFT.
    """
    clock.at = started_at
    account = viewer(storage, owner) if owner else None
    session = storage.create_session(sample_rate=sample_rate,
                                     owner_id=account.user_id if account else None)
    write_recording(session, recipient, tone_pcm(result.duration_s, sample_rate))
    clock.at = started_at + timedelta(seconds=result.duration_s)
    storage.transition(session.id, State.RECORDED, ended_at=clock.at,
                       duration_s=result.duration_s)
    if label:
        storage.update_session(session.id,
                               label_enc=age.encrypt(label.encode("utf-8"), [recipient]))
    clock.at += timedelta(hours=10)  # the overnight run
    storage.transition(session.id, State.TRANSCRIBING, progress=0.0)
    _store_result(storage, session.id, result, recipient)
    storage.transition(session.id, State.DRAFT, progress=1.0, transcribed_at=clock.at)
    return session.id
