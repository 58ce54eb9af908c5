"""Join playback fills the gap, over real TCP on every backend: a client that rejoins
or reconnects (the same account or user@host, whatever its nick) gets only what was
said since it left, and nothing at all when nothing was (irssi and WeeChat showed the
same lines each time); also after a restart, and in a channel busy with joins and quits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from server.config import ServerConfig
from tests.conftest import RunningServer, serving, start_server
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, quit_and_wait

PASSWORD = "playback-password"


@pytest.fixture
def server_config() -> ServerConfig:
    return ServerConfig(name="test.server", network="TestNet", history_playback=5)


async def played(c: IRCTestClient, channel: str) -> list[str]:
    """JOIN, then the texts of the playback notices: everything before the answer to a
    CHATHISTORY sent after the join, and before the answer to a second one sent after
    that answer (history requests are answered in order; a playback may take a second
    query, emitted when its first is answered)."""
    await c.join(channel)
    texts = []
    for _ in range(2):
        await c.send(f"CHATHISTORY LATEST {channel} * 1")
        while (m := await c.read_message()).command == "NOTICE":
            texts.append(m.params[1].split("] ", 1)[1])
        assert m.command == "PRIVMSG"  # the answer: the newest message
    assert await c.sync() == []
    return texts


async def say(alice: IRCTestClient, text: str) -> None:
    await alice.send(f"PRIVMSG #g :{text}")
    await alice.sync()


async def test_a_rejoin_gets_only_what_was_said_meanwhile(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.join("#g")
    await say(alice, "one")
    plain = await server.client("plain")
    assert await played(plain, "#g") == ["<alice> one"]
    await plain.send("PART #g")
    await say(alice, "two")
    assert await played(plain, "#g") == ["<alice> two"]
    await plain.send("PART #g")
    assert await played(plain, "#g") == []  # nothing since: nothing, not the last lines


async def test_a_reconnect_gets_only_what_was_said_meanwhile(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.join("#g")
    await say(alice, "one")
    plain = await server.client("plain")
    assert await played(plain, "#g") == ["<alice> one"]
    await quit_and_wait(plain)
    await say(alice, "two")
    plain = await server.client("plain")
    assert await played(plain, "#g") == ["<alice> two"]
    await quit_and_wait(plain)
    plain = await server.client("plain")
    assert await played(plain, "#g") == []
    # Someone else under another nick was not there: the last lines, as before.
    other = await server.client("other")
    assert await played(other, "#g") == ["<alice> one", "<alice> two"]


async def connect_as(server: RunningServer, nick: str, user: str) -> IRCTestClient:
    """A client registered as ``nick`` with the ident ``user`` (the suite's clients use
    their nick for both): the same person under another nick."""
    c = await IRCTestClient.open(server.port)
    server.clients.append(c)
    await c.send(f"NICK {nick}")
    await c.send(f"USER {user} 0 * :Real {user}")
    await c.collect_until("376", "422")
    c.nick = nick
    return c


async def test_a_nick_change_before_leaving_does_not_replay_what_was_seen(
    server: RunningServer,
) -> None:
    alice = await server.client("alice")
    await alice.join("#g")
    await say(alice, "m1")
    carl = await server.client("carl")
    assert await played(carl, "#g") == ["<alice> m1"]
    await say(alice, "m2")  # seen live
    await ask(carl, "NICK carl2")
    await ask(carl, "PART #g")
    await ask(carl, "NICK Carl")  # another case too
    await say(alice, "m3")
    assert await played(carl, "#g") == ["<alice> m3"]


async def test_a_reconnect_under_another_nick_gets_only_what_was_said_meanwhile(
    server: RunningServer,
) -> None:
    alice = await server.client("alice")
    await alice.join("#g")
    await say(alice, "one")
    plain = await server.client("plain")
    assert await played(plain, "#g") == ["<alice> one"]
    await ask(plain, "NICK plain|away")
    await quit_and_wait(plain)
    await say(alice, "two")
    plain = await connect_as(server, "plain_", "plain")
    assert await played(plain, "#g") == ["<alice> two"]


async def test_a_busy_channel_still_plays_the_last_messages(server: RunningServer) -> None:
    """Joins and parts fill the window of stored rows (4 x 5 here): a newcomer still
    gets the last messages, and a rejoin what was said since it left."""
    alice = await server.client("alice")
    await alice.join("#g")
    for text in ("one", "two", "three"):
        await say(alice, text)
    plain = await server.client("plain")
    assert await played(plain, "#g") == ["<alice> one", "<alice> two", "<alice> three"]
    await ask(plain, "PART #g")
    churn = await server.client("churn")
    for _ in range(12):  # 24 event rows
        await churn.join("#g")
        await ask(churn, "PART #g")
    fresh = await server.client("fresh")
    assert await played(fresh, "#g") == ["<alice> one", "<alice> two", "<alice> three"]
    await say(alice, "four")
    assert await played(plain, "#g") == ["<alice> four"]
    newer = await server.client("newer")
    assert await played(newer, "#g") == [
        "<alice> one", "<alice> two", "<alice> three", "<alice> four"
    ]


async def restart_with_members(
    config: ServerConfig, backend: str, db: str
) -> None:
    """alice, plain and dana (logged in to the account dana) are in #g; alice says
    ``one`` and ``two``; then the server stops under them, as on SIGTERM."""
    first = start_server(config, backend, db=db)
    try:
        alice = await first.client("alice")
        await alice.join("#g")
        await say(alice, "one")
        plain = await first.client("plain")
        assert await played(plain, "#g") == ["<alice> one"]
        dana = await first.client("dana")
        assert "900" in [m.command for m in await ask(dana, f"REGISTER dana * {PASSWORD}")]
        assert await played(dana, "#g") == ["<alice> one"]
        await say(alice, "two")  # seen live by all three
    finally:
        first.handle.stop()
        for c in first.clients:
            await c.close()


async def test_a_restart_does_not_replay_what_was_seen(
    backend: str, server_config: ServerConfig, tmp_path: Path
) -> None:
    db = str(tmp_path / "history.db")
    await restart_with_members(server_config, backend, db)
    async with serving(server_config, backend, db=db) as second:
        alice = await second.client("alice")
        assert await played(alice, "#g") == []
        await say(alice, "three")
        # Under another nick: the same user@host, and the same account.
        plain = await connect_as(second, "plain_", "plain")
        assert await played(plain, "#g") == ["<alice> three"]
        dana = await connect_as(second, "dana_", "elsewhere")
        assert "900" in [m.command for m in await ask(dana, f"NS IDENTIFY dana {PASSWORD}")]
        assert await played(dana, "#g") == ["<alice> three"]
        other = await second.client("other")  # never there: the last lines
        assert await played(other, "#g") == ["<alice> one", "<alice> two", "<alice> three"]


async def test_without_stored_events_a_restart_plays_the_last_lines(
    backend: str, server_config: ServerConfig, tmp_path: Path
) -> None:
    """With --history-events false nothing says where anyone left before the restart:
    the last lines, as for a newcomer; after that, departures are known again."""
    config = replace(server_config, history_events=False)
    db = str(tmp_path / "history.db")
    await restart_with_members(config, backend, db)
    async with serving(config, backend, db=db) as second:
        plain = await second.client("plain")
        assert await played(plain, "#g") == ["<alice> one", "<alice> two"]
        await ask(plain, "PART #g")
        alice = await second.client("alice")
        await alice.join("#g")
        await say(alice, "three")
        assert await played(plain, "#g") == ["<alice> three"]


def test_departures_are_forgotten_after_half_an_hour_and_beyond_the_count() -> None:
    """Departures serve a reconnect or rejoin minutes later; kept longer, a busy server's
    churn would hold megabytes of them. Sans-IO: the core with a clock of our own."""
    from server.core import ServerCore
    from server.core.history import departed, record_departure

    now = [1_795_000_000.0]
    core = ServerCore(ServerConfig(name="test.server", flood_burst=0), clock=lambda: now[0])
    core.connect(1, "127.0.0.1", 5000)
    core.data_received(1, b"NICK dana\r\nUSER dana 0 * :Dana\r\n")
    dana = core.clients[1]
    record_departure(core, dana, "#a")
    assert departed(core, dana, "#a") is not None
    now[0] += 29 * 60
    assert departed(core, dana, "#a") is not None
    now[0] += 2 * 60  # 31 minutes: too old to use
    assert departed(core, dana, "#a") is None
    table = core.departures
    total = 3 * table.capacity
    for i in range(total):
        record_departure(core, dana, f"#c{i}")
    assert len(table) <= table.capacity
    # The newest are all there; of the oldest, about 1 in 400 is still kept (a set whose
    # four slots got fewer than four newer ones: the hashes are salted per process).
    assert all(departed(core, dana, f"#c{i}") is not None for i in range(total - 200, total))
    assert sum(departed(core, dana, f"#c{i}") is not None for i in range(1000)) < 50


def test_the_departure_table_takes_no_memory_per_entry() -> None:
    """Its arrays are allocated once: under churn, per-entry objects made amid transient
    ones pinned pymalloc arenas (the soak's RSS)."""
    import tracemalloc

    from chat.msgid import MsgIdGenerator
    from server.core.departures import Departures

    ids = MsgIdGenerator()
    table = Departures(sets=256)
    marks = [ids.next(1_795_000_000.0 + i) for i in range(8000)]
    keys = [f"#chan{i} h:user{i}@cloak{i}.example" for i in range(8000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for key, mark in zip(keys, marks, strict=True):
            table.record(key, mark)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 4096, grown  # (8,000 entries took 1.7 MB as one string each)
    assert len(table) == table.capacity == 1024
    assert table.get(keys[-1]) == marks[-1]  # the mark comes back exactly
    table.record(keys[-1], marks[0])  # the same key again: replaced in place
    assert table.get(keys[-1]) == marks[0] and len(table) == 1024
    assert table.get("#chan0 h:never@seen") is None


def test_stored_events_are_read_only_while_this_run_is_young() -> None:
    """An unknown joiner's departure is looked for among the stored events (past the
    cache) only in the first half hour of a run: later, one not in memory is older than
    any kept, and the last N messages are the answer, read like any other window."""
    from server.core import ServerCore
    from server.core.history import HistoryRequest

    now = [1_795_000_000.0]
    config = ServerConfig(name="test.server", flood_burst=0, db="on", history_playback=5)
    core = ServerCore(config, clock=lambda: now[0])

    def playback_query(nick: str) -> tuple[int, bool]:
        conn = len(core.clients) + 1
        core.connect(conn, "127.0.0.1", 5000 + conn)
        core.data_received(conn, f"NICK {nick}\r\nUSER {nick} 0 * :x\r\nJOIN #y\r\n".encode())
        queries = [e.query for e in core.take_effects() if isinstance(e, HistoryRequest)]
        assert len(queries) == 1
        return queries[0].limit, queries[0].with_events

    assert playback_query("early") == (20, True)  # 4 x 5 rows, events included
    now[0] += 31 * 60
    assert playback_query("later") == (5, False)
