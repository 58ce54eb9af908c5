"""The asyncio side of a cluster node: Redis pub/sub, nick leases, heartbeats, resync.

One ``ClusterBus`` per node. The transport hands it the core's cluster effects
after each tick's history commit (so a published message is already in the
shared store), and it feeds what other nodes publish back into the core.

* Events go out in order through one publisher task on one connection.
* The listener is restarted (and logged) whenever it dies; after every
  (re)subscribe it reloads every node's snapshot, so nothing missed while it was
  away stays missed.
* Every ``cluster_heartbeat`` seconds: this node's snapshot is written to Redis
  (with a TTL; only its TTL renewed when nothing in it changed), a heartbeat is
  published (by the same publisher, behind the events), nick leases are renewed, and
  nodes not heard from for ``cluster_dead_after`` seconds are declared gone.
* With Redis down the node keeps serving its own users; nick claims are granted
  locally (logged) and re-claimed when Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from server.config import ServerConfig
from server.core import ServerCore
from server.core.history import end_unended
from server.history.model import NO_REF, Query, Ref, StoredMessage
from server.history.service import HistoryService
from server.tasks import spawn

from .apply import (
    CLOCK_SKEW_MS,
    ChannelRetry,
    EncodedSnapshot,
    encoded_snapshot,
    merge_came,
    read_failed,
    recovered,
    recovered_direct,
    recovered_transit,
    retry_over,
    run_of,
    snapshot_version,
)
from .events import (
    CHANNEL,
    NICK_KEY,
    NODE_KEY,
    NODES_KEY,
    ClaimNick,
    Publish,
    Recover,
    RecoverDirect,
    RecoverTransit,
    ReleaseNick,
    Resync,
    decode,
    encode,
)

log = logging.getLogger("chat.server.cluster")

RECOVER_LIMIT = 100  # rows per read of a recovery
# Reads of one channel or conversation in one recovery, oldest first: a longer gap
# loses its newest rows (those after it came live).
RECOVER_PAGES = 30
# A recovery whose read failed is tried again after 1, 2, 4... s, up to 16.
RECOVER_RETRY_FIRST = 1.0
RECOVER_RETRY_LAST = 16.0
RECOVER_CONVERSATIONS = 50  # of one account, active since a gap began, recovered
# Transit rows (private messages to our users outside conversations) read after a gap,
# for all our users at once: the newest this many since the gap began.
RECOVER_TRANSIT_LIMIT = 5000
# Renew a lease we hold, or take it back if it expired (Redis restarted): never steal.
_RENEW = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not v then return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) and 1 or 0 end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# Take a nick whose holder is nobody, ourselves, or a ghost (REGAIN): the ghost's node
# may not have released it yet when its QUIT arrives.
_CLAIM_FROM_GHOST = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and holder ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""


class ClusterBus:
    def __init__(
        self,
        core: ServerCore,
        config: ServerConfig,
        history: HistoryService | None,
        changed: Callable[[], None],
    ) -> None:
        assert config.redis
        self.core = core
        self.config = config
        self.history = history
        self.changed = changed  # schedule a flush of the core's output
        self.node = core.node_id
        # One retry on a fresh connection: after Redis restarts, every pooled connection
        # is dead, and its first command failed (a nick release lost until the lease
        # ran out; a claim "granted locally" that split the nick between two nodes).
        # Every command here may run twice: SET NX, the scripts and PUBLISH are safe so.
        self.redis: Any = aioredis.from_url(
            config.redis, socket_timeout=2.0, socket_connect_timeout=2.0,
            retry=Retry(NoBackoff(), 1),
        )
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._resyncing: set[str] = set()
        self._announcing = False  # a snapshot asked for by another node is being written
        # One announcement at a time: the last snapshot written is the newest built.
        self._announce_lock = asyncio.Lock()
        # The snapshot in Redis, as far as we know, and the ``snapshot_version`` it was
        # (re)built at; None until one is written, or after a write failed.
        self._written: EncodedSnapshot | None = None
        self._written_at: tuple[int, int] | None = None
        self.last_heard: dict[str, float] = {}
        # Nodes declared gone (silent past cluster_dead_after, or said bye) and not heard
        # from since: their users quit here, and their nick leases may be taken over.
        self._gone: set[str] = set()
        self.redis_ok = True
        self.listener_restarts = 0
        self.subscribed = asyncio.Event()
        # The nodes found at the first subscription whose state is still to be read
        # afresh (after a heartbeat of theirs that came once we were subscribed): until
        # then a change they made before we subscribed may be missing from our view.
        # None until that subscription; ``view_whole`` once empty.
        self._unheard: set[str] | None = None
        self.view_whole = asyncio.Event()
        self._stopping = False
        # Set by the transport: re-read what events may have been missed and a snapshot
        # does not carry (the account names), after every (re)subscription.
        self.after_subscribe: Callable[[], Awaitable[None]] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._listen(), name="cluster-listen"),
            asyncio.create_task(self._publisher(), name="cluster-publish"),
            asyncio.create_task(self._heartbeat(), name="cluster-heartbeat"),
        ]
        log.info("cluster node %s started", self.node)

    async def stop(self, *, announce: bool = True) -> None:
        """Stop; with ``announce`` tell the others at once (else they find out by timeout)."""
        self._stopping = True
        self._queue.put_nowait(b"")  # wakes the publisher, which ends once the queue is empty
        publisher = [t for t in self._loops if t.get_name() == "cluster-publish"]
        if publisher:
            await asyncio.wait(publisher, timeout=2.0)  # (Redis away: the others resync)
        tasks = [*self._loops, *self._tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            # redis-py can swallow a cancellation mid-command; the loops also stop on the flag.
            _, stuck = await asyncio.wait(tasks, timeout=2.0)
            if stuck:
                log.warning("cluster: %d tasks did not stop in time", len(stuck))
        if announce:
            try:
                async with asyncio.timeout(2):
                    await self.redis.delete(NODE_KEY + self.node)
                    await self.redis.srem(NODES_KEY, self.node)
                    bye = {"k": "bye", "n": self.node, "e": run_of(self.core)}
                    await self.redis.publish(CHANNEL, encode(bye))
                    for client in self.core.clients.values():
                        if client.folded:
                            await self.redis.eval(
                                _RELEASE, 1, NICK_KEY + client.folded, self.core.uid(client)
                            )
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("cluster: could not announce shutdown: %s", exc)
        await self.redis.aclose()

    def _spawn(self, coro: Any) -> None:
        if self._stopping:
            # stop() cancels what it finds and then closes the client: a task started
            # later would run against a closing pool (redis-py then fails inside itself).
            coro.close()
            return
        spawn(self._tasks, coro, log)

    # ------------------------------------------------------------------ effects

    def handle(self, effects: list[Any]) -> None:
        """The core's cluster effects of one tick (after the history commit)."""
        transit: RecoverTransit | None = None
        asked = 0  # transit recoveries asked for in this tick: one read answers them all
        for effect in effects:
            if isinstance(effect, Publish):
                self._queue.put_nowait(encode(effect.event))
            elif isinstance(effect, ClaimNick):
                self._spawn(self._claim(effect))
            elif isinstance(effect, ReleaseNick):
                self._spawn(self._release(effect))
            elif isinstance(effect, Resync):
                if effect.node not in self._resyncing:
                    self._resyncing.add(effect.node)
                    self._spawn(self._resync(effect.node))
            elif isinstance(effect, Recover):
                self._spawn(self._recover(effect))
            elif isinstance(effect, RecoverDirect):
                self._spawn(self._recover_direct(effect))
            elif isinstance(effect, RecoverTransit):
                asked += 1
                if transit is None:
                    transit = effect
                else:  # gaps of several nodes in one tick: one read, the oldest
                    transit = RecoverTransit(
                        effect.prefix, min(effect.since_ms, transit.since_ms),
                        merge_came(effect.came, transit.came))
        if transit is not None:
            self._spawn(self._recover_transit(transit, asked))

    async def _claim(self, claim: ClaimNick) -> None:
        key = NICK_KEY + claim.folded
        lease = int(self.config.nick_lease * 1000)
        try:
            if claim.ghost:
                ok = bool(await self.redis.eval(
                    _CLAIM_FROM_GHOST, 1, key, claim.uid, claim.ghost, lease
                ))
            else:
                ok = bool(await self.redis.set(key, claim.uid, nx=True, px=lease))
            if not ok:
                raw = await self.redis.get(key)
                holder = raw.decode() if raw is not None else ""
                ok = holder == claim.uid
                if not ok and holder.rpartition(":")[0] in self._gone:
                    # A user of a node that died: its lease would hold the nick for
                    # up to --nick-lease after the node's users quit here.
                    ok = bool(await self.redis.eval(
                        _CLAIM_FROM_GHOST, 1, key, claim.uid, holder, lease
                    ))
        except (RedisError, OSError) as exc:
            log.warning("cluster: Redis unavailable, nick %s granted locally: %s", claim.nick, exc)
            ok = True
        self.core.nick_claim_result(claim.conn_id, claim.nick, claim.folded, ok)
        self.changed()

    async def _release(self, release: ReleaseNick) -> None:
        try:
            await self.redis.eval(_RELEASE, 1, NICK_KEY + release.folded, release.uid)
        except (RedisError, OSError) as exc:
            log.debug("cluster: nick release failed (the lease will expire): %s", exc)

    async def _resync(self, node: str) -> bool:
        """Read ``node``'s snapshot and apply it; whether there was one."""
        try:
            raw = await self.redis.get(NODE_KEY + node)
        except (RedisError, OSError) as exc:
            log.warning("cluster: cannot resync node %s: %s", node, exc)
            return False
        finally:
            self._resyncing.discard(node)
        if raw is None:
            return False
        self.last_heard.setdefault(node, time.monotonic())
        self.core.remote_snapshot(json.loads(raw))
        self.changed()
        return True

    async def _heard_afresh(self, node: str) -> None:
        """``node``'s heartbeat came after we subscribed: the snapshot it wrote just
        before holds every change it made before that, and we hear the rest."""
        if await self._resync(node):
            self._heard(node)

    def _heard(self, node: str) -> None:
        """``node`` is in our view now, or gone: once no node found at start is left
        to hear, the view is whole, and the channels a killed cluster left closed
        that no node holds end (``end_unended``)."""
        unheard = self._unheard
        if unheard is None or node not in unheard:
            return
        unheard.discard(node)
        if not unheard:
            self._view_whole()

    def _view_whole(self) -> None:
        if not self.view_whole.is_set():
            self.view_whole.set()
            end_unended(self.core)
            self.changed()

    async def _pages(
        self, target: str, since_ms: int, *, with_redactions: bool = False,
        until_ms: int | None = None,
    ) -> list[StoredMessage]:
        """``target``'s rows sent since ``since_ms`` (and until ``until_ms``), oldest
        first, in pages (bounded)."""
        rows: list[StoredMessage] = []
        ref = Ref("timestamp", time_ms=max(since_ms - 1, 0))
        for _ in range(RECOVER_PAGES):
            page = await self.history.query_store(  # type: ignore[union-attr]
                Query("AFTER", target, ref, RECOVER_LIMIT, with_redactions=with_redactions))
            if until_ms is not None and page and page[-1].time_ms > until_ms:
                # Those stored later were sent later still (up to clock skew, which
                # ``until_ms`` allows for).
                return rows + [row for row in page if row.time_ms <= until_ms]
            rows += page
            if len(page) < RECOVER_LIMIT:
                return rows
            ref = Ref("msgid", msgid=page[-1].msgid)
        log.warning("cluster: over %d messages in %s since the gap began: the newest are "
                    "not recovered", RECOVER_PAGES * RECOVER_LIMIT, target)
        return rows

    async def _retrying(
        self, what: str, attempt: Callable[[bool], Awaitable[Exception | None]]
    ) -> None:
        """Recover ``what``: ``attempt(True)``, which releases the live messages held
        for it even when its store read fails (it returns the error), then, while that
        read fails, ``attempt(False)`` after 1, 2, 4... s. The store may be back soon (a
        restart, a dropped connection): what the gap lost is delivered late rather than
        never, and the live messages went on meanwhile."""
        failure = await attempt(True)
        if failure is None:
            return
        log.error("cluster: recovering %s from the store failed", what, exc_info=failure)
        delay = RECOVER_RETRY_FIRST
        while not self._stopping:
            if delay > RECOVER_RETRY_LAST:
                log.error("cluster: gave up recovering %s from the store: messages missed "
                          "in the gap are not delivered", what)
                return
            await asyncio.sleep(delay)
            delay *= 2
            failure = await attempt(False)
            if failure is None:
                return
            log.warning("cluster: recovering %s from the store failed again: %s",
                        what, failure)

    async def _recover(self, effect: Recover) -> None:
        channel = effect.channel
        history = self.history
        if history is None:
            recovered(self.core, channel, None)  # its live messages wait for this
            self.changed()
            return

        until = self._until_ms()
        retry: ChannelRetry | None = None

        async def attempt(first: bool) -> Exception | None:
            nonlocal retry
            rows: list[StoredMessage] | None = None
            try:
                # A retry reads up to the first try only (plus clock skew): what was
                # sent later came live, or is a later gap's.
                rows = await self._recovery_rows(history, effect, None if first else until)
            except Exception as exc:
                return exc
            finally:
                if rows is not None:
                    recovered(self.core, channel, rows, held=first,
                              since_ms=effect.since_ms, came=effect.came, retry=retry)
                    self.changed()
                elif first:  # (even when cancelled: they wait for it)
                    retry = read_failed(self.core, channel)
                    self.changed()
            return None

        try:
            await self._retrying(channel, attempt)
        finally:
            if retry is not None:
                retry_over(self.core, channel, retry)

    async def _recovery_rows(
        self, history: HistoryService, effect: Recover, until_ms: int | None = None
    ) -> list[StoredMessage]:
        if effect.since_ms is None:
            query = Query("LATEST", effect.channel, NO_REF, RECOVER_LIMIT, with_redactions=True)
            rows = await history.query_store(query)
            return rows if until_ms is None else [r for r in rows if r.time_ms <= until_ms]
        return await self._pages(effect.channel, effect.since_ms, with_redactions=True,
                                 until_ms=until_ms)

    def _until_ms(self) -> int:
        """The newest sending time a retried recovery reads (by the sender's clock). A
        retry comes up to half a minute later, when the messages sent since came live,
        and more of them than the msgids remembered per channel or user would be
        delivered again."""
        return int(time.time() * 1000) + CLOCK_SKEW_MS

    async def _recover_direct(self, effect: RecoverDirect) -> None:
        """Each account's conversations active since the gap began, and their messages
        since then (a few reads per logged-in user, only after a gap)."""
        history = self.history
        pending = list(effect.accounts)  # those whose read has not succeeded yet
        if history is None:
            for account in pending:
                recovered_direct(self.core, account, None)  # live messages wait for this
            self.changed()
            return
        since, until = effect.since_ms, self._until_ms()

        async def attempt(first: bool) -> Exception | None:
            try:
                while pending:
                    account = pending[0]
                    try:
                        rows = await self._conversations(history, account, since, until)
                    except Exception as exc:
                        # The store is failing: the rest wait for the next try, this one
                        # last (should its own rows be what fails, the others get theirs).
                        pending.append(pending.pop(0))
                        return exc
                    del pending[0]
                    recovered_direct(self.core, account, rows, since, held=first,
                                     came=effect.came)
                    self.changed()
            finally:
                if first and pending:  # (or cancelled) their live messages wait no more
                    for account in pending:
                        recovered_direct(self.core, account, None)
                    self.changed()
            return None

        what = (f"private messages of {pending[0]}" if len(pending) == 1
                else f"private messages of {len(pending)} accounts")
        await self._retrying(what, attempt)

    async def _conversations(
        self, history: HistoryService, account: str, since_ms: int, until_ms: int
    ) -> list[StoredMessage]:
        """The rows of ``account``'s conversations sent between the two times."""
        # Those active since: their last message may be a live one after the lost, sent
        # after the recovery began (the read waited for a reader thread, or a retry).
        talks = await history.conversations(
            account, since_ms, until_ms + 3_600_000, RECOVER_CONVERSATIONS)
        rows = []
        for _partner, key, _last in talks:
            rows += await self._pages(key, since_ms, until_ms=until_ms)
        # Windows of these conversations cached here may lack them too.
        history.stale([key for _partner, key, _last in talks])
        return rows

    async def _recover_transit(self, effect: RecoverTransit, asked: int = 1) -> None:
        """Private messages to our users that no conversation keeps, since the gap began:
        one read for every user here, bounded in rows. ``asked``: the recoveries it
        answers (those of one tick)."""
        history = self.history
        if history is None:
            recovered_transit(self.core, None, held=asked)  # live messages wait for this
            self.changed()
            return
        until = self._until_ms()

        async def attempt(first: bool) -> Exception | None:
            rows: list[StoredMessage] | None = None
            since = effect.since_ms
            try:
                rows = await history.transit(effect.prefix, since, RECOVER_TRANSIT_LIMIT)
            except Exception as exc:
                return exc
            finally:
                if rows is None and first:  # (even when cancelled: they wait for it)
                    recovered_transit(self.core, None, held=asked)
                    self.changed()
            if len(rows) >= RECOVER_TRANSIT_LIMIT:
                log.warning("cluster: over %d private messages to users here since the gap "
                            "began: only the newest are recovered", RECOVER_TRANSIT_LIMIT)
                # Every row was read from the oldest one's time on (one more ms: others
                # of that millisecond may have been cut).
                since = min(row.time_ms for row in rows) + 1
            rows = [row for row in rows if row.time_ms <= until]
            recovered_transit(self.core, rows, since, held=asked if first else 0,
                              came=effect.came)
            self.changed()
            return None

        await self._retrying("private messages to users here", attempt)

    # ------------------------------------------------------------------ tasks

    async def _publisher(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            batch = [data for data in batch if data]
            if batch:
                try:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for data in batch:
                            pipe.publish(CHANNEL, data)
                        await pipe.execute()
                    self._set_ok(True)
                except (RedisError, OSError) as exc:
                    # Others notice the gap in our counters and resync from our snapshot.
                    self._set_ok(False, exc)
            if self._stopping and self._queue.empty():
                # What was queued when stop() came (the last tick: a message its sender
                # saw echoed) went out first; stop() waits for this, then says bye.
                break

    def _set_ok(self, ok: bool, exc: BaseException | None = None) -> None:
        if ok and not self.redis_ok:
            log.warning("cluster: Redis is back")
        elif not ok and self.redis_ok:
            log.warning("cluster: Redis unavailable, cross-node delivery paused: %s", exc)
        self.redis_ok = ok

    async def _listen(self) -> None:
        delay = 0.1
        while not self._stopping:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                await self._load_all()
                self.subscribed.set()
                delay = 0.1
                while not self._stopping:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._received(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                self.listener_restarts += 1
                log.warning("cluster: listener died (%s); restarting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):  # the connection may be gone already
                    await pubsub.aclose()

    def _received(self, data: bytes) -> None:
        try:
            event = decode(data)
        except ValueError:
            log.warning("cluster: undecodable event dropped")
            return
        node = event["n"]
        if node == self.node:
            return
        if event.get("k") != "bye":
            self.last_heard[node] = time.monotonic()
            self._gone.discard(node)
        else:
            self.last_heard.pop(node, None)
            self._gone.add(node)
        if event.get("k") == "want" and event.get("of") == self.node:
            self._announce_soon()  # another node holds a snapshot of ours that is stale
        if self._unheard and node in self._unheard:
            if event.get("k") == "hb":
                self._spawn(self._heard_afresh(node))
            elif event.get("k") == "bye":
                self._heard(node)
        self.core.remote_event(event)
        self.changed()

    async def _load_all(self) -> None:
        """After (re)subscribing: announce ourselves and read every other node's state."""
        await self._announce()
        nodes = await self.redis.smembers(NODES_KEY)
        found = set()
        for raw_node in nodes:
            node = raw_node.decode()
            if node != self.node and await self._resync(node):
                found.add(node)
        if self._unheard is None:
            self._unheard = found
            if not found:
                self._view_whole()
        if self.after_subscribe is not None:
            await self.after_subscribe()

    def _announce_soon(self) -> None:
        """Write our snapshot (and heartbeat) now, once, whoever asks how often."""
        if self._announcing:
            return
        self._announcing = True

        async def announce() -> None:
            try:
                await self._announce(fresh=True)
            except (RedisError, OSError) as exc:
                log.debug("cluster: snapshot on request failed (heartbeat will do): %s", exc)
            finally:
                self._announcing = False

        self._spawn(announce())

    async def _announce(self, *, fresh: bool = False) -> None:
        """Write our snapshot (``fresh``: even if unchanged), then publish a heartbeat.

        An unchanged snapshot is neither built nor written again, only kept: its TTL
        renewed. Built and written every heartbeat, one address's channels with full
        ban lists made it 8 MB of JSON a second, and the loop stalled 40-70 ms each
        time. Kept or written, the snapshot in Redis holds every change this node made
        or applied before the heartbeat that follows (a node that sees it may read it).
        """
        async with self._announce_lock:
            ttl = int(max(self.config.cluster_dead_after * 2, 1.0) * 1000)
            version = snapshot_version(self.core)
            snap = self._written
            if snap is None or version != self._written_at or fresh:
                snap = encoded_snapshot(self.core)
            now = int(self.core.clock() * 1000)
            if fresh or snap != self._written or not await self._keep(ttl):
                self._written = None  # (until the write is known to have landed)
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.set(NODE_KEY + self.node, snap.data(now), px=ttl)
                    pipe.sadd(NODES_KEY, self.node)
                    await pipe.execute()
                self._written = snap
            self._written_at = version
            # Through the publisher, behind every event the snapshot counted: published
            # on a connection of its own it could overtake them, and each other node took
            # that for a gap (a warning, a snapshot read and a recovery of every shared
            # channel). After the snapshot is written: a node that sees the heartbeat may
            # read it.
            self._queue.put_nowait(encode({"k": "hb", "n": self.node, "g": snap.g,
                                           "e": run_of(self.core), "w": now}))

    async def _keep(self, ttl: int) -> bool:
        """Renew the TTL of our snapshot in Redis; False if it is not there (Redis
        restarted, or the key ran out while the loop was held up)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.pexpire(NODE_KEY + self.node, ttl)
            pipe.sadd(NODES_KEY, self.node)
            kept, _ = await pipe.execute()
        return bool(kept)

    async def _heartbeat(self) -> None:
        interval = self.config.cluster_heartbeat
        lease = int(self.config.nick_lease * 1000)
        while not self._stopping:
            await asyncio.sleep(interval)
            was_ok = self.redis_ok
            try:
                await self._announce()
                async with self.redis.pipeline(transaction=False) as pipe:
                    for client in self.core.clients.values():
                        if client.registered and client.folded and client.closing is None:
                            pipe.eval(_RENEW, 1, NICK_KEY + client.folded,
                                      self.core.uid(client), lease)
                    await pipe.execute()
                self._set_ok(True)
                if not was_ok:
                    self._spawn(self._load_all())
            except (RedisError, OSError) as exc:
                self._set_ok(False, exc)
            now = time.monotonic()
            if not self.redis_ok or not self.subscribed.is_set():
                # We cannot hear anyone: that says nothing about them. Start afresh later.
                for node in self.last_heard:
                    self.last_heard[node] = now
                continue
            for node, heard in list(self.last_heard.items()):
                if now - heard > self.config.cluster_dead_after:
                    del self.last_heard[node]
                    self._gone.add(node)
                    log.warning("cluster: node %s not heard from for %.1fs: gone",
                                node, now - heard)
                    self.core.remote_node_gone(node)
                    self.changed()
                    self._heard(node)
