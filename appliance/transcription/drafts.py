"""Drafting in the job: every session whose note waits for the model, one section at a time.

After transcription a session is ``draft`` at once, its note holding the facts
and the prompts; ``sessions.drafting`` says ``queued``. This runner (in the
overnight job after the transcripts, and in ``holdnote draft`` for a Redraft)
loads the model once, then drafts each waiting note section by section. After
every section the note is saved (encrypted) with that section filled: that is
the checkpoint, so a job stopped at the end of the night, by the recorder or by
a kill resumes at the next section. A clinician's own text is never written
over. When the model cannot be used, the session keeps its transcript, facts
and prompts and shows one reason; nothing fails and no audio is touched.

A session assigned to a client is drafted only while the client's consent
allows it (:func:`appliance.clients.consent.drafting_blocked`): otherwise it is
``off`` with the reason, and the model never sees it. Its draft opens with what
the client's previous signed note planned and where this session took it up
(:mod:`appliance.drafting.context`).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from appliance import age, service
from appliance.access.audit import AuditLog
from appliance.clients.consent import drafting_blocked
from appliance.drafting import context
from appliance.drafting import note as drafted
from appliance.drafting.drafter import Drafter, DraftStats, SectionDraft
from appliance.drafting.runtime import LanguageModel, ModelChoice, peak_rss_mb, resolve_model
from appliance.drafting.settings import PracticeSettings, SectionSpec
from appliance.errors import CryptoError, DraftingError, InvalidStateError, TranscriptFormatError
from appliance.notes import facts
from appliance.store.db import Session, State, Storage, iso
from appliance.store.voices import voice_names
from appliance.transcript import TranscriptResult

log = logging.getLogger(__name__)

ACTOR = "transcriber"
OFF_REASON = ('Drafting is off on this device: an administrator can turn it on with '
              "'sudo ./install.sh --llm NAME' (drafting.model).")


SIGNED_FIRST = "The note was signed before the draft was finished; the signed note stands."


@dataclass
class Totals:
    """What one run drafted, for the journal and the bench."""

    sessions: int = 0
    sections: int = 0
    dropped: int = 0
    stats: DraftStats = field(default_factory=DraftStats)
    audio_s: float = 0.0

    def add(self, section: SectionDraft) -> None:
        """Count one drafted section."""
        self.stats.merge(section.stats)
        self.sections += 1
        self.dropped += section.dropped


class DraftRunner:
    """Drafts waiting notes with one model, loaded on first use."""

    def __init__(self, cfg, storage: Storage, audit: AuditLog, *, recipient: Callable[[], age.Recipient],
                 check_continue: Callable[[int], None], model: LanguageModel | None = None):
        self.cfg = cfg
        self.storage = storage
        self.audit = audit
        self.recipient = recipient
        self.check_continue = check_continue
        self._model = model
        self.totals = Totals()

    # -- state after transcription

    def state_after_transcript(self) -> dict:
        """The drafting columns for a session whose transcript was just stored."""
        if self.cfg.drafting.model == "none":
            return {"drafting": "off", "drafting_reason": OFF_REASON, "drafting_progress": 0.0}
        return {"drafting": "queued", "drafting_reason": None, "drafting_progress": 0.0}

    # -- the queue

    def queue(self, session_id: int) -> None:
        """Queue one session's note for drafting now (``holdnote draft --session``)."""
        session = self.storage.get_session(session_id)
        if session.state != State.DRAFT:
            raise InvalidStateError(f"session {session_id} is {session.state}; only an unsigned "
                                    "draft with a transcript can be drafted")
        if session.drafting not in ("queued", "drafting"):
            self.storage.update_session(session_id, drafting="queued", drafting_reason=None,
                                        drafting_progress=0.0)

    def run(self, identity, only: int | None = None) -> int:
        """Draft every waiting note (or session ``only``'s); the number drafted.

        Raises ``asr.Stopped`` when the job must stop.
        """
        waiting = self._allowed([s for s in self.storage.drafts_waiting() if only in (None, s.id)])
        if not waiting:
            return 0
        try:
            model = self.model()
        except DraftingError as error:
            for session in waiting:
                self.storage.update_session(session.id, drafting_reason=f"Cannot draft yet: {error}")
            log.error("drafting: %s", error)
            return 0
        done = 0
        while waiting:  # a Redraft asked for during the run is done in it too
            for session in waiting:
                done += self.draft_session(session, identity, model)
            waiting = self._allowed([s for s in self.storage.drafts_waiting()
                                     if s.drafting == "queued" and only in (None, s.id)])
        if done:
            self._report()
        return done

    def _allowed(self, sessions: list[Session]) -> list[Session]:
        """The sessions whose client's consent allows drafting; the rest are turned off, with why."""
        allowed = []
        for session in sessions:
            reason = (drafting_blocked(self.storage, session.client_id,
                                       session.started_at.astimezone().date())
                      if session.client_id is not None else None)
            if reason is None:
                allowed.append(session)
                continue
            # Before the model is loaded or shown a word: the transcript and facts stay.
            with contextlib.suppress(InvalidStateError):
                self.storage.update_session(session.id, drafting="off", drafting_reason=reason,
                                            drafting_progress=0.0)
            self.audit.append(ACTOR, "note.draft_blocked", session_id=session.id,
                              detail=f"client {session.client_id}: consent does not allow drafting")
            log.info("session %s: not drafted: the client's consent does not allow it", session.id)
        return allowed

    def model(self) -> LanguageModel:
        """The configured model, loaded once per run."""
        if self._model is None:
            choice = resolve_model(self.cfg)
            if choice is None:
                raise DraftingError(OFF_REASON)
            self._model = _load(choice, self.cfg)
        return self._model

    # -- one session

    def draft_session(self, session: Session, identity, model: LanguageModel) -> bool:
        """Draft (or finish drafting) one note; False when it could not be."""
        sid = session.id
        try:
            result = self._transcript(sid, identity)
            note = self._working_note(session, identity, result, model)
            settings = PracticeSettings.from_config(self.cfg, note["template"])
            specs = [s for s in settings.sections(note["template"])
                     if s.drafted and s.key not in note["drafting"].get("done", [])]
        except (DraftingError, CryptoError, TranscriptFormatError, ValueError) as error:
            self._give_up(sid, str(error))
            return False
        self.storage.update_session(sid, drafting="drafting", drafting_reason=None)
        service.status(f"Drafting the note of session {sid}")
        model.reset()
        lines = facts.transcript_lines(result.segments)
        clinician = result.clinician_label(self.cfg.speakers.clinician_name,
                                           voice_names(self.storage))
        drafter = make_drafter(self.cfg, model, settings, clinician)
        try:
            for spec in specs:
                self.check_continue(sid)
                statements, section = section_statements(drafter, lines, spec, note, result)
                note = self._save_section(session, identity, note, spec.key, statements,
                                          section.dropped)
                self.totals.add(section)
            self._finish(session, identity, note, result)
        except InvalidStateError:  # signed while it was being drafted: the signed note stands
            self.storage.update_session(sid, drafting="done", drafting_reason=SIGNED_FIRST)
            log.info("session %s: signed before its draft was finished; drafting stopped", sid)
            return False
        except (RuntimeError, ValueError) as error:  # llama.cpp failing mid-answer, a context too small
            self._give_up(sid, f"the model failed while drafting ({error}); what was drafted is kept")
            return False
        return True

    def _transcript(self, sid: int, identity) -> TranscriptResult:
        raw = self.storage.load_transcript(sid)
        if raw is None:
            raise DraftingError("the session has no transcript to draft from")
        return TranscriptResult.from_bytes(age.decrypt(raw, [identity]))

    def _stored_note(self, sid: int, identity) -> dict | None:
        row = self.storage.load_note(sid)
        if row is None:
            return None
        note = json.loads(age.decrypt(row["note_enc"], [identity]))
        return note if isinstance(note, dict) else None

    def _working_note(self, session: Session, identity, result: TranscriptResult,
                      model: LanguageModel) -> dict:
        """The note being drafted: the stored one to resume, or a fresh layout."""
        stored = self._stored_note(session.id, identity)
        resuming = (session.drafting == "drafting" and stored is not None
                    and (stored.get("drafting") or {}).get("state") == "drafting")
        if resuming and stored is not None:
            log.info("session %s: drafting resumes after %s", session.id,
                     ", ".join(stored["drafting"].get("done", [])) or "the start")
            return stored
        settings = PracticeSettings.from_config(self.cfg)
        note = drafted.start(result.note, settings, session.draft_template, model.choice.label)
        note["drafting"]["done"] = []
        clinician = result.clinician_label(self.cfg.speakers.clinician_name, voice_names(self.storage))
        lines = facts.transcript_lines(result.segments)
        context.put(note, context.section_for(self.storage, session, identity, lines, clinician))
        if stored is not None:  # a Redraft, or a note the clinician wrote in while it waited
            titles = {s.get("key"): s.get("title") for s in stored.get("sections", [])}
            drafted.keep_typed(note, drafted.typed_sections(stored, result.note), titles)
        self._save(session.id, note)
        return note

    def _save_section(self, session: Session, identity, note: dict, key: str,
                      statements: list[dict], dropped: int) -> dict:
        """Merge one section into the note as stored now (the clinician may have typed)."""
        current = self._stored_note(session.id, identity)
        if current is not None and (current.get("drafting") or {}).get("state") == "drafting":
            note = current
        drafted.put_section(note, key, statements, dropped)
        note["drafting"].setdefault("done", []).append(key)
        self._save(session.id, note)
        total = len([s for s in note["sections"] if s.get("drafted")]) or 1
        self.storage.update_session(session.id,
                                    drafting_progress=round(len(note["drafting"]["done"]) / total, 3))
        return note

    def _finish(self, session: Session, identity, note: dict, result: TranscriptResult) -> None:
        drafted.finish(note, iso(self.storage.now()))
        self._save(session.id, note)
        if self.storage.get_session(session.id).drafting == "queued":
            log.info("session %s: a Redraft was asked for meanwhile; it is drafted next", session.id)
        else:
            self.storage.update_session(session.id, drafting="done", drafting_progress=1.0,
                                        drafting_reason=_reason_after(note))
        self.totals.sessions += 1
        self.totals.audio_s += result.duration_s
        kept = sum(len([x for x in s.get("statements", []) if x.get("verified")])
                   for s in note["sections"])
        detail = f"{kept} statements kept, {note['drafting']['dropped']} dropped by the check"
        self.audit.append(ACTOR, "note.drafted", session_id=session.id, detail=detail)
        log.info("session %s: note drafted (%s)", session.id, detail)

    def _save(self, sid: int, note: dict) -> None:
        self.storage.save_note(sid, age.encrypt(json.dumps(note).encode(), [self.recipient()]),
                               author="holdnote")

    def _give_up(self, sid: int, reason: str) -> None:
        """One reason on the session; its transcript, facts and note stay as they are."""
        with contextlib.suppress(InvalidStateError):
            self.storage.update_session(sid, drafting="failed", drafting_reason=reason)
        self.audit.append(ACTOR, "note.draft_failed", session_id=sid, detail=reason)
        log.error("session %s: the note cannot be drafted: %s", sid, reason)

    def _report(self) -> None:
        t = self.totals
        s = t.stats
        log.info("drafted %d note(s), %d sections: %d prompt tokens in %.0f s, %d generated in "
                 "%.0f s (%d cut off repeating), %d statements dropped; peak memory %.0f MB",
                 t.sessions, t.sections, s.prompt_tokens, s.prompt_s, s.generated_tokens,
                 s.generate_s, s.looped, t.dropped, peak_rss_mb())


