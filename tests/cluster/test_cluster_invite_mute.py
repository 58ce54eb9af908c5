"""invite-notify across nodes: none for an INVITE from a member who may not speak."""

from __future__ import annotations

from tests.cluster.conftest import Cluster
from tests.cluster.test_cluster import connect
from tests.net import eventually
from tests.server.helpers import ask


async def test_a_muted_inviter_is_not_told_to_the_other_node(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    mallory = await connect(p1, "mallory")
    carol = await connect(p1, "carol")
    dave = await connect(p1, "dave")
    bob = await connect(p2, "bob", ["invite-notify"])
    await alice.join("#c")
    await mallory.join("#c")

    async def on_n2_with_alice() -> bool:
        await bob.send("JOIN #c")
        return "366" in [m.command for m in await bob.sync()]

    await eventually(on_n2_with_alice)
    await ask(alice, "MODE #c +m")
    assert [m.command for m in await ask(mallory, "INVITE carol #c")] == ["341"]
    await carol.expect("INVITE")
    # Published after mallory's, by the same node: bob's first INVITE must be this one.
    await alice.send("INVITE dave #c")
    seen = await bob.expect("INVITE")
    assert seen.source and seen.source.startswith("alice!")
    assert seen.params == ["dave", "#c"]
    for c in (alice, mallory, carol, dave, bob):
        await c.close()
