"""Messages a failed group commit left: kept in memory, in order, and stored with the
next commit that succeeds (a full disk, a locked or unreachable database), so a store
that fails for a while loses nothing that reached anyone unless the process dies too.

While messages wait here the core refuses new ones that would be stored (FAIL), so
what clients have received and the store has not is bounded by the ticks in which
the store began failing.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from .model import NewMessage

log = logging.getLogger("chat.server.history")

MAX_UNSTORED = 50_000  # messages kept (tens of MB at most); beyond, the oldest go
WARN_EVERY = 60.0  # seconds between "still failing" lines while the store fails


def transient(exc: BaseException) -> bool:
    """A failure the store may get over (full disk, lock, I/O, a lost connection),
    not one the same rows would meet again (a bug, a constraint): DB-API 2 drivers
    name the first kind OperationalError (sqlite3, psycopg)."""
    return isinstance(exc, (sqlite3.OperationalError, OSError)) or any(
        cls.__name__ == "OperationalError" for cls in type(exc).__mro__
    )


class Backlog:
    """The messages waiting for the store, oldest first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.messages: list[NewMessage] = []
        self.dropped = 0  # over MAX_UNSTORED since the store began failing
        self._clock = clock
        self._since = 0.0
        self._warned = 0.0

    def __len__(self) -> int:
        return len(self.messages)

    def batch(self, new: list[NewMessage]) -> list[NewMessage]:
        """What the next commit writes: the waiting messages, then ``new``."""
        return [*self.messages, *new] if self.messages else new  # (no copy per tick)

    def failed(self, batch: list[NewMessage], exc: BaseException) -> None:
        """The commit of ``batch`` failed: keep it for the next one (if the store may
        get over it), and say so in the log, with the error once, then once a minute."""
        now = self._clock()
        first = not self.messages
        if not transient(exc):
            log.error("history commit of %d messages failed; they are not stored",
                      len(batch), exc_info=exc)
            self.messages = []
            return
        self.messages = batch
        if len(batch) > MAX_UNSTORED:
            over = len(batch) - MAX_UNSTORED
            self.dropped += over
            del self.messages[:over]
        if first:
            self._since = self._warned = now
            log.error("history commit of %d messages failed: kept to store when it can, "
                      "and messages to store are refused meanwhile", len(batch), exc_info=exc)
        elif now - self._warned >= WARN_EVERY:
            self._warned = now
            log.warning("history store failing for %.0f s (%s): %d messages waiting%s",
                        now - self._since, exc, len(self.messages),
                        f", {self.dropped} oldest dropped" if self.dropped else "")

    def stored(self) -> None:
        """A commit succeeded: what waited is in the store now."""
        if not self.messages:
            return
        log.warning("history store writable again after %.0f s: stored the %d messages "
                    "that waited%s", self._clock() - self._since, len(self.messages),
                    f" ({self.dropped} oldest were dropped)" if self.dropped else "")
        self.messages = []
        self.dropped = 0
