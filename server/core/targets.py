"""Private-message spam control: how fast a client may start talking to new people."""

from __future__ import annotations


class TargetGate:
    """The nicks a client messaged (or was messaged by) lately cost nothing; each new
    one takes a token, ``limit`` at most, one back every ``refill`` seconds.

    A spambot that messages everyone it can see runs dry after ``limit`` nicks; a
    person talking to a few people, or answering whoever wrote to them, never does.
    """

    __slots__ = ("limit", "recent", "refill", "tokens", "updated")

    def __init__(self, limit: int, refill: float, now: float) -> None:
        self.limit = limit
        self.refill = refill
        self.tokens = float(limit)
        self.updated = now
        self.recent: dict[str, None] = {}  # folded nicks, oldest first

    def allow(self, folded: str, now: float) -> bool:
        """May the client message ``folded`` now? Remembers it when so."""
        if folded in self.recent:
            self.recent.pop(folded)
            self.recent[folded] = None  # most recent last
            return True
        elapsed = now - self.updated
        if elapsed > 0 and self.refill > 0:
            self.tokens = min(float(self.limit), self.tokens + elapsed / self.refill)
        self.updated = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        self.remember(folded)
        return True

    def remember(self, folded: str) -> None:
        """``folded`` is someone this client may answer freely (it wrote to them)."""
        self.recent.pop(folded, None)
        self.recent[folded] = None
        if len(self.recent) > self.limit:
            del self.recent[next(iter(self.recent))]
