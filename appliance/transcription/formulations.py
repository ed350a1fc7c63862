"""Drafting case conceptualizations: what the client page's "Draft case conceptualization" queues.

``holdnote draft --queued`` (started through ``holdnote-draft.path``, like a
Redraft) drafts the queued notes and then every queued case conceptualization
with the same loaded model. Each is drafted from the client's sessions whose
notes are signed (nothing from an unsigned session), one P at a time; after
every P the version is saved encrypted with its progress, so the page shows
how far it is. A P the clinician typed in keeps their text. When it cannot be
drafted (no signed note, consent withdrawn, no model) the version says why.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date
from pathlib import Path

from appliance import age
from appliance.access.audit import AuditLog
from appliance.clients import consent
from appliance.clients import formulation as model_types
from appliance.clients.formulation import NO_SIGNED_NOTES, Section, day_label
from appliance.drafting.formulation import FormulationDrafter, PDraft, SourceSession
from appliance.drafting.runtime import LanguageModel
from appliance.errors import (
    CryptoError,
    DeviceLockedError,
    DraftingError,
    NotInitializedError,
    TranscriptFormatError,
)
from appliance.notes import facts
from appliance.store import formulations as table
from appliance.store.db import Session, State, Storage
from appliance.store.voices import voice_names
from appliance.transcript import TranscriptResult
from appliance.transcription.joblock import single_instance

log = logging.getLogger(__name__)

ACTOR = "transcriber"


def signed_sources(cfg, storage: Storage, client_id: int, identity
                   ) -> tuple[list[SourceSession], dict[int, str]]:
    """The client's signed sessions as the drafter reads them, and their dates by id."""
    sources, days = [], {}
    enrolled = voice_names(storage)
    for session in storage.client_sessions(client_id):
        note = storage.load_note(session.id)
        transcript = storage.load_transcript(session.id)
        if session.state != State.SIGNED or note is None or not note["signed_at"] or transcript is None:
            continue
        sources.append(_source(cfg, session, note["note_enc"], transcript, identity, enrolled))
        days[session.id] = day_label(session.started_at.date())
    return sources, days


def _source(cfg, session: Session, note_enc: bytes, transcript: bytes, identity,
            enrolled: list[str]) -> SourceSession:
    result = TranscriptResult.from_bytes(age.decrypt(transcript, [identity]))
    note = json.loads(age.decrypt(note_enc, [identity]))
    text = " ".join(str(s.get("text", "")) for s in note.get("sections", []) if isinstance(s, dict))
    return SourceSession(session.id, tuple(facts.transcript_lines(result.segments)), text,
                         result.clinician_label(cfg.speakers.clinician_name, enrolled),
                         frozenset(flag.start for flag in result.flags))


