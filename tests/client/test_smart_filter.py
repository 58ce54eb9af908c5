"""The smart filter of joins, parts, quits and nick changes (client/smartfilter.py):
its three modes, the "spoke recently" rule on live and history lines, /filter, the
buffer list's activity, and the message pane skipping what it hides."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from chat.servertime import format_time
from client import cli
from client.config import ClientConfig, parse
from client.model import Buffer, BufferChanged, BufferKind, Kind, Line
from client.session import Session, SessionConfig
from client.smartfilter import Events
from client.ui.render import LineRenderer
from client.ui.views import MessagePane, Views, status_fragments

from .helpers import (
    NOW,
    T0,
    chat_session,
    chathistory_batch,
    feed,
    last_error,
    make,
    privmsg,
    run,
)
from .netutil import DEADLINE, Ircd, headless
from .test_read_marker import marker_session


def event(nick: str, command: str, t: float, rest: str = "#t", batch: str | None = None) -> str:
    """``nick`` JOINs, PARTs, QUITs... at server time ``t``."""
    tags = f"time={format_time(t)};msgid=e{t * 1000:.0f}{nick}"
    tags += f";batch={batch}" if batch else ""
    return f"@{tags} :{nick}!{nick[0]}@h {command} {rest}"


def said(nick: str, text: str, t: float, batch: str | None = None) -> str:
    return privmsg(nick, "#t", text, f"m{t * 1000:.0f}{nick}", t, batch=batch)


def in_t(**kw: object) -> tuple[Session, Buffer]:
    """Registered with (a recording of) our server, in #t; the server buffer current."""
    s = chat_session(**kw)
    buf = s.buffer("#t")
    assert buf is not None
    return s, buf


def shown(s: Session, buf: Buffer) -> list[str]:
    """The lines of ``buf`` the pane draws (but info lines), as "nick text"."""
    return [
        f"{ln.nick} {ln.text}" for ln in buf.lines
        if not s.hidden(buf, ln) and ln.kind is not Kind.INFO
    ]  # fmt: skip


COMINGS_AND_GOINGS = [
    event("bob", "JOIN", T0 + 10),
    said("bob", "hi all", T0 + 20),
    event("carol", "JOIN", T0 + 30),
    event("dave", "JOIN", T0 + 35),
    event("bob", "PART", T0 + 60, "#t :bye"),  # spoke 40 s before
    event("carol", "QUIT", T0 + 90, ":gone"),  # never spoke
    event("dave", "NICK", T0 + 95, "dave2"),  # never spoke
    event("op", "KICK", T0 + 100, "#t dave2 :out"),  # (op never spoke: still shown)
    event("op", "TOPIC", T0 + 110, "#t :new topic"),
    event("op", "MODE", T0 + 120, "#t +m"),
]
ALWAYS = [
    "alice has joined #t",  # our own
    "bob hi all",
    "op has kicked dave2 (out)",
    "op changed the topic to: new topic",
    "op sets mode +m",
]


def test_each_mode_shows_its_joins_parts_quits_and_nick_changes() -> None:
    s, buf = in_t()
    feed(s, COMINGS_AND_GOINGS)
    assert s.event_filter.mode is Events.SMART  # the default
    assert shown(s, buf) == [
        "alice has joined #t",
        "bob has joined #t",  # he spoke 10 s after joining
        "bob hi all",
        "bob has left #t (bye)",  # he spoke 40 s before leaving
        *ALWAYS[2:],
    ]
    s.set_filter(Events.NONE, NOW)
    assert shown(s, buf) == ALWAYS
    s.set_filter(Events.ALL, NOW)
    assert shown(s, buf) == [
        "alice has joined #t", "bob has joined #t", "bob hi all", "carol has joined #t",
        "dave has joined #t", "bob has left #t (bye)", "carol has quit (gone)",
        "dave is now known as dave2", *ALWAYS[2:],
    ]  # fmt: skip
    # Hiding is a display matter: every line stays in the buffer.
    assert len([ln for ln in buf.lines if ln.kind is not Kind.INFO]) == 11


