"""KILL and NickServ GHOST/REGAIN of a user connected to another node (real Redis)."""

from __future__ import annotations

import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_cluster import connect
from tests.conftest import OPER_NAME, OPER_PASSWORD
from tests.net import eventually
from tests.server.helpers import ask, nickserv_says, only

PASSWORD = "sesame-open"


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


async def test_regain_takes_the_nick_from_a_ghost_on_the_other_node(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    lost = await connect(p1, "ivy")
    assert [m.command for m in await ask(lost, f"REGISTER * * {PASSWORD}")] == [
        "REGISTER", "900"]
    watcher = await connect(p1, "watcher")
    back = await connect(p2, "ivy_")

    async def logged_in() -> bool:  # the account reaches n2 through the shared store
        msgs = await ask(back, f"NS IDENTIFY ivy {PASSWORD}")
        return "You are now logged in as ivy" in nickserv_says(msgs)

    await eventually(logged_in)
    await back.send("NS REGAIN")
    assert (await back.expect("NOTICE", timeout=5)).params[-1] == "ivy has been ghosted"
    nick = await back.expect("NICK", timeout=5)
    assert nick.params == ["ivy"]
    last = await lost.wait_closed()
    kill = only(last, "KILL")[0]
    assert kill.source == "NickServ!NickServ@n2.chat.local"
    assert kill.params == ["ivy", "GHOST command used by ivy_"]

    async def n1_sees_ivy_on_n2() -> bool:
        await watcher.send("WHOIS ivy")
        lines = await watcher.collect_until("318")
        return any(m.command == "312" and m.params[2] == "n2.chat.local" for m in lines)

    await eventually(n1_sees_ivy_on_n2)
    for c in (watcher, back):
        await c.close()
