"""Per-connection flood control: a token bucket with fakelag and a hard limit."""

from __future__ import annotations

from collections import deque


class FloodGate:
    """Lines within the burst pass at once; later ones wait for tokens (fakelag).

    A line costs one token, or less (``cost``: a draft/multiline batch's lines, which a
    client sends all at once). Waiting lines worth more than ``max_queue`` tokens mean
    the client keeps flooding: the caller disconnects it (``ERROR :Excess Flood``).
    """

    __slots__ = ("burst", "costs", "queue", "queued", "rate", "tokens", "updated")

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self.burst = float(burst)
        self.rate = rate
        self.tokens = float(burst)
        self.updated = now
        self.queue: deque[bytes] = deque()
        self.costs: deque[float] = deque()  # each waiting line's cost, in step with queue
        self.queued = 0.0  # the waiting lines' costs added up

    def _refill(self, now: float) -> None:
        elapsed = now - self.updated
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.updated = now

    def admit(self, line: bytes, now: float, cost: float = 1.0) -> bool:
        """True: handle ``line`` now. False: it was queued behind the fakelag."""
        if not self.queue:
            self._refill(now)
            if self.tokens >= cost:
                self.tokens -= cost
                return True
        self.queue.append(line)
        self.costs.append(cost)
        self.queued += cost
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
        while self.queue and self.tokens >= self.costs[0]:
            cost = self.costs.popleft()
            self.tokens -= cost
            self.queued -= cost
            out.append(self.queue.popleft())
        if not self.queue:
            self.queued = 0.0  # no float drift left behind
        self.tokens = min(self.tokens, self.burst)
        return out

    def clear(self) -> list[bytes]:
        """Every waiting line, now (an operator is exempt)."""
        lines = list(self.queue)
        self.queue.clear()
        self.costs.clear()
        self.queued = 0.0
        return lines
