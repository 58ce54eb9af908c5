"""What a recovery delivers, over a real Redis and a real shared store: every message a
node's users missed, and none they were sent already."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.cluster import apply
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
