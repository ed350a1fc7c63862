"""Everything the client page computes from a client's transcripts, in one call.

:func:`analyse` prepares the sessions once (who the client is, the words of
each line) and hands them to the trends, the language cues, the themes and
the goals. Pure: the caller decrypts the transcripts and keeps (or caches)
the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from appliance.clients import goals, language, lines, themes, trends


@dataclass(frozen=True)
class Analysis:
    """A client's sessions measured: talk trends, language cues, themes and goals."""

    trends: trends.TrendSeries
    language: language.LanguageSeries
    themes: tuple[themes.Theme, ...]
    goals: tuple[goals.GoalTrack, ...]

    @property
    def sessions(self) -> int:
        """How many transcribed sessions were measured."""
        return len(self.trends.points)


def analyse(sessions: Iterable[lines.SessionText], goal_texts: Sequence[str] = (), *,
            clinician_name: str = "Clinician", enrolled: Iterable[str] = ()) -> Analysis:
    """Trends, cues, themes and goal lines of ``sessions`` (any order; measured oldest first).

    ``clinician_name`` and ``enrolled`` (the device's voice names) tell the
    clinician's lines from the client's (:func:`appliance.clients.lines.identify`).
    """
    prepared = lines.prepare(sessions, clinician_name, enrolled)
    return Analysis(trends=trends.series(prepared), language=language.series(prepared),
                    themes=themes.themes(prepared), goals=goals.tracks(goal_texts, prepared))
