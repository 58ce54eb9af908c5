"""ChanServ across nodes (real Redis, one shared store): a registration, its access list
and the channel's kept state reach every node, and so does a drop."""

from __future__ import annotations

from tests.cluster.conftest import Cluster
from tests.cluster.test_cluster import connect
from tests.ircclient import IRCTestClient
from tests.net import eventually
from tests.server.helpers import ask, chanserv_says, only, service_says

PASSWORD = "sesame-open"


async def with_account(port: int, nick: str) -> IRCTestClient:
    c = await connect(port, nick)
    assert [m.command for m in await ask(c, f"REGISTER * * {PASSWORD}")] == [
        "REGISTER", "900"]
    return c


async def test_a_registration_reaches_every_node(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await with_account(p1, "alice")
    carol = await with_account(p2, "carol")
    bob = await connect(p2, "bob")
    await alice.join("#net")
    assert chanserv_says(await ask(alice, "CS REGISTER #net")) == ["#net is registered to alice"]

    async def n2_knows() -> bool:
        info = chanserv_says(await ask(bob, "CS INFO #net"))
        return bool(info) and info[0].startswith("#net is registered to alice")

    await eventually(n2_knows)

    async def carol_known_on_n1() -> bool:
        said = chanserv_says(await ask(alice, "CS ACCESS #net ADD carol"))
        return said == ["carol added to the access list of #net"]

    await eventually(carol_known_on_n1)
    # The topic and modes set on n1 are kept by n2's copy of the registration too.
    await ask(alice, "TOPIC #net :set on n1")
    await ask(alice, "MODE #net +m")
    await ask(alice, "PART #net")

    async def carol_gets_it_back_with_op() -> bool:
        joined = await carol.join("#net")
        modes = only(await ask(carol, "MODE #net"), "324")
        ok = (only(joined, "332") and only(joined, "332")[0].params[-1] == "set on n1"
              and only(joined, "353")[0].params[-1] == "@carol"
              and modes and "m" in modes[0].params[2])
        if not ok:
            await ask(carol, "PART #net")
        return bool(ok)

    await eventually(carol_gets_it_back_with_op)
    # Dropped on n1, it is gone on n2 too.
    assert chanserv_says(await ask(alice, "CS DROP #net")) == ["#net is no longer registered"]

    async def n2_forgot() -> bool:
        return chanserv_says(await ask(bob, "CS INFO #net")) == ["#net is not registered"]

    await eventually(n2_forgot)
    for c in (alice, bob, carol):
        await c.close()


async def test_a_memo_reaches_its_account_on_the_other_node(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await with_account(p1, "alice")
    bob = await with_account(p2, "bob")

    async def sent() -> bool:  # bob's account reaches n1 through its event
        said = service_says(await ask(alice, "MS SEND bob meet at noon"), "MemoServ")
        return said == ["Memo sent to bob"]

    await eventually(sent)
    told = await bob.expect("NOTICE", lambda m: (m.source or "").startswith("MemoServ!"),
                            timeout=5)
    assert told.params[-1] == "You have a new memo from alice: /msg MemoServ READ NEW"
    read = service_says(await ask(bob, "MS READ NEW"), "MemoServ")
    assert len(read) == 1 and read[0].endswith("): meet at noon")
    # Read on n2: a login on n1 hears of no unread memo.
    other = await connect(p1, "bobs_phone")

    async def nothing_waits() -> bool:
        msgs = await ask(other, "NS LOGOUT") + await ask(other, f"NS IDENTIFY bob {PASSWORD}")
        return bool(only(msgs, "900")) and service_says(msgs, "MemoServ") == []

    await eventually(nothing_waits)
    for c in (alice, bob, other):
        await c.close()
