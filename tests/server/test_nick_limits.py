"""NICK limits over real TCP, on every backend: the per-connection change rate (438) and
the ban/quiet check (435), as solanum; the rate's window with a fake clock."""

from __future__ import annotations

import pytest

from chat.message import Message
from server.config import ServerConfig
from server.core.handlers.registration import NICK_CHANGES, NICK_TIME
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer, suite_config
from tests.fuzz.harness import CoreHarness
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask

SERVER = "test.server"


@pytest.fixture
def server_config(oper_hash: str) -> ServerConfig:
    # History off: a NICK in a channel is stored, which the test does not read.
    return suite_config(db="", opers={OPER_NAME: oper_hash})


def too_fast(nick: str, new: str, wait: int) -> Message:
    return Message(
        "438", [nick, new, f"Nick change too fast. Please wait {wait} seconds."], SERVER
    )


async def change(c: IRCTestClient, new: str) -> list[Message]:
    """NICK ``new``: the server's answer; ``c.nick`` follows a change it relays."""
    got = await ask(c, f"NICK {new}")
    if any(m.command == "NICK" and m.params == [new] for m in got):
        c.nick = new
    return got


async def changes_until_refused(c: IRCTestClient, base: str, most: int) -> int:
    """Nick changes that pass before one is refused (at most ``most``)."""
    for i in range(most):
        new = f"{base}{i}"
        await change(c, new)
        if c.nick != new:
            return i
    return most


# ---------------------------------------------------------------------- the rate


