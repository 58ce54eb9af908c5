"""Join playback reads bounded per client and paid from the host's scan budget, over
real TCP, on every backend.

JOIN 50 / JOIN 0 churn kept the one history reader busy with join playback reads
(third hostile-user round, finding 1). A client has at most ``PLAYBACK_READS`` of them
being read; its other joins' playbacks wait their turn, in join order, and each still
comes right after its own join. Past the address's scan budget (LIST, WHO and SEARCH
pay from it too) a join gets no playback, and the client is told once how to fetch it.
The fake-clock side (the budget refilling) is in test_playback_bounds_unit.py.

The bound is seen with the reader threads parked (``readers_blocked``): every read asked
for waits, so the core's pending reads are counted with no timing involved.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chat.message import Message
from server.config import ServerConfig
from server.core.core import PLAYBACK_READS
from tests.conftest import RunningServer, serving, suite_config
from tests.ircclient import IRCTestClient
from tests.server.test_chathistory import read_batch
from tests.server.test_history_reads_of_gone_clients import history, readers_blocked, served

SERVER = "test.server"
N = 3  # history_playback
CHANNELS = [f"#c{i}" for i in range(PLAYBACK_READS + 6)]
LEFT = CHANNELS[-2]  # left before its playback's turn
FULL = ["batch", "server-time", "message-tags", "draft/chathistory"]


@pytest.fixture
def server_config() -> ServerConfig:
    return suite_config(history_playback=N)


def by(nick: str) -> Callable[[Message], bool]:
    return lambda m: (m.source or "").startswith(nick + "!")


async def said_in(server: RunningServer, channels: list[str]) -> IRCTestClient:
    """bob (who asks for history himself: no playback) says "in <channel>" in each."""
    bob = await server.client("bob", FULL)
    await bob.send(f"JOIN {','.join(channels)}")
    for _ in channels:
        await bob.expect("366")
    await bob.send_raw("".join(f"PRIVMSG {c} :in {c}\r\n" for c in channels).encode())
    await bob.sync()
    return bob


def playback_reads(server: RunningServer) -> int:
    pending = list(served(server).core._pending_history.values())
    return sum(p.kind == "playback" for p in pending)


async def joined(c: IRCTestClient, channel: str) -> list[Message]:
    """The join's replies, from its JOIN to its 366."""
    first = await c.read_message()
    assert (first.command, first.params[0]) == ("JOIN", channel), first
    rest = await c.collect_until("366")
    assert rest[-1].params[1] == channel
    return [first, *rest]


async def test_playback_reads_in_flight_are_bounded_each_after_its_join(
    server: RunningServer,
) -> None:
    bob = await said_in(server, CHANNELS)
    store = history(server).store
    mal = await server.client("mal", ["batch", "server-time"])
    with readers_blocked(history(server)):
        before = store.reads
        await mal.send(f"JOIN {','.join(CHANNELS)}")
        await mal.send(f"PART {LEFT}")
        await bob.expect("PART", lambda m: by("mal")(m) and m.params[0] == LEFT)
        # Every join handled, and no read answered: only the first few were asked for.
        assert playback_reads(server) == PLAYBACK_READS
    for channel in CHANNELS:
        await joined(mal, channel)
        if channel == LEFT:
            continue  # (no playback: it was left before its turn)
        replay = await read_batch(mal, "chathistory", channel)
        assert [(m.source or "").split("!")[0] for m in replay] == ["bob"]
        assert [m.params for m in replay] == [[channel, f"in {channel}"]]
    part = await mal.read_message()  # the next line, after the last join's playback
    assert (part.command, part.params[0]) == ("PART", LEFT), part
    assert await mal.sync() == []
    assert store.reads == before + len(CHANNELS) - 1  # the channel left was never read
    assert playback_reads(server) == 0


async def test_playback_past_the_host_scan_budget_is_skipped_and_told_once(
    backend: str, tmp_path: Path
) -> None:
    # Without events a playback read costs N rows: the address may read two.
    config = suite_config(history_playback=N, history_events=False, scan_burst=2 * N,
                          scan_rate=0.01)
    async with serving(config, backend, db=str(tmp_path / "history.db")) as server:
        await said_in(server, ["#a", "#b", "#c", "#d"])
        mal = await server.client("mal")  # no batch: playback comes as NOTICEs
        for channel in ("#a", "#b"):
            await mal.join(channel)
            notice = await mal.read_message()
            assert notice.source == SERVER and notice.params[0] == channel
            assert notice.params[1].endswith(f"<bob> in {channel}"), notice
            assert await mal.sync() == []
        await mal.join("#c")
        told = await mal.read_message()
        assert (told.command, told.source, told.params[0]) == ("NOTICE", SERVER, "#c")
        assert told.params[1].startswith("Recent messages in #c were not replayed"), told
        assert "CHATHISTORY LATEST #c * 3" in told.params[1]
        assert await mal.sync() == []
        await mal.join("#d")
        assert await mal.sync() == []  # no playback, and not told again
        # What the notice suggests is a well-formed read, paid from the same budget:
        # refused until that is earned back (never, at this rate), with a FAIL.
        await mal.send("CHATHISTORY LATEST #c * 3")
        got = await mal.sync()
        assert [m.params[:4] for m in got] == [["CHATHISTORY", "MESSAGE_ERROR", "LATEST", "#c"]]
        # The budget is the address's, not the connection's.
        other = await server.client("other")
        await other.join("#a")
        told = await other.read_message()
        assert told.params[1].startswith("Recent messages in #a were not replayed"), told
        assert await other.sync() == []
