"""Event playback across cluster nodes: real Redis, one shared SQLite store, two nodes.

A join on one node is stored there; another node that cached the channel's window
drops it, so its event-playback readers find the join in history at once."""

from __future__ import annotations

from tests.cluster.conftest import Cluster
from tests.cluster.test_cluster import connect
from tests.cluster.test_redact_cluster import CAPS

EVENTS = [*CAPS, "draft/event-playback"]


async def test_a_join_on_one_node_is_in_the_other_nodes_history(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    reader = await connect(p2, "reader", EVENTS)
    await reader.join("#r")
    await reader.send("PRIVMSG #r :hello")
    await reader.expect("PRIVMSG")
    await reader.send("CHATHISTORY LATEST #r * 10")  # n2 caches the window
    first = await reader.collect_until("BATCH", timeout=5)
    first += await reader.collect_until("BATCH", timeout=5)
    assert [m.command for m in first if "batch" in m.tags] == ["JOIN", "PRIVMSG"]

    comer = await connect(p1, "comer", ["message-tags"])
    await comer.join("#r")
    live = await reader.expect("JOIN", lambda m: (m.source or "").startswith("comer!"))
    await comer.send("QUIT :later")
    gone = await reader.expect("QUIT", lambda m: (m.source or "").startswith("comer!"))
    await reader.send("CHATHISTORY LATEST #r * 10")
    lines = await reader.collect_until("BATCH", timeout=5)
    lines += await reader.collect_until("BATCH", timeout=5)
    batch = [m for m in lines if "batch" in m.tags]
    assert [(m.command, m.tags["msgid"]) for m in batch[-2:]] == [
        ("JOIN", live.tags["msgid"]), ("QUIT", gone.tags["msgid"])]
    assert [m.command for m in batch] == ["JOIN", "PRIVMSG", "JOIN", "QUIT"]
    await reader.close()
