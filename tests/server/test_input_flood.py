"""Flood control of what a client sends: empty lines cost a token like any line."""

from __future__ import annotations

from dataclasses import replace

import pytest

from server.config import ServerConfig
from tests.conftest import RunningServer, start_server
from tests.ircclient import IRCTestClient


def product_config(**overrides: object) -> ServerConfig:
    """The product defaults (flood control on), with the suite's name and ``overrides``."""
    return replace(ServerConfig(name="test.server", network="TestNet", db=""), **overrides)


async def stop(server: RunningServer) -> None:
    for c in server.clients:
        await c.close()
    server.handle.stop()


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
async def test_a_stream_of_empty_lines_is_excess_flood(backend: str, ending: bytes) -> None:
    """100,000 empty lines: one registered client is cut for Excess Flood as any flooder
    (seen by a channel member), an unregistered one too (counted), and a bystander is
    answered meanwhile."""
    server = start_server(product_config(), backend, suite_defaults=False)
    try:
        flooder = await server.client("flooder")
        watcher = await server.client("watcher")
        bystander = await server.client("bystander")
        await flooder.join("#f")
        await watcher.join("#f")
        await flooder.send("PRIVMSG #f :a line or two with an empty one is fine")
        await flooder.send_raw(ending)
        assert (await watcher.expect("PRIVMSG")).params[1].startswith("a line or two")
        # The empty line cost a token, and nothing else: no answer.
        assert all(m.command == "JOIN" for m in await flooder.sync())

        await flooder.send_raw(ending * 100_000)
        await bystander.sync()
        await flooder.wait_closed()
        quit_msg = await watcher.expect("QUIT")
        assert quit_msg.source is not None and quit_msg.source.startswith("flooder!")
        assert quit_msg.params == ["Excess Flood"]

        unknown = await IRCTestClient.open(server.port)
        server.clients.append(unknown)
        await unknown.send_raw(ending * 100_000)
        await bystander.sync()
        await unknown.wait_closed()
        # (Its ERROR may be lost to the reset of a socket closed with unread input.)
        assert server.handle.server.core.stats.flood_disconnects == 2  # type: ignore[attr-defined]
    finally:
        await stop(server)
