"""Pure parts of the UI: line formatting, wrapping, styles, key bindings, scroll state.

No server and no event loop: a Session fed with recorded lines, and the controls'
``create_content`` called directly.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any, cast

import pytest
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.key_binding import KeyPressEvent
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.utils import get_cwidth

from client.config import DEFAULT_KEYS, ClientConfig, parse
from client.connection import Connection, ConnectionSettings
from client.formatting import Span, Style, display
from client.model import Buffer, BufferKind, HistoryAdded, Kind, Line
from client.session import Session
from client.ui.app import BACKGROUND_REDRAW_INTERVAL, REDRAW_INTERVAL, ChatUI, InputHistory
from client.ui.keys import FormatPrefix, build_key_bindings, describe, format_keys
from client.ui.render import (
    Fragments,
    LineRenderer,
    build_style,
    fit,
    nick_class,
    plain_text,
    safe,
    span_style,
    text_width,
    wrap,
)
from client.ui.views import (
    BufferList,
    MessagePane,
    NickList,
    Views,
    activity,
    status_fragments,
    topic_fragments,
)

from .helpers import NOW, T0, chat_session, feed, history_batch, privmsg, reconnect, sent
from .recorded import CHAT_JOIN


def line(text: str, nick: str = "bob", kind: Kind = Kind.MESSAGE, **kw: Any) -> Line:
    shown, spans = display(text)
    return Line(NOW, kind, nick, shown, spans, **kw)


def pairs(frags: Fragments) -> list[tuple[str, str]]:
    """(style, text) of each fragment."""
    return [(f[0], f[1]) for f in frags]


def row_texts(rows: list[Fragments]) -> list[str]:
    return ["".join(t for _, t in pairs(row)) for row in rows]


# ---------------------------------------------------------------------- formatting


def test_message_kinds_render_like_irc_clients() -> None:
    r = LineRenderer("%H:%M")

    def text(ln: Line) -> str:
        return plain_text(r.rows(ln, 200))[6:]  # without "HH:MM "

    assert text(line("hello", prefix="@")) == "<@bob> hello"
    assert text(line("waves", kind=Kind.ACTION)) == "* bob waves"
    assert text(line("note", kind=Kind.NOTICE)) == "-bob- note"
    assert text(line("has joined #t", kind=Kind.JOIN)) == "--> bob has joined #t"
    assert text(line("has quit (bye)", kind=Kind.QUIT)) == "<-- bob has quit (bye)"
    assert text(line("Disconnected", nick="", kind=Kind.INFO)) == "-- Disconnected"
    assert text(line("No such nick", nick="", kind=Kind.ERROR)) == "!! No such nick"


def test_the_reconnect_note_has_one_marker() -> None:
    """The session's note after a reconnect's gap fill is an info line like any: the
    pane's `-- ` is its only dash (it was `-- — reconnected, … —`)."""
    s = chat_session()
    buf = s.buffer("#t")
    assert buf is not None
    feed(s, [privmsg("bob", "#t", "m1", "M1", T0 + 1)])
    reconnect(s)
    feed(s, [f"@msgid=J2 {CHAT_JOIN[0].split(' ', 1)[1]}", *CHAT_JOIN[1:]])
    feed(s, history_batch("g1", "#t", [("bob", "m2", "M2", T0 + 2)]))
    note = buf.lines[-1]
    assert note.kind is Kind.INFO
    r = LineRenderer("%H:%M")
    assert plain_text(r.rows(note, 200))[6:] == "-- Reconnected, fetched 1 missed message"


def test_mirc_formatting_becomes_styles_not_codes() -> None:
    r = LineRenderer("")
    frags, indent = r.fragments(line("\x02bold\x02 \x0304,01red\x03 \x1dit\x1d \x16rev"))
    assert indent == len("<bob> ")
    styles = {text: style for style, text in pairs(frags)}
    assert "bold" in styles["bold"].split()
    assert "fg:#ff0000" in styles["red"] and "bg:#000000" in styles["red"]
    assert "italic" in styles["it"].split()
    assert "reverse" in styles["rev"].split()
    assert all(ch.isprintable() for _, t in pairs(frags) for ch in t)
    # Colours that are not '#rrggbb' never reach the style string.
    assert "evil" not in span_style("", Span("x", Style(fg="evil;bg:#fff", bg="#12345g")))


def test_every_mirc_attribute_renders_as_before_styles_were_shared() -> None:
    # The fragments the renderer gave when each Span carried its own nine fields.
    r = LineRenderer("")
    frags, indent = r.fragments(line(
        "\x02bold\x02 \x1d\x1fit-un \x0304,12red on blue\x0f \x04ff8800hex\x1estrike"
        "\x16rev\x03 \x11mono"
    ))
    assert indent == len("<bob> ")
    assert pairs(frags)[4:] == [
        ("class:message bold", "bold"),
        ("class:message", " "),
        ("class:message italic underline", "it-un "),
        ("class:message italic underline fg:#ff0000 bg:#0000fc", "red on blue"),
        ("class:message", " "),
        ("class:message fg:#ff8800", "hex"),
        ("class:message strike fg:#ff8800", "strike"),
        ("class:message strike reverse fg:#ff8800", "rev"),
        ("class:message strike reverse", " "),
        ("class:message strike reverse", "mono"),
    ]

