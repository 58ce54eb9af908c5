"""WHOWAS: the nicks that were recently in use, newest first, in bounded memory."""

from __future__ import annotations

from collections import deque
from typing import NamedTuple


class WhowasEntry(NamedTuple):
    """Who held a nick, as WHOIS showed them, and when they let it go (Unix time)."""

    nick: str
    user: str
    host: str  # the host other users saw: cloaked when cloaking is on
    realname: str
    left_at: float


class WhowasLog:
    """The last ``capacity`` nicks given up (by QUIT or NICK), oldest forgotten first.

    Every QUIT records, so recording is one append of a plain tuple to a bounded
    deque (~0.1 µs; a per-nick index cost 0.8 µs, 1 % of a registration's server
    CPU). WHOWAS is rare, so a lookup scans the log: 256 entries by default.
    """

    def __init__(self, capacity: int) -> None:
        self._log: deque[tuple[str, str, str, str, str, float]] = deque(maxlen=max(capacity, 0))

    @property
    def capacity(self) -> int:
        return self._log.maxlen or 0

    def __len__(self) -> int:
        return len(self._log)

    def record(
        self, folded: str, nick: str, user: str, host: str, realname: str, left_at: float
    ) -> None:
        self._log.append((folded, nick, user, host, realname, left_at))

    def lookup(self, folded: str, count: int = 0) -> list[WhowasEntry]:
        """Entries for ``folded``, newest first; at most ``count`` if it is positive."""
        found: list[WhowasEntry] = []
        for item in reversed(self._log):
            if item[0] == folded:
                found.append(WhowasEntry(*item[1:]))
                if len(found) == count:
                    break
        return found

    def resize(self, capacity: int) -> None:
        """A new capacity (REHASH): keeps the newest entries that fit."""
        self._log = deque(self._log, maxlen=max(capacity, 0))
