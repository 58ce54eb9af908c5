"""Redis cache-aside for the recent window of each channel's history.

Redis is only a cache: every method here answers "don't know" (None) rather than
raise, and the caller then reads the store of record.

Keys (``P`` is the prefix, ``G`` the current generation, ``T`` a folded channel)::

    P G:alive      sentinel of generation G; its absence means Redis lost our data.
                   Its value counts the versions handed out in G (INCR)
    P G:w:T        the window: a list of StoredMessage.to_json, oldest first, newest
                   ``window`` messages, no gaps in seq; a first element COMPLETE
                   means the list holds every retained message of the channel
    P G:v:T        per-channel version, only between a miss and its fill: the miss
                   sets it to a value never handed out before in G, a write, drop
                   or fill deletes it, and a fill is applied only if it is still
                   the value its miss saw

Lifetimes: a window lives ``ttl`` (an hour) from its last read or write, and a
version ``FILL_WAIT`` at most. A channel that ends on this node has its window
dropped (``HistoryService.ended``). So a channel made and left at once (JOIN/JOIN 0
churn) leaves no key behind, and one that slips past the drop goes within the TTL:
with a day's TTL and a version per channel read, one address's churn kept ~10 M keys
(3.7 GB) in a Redis that may carry the cluster bus too.
Versions are unique within a generation, so one deleted or expired and made again
never matches what an older miss saw (no ABA): losing a version only refuses a fill.

Writes (after the store committed) append only where a window exists, trim it, and
bump the version in one atomic round trip (a Lua script), skipping rows the window
already holds (a fill may have read them from the store first) and dropping the window
if a gap would appear. So a window is either absent or equal to the store's newest rows.

Generations: a generation is a random token, never reused (a counter kept in Redis
would restart after a FLUSHALL and let a late call of the old generation land in the
new one). The cache never reads or writes a generation it has not established itself
(SET NX of its sentinel), and it forgets its generation whenever its view of Redis
may have diverged from the store: any failed or timed-out call, any write the
breaker refused, the sentinel missing (FLUSHALL, restart without persistence,
eviction), or a new connection reaching a Redis with another run_id (a restart,
possibly from an older snapshot). The next read starts a fresh generation,
so nothing cached before is ever served again; old generations expire by TTL.
Rows committed before a generation starts need not be written to it: every read of
that generation reads the store after the generation began.

A hit comes back as one string (the window's JSON arrays joined by ',') that one
``json.loads`` decodes: as a list of elements, redis-py's pure-Python reply parser
and a ``json.loads`` and field conversion per row cost more than reading the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.maint_notifications import MaintNotificationsConfig

from server.tasks import spawn

from .breaker import CircuitBreaker
from .model import StoredMessage

if TYPE_CHECKING:
    from redis.asyncio.connection import AbstractConnection

    from server.config import ServerConfig

log = logging.getLogger("chat.server.history")

# Redis connections per node; calls beyond wait for a free one. One event loop keeps
# a few calls in flight at a time, and Redis serves them one by one: 64 made the soak's
# pool end 30 connections larger from one run to the next (the census and about 1 MB of
# RSS with it; docs/RELIABILITY.md, r22) for no gain.
POOL_SIZE = 16

COMPLETE = "#complete"  # first list element of a window holding the whole channel

# Windows and generations live this long from their last use (seconds). An hour keeps
# every channel read or written that often cached; a day kept each throw-away channel
# of a churning client (a window it read at its JOIN) for a day.
TTL = 3_600.0
# A miss's version lives this long (seconds): a fill later than that (its store read
# behind a backlog of reads) is refused, and the next read misses again.
FILL_WAIT = 60.0


class _Script:
    """A Lua script run with EVALSHA, falling back to EVAL (which loads it)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()


# Generation: create its sentinel. KEYS sentinel; ARGV ttl ms. 1 if new.
NEW_GENERATION = _Script(
    """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 1 end
return 0
"""
)

