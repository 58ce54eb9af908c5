"""Join playback fills the gap, over real TCP on every backend: a client that rejoins
or reconnects (same nick!user@host) gets only what was said since it left, and
nothing at all when nothing was (irssi and WeeChat showed the same lines each time)."""

from __future__ import annotations

import pytest

from server.config import ServerConfig
from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient
from tests.server.helpers import quit_and_wait


@pytest.fixture
def server_config() -> ServerConfig:
    return ServerConfig(name="test.server", network="TestNet", history_playback=5)


async def played(c: IRCTestClient, channel: str) -> list[str]:
    """JOIN, then the texts of the playback notices: everything before the answer to a
    CHATHISTORY sent after the join (history requests are answered in order)."""
    await c.join(channel)
    await c.send(f"CHATHISTORY LATEST {channel} * 1")
    texts = []
    while (m := await c.read_message()).command == "NOTICE":
        texts.append(m.params[1].split("] ", 1)[1])
    assert m.command == "PRIVMSG"  # the answer: the newest message
    assert await c.sync() == []
    return texts


async def say(alice: IRCTestClient, text: str) -> None:
    await alice.send(f"PRIVMSG #g :{text}")
    await alice.sync()


async def test_a_rejoin_gets_only_what_was_said_meanwhile(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.join("#g")
    await say(alice, "one")
    plain = await server.client("plain")
    assert await played(plain, "#g") == ["<alice> one"]
    await plain.send("PART #g")
    await say(alice, "two")
    assert await played(plain, "#g") == ["<alice> two"]
    await plain.send("PART #g")
    assert await played(plain, "#g") == []  # nothing since: nothing, not the last lines


async def test_a_reconnect_gets_only_what_was_said_meanwhile(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.join("#g")
    await say(alice, "one")
    plain = await server.client("plain")
    assert await played(plain, "#g") == ["<alice> one"]
    await quit_and_wait(plain)
    await say(alice, "two")
    plain = await server.client("plain")
    assert await played(plain, "#g") == ["<alice> two"]
    await quit_and_wait(plain)
    plain = await server.client("plain")
    assert await played(plain, "#g") == []
    # Someone else under another nick was not there: the last lines, as before.
    other = await server.client("other")
    assert await played(other, "#g") == ["<alice> one", "<alice> two"]
