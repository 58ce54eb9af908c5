"""A K-/D-line matching the operator who sets it needs the MYSELF keyword (as on Ergo):
without it nothing is banned and nobody is disconnected. Over real TCP, every backend."""

from __future__ import annotations

import pytest

from server.config import ServerConfig
from tests.conftest import OPER_NAME, RunningServer, suite_config
from tests.server.test_oper import ask, oper_up


@pytest.fixture
def server_config(oper_hash: str) -> ServerConfig:
    return suite_config(opers={OPER_NAME: oper_hash})


@pytest.mark.parametrize(
    ("line", "again"),
    [
        ("DLINE 1m 127.0.0.1 :x", "/DLINE MYSELF 1m 127.0.0.1 :x"),
        ("DLINE 127.0.0.0/24", "/DLINE MYSELF 127.0.0.0/24"),
        ("KLINE 1m bob :x", "/KLINE MYSELF 1m bob :x"),  # bob's host is ours
        ("KLINE *@127.0.0.* :all", "/KLINE MYSELF *@127.0.0.* :all"),
        ("KLINE ~root@127.0.0.1", "/KLINE MYSELF ~root@127.0.0.1"),
    ],
)
async def test_a_ban_matching_the_operator_is_refused_without_myself(
    server: RunningServer, line: str, again: str
) -> None:
    root = await server.client("root")
    bob = await server.client("bob")
    await oper_up(root)
    msgs = await ask(root, line)
    assert [m.command for m in msgs] == ["NOTICE"]
    assert msgs[0].params[-1].endswith(f"matches you, and would disconnect everyone at your "
                                       f"address; to set it anyway: {again}")
    stats = await ask(root, "STATS " + line[0].lower())
    assert [m.command for m in stats] == ["219"]  # nothing was banned
    assert [m.command for m in await ask(bob, "PING here")] == ["PONG"]  # bob stays


@pytest.mark.parametrize(
    ("line", "mask"),
    [("DLINE MYSELF 1m 127.0.0.1 :x", "127.0.0.1"), ("kline myself bob :x", "*@127.0.0.1")],
)
async def test_myself_sets_it_and_the_operator_stays(
    server: RunningServer, line: str, mask: str
) -> None:
    root = await server.client("root")
    bob = await server.client("bob")
    await oper_up(root)
    texts = [m.params[-1] for m in await ask(root, line)]
    assert any(t.endswith(f"[{mask}] matches you") for t in texts)
    assert any(t.endswith("1 disconnected") for t in texts)
    assert [m.command for m in await bob.wait_closed()] == ["465", "ERROR"]
    assert [m.command for m in await ask(root, "PING here")] == ["PONG"]


async def test_a_ban_not_matching_the_operator_needs_no_keyword(server: RunningServer) -> None:
    root = await server.client("root")
    spam = await server.client("spam")
    await oper_up(root)
    texts = [m.params[-1] for m in await ask(root, "KLINE spam@127.0.0.1 :x")]
    assert texts == ["Added K-Line [spam@127.0.0.1] (x), 1 disconnected"]
    assert [m.command for m in await spam.wait_closed()] == ["465", "ERROR"]


async def test_myself_does_not_bypass_the_everyone_refusal(server: RunningServer) -> None:
    root = await server.client("root")
    await oper_up(root)
    msgs = await ask(root, "KLINE MYSELF *@* :everyone")
    assert [m.params[-1] for m in msgs] == ["Not a valid K-Line: *@* matches everyone"]


@pytest.mark.parametrize("line", ["KLINE MYSELF", "DLINE myself", "KLINE MYSELF :"])
async def test_myself_without_a_mask_is_461(server: RunningServer, line: str) -> None:
    root = await server.client("root")
    await oper_up(root)
    msgs = await ask(root, line)
    assert [(m.command, m.params[1:]) for m in msgs] == [
        ("461", [line.split()[0], "Not enough parameters"])
    ]
