"""A hostile (or broken) server against the client over real TCP: the scripted Ircd
says what a test tells it, and the client must come out of it unharmed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from chat.servertime import format_time, parse_time
from client.chatlog import TIME_FORMAT, ChatLog
from client.history import MAX_LOADING
from client.model import MAX_CLOCK_SKEW, Buffer

from .netutil import DEADLINE, ChatClient, Ircd, has_texts

HISTORY_CAPS = "batch draft/chathistory draft/read-marker message-tags server-time"
YEAR_9999 = "9999-12-31T23:59:59.000Z"


def count(ircd: Ircd, start: str) -> int:
    return sum(line.startswith(start) for line in ircd.lines)


async def welcome(ircd: Ircd, n: int = 1) -> None:
    """Register the ``n``-th connection: history caps, logged in as alice (900)."""
    await ircd.wait(lambda: count(ircd, "CAP LS") >= n, "CAP LS")
    ircd.send(f":srv CAP * LS :{HISTORY_CAPS}")
    await ircd.wait(lambda: count(ircd, "CAP REQ") >= n, "CAP REQ")
    request = [line for line in ircd.lines if line.startswith("CAP REQ")][-1]
    ircd.send(f":srv CAP * ACK {request.split(' ', 2)[2]}")
    await ircd.wait(lambda: count(ircd, "CAP END") >= n, "CAP END")
    ircd.send(":srv 900 alice alice!a@h alice :You are now logged in as alice")
    ircd.send(":srv 001 alice :Welcome")
    ircd.send(":srv 422 alice :No MOTD")


async def registered(ircd: Ircd, clients: list[ChatClient], scrollback: int = 2000) -> ChatClient:
    ircd.welcome = False  # (welcome() does it)
    alice = ChatClient.start(ircd.port, "alice", scrollback=scrollback)
    clients.append(alice)
    await welcome(ircd)
    await alice.wait(lambda: alice.session.registered, "registration")
    return alice


def query(alice: ChatClient, nick: str) -> Buffer:
    buf = alice.session.buffer(nick)
    assert buf is not None
    return buf


def believable(t: float | None) -> bool:
    return t is not None and abs(t - time.time()) <= MAX_CLOCK_SKEW


# ---------------------------------------------------------------------- server-time


async def test_a_time_tag_far_off_dates_nothing_else(
    ircd: Ircd, clients: list[ChatClient]
) -> None:
    """A live line from the year 9999, one from 1970, a read marker in 9999: the lines
    are dated now, later untagged lines and local lines keep the local clock, nothing
    counts as read, and the reconnect's TARGETS asks from a time that has been."""
    alice = await registered(ircd, clients)
    ircd.send(f"@time={YEAR_9999};msgid=f1 :bob!b@h PRIVMSG alice :from the year 9999")
    ircd.send("@time=1970-01-01T00:00:01.000Z;msgid=f2 :bob!b@h PRIVMSG alice :from 1970")
    ircd.send(f":srv MARKREAD bob timestamp={YEAR_9999}")
    ircd.send(":bob!b@h PRIVMSG alice :untagged")
    await alice.wait(lambda: has_texts(alice.session.buffer("bob"), ["untagged"]), "bob")
    bob = query(alice, "bob")
    assert all(believable(line.time) for line in bob.lines), [ln.time for ln in bob.lines]
    assert alice.session.local_time(1000.0) == 1000.0  # the clock offset untouched
    assert believable(bob.last_time) and bob.marked_ms is None

    await alice.lose_connection()
    alice.gate.open()
    await welcome(ircd, 2)
    await ircd.wait(lambda: count(ircd, "CHATHISTORY TARGETS") == 1, "TARGETS")
    targets = next(ln for ln in ircd.lines if ln.startswith("CHATHISTORY TARGETS"))
    since = parse_time(targets.split()[2].removeprefix("timestamp="))
    assert since <= time.time() + MAX_CLOCK_SKEW, targets


