"""Fixtures for the client tests that run real clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .netutil import ChatClient


@pytest.fixture
async def clients() -> AsyncIterator[list[ChatClient]]:
    """Clients a test starts (append them); stopped at the end."""
    started: list[ChatClient] = []
    try:
        yield started
    finally:
        for c in started:
            await c.stop()
