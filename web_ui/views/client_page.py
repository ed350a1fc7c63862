"""The client page: a client's sessions over time, their trends, themes, goals and language cues.

``clients.page`` (GET /clients/<id>) on the ``clients`` blueprint. Only the
client's clinician sees it (anyone else gets the same 404 as for no client);
a locked device sends the clinician to log in, as every page that reads
client text does. The figures come from :mod:`appliance.clients.analysis`,
computed from the decrypted transcripts and kept in this worker's plaintext
cache under the transcripts' version tags, so the page is recomputed only
when a session is added, corrected or transcribed (or the goals change). Audited as ``client.view``
with the client's id only.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from flask import render_template, url_for
from markupsafe import Markup

from appliance.clients import consent as consent_mod
from appliance.clients.analysis import Analysis, analyse
from appliance.clients.language import Cue
from appliance.clients.lines import SessionText
from appliance.clients.records import Client
from appliance.clients.themes import Mention, Theme
from appliance.store.db import Session
from appliance.store.voices import voice_names
from appliance.transcript import TranscriptResult
from web_ui.views import charts, interventions, moments
from web_ui.views.client_access import audit_client, client_for, session_day
from web_ui.views.clients import bp
from web_ui.views.context import services
from web_ui.views.plaincache import Damaged, Where

log = logging.getLogger(__name__)

# The analysis of 100 sessions is a few hundred kB of Python objects: counted so against
# the worker's plaintext cache (its key is about 60 bytes a session).
_CACHE_WEIGHT = 50
# Sessions listed per theme and per goal (the latest); the counts cover them all.
SHOWN_SESSIONS = 8


@dataclass(frozen=True)
class Row:
    """One session on the timeline."""

    session: Session
    day: date
    href: str
    flags: int | None  # None: no transcript to count them in
    flag_categories: tuple[str, ...]
    bookmarks: int
    transcript: str  # "", "none" (not transcribed yet) or "damaged"


def session_texts(sessions: list[Session], identity) -> tuple[list[SessionText], dict[int, str]]:
    """The readable transcripts, and for the others why not ("none" or "damaged")."""
    svc = services()
    texts, missing = [], {}
    for session in sessions:
        blob = svc.storage.load_transcript(session.id)
        if blob is None:
            missing[session.id] = "none"
            continue
        result = svc.plain.open(blob, identity, Where(session.id, "transcript"),
                                TranscriptResult.from_bytes)
        if isinstance(result, Damaged):
            missing[session.id] = "damaged"
            continue
        texts.append(SessionText(session.id, session_day(session.started_at), result))
    return texts, missing


def _cache_key(client: Client, sessions: list[Session], clinician: str,
               enrolled: list[str]) -> bytes:
    """What the analysis depends on: each transcript's version tag, the dates, goals, names.

    The tags are the search index's (one query for every session), so a cached page
    costs no transcript read; a correction or a new transcription changes its tag.
    """
    tags = {row["id"]: row["transcript_v"] for row in services().storage.search_fingerprints()}
    return json.dumps([list(client.record.goals), clinician, enrolled,
                       [[s.id, s.started_at.isoformat(), tags.get(s.id)] for s in sessions]]
                      ).encode()


TextsOnce = Callable[[], tuple[list[SessionText], dict[int, str]]]


def _texts_once(sessions: list[Session], identity) -> TextsOnce:
    """The client's transcripts decrypted at most once per request, by whichever
    analysis needs them first (the others are usually cached)."""
    return functools.cache(lambda: session_texts(sessions, identity))


def _analysis(client: Client, sessions: list[Session], texts: TextsOnce) -> tuple[Analysis, dict]:
    svc = services()
    clinician = svc.cfg.speakers.clinician_name
    enrolled = voice_names(svc.storage)
    key = _cache_key(client, sessions, clinician, enrolled)

    def produce() -> tuple[Analysis, dict]:
        readable, missing = texts()
        return analyse(readable, client.record.goals, clinician_name=clinician,
                       enrolled=enrolled), missing

    return svc.plain.derived("client-page", key, produce, _CACHE_WEIGHT)


def _rows(sessions: list[Session], analysis: Analysis, missing: dict[int, str]) -> list[Row]:
    points = {p.session_id: p for p in analysis.trends.points}
    rows = []
    for session in reversed(sessions):  # newest first, like the sessions list
        point = points.get(session.id)
        rows.append(Row(session, session_day(session.started_at),
                        url_for("sessions.show", session_id=session.id),
                        point.flags if point else None,
                        point.flag_categories if point else (),
                        len(session.bookmarks), missing.get(session.id, "")))
    return rows


def _charts(analysis: Analysis) -> tuple[list[Markup], list[tuple[Cue, Markup]]]:
    """The talk charts, and each language cue with its chart."""
    points = analysis.trends.points
    labels = [consent_mod.day(p.when) for p in points]
    notes = [p.unknown_reason for p in points]

    def figure(key, title, unit, values, **options) -> Markup:
        return charts.figure(charts.chart(key, title, unit, labels, values, notes, **options))

    talk = [
        figure("share", "The client's share of talk", "% of talk time",
               [None if p.client_share is None else p.client_share * 100 for p in points],
               decimals=0, y_max=100.0),
        figure("wpm", "The client's words per minute", "words a minute of the client's talk",
               [p.client_wpm for p in points], decimals=0),
        figure("turns", "Turns", "changes of speaker", [p.turns for p in points], decimals=0),
        figure("silences", "Silences", "silences", [p.silence_count for p in points],
               decimals=0),
        figure("silence-seconds", "Time in silence", "seconds",
               [p.silence_total_s for p in points], decimals=0),
        figure("flags", "Risk flags", "flags", [p.flags for p in points], decimals=0),
    ]
    lang = analysis.language
    cues = [(cue, figure(f"cue-{cue.key}", cue.name, "per 100 of the client's words",
                         [p.rate(cue.key) for p in lang.points], decimals=1))
            for cue in lang.cues]
    return talk, cues


def _links(client_id: int) -> dict[str, str]:
    """Links to the client's other pages."""
    return {"edit": url_for("clients.edit", client_id=client_id),
            "consent": url_for("clients.consent", client_id=client_id),
            "formulation": url_for("formulation.page", client_id=client_id),
            "export": url_for("client_export.record", client_id=client_id, fmt="pdf")}


