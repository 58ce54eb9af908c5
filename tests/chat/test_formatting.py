"""Stripping mIRC formatting (channel mode +c): properties and examples."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chat.formatting import FORMATTING_CODES, strip_formatting

# Colour parameters: the only characters besides the codes themselves that may go.
_PARAMS = frozenset("0123456789abcdefABCDEF,")

# Text dense in codes and in what may follow them, with CTCP's \x01, spaces, other
# controls, non-ASCII digits and letters, and astral characters.
_chars = st.one_of(
    st.sampled_from([*FORMATTING_CODES, *"0123456789,aFf \x01\x07\x1b", "٣", "é", "☃", "𝄞"]),
    st.characters(exclude_categories=["Cs"]),
)
texts = st.text(_chars, max_size=60)


def _reference(text: str) -> str:
    """One character at a time, as the formatting document describes the codes."""
    out: list[str] = []
    i, n = 0, len(text)

    def run(start: int, allowed: str, most: int) -> int:
        end = start
        while end < n and end - start < most and text[end] in allowed:
            end += 1
        return end

    while i < n:
        ch = text[i]
        i += 1
        if ch == "\x03":
            end = run(i, "0123456789", 2)
            if end > i:
                i = end
                if i + 1 < n and text[i] == "," and text[i + 1] in "0123456789":
                    i = run(i + 1, "0123456789", 2)
        elif ch == "\x04":
            hexdigits = "0123456789abcdefABCDEF"
            if run(i, hexdigits, 6) - i == 6:
                i += 6
                if i < n and text[i] == "," and run(i + 1, hexdigits, 6) - (i + 1) == 6:
                    i += 7
        elif ch not in FORMATTING_CODES:
            out.append(ch)
    return "".join(out)


@settings(max_examples=1000, deadline=None)
@given(texts)
def test_agrees_with_the_reference(text: str) -> None:
    assert strip_formatting(text) == _reference(text)


@settings(max_examples=1000, deadline=None)
@given(texts)
def test_idempotent_and_leaves_no_formatting(text: str) -> None:
    once = strip_formatting(text)
    assert strip_formatting(once) == once
    assert not set(once) & set(FORMATTING_CODES)


@settings(max_examples=1000, deadline=None)
@given(texts)
def test_keeps_every_other_character_in_order(text: str) -> None:
    """Only the codes and colour parameters go: everything else (\\x01, spaces, other
    controls, non-ASCII) stays, in order; what is left is a subsequence of the text."""
    stripped = strip_formatting(text)

    def kept(s: str) -> str:
        return "".join(c for c in s if c not in FORMATTING_CODES and c not in _PARAMS)

    assert kept(stripped) == kept(text)
    it = iter(text)
    assert all(c in it for c in stripped)


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(exclude_categories=["Cs"], exclude_characters=FORMATTING_CODES)))
def test_text_without_codes_is_untouched(text: str) -> None:
    assert strip_formatting(text) is text


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from(["\x02", "\x0304", "\x034,12", "\x03", "\x04FF00aa", "\x04000000,ffffff",
                     "\x0f", "\x11", "\x16", "\x1d", "\x1e", "\x1f"]),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters=FORMATTING_CODES
                          + "0123456789abcdefABCDEF,")),
)))
def test_codes_between_words_leave_the_words(parts: list[tuple[str, str]]) -> None:
    assert strip_formatting("".join(c + w for c, w in parts)) == "".join(w for _, w in parts)


def test_examples() -> None:
    assert strip_formatting("\x02bold\x02 \x1ditalic\x0f") == "bold italic"
    assert strip_formatting("\x0304,12red on blue\x03 plain") == "red on blue plain"
    assert strip_formatting("\x03123") == "3"  # two digits at most
    assert strip_formatting("\x031,x") == ",x"  # a comma without a background stays
    assert strip_formatting("\x03,05") == ",05"  # no foreground: not a background either
    assert strip_formatting("\x031,234") == "4"
    assert strip_formatting("\x03٣") == "٣"  # ASCII digits only
    assert strip_formatting("\x04FF0000red\x04") == "red"
    assert strip_formatting("\x04FF0000,00ff00x") == "x"
    assert strip_formatting("\x04FF00 short") == "FF00 short"  # six hex digits or none
    assert strip_formatting("\x04ABCDEF,12 x") == ",12 x"
    assert strip_formatting("\x01ACTION \x02waves\x02\x01") == "\x01ACTION waves\x01"
    assert strip_formatting("\x11mono\x16rev\x1estrike\x1funder") == "monorevstrikeunder"
    assert strip_formatting("\x02\x03\x0f") == ""
    assert strip_formatting("\x07bell\x1b[0m") == "\x07bell\x1b[0m"  # not formatting
