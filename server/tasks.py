"""Background tasks that report their own failure when they end.

A task nobody awaits that fails is otherwise reported by the garbage collector
("Task exception was never retrieved"), at whatever moment it collects the task:
in the middle of unrelated work, with the traceback formatted there. On CPython
3.11.7 that once landed inside an ``ast.parse`` and broke it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any


def spawn(
    tasks: set[asyncio.Task[Any]],
    coro: Coroutine[Any, Any, Any],
    log: logging.Logger,
    loop: asyncio.AbstractEventLoop | None = None,
) -> asyncio.Task[Any]:
    """Run ``coro`` as a task kept in ``tasks`` until it ends; log it if it fails."""
    task = (loop or asyncio.get_running_loop()).create_task(coro)
    tasks.add(task)

    def done(ended: asyncio.Task[Any]) -> None:
        tasks.discard(ended)
        if not ended.cancelled() and (exc := ended.exception()) is not None:
            log.warning("background task %s failed: %r", ended.get_coro(), exc, exc_info=exc)

    task.add_done_callback(done)
    return task
