"""A handler's failure (a bug of ours a client can reach at will) is logged with its
traceback twenty times a minute per command, then counted in one summary line: a line
the client repeats must not become a log flood. The client is served as before."""

from __future__ import annotations

import logging

import pytest

from chat.message import Message
from server.core import ServerCore
from server.core.state import Client
from tests.server.test_pending_answers_unit import make_core
from tests.server.test_playback_order_unit import register, written

FAILURES_LOGGED = 20  # (server.core.core.FAILURES_LOGGED)


def failing(core: ServerCore, client: Client, msg: Message) -> None:
    core.notice(client, f"half done {msg.params[0]}")
    raise RuntimeError("a bug")


def tracebacks(caplog: pytest.LogCaptureFixture, command: str) -> int:
    return sum(1 for r in caplog.records
               if r.getMessage() == f"handler for {command} failed" and r.exc_info)


def test_handler_failures_are_logged_twenty_a_minute_then_summed_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [1_800_000_000.0]
    core = make_core(clock=lambda: now[0])
    core.commands = {**core.commands, "TIME": (failing, 1), "INFO": (failing, 1)}
    register(core, 1, "ann")
    written(core, 1)
    caplog.set_level(logging.INFO, logger="chat.server.core")

    core.data_received(1, b"".join(b"TIME %d\r\n" % n for n in range(FAILURES_LOGGED + 5)))
    core.data_received(1, b"INFO x\r\nPING after\r\n")
    out = written(core, 1)
    # Each line still gets what the handler wrote before failing, and the next is served.
    assert sum("half done" in line for line in out) == FAILURES_LOGGED + 6
    assert out[-1].endswith("PONG test.server after")
    assert tracebacks(caplog, "TIME") == FAILURES_LOGGED
    assert tracebacks(caplog, "INFO") == 1  # another command's bug is not hidden

    now[0] += 61
    core.tick()
    summaries = [r.getMessage() for r in caplog.records if "more failures" in r.getMessage()]
    assert summaries == ["5 more failures of the handler for TIME in that minute (not logged)"]
    core.data_received(1, b"TIME again\r\n")
    assert tracebacks(caplog, "TIME") == FAILURES_LOGGED + 1  # a new minute
