"""Hostile round 4 (items 1, 9): MODE list queries and flag toggles, over real TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import RunningServer, start_server, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, only


async def started(backend: str, **overrides: object) -> RunningServer:
    return start_server(suite_config(**overrides), backend)


@pytest.fixture
async def stopping() -> AsyncIterator[list[RunningServer]]:
    """Servers a test starts itself, stopped after it."""
    servers: list[RunningServer] = []
    yield servers
    for server in servers:
        for c in server.clients:
            await c.close()
        server.handle.stop()


async def banned_channel(server: RunningServer, bans: int, width: int = 20) -> IRCTestClient:
    """``alice``, operator of #c, which holds ``bans`` +b masks of about ``width`` bytes."""
    alice = await server.client("alice")
    await alice.join("#c")
    masks = [f"n{i}{'x' * width}!*@*" for i in range(bans)]
    for i in range(0, bans, 4):
        await alice.send(f"MODE #c +bbbb {' '.join(masks[i:i + 4])}")
    await alice.sync()
    return alice


# ---------------------------------------------------------------------- lists (item 1)


async def test_a_list_is_sent_once_per_mode_command(server: RunningServer) -> None:
    await banned_channel(server, 3)
    outsider = await server.client("outsider")  # need not even be a member
    msgs = await ask(outsider, "MODE #c bbbbbbbbbb")
    assert [m.command for m in msgs] == ["367", "367", "367", "368"]
    msgs = await ask(outsider, "MODE #c bqbqbq")
    assert [m.command for m in msgs] == ["367", "367", "367", "368", "729"]


async def test_list_answers_past_the_sendq_cut_the_asker(
    backend: str, stopping: list[RunningServer]
) -> None:
    # 30 entries of ~150 bytes: one list passes a 4 KiB sendq. Ten queries in one read
    # would queue ten lists in one tick (the kernel takes them all on loopback, so the
    # transport's check after the flush never fires): the first is sent, then SendQ.
    server = await started(backend, sendq=4096)
    stopping.append(server)
    await banned_channel(server, 30, width=100)
    asker = await server.client("asker")
    await asker.send_raw(b"MODE #c b\r\n" * 10)
    tail = await asker.wait_closed()
    assert len(only(tail, "367")) == 30
    assert len(only(tail, "368")) == 1
    assert tail[-1].command == "ERROR"
    assert "SendQ exceeded" in tail[-1].params[0]


# ---------------------------------------------------------------------- flags (item 9)


async def test_flag_toggles_beyond_46_in_one_command_are_ignored(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.join("#t")
    watcher = await server.client("watcher")
    await watcher.join("#t")
    await alice.sync()
    await ask(alice, "MODE #t " + "+m-m" * 122)  # answered: relayed to the watcher first
    relayed = [m.params[1] for m in only(await watcher.sync(), "MODE")]
    letters = "".join(relayed).replace("+", "").replace("-", "")
    assert letters == "m" * 46  # as solanum's MAXMODES_SIMPLE, "+m-m" 23 times
    assert "".join(relayed) == "+m-m" * 23

