"""Hostile round 4 (items 1, 6, 9): MODE list queries, flag toggles, INVITE, over real TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chat.masks import bound_mask
from tests.conftest import RunningServer, start_server, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, only


async def started(backend: str, **overrides: object) -> RunningServer:
    return start_server(suite_config(**overrides), backend)


@pytest.fixture
async def stopping() -> AsyncIterator[list[RunningServer]]:
    """Servers a test starts itself, stopped after it."""
    servers: list[RunningServer] = []
    yield servers
    for server in servers:
        for c in server.clients:
            await c.close()
        server.handle.stop()


async def banned_channel(server: RunningServer, bans: int, width: int = 20) -> IRCTestClient:
    """``alice``, operator of #c, which holds ``bans`` +b masks padded by ``width``
    characters in the nick and the host (cut as the server cuts them: to 30 and 63)."""
    alice = await server.client("alice")
    await alice.join("#c")
    masks = [bound_mask(f"n{i}{'x' * width}!*@{'h' * width}", 30, 10) for i in range(bans)]
    for i in range(0, bans, 4):
        await alice.send(f"MODE #c +bbbb {' '.join(masks[i:i + 4])}")
    await alice.sync()
    return alice


# ---------------------------------------------------------------------- lists (item 1)


async def test_a_list_is_sent_once_per_mode_command(server: RunningServer) -> None:
    await banned_channel(server, 3)
    outsider = await server.client("outsider")  # need not even be a member
    msgs = await ask(outsider, "MODE #c bbbbbbbbbb")
    assert [m.command for m in msgs] == ["367", "367", "367", "368"]
    msgs = await ask(outsider, "MODE #c bqbqbq")
    assert [m.command for m in msgs] == ["367", "367", "367", "368", "729"]


async def test_list_answers_past_the_sendq_cut_the_asker(
    backend: str, stopping: list[RunningServer]
) -> None:
    # 30 entries of ~150 bytes: one list passes a 4 KiB sendq. Ten queries in one read
    # would queue ten lists in one tick (the kernel takes them all on loopback, so the
    # transport's check after the flush never fires): the first is sent, then SendQ.
    server = await started(backend, sendq=4096)
    stopping.append(server)
    await banned_channel(server, 30, width=100)
    asker = await server.client("asker")
    await asker.send_raw(b"MODE #c b\r\n" * 10)
    tail = await asker.wait_closed()
    assert len(only(tail, "367")) == 30
    assert len(only(tail, "368")) == 1
    assert tail[-1].command == "ERROR"
    assert "SendQ exceeded" in tail[-1].params[0]


# ---------------------------------------------------------------------- flags (item 9)


async def test_flag_toggles_beyond_46_in_one_command_are_ignored(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.join("#t")
    watcher = await server.client("watcher")
    await watcher.join("#t")
    await alice.sync()
    await ask(alice, "MODE #t " + "+m-m" * 122)  # answered: relayed to the watcher first
    relayed = [m.params[1] for m in only(await watcher.sync(), "MODE")]
    letters = "".join(relayed).replace("+", "").replace("-", "")
    assert letters == "m" * 46  # as solanum's MAXMODES_SIMPLE, "+m-m" 23 times
    assert "".join(relayed) == "+m-m" * 23


# ---------------------------------------------------------------------- INVITE (item 6)


async def test_invite_is_charged_to_the_target_limit(
    backend: str, stopping: list[RunningServer]
) -> None:
    server = await started(backend, target_limit=3, target_refill=1000.0)
    stopping.append(server)
    spam = await server.client("spam")
    await spam.join("#free")
    victims = [await server.client(n) for n in ("bob", "carol", "dave", "erin")]
    for nick in ("bob", "carol", "dave"):
        assert [m.command for m in await ask(spam, f"INVITE {nick} #free")] == ["341"]
    msgs = await ask(spam, "INVITE erin #free")
    assert [(m.command, m.params[1:]) for m in msgs] == [
        ("707", ["erin", "Targets changing too fast, message dropped"])]
    assert only(await victims[3].sync(), "INVITE") == []
    # Someone already invited (or written to) costs nothing again.
    assert [m.command for m in await ask(spam, "INVITE bob #free")] == ["341"]


@pytest.mark.parametrize("mute", ["+m", "+q mallory!*@*", "+b mallory!*@*"])
async def test_a_member_who_may_not_speak_does_not_reach_the_channel_by_invite(
    server: RunningServer, mute: str
) -> None:
    alice = await server.client("alice")
    await alice.join("#mute")
    mallory = await server.client("mallory")
    await mallory.join("#mute")
    watcher = await server.client("watcher", caps=["invite-notify"])
    await watcher.join("#mute")
    victim = await server.client("victim")
    await ask(alice, f"MODE #mute {mute}")
    await watcher.sync()
    # The invite itself still goes to its target; the channel is not told.
    assert [m.command for m in await ask(mallory, "INVITE victim #mute")] == ["341"]
    await victim.expect("INVITE")
    assert only(await watcher.sync(), "INVITE") == []
    # Voiced, it may speak again, and invite-notify tells the channel.
    await ask(alice, "MODE #mute +v mallory")
    await ask(mallory, "INVITE victim #mute")
    await watcher.expect("INVITE", lambda m: m.params == ["victim", "#mute"])
