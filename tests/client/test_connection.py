"""The asyncio connection against our real server (in-process), and reconnection."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from chat.framing import MAX_LINE
from client import history as history_module
from client import sasl as sasl_module
from client import session as session_module
from client.connection import backoff_delay
from client.model import SCROLLBACK_GROWTH, Buffer, Kind, State
from client.pacing import Pacing
from client.ui.views import Views, status_fragments
from server.config import ServerConfig
from tests.conftest import RunningServer, start_server

from .netutil import (
    DEADLINE,
    ChatClient,
    HistoryStandIn,
    Ircd,
    cert_or_skip,
    has_texts,
    in_channel,
    messages,
    restart_server,
    texts,
)

CONFIG = ServerConfig(name="test.server", network="TestNet")


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "history.db")


@pytest.fixture
def server(db: str) -> Iterator[RunningServer]:
    running = start_server(CONFIG, "asyncio", db=db)
    try:
        yield running
    finally:
        running.handle.stop()


# ---------------------------------------------------------------------- backoff


def test_backoff_is_exponential_capped_and_jittered() -> None:
    low = [backoff_delay(n, 1.0, 60.0, rand=lambda: 0.0) for n in range(10)]
    high = [backoff_delay(n, 1.0, 60.0, rand=lambda: 1.0) for n in range(10)]
    assert low[:7] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert high[:7] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    assert max(high) == 60.0 and backoff_delay(10_000) <= 60.0
    assert len({backoff_delay(5) for _ in range(20)}) > 1  # jitter


# ---------------------------------------------------------------------- our server


async def test_two_clients_talk(server: RunningServer, clients: list[ChatClient]) -> None:
    alice = ChatClient.start(server.port, "alice", ("#t",))
    bob = ChatClient.start(server.port, "bob", ("#t",))
    clients += [alice, bob]
    a_buf = await alice.joined("#t")
    b_buf = await bob.joined("#t")
    assert alice.session.history_enabled and alice.session.echo
    await alice.wait(lambda: "bob" in a_buf.members, "bob in the member list")
    alice.conn.switch(a_buf)
    bob.conn.switch(b_buf)
    alice.conn.input("hello bob")
    alice.conn.input("/me waves")
    await bob.wait(lambda: has_texts(b_buf, ["hello bob", "waves"]), "alice's messages")
    bob.conn.input("hi alice")
    for c in (alice, bob):
        buf = c.session.buffer("#t")
        await c.wait(lambda buf=buf: has_texts(buf, ["hello bob", "waves", "hi alice"]), "chat")
    # Each message once, with server msgids and times; ours marked own.
    a_msgs = messages(a_buf)
    assert [m.text for m in a_msgs] == ["hello bob", "waves", "hi alice"]
    assert all(m.msgid for m in a_msgs)
    assert [m.own for m in a_msgs] == [True, True, False]
    assert a_msgs[1].kind is Kind.ACTION
    assert [m.highlight for m in messages(b_buf)] == [True, False, False]  # "hello bob"
    assert alice.session.lag is None or alice.session.lag >= 0
    # A third client joining later gets the history through CHATHISTORY LATEST.
    _carol, c_buf = await in_channel(clients, server.port, "carol")
    assert texts(c_buf) == ["hello bob", "waves", "hi alice"]
    assert all(m.history for m in messages(c_buf))


async def test_a_message_to_a_channel_we_are_not_in_is_shown_where_it_was_typed(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    alice, a_buf = await in_channel(clients, server.port, "alice")
    bob, b_buf = await in_channel(clients, server.port, "bob", "#x")
    bob.conn.input("/mode #x -n")
    await bob.wait(lambda: any(ln.kind is Kind.MODE for ln in b_buf.lines), "#x -n")
    alice.conn.switch(a_buf)
    alice.conn.input("/msg #x from outside")
    await bob.wait(lambda: has_texts(b_buf, ["from outside"]), "alice's message")
    await alice.wait(lambda: has_texts(a_buf, ["from outside"]), "the echo, in #t")
    assert [(m.where, m.own) for m in messages(a_buf)] == [("[msg(#x)]", True)]
    assert alice.session.buffer("#x") is None  # (not one opened out of sight)


async def test_no_such_nick_answering_whois_or_invite_is_said_where_it_was_typed(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    """Not in the query with that nick a /msg opened earlier."""
    alice, a_buf = await in_channel(clients, server.port, "alice")
    alice.conn.input("/msg nosuch hi")
    query = alice.session.buffer("nosuch")
    assert query is not None
    await alice.wait(lambda: any(ln.note for ln in query.lines), "the message refused")
    before = len(query.lines)
    alice.conn.switch(a_buf)
    alice.conn.input("/whois nosuch")
    alice.conn.input("/invite nosuch #t")

    def errors() -> list[str]:
        return [ln.text for ln in a_buf.lines if ln.kind is Kind.ERROR]

    await alice.wait(lambda: len(errors()) == 2, "two 401s in #t")
    assert all("No such nick" in e for e in errors())
    assert len(query.lines) == before


async def test_lag_is_measured(server: RunningServer, clients: list[ChatClient]) -> None:
    alice = ChatClient.start(server.port, "alice", ping_interval=0.05, ping_timeout=5.0)
    clients.append(alice)
    await alice.wait(lambda: alice.session.lag is not None, "a PONG")
    assert alice.session.lag is not None and alice.session.lag >= 0


async def test_server_help_shows_in_the_current_buffer(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    reader = ChatClient.start(server.port, "reader", ("#help",))
    clients.append(reader)
    await reader.joined("#help")
    reader.session.switch("#help")
    reader.conn.input("/quote HELP join")
    buf = reader.session.current
    assert buf.name == "#help"

    def shown() -> list[str]:
        return [ln.text for ln in buf.lines if ln.kind is Kind.INFO]

    await reader.wait(lambda: "End of /HELP" in shown(), "the end of the help")
    # The subject each line repeats is not shown.
    assert shown()[-3].startswith("JOIN <#channel>"), shown()


async def test_quit_is_clean(server: RunningServer, clients: list[ChatClient]) -> None:
    alice = ChatClient.start(server.port, "alice", ("#t",))
    bob = ChatClient.start(server.port, "bob", ("#t",))
    clients += [alice, bob]
    await alice.joined("#t")
    b_buf = await bob.joined("#t")
    await bob.wait(lambda: "alice" in b_buf.members, "alice")
    alice.conn.input("/quit see you")
    await asyncio.wait_for(alice.task, DEADLINE)
    assert alice.session.state is State.DISCONNECTED
    await bob.wait(lambda: any(ln.kind is Kind.QUIT for ln in b_buf.lines), "alice's QUIT")
    assert "see you" in [ln for ln in b_buf.lines if ln.kind is Kind.QUIT][-1].text


async def test_dropped_connection_rejoins_and_fills_the_gap(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    alice = ChatClient.start(server.port, "alice", ("#t", "#u"))
    bob = ChatClient.start(server.port, "bob", ("#t",))
    clients += [alice, bob]
    a_buf = await alice.joined("#t")
    await alice.joined("#u")
    b_buf = await bob.joined("#t")
    bob.conn.switch(b_buf)
    for i in range(3):
        bob.conn.input(f"before {i}")
    await alice.wait(lambda: has_texts(a_buf, [f"before {i}" for i in range(3)]), "before")

    await alice.lose_connection()  # the network fails
    assert not a_buf.joined and a_buf.rejoin
    await bob.wait(lambda: "alice" not in b_buf.members, "the server to notice")
    gap = [f"missed {i}" for i in range(5)]
    for text in gap:
        bob.conn.input(text)
    await bob.wait(lambda: has_texts(b_buf, gap), "bob's echoes (stored)")

    alice.gate.open()
    await alice.joined("#t")
    await alice.joined("#u")
    note = "Reconnected, fetched 5 missed messages"
    await alice.wait(lambda: any(ln.text == note for ln in a_buf.lines), "the gap fill")
    bob.conn.input("after")
    await alice.wait(lambda: has_texts(a_buf, ["after"]), "live again")
    want = [f"before {i}" for i in range(3)] + gap + ["after"]
    assert texts(a_buf) == want  # no gap, no duplicate, in order
    ids = [m.msgid for m in messages(a_buf)]
    assert len(set(ids)) == len(ids)
    assert sum("Reconnected" in ln.text for ln in a_buf.lines) == 1
    u_buf = alice.session.buffer("#u")
    assert u_buf is not None
    await alice.wait(lambda: any("Reconnected" in ln.text for ln in u_buf.lines), "#u's fill")
    # The same line in #u, which has no message (its fill is a LATEST), and in neither
    # our own quit, which the server keeps (event playback) and the fill brings back.
    assert [ln.text for ln in u_buf.lines if "Reconnected" in ln.text] == [
        "Reconnected, no missed messages"]  # fmt: skip
    for buf in (a_buf, u_buf):
        assert not [ln.text for ln in buf.lines if ln.kind is Kind.QUIT], buf.name


async def test_a_gap_fill_pages_on_past_events_seen_before_the_drop(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    """More than a page missed: the first page starts with a join seen live after the
    last message (event playback), and the fill must still page on to the end."""
    alice = ChatClient.start(server.port, "alice", ("#t",), history_lines=10)
    bob = ChatClient.start(server.port, "bob", ("#t",))
    clients += [alice, bob]
    a_buf = await alice.joined("#t")
    b_buf = await bob.joined("#t")
    bob.conn.switch(b_buf)
    bob.conn.input("before")
    await alice.wait(lambda: has_texts(a_buf, ["before"]), "before")
    carol = ChatClient.start(server.port, "carol", ("#t",))
    clients.append(carol)
    await alice.wait(lambda: "carol" in a_buf.members, "carol's join, seen live")

    await alice.lose_connection()
    await bob.wait(lambda: "alice" not in b_buf.members, "the server to notice")
    gap = [f"missed {i}" for i in range(25)]  # two and a half pages of 10
    for text in gap:
        bob.conn.input(text)
    await bob.wait(lambda: has_texts(b_buf, gap), "bob's echoes (stored)")

    alice.gate.open()
    await alice.joined("#t")
    await alice.wait(
        lambda: any(ln.text.startswith("Reconnected") for ln in a_buf.lines), "the gap fill"
    )
    assert texts(a_buf) == ["before", *gap]
    assert [ln.text for ln in a_buf.lines if ln.text.startswith("Reconnected")] == [
        "Reconnected, fetched 25 missed messages"]  # fmt: skip


async def test_a_reconnect_leaves_the_server_buffer_without_activity(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    """The lines a reconnect brings to the server buffer (Disconnected, Connecting,
    the welcome, ISUPPORT, LUSERS, the MOTD) are every connection's: the buffer does
    not show up in the activity list for them. Its lines after that count as ever."""
    alice = ChatClient.start(server.port, "alice", ("#t",))
    clients.append(alice)
    a_buf = await alice.joined("#t")
    alice.conn.switch(a_buf)
    s = alice.session
    before = len(s.server.lines)
    await alice.lose_connection()
    alice.gate.open()
    await alice.wait(lambda: any(ln.text.startswith("Reconnected") for ln in a_buf.lines),
                     "the gap fill")  # fmt: skip
    assert len(s.server.lines) > before + 10  # (the whole registration again)
    assert not s.server.activity and s.server.unread == 0
    alice.conn.input("/quote MOTD")  # a reply in the server buffer, asked for later
    await alice.wait(lambda: s.server.activity, "the MOTD's activity")


def reconnected_notes(buf: Buffer) -> list[str]:
    return [ln.text for ln in buf.lines if ln.text.startswith("Reconnected")]


async def test_a_gap_fill_refused_with_fail_is_said_once(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    """FAIL CHATHISTORY to a gap fill: the channel's Reconnected line says why, and the
    FAIL is not shown again as an error line of its own (in the current buffer)."""
    relay = HistoryStandIn(server.port)
    await relay.start()
    try:
        alice = ChatClient.start(relay.port, "alice", ("#t", "#u"))
        clients.append(alice)
        a_buf, u_buf = await alice.joined("#t"), await alice.joined("#u")
        alice.conn.switch(a_buf)
        alice.conn.input("said before the drop")
        await alice.wait(lambda: has_texts(a_buf, ["said before the drop"]), "the echo")
        await alice.lose_connection()
        relay.answer = lambda request: [
            f":test.server FAIL CHATHISTORY MESSAGE_ERROR {request.split()[1]} "
            f"{request.split()[2]} :Messages could not be retrieved"
        ]
        alice.gate.open()
        await alice.wait(lambda: bool(reconnected_notes(a_buf) and reconnected_notes(u_buf)),
                         "both channels' Reconnected lines")  # fmt: skip
        note = ("Reconnected, missed messages not fetched: Messages could not be retrieved "
                "(MESSAGE_ERROR)")  # fmt: skip
        assert reconnected_notes(a_buf) == reconnected_notes(u_buf) == [note]
        said = [ln.text for b in alice.session.buffers for ln in b.lines
                if "Messages could not be retrieved" in ln.text]  # fmt: skip
        assert said == [note, note], said
        assert len(relay.kept) == 2
    finally:
        await relay.stop()


@pytest.mark.parametrize(
    ("answer", "why", "pacing"),
    [
        (":test.server 421 alice CHATHISTORY :Unknown command", "Unknown command (421)", None),
        # Answered without a batch (a server notice), or not at all: the same to us.
        (":test.server NOTICE alice :*** CHATHISTORY is off", "no answer from the server", None),
        ("", "no answer from the server", None),
        # (Flood control: the wait starts when the request is written.)
        ("", "no answer from the server", Pacing(1, 20.0)),
    ],
    ids=["421", "no batch", "no answer", "no answer, paced"],
)
async def test_every_rejoined_channel_gets_one_reconnected_line_whatever_the_answer(
    server: RunningServer,
    clients: list[ChatClient],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    why: str,
    pacing: Pacing | None,
) -> None:
    # (60 s: too long here)
    monkeypatch.setattr(history_module, "HISTORY_TIMEOUT", 0.3, raising=False)
    relay = HistoryStandIn(server.port)
    await relay.start()
    try:
        alice = ChatClient.start(
            relay.port, "alice", ("#t", "#u"), pacing=pacing  # type: ignore[arg-type]
        )
        clients.append(alice)
        a_buf, u_buf = await alice.joined("#t"), await alice.joined("#u")
        alice.conn.switch(a_buf)
        alice.conn.input("said before the drop")
        await alice.wait(lambda: has_texts(a_buf, ["said before the drop"]), "the echo")
        await alice.lose_connection()
        relay.answer = lambda request: [answer] if answer else []
        alice.gate.open()
        await alice.wait(lambda: bool(reconnected_notes(a_buf) and reconnected_notes(u_buf)),
                         "both channels' Reconnected lines")  # fmt: skip
        note = f"Reconnected, missed messages not fetched: {why}"
        assert reconnected_notes(a_buf) == reconnected_notes(u_buf) == [note]
        assert not a_buf.history_loading and not u_buf.history_loading
        errors = [ln.text for b in alice.session.buffers for ln in b.lines
                  if ln.kind is Kind.ERROR and "CHATHISTORY" in ln.text]  # fmt: skip
        assert errors == []
    finally:
        await relay.stop()


async def test_pageup_at_the_top_of_a_full_scrollback_loads_older_history(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    """PageUp at the top of a full scrollback grows it by a page for CHATHISTORY BEFORE,
    up to SCROLLBACK_GROWTH times its size, bringing back the lines that fell off the
    top first; following new lines again, the view at the bottom, it goes back to its
    size."""
    bob, b_buf = await in_channel(clients, server.port, "bob")
    bob.conn.switch(b_buf)
    said = [f"said {i}" for i in range(100)]
    for text in said:
        bob.conn.input(text)
    await bob.wait(lambda: has_texts(b_buf, said), "bob's echoes (stored)")
    alice = ChatClient.start(server.port, "alice", ("#t",), history_lines=10, scrollback=20)
    clients.append(alice)
    a_buf = await alice.joined("#t")
    live = [f"live {i}" for i in range(15)]
    for text in live:
        bob.conn.input(text)
    await alice.wait(lambda: has_texts(a_buf, live), "the live lines")
    assert a_buf.full and a_buf.trimmed  # the oldest fell off the top
    every = said + live  # (and our JOIN among them)
    pages = 0
    while alice.conn.request_older(a_buf):
        pages += 1
        await alice.wait(lambda: not a_buf.history_loading, f"page {pages}")
    assert len(a_buf.lines) == SCROLLBACK_GROWTH * 20 and not a_buf.can_grow
    assert texts(a_buf) == every[-(SCROLLBACK_GROWTH * 20 - 1) :]
    alice.session.follow(a_buf)
    assert len(a_buf.lines) == 20 and texts(a_buf) == every[-19:]
    assert alice.conn.request_older(a_buf)  # room to grow again, and what fell off comes back
    await alice.wait(lambda: not a_buf.history_loading, "a page after following")
    assert texts(a_buf) == every[-29:]


async def test_history_lines_do_not_take_the_senders_rank_of_today(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    alice, a_buf = await in_channel(clients, server.port, "alice")  # (first in: an operator)
    bob, b_buf = await in_channel(clients, server.port, "bob")
    bob.conn.switch(b_buf)
    bob.conn.input("not an op yet")
    await alice.wait(lambda: has_texts(a_buf, ["not an op yet"]), "bob's message")
    alice.conn.switch(a_buf)
    alice.conn.input("/op bob")
    await bob.wait(lambda: b_buf.members["bob"].prefix == "@", "bob's op")
    carol, c_buf = await in_channel(clients, server.port, "carol")  # bob's line: join history
    bob.conn.input("an op now")
    await carol.wait(lambda: has_texts(c_buf, ["an op now"]), "bob's live message")
    assert [(m.text, m.prefix, m.history) for m in messages(c_buf)] == [
        ("not an op yet", "", True), ("an op now", "@", False)]


async def test_server_restart_on_the_same_database(db: str, clients: list[ChatClient]) -> None:
    first = start_server(CONFIG, "asyncio", db=db)
    port = first.port
    handles = [first.handle]
    try:
        alice = ChatClient.start(port, "alice", ("#t",))
        bob = ChatClient.start(port, "bob", ("#t",))
        clients += [alice, bob]
        a_buf = await alice.joined("#t")
        b_buf = await bob.joined("#t")
        bob.conn.switch(b_buf)
        bob.conn.input("one")
        bob.conn.input("two")
        await alice.wait(lambda: has_texts(a_buf, ["one", "two"]), "one, two")

        handles.remove(first.handle)
        handles.append(await restart_server(first, db, alice))  # both lose the connection
        # bob comes back first and talks while alice is still away.
        await bob.wait(lambda: bob.session.connects >= 2 and b_buf.joined, "bob back")
        bob.conn.input("three")
        bob.conn.input("four")
        await bob.wait(lambda: has_texts(b_buf, ["three", "four"]), "bob's echoes")

        alice.gate.open()
        note = "Reconnected, fetched 2 missed messages"
        await alice.wait(lambda: any(ln.text == note for ln in a_buf.lines), "gap fill")
        assert a_buf.joined
        assert texts(a_buf) == ["one", "two", "three", "four"]
        assert texts(b_buf) == ["one", "two", "three", "four"]
    finally:
        for c in clients:
            await c.stop()
        clients.clear()
        for handle in handles:
            handle.stop()


# ---------------------------------------------------------------------- fake servers


async def test_dead_connection_is_detected_and_retried(clients: list[ChatClient]) -> None:
    accepted = 0
    writers: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writers.append(writer)
        with contextlib.suppress(Exception):
            while await reader.read(4096):
                pass  # read everything, answer nothing (not even PONG)

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        alice = ChatClient.start(port, "alice", ping_interval=0.1, ping_timeout=0.2)
        clients.append(alice)
        await alice.wait(lambda: accepted >= 2, "a second connection")
        assert any("no reply" in ln.text for ln in alice.session.server.lines)
    finally:
        for w in writers:
            w.close()
        srv.close()


async def test_the_server_buffer_says_where_it_connects_and_when_it_is_connected(
    clients: list[ChatClient], ircd: Ircd
) -> None:
    """The server buffer was empty until the welcome: nothing said what was happening
    (irssi: "Connecting to ...", "Connection to ... established")."""
    ircd.welcome = False
    alice = ChatClient.start(ircd.port, "alice")
    clients.append(alice)
    server = alice.session.server
    await alice.wait(lambda: len(server.lines) >= 2, "two lines")
    assert [(ln.kind, ln.text) for ln in list(server.lines)[:2]] == [
        (Kind.INFO, f"Connecting to 127.0.0.1:{ircd.port}"),
        (Kind.INFO, "Connected, registering"),
    ]


async def test_a_server_that_does_not_let_us_in_is_shown_waiting(
    clients: list[ChatClient], ircd: Ircd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TCP is up but no 001 comes: the status line counts the silence and the server
    buffer says so, long before the ping timeout gives the server up."""
    monkeypatch.setattr(session_module, "LAG_STALLED", 0.2)  # (5 s and 10 s: too long here)
    monkeypatch.setattr(session_module, "REGISTER_SLOW", 0.4)
    ircd.welcome = False
    alice = ChatClient.start(ircd.port, "alice")
    clients.append(alice)
    server = alice.session.server

    def status() -> str:
        return "".join(text for _, text, *_ in status_fragments(alice.session, Views()))

    def said() -> bool:
        return any(ln.text.startswith("No reply from the server for ") for ln in server.lines)

    await alice.wait(said, "the server buffer to say so")
    assert alice.session.state is State.REGISTERING
    assert re.search(r"\[registering, no reply for \d+ s\]", status())
    assert server.lines[-1].kind is Kind.INFO
    assert server.lines[-1].text.endswith(
        " s: still waiting for registration (/reconnect to try again)")
    ircd.send(":srv 001 alice :Welcome")
    ircd.send(":srv 422 alice :No MOTD")
    await alice.wait(lambda: alice.session.registered, "registration")
    assert "no reply" not in status() and "[connected]" in status()
    assert alice.session.connects == 1  # (not given up meanwhile)


