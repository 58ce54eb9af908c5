"""Per-connection flood control: a token bucket with fakelag and a hard limit."""

from __future__ import annotations

from collections import deque


class FloodGate:
    """Lines within the burst pass at once; later ones wait for tokens (fakelag).

    More than ``max_queue`` waiting lines means the client keeps flooding: the
    caller disconnects it (``ERROR :Excess Flood``).
    """

    __slots__ = ("burst", "queue", "rate", "tokens", "updated")

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self.burst = float(burst)
        self.rate = rate
        self.tokens = float(burst)
        self.updated = now
        self.queue: deque[bytes] = deque()

    def _refill(self, now: float) -> None:
        elapsed = now - self.updated
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.updated = now

    def admit(self, line: bytes, now: float) -> bool:
        """True: handle ``line`` now. False: it was queued behind the fakelag."""
        if not self.queue:
            self._refill(now)
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
        self.queue.append(line)
        return False

    def release(self, now: float) -> list[bytes]:
        """Queued lines whose turn has come."""
        if not self.queue:
            return []
        # Uncapped while lines wait, so a coarse timer still releases ``rate`` per second.
        elapsed = now - self.updated
        if elapsed > 0:
            self.tokens += elapsed * self.rate
            self.updated = now
        out = []
        while self.queue and self.tokens >= 1.0:
            self.tokens -= 1.0
            out.append(self.queue.popleft())
        self.tokens = min(self.tokens, self.burst)
        return out
