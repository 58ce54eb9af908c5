"""WALLOPS, LINKS and KNOCK across nodes (real Redis), and LINKS' view of the nodes."""

from __future__ import annotations

import pytest

from chat.message import Message
from server.cluster.apply import other_servers
from server.config import ServerConfig
from server.core import ServerCore
from tests.cluster.conftest import Cluster
from tests.cluster.test_cluster import connect
from tests.conftest import OPER_NAME, OPER_PASSWORD
from tests.ircclient import IRCTestClient
from tests.net import eventually


@pytest.fixture
def opers(oper_hash: str) -> dict[str, str]:
    return {OPER_NAME: oper_hash}


async def links(client: IRCTestClient, *args: str) -> list[list[str]]:
    await client.sync()
    await client.send(" ".join(["LINKS", *args]))
    return [m.params for m in await client.collect_until("365", "402")]


async def test_wallops_reaches_users_with_w_on_every_node(
    cluster: Cluster, opers: dict[str, str]
) -> None:
    p1, p2 = cluster.start("n1", opers=opers), cluster.start("n2", opers=opers)
    alice = await connect(p1, "alice")
    bob = await connect(p2, "bob")
    carol = await connect(p2, "carol")  # no +w
    await alice.send(f"OPER {OPER_NAME} :{OPER_PASSWORD}")
    await alice.expect("381")
    await bob.send("MODE bob +w")
    await bob.expect("MODE")
    await alice.send("WALLOPS :maintenance at noon")
    got = await bob.expect("WALLOPS")
    assert got.source and got.source.startswith("alice!")
    assert got.params == ["maintenance at noon"]
    assert await alice.sync() == []  # the sender has no +w
    assert await carol.sync() == []
    # A non-operator's WALLOPS goes nowhere, on any node.
    await bob.send("WALLOPS :me too")
    assert (await bob.expect("481")).params[0] == "bob"
    assert await alice.sync() == []
    # With +w the operator hears its own WALLOPS as well.
    await alice.send("MODE alice +w")
    await alice.expect("MODE")
    await alice.send("WALLOPS :again")
    assert (await alice.expect("WALLOPS")).params == ["again"]
    assert (await bob.expect("WALLOPS")).params == ["again"]
    assert await carol.sync() == []
    for c in (alice, bob, carol):
        await c.close()


async def test_links_lists_every_node(cluster: Cluster) -> None:
    p1 = cluster.start("n1")
    cluster.start("n2")  # no users there: known from its snapshot all the same
    alice = await connect(p1, "alice")
    info = ServerConfig().network
    both = [
        ["alice", "n1.chat.local", "n1.chat.local", f"0 {info}"],
        ["alice", "n2.chat.local", "n1.chat.local", f"1 {info}"],
        ["alice", "*", "End of /LINKS list"],
    ]

    async def lists_both() -> bool:
        return await links(alice) == both

    await eventually(lists_both)
    # LUSERS counts the same servers, n2 without users too.
    await alice.send("LUSERS")
    lusers = {m.command: m.params[-1] for m in await alice.collect_until("266")}
    assert lusers["251"] == "There are 1 users and 0 invisible on 2 servers"
    assert lusers["255"] == "I have 1 clients and 1 servers"
    assert await links(alice, "n2.*") == [both[1], ["alice", "n2.*", "End of /LINKS list"]]
    # n2 is a server this node knows: LINKS n2.chat.local <mask> is answered here.
    assert await links(alice, "n2.chat.local", "*") == both
    assert await links(alice, "n3.chat.local", "*") == [
        ["alice", "n3.chat.local", "No such server"]
    ]
    cluster.stop("n2")  # it says goodbye: it leaves the list at once

    async def lists_n1() -> bool:
        return await links(alice) == [both[0], both[2]]

    await eventually(lists_n1)
    await alice.close()


