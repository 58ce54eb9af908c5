"""OPER (hashed passwords from config.opers) and KILL over real TCP, on every backend."""

from __future__ import annotations

import pytest

from chat.message import Message
from server.config import ServerConfig
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer
from tests.ircclient import IRCTestClient


@pytest.fixture
def server_config(oper_hash: str) -> ServerConfig:
    return ServerConfig(name="test.server", network="TestNet", opers={OPER_NAME: oper_hash})


def mask(c: IRCTestClient) -> str:
    return f"{c.nick}!~{c.nick[:9]}@127.0.0.1"


async def ask(c: IRCTestClient, line: str) -> list[Message]:
    """Everything the server answers to one command (after dropping anything pending)."""
    await c.sync()
    await c.send(line)
    return await c.sync()


async def oper_up(c: IRCTestClient) -> None:
    assert "381" in [m.command for m in await ask(c, f"OPER {OPER_NAME} :{OPER_PASSWORD}")]


# ---------------------------------------------------------------------- OPER


async def test_oper_with_correct_password(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, f"OPER {OPER_NAME} :{OPER_PASSWORD}")
    assert [m.command for m in msgs] == ["MODE", "381"]
    assert msgs[0].source == mask(alice)
    assert msgs[0].params == ["alice", "+os"]  # operator, and server notices
    assert msgs[1].params[0] == "alice"
    msgs = await ask(alice, "MODE alice")
    assert msgs[0].command == "221" and msgs[0].params[1] == "+os"
    # Opering again changes no mode.
    assert [m.command for m in await ask(alice, f"OPER {OPER_NAME} :{OPER_PASSWORD}")] == ["381"]


@pytest.mark.parametrize(
    "line",
    [
        f"OPER {OPER_NAME} :wrong password",
        f"OPER {OPER_NAME} :{OPER_PASSWORD.upper()}",
        f"OPER nobody :{OPER_PASSWORD}",
        f"OPER {OPER_NAME.upper()} :{OPER_PASSWORD}",
    ],
    ids=["wrong-password", "wrong-case", "unknown-name", "name-case"],
)
async def test_oper_rejected(server: RunningServer, line: str) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, line)
    assert [m.command for m in msgs] == ["464"]
    assert msgs[0].params[0] == "alice"
    assert (await ask(alice, "MODE alice"))[0].params == ["alice", "+"]


@pytest.mark.parametrize(
    "server_config",
    [ServerConfig(name="test.server", network="TestNet")],
    ids=["no-opers"],
)
async def test_oper_with_no_operators_configured(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, f"OPER {OPER_NAME} :{OPER_PASSWORD}")
    assert [m.command for m in msgs] == ["464"]


@pytest.mark.parametrize("line", ["OPER", f"OPER {OPER_NAME}"])
async def test_oper_missing_params(server: RunningServer, line: str) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, line)
    assert [m.command for m in msgs] == ["461"]
    assert msgs[0].params[:2] == ["alice", "OPER"]


