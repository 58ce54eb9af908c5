"""Give memory back to the operating system after a load peak.

A peak of connections leaves the process holding memory it no longer uses: cyclic
garbage waits for the next full collection, and glibc's malloc keeps freed chunks
for reuse instead of returning their pages. ``tick()`` is called by the transport
once a second with the connection count. When that count has fallen well below its
peak since the last release, it runs ``gc.collect()`` and then glibc's
``malloc_trim(0)``, which hands the free pages of every malloc arena back to the
kernel. It acts at most once per ``interval`` seconds, so the full collection (tens
of milliseconds with thousands of clients) cannot become a steady cost.

CPython's object allocator (pymalloc) returns a 1 MiB arena only once every object
in it is gone; no call can do more for those. Where glibc is absent (musl, macOS,
Windows) the trim is skipped and only the collection runs.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MemoryReleaser", "Release", "freeze_startup", "malloc_trim", "tick"]

log = logging.getLogger("chat.server.memory")

INTERVAL = 30.0  # seconds between two releases at least
DROP = 0.5  # act once the count is at most this fraction of the peak ...
MIN_DROP = 100  # ... and at least this many connections below it

_trim_fn: Callable[[int], int] | None = None
_trim_looked_up = False  # the lookup loads a library: done once, on first use


def _glibc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library is not glibc."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):  # "glibc 2.36"; musl has none
            return None
        fn = ctypes.CDLL(None).malloc_trim  # the process's own symbols: libc is loaded
    except (ValueError, OSError, AttributeError, TypeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    trim: Callable[[int], int] = fn
    return trim


def malloc_trim() -> bool | None:
    """``malloc_trim(0)``: True if glibc returned memory, None where there is no glibc."""
    global _trim_fn, _trim_looked_up
    if not _trim_looked_up:
        _trim_fn, _trim_looked_up = _glibc_malloc_trim(), True
    if _trim_fn is None:
        return None
    return bool(_trim_fn(0))


def _rss_kib() -> int | None:
    """Resident set size from /proc (Linux); None elsewhere."""
    try:
        with open("/proc/self/statm", "rb") as f:
            resident = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident * os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True, slots=True)
class Release:
    """What one release did: for the debug log and for tests."""

    peak: int  # connections at the peak since the previous release
    connections: int  # connections when it ran
    collected: int  # objects gc.collect() found unreachable
    trimmed: bool | None  # malloc_trim's answer; None without glibc
    rss_before_kib: int | None
    rss_after_kib: int | None
    seconds: float


def release(peak: int = 0, connections: int = 0) -> Release:
    """Collect garbage, then trim glibc's heaps (in that order: collecting frees chunks)."""
    t0 = time.perf_counter()
    before = _rss_kib()
    collected = gc.collect()
    trimmed = malloc_trim()
    return Release(
        peak, connections, collected, trimmed, before, _rss_kib(), time.perf_counter() - t0
    )


class MemoryReleaser:
    """Decides, once a second and in O(1), whether a release is due, and runs it.

    Due when the connection count is at most ``drop`` times the peak seen since the
    previous release and at least ``min_drop`` below it, and ``interval`` seconds
    have passed since the previous release. Each release starts a new peak.
    """

    def __init__(
        self,
        *,
        interval: float = INTERVAL,
        drop: float = DROP,
        min_drop: int = MIN_DROP,
        clock: Callable[[], float] = time.monotonic,
        action: Callable[[int, int], Release] = release,
    ) -> None:
        self.interval = interval
        self.drop = drop
        self.min_drop = min_drop
        self._clock = clock
        self._action = action
        self.peak = 0
        self.last: float | None = None  # clock of the previous release
        self.releases = 0

    def due(self, connections: int) -> bool:
        """Record ``connections`` and say whether memory should be released now."""
        if connections > self.peak:
            self.peak = connections
            return False
        if self.peak - connections < self.min_drop or connections > self.peak * self.drop:
            return False
        return self.last is None or self._clock() - self.last >= self.interval

    def tick(self, connections: int) -> Release | None:
        """Called once a second by the transport; releases memory when due."""
        if not self.due(connections):
            return None
        done = self._action(self.peak, connections)
        self.last = self._clock()
        self.peak = connections
        self.releases += 1
        log.debug(
            "memory: connections fell from %d to %d; gc collected %d objects, "
            "malloc_trim %s, RSS %s -> %s KiB in %.1f ms",
            done.peak, done.connections, done.collected,
            {True: "returned memory", False: "had nothing to return", None: "unavailable"}[
                done.trimmed
            ],
            done.rss_before_kib, done.rss_after_kib, done.seconds * 1000,
        )
        return done


# One per process: the heap it trims is the process's, whichever server ticks it.
_releaser = MemoryReleaser()


def tick(connections: int) -> None:
    """The transports' once-a-second hook: cheap unless a release is due."""
    _releaser.tick(connections)


def freeze_startup() -> int:
    """Hide what exists once the server listens from the cyclic GC (``gc.freeze``).

    Modules, classes, functions and the configuration live as long as the process,
    yet every full collection walked them again: about 35,000 objects, 7 of the 9 ms
    a full collection took with 2,000 clients connected (1.9 ms after). Reference
    counting still frees them if they go. Only for the real process: a test process
    that starts servers in-process must not freeze its own objects. Returns how
    many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("gc: froze %d start-up objects", frozen)
    return frozen
