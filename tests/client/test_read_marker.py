"""IRCv3 draft/read-marker in the client: what one session of an account reads stops
counting as unread in its other sessions.

First against our real server over TCP (two sessions of one account, logged in with
SASL; the server's wire behaviour is tests/server/test_read_marker.py), then sans-IO
cases for the decisions the session makes (when a MARKREAD goes out, what an incoming
one clears).
"""

from __future__ import annotations

import time
from pathlib import Path

from chat.servertime import format_time, parse_time
from client.chatlog import ChatLog
from client.model import Buffer, BufferChanged, Kind
from client.session import Session
from tests.conftest import RunningServer

from .helpers import NOW, T0, all_text, chat_session, feed, history_batch, make, privmsg
from .netutil import ChatClient, messages
from .recorded import CHAT_BURST, CHAT_JOIN
from .test_accounts import PASSWORD, make_account

CAP = "draft/read-marker"
LOGIN = ":test.server 900 alice alice!~a@h alice :You are now logged in as alice"


async def session_of(
    server: RunningServer, clients: list[ChatClient], nick: str, account: str | None
) -> ChatClient:
    """A client in #room, logged in to ``account`` (None: not logged in)."""
    sasl = (account, PASSWORD) if account is not None else None
    c = ChatClient.start(server.port, nick, ("#room",), sasl=sasl)
    clients.append(c)
    await c.joined("#room")
    assert c.session.account == account
    assert CAP in c.session.caps  # requested, and the server has it
    return c


async def said(c: ChatClient, text: str) -> Buffer:
    """``c``'s #room once ``text`` arrived there."""
    buf = c.session.buffer("#room")
    assert buf is not None
    await c.wait(lambda: text in [ln.text for ln in messages(buf)], f"{text!r} in #room")
    return buf


def marks(c: ChatClient, target: str = "#room") -> list[str]:
    """The MARKREAD lines ``c`` sent that set a marker on ``target``."""
    return [ln for ln in c.sent if ln.startswith(f"MARKREAD {target} ")]


def shown_nowhere(s: Session, logs: Path) -> None:
    """No MARKREAD (nor its FAIL) reached a buffer or a chat log."""
    assert not [t for t in all_text(s) if "MARKREAD" in t]
    logged = "".join(p.read_text(encoding="utf-8") for p in logs.rglob("*.log"))
    assert logged and "MARKREAD" not in logged


# ---------------------------------------------------------------------- real server


async def test_reading_in_one_session_clears_the_unread_count_of_the_other(
    server: RunningServer, clients: list[ChatClient], tmp_path: Path
) -> None:
    await make_account(server, "ann")
    here = await session_of(server, clients, "ann", "ann")
    there = await session_of(server, clients, "ann_b", "ann")
    chatlog = ChatLog(tmp_path / "logs")
    here.conn.subscribe(chatlog.handle)
    there.conn.subscribe(chatlog.handle)
    bob = await server.client("bob")
    await bob.join("#room")
    await bob.send("PRIVMSG #room :lunch, ann_b?")
    mine, theirs = await said(here, "lunch, ann_b?"), await said(there, "lunch, ann_b?")
    # Neither session is looking at #room (the server buffer is current): unread in both.
    assert (mine.unread, theirs.unread, theirs.highlights) == (1, 1, 1)

    here.conn.switch("#room")  # read here
    line = messages(mine)[-1]
    assert marks(here) == [f"MARKREAD #room timestamp={format_time(line.time)}"]
    await there.wait(lambda: theirs.unread == 0 and theirs.highlights == 0, "the marker")
    assert theirs.read_marker is theirs.lines[-1]  # read, as if looked at there
    assert marks(there) == []  # the other session only heard of it
    # Looking again with nothing new sends nothing more.
    here.conn.switch(0)
    here.conn.switch("#room")
    assert len(marks(here)) == 1

    chatlog.close()
    for c in (here, there):
        shown_nowhere(c.session, tmp_path / "logs")


