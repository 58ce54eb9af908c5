"""Two and three nodes over one Redis and one store: the cluster as clients see it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from dataclasses import replace

import pytest
import redis

from server.cluster.apply import run_of
from server.cluster.events import CHANNEL, NICK_KEY, NODE_KEY, encode
from server.core.history import transit_key
from server.transport.background import BackgroundServer
from tests.cluster.conftest import Cluster
from tests.ircclient import IRCTestClient
from tests.net import eventually
from tests.server.helpers import ask, service_says


async def connect(port: int, nick: str, caps: list[str] | None = None) -> IRCTestClient:
    client = await IRCTestClient.open(port)
    await client.register(nick, caps)
    return client


async def register_account(c: IRCTestClient) -> None:
    """REGISTER an account named after the nick (password ``long-password``)."""
    assert [m.command for m in await ask(c, "REGISTER * * long-password")] == [
        "REGISTER", "900"]


async def names(client: IRCTestClient, channel: str, *, prefixes: bool = False) -> set[str]:
    """The channel's nicks as NAMES shows them (with @/+ when ``prefixes``)."""
    await client.send(f"NAMES {channel}")
    lines = await client.collect_until("366")
    out: set[str] = set()
    for m in lines:
        if m.command == "353":
            out |= {n if prefixes else n.lstrip("@+") for n in m.params[-1].split()}
    return out


async def test_lines_sent_with_registration_wait_for_the_nick_claim(cluster: Cluster) -> None:
    """A bot that sends NICK, USER, JOIN and PRIVMSG in one write: on a cluster node
    the nick is claimed in Redis first, and the JOIN and PRIVMSG came before the
    registration ended: 451 each, the bot not in the channel, its message lost."""
    p1 = cluster.start("n1")
    alice = await connect(p1, "alice")
    await alice.join("#pipe")
    bot = await IRCTestClient.open(p1)
    await bot.send_raw(b"NICK pipeA\r\nUSER p 0 * :p\r\nJOIN #pipe\r\n"
                       b"PRIVMSG #pipe :first words\r\n")
    seen = [m.command for m in await bot.collect_until("366")]
    assert "451" not in seen and seen.index("001") < seen.index("JOIN")
    got = await alice.expect("PRIVMSG")
    assert got.source and got.source.startswith("pipeA!")
    assert got.params == ["#pipe", "first words"]
    for c in (alice, bot):
        await c.close()


async def test_cross_node_messages_both_ways(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    bob = await connect(p2, "bob")
    await alice.join("#c")
    await bob.join("#c")
    joined = await alice.expect("JOIN", lambda m: (m.source or "").startswith("bob!"))
    assert joined.params[0] == "#c"
    await alice.send("PRIVMSG #c :hello from n1")
    got = await bob.expect("PRIVMSG")
    assert got.source and got.source.startswith("alice!") and got.params == ["#c", "hello from n1"]
    await bob.send("PRIVMSG #c :hello from n2")
    got = await alice.expect("PRIVMSG")
    assert got.params == ["#c", "hello from n2"]
    # Private messages to a nick on the other node.
    await alice.send("PRIVMSG bob :psst")
    got = await bob.expect("PRIVMSG")
    assert got.params == ["bob", "psst"]
    await bob.send("NOTICE alice :ok")
    got = await alice.expect("NOTICE", lambda m: m.params[0] == "alice")
    assert got.params[1] == "ok"
    await alice.close()
    await bob.close()


async def test_names_who_whois_lusers_list_see_the_cluster(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    bob = await connect(p2, "bob")
    await alice.join("#c")
    await bob.join("#c")
    # Both made #c at once (a creation race): each node's view converges in its own time.
    await eventually(lambda: _names_are(alice, "#c", {"alice", "bob"}))
    await eventually(lambda: _names_are(bob, "#c", {"alice", "bob"}))
    await alice.send("WHOIS bob")
    whois = await alice.collect_until("318")
    assert any(m.command == "311" and m.params[1] == "bob" for m in whois)

    async def bob_on_n2() -> bool:  # the node's name comes with its snapshot
        await alice.send("WHOIS bob")
        lines = await alice.collect_until("318")
        return [m.params[2] for m in lines if m.command == "312"] == ["n2.chat.local"]

    await eventually(bob_on_n2)
    await bob.send("WHO #c")
    who = await bob.collect_until("315")
    assert {m.params[5] for m in who if m.command == "352"} == {"alice", "bob"}
    where = {m.params[5]: (m.params[4], m.params[7].split()[0]) for m in who if m.command == "352"}
    assert where == {"alice": ("n1.chat.local", "1"), "bob": ("n2.chat.local", "0")}
    await alice.send("LUSERS")
    lusers = await alice.collect_until("266")
    glob = next(m for m in lusers if m.command == "266")
    assert glob.params[1] == "2"
    await bob.send("LIST")
    listing = await bob.collect_until("323")
    assert [m.params[1:3] for m in listing if m.command == "322"] == [["#c", "2"]]
    await alice.close()
    await bob.close()


async def test_join_part_nick_topic_mode_kick_away_quit_across_nodes(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice", ["away-notify"])
    bob = await connect(p2, "bob")
    await alice.join("#c")

    async def n2_knows_it() -> bool:  # else n2 makes #c too: a creation race, a MODE -o
        return "alice" in await names(bob, "#c")

    await eventually(n2_knows_it)
    await bob.join("#c")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("bob!"))
    await bob.send("NICK robert")
    await bob.expect("NICK")
    got = await alice.expect("NICK")
    assert got.source and got.source.startswith("bob!") and got.params == ["robert"]
    await alice.send("TOPIC #c :new topic")
    got = await bob.expect("TOPIC")
    assert got.params == ["#c", "new topic"]
    await alice.send("MODE #c +v robert")
    got = await bob.expect("MODE")
    assert got.params == ["#c", "+v", "robert"]
    await bob.send("AWAY :gone")
    got = await alice.expect("AWAY")
    assert got.params == ["gone"]
    await bob.send("PART #c :bye")
    got = await alice.expect("PART")
    assert got.params == ["#c", "bye"]
    await bob.join("#c")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("robert!"))
    await alice.send("KICK #c robert :out")
    got = await bob.expect("KICK")
    assert got.params == ["#c", "robert", "out"]
    assert await names(bob, "#c") == {"alice"}
    await bob.join("#c")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("robert!"))
    await bob.send("QUIT :later")
    got = await alice.expect("QUIT")
    assert got.source and got.source.startswith("robert!") and got.params == ["Quit: later"]
    assert await names(alice, "#c") == {"alice"}
    await alice.close()