def test_our_own_lines_and_the_notify_lists_are_never_hidden() -> None:
    s, buf = in_t(notify=("zed",))
    s.switch(buf)
    s.set_filter(Events.NONE, NOW)
    feed(s, [":test.server 730 alice :zed!z@h", ":alice!~a@h NICK alice2"])
    assert shown(s, buf)[-3:] == [
        "alice has joined #t", "zed is online (z@h)", "alice is now known as alice2"]
    # Queries and the server buffer are never filtered.
    feed(s, [privmsg("bob", "alice2", "psst"), ":bob!b@h QUIT :bye"])
    query = s.buffer("bob")
    assert query is not None and shown(s, query) == ["bob psst", "bob has quit (bye)"]


def test_smart_shows_the_lines_of_nicks_who_spoke_within_the_minutes() -> None:
    s, buf = in_t()
    feed(s, [event(nick, "JOIN", T0 - 1000) for nick in ("bob", "carol", "frank")])  # (hidden)
    feed(s, [
        said("bob", "one", T0), said("carol", "two", T0), said("frank", "three", T0),
        event("bob", "PART", T0 + 299),  # spoke 4:59 before
        event("carol", "QUIT", T0 + 301, ":zzz"),  # spoke 5:01 before
        event("frank", "NICK", T0 + 60, "frank2"),  # spoke a minute before
        event("frank2", "QUIT", T0 + 200, ":later"),  # spoke (as frank) 3:20 before
        event("dave", "JOIN", T0 + 400), said("dave", "hello", T0 + 699),  # 4:59 after
        event("erin", "JOIN", T0 + 400), said("erin", "hello", T0 + 701),  # 5:01 after
    ])  # fmt: skip
    events = [t for t in shown(s, buf) if "has" in t or "known" in t][1:]  # (not ours)
    assert events == [
        "bob has left #t", "frank is now known as frank2", "frank2 has quit (later)",
        "dave has joined #t",
    ]
    assert len([ln for ln in buf.lines if ln.kind is Kind.QUIT]) == 2  # carol's is hidden
    # A longer "lately": carol's quit and erin's join show too.
    s2, buf2 = in_t(smart_filter_minutes=10)
    feed(s2, [event("carol", "JOIN", T0 - 1000), said("carol", "two", T0),
              event("carol", "QUIT", T0 + 301, ":zzz"),
              event("erin", "JOIN", T0 + 400), said("erin", "hello", T0 + 701)])  # fmt: skip
    assert "carol has quit (zzz)" in shown(s2, buf2) and "erin has joined #t" in shown(s2, buf2)


def test_history_lines_follow_the_same_rule_by_their_times() -> None:
    s, buf = in_t()
    rows = [
        event("carol", "JOIN", T0 - 600, batch="h1"),
        event("bob", "JOIN", T0 - 500, batch="h1"),
        said("bob", "back then", T0 - 400, batch="h1"),
        event("carol", "PART", T0 - 300, batch="h1"),
        event("bob", "QUIT", T0 - 200, ":later", batch="h1"),
        event("dave", "JOIN", T0 - 100, batch="h1"),
    ]
    feed(s, chathistory_batch("h1", "#t", rows))
    history = [ln for ln in buf.lines if ln.history]
    assert len(history) == 6  # all kept
    assert [f"{ln.nick} {ln.text}" for ln in history if not s.hidden(buf, ln)] == [
        "bob has joined #t", "bob back then", "bob has quit (later)"]
    # A live message after the history shows the join it follows (dave's, 100 s before).
    feed(s, [said("dave", "hi", T0 + 1)])
    assert "dave has joined #t" in shown(s, buf)