async def test_an_older_marker_leaves_newer_lines_unread(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    await make_account(server, "ann")
    here = await session_of(server, clients, "ann", "ann")
    there = await session_of(server, clients, "ann_b", "ann")
    bob = await server.client("bob")
    await bob.join("#room")
    for text in ("one", "two", "three"):
        await bob.send(f"PRIVMSG #room :{text}")
    theirs = await said(there, "three")
    await said(here, "three")
    assert theirs.unread == 3
    # Another client of the account marks a time before them: server-time has whole
    # milliseconds, so the three may share one; what is before "one" is before all.
    before_all = round(messages(theirs)[0].time * 1000) - 1
    here.conn.input(f"/quote MARKREAD #room timestamp={format_time(before_all / 1000)}")
    await there.wait(lambda: theirs.marked_ms == before_all, "the marker")
    assert (theirs.unread, theirs.activity) == (3, True)  # still unread
    assert marks(there) == []


async def test_a_client_not_logged_in_never_sends_markread(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    carl = await session_of(server, clients, "carl", None)
    bob = await server.client("bob")
    await bob.join("#room")
    await bob.send("PRIVMSG #room :hi carl")
    buf = await said(carl, "hi carl")
    assert buf.unread == 1 and buf.last_time is not None  # something to mark read
    carl.conn.switch("#room")
    carl.conn.switch(0)
    carl.conn.input("/query bob")  # a query asks for its marker, when logged in
    assert carl.session.buffer("bob") is not None
    carl.session.ping(time.time())  # a keepalive marks the current buffer, when logged in
    carl.conn.flush()
    assert [ln for ln in carl.sent if ln.startswith("MARKREAD")] == []
    assert buf.unread == 0  # read here all the same
    errors = [ln.text for b in carl.session.buffers for ln in b.lines if ln.kind is Kind.ERROR]
    assert errors == []


# ---------------------------------------------------------------------- sans-IO


def marker_session(*, logged_in: bool = True, cap: bool = True) -> Session:
    """Registered against (a recording of) our server, in #t, the server buffer current."""
    s = chat_session()
    if cap:
        feed(s, [f":test.server CAP alice ACK :{CAP}"])
    if logged_in:
        feed(s, [LOGIN])
    s.take_events()
    return s


T1, T2, T3 = "2026-11-21T07:00:01.100Z", "2026-11-21T07:00:02.200Z", "2026-11-21T07:00:03.300Z"


def said_in_t(s: Session, *rows: tuple[str, str]) -> Buffer:
    """Messages (text, server time) from bob in #t."""
    for text, when in rows:
        t = parse_time(when)
        feed(s, [privmsg("bob", "#t", text, f"id{t * 1000:.0f}", t)])
    buf = s.buffer("#t")
    assert buf is not None
    return buf


def test_the_cap_is_requested_when_offered() -> None:
    s = make()
    s.connection_made(NOW)
    sent = feed(s, [f":test.server CAP * LS :batch server-time {CAP}"])
    assert sent[-1] == f"CAP REQ :server-time batch {CAP}"


def test_switching_marks_the_newest_message_once() -> None:
    s = marker_session()
    buf = said_in_t(s, ("hi", T1), ("alice: look", T2))
    s.switch(buf)
    assert s.take_outgoing() == [f"MARKREAD #t timestamp={T2}"]
    s.switch(s.server)  # leaving: nothing new was read
    s.switch(buf)
    s.ping(NOW)
    assert [ln for ln in s.take_outgoing() if ln.startswith("MARKREAD")] == []
    # What arrives while it is in view is read: the keepalive (or leaving) says so.
    said_in_t(s, ("more", T3))
    s.ping(NOW)
    assert [ln for ln in s.take_outgoing() if ln.startswith("MARKREAD")] == [
        f"MARKREAD #t timestamp={T3}"
    ]
    s.switch(s.server)  # the server buffer is never marked
    s.ping(NOW)
    assert [ln for ln in s.take_outgoing() if ln.startswith("MARKREAD")] == []


def test_nothing_is_sent_when_the_server_has_it_already_or_cannot_keep_it() -> None:
    s = marker_session()
    buf = said_in_t(s, ("hi", T1))
    feed(s, [f":test.server MARKREAD #t timestamp={T2}"])  # read later elsewhere
    s.switch(buf)
    assert s.take_outgoing() == []
    for other in (marker_session(logged_in=False), marker_session(cap=False)):
        buf = said_in_t(other, ("hi", T1))
        other.switch(buf)
        assert other.take_outgoing() == []
        assert buf.unread == 0


def test_a_marker_at_the_newest_message_reads_the_buffer() -> None:
    s = marker_session()
    buf = said_in_t(s, ("hi", T1), ("alice: look", T2))
    assert (buf.unread, buf.highlights, buf.activity) == (2, 1, True)
    s.take_events()
    feed(s, [f":test.server MARKREAD #t timestamp={T2}"])
    assert (buf.unread, buf.highlights, buf.activity) == (0, 0, False)
    assert buf.read_marker is buf.lines[-1]
    assert BufferChanged(buf) in s.take_events()
    assert not [t for t in all_text(s) if "MARKREAD" in t]


def test_an_older_marker_leaves_later_lines_unread() -> None:
    s = marker_session()
    buf = said_in_t(s, ("hi", T1), ("alice: look", T2), ("bye", T3))
    first = buf.lines[-3]
    feed(s, [f":test.server MARKREAD #t timestamp={T1}"])
    assert (buf.unread, buf.highlights, buf.activity) == (2, 1, True)
    assert buf.read_marker is first
    feed(s, [":test.server MARKREAD #t timestamp=2026-11-21T06:00:00.000Z"])  # older still
    assert (buf.unread, buf.highlights) == (2, 1)
    assert buf.read_marker is first  # never moves back
    feed(s, [":test.server MARKREAD #t *", ":test.server MARKREAD #t timestamp=bogus"])
    assert (buf.unread, buf.highlights) == (2, 1)
    # A marker never counts up what was read here.
    s.switch(buf)
    s.switch(s.server)
    feed(s, [f":test.server MARKREAD #t timestamp={T1}"])
    assert (buf.unread, buf.highlights) == (0, 0)


def test_missed_messages_read_elsewhere_are_not_unread_after_a_reconnect() -> None:
    s = marker_session()
    buf = s.buffer("#t")
    assert buf is not None
    feed(s, history_batch("b0", "#t", []))
    feed(s, [privmsg("bob", "#t", "m1", "M1", T0 + 1)])
    s.connection_lost(NOW)
    s.connection_made(NOW + 5)
    feed(s, [*CHAT_BURST, f":test.server CAP alice ACK :{CAP}", LOGIN], NOW + 5)
    rejoin = [
        f"@time={format_time(T0 + 6.5)};msgid=J2 :alice!~a@h JOIN #t",
        f":test.server MARKREAD #t timestamp={format_time(T0 + 3)}",  # before the names end
        *CHAT_JOIN[1:],
    ]
    assert feed(s, rejoin, NOW + 5) == ["CHATHISTORY AFTER #t msgid=M1 100"]
    missed = [("bob", f"m{i}", f"M{i}", T0 + i) for i in (2, 3, 4)]
    feed(s, history_batch("g1", "#t", missed), NOW + 6)
    assert buf.unread == 1  # m2 and m3 were read in another session; m4 was not


def test_a_query_asks_for_its_marker_once_when_it_opens() -> None:
    s = marker_session()
    sent = feed(s, [privmsg("bob", "alice", "psst", "q1", parse_time(T2))])
    assert sent.count("MARKREAD bob") == 1
    query = s.buffer("bob")
    assert query is not None and query.unread == 1
    feed(s, [f":test.server MARKREAD bob timestamp={T2}"])
    assert (query.unread, query.highlights) == (0, 0)
    sent = feed(s, [privmsg("bob", "alice", "again", "q2", parse_time(T3))])
    assert "MARKREAD bob" not in sent
    plain = marker_session(logged_in=False)
    assert "MARKREAD bob" not in feed(plain, [privmsg("bob", "alice", "psst", "q1")])


def test_markers_for_unknown_targets_and_failures_stay_silent() -> None:
    s = marker_session()
    before = len(s.buffers)
    feed(s, [
        f":test.server MARKREAD #elsewhere timestamp={T1}",
        f":test.server MARKREAD carol timestamp={T1}",
        ":test.server FAIL MARKREAD ACCOUNT_REQUIRED #t :Log in to an account",
    ])  # fmt: skip
    assert len(s.buffers) == before  # no buffer opens for a marker
    assert not [t for t in all_text(s) if "MARKREAD" in t or "Log in" in t]
