"""WHOWAS: the nicks that were recently in use, newest first, in bounded memory."""

from __future__ import annotations

from collections import deque
from typing import NamedTuple


class WhowasEntry(NamedTuple):  # a tuple: one is made per QUIT, on the connect path
    """Who held a nick, as WHOIS showed them, and when they let it go (Unix time)."""

    nick: str
    user: str
    host: str  # the host other users saw: cloaked when cloaking is on
    realname: str
    left_at: float


class WhowasLog:
    """The last ``capacity`` nicks given up (by QUIT or NICK), oldest forgotten first.

    Several entries may share a nick; ``lookup`` is O(entries for that nick), so a
    WHOWAS costs the same however large the log is.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(capacity, 0)
        self._order: deque[str] = deque()  # folded nicks, in the order recorded
        self._by_nick: dict[str, deque[WhowasEntry]] = {}

    def __len__(self) -> int:
        return len(self._order)

    def record(self, folded: str, entry: WhowasEntry) -> None:
        if self.capacity == 0:
            return
        self._by_nick.setdefault(folded, deque()).append(entry)
        self._order.append(folded)
        self._trim()

    def lookup(self, folded: str, count: int = 0) -> list[WhowasEntry]:
        """Entries for ``folded``, newest first; at most ``count`` if it is positive."""
        entries = self._by_nick.get(folded)
        if not entries:
            return []
        newest_first = list(reversed(entries))
        return newest_first[:count] if count > 0 else newest_first

    def resize(self, capacity: int) -> None:
        """A new capacity (REHASH): forgets the oldest entries beyond it."""
        self.capacity = max(capacity, 0)
        self._trim()

    def _trim(self) -> None:
        while len(self._order) > self.capacity:
            folded = self._order.popleft()
            entries = self._by_nick[folded]
            entries.popleft()  # a nick's entries are recorded in the same order
            if not entries:
                del self._by_nick[folded]
