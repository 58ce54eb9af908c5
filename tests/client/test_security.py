"""A hostile server: control sequences, floods and malformed lines."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.message import Message
from client.formatting import display, plain, render, sanitize
from client.model import BufferKind, Kind
from client.session import MAX_MEMBERS, MAX_OPEN_BATCHES, MAX_REACTION

from .helpers import NOW, T0, all_text, chat_session, feed, make, messages, privmsg, texts

# No C0/C1 control, DEL, bidi override/isolate, line separator or lone surrogate.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def assert_clean(strings: list[str]) -> None:
    for text in strings:
        assert not UNSAFE.search(text), repr(text)


# ---------------------------------------------------------------------- sanitising


def test_escape_sequences_are_removed_whole() -> None:
    cases = {
        "a\x1b[2Jb": "ab",  # clear screen
        "a\x1b[38;5;196mred\x1b[0m": "ared",  # SGR colour
        "a\x1b]0;pwned title\x07b": "ab",  # OSC window title, BEL-terminated
        "a\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\b": "alinkb",  # OSC 8 hyperlink
        "a\x1bPq#0;2;0;0;0\x1b\\b": "ab",  # DCS (sixel)
        "a\x1b_hidden\x1b\\b": "ab",  # APC
        "a\x1bcb": "ab",  # RIS, full reset
        "a\x1b(0b": "ab",  # charset switch
        "a\x9b2Jb": "ab",  # 8-bit CSI
        "a\x9d0;t\x9cb": "ab",  # 8-bit OSC ... ST
        "a\x1b]0;unterminated": "a",
        "tab\there": "tab here",
        "bell\x07\x00\x7f": "bell",
        "evil\u202eexe.txt": "evilexe.txt",  # right-to-left override
        "iso\u2066late\u2069d": "isolated",
        "line\u2028break": "line break",
        "lone \ud800 surrogate": "lone \ufffd surrogate",
    }
    for raw, want in cases.items():
        assert sanitize(raw) == want, raw
        assert plain(raw) == want


def test_mirc_codes_become_spans() -> None:
    text, spans = display(
        "\x02bold\x02 \x1ditalic\x1d \x1funder\x1f \x0304,12colour\x03 \x16rev\x0f."
    )
    assert text == "bold italic under colour rev."
    by_text = {sp.text: sp for sp in spans}
    assert by_text["bold"].style.bold and by_text["italic"].style.italic
    assert by_text["under"].style.underline
    assert by_text["colour"].style.fg == "#ff0000" and by_text["colour"].style.bg == "#0000fc"
    assert by_text["rev"].style.reverse and not by_text["."].style.reverse
    assert "".join(sp.text for sp in spans) == text
    _, spans = display("\x04ff8800,000000hex\x1estrike")
    assert spans[0].style.fg == "#ff8800" and spans[0].style.bg == "#000000"
    assert spans[1].style.strikethrough
    assert render("") == ()
    assert plain("\x0399,99x\x03,5y") == "x,5y"
    # Colour numbers are ASCII digits: other digits are text (as mIRC and the server's +c).
    assert plain("\x03٣x") == "٣x" and render("\x03٣x")[0].style.fg is None


def test_incoming_text_is_clean_everywhere() -> None:
    s = chat_session()
    evil = "hi \x1b[2J\x1b]0;title\x07\x9b31m\x1b[?1049h\u202egnp.exe\x00\x07\x08 end"
    feed(
        s,
        [
            privmsg("bob", "#t", evil),
            privmsg("bob", "alice", evil),
            f":bob!b@h TOPIC #t :{evil}",
            f":test.server 332 alice #t :{evil}",
            f":bob!b@h NOTICE alice :{evil}",
            f":bob!b@h PART #t :{evil}",
            ":test.server 353 alice = #t :@bo\x1b[2Jb carol",
            ":test.server 366 alice #t :End",
            f":e\x1b[2Jvil!u@h PRIVMSG #t :{evil}",
            f":bob!b@h PRIVMSG #ch\x1b]0;x\x07an :{evil}",  # unsafe channel name
            f":test.server 401 alice ni\x1b[1mck :{evil}",
            f"ERROR :{evil}",
            f":bob!b@h PRIVMSG alice :\x01ACTION {evil}\x01",
            f":bob!b@h PRIVMSG alice :\x01VERSION {evil}\x01",
            f":bob!b@h KICK #t alice :{evil}",
        ],
    )
    assert_clean(all_text(s))
    # The unsafe channel name got no buffer of its own.
    assert all(b.kind is not BufferKind.CHANNEL or b.name == "#t" for b in s.buffers)
    buf = s.buffer("#t")
    assert buf is not None and "hi gnp.exe end" in texts(buf)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_text_displays_clean(text: str) -> None:
    shown, spans = display(text)
    assert_clean([shown, *(sp.text for sp in spans)])
    assert "".join(sp.text for sp in spans) == shown


SESSION = chat_session()
COMMANDS = [
    "PRIVMSG",
    "NOTICE",
    "JOIN",
    "PART",
    "KICK",
    "MODE",
    "NICK",
    "TOPIC",
    "QUIT",
    "BATCH",
    "CAP",
    "353",
    "366",
    "005",
    "332",
    "001",
    "433",
    "FAIL",
    "AWAY",
    "PONG",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(max_size=300),
        st.binary(max_size=300),
        st.builds(
            lambda cmd, params: f":x!y@z {cmd} " + " ".join(params),
            st.sampled_from(COMMANDS),
            st.lists(st.text(min_size=0, max_size=20), max_size=6),
        ),
    )
)
def test_any_line_never_raises(line: str | bytes) -> None:
    SESSION.feed(line, NOW)
    SESSION.take_outgoing()
    SESSION.take_events()
    assert_clean(all_text(SESSION))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60), st.text(min_size=1, max_size=20))
def test_any_reaction_displays_clean(text: str, nick: str) -> None:
    s = chat_session()
    feed(s, [privmsg("bob", "#t", "react to me", "m1"),
             Message("TAGMSG", ["#t"], f"{nick.replace(' ', '_')}!u@h",
                     {"msgid": "r1", "+draft/react": text, "+draft/reply": "m1"}).to_line()])
    assert_clean(all_text(s))
    buf = s.buffer("#t")
    assert buf is not None
    line = buf.find_message("m1")
    assert line is not None
    assert all(0 < len(r.text) <= MAX_REACTION for r in line.reactions)


def test_malformed_lines_are_ignored() -> None:
    s = chat_session()
    bad: list[str | bytes] = [
        "",
        " ",
        ":",
        "@",
        "@a=b",
        ":only-source",
        "PRIVMSG",
        "PRIVMSG #t",
        ":bob!b@h PRIVMSG",
        "353",
        ":x 353 alice = #t",
        ":x 366",
        "005",
        ":x 005 alice PREFIX=(ov CHATHISTORY=abc NICKLEN=99999999999 :x",
        ":x 005 alice CHATHISTORY=² NICKLEN=² MODES=² :digits int() rejects",
        ":x CAP alice NEW :draft/multiline=max-bytes=²,max-lines=²",
        "BATCH",
        "BATCH -nonexistent",
        "BATCH +onlyref",
        ":x MODE #t +o",
        ":x MODE #t +bbbbbbbbbbbbbbbbbbbbbbbb",
        "KICK",
        ":x KICK #t",
        "@time=garbage :bob!u@h PRIVMSG #t :bad time",
        "@time=99999-01-01T00:00:00Z :bob!u@h PRIVMSG #t :huge time",
        b"\xff\xfe:bob!u@h PRIVMSG #t :\xc3(",
        "CAP",
        "CAP * LS",
        ":x 001",
        "JOIN",
        "NICK",
        ":bob!b@h NICK",
        "PING",
        "PONG",
        "FAIL",
        "FAIL CHATHISTORY",
        ":x 332 alice",
        ":x 333",
        ":x 301 alice",
        ":x 999 alice weird numeric",
        ":x 4",
        "\x00\x01\x02",
        "@" + "a=b;" * 3000 + " PRIVMSG #t :tags",
    ]
    for line in bad:
        s.feed(line, NOW)
    s.take_outgoing()
    # Still works afterwards.
    feed(s, [privmsg("bob", "#t", "still here")])
    buf = s.buffer("#t")
    assert buf is not None and texts(buf)[-1] == "still here"
    assert_clean(all_text(s))
    assert not any("could not be handled" in ln.text for ln in s.server.lines), [
        ln.text for ln in s.server.lines if ln.kind is Kind.ERROR
    ]


# ---------------------------------------------------------------------- bounds


def test_scrollback_is_bounded_under_a_flood() -> None:
    s = chat_session()
    buf = s.buffer("#t")
    assert buf is not None
    for i in range(100_000):
        s.feed(privmsg("bob", "#t", f"flood {i}", f"F{i:06d}", T0 + i / 1000), NOW)
    assert len(buf.lines) == 2000
    assert len(buf.seen) <= 4000
    assert texts(buf)[-1] == "flood 99999"
    assert len(s.take_events()) > 0  # drained by the driver in real use


def test_buffers_are_capped() -> None:
    s = chat_session(max_buffers=10)
    feed(s, [privmsg(f"spam{i}", "alice", "hi") for i in range(100)])
    feed(s, [f":alice!a@h JOIN #c{i}" for i in range(100)])
    assert len(s.buffers) == 10
    assert any("spam99" in ln.text for ln in s.server.lines)


def test_members_and_open_batches_are_capped() -> None:
    s = chat_session()
    names = [f"u{i}" for i in range(MAX_MEMBERS + 5000)]
    lines = [
        f":test.server 353 alice = #t :{' '.join(names[i : i + 40])}"
        for i in range(0, len(names), 40)
    ]
    feed(s, [*lines, ":test.server 366 alice #t :End"])
    buf = s.buffer("#t")
    assert buf is not None and len(buf.members) == MAX_MEMBERS
    feed(s, [f":u{i}!u@h JOIN #t" for i in range(MAX_MEMBERS, MAX_MEMBERS + 100)])
    assert len(buf.members) == MAX_MEMBERS
    # Batches that are never closed, and a batch that never ends.
    feed(s, [f":test.server BATCH +x{i} chathistory #t" for i in range(1000)])
    assert len(s._batches) <= MAX_OPEN_BATCHES
    feed(s, [privmsg("bob", "#t", "x", f"B{i}", T0, batch="x999") for i in range(20_000)])
    assert all(len(b.lines) <= 2000 for b in s._batches.values())


def test_pending_names_replies_are_capped() -> None:
    s = chat_session()
    feed(s, [f":test.server 353 alice = #c{i} :a b c" for i in range(1000)])
    assert len(s._names) <= 64


def test_long_tags_and_msgids() -> None:
    s = chat_session()
    feed(s, [f"@msgid={'x' * 5000} :bob!b@h PRIVMSG #t :long id"])
    buf = s.buffer("#t")
    assert buf is not None
    line = messages(buf)[-1]
    assert line.msgid is not None and len(line.msgid) <= 128


def test_own_channel_name_limits() -> None:
    s = make()
    s.connection_made(NOW)
    feed(s, [":srv 001 alice :hi", f":alice!a@h JOIN #{'x' * 400}"])
    assert len(s.buffers) == 1  # name too long for a buffer: refused
