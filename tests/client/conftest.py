"""Fixtures for the client tests that run real clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer, start_server, suite_config

from .netutil import ChatClient


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """Our server, on asyncio: these tests are about the client, not the backends."""
    running = start_server(suite_config(), "asyncio", db=str(tmp_path / "history.db"))
    try:
        yield running
    finally:
        running.handle.stop()


@pytest.fixture
async def clients() -> AsyncIterator[list[ChatClient]]:
    """Clients a test starts (append them); stopped at the end."""
    started: list[ChatClient] = []
    try:
        yield started
    finally:
        for c in started:
            await c.stop()
