"""Full-text search over the unlocked device, held in this worker's memory.

Client labels and names, notes, addenda and transcripts are decrypted into an index
that lives only in RAM (nothing unencrypted touches the disk). Before each
search a cheap query fingerprints every session (the tails of its
ciphertexts change on every re-encryption), so only sessions that changed,
in any worker or in the overnight job, are decrypted again.
"""

from __future__ import annotations

import bisect
import logging
import re
import sys
import threading
from array import array
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from appliance import age
from appliance.clients.records import open_record
from appliance.errors import TranscriptFormatError
from appliance.store.db import Storage, Viewer
from appliance.transcript import TranscriptResult
from web_ui.views.plaincache import Damaged, PlainCache, Where

log = logging.getLogger(__name__)

MAX_TERMS = 8
SNIPPET_CHARS = 70
SNIPPETS_PER_HIT = 3

@dataclass(frozen=True)
class Part:
    """One searchable piece: the label, a note section, an addendum or a segment."""

    kind: str
    title: str
    text: str
    anchor: str | None = None


KINDS = ("label", "note", "addendum", "transcript")
TRANSCRIPT = KINDS.index("transcript")


def _starts(lengths) -> array:
    """Offsets of pieces of these lengths joined with one separator each."""
    starts, at = array("q"), 0
    for length in lengths:
        starts.append(at)
        at += length + 1
    return starts


def _second(value: Any) -> int:
    """Whole seconds from the stored JSON; -1 for anything that is not a number."""
    try:
        return max(0, int(float(value)))
    except (TypeError, ValueError):
        return -1


@dataclass
class Doc:
    """Everything searchable about one session, packed to stay small.

    A two-hour transcript has about 1,500 segments; one Python object per
    segment would cost more memory than the words. So the parts are joined
    into one original and one case-folded string, with offsets, kinds,
    titles and anchor seconds in compact arrays.
    """

    session_id: int
    started_at: datetime
    state: str
    fingerprint: tuple
    label: str | None
    folded: str = ""
    text: str = ""
    folded_starts: array = field(default_factory=lambda: array("q"))
    text_starts: array = field(default_factory=lambda: array("q"))
    seconds: array = field(default_factory=lambda: array("q"))
    kinds: bytearray = field(default_factory=bytearray)
    titles: list[str] = field(default_factory=list)
    client: str | None = None  # the name of the session's client, if assigned

    def pack(self, parts: list[Part], segments: list[dict]) -> None:
        """Store the small ``parts`` and the transcript ``segments`` in the packed form."""
        kinds = [KINDS.index(p.kind) for p in parts] + [TRANSCRIPT] * len(segments)
        self.titles = [sys.intern(p.title) for p in parts] + [
            sys.intern(str(s.get("speaker") or "Speaker")) for s in segments]
        texts = [p.text for p in parts] + [str(s["text"]).strip() for s in segments]
        self.seconds = array("q", [int(p.anchor[2:]) if p.anchor else -1 for p in parts]
                             + [_second(s.get("start")) for s in segments])
        self.kinds = bytearray(kinds)
        self.text = "\n".join(texts)
        self.folded = self.text.casefold()
        self.text_starts = _starts(len(t) for t in texts)
        # Case folding never shortens text; if the whole is no longer, no part is,
        # and the two share offsets.
        self.folded_starts = (self.text_starts if len(self.folded) == len(self.text)
                              else _starts(len(t.casefold()) for t in texts))

    def part(self, index: int) -> Part:
        """Part ``index`` as it was packed."""
        start = self.text_starts[index]
        end = (self.text_starts[index + 1] - 1 if index + 1 < len(self.text_starts)
               else len(self.text))
        second = self.seconds[index]
        return Part(KINDS[self.kinds[index]], self.titles[index], self.text[start:end],
                    f"t-{second}" if second >= 0 else None)


@dataclass(frozen=True)
class Snippet:
    """A piece of text around a match, split so the template can mark the match."""

    kind: str
    title: str
    before: str
    match: str
    after: str
    anchor: str | None