def test_highlight_own_and_history_styles() -> None:
    r = LineRenderer("%H:%M")
    hl, _ = r.fragments(line("alice: hi", highlight=True))
    assert any("class:highlight" in style for style, t in pairs(hl) if t == "bob")
    assert any("class:highlight" in style for style, t in pairs(hl) if t == "alice: hi")
    own, _ = r.fragments(line("mine", nick="alice", own=True))
    assert any(style == "class:own_nick" for style, t in pairs(own) if t == "alice")
    old, _ = r.fragments(line("old", history=True))
    assert "class:history" in old[0][0]


def test_nick_colours_are_stable_and_spread() -> None:
    assert nick_class("bob", 12) == nick_class("BOB", 12) == "class:nick-8"  # crc32: every run
    classes = {nick_class(f"user{i}", 12) for i in range(100)}
    assert len(classes) == 12


def test_safe_strips_any_control_character() -> None:
    assert safe("a\x1b[31mb\x07c\x9bd") == "a[31mbcd"
    assert safe("plain text") == "plain text"
    r = LineRenderer("")
    # Even if a Line somehow held control characters, they are not rendered.
    frags, _ = r.fragments(Line(NOW, Kind.MESSAGE, "x\x1b", "a\x1b]0;t\x07b"))
    assert "\x1b" not in "".join(t for _, t in pairs(frags))
    assert "\x07" not in "".join(t for _, t in pairs(frags))


def test_timestamps_survive_absurd_server_times() -> None:
    r = LineRenderer("%H:%M")
    for when in (-1e20, 1e20, float(2**62)):
        rows = r.rows(Line(when, Kind.MESSAGE, "bob", "hi"), 80)
        assert plain_text(rows).endswith("<bob> hi")


# ---------------------------------------------------------------------- wrapping


def test_wrap_breaks_at_spaces_and_indents_under_the_text() -> None:
    frags: Fragments = [("ts", "12:00 "), ("n", "<bob> "), ("m", "one two three four five six")]
    rows = wrap(frags, 24, indent=12)
    texts = row_texts(rows)
    assert texts[0] == "12:00 <bob> one two "
    assert all(t.startswith(" " * 12) for t in texts[1:])
    assert all(text_width(t) <= 24 for t in texts)
    assert " ".join("".join(texts).split()) == "12:00 <bob> one two three four five six"


def test_wrap_hard_breaks_long_words_and_wide_characters() -> None:
    rows = wrap([("", "x" * 50)], 20)
    assert [len(t) for t in row_texts(rows)] == [20, 20, 10]
    cjk = "漢字" * 15  # 60 cells
    rows = wrap([("", cjk)], 21)
    assert all(text_width(t) <= 21 for t in row_texts(rows))
    assert "".join(row_texts(rows)) == cjk
    # A prefix wider than half the width: no indent, still within the width.
    rows = wrap([("", "p" * 15), ("", "word " * 10)], 20, indent=15)
    assert all(len(t) <= 20 for t in row_texts(rows))


def test_fit_cuts_by_cells() -> None:
    assert fit("#channel", 20) == "#channel"
    assert fit("#averyveryverylongchannel", 10) == "#averyver…"
    assert text_width(fit("漢字漢字漢字", 7)) <= 7
    assert fit("x", 0) == ""


# What terminals that know emoji sequences (tmux 3.3, kitty, WezTerm...) draw as one
# 2-cell glyph, where prompt_toolkit lays out each code point in cells of its own.
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧, a ZWJ sequence
FLAG = "\U0001f1eb\U0001f1f7"  # 🇫🇷, a pair of regional indicators


def test_emoji_sequences_are_drawn_in_the_cells_prompt_toolkit_counts() -> None:
    drawn = {
        f"family {FAMILY} here": "family 👨👩👧 here",  # its parts, 6 cells everywhere
        f"try {FLAG} end": "try FR end",  # the letters, 2 cells as the flag
        "ok 👍🏽": "ok 👍",  # no skin tone: 4 cells in tmux 3.3, 2 in kitty
        "love ❤\ufe0f": "love ❤",  # no VS16: 1 cell in tmux 3.3, 2 in kitty
        "🏳\ufe0f\u200d🌈": "🏳🌈",
        "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f": "🏴",
        "the 🏽 swatch": "the 🏽 swatch",  # alone: 2 cells everywhere
        "cafe\u0301 漢字 🎉": "cafe\u0301 漢字 🎉",  # combining marks take no cell anywhere
    }
    for text, shown in drawn.items():
        assert safe(text) == shown
        assert fit(text, 80) == shown
        # prompt_toolkit's count (per code point) is the UI's, and no terminal differs.
        assert text_width(text) == sum(get_cwidth(ch) for ch in shown)
    assert text_width(f"#{FAMILY}fam") == 10
    assert fit(f"{FAMILY} family", 5) == "👨👩…"
    assert fit("e\u0301" * 4, 3) == "e\u0301e\u0301…"  # (a letter and its mark together)
    r = LineRenderer("")
    assert plain_text(r.rows(line(f"try {FLAG} end"), 80)) == "<bob> try FR end"
    rows = row_texts(wrap([("", f"{FAMILY} " * 10)], 9))
    assert all(text_width(t) <= 9 for t in rows) and "\u200d" not in "".join(rows)
    assert rows[0] == "👨👩👧 "


async def test_the_input_line_draws_emoji_sequences_as_the_pane_and_keeps_them() -> None:
    s = chat_session(channels=())
    conn = Connection(s, ConnectionSettings(host="127.0.0.1", port=1))
    with create_pipe_input() as pipe:
        out = Vt100_Output(io.StringIO(), lambda: Size(rows=20, columns=80))
        ui = ChatUI(conn, ClientConfig(), input=pipe, output=out)
    typed = f"hi {FAMILY} {FLAG}!"
    ui.input.text = typed
    ui.input.cursor_position = len(typed) - 1  # before the "!"
    control = ui.input_window.content
    content = control.create_content(60, 1)
    assert "".join(f[1] for f in content.get_line(0)).rstrip() == "hi 👨👩👧 FR!"
    assert content.cursor_position.x == len("hi 👨👩👧 FR")
    assert ui.input.text == typed  # sent as typed


