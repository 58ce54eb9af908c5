"""KLINE/DLINE (server bans) over real TCP on every backend, saved to a real ban file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from chat.message import Message
from server.config import ServerConfig
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer, start_server
from tests.ircclient import IRCTestClient
from tests.server.test_oper import ask, oper_up


@pytest.fixture
def server_config(oper_hash: str) -> ServerConfig:
    return ServerConfig(name="test.server", network="TestNet", opers={OPER_NAME: oper_hash})


async def notice(c: IRCTestClient, line: str) -> str:
    """The text of the one NOTICE the server answers to ``line``."""
    msgs = await ask(c, line)
    assert [m.command for m in msgs] == ["NOTICE"], msgs
    return msgs[0].params[-1]


async def refused_at_registration(server: RunningServer, nick: str) -> list[Message]:
    c = await IRCTestClient.open(server.port)
    server.clients.append(c)
    await c.send(f"NICK {nick}")
    await c.send(f"USER {nick} 0 * :Real")
    return await c.wait_closed()


def ban_file(server: RunningServer) -> list[dict[str, object]]:
    data = json.loads(Path(server.config.ban_file).read_text())
    assert data["version"] == 1
    bans = data["bans"]
    assert isinstance(bans, list)
    return bans


@pytest.mark.parametrize(
    "line", ["KLINE spam@127.0.0.1 :x", "UNKLINE spam@127.0.0.1", "DLINE 10.0.0.1",
             "UNDLINE 10.0.0.1", "STATS k", "STATS d"]
)
async def test_bans_need_an_operator(server: RunningServer, line: str) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, line)
    assert msgs[0].command == "481"
    assert [m.command for m in msgs[1:]] == (["219"] if line.startswith("STATS") else [])
    assert not Path(server.config.ban_file).exists()


@pytest.mark.parametrize("command", ["KLINE", "DLINE", "UNKLINE", "UNDLINE"])
async def test_bans_need_a_mask(server: RunningServer, command: str) -> None:
    root = await server.client("root")
    await oper_up(root)
    msgs = await ask(root, command)
    assert [(m.command, m.params[1]) for m in msgs] == [("461", command)]


async def test_kline_disconnects_matching_users_and_refuses_them_after(
    server: RunningServer,
) -> None:
    root = await server.client("root")
    spam = await server.client("spam")
    carol = await server.client("carol")
    for c in (spam, carol):
        await c.join("#chan")
    await oper_up(root)
    await carol.sync()
    text = await notice(root, "KLINE 30 spam@127.0.0.1 :spamming the channel")
    assert text == ("Added temporary 30 min. K-Line [spam@127.0.0.1] (spamming the channel), "
                    "1 disconnected")
    last = [m for m in await spam.wait_closed() if m.command != "JOIN"]
    assert [m.command for m in last] == ["465", "ERROR"]
    assert last[0].params == ["spam", "You are banned from this server- spamming the channel"]
    assert last[1].params == ["Closing Link: 127.0.0.1 (K-Lined)"]
    # Peers see that the user was banned, not why.
    quit_msg = await carol.expect("QUIT")
    assert quit_msg.source == "spam!~spam@127.0.0.1" and quit_msg.params == ["K-Lined"]

    # The same username is refused at registration; another one from the same host is not.
    msgs = await refused_at_registration(server, "spam")
    assert [m.command for m in msgs] == ["465", "ERROR"]
    assert msgs[0].params[0] == "spam"
    dave = await server.client("dave")
    assert dave.nick == "dave"

    [record] = ban_file(server)
    assert record["kind"] == "K" and record["mask"] == "spam@127.0.0.1"
    assert record["reason"] == "spamming the channel"
    assert record["setter"] == f"root ({OPER_NAME})"
    assert isinstance(record["expires"], float) and isinstance(record["set_at"], float)
    assert record["expires"] - record["set_at"] == pytest.approx(1800)

    stats = await ask(root, "STATS k")
    assert [m.command for m in stats] == ["216", "219"]
    assert stats[0].params[1:5] == ["K", "127.0.0.1", "*", "spam"]
    assert stats[0].params[5].startswith("spamming the channel (until ")
    assert await ask(root, "STATS d") == [Message("219", ["root", "d", "End of /STATS report"],
                                                  "test.server")]

    assert await notice(root, "UNKLINE spam@127.0.0.1") == "K-Line for [spam@127.0.0.1] is removed"
    assert ban_file(server) == []
    spam2 = await server.client("spam")
    assert spam2.nick == "spam"
    assert await notice(root, "UNKLINE spam@127.0.0.1") == "No K-Line for [spam@127.0.0.1]"


async def test_kline_by_nick_bans_the_host_but_not_operators(server: RunningServer) -> None:
    root = await server.client("root")
    bob = await server.client("bob")
    await oper_up(root)
    msgs = await ask(root, "KLINE MYSELF bob :go away")
    # root is on the same host (hence MYSELF): told, not disconnected.
    assert [m.command for m in msgs] == ["NOTICE", "NOTICE"]
    texts = [m.params[-1] for m in msgs]
    assert "*** A K-Line [*@127.0.0.1] matches you" in texts
    assert "Added K-Line [*@127.0.0.1] (go away), 1 disconnected" in texts
    assert [m.command for m in await bob.wait_closed()] == ["465", "ERROR"]
    assert [m.command for m in await refused_at_registration(server, "eve")] == ["465", "ERROR"]
    # Still an operator, still connected.
    assert (await ask(root, "MODE root"))[0].params[1] == "+os"


async def test_an_exempt_operator_stays_after_mode_minus_o(server: RunningServer) -> None:
    # Bans are checked when set and at connect (as on solanum), not again on -o.
    root = await server.client("root")
    other = await server.client("other")
    await oper_up(root)
    await oper_up(other)
    texts = [m.params[-1] for m in await ask(root, "KLINE MYSELF *@127.0.0.1 :all")]
    assert texts == ["*** A K-Line [*@127.0.0.1] matches you", "Added K-Line [*@127.0.0.1] (all)"]
    assert [m.command for m in await ask(root, "MODE root -o")] == ["MODE"]
    assert [m.command for m in await ask(root, "PING here")] == ["PONG"]
    # A ban set now is checked against root like anyone.
    await notice(other, "UNKLINE *@127.0.0.1")
    texts = [m.params[-1] for m in await ask(other, "KLINE MYSELF *@127.0.0.* :again")]
    assert "Added K-Line [*@127.0.0.*] (again), 1 disconnected" in texts
    assert [m.command for m in await root.wait_closed()] == ["465", "ERROR"]


async def test_kline_user_glob_matches_the_unverified_tilde(server: RunningServer) -> None:
    root = await server.client("root")
    await oper_up(root)
    for mask in ("~mallory@127.0.0.*", "mall*@127.0.0.0/8", "*ory@*.0.0.1"):
        mallory = await server.client("mallory")
        assert (await notice(root, f"KLINE {mask} :x")).endswith("1 disconnected")
        assert [m.command for m in await mallory.wait_closed()] == ["465", "ERROR"]
        await notice(root, f"UNKLINE {mask}")


async def test_dline_refuses_connections_before_registration(server: RunningServer) -> None:
    root = await server.client("root")
    bob = await server.client("bob")
    await oper_up(root)
    msgs = await ask(root, "DLINE MYSELF 1h 127.0.0.0/24 :abuse from this network")
    texts = [m.params[-1] for m in msgs]
    assert ("Added temporary 1 h D-Line [127.0.0.0/24] (abuse from this network), "
            "1 disconnected") in texts
    last = await bob.wait_closed()
    assert [m.command for m in last] == ["465", "ERROR"]
    assert last[1].params == ["Closing Link: 127.0.0.1 (D-Lined)"]

    # A new connection is closed at once, without sending anything.
    c = await IRCTestClient.open(server.port)
    server.clients.append(c)
    [error] = await c.wait_closed()
    assert error.command == "ERROR"
    assert error.params == ["Closing Link: 127.0.0.1 (D-Lined: abuse from this network)"]

    stats = await ask(root, "STATS D")
    assert [m.command for m in stats] == ["225", "219"]
    assert stats[0].params[1:3] == ["D", "127.0.0.0/24"]
    assert await notice(root, "UNDLINE 127.0.0.5/24") == "D-Line for [127.0.0.0/24] is removed"
    again = await server.client("bob")
    assert again.nick == "bob"


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("KLINE *@* :everyone", "Not a valid K-Line: *@* matches everyone"),
        ("KLINE ?*@*.* :x", "Not a valid K-Line: ?*@*.* matches everyone"),
        ("KLINE ~*@* :x", "Not a valid K-Line: ~*@* matches everyone"),
        ("KLINE *!*@* :x", "Not a valid K-Line: *!*@* is not a user@host mask"),
        ("KLINE *@10.0.0.0/4 :x", "Not a valid K-Line: 10.0.0.0/4 covers too many addresses "
                                  "(at most /8)"),
        ("DLINE 2000::/3 :x", "Not a valid D-Line: 2000::/3 covers too many addresses "
                              "(at most /24)"),
        ("DLINE host.example :x", "Not a valid D-Line: host.example is not an IP address "
                                  "or CIDR network"),
        ("KLINE a!b@c.d :x", "Not a valid K-Line: a!b@c.d is not a user@host mask"),
    ],
)
async def test_bad_masks_are_refused(server: RunningServer, line: str, reply: str) -> None:
    root = await server.client("root")
    await oper_up(root)
    assert await notice(root, line) == reply
    assert [m.command for m in await ask(root, "STATS k")] == ["219"]


@pytest.mark.parametrize(
    ("line", "mask"),
    [("KLINE 5m ~eve@* :no eves", "~eve@*"), ("KLINE *ev*@* :x", "*ev*@*"),
     ("KLINE eve@0.0.0.0/0 :x", "eve@0.0.0.0/0")],
)
async def test_a_named_user_may_be_banned_from_every_host(
    server: RunningServer, line: str, mask: str
) -> None:
    # As on InspIRCd: only a mask whose user and host parts both match anything is
    # everyone; one naming the user bans that user wherever they come from.
    root = await server.client("root")
    eve = await server.client("eve")
    bob = await server.client("bob")
    await oper_up(root)
    text = await notice(root, line)
    assert text.startswith("Added ") and f"K-Line [{mask}]" in text, text
    assert text.endswith("1 disconnected")
    assert [m.command for m in await eve.wait_closed()] == ["465", "ERROR"]
    assert [m.command for m in await ask(bob, "PING here")] == ["PONG"]


async def test_ban_on_unknown_nick(server: RunningServer) -> None:
    root = await server.client("root")
    await oper_up(root)
    msgs = await ask(root, "KLINE 10 nobody :x")
    assert [(m.command, m.params[1]) for m in msgs] == [("401", "nobody")]
    # Lifting a ban that is not there changes nothing, not even the file.
    assert await notice(root, "UNKLINE x@192.0.2.9") == "No K-Line for [x@192.0.2.9]"
    assert not Path(server.config.ban_file).exists()


async def test_kline_again_updates_it(server: RunningServer) -> None:
    root = await server.client("root")
    await oper_up(root)
    assert await notice(root, "KLINE 10 x@192.0.2.1 :first") == (
        "Added temporary 10 min. K-Line [x@192.0.2.1] (first)")
    assert await notice(root, "KLINE X@192.0.2.1 :second") == (
        "Updated K-Line [X@192.0.2.1] (second)")
    [record] = ban_file(server)
    assert record["reason"] == "second" and record["expires"] is None


async def test_temporary_ban_expires(server: RunningServer) -> None:
    root = await server.client("root")
    await oper_up(root)
    await notice(root, "KLINE 1s x@192.0.2.1 :short")
    assert len(ban_file(server)) == 1
    # The core's once-a-second tick drops it; poll rather than time it.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while [m.command for m in await ask(root, "STATS k")] != ["219"]:
        assert loop.time() < deadline, "the ban did not expire"
        await asyncio.sleep(0.2)
    assert ban_file(server) == []


async def test_bans_survive_a_restart(backend: str, oper_hash: str, tmp_path: Path) -> None:
    path = tmp_path / "bans.json"
    config = ServerConfig(name="test.server", network="TestNet", opers={OPER_NAME: oper_hash})
    first = start_server(config, backend, bans=str(path))
    try:
        root = await first.client("root")
        await oper_up(root)
        await notice(root, "KLINE spam@127.0.0.1 :still banned")
        await notice(root, "DLINE 198.51.100.0/24 :a network")
        await root.close()
    finally:
        first.handle.stop()
    second = start_server(config, backend, bans=str(path))
    try:
        msgs = await refused_at_registration(second, "spam")
        assert [m.command for m in msgs] == ["465", "ERROR"]
        assert msgs[0].params[1] == "You are banned from this server- still banned"
        root = await second.client("root")
        await oper_up(root)
        assert [m.command for m in await ask(root, "STATS d")] == ["225", "219"]
    finally:
        for c in second.clients:
            await c.close()
        second.handle.stop()


async def test_corrupt_ban_file_is_kept_aside(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "bans.json"
    path.write_text('{"version": 1, "bans": [')
    running = start_server(ServerConfig(name="test.server"), backend, bans=str(path))
    try:
        alice = await running.client("alice")  # the server started, without bans
        assert alice.nick == "alice"
        assert (tmp_path / "bans.json.corrupt").read_text() == '{"version": 1, "bans": ['
        assert not path.exists()
    finally:
        for c in running.clients:
            await c.close()
        running.handle.stop()


async def test_expired_and_malformed_entries_are_not_loaded(
    backend: str, oper_hash: str, tmp_path: Path
) -> None:
    path = tmp_path / "bans.json"
    good = {"kind": "K", "mask": "keep@127.0.0.1", "reason": "r", "setter": "s",
            "set_at": 1.0, "expires": None}
    expired = {**good, "mask": "old@127.0.0.1", "expires": 2.0}
    path.write_text(json.dumps({"version": 1, "bans": [
        good, expired, {"kind": "X"}, {**good, "mask": "*@*"}, "nonsense"]}))
    config = ServerConfig(name="test.server", opers={OPER_NAME: oper_hash})
    running = start_server(config, backend, bans=str(path))
    try:
        old = await running.client("old")  # expired: let in
        assert old.nick == "old"
        assert [m.command for m in await refused_at_registration(running, "keep")] == [
            "465", "ERROR"]
        root = await running.client("root")
        await running.clients[-1].send(f"OPER {OPER_NAME} :{OPER_PASSWORD}")
        await root.expect("381")
        stats = await ask(root, "STATS k")
        assert [m.params[4] for m in stats if m.command == "216"] == ["keep"]
    finally:
        for c in running.clients:
            await c.close()
        running.handle.stop()