@dataclass(frozen=True)
class Hit:
    """A session that contains every search term."""

    session_id: int
    started_at: datetime
    state: str
    label: str | None
    matches: int
    snippets: tuple[Snippet, ...]
    client: str | None = None


def parse_query(query: str) -> list[str]:
    """Search terms: quoted phrases stay together, everything is case-folded."""
    terms = []
    for phrase, word in re.findall(r'"([^"]+)"|(\S+)', query):
        term = " ".join((phrase or word).split()).casefold()
        if term and term not in terms:
            terms.append(term)
    return terms[:MAX_TERMS]


def transcript_segments(blob: bytes, identity: age.X25519Identity, plain: PlainCache,
                        session_id: int) -> list[dict]:
    """The segments with words of an encrypted stored result (none if it cannot be read)."""
    raw = plain.open(blob, identity, Where(session_id, "transcript"))
    if isinstance(raw, Damaged):  # reported by the cache; the rest of the session stays searchable
        return []
    try:
        result = TranscriptResult.from_bytes(raw)
    except TranscriptFormatError as error:  # the label and the note stay searchable
        log.warning("a transcript is left out of search: %s", error)
        return []
    return [segment.to_json() for segment in result.segments if segment.text]


def _readable(text: str | Damaged | None) -> str | None:
    """A decrypted text, or ``None`` for none or a damaged one (left out of search)."""
    return text if isinstance(text, str) else None


def note_parts(note: dict) -> list[Part]:
    """One part per note section with text."""
    parts = []
    if note.get("header"):
        parts.append(Part("note", "Note", str(note["header"])))
    for section in note.get("sections") or []:
        if not isinstance(section, dict) or not section.get("text"):
            continue
        text = str(section["text"])
        if text.strip() == str(section.get("prompt") or "").strip():
            continue  # the draft's bracketed prompt is the same in every note
        parts.append(Part("note", str(section.get("title") or section.get("key") or "Note"), text))
    return parts


