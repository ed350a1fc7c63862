"""The transcript result: what transcribing one session gives, typed and versioned.

The pipeline builds a :class:`TranscriptResult`. It is stored age-encrypted as
the JSON of :meth:`TranscriptResult.to_json` (``transcripts.result_enc``),
printed by ``holdnote transcribe-file --json``, and read back with
:meth:`TranscriptResult.from_json`, which upgrades older results first, by the
web pages, export and search. Standard library only, so the notes, the
transcription side and the web UI can all import it.

Versions (the ``version`` key):

1. The dict the pipeline wrote before this module, stored on devices today.
   Its keys are those of version 2, but nothing checked them: a result from an
   older seeder or a hand-made one may lack keys or hold odd values.
   :func:`migrate` reads it as leniently as the session page always did: a
   missing time is 0, an entry that is not an object is dropped.
2. The same keys and layout, complete and checked when read.
3. Adds ``gaps``: the stretches of the recording that could not be read (a
   damaged chunk the salvage reader skipped), so times after them stay right.
   A version-2 result had none. ``gaps`` may be absent from a
   version-3 result too (test fixtures and hand-made results): absent means none.
4. Adds ``review`` to each risk flag (current): ``"removed"`` for a flag that a
   correction of the transcript took away, kept until the clinician confirms
   the removal; ``""`` otherwise (every flag of a version-3 result). Like
   ``gaps``, it may be absent from a hand-made result: absent means ``""``.

A result from a newer Holdnote, or a version-2 result that breaks the layout,
raises :class:`TranscriptFormatError` naming the version or the field.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from appliance.errors import TranscriptFormatError

CURRENT_VERSION = 4


# --- the parts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One transcript line: who spoke, from when to when (seconds), and the words."""

    start: float
    end: float
    speaker: str
    text: str

    def to_json(self) -> dict:
        """``{"start", "end", "speaker", "text"}``."""
        return asdict(self)


@dataclass(frozen=True)
class Span:
    """A stretch of the recording, in seconds from its start."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        """Its length in seconds."""
        return self.end - self.start

    def to_json(self) -> dict:
        """``{"start", "end"}``."""
        return asdict(self)


@dataclass(frozen=True)
class Silence(Span):
    """A stretch with no speech."""


@dataclass(frozen=True)
class Metrics:
    """Talk and silence figures of one session.

    ``words_per_minute`` holds each speaker's rate over their own talk time and,
    under ``"overall"``, the rate over all talk time. ``turns`` counts changes of
    speaker plus one. ``longest_silence_s`` is the longest gap in speech whether
    or not it passed the silence threshold.
    """

    duration_s: float
    talk_time_s: dict[str, float]
    talk_share: dict[str, float]
    longest_silence_s: float
    words_per_minute: dict[str, float]
    turns: int
    word_count: int
    words: dict[str, int] = field(default_factory=dict)
    silence_count: int = 0
    silence_total_s: float = 0.0

    def to_json(self) -> dict:
        """The fields as a dict, in declaration order."""
        return asdict(self)


# RiskFlag.review of a flag a correction took away (awaiting the clinician's confirmation).
REMOVED = "removed"


@dataclass(frozen=True)
class RiskFlag:
    """One sentence that uses risk language.

    ``start``/``end`` are the times of the segment holding the sentence; ``quote``
    is the whole sentence and ``term`` the words that matched. ``negated`` is
    True when the sentence denies the risk ("I'm not suicidal"), which is still
    flagged. For an answer to a clinician's risk question, ``context`` holds the
    question and ``term`` what it asked about. ``review`` is :data:`REMOVED` for a
    flag a correction of the transcript took away: it stays listed until the
    clinician confirms the removal (signing waits for that); ``""`` otherwise.
    """

    category: str
    start: float
    end: float
    speaker: str
    quote: str
    negated: bool
    term: str
    context: str = ""
    review: str = ""

    @property
    def removed(self) -> bool:
        """True for a flag a correction took away, awaiting the clinician's confirmation."""
        return self.review == REMOVED

    def to_json(self) -> dict:
        """The fields as a dict, in declaration order."""
        return asdict(self)