def test_rows_are_cached_per_line_and_width() -> None:
    r = LineRenderer()
    ln = line("hello " * 30)
    first = r.rows(ln, 80)
    assert r.rows(ln, 80) is first and r.formatted == 1
    r.rows(ln, 60)
    assert r.formatted == 2
    # An equal but different Line object is formatted on its own (no id confusion).
    r.rows(line("hello " * 30), 80)
    assert r.formatted == 3


def test_row_cache_is_bounded() -> None:
    r = LineRenderer(cache_size=64)
    lines = [line(f"message {i}") for i in range(1000)]
    for ln in lines:
        r.rows(ln, 80)
    assert len(r._rows) <= 64


# ---------------------------------------------------------------------- styles and keys


def test_bad_colours_fall_back_and_are_reported() -> None:
    cfg = parse({"colours": {"highlight": "bold #zzzzzz", "join": "#00ff00", "nicks": ["#12"]}})
    style, problems = build_style(cfg)
    assert any("colours.highlight" in p for p in problems)
    assert any("colours.nicks" in p for p in problems)
    assert not any("colours.join" in p for p in problems)
    attrs = style.get_attrs_for_style_str("class:join")
    assert attrs.color == "00ff00"


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def switch_relative(self, step: int) -> None:
        self.calls.append(f"rel {step}")

    def switch_to(self, index: int) -> None:
        self.calls.append(f"win {index}")

    def scroll_up(self) -> None:
        self.calls.append("up")

    def scroll_down(self) -> None:
        self.calls.append("down")

    def complete(self, step: int = 1) -> None:
        self.calls.append(f"complete {step}")

    def history_prev(self) -> None:
        self.calls.append("prev")

    def history_next(self) -> None:
        self.calls.append("next")

    def toggle_nicklist(self) -> None:
        raise RuntimeError("a bug in an action")

    def scroll_nicklist(self, pages: int) -> None:
        self.calls.append(f"nicklist {pages}")

    def quit(self) -> None:
        self.calls.append("quit")

    def scroll_bottom(self) -> None:
        self.calls.append("bottom")

    def end_key(self) -> None:
        self.calls.append("end")

    def next_active(self) -> None:
        self.calls.append("active")

    def interrupt(self) -> None:
        self.calls.append("interrupt")

    def insert_text(self, text: str) -> None:
        self.calls.append(f"insert {text!r}")


def test_key_bindings_follow_the_config() -> None:
    cfg = parse({"keys": {"next_buffer": ["c-x n", "f2"], "quit": "nonsense-key"}})
    kb, problems = build_key_bindings(_Recorder(), cfg.keys)
    assert problems == ["keys.quit: unknown key 'nonsense-key' (ignored)"]
    keys = {tuple(str(k) for k in b.keys) for b in kb.bindings}
    assert ("Keys.ControlX", "n") in keys and ("Keys.F2",) in keys
    assert ("Keys.ControlN",) not in keys  # replaced, not added to
    assert ("Keys.Escape", "1") in keys  # Alt+1 default
    assert describe(DEFAULT_KEYS, "buffer_3") == "Alt+3"
    assert describe(DEFAULT_KEYS, "quit") == "Ctrl+Q"
    assert describe(DEFAULT_KEYS, "scroll_down") == "PgDn"
    # Actions config.DEFAULT_KEYS does not list yet have their keys in ui/keys.py.
    assert ("Keys.ControlEnd",) in keys and ("Keys.Escape", "Keys.End") in keys
    assert ("Keys.Escape", "a") in keys and ("Keys.End",) in keys
    assert describe(cfg.keys, "scroll_bottom") == "Ctrl+End"
    assert describe(cfg.keys, "next_active") == "Alt+A"


def test_the_nick_list_pages_with_alt_pageup_and_pagedown_or_f11_and_f12() -> None:
    ui = _Recorder()
    kb, _ = build_key_bindings(ui, DEFAULT_KEYS)
    for keys in (["Keys.Escape", "Keys.PageDown"], ["Keys.F12"], ["Keys.Escape", "Keys.PageUp"],
                 ["Keys.F11"]):  # fmt: skip
        (binding,) = [b for b in kb.bindings if [str(k) for k in b.keys] == keys]
        binding.handler(cast(KeyPressEvent, None))
    assert ui.calls == ["nicklist 1", "nicklist 1", "nicklist -1", "nicklist -1"]
    assert describe(DEFAULT_KEYS, "nicklist_down") == "Alt+PgDn"


