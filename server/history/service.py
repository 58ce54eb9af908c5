"""History reads for the transports: cache-aside over the store, off the loop thread.

Read: the channel's recent window from Redis; on a miss, the store's window (read on
a thread) fills the cache; a request the window cannot answer goes to the store.
Write: the transport commits a tick's rows to the store, then calls ``committed``,
which queues them for one writer task that updates the cached windows in order,
coalescing whatever accumulated during its previous round trip.

The service binds to the event loop that first uses it, never at construction. The
asyncio transport calls everything from its loop; the select transport may run the
service on a loop of its own thread and call ``committed``/``pruned`` from the select
thread: those two hand over to the service's loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from .backlog import Backlog
from .cache import CachedWindow, RedisHistoryCache
from .model import FoundMessage, Query, Search, StoredMessage, is_transit
from .query import evaluate
from .store import HistoryStore

if TYPE_CHECKING:
    from server.config import ServerConfig

log = logging.getLogger("chat.server.history")

T = TypeVar("T")

# Channels that ended here before any read of theirs in this generation began, newest
# last, at most this many: a read that begins later was asked for before the end (a
# JOIN and a JOIN 0 in one go), so it skips the cache rather than fill a window that
# nobody would read or drop. Only the newest matter: such a read begins a tick later.
ENDED_UNREAD = 1024

# Whether a read is still wanted: called on the thread about to run it (a reader
# thread, or the loop running the service), so it must be safe there (see
# ``server.transport.ops.HistoryReaders``: it only reads a ``threading.Event``).
Wanted = Callable[[], bool]


class ReadSkipped(Exception):
    """A read not run: the client that asked for it had gone when its turn came."""


class HistoryService:
    """Async facade used by every backend (the select loop runs it on a thread)."""

    def __init__(self, store: HistoryStore, cache: RedisHistoryCache | None = None) -> None:
        self.store = store
        self.cache = cache
        self.backlog = Backlog()  # messages a failed commit left, for the next one
        # One reader thread: SQLite reads are short, and order is easier to reason about.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-read")
        # SEARCH on a thread of its own: a search that matches nothing scans a channel's
        # every row (milliseconds), and must not hold up CHATHISTORY behind it.
        self._searcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-search")
        self._loop: asyncio.AbstractEventLoop | None = None
        # Committed rows not yet sent to the cache, one list per tick. Kept per tick,
        # not per row or channel: under load they are thousands of rows a second, and
        # a read (rare by comparison) can pick out its channel's.
        self._pending: list[list[StoredMessage]] = []
        # Channels whose windows are to be dropped: another node wrote to them (cluster),
        # a message was redacted, or the channel ended here.
        self._stale: set[str] = set()
        self._ended_unread: dict[str, None] = {}  # see ENDED_UNREAD
        self._dropping: set[str] = set()  # their windows being dropped right now
        # Cache reads under way (from the READ to the fill), by channel: a dropped
        # channel leaves ``cache.targets_read`` only when none is.
        self._reading: Counter[str] = Counter()
        # Ticks whose cache update has not completed, oldest first (pending ones too).
        self._unconfirmed: deque[list[StoredMessage]] = deque()
        self._writer: asyncio.Task[None] | None = None
        # Calls from another thread (the select backend), in order, waiting for one
        # wake-up of the service's loop: one per burst of ticks, not one per tick.
        self._handoff: list[tuple[Callable[..., None], tuple[object, ...]]] = []
        self._handoff_lock = threading.Lock()

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop

    async def _in_thread(
        self, fn: Callable[..., T], *args: object, wanted: Wanted | None = None
    ) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _unless_gone(fn, wanted), *args)

    # ------------------------------------------------------------------ reads

    async def query(self, q: Query, wanted: Wanted | None = None) -> list[StoredMessage]:
        """``q``'s rows, from the cached window or the store. With ``wanted``, every
        read (the cache's, and the store's on its reader thread, when its turn comes)
        first asks it, and raises ReadSkipped instead when it says no."""
        window = await self.window(q.target, wanted)
        if window is not None:
            rows, complete = window
            answer = evaluate(rows, q, complete)
            if answer is not None:
                return answer
        return await self.query_store(q, wanted)

    async def query_store(self, q: Query, wanted: Wanted | None = None) -> list[StoredMessage]:
        """The store's answer, never a cached window: after a cluster gap the windows
        here may lack what never came (their drops were lost with it)."""
        self._bind()
        return await self._in_thread(self.store.query, q, wanted=wanted)

    async def window(
        self, target: str, wanted: Wanted | None = None
    ) -> tuple[Sequence[StoredMessage], bool] | None:
        """The recent window (rows, complete): cached, or read from the store on a miss.

        None when no cache is configured or it is unavailable (breaker open, Redis
        failing, a new generation being started): the caller asks the store.
        """
        self._bind()
        if wanted is not None and not wanted():
            raise ReadSkipped
        cache = self.cache
        if cache is None or is_transit(target):
            # Never cached: only a read makes a window, so neither are the target's rows
            # (``_enqueue`` writes only where one was read).
            return None
        if target in self._stale or target in self._dropping:
            return None  # another node wrote to it and the window is not dropped yet
        if target in self._ended_unread:
            del self._ended_unread[target]
            return None  # asked for before its channel ended: see ENDED_UNREAD
        # Rows committed before this request whose cache update has not been
        # confirmed yet: a hit may predate them, so they are added here (a client
        # that saw a message must find it in history, even a microsecond later).
        unconfirmed = [r for tick in self._unconfirmed for r in tick if r.target == target]
        self._reading[target] += 1
        try:
            got = await cache.read(target)
            if got is None:
                return None
            if isinstance(got, CachedWindow):
                return _with_unconfirmed(got.rows, got.complete, unconfirmed)
            if target in self._ended_unread:
                # Its channel ended while this read made the generation (before it was
                # in ``targets_read``): no window, and a drop for the miss's version.
                del self._ended_unread[target]
                self._enqueue_stale([target])
                return None
            # Miss: the version was read before this store read; the fill is applied
            # only if nothing deleted it since, so a fill never hides a newer message.
            size = cache.window_size
            rows = await self._in_thread(self.store.window, target, size, wanted=wanted)
            complete = len(rows) < size
            await cache.fill(got, rows, complete)
            return rows, complete
        finally:
            self._reading[target] -= 1
            if not self._reading[target]:
                del self._reading[target]

    async def targets(
        self,
        folded: Sequence[str],
        start_ms: int,
        end_ms: int,
        limit: int,
        wanted: Wanted | None = None,
    ) -> list[tuple[str, int]]:
        self._bind()
        return await self._in_thread(
            self.store.targets, list(folded), start_ms, end_ms, limit, wanted=wanted
        )

    async def conversations(
        self, account: str, start_ms: int, end_ms: int, limit: int, wanted: Wanted | None = None
    ) -> list[tuple[str, str, int]]:
        """(partner_name, target key, last_ms) of ``account``'s direct conversations."""
        self._bind()
        return await self._in_thread(
            self.store.conversations, account, start_ms, end_ms, limit, wanted=wanted
        )

    async def transit(self, prefix: str, since_ms: int, limit: int) -> list[StoredMessage]:
        """Transit rows of the targets under ``prefix`` since ``since_ms``, from the store
        (see HistoryStore.transit)."""
        self._bind()
        return await self._in_thread(self.store.transit, prefix, since_ms, limit)

    async def search(self, q: Search, wanted: Wanted | None = None) -> list[StoredMessage]:
        """The store's answer to a SEARCH (see HistoryStore.search); never cached."""
        self._bind()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._searcher, _unless_gone(self.store.search, wanted), q
        )

    async def find(self, target: str, msgid: str) -> FoundMessage | None:
        """``target``'s stored message ``msgid`` (redacted too) and who sent it, from the
        store: cached windows keep no senders."""
        self._bind()
        return await self._in_thread(self.store.find, target, msgid)

    # ------------------------------------------------------------------ writes

    def committed(self, stored: list[StoredMessage]) -> None:
        """Called right after a tick's messages were committed. Never blocks.

        On the service's loop thread the rows are queued for the writer task; from
        another thread (the select backend) they are handed to the service's loop.
        """
        if self.cache is None or not stored:
            return
        self._on_loop(self._enqueue, stored)

    def stale(self, targets: list[str]) -> None:
        """Another node committed to these channels (cluster), or a message in them was
        redacted on this node (after ``store.redact``): drop their windows here, so the
        next read fills them from the store. Never blocks."""
        if self.cache is not None and targets:
            self._on_loop(self._enqueue_stale, targets)

    def ended(self, targets: list[str]) -> None:
        """These channels ended on this node (no member left that it knows of): drop
        their windows, so that a channel made and left at once (JOIN/JOIN 0 churn)
        leaves no key in Redis. Never blocks.

        Always safe: the windows are this node's own (its generation), and a channel
        that ended here while another node still holds it only misses once here."""
        if self.cache is not None and targets:
            self._on_loop(self._enqueue_ended, targets)

    def _enqueue_ended(self, targets: list[str]) -> None:
        assert self.cache is not None
        read = self.cache.targets_read
        unread = self._ended_unread
        for target in targets:
            if target not in read:
                unread.pop(target, None)
                unread[target] = None
        while len(unread) > ENDED_UNREAD:
            del unread[next(iter(unread))]
        self._enqueue_stale(targets)

    def _enqueue_stale(self, targets: list[str]) -> None:
        assert self.cache is not None
        read = self.cache.targets_read
        fresh = {t for t in targets if t in read}  # no window, no fill: nothing to drop
        if not fresh:
            return
        self._stale |= fresh
        self._start_writer()

    def pruned(self, deleted: int) -> None:
        """Called after retention deleted rows from the store: cached windows may
        still hold them, so start over with an empty cache."""
        if self.cache is not None and deleted > 0:
            self._on_loop(self._invalidate_pruned)

    def _invalidate_pruned(self) -> None:
        if self.cache is not None:
            self.cache.invalidate("retention removed messages")

    def _on_loop(self, fn: Callable[..., None], *args: object) -> None:
        running = _running_loop()
        loop = self._loop
        if running is not None and (loop is None or loop is running or loop.is_closed()):
            self._loop = running
            fn(*args)
        elif loop is not None and not loop.is_closed():
            with self._handoff_lock:
                self._handoff.append((fn, args))
                if len(self._handoff) > 1:
                    return  # a wake-up is already on its way and will run this too
            loop.call_soon_threadsafe(self._run_handoff)
        # else: no loop has used the cache yet, so no generation exists; the first
        # one starts after these rows were committed and reads them from the store.

    def _run_handoff(self) -> None:
        with self._handoff_lock:
            calls, self._handoff = self._handoff, []
        for fn, args in calls:
            fn(*args)

    def _enqueue(self, rows: list[StoredMessage]) -> None:
        assert self.cache is not None
        read = self.cache.targets_read
        rows = [r for r in rows if r.target in read]  # no window, no fill: nothing to do
        if not rows:
            return
        self._pending.append(rows)
        self._unconfirmed.append(rows)
        self._start_writer()

    def _start_writer(self) -> None:
        """One task sends the queued cache updates, in order; started when idle."""
        if self._writer is None:
            loop = asyncio.get_running_loop()
            self._writer = loop.create_task(self._drain(), name="history-cache-writer")

    async def _drain(self) -> None:
        cache = self.cache
        assert cache is not None
        done = True
        try:
            while self._pending or self._stale:
                ticks, self._pending = self._pending, []
                stale, self._stale = self._stale, set()
                self._dropping = stale  # reads of these skip the cache until dropped
                done = False
                try:
                    if ticks:
                        await cache.append([row for tick in ticks for row in tick])
                    if stale:
                        await cache.drop(sorted(stale))
                        self._forget(stale)
                except Exception:
                    log.exception("history cache update failed")
                    cache.invalidate("a cache update failed")
                self._dropping = set()
                for _ in ticks:  # sent in order: theirs are the oldest unconfirmed
                    self._unconfirmed.popleft()
                done = True
        finally:
            if self._pending or self._stale or not done:  # cancelled: updates never sent
                self._pending = []
                self._stale, self._dropping = set(), set()
                self._unconfirmed.clear()
                cache.invalidate("cache updates were abandoned")
            self._writer = None

    def _forget(self, dropped: set[str]) -> None:
        """Channels just dropped need no cache writes until read again: no window, and
        no fill unless a read is under way. Else every channel ever read stays in
        ``targets_read`` for the generation: a churner's, millions a day."""
        assert self.cache is not None
        read = self.cache.targets_read
        for target in dropped:
            if target not in self._reading:
                read.discard(target)

    async def flush(self) -> None:
        """Wait until every row passed to ``committed`` reached the cache (or was
        given up on, which drops the cache's generation)."""
        while self._writer is not None:
            await asyncio.wait({self._writer})

    async def close(self) -> None:
        if self.cache is not None:
            if self._writer is not None:
                try:
                    await asyncio.wait_for(self.flush(), max(1.0, 4 * self.cache.timeout))
                except TimeoutError:
                    writer = self._writer
                    if writer is not None:
                        writer.cancel()
                        await asyncio.wait({writer})
            await self.cache.close()
        self._executor.shutdown(wait=True)
        self._searcher.shutdown(wait=True)


