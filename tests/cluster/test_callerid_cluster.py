"""Caller ID (+g, ACCEPT) across nodes (real Redis): the sender's node refuses from its
copy of the target's accept list; the target's node sends 718 and reports it for 717."""

from __future__ import annotations

from chat.message import Message
from server.cluster.events import Publish
from server.core import ServerCore
from tests.cluster.conftest import Cluster
from tests.cluster.test_apply import make_core, output, register, relay_events
from tests.cluster.test_cluster import connect, names
from tests.ircclient import IRCTestClient
from tests.net import eventually

TOLD = "is messaging you, and you have umode +g."


async def marker(sender: IRCTestClient, text: str, *readers: IRCTestClient) -> list[Message]:
    """``sender`` says ``text`` in #c; every reader sees it. Events of one node arrive in
    the order it published them, so the readers' nodes have applied everything the
    sender's node published before. Returns what the readers got up to it."""
    await sender.send(f"PRIVMSG #c :{text}")
    seen: list[Message] = []
    for reader in readers:
        got = await reader.collect_until("PRIVMSG", timeout=5)
        while got[-1].params[-1] != text:
            got += await reader.collect_until("PRIVMSG", timeout=5)
        seen += got
    return seen


async def accept_list(c: IRCTestClient) -> list[str]:
    await c.sync()
    await c.send("ACCEPT *")
    return [n for m in await c.collect_until("282") if m.command == "281" for n in m.params[1:]]


async def test_caller_id_across_nodes(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    dave = await connect(p1, "dave")  # on alice's node
    await alice.join("#c")
    bob = await connect(p2, "bob")
    carol = await connect(p2, "carol")

    async def n2_knows_c() -> bool:
        return "alice" in await names(bob, "#c")

    await eventually(n2_knows_c)
    await bob.join("#c")
    await carol.join("#c")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("carol!"), timeout=5)

    await alice.send("MODE alice +g")
    await alice.expect("MODE")
    await marker(alice, "plus g", bob, carol)  # n2 knows alice is +g
    await bob.send("PRIVMSG alice :hi from n2")
    assert (await bob.expect("716")).params[:2] == ["bob", "alice"]
    assert (await bob.expect("717", timeout=5)).params[:2] == ["bob", "alice"]
    told = await alice.expect("718", timeout=5)
    assert told.params[:2] == ["alice", "bob"] and told.params[3] == TOLD
    assert told.params[2].startswith("~bob@")  # user@host as n2 shows it (cloaked here)
    # Within the minute: 716 only, on either node, and alice hears of nobody else.
    await carol.send("PRIVMSG alice :me too")
    assert (await carol.expect("716")).params[:2] == ["carol", "alice"]
    before = await marker(carol, "after carol", alice)  # n1 has had carol's attempt
    assert [m.command for m in before] == ["PRIVMSG"]
    dave_got = [(m.command, m.params[1]) for m in await _ask(dave, "PRIVMSG alice :local")]
    assert dave_got == [("716", "alice")]
    got = await marker(alice, "no 717 for carol", carol)  # n1's answer would come first
    assert "717" not in [m.command for m in got]

    # ACCEPT reaches n2: bob gets through, under a new nick too; carol still does not.
    await alice.send("ACCEPT bob")
    await marker(alice, "accepted bob", bob)
    await bob.send("PRIVMSG alice :through")
    assert (await alice.expect("PRIVMSG")).params == ["alice", "through"]
    await bob.send("NICK bobby")
    await bob.expect("NICK")

    async def renamed() -> bool:
        return await accept_list(alice) == ["bobby"]

    await eventually(renamed)
    await bob.send("PRIVMSG alice :still me")
    assert (await alice.expect("PRIVMSG")).params == ["alice", "still me"]
    await carol.send("PRIVMSG alice :and me?")
    assert (await carol.expect("716")).params[:2] == ["carol", "alice"]

    # A remote user who quits leaves the list; a new user with that nick is not on it.
    await alice.send("ACCEPT carol,-bobby")
    await marker(alice, "carol in, bobby out", bob)
    await bob.send("PRIVMSG alice :out again?")
    assert (await bob.expect("716")).params[:2] == ["bobby", "alice"]
    await carol.send("QUIT :bye")
    await carol.wait_closed()

    async def carol_gone() -> bool:
        return await accept_list(alice) == []

    await eventually(carol_gone)
    carol = await connect(p2, "carol")
    await carol.send("PRIVMSG alice :new carol")
    assert (await carol.expect("716")).params[:2] == ["carol", "alice"]
    for c in (alice, bob, carol, dave):
        await c.close()


async def _ask(c: IRCTestClient, line: str) -> list[Message]:
    await c.sync()
    await c.send(line)
    return await c.sync()


# ---------------------------------------------------------------------- sans-IO (no Redis)


def _codes(core: ServerCore, conn: int) -> list[str]:
    return [line.split(b" ")[1].decode() for line in output(core, conn).split(b"\r\n") if line]


def test_snapshots_carry_accept_lists_and_quits_clear_them() -> None:
    a, b = make_core("a"), make_core("b")
    register(a, 1, "alice")
    relay_events(a, b)
    for conn, nick in ((1, "bob"), (2, "carol")):
        register(b, conn, nick)  # (which takes b's effects so far)
        relay_events(b, a)
    a.data_received(1, b"MODE alice +g\r\nACCEPT bob\r\n")
    relay_events(a, b)
    remote_alice = b.nicks["alice"]
    assert list(remote_alice.accepting or ()) == [b.clients[1]]
    # A node that lost a and reads its snapshot again has the list back.
    snap = a.cluster_snapshot()
    assert [u["acc"] for u in snap["users"]] == [["b:1"]]
    b.remote_node_gone("a")
    assert b.accept.accepted_by == {}
    b.remote_snapshot(snap)
    remote_alice = b.nicks["alice"]
    assert list(remote_alice.accepting or ()) == [b.clients[1]] and "g" in remote_alice.modes
    for conn in (1, 2):
        output(b, conn)
    b.data_received(1, b"PRIVMSG alice :accepted\r\n")
    b.data_received(2, b"PRIVMSG alice :not accepted\r\n")
    assert (_codes(b, 1), _codes(b, 2)) == ([], ["716"])
    # The refusal reaches a, which tells alice and answers; b sends carol the 717.
    output(a, 1)
    answers = [e for e in relay_events(b, a) if isinstance(e, Publish)]
    assert _codes(a, 1) == ["PRIVMSG", "718"]
    assert [e.event["k"] for e in answers] == ["informed"]
    b.remote_event(answers[0].event)
    assert _codes(b, 2) == ["717"]
    # bob quits on b: off alice's list on a. alice quits: b forgets her list.
    b.connection_lost(1)
    relay_events(b, a)
    assert a.clients[1].accepting is None and a.accept.accepted_by == {}
    a.data_received(1, b"ACCEPT carol\r\n")
    relay_events(a, b)
    assert b.accept.accepted_by == {b.clients[2]: {b.nicks["alice"]: None}}
    a.connection_lost(1)
    relay_events(a, b)
    assert b.accept.accepted_by == {} and "alice" not in b.nicks