@dataclass(frozen=True)
class Bookmark:
    """A moment the clinician marked while recording, with the line it points at.

    ``segment_index`` is the position in :attr:`TranscriptResult.segments` (None
    for a mark before any speech); ``snippet`` is that line, shortened; ``text``
    is what the timeline shows beside the mark.
    """

    offset: float
    segment_index: int | None
    speaker: str | None
    snippet: str
    text: str

    def to_json(self) -> dict:
        """The fields as a dict, in declaration order."""
        return asdict(self)


@dataclass(frozen=True)
class Gap(Span):
    """A stretch of the recording that could not be read (seconds from its start).

    The audio there was damaged on disk and skipped; the transcript has nothing
    for it, and everything after it keeps its true time.
    """


# --- the result ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptResult:
    """Everything transcribing one recording gives (the current version).

    ``note`` is the draft note as :func:`appliance.notes.draft.build_draft_note` made
    it (kept as its JSON object: the note has its own record once stored).
    ``metrics`` is None only for an old result that had none. ``gaps`` lists
    the unreadable stretches of the recording, in order.
    """

    duration_s: float
    model: str
    language: str | None
    segments: tuple[Segment, ...]
    salvaged: bool = False
    warnings: tuple[str, ...] = ()
    silences: tuple[Silence, ...] = ()
    metrics: Metrics | None = None
    flags: tuple[RiskFlag, ...] = ()
    bookmarks: tuple[Bookmark, ...] = ()
    note: Mapping[str, Any] = field(default_factory=dict)
    gaps: tuple[Gap, ...] = ()
    version: int = field(default=CURRENT_VERSION, init=False)

    @property
    def unreadable_s(self) -> float:
        """Seconds of the recording that could not be read."""
        return round(sum(gap.duration for gap in self.gaps), 2)

    @property
    def speakers(self) -> tuple[str, ...]:
        """The speakers' names in the order they first speak."""
        return tuple(dict.fromkeys(segment.speaker for segment in self.segments))

    def clinician_label(self, configured: str, enrolled: Iterable[str] = ()) -> str:
        """The speaker label of the clinician's lines in this transcript.

        ``configured`` (``speakers.clinician_name``) where it appears, else the first
        enrolled voice's name that does (a voice enrolled as "Dr Rivera" labels
        its lines so), else ``configured``.
        """
        names = self.speakers
        return next((name for name in (configured, *enrolled) if name in names), configured)

    def to_json(self) -> dict:
        """The stored (and ``transcribe-file --json``) form: a JSON-able dict.

        Keys in the order version 1 wrote them, so the command's output keeps
        its layout; later keys follow.
        """
        return {
            "version": self.version,
            "duration_s": self.duration_s,
            "model": self.model,
            "language": self.language,
            "segments": [segment.to_json() for segment in self.segments],
            "salvaged": self.salvaged,
            "warnings": list(self.warnings),
            "silences": [silence.to_json() for silence in self.silences],
            "metrics": self.metrics.to_json() if self.metrics is not None else None,
            "flags": [flag.to_json() for flag in self.flags],
            "bookmarks": [mark.to_json() for mark in self.bookmarks],
            "note": copy.deepcopy(dict(self.note)),
            "gaps": [gap.to_json() for gap in self.gaps],
        }

    @classmethod
    def from_json(cls, data: object) -> TranscriptResult:
        """A result from its JSON object, of this or any older version (see :func:`migrate`).

        Raises :class:`TranscriptFormatError` for a newer version or a malformed result.
        """
        return _result(_Fields(migrate(data), ""))

    def to_bytes(self) -> bytes:
        """The JSON text as stored (before encryption)."""
        return json.dumps(self.to_json()).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> TranscriptResult:
        """Inverse of :meth:`to_bytes`; reads older versions too."""
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise TranscriptFormatError(
                f"the stored transcript result is not JSON ({error}); "
                "transcribe the session again") from None
        return cls.from_json(data)


# --- versions --------------------------------------------------------------------------------


def migrate(data: object) -> dict:
    """A stored result's JSON object upgraded to :data:`CURRENT_VERSION` (still a dict).

    A result without a ``version`` key counts as version 1. Raises
    :class:`TranscriptFormatError` for a version this Holdnote does not know.
    """
    if not isinstance(data, Mapping):
        raise TranscriptFormatError(
            f"a transcript result must be a JSON object, got {_kind(data)}")
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise TranscriptFormatError(
            f"the transcript result's version must be a whole number from 1, got {version!r}")
    if version > CURRENT_VERSION:
        raise TranscriptFormatError(
            f"this transcript result is version {version}, written by a newer Holdnote; this "
            f"one reads versions 1 to {CURRENT_VERSION}: update Holdnote (sudo ./install.sh)")
    while version < CURRENT_VERSION:
        data = _UPGRADES[version](data)
        version = data["version"]
    return dict(data)


