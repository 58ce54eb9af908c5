"""History reads for the transports: cache-aside over the store, off the loop thread."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from .model import Query, StoredMessage
from .query import evaluate
from .store import HistoryStore

log = logging.getLogger("chat.server.history")


class HistoryService:
    """Async facade used by every backend (the select loop runs it on a thread)."""

    def __init__(self, store: HistoryStore, cache: object | None = None) -> None:
        self.store = store
        self.cache = cache
        # One reader thread: SQLite reads are short, and order is easier to reason about.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-read")

    async def _in_thread(self, fn: object, *args: object) -> object:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)  # type: ignore[arg-type]

    async def query(self, q: Query) -> list[StoredMessage]:
        window = await self.window(q.target)
        if window is not None:
            rows, complete = window
            answer = evaluate(rows, q, complete)
            if answer is not None:
                return answer
        result = await self._in_thread(self.store.query, q)
        assert isinstance(result, list)
        return result

    async def window(self, target: str) -> tuple[list[StoredMessage], bool] | None:
        """The cached recent window, when a cache is configured and healthy."""
        return None

    async def targets(
        self, folded: Sequence[str], start_ms: int, end_ms: int, limit: int
    ) -> list[tuple[str, int]]:
        result = await self._in_thread(self.store.targets, list(folded), start_ms, end_ms, limit)
        assert isinstance(result, list)
        return result

    def committed(self, stored: list[StoredMessage]) -> None:
        """Called on the loop thread right after a tick's messages were committed."""

    async def close(self) -> None:
        self._executor.shutdown(wait=True)
