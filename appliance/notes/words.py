"""One rule for folding an English word to a simple stem, so that its forms match.

Used wherever Holdnote compares words across lines: last session's plan against
this session's lines (appliance/drafting/followup.py) and a client's themes and
goals (appliance/clients/themes.py, goals.py). Crude on purpose, with no
dictionary: "breathing", "breathes" and "breathe" fold together, as do "logs"
and "log", "stopped" and "stop".
"""

from __future__ import annotations

from functools import cache


@cache
def fold(word: str) -> str:
    """``word`` in lower case without its common endings: breathing -> breath, logs -> log."""
    word = word.lower().removesuffix("'s")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    for suffix, keep in (("ing", 3), ("ed", 3), ("es", 4), ("s", 3)):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep and not word.endswith("ss"):
            word = word[: -len(suffix)]
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]  # running -> runn -> run
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]  # breathe -> breath, exercise -> exercis
    return word
