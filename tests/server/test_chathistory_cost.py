"""CHATHISTORY pays from the host's scan budget, up front, by the rows a read may walk
(hostile round 5, findings 1 and 2): ``walk_limit`` of its limit (two walks for
AROUND), TARGETS ``TARGETS_WALK`` per joined channel. Past the budget the read is
refused with the spec's ``FAIL CHATHISTORY MESSAGE_ERROR``; operators are not counted.
Real TCP, every backend, real SQLite history, the budget earned back at one row every
100 s (so a slow machine changes nothing)."""

from __future__ import annotations

from pathlib import Path

from server.config import ServerConfig
from server.history.query import TARGETS_WALK, walk_limit
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer
from tests.ircclient import IRCTestClient
from tests.server.test_abuse_limits import product_config, started, stop

CAPS = ["batch", "server-time", "message-tags", "draft/chathistory"]
READ = walk_limit(100)  # what one read of 100 messages is charged (10,000 rows)


def config(tmp_path: Path, burst: int, **overrides: object) -> ServerConfig:
    return product_config(scan_burst=burst, scan_rate=0.01, flood_burst=0, max_per_host=0,
                          db=str(tmp_path / "chat.db"), **overrides)


async def answered(client: IRCTestClient, line: str) -> bool:
    """Send one CHATHISTORY: True when a batch answers it, False when it is refused
    for the budget (FAIL CHATHISTORY MESSAGE_ERROR <subcommand> <target or *>)."""
    await client.send(line)
    reply = (await client.collect_until("BATCH", "FAIL"))[-1]
    if reply.command == "BATCH":
        await client.expect("BATCH")  # its end
        return True
    _, sub, target, *_ = line.split()
    assert reply.params[:4] == [
        "CHATHISTORY", "MESSAGE_ERROR", sub, "*" if sub == "TARGETS" else target], reply
    return False


async def speaker(server: RunningServer, channel: str) -> IRCTestClient:
    client = await server.client("alice", CAPS)
    await client.join(channel)
    await client.send(f"PRIVMSG {channel} :hello there")
    await client.sync()
    return client


async def test_reads_are_charged_by_their_walk(backend: str, tmp_path: Path) -> None:
    server = await started(backend, config(tmp_path, 2 * READ))
    try:
        alice = await speaker(server, "#h")
        for _ in range(2):
            assert await answered(alice, "CHATHISTORY LATEST #h * 100")
        before = "CHATHISTORY BEFORE #h timestamp=2100-01-01T00:00:00.000Z 100"
        assert not await answered(alice, before)
        # The budget is the host's: another connection of it is refused too, even for
        # one message (its walk is as long), and the refused one goes on being answered.
        bob = await server.client("bob", CAPS)
        assert not await answered(bob, "CHATHISTORY LATEST #h * 1")
        await alice.send("PING :still")
        assert (await alice.expect("PONG")).params[-1] == "still"
    finally:
        await stop(server)


async def test_around_pays_for_its_two_walks(backend: str, tmp_path: Path) -> None:
    # LATEST, then AROUND (two walks of 10,000 rows) use up three reads' worth.
    server = await started(backend, config(tmp_path, 3 * READ))
    try:
        alice = await speaker(server, "#h")
        assert await answered(alice, "CHATHISTORY LATEST #h * 100")
        around = "CHATHISTORY AROUND #h timestamp=2000-01-01T00:00:00.000Z 100"
        assert await answered(alice, around)
        assert not await answered(alice, "CHATHISTORY LATEST #h * 100")
    finally:
        await stop(server)


async def test_a_read_is_charged_no_more_than_a_channel_keeps(
    backend: str, tmp_path: Path
) -> None:
    # With history_max_rows 1,000 a read walks at most that: ten of them fit.
    server = await started(backend, config(tmp_path, 10 * 1_000, history_max_rows=1_000))
    try:
        alice = await speaker(server, "#h")
        for _ in range(10):
            assert await answered(alice, "CHATHISTORY LATEST #h * 100")
        assert not await answered(alice, "CHATHISTORY LATEST #h * 100")
    finally:
        await stop(server)


async def test_targets_is_charged_per_channel(backend: str, tmp_path: Path) -> None:
    channels = ["#a", "#b", "#c"]
    server = await started(backend, config(tmp_path, 2 * len(channels) * TARGETS_WALK))
    try:
        alice = await speaker(server, "#a")
        for name in channels[1:]:
            await alice.join(name)
        await alice.sync()
        targets = ("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z "
                   "timestamp=2100-01-01T00:00:00.000Z 10")
        for _ in range(2):
            assert await answered(alice, targets)
        assert not await answered(alice, targets)
        # In no channel, TARGETS walks none and is always answered.
        bob = await server.client("bob", CAPS)
        assert await answered(bob, targets)
    finally:
        await stop(server)


async def test_operators_are_not_counted(backend: str, tmp_path: Path, oper_hash: str) -> None:
    server = await started(backend, config(tmp_path, READ, opers={OPER_NAME: oper_hash}))
    try:
        alice = await speaker(server, "#h")
        assert await answered(alice, "CHATHISTORY LATEST #h * 100")
        assert not await answered(alice, "CHATHISTORY LATEST #h * 100")
        await alice.send(f"OPER {OPER_NAME} :{OPER_PASSWORD}")
        await alice.expect("381")
        for _ in range(3):
            assert await answered(alice, "CHATHISTORY LATEST #h * 100")
    finally:
        await stop(server)
