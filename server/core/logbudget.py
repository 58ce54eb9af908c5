"""A budget of log lines per minute for events a client can cause at will."""

from __future__ import annotations

import logging
from collections.abc import Callable


class LogBudget:
    """At most ``per_minute`` lines a minute to ``log``; those past it are counted and
    told in one line once the minute is over (``tick``, also called by ``allow``).
    A connect or handshake flood would otherwise write a line per attempt."""

    def __init__(
        self, log: logging.Logger, per_minute: int, summary: str, clock: Callable[[], float]
    ) -> None:
        self._log = log
        self._per_minute = per_minute
        self._summary = summary  # "%d more ... (not logged)"
        self._clock = clock
        self._window = clock()
        self._logged = 0
        self._quiet = 0  # events not logged in the current window

    def allow(self) -> bool:
        """Whether this event may be logged; counted either way."""
        self.tick()
        if self._logged >= self._per_minute:
            self._quiet += 1
            return False
        self._logged += 1
        return True

    def tick(self) -> None:
        """A minute over: the count of those not logged in it, and a new minute."""
        now = self._clock()
        if now - self._window < 60.0:
            return
        if self._quiet:
            self._log.info(self._summary, self._quiet)
        self._window, self._logged, self._quiet = now, 0, 0