async def test_knock_reaches_operators_on_the_other_node(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    dave = await connect(p2, "dave")
    await alice.join("#c")
    await alice.send("MODE #c +i")
    await alice.expect("MODE")

    async def invite_only_on_n2() -> bool:
        await dave.send("KNOCK #c")
        got = await dave.sync()
        return [m.command for m in got] == ["711"]

    # Until n2 has heard of #c and its +i, dave gets 403 or 713.
    await eventually(invite_only_on_n2)
    got = await alice.expect("NOTICE")
    assert got.source == "n2.chat.local"
    assert got.params[0] == "@#c"
    assert got.params[1].startswith("[Knock] by dave!~dave@")
    assert got.params[1].endswith(" (has asked for an invite)")
    await dave.send("KNOCK #c :again")
    assert (await dave.expect("712")).params[1:] == ["#c", "Too many KNOCKs (user)"]
    assert [m.command for m in await alice.sync()] == []
    await alice.close()
    await dave.close()


# ---------------------------------------------------------------------- sans-IO


def make_core(node: str) -> ServerCore:
    config = ServerConfig(  # (no join playback: nothing here answers history reads)
        name=f"{node}.chat.local", cluster=True, node_id=node, redis="redis://x", flood_burst=0,
        history_playback=0,
    )
    return ServerCore(config, clock=lambda: 1000.0)


def register(core: ServerCore, conn: int, nick: str) -> None:
    core.connect(conn, "127.0.0.1", 5000 + conn)
    core.data_received(conn, f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
    claim = core.take_effects()[-1]
    core.nick_claim_result(claim.conn_id, claim.nick, claim.folded, True)


def test_other_servers_come_from_snapshots_and_users() -> None:
    a, b = make_core("a"), make_core("b")
    assert other_servers(a) == []
    a.remote_snapshot(b.cluster_snapshot())
    assert other_servers(a) == ["b.chat.local"]
    # A node known only by a user of its own (its snapshot not read yet): its node id.
    a.remote_event({"k": "up", "n": "c", "g": 1, "c": {}, "u": "c:1",
                    "rec": {"nick": "carol", "user": "~c", "host": "h", "realname": "C"}})
    assert other_servers(a) == ["b.chat.local", "c"]
    a.remote_node_gone("b")
    a.remote_node_gone("c")
    assert other_servers(a) == []
    # A snapshot without a name (an older node) still counts its users' node.
    register(b, 1, "bob")
    old = b.cluster_snapshot()
    del old["name"]
    a.remote_snapshot(old)
    assert other_servers(a) == ["b"]


def test_a_remote_wallops_and_knock_reach_local_users_only_as_they_should() -> None:
    a = make_core("a")
    register(a, 1, "alice")
    register(a, 2, "bob")
    a.data_received(1, b"MODE alice +w\r\nJOIN #c\r\n")
    a.data_received(2, b"JOIN #c\r\n")
    a.take_effects()
    for client in a.take_output():
        client.out.clear()
    wallops = ["x!~x@h", "WALLOPS", ["hi"], "2024-01-01T00:00:00.000Z", "m1", None]
    a.remote_event({"k": "wallops", "n": "b", "g": 1, "c": {}, "u": "b:1", "r": wallops})
    knock = ["b.chat.local", "NOTICE", ["@#c", "[Knock] by x!~x@h (hi)"],
             "2024-01-01T00:00:00.000Z", "m2", None]
    a.remote_event({"k": "knock", "n": "b", "g": 2, "c": {}, "u": "b:1", "t": "#c", "r": knock})
    out = {c.nick: b"".join(c.out) for c in a.take_output()}
    # alice: +w and the channel's operator; bob: neither.
    assert out == {
        "alice": b":x!~x@h WALLOPS hi\r\n:b.chat.local NOTICE @#c :[Knock] by x!~x@h (hi)\r\n"
    }
    assert Message("WALLOPS", ["hi"], "x!~x@h").to_bytes() in out["alice"]


async def test_samode_from_another_node(cluster: Cluster, opers: dict[str, str]) -> None:
    """An operator on n1, not in the channel, gives +o in a channel whose members are
    all on n2: every node applies it."""
    p1, p2 = cluster.start("n1", opers=opers), cluster.start("n2", opers=opers)
    root = await connect(p1, "root")
    await root.send(f"OPER {OPER_NAME} :{OPER_PASSWORD}")
    await root.expect("381")
    alice = await connect(p2, "alice")
    bob = await connect(p2, "bob")
    for c in (alice, bob):
        await c.join("#lost")
    await alice.send("PART #lost")
    await bob.expect("PART")

    async def n1_knows_it() -> bool:
        """n1 has applied every event of n2's: bob in #lost, alice gone (a SAMODE sent
        while n1 had seen only some of them named a nick not in the channel yet)."""
        await root.send("NAMES #lost")
        listed = [m.params[-1].split() for m in await root.collect_until("366")
                  if m.command == "353"]
        return listed == [["bob"]]

    await eventually(n1_knows_it)
    await root.send("SAMODE #lost +o bob")
    got = await bob.expect("MODE", timeout=5)
    assert got.params == ["#lost", "+o", "bob"] and (got.source or "").startswith("root!")
    await bob.send("MODE #lost +m")
    assert (await bob.expect("MODE")).params == ["#lost", "+m"]
    for c in (root, alice, bob):
        await c.close()
