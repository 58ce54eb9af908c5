"""IRCv3 no-implicit-names and draft/pre-away over real TCP, on every backend."""

from __future__ import annotations

import pytest

from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, cap_ls


async def test_both_are_offered(server: RunningServer) -> None:
    c = await IRCTestClient.open(server.port)
    server.clients.append(c)
    offered = await cap_ls(c)
    for cap in ("no-implicit-names", "draft/no-implicit-names", "draft/pre-away"):
        assert cap in offered


@pytest.mark.parametrize("cap", ["no-implicit-names", "draft/no-implicit-names"])
async def test_join_without_names_but_names_on_request(server: RunningServer, cap: str) -> None:
    alice = await server.client("alice", caps=[cap])
    bob = await server.client("bob")
    await bob.join("#room")
    await alice.send("JOIN #room")
    got = await alice.sync()
    assert [m.command for m in got] == ["JOIN"]  # no 353/366
    await alice.send("NAMES #room")
    names = await alice.collect_until("366")
    assert names[0].command == "353" and names[0].params[-1].split() == ["@bob", "alice"]
    # Others still get theirs.
    carol = await server.client("carol")
    assert [m.command for m in await carol.join("#room")][-2:] == ["353", "366"]


async def pre_away(server: RunningServer, nick: str, *away_lines: str) -> list[str]:
    """Connect with draft/pre-away, send ``away_lines`` before registering, register;
    returns the numerics those lines got."""
    c = await IRCTestClient.open(server.port)
    server.clients.append(c)
    await c.send("CAP LS 302")
    await c.send("CAP REQ :draft/pre-away")
    await c.expect("CAP", lambda m: m.params[1] == "ACK")
    codes = []
    for line in away_lines:
        await c.send(line)
        reply = (await c.collect_until("305", "306"))[-1]
        assert reply.params[0] == "*"
        codes.append(reply.command)
    await c.send("CAP END")
    await c.send(f"NICK {nick}")
    await c.send(f"USER {nick} 0 * :Real {nick}")
    await c.collect_until("376", "422")
    c.nick = nick
    return codes


async def test_pre_away_sets_away_before_registration(server: RunningServer) -> None:
    watcher = await server.client("watcher", caps=["extended-monitor", "away-notify"])
    plain_watcher = await server.client("plainw")
    await ask(watcher, "MONITOR + bot")
    await ask(plain_watcher, "MONITOR + bot")
    assert await pre_away(server, "bot", "AWAY *") == ["306"]
    # The watcher learns it is online, then (extended-monitor) that it is away.
    online = await watcher.expect("730")
    away = await watcher.expect("AWAY")
    assert online.params[-1].startswith("bot!")
    assert (away.source, away.params) == (online.params[-1], ["*"])
    assert [m.command for m in await plain_watcher.sync()] == ["730"]
    whois = await ask(watcher, "WHOIS bot")
    assert [m.params[-1] for m in whois if m.command == "301"] == ["*"]


async def test_pre_away_cleared_before_registration(server: RunningServer) -> None:
    assert await pre_away(server, "back", "AWAY :brb", "AWAY") == ["306", "305"]
    viewer = await server.client("viewer")
    whois = await ask(viewer, "WHOIS back")
    assert "311" in [m.command for m in whois]
    assert [m for m in whois if m.command == "301"] == []


async def test_away_before_registration_needs_the_cap(server: RunningServer) -> None:
    c = await IRCTestClient.open(server.port)
    server.clients.append(c)
    await c.send("AWAY :early")
    assert (await c.expect("451")).params[0] == "*"
    await c.send("NICK early")
    await c.send("USER early 0 * :Real early")
    await c.collect_until("376", "422")
    c.nick = "early"
    whois = await ask(c, "WHOIS early")
    assert [m for m in whois if m.command == "301"] == []
