"""HistoryService with a real redis-server: the fill/write race, faults, and wiring.

Every history answer is compared with the store of record (a real SQLite file);
Redis failures must only ever cost speed, never correctness.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from server.config import ServerConfig
from server.history import cache as cache_module
from server.history.breaker import CircuitBreaker
from server.history.cache import RedisHistoryCache
from server.history.model import (
    NO_REF,
    REDACTED_COMMAND,
    FoundMessage,
    NewMessage,
    Query,
    Ref,
    Search,
    StoredMessage,
)
from server.history.service import HistoryService, build_history
from server.history.sqlite_store import SQLiteStore
from tests.history.conftest import (
    FakeClock,
    RedisServer,
    append,
    assert_window_fresh,
    cached_window,
    free_port,
    make_cache,
    new_message,
)

LOGGER = "chat.server.history"

T = TypeVar("T")


def latest(target: str, limit: int = 50) -> Query:
    return Query("LATEST", target, NO_REF, limit)


def breaker_states(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage().split("circuit breaker ")[1].split(":")[0]
        for r in caplog.records
        if r.name == LOGGER and "circuit breaker" in r.getMessage()
    ]


class GatedStore:
    """The real store, except that window() parks after reading until the test says go.

    It forces the classic interleaving: the reader has read the version and the
    store; the test then commits and runs the cache update; then the reader fills.
    """

    def __init__(self, inner: SQLiteStore) -> None:
        self.inner = inner
        self.gate = True
        self.read_done = threading.Event()
        self.go = threading.Event()

    @property
    def reads(self) -> int:
        return self.inner.reads

    def window(self, target: str, size: int) -> list[StoredMessage]:
        rows = self.inner.window(target, size)
        if self.gate:
            self.gate = False
            self.read_done.set()
            assert self.go.wait(10), "the test never released the reader"
        return rows

    def append(self, messages: Sequence[NewMessage]) -> list[StoredMessage]:
        return self.inner.append(messages)

    def redact(self, target: str, msgid: str) -> bool:
        return self.inner.redact(target, msgid)

    def query(self, q: Query) -> list[StoredMessage]:
        return self.inner.query(q)

    def find(self, target: str, msgid: str) -> FoundMessage | None:
        return self.inner.find(target, msgid)

    def targets(
        self, folded: Sequence[str], start_ms: int, end_ms: int, limit: int
    ) -> list[tuple[str, int]]:
        return self.inner.targets(folded, start_ms, end_ms, limit)

    def conversations(
        self, account: str, start_ms: int, end_ms: int, limit: int
    ) -> list[tuple[str, str, int]]:
        return self.inner.conversations(account, start_ms, end_ms, limit)

    def prune(self, max_rows: int, max_age_ms: int, now_ms: int, budget: int) -> int:
        return self.inner.prune(max_rows, max_age_ms, now_ms, budget)

    def transit(self, prefix: str, since_ms: int, limit: int) -> list[StoredMessage]:
        return self.inner.transit(prefix, since_ms, limit)

    def prune_transit(self, before_ms: int, budget: int) -> int:
        return self.inner.prune_transit(before_ms, budget)

    def close(self) -> None:
        self.inner.close()


async def _reader_parked_after_store_read(
    svc: HistoryService, gated: GatedStore, q: Query
) -> asyncio.Task[list[StoredMessage]]:
    task = asyncio.create_task(svc.query(q))
    assert await asyncio.to_thread(gated.read_done.wait, 10)
    return task


# ---------------------------------------------------------------- the fill/write race


async def test_fill_racing_a_write_never_leaves_a_stale_window(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    old = append(store, "#a", 3)
    gated = GatedStore(store)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(gated, cache)
    try:
        # Reader: misses, reads the version, reads the store (3 rows), parks.
        reader = await _reader_parked_after_store_read(svc, gated, latest("#a"))
        # Writer: commits a new message and updates the cache: there is no key yet.
        new = store.append([new_message("#a")])
        svc.committed(new)
        await svc.flush()
        assert cached_window(redis_server, cache, "#a") is None
        # Reader resumes and tries to fill with what it read: 3 rows, without `new`.
        gated.go.set()
        assert await reader == old  # its own answer predates the write: fine
        assert cache.fills == 0  # the version moved: the stale fill was refused
        assert_window_fresh(redis_server, cache, "#a", store)
        assert await svc.query(latest("#a")) == old + new
        assert cached_window(redis_server, cache, "#a") == (old + new, True)
    finally:
        gated.go.set()
        await svc.close()


async def test_another_nodes_commit_drops_the_window_here(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    old = append(store, "#a", 3)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        assert await svc.query(latest("#a")) == old  # miss, filled
        assert await svc.query(latest("#a")) == old  # hit
        theirs = store.append([new_message("#a")])  # another node, same shared store
        assert await svc.query(latest("#a")) == old  # what the cache alone would serve
        svc.stale(["#a", "#never-read"])
        # Until the drop lands, reads of #a skip the cache: the message a client was
        # just sent live is in its history at once.
        assert await svc.query(latest("#a")) == old + theirs
        await svc.flush()
        assert cached_window(redis_server, cache, "#a") is None
        assert cache.drops == 1  # #never-read had no window to drop
        assert await svc.query(latest("#a")) == old + theirs  # miss, filled again
        assert cached_window(redis_server, cache, "#a") == (old + theirs, True)
    finally:
        await svc.close()


async def test_a_drop_refuses_a_fill_that_read_the_store_before_it(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    old = append(store, "#a", 3)
    gated = GatedStore(store)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(gated, cache)
    try:
        # Reader: misses, reads the version, reads the store (3 rows), parks.
        reader = await _reader_parked_after_store_read(svc, gated, latest("#a"))
        theirs = store.append([new_message("#a")])  # another node commits
        svc.stale(["#a"])
        await svc.flush()
        gated.go.set()
        assert await reader == old
        assert cache.fills == 0  # the version moved: the stale fill was refused
        assert await svc.query(latest("#a")) == old + theirs
    finally:
        gated.go.set()
        await svc.close()


async def test_without_the_version_check_the_same_interleaving_is_stale(
    redis_server: RedisServer, store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proves the test above forces the race: an unguarded fill leaves a stale window."""
    unguarded = cache_module._Script(
        cache_module.FILL.text.replace(
            "if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end", ""
        )
    )
    assert unguarded.text != cache_module.FILL.text
    monkeypatch.setattr(cache_module, "FILL", unguarded)
    old = append(store, "#a", 3)
    gated = GatedStore(store)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(gated, cache)
    try:
        reader = await _reader_parked_after_store_read(svc, gated, latest("#a"))
        new = store.append([new_message("#a")])
        svc.committed(new)
        await svc.flush()
        gated.go.set()
        await reader
        assert cached_window(redis_server, cache, "#a") == (old, True)  # stale
        assert await svc.query(latest("#a")) == old  # ...and served
    finally:
        gated.go.set()
        await svc.close()


