"""Template filters: local times, durations, state names.

Times are stored in UTC and shown in the device's local time zone (set
with the rest of the system's settings), since that is the clock on the
consulting-room wall.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import Flask

from appliance.notes import times

STATE_LABELS = {
    "recording": "Recording",
    "recorded": "Waiting for tonight",
    "interrupted": "Interrupted (recovered)",
    "transcribing": "Transcribing",
    "draft": "Draft note",
    "signed": "Signed",
    "failed": "Needs attention",
}

FLAG_LABELS = {
    "suicide": "Suicide",
    "self_harm": "Self-harm",
    "self-harm": "Self-harm",
    "harm_to_others": "Harm to others",
    "harm-to-others": "Harm to others",
    "abuse": "Abuse",
    "substances": "Substance use",
    "substance": "Substance use",
}


def local(moment: datetime | None) -> datetime | None:
    """A stored (UTC) time in the device's local time zone."""
    return moment.astimezone() if moment else None


def local_date(moment: datetime | None) -> str:
    """YYYY-MM-DD in local time (what the delete confirmation asks for)."""
    shown = local(moment)
    return shown.strftime("%Y-%m-%d") if shown else ""


def when(moment: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A local date and time for display (accepts stored ISO text too)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    shown = local(moment)
    return shown.strftime(fmt) if shown else "—"


def clock(seconds: float | None) -> str:
    """A position in a recording: 4:05 or 1:02:03 (the note's rule: :mod:`appliance.notes.times`)."""
    return times.clock(seconds)


def duration(seconds: float | None) -> str:
    """A length for people: 45 s, 1 min 44 s, 1 h 5 min (the same seconds as :func:`clock`)."""
    return times.length(seconds)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """1 session, 2 sessions: the count and the noun that agrees with it."""
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"


def percent(share: float | None) -> str:
    """0.42 -> 42 %."""
    return f"{round((share or 0) * 100)} %"


def state_label(state: object) -> str:
    """A person's name for a session state."""
    return STATE_LABELS.get(str(state), str(state).capitalize())


def flag_label(category: object) -> str:
    """A person's name for a risk-flag category."""
    text = str(category or "other")
    return FLAG_LABELS.get(text, text.replace("_", " ").capitalize())


def day_bounds(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """Local calendar days [first, last] as aware datetimes [since, until)."""
    since = datetime.combine(first, time()).astimezone() if first else None
    until = datetime.combine(last + timedelta(days=1), time()).astimezone() if last else None
    return since, until


def parse_day(text: str | None) -> date | None:
    """A YYYY-MM-DD form value, or ``None`` when empty or malformed."""
    try:
        return date.fromisoformat((text or "").strip()) if text else None
    except ValueError:
        return None


def install(app: Flask) -> None:
    """Register the filters."""
    for name, func in [("when", when), ("clock", clock), ("duration", duration),
                       ("percent", percent), ("plural", plural), ("state_label", state_label),
                       ("flag_label", flag_label), ("local_date", local_date)]:
        app.add_template_filter(func, name)
