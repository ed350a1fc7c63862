"""Supervision excerpts: the picked moments with their context, de-identified, or refused.

A session of "Dana Whitfield" (identifier C-42, session label "DW intake") with her
partner Tom mentioned by name and a third voice; every test checks what would leave
the device, in the Markdown and (once) in the PDF.
"""

from __future__ import annotations

import io
import re
from datetime import date

import pytest
from pypdf import PdfReader

from appliance.notes import supervision
from appliance.notes.supervision import ExcerptError, Pick, Roles
from appliance.notes.supervision_dates import reduce_dates
from appliance.notes.supervision_pdf import excerpt_pdf
from tests.support.web_support import result

LINES = [
    (0.0, "Dr Rivera", "Good to see you, Dana. How was the week?"),
    (6.5, "Dana", "DANA's week was long. Tom forgot my birthday on 5 October."),
    (14.0, "Dr Rivera", "Tom's forgetting hurt. What did Dana Whitfield do then?"),
    (21.25, "Dana", "I called Maria at work. You don't understand, it was awful."),
    (30.0, "Dr Rivera", "I may have missed that. Tell me more."),
    (38.0, "Maria", "Sorry, wrong room."),
    (42.0, "Dana", "Ask Thomas, he saw it. Danaé is my sister, not me."),
    (50.0, "Dr Rivera", "We meet again on the 12th."),
]
ROLES = Roles(clinician="Dr Rivera", client="Dana")
SESSION_DAY = date(2026, 10, 19)
CLIENT_NAMES = ("Dana Whitfield", "Dana", "Whitfield", "C-42", "DW intake")


@pytest.fixture(scope="module")
def transcript():
    return result(LINES)


def _build(transcript, picks, **kwargs):
    options = {"when": SESSION_DAY, "roles": ROLES, "client_names": CLIENT_NAMES,
               "other_names": ("Tom", "Maria"), "context": 1, **kwargs}
    return supervision.build(transcript, picks, **options)


def test_the_client_and_every_marked_name_are_replaced_whole_words_in_any_case(transcript):
    text = supervision.markdown(_build(transcript, [Pick(6.5), Pick(21.25)]))
    assert "- ▸ 0:06 **Client:** Client's week was long. [name] forgot my birthday on October." in text
    assert "**Clinician:** [name]'s forgetting hurt. What did Client do then?" in text
    assert "I called [name] at work." in text
    # Speakers are roles, never the labels the transcript carried.
    assert "Dr Rivera" not in text and "Dana" not in text and "Tom" not in text


def test_a_longer_word_holding_a_name_is_left_alone(transcript):
    text = supervision.markdown(_build(transcript, [Pick(42.0)], context=0))
    assert "Ask Thomas, he saw it. Danaé is my sister, not me." in text  # not "[name]as"


@pytest.mark.parametrize(("said", "leaves"), [
    ("on 5 October. We argued", "on October. We argued"),
    ("the 5th of October 2026 was hard", "the October 2026 was hard"),
    ("since Oct. 12th, 2025", "since October 2025"),
    ("October 5 again", "October again"),
    ("the letter of 2026-10-05 said", "the letter of October 2026 said"),
    ("on 05/10/2026 or 10/5", "on [date] or [date]"),
    ("or 5.10.26", "or [date]"),
    ("see you on the 12th", "see you on the [date]"),
    ("every Monday at 3.30, in 2024, last week", "every Monday at 3.30, in 2024, last week"),
    ("I may 2 times, from 3 March", "I may 2 times, from March"),
    ("version 1.5.2", "version 1.5.2"),
], ids=lambda value: re.sub(r"\W+", "-", value)[:30])
def test_dates_in_the_lines_are_reduced_to_their_month(said, leaves):
    assert reduce_dates(said) == leaves


