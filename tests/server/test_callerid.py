"""Caller ID (user mode +g and ACCEPT, as on charybdis/solanum) over real TCP, on every
backend; the once-a-minute 718 and the per-client state against the core directly."""

from __future__ import annotations

import pytest

from chat.message import Message
from server.config import ServerConfig
from server.core.core import ServerCore
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, only, quit_and_wait

IGNORING = "is in +g mode (server-side ignore.)"
INFORMED = "has been informed that you messaged them."
TOLD = "is messaging you, and you have umode +g."


@pytest.fixture
def server_config(oper_hash: str) -> ServerConfig:
    return suite_config(opers={OPER_NAME: oper_hash})


def params(msgs: list[Message], code: str) -> list[list[str]]:
    return [m.params for m in msgs if m.command == code]


async def plus_g(c: IRCTestClient) -> None:
    assert params(await ask(c, f"MODE {c.nick} +g"), "MODE") == [[c.nick, "+g"]]


async def accept_list(c: IRCTestClient) -> list[str]:
    msgs = await ask(c, "ACCEPT *")
    assert msgs[-1].params == [c.nick, "End of /ACCEPT list."] and msgs[-1].command == "282"
    return [nick for p in params(msgs, "281") for nick in p[1:]]


async def gets(target: IRCTestClient, sender: IRCTestClient, text: str) -> bool:
    """Whether ``sender``'s PRIVMSG reaches ``target`` (and what the sender is told)."""
    await target.sync()
    replies = await ask(sender, f"PRIVMSG {target.nick} :{text}")
    got = only(await target.sync(), "PRIVMSG")
    if got:
        assert [m.params[-1] for m in got] == [text] and not replies
    return bool(got)


async def test_isupport_myinfo_and_help(server: RunningServer) -> None:
    c = await IRCTestClient.open(server.port)
    server.clients.append(c)
    burst = await c.register("alice")
    tokens = [t for m in burst if m.command == "005" for t in m.params[1:-1]]
    assert "CALLERID=g" in tokens and "ACCEPT=50" in tokens
    (myinfo,) = [m for m in burst if m.command == "004"]
    assert "g" in myinfo.params[3]
    help_accept = await ask(c, "HELP ACCEPT")
    assert help_accept[0].command == "704" and help_accept[0].params[1] == "accept"
    assert help_accept[0].params[2].startswith("ACCEPT <nick>")
    umodes = " ".join(m.params[-1] for m in await ask(c, "HELP UMODES"))
    assert "+g private messages only from your ACCEPT list" in umodes


async def test_g_drops_private_messages_and_tells_both_sides(server: RunningServer) -> None:
    alice = await server.client("alice")
    await plus_g(alice)
    bob = await server.client("bob")
    replies = await ask(bob, "PRIVMSG alice :hello?")
    assert [(m.command, m.params) for m in replies] == [
        ("716", ["bob", "alice", IGNORING]),
        ("717", ["bob", "alice", INFORMED]),
    ]
    told = await alice.sync()
    assert [(m.command, m.params) for m in told] == [
        ("718", ["alice", "bob", "~bob@127.0.0.1", TOLD])]
    # Within the minute another sender (or the same) gets 716 alone, and alice nothing:
    # the target is told once a minute, whoever writes.
    carol = await server.client("carol")
    assert [(m.command, m.params) for m in await ask(carol, "PRIVMSG alice :me too")] == [
        ("716", ["carol", "alice", IGNORING])]
    # (A repeated target is one target: one 716.)
    assert [m.command for m in await ask(bob, "PRIVMSG alice,alice :again")] == ["716"]
    assert [m.command for m in await ask(bob, "PRIVMSG alice :again")] == ["716"]
    assert await alice.sync() == []


async def test_notice_and_tagmsg_are_dropped_without_a_word(server: RunningServer) -> None:
    alice = await server.client("alice", ["message-tags"])
    await plus_g(alice)
    bob = await server.client("bob", ["message-tags"])
    assert await ask(bob, "NOTICE alice :psst") == []
    assert await ask(bob, "@+typing=active TAGMSG alice") == []
    assert await alice.sync() == []
    # Neither used up the minute's 718: the first PRIVMSG still tells alice.
    assert [m.command for m in await ask(bob, "PRIVMSG alice :hi")] == ["716", "717"]
    assert [m.command for m in await alice.sync()] == ["718"]