async def test_a_log_ending_in_the_future_still_gets_missed_history(
    ircd: Ircd, clients: list[ChatClient], tmp_path: Path
) -> None:
    """A log whose last line an older version dated 9999: what was missed since the
    line before it is still written when history brings it."""
    folder = tmp_path / "logs"
    folder.mkdir()
    logged_at = time.time() - 3600
    stamp = time.strftime(TIME_FORMAT, time.localtime(logged_at))
    (folder / "bob.log").write_text(f"{stamp} <bob> logged last time\n"
                                    "9999-12-31 23:59:59 <bob> from the year 9999\n")
    log = ChatLog(folder)
    alice = await registered(ircd, clients)
    alice.conn.subscribe(log.handle)
    ircd.send(f"@time={format_time(time.time())};msgid=live :bob!b@h PRIVMSG alice :live")
    await ircd.wait(lambda: count(ircd, "CHATHISTORY LATEST bob") == 1, "bob's history")
    missed = format_time(logged_at + 600)
    ircd.send(":srv BATCH +h chathistory bob")
    ircd.send(f"@batch=h;time={missed};msgid=m1 :bob!b@h PRIVMSG alice :missed while away")
    ircd.send(":srv BATCH -h")
    await alice.wait(lambda: has_texts(alice.session.buffer("bob"), ["missed while away"]),
                     "the history")  # fmt: skip
    await alice.wait(lambda: not query(alice, "bob").history_loading, "the history's end")
    log.close()
    written = [line[20:] for line in (folder / "bob.log").read_text().splitlines()]
    assert "<bob> missed while away" in written, written


# ---------------------------------------------------------------------- malformed replies


async def test_a_bare_305_or_306_is_understood(alice: ChatClient, ircd: Ircd) -> None:
    """No parameter at all (not even our nick): still the away state, with a text of
    our own, and no 'could not be handled' line."""
    s = alice.session
    ircd.send(":srv 306")
    await alice.wait(lambda: s.away, "away")
    ircd.send(":srv 305")
    await alice.wait(lambda: not s.away, "back")
    texts = [line.text for line in s.server.lines]
    assert "You are marked as away" in texts and "You are no longer marked as away" in texts
    assert not any("could not be handled" in text for text in texts)


# ---------------------------------------------------------------------- stalls


async def test_quit_during_a_stalled_tls_handshake_ends_at_once(
    clients: list[ChatClient],
) -> None:
    """A server that takes the TCP connection and never answers the TLS handshake, with
    an hour to connect: /quit ends the run without waiting for it."""
    accepted = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # (until the client goes)
        writer.close()

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        port = srv.sockets[0].getsockname()[1]
        alice = ChatClient.start(port, "alice", tls=True, connect_timeout=3600.0)  # type: ignore[arg-type]
        clients.append(alice)
        await asyncio.wait_for(accepted.wait(), DEADLINE)
        alice.conn.close("bye")
        await asyncio.wait_for(asyncio.shield(alice.task), DEADLINE)  # (not cancelled)
        assert not alice.conn.running
        assert not any("Could not connect" in ln.text for ln in alice.session.server.lines)
    finally:
        srv.close()


async def test_a_server_trickling_bytes_without_a_line_is_dropped(
    clients: list[ChatClient],
) -> None:
    """Registered, then a byte at a time and never a whole line (no PONG either): dead
    at the ping timeout, as a silent server is, and connected to again."""
    connections = 0

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"USER")
        writer.write(b":srv 001 alice :Welcome\r\n:srv 422 alice :No MOTD\r\n:srv NOTICE alice :")
        while not writer.is_closing() and not reader.at_eof():
            writer.write(b"x")
            await asyncio.sleep(0.01)
        writer.close()

    srv = await asyncio.start_server(trickle, "127.0.0.1", 0)
    try:
        port = srv.sockets[0].getsockname()[1]
        alice = ChatClient.start(port, "alice", ping_interval=0.1, ping_timeout=0.3)
        clients.append(alice)
        await alice.wait(lambda: connections >= 2, "a second connection")
        assert any("no reply from the server" in ln.text for ln in alice.session.server.lines)
    finally:
        srv.close()


# ---------------------------------------------------------------------- floods