def test_the_format_prefix_then_a_letter_or_its_ctrl_key_inserts_the_code() -> None:
    ui = _Recorder()
    fmt = FormatPrefix(ui.insert_text)
    kb, _ = build_key_bindings(ui, DEFAULT_KEYS, fmt=fmt)
    keys = dict(format_keys())
    assert keys["b"] == keys["B"] == keys["c-b"] == "\x02"
    assert keys["c-c"] == "\x03" and keys["i"] == keys["c-]"] == "\x1d"
    assert "c-i" not in keys  # (Tab)
    # Ctrl+V starts it; once it waits, Ctrl+V is reverse (the binding added last wins).
    ctrl_v = [b for b in kb.bindings if [str(k) for k in b.keys] == ["Keys.ControlV"]]
    assert len(ctrl_v) == 2 and not ctrl_v[-1].filter()
    ctrl_v[0].handler(cast(KeyPressEvent, None))
    assert fmt.waiting()
    # Ctrl+C's bindings: clearing the line, and last the prefix's, active only while it waits.
    ctrl_c = [b for b in kb.bindings if [str(k) for k in b.keys] == ["Keys.ControlC"]]
    assert [b.filter() for b in ctrl_c] == [True, True]
    ctrl_c[-1].handler(cast(KeyPressEvent, None))
    assert ui.calls == ["insert '\\x03'"] and not fmt.waiting()
    assert [b.filter() for b in ctrl_c] == [True, False]


def test_a_failing_action_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    ui = _Recorder()
    kb, _ = build_key_bindings(ui, DEFAULT_KEYS)
    (binding,) = [b for b in kb.bindings if [str(k) for k in b.keys] == ["Keys.F7"]]
    with caplog.at_level(logging.ERROR):
        binding.handler(cast(KeyPressEvent, None))
    assert "key binding failed" in caplog.text


# ---------------------------------------------------------------------- input history


def test_input_history_keeps_a_draft_and_is_bounded() -> None:
    h = InputHistory(limit=3)
    for text in ("a", "b", "b", "c", "d"):
        h.add(text)
    assert h.entries == ["b", "c", "d"]
    assert h.prev("draft") == "d"
    assert h.prev("d") == "c"
    assert h.prev("c") == "b"
    assert h.prev("b") is None  # the oldest: stays
    assert h.next() == "c"
    assert h.next() == "d"
    assert h.next() == "draft"
    assert h.next() is None


# ---------------------------------------------------------------------- controls


def channel_with_lines(count: int) -> tuple[Session, Buffer]:
    s = chat_session()
    buf = s.buffer("#t")
    assert buf is not None
    s.switch(buf)
    feed(s, [privmsg("bob", "#t", f"message number {i}", f"m{i}") for i in range(count)])
    s.take_events()
    return s, buf


def pane_text(pane: MessagePane, width: int = 60, height: int = 10) -> list[str]:
    content = pane.create_content(width, height)
    return ["".join(t for _, t, *_ in content.get_line(i))[6:] for i in range(content.line_count)]


def test_pane_renders_only_the_visible_lines() -> None:
    s, _ = channel_with_lines(2000)
    r = LineRenderer()
    pane = MessagePane(s, r, Views())
    shown = pane_text(pane, height=10)
    assert shown[-1] == "<bob> message number 1999"
    assert len(shown) == 10
    assert r.formatted == 10 and pane.lines_rendered == 10
    feed(s, [privmsg("bob", "#t", "one more", "x1")])
    assert pane_text(pane, height=10)[-1] == "<bob> one more"
    assert r.formatted == 11  # one new line formatted, the rest came from the cache


def test_scrolling_keeps_the_view_when_lines_arrive_and_history_is_prepended() -> None:
    s, buf = channel_with_lines(50)
    views = Views()
    pane = MessagePane(s, LineRenderer(), views)
    pane_text(pane)
    views.page_up(buf)
    before = pane_text(pane)
    assert before[-1] == "<bob> message number 40"
    assert views(buf).offset == 9 and not views(buf).at_top

    # A live line arrives: the view stays on the same lines.
    feed(s, [privmsg("bob", "#t", "live", "live1")])
    views.line_added(buf)
    assert pane_text(pane) == before

    # Older history merged above: nothing moves either.
    old = [line(f"old {i}", msgid=f"o{i}") for i in range(5)]
    old = [
        Line(NOW - 100 + i, ln.kind, ln.nick, ln.text, ln.spans, ln.msgid)
        for i, ln in enumerate(old)
    ]
    added, older = buf.merge(old, above=True)
    assert older
    views.history_added(HistoryAdded(buf, len(added), older, tuple(added)))
    assert pane_text(pane) == before

    # Scrolled past the top: the first page is shown, not empty rows.
    for _ in range(20):
        views.page_up(buf)
    top = pane_text(pane)
    # (The JOIN's history request is unanswered here: the note says it is loading.)
    assert top[:2] == ["ing older messages", "<bob> old 0"] and len(top) == 10
    assert views(buf).at_top
    for _ in range(20):
        views.page_down(buf)
    assert views(buf).offset == 0


def test_merge_of_a_before_page_goes_above_lines_with_the_same_time() -> None:
    buf = Buffer(BufferKind.CHANNEL, "#t")
    same = NOW
    for i in range(3):
        buf.append(Line(same, Kind.MESSAGE, "bob", f"new {i}", msgid=f"n{i}"))
    page = [Line(same, Kind.MESSAGE, "bob", f"old {i}", msgid=f"o{i}") for i in range(3)]
    added, older = buf.merge(page, above=True)
    assert older and len(added) == 3
    assert [ln.text for ln in buf.lines] == ["old 0", "old 1", "old 2", "new 0", "new 1", "new 2"]


def test_buffer_list_and_status_show_unread_and_highlights() -> None:
    s = chat_session(channels=("#t",))
    s.switch(s.server)
    feed(s, [privmsg("bob", "#t", "hi"), privmsg("bob", "#t", "alice: ping")])
    bl = BufferList(s)
    content = bl.create_content(bl.width(), 10)
    rows = ["".join(t for _, t, *_ in content.get_line(i)) for i in range(content.line_count)]
    assert rows[0].split() == ["1", "server"]
    assert rows[1].split() == ["2", "#t", "2", "!1"]
    status = "".join(t for _, t, *_ in status_fragments(s, Views()))
    assert "[alice]" in status and "[Act: 2!]" in status and "[1:server]" in status


