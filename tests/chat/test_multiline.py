"""chat.multiline: joining a multiline message's lines and cutting a long line."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chat.multiline import combine, split_concat
from chat.utf8 import utf8_size


def test_combine_joins_lines_with_line_feeds_and_concatenated_ones_directly() -> None:
    assert combine([("a", False), ("b ", False), ("c", True), ("", False)]) == "a\nb c\n"
    assert combine([("x", True)]) == "x"  # the first line joins nothing
    assert combine([]) == ""


@given(st.text(max_size=400), st.integers(min_value=4, max_value=120))
def test_split_concat_pieces_fit_and_rejoin(text: str, limit: int) -> None:
    pieces = split_concat(text, limit)
    assert "".join(pieces) == text
    assert all(utf8_size(p) <= limit for p in pieces)
    assert all(pieces[:-1])  # no empty piece but a lone one for empty text


def test_split_concat_cuts_after_a_space_and_never_inside_a_character() -> None:
    assert split_concat("hello world again", 12) == ["hello world ", "again"]
    assert split_concat("éééé", 5) == ["éé", "éé"]  # 2 bytes each: never half of one
