"""server.tasks.spawn: a background task's failure is logged when it ends."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from server.tasks import spawn

log = logging.getLogger("chat.test.tasks")


async def test_a_failed_task_is_logged_and_forgotten(caplog: pytest.LogCaptureFixture) -> None:
    tasks: set[asyncio.Task[Any]] = set()

    async def fails() -> None:
        raise AttributeError("'NoneType' object has no attribute 'writelines'")

    with caplog.at_level(logging.WARNING, logger="chat.test.tasks"):
        task = spawn(tasks, fails(), log)
        assert tasks == {task}
        await asyncio.wait({task})
        await asyncio.sleep(0)  # done callbacks run on the next loop turn
    assert tasks == set()
    (record,) = caplog.records
    assert "fails" in record.getMessage() and "writelines" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is AttributeError


async def test_finished_and_cancelled_tasks_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    tasks: set[asyncio.Task[Any]] = set()

    async def fine() -> int:
        return 1

    with caplog.at_level(logging.DEBUG, logger="chat.test.tasks"):
        done = spawn(tasks, fine(), log)
        hangs = spawn(tasks, asyncio.sleep(60), log)
        hangs.cancel()
        await asyncio.wait({done, hangs})
        await asyncio.sleep(0)
    assert done.result() == 1 and hangs.cancelled()
    assert tasks == set() and caplog.records == []
