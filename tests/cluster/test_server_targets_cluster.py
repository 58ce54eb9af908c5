"""A server target names this node, or gets 402: another node's MOTD, STATS, clock and
version are its own, and this node does not forward (answered here, they were this
node's under the other's name). WHOIS's answer is about a user, known to every node."""

from __future__ import annotations

import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_cluster import connect
from tests.ircclient import IRCTestClient
from tests.net import eventually
from tests.server.helpers import ask

QUERIES = [
    ("MOTD {}", "422"),
    ("LUSERS * {}", "266"),
    ("STATS u {}", "219"),
    ("VERSION {}", "005"),
    ("TIME {}", "391"),
    ("ADMIN {}", "259"),
    ("INFO {}", "374"),
]


async def _knows_n2(alice: IRCTestClient) -> None:
    async def knows() -> bool:
        return "n2.chat.local" in [m.params[1] for m in await ask(alice, "LINKS")]

    await eventually(knows)


@pytest.mark.parametrize(("line", "last"), QUERIES)
async def test_another_node_gets_402_and_this_one_answers_as_itself(
    cluster: Cluster, line: str, last: str
) -> None:
    p1 = cluster.start("n1")
    cluster.start("n2")
    alice = await connect(p1, "alice")
    await _knows_n2(alice)
    assert [(m.command, m.params) for m in await ask(alice, line.format("n2.chat.local"))] == [
        ("402", ["alice", "n2.chat.local", "Not answered here: another server of this network"])]
    # A mask matching this node is this node, whatever else it matches (solanum's).
    for target in ("n1.chat.local", "n*.chat.local"):
        msgs = await ask(alice, line.format(target))
        assert msgs[-1].command == last
        assert {m.source for m in msgs} == {"n1.chat.local"}
        assert "402" not in {m.command for m in msgs}
    assert [(m.command, m.params) for m in await ask(alice, line.format("n3.chat.local"))] == [
        ("402", ["alice", "n3.chat.local", "No such server"])]
    await alice.close()


async def test_whois_with_the_other_node_as_target_is_answered(cluster: Cluster) -> None:
    p1 = cluster.start("n1")
    cluster.start("n2")
    alice = await connect(p1, "alice")
    await _knows_n2(alice)
    msgs = await ask(alice, "WHOIS n2.chat.local alice")
    assert msgs[-1].command == "318"
    assert "402" not in {m.command for m in msgs}
    await alice.close()


async def test_whois_with_a_user_on_the_other_node_as_target(cluster: Cluster) -> None:
    # WHOIS <nick> <nick>: bob's server is n2, whose users this node knows.
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    bob = await connect(p2, "bob")

    async def bob_is_known() -> bool:
        return any(m.command == "311" for m in await ask(alice, "WHOIS bob"))

    await eventually(bob_is_known)
    whois = {m.command: m.params for m in await ask(alice, "WHOIS bob bob")}
    assert whois["312"][2] == "n2.chat.local"
    whois = {m.command: m.params for m in await ask(alice, "WHOIS bob alice")}
    assert whois["311"][1] == "alice" and "402" not in whois
    await alice.close()
    await bob.close()
