"""A closed channel's end across cluster nodes: real Redis, one shared SQLite store.

The channel ends on every node when its last member anywhere leaves, and no node then
serves what was said in it (cached windows included). A node that stops while members
on another node keep the channel does not end it.
"""

from __future__ import annotations

from tests.cluster.conftest import Cluster
from tests.cluster.test_cluster import connect
from tests.ircclient import IRCTestClient

CAPS = ["message-tags", "echo-message", "batch", "server-time", "draft/chathistory"]


async def say(c: IRCTestClient, target: str, text: str) -> None:
    await c.send(f"PRIVMSG {target} :{text}")
    await c.expect("PRIVMSG", lambda m: m.params[-1] == text)


async def history(c: IRCTestClient, target: str) -> list[str]:
    await c.send(f"CHATHISTORY LATEST {target} * 20")
    lines = await c.collect_until("BATCH", timeout=5)
    lines += await c.collect_until("BATCH", timeout=5)
    return [m.params[1] for m in lines if m.command == "PRIVMSG" and "batch" in m.tags]


async def closed_channel(p1: int, p2: int) -> tuple[IRCTestClient, IRCTestClient]:
    """alice (n1) and bob (n2) in #priv +k, alice's secret said and in both nodes' windows."""
    alice = await connect(p1, "alice", CAPS)
    await alice.join("#priv")
    await alice.send("MODE #priv +k door")
    await alice.expect("MODE")
    bob = await connect(p2, "bob", CAPS)
    await bob.send("JOIN #priv door")
    await bob.expect("JOIN")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("bob!"))
    await say(alice, "#priv", "behind closed doors")
    await bob.expect("PRIVMSG")
    for c in (alice, bob):
        assert await history(c, "#priv") == ["behind closed doors"]  # cached on each node
    return alice, bob


async def test_a_closed_channel_that_ends_is_read_on_no_node(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice, bob = await closed_channel(p1, p2)
    await alice.send("PART #priv")
    await bob.expect("PART")
    await bob.send("PART #priv")
    await bob.expect("PART")
    for port, nick in ((p1, "mallory"), (p2, "trudy")):
        c = await connect(port, nick, CAPS)
        await c.join("#priv")  # the first makes it anew, open; the second joins it
        await c.sync()
        assert await history(c, "#priv") == [], nick
        await c.close()
    for c in (alice, bob):
        await c.close()


async def test_a_node_that_stops_does_not_end_a_channel_another_keeps(
    cluster: Cluster,
) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice, bob = await closed_channel(p1, p2)
    cluster.stop("n1")  # alice leaves with it; bob keeps #priv on n2
    await bob.expect("QUIT", lambda m: (m.source or "").startswith("alice!"), timeout=10)
    assert await history(bob, "#priv") == ["behind closed doors"]
    carol = await connect(p2, "carol", CAPS)
    await carol.send("JOIN #priv door")
    await carol.expect("JOIN")
    assert await history(carol, "#priv") == ["behind closed doors"]
    for c in (alice, bob, carol):
        await c.close()
