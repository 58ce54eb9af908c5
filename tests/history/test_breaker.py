"""Circuit breaker state logic on an injected clock: no sleeps, no Redis."""

from __future__ import annotations

import logging

import pytest

from server.history.breaker import CircuitBreaker
from tests.history.conftest import FakeClock

LOGGER = "chat.server.history"


def breaker_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_starts_closed_and_lets_calls_through() -> None:
    b = CircuitBreaker(3, 5.0, FakeClock())
    assert b.state == "closed"
    assert all(b.allow() for _ in range(10))


def test_opens_after_n_consecutive_failures_only() -> None:
    b = CircuitBreaker(3, 5.0, FakeClock())
    b.failure()
    b.failure()
    b.success()  # resets the count: failures must be consecutive
    b.failure()
    b.failure()
    assert b.state == "closed"
    assert b.allow()
    b.failure()
    assert b.state == "open"
    assert not b.allow()


def test_open_refuses_until_cooldown_then_allows_exactly_one_probe() -> None:
    clock = FakeClock()
    b = CircuitBreaker(1, 5.0, clock)
    b.failure()
    assert b.state == "open"
    clock.advance(4.999)
    assert not b.allow()
    assert b.state == "open"
    clock.advance(0.001)
    assert b.allow()  # the probe
    assert b.state == "half-open"
    assert not b.allow()  # only one probe at a time
    assert not b.allow()
    b.success()
    assert b.state == "closed"
    assert b.allow() and b.allow()


def test_failed_probe_reopens_for_another_full_cooldown() -> None:
    clock = FakeClock()
    b = CircuitBreaker(2, 5.0, clock)
    b.failure()
    b.failure()
    clock.advance(5)
    assert b.allow()
    b.failure()
    assert b.state == "open"
    clock.advance(4.9)
    assert not b.allow()
    clock.advance(0.1)
    assert b.allow()
    assert b.state == "half-open"


def test_cancelled_probe_frees_the_probe_slot() -> None:
    clock = FakeClock()
    b = CircuitBreaker(1, 1.0, clock)
    b.failure()
    clock.advance(1)
    assert b.allow()
    assert not b.allow()
    b.release()  # the probe was cancelled: neither success nor failure
    assert b.state == "half-open"
    assert b.allow()
    b.success()
    assert b.state == "closed"


def test_late_outcomes_of_calls_admitted_before_opening_do_not_flip_state() -> None:
    clock = FakeClock()
    b = CircuitBreaker(1, 5.0, clock)
    b.failure()
    b.success()  # a call admitted while closed returns late: only a probe closes
    assert b.state == "open"
    b.failure()  # and a late failure does not restart the cool-down
    clock.advance(5)
    assert b.allow()


def test_each_state_change_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    clock = FakeClock()
    b = CircuitBreaker(2, 5.0, clock)
    for _ in range(2):
        assert b.allow()
        b.failure()
    for _ in range(100):  # requests while open: no log per request
        assert not b.allow()
    clock.advance(5)
    assert b.allow()
    for _ in range(100):
        assert not b.allow()
    b.failure()
    clock.advance(5)
    assert b.allow()
    b.success()
    for _ in range(100):
        assert b.allow()
        b.success()
    logs = breaker_logs(caplog)
    states = [m.split("circuit breaker ")[1].split(":")[0] for m in logs]
    assert states == ["open", "half-open", "open", "half-open", "closed"]
    assert b.changes == 5
    levels = [r.levelno for r in caplog.records if r.name == LOGGER]
    assert levels[0] == logging.WARNING


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(0, 1.0)
    with pytest.raises(ValueError):
        CircuitBreaker(1, -1.0)
