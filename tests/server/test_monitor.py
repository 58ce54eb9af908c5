"""MONITOR (IRCv3) over real TCP, on every backend."""

from __future__ import annotations

import pytest

from chat.message import Message
from server.core.core import ServerCore
from tests.conftest import RunningServer, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, mask, quit_and_wait


def replies(msgs: list[Message], code: str) -> list[str]:
    return [m.params[-1] for m in msgs if m.command == code]


async def test_isupport_advertises_the_limit(server: RunningServer) -> None:
    c = await IRCTestClient.open(server.port)
    server.clients.append(c)
    burst = await c.register("alice")
    tokens = [t for m in burst if m.command == "005" for t in m.params[1:-1]]
    assert "MONITOR=100" in tokens


async def test_watchers_hear_nicks_come_and_go(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, "MONITOR + Bob,carol")
    assert replies(msgs, "731") == ["Bob,carol"]  # as written, both offline
    bob = await server.client("bob")  # casemapped: Bob is bob
    assert (await alice.expect("730")).params == ["alice", mask(bob)]
    await bob.send("NICK bobby")
    assert (await alice.expect("731")).params == ["alice", "bob"]
    await bob.send("NICK BOB")
    await bob.expect("NICK")
    assert (await alice.expect("730")).params == ["alice", "BOB!~bob@127.0.0.1"]
    await bob.send("NICK Bob")  # a change of case gives nothing up: no 731/730
    await bob.expect("NICK")
    assert replies(await ask(alice, "MONITOR S"), "730") == ["Bob!~bob@127.0.0.1"]
    await quit_and_wait(bob)
    assert (await alice.expect("731")).params == ["alice", "Bob"]
    carol = await server.client("carol")
    assert (await alice.expect("730")).params == ["alice", mask(carol)]
    # Adding a nick someone holds answers 730 at once.
    dave = await server.client("dave")
    msgs = await ask(alice, "MONITOR + dave,nobody")
    assert replies(msgs, "730") == [mask(dave)]
    assert replies(msgs, "731") == ["nobody"]


async def test_list_remove_clear_and_status(server: RunningServer) -> None:
    alice = await server.client("alice")
    await server.client("bob")
    await ask(alice, "MONITOR + bob,carol,#chan,dave")  # a channel is not a nick: ignored
    msgs = await ask(alice, "MONITOR L")
    assert [m.command for m in msgs] == ["732", "733"]
    assert msgs[0].params == ["alice", "bob,carol,dave"]
    assert msgs[1].params == ["alice", "End of MONITOR list"]
    assert await ask(alice, "MONITOR - CAROL") == []
    assert replies(await ask(alice, "MONITOR L"), "732") == ["bob,dave"]
    msgs = await ask(alice, "MONITOR S")
    assert replies(msgs, "730") == ["bob!~bob@127.0.0.1"]
    assert replies(msgs, "731") == ["dave"]
    assert await ask(alice, "MONITOR C") == []
    assert [m.command for m in await ask(alice, "MONITOR L")] == ["733"]
    await server.client("carol")  # no longer watched: alice hears nothing
    assert [m.command for m in await alice.sync()] == []
    assert [m.command for m in await ask(alice, "MONITOR +")] == ["461"]
    assert await ask(alice, "MONITOR X") == []  # no such subcommand: ignored


@pytest.mark.parametrize("server_config", [suite_config(monitor_limit=2)])
async def test_the_list_is_bounded(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, "MONITOR + n1,n2,n3,n4")
    full = [m for m in msgs if m.command == "734"]
    assert [m.params for m in full] == [["alice", "2", "n3,n4", "Monitor list is full"]]
    assert replies(msgs, "731") == ["n1,n2"]
    assert replies(await ask(alice, "MONITOR + n1"), "731") == ["n1"]  # already there
    assert replies(await ask(alice, "MONITOR L"), "732") == ["n1,n2"]


async def test_a_watcher_that_leaves_is_forgotten(server: RunningServer) -> None:
    alice = await server.client("alice")
    await ask(alice, "MONITOR + bob")
    await quit_and_wait(alice)
    watcher = await server.client("erin")
    await ask(watcher, "MONITOR + bob")
    bob = await server.client("bob")  # erin is told; alice's closed connection is not
    assert (await watcher.expect("730")).params == ["erin", mask(bob)]


def test_the_index_forgets_watchers_and_empty_nicks() -> None:
    core = ServerCore(suite_config(db=""), lambda: 1_790_000_000.0)
    for conn_id, nick in ((1, "alice"), (2, "erin")):
        core.connect(conn_id, "127.0.0.1", 40000 + conn_id)
        core.data_received(conn_id, f"NICK {nick}\r\nUSER u 0 * :R\r\n".encode())
        core.data_received(conn_id, b"MONITOR + bob,carol\r\n")
    core.data_received(2, b"MONITOR - carol\r\n")
    assert {f: sorted(c.nick for c in w) for f, w in core.monitor.watchers.items()} == {
        "bob": ["alice", "erin"], "carol": ["alice"]
    }  # fmt: skip
    core.connection_lost(1)
    assert {f: [c.nick for c in w] for f, w in core.monitor.watchers.items()} == {"bob": ["erin"]}
    core.data_received(2, b"MONITOR C\r\n")
    assert core.monitor.watchers == {}
    assert core.clients[2].monitoring is None


# ---------------------------------------------------------------------- extended-monitor


async def test_extended_monitor_sends_away_and_setname_to_watchers(server: RunningServer) -> None:
    caps = ["extended-monitor", "away-notify", "setname"]
    watcher = await server.client("watcher", caps=caps)
    plain = await server.client("plain", caps=["away-notify", "setname"])  # no extended-monitor
    await ask(watcher, "MONITOR + bob")
    await ask(plain, "MONITOR + bob")
    bob = await server.client("bob")
    await watcher.expect("730")
    await bob.send("AWAY :lunch")
    got = await watcher.expect("AWAY")
    assert (got.source, got.params) == (mask(bob), ["lunch"])
    await bob.send("AWAY")
    assert (await watcher.expect("AWAY")).params == []
    await bob.send("SETNAME :Bob Builder")
    got = await watcher.expect("SETNAME")
    assert (got.source, got.params) == (mask(bob), ["Bob Builder"])
    # Without extended-monitor, watching is not sharing a channel: nothing.
    assert [m.command for m in await plain.sync()] == ["730"]


async def test_extended_monitor_needs_the_notify_cap_and_never_doubles(
    server: RunningServer,
) -> None:
    both = await server.client("both", caps=["extended-monitor", "away-notify"])
    no_away = await server.client("noaway", caps=["extended-monitor"])
    bob = await server.client("bob")
    for c in (both, no_away):
        await ask(c, "MONITOR + bob")
    for c in (both, bob):
        await c.send("JOIN #shared")
        await c.expect("366")
    await both.sync()
    await bob.send("AWAY :gone")
    await bob.expect("306")
    got = await both.sync()
    assert [(m.command, m.params) for m in got] == [("AWAY", ["gone"])]  # once, not twice
    assert [m.command for m in await no_away.sync()] == []  # away-notify not enabled


async def test_watching_ones_own_nick_says_nothing_as_one_quits(server: RunningServer) -> None:
    me = await server.client("narcissus")
    other = await server.client("echo_m")
    await ask(me, "MONITOR + narcissus")
    await ask(other, "MONITOR + narcissus")
    await me.send("QUIT :bye")
    last = await me.wait_closed()
    assert [m.command for m in last] == ["ERROR"]  # no 731 about itself first
    assert [(m.command, m.params[1]) for m in await other.sync()] == [("731", "narcissus")]
