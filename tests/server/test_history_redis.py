"""CHATHISTORY with the Redis cache in front of SQLite, over real TCP, on every backend.

Redis is only a cache: with it up, stopped, restarted, flushed or paused, every
answer must be complete and exactly what live members received. The cache must
actually be used while healthy, and once the circuit breaker opens no request waits
on Redis: the only Redis calls made while it is open are its half-open probes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from server.config import ServerConfig
from server.history.model import StoredMessage
from tests.conftest import RunningServer
from tests.history.conftest import RedisServer, redis_server  # noqa: F401
from tests.ircclient import IRCTestClient
from tests.net import eventually
from tests.server.test_chathistory import (
    CAPS,
    LIMIT,
    Model,
    Rec,
    Ref,
    assert_same,
    collect,
    history,
    token,
)
from tests.server.test_multiline import ML, read_multiline, send_batch

SERVER = "test.server"
LOGGER = "chat.server.history"
WINDOW = 20  # cached messages per channel: fewer than the data set, so both paths run
PREFIX = "chat:history:"


@pytest.fixture
def server_config(redis_server: RedisServer) -> ServerConfig:  # noqa: F811
    return ServerConfig(
        name=SERVER,
        network="TestNet",
        history_playback=0,
        chathistory_limit=LIMIT,
        redis=redis_server.url,
        redis_window=WINDOW,
        redis_timeout=0.25,
        breaker_failures=3,
        breaker_cooldown=0.5,
    )


@pytest.fixture(autouse=True)
def history_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Capture the history logger (the server runs on a thread of this process)."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    yield


# ---------------------------------------------------------------------- helpers


class Room:
    """#h with a sender and a reader (a member with every history cap)."""

    def __init__(self, alice: IRCTestClient, reader: IRCTestClient) -> None:
        self.alice = alice
        self.reader = reader
        self.stored: list[Rec] = []
        self.sent = 0

    @classmethod
    async def open(cls, server: RunningServer) -> Room:
        alice = await server.client("alice")
        reader = await server.client("reader", CAPS)
        for c in (alice, reader):
            await c.join("#h")
        for c in (alice, reader):
            await c.sync()
        return cls(alice, reader)

    async def send(self, count: int) -> None:
        """``count`` messages in one burst; returns once the reader received them
        (so they are committed: the store commits before anything is sent)."""
        lines = []
        for _ in range(count):
            self.sent += 1
            command = "NOTICE" if self.sent % 4 == 0 else "PRIVMSG"
            lines.append(f"{command} #h :message {self.sent}\r\n")
        await self.alice.send_raw("".join(lines).encode())
        self.stored += await collect(self.reader, count, "#h")

    async def check(self, phase: str) -> None:
        """A battery of requests, some answered from the cached window and some
        needing the store; each must equal the model exactly."""
        s = self.stored
        model = Model(s)

        def mid(r: Rec) -> Ref:
            return ("msgid", r.msgid)

        def ts(r: Rec) -> Ref:
            return ("timestamp", r.time)

        requests: list[tuple[str, Ref, int, Ref | None]] = [
            ("LATEST", ("*", ""), 10, None),
            ("LATEST", ("*", ""), LIMIT, None),  # more than the window
            ("LATEST", mid(s[-7]), LIMIT, None),
            ("LATEST", ts(s[-6]), LIMIT, None),
            ("BEFORE", mid(s[-5]), 5, None),
            ("BEFORE", mid(s[5]), 10, None),  # older than the window
            ("BEFORE", ts(s[-1]), LIMIT, None),
            ("AFTER", mid(s[-12]), LIMIT, None),
            ("AFTER", mid(s[2]), 5, None),
            ("AFTER", ts(s[0]), 3, None),
            ("AROUND", mid(s[-8]), 6, None),
            ("AROUND", mid(s[3]), 6, None),
            ("BETWEEN", mid(s[-18]), LIMIT, mid(s[-2])),
            ("BETWEEN", mid(s[-2]), 5, mid(s[-18])),
            ("BETWEEN", ts(s[1]), LIMIT, ts(s[-1])),
        ]
        for sub, ref, limit, ref2 in requests:
            line = f"CHATHISTORY {sub} #h {token(ref)}"
            line += f" {token(ref2)}" if ref2 is not None else ""
            line += f" {limit}"
            assert_same(
                await history(self.reader, line),
                model.answer(sub, ref, limit, ref2),
                f"{phase}: {line}",
            )


