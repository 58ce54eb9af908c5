"""KILL of a user connected to another node (real Redis)."""

from __future__ import annotations

import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_cluster import connect, eventually
from tests.conftest import OPER_NAME, OPER_PASSWORD
from tests.server.helpers import only


@pytest.fixture
def opers(oper_hash: str) -> dict[str, str]:
    return {OPER_NAME: oper_hash}


async def test_kill_disconnects_a_user_on_the_other_node(
    cluster: Cluster, opers: dict[str, str]
) -> None:
    p1, p2 = cluster.start("n1", opers=opers), cluster.start("n2", opers=opers)
    alice = await connect(p1, "alice")
    dave = await connect(p1, "dave")
    bob = await connect(p2, "bob")
    carol = await connect(p2, "carol")
    for c in (dave, bob, carol):
        await c.join("#k")
    await dave.expect("JOIN", lambda m: (m.source or "").startswith("carol!"), timeout=5)
    await alice.send(f"OPER {OPER_NAME} :{OPER_PASSWORD}")
    await alice.expect("381")
    await alice.send("KILL bob :spamming")
    last = await bob.wait_closed()
    kill = only(last, "KILL")[0]
    assert kill.source and kill.source.startswith("alice!")
    assert kill.params == ["bob", "spamming"]
    # Both nodes' members see one QUIT with the reason.
    for peer in (carol, dave):
        got = await peer.expect("QUIT", timeout=5)
        assert got.source and got.source.startswith("bob!")
        assert got.params == ["Killed (alice (spamming))"]
    # Gone from the cluster: the nick is free on the killer's node (once bob's node
    # has released its claim in Redis).

    async def took_bob() -> bool:
        await dave.send("NICK bob")
        answer = await dave.collect_until("NICK", "433")
        return answer[-1].command == "NICK"

    await eventually(took_bob)
    for c in (alice, dave, carol):
        await c.close()