def _unless_gone(fn: Callable[..., T], wanted: Wanted | None) -> Callable[..., T]:
    """``fn``, asking ``wanted`` first on the thread that runs it: a read queued behind
    others (a backlog of join playbacks) is skipped if its client went meanwhile."""
    if wanted is None:
        return fn

    def run(*args: object) -> T:
        if not wanted():
            raise ReadSkipped
        return fn(*args)

    return run


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _with_unconfirmed(
    rows: Sequence[StoredMessage], complete: bool, unconfirmed: list[StoredMessage]
) -> tuple[Sequence[StoredMessage], bool] | None:
    """A cached window plus the newer committed rows it may not show yet (None: a gap).

    ``rows`` may be shared with later hits (the cache keeps them): never modified.
    """
    if not unconfirmed:
        return rows, complete
    last = rows[-1].seq if rows else None
    newer = [r for r in unconfirmed if last is None or r.seq > last]
    if not newer:
        return rows, complete
    if last is not None and newer[0].seq != last + 1:
        return None
    return [*rows, *newer], complete


def build_history(config: ServerConfig) -> HistoryService | None:
    """The service from the config: None when history is off (empty ``db``)."""
    if not config.db:
        return None
    from .stores import open_store

    store = open_store(config.db)  # a path: SQLite; postgresql://...: PostgreSQL
    cache = RedisHistoryCache.from_config(config) if config.redis else None
    return HistoryService(store, cache)
