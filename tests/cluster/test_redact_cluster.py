"""REDACT across cluster nodes: real Redis, one shared SQLite store, two nodes.

The REDACT reaches members with the capability on the other node, and that node's
cached window of the conversation no longer serves the message.
"""

from __future__ import annotations

from tests.cluster.conftest import Cluster
from tests.cluster.test_cluster import connect, register_account
from tests.ircclient import IRCTestClient
from tests.net import eventually

CAP = "draft/message-redaction"
CAPS = ["message-tags", "echo-message", "batch", "server-time", "draft/chathistory", CAP]


async def say(c: IRCTestClient, target: str, text: str) -> str:
    await c.send(f"PRIVMSG {target} :{text}")
    return (await c.expect("PRIVMSG", lambda m: m.params[-1] == text)).tags["msgid"]


async def history(c: IRCTestClient, target: str) -> list[str]:
    await c.send(f"CHATHISTORY LATEST {target} * 20")
    lines = await c.collect_until("BATCH", timeout=5)
    lines += await c.collect_until("BATCH", timeout=5)
    return [m.params[1] for m in lines if m.command == "PRIVMSG" and "batch" in m.tags]


async def test_a_channel_message_deleted_on_one_node_is_gone_on_the_other(
    cluster: Cluster,
) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice", CAPS)
    await alice.join("#r")
    bob = await connect(p2, "bob", CAPS)
    carol = await connect(p2, "carol", ["message-tags"])
    for c in (bob, carol):
        await c.join("#r")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("carol!"))
    ids = [await say(alice, "#r", t) for t in ("one", "two", "three")]
    await bob.expect("PRIVMSG", lambda m: m.params[-1] == "three")
    assert await history(bob, "#r") == ["one", "two", "three"]  # n2 caches the window

    await alice.send(f"REDACT #r {ids[1]} :oops")
    assert (await alice.expect("REDACT")).params == ["#r", ids[1], "oops"]
    told = await bob.expect("REDACT", timeout=5)
    assert told.params == ["#r", ids[1], "oops"]
    assert (told.source or "").startswith("alice!")
    assert "REDACT" not in [m.command for m in await carol.sync()]
    assert await history(bob, "#r") == ["one", "three"]
    for c in (alice, bob, carol):
        await c.close()


async def test_a_private_message_deleted_across_nodes(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice", CAPS)
    bob = await connect(p2, "bob", CAPS)
    for c in (alice, bob):
        await register_account(c)

    async def knows(c: IRCTestClient, nick: str) -> bool:
        await c.send(f"WHOIS {nick}")
        return any(m.command == "330" for m in await c.collect_until("318"))

    await eventually(lambda: knows(alice, "bob"))
    await eventually(lambda: knows(bob, "alice"))
    first = await say(alice, "bob", "first")
    await bob.expect("PRIVMSG")
    second = await say(alice, "bob", "second")
    await bob.expect("PRIVMSG")
    assert await history(bob, "alice") == ["first", "second"]  # n2 caches it
    await alice.send(f"REDACT bob {first}")
    assert (await alice.expect("REDACT")).params == ["bob", first]
    assert (await bob.expect("REDACT", timeout=5)).params == ["bob", first]
    assert await history(bob, "alice") == ["second"]
    assert second
    for c in (alice, bob):
        await c.close()
