"""Dates in a supervision excerpt's lines, reduced to their month.

"5 October", "the 5th of October 2026", "Oct. 5th" and "October 5, 2026" keep
their month (and year); "2026-10-05" becomes "October 2026"; a date in
figures with slashes or dots ("05/10/2026", "10/5", "5.10.26": which number is
the month is not known) and a day without its month ("on the 12th") become
"[date]". Weekdays, times ("at 3.30"), years and "last week" stay: without the
day they date nothing.
"""

from __future__ import annotations

import calendar
import re

DATE = "[date]"

# "May" and "March" are also words ("I may 2 …"): only capitalised are they months.
# An abbreviation may carry a dot ("Oct."); a full name's dot ends the sentence and stays.
_FULL = "|".join(calendar.month_name[m] for m in range(1, 13) if m not in (3, 5))
_SHORT = "|".join([calendar.month_abbr[m] for m in range(1, 13) if m not in (3, 5)] + ["Sept"])
_MONTH = rf"(?P<month>(?:{_FULL})|(?:{_SHORT})\.?|(?-i:March|May|Mar\.?))"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"


def _month_year(match: re.Match) -> str:
    return _full_month(match["month"]) + (f" {match['year']}" if match["year"] else "")


def _full_month(text: str) -> str:
    key = text.rstrip(".").casefold()[:3]
    return next(calendar.month_name[m] for m in range(1, 13)
                if calendar.month_name[m].casefold().startswith(key))


_DATE_PATTERNS = (
    # 2026-10-05
    (re.compile(r"(?<![\w-])(?P<year>(?:19|20)\d\d)-(?P<m>0?[1-9]|1[0-2])-(?:[0-2]?\d|3[01])(?![\w-])"),
     lambda m: f"{calendar.month_name[int(m['m'])]} {m['year']}"),
    # 5 October, 5th of October 2026
    (re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}(?!\w)(?:,?\s+{_YEAR}\b)?", re.IGNORECASE),
     _month_year),
    # October 5, Oct. 5th, 2026
    (re.compile(rf"\b{_MONTH}\s+{_DAY}\b(?:,?\s+{_YEAR}\b)?", re.IGNORECASE),
     _month_year),
    # 05/10/2026, 10/5, 5.10.26 (not 3.30, a time): which number is the month is not known
    (re.compile(r"(?<![\w./])\d{1,2}(?:/\d{1,2}(?:/(?:\d{4}|\d\d))?|\.\d{1,2}\.(?:\d{4}|\d\d))"
                r"(?![\w/]|\.\d)"),
     lambda m: DATE),
    # on the 12th
    (re.compile(r"\bthe\s+(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)\b", re.IGNORECASE),
     lambda m: f"the {DATE}"),
)


def reduce_dates(text: str) -> str:
    """``text`` with every date reduced to its month, or to "[date]" where the month is unknown."""
    for pattern, replace in _DATE_PATTERNS:
        text = pattern.sub(replace, text)
    return text