async def test_accept_adds_removes_lists_and_complains(server: RunningServer) -> None:
    alice = await server.client("alice")
    for nick in ("bob", "carol", "dave"):
        await server.client(nick)
    assert await accept_list(alice) == []
    assert await ask(alice, "ACCEPT bob,Carol") == []
    assert await accept_list(alice) == ["bob", "carol"]
    msgs = await ask(alice, "ACCEPT bob,nobody,-dave,-ghost")
    assert [(m.command, m.params) for m in msgs] == [
        ("401", ["alice", "nobody", "No such nick/channel"]),
        ("401", ["alice", "ghost", "No such nick/channel"]),
        ("458", ["alice", "dave", "is not on your accept list"]),
        ("457", ["alice", "bob", "is already on your accept list"]),
    ]  # unknown nicks first, then removals, then additions (as solanum does)
    assert await ask(alice, "ACCEPT -bob,dave") == []
    assert await accept_list(alice) == ["carol", "dave"]
    assert await ask(alice, "ACCEPT -carol,-dave") == []
    assert await accept_list(alice) == []
    assert [m.command for m in await ask(alice, "ACCEPT")] == ["461"]


@pytest.mark.parametrize("server_config", [suite_config(accept_limit=2)])
async def test_the_list_is_bounded(server: RunningServer) -> None:
    alice = await server.client("alice")
    tokens = [t for m in await ask(alice, "VERSION") if m.command == "005" for t in m.params]
    assert "ACCEPT=2" in tokens
    for nick in ("bob", "carol", "dave", "erin"):
        await server.client(nick)
    msgs = await ask(alice, "ACCEPT bob,carol,dave,erin")
    assert [(m.command, m.params) for m in msgs] == [
        ("456", ["alice", "Accept list is full"])]
    assert await accept_list(alice) == ["bob", "carol"]
    assert await ask(alice, "ACCEPT -bob,dave") == []  # a removal makes room first
    assert await accept_list(alice) == ["carol", "dave"]


async def test_a_long_list_takes_several_lines(server: RunningServer) -> None:
    alice = await server.client("alice")
    nicks = [f"user{i:02}" for i in range(20)]
    for nick in nicks:
        await server.client(nick)
    assert await ask(alice, "ACCEPT " + ",".join(nicks)) == []
    msgs = await ask(alice, "ACCEPT *")
    assert [len(p) - 1 for p in params(msgs, "281")] == [14, 6]
    assert await accept_list(alice) == nicks


async def test_an_accepted_user_gets_through_under_any_nick(server: RunningServer) -> None:
    alice = await server.client("alice")
    await plus_g(alice)
    bob = await server.client("bob")
    carol = await server.client("carol")
    await ask(alice, "ACCEPT bob")
    assert await gets(alice, bob, "let me in")
    assert not await gets(alice, carol, "and me?")
    await bob.send("NICK bobby")
    await bob.expect("NICK")
    bob.nick = "bobby"
    assert await gets(alice, bob, "still me")
    assert await accept_list(alice) == ["bobby"]
    # The entry is the user, not the nick: carol taking "bob" is not let in.
    await carol.send("NICK bob")
    await carol.expect("NICK")
    carol.nick = "bob"
    assert not await gets(alice, carol, "I am bob now")


async def test_a_user_who_quits_leaves_the_list(server: RunningServer) -> None:
    alice = await server.client("alice")
    await plus_g(alice)
    bob = await server.client("bob")
    await ask(alice, "ACCEPT bob")
    await quit_and_wait(bob)
    assert await accept_list(alice) == []
    again = await server.client("bob")  # the same nick, another user: not accepted
    assert not await gets(alice, again, "it's me again")
    assert [m.command for m in await ask(again, "PRIVMSG alice :really")] == ["716"]


async def test_operators_and_oneself_are_exempt(server: RunningServer) -> None:
    alice = await server.client("alice")
    await plus_g(alice)
    assert only(await ask(alice, "PRIVMSG alice :note to self"), "PRIVMSG")
    oper = await server.client("oper")
    assert only(await ask(oper, f"OPER {OPER_NAME} :{OPER_PASSWORD}"), "381")
    assert await gets(alice, oper, "operator here")