def _v1_to_v2(old: Mapping) -> dict:
    """Version 1 as the session page read it: odd values become defaults, odd entries go."""
    metrics = old.get("metrics")
    note = old.get("note")
    return {
        "version": 2,
        "duration_s": _num(old.get("duration_s")),
        "model": str(old.get("model") or ""),
        "language": str(old.get("language") or "") or None,
        "segments": [{"start": _num(s.get("start")), "end": _num(s.get("end"), _num(s.get("start"))),
                      "speaker": str(s.get("speaker") or ""), "text": str(s.get("text") or "")}
                     for s in _objects(old.get("segments"))],
        "salvaged": bool(old.get("salvaged")),
        "warnings": [str(w) for w in _array(old.get("warnings")) if w],
        "silences": [{"start": _num(s.get("start")), "end": _num(s.get("end"))}
                     for s in _objects(old.get("silences"))],
        "metrics": _v1_metrics(metrics) if isinstance(metrics, Mapping) else None,
        "flags": [_v1_flag(flag) for flag in _objects(old.get("flags"))],
        "bookmarks": [_v1_bookmark(mark) for mark in _objects(old.get("bookmarks"))],
        "note": dict(note) if isinstance(note, Mapping) else {},
    }


def _v1_metrics(old: Mapping) -> dict:
    return {
        "duration_s": _num(old.get("duration_s")),
        "talk_time_s": _num_map(old.get("talk_time_s")),
        "talk_share": _num_map(old.get("talk_share")),
        "longest_silence_s": _num(old.get("longest_silence_s")),
        "words_per_minute": _num_map(old.get("words_per_minute")),
        "turns": int(_num(old.get("turns"))),
        "word_count": int(_num(old.get("word_count"))),
        "words": {name: int(value) for name, value in _num_map(old.get("words")).items()},
        "silence_count": int(_num(old.get("silence_count"))),
        "silence_total_s": _num(old.get("silence_total_s")),
    }


def _v1_flag(old: Mapping) -> dict:
    start = _num(old.get("start"))
    return {"category": str(old.get("category") or "other"), "start": start,
            "end": _num(old.get("end"), start), "speaker": str(old.get("speaker") or ""),
            "quote": str(old.get("quote") or ""), "negated": bool(old.get("negated")),
            "term": str(old.get("term") or ""), "context": str(old.get("context") or "")}


def _v1_bookmark(old: Mapping) -> dict:
    index, speaker = old.get("segment_index"), old.get("speaker")
    return {"offset": _num(old.get("offset")),
            "segment_index": index if _is_int(index) else None,
            "speaker": None if speaker is None else str(speaker),
            "snippet": str(old.get("snippet") or ""), "text": str(old.get("text") or "")}


def _v2_to_v3(old: Mapping) -> dict:
    """Version 2 knew of no unreadable stretches."""
    return {**old, "version": 3, "gaps": []}


def _v3_to_v4(old: Mapping) -> dict:
    """Version 3 knew of no corrections: every flag stands as recognised."""
    flags = [{**flag, "review": ""} if isinstance(flag, Mapping) else flag
             for flag in _array(old.get("flags"))] if "flags" in old else old.get("flags")
    return {**old, "version": 4, "flags": flags}


_UPGRADES: dict[int, Callable[[Mapping], dict]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}


def _num(value: object, default: float = 0.0) -> float:
    """A number from old JSON, where anything else gives ``default``."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def _num_map(value: object) -> dict[str, float]:
    return {str(k): _num(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _array(value: object) -> list:
    return value if isinstance(value, list) else []


def _objects(value: object) -> list[Mapping]:
    return [item for item in _array(value) if isinstance(item, Mapping)]


# --- reading the current version, strictly -------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: object) -> str:
    """The JSON name of a value's type; never the value itself (it may be client words)."""
    for kind, types in (("null", type(None)), ("a boolean", bool), ("a number", int | float),
                        ("a string", str), ("an array", list), ("an object", Mapping)):
        if isinstance(value, types):
            return kind
    return type(value).__name__


