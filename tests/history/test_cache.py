"""Cache-aside against a real redis-server and a real SQLite file: hits, misses, writes."""

from __future__ import annotations

import random

from server.history.cache import COMPLETE, CacheMiss, RedisHistoryCache
from server.history.model import NO_REF, Query, Ref, StoredMessage
from server.history.service import HistoryService
from server.history.sqlite_store import SQLiteStore
from tests.history.conftest import (
    RedisServer,
    append,
    assert_window_fresh,
    cached_window,
    make_cache,
    new_message,
    sample_queries,
)


def latest(target: str, limit: int = 50) -> Query:
    return Query("LATEST", target, NO_REF, limit)


async def test_miss_fills_the_cache_and_a_hit_does_not_touch_the_store(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    rows = append(store, "#a", 8)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        before = store.reads
        assert await svc.query(latest("#a", 3)) == rows[-3:]
        assert store.reads == before + 1  # the miss read the store's window
        assert cached_window(redis_server, cache, "#a") == (rows[-5:], False)
        gen = cache.generation
        assert gen is not None
        with redis_server.admin() as r:
            raw = r.lrange(cache.window_key(gen, "#a"), 0, -1)
        assert raw == [m.to_json().encode() for m in rows[-5:]]  # StoredMessage.to_json

        reads = store.reads
        for _ in range(5):
            assert await svc.query(latest("#a", 3)) == rows[-3:]
            assert await svc.query(Query("BEFORE", "#a", Ref("msgid", rows[-1].msgid), 2)) \
                == rows[-3:-1]
        assert store.reads == reads  # hits only
        assert cache.hits == 10
    finally:
        await svc.close()


async def test_requests_outside_the_window_go_to_the_store(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    rows = append(store, "#a", 20)
    svc = HistoryService(store, make_cache(redis_server, window=5))
    try:
        await svc.query(latest("#a", 1))  # fill
        reads = store.reads
        q = Query("BEFORE", "#a", Ref("msgid", rows[5].msgid), 3)
        assert await svc.query(q) == rows[2:5]
        assert store.reads == reads + 1  # one store query, the window was a hit
        q = Query("LATEST", "#a", NO_REF, 10)  # more than the window holds
        assert await svc.query(q) == rows[-10:]
        assert store.reads == reads + 2
    finally:
        await svc.close()


async def test_small_and_empty_channels_are_cached_as_complete(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    rows = append(store, "#small", 3)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        assert await svc.query(latest("#small")) == rows
        assert await svc.query(latest("#empty")) == []
        assert cached_window(redis_server, cache, "#small") == (rows, True)
        assert cached_window(redis_server, cache, "#empty") == ([], True)  # the marker
        reads = store.reads
        # A complete window answers even what lies before its first row, and unknowns.
        assert await svc.query(Query("BEFORE", "#small", Ref("msgid", rows[0].msgid), 5)) == []
        assert await svc.query(Query("BEFORE", "#small", Ref("msgid", "nope"), 5)) == []
        assert await svc.query(latest("#small", 50)) == rows
        assert await svc.query(latest("#empty")) == []
        assert await svc.query(Query("AFTER", "#empty", Ref("timestamp", time_ms=1), 5)) == []
        assert store.reads == reads
    finally:
        await svc.close()


async def test_writes_extend_existing_windows_and_trim_them(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    rows = append(store, "#a", 3)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        await svc.query(latest("#a"))
        assert cached_window(redis_server, cache, "#a") == (rows, True)
        more = append(store, "#a", 1)
        svc.committed(more)
        await svc.flush()
        assert cached_window(redis_server, cache, "#a") == (rows + more, True)
        more2 = append(store, "#a", 1)
        svc.committed(more2)  # 5 rows = the window size: no longer known to be complete
        await svc.flush()
        assert cached_window(redis_server, cache, "#a") == (rows + more + more2, False)
        newest = append(store, "#a", 4)
        svc.committed(newest)
        await svc.flush()
        all_rows = rows + more + more2 + newest
        assert cached_window(redis_server, cache, "#a") == (all_rows[-5:], False)
        reads = store.reads
        assert await svc.query(latest("#a", 5)) == all_rows[-5:]
        assert store.reads == reads  # served from the updated window
    finally:
        await svc.close()


async def test_writes_do_not_create_windows_and_skip_channels_never_read(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        await svc.query(latest("#other"))  # establishes a generation
        gen = cache.generation
        assert gen is not None
        # Never read in this generation: no window and no fill can exist, so no write.
        svc.committed(append(store, "#a", 2))
        await svc.flush()
        with redis_server.admin() as r:
            assert not r.exists(cache.window_key(gen, "#a"))
            assert not r.exists(cache.version_key(gen, "#a"))
        # Once read, a write deletes its version, so that a fill in flight (which read
        # the store before the write) is refused; and it makes no key of its own.
        miss = await cache.read("#a")
        assert isinstance(miss, CacheMiss)
        with redis_server.admin() as r:
            assert r.get(cache.version_key(gen, "#a")) == miss.version
        before = store.window("#a", 5)
        svc.committed(append(store, "#a", 2))
        await svc.flush()
        assert await cache.fill(miss, before, True) is False
        with redis_server.admin() as r:
            assert not r.exists(cache.window_key(gen, "#a"))
            assert not r.exists(cache.version_key(gen, "#a"))
    finally:
        await svc.close()


async def test_one_round_trip_updates_every_channel_of_a_tick(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    a, b = append(store, "#a", 2), append(store, "#b", 2)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        await svc.query(latest("#a"))
        await svc.query(latest("#b"))
        attempts = cache.attempts
        tick = store.append([new_message("#a"), new_message("#b"), new_message("#a")])
        svc.committed(tick)
        await svc.flush()
        assert cache.attempts == attempts + 1
        assert cached_window(redis_server, cache, "#a") == ([*a, tick[0], tick[2]], True)
        assert cached_window(redis_server, cache, "#b") == ([*b, tick[1]], True)
    finally:
        await svc.close()


async def test_rows_a_fill_already_read_are_not_appended_twice(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    rows = append(store, "#a", 2)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        await svc.query(latest("#other"))
        late = append(store, "#a", 2)  # committed, cache update not yet delivered
        assert await svc.query(latest("#a")) == rows + late  # the miss fills with them
        svc.committed(late)  # the update arrives after the fill
        await svc.flush()
        assert cached_window(redis_server, cache, "#a") == (rows + late, True)
    finally:
        await svc.close()


async def test_a_batch_longer_than_the_window_sends_only_its_newest_rows(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    rows = append(store, "#a", 3)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        await svc.query(latest("#a"))
        big = append(store, "#a", 12)  # a busy channel while the previous call was out
        await cache.append(big)
        assert cached_window(redis_server, cache, "#a") == (big[-5:], False)
        # A whole batch never replaces a window holding something newer.
        await cache.append(big[:7])
        await cache.append(big)
        assert cached_window(redis_server, cache, "#a") == (big[-5:], False)
        # And the window goes on growing from its newest row as before.
        more = append(store, "#a", 1)
        await cache.append(more)
        assert cached_window(redis_server, cache, "#a") == (big[-4:] + more, False)
        assert await svc.query(latest("#a", 5)) == (rows + big + more)[-5:]
    finally:
        await svc.close()


async def test_a_gap_drops_the_window_instead_of_serving_it(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    rows = append(store, "#a", 3)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        await svc.query(latest("#a"))
        last = rows[-1]
        skipped = StoredMessage(
            "#a", last.seq + 2, "gap", last.time_ms + 1, "x!y@z", "PRIVMSG", "#a", "gap"
        )
        await cache.append([skipped])
        assert cached_window(redis_server, cache, "#a") is None
    finally:
        await svc.close()


async def test_cached_answers_equal_store_answers_for_every_subcommand(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    base = 1_750_000_000_000
    for target, count in (("#big", 40), ("#mid", 7), ("#one", 1)):
        # Pairs of messages share a timestamp: paging must still be exact.
        store.append(
            [new_message(target, f"{target} {i}", time_ms=base + (i // 2) * 1000)
             for i in range(count)]
        )
    svc = HistoryService(store, make_cache(redis_server, window=10))
    try:
        asked = 0
        for target in ("#big", "#mid", "#one", "#none"):
            rows = store.window(target, 1000)
            for q in sample_queries(rows, target):
                assert await svc.query(q) == store.query(q), q
                asked += 1
        cache = svc.cache
        assert isinstance(cache, RedisHistoryCache)
        assert cache.hits > asked // 2
    finally:
        await svc.close()


async def test_complete_marker_is_the_first_element(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    append(store, "#a", 1)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        got = await cache.read("#a")
        assert isinstance(got, CacheMiss)
        assert await cache.fill(got, store.window("#a", 5), True)
        gen = cache.generation
        assert gen is not None
        with redis_server.admin() as r:
            assert r.lindex(cache.window_key(gen, "#a"), 0) == COMPLETE.encode()
        assert_window_fresh(redis_server, cache, "#a", store)
    finally:
        await svc.close()


async def test_a_query_right_after_a_commit_sees_it_before_the_cache_update_lands(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    """A client that received a message must find it in history at once."""
    rows = append(store, "#a", 3)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        await svc.query(latest("#a"))  # cached: 3 rows
        for _ in range(5):
            new = append(store, "#a", 1)
            rows += new
            svc.committed(new)  # the update is queued, not yet sent to Redis
            reads = store.reads
            assert await svc.query(latest("#a", 4)) == rows[-4:]
            assert store.reads == reads  # a hit, completed by the unconfirmed rows
        await svc.flush()
        assert cached_window(redis_server, cache, "#a") == (rows[-5:], False)
    finally:
        await svc.close()


# ---------------------------------------------------------------------- hits as one string


async def test_a_window_dropped_and_refilled_is_read_correctly(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    rows = append(store, "#a", 4)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        await svc.query(latest("#a"))
        gen = cache.generation
        assert gen is not None
        for _ in range(2):
            with redis_server.admin() as r:
                r.delete(cache.window_key(gen, "#a"))  # evicted or expired
            more = append(store, "#a", 1)  # committed; its cache update not sent yet
            rows += more
            reads = store.reads
            assert await svc.query(latest("#a", 5)) == rows[-5:]  # miss, refilled
            assert store.reads == reads + 1
            svc.committed(more)
            await svc.flush()
            assert await svc.query(latest("#a", 5)) == rows[-5:]
            assert store.reads == reads + 1
            assert_window_fresh(redis_server, cache, "#a", store)
    finally:
        await svc.close()


async def test_an_unreadable_window_drops_the_generation(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    rows = append(store, "#a", 3)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        await svc.query(latest("#a"))
        gen = cache.generation
        assert gen is not None
        other = make_cache(redis_server, window=5)
        for bad in (b"not json", b'["#a",1,"m",2]', b'["#a","1","m",2,"s","PRIVMSG","#a","t",""]'):
            other._generation = gen
            with redis_server.admin() as r:
                r.lset(cache.window_key(gen, "#a"), 1, bad)
            assert await other.read("#a") is None
            assert other.generation is None
        await other.close()
        assert await svc.query(latest("#a")) == rows
    finally:
        await svc.close()


async def test_random_reads_writes_and_evictions_always_match_the_store(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    rng = random.Random(7)
    targets = ["#a", "#b", "#c"]
    cache = make_cache(redis_server, window=6)
    svc = HistoryService(store, cache)
    try:
        for step in range(300):
            action = rng.random()
            if action < 0.4:
                rows = store.append(
                    [new_message(rng.choice(targets)) for _ in range(rng.choice((1, 1, 2, 8)))]
                )
                svc.committed(rows)
                if rng.random() < 0.7:
                    await svc.flush()
            elif action < 0.45 and cache.generation is not None:
                with redis_server.admin() as r:
                    r.delete(cache.window_key(cache.generation, rng.choice(targets)))
            elif action < 0.47:
                cache.invalidate("test")
            else:
                target = rng.choice(targets)
                rows = store.window(target, 200)
                for q in [latest(target, rng.randint(0, 8)), *rng.sample(
                        sample_queries(rows, target), 2)]:
                    assert await svc.query(q) == store.query(q), (step, q)
            for target in targets:
                if not svc._unconfirmed:
                    assert_window_fresh(redis_server, cache, target, store)
        assert cache.hits > 10 and cache.misses > 0
    finally:
        await svc.close()


async def test_a_version_made_again_never_matches_an_older_miss(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    """Versions live only from a miss to its fill, so one may expire and be made again:
    each is new in the generation, and the older miss's fill is refused."""
    rows = append(store, "#a", 3)
    cache = make_cache(redis_server, window=5)
    try:
        first = await cache.read("#a")
        assert isinstance(first, CacheMiss)
        gen = first.generation
        with redis_server.admin() as r:
            assert 0 < r.pttl(cache.version_key(gen, "#a")) <= 60_000  # FILL_WAIT
            r.delete(cache.version_key(gen, "#a"))  # as if it expired
        second = await cache.read("#a")
        assert isinstance(second, CacheMiss) and second.version != first.version
        assert await cache.fill(first, rows[:2], True) is False  # older: refused
        assert await cache.fill(second, rows, True) is True
        assert cached_window(redis_server, cache, "#a") == (rows, True)
        with redis_server.admin() as r:
            assert not r.exists(cache.version_key(gen, "#a"))  # filled: not needed now
    finally:
        await cache.close()


async def test_windows_live_an_hour_from_their_last_read(
    redis_server: RedisServer, store: SQLiteStore
) -> None:
    append(store, "#a", 3)
    cache = make_cache(redis_server, window=5)
    svc = HistoryService(store, cache)
    try:
        await svc.query(latest("#a"))  # miss, filled
        gen = cache.generation
        assert gen is not None
        key = cache.window_key(gen, "#a")
        with redis_server.admin() as r:
            assert 0 < r.pttl(key) <= 3_600_000
            r.pexpire(key, 1_000)
        await svc.query(latest("#a"))  # a hit renews it
        assert cache.hits == 1
        with redis_server.admin() as r:
            assert r.pttl(key) > 1_000
    finally:
        await svc.close()