def test_each_moment_carries_its_context_lines_and_marks_the_picked_one(transcript):
    excerpt = _build(transcript, [Pick(21.25, "Where did I lose her here?"), Pick(0.0)], context=2)
    assert [m.number for m in excerpt.moments] == [1, 2]
    first, second = excerpt.moments  # in transcript order, not the order picked
    assert [line.start for line in first.lines] == [0.0, 6.5, 14.0]
    assert [line.start for line in second.lines] == [6.5, 14.0, 21.25, 30.0, 38.0]
    assert [line.picked for line in second.lines] == [False, False, True, False, False]
    assert [line.speaker for line in second.lines] == [
        "Client", "Clinician", "Client", "Clinician", "Speaker 3"]
    text = supervision.markdown(excerpt)
    assert "## Moment 2, at 0:21" in text and "> Where did I lose her here?" in text
    assert "Moments: 2, with 2 lines before and after each" in text


def test_a_line_picked_twice_is_one_moment_with_both_comments(transcript):
    excerpt = _build(transcript, [Pick(30.0, "Bookmark: repair?"), Pick(30.0, "Too quick.")])
    assert len(excerpt.moments) == 1
    assert excerpt.moments[0].comment == "Bookmark: repair?\n\nToo quick."


def test_nothing_of_the_session_but_its_month_leaves(transcript):
    excerpt = _build(transcript, [Pick(14.0, "Was I too directive?")], context=8)
    text = supervision.markdown(excerpt)
    assert text.startswith("# Supervision excerpt\n\nSession: October 2026")
    for secret in ("19", "2026-10", "DW intake", "C-42", "Whitfield", "Rivera", "Maria"):
        assert secret not in text, secret
    pages = PdfReader(io.BytesIO(excerpt_pdf(excerpt))).pages
    printed = re.sub(r"\s+", " ", " ".join(page.extract_text() for page in pages))
    for shown in ("Supervision excerpt", "Session: October 2026", "Moment 1, at 0:14",
                  "Clinician: [name]'s forgetting hurt.", "Was I too directive?"):
        assert shown in printed, shown
    for secret in (r"\bDana\b", r"\bTom\b", "Rivera", "19 October", "C-42"):
        assert not re.search(secret, printed), secret


def test_nothing_picked_is_refused(transcript):
    with pytest.raises(ExcerptError, match="Pick at least one moment"):
        _build(transcript, [])


def test_a_line_start_the_transcript_does_not_have_is_refused(transcript):
    with pytest.raises(ExcerptError, match="no transcript line starting at 0:07"):
        _build(transcript, [Pick(7.0)])
    with pytest.raises(ExcerptError, match="not the start of a line"):
        _build(transcript, [Pick(float("nan"))])


def test_a_marked_name_in_a_comment_is_refused_naming_it_and_where(transcript):
    with pytest.raises(ExcerptError) as refused:
        _build(transcript, [Pick(0.0), Pick(30.0, "Tom's name comes up again; and dana's.")])
    assert str(refused.value).startswith(
        "'Tom' is still in the comment of moment 2, so nothing was exported.")


def test_a_spelling_the_replacement_missed_is_refused(transcript):
    # The client's record says "Danae" without the accent; the transcript has "Danaé".
    with pytest.raises(ExcerptError) as refused:
        _build(transcript, [Pick(42.0)], client_names=("Danae",), context=0)
    assert str(refused.value) == (
        "'Danaé' is still in moment 1, the line at 0:42, so nothing was exported. "
        "Add this spelling to the names to replace (you marked 'Danae').")
    assert "Danaé" not in supervision.markdown(
        _build(transcript, [Pick(42.0)], client_names=("Danae", "Danaé"), context=0))


def test_a_context_out_of_range_is_refused(transcript):
    with pytest.raises(ExcerptError, match="choose 0 to 20 lines"):
        _build(transcript, [Pick(0.0)], context=21)


def test_a_label_that_reads_like_the_replacement_does_not_refuse(transcript):
    excerpt = _build(transcript, [Pick(6.5, "The client seems flat.")], client_names=(
        *CLIENT_NAMES, "Client"), context=0)
    assert excerpt.moments[0].comment == "The client seems flat."