class _Fields:
    """One JSON object of a result, read field by field; errors name the path."""

    def __init__(self, value: object, path: str):
        if not isinstance(value, Mapping):
            raise TranscriptFormatError(
                f"the transcript result's {path} must be an object, got {_kind(value)}")
        self.data, self.path = value, path

    def at(self, key: str) -> str:
        """The path of ``key``, such as ``segments[3].start``."""
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, test: Callable[[object], bool], expected: str) -> Any:
        """The value of ``key``, which must pass ``test``."""
        if key not in self.data:
            raise TranscriptFormatError(f"the transcript result has no {self.at(key)}")
        value = self.data[key]
        if not test(value):
            raise TranscriptFormatError(
                f"the transcript result's {self.at(key)} must be {expected}, got {_kind(value)}")
        return value

    def number(self, key: str) -> float:
        return float(self.get(key, _is_number, "a number"))

    def integer(self, key: str) -> int:
        return int(self.get(key, _is_int, "a whole number"))

    def text(self, key: str) -> str:
        return str(self.get(key, lambda v: isinstance(v, str), "a string"))

    def text_or_none(self, key: str) -> str | None:
        return self.get(key, lambda v: v is None or isinstance(v, str), "a string or null")

    def boolean(self, key: str) -> bool:
        return bool(self.get(key, lambda v: isinstance(v, bool), "true or false"))

    def objects(self, key: str) -> list[_Fields]:
        items = self.get(key, lambda v: isinstance(v, list), "an array")
        return [_Fields(item, f"{self.at(key)}[{i}]") for i, item in enumerate(items)]

    def texts(self, key: str) -> tuple[str, ...]:
        items = self.get(key, lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                         "an array of strings")
        return tuple(items)

    def numbers(self, key: str, test: Callable[[object], bool] = _is_number) -> dict:
        return dict(self.get(key, lambda v: isinstance(v, Mapping) and all(
            test(x) for x in v.values()), "an object of numbers"))


def _result(fields: _Fields) -> TranscriptResult:
    metrics = fields.get("metrics", lambda v: v is None or isinstance(v, Mapping),
                         "an object or null")
    return TranscriptResult(
        duration_s=fields.number("duration_s"),
        model=fields.text("model"),
        language=fields.text_or_none("language"),
        segments=tuple(Segment(f.number("start"), f.number("end"), f.text("speaker"),
                               f.text("text")) for f in fields.objects("segments")),
        salvaged=fields.boolean("salvaged"),
        warnings=fields.texts("warnings"),
        silences=tuple(Silence(f.number("start"), f.number("end"))
                       for f in fields.objects("silences")),
        metrics=None if metrics is None else _metrics(_Fields(metrics, fields.at("metrics"))),
        flags=tuple(_flag(f) for f in fields.objects("flags")),
        bookmarks=tuple(_bookmark(f) for f in fields.objects("bookmarks")),
        note=copy.deepcopy(dict(fields.get("note", lambda v: isinstance(v, Mapping), "an object"))),
        gaps=tuple(Gap(f.number("start"), f.number("end"))
                   for f in (fields.objects("gaps") if "gaps" in fields.data else ())),
    )


def _metrics(fields: _Fields) -> Metrics:
    return Metrics(
        duration_s=fields.number("duration_s"),
        talk_time_s=fields.numbers("talk_time_s"),
        talk_share=fields.numbers("talk_share"),
        longest_silence_s=fields.number("longest_silence_s"),
        words_per_minute=fields.numbers("words_per_minute"),
        turns=fields.integer("turns"),
        word_count=fields.integer("word_count"),
        words=fields.numbers("words", _is_int),
        silence_count=fields.integer("silence_count"),
        silence_total_s=fields.number("silence_total_s"),
    )


def _flag(fields: _Fields) -> RiskFlag:
    return RiskFlag(
        category=fields.text("category"), start=fields.number("start"), end=fields.number("end"),
        speaker=fields.text("speaker"), quote=fields.text("quote"),
        negated=fields.boolean("negated"), term=fields.text("term"),
        context=fields.text("context"),
        review=fields.text("review") if "review" in fields.data else "")


def _bookmark(fields: _Fields) -> Bookmark:
    index = fields.get("segment_index", lambda v: v is None or _is_int(v), "a whole number or null")
    return Bookmark(offset=fields.number("offset"), segment_index=index,
                    speaker=fields.text_or_none("speaker"), snippet=fields.text("snippet"),
                    text=fields.text("text"))
