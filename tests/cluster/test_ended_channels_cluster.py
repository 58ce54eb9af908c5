"""A closed channel's end across cluster nodes: real Redis, one shared SQLite store.

The channel ends on every node when its last member anywhere leaves, and no node then
serves what was said in it (cached windows included). A node that stops while members
on another node keep the channel does not end it.
"""

from __future__ import annotations

import asyncio
import json
import time

import redis

from chat.msgid import MsgIdGenerator
from chat.numerics import ERR_UNAVAILRESOURCE
from server.cluster.events import CHANNEL, NODE_KEY, encode
from server.history.model import CLOSED_COMMAND, NewMessage
from server.history.sqlite_store import SQLiteStore
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


def left_closed_by_a_killed_cluster(db: str, *channels: str) -> None:
    """The shared store as every node's kill -9 leaves it: each channel made closed
    (its CLOSED row), a secret said in it, and no node alive to end it."""
    store = SQLiteStore(db)
    try:
        gen, now = MsgIdGenerator(7), time.time() - 60
        for channel in channels:
            store.append([
                NewMessage(channel, gen.next(now), int(now * 1000), "n1.chat.local",
                           CLOSED_COMMAND, channel, ""),
                NewMessage(channel, gen.next(now), int(now * 1000), "alice!a@host",
                           "PRIVMSG", channel, "behind closed doors"),
            ])
    finally:
        store.close()


async def wait_whole(cluster: Cluster, node: str) -> None:
    """Until ``node`` has heard every node it found at start afresh."""
    for _ in range(500):
        if cluster.bus(node).view_whole.is_set():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{node}'s view of the cluster never became whole")


async def test_a_channel_a_killed_cluster_left_closed_ends_at_the_next_start(
    cluster: Cluster,
) -> None:
    """No node lived to end it (each ends its channels at a stop, and one that sees
    another die ends what it held): the first node up ends it once it knows no node
    holds it, so whoever makes the channel anew does not read it."""
    left_closed_by_a_killed_cluster(cluster.db, "#priv")
    port = cluster.start("n1")
    await wait_whole(cluster, "n1")
    mallory = await connect(port, "mallory", CAPS)
    await mallory.join("#priv")
    assert await history(mallory, "#priv") == []
    await mallory.close()


async def test_a_left_closed_channel_a_live_node_holds_goes_on(cluster: Cluster) -> None:
    """The store says "closed, never ended" of a channel a live node holds too: a
    node that starts then must not end it."""
    p1 = cluster.start("n1")
    alice = await connect(p1, "alice", CAPS)
    await alice.join("#priv")
    await alice.send("MODE #priv +k door")
    await alice.expect("MODE")
    await say(alice, "#priv", "behind closed doors")
    p2 = cluster.start("n2")
    await wait_whole(cluster, "n2")
    bob = await connect(p2, "bob", CAPS)
    await bob.send("JOIN #priv door")
    await bob.expect("JOIN")
    assert await history(bob, "#priv") == ["behind closed doors"]
    for c in (alice, bob):
        await c.close()


async def test_joins_of_left_closed_channels_wait_until_the_view_is_whole(
    cluster: Cluster,
) -> None:
    """Until every node found at start has been heard from afresh (or is gone), one of
    them may hold such a channel: making it anew meanwhile is refused (437), other
    channels are not."""
    slow = {"cluster_heartbeat": 60.0, "cluster_dead_after": 120.0}
    cluster.start("n1", **slow)
    await asyncio.to_thread(cluster.stop, "n1", announce=False)  # its snapshot stays
    left_closed_by_a_killed_cluster(cluster.db, "#gone")
    p2 = cluster.start("n2", **slow)
    assert not cluster.bus("n2").view_whole.is_set()
    bob = await connect(p2, "bob", CAPS)
    await bob.send("JOIN #gone")
    refused = await bob.expect(ERR_UNAVAILRESOURCE)
    assert refused.params[1:] == ["#gone", "Channel is temporarily unavailable"]
    await bob.join("#other")  # not left closed: made at once
    # n1's late "bye": nothing left to hear.
    r = redis.Redis.from_url(cluster.redis.url)
    try:
        run = json.loads(r.get(NODE_KEY + "n1") or b"{}")["e"]
        r.publish(CHANNEL, encode({"k": "bye", "n": "n1", "e": run}))
    finally:
        r.close()
    await wait_whole(cluster, "n2")
    await bob.join("#gone")
    assert await history(bob, "#gone") == []
    await bob.close()