def test_buffer_list_keeps_the_current_buffer_visible() -> None:
    s = chat_session(channels=())
    for i in range(40):
        s.open_query(f"user{i}", NOW, switch=False)
    s.switch(35)
    bl = BufferList(s)
    content = bl.create_content(bl.width(), 10)
    rows = ["".join(t for _, t, *_ in content.get_line(i)) for i in range(content.line_count)]
    assert len(rows) == 10
    assert any(r.split()[:2] == ["36", "user34"] for r in rows)


def test_activity_puts_highlights_and_private_messages_first_and_counts_the_rest() -> None:
    s = chat_session(channels=(), events="all")
    feed(s, [f":alice!~alice@host JOIN #c{i}" for i in range(1, 70)])  # buffers 2..70
    s.switch(6)  # #c6, buffer 7
    feed(s, [f":carol!~c@h JOIN #c{i}" for i in range(1, 70)])  # other activity everywhere
    feed(s, [privmsg("bob", f"#c{i}", "hi") for i in range(30, 50)])  # messages: 31..50
    feed(s, [privmsg("bob", "#c65", "alice: look")])  # a highlight in buffer 66
    feed(s, [privmsg("bob", "alice", "psst")])  # a private message opens buffer 71
    frags = status_fragments(s, Views())
    status = "".join(t for _, t, *_ in frags)
    # 2 + 20 + 47 buffers (all but the current one) with news; 12 shown.
    assert f"[Act: 66!,71!,{','.join(str(n) for n in range(31, 41))},+57]" in status
    assert ("class:buffer_highlight", "71!") in pairs(frags)
    assert ("", "31") in pairs(frags)
    act, more = activity(s.buffers, s.current, limit=100)
    numbers = [n for n, _ in act]
    assert more == 0 and numbers[:22] == [66, 71, *range(31, 51)]
    assert numbers[22:] == [n for n in range(2, 71) if n not in (7, 66) and not 31 <= n <= 50]
    # Joins only: listed after messages, dimmed.
    quiet = chat_session(channels=(), events="all")
    feed(quiet, [f":alice!~alice@host JOIN #c{i}" for i in range(1, 4)])
    quiet.switch(quiet.server)
    feed(quiet, [":carol!~c@h JOIN #c1", privmsg("bob", "#c3", "hi")])
    frags = status_fragments(quiet, Views())
    assert "[Act: 4,2]" in "".join(t for _, t, *_ in frags)
    assert ("class:buffer_activity", "2") in pairs(frags)


def test_the_activity_list_names_only_the_buffers_that_fit_the_status_line() -> None:
    s = chat_session(channels=(), events="all")
    feed(s, [f":alice!~alice@host JOIN #c{i}" for i in range(1, 30)])  # buffers 2..30
    s.switch(s.server)
    feed(s, [privmsg("bob", f"#c{i}", "hi") for i in range(1, 30)])
    full = "".join(t for _, t, *_ in status_fragments(s, Views()))
    assert full.endswith("[Act: 2,3,4,5,6,7,8,9,10,11,12,13,+17]")
    for width in (80, 60, 50):
        status = "".join(t for _, t, *_ in status_fragments(s, Views(), width=width))
        assert len(status) <= width and status.startswith(full.split(" [Act: ")[0]), status
    assert "".join(t for _, t, *_ in status_fragments(s, Views(), width=60)).endswith(
        "[Act: 2,3,4,5,6,7,8,9,+21]")  # (60 cells exactly)
    narrow = "".join(t for _, t, *_ in status_fragments(s, Views(), width=len(full) - 40))
    assert "Act" not in narrow  # not even "[Act: +29]" fits


def test_the_buffer_list_says_how_many_buffers_are_above_and_below() -> None:
    s = chat_session(channels=())
    for i in range(40):
        s.open_query(f"user{i}", NOW, switch=False)  # buffers 2..41
    bl = BufferList(s)

    def rows() -> list[str]:
        content = bl.create_content(bl.width(), 10)
        return [
            "".join(t for _, t, *_ in content.get_line(i)).strip()
            for i in range(content.line_count)
        ]

    top = rows()  # the server buffer is current: at the top, the rest below
    assert len(top) == 10 and top[0].split() == ["1", "server"]
    assert top[-1] == "+32 more"
    s.switch(20)
    middle = rows()
    assert middle[0] == "↑ 16 more" and middle[-1] == "+17 more" and len(middle) == 10
    assert [r.split()[0] for r in middle[1:-1]] == [str(n) for n in range(17, 25)]
    s.switch(40)
    bottom = rows()
    assert bottom[0] == "↑ 32 more" and bottom[-1].split() == ["41", "user39"]
    # The mark takes the colour of the most pressing buffer it stands for.
    feed(s, [privmsg("bob", "alice", "psst")])  # a private message: buffer 42
    s.switch(1)
    content = bl.create_content(bl.width(), 10)
    assert pairs(content.get_line(9)) == [("class:buffer_highlight", "+33 more")]