# Read: KEYS sentinel, window, version; ARGV ttl ms, version ttl ms. Returns, in one
# round trip, {0} (sentinel gone), {2, version} (miss) or {1, complete, rows} (hit):
# rows = the window's JSON arrays after its COMPLETE marker (complete 1), joined by ','
# (one bulk string and one json.loads, not an element and a json.loads per row).
# A miss shares the version of a miss before it, else makes a new one (the sentinel's
# count: never handed out before in this generation). A hit renews the window's TTL.
READ = _Script(
    f"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {{0}} end
local w = redis.call('LRANGE', KEYS[2], 0, -1)
if #w == 0 then
  local v = redis.call('GET', KEYS[3])
  if not v then
    v = tostring(redis.call('INCR', KEYS[1]))
    redis.call('SET', KEYS[3], v, 'PX', ARGV[2])
  end
  return {{2, v}}
end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local c = 0
if w[1] == '{COMPLETE}' then c = 1 end
return {{1, c, table.concat(w, ',', c + 1)}}
"""
)

# Fill: KEYS sentinel, window, version; ARGV version seen before the store read,
# ttl ms, complete '1'/'0', rows... Returns -1 (sentinel gone), 0 (version gone or
# another: a write, a drop or another fill came in between, or it expired: not
# applied), 1 (filled), 2 (someone filled it already). Deletes the version once
# filled: writes keep the window itself up to date.
FILL = _Script(
    f"""
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[3])
if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
if ARGV[3] == '1' then redis.call('RPUSH', KEYS[2], '{COMPLETE}') end
for i = 4, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
)

# Append after commit: KEYS sentinel, then (window, version) per channel; ARGV window
# size, ttl ms, then per channel: n, whole, then n pairs (seq, json) ascending by seq.
# Deletes each channel's version: a fill in flight read the store before these rows.
# whole=1: the n rows are the channel's newest `size` (older ones of the batch were left
# out), so they replace the window unless it already holds something newer.
# Returns 0 when the sentinel is gone (nothing done), else 1.
APPEND = _Script(
    f"""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local size = tonumber(ARGV[1])
local ttl = ARGV[2]
redis.call('PEXPIRE', KEYS[1], ttl)
local a = 3
for k = 2, #KEYS, 2 do
  local wkey, vkey = KEYS[k], KEYS[k + 1]
  local n = tonumber(ARGV[a])
  local whole = ARGV[a + 1] == '1'
  a = a + 2
  local tail = redis.call('LINDEX', wkey, -1)
  if tail and whole then
    local last = -1
    if tail ~= '{COMPLETE}' then last = tonumber(cjson.decode(tail)[2]) end
    if tonumber(ARGV[a + 2 * (n - 1)]) > last then
      redis.call('DEL', wkey)
      for i = 0, n - 1 do redis.call('RPUSH', wkey, ARGV[a + 2 * i + 1]) end
      redis.call('PEXPIRE', wkey, ttl)
    end
  elseif tail then
    local last = -1
    if tail ~= '{COMPLETE}' then last = tonumber(cjson.decode(tail)[2]) end
    local gap = false
    for i = 0, n - 1 do
      local seq = tonumber(ARGV[a + 2 * i])
      if seq > last then
        if last >= 0 and seq ~= last + 1 then
          gap = true
          break
        end
        redis.call('RPUSH', wkey, ARGV[a + 2 * i + 1])
        last = seq
      end
    end
    if gap then
      redis.call('DEL', wkey)
    else
      redis.call('LTRIM', wkey, -size, -1)
      redis.call('PEXPIRE', wkey, ttl)
    end
  end
  a = a + 2 * n
  redis.call('DEL', vkey)
end
return 1
"""
)


# Drop: KEYS sentinel, then (window, version) per channel. Deletes the windows and
# the versions (a fill that read the store before is not applied). Returns 0 when the
# sentinel is gone, else 1.
DROP = _Script(
    """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for k = 2, #KEYS do
  redis.call('DEL', KEYS[k])
end
return 1
"""
)