class FormulationRunner:
    """Drafts the queued case conceptualizations with one model, loaded on first use."""

    def __init__(self, cfg, storage: Storage, audit: AuditLog, *,
                 recipient: Callable[[], age.Recipient], model: Callable[[], LanguageModel],
                 today: Callable[[], date] | None = None):
        self.cfg = cfg
        self.storage = storage
        self.audit = audit
        self.recipient = recipient
        self.model = model
        self.today = today or (lambda: storage.now().date())
        self._done: set[str] = set()  # the Ps of the version being drafted that are done

    def run(self, identity) -> int:
        """Draft every waiting version; how many were drafted."""
        done = 0
        for client_id, number in table.waiting(self.storage):
            if table.claim(self.storage, client_id, number):
                done += self.draft(client_id, number, identity)
        return done

    def draft(self, client_id: int, number: int, identity) -> bool:
        """Draft one version; False (with the reason on the version) when it cannot be."""
        try:
            sources, days = self._sources(client_id, identity)
            language_model = self.model()
        except (DraftingError, CryptoError, TranscriptFormatError, ValueError) as error:
            return self._give_up(client_id, number, str(error))
        settings = self.cfg.notes
        drafter = FormulationDrafter(language_model, approach=settings.approach,
                                     length=settings.length, quotes=settings.quotes)
        label = language_model.choice.label
        language_model.reset()
        self._done = set()
        try:
            drafts = drafter.draft(sources, lambda p: self._save(client_id, number, identity, p,
                                                                 days, label))
        except (RuntimeError, ValueError) as error:
            return self._give_up(client_id, number, f"the model failed while drafting ({error})")
        kept = sum(1 for p in drafts for s in p.statements if s.verified)
        dropped = sum(p.dropped for p in drafts)
        marked = sum(1 for p in drafts for s in p.statements if not s.verified)
        body = self._body(client_id, number, identity)
        table.drafted(self.storage, client_id, number, model_types.seal(body, self.recipient()),
                      progress=1.0, state="draft")
        detail = f"version {number}: {kept} statements kept, {marked} marked, {dropped} dropped"
        self.audit.append(ACTOR, "formulation.drafted", detail=f"client {client_id}, {detail}")
        log.info("client %s: case conceptualization drafted (%s)", client_id, detail)
        return True

    def _sources(self, client_id: int, identity) -> tuple[list[SourceSession], dict[int, str]]:
        if self.storage.client(client_id) is None:
            raise ValueError("the client was deleted")
        blocked = consent.drafting_blocked(self.storage, client_id, self.today())
        if blocked:
            raise ValueError(blocked)
        sources, days = signed_sources(self.cfg, self.storage, client_id, identity)
        if not sources:
            raise ValueError(NO_SIGNED_NOTES)
        return sources, days

    def _body(self, client_id: int, number: int, identity) -> dict:
        row = table.version(self.storage, client_id, number)
        return model_types.open_body(row.body_enc if row else None, identity)

    def _save(self, client_id: int, number: int, identity, drafted: PDraft,
              days: dict[int, str], label: str) -> None:
        """Merge one P into the version as stored now; the clinician's typed text stays."""
        body = self._body(client_id, number, identity)
        sections = {s.key: s for s in model_types.sections_of(body)} if body else {
            s.key: s for s in model_types.empty_sections()}
        old = sections[drafted.key]
        text = old.text if old.edited else model_types.section_text(drafted.statements, days)
        sections[drafted.key] = Section(old.key, old.title, text, tuple(drafted.statements),
                                        old.edited, drafted.dropped)
        self._done.add(drafted.key)
        merged = model_types.body_of(list(sections.values()), approach=self.cfg.notes.approach,
                                     model=label, sessions=days)
        progress = round(len(self._done) / len(model_types.FIVE_PS), 3)
        table.drafted(self.storage, client_id, number, model_types.seal(merged, self.recipient()),
                      progress=min(progress, 0.99))

    def _give_up(self, client_id: int, number: int, reason: str) -> bool:
        table.failed(self.storage, client_id, number, reason)
        self.audit.append(ACTOR, "formulation.draft_failed", detail=f"client {client_id}, version {number}")
        log.error("client %s: the case conceptualization cannot be drafted: %s", client_id, reason)
        return False


def run_queued(job) -> int:
    """Draft the queued case conceptualizations in ``job`` (its storage, keys and model)."""
    if not table.waiting(job.storage):
        return 0
    # The job's own lock: never beside the overnight transcription (two models in memory).
    with single_instance(Path(job.cfg.paths.runtime_dir)) as mine:
        if not mine:
            log.warning("another job is running: it drafts the queued case conceptualizations "
                        "after its notes")
            return 0
        try:
            identity = job.keys.identity()
        except (DeviceLockedError, NotInitializedError):  # they wait, queued, for the next run
            log.warning("device locked: queued case conceptualizations wait until it is unlocked")
            return 0
        return draft_queued(job, identity)


def draft_queued(job, identity) -> int:
    """Draft the queued case conceptualizations inside a run that holds the job's lock."""
    if not table.waiting(job.storage):
        return 0
    runner = FormulationRunner(job.cfg, job.storage, job.audit, recipient=job.keys.recipient,
                               model=job.drafts.model)
    return runner.run(identity)