async def test_an_oversized_history_answer_keeps_its_newest_lines(
    ircd: Ircd, clients: list[ChatClient]
) -> None:
    """A server sends 2,500 lines for a query's history (the client asked for 100, and
    keeps 2,000 of a batch): those nearest the conversation's present are kept."""
    alice = await registered(ircd, clients)
    start = time.time() - 3600
    ircd.send(f"@time={format_time(time.time())};msgid=live :bob!b@h PRIVMSG alice :live")
    await ircd.wait(lambda: count(ircd, "CHATHISTORY LATEST bob") == 1, "bob's history")
    ircd.send(":srv BATCH +h chathistory bob")
    for i in range(2500):
        ircd.send(f"@batch=h;time={format_time(start + i)};msgid=h{i} "
                  f":bob!b@h PRIVMSG alice :hist {i}")  # fmt: skip
    ircd.send(":srv BATCH -h")
    await alice.wait(lambda: not query(alice, "bob").history_loading, "the history")
    shown = {line.text for line in query(alice, "bob").lines}
    assert "hist 2499" in shown and "hist 0" not in shown


async def test_a_flood_of_hidden_joins_and_parts_keeps_the_conversation(
    ircd: Ircd, clients: list[ChatClient]
) -> None:
    """2,000 joins and parts of nicks who never speak, hidden by the smart filter, in a
    channel whose scrollback holds 100 lines: what was said stays, and the newest of
    them. Shown (/filter all), they are lines as any other."""
    alice = await registered(ircd, clients, scrollback=100)
    ircd.send(":alice!a@h JOIN #t")
    await alice.wait(lambda: alice.session.buffer("#t") is not None, "#t")
    said = [f"line {i}" for i in range(40)]
    for text in said:
        ircd.send(f":bob!b@h PRIVMSG #t :{text}")
    for i in range(1000):
        ircd.send(f":u{i}!u@h JOIN #t")
        ircd.send(f":u{i}!u@h PART #t")
    ircd.send(":bob!b@h PRIVMSG #t :flood done")
    buf = channel(alice, "#t")
    await alice.wait(lambda: has_texts(buf, ["flood done"]), "the end of the flood")

    def conversation() -> list[str]:
        return [ln.text for ln in buf.lines if ln.nick == "bob"]

    assert conversation() == [*said, "flood done"]
    assert len(buf.lines) <= 100 and buf.lines[-2].text == "has left #t"  # (u999's)
    assert not any(alice.session.hidden(buf, ln) for ln in buf.lines if ln.nick == "bob")

    alice.conn.input("/filter all")
    for i in range(100):
        ircd.send(f":v{i}!v@h JOIN #t")
    ircd.send(":bob!b@h PRIVMSG #t :shown flood done")
    await alice.wait(lambda: has_texts(buf, ["shown flood done"]), "the shown flood")
    assert conversation() == ["shown flood done"]


# ---------------------------------------------------------------------- forced joins


async def synced(ircd: Ircd, token: str) -> None:
    """Everything the client wrote in answer to what was sent before is in: it
    answers lines in order, and this PING's PONG comes after."""
    ircd.send(f"PING {token}")
    await ircd.wait(lambda: any(ln.startswith("PONG") and ln.rsplit(" ", 1)[-1].lstrip(":") == token
                                for ln in ircd.lines), f"PONG {token}")  # fmt: skip


def history_asked(ircd: Ircd, since: int = 0) -> list[str]:
    """``CHATHISTORY <sub> <target>`` of each request received from line ``since`` on."""
    return [" ".join(ln.split()[:3]) for ln in ircd.lines[since:]
            if ln.startswith("CHATHISTORY ")]  # fmt: skip


def answer(ircd: Ircd, channel: str, msgid: str | None = None) -> None:
    """A chathistory batch for ``channel``: one message ``msgid``, or nothing."""
    ircd.send(f":srv BATCH +{channel[1:]} chathistory {channel}")
    if msgid is not None:
        ircd.send(f"@batch={channel[1:]};time={format_time(time.time() - 60)};msgid={msgid} "
                  f":bob!b@h PRIVMSG {channel} :said {msgid}")  # fmt: skip
    ircd.send(f":srv BATCH -{channel[1:]}")


def channel(alice: ChatClient, name: str) -> Buffer:
    buf = alice.session.buffer(name)
    assert buf is not None
    return buf


