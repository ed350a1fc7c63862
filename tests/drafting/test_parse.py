"""The model's answer read as statements with citations, whatever its bullets and repeats."""

from __future__ import annotations

from appliance.drafting import parse


def test_bullets_numbering_and_citation_forms_are_read():
    answer = ("Here are the statements:\n- First thing said. [0:09]\n2. Second thing. (1:05, 1:11)\n"
              "* Third thing [0:00:09; 01:05]\n")
    raws, said_none = parse.statements(answer)
    assert [r.text for r in raws] == ["Here are the statements:", "First thing said.",
                                      "Second thing.", "Third thing"]
    assert [r.cited for r in raws] == [(), ("0:09",), ("1:05", "1:11"), ("0:00:09", "01:05")]
    assert not said_none


def test_repeats_count_once_and_not_discussed_is_recognised():
    raws, said_none = parse.statements("- Not discussed.\n- A thing. [0:01]\n- A thing! [0:01]\n")
    assert said_none and [r.text for r in raws] == ["A thing."]
