"""AWAY's own rate over real TCP, on every backend, as solanum's ``away_interval``: two
quick changes of the away message, then one per interval (263), coming back always
free; the interval's window and REHASH with a fake clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chat.message import Message
from server.config import ServerConfig
from server.core.handlers.messaging import AWAY_BURST, AWAY_TOO_FAST
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer, serving, suite_config
from tests.fuzz.harness import CoreHarness
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask

SERVER = "test.server"
INTERVAL = 30
NOW_AWAY = "You have been marked as being away"
BACK = "You are no longer marked as being away"


@pytest.fixture
def server_config(oper_hash: str) -> ServerConfig:
    return suite_config(db="", away_interval=INTERVAL, opers={OPER_NAME: oper_hash})


def too_fast(nick: str) -> Message:
    return Message("263", [nick, "AWAY", AWAY_TOO_FAST], SERVER)


def now_away(nick: str) -> Message:
    return Message("306", [nick, NOW_AWAY], SERVER)


async def audience(server: RunningServer, nick: str) -> tuple[IRCTestClient, IRCTestClient]:
    """A channel peer of ``nick`` with away-notify, and a MONITOR watcher of it with
    extended-monitor: everyone an AWAY reaches."""
    peer = await server.client("peer", caps=["away-notify"])
    watcher = await server.client("watcher", caps=["extended-monitor", "away-notify"])
    await ask(watcher, f"MONITOR + {nick}")
    await peer.join("#c")
    return peer, watcher


async def aways_seen(c: IRCTestClient) -> list[list[str]]:
    return [m.params for m in await c.sync() if m.command == "AWAY"]


async def away_text(asker: IRCTestClient, nick: str) -> str | None:
    """The away message a PRIVMSG to ``nick`` is answered with (301), if any."""
    got = await ask(asker, f"PRIVMSG {nick} :hello")
    texts = [m.params[2] for m in got if m.command == "301"]
    return texts[0] if texts else None


async def test_a_third_quick_change_is_refused_and_told_to_no_one(
    server: RunningServer,
) -> None:
    alice = await server.client("alice")
    peer, watcher = await audience(server, "alice")
    await alice.join("#c")
    await peer.sync()
    for i in range(AWAY_BURST):
        assert await ask(alice, f"AWAY :away {i}") == [now_away("alice")]
    assert await ask(alice, "AWAY :away again") == [too_fast("alice")]
    expected = [[f"away {i}"] for i in range(AWAY_BURST)]
    assert await aways_seen(peer) == expected
    assert await aways_seen(watcher) == expected
    # The message is the last one allowed.
    assert await away_text(peer, "alice") == f"away {AWAY_BURST - 1}"


async def test_coming_back_and_repeating_are_free(server: RunningServer) -> None:
    alice = await server.client("alice")
    peer, watcher = await audience(server, "alice")
    await alice.join("#c")
    await peer.sync()
    for i in range(AWAY_BURST):
        await ask(alice, f"AWAY :away {i}")
    last = f"away {AWAY_BURST - 1}"
    # The same message again changes nothing, and is answered as before.
    assert await ask(alice, f"AWAY :{last}") == [now_away("alice")]
    # Back, whatever the rate: told to everyone, as it ends the noise.
    assert await ask(alice, "AWAY") == [Message("305", ["alice", BACK], SERVER)]
    assert await aways_seen(peer) == [[f"away {i}"] for i in range(AWAY_BURST)] + [[]]
    assert (await aways_seen(watcher))[-1] == []
    # Going away again is a change like the others: refused, so alice stays back.
    assert await ask(alice, "AWAY :once more") == [too_fast("alice")]
    assert await aways_seen(peer) == []
    assert await away_text(peer, "alice") is None


async def test_each_connection_has_its_own(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")  # the same address
    for i in range(AWAY_BURST):
        await ask(alice, f"AWAY :a{i}")
    assert await ask(alice, "AWAY :more") == [too_fast("alice")]
    for i in range(AWAY_BURST):
        assert await ask(bob, f"AWAY :b{i}") == [now_away("bob")]


async def test_operators_are_exempt(server: RunningServer) -> None:
    root = await server.client("root")
    await root.send(f"OPER {OPER_NAME} :{OPER_PASSWORD}")
    await root.expect("381")
    for i in range(3 * AWAY_BURST):
        assert await ask(root, f"AWAY :busy {i}") == [now_away("root")]


async def test_zero_turns_the_limit_off(backend: str) -> None:
    async with serving(suite_config(db="", away_interval=0), backend) as running:
        alice = await running.client("alice")
        for i in range(3 * AWAY_BURST):
            assert await ask(alice, f"AWAY :away {i}") == [now_away("alice")]


def test_the_interval_and_rehash_with_a_fake_clock() -> None:
    config = suite_config(name=SERVER, db="", away_interval=INTERVAL)
    with CoreHarness(config) as h:
        alice = h.register("alice")

        def away(text: str) -> bytes:
            [line] = h.send_line(alice, f"AWAY :{text}")[alice]
            return line.rstrip(b"\r\n").split(b" ")[1]  # the numeric

        assert [away("a"), away("b"), away("c")] == [b"306", b"306", b"263"]
        h.tick(INTERVAL - 1)
        assert away("c") == b"263"
        h.tick(1)  # one more has come back, and only one
        assert [away("c"), away("d")] == [b"306", b"263"]
        # After a whole quiet spell: the extra one again.
        h.tick(AWAY_BURST * INTERVAL)
        assert [away("e"), away("f"), away("g")] == [b"306", b"306", b"263"]
        # REHASH applies at once, to clients that have used it too.
        h.core.reload(replace(config, away_interval=0))
        assert [away("h"), away("i"), away("j")] == [b"306"] * 3
        h.core.reload(replace(config, away_interval=1))
        h.tick(AWAY_BURST)
        assert [away("k"), away("l"), away("m")] == [b"306", b"306", b"263"]
        h.tick(1)
        assert away("n") == b"306"
