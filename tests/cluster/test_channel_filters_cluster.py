"""Channel modes +C and +c across nodes (real Redis): set on one node, enforced by the
node of whoever speaks, before the message is stored and published."""

from __future__ import annotations

from tests.cluster.conftest import Cluster
from tests.cluster.test_cluster import connect, names
from tests.net import eventually

HISTORY_CAPS = ["batch", "server-time", "message-tags", "draft/chathistory"]


async def test_modes_set_on_one_node_filter_the_other_nodes_senders(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice", HISTORY_CAPS)
    bob = await connect(p2, "bob", ["echo-message"])
    carol = await connect(p2, "carol")
    await alice.join("#f")

    async def n2_knows_it() -> bool:  # else n2 makes #f too: a creation race, a MODE -o
        return await names(bob, "#f") == {"alice"}

    await eventually(n2_knows_it)
    await bob.join("#f")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("bob!"))
    await carol.join("#f")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("carol!"))
    await carol.sync()
    await alice.send("MODE #f +Cc")
    for c in (bob, carol):
        assert (await c.expect("MODE")).params == ["#f", "+Cc"]
    await bob.send("MODE #f")
    assert (await bob.expect("324")).params[1:3] == ["#f", "+Ccnt"]
    # bob's node strips his formatting: for carol beside him, for alice on n1, in his echo.
    await bob.send("PRIVMSG #f :\x02hello\x02 \x0304from\x03 \x1dn2\x1d")
    for c in (bob, carol, alice):
        got = await c.expect("PRIVMSG")
        assert got.params == ["#f", "hello from n2"] and (got.source or "").startswith("bob!")
    # ... and refuses his CTCPs, which reach nobody.
    await bob.send("PRIVMSG #f :\x01VERSION\x01")
    assert (await bob.expect("404")).params == [
        "bob", "#f", "Cannot send to channel (+C: no CTCPs)"]
    await bob.send("PRIVMSG #f :\x01ACTION waves\x01")
    assert (await alice.expect("PRIVMSG")).params == ["#f", "\x01ACTION waves\x01"]
    assert (await carol.expect("PRIVMSG")).params == ["#f", "\x01ACTION waves\x01"]
    # The shared store holds the stripped text, read from the other node.
    await alice.send("CHATHISTORY LATEST #f * 10")
    await alice.expect("BATCH")
    rows = await alice.collect_until("BATCH")
    assert [m.params[1] for m in rows[:-1]] == ["hello from n2", "\x01ACTION waves\x01"]
    # Lifted on n1, lifted on n2.
    await alice.send("MODE #f -c")
    assert (await bob.expect("MODE")).params == ["#f", "-c"]
    await bob.send("PRIVMSG #f :\x02bold\x02")
    assert (await alice.expect("PRIVMSG")).params == ["#f", "\x02bold\x02"]
    for c in (alice, bob, carol):
        await c.close()
