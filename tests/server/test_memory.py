"""When the server gives memory back (server/memory.py), with a clock we control."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from server.memory import MemoryReleaser, Release, malloc_trim, release
from tests.net import free_port, wait_listening


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def recording(calls: list[tuple[int, int]]) -> Callable[[int, int], Release]:
    """An action that records when it was asked to run (the decision is under test)."""

    def action(peak: int, connections: int) -> Release:
        calls.append((peak, connections))
        return Release(peak, connections, 0, None, None, None, 0.0)

    return action


def make(clock: Clock, calls: list[tuple[int, int]]) -> MemoryReleaser:
    return MemoryReleaser(interval=30.0, drop=0.5, min_drop=100, clock=clock,
                          action=recording(calls))


def test_releases_once_the_count_falls_to_half_of_its_peak() -> None:
    clock, calls = Clock(), list[tuple[int, int]]()
    m = make(clock, calls)
    for n in (0, 500, 2000, 1500, 1001):
        assert m.tick(n) is None
    assert m.peak == 2000
    assert m.tick(1000) is not None
    assert calls == [(2000, 1000)]
    assert m.peak == 1000  # a release starts a new peak


def test_small_drops_and_small_servers_never_release() -> None:
    clock, calls = Clock(), list[tuple[int, int]]()
    m = make(clock, calls)
    for n in (99, 0, 60, 0, 150, 60):  # a peak of 99; then 150 -> 60 is only 90 fewer
        assert m.tick(n) is None
        clock.now += 60.0
    assert calls == []
    assert m.tick(50) is not None  # 100 below the peak of 150, and under half of it


def test_at_most_one_release_per_interval() -> None:
    clock, calls = Clock(), list[tuple[int, int]]()
    m = make(clock, calls)
    m.tick(2000)
    assert m.tick(800) is not None
    clock.now = 10.0
    m.tick(2000)
    assert m.tick(0) is None  # due by count, but only 10 s after the last one
    clock.now = 29.0
    assert m.tick(0) is None
    clock.now = 30.0
    assert m.tick(0) is not None  # the deferred release happens once the interval is over
    assert calls == [(2000, 800), (2000, 0)]
    clock.now = 100.0
    assert m.tick(0) is None  # idle with no new peak: nothing more to do
    assert m.releases == 2


def test_a_new_peak_after_a_release_needs_its_own_drop() -> None:
    clock, calls = Clock(), list[tuple[int, int]]()
    m = make(clock, calls)
    m.tick(1000)
    m.tick(0)
    clock.now = 60.0
    m.tick(300)
    assert m.tick(200) is None  # 300 -> 200: not half
    assert m.tick(150) is not None
    assert calls == [(1000, 0), (300, 150)]


def test_the_real_release_collects_and_trims() -> None:
    cycle: list[object] = []
    cycle.append(cycle)  # garbage only the cycle collector finds
    del cycle
    done = release(7, 3)
    assert (done.peak, done.connections) == (7, 3)
    assert done.collected >= 1
    assert done.seconds >= 0.0
    if os.path.exists("/proc/self/statm"):
        assert done.rss_before_kib and done.rss_after_kib
    trimmed = malloc_trim()
    glibc = "CS_GNU_LIBC_VERSION" in os.confstr_names and bool(
        os.confstr("CS_GNU_LIBC_VERSION")
    )
    assert (trimmed is not None) == glibc


@pytest.mark.parametrize("backend", ["asyncio", "select"])
def test_the_server_process_freezes_its_start_up_objects(tmp_path: Path, backend: str) -> None:
    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server", "--port", str(port), "--db", "",
             "--backend", backend, "--log-level", "debug"],
            stdout=subprocess.DEVNULL, stderr=log,
        )
        try:
            wait_listening(port, proc)
            deadline = time.monotonic() + 15
            while "start-up objects" not in log_path.read_text():
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
    frozen = [line for line in log_path.read_text().splitlines() if "start-up objects" in line]
    assert len(frozen) == 1
    assert int(frozen[0].split("froze ")[1].split()[0]) > 10_000  # modules, classes, ...
