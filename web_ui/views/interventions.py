"""Your interventions: the session page's panel, and the charts for the client page and "My practice".

Only the session's own clinician sees any of it: a colleague the session is
shared with gets no panel (it is the clinician's private review, not part of the
record). The figures come from :func:`appliance.notes.interventions.session_interventions`;
who the clinician is in a transcript is :func:`appliance.clients.lines.identify`'s
rule. Each session's figures are cached per transcript ciphertext in this worker,
like the session page's view; the charts by the caller's key (the client page's
and the practice page's transcript version tags).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import mean, median

from markupsafe import Markup

from appliance.access.roles import Access
from appliance.clients.consent import day
from appliance.clients.lines import SessionText, identify
from appliance.notes.interventions import Interventions, Unavailable, session_interventions
from appliance.store.db import Session
from appliance.store.voices import voice_names
from appliance.transcript import TranscriptResult
from web_ui.views import charts
from web_ui.views.context import services
from web_ui.views.plaincache import Damaged, Where

Found = Interventions | Unavailable
# Sessions' figures are small (a few hundred line starts): weighed like a rendered view.
_WEIGHT = 8
UNREADABLE = "The transcript cannot be read, so nothing can be counted."


@dataclass(frozen=True)
class Group:
    """Sessions drawn as one point: one session (a client's) or one month (the practice)."""

    label: str
    found: tuple[Found, ...]

    @property
    def counted(self) -> list[Interventions]:
        """The sessions of the group whose interventions could be counted."""
        return [f for f in self.found if isinstance(f, Interventions)]

    @property
    def note(self) -> str:
        """Why the group has no figures (the first session's reason), "" when it has."""
        reasons = [f.reason for f in self.found if isinstance(f, Unavailable)]
        return "" if self.counted or not reasons else reasons[0]


def names() -> tuple[str, list[str]]:
    """The configured clinician name and the enrolled voices: who the clinician is."""
    svc = services()
    return svc.cfg.speakers.clinician_name, voice_names(svc.storage)


def measure(result: TranscriptResult, clinician_name: str, enrolled: Sequence[str]) -> Found:
    """One session's interventions, the clinician's lines told as the client page tells them."""
    who = identify(result, clinician_name, enrolled)
    label = who.clinician or result.clinician_label(clinician_name, enrolled)
    return session_interventions(result, label)


def page_context(session: Session, level: Access, identity) -> dict:
    """What ``_interventions.html`` needs: the figures for the owner, nothing for anyone else."""
    svc = services()
    blob = svc.storage.load_transcript(session.id) if level == Access.OWN else None
    if blob is None:
        return {"interventions": None}
    name, enrolled = names()

    def produce() -> Found:
        result = svc.plain.open(blob, identity, Where(session.id, "transcript"),
                                TranscriptResult.from_bytes)
        return Unavailable(UNREADABLE) if isinstance(result, Damaged) else (
            measure(result, name, enrolled))

    # The clinician's name and voices decide whose lines are counted: part of the key.
    key = blob + json.dumps([name, enrolled]).encode()
    return {"interventions": svc.plain.derived("interventions", key, produce, _WEIGHT)}


def measured(texts: Sequence[SessionText]) -> list[tuple[SessionText, Found]]:
    """Each session's interventions, in the order given."""
    name, enrolled = names()
    return [(text, measure(text.result, name, enrolled)) for text in texts]


def cached(kind: str, key: bytes, load: Callable[[], Sequence[SessionText]]):
    """``measured(load())``, kept in the worker's plaintext cache under ``key``."""
    return services().plain.derived(kind, key, lambda: measured(load()), _WEIGHT)


def _per_session(found: list[Interventions], count: Callable[[Interventions], int]) -> float:
    return mean(count(f) for f in found)


def _share(found: list[Interventions]) -> float | None:
    talk = sum(f.clinician_talk_s + f.client_talk_s for f in found)
    return 100 * sum(f.clinician_talk_s for f in found) / talk if talk > 0 else None


def _latency(found: list[Interventions]) -> float | None:
    gaps = [gap for f in found for gap in f.latencies_s]
    return median(gaps) if gaps else None


# key, title, unit, value of a group's counted sessions, fixed top of the axis
FIGURES: tuple[tuple[str, str, str, Callable[[list[Interventions]], float | None],
                     float | None], ...] = (
    ("i-share", "Your share of talk", "% of talk time", _share, 100.0),
    ("i-open", "Open questions", "lines a session",
     lambda f: _per_session(f, lambda i: len(i.open_questions)), None),
    ("i-closed", "Closed questions", "lines a session",
     lambda f: _per_session(f, lambda i: len(i.closed_questions)), None),
    ("i-reflections", "Reflections", "lines a session",
     lambda f: _per_session(f, lambda i: len(i.reflections)), None),
    ("i-interruptions", "Interruptions", "a session",
     lambda f: _per_session(f, lambda i: len(i.interruptions)), None),
    ("i-latency", "Your response time (median)", "seconds", _latency, None),
    ("i-silences", "Long silences you broke", "a session",
     lambda f: _per_session(f, lambda i: i.broken_by("clinician")), None),
)


def trend_charts(groups: Sequence[Group], decimals: int = 0) -> list[Markup]:
    """One chart per figure over ``groups`` (oldest first), via :mod:`web_ui.views.charts`."""
    labels = [g.label for g in groups]
    notes = [g.note for g in groups]
    out = []
    for key, title, unit, value, top in FIGURES:
        values = [value(g.counted) if g.counted else None for g in groups]
        digits = 1 if key == "i-latency" else decimals
        out.append(charts.figure(charts.chart(key, title, unit, labels, values, notes,
                                              decimals=digits, y_max=top)))
    return out


def client_charts(key: bytes, load: Callable[[], Sequence[SessionText]]) -> list[Markup]:
    """The charts over a client's sessions, one point a session (cached under ``key``)."""
    found = cached("client-interventions", key, load)
    return trend_charts([Group(day(text.when), (f,)) for text, f in found])