async def test_a_redaction_drops_the_cached_window(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    sent = [new_message("#a")._replace(sender=f"a:user{i}") for i in range(4)]
    old = store.append(sent)
    gone = old[1]
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        assert await svc.query(latest("#a")) == old  # miss, filled
        assert await svc.query(latest("#a")) == old  # hit
        assert store.redact("#a", gone.msgid) is True
        assert await svc.query(latest("#a")) == old  # what the cache alone would serve
        redacted = [old[0], gone._replace(command=REDACTED_COMMAND, text="", tags=""), *old[2:]]
        served = [old[0], *old[2:]]
        svc.stale(["#a"])  # as the transport does after store.redact
        # Until the drop lands, reads of #a skip the cache.
        assert await svc.query(latest("#a")) == served
        await svc.flush()
        assert cached_window(redis_server, cache, "#a") is None
        assert cache.drops == 1
        assert await svc.query(latest("#a")) == served  # miss, filled again
        assert cached_window(redis_server, cache, "#a") == (redacted, True)
        reads = store.reads
        assert await svc.query(latest("#a")) == served  # hit
        # The tombstone still resolves as a reference, from the cached window.
        assert await svc.query(Query("AFTER", "#a", Ref("msgid", gone.msgid), 5)) == old[2:]
        assert await svc.query(Query("BEFORE", "#a", Ref("msgid", gone.msgid), 5)) == old[:1]
        assert store.reads == reads
        # find() reads the store (the cache keeps no senders), on the reader thread.
        assert await svc.find("#a", gone.msgid) == FoundMessage(redacted[1], "a:user1")
        assert await svc.find("#a", old[3].msgid) == (old[3], "a:user3")
        assert await svc.find("#a", "no-such-msgid") is None
        assert await svc.find("#b", old[0].msgid) is None
        assert store.reads == reads + 4
    finally:
        await svc.close()


async def test_write_landing_after_the_fill_extends_it(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    old = append(store, "#a", 3)
    gated = GatedStore(store)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(gated, cache)
    try:
        reader = await _reader_parked_after_store_read(svc, gated, latest("#a"))
        new = store.append([new_message("#a")])  # committed; its cache update is late
        gated.go.set()
        assert await reader == old
        assert cache.fills == 1  # nothing bumped the version yet: the fill applies
        svc.committed(new)
        await svc.flush()
        assert cached_window(redis_server, cache, "#a") == (old + new, True)
        reads = store.reads
        assert await svc.query(latest("#a")) == old + new
        assert store.reads == reads
    finally:
        gated.go.set()
        await svc.close()


async def test_concurrent_readers_and_writers_stay_consistent(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    cache = make_cache(redis_server, window=6)
    svc = HistoryService(store, cache)
    try:
        for round_ in range(30):
            targets = ["#a", "#b", "#c"]
            readers = [asyncio.create_task(svc.query(latest(t, 6))) for t in targets]
            rows = store.append([new_message(targets[round_ % 3]) for _ in range(round_ % 4)])
            svc.committed(rows)
            await asyncio.gather(*readers)
            if round_ % 5 == 0:
                cache.invalidate("test")
            await svc.flush()
            for t in targets:
                assert_window_fresh(redis_server, cache, t, store)
                assert await svc.query(latest(t, 6)) == store.query(latest(t, 6))
    finally:
        await svc.close()


# ---------------------------------------------------------------- faults


async def test_breaker_full_cycle_with_real_redis(
    redis_server: RedisServer, store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock = FakeClock()
    cache = make_cache(redis_server, clock, window=5, failures=3, cooldown=5.0)
    svc = HistoryService(store, cache)
    q = latest("#a", 5)
    try:
        append(store, "#a", 3)
        assert await svc.query(q) == store.query(q)
        redis_server.stop()
        for _ in range(3):
            assert await svc.query(q) == store.query(q)
        assert cache.breaker.state == "open"
        attempts = cache.attempts
        for _ in range(20):  # open: nobody even tries Redis
            svc.committed(append(store, "#a", 1))
            assert await svc.query(q) == store.query(q)
        await svc.flush()
        assert cache.attempts == attempts
        clock.advance(5.0)
        assert await svc.query(q) == store.query(q)  # the probe fails: still down
        assert cache.breaker.state == "open"
        assert cache.attempts == attempts + 1
        redis_server.start()
        assert await svc.query(q) == store.query(q)  # cool-down not over: no probe
        assert cache.attempts == attempts + 1
        clock.advance(5.0)
        assert await svc.query(q) == store.query(q)  # the probe succeeds
        assert cache.breaker.state == "closed"
        assert breaker_states(caplog) == ["open", "half-open", "open", "half-open", "closed"]
        # Warm again: served from Redis, and every message written meanwhile is there.
        for _ in range(3):
            assert await svc.query(q) == store.query(q)
        reads = store.reads
        assert await svc.query(q) == store.query(q)
        assert store.reads == reads + 1  # only the comparison's own read
    finally:
        await svc.close()


async def test_stop_and_restart_redis_under_traffic(
    redis_server: RedisServer, store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock = FakeClock()
    cache = make_cache(redis_server, clock, window=8, failures=3, cooldown=5.0, timeout=0.3)
    svc = HistoryService(store, cache)
    channels = ["#a", "#b", "#c"]
    try:
        for i in range(150):
            if i == 40:
                redis_server.stop()
            if i == 100:
                redis_server.start()
                clock.advance(5.0)
            target = channels[i % 3]
            svc.committed(store.append([new_message(target) for _ in range(1 + i % 3)]))
            if i % 4 == 0:
                await asyncio.sleep(0)  # sometimes the writer runs before the query
            rows = store.window(target, 12)
            for q in (latest(target, 5), latest(target, 12),
                      Query("BEFORE", target, Ref("msgid", rows[-1].msgid), 3),
                      Query("AFTER", target, Ref("msgid", rows[0].msgid), 4)):
                assert await svc.query(q) == store.query(q), (i, q)
            if i == 99:
                assert cache.breaker.state == "open"
        await svc.flush()
        assert cache.breaker.state == "closed"
        assert breaker_states(caplog) == ["open", "half-open", "closed"]
        for target in channels:
            assert await svc.query(latest(target, 8)) == store.query(latest(target, 8))
            assert_window_fresh(redis_server, cache, target, store)
    finally:
        await svc.close()


def sockets_to(port: int, state: str) -> int:
    """Local TCP sockets to 127.0.0.1:port in ``state`` (Linux /proc/net/tcp: "01"
    established, "08" CLOSE_WAIT, the peer gone)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].split(":")[1], 16) == port and fields[3] == state:
            count += 1
    return count


def sockets_in_close_wait(port: int) -> int:
    return sockets_to(port, "08")


async def until(condition: Any, seconds: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or a generous deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
async def test_a_restart_closes_every_pooled_connection_to_the_dead_server(
    redis_server: RedisServer, store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    cache = make_cache(redis_server, FakeClock(), window=5, failures=3, cooldown=5.0)
    svc = HistoryService(store, cache)
    q = latest("#a", 5)
    try:
        append(store, "#a", 3)
        assert await svc.query(q) == store.query(q)  # starts a generation
        # Concurrent reads leave several connections in the pool.
        assert await asyncio.gather(*(svc.query(q) for _ in range(8))) == [store.query(q)] * 8
        redis_server.stop()
        assert await until(lambda: sockets_in_close_wait(redis_server.port) >= 2)
        # Let the loop see the peers' FIN, as it long has when a real outage ends;
        # the pool's liveness check then replaces the connection it hands out.
        await asyncio.sleep(0.2)
        redis_server.start()
        # The first call reaches the new server (a run_id never seen): the old pool goes.
        assert await svc.query(q) == store.query(q)
        assert await until(lambda: sockets_in_close_wait(redis_server.port) == 0)
        assert cache.breaker.state == "closed"
        assert any("Redis restarted" in r.getMessage() for r in caplog.records)
        assert await svc.query(q) == store.query(q)
    finally:
        await svc.close()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
async def test_reads_beyond_the_pool_wait_for_a_connection_and_never_fail(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    cache = make_cache(redis_server, FakeClock(), window=5, failures=1, cooldown=5.0)
    svc = HistoryService(store, cache)
    try:
        channels = 6 * cache_module.POOL_SIZE
        for i in range(channels):
            append(store, f"#c{i}", 3)
        queries = [latest(f"#c{i}", 5) for i in range(channels)]
        assert await svc.query(queries[0]) == store.query(queries[0])  # starts a generation
        answers = await asyncio.gather(*(svc.query(q) for q in queries))
        assert answers == [store.query(q) for q in queries]
        assert 1 <= sockets_to(redis_server.port, "01") <= cache_module.POOL_SIZE
        assert cache.breaker.state == "closed"  # waiting for a slot is not a failure
    finally:
        await svc.close()


async def test_writes_that_failed_while_redis_was_down_are_never_missing(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    clock = FakeClock()
    cache = make_cache(redis_server, clock, window=5, failures=1, cooldown=1.0)
    svc = HistoryService(store, cache)
    try:
        append(store, "#a", 2)
        await svc.query(latest("#a"))  # cached: 2 rows
        old_gen = cache.generation
        redis_server.stop()
        lost = append(store, "#a", 1)
        svc.committed(lost)  # this update fails: Redis is down
        await svc.flush()
        assert cache.breaker.state == "open"
        redis_server.start()
        clock.advance(1.0)
        # Redis is back (empty here, but it could have kept the old window): the old
        # generation is never read again.
        for _ in range(3):
            assert await svc.query(latest("#a")) == store.query(latest("#a"))
        assert cache.generation != old_gen
        assert lost[0] in (cached_window(redis_server, cache, "#a") or ([], False))[0]
    finally:
        await svc.close()


async def test_flushall_invalidates_and_the_cache_recovers(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        append(store, "#a", 3)
        await svc.query(latest("#a"))
        svc.committed(append(store, "#a", 1))
        await svc.flush()
        gen = cache.generation
        redis_server.flushall()
        # A write after the flush finds the sentinel gone (no version to compare).
        svc.committed(append(store, "#a", 1))
        await svc.flush()
        assert cache.generation is None
        assert await svc.query(latest("#a")) == store.query(latest("#a"))
        # A read after a flush finds it gone too.
        await svc.query(latest("#a"))
        assert cache.generation not in (None, gen)
        redis_server.flushall()
        assert await svc.query(latest("#a")) == store.query(latest("#a"))
        assert cache.generation is None
        for _ in range(3):
            assert await svc.query(latest("#a")) == store.query(latest("#a"))
        reads = store.reads
        assert await svc.query(latest("#a", 4)) == store.window("#a", 4)
        assert store.reads == reads + 1  # a hit; the +1 is the comparison's read
        assert_window_fresh(redis_server, cache, "#a", store)
    finally:
        await svc.close()


def _snapshot(server: RedisServer) -> list[tuple[bytes, bytes, int]]:
    with server.admin() as r:
        return [(k, r.dump(k), max(0, r.pttl(k))) for k in r.keys("*")]


def _restore(server: RedisServer, snapshot: list[tuple[bytes, bytes, int]]) -> None:
    with server.admin() as r:
        for key, data, ttl in snapshot:
            r.restore(key, ttl, data, replace=True)


@pytest.mark.parametrize("idle", [False, True], ids=["pooled-connection", "new-connection"])
async def test_restart_from_an_older_snapshot_serves_nothing_stale(
    redis_server: RedisServer, store: SQLiteStore, idle: bool
) -> None:
    """A persistent Redis restarts from a snapshot older than its last writes."""
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        append(store, "#a", 2)
        await svc.query(latest("#a"))
        snapshot = _snapshot(redis_server)  # the window holds 2 rows here
        newer = append(store, "#a", 1)
        svc.committed(newer)
        await svc.flush()
        assert cached_window(redis_server, cache, "#a") is not None
        if idle:
            await cache.close()  # no pooled connection left to fail: only run_id can tell
        redis_server.stop()
        redis_server.start()
        _restore(redis_server, snapshot)
        gen = cache.generation
        assert gen is not None
        with redis_server.admin() as r:  # the old generation looks alive and stale
            assert r.exists(f"{cache.prefix}{gen}:alive")
        assert (cached_window(redis_server, cache, "#a") or ([], False))[0] == \
            store.window("#a", 5)[:-1]
        for _ in range(3):
            assert await svc.query(latest("#a")) == store.query(latest("#a"))
        assert cache.generation != gen
        if idle:
            assert cache.breaker.consecutive_failures == 0  # detected without any failure
        assert_window_fresh(redis_server, cache, "#a", store)
        assert newer[0] in (cached_window(redis_server, cache, "#a") or ([], False))[0]
    finally:
        await svc.close()


async def test_slow_redis_opens_the_breaker_and_nobody_waits_while_open(
    redis_server: RedisServer, store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock = FakeClock()
    cache = make_cache(redis_server, clock, window=5, failures=2, cooldown=5.0, timeout=0.15)
    svc = HistoryService(store, cache)
    q = latest("#a", 5)
    try:
        append(store, "#a", 3)
        assert await svc.query(q) == store.query(q)
        # Scripts (all our calls) block; the test's own CLIENT UNPAUSE still works.
        redis_server.pause(60_000, "WRITE")
        for _ in range(5):
            svc.committed(append(store, "#a", 1))
            assert await svc.query(q) == store.query(q)
        await svc.flush()
        assert cache.breaker.state == "open"
        attempts = cache.attempts
        for _ in range(20):
            svc.committed(append(store, "#a", 1))
            assert await asyncio.wait_for(svc.query(q), 10) == store.query(q)
        await svc.flush()
        assert cache.attempts == attempts  # no request waited on Redis while open
        redis_server.unpause()
        clock.advance(5.0)
        assert await svc.query(q) == store.query(q)
        assert cache.breaker.state == "closed"
        assert breaker_states(caplog) == ["open", "half-open", "closed"]
        for _ in range(3):
            assert await svc.query(q) == store.query(q)
        assert_window_fresh(redis_server, cache, "#a", store)
    finally:
        redis_server.unpause()
        await svc.close()


async def test_client_pause_all_makes_every_call_time_out_yet_answers_stay_correct(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    clock = FakeClock()
    cache = make_cache(redis_server, clock, window=5, failures=2, cooldown=1.0, timeout=0.1)
    svc = HistoryService(store, cache)
    q = latest("#a", 5)
    try:
        append(store, "#a", 3)
        assert await svc.query(q) == store.query(q)
        redis_server.pause(700, "ALL")  # even new connections stall
        for _ in range(4):
            svc.committed(append(store, "#a", 1))
            assert await svc.query(q) == store.query(q)
        assert cache.breaker.state == "open"
        # Wait (deadline, not a timing assertion) until Redis serves clients again.
        for _ in range(200):
            clock.advance(1.0)
            assert await svc.query(q) == store.query(q)
            if cache.breaker.state == "closed":
                break
            await asyncio.sleep(0.05)
        assert cache.breaker.state == "closed"
        for _ in range(3):
            svc.committed(append(store, "#a", 1))
            assert await svc.query(q) == store.query(q)
        await svc.flush()
        assert_window_fresh(redis_server, cache, "#a", store)
    finally:
        await svc.close()


async def test_unreachable_redis_from_the_start(store: SQLiteStore) -> None:
    breaker = CircuitBreaker(3, 5.0, FakeClock())
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    cache = RedisHistoryCache(url, window=5, timeout=0.2, breaker=breaker)
    svc = HistoryService(store, cache)
    try:
        append(store, "#a", 4)
        for _ in range(10):
            svc.committed(append(store, "#a", 1))
            assert await svc.query(latest("#a")) == store.query(latest("#a"))
        await svc.flush()
        assert cache.breaker.state == "open"
    finally:
        await svc.close()


async def test_search_returns_the_stores_answer_read_off_the_loop(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = ["Hello there", "nothing", "say HELLO", "hello again", "bye"]
    store.append([new_message(t, text) for t in ("#s", "#t", "#u") for text in texts])
    threads: list[threading.Thread] = []
    real = store.search

    def spy(q: Search) -> list[StoredMessage]:
        threads.append(threading.current_thread())
        return real(q)

    monkeypatch.setattr(store, "search", spy)
    svc = HistoryService(store, cache=None)
    try:
        q = Search(("#s", "#t"), "hello", limit=4)
        reads = store.reads
        got = await svc.search(q)
        assert store.reads == reads + 1
        assert got == store.search(q)
        assert [(r.target, r.text) for r in got] == [
            ("#s", "hello again"), ("#t", "Hello there"), ("#t", "say HELLO"),
            ("#t", "hello again"),
        ]
        assert threads[0] is not threading.current_thread()  # on the reader thread
        assert await svc.search(Search((), "hello")) == []
    finally:
        await svc.close()


async def test_a_slow_search_does_not_hold_up_chathistory(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Searches have a thread of their own: a scan that takes long (here: held until
    the test lets it go) leaves CHATHISTORY reads free to run."""
    store.append([new_message("#s", f"line {i}") for i in range(5)])
    started, release = threading.Event(), threading.Event()
    real = store.search

    def slow(q: Search) -> list[StoredMessage]:
        started.set()
        assert release.wait(10), "the test never let the search go"
        return real(q)

    monkeypatch.setattr(store, "search", slow)
    svc = HistoryService(store, cache=None)
    try:
        searching = asyncio.ensure_future(svc.search(Search(("#s",), "line", limit=2)))
        assert await asyncio.to_thread(started.wait, 10)
        rows = await asyncio.wait_for(svc.query(Query("LATEST", "#s", NO_REF, 3)), 5)
        assert [r.text for r in rows] == ["line 2", "line 3", "line 4"]
        assert not searching.done()
        release.set()
        assert [r.text for r in await searching] == ["line 3", "line 4"]
    finally:
        release.set()
        await svc.close()


# ---------------------------------------------------------------- wiring


async def test_transit_rows_never_reach_the_cache(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    """Transit rows (private messages kept only for a cluster node's recovery) are read
    from the store alone: no window of them is ever made, so none is written either."""
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        svc.committed(store.append([new_message("%n1:7") for _ in range(2)]))
        assert await svc.window("%n1:7") is None  # not even when asked for one
        await svc.query(latest("#a"))  # a generation exists: writes would land
        svc.committed(store.append([new_message("%n1:7"), new_message("#a")]))
        await svc.flush()
        assert cache.generation is not None and "%n1:7" not in cache.targets_read
        with redis_server.admin() as r:
            assert [k for k in r.keys("*") if b"%n1:" in k] == []
        assert await svc.query(latest("%n1:7")) == store.query(latest("%n1:7"))
        assert [r.target for r in await svc.transit("%n1:", 0, 10)] == ["%n1:7"] * 3
    finally:
        await svc.close()


def test_build_history_from_config(tmp_path: Path) -> None:
    assert build_history(ServerConfig(db="")) is None
    plain = build_history(ServerConfig(db=str(tmp_path / "a.db")))
    assert plain is not None and plain.cache is None
    assert isinstance(plain.store, SQLiteStore)
    plain.store.close()
    config = ServerConfig(
        db=str(tmp_path / "b.db"), redis="redis://127.0.0.1:1/0", redis_window=7,
        redis_timeout=0.5, breaker_failures=4, breaker_cooldown=2.5,
    )
    svc = build_history(config)
    assert svc is not None
    cache = svc.cache
    assert isinstance(cache, RedisHistoryCache)
    assert (cache.window_size, cache.timeout) == (7, 0.5)
    assert (cache.breaker.threshold, cache.breaker.cooldown) == (4, 2.5)
    svc.store.close()
    with pytest.raises(ValueError):
        RedisHistoryCache.from_config(replace(config, redis=None))


async def test_built_service_round_trip(redis_server: RedisServer, tmp_path: Path) -> None:
    svc = build_history(ServerConfig(db=str(tmp_path / "h.db"), redis=redis_server.url))
    assert svc is not None
    try:
        svc.committed(svc.store.append([new_message("#x") for _ in range(3)]))
        assert await svc.query(latest("#x")) == svc.store.query(latest("#x"))
        svc.committed(svc.store.append([new_message("#x")]))
        await svc.flush()
        reads = svc.store.reads
        assert len(await svc.query(latest("#x"))) == 4
        assert svc.store.reads == reads
        assert await svc.targets(["#x", "#y"], 0, 2**62, 10) == [
            ("#x", svc.store.window("#x", 1)[0].time_ms)
        ]
    finally:
        await svc.close()
        svc.store.close()


def test_service_on_its_own_loop_thread_with_commits_from_another_thread(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    """How the select backend runs it: a loop on a worker thread; commits on the select
    thread hand their cache updates over to that loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(10)

    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)  # built off-loop: nothing is bound yet
    try:
        append(store, "#a", 2)
        assert run(svc.query(latest("#a"))) == store.query(latest("#a"))
        busy, release = threading.Event(), threading.Event()
        loop.call_soon_threadsafe(lambda: (busy.set(), release.wait(10)))
        assert busy.wait(10)  # the loop is held: nothing handed over can run yet
        for _ in range(5):
            svc.committed(append(store, "#a", 1))  # from this (non-loop) thread
        # Five ticks, one wake-up of the loop: they wait together for it.
        assert len(svc._handoff) == 5
        release.set()
        run(svc.flush())
        assert svc._handoff == []
        assert_window_fresh(redis_server, cache, "#a", store)
        reads = store.reads
        assert run(svc.query(latest("#a", 5))) == store.window("#a", 5)
        assert store.reads == reads + 1  # the comparison's read only
        svc.pruned(1)  # also from another thread
        run(svc.flush())  # runs after the hand-over, which was queued first
        assert cache.generation is None
    finally:
        run(svc.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def test_an_ended_channel_leaves_no_key_and_is_forgotten(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    """A channel that ended here: its window and version go, and it leaves the channels
    whose writes go to the cache (else a churner's names pile up there)."""
    rows = append(store, "#a", 3)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        assert await svc.query(latest("#a")) == rows  # miss, filled
        gen = cache.generation
        assert gen is not None and "#a" in cache.targets_read
        svc.ended(["#a"])
        await svc.flush()
        with redis_server.admin() as r:
            assert r.keys(f"{cache.prefix}{gen}:*:#a") == []
        assert "#a" not in cache.targets_read
        svc.committed(append(store, "#a", 1))  # the channel made again: no cache write
        await svc.flush()
        with redis_server.admin() as r:
            assert r.keys(f"{cache.prefix}{gen}:*:#a") == []
    finally:
        await svc.close()


async def test_a_read_asked_before_its_channel_ended_fills_no_window(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    """A JOIN and a JOIN 0 in one go: the channel ends before its playback read begins.
    That read is answered from the store; the next one is cached again."""
    append(store, "#other", 1)
    rows = append(store, "#a", 3)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        await svc.query(latest("#other"))  # the generation
        gen = cache.generation
        assert gen is not None
        svc.ended(["#a"])
        reads = store.reads
        assert await svc.query(latest("#a")) == rows
        await svc.flush()
        assert store.reads == reads + 1
        with redis_server.admin() as r:
            assert r.keys(f"{cache.prefix}{gen}:*:#a") == []
        assert await svc.query(latest("#a")) == rows  # a later read: miss, filled
        assert cached_window(redis_server, cache, "#a") == (rows, True)
    finally:
        await svc.close()
