"""The model's lines: what they share to keep a full scrollback small."""

from __future__ import annotations

from client.model import Kind, Line

from .helpers import chat_session, feed, privmsg


def test_lines_from_one_nick_share_its_string() -> None:
    s = chat_session()
    feed(s, [privmsg("bob", "#t", f"hello {i}") for i in range(3)])
    buf = s.buffer("#t")
    assert buf is not None
    nicks = [ln.nick for ln in buf.lines if ln.kind is Kind.MESSAGE]
    assert nicks == ["bob"] * 3
    assert nicks[0] is nicks[1] is nicks[2]


def test_a_line_built_from_a_new_nick_string_is_interned() -> None:
    made = "".join(["ca", "rol"])  # a new string object, as each parsed message has
    assert Line(0.0, Kind.MESSAGE, made, "hi").nick is Line(1.0, Kind.MESSAGE, "carol", "x").nick