def test_a_hidden_line_does_not_make_a_buffer_look_active() -> None:
    s, buf = in_t()  # (the server buffer is current)
    s.take_events()
    feed(s, [event("carol", "JOIN", T0 + 1)])
    assert (buf.unread, buf.activity) == (0, False)
    assert s.take_events().count(BufferChanged(buf)) == 1  # (the member list's only)
    feed(s, [said("bob", "hi", T0 + 2)])
    assert (buf.unread, buf.activity) == (1, True)
    s.switch(buf)
    s.switch(s.server)
    feed(s, [event("bob", "PART", T0 + 3)])  # shown: bob spoke a second before
    assert (buf.unread, buf.activity) == (0, True)
    s.switch(buf)
    s.switch(s.server)
    s.set_filter(Events.NONE, NOW)
    feed(s, [event("carol", "PART", T0 + 4), event("bob", "JOIN", T0 + 5)])
    assert buf.activity is False


def test_a_read_marker_leaves_no_activity_for_hidden_lines_after_it() -> None:
    s = marker_session()
    buf = s.buffer("#t")
    assert buf is not None
    feed(s, [said("bob", "hi", T0 + 1), event("carol", "JOIN", T0 + 2)])
    assert (buf.unread, buf.activity) == (1, True)
    feed(s, [f":test.server MARKREAD #t timestamp={format_time(T0 + 1)}"])
    assert (buf.unread, buf.activity) == (0, False)  # only carol's hidden join came after


def test_filter_command_sets_or_cycles_the_mode_for_the_session() -> None:
    s, buf = in_t()
    s.switch(buf)
    version = buf.version
    run(s, "/filter")  # smart -> none
    assert s.event_filter.mode is Events.NONE and buf.version > version
    assert s.current.lines[-1].text == (
        "Hiding joins, parts, quits and nick changes in channels (/filter none)")
    run(s, "/filter")
    assert s.event_filter.mode is Events.ALL
    assert s.current.lines[-1].text == (
        "Showing all joins, parts, quits and nick changes (/filter all)")
    run(s, "/FILTER Smart")
    assert s.event_filter.mode is Events.SMART
    assert s.current.lines[-1].text == (
        "Showing joins, parts, quits and nick changes in channels only of nicks who spoke"
        " there within 5 minutes of them (/filter smart)")
    run(s, "/filter some")
    assert last_error(s) == "Usage: /filter [all|smart|none]"
    assert s.event_filter.mode is Events.SMART
    run(s, "/help")
    assert any(ln.text.strip().startswith("/filter [all|smart|none]") for ln in s.current.lines)
    offline = make()  # not connected: it works all the same
    run(offline, "/filter all")
    assert offline.event_filter.mode is Events.ALL


def test_the_config_sets_the_mode_and_the_minutes(tmp_path: Path) -> None:
    config = parse({"events": "none", "smart_filter_minutes": 2})
    assert (config.events, config.smart_filter_minutes) == ("none", 2)
    default = ClientConfig()
    assert (default.events, default.smart_filter_minutes) == ("smart", 5)
    conf = tmp_path / "c.toml"
    conf.write_text('nick = "alice"\nevents = "all"\nsmart_filter_minutes = 30\n', "utf-8")
    s = cli.build(["irc.example", "--config", str(conf)]).session
    assert (s.event_filter.mode, s.event_filter.minutes) == (Events.ALL, 30)


def test_who_spoke_when_stays_bounded_by_the_scrollback() -> None:
    buf = Buffer(BufferKind.CHANNEL, "#t", scrollback=100)
    for i in range(5000):
        buf.append(Line(T0 + i, Kind.MESSAGE, f"nick{i % 300}", "hi"))
    assert buf.spoken_count <= 2 * len(buf.lines) + 64
    assert buf.spoke("NICK199", T0 + 4999, T0 + 4999)  # (folded)
    assert not buf.spoke("nick199", T0, T0 + 4998)  # (its older times are gone)
    buf.reset([])
    assert not buf.spoken