class SearchIndex:
    """The per-worker index; call :meth:`search` with the unlocked identity."""

    def __init__(self, storage: Storage, plain: PlainCache):
        self.storage = storage
        self.plain = plain
        self._docs: dict[int, Doc] = {}
        self._lock = threading.Lock()
        self._warming: threading.Thread | None = None
        self._built = False

    def warm(self, identity: age.X25519Identity) -> threading.Thread | None:
        """Build the index in the background, so the first search is quick.

        Decrypting every transcript takes seconds on a Raspberry Pi; doing it
        right after a login means the clinician never waits for it. Returns
        the thread (None if the index is built or being built).
        """
        if not self.needs_warming():
            return None
        self._warming = threading.Thread(target=self._warm, args=(identity,),
                                         name="holdnote-search-index", daemon=True)
        self._warming.start()
        return self._warming

    def needs_warming(self) -> bool:
        """True until the index was built once (and while no build is running)."""
        return not self._built and not (self._warming is not None and self._warming.is_alive())

    def _warm(self, identity: age.X25519Identity) -> None:
        try:
            count = self.refresh(identity)
        except Exception as error:  # noqa: BLE001 - a search later will report it
            log.warning("could not prepare the search index: %s", error)
            return
        log.info("search index ready: %d sessions", count)

    def clear(self) -> None:
        """Forget every decrypted document (the device was locked)."""
        with self._lock:
            self._docs = {}
            self._built = False

    def refresh(self, identity: age.X25519Identity) -> int:
        """Bring the index up to date; how many sessions were (re)decrypted."""
        rows = self.storage.search_fingerprints()
        with self._lock:
            seen, changed = set(), 0
            for row in rows:
                seen.add(row["id"])
                fingerprint = (row["label_v"], row["transcript_v"], row["note_v"],
                               row["addenda_v"], row["state"], row["client_id"], row["client_v"])
                doc = self._docs.get(row["id"])
                if doc is None or doc.fingerprint != fingerprint:
                    self._docs[row["id"]] = self._build(row, fingerprint, identity)
                    changed += 1
            for gone in set(self._docs) - seen:
                del self._docs[gone]
            self._built = True
        return changed

    def _build(self, row, fingerprint: tuple, identity: age.X25519Identity) -> Doc:
        session_id = row["id"]
        texts = self.storage.session_texts(session_id)
        label = _readable(self.plain.text(texts.label_enc, identity, Where(session_id, "label")))
        parts = [Part("label", "Client", label)] if label else []
        client = self._client_name(row["client_id"], identity)
        parts += [Part("label", "Client", client)] if client else []
        if texts.note_enc is not None:
            note = self.plain.json(texts.note_enc, identity, Where(session_id, "note"))
            parts += note_parts(note) if isinstance(note, dict) else []
        for blob in texts.addenda_enc:
            text = _readable(self.plain.text(blob, identity, Where(session_id, "addendum")))
            parts += [Part("addendum", "Addendum", text)] if text else []
        segments = []
        if texts.result_enc is not None:
            # Decrypted directly: a whole transcript would crowd the small-item cache.
            segments = transcript_segments(texts.result_enc, identity, self.plain, session_id)
        doc = Doc(session_id, datetime.fromisoformat(row["started_at"]), row["state"],
                  fingerprint, label, client=client)
        doc.pack(parts, segments)
        return doc

    def _client_name(self, client_id: int | None, identity: age.X25519Identity) -> str | None:
        """The display name of the session's client (its record is encrypted like a label)."""
        row = self.storage.client(client_id) if client_id is not None else None
        if row is None:
            return None
        record = open_record(row, lambda blob: self.plain.decrypt(blob, identity))
        return None if record.damaged else record.name  # a damaged record is left out

    def search(self, query: str, identity: age.X25519Identity, viewer: Viewer,
               limit: int = 50, only: set[int] | None = None) -> tuple[list[Hit], int]:
        """Sessions ``viewer`` may read containing every term, newest first, and how many.

        The index holds every session of the device (one per worker); only the
        viewer's own and shared sessions are matched, counted or quoted, and,
        with ``only`` (say one client's sessions), only those among them.
        """
        terms = parse_query(query)
        if not terms:
            return [], 0
        self.refresh(identity)
        readable = self.storage.readable_ids(viewer)
        if only is not None:
            readable &= only
        with self._lock:
            docs = [d for d in self._docs.values()
                    if d.session_id in readable and all(t in d.folded for t in terms)]
        docs.sort(key=lambda d: (d.started_at, d.session_id), reverse=True)
        return [self._hit(d, terms) for d in docs[:limit]], len(docs)

    def _hit(self, doc: Doc, terms: list[str]) -> Hit:
        snippets: list[Snippet] = []
        used: set[int] = set()
        matches = 0
        for term in terms:
            start = doc.folded.find(term)
            while start != -1:
                matches += 1
                index = bisect.bisect_right(doc.folded_starts, start) - 1
                if index not in used and len(snippets) < SNIPPETS_PER_HIT:
                    used.add(index)
                    snippets.append(_snippet(doc.part(index), start - doc.folded_starts[index],
                                             len(term)))
                start = doc.folded.find(term, start + len(term))
        return Hit(doc.session_id, doc.started_at, doc.state, doc.label, matches,
                   tuple(snippets), doc.client)


def _snippet(part: Part, at: int, length: int) -> Snippet:
    text = part.text
    if len(text.casefold()) != len(text):
        # Case folding changed the length (say "ß" -> "ss"): positions do not
        # map back, so show the start of the part without marking.
        return Snippet(part.kind, part.title, _clip_end(text), "", "", part.anchor)
    before = text[max(0, at - SNIPPET_CHARS):at]
    after = text[at + length:at + length + SNIPPET_CHARS]
    if at > SNIPPET_CHARS:
        before = "…" + before.split(" ", 1)[-1]
    if at + length + SNIPPET_CHARS < len(text):
        after = after.rsplit(" ", 1)[0] + "…"
    return Snippet(part.kind, part.title, before, text[at:at + length], after, part.anchor)


def _clip_end(text: str) -> str:
    return text if len(text) <= 2 * SNIPPET_CHARS else text[:2 * SNIPPET_CHARS] + "…"