def section_statements(drafter: Drafter, lines: list, spec: SectionSpec, note: dict,
                       result: TranscriptResult) -> tuple[list[dict], SectionDraft]:
    """One section's statements: the risk screen's flags first where they belong, then the model's."""
    # Lines the risk screen flagged are its to report, verbatim: never restated.
    drafter.used.update(flag.start for flag in result.flags)
    section = drafter.draft_section(lines, spec)
    statements = section.statements
    if spec.key == drafted.risk_key(note):
        statements = drafted.risk_statements(result.flags) + statements
    return statements, section


def make_drafter(cfg, model: LanguageModel, settings: PracticeSettings,
                 clinician: str | None = None) -> Drafter:
    """A drafter as the configuration asks (``drafting.method`` "auto": by the model's size).

    ``clinician`` is the label of the clinician's lines (default ``speakers.clinician_name``).
    """
    method = cfg.drafting.method
    if method == "auto":
        method = "lines" if model.choice.small else "summary"
    return Drafter(model, settings, max_tokens=cfg.drafting.max_tokens_per_section,
                   method=method, clinician=clinician or cfg.speakers.clinician_name)


def draft_in_memory(cfg, result: TranscriptResult, model: LanguageModel,
                    moment: str, enrolled: Iterable[str] = ()) -> tuple[dict, Totals]:
    """The drafted note of a transcript that is not stored (``transcribe-file``, the bench).

    ``enrolled`` are the device's voice names, which may label the clinician's lines.
    """
    model.reset()
    settings = PracticeSettings.from_config(cfg)
    note = drafted.start(result.note, settings, None, model.choice.label)
    drafter = make_drafter(cfg, model, settings,
                           result.clinician_label(cfg.speakers.clinician_name, enrolled))
    lines = facts.transcript_lines(result.segments)
    totals = Totals(audio_s=result.duration_s)
    for spec in (s for s in settings.sections() if s.drafted):
        statements, section = section_statements(drafter, lines, spec, note, result)
        drafted.put_section(note, spec.key, statements, section.dropped)
        totals.add(section)
    totals.sessions = 1
    return drafted.finish(note, moment), totals


def load_model(cfg) -> LanguageModel | None:
    """The configured model loaded, or None when drafting is off."""
    choice = resolve_model(cfg)
    return None if choice is None else _load(choice, cfg)


def _load(choice: ModelChoice, cfg) -> LanguageModel:
    return LanguageModel.load(choice, context_tokens=cfg.drafting.context_tokens,
                              threads=cfg.drafting.threads)


def _reason_after(note: dict) -> str | None:
    """A line for the page when the check left nothing of the model's answers."""
    kept = sum(1 for s in note["sections"] if s.get("key") != context.followup.KEY
               for x in s.get("statements", [])
               if x.get("verified") and x.get("source") != drafted.RISK_SOURCE)
    dropped = int(note["drafting"].get("dropped", 0))
    if kept == 0 and dropped:
        return (f"The model's answers could not be used: all {dropped} statements failed the "
                "grounding check, so the sections say \u201cNot discussed\u201d.")
    return None