def events(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Breaker state changes ("open", "half-open", "closed", with "open" after N
    consecutive failures written "OPEN") and failed Redis calls ("failed"), in order."""
    out = []
    for r in caplog.records:
        if r.name != LOGGER:
            continue
        text = r.getMessage()
        if "circuit breaker " in text:
            state = text.split("circuit breaker ", 1)[1].split(":", 1)[0]
            out.append("OPEN" if state == "open" and "consecutive failures" in text else state)
        elif text.startswith("history cache call failed"):
            out.append("failed")
    return out


def cache_keys(redis: RedisServer) -> list[str]:
    with redis.admin() as r:
        return sorted(k.decode() for k in r.keys(PREFIX + "*"))


def cached_windows(redis: RedisServer) -> list[list[str]]:
    """The msgids of every window Redis holds for #h (one per cache generation; a
    dropped generation's keys linger until they expire)."""
    out = []
    with redis.admin() as r:
        for key in cache_keys(redis):
            if key.endswith(":w:#h"):
                elements = r.lrange(key, 0, -1)
                out.append(
                    [StoredMessage.from_json(e).msgid for e in elements if not e.startswith(b"#")]
                )
    return out


# ---------------------------------------------------------------------- tests


async def test_cache_is_used_and_kept_fresh(
    server: RunningServer,
    redis_server: RedisServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    room = await Room.open(server)
    await room.send(30)
    await room.check("cold")
    # The reads filled the window: the newest WINDOW messages, exactly.
    with redis_server.admin() as r:
        assert r.dbsize() > 0
    assert cached_windows(redis_server) == [[r.msgid for r in room.stored[-WINDOW:]]]
    await room.check("warm")
    # New messages reach the cached window (cache-aside write: update if present).
    await room.send(5)
    await room.check("after writes")
    await eventually(
        lambda: cached_windows(redis_server) == [[r.msgid for r in room.stored[-WINDOW:]]],
        "the cached window shows the new messages",
    )
    assert events(caplog) == []  # no failure, no breaker change


async def test_redis_stopped_then_restarted(
    server: RunningServer,
    redis_server: RedisServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    room = await Room.open(server)
    await room.send(30)
    await room.check("up")
    assert cache_keys(redis_server)

    redis_server.stop()
    await room.check("stopped")  # the first failures open the breaker
    assert "OPEN" in events(caplog)
    await room.send(6)  # committed to SQLite while Redis is down
    await room.check("stopped, after writes")

    redis_server.start()  # empty: nothing was persisted

    async def closed() -> bool:
        await history(room.reader, "CHATHISTORY LATEST #h * 1")  # lets a probe run
        return "closed" in events(caplog)

    await eventually(closed, "the breaker closes once Redis is back")
    await room.check("restarted")  # includes what was sent while Redis was down
    await room.send(4)
    await room.check("restarted, after writes")
    assert cached_windows(redis_server) == [[r.msgid for r in room.stored[-WINDOW:]]]

    ev = events(caplog)
    transitions = [e for e in ev if e != "failed"]
    # Opened once (after consecutive failures) and closed once; in between only
    # probes: half-open, and if Redis was still down, open again.
    assert transitions.count("OPEN") == 1 and transitions.count("closed") == 1, ev
    middle = transitions[transitions.index("OPEN") + 1 : transitions.index("closed")]
    assert middle[-1:] == ["half-open"], ev
    assert middle[:-1] == ["half-open", "open"] * (len(middle) // 2), ev
    assert transitions[-1] == "closed", ev
    # While open, no request went to Redis (so none waited on it): every failed call
    # after the breaker opened was a half-open probe.
    start = ev.index("OPEN")
    for i in range(start + 1, ev.index("closed")):
        if ev[i] == "failed":
            assert ev[i - 1] == "half-open", ev


async def test_flushall(
    server: RunningServer,
    redis_server: RedisServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    room = await Room.open(server)
    await room.send(30)
    await room.check("before")
    redis_server.flushall()
    await room.check("flushed")
    await room.send(5)
    await room.check("flushed, after writes")
    redis_server.flushall()
    await room.send(3)  # the cache update finds nothing of its own
    await room.check("flushed again, after writes")
    # Refilled: the flush removed every older generation.
    assert cached_windows(redis_server) == [[r.msgid for r in room.stored[-WINDOW:]]]
    assert events(caplog) == []  # a flush is not a failure


async def test_redis_paused(
    server: RunningServer,
    redis_server: RedisServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    room = await Room.open(server)
    await room.send(30)
    await room.check("before")
    redis_server.pause(300)  # every command of every client waits 300 ms
    await room.send(3)  # their cache update waits on Redis too
    await room.check("paused")
    redis_server.pause(300)
    await room.check("paused again")
    await room.send(3)
    await room.check("after")

    # Whatever the pause did to the breaker, it recovers and the cache serves again.
    async def healthy() -> bool:
        await history(room.reader, "CHATHISTORY LATEST #h * 1")
        transitions = [e for e in events(caplog) if e != "failed"]
        return not transitions or transitions[-1] == "closed"

    await eventually(healthy, "the breaker is closed again")
    await room.check("recovered")
    await eventually(
        lambda: [r.msgid for r in room.stored[-WINDOW:]] in cached_windows(redis_server),
        "the cache holds the current window again",
    )


async def test_a_multiline_message_comes_back_whole_from_the_cached_window(
    server: RunningServer,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    """Its line feeds survive the window's JSON in Redis: the cold read (the store)
    and the warm one (the window) replay the same nested draft/multiline batch."""
    caps = [*ML, "draft/chathistory"]
    alice = await server.client("alice", caps=caps)
    await alice.join("#h")
    block = ["first", "", "  second", "x" * 300]
    await send_batch(alice, "#h", block, opening_tags="")
    await read_multiline(alice)
    replies = []
    for _ in range(2):  # cold, then from the window the first read filled
        await alice.send("CHATHISTORY LATEST #h * 10")
        outer = await alice.expect("BATCH")
        assert outer.params[1] == "chathistory"
        inner, lines = await read_multiline(alice)
        assert inner.tags["batch"] == outer.params[0][1:]
        assert (await alice.read_message()).params == ["-" + outer.params[0][1:]]
        replies.append((inner.tags["msgid"], [m.params[1] for m in lines]))
    assert replies[0] == replies[1] and replies[0][1] == block
    [window] = cached_windows(redis_server)  # alice's JOIN (an event), then the message
    assert window[-1] == replies[0][0] and len(window) == 2


async def test_events_are_served_from_the_cached_window_as_from_the_store(
    server: RunningServer,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    """A window holding joins, a nick change and a part beside messages answers an
    event-playback reader and a reader without it exactly as the store does."""
    events = await server.client("events", [*CAPS, "draft/event-playback"])
    plain = await server.client("plain", CAPS)
    for c in (events, plain):
        await c.join("#h")
    visitor = await server.client("visitor")
    await visitor.join("#h")
    await visitor.send("PRIVMSG #h :hi")
    await visitor.send("NICK guest")
    await visitor.send("PART #h :bye")
    await events.expect("PART")
    await plain.sync()
    answers: dict[str, list[list[tuple[str, str]]]] = {"events": [], "plain": []}
    for _ in range(2):  # cold (the store, filling the window), then warm (the window)
        for name, c in (("events", events), ("plain", plain)):
            replies = await history(c, "CHATHISTORY LATEST #h * 4")
            answers[name].append([(m.command, m.tags["msgid"]) for m in replies])
    assert answers["events"][0] == answers["events"][1]
    assert [cmd for cmd, _ in answers["events"][0]] == ["JOIN", "PRIVMSG", "NICK", "PART"]
    assert answers["plain"][0] == answers["plain"][1]
    assert [cmd for cmd, _ in answers["plain"][0]] == ["PRIVMSG"]
    [window] = cached_windows(redis_server)
    assert window[-4:] == [msgid for _, msgid in answers["events"][0]]


async def test_a_closed_channel_that_ended_is_not_served_from_the_cached_window(
    server: RunningServer,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    """The window keeps the rows of the #h that ended (+s) beside the new #h's: only
    the new channel's are served, from the window as from the store."""
    alice = await server.client("alice", CAPS)
    await alice.join("#h")
    await alice.send("MODE #h +s")
    for i in range(3):
        await alice.send(f"PRIVMSG #h :secret {i}")
    await alice.sync()
    secret = [m.tags["msgid"] for m in await history(alice, "CHATHISTORY LATEST #h * 10")]
    assert len(secret) == 3  # read: the window is cached now
    await alice.send("PART #h")
    await alice.expect("PART")
    mallory = await server.client("mallory", CAPS)
    await mallory.join("#h")
    await mallory.send("PRIVMSG #h :a new channel")
    await mallory.sync()
    for _ in range(2):
        replies = await history(mallory, "CHATHISTORY LATEST #h * 10")
        assert [m.params[1] for m in replies] == ["a new channel"]
    new = replies[0].tags["msgid"]
    await eventually(
        lambda: any(set(secret) <= set(w) and new in w for w in cached_windows(redis_server)),
        "one cached window holds the old #h's messages and the new one's",
    )
    replies = await history(mallory, "CHATHISTORY BEFORE #h msgid=" + new + " 10")
    assert replies == []
