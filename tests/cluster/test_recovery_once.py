"""What a recovery delivers, over a real Redis and a real shared store: every message a
node's users missed, and none they were sent already."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

from server.cluster import apply
from server.cluster import bus as bus_module
from tests.cluster.conftest import Cluster
from tests.cluster.test_cluster import connect, no_more_from, register_account
from tests.cluster.test_private_recovery import caught_up
from tests.ircclient import IRCTestClient
from tests.net import eventually


async def privmsgs(c: IRCTestClient, count: int) -> list[str]:
    """The next ``count`` PRIVMSGs to ``c``, as "target text"."""
    got: list[str] = []
    while len(got) < count:
        m = await c.read_message(timeout=10)
        if m.command == "PRIVMSG":
            got.append(" ".join(m.params))
    return got


async def test_nothing_that_came_live_is_delivered_again_after_a_redis_outage(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a Redis outage at 200 messages a second, a recovery delivered again hundreds
    of private messages that had come live (it reads from 5 s before the last contact,
    and only the last 512 msgids per account were remembered), and at 1,000 a second
    channel messages that came while it read the store. Here 8 are remembered, and more
    than that come live before the outage and during the channel's read: each message
    reaches bob once."""
    monkeypatch.setattr(apply, "RECENT_IDS", 8)
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice", ["echo-message"])
    bob = await connect(p2, "bob")
    for c in (alice, bob):
        await register_account(c)
        await c.join("#c")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("bob!"))
    await eventually(lambda: getattr(cluster.bus("n1").core.nicks.get("bob"), "account", None)
                     == "bob")
    for n in range(20):
        await alice.send(f"PRIVMSG bob :live {n}")
        await alice.send(f"PRIVMSG #c :live {n}")
    assert len(await privmsgs(bob, 40)) == 40
    history = cluster.bus("n2").history
    real = history.query_store
    reading = [0]
    paused = [True]

    async def slow_channel_reads(query: Any) -> Any:
        if query.target.startswith("#"):
            reading[0] += 1
            while paused[0]:
                await asyncio.sleep(0.02)
        return await real(query)

    monkeypatch.setattr(history, "query_store", slow_channel_reads)
    cluster.redis.stop()
    await alice.send("PRIVMSG bob :lost")
    await alice.send("PRIVMSG #c :lost")
    await alice.expect("PRIVMSG", lambda m: m.params == ["#c", "lost"])  # echoed: stored
    await asyncio.sleep(0.3)
    cluster.redis.start()
    await eventually(lambda: reading[0] > 0 and caught_up(cluster), timeout=10)
    for n in range(20):
        await alice.send(f"PRIVMSG #c :during {n}")
    await alice.expect("PRIVMSG", lambda m: m.params == ["#c", "during 19"])
    n1, n2 = cluster.bus("n1").core.cluster_state, cluster.bus("n2").core.cluster_state
    await eventually(lambda: n2.seen_g.get("n1") == n1.g)  # each held at n2
    paused[0] = False
    got = await privmsgs(bob, 22)
    assert sorted(got) == sorted(["bob lost", "#c lost", *(f"#c during {n}" for n in range(20))])
    await no_more_from(bob, "alice")
    for c in (alice, bob):
        await c.close()


