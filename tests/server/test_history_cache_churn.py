"""Throw-away channels leave nothing in Redis; real channels stay cached. Real TCP, a
real redis-server, every backend.

A client without draft/chathistory reads a join playback at every JOIN, and that read
filled a cached window, with a version key, that lived a day: JOIN of 45 new names and
JOIN 0, again and again, kept ~10 M keys (3.7 GB) a day in Redis per address (sixth
hostile-user round, finding 3). A channel that ends on this node now has its window
dropped, versions live only from a miss to its fill, and windows an hour from their
last use.
"""

from __future__ import annotations

import pytest

from server.config import ServerConfig
from server.history.cache import RedisHistoryCache
from server.history.service import HistoryService
from tests.conftest import RunningServer, suite_config
from tests.history.conftest import RedisServer, redis_server  # noqa: F401
from tests.ircclient import IRCTestClient
from tests.net import eventually
from tests.server.test_history_reads_of_gone_clients import readers_blocked

PREFIX = "chat:history:"
HOUR_MS = 3_600_000  # cache.TTL


@pytest.fixture
def server_config(redis_server: RedisServer) -> ServerConfig:  # noqa: F811
    return suite_config(history_playback=5, redis=redis_server.url, redis_window=20)


def history(server: RunningServer) -> HistoryService:
    found = server.handle.server.history
    assert isinstance(found, HistoryService)
    return found


def cache(server: RunningServer) -> RedisHistoryCache:
    found = history(server).cache
    assert found is not None
    return found


def keys_of(redis: RedisServer, channels: list[str]) -> list[str]:
    """The cache's keys (windows, versions) naming any of ``channels``."""
    wanted = set(channels)
    with redis.admin() as r:
        names = [k.decode() for k in r.keys(PREFIX + "*")]
    return [k for k in names if k.rsplit(":", 1)[-1] in wanted]


def settled(server: RunningServer) -> bool:
    """No cache update queued or under way and no cache read under way."""
    svc = history(server)
    return svc._writer is None and not getattr(svc, "_reading", None)


async def left(client: IRCTestClient, count: int) -> None:
    """``count`` PARTs of the client's JOIN 0, then a round trip."""
    for _ in range(count):
        await client.expect("PART")
    await client.sync()


async def warm_up(server: RunningServer, client: IRCTestClient) -> None:
    """One channel joined and left: the history service has its loop, and the cache
    its generation. (Before the service's first read, a channel's end cannot reach it,
    on the select backend, so a read asked for before that end fills a window that then
    lives out its TTL: at most one JOIN's PLAYBACK_READS, once per server run.)"""
    await client.send("JOIN #first")
    await client.expect("366")
    await client.send("PART #first")
    await client.expect("PART")
    await eventually(lambda: settled(server) and cache(server).generation is not None,
                     "the cache is in use")


async def churn_gone(server: RunningServer, redis: RedisServer, names: list[str]) -> None:
    await eventually(
        lambda: settled(server) and keys_of(redis, names) == [],
        "the throw-away channels' windows and versions are gone from Redis",
    )


async def test_throw_away_channels_leave_no_keys_in_redis(
    server: RunningServer, redis_server: RedisServer  # noqa: F811
) -> None:
    churner = await server.client("churner")  # no draft/chathistory: join playback
    await churner.sync()
    names = [f"#tmp{i}" for i in range(40)]
    misses = cache(server).misses
    # Joined, playback read (each a miss that filled a window), then left.
    for start in range(0, len(names), 10):
        batch = names[start:start + 10]
        await churner.send(f"JOIN {','.join(batch)}")
        for _ in batch:
            await churner.expect("366")
        await churner.sync()
        await eventually(lambda: settled(server), "the playback reads are done")
        await churner.send("JOIN 0")
        await left(churner, len(batch))
    # The reads went through the cache (but a few while its generation was being made).
    assert cache(server).misses - misses > len(names) // 2
    await churn_gone(server, redis_server, names)


async def test_joined_and_left_at_once_leave_no_keys_in_redis(
    server: RunningServer, redis_server: RedisServer  # noqa: F811
) -> None:
    """JOIN and JOIN 0 in one write, as a churner sends them: the channel ends in the
    tick its playback read was asked in, before that read starts."""
    churner = await server.client("churner")
    await warm_up(server, churner)
    names = [f"#once{i}" for i in range(40)]
    for start in range(0, len(names), 10):
        batch = names[start:start + 10]
        await churner.send_raw(f"JOIN {','.join(batch)}\r\nJOIN 0\r\n".encode())
        await left(churner, len(batch))
    await churn_gone(server, redis_server, names)


async def test_a_fill_under_way_when_the_channel_ends_is_not_applied(
    server: RunningServer, redis_server: RedisServer  # noqa: F811
) -> None:
    """The playback reads miss, and their store reads wait on the reader thread while
    the channel ends: the drop deletes their versions, so their fills are refused."""
    churner = await server.client("churner")
    await churner.sync()
    names = [f"#slow{i}" for i in range(4)]  # core.PLAYBACK_READS: all asked at once
    c = cache(server)
    await warm_up(server, churner)
    misses, fills, drops = c.misses, c.fills, c.drops
    with readers_blocked(history(server)):
        # Its output, PARTs too, waits for the playback (held): nothing to expect yet.
        await churner.send(f"JOIN {','.join(names)}")
        await eventually(lambda: c.misses - misses == len(names), "every playback missed")
        await churner.send("JOIN 0")
        await eventually(
            lambda: c.drops - drops == len(names) and history(server)._writer is None,
            "the drops landed",
        )
    for _ in names:
        await churner.expect("366")
    await left(churner, len(names))
    await churn_gone(server, redis_server, names)
    assert c.fills == fills


async def test_a_real_channel_is_still_served_from_its_cached_window(
    server: RunningServer, redis_server: RedisServer  # noqa: F811
) -> None:
    c = cache(server)
    hits, fills = c.hits, c.fills
    alice = await server.client("alice")
    await alice.join("#real")  # her playback misses and fills the window
    await eventually(lambda: settled(server), "alice's playback read is done")
    for i in range(3):
        await alice.send(f"PRIVMSG #real :hello {i}")
    await alice.sync()
    joiners: list[IRCTestClient] = []
    for nick in ("bob", "carol", "dave"):
        joiner = await server.client(nick)  # no draft/chathistory: join playback
        await joiner.send("JOIN #real")
        played = await joiner.collect_until("366")
        played += await joiner.sync()
        texts = [m.params[-1] for m in played if m.command == "NOTICE"]
        said = [t.split("> ", 1)[1] for t in texts if "<alice> " in t]
        assert said == [f"hello {i}" for i in range(3)]  # the playback, whole
        joiners.append(joiner)
        await eventually(lambda: settled(server), "the playback read is done")
    assert c.fills == fills + 1  # alice's only
    assert c.hits >= hits + 3  # bob's, carol's and dave's came from the window
    [window] = [k for k in keys_of(redis_server, ["#real"]) if ":w:" in k]
    with redis_server.admin() as r:
        assert 0 < r.pttl(window) <= HOUR_MS  # an hour from its last use, not a day
    assert keys_of(redis_server, ["#real"]) == [window]  # no version once filled
    # Everyone leaves: the channel ends, and its window goes.
    for member in (alice, *joiners):
        await member.send("PART #real")
        await member.expect("PART")
    await churn_gone(server, redis_server, ["#real"])