def test_nick_list_sorts_only_when_members_change() -> None:
    s = chat_session()
    buf = s.buffer("#t")
    assert buf is not None
    s.switch(buf)
    versions = {"v": 0}
    nl = NickList(s, lambda b: versions["v"])
    content = nl.create_content(nl.width(), 5)
    rows = ["".join(t for _, t, *_ in content.get_line(i)) for i in range(content.line_count)]
    assert rows[0].endswith("users") or rows[0].endswith("user")
    sorts = nl.sorts
    nl.create_content(nl.width(), 5)
    assert nl.sorts == sorts
    versions["v"] += 1
    nl.create_content(nl.width(), 5)
    assert nl.sorts == sorts + 1
    # More members than rows: a "+N more" line.
    feed(s, [f":u{i}!~u@h JOIN #t" for i in range(30)])
    content = nl.create_content(nl.width(), 5)
    last = "".join(t for _, t, *_ in content.get_line(content.line_count - 1))
    assert last.startswith("+") and last.endswith("more")


def nick_rows(nl: NickList, height: int) -> list[str]:
    content = nl.create_content(nl.width(), height)
    return ["".join(t for _, t, *_ in content.get_line(i)) for i in range(content.line_count)]


def test_the_nick_list_scrolls_by_pages_to_every_member() -> None:
    s = chat_session()
    buf = s.buffer("#t")
    assert buf is not None
    s.switch(buf)
    feed(s, [f":u{i:02}!~u@h JOIN #t" for i in range(40)])  # 41 with alice
    nl = NickList(s, lambda b: len(b.members))
    rows = nick_rows(nl, 12)  # the header, 10 nicks, "+N more"
    assert rows[0] == "41 users" and rows[-1].strip() == "+31 more"
    nl.scroll(1)  # a page: the rows for nicks less two, so a page overlaps the last
    rows = nick_rows(nl, 12)
    assert rows[1].strip() == "↑ 9 more" and rows[2].strip() == "u08"
    assert rows[-1].strip() == "+23 more" and len(rows) == 12
    for _ in range(10):  # past the end: the last nicks, no "+N more"
        nl.scroll(1)
    rows = nick_rows(nl, 12)
    assert rows[-1].strip() == "u39" and rows[1].strip() == "↑ 31 more" and len(rows) == 12
    nl.scroll(-1)  # from where it stopped, not from past it
    assert nick_rows(nl, 12)[1].strip() == "↑ 22 more"
    nl.scroll(-10)
    assert nick_rows(nl, 12)[1].strip() == "@alice"
    # Another buffer starts at the top.
    nl.scroll(2)
    s.switch(s.server)
    s.switch(buf)
    nick_rows(nl, 12)
    s.switch(s.server)
    nick_rows(nl, 12)
    s.switch(buf)
    assert nick_rows(nl, 12)[1].strip() == "@alice"


def test_config_problems_are_shown_in_the_server_buffer() -> None:
    s = chat_session(channels=())
    conn = Connection(s, ConnectionSettings(host="127.0.0.1", port=1))
    cfg = parse({"colours": {"error": "nonsense-colour"}, "keys": {"quit": "not-a-key"}})
    with create_pipe_input() as pipe:
        out = Vt100_Output(io.StringIO(), lambda: Size(rows=20, columns=80))
        ChatUI(conn, cfg, input=pipe, output=out)
    errors = [ln.text for ln in s.server.lines if ln.kind is Kind.ERROR]
    assert any("colours.error" in e for e in errors)
    assert any("keys.quit" in e for e in errors)


def test_default_config_builds_cleanly() -> None:
    s = chat_session(channels=())
    conn = Connection(s, ConnectionSettings(host="127.0.0.1", port=1))
    with create_pipe_input() as pipe:
        out = Vt100_Output(io.StringIO(), lambda: Size(rows=20, columns=80))
        ui = ChatUI(conn, ClientConfig(), input=pipe, output=out)
    assert not [ln for ln in s.server.lines if ln.kind is Kind.ERROR]
    assert ui.show_nicklist is True


