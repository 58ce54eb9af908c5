"""What an ended channel's history shows, over real TCP on every backend, real SQLite.

An unregistered channel that ends (its last member leaves, or the server stops) while
secret, invite-only or keyed takes its history with it: whoever makes a channel of
that name later, as its members or from outside, reads nothing that was said behind
the closed door: not in join playback, CHATHISTORY, SEARCH or TARGETS. An open
channel's history (anyone could read it) and a registered channel's go on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chat.message import Message
from server.config import ServerConfig
from tests.conftest import RunningServer, serving, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, chanserv_says, only, quit_and_wait

CAPS = ["batch", "server-time", "message-tags", "draft/chathistory", "soju.im/search"]
SECRET = "behind closed doors"
PASSWORD = "tr0ub4dor&3"


@pytest.fixture
def server_config() -> ServerConfig:
    return suite_config(history_playback=20)


def texts(msgs: list[Message]) -> list[str]:
    """The texts of the PRIVMSGs and NOTICEs among ``msgs`` (history or playback)."""
    return [m.params[-1] for m in msgs if m.command in ("PRIVMSG", "NOTICE")]


async def batch(c: IRCTestClient, line: str, kind: str) -> list[Message]:
    """The lines of the ``kind`` batch that answers ``line``."""
    await c.send(line)
    start = await c.expect("BATCH", lambda m: m.params[0][:1] == "+")
    assert start.params[1] == kind, start
    lines = await c.collect_until("BATCH")
    return lines[:-1]


async def latest(c: IRCTestClient, channel: str) -> list[str]:
    return texts(await batch(c, f"CHATHISTORY LATEST {channel} * 50", "chathistory"))


async def search(c: IRCTestClient, channel: str) -> list[str]:
    """Every message of ``channel`` with an "e" in it: all of this module's have one."""
    return texts(await batch(c, f"SEARCH in={channel};text=e", "soju.im/search"))


async def join_playback(c: IRCTestClient, channel: str) -> str:
    """What a client without chathistory is replayed on JOIN ("[time] <nick> text"
    NOTICEs), one line each."""
    msgs = await c.join(channel)
    msgs += await c.sync()
    return "\n".join(texts(msgs))


async def say(c: IRCTestClient, channel: str, text: str) -> None:
    await c.send(f"PRIVMSG {channel} :{text}")
    await c.sync()  # stored before the tick's output, so before the PONG


async def closed_and_ended(server: RunningServer, modes: str) -> None:
    """alice makes #room, sets ``modes``, says SECRET and leaves: the channel ends."""
    alice = await server.client("alice")
    await alice.join("#room")
    assert not [m for m in await ask(alice, f"MODE #room {modes}") if m.command.isdigit()]
    await say(alice, "#room", SECRET)
    await quit_and_wait(alice)


@pytest.mark.parametrize("modes", ["+s", "+i", "+k door", "+sik door"])
async def test_a_closed_channel_that_ends_takes_its_history_with_it(
    server: RunningServer, modes: str
) -> None:
    await closed_and_ended(server, modes)
    mallory = await server.client("mallory")  # makes #room anew, and is its op
    assert SECRET not in await join_playback(mallory, "#room")
    outsider = await server.client("outsider", CAPS)
    assert await latest(outsider, "#room") == []  # the new #room is open: may read it
    await say(mallory, "#room", "a new channel")
    assert await latest(outsider, "#room") == ["a new channel"]
    member = await server.client("member", CAPS)
    await member.join("#room")
    await member.sync()
    assert await latest(member, "#room") == ["a new channel"]
    assert await search(member, "#room") == ["a new channel"]
    # TARGETS lists #room by the new channel's message, not the old one's.
    targets = await batch(member, "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z "
                          "timestamp=2100-01-01T00:00:00.000Z 10", "draft/chathistory-targets")
    assert [m.params[1] for m in targets] == ["#room"]
    # alice, back later, joins the new channel and reads only what was said in it.
    alice = await server.client("alice", CAPS)
    await alice.join("#room")
    await alice.sync()
    assert await latest(alice, "#room") == ["a new channel"]


async def test_a_closed_channel_that_ends_with_nothing_said_since_is_not_listed(
    server: RunningServer,
) -> None:
    await closed_and_ended(server, "+s")
    member = await server.client("member", CAPS)
    await member.join("#room")
    await member.sync()
    targets = await batch(member, "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z "
                          "timestamp=2100-01-01T00:00:00.000Z 10", "draft/chathistory-targets")
    assert targets == []
    assert await search(member, "#room") == []


async def test_an_open_channel_keeps_its_history_when_made_again(
    server: RunningServer,
) -> None:
    await closed_and_ended(server, "+m")  # moderated, but anyone may look in
    mallory = await server.client("mallory")
    assert SECRET in await join_playback(mallory, "#room")
    outsider = await server.client("outsider", CAPS)
    assert await latest(outsider, "#room") == [SECRET]


async def test_a_channel_opened_before_it_ends_keeps_its_history(
    server: RunningServer,
) -> None:
    """What counts is how the channel ends: once opened, anyone could read it already."""
    alice = await server.client("alice")
    await alice.join("#room")
    await ask(alice, "MODE #room +s")
    await say(alice, "#room", SECRET)
    await ask(alice, "MODE #room -s")
    await quit_and_wait(alice)
    outsider = await server.client("outsider", CAPS)
    await outsider.join("#room")
    await outsider.sync()
    assert await latest(outsider, "#room") == [SECRET]


async def test_a_registered_closed_channel_keeps_its_history(server: RunningServer) -> None:
    founder = await server.client("fiona")
    assert only(await ask(founder, f"REGISTER * * {PASSWORD}"), "900")
    await founder.join("#kept")
    assert chanserv_says(await ask(founder, "CS REGISTER #kept")) == [
        "#kept is registered to fiona"]
    await ask(founder, "MODE #kept +s")
    await say(founder, "#kept", SECRET)
    await quit_and_wait(founder)
    member = await server.client("member", CAPS)
    await member.join("#kept")
    await member.sync()
    assert await latest(member, "#kept") == [SECRET]


async def test_a_closed_channel_ends_when_the_server_stops(backend: str, tmp_path: Path) -> None:
    """After a restart it would come back open: its history must not."""
    db = str(tmp_path / "h.db")
    async with serving(suite_config(), backend, db=db) as running:
        alice = await running.client("alice")
        for channel in ("#closed", "#open"):
            await alice.join(channel)
        await ask(alice, "MODE #closed +k door")
        await say(alice, "#closed", SECRET)
        await say(alice, "#open", "open to all")
    async with serving(suite_config(), backend, db=db) as running:
        outsider = await running.client("outsider", CAPS)
        # Made by nobody yet: no such target.
        fail = only(await ask(outsider, "CHATHISTORY LATEST #closed * 50"), "FAIL")
        assert [m.params[:3] for m in fail] == [["CHATHISTORY", "INVALID_TARGET", "LATEST"]]
        bob = await running.client("bob", CAPS)
        for channel in ("#closed", "#open"):
            await bob.join(channel)
        await bob.sync()
        assert await latest(bob, "#closed") == []
        assert await latest(bob, "#open") == ["open to all"]
