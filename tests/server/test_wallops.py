"""WALLOPS and user mode +w over real TCP, on every backend."""

from __future__ import annotations

import pytest

from chat.message import Message
from server.config import ServerConfig
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, mask

SERVER = "test.server"
@pytest.fixture
def server_config(oper_hash: str) -> ServerConfig:
    return suite_config(opers={OPER_NAME: oper_hash})


def numeric(code: str, *params: str) -> Message:
    return Message(code, list(params), SERVER)


async def oper_up(c: IRCTestClient) -> None:
    assert "381" in [m.command for m in await ask(c, f"OPER {OPER_NAME} :{OPER_PASSWORD}")]


async def wallops_user(server: RunningServer, nick: str) -> IRCTestClient:
    c = await server.client(nick)
    assert await ask(c, f"MODE {nick} +w") == [Message("MODE", [nick, "+w"], mask(c))]
    return c


# ---------------------------------------------------------------------- user mode +w


async def test_users_set_and_unset_w_on_themselves(server: RunningServer) -> None:
    alice = await server.client("alice")
    assert await ask(alice, "MODE alice +w") == [Message("MODE", ["alice", "+w"], mask(alice))]
    assert await ask(alice, "MODE alice") == [numeric("221", "alice", "+w")]
    assert await ask(alice, "MODE alice +w") == []  # no change, no reply
    assert await ask(alice, "MODE alice +i") == [Message("MODE", ["alice", "+i"], mask(alice))]
    assert await ask(alice, "MODE alice") == [numeric("221", "alice", "+iw")]
    assert await ask(alice, "MODE alice -wi") == [Message("MODE", ["alice", "-wi"], mask(alice))]
    assert await ask(alice, "MODE alice +wZ") == [
        numeric("501", "alice", "Unknown MODE flag"),
        Message("MODE", ["alice", "+w"], mask(alice)),
    ]
    # +w is one's own business: not another user's.
    await server.client("bob")
    assert await ask(alice, "MODE bob +w") == [
        numeric("502", "alice", "Cant change mode for other users")
    ]


async def test_myinfo_advertises_w(server: RunningServer) -> None:
    c = await IRCTestClient.open(server.port)
    server.clients.append(c)
    burst = await c.register("alice")
    (myinfo,) = [m for m in burst if m.command == "004"]
    assert myinfo.params[3] == "BRgiosw"


# ---------------------------------------------------------------------- WALLOPS


async def test_wallops_reaches_every_user_with_w(server: RunningServer) -> None:
    alice = await wallops_user(server, "alice")  # the operator, with +w
    await oper_up(alice)
    bob = await wallops_user(server, "bob")
    carol = await server.client("carol")  # no +w
    await carol.join("#c")  # sharing a channel is not what counts
    await alice.join("#c")
    await carol.sync()
    wallops = Message("WALLOPS", ["the server restarts at noon"], mask(alice))
    # The sender has +w: it gets its own WALLOPS too.
    assert await ask(alice, "WALLOPS :the server restarts at noon") == [wallops]
    assert await bob.sync() == [wallops]
    assert await carol.sync() == []
    # A one-word text arrives the same way.
    assert await ask(alice, "WALLOPS hello") == [Message("WALLOPS", ["hello"], mask(alice))]
    assert await bob.sync() == [Message("WALLOPS", ["hello"], mask(alice))]
    # Once bob drops +w he hears no more.
    await ask(bob, "MODE bob -w")
    assert await ask(alice, "WALLOPS :again") == [Message("WALLOPS", ["again"], mask(alice))]
    assert await bob.sync() == []


async def test_an_operator_without_w_does_not_hear_itself(server: RunningServer) -> None:
    alice = await server.client("alice")
    await oper_up(alice)
    bob = await wallops_user(server, "bob")
    assert await ask(alice, "WALLOPS :quiet") == []
    assert await bob.sync() == [Message("WALLOPS", ["quiet"], mask(alice))]


async def test_wallops_from_a_non_operator_is_refused(server: RunningServer) -> None:
    alice = await wallops_user(server, "alice")
    bob = await wallops_user(server, "bob")
    assert await ask(alice, "WALLOPS :hi all") == [
        numeric("481", "alice", "Permission Denied- You're not an IRC operator")
    ]
    assert await bob.sync() == []
    # Nor after giving operator status up.
    await oper_up(alice)
    await ask(alice, "MODE alice -o")
    assert [m.command for m in await ask(alice, "WALLOPS :hi all")] == ["481"]
    assert await bob.sync() == []


@pytest.mark.parametrize("line", ["WALLOPS", "WALLOPS :"])
async def test_wallops_without_text(server: RunningServer, line: str) -> None:
    alice = await server.client("alice")
    await oper_up(alice)
    bob = await wallops_user(server, "bob")
    assert await ask(alice, line) == [numeric("461", "alice", "WALLOPS", "Not enough parameters")]
    assert await bob.sync() == []


async def test_wallops_before_registration(server: RunningServer) -> None:
    c = await server.client()
    assert await ask(c, "WALLOPS :x") == [numeric("451", "*", "You have not registered")]


async def test_wallops_carries_tags_for_those_who_asked(server: RunningServer) -> None:
    alice = await server.client("alice")
    await oper_up(alice)
    bob = await server.client("bob", ["server-time", "message-tags"])
    await ask(bob, "MODE bob +w")
    await alice.send("WALLOPS :tagged")
    got = await bob.expect("WALLOPS")
    assert (got.source, got.params) == (mask(alice), ["tagged"])
    assert set(got.tags) == {"time", "msgid"}


async def test_a_long_wallops_is_cut_to_fit_the_line(server: RunningServer) -> None:
    alice = await server.client("alice")
    await oper_up(alice)
    bob = await wallops_user(server, "bob")
    # ask: the server has handled the WALLOPS before bob's sync is sent (two
    # connections: without it, bob's PING could be handled first).
    assert await ask(alice, "WALLOPS :" + "x" * 480) == []
    (got,) = await bob.sync()
    assert got.command == "WALLOPS" and got.source == mask(alice)
    assert len(got.to_bytes()) == 512
    assert set(got.params[0]) == {"x"}
