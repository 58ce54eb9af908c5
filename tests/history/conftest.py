"""History fixtures: a real redis-server on a free port, real SQLite files, message helpers."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from chat.msgid import msgid_at
from server.history.breaker import CircuitBreaker
from server.history.cache import COMPLETE, RedisHistoryCache
from server.history.model import NO_REF, NewMessage, Query, Ref, StoredMessage
from server.history.sqlite_store import SQLiteStore
from tests.net import free_port

REDIS_SERVER = shutil.which("redis-server")


class RedisServer:
    """One redis-server process without persistence; restartable on the same port."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        assert self.proc is None, "already running"
        assert REDIS_SERVER is not None
        self.starts += 1
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.directory),
                "--enable-debug-command", "local",
                "--logfile", str(self.directory / f"redis-{self.starts}.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with self.admin() as r:
                    r.ping()
                return
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = (self.directory / f"redis-{self.starts}.log").read_text()
                    self.stop()
                    raise RuntimeError(f"redis-server did not start:\n{log}") from None
                time.sleep(0.01)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.kill()  # as abrupt as a crash; nothing is persisted anyway
        proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.proc is not None

    def admin(self) -> redis.Redis:
        """A synchronous client for the test itself (not the code under test)."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10)

    def flushall(self) -> None:
        with self.admin() as r:
            r.flushall()

    def pause(self, ms: int, mode: str = "ALL") -> None:
        """Make Redis unresponsive for ``ms`` (CLIENT PAUSE).

        ALL stalls every command of every client, new connections included, and
        cannot be ended early. WRITE stalls what may write, which includes every
        EVAL/EVALSHA (all the cache's calls), and ``unpause`` can end it.
        """
        with self.admin() as r:
            r.execute_command("CLIENT", "PAUSE", ms, mode)

    def unpause(self) -> None:
        with self.admin() as r:
            r.execute_command("CLIENT", "UNPAUSE")


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(str(tmp_path / "history.db"))
    try:
        yield s
    finally:
        s.close()


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


_ids = itertools.count(1)


def new_message(target: str, text: str = "", time_ms: int | None = None) -> NewMessage:
    n = next(_ids)
    time_ms = 1_700_000_000_000 + n * 1000 if time_ms is None else time_ms
    return NewMessage(
        target=target,
        msgid=msgid_at(time_ms, n),  # a row's msgid names its millisecond, as the core's
        time_ms=time_ms,
        source=f"nick{n % 5}!user@host",
        command="PRIVMSG",
        channel=target,
        text=text or f"message {n}",
    )


def append(store: SQLiteStore, target: str, count: int) -> list[StoredMessage]:
    """Commit ``count`` messages to ``target``, one transaction."""
    return store.append([new_message(target) for _ in range(count)])


def make_cache(
    server: RedisServer,
    clock: FakeClock | None = None,
    *,
    window: int = 5,
    failures: int = 3,
    cooldown: float = 5.0,
    timeout: float = 0.5,
) -> RedisHistoryCache:
    breaker = CircuitBreaker(failures, cooldown, clock if clock is not None else FakeClock())
    return RedisHistoryCache(server.url, window=window, timeout=timeout, breaker=breaker)


def cached_window(
    server: RedisServer, cache: RedisHistoryCache, target: str
) -> tuple[list[StoredMessage], bool] | None:
    """What Redis holds for ``target`` in the cache's current generation (None: no key)."""
    gen = cache.generation
    if gen is None:
        return None
    with server.admin() as r:
        elements = r.lrange(cache.window_key(gen, target), 0, -1)
    if not elements:
        return None
    complete = elements[0] == COMPLETE.encode()
    return [StoredMessage.from_json(e) for e in elements[int(complete) :]], complete


def assert_window_fresh(
    server: RedisServer, cache: RedisHistoryCache, target: str, store: SQLiteStore
) -> None:
    """A cached window, if any, is exactly the store's newest rows (never stale)."""
    got = cached_window(server, cache, target)
    if got is None:
        return
    rows, complete = got
    newest = store.window(target, cache.window_size)
    if complete:
        assert rows == newest
    else:
        assert rows == newest[len(newest) - len(rows) :]
        assert rows, "an incomplete window is never empty"


def sample_queries(rows: list[StoredMessage], target: str) -> list[Query]:
    """CHATHISTORY requests of every kind around the given rows (plus edge cases)."""
    qs = [Query("LATEST", target, NO_REF, n) for n in (0, 1, 3, 7, 50)]
    picks = rows[:: max(1, len(rows) // 5)] + rows[-2:]
    for r in picks:
        for ref in (Ref("msgid", r.msgid), Ref("timestamp", time_ms=r.time_ms)):
            for sub in ("LATEST", "BEFORE", "AFTER", "AROUND"):
                for limit in (1, 4, 30):
                    qs.append(Query(sub, target, ref, limit))  # type: ignore[arg-type]
        if rows:
            first, last = rows[0], rows[-1]
            qs += [
                Query("BETWEEN", target, Ref("msgid", first.msgid), 5, Ref("msgid", r.msgid)),
                Query("BETWEEN", target, Ref("msgid", r.msgid), 5, Ref("msgid", first.msgid)),
                Query("BETWEEN", target, Ref("timestamp", time_ms=last.time_ms + 1), 3,
                      Ref("msgid", r.msgid)),
            ]
    qs += [
        Query("BEFORE", target, Ref("msgid", "no-such-msgid"), 5),
        Query("AFTER", target, Ref("timestamp", time_ms=1), 5),
        Query("BEFORE", target, Ref("timestamp", time_ms=1), 5),
        Query("AFTER", target, Ref("timestamp", time_ms=2**62), 5),
    ]
    return qs
