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
    left_at: float  # whole seconds


class WhowasLog:
    """The last ``capacity`` nicks given up (by QUIT or NICK), oldest forgotten first.

    Every QUIT records, so recording is cheap (~0.25 µs): one string appended to a
    bounded deque. WHOWAS is rare, so a lookup scans the log: 256 entries by default.
    """

    def __init__(self, capacity: int) -> None:
        # One str per entry, made when the nick is given up. Entries that held on to
        # the client's own strings (made at registration, during a load peak) kept
        # pymalloc arenas of the peak alive afterwards: +1.4 MiB in the soak test.
        self._log: deque[str] = deque(maxlen=max(capacity, 0))

    @property
    def capacity(self) -> int:
        return self._log.maxlen or 0

    def __len__(self) -> int:
        return len(self._log)

    def record(
        self, folded: str, nick: str, user: str, host: str, realname: str, left_at: float
    ) -> None:
        # The realname goes last: it is the one field that might hold a NUL.
        self._log.append("\0".join((folded, nick, user, host, str(int(left_at)), realname)))

    def lookup(self, folded: str, count: int = 0) -> list[WhowasEntry]:
        """Entries for ``folded``, newest first; at most ``count`` if it is positive."""
        key = folded + "\0"
        found: list[WhowasEntry] = []
        for item in reversed(self._log):
            if item.startswith(key):
                _, nick, user, host, left_at, realname = item.split("\0", 5)
                found.append(WhowasEntry(nick, user, host, realname, float(left_at)))
                if len(found) == count:
                    break
        return found

    def resize(self, capacity: int) -> None:
        """A new capacity (REHASH): keeps the newest entries that fit."""
        self._log = deque(self._log, maxlen=max(capacity, 0))
