"""Flood control charges a JOIN or PART a token per channel it names, on every backend.

The suite turns flood control off (TEST_DEFAULTS); this module's servers have it on,
with a slow refill: a line waiting for a token waits two seconds, long enough that
another client's PING round trip shows it held back, with no clock in the assertions.
"""

from __future__ import annotations

import pytest

from chat.message import Message
from server.config import ServerConfig
from server.core.flood import line_cost
from tests.conftest import RunningServer, serving, suite_config
from tests.fuzz.harness import CoreHarness
from tests.ircclient import IRCTestClient

BURST = 6
REGISTRATION = 2  # NICK and USER: what is left of the burst after them
LEFT = BURST - REGISTRATION


@pytest.fixture
def server_config() -> ServerConfig:
    return suite_config(flood_burst=BURST, flood_rate=0.5, flood_max_queue=10)


def channels(prefix: str, count: int) -> str:
    return ",".join(f"#{prefix}{n}" for n in range(count))


async def watcher_in(server: RunningServer, channel: str) -> IRCTestClient:
    bob = await server.client("bob")
    await bob.join(channel)
    await bob.sync()
    return bob


def from_alice(got: list[Message], command: str) -> list[Message]:
    return [m for m in got if m.command == command and (m.source or "").startswith("alice!")]


# ---------------------------------------------------------------------- the cost


@pytest.mark.parametrize(
    ("line", "cost"),
    [
        (b"PRIVMSG #a,#b :hi, all", 1.0),
        (b"JOIN #a", 1.0),
        (b"JOIN #a,#b,#c", 3.0),
        (b"join #a,#b", 2.0),
        (b"JOIN #a,#b key1,key2", 2.0),
        (b"JOIN :#a,#b", 2.0),  # the first parameter given as trailing
        (b"@label=x;+t=y :alice!a@h   JOIN   #a,#b,#c", 3.0),
        (b"JOIN #a,,#b,", 2.0),  # empty names are skipped, as the handler does
        (b"JOIN ,", 1.0),
        (b"JOIN", 1.0),
        (b"JOIN ", 1.0),
        (b"JOINED #a,#b", 1.0),
        (b"PART #a,#b,#c,#d :bye, all", 4.0),
        (b"PART 0", 1.0),
        (b"JOIN 0", 6.0),  # whatever it leaves: the cap
        (b"JOIN 0,#a", 2.0),  # not JOIN 0: a bad name and #a
        (b"JOIN " + channels("c", 45).encode(), 6.0),  # capped at the burst
        (b"@only-tags", 1.0),
        (b":source-only", 1.0),
    ],
)
def test_join_part_cost(line: bytes, cost: float) -> None:
    assert line_cost(line, float(BURST)) == cost


# ---------------------------------------------------------------------- over TCP


async def test_a_join_costs_a_token_per_channel(server: RunningServer) -> None:
    bob = await watcher_in(server, "#c0")
    alice = await server.client("alice")
    # The rest of the burst, in one JOIN: it passes at once, the PRIVMSG after it waits.
    await alice.send_raw(f"JOIN {channels('c', LEFT)}\r\nPRIVMSG #c0 :after\r\n".encode())
    await bob.expect("JOIN")
    assert from_alice(await bob.sync(), "PRIVMSG") == []  # bob's PING went first
    later = await bob.expect("PRIVMSG")  # delayed, not dropped
    assert later.params == ["#c0", "after"]
    joined = [from_alice(await alice.collect_until("366"), "JOIN") for _ in range(LEFT)]
    assert [m.params[0] for [m] in joined] == channels("c", LEFT).split(",")


async def test_single_channel_joins_cost_as_before(server: RunningServer) -> None:
    bob = await watcher_in(server, "#c0")
    alice = await server.client("alice")
    # Four lines, the rest of the burst: all handled at once.
    await alice.send_raw(
        b"JOIN #c0\r\nPRIVMSG #c0 :1\r\nPRIVMSG #c0 :2\r\nPRIVMSG #c0 :3\r\n"
    )
    await bob.expect("JOIN")
    texts = [m.params[1] for m in from_alice(await bob.sync(), "PRIVMSG")]
    assert texts == ["1", "2", "3"]


async def test_a_part_costs_a_token_per_channel(server: RunningServer) -> None:
    bob = await watcher_in(server, "#c0")
    alice = await server.client("alice")
    await alice.join("#c0")  # one token: three left
    await bob.expect("JOIN")
    await alice.send_raw(b"PART #c0,#c1,#c2\r\nPRIVMSG bob :after\r\n")
    await bob.expect("PART")
    assert from_alice(await bob.sync(), "PRIVMSG") == []
    assert (await bob.expect("PRIVMSG")).params == ["bob", "after"]


async def test_joins_worth_more_than_the_queue_are_excess_flood(server: RunningServer) -> None:
    """Two lines, but twelve channels: past the ten tokens the queue may hold."""
    bob = await watcher_in(server, "#a0")
    alice = await server.client("alice")
    await alice.send_raw(
        f"JOIN {channels('a', BURST)}\r\nJOIN {channels('b', BURST)}\r\n".encode()
    )
    tail = await alice.wait_closed()
    assert [m.command for m in tail] == ["ERROR"]  # neither JOIN was handled
    assert "Excess Flood" in tail[0].params[0]
    assert from_alice(await bob.sync(), "JOIN") == []


async def test_a_join_of_more_channels_than_the_burst_still_passes(backend: str) -> None:
    """Its cost is capped at the burst: a bucket never holds more."""
    config = suite_config(flood_burst=BURST, flood_rate=4.0, flood_max_queue=10)
    async with serving(config, backend) as server:
        alice = await server.client("alice")
        names = channels("c", 10)
        await alice.send_raw(f"JOIN {names}\r\nPING :done\r\n".encode())
        got = await alice.collect_until("PONG", timeout=10)
        assert [m.params[0] for m in from_alice(got, "JOIN")] == names.split(",")
        assert "ERROR" not in [m.command for m in got]


def test_join_0_waits_for_a_full_bucket() -> None:
    """JOIN 0 costs the burst however few channels it leaves (a fake clock)."""
    config = suite_config(name="test.server", db="", flood_burst=BURST, flood_rate=1.0)
    with CoreHarness(config) as h:
        alice = h.register("alice")  # two tokens: four left
        h.send_line(alice, "JOIN #c")  # three left
        assert h.send_line(alice, "JOIN 0") == {}  # waits for six
        assert h.tick(2.0) == {}  # five
        got = h.tick(1.0)[alice]
        assert got == [b":alice!~alice@192.0.2.1 PART #c :Left all channels\r\n"]
