"""SAMODE: an IRC operator changes a channel's modes as its operators could, member or
not; over real TCP on every backend."""

from __future__ import annotations

import pytest

from server.config import ServerConfig
from tests.conftest import OPER_NAME, RunningServer, suite_config
from tests.server.helpers import ask, mask, only
from tests.server.test_oper import oper_up
from tests.server.test_snotices import snotices


@pytest.fixture
def server_config(oper_hash: str) -> ServerConfig:
    return suite_config(opers={OPER_NAME: oper_hash})


async def test_an_operator_restores_a_channel_without_operators(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    for c in (alice, bob):
        await c.join("#lost")
    await alice.send("PART #lost")  # the only operator leaves
    await bob.expect("PART")
    assert [m.command for m in await ask(bob, "MODE #lost +m")] == ["482"]

    root = await server.client("root")
    await oper_up(root)
    watcher = await server.client("watcher")
    await oper_up(watcher)
    await watcher.sync()
    # Not a member of #lost, not its operator: an IRC operator all the same.
    assert only(await ask(root, "SAMODE #lost +om bob"), "MODE") == []
    got = await bob.expect("MODE")
    assert got.source == mask(root) and got.params == ["#lost", "+om", "bob"]
    assert snotices(await watcher.sync()) == ["root used SAMODE: #lost +om bob"]
    # bob is the channel's operator now.
    assert [m.command for m in await ask(bob, "MODE #lost +s")] == ["MODE"]
    modes = await ask(bob, "MODE #lost")
    assert [set(m.params[2]) for m in modes if m.command == "324"] == [set("+mnst")]


async def test_only_operators_may(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.join("#c")
    mallory = await server.client("mallory")
    assert [m.command for m in await ask(mallory, "SAMODE #c +o mallory")] == ["481"]
    root = await server.client("root")
    await oper_up(root)
    assert [m.command for m in await ask(root, "SAMODE #nowhere +m")] == ["403"]
    assert [m.command for m in await ask(root, "SAMODE root +i")] == ["403"]
    assert [m.command for m in await ask(root, "SAMODE")] == ["461"]
    # Nothing changed, nothing to tell: no MODE, no notice.
    assert [m.command for m in await ask(root, "SAMODE #c +t")] == []  # set already
    assert "MODE" not in [m.command for m in await alice.sync()]