async def test_hundreds_of_forced_joins_ask_history_a_few_at_a_time(
    ircd: Ircd, clients: list[ChatClient]
) -> None:
    """The server joins us to 60 channels at once: the first MAX_LOADING ask for their
    history; the others when a message comes there with room, or when shown."""
    alice = await registered(ircd, clients)
    for i in range(60):
        ircd.send(f":alice!a@h JOIN #c{i}")
    await synced(ircd, "joins")
    assert len(alice.session.buffers) == 61
    assert history_asked(ircd) == [f"CHATHISTORY LATEST #c{i}" for i in range(MAX_LOADING)]

    ircd.send(f"@time={format_time(time.time())};msgid=l1 :bob!b@h PRIVMSG #c30 :busy")
    await synced(ircd, "full")
    assert len(history_asked(ircd)) == MAX_LOADING  # 20 loading: #c30 waits
    answer(ircd, "#c0")
    await alice.wait(lambda: not channel(alice, "#c0").history_loading, "#c0's history")
    ircd.send(f"@time={format_time(time.time())};msgid=l2 :bob!b@h PRIVMSG #c30 :again")
    await synced(ircd, "room")
    assert history_asked(ircd)[MAX_LOADING:] == ["CHATHISTORY LATEST #c30"]

    alice.conn.switch("#c59")  # shown: asked at once, however many load
    await synced(ircd, "shown")
    assert history_asked(ircd)[MAX_LOADING:] == [
        "CHATHISTORY LATEST #c30", "CHATHISTORY LATEST #c59"]
    assert channel(alice, "#c59").history_loading


async def test_a_rejoin_fills_the_gaps_of_loaded_channels_a_few_at_a_time(
    ircd: Ircd, clients: list[ChatClient]
) -> None:
    """After a reconnect, channels whose history never loaded ask nothing; those that
    did fill their gaps MAX_LOADING at a time, the one in view at once, the others as
    answers come, each from where it was when rejoined."""
    alice = await registered(ircd, clients)
    loaded = MAX_LOADING + 5
    for i in range(loaded + 10):
        ircd.send(f":alice!a@h JOIN #c{i}")
    await synced(ircd, "joins")
    for i in range(MAX_LOADING):
        answer(ircd, f"#c{i}", f"m{i}")
    for i in range(MAX_LOADING, loaded):  # looked at, one after the other
        alice.conn.switch(f"#c{i}")
        await synced(ircd, f"shown{i}")
        assert history_asked(ircd)[-1] == f"CHATHISTORY LATEST #c{i}"
        answer(ircd, f"#c{i}", f"m{i}")
    await alice.wait(lambda: all(channel(alice, f"#c{i}").last_msgid == f"m{i}"
                                 for i in range(loaded)), "the histories")  # fmt: skip
    assert len(history_asked(ircd)) == loaded

    await alice.lose_connection()
    alice.gate.open()
    start = len(ircd.lines)
    await welcome(ircd, 2)

    def rejoins() -> int:
        return sum(ln.count("#c") for ln in ircd.lines[start:] if ln.startswith("JOIN"))

    await ircd.wait(lambda: rejoins() == loaded + 10, "the rejoins")
    for i in range(loaded + 10):
        ircd.send(f":alice!a@h JOIN #c{i}")
    ircd.send(f"@time={format_time(time.time())};msgid=live :bob!b@h PRIVMSG #c{MAX_LOADING} :hi")
    await synced(ircd, "rejoins")

    def fills() -> list[str]:
        return [ln for ln in history_asked(ircd, start) if "TARGETS" not in ln]

    # The first MAX_LOADING, and the one in view (#c24) however many load.
    assert alice.session.current is channel(alice, f"#c{loaded - 1}")
    first = [f"CHATHISTORY AFTER #c{i}" for i in [*range(MAX_LOADING), loaded - 1]]
    assert fills() == first

    answer(ircd, "#c0")  # nothing missed there
    await synced(ircd, "room")
    assert fills() == first  # (21 were loading, the one in view among them)
    answer(ircd, "#c1")
    await synced(ircd, "room2")
    assert fills() == [*first, f"CHATHISTORY AFTER #c{MAX_LOADING}"]
    # From the message seen before the drop, not the live one since.
    assert ircd.lines[-2].endswith(f"AFTER #c{MAX_LOADING} msgid=m{MAX_LOADING} 100"), ircd.lines