async def test_channels_are_unaffected_and_minus_g_lifts_it(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#c")
    await bob.join("#c")
    await plus_g(alice)
    await alice.sync()
    await bob.send("PRIVMSG #c :in the channel")
    assert (await alice.expect("PRIVMSG")).params == ["#c", "in the channel"]
    assert not await gets(alice, bob, "in private")
    assert params(await ask(alice, "MODE alice -g"), "MODE") == [["alice", "-g"]]
    assert await gets(alice, bob, "in private again")


async def test_whoever_a_g_user_messages_may_answer(server: RunningServer) -> None:
    """As on solanum: a +g user's PRIVMSG puts its target on its list."""
    alice = await server.client("alice")
    await plus_g(alice)
    bob = await server.client("bob")
    carol = await server.client("carol")
    await ask(alice, f"NOTICE {carol.nick} :a notice adds no one")
    assert await accept_list(alice) == []
    assert await gets(bob, alice, "hello bob")  # a +g user may write to anyone
    assert await accept_list(alice) == ["bob"]
    assert await gets(alice, bob, "hello back")
    assert not await gets(alice, carol, "and me?")
    # An operator is not added: operators get through anyway.
    oper = await server.client("oper")
    assert "381" in [m.command for m in await ask(oper, f"OPER {OPER_NAME} :{OPER_PASSWORD}")]
    assert await gets(oper, alice, "hello oper")
    assert await accept_list(alice) == ["bob"]


@pytest.mark.parametrize(
    "server_config", [suite_config(accept_limit=1)], ids=["accept-limit-1"]
)
async def test_with_the_list_full_the_target_cannot_answer(server: RunningServer) -> None:
    alice = await server.client("alice")
    await plus_g(alice)
    await server.client("bob")
    carol = await server.client("carol")
    assert await ask(alice, "ACCEPT bob") == []
    await carol.sync()
    msgs = await ask(alice, f"PRIVMSG {carol.nick} :hi carol")
    assert [(m.command, m.params[1]) for m in msgs] == [("494", "carol")]
    assert [m.params[-1] for m in only(await carol.sync(), "PRIVMSG")] == ["hi carol"]
    assert await accept_list(alice) == ["bob"]
    assert not await gets(alice, carol, "cannot answer")


# ---------------------------------------------------------------------- against the core


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


def _core(clock: Clock) -> ServerCore:
    core = ServerCore(suite_config(db=""), clock)
    for conn_id, nick in enumerate(("alice", "bob", "carol"), start=1):
        core.connect(conn_id, "127.0.0.1", 40000 + conn_id)
        core.data_received(conn_id, f"NICK {nick}\r\nUSER u 0 * :R\r\n".encode())
    for client in core.clients.values():
        client.out.clear()
    return core


def _codes(core: ServerCore, conn_id: int) -> list[str]:
    client = core.clients[conn_id]
    lines = b"".join(client.out).decode().split("\r\n")
    client.out.clear()
    return [line.split(" ")[1] for line in lines if line]


def test_the_target_is_told_at_most_once_a_minute() -> None:
    clock = Clock()
    core = _core(clock)
    core.data_received(1, b"MODE alice +g\r\n")
    _codes(core, 1)
    core.data_received(2, b"PRIVMSG alice :one\r\n")
    assert (_codes(core, 2), _codes(core, 1)) == (["716", "717"], ["718"])
    clock.now += 59
    core.data_received(3, b"PRIVMSG alice :two\r\n")
    assert (_codes(core, 3), _codes(core, 1)) == (["716"], [])
    clock.now += 1
    core.data_received(3, b"PRIVMSG alice :three\r\n")
    assert (_codes(core, 3), _codes(core, 1)) == (["716", "717"], ["718"])


def test_no_state_for_clients_that_never_use_accept() -> None:
    core = _core(Clock())
    assert all(c.accepting is None for c in core.clients.values())
    core.data_received(1, b"ACCEPT bob,carol\r\n")
    alice, bob, carol = (core.clients[i] for i in (1, 2, 3))
    assert list(alice.accepting or ()) == [bob, carol]
    assert core.accept.accepted_by == {bob: {alice: None}, carol: {alice: None}}
    core.data_received(1, b"ACCEPT -bob\r\n")
    core.connection_lost(3)  # carol goes: off alice's list, which is then empty
    assert alice.accepting is None and core.accept.accepted_by == {}
    core.data_received(2, b"ACCEPT alice\r\n")
    core.connection_lost(2)  # an owner who goes takes its list along
    assert core.accept.accepted_by == {} and core.accept.told == {}


async def test_an_invite_is_held_back_too(server: RunningServer) -> None:
    """As on solanum: INVITE from someone not on the list is refused like a PRIVMSG."""
    alice = await server.client("alice")
    await plus_g(alice)
    bob = await server.client("bob")
    await bob.join("#room")
    await alice.sync()
    msgs = await ask(bob, "INVITE alice #room")
    assert [(m.command, m.params[1:]) for m in msgs] == [
        ("716", ["alice", IGNORING]), ("717", ["alice", INFORMED])]
    got = await alice.sync()
    assert [m.command for m in got] == ["718"] and "INVITE" not in [m.command for m in got]
    assert await ask(alice, "ACCEPT bob") == []
    msgs = await ask(bob, "INVITE alice #room")
    assert [m.command for m in msgs] == ["341"]
    assert [m.params for m in only(await alice.sync(), "INVITE")] == [["alice", "#room"]]