def test_hidden_events_in_history_make_room_among_themselves() -> None:
    """A history answer of joins (event playback) fills a full scrollback: the oldest
    joins go, not the conversation, and a read marker on one moves to the line above."""
    s, buf = in_t(scrollback=50)
    feed(s, chathistory_batch("h0", "#t", []))  # the join's: nothing older
    feed(s, [said("bob", f"message {i}", T0 + i) for i in range(20)])
    feed(s, [event(f"u{i}", "JOIN", T0 + 100 + i) for i in range(29)])
    assert buf.full
    buf.read_marker = buf.lines[21]  # the first join (u0's), hidden
    rows = [event(f"w{i}", "JOIN", T0 + 200 + i, batch="h1") for i in range(100)]
    feed(s, chathistory_batch("h1", "#t", rows))  # (answered unasked: merged all the same)
    assert [ln.text for ln in buf.lines if ln.nick == "bob"] == [
        f"message {i}" for i in range(20)]
    assert buf.lines[-1].nick == "w99" and len(buf.lines) <= 50
    assert buf.read_marker is buf.lines[20]  # bob's last message, above u0's join
    assert buf.history_complete  # (nothing fell off the top)


# ---------------------------------------------------------------------- the pane


def busy_channel(joins: int = 5, messages: int = 30) -> tuple[Session, Buffer]:
    """#t with ``messages`` of bob's, each after ``joins`` joins of nicks who never
    speak (hidden); the history complete."""
    s, buf = in_t()
    lines = []
    t = T0
    for i in range(messages):
        for j in range(joins):
            t += 1
            lines.append(event(f"u{i}x{j}", "JOIN", t))
        t += 1
        lines.append(said("bob", f"message {i}", t))
    feed(s, lines)
    buf.history_loading, buf.history_complete = False, True
    return s, buf


def pane_rows(pane: MessagePane, height: int = 10) -> list[str]:
    content = pane.create_content(60, height)
    return ["".join(t for _, t, *_ in content.get_line(i)) for i in range(content.line_count)]


def more(s: Session, views: Views) -> str:
    status = "".join(t for _, t, *_ in status_fragments(s, views))
    return status[status.find("-- more"):] if "-- more" in status else ""


def test_the_pane_skips_hidden_lines_and_pages_by_the_lines_it_draws() -> None:
    s, buf = busy_channel()
    s.switch(buf)
    views = Views(s.hidden)
    pane = MessagePane(s, LineRenderer(), views)
    assert [r[6:] for r in pane_rows(pane)] == [f"<bob> message {i}" for i in range(20, 30)]
    view = views(buf)
    assert view.shown == 10 and not view.at_top and more(s, views) == ""
    views.page_up(buf)  # the top line becomes the bottom one, as without hidden lines
    assert [r[6:] for r in pane_rows(pane)] == [f"<bob> message {i}" for i in range(11, 21)]
    assert more(s, views) == "-- more: 9 below (PageDown) --"  # drawn lines, not 54
    views.page_up(buf)
    views.page_up(buf)
    rows = pane_rows(pane)
    assert rows[0] == "— beginning of history —" and view.at_top
    assert rows[1].endswith("alice has joined #t") and rows[-1].endswith("message 7")
    views.page_down(buf)  # (from message 8, under the note: 8 lines down)
    assert pane_rows(pane)[-1].endswith("message 16")
    views.page_down(buf)
    views.page_down(buf)
    assert view.offset == 0 and pane_rows(pane)[-1].endswith("message 29")
    assert more(s, views) == ""
    # Shown again (/filter all), the joins are drawn where they are.
    s.set_filter(Events.ALL, NOW)
    assert "u29x4 has joined #t" in "".join(pane_rows(pane))


def test_a_view_scrolled_up_stays_while_hidden_events_below_it_go() -> None:
    """Scrolled up in a full scrollback, a flood of hidden joins: the oldest joins go,
    below the lines in view too, and the view stays on the same lines."""
    s, buf = in_t(scrollback=60)
    feed(s, chathistory_batch("h0", "#t", []))
    t = T0
    lines = []
    for i in range(40):
        t += 2
        lines += [said("bob", f"message {i}", t), event(f"u{i}", "JOIN", t + 1)]
    feed(s, lines)
    s.switch(buf)
    views = Views(s.hidden)
    pane = MessagePane(s, LineRenderer(), views)
    pane_rows(pane)
    views.page_up(buf)
    views.page_up(buf)
    before = pane_rows(pane)
    assert before[-1].endswith("message 21")
    for i in range(100):
        feed(s, [event(f"w{i}", "JOIN", t + 10 + i)])
        views.line_added(buf)
    assert [ln.text for ln in buf.lines if ln.nick == "bob"][-20:] == [
        f"message {i}" for i in range(20, 40)]
    assert pane_rows(pane) == before