def decode_rows(joined: bytes) -> tuple[StoredMessage, ...]:
    """Rows from READ's string: ``StoredMessage.to_json`` arrays joined by ','.

    One ``json.loads`` for them all. The arrays were written by this process in its
    own generation, so the fields are not converted one by one as
    ``StoredMessage.from_json`` does: a row of another shape (another version's
    format, or not ours) raises ValueError or TypeError, and so does a seq or time_ms
    that is not an integer (comparisons rely on them).
    """
    rows = tuple(map(_make_row, json.loads(b"[" + joined + b"]")))
    for row in rows:
        if type(row[1]) is not int or type(row[3]) is not int:
            raise TypeError("seq and time_ms must be integers")
    return rows


_make_row = StoredMessage._make  # TypeError unless the array has exactly every field


@dataclass(frozen=True, slots=True)
class CachedWindow:
    """A hit: the newest rows of a channel, oldest first."""

    rows: tuple[StoredMessage, ...]
    complete: bool  # the rows are every retained message of the channel


@dataclass(frozen=True, slots=True)
class CacheMiss:
    """A miss, with what a fill needs: the generation and the version seen before."""

    target: str
    generation: str
    version: bytes


class RedisHistoryCache:
    """Cache-aside windows in Redis, behind a circuit breaker. One event loop at a time.

    Nothing is bound to a loop at construction: the client is created lazily inside
    the running loop (and again if the cache is later used from another loop).
    """

    def __init__(
        self,
        url: str,
        *,
        window: int = 100,
        timeout: float = 0.25,
        breaker: CircuitBreaker | None = None,
        prefix: str = "chat:history:",
        ttl: float = TTL,
        fill_wait: float = FILL_WAIT,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.url = url
        self.window_size = window
        self.timeout = timeout
        self.breaker = breaker if breaker is not None else CircuitBreaker(3, 5.0)
        self.prefix = prefix
        self._ttl_ms = max(1, int(ttl * 1000))
        self._fill_wait_ms = max(1, int(fill_wait * 1000))
        self._client: aioredis.Redis | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._retiring: set[asyncio.Task[Any]] = set()  # old clients, closed shortly
        self._slots = asyncio.Semaphore(POOL_SIZE)  # made anew for each event loop
        self._generation: str | None = None
        # Channels read in this generation. Only a read creates a window (its fill), so
        # rows of any other channel need no cache write: no window, no fill in flight.
        self.targets_read: set[str] = set()
        self._epoch = 0  # bumped by every invalidation
        self._renewing = False
        self._run_id: str | None = None
        # Counters for tests and stats.
        self.attempts = 0  # Redis round trips attempted
        self.hits = 0
        self.misses = 0
        self.fills = 0
        self.drops = 0  # windows dropped: another node wrote to their channel, or it ended
        self.invalidations = 0

    @classmethod
    def from_config(
        cls,
        config: ServerConfig,
        clock: Callable[[], float] = time.monotonic,
        *,
        prefix: str = "chat:history:",
    ) -> RedisHistoryCache:
        if not config.redis:
            raise ValueError("no Redis URL configured")
        breaker = CircuitBreaker(config.breaker_failures, config.breaker_cooldown, clock)
        return cls(
            config.redis,
            window=config.redis_window,
            timeout=config.redis_timeout,
            breaker=breaker,
            prefix=prefix,
        )

    @property
    def generation(self) -> str | None:
        return self._generation

    # ------------------------------------------------------------------ keys

    def _alive(self, gen: str) -> str:
        return f"{self.prefix}{gen}:alive"

    def window_key(self, gen: str, target: str) -> str:
        return f"{self.prefix}{gen}:w:{target}"

    def version_key(self, gen: str, target: str) -> str:
        return f"{self.prefix}{gen}:v:{target}"

    # ------------------------------------------------------------------ reads

    async def read(self, target: str) -> CachedWindow | CacheMiss | None:
        """The cached window (hit), what a fill needs (miss), or None: use the store."""
        gen = self._generation
        if gen is None:
            gen = await self._renew()
            if gen is None:
                return None
        self.targets_read.add(target)  # before the version is read: writes now bump it
        keys = [self._alive(gen), self.window_key(gen, target), self.version_key(gen, target)]
        reply = await self._call(READ, keys, [self._ttl_ms, self._fill_wait_ms])
        if reply is None or self._generation != gen:
            return None  # failed, or the generation was dropped meanwhile
        code = int(reply[0])
        if code == 0:
            self._lost(gen)
            return None
        if code == 1:
            try:
                rows = decode_rows(reply[2])
            except (ValueError, TypeError):  # not ours, or another version's format
                self.invalidate("unreadable cached window")
                return None
            self.hits += 1
            return CachedWindow(rows, int(reply[1]) == 1)
        if code != 2:
            self.invalidate(f"unexpected cache reply {code}")
            return None
        self.misses += 1
        return CacheMiss(target, gen, bytes(reply[1]))

    async def fill(self, miss: CacheMiss, rows: Sequence[StoredMessage], complete: bool) -> bool:
        """Store what the store returned after ``miss``, unless a write came in between."""
        gen = miss.generation
        if self._generation != gen:
            return False
        keys = [self._alive(gen), self.window_key(gen, miss.target),
                self.version_key(gen, miss.target)]
        args: list[str | bytes | int] = [miss.version, self._ttl_ms, 1 if complete else 0]
        args.extend(r.to_json() for r in rows)
        reply = await self._call(FILL, keys, args)
        if reply is None:
            return False
        if int(reply) == -1:
            self._lost(gen)
            return False
        if int(reply) == 1:
            self.fills += 1
            return True
        return False

    # ------------------------------------------------------------------ writes

    async def append(self, rows: Sequence[StoredMessage]) -> None:
        """After commit: extend the windows that exist and bump their versions."""
        gen = self._generation
        if gen is None or not rows:
            # No generation: whichever starts next begins after these rows were
            # committed, so its reads find them in the store.
            return
        by_target: dict[str, list[StoredMessage]] = {}
        for row in rows:
            by_target.setdefault(row.target, []).append(row)
        keys = [self._alive(gen)]
        args: list[str | int] = [self.window_size, self._ttl_ms]
        size = self.window_size
        for target, group in by_target.items():
            group.sort(key=lambda r: r.seq)
            # Under load one call can carry thousands of a channel's rows, of which the
            # window keeps the newest `size`: encode and send only those.
            whole = len(group) >= size
            if whole:
                group = group[-size:]
            keys += [self.window_key(gen, target), self.version_key(gen, target)]
            args += [len(group), 1 if whole else 0]
            for row in group:
                args += [row.seq, row.to_json()]
        reply = await self._call(APPEND, keys, args, write=True)
        if reply is not None and int(reply) == 0:
            self._lost(gen)

    async def drop(self, targets: Sequence[str]) -> None:
        """These channels' windows here are stale (another node committed to them, a
        message was redacted) or no longer wanted (the channel ended): delete them."""
        gen = self._generation
        if gen is None or not targets:
            return  # the next generation reads the store after those commits
        keys = [self._alive(gen)]
        for target in targets:
            keys += [self.window_key(gen, target), self.version_key(gen, target)]
        self.drops += len(targets)
        reply = await self._call(DROP, keys, [], write=True)
        if reply is not None and int(reply) == 0:
            self._lost(gen)

    # ------------------------------------------------------------------ state

    def invalidate(self, why: str = "") -> None:
        """Forget the current generation: nothing cached so far is used again."""
        self._epoch += 1
        if self._generation is not None:
            self._generation = None
            self.targets_read.clear()
            self.invalidations += 1
            if why:
                log.info("history cache: dropping what was cached (%s)", why)

    def _lost(self, gen: str) -> None:
        if self._generation == gen:
            self.invalidate("Redis lost our data: flushed, restarted or evicted")

    async def _renew(self) -> str | None:
        """Start a new generation (one round trip). None while one is being started."""
        if self._renewing:
            return None
        self._renewing = True
        epoch = self._epoch
        gen = secrets.token_hex(8)
        try:
            reply = await self._call(NEW_GENERATION, [self._alive(gen)], [self._ttl_ms])
        finally:
            self._renewing = False
        if not reply or epoch != self._epoch:
            return None
        self._generation = gen
        self.targets_read.clear()
        log.debug("history cache: generation %s", gen)
        return gen

    # ------------------------------------------------------------------ Redis

    def _redis(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            if self._client_loop is not loop:
                # Calls beyond the pool wait their turn here: a burst is not a Redis
                # failure. Kept when a retired client is replaced on the same loop:
                # calls still finishing on the old client hold slots too.
                self._slots = asyncio.Semaphore(POOL_SIZE)
            self._client = aioredis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry=Retry(NoBackoff(), 0),  # a failure is the breaker's business
                redis_connect_func=self._on_connect,
                # With maintenance notifications on (redis-py 8's default) the pool
                # skips its liveness check, so every connection that died with a Redis
                # restart failed one call and opened the breaker against a healthy Redis.
                maint_notifications_config=MaintNotificationsConfig(enabled=False),
                max_connections=POOL_SIZE,
            )
            self._client_loop = loop
        return self._client

    async def _on_connect(self, conn: AbstractConnection) -> None:
        """Every new connection: handshake, then compare the server's run_id."""
        await conn.on_connect()
        try:
            await conn.send_command("INFO", "server")
            info = await conn.read_response()
        except ResponseError:  # INFO not permitted: rely on the sentinel alone
            return
        text = info.decode() if isinstance(info, bytes) else str(info)
        run_id = next(
            (line.split(":", 1)[1].strip() for line in text.splitlines()
             if line.startswith("run_id:")),
            None,
        )
        if run_id is None:
            return
        if self._run_id is not None and run_id != self._run_id:
            self.invalidate("Redis restarted")
            self._retire_client()
        self._run_id = run_id

    def _retire_client(self) -> None:
        """After a Redis restart: new calls get a new client and pool, the old one closes.

        The old pool's idle connections lead to the dead server. The pool only notices
        when it hands one out, so without this each kept a socket in CLOSE_WAIT for as
        long as the pool did not reach it (up to POOL_SIZE descriptors, indefinitely).
        """
        old, self._client = self._client, None
        if old is None:
            return
        spawn(self._retiring, self._close_retired(old), log)

    async def _close_retired(self, client: aioredis.Redis) -> None:
        try:
            # Calls already on the old client (this connection's own, too) end within
            # the call timeout; then nothing uses it any more.
            await asyncio.sleep(self.timeout)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    async def _call(
        self, script: _Script, keys: list[str], args: Sequence[str | bytes | int],
        *, write: bool = False,
    ) -> Any:
        """One script round trip through the breaker, bounded by the timeout.

        Returns None when the call failed, timed out or was not attempted.
        """
        self._redis()
        async with self._slots:
            return await self._attempt(script, keys, args, write)

    async def _attempt(
        self, script: _Script, keys: list[str], args: Sequence[str | bytes | int], write: bool
    ) -> Any:
        # Asked after the slot: the breaker may have opened while this call waited.
        if not self.breaker.allow():
            if write:
                self.invalidate()  # a window may now miss these rows
            return None
        self.attempts += 1
        try:
            # wait_for, not asyncio.timeout: with the latter the soak (bench/soak.py,
            # Redis killed and restarted under load) ended with all 64 pool
            # connections open and 17 MiB more RSS (docs/RELIABILITY.md, r11-r13).
            reply = await asyncio.wait_for(self._eval(script, keys, args), self.timeout)
        except asyncio.CancelledError:
            self.breaker.release()
            if write:
                self.invalidate()
            raise
        except (RedisError, OSError, TimeoutError) as exc:
            log.debug("history cache call failed: %r", exc)
            self.invalidate()
            self.breaker.failure()
            return None
        self.breaker.success()
        return reply

    async def _eval(
        self, script: _Script, keys: list[str], args: Sequence[str | bytes | int]
    ) -> Any:
        client = self._redis()
        try:
            return await client.execute_command(  # type: ignore[no-untyped-call]
                "EVALSHA", script.sha, len(keys), *keys, *args
            )
        except NoScriptError:  # new or restarted server: EVAL loads it
            return await client.execute_command(  # type: ignore[no-untyped-call]
                "EVAL", script.text, len(keys), *keys, *args
            )

    async def close(self) -> None:
        for task in list(self._retiring):
            task.cancel()  # closes its client now
        await asyncio.gather(*self._retiring, return_exceptions=True)
        client, self._client = self._client, None
        if client is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._client_loop:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()
