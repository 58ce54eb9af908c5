"""Circuit breaker for the Redis history cache: closed -> open -> half-open -> closed.

* closed: every call goes through; ``failures`` consecutive failures (errors or
  timeouts) open the breaker.
* open: no call goes through (callers go straight to the store, nobody waits on a
  Redis timeout) until ``cooldown`` seconds have passed on the injected clock.
* half-open: exactly one call (the probe) goes through; its success closes the
  breaker, its failure opens it again for another cool-down.

The breaker owns no timer and never sleeps: time only moves when the clock says so,
which keeps tests deterministic. Each state change is logged once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half-open"]

log = logging.getLogger("chat.server.history")


class CircuitBreaker:
    def __init__(
        self,
        failures: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
        name: str = "Redis history cache",
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        if cooldown < 0:
            raise ValueError("cooldown must not be negative")
        self.threshold = failures
        self.cooldown = cooldown
        self.name = name
        self._clock = clock
        self._state: State = "closed"
        self.consecutive_failures = 0
        self.opened_at = 0.0
        self.changes = 0  # number of state changes so far
        self._probing = False  # half-open: the one probe is in flight

    @property
    def state(self) -> State:
        return self._state

    def allow(self) -> bool:
        """Whether a call may go to Redis now. A True in half-open makes it the probe."""
        if self.state == "closed":
            return True
        if self.state == "open":
            if self._clock() - self.opened_at < self.cooldown:
                return False
            self._change("half-open", "cool-down over, probing Redis")
            self._probing = True
            return True
        if self._probing:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        self.consecutive_failures = 0
        if self.state == "half-open":
            self._probing = False
            self._change("closed", "Redis answers again")
        # open: a call admitted before the breaker opened came back late; only a
        # probe closes the breaker.

    def failure(self) -> None:
        if self.state == "closed":
            self.consecutive_failures += 1
            if self.consecutive_failures >= self.threshold:
                self._open(f"{self.consecutive_failures} consecutive failures")
        elif self.state == "half-open":
            self._probing = False
            self._open("the probe failed")
        # open: a late failure of a call admitted earlier changes nothing.

    def release(self) -> None:
        """A permitted call ended with no outcome (it was cancelled): free the probe slot."""
        if self.state == "half-open":
            self._probing = False

    def _open(self, why: str) -> None:
        self.opened_at = self._clock()
        self.consecutive_failures = 0
        self._change(
            "open", f"{why}; history is served from the store for {self.cooldown:g}s"
        )

    def _change(self, state: State, why: str) -> None:
        self._state = state
        self.changes += 1
        level = logging.WARNING if state == "open" else logging.INFO
        log.log(level, "%s circuit breaker %s: %s", self.name, state, why)