async def test_a_channel_retry_delivers_what_the_gap_lost_once_after_more_came_live(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store failing when a gap showed, a channel's read is tried again. The retry
    took its floor from the msgids remembered then (here 8): past the message lost, once
    more live ones than that had come, so it was never delivered; and the retry read
    again the live ones sent within the clock-skew margin (here a minute), and delivered
    those no longer remembered twice, the one held during the first read too."""
    monkeypatch.setattr(bus_module, "RECOVER_RETRY_FIRST", 0.2)
    monkeypatch.setattr(apply, "RECENT_IDS", 8)
    monkeypatch.setattr(apply, "CLOCK_SKEW_MS", 0)  # one clock for every node here
    monkeypatch.setattr(bus_module, "CLOCK_SKEW_MS", 60_000)  # a retry reads every row
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice", ["echo-message"])
    bob = await connect(p2, "bob")
    for c in (alice, bob):
        await c.join("#c")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("bob!"))
    await alice.send("PRIVMSG #c :before")
    assert await privmsgs(bob, 1) == ["#c before"]
    history = cluster.bus("n2").history
    real = history.query_store
    failed = [0]
    down, reading = [True], [True]

    async def failing(query: Any) -> Any:
        if down[0]:
            failed[0] += 1
            while reading[0]:  # until a live message is held behind the read
                await asyncio.sleep(0.02)
            raise sqlite3.OperationalError("disk I/O error")
        return await real(query)

    monkeypatch.setattr(history, "query_store", failing)
    cluster.redis.stop()
    await alice.send("PRIVMSG #c :lost")
    await alice.expect("PRIVMSG", lambda m: m.params == ["#c", "lost"])  # echoed: stored
    await asyncio.sleep(0.3)
    cluster.redis.start()
    await eventually(lambda: failed[0] > 0 and caught_up(cluster), timeout=10)
    n2 = cluster.bus("n2").core.cluster_state
    await alice.send("PRIVMSG #c :held")
    await eventually(lambda: any(e.get("k") == "msg" for e in n2.recovering["#c"][1]))
    reading[0] = False
    assert await privmsgs(bob, 1) == ["#c held"]  # released when the read failed
    for n in range(20):
        await alice.send(f"PRIVMSG #c :live {n}")
    assert await privmsgs(bob, 20) == [f"#c live {n}" for n in range(20)]
    down[0] = False
    assert await privmsgs(bob, 1) == ["#c lost"]
    await no_more_from(bob, "alice")
    for c in (alice, bob):
        await c.close()


async def mute(cluster: Cluster, node: str) -> None:
    """``node`` publishes nothing from now on, as when killed -9 with events queued:
    its users' messages are still stored and echoed."""
    publisher: asyncio.Task[None] = next(
        t for t in cluster.bus(node)._loops if t.get_name() == "cluster-publish")

    def stopped() -> bool:
        if not publisher.done():  # (redis-py may swallow a cancellation mid-command)
            publisher.get_loop().call_soon_threadsafe(publisher.cancel)
        return publisher.done()

    await eventually(stopped, "the publisher stopped")


@pytest.mark.parametrize("back", [False, True], ids=["declared-gone", "new-run"])
async def test_what_a_killed_node_stored_last_reaches_live_users_before_its_quits(
    cluster: Cluster, back: bool
) -> None:
    """kill -9 of a node at a high rate: the messages it had stored and echoed but not
    published yet (its publisher's backlog) never reached the other node's users live,
    when it was declared gone nor when it came back (a new run). Each now reaches bob,
    in a channel, a conversation and outside one, before the QUITs of their senders
    (a new run's users may be back already: then their old selves quit at once)."""
    p1 = cluster.start("n1")
    p2 = cluster.start("n2", cluster_dead_after=30.0 if back else 1.5)
    alice = await connect(p1, "alice", ["echo-message"])
    carol = await connect(p1, "carol", ["echo-message"])  # no account: transit rows
    bob = await connect(p2, "bob")
    for c in (alice, bob):
        await register_account(c)
    for c in (alice, carol, bob):
        await c.join("#c")
    n2 = cluster.bus("n2").core
    await eventually(lambda: len(n2.channels["#c"].members) == 3
                     and getattr(n2.nicks.get("alice"), "account", None) == "alice")
    await eventually(lambda: getattr(cluster.bus("n1").core.nicks.get("bob"), "account", None)
                     == "bob")
    await alice.send("PRIVMSG #c :before")
    assert await privmsgs(bob, 1) == ["#c before"]
    await mute(cluster, "n1")
    for sender, target in ((alice, "#c"), (alice, "bob"), (carol, "bob")):
        await sender.send(f"PRIVMSG {target} :last words")
        await sender.expect("PRIVMSG", lambda m, t=target: m.params == [t, "last words"])
    await asyncio.to_thread(cluster.stop, "n1", announce=False)
    if back:
        await asyncio.to_thread(cluster.start, "n1")
    got: list[tuple[str, str, str]] = []
    while len(got) < 5:
        m = await bob.read_message(timeout=15)
        if m.command in ("PRIVMSG", "QUIT"):
            got.append((m.command, (m.source or "").split("!")[0], " ".join(m.params)))
    assert sorted(got) == [("PRIVMSG", "alice", "#c last words"),
                           ("PRIVMSG", "alice", "bob last words"),
                           ("PRIVMSG", "carol", "bob last words"),
                           ("QUIT", "alice", "*.net *.split"),
                           ("QUIT", "carol", "*.net *.split")]
    if not back:
        assert [g[0] for g in got] == ["PRIVMSG"] * 3 + ["QUIT"] * 2
    await no_more_from(bob, "alice")
    for c in (alice, carol, bob):
        await c.close()