def test_only_hidden_lines_above_is_the_top() -> None:
    s, buf = busy_channel(joins=50, messages=3)
    s.switch(buf)
    buf.remove(buf.lines[0])  # (not our own join: only hidden lines above the messages)
    views = Views(s.hidden)
    pane = MessagePane(s, LineRenderer(), views)
    rows = pane_rows(pane)
    assert rows[0] == "— beginning of history —"
    assert [r[6:] for r in rows[1:]] == ["<bob> message 0", "<bob> message 1", "<bob> message 2"]
    assert views(buf).at_top  # PageUp asks the server for older lines
    views.page_up(buf)
    assert pane_rows(pane) == rows  # nothing else to show
    # The pane full: the hidden lines above are not walked through, but still the top.
    s, buf = busy_channel(joins=5, messages=10)
    s.switch(buf)
    buf.remove(buf.lines[0])
    views = Views(s.hidden)
    pane = MessagePane(s, LineRenderer(), views)
    assert [r[6:] for r in pane_rows(pane)] == [f"<bob> message {i}" for i in range(10)]
    assert views(buf).at_top and pane.lines_rendered == 10 + 9 * 5


def test_the_read_marker_on_a_hidden_line_is_drawn_where_it_is() -> None:
    s, buf = busy_channel(messages=3)
    s.switch(buf)
    buf.read_marker = buf.lines[-3]  # a hidden join, before message 2
    pane = MessagePane(s, LineRenderer(), Views(s.hidden))
    rows = pane_rows(pane)
    assert rows[-2].startswith("─") and rows[-1].endswith("message 2")
    assert rows[-3].endswith("message 1")
    buf.read_marker = buf.lines[-1]  # nothing drawn after it: no rule
    buf.append(Line(T0 + 999, Kind.JOIN, "zed", "has joined #t"))  # (hidden)
    assert not any(r.startswith("─") for r in pane_rows(pane))


async def test_headless_output_hides_what_the_pane_hides(ircd: Ircd) -> None:
    async def printed(text: str) -> list[str]:
        async with asyncio.timeout(DEADLINE):
            while text not in out.getvalue():
                await asyncio.sleep(0.01)
        return [line.split(" ", 2)[2] for line in out.getvalue().splitlines()]

    config = SessionConfig(nick="alice", channels=("#t",))  # events = "smart"
    async with headless(ircd.port, config) as (out, typed):
        await ircd.wait(lambda: "JOIN #t" in ircd.lines, "the JOIN")
        for line in (
            ":alice!a@h JOIN #t",
            ":zed!z@h JOIN #t",  # never says a word: hidden
            ":zed!z@h PART #t",
            ":carol!c@h PRIVMSG #t :bye all",
            ":carol!c@h PART #t",  # spoke just before: shown
            ":bob!b@h JOIN #t",  # hidden until he speaks, then shown before it
            ":bob!b@h PRIVMSG #t :hi",
        ):
            ircd.send(line)
        shown = await printed("<bob> hi")
        assert not any("zed" in line for line in shown)
        assert shown[-4:] == ["<carol> bye all", "-- carol has left #t",
                              "-- bob has joined #t", "<bob> hi"]  # fmt: skip
        # The setting is the session's, as the pane's: /filter changes both.
        os.write(typed, b"/filter all\n")
        await printed("Showing all joins")
        ircd.send(":zed!z@h JOIN #t")
        assert (await printed("zed has joined"))[-1] == "-- zed has joined #t"
