"""A K-/D-line that would match (nearly) every user connected is refused, whatever its
mask looks like: hosts are cloaks, so '*@*.ip' bans everyone (InspIRCd's "insane"
check). Over real TCP, every backend, with cloaking on as in production."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from server.config import ServerConfig
from tests.conftest import OPER_NAME, RunningServer, serving
from tests.ircclient import IRCTestClient
from tests.server.test_oper import ask, oper_up


@pytest.fixture
async def cloaking(backend: str, oper_hash: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A server that cloaks hosts (the suite's default turns cloaks off) and lets the
    test's connections in as fast as it opens them."""
    config = replace(
        ServerConfig(name="test.server", network="TestNet", opers={OPER_NAME: oper_hash}),
        cloak_key="k1", db="", ban_file=str(tmp_path / "bans.json"), max_per_host=0,
        throttle_burst=0, flood_burst=0, target_limit=0,
    )
    async with serving(config, backend, suite_defaults=False) as running:
        yield running


async def users(server: RunningServer, *nicks: str) -> list[IRCTestClient]:
    return [await server.client(nick) for nick in nicks]


async def still_here(clients: list[IRCTestClient]) -> None:
    for c in clients:
        assert [m.command for m in await ask(c, "PING here")] == ["PONG"]


@pytest.mark.parametrize(
    ("line", "refusal"),
    [
        ("KLINE 1h *@*.ip :every cloak", "Not a valid K-Line: *@*.ip matches everyone"),
        ("KLINE MYSELF *@*.IP :x", "Not a valid K-Line: *@*.IP matches everyone"),
        ("KLINE ~*@*.*.*.ip", "Not a valid K-Line: ~*@*.*.*.ip matches everyone"),
        ("KLINE MYSELF *@127.0.0.0/24", "Not a valid K-Line: *@127.0.0.0/24 matches everyone"),
        ("DLINE MYSELF 127.0.0.1 :x", "Not a valid D-Line: 127.0.0.1 matches everyone"),
    ],
)
async def test_a_ban_matching_every_user_is_refused(
    cloaking: RunningServer, line: str, refusal: str
) -> None:
    root, *others = await users(cloaking, "root", "alice", "bob", "carol")
    await oper_up(root)
    assert [m.params[-1] for m in await ask(root, line)] == [refusal]
    stats = await ask(root, "STATS " + line[0].lower())
    assert [m.command for m in stats] == ["219"]  # nothing was banned
    await still_here([root, *others])


async def test_connections_still_registering_do_not_dilute_the_share(
    cloaking: RunningServer,
) -> None:
    root, *others = await users(cloaking, "root", "alice", "bob")
    for _ in range(5):  # K-lines match them only once they send USER: not "users" yet
        cloaking.clients.append(await IRCTestClient.open(cloaking.port))
    await oper_up(root)
    texts = [m.params[-1] for m in await ask(root, "KLINE MYSELF *@*.ip :x")]
    assert texts == ["Not a valid K-Line: *@*.ip matches everyone"]
    await still_here([root, *others])


async def test_a_mask_matching_one_user_of_several_is_set(cloaking: RunningServer) -> None:
    root, spam, *others = await users(cloaking, "root", "spam", "alice", "bob")
    await oper_up(root)
    texts = [m.params[-1] for m in await ask(root, "KLINE spam@*.ip :x")]
    assert texts == ["Added K-Line [spam@*.ip] (x), 1 disconnected"]
    assert [m.command for m in await spam.wait_closed()] == ["465", "ERROR"]
    await still_here([root, *others])


async def test_a_mask_sparing_only_the_operator_is_set(cloaking: RunningServer) -> None:
    """Two of three matched is no "everyone": the setter is one of the users counted."""
    root, *spam = await users(cloaking, "root", "spam1", "spam2")
    await oper_up(root)
    texts = [m.params[-1] for m in await ask(root, "KLINE spam*@*.ip :x")]
    assert texts == ["Added K-Line [spam*@*.ip] (x), 2 disconnected"]
    for c in spam:
        assert [m.command for m in await c.wait_closed()] == ["465", "ERROR"]
    await still_here([root])