async def test_sixth_quick_change_is_refused(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#c")
    await bob.join("#c")
    await bob.sync()
    for i in range(NICK_CHANGES):
        old = f"{alice.nick}!~alice@127.0.0.1"
        assert await change(alice, f"alice{i}") == [Message("NICK", [f"alice{i}"], old)]
    got = await ask(alice, "NICK alicex")
    assert len(got) == 1 and got[0].command == "438"
    assert got[0].params[:2] == [alice.nick, "alicex"]
    assert got[0].params[2].startswith("Nick change too fast. Please wait ")
    # The nick is kept, the channel saw five changes and no sixth.
    seen = [m for m in await bob.sync() if m.command == "NICK"]
    assert [m.params[0] for m in seen] == [f"alice{i}" for i in range(NICK_CHANGES)]
    assert await ask(bob, f"ISON {alice.nick} alicex") == [
        Message("303", ["bob", alice.nick], SERVER)
    ]


async def test_nicks_before_registration_are_free(server: RunningServer) -> None:
    c = await server.client()
    for i in range(NICK_CHANGES + 3):
        await c.send(f"NICK early{i}")
    await c.send("USER early 0 * :Early")
    await c.collect_until("376", "422")
    c.nick = f"early{NICK_CHANGES + 2}"
    assert await changes_until_refused(c, "later", NICK_CHANGES + 1) == NICK_CHANGES


async def test_refused_changes_do_not_count_and_other_connections_have_their_own(
    server: RunningServer,
) -> None:
    alice = await server.client("alice")
    await server.client("bob")
    for _ in range(3):  # in use, same nick, erroneous: no change, nothing spent
        await ask(alice, "NICK bob")
        await ask(alice, "NICK alice")
        await ask(alice, "NICK 1bad")
    assert await changes_until_refused(alice, "a", NICK_CHANGES + 1) == NICK_CHANGES
    carol = await server.client("carol")  # the same address, its own count
    assert await changes_until_refused(carol, "c", NICK_CHANGES + 1) == NICK_CHANGES


async def test_operators_are_exempt(server: RunningServer) -> None:
    root = await server.client("root")
    await root.send(f"OPER {OPER_NAME} :{OPER_PASSWORD}")
    await root.expect("381")
    assert await changes_until_refused(root, "root", 3 * NICK_CHANGES) == 3 * NICK_CHANGES


def test_the_window_with_a_fake_clock() -> None:
    with CoreHarness(suite_config(name=SERVER, db="")) as h:
        alice = h.register("alice")

        def nick(new: str) -> list[bytes]:
            return [line.rstrip(b"\r\n") for line in h.send_line(alice, f"NICK {new}")[alice]]

        old = "alice"
        for i in range(NICK_CHANGES):
            assert nick(f"a{i}") == [f":{old}!~alice@192.0.2.1 NICK a{i}".encode()]
            old = f"a{i}"
        last = f"a{NICK_CHANGES - 1}"
        per_change = NICK_TIME / NICK_CHANGES  # one change back every 4 s
        assert nick("b") == [
            f":{SERVER} 438 {last} b :Nick change too fast. Please wait "
            f"{int(per_change)} seconds.".encode()
        ]
        h.tick(per_change - 1)
        assert nick("b") == [
            f":{SERVER} 438 {last} b :Nick change too fast. Please wait 1 seconds.".encode()
        ]
        h.tick(1)  # one change has come back
        assert nick("b") == [f":{last}!~alice@192.0.2.1 NICK b".encode()]
        assert b" 438 " in nick("c")[0]
        # After the whole window with no change, the full burst again.
        h.tick(NICK_TIME)
        for i in range(NICK_CHANGES):
            assert b" NICK " in nick(f"d{i}")[0]
        assert b" 438 " in nick("e")[0]
        client = h.client(alice)
        assert client is not None and client.nick == f"d{NICK_CHANGES - 1}"


# ---------------------------------------------------------------------- bans and quiets


def banned_change(nick: str, new: str, channel: str) -> Message:
    return Message(
        "435", [nick, new, channel, "Cannot change nickname while banned on channel"], SERVER
    )


async def in_channel(server: RunningServer, *modes: str) -> tuple[IRCTestClient, IRCTestClient]:
    """alice (op) and bob in #c, then each of ``modes`` set by alice."""
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#c")
    await bob.join("#c")
    for line in modes:
        await ask(alice, f"MODE #c {line}")
    await alice.sync()
    await bob.sync()
    return alice, bob


async def assert_refused(alice: IRCTestClient, bob: IRCTestClient, channel: str) -> None:
    assert await ask(bob, "NICK bobby") == [banned_change("bob", "bobby", channel)]
    assert await alice.sync() == []  # nobody saw a change
    assert await ask(alice, "ISON bob bobby") == [Message("303", ["alice", "bob"], SERVER)]


@pytest.mark.parametrize("mode", ["+b", "+q"])
async def test_banned_or_quieted_by_nick_keeps_the_nick(
    server: RunningServer, mode: str
) -> None:
    alice, bob = await in_channel(server, f"{mode} bob!*@*")
    await assert_refused(alice, bob, "#c")
    # The reason it matters: still unable to speak there.
    got = await ask(bob, "PRIVMSG #c :hi")
    assert [m.command for m in got] == ["404"]
    assert await alice.sync() == []


async def test_any_channel_holds_and_names_itself(server: RunningServer) -> None:
    alice, bob = await in_channel(server)
    await alice.join("#d")
    await bob.join("#d")
    await ask(alice, "MODE #d +b *!~bob@*")  # by user name: another way to match
    await alice.sync()
    await assert_refused(alice, bob, "#d")
    # Out of #d, bob is free again; a ban where bob is not a member counts for nothing.
    await ask(bob, "PART #d")
    await alice.sync()
    assert await change(bob, "bobby") == [Message("NICK", ["bobby"], "bob!~bob@127.0.0.1")]


async def test_voiced_users_and_operators_may_change(server: RunningServer) -> None:
    alice, bob = await in_channel(server, "+b bob!*@*", "+q bob!*@*", "+v bob")
    assert await change(bob, "bobby") == [Message("NICK", ["bobby"], "bob!~bob@127.0.0.1")]
    # A channel operator banned by its own mask too.
    await ask(alice, "MODE #c +b alice!*@*")
    assert await change(alice, "alicia") == [
        Message("NICK", ["alicia"], "alice!~alice@127.0.0.1")
    ]


@pytest.mark.parametrize("mode", ["+b", "+q"])
async def test_an_exception_lets_them(server: RunningServer, mode: str) -> None:
    _, bob = await in_channel(server, f"{mode} *!*@127.0.0.1", "+e bob!*@*")
    assert await change(bob, "bobby") == [Message("NICK", ["bobby"], "bob!~bob@127.0.0.1")]


async def test_the_user_is_checked_as_it_is(server: RunningServer) -> None:
    # A ban on the nick being taken does not stop the change (solanum's check too):
    # the user is checked as it stands, banned now or not.
    _, bob = await in_channel(server, "+b bobby!*@*")
    assert await change(bob, "bobby") == [Message("NICK", ["bobby"], "bob!~bob@127.0.0.1")]
    # Now it is: no way out by NICK.
    assert await ask(bob, "NICK bob") == [banned_change("bobby", "bob", "#c")]
