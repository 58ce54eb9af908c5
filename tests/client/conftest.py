"""Fixtures for the client tests that run real clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer, start_server, suite_config

from .netutil import ChatClient, Ircd


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


@pytest.fixture
async def ircd(clients: list[ChatClient]) -> AsyncIterator[Ircd]:
    """A scripted server (netutil.Ircd) listening on ``ircd.port``; stopped at the end."""
    scripted = Ircd()
    await scripted.start()
    try:
        yield scripted
    finally:
        # Its clients go first: from Python 3.12 on, closing a server waits for its
        # connections, and the clients fixture would only stop them afterwards.
        for c in clients:
            await c.stop()
        await scripted.stop()


@pytest.fixture
async def alice(ircd: Ircd, clients: list[ChatClient]) -> ChatClient:
    """A client, alice, registered on the scripted ``ircd`` (which welcomes her)."""
    client = ChatClient.start(ircd.port, "alice")
    clients.append(client)
    await client.wait(lambda: client.session.registered, "registration")
    return client
