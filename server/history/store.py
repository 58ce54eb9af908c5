"""The store-of-record interface; SQLite fills it today, PostgreSQL can later."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .model import NewMessage, Query, StoredMessage


class HistoryStore(Protocol):
    """Writes happen on the loop thread (one transaction per tick); reads on any thread."""

    reads: int  # number of query/window calls served, for cache-effectiveness tests

    def append(self, messages: Sequence[NewMessage]) -> list[StoredMessage]:
        """Store one tick's messages in one transaction; returns them numbered."""
        ...

    def query(self, q: Query) -> list[StoredMessage]: ...

    def window(self, target: str, size: int) -> list[StoredMessage]:
        """The newest ``size`` messages of ``target``, oldest first."""
        ...

    def targets(
        self, folded: Sequence[str], start_ms: int, end_ms: int, limit: int
    ) -> list[tuple[str, int]]:
        """(channel, newest time_ms) for targets with messages in the time range."""
        ...

    def prune(self, max_rows: int, max_age_ms: int, now_ms: int, budget: int) -> int:
        """Delete at most ``budget`` rows beyond the retention limits; returns how many."""
        ...

    def close(self) -> None: ...