class _LineHrefs:
    """Links to a session page at a line (its ``t-<second>`` anchor), one ``url_for`` a session."""

    def __init__(self) -> None:
        self.pages: dict[int, str] = {}

    def __call__(self, session_id: int, start: float) -> str:
        if session_id not in self.pages:
            self.pages[session_id] = url_for("sessions.show", session_id=session_id)
        return f"{self.pages[session_id]}#t-{int(start)}"


def recent(theme: Theme) -> tuple[list[Mention], int]:
    """A theme's first line in each of its latest sessions, and how many earlier sessions say it.

    A hundred sessions would otherwise make thousands of links.
    """
    first: dict[int, Mention] = {}
    for mention in theme.mentions:
        first.setdefault(mention.session_id, mention)
    shown = list(first.values())[-SHOWN_SESSIONS:]
    return shown, len(first) - len(shown)


def _intervention_charts(client: Client, sessions: list[Session],
                         texts: TextsOnce) -> list[Markup]:
    """Your interventions in the client's sessions over time, cached like the analysis."""
    svc = services()
    key = _cache_key(client, sessions, svc.cfg.speakers.clinician_name, voice_names(svc.storage))
    return interventions.client_charts(key, lambda: texts()[0])


def _moments(client: Client, sessions: list[Session], texts: TextsOnce) -> list[moments.ClientRow]:
    """Moments to review in the client's sessions, cached like the analysis."""
    svc = services()
    key = _cache_key(client, sessions, svc.cfg.speakers.clinician_name, voice_names(svc.storage))
    return moments.client_rows(key, lambda: texts()[0])


@bp.route("/clients/<int:client_id>")
def page(client_id: int):
    """The client page."""
    svc = services()
    identity = svc.keys.identity()  # a locked device: the login page, which unlocks it
    client = client_for(client_id)
    sessions = svc.storage.client_sessions(client_id)
    texts = _texts_once(sessions, identity)
    analysis, missing = _analysis(client, sessions, texts)
    talk, cues = _charts(analysis)
    consents = consent_mod.consents_of(svc.storage, client_id)
    audit_client("client.view", client_id)
    return render_template(
        "client.html", client=client, rows=_rows(sessions, analysis, missing),
        analysis=analysis, talk_charts=talk, cue_charts=cues, consent=consents[0] if consents else None,
        scope_words=consent_mod.SCOPE_WORDS, day=consent_mod.day, links=_links(client_id),
        line_href=_LineHrefs(), recent=recent, shown_sessions=SHOWN_SESSIONS,
        unknown=analysis.trends.unknown,
        intervention_charts=_intervention_charts(client, sessions, texts),
        client_moments=_moments(client, sessions, texts))
