"""Shared fixtures: one server per test on a free port, for every transport backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from server.config import ServerConfig
from server.transport.background import BackgroundServer
from tests.ircclient import IRCTestClient

BACKENDS = ["asyncio", "uvloop", "select"]


@dataclass
class RunningServer:
    backend: str
    config: ServerConfig
    port: int
    handle: BackgroundServer
    clients: list[IRCTestClient] = field(default_factory=list)

    async def client(self, nick: str | None = None, caps: list[str] | None = None) -> IRCTestClient:
        """A connected client; registered as ``nick`` when given."""
        c = await IRCTestClient.open(self.port)
        self.clients.append(c)
        if nick is not None:
            await c.register(nick, caps)
        return c


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop is not installed on this platform")
    return name


@pytest.fixture
def server_config() -> ServerConfig:
    """Override in a test module to change settings for its servers."""
    return ServerConfig(name="test.server", network="TestNet")


def start_server(config: ServerConfig, backend: str, db: str = "") -> RunningServer:
    """Start on a free port; ``db`` replaces the default history file (never the cwd's)."""
    if config.db == ServerConfig().db:
        config = replace(config, db=db)
    config = replace(config, host="127.0.0.1", port=0, backend=backend)
    handle = BackgroundServer(config, backend)
    port = handle.start()
    return RunningServer(backend, config, port, handle)


@pytest.fixture
async def server(
    backend: str, server_config: ServerConfig, tmp_path: Path
) -> AsyncIterator[RunningServer]:
    running = start_server(server_config, backend, db=str(tmp_path / "history.db"))
    try:
        yield running
    finally:
        for c in running.clients:
            await c.close()
        running.handle.stop()


ClientFactory = Callable[..., Awaitable[IRCTestClient]]


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    yield "asyncio"