async def test_whowas_sees_nicks_given_up_on_the_other_node(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    bob = await connect(p2, "bob")
    carol = await connect(p2, "carol")
    await bob.join("#c")
    await alice.join("#c")
    await bob.expect("JOIN", lambda m: (m.source or "").startswith("alice!"))
    await alice.send("WHOIS bob")
    shown = (await alice.expect("311")).params[3]  # the host as node 1 shows it: a cloak
    assert shown != "127.0.0.1"
    await bob.send("NICK robert")
    await alice.expect("NICK")
    await carol.send("QUIT :later")
    await carol.wait_closed()

    async def whowas(nick: str) -> list[list[str]]:
        await alice.send(f"WHOWAS {nick}")
        return [m.params for m in await alice.collect_until("369") if m.command == "314"]

    assert await whowas("bob") == [["alice", "bob", "~bob", shown, "*", "Real bob"]]
    # carol shared no channel with alice: her QUIT reaches node 1 over the bus all the same.
    await eventually(lambda: whowas("carol"))
    assert [p[1] for p in await whowas("carol")] == ["carol"]
    await alice.close()
    await bob.close()


async def test_monitor_hears_users_of_the_other_node(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    await alice.send("MONITOR + carol,dan")
    assert (await alice.expect("731")).params == ["alice", "carol,dan"]
    carol = await connect(p2, "carol")
    got = await alice.expect("730")
    assert got.params[1].startswith("carol!~carol@")
    await carol.send("NICK dan")
    assert (await alice.expect("731")).params == ["alice", "carol"]
    assert (await alice.expect("730")).params[1].startswith("dan!~carol@")
    await carol.send("QUIT :later")
    await carol.wait_closed()
    assert (await alice.expect("731")).params == ["alice", "dan"]
    await alice.close()


async def test_extended_monitor_hears_away_and_setname_from_the_other_node(
    cluster: Cluster,
) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice", ["extended-monitor", "away-notify", "setname"])
    carol = await connect(p2, "carol")
    await alice.send("MONITOR + carol")
    await alice.expect("730")
    await carol.send("AWAY :on the other node")
    got = await alice.expect("AWAY")
    assert got.source is not None and got.source.startswith("carol!")
    assert got.params == ["on the other node"]
    await carol.send("SETNAME :Carol Remote")
    assert (await alice.expect("SETNAME")).params == ["Carol Remote"]
    await alice.close()
    await carol.close()


async def test_a_channel_made_on_two_nodes_at_once_has_one_op(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    bob = await connect(p2, "bob")
    # Whether or not the JOINs cross on the bus, both nodes must agree on one op.
    await asyncio.gather(alice.send("JOIN #race"), bob.send("JOIN #race"))
    await alice.expect("366")
    await bob.expect("366")

    async def agreed() -> bool:
        by_alice = await names(alice, "#race", prefixes=True)
        by_bob = await names(bob, "#race", prefixes=True)
        ops = {n for n in by_alice if n.startswith("@")}
        return by_alice == by_bob and len(by_alice) == 2 and len(ops) == 1

    await eventually(agreed)
    await alice.close()
    await bob.close()


async def test_nick_collision_across_nodes_gets_433(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    other = await IRCTestClient.open(p2)
    await other.send("NICK Alice")
    await other.send("USER x 0 * :x")
    got = await other.expect("433")
    assert got.params[1] == "Alice"
    await other.send("NICK alice2")
    await other.expect("001")
    # A nick change onto a remote user's nick is refused too, and a released nick is free.
    await other.send("NICK alice")
    await other.expect("433")
    await alice.send("NICK alicia")
    await alice.expect("NICK")
    await asyncio.sleep(0.3)
    await other.send("NICK alice")
    got = await other.expect("NICK")
    assert got.params == ["alice"]
    await alice.close()
    await other.close()


async def test_three_nodes(cluster: Cluster) -> None:
    ports = [cluster.start(n) for n in ("n1", "n2", "n3")]
    clients = [await connect(p, f"u{i}") for i, p in enumerate(ports)]
    for c in clients:
        await c.join("#three")
    for c in clients:
        await eventually(lambda c=c: _names_are(c, "#three", {"u0", "u1", "u2"}))
    await clients[2].send("PRIVMSG #three :from n3")
    for c in clients[:2]:
        got = await c.expect("PRIVMSG")
        assert got.params == ["#three", "from n3"]
    for c in clients:
        await c.close()


async def _names_are(client: IRCTestClient, channel: str, want: set[str]) -> bool:
    return await names(client, channel) == want


async def test_dead_node_users_quit_elsewhere(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    bob = await connect(p2, "bob")
    await alice.join("#c")
    await bob.join("#c")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("bob!"))
    # n2 stops without a word to anyone, as if killed: n1 finds out by its silence.
    await asyncio.to_thread(cluster.stop, "n2", announce=False)
    got = await alice.expect("QUIT", timeout=10)
    assert got.source and got.source.startswith("bob!")
    assert await names(alice, "#c") == {"alice"}
    # Its nick lease expires: the nick can be taken on n1.
    fresh = await IRCTestClient.open(p1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        await fresh.send("NICK bob")
        await fresh.send("USER bob 0 * :bob")
        reply = await fresh.read_message()
        while reply.command not in ("001", "433"):
            reply = await fresh.read_message()
        if reply.command == "001":
            break
        assert loop.time() < deadline, "nick lease never expired"
        await asyncio.sleep(0.5)
    await alice.close()
    await fresh.close()


async def test_a_dead_nodes_nicks_are_free_once_it_is_gone(cluster: Cluster) -> None:
    """A user whose node was killed comes back on another node under the same nick as
    soon as that node is declared gone, not when its lease runs out (--nick-lease)."""
    long_lease = {"nick_lease": 60.0}
    p1, p2 = cluster.start("n1", **long_lease), cluster.start("n2", **long_lease)
    alice = await connect(p1, "alice")
    await alice.join("#c")
    bob = await connect(p2, "bob")
    await bob.join("#c")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("bob!"))
    await asyncio.to_thread(cluster.stop, "n2", announce=False)  # a crash: no bye
    await alice.expect("QUIT", lambda m: (m.source or "").startswith("bob!"), timeout=10)
    back = await IRCTestClient.open(p1)
    await back.send("NICK bob")
    await back.send("USER bob 0 * :bob")
    reply = await back.read_message()
    while reply.command not in ("001", "433"):
        reply = await back.read_message()
    assert reply.command == "001", reply
    for c in (alice, back):
        await c.close()


async def test_invite_reaches_a_user_on_the_other_node(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    bob = await connect(p2, "bob")
    await alice.join("#priv")
    await alice.send("MODE #priv +i")
    await alice.expect("MODE")

    async def invite_only_on_n2() -> bool:
        await bob.send("MODE #priv")
        got = await bob.sync()
        return any(m.command == "324" and "i" in m.params[2] for m in got)

    await eventually(invite_only_on_n2)
    await bob.send("JOIN #priv")
    assert "473" in [m.command for m in await bob.sync()]
    await alice.send("INVITE bob #priv")
    inviting = await alice.expect("341")
    assert inviting.params[1:3] == ["bob", "#priv"]
    invite = await bob.expect("INVITE", timeout=5)
    assert invite.source and invite.source.startswith("alice!")
    assert invite.params == ["bob", "#priv"]
    await bob.send("JOIN #priv")
    joined = await bob.expect("JOIN", timeout=5)
    assert joined.params[0] == "#priv"
    seen = await alice.expect("JOIN", lambda m: (m.source or "").startswith("bob!"), timeout=5)
    assert seen.params[0] == "#priv"
    await alice.close()
    await bob.close()


async def test_answering_a_user_on_another_node_is_free(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1", target_limit=1, target_refill=1000.0), cluster.start("n2")
    alice = await connect(p1, "alice")
    bob = await connect(p2, "bob")
    carol = await connect(p2, "carol")

    async def sees_carol() -> bool:
        await alice.send("ISON carol bob")
        reply = (await alice.expect("303")).params[-1].split()
        return sorted(reply) == ["bob", "carol"]

    await eventually(sees_carol)
    await alice.send("PRIVMSG carol :hi")  # alice's one new target
    await carol.expect("PRIVMSG")
    await alice.send("PRIVMSG bob :hi")
    assert (await alice.expect("707")).params[1] == "bob"
    await bob.send("PRIVMSG alice :hello from n2")
    await alice.expect("PRIVMSG")
    await alice.send("PRIVMSG bob :hello back")  # an answer: free
    assert (await bob.expect("PRIVMSG")).params[1] == "hello back"
    for c in (alice, bob, carol):
        await c.close()


async def test_invite_notify_reaches_members_on_the_other_node(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    carol = await connect(p1, "carol")
    bob = await connect(p2, "bob", ["invite-notify"])
    await alice.join("#c")

    async def on_n2_with_alice() -> bool:
        await bob.send("JOIN #c")
        return "366" in [m.command for m in await bob.sync()]

    await eventually(on_n2_with_alice)
    await alice.send("INVITE carol #c")
    await alice.expect("341")
    assert (await carol.expect("INVITE")).params == ["carol", "#c"]
    seen = await bob.expect("INVITE")
    assert seen.source and seen.source.startswith("alice!")
    assert seen.params == ["carol", "#c"]
    for c in (alice, carol, bob):
        await c.close()


async def test_exception_and_invite_lists_hold_on_the_other_node(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    await alice.join("#c")
    for change in ("+i", "+I carol!*@*", "+b carol!*@*", "+e carol!*@*", "+q dave!*@*"):
        await alice.send(f"MODE #c {change}")
        await alice.expect("MODE")
    dave = await connect(p2, "dave")

    async def lists_on_n2() -> bool:
        await dave.send("MODE #c q")
        return any(m.command == "728" for m in await dave.sync())

    await eventually(lists_on_n2)
    assert (await ask(dave, "MODE #c q"))[0].params[2:4] == ["q", "dave!*@*"]
    assert (await ask(dave, "MODE #c b"))[0].params[2] == "carol!*@*"
    # +e and +I are listed to channel operators only; what they hold shows below.
    assert [m.command for m in await ask(dave, "MODE #c eI")] == ["482"]
    assert "473" in [m.command for m in await ask(dave, "JOIN #c")]
    carol = await connect(p2, "carol")  # +I opens +i, +e overrides +b
    await carol.send("JOIN #c")
    assert (await carol.expect("JOIN")).params[0] == "#c"
    for c in (alice, dave, carol):
        await c.close()


async def test_setname_and_user_modes_reach_the_other_node(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice", ["setname"])
    bob = await connect(p2, "bob", ["setname"])
    await alice.join("#c")
    await bob.join("#c")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("bob!"))
    await alice.send("SETNAME :Alice Liddell")
    got = await bob.expect("SETNAME", timeout=5)
    assert got.source and got.source.startswith("alice!") and got.params == ["Alice Liddell"]
    await bob.send("WHOIS alice")
    (whois,) = [m for m in await bob.collect_until("318") if m.command == "311"]
    assert whois.params[-1] == "Alice Liddell"

    async def invisible_on_n2() -> bool:
        await bob.send("LUSERS")
        lines = await bob.collect_until("266")
        (client_line,) = [m for m in lines if m.command == "251"]
        return "and 1 invisible" in client_line.params[-1]

    assert not await invisible_on_n2()
    await alice.send("MODE alice +i")
    await alice.expect("MODE")
    await eventually(invisible_on_n2)
    await alice.close()
    await bob.close()


async def test_shared_chathistory_from_either_node(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    caps = ["draft/chathistory", "batch", "server-time", "message-tags"]
    alice = await connect(p1, "alice", caps)
    bob = await connect(p2, "bob", caps)
    await alice.join("#h")
    await bob.join("#h")
    for i in range(3):
        await alice.send(f"PRIVMSG #h :a{i}")
        await bob.send(f"PRIVMSG #h :b{i}")
    # Each node commits its own users' messages before answering their PING: once both
    # have answered, all six are in the shared store.
    for client in (alice, bob):
        await client.sync()
    for client in (alice, bob):
        await client.send("CHATHISTORY LATEST #h * 10")
        lines = await client.collect_until("BATCH", timeout=5)
        lines += await client.collect_until("BATCH", timeout=5)
        texts = sorted(m.params[1] for m in lines if m.command == "PRIVMSG" and "batch" in m.tags)
        assert texts == ["a0", "a1", "a2", "b0", "b1", "b2"]
    await alice.close()
    await bob.close()


async def test_history_read_on_one_node_shows_what_the_other_node_stored(
    cluster: Cluster,
) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    caps = ["draft/chathistory", "batch", "server-time", "message-tags"]
    alice = await connect(p1, "alice", caps)
    bob = await connect(p2, "bob", caps)
    await alice.join("#h")
    await bob.join("#h")

    async def history() -> list[str]:
        await alice.send("CHATHISTORY LATEST #h * 10")
        lines = await alice.collect_until("BATCH", timeout=5)
        lines += await alice.collect_until("BATCH", timeout=5)
        return [m.params[1] for m in lines if m.command == "PRIVMSG" and "batch" in m.tags]

    await alice.send("PRIVMSG #h :a0")
    await alice.sync()
    assert await history() == ["a0"]  # n1 now has #h's window in its Redis cache
    for text in ("b0", "b1"):
        await bob.send(f"PRIVMSG #h :{text}")
        await alice.expect("PRIVMSG", lambda m, t=text: m.params[-1] == t)  # type: ignore[misc]
        # Seen live, so it must be in history at once, though n2 stored it.
        assert (await history())[-1] == text
    assert await history() == ["a0", "b0", "b1"]
    cache = cluster.nodes["n1"].server.history.cache  # type: ignore[attr-defined]
    assert cache.drops >= 1  # n1 dropped its #h window for n2's messages
    await alice.close()
    await bob.close()


async def test_redis_restart_resyncs(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    bob = await connect(p2, "bob")
    await alice.join("#c")
    await bob.join("#c")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("bob!"))
    cluster.redis.stop()
    # Local service goes on while Redis is away.
    carol = await connect(p2, "carol")
    await carol.join("#c")
    await bob.expect("JOIN", lambda m: (m.source or "").startswith("carol!"))
    await asyncio.sleep(0.5)
    cluster.redis.start()
    # n1 learns of carol from n2's snapshot once both are back, and chat flows again.
    got = await alice.expect("JOIN", lambda m: (m.source or "").startswith("carol!"), timeout=10)
    assert got.params == ["#c"]
    assert await names(alice, "#c") == {"alice", "bob", "carol"}
    await carol.send("PRIVMSG #c :back")
    got = await alice.expect("PRIVMSG", timeout=5)
    assert got.params == ["#c", "back"]
    for c in (alice, bob, carol):
        await c.close()


async def test_a_node_asked_for_its_snapshot_writes_it_at_once(cluster: Cluster) -> None:
    # A node whose copy of n1's snapshot is older than n1's events asks for a new
    # one instead of waiting for n1's next heartbeat (30 s here): n1 may die before.
    port = cluster.start("n1", cluster_heartbeat=30.0, cluster_dead_after=90.0)
    r = redis.Redis(port=cluster.redis.port)

    def nicks() -> set[str]:
        raw = r.get(NODE_KEY + "n1")
        assert raw is not None
        return {u["nick"] for u in json.loads(raw)["users"]}

    try:
        alice = await connect(port, "alice")
        assert nicks() == set()  # written when n1 subscribed, before alice came
        r.publish(CHANNEL, encode({"k": "want", "n": "n2", "of": "n1"}))
        await eventually(lambda: nicks() == {"alice"})
        await alice.close()
    finally:
        r.close()


async def test_events_queued_when_the_bus_stops_go_out_before_its_bye(cluster: Cluster) -> None:
    """A graceful stop right after a tick (the last message a user sent, echoed to
    them already): its events were dropped when the publisher woke to the stop."""
    from server.cluster.events import Publish

    cluster.start("n1")
    bus = cluster.bus("n1")
    loop = cluster.nodes["n1"].server.loop  # type: ignore[attr-defined]
    r = redis.Redis(port=cluster.redis.port)
    sub = r.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(CHANNEL)
    try:
        while sub.get_message(timeout=0.1) is not None:
            pass  # (the subscription's own confirmation)

        async def publish_then_stop() -> None:
            bus.handle([Publish({"k": "last", "n": "n1", "i": i}) for i in range(3)])
            await bus.stop()

        asyncio.run_coroutine_threadsafe(publish_then_stop(), loop).result(10)
        kinds: list[tuple[str, object]] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and ("bye", None) not in kinds:
            message = sub.get_message(timeout=0.2)
            if message is not None:
                event = json.loads(message["data"])
                kinds.append((event["k"], event.get("i")))
        assert kinds[-4:] == [("last", 0), ("last", 1), ("last", 2), ("bye", None)]
    finally:
        sub.close()
        r.close()


async def test_a_heartbeat_goes_out_behind_the_events_it_counts(cluster: Cluster) -> None:
    """Published on its own connection, a heartbeat overtook events still queued, and
    every other node took it for a gap (and recovered every shared channel)."""
    from server.cluster.events import Publish

    cluster.start("n1", cluster_heartbeat=30.0, cluster_dead_after=90.0)
    bus = cluster.bus("n1")
    loop = cluster.nodes["n1"].server.loop  # type: ignore[attr-defined]
    r = redis.Redis(port=cluster.redis.port)
    sub = r.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(CHANNEL)
    count = 2000
    try:
        while sub.get_message(timeout=0.1) is not None:
            pass  # (the subscription's own confirmation)

        async def publish_then_announce() -> None:
            bus.handle([Publish({"k": "queued", "n": "n1", "i": i}) for i in range(count)])
            await bus._announce()

        asyncio.run_coroutine_threadsafe(publish_then_announce(), loop).result(10)
        kinds: list[str] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "hb" not in kinds:
            message = sub.get_message(timeout=0.2)
            if message is not None:
                kinds.append(json.loads(message["data"])["k"])
        assert kinds == ["queued"] * count + ["hb"]
    finally:
        sub.close()
        r.close()


async def test_the_bus_logs_a_failed_task_and_starts_none_once_stopping(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    cluster.start("n1")
    bus = cluster.bus("n1")
    loop = cluster.nodes["n1"].server.loop  # type: ignore[attr-defined]

    async def fails() -> None:
        raise AttributeError("'NoneType' object has no attribute 'writelines'")

    async def spawn_and_wait() -> None:
        bus._spawn(fails())
        while bus._tasks:
            await asyncio.sleep(0.01)

    with caplog.at_level(logging.WARNING, logger="chat.server.cluster"):
        asyncio.run_coroutine_threadsafe(spawn_and_wait(), loop).result(5)
    assert any("background task" in r.getMessage() and "writelines" in r.getMessage()
               for r in caplog.records)
    cluster.stop("n1")
    started = fails()
    bus._spawn(started)  # e.g. a nick release from the shutdown's last flush
    assert not bus._tasks
    assert started.cr_frame is None  # closed, never run


async def test_accounts_show_on_every_node(cluster: Cluster) -> None:
    import base64

    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    bob = await connect(p2, "bob", ["account-notify", "extended-join", "account-tag"])
    await alice.join("#c")
    await bob.join("#c")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("bob!"))
    assert [m.command for m in await ask(alice, "REGISTER * * sesame-open")] == [
        "REGISTER", "900"]
    got = await bob.expect("ACCOUNT", timeout=5)
    assert got.source and got.source.startswith("alice!") and got.params == ["alice"]
    await bob.send("WHOIS alice")
    whois = [m for m in await bob.collect_until("318") if m.command == "330"]
    assert [m.params[1:3] for m in whois] == [["alice", "alice"]]
    await alice.send("PRIVMSG #c :hello")
    assert (await bob.expect("PRIVMSG", timeout=5)).tags.get("account") == "alice"
    # The account store is shared: the account registered on n1 logs in on n2, and a
    # user joining on n2 shows its account to n1's extended-join clients.
    carol = await IRCTestClient.open(p2)
    await carol.send("CAP LS 302")
    await carol.send("CAP REQ :sasl")
    await carol.expect("CAP", lambda m: m.params[1] == "ACK")
    await carol.send("AUTHENTICATE PLAIN")
    await carol.expect("AUTHENTICATE")
    await carol.send("AUTHENTICATE " + base64.b64encode(b"\0alice\0sesame-open").decode())
    assert (await carol.expect("903")).params[-1] == "SASL authentication successful"
    await carol.send("CAP END")
    await carol.register("carol")
    watcher = await connect(p1, "watcher", ["extended-join"])
    await watcher.join("#c")
    await carol.send("JOIN #c")
    joined = await watcher.expect("JOIN", lambda m: (m.source or "").startswith("carol!"))
    assert joined.params == ["#c", "alice", "Real carol"]
    # A node started later learns the accounts of users already on the others.
    p3 = cluster.start("n3")
    dave = await connect(p3, "dave")

    async def n3_knows_alice() -> bool:
        await dave.send("WHOIS alice")
        return any(m.command == "330" for m in await dave.collect_until("318"))

    await eventually(n3_knows_alice)
    # An account registered on n1 reserves its nick on n2 at once.
    zed = await connect(p1, "zed")
    assert [m.command for m in await ask(zed, "REGISTER * * zed-password")] == [
        "REGISTER", "900"]
    await zed.send("QUIT :bye")
    await zed.wait_closed()

    async def reserved_on_n2() -> bool:
        msgs = await ask(bob, "NICK zed")
        return any(m.command == "433" and "reserved" in m.params[-1] for m in msgs)

    await eventually(reserved_on_n2)
    for c in (alice, bob, carol, watcher, dave):
        await c.close()


async def test_private_history_between_accounts_on_two_nodes(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    caps = ["draft/chathistory", "batch", "server-time", "message-tags"]
    alice = await connect(p1, "alice", caps)
    bob = await connect(p2, "bob", caps)
    for c in (alice, bob):
        await register_account(c)

    async def history(c: IRCTestClient, partner: str) -> list[str]:
        await c.send(f"CHATHISTORY LATEST {partner} * 10")
        lines = await c.collect_until("BATCH", timeout=5)
        lines += await c.collect_until("BATCH", timeout=5)
        return [m.params[1] for m in lines if m.command == "PRIVMSG" and "batch" in m.tags]

    async def knows_account(c: IRCTestClient, nick: str) -> bool:
        await c.send(f"WHOIS {nick}")
        return any(m.command == "330" for m in await c.collect_until("318"))

    # Each node stores its own users' messages, once it knows both accounts.
    await eventually(lambda: knows_account(alice, "bob"))
    await eventually(lambda: knows_account(bob, "alice"))
    await alice.send("PRIVMSG bob :a0")
    await bob.expect("PRIVMSG")
    await alice.sync()
    assert await history(alice, "bob") == ["a0"]  # n1 has the window cached now
    for text in ("b0", "b1"):
        await bob.send(f"PRIVMSG alice :{text}")
        await alice.expect("PRIVMSG", lambda m, t=text: m.params[-1] == t)  # type: ignore[misc]
        # Seen live, so in history at once, though n2 stored it.
        assert (await history(alice, "bob"))[-1] == text
    assert await history(bob, "alice") == ["a0", "b0", "b1"]
    await alice.close()
    await bob.close()


async def test_private_history_of_two_users_on_one_node_read_on_another(
    cluster: Cluster,
) -> None:
    """A conversation between two users of n1, read by one of them from n2 too: n2's
    cached window must not hide what n1 stored after it was cached."""
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    caps = ["draft/chathistory", "batch", "server-time", "message-tags"]
    alice = await connect(p1, "alice", caps)
    bob = await connect(p1, "bob", caps)
    for c in (alice, bob):
        await register_account(c)
    phone = await connect(p2, "alicephone", caps)  # alice's second session, on n2
    await eventually(lambda: _identified(phone, "alice"))

    async def history(c: IRCTestClient) -> list[str]:
        await c.send("CHATHISTORY LATEST bob * 10")
        lines = await c.collect_until("BATCH", timeout=5)
        lines += await c.collect_until("BATCH", timeout=5)
        return [m.params[1] for m in lines if m.command == "PRIVMSG" and "batch" in m.tags]

    await alice.send("PRIVMSG bob :first")
    await bob.expect("PRIVMSG")
    await alice.sync()
    assert await history(phone) == ["first"]  # n2 has the window cached now
    await alice.send("PRIVMSG bob :second")
    await bob.expect("PRIVMSG")
    await alice.sync()

    async def phone_sees_second() -> bool:
        return (await history(phone))[-1:] == ["second"]

    await eventually(phone_sees_second)
    for c in (alice, bob, phone):
        await c.close()


async def _identified(c: IRCTestClient, account: str) -> bool:
    """NickServ IDENTIFY, once n2 knows the account (it may be an event away)."""
    await c.send(f"NS IDENTIFY {account} long-password")
    return any(m.command == "900" for m in await c.collect_until("900", "NOTICE", timeout=5))


async def test_a_dropped_account_is_gone_on_every_node(cluster: Cluster, oper_hash: str) -> None:
    from tests.conftest import OPER_NAME, OPER_PASSWORD

    p1 = cluster.start("n1", opers={OPER_NAME: oper_hash})
    p2 = cluster.start("n2")
    user = await connect(p2, "yuri")
    assert [m.command for m in await ask(user, "REGISTER * * yuri-password")] == [
        "REGISTER", "900"]
    await user.join("#c")
    root = await connect(p1, "root", ["account-notify"])
    await root.join("#c")
    await user.expect("JOIN", lambda m: (m.source or "").startswith("root!"))
    assert "381" in [m.command for m in await ask(root, f"OPER {OPER_NAME} :{OPER_PASSWORD}")]
    await root.send("NS DROP yuri")
    assert (await user.expect("901", timeout=5)).params[-1] == "You are now logged out"
    got = await root.expect("ACCOUNT", timeout=5)
    assert got.source and got.source.startswith("yuri!") and got.params == ["*"]
    # The name is no longer reserved: once yuri has gone, anyone may take the nick.
    await user.send("QUIT :bye")
    await user.wait_closed()
    other = await connect(p2, "other")

    async def takes_the_nick() -> bool:
        # Clustered, NICK is answered once Redis has granted the claim: wait for it.
        await other.send("NICK yuri")
        return (await other.collect_until("NICK", "433", timeout=5))[-1].command == "NICK"

    await eventually(takes_the_nick)
    for c in (root, other):
        await c.close()


async def test_read_markers_reach_the_accounts_sessions_on_other_nodes(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    first = await connect(p1, "rm_a", ["draft/read-marker"])
    assert "900" in [m.command for m in await ask(first, "REGISTER rm * marker-password")]
    second = await connect(p2, "rm_b", ["draft/read-marker"])

    async def logged_in_on_n2() -> bool:  # n2 learns of the new account's name
        msgs = await ask(second, "NS IDENTIFY rm marker-password")
        return "900" in [m.command for m in msgs]

    await eventually(logged_in_on_n2)
    stamp = "timestamp=2026-01-02T03:04:05.678Z"
    await first.send(f"MARKREAD #room {stamp}")
    got = await second.expect("MARKREAD", timeout=5)
    assert got.params == ["#room", stamp]
    assert [m.params for m in await ask(second, "MARKREAD #room") if m.command == "MARKREAD"] == [
        ["#room", stamp]]
    await first.close()
    await second.close()


async def test_what_an_outage_lost_is_read_from_the_store_after(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    maker = await connect(p1, "maker", ["draft/read-marker"])
    bob = await connect(p2, "bob", ["draft/read-marker"])
    cluster.redis.stop()
    # n1's newacct and markread events are lost; the shared store has both.
    assert [m.command for m in await ask(maker, "REGISTER zoe * zoe-password")] == [
        "REGISTER", "900"]
    stamp = "timestamp=2026-01-02T03:04:05.678Z"
    assert [m.params for m in await ask(maker, f"MARKREAD #room {stamp}")] == [["#room", stamp]]
    # So are a channel registration and a memo (chanreg and memo events).
    await maker.join("#zroom")
    assert service_says(await ask(maker, "CS REGISTER #zroom"), "ChanServ") == [
        "#zroom is registered to zoe"]
    assert service_says(await ask(maker, "MS SEND zoe remember"), "MemoServ") == [
        "Memo sent to zoe"]
    cluster.redis.start()

    async def reserved_on_n2() -> bool:
        msgs = await ask(bob, "NICK zoe")
        return any(m.command == "433" and "reserved" in m.params[-1] for m in msgs)

    await eventually(reserved_on_n2, timeout=15)
    info = service_says(await ask(bob, "CS INFO #zroom"), "ChanServ")
    assert info and info[0].startswith("#zroom is registered to zoe"), info
    msgs = await ask(bob, "NS IDENTIFY zoe zoe-password")
    assert "900" in [m.command for m in msgs]
    assert service_says(msgs, "MemoServ") == ["You have 1 unread memo: /msg MemoServ READ NEW"]
    markers = [m.params for m in await ask(bob, "MARKREAD #room") if m.command == "MARKREAD"]
    assert markers == [["#room", stamp]]
    await maker.close()
    await bob.close()


async def test_an_account_registered_by_a_client_that_left_is_known_everywhere(
    cluster: Cluster,
) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    quick = await connect(p1, "quick")
    await quick.send("REGISTER * * long-password")
    await quick.close()  # gone before the store (and scrypt) answered
    other = await connect(p2, "other")

    async def reserved_on_n2() -> bool:
        msgs = await ask(other, "NICK quick")
        return any(m.command == "433" and "reserved" in m.params[-1] for m in msgs)

    await eventually(reserved_on_n2)
    await other.close()


async def test_a_node_restarted_at_once_under_its_id_is_heard_again(cluster: Cluster) -> None:
    """Killed and back within --cluster-dead-after (as a container restart does): its
    counters start again, yet the other node must not take its new events for old
    ones. The old run's user quits, the new run's users are seen and heard."""
    p1 = cluster.start("n1", cluster_dead_after=30.0)
    p2 = cluster.start("n2", cluster_dead_after=30.0)
    watcher = await connect(p1, "watcher")
    await watcher.join("#rs")
    before = await connect(p2, "before")
    await before.join("#rs")
    await watcher.expect("JOIN", lambda m: (m.source or "").startswith("before!"))
    for n in range(5):
        await before.send(f"PRIVMSG #rs :old {n}")
    await watcher.expect("PRIVMSG", lambda m: m.params[-1] == "old 4")
    cluster.stop("n2", announce=False)  # a crash: no bye
    p2 = cluster.start("n2", cluster_dead_after=30.0)
    quit_ = await watcher.expect("QUIT", lambda m: (m.source or "").startswith("before!"),
                                 timeout=10)  # fmt: skip
    assert quit_.params == ["*.net *.split"]
    after = await connect(p2, "after")
    await after.join("#rs")
    await watcher.expect("JOIN", lambda m: (m.source or "").startswith("after!"), timeout=10)
    await after.send("PRIVMSG #rs :new run")
    assert (await watcher.expect("PRIVMSG", timeout=10)).params == ["#rs", "new run"]
    assert await names(watcher, "#rs") == {"watcher", "after"}
    for c in (watcher, after):
        await c.close()


async def test_a_crashed_nodes_users_quit_in_history_and_a_returning_user_sees_only_news(
    cluster: Cluster,
) -> None:
    """A node killed: its users' QUITs, which the others' members saw, were kept by
    nobody, and a user coming back (elsewhere, or to the restarted node) was replayed
    what it had seen live, its departure unknown. The surviving node keeps them."""
    p1 = cluster.start("n1")
    p2 = cluster.start("n2")
    watcher = await connect(p1, "watcher", ["batch", "server-time", "message-tags",
                                            "draft/chathistory", "draft/event-playback"])
    await watcher.join("#crash")
    frank = await connect(p2, "frank")
    await frank.join("#crash")
    await watcher.expect("JOIN", lambda m: (m.source or "").startswith("frank!"))
    await watcher.send("PRIVMSG #crash :seen by frank")
    await frank.expect("PRIVMSG", lambda m: m.params[-1] == "seen by frank")
    await asyncio.to_thread(cluster.stop, "n2", announce=False)  # a crash: no bye
    quit_ = await watcher.expect("QUIT", lambda m: (m.source or "").startswith("frank!"),
                                 timeout=10)  # fmt: skip
    await watcher.send("PRIVMSG #crash :said while frank was away")
    await watcher.send("CHATHISTORY LATEST #crash * 10")
    rows = await watcher.collect_until("BATCH", timeout=5)
    rows += await watcher.collect_until("BATCH", timeout=5)
    # The QUIT as members here saw it. (This stop, unlike kill -9, also runs n2's
    # shutdown, which keeps a QUIT of its own, "Server shutting down".)
    assert quit_.tags["msgid"] in [m.tags.get("msgid") for m in rows if m.command == "QUIT"]
    back = await IRCTestClient.open(p1)  # the same user@host, on the surviving node
    await back.send("NICK frank_")  # (frank's lease may outlive n2 by a moment)
    await back.send("USER frank 0 * :Frank again")
    await back.collect_until("376", "422")
    await back.send("JOIN #crash")
    played = [m.params[-1] for m in await back.collect_until("366")]
    played += [m.params[-1] for m in await back.collect_until(
        "NOTICE", lambda m: "said while frank was away" in m.params[-1], timeout=5)]
    assert not any("seen by frank" in text for text in played)
    for c in (watcher, back):
        await c.close()


async def channel_history(c: IRCTestClient, channel: str) -> list[str]:
    await c.send(f"CHATHISTORY LATEST {channel} * 50")
    lines = await c.collect_until("BATCH", timeout=5)
    lines += await c.collect_until("BATCH", timeout=5)
    return [m.params[-1] for m in lines if m.command == "PRIVMSG" and "batch" in m.tags]


async def test_messages_sent_while_redis_was_away_reach_the_other_node(
    cluster: Cluster,
) -> None:
    """Published into a Redis that was not there: lost in transit, but stored. When
    Redis is back the other node sees from the snapshot that the channel moved on,
    and delivers them from the store, late and once."""
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    ra = await connect(p1, "ra")
    rb = await connect(p2, "rb", ["batch", "server-time", "message-tags", "draft/chathistory"])
    await ra.join("#rec")
    await rb.join("#rec")
    await ra.expect("JOIN", lambda m: (m.source or "").startswith("rb!"))
    await ra.send("PRIVMSG #rec :before")
    await rb.expect("PRIVMSG", lambda m: m.params[-1] == "before")
    assert await channel_history(rb, "#rec") == ["before"]  # n2 caches the window
    cluster.redis.stop()
    for n in range(4):
        await ra.send(f"PRIVMSG #rec :during {n}")
    await ra.sync()
    await asyncio.sleep(0.3)
    cluster.redis.start()
    got = [await rb.expect("PRIVMSG", timeout=10) for _ in range(4)]
    assert [m.params[-1] for m in got] == [f"during {n}" for n in range(4)]
    await ra.send("PRIVMSG #rec :after")
    assert (await rb.expect("PRIVMSG", timeout=5)).params[-1] == "after"  # none twice
    # And n2's history is not the window it cached before the outage.
    assert await channel_history(rb, "#rec") == [
        "before", *(f"during {n}" for n in range(4)), "after"]
    for c in (ra, rb):
        await c.close()


class CuttingProxy:
    """TCP between a node and the real Redis that cuts, once when armed, the connection
    on which a command containing ``marker`` comes: a pooled connection Redis closed
    (it restarted) that the pool did not know about yet."""

    def __init__(self, redis_port: int, marker: bytes) -> None:
        self.redis_port = redis_port
        self.marker = marker
        self.armed = False
        self.cut = 0

    async def start(self) -> int:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.server = server
        return int(server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.redis_port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
            while data := await src.read(65536):
                if up and self.armed and self.marker in data:
                    self.armed = False
                    self.cut += 1
                    writer.close()
                    up_writer.close()
                    return
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False),
                             return_exceptions=True)  # fmt: skip


async def test_a_nick_release_survives_a_connection_redis_closed(cluster: Cluster) -> None:
    """A command on a pooled connection that Redis had closed (it restarted) is sent
    again on a new one: the release of a quitting user's nick failed so, and the nick
    stayed claimed for its whole lease (a claim failing so was "granted locally",
    splitting the nick between two nodes)."""
    proxy = CuttingProxy(cluster.redis.port, b"EVAL")
    proxy_port = await proxy.start()
    config = replace(cluster.config("n2", nick_lease=30.0, cluster_heartbeat=30.0),
                     redis=f"redis://127.0.0.1:{proxy_port}/0")  # fmt: skip
    node = BackgroundServer(config, "asyncio")
    port = node.start()
    cluster.nodes["n2"] = node
    try:
        zed = await connect(port, "zed")
        r = redis.Redis(port=cluster.redis.port)
        assert r.get(NICK_KEY + "zed") is not None
        proxy.armed = True
        await zed.send("QUIT :bye")
        await zed.wait_closed()

        async def released() -> bool:
            return r.get(NICK_KEY + "zed") is None

        await eventually(released, timeout=5)  # not the 30 s lease
        assert proxy.cut == 1
    finally:
        proxy.server.close()


async def test_a_nick_taken_on_both_nodes_while_redis_was_away_is_sorted_out(
    cluster: Cluster,
) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    cluster.redis.stop()
    first = await connect(p1, "twin")  # granted locally on each node
    second = await connect(p2, "twin")
    cluster.redis.start()
    renamed = await second.expect("NICK", timeout=10)
    assert (renamed.source or "").startswith("twin!") and renamed.params == ["twin_"]
    await second.expect("NOTICE", lambda m: "had it first" in m.params[-1])

    async def one_each() -> bool:
        await first.send("WHOIS twin_")
        return any(m.command == "311" for m in await first.collect_until("318"))

    await eventually(one_each, timeout=5)
    await first.send("PRIVMSG twin_ :found you")
    assert (await second.expect("PRIVMSG", timeout=5)).params == ["twin_", "found you"]
    for c in (first, second):
        await c.close()


async def test_a_private_message_sent_while_redis_was_away_reaches_its_recipient(
    cluster: Cluster,
) -> None:
    """Between accounts it is stored; the event carrying it to the other node was lost.
    When Redis is back the recipient's node recovers it from the store, once."""
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    bob = await connect(p2, "bob")
    for c in (alice, bob):
        await register_account(c)
    await alice.send("PRIVMSG bob :before")
    await bob.expect("PRIVMSG", lambda m: m.params[-1] == "before", timeout=5)
    cluster.redis.stop()
    await alice.send("PRIVMSG bob :while Redis was away")
    await alice.sync()
    await asyncio.sleep(0.3)
    cluster.redis.start()
    got = await bob.expect("PRIVMSG", timeout=10)
    assert (got.source or "").startswith("alice!")
    assert got.params == ["bob", "while Redis was away"]
    await alice.send("PRIVMSG bob :after")
    assert (await bob.expect("PRIVMSG", timeout=10)).params[-1] == "after"  # none twice
    for c in (alice, bob):
        await c.close()



async def private_until(c: IRCTestClient, sender: str, last: str) -> list[tuple[str, str]]:
    """(command, text) of each PRIVMSG and NOTICE from ``sender`` to ``c``, up to and
    including the one saying ``last``."""
    got: list[tuple[str, str]] = []
    while not got or got[-1][1] != last:
        m = await c.read_message(timeout=10)
        if m.command in ("PRIVMSG", "NOTICE") and (m.source or "").startswith(sender + "!"):
            got.append((m.command, m.params[-1]))
    return got


async def no_more_from(c: IRCTestClient, sender: str) -> None:
    """Nothing more from ``sender`` after a few heartbeats (a second recovery)."""
    await asyncio.sleep(1.0)
    late = [m for m in await c.sync() if (m.source or "").startswith(sender + "!")]
    assert late == []


async def test_private_messages_without_accounts_sent_while_redis_was_away_arrive_once(
    cluster: Cluster,
) -> None:
    """Not between accounts, a private message is kept in no conversation: it crossed
    nodes only as its event, and one sent while Redis was away was echoed to its sender
    and never delivered. Its node keeps it as a transit row, which the recipient's node
    reads after the gap: each delivered once, and none delivered live again."""
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice", ["echo-message"])
    bob = await connect(p2, "bob")
    await eventually(lambda: "bob" in cluster.bus("n1").core.nicks)
    await alice.send("PRIVMSG bob :before")  # within the recovery's clock-skew margin
    assert await private_until(bob, "alice", "before") == [("PRIVMSG", "before")]
    cluster.redis.stop()
    await alice.send("PRIVMSG bob :while Redis was away")
    await alice.send("NOTICE bob :a notice too")
    await alice.expect("NOTICE", lambda m: m.params == ["bob", "a notice too"])  # the echo
    await asyncio.sleep(0.3)
    cluster.redis.start()
    got = await private_until(bob, "alice", "a notice too")
    await alice.send("PRIVMSG bob :after")
    got += await private_until(bob, "alice", "after")
    assert got == [
        ("PRIVMSG", "while Redis was away"), ("NOTICE", "a notice too"), ("PRIVMSG", "after")]
    await no_more_from(bob, "alice")
    for c in (alice, bob):
        await c.close()


@pytest.mark.parametrize("logged_in", ["recipient", "sender"])
async def test_a_private_message_between_an_account_and_none_lost_in_a_gap_arrives_once(
    cluster: Cluster, logged_in: str
) -> None:
    """One side logged in, the other not: no conversation keeps the message (a nick is
    not an identity), so it is recovered as a transit row too."""
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice")
    bob = await connect(p2, "bob")
    await register_account(bob if logged_in == "recipient" else alice)
    await eventually(lambda: "bob" in cluster.bus("n1").core.nicks)
    await alice.send("PRIVMSG bob :before")
    assert await private_until(bob, "alice", "before") == [("PRIVMSG", "before")]
    cluster.redis.stop()
    await alice.send("PRIVMSG bob :while Redis was away")
    await alice.sync()
    await asyncio.sleep(0.3)
    cluster.redis.start()
    got = await private_until(bob, "alice", "while Redis was away")
    await alice.send("PRIVMSG bob :after")
    got += await private_until(bob, "alice", "after")
    assert got == [("PRIVMSG", "while Redis was away"), ("PRIVMSG", "after")]
    await no_more_from(bob, "alice")
    for c in (alice, bob):
        await c.close()


async def test_no_client_request_reaches_transit_rows(cluster: Cluster) -> None:
    """A transit row's target (``%`` and the recipient's uid) is no nick, account or
    channel: CHATHISTORY, TARGETS and SEARCH answer as if it did not exist, for the
    recipient itself (logged in) as for anyone."""
    caps = ["batch", "server-time", "message-tags", "draft/chathistory", "soju.im/search"]
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice", caps)
    bob = await connect(p2, "bob", caps)
    await register_account(bob)
    await eventually(lambda: "bob" in cluster.bus("n1").core.nicks)
    await alice.send("PRIVMSG bob :transit secret")
    await bob.expect("PRIVMSG", lambda m: m.params[-1] == "transit secret", timeout=5)
    core = cluster.bus("n2").core
    key = transit_key(core.uid(core.nicks["bob"]), run_of(core))  # '%', uid, n2's run
    await eventually(lambda: stored_targets(cluster.db, "transit secret") == [key])
    for reader in (bob, alice):
        for target in (key, key.upper()):
            await reader.send(f"CHATHISTORY LATEST {target} * 10")
            fail = await reader.expect("FAIL", timeout=5)
            assert fail.params[:2] == ["CHATHISTORY", "INVALID_TARGET"]
            await reader.send(f"CHATHISTORY AFTER {target} timestamp=2000-01-01T00:00:00.000Z 10")
            fail = await reader.expect("FAIL", timeout=5)
            assert fail.params[:2] == ["CHATHISTORY", "INVALID_TARGET"]
        await reader.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z "
                          "timestamp=2100-01-01T00:00:00.000Z 50")
        listed = await reader.collect_until("BATCH", timeout=5)
        listed += await reader.collect_until("BATCH", timeout=5)
        assert [m for m in listed if m.command == "CHATHISTORY"] == []
        await reader.send("SEARCH text=transit")
        found = await reader.collect_until("BATCH", timeout=5)
        found += await reader.collect_until("BATCH", timeout=5)
        assert [m for m in found if m.command == "PRIVMSG"] == []
        await reader.send(f"SEARCH in={key};text=transit")
        assert (await reader.expect("FAIL", timeout=5)).params[:2] == ["SEARCH", "INVALID_TARGET"]
    for c in (alice, bob):
        await c.close()


def stored_targets(db: str, text: str) -> list[str]:
    """The targets of the rows saying ``text`` in the cluster's shared store."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT target FROM messages WHERE text = ?", (text,)).fetchall()
    return [str(r[0]) for r in rows]


async def test_messages_lost_after_events_that_came_late_are_recovered(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events that came late (Redis paused and resumed, or here the receiving node's
    loop held up) and then a gap: the recovery starts from when the last event heard
    was sent, not when it came, so the messages lost in between (here while Redis was
    away) arrive. They were lost for good whenever the delay outlasted the clock-skew
    margin (shortened here, so that the test need not wait 5 s), as Redis paused for
    10 s did every time: a private message outside conversations, and a channel's
    first message."""
    from server.cluster import apply

    monkeypatch.setattr(apply, "CLOCK_SKEW_MS", 500)
    p1 = cluster.start("n1", cluster_dead_after=10.0)
    p2 = cluster.start("n2", cluster_dead_after=10.0)
    alice = await connect(p1, "alice", ["echo-message"])
    bob = await connect(p2, "bob")
    await alice.send("JOIN #late")
    await bob.send("JOIN #late")
    for node in ("n1", "n2"):
        channels = cluster.bus(node).core.channels
        await eventually(lambda c=channels: "#late" in c and len(c["#late"].members) == 2)
    await alice.send("PRIVMSG bob :before")
    assert await private_until(bob, "alice", "before") == [("PRIVMSG", "before")]
    n2_loop = cluster.nodes["n2"].server.loop  # type: ignore[attr-defined]
    n2_loop.call_soon_threadsafe(time.sleep, 3.0)  # n2 reads nothing for 3 s
    await alice.send("PRIVMSG bob :sent in time, heard late")
    await alice.expect("PRIVMSG", lambda m: m.params[-1] == "sent in time, heard late")
    await asyncio.sleep(0.3)  # published: it waits in n2's socket
    cluster.redis.stop()
    await alice.send("PRIVMSG bob :lost while Redis was away")
    await alice.send("PRIVMSG #late :lost in the channel too")
    await alice.expect("PRIVMSG", lambda m: m.params[0] == "#late")  # the echo
    await asyncio.sleep(1.0)
    cluster.redis.start()
    got: list[str] = []
    while len(got) < 3:
        m = await bob.read_message(timeout=10)
        if m.command == "PRIVMSG" and (m.source or "").startswith("alice!"):
            got.append(f"{m.params[0]} {m.params[-1]}")
    assert sorted(got) == ["#late lost in the channel too", "bob lost while Redis was away",
                           "bob sent in time, heard late"]
    for c in (alice, bob):
        await c.close()


async def test_a_recovery_whose_store_read_failed_is_tried_again(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The store unavailable when a gap showed (a restart, a dropped connection): the
    messages the gap lost were never delivered. The read is tried again, and the
    channel's live messages, held while it was read, are not held behind the retries."""
    from server.cluster import bus as bus_module

    monkeypatch.setattr(bus_module, "RECOVER_RETRY_FIRST", 0.2)
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice", ["echo-message"])
    bob = await connect(p2, "bob")
    for c in (alice, bob):
        await c.send("JOIN #retry")
    channels = cluster.bus("n2").core.channels
    await eventually(lambda: "#retry" in channels and len(channels["#retry"].members) == 2)
    history = cluster.bus("n2").history
    real_read = history.query_store
    failures = [0]

    async def failing_read(query: object) -> object:
        if failures[0] < 3:  # each gap brings two recoveries: both fail, then one retry
            failures[0] += 1
            raise sqlite3.OperationalError("disk I/O error")
        return await real_read(query)

    monkeypatch.setattr(history, "query_store", failing_read)
    cluster.redis.stop()
    await alice.send("PRIVMSG #retry :lost while Redis was away")
    await alice.expect("PRIVMSG", lambda m: m.params[-1] == "lost while Redis was away")
    await asyncio.sleep(0.3)
    cluster.redis.start()
    await eventually(lambda: failures[0] >= 2, timeout=10)
    await alice.send("PRIVMSG #retry :live after the gap")
    got: list[str] = []
    while len(got) < 2:
        m = await bob.read_message(timeout=10)
        if m.command == "PRIVMSG" and (m.source or "").startswith("alice!"):
            got.append(m.params[-1])
    assert sorted(got) == ["live after the gap", "lost while Redis was away"]
    assert failures[0] == 3
    await no_more_from(bob, "alice")
    assert any("failed again" in r.getMessage() for r in caplog.records)
    for c in (alice, bob):
        await c.close()


async def test_a_gap_longer_than_one_read_is_recovered_from_its_start(cluster: Cluster) -> None:
    """A recovery read a channel's newest 100 rows, and a conversation's first 100
    since the gap began: at 10 messages a second a 10 s outage lost the rest (the
    oldest in the channel, the newest in the conversation). Both are read from the
    gap's start, oldest first, in pages: every message arrives, once."""
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice", ["echo-message"])
    bob = await connect(p2, "bob")
    for c in (alice, bob):
        await register_account(c)
        await c.send("JOIN #long")
    channels = cluster.bus("n2").core.channels
    await eventually(lambda: "#long" in channels and len(channels["#long"].members) == 2)
    await eventually(lambda: cluster.bus("n1").core.nicks["bob"].account == "bob")
    await alice.send("PRIVMSG #long :before")
    await alice.send("PRIVMSG bob :before")
    want = ["#long before", "bob before"]
    got: list[str] = []
    while len(got) < 2:
        m = await bob.read_message(timeout=10)
        if m.command == "PRIVMSG" and (m.source or "").startswith("alice!"):
            got.append(f"{m.params[0]} {m.params[-1]}")
    cluster.redis.stop()
    for n in range(150):
        await alice.send(f"PRIVMSG #long :lost {n}")
        await alice.send(f"PRIVMSG bob :lost {n}")
        want += [f"#long lost {n}", f"bob lost {n}"]
    await alice.expect("PRIVMSG", lambda m: m.params == ["bob", "lost 149"], timeout=10)
    await asyncio.sleep(0.3)
    cluster.redis.start()
    while len(got) < len(want):
        m = await bob.read_message(timeout=10)
        if m.command == "PRIVMSG" and (m.source or "").startswith("alice!"):
            got.append(f"{m.params[0]} {m.params[-1]}")
    assert sorted(got) == sorted(want)
    await no_more_from(bob, "alice")
    for c in (alice, bob):
        await c.close()