async def test_no_keepalive_ping_goes_out_before_the_welcome(
    clients: list[ChatClient], ircd: Ircd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Servers answer a PING before 001 with 451 "You have not registered" (shown in
    the buffer in view), not a PONG. The keepalive that gives up a SASL exchange the
    server leaves unanswered shows one ran while registering."""
    monkeypatch.setattr(sasl_module, "SASL_TIMEOUT", 0.0)
    ircd.welcome = False
    alice = ChatClient.start(ircd.port, "alice", sasl=("alice", "pw"), sasl_plain_insecure=True,
                             ping_interval=0.05, ping_timeout=DEADLINE)  # fmt: skip
    clients.append(alice)
    await ircd.wait(lambda: any(ln.startswith("USER ") for ln in ircd.lines), "USER")
    ircd.send(":srv CAP * LS :sasl=PLAIN")
    await ircd.wait(lambda: any(ln.startswith("CAP REQ") for ln in ircd.lines), "CAP REQ")
    ircd.send(":srv CAP alice ACK :sasl")
    await ircd.wait(lambda: "AUTHENTICATE *" in ircd.lines, "a keepalive giving up SASL")
    assert not [ln for ln in ircd.lines if ln.startswith("PING")]
    ircd.send(":srv 001 alice :Welcome")
    ircd.send(":srv 422 alice :No MOTD")
    await alice.wait(lambda: alice.session.registered, "registration")
    assert alice.session.waiting_reply is None


async def test_a_server_that_never_welcomes_us_is_given_up_and_retried(
    clients: list[ChatClient], ircd: Ircd
) -> None:
    """It answers (here: a 451 to everything), so the keepalive sees traffic; without
    a 001 within register_timeout the connection is ended, said, and made again."""
    ircd.welcome = False
    alice = ChatClient.start(ircd.port, "alice", register_timeout=0.5)
    clients.append(alice)
    await ircd.wait(lambda: any(ln.startswith("USER") for ln in ircd.lines), "USER")
    ircd.send(":srv 451 * :You have not registered")
    await ircd.wait(lambda: len(ircd.writers) >= 2, "the retry")
    said = [ln.text for ln in alice.session.server.lines if ln.kind is Kind.ERROR]
    assert "Disconnected: no welcome from the server 0.5 s after connecting" in said
    assert not alice.session.registered


async def test_retries_closed_before_the_welcome_add_no_disconnect_line_to_queries(
    ircd: Ircd, alice: ChatClient
) -> None:
    """One "Disconnected" line per lost connection where the user talks: the retries a
    server (or a proxy in front of it) closes before letting us in are said in the
    server buffer only."""
    ircd.send(":bob!b@h PRIVMSG alice :hi")
    await alice.wait(lambda: alice.session.buffer("bob") is not None, "bob's query")
    ircd.welcome = False
    for made in range(1, 4):  # the lost connection, then two refused retries
        ircd.writers[-1].close()
        await ircd.wait(lambda: len(ircd.writers) > made, "the next attempt")  # noqa: B023
    ircd.welcome = True
    ircd.writers[-1].close()  # a third retry, let in
    await alice.wait(lambda: alice.session.connects == 5 and alice.session.registered,
                     "the fourth retry's registration")  # fmt: skip
    query = alice.session.buffer("bob")
    assert query is not None
    said = [ln.text for ln in query.lines if ln.text.startswith("Disconnected")]
    assert len(said) == 1, said
    server = alice.session.server.lines
    assert sum(ln.text.startswith("Disconnected") for ln in server) == 4


async def test_a_reregistrations_server_notices_are_no_activity(
    ircd: Ircd, alice: ChatClient
) -> None:
    """What a server says to every connection as it registers (its hostname lookup
    notices, the welcome, our user modes) is no news after a reconnect; a server
    notice once registered is, as ever."""
    s = alice.session
    ircd.send(":bob!b@h PRIVMSG alice :hi")
    await alice.wait(lambda: s.buffer("bob") is not None, "bob's query")
    alice.conn.switch("bob")
    ircd.welcome = False
    await alice.lose_connection(ircd.writers[-1].close)
    alice.gate.open()
    await ircd.wait(lambda: ircd.lines.count("USER alice 0 * alice") == 2, "the new USER")
    for line in (":srv NOTICE * :*** Looking up your hostname...",
                 ":srv 001 alice :Welcome", ":srv 422 alice :No MOTD",
                 ":alice!a@h MODE alice :+i"):  # fmt: skip
        ircd.send(line)
    await alice.wait(lambda: s.user_modes == "i", "registered again, +i")
    assert not s.server.activity
    ircd.send(":srv NOTICE alice :*** The network is going down for maintenance")
    await alice.wait(lambda: s.server.activity, "the notice's activity")


async def test_a_servers_closing_error_is_said_where_the_user_talks_not_as_activity(
    ircd: Ircd, alice: ChatClient
) -> None:
    """The ERROR a server sends as it closes the connection (a restart: "Server
    shutting down") gives the Disconnected line in channels and queries its words; its
    own line in the server buffer is then no news, as the rest of a reconnect."""
    s = alice.session
    ircd.send(":bob!b@h PRIVMSG alice :hi")
    await alice.wait(lambda: s.buffer("bob") is not None, "bob's query")
    alice.conn.switch("bob")
    alice.gate.close()
    ircd.send("ERROR :Closing Link: h (Server shutting down)")
    ircd.writers[-1].close()
    await asyncio.wait_for(alice.gate.waiting.wait(), DEADLINE)
    query = s.buffer("bob")
    assert query is not None
    assert query.lines[-1].text == "Disconnected: Closing Link: h (Server shutting down)"
    alice.gate.open()
    await alice.wait(lambda: s.connects == 2 and s.registered, "registered again")
    assert "Server: Closing Link: h (Server shutting down)" in [ln.text for ln in s.server.lines]
    assert not s.server.activity


async def refuse(ircd: Ircd, made: int, words: str = "") -> None:
    """The ``made``-th connection (from 1), once it has sent USER: ERROR ``words`` (none
    when ""), closed."""
    def registering() -> bool:
        return sum(ln.startswith("USER ") for ln in ircd.lines) >= made

    await ircd.wait(registering, f"connection {made}'s USER")
    if words:
        ircd.send(f"ERROR :{words}")
    ircd.writers[-1].close()


async def test_the_same_refusal_three_times_in_a_row_stops_reconnecting_until_reconnect(
    clients: list[ChatClient], ircd: Ircd
) -> None:
    """ngIRCd closes the link at once on a user name it refuses (an explicit --user
    a!b): retrying changed nothing, for ever. After three such refusals in a row the
    client stops, says why, and /reconnect tries again (stopping after one more)."""
    ircd.welcome = False
    alice = ChatClient.start(ircd.port, "alice")
    clients.append(alice)
    s = alice.session
    for made in (1, 2, 3):
        await refuse(ircd, made, "Invalid user name")

    def said(times: int) -> bool:
        return f"Not reconnecting: the server refused us {times} times in a row (Invalid " \
            "user name); /reconnect to try again" in [ln.text for ln in s.server.lines]

    await alice.wait(lambda: said(3), "the client to stop reconnecting")
    assert s.connects == 3 and s.state is State.DISCONNECTED and s.reconnect_delay is None
    assert s.server.lines[-1].kind is Kind.ERROR
    alice.conn.input("/reconnect")
    await refuse(ircd, 4, "Invalid user name")
    await alice.wait(lambda: said(4), "the client to stop again")
    assert s.connects == 4


async def test_refusals_that_pass_or_are_not_in_a_row_keep_reconnecting(
    clients: list[ChatClient], ircd: Ircd
) -> None:
    """A throttle or a full server refuses us only for a while; a network error or
    other words between two refusals break the row: retrying goes on."""
    ircd.welcome = False
    alice = ChatClient.start(ircd.port, "alice")
    clients.append(alice)
    script = ["Closing Link: h (Connecting too fast; try again later)"] * 3 + [
        "Server is full", "Server is full", "Server is full",
        "Invalid user name", "Invalid user name", "",  # (a network error)
        "Invalid user name", "Invalid user name", "You are banned", "Invalid user name",
    ]
    for made, words in enumerate(script, 1):
        await refuse(ircd, made, words)
    ircd.welcome = True
    await alice.wait(lambda: alice.session.registered, "the next retry let in")
    assert alice.session.connects == len(script) + 1
    assert not [ln for ln in alice.session.server.lines if ln.text.startswith("Not reconn")]


async def test_connection_refused_backs_off_and_retries(clients: list[ChatClient]) -> None:
    srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    srv.close()
    await srv.wait_closed()
    alice = ChatClient.start(port, "alice")
    clients.append(alice)
    await alice.wait(lambda: alice.conn.attempt >= 3, "three attempts")
    errors = [ln.text for ln in alice.session.server.lines if ln.kind is Kind.ERROR]
    assert any("Could not connect" in e for e in errors)
    alice.conn.close()
    await asyncio.wait_for(alice.task, DEADLINE)


def tls_context(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """A self-signed certificate (its file) and a server context holding it."""
    cert, key = cert_or_skip(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    return cert, server_ctx


async def tiny_ircd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Welcomes whoever sends USER (001, 422); ERROR and close on QUIT."""
    with contextlib.suppress(Exception):
        while line := await reader.readline():
            if line.startswith(b"USER"):
                writer.write(b":tls.test 001 alice :Welcome over TLS\r\n")
                writer.write(b":tls.test 422 alice :No MOTD\r\n")
            elif line.startswith(b"QUIT"):
                writer.write(b"ERROR :bye\r\n")
                await writer.drain()
                break
    writer.close()


async def test_tls(tmp_path: Path, clients: list[ChatClient]) -> None:
    cert, server_ctx = tls_context(tmp_path)
    srv = await asyncio.start_server(tiny_ircd, "127.0.0.1", 0, ssl=server_ctx)
    port = srv.sockets[0].getsockname()[1]
    try:
        alice = ChatClient.start(port, "alice")
        alice.conn.settings.tls = True
        alice.conn._ssl = ssl.create_default_context(cafile=str(cert))
        clients.append(alice)
        await alice.wait(lambda: alice.session.registered, "registration over TLS")
        assert any("over TLS" in ln.text for ln in alice.session.server.lines)
    finally:
        srv.close()


async def test_away_survives_a_dropped_connection(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    """/away, the connection fails, the client reconnects: the server has it away again
    (set before registration ends: our server offers draft/pre-away), and a watcher
    with extended-monitor hears it come back online away."""
    alice = ChatClient.start(server.port, "alice", ("#t",))
    bob = ChatClient.start(server.port, "bob", ("#t",))
    clients += [alice, bob]
    await alice.joined("#t")
    b_buf = await bob.joined("#t")
    alice.conn.input("/away at lunch")
    await alice.wait(lambda: alice.session.away, "alice marked away")
    await bob.wait(lambda: "alice" in b_buf.members and b_buf.members["alice"].away,
                   "bob seeing alice away")
    await alice.lose_connection()
    await bob.wait(lambda: "alice" not in b_buf.members, "the server to notice")
    alice.gate.open()
    await alice.joined("#t")
    assert "draft/pre-away" in alice.session.caps
    await alice.wait(lambda: alice.session.away, "alice away again (306)")
    await bob.wait(lambda: "alice" in b_buf.members and b_buf.members["alice"].away,
                   "bob seeing the rejoined alice away")


async def test_an_untrusted_certificate_says_what_to_do_once(
    tmp_path: Path, clients: list[ChatClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--tls to a self-signed server: every attempt fails verification; one line says
    why and what to do; retrying goes on, and trusting the certificate as the line
    says (SSL_CERT_FILE) lets the next attempt in."""
    cert, server_ctx = tls_context(tmp_path)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    srv = await asyncio.start_server(tiny_ircd, "127.0.0.1", 0, ssl=server_ctx)
    port = srv.sockets[0].getsockname()[1]
    try:
        alice = ChatClient.start(port, "alice")  # verifying, with the system's CAs
        alice.conn.settings.tls = True
        clients.append(alice)
        await alice.wait(lambda: alice.conn.attempt >= 3, "three attempts")
        errors = [ln.text for ln in alice.session.server.lines if ln.kind is Kind.ERROR]
        failed = [e for e in errors if e.startswith("Could not connect")]
        assert len(failed) >= 3 and all("CERTIFICATE_VERIFY_FAILED" in e for e in failed)
        hints = [e for e in errors if e.startswith("TLS: ")]
        assert len(hints) == 1  # e.g. (OpenSSL 3's words for why):
        assert hints[0].replace("self signed", "self-signed") == (
            "TLS: the server's certificate is not trusted (self-signed certificate): use "
            "--tls-no-verify (tls_verify = false in the config), or trust it with "
            "SSL_CERT_FILE=<its PEM file>; still retrying")
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        await alice.wait(lambda: alice.session.registered, "registration, trusted")
        assert alice.session.secure
    finally:
        srv.close()


async def test_a_certificate_for_another_name_is_not_to_be_trusted_by_hand(
    tmp_path: Path, clients: list[ChatClient]
) -> None:
    """A trusted certificate, but for another name: the hint says what is wrong, and
    not to switch verification off (an impostor's certificate is just that)."""
    cert, key = cert_or_skip(tmp_path, "DNS:other.example")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    srv = await asyncio.start_server(tiny_ircd, "127.0.0.1", 0, ssl=server_ctx)
    port = srv.sockets[0].getsockname()[1]
    try:
        alice = ChatClient.start(port, "alice", tls=True)  # type: ignore[arg-type]
        alice.conn._ssl = ssl.create_default_context(cafile=str(cert))
        clients.append(alice)
        await alice.wait(lambda: alice.conn.attempt >= 2, "two attempts")
        hints = [ln.text for ln in alice.session.server.lines if ln.text.startswith("TLS: ")]
        assert len(hints) == 1 and "--tls-no-verify" not in hints[0], hints
        assert hints[0].startswith("TLS: the server's certificate is not for 127.0.0.1 (")
        assert hints[0].endswith("that is what an impostor looks like; connect with a name "
                                 "the certificate is for, or ask the server's operator; "
                                 "still retrying")  # fmt: skip
    finally:
        srv.close()


# ---------------------------------------------------------------------- /reconnect


async def test_reconnect_cuts_off_a_server_that_stopped_answering_and_connects_at_once(
    ircd: Ircd, alice: ChatClient
) -> None:
    # (The ircd never closes a connection after a QUIT: as a dead link.)
    alice.gate.close()  # the backoff would hold the next connection: not this one
    alice.conn.input("/reconnect")
    await ircd.wait(lambda: "QUIT Reconnecting" in ircd.lines, "the QUIT")
    await ircd.wait(lambda: ircd.lines.count("USER alice 0 * alice") == 2,
                    "the second connection, without waiting")  # fmt: skip
    await alice.wait(lambda: alice.session.registered, "registered again")
    assert alice.session.connects == 2 and not alice.gate.waiting.is_set()


async def test_reconnect_typed_twice_reconnects_once_and_says_so_once(
    ircd: Ircd, alice: ChatClient
) -> None:
    # (The ircd never closes a connection after a QUIT: the client cuts it off.)
    alice.conn.input("/reconnect")
    await ircd.wait(lambda: "QUIT Reconnecting" in ircd.lines, "the QUIT")
    alice.conn.input("/reconnect")  # while the first is still under way
    await ircd.wait(lambda: ircd.lines.count("USER alice 0 * alice") == 2,
                    "the second connection")  # fmt: skip
    await alice.wait(lambda: alice.session.registered, "registered again")
    said = [ln.text for ln in alice.session.server.lines]
    assert said.count("Reconnecting…") == 1
    assert said.count("Disconnected (/reconnect)") == 1
    assert ircd.lines.count("QUIT Reconnecting") == 1
    # Once connected again, /reconnect reconnects again.
    alice.conn.input("/reconnect")
    await ircd.wait(lambda: ircd.lines.count("USER alice 0 * alice") == 3,
                    "the third connection")  # fmt: skip
    said = [ln.text for ln in alice.session.server.lines]
    assert said.count("Reconnecting…") == 2


async def test_reconnect_while_waiting_to_retry_connects_now(
    ircd: Ircd, alice: ChatClient
) -> None:
    # The server closed it: the client waits to retry.
    await alice.lose_connection(ircd.writers[-1].close)
    assert alice.session.connects == 1
    alice.conn.input("/reconnect")
    await alice.wait(lambda: alice.session.connects == 2 and alice.session.registered,
                     "connected again while the gate is closed")  # fmt: skip


async def test_a_line_too_long_is_dropped_and_the_lines_around_it_are_not(
    ircd: Ircd, alice: ChatClient
) -> None:
    """A hostile or broken server's line past the IRC bound (here a tag blob, then one
    sent in pieces whose rest looks like another user's message): only it is dropped,
    said once, and the lines in the same read around it arrive."""
    writer = ircd.writers[-1]
    blob = "z" * (MAX_LINE + 100)
    writer.write((f":bob!b@h PRIVMSG alice :before\r\n@+x={blob} :bob!b@h PRIVMSG alice :big\r\n"
                  + "".join(f":bob!b@h PRIVMSG alice :after {i}\r\n" for i in range(50))
                  + "@+y=" + "C" * (MAX_LINE + 10)).encode())
    await writer.drain()
    writer.write(b"C" * 1000 + b" :mallory!m@h PRIVMSG alice :forged\r\n"
                 b":bob!b@h PRIVMSG alice :last\r\n")

    def bobs() -> list[str]:
        query = alice.session.buffer("bob")
        return [] if query is None else [ln.text for ln in query.lines]

    await alice.wait(lambda: "last" in bobs(), "bob's last line")
    assert bobs() == ["before", *(f"after {i}" for i in range(50)), "last"]
    assert alice.session.buffer("mallory") is None
    told = [ln.text for ln in alice.session.server.lines if "longer than" in ln.text]
    assert told == [f"Dropped a line from the server longer than {MAX_LINE} bytes "
                    "(later ones are dropped without a word)"]