class _Paced:
    """A ChatUI (not running) whose redraw pacing is driven by a fake clock: each line
    is a session line flushed through the connection to the UI's event handler, and
    a redraw is counted where the app would draw."""

    def __init__(self, session: Session, stack: contextlib.ExitStack) -> None:
        self.session = session
        self.now = 1000.0
        pipe = stack.enter_context(create_pipe_input())
        out = Vt100_Output(io.StringIO(), lambda: Size(rows=20, columns=80))
        conn = Connection(session, ConnectionSettings(host="127.0.0.1", port=1))
        self.ui = ChatUI(conn, ClientConfig(), input=pipe, output=out, clock=lambda: self.now)
        self.conn = conn
        self.redraws: list[float] = []
        cast(Any, self.ui.app).invalidate = self._redraw  # (the app is not running)
        stack.callback(self._cancel)

    def _redraw(self) -> None:
        self.redraws.append(self.now)
        self.ui._before_render(None)
        self.ui._after_render(None)

    def _cancel(self) -> None:
        if self.ui._redraw_handle is not None:
            self.ui._redraw_handle.cancel()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass: the waiting redraw happens when it is due."""
        self.now += seconds
        handle = self.ui._redraw_handle
        if handle is not None and self.now >= self.ui.redraw_at:
            handle.cancel()
            self.ui._deferred_redraw()

    def line(self, line: str) -> None:
        feed(self.session, [line])
        self.conn.flush()

    def lines(self, lines: list[str], every: float = 0.01) -> int:
        """Feed ``lines`` one by one, ``every`` seconds apart; the redraws they caused."""
        before = len(self.redraws)
        for line in lines:
            self.advance(every)
            self.line(line)
        self.advance(1.0)
        return len(self.redraws) - before


async def test_lines_out_of_view_redraw_at_a_slower_pace_than_the_buffer_in_view() -> None:
    s = chat_session()
    feed(s, [":alice!~alice@host JOIN #u"])
    s.open_query("bob", NOW, switch=False)
    t = s.buffer("#t")
    assert t is not None
    s.switch(t)
    s.take_events()
    with contextlib.ExitStack() as stack:
        paced = _Paced(s, stack)
        # 2 s of lines at 100 a second in #u, out of view: only its counter changes.
        flood = [privmsg("carol", "#u", f"out of view {i}") for i in range(200)]
        assert 2 <= paced.lines(flood) <= 2 / BACKGROUND_REDRAW_INTERVAL + 2
        # The same in the buffer in view: redrawn at the usual pace, 20 a second.
        flood = [privmsg("carol", "#t", f"in view {i}") for i in range(200)]
        assert paced.lines(flood) >= 2 / REDRAW_INTERVAL - 2
        # A highlight or a private message out of view is drawn at the usual pace, also
        # when a redraw for lines out of view is waiting already.
        for target, text in (("#u", "alice: look"), ("alice", "psst")):
            paced.advance(1.0)
            paced.line(privmsg("carol", "#t", "in view"))  # drawn at once
            drawn, count = paced.redraws[-1], len(paced.redraws)
            assert drawn == paced.now
            paced.advance(0.01)
            paced.line(privmsg("carol", "#u", "out of view"))
            assert paced.ui.redraw_at == pytest.approx(drawn + BACKGROUND_REDRAW_INTERVAL)
            paced.advance(0.01)
            paced.line(privmsg("bob", target, text))
            assert paced.ui.redraw_at == pytest.approx(drawn + REDRAW_INTERVAL)
            paced.advance(REDRAW_INTERVAL)
            assert len(paced.redraws) == count + 1


def test_read_marker_shows_what_came_while_away() -> None:
    s, buf = channel_with_lines(3)
    pane = MessagePane(s, LineRenderer(), Views())
    assert not any("─" in t for t in pane_text(pane))  # never left: no marker
    s.switch(s.server)
    feed(s, [privmsg("bob", "#t", "while away 1", "a1"),
             privmsg("bob", "#t", "while away 2", "a2")])
    s.switch(buf)
    shown = pane_text(pane)
    marker = next(i for i, t in enumerate(shown) if "─" in t)
    assert shown[marker - 1] == "<bob> message number 2"
    assert shown[marker + 1 :] == ["<bob> while away 1", "<bob> while away 2"]
    # Leaving again with nothing new: the marker moves to the end, so it is not drawn.
    s.switch(s.server)
    s.switch(buf)
    assert not any("─" in t for t in pane_text(pane))


def test_a_deleted_message_is_drawn_again_with_its_placeholder_dimmed() -> None:
    s, _ = channel_with_lines(3)
    r = LineRenderer()
    pane = MessagePane(s, r, Views())
    assert pane_text(pane)[-2] == "<bob> message number 1"  # drawn: in the row cache
    feed(s, [":carol!c@h REDACT #t m1 :spam"])
    shown = pane_text(pane)
    assert shown[-3:] == ["<bob> message number 0",
                          "<bob> (message deleted by carol: spam)",
                          "<bob> message number 2"]  # in place
    content = pane.create_content(60, 10)
    row = pairs(content.get_line(len(shown) - 2))
    styles = {text: style for style, text in row}
    assert styles["(message deleted by carol: spam)"] == "class:redacted"  # the text: dim
    assert styles["bob"] == nick_class("bob", r.palette_size)  # who sent it, as ever
    style, _ = build_style(ClientConfig())
    attrs = style.get_attrs_for_style_str("class:redacted")
    assert attrs.italic and attrs.color == "6c6c6c"


def test_deleted_actions_and_notices_keep_their_form() -> None:
    r = LineRenderer("")
    for kind, shown in ((Kind.ACTION, "* bob (message deleted)"),
                        (Kind.NOTICE, "-bob- (message deleted)")):
        frags, _ = r.fragments(line("(message deleted)", kind=kind, redacted=True))
        assert "".join(t for _, t in pairs(frags)) == shown
        assert pairs(frags)[-1] == ("class:redacted", "(message deleted)")


def test_reactions_are_drawn_after_the_message_and_ours_in_bold() -> None:
    s, _ = channel_with_lines(3)
    r = LineRenderer()
    pane = MessagePane(s, r, Views())
    assert pane_text(pane)[-2] == "<bob> message number 1"  # drawn: in the row cache
    formatted = r.formatted
    feed(s, ["@msgid=r1;+draft/react=👍;+draft/reply=m1 :carol!c@h TAGMSG #t",
             "@msgid=r2;+draft/react=❤️;+draft/reply=m1 :alice!a@h TAGMSG #t",  # our echo
             "@msgid=r3;+draft/react=👍;+draft/reply=m1 :dave!d@h TAGMSG #t"])
    shown = pane_text(pane)
    assert shown[-3:] == ["<bob> message number 0",
                          "<bob> message number 1  [👍 2 ❤ 1]",  # (drawn without VS16)
                          "<bob> message number 2"]  # in place, drawn anew
    assert r.formatted == formatted + 1
    row = pairs(pane.create_content(60, 10).get_line(len(shown) - 2))
    assert row[-4:] == [("class:reactions", "  ["), ("class:reactions", "👍 2"),
                        ("class:reactions bold", " ❤ 1"), ("class:reactions", "]")]
    style, _ = build_style(ClientConfig())
    assert style.get_attrs_for_style_str("class:reactions").color == "87afaf"
    # A narrow pane wraps the reactions like text, under the message.
    narrow = pane_text(pane, width=30)
    assert "[👍 2 ❤ 1]" in narrow[-2] and narrow[-3].startswith("<bob> message number 1")


def test_the_topic_bar_says_not_joined_also_with_a_topic() -> None:
    s = chat_session()
    s.switch("#t")

    def bar() -> str:
        return "".join(text for _, text, *_ in topic_fragments(s))

    assert bar() == " #t (no topic)"
    feed(s, [":test.server 332 alice #t :the \x02old\x02 topic"])
    assert bar() == " #t: the old topic"
    feed(s, [":op!o@h KICK #t alice :out"])
    assert bar() == " #t (not joined): the old topic"  # the marker before the topic
    feed(s, [":test.server 331 alice #t :No topic is set"])
    assert bar() == " #t (not joined)"


def test_beginning_of_history_shows_at_the_top_also_when_the_pane_is_full() -> None:
    s, buf = channel_with_lines(50)
    buf.history_loading, buf.history_complete = False, True  # (the server had nothing older)
    views = Views()
    pane = MessagePane(s, LineRenderer(), views)

    def rows() -> list[str]:
        content = pane.create_content(60, 10)
        return ["".join(t for _, t, *_ in content.get_line(i)) for i in range(content.line_count)]

    assert "beginning of history" not in "".join(rows())  # the bottom: the newest lines
    for _ in range(20):
        views.page_up(buf)
    top = rows()
    assert len(top) == 10 and top[0] == "— beginning of history —"
    assert top[1].endswith("alice has joined #t")  # the oldest line, under it
    assert views(buf).at_top
    for _ in range(20):
        views.page_down(buf)
    assert views(buf).offset == 0 and rows()[-1].endswith("message number 49")
    # Following new lines with the whole buffer exactly filling the pane: the newest
    # row is never given up for the note.
    s2, buf2 = channel_with_lines(9)  # 10 lines with the JOIN
    buf2.history_loading, buf2.history_complete = False, True
    pane2 = MessagePane(s2, LineRenderer(), Views())
    content = pane2.create_content(60, 10)
    last = "".join(t for _, t, *_ in content.get_line(content.line_count - 1))
    assert last.endswith("message number 8") and content.line_count == 10


def test_older_history_refused_is_not_called_the_beginning_of_history() -> None:
    """A PageUp the server answers with FAIL (or not at all) is not asked again on this
    connection; the top says why rather than that history begins there."""
    s = chat_session(history_lines=2)
    buf = s.buffer("#t")
    assert buf is not None
    s.switch(buf)
    page = [("bob", "m1", "M1", T0 + 1), ("bob", "m2", "M2", T0 + 2)]
    feed(s, history_batch("b0", "#t", page))  # the join's history: a full page
    s.take_outgoing()
    pane = MessagePane(s, LineRenderer(), Views())
    assert s.request_older(buf, NOW)
    assert sent(s)[-1].startswith("CHATHISTORY BEFORE #t")
    feed(s, ["FAIL CHATHISTORY MESSAGE_ERROR BEFORE #t :Messages could not be retrieved"])
    assert not buf.history_loading and not s.request_older(buf, NOW)
    content = pane.create_content(80, 10)
    top = "".join(t for _, t, *_ in content.get_line(0))
    assert top == ("— older messages not fetched: Messages could not be retrieved "
                   "(MESSAGE_ERROR) —")


def test_after_clear_the_top_is_not_called_the_beginning_of_history() -> None:
    s, buf = channel_with_lines(5)
    buf.history_loading, buf.history_complete = False, True
    pane = MessagePane(s, LineRenderer(), Views())

    def rows() -> list[str]:
        content = pane.create_content(60, 10)
        return ["".join(t for _, t, *_ in content.get_line(i)) for i in range(content.line_count)]

    assert rows()[0] == "— beginning of history —"
    s.input("/clear", NOW)
    feed(s, [":bob!b@h PRIVMSG #t :after the clear"])
    assert rows()[0] == "— cleared —"  # the server still has the older lines
    assert rows()[1].endswith("after the clear")
    # Older history merged above: the top is history again.
    buf.merge([Line(T0 - 10, Kind.MESSAGE, "bob", "very old", msgid="old1")], above=True)
    assert rows()[0] == "— beginning of history —"


def test_a_full_scrollback_says_older_lines_were_dropped() -> None:
    """Past the scrollback limit the top is not the beginning of history (the server
    has older lines); once PageUp cannot grow it to load them (SCROLLBACK_GROWTH times
    its size), the note says why nothing comes."""
    s = chat_session(scrollback=20)
    buf = s.buffer("#t")
    assert buf is not None
    s.switch(buf)
    buf.history_loading, buf.history_complete = False, True  # (the server had nothing older)
    pane = MessagePane(s, LineRenderer(), Views())

    def top() -> str:
        content = pane.create_content(60, 100)  # (taller than the buffer: the top shows)
        return "".join(t for _, t, *_ in content.get_line(0))

    feed(s, [privmsg("bob", "#t", f"message number {i}", f"m{i}") for i in range(15)])
    assert top() == "— beginning of history —"  # 16 of 20 lines: nothing dropped yet
    feed(s, [privmsg("bob", "#t", f"message number {i}", f"m{i}") for i in range(15, 40)])
    assert buf.full and not top().startswith("—")  # (PageUp at the top grows it)
    while buf.grow(20):  # as far as PageUp goes
        pass
    feed(s, [privmsg("bob", "#t", f"message number {i}", f"m{i}") for i in range(40, 120)])
    assert buf.full and top() == "— scrollback full: older lines dropped —"