async def test_deoper_with_minus_o(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await oper_up(alice)
    msgs = await ask(alice, "MODE alice -o")
    assert [(m.command, m.params) for m in msgs] == [("MODE", ["alice", "-os"])]
    msgs = await ask(alice, "KILL bob :no longer allowed")
    assert [m.command for m in msgs] == ["481"]
    assert await bob.sync() == []


# ---------------------------------------------------------------------- KILL


async def test_kill_by_non_oper(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    msgs = await ask(alice, "KILL bob :bye")
    assert [m.command for m in msgs] == ["481"]
    assert msgs[0].params[0] == "alice"
    assert await bob.sync() == []


async def test_kill_disconnects_target_and_peers_see_quit(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")
    for c in (alice, bob, carol):
        await c.join("#chan")
    await carol.sync()
    await oper_up(alice)
    await alice.send("KILL BOB :flooding")
    last = await bob.wait_closed()
    # KILL from the operator, QUIT for himself, then ERROR and the close.
    assert [m.command for m in last if m.command != "JOIN"] == ["KILL", "QUIT", "ERROR"]
    kill, quit_self, error = (m for m in last if m.command != "JOIN")
    assert kill.source == mask(alice) and kill.params == ["bob", "flooding"]
    assert quit_self.source == mask(bob)
    assert quit_self.params == ["Killed (alice (flooding))"]
    assert "Killed (alice (flooding))" in error.params[0]

    for peer in (alice, carol):
        quit_msg = await peer.expect("QUIT")
        assert quit_msg.source == mask(bob)
        assert quit_msg.params == ["Killed (alice (flooding))"]
    # bob is gone: the nick is free and he is no longer on the channel.
    msgs = await ask(carol, "NAMES #chan")
    assert msgs[0].params[3].split() == ["@alice", "carol"]
    dave = await server.client("bob")
    assert dave.nick == "bob"


async def test_kill_unknown_nick(server: RunningServer) -> None:
    alice = await server.client("alice")
    await oper_up(alice)
    msgs = await ask(alice, "KILL nobody :who?")
    assert [m.command for m in msgs] == ["401"]
    assert msgs[0].params[:2] == ["alice", "nobody"]


async def test_kill_of_a_service_is_refused_as_a_part_of_the_server(
    server: RunningServer,
) -> None:
    alice = await server.client("alice")
    await oper_up(alice)
    msgs = await ask(alice, "KILL nickserv :impostor?")
    assert [(m.command, m.params) for m in msgs] == [
        ("483", ["alice", "You cannot kill a network service"])
    ]
    msgs = await ask(alice, "WHOIS NickServ")  # still there
    assert [m.command for m in msgs][:1] == ["311"]


async def test_kill_missing_params(server: RunningServer) -> None:
    alice = await server.client("alice")
    await oper_up(alice)
    msgs = await ask(alice, "KILL")
    assert [m.command for m in msgs] == ["461"]
    assert msgs[0].params[:2] == ["alice", "KILL"]


async def test_kill_without_a_comment_gives_the_operators_nick(server: RunningServer) -> None:
    """irssi's /kill and irctest send no comment: the killer's nick stands in."""
    alice = await server.client("alice")
    bob = await server.client("bob")
    await oper_up(alice)
    await alice.send("KILL bob")
    closing = await bob.wait_closed()
    assert [m.command for m in closing] == ["KILL", "QUIT", "ERROR"]  # QUIT: its own
    assert closing[0].params == ["bob", "alice"]
    assert "Killed (alice (alice))" in closing[-1].params[-1]


# ---------------------------------------------------------------------- OPER off the loop


async def test_lines_after_oper_wait_for_its_answer(server: RunningServer) -> None:
    """The scrypt check runs off the loop; what the client sent after OPER is held
    and handled in order once the answer is in, so it sees the new +o."""
    alice = await server.client("alice")
    await alice.sync()
    await alice.send_raw(
        f"OPER {OPER_NAME} :{OPER_PASSWORD}\r\nMODE alice\r\nPING :after\r\n".encode()
    )
    got = [await alice.read_message() for _ in range(4)]
    assert [m.command for m in got] == ["MODE", "381", "221", "PONG"]
    assert "o" in got[2].params[1]
    assert got[3].params[-1] == "after"


async def test_labelled_oper_answers_carry_the_label(server: RunningServer) -> None:
    alice = await server.client("alice", ["labeled-response", "batch"])
    await alice.sync()
    await alice.send(f"@label=bad OPER {OPER_NAME} :wrong")
    (fail,) = await alice.sync()
    assert (fail.command, fail.tags.get("label")) == ("464", "bad")
    await alice.send(f"@label=good OPER {OPER_NAME} :{OPER_PASSWORD}")
    got = await alice.sync()
    assert [m.command for m in got] == ["BATCH", "MODE", "381", "BATCH"]
    assert got[0].tags.get("label") == "good"
    assert got[0].params[1] == "labeled-response"
    ref = got[0].params[0][1:]
    assert [m.tags.get("batch") for m in got[1:3]] == [ref, ref]


def test_the_core_never_runs_scrypt_itself(oper_hash: str) -> None:
    """OPER emits a CheckOper effect and holds later lines; nothing is answered until
    the transport hands the result back."""
    import time

    from server.core import ServerCore
    from server.core.handlers.operator import CheckOper
    from server.passwords import verify_password

    core = ServerCore(ServerConfig(name="test.server", opers={OPER_NAME: oper_hash}), time.time)
    core.connect(1, "192.0.2.1", 5000)
    core.data_received(1, b"NICK alice\r\nUSER a 0 * :A\r\n")
    for client in core.take_output():
        client.out.clear()
    core.data_received(1, f"OPER {OPER_NAME} :{OPER_PASSWORD}\r\nPING :x\r\n".encode())
    assert core.take_output() == []  # no reply yet, not even to the PING after it
    (check,) = core.take_effects()
    assert isinstance(check, CheckOper) and check.stored == oper_hash
    core.answered(check.check_id, verify_password(check.password, check.stored))
    (client,) = core.take_output()
    lines = b"".join(client.out).decode().splitlines()
    assert [line.split()[1] for line in lines] == ["MODE", "381", "PONG"]
    core.answered(check.check_id, False)  # a second answer to the same check: ignored
    assert core.take_output() == []
