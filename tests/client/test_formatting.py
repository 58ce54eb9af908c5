"""How formatted text is kept: spans share interned styles (memory per scrollback line)."""

from __future__ import annotations

import dataclasses
import sys

from client import formatting
from client.formatting import PLAIN, Span, Style, display, render, style


def test_equal_styles_are_one_object() -> None:
    assert style(bold=True, fg="#ff0000") is style(bold=True, fg="#ff0000")
    assert style() is PLAIN
    assert style(bold=True) is not style(italic=True)


def test_spans_of_different_lines_share_their_styles() -> None:
    _, first = display("\x0304,12red\x0f plain \x02bold")
    _, second = display("\x02other bold\x02 \x0304,12more red")
    by_text = {sp.text: sp for sp in (*first, *second)}
    assert by_text["red"].style is by_text["more red"].style
    assert by_text["bold"].style is by_text["other bold"].style
    assert by_text[" plain "].style is PLAIN is by_text[" "].style


def test_a_span_holds_its_text_and_one_style() -> None:
    assert [f.name for f in dataclasses.fields(Span)] == ["text", "style"]
    assert Span.__slots__ == ("text", "style")  # no __dict__ per span
    assert sys.getsizeof(Span("x")) < sys.getsizeof(Style())


def test_a_span_is_its_text_and_a_style() -> None:
    sp = Span("x", style(bold=True, reverse=True, fg="#ff0000", bg="#000000"))
    st = sp.style
    assert (sp.text, st.bold, st.italic, st.underline, st.strikethrough, st.monospace) == (
        "x", True, False, False, False, False)
    assert (st.reverse, st.fg, st.bg) == (True, "#ff0000", "#000000")
    assert Span("x") == Span("x", PLAIN) and Span("x").style is PLAIN
    assert Span("x", Style(bold=True)) == Span("x", style(bold=True))  # by value


def test_the_style_table_is_bounded() -> None:
    # Hex colours are the server's to choose: endless new styles must not grow the table.
    for n in range(formatting.MAX_STYLES + 10):
        [sp] = render(f"\x04{n:06x}x")
        assert sp.style.fg == f"#{n:06x}"
    assert len(formatting._STYLES) <= formatting.MAX_STYLES
    assert style(underline=True) is style(underline=True)  # still shared after emptying
