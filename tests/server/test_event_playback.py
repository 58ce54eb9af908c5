"""IRCv3 draft/event-playback: joins, parts, kicks, quits, nick and mode changes are
kept beside a channel's messages and replayed, where they happened and as its members
saw them, to clients that negotiated it; others get messages only, as before.

Every test runs on every transport backend (the ``server`` fixture)."""

from __future__ import annotations

import pytest

from chat.message import Message
from server.config import ServerConfig
from tests.conftest import RunningServer, suite_config
from tests.ircclient import IRCTestClient
from tests.server.test_accounts import register_account
from tests.server.test_chathistory import history

CAPS = ["batch", "server-time", "message-tags", "draft/chathistory"]
EVENTS = [*CAPS, "draft/event-playback"]


@pytest.fixture
def server_config() -> ServerConfig:
    return suite_config(history_playback=0, chathistory_limit=50)


def seen(m: Message) -> tuple[str | None, str, tuple[str, ...], str, str]:
    """What a member saw of one line: source, command, params, msgid, time."""
    return m.source, m.command, tuple(m.params), m.tags["msgid"], m.tags["time"]


async def test_channel_events_are_replayed_as_members_saw_them(server: RunningServer) -> None:
    """A JOIN, a MODE, a PART (with and without a reason), a KICK, a nick change and a
    QUIT, between messages: the event-playback reader's history is exactly what it was
    sent live; a reader without it gets the messages alone, and events never count
    against its limit."""
    reader = await server.client("reader", EVENTS)
    plain = await server.client("plain", CAPS)
    alice = await server.client("alice", ["message-tags"])
    for c in (alice, reader, plain):
        await c.join("#e")
    await reader.sync()
    reader.backlog.clear()
    bob = await server.client("bob")
    carol = await server.client("carol")
    live: list[Message] = []

    async def step(c: IRCTestClient, line: str, command: str) -> None:
        """``line`` from ``c``, and what the reader was sent of it (one at a time: lines
        from different connections have no order of their own)."""
        await c.send(line)
        live.append(await reader.expect(command))

    await step(alice, "PRIVMSG #e :first", "PRIVMSG")
    await step(bob, "JOIN #e", "JOIN")
    await step(alice, "MODE #e +v bob", "MODE")
    await step(alice, "MODE #e +b *!*@banned.example", "MODE")
    await step(bob, "NICK bobby", "NICK")
    await step(bob, "PART #e :see you", "PART")
    await step(carol, "JOIN #e", "JOIN")
    await step(carol, "PART #e", "PART")
    await step(carol, "JOIN #e", "JOIN")
    await step(alice, "KICK #e carol :enough", "KICK")
    await step(bob, "JOIN #e", "JOIN")
    await step(bob, "QUIT :gone home", "QUIT")
    await step(alice, "PRIVMSG #e :last", "PRIVMSG")
    await plain.sync()
    await reader.sync()

    replies = await history(reader, "CHATHISTORY LATEST #e * 50", "#e")
    # Its own JOIN came before the first message: only what followed is compared.
    assert [seen(m) for m in replies][-len(live):] == [seen(m) for m in live]
    assert [m.command for m in replies][: -len(live)] == ["JOIN", "JOIN", "JOIN"]
    # Kicked with its reason, parted with and without one: as relayed.
    kick = next(m for m in replies if m.command == "KICK")
    assert kick.params == ["#e", "carol", "enough"]
    assert [m.params for m in replies if m.command == "PART"] == [["#e", "see you"], ["#e"]]
    assert next(m for m in replies if m.command == "QUIT").params == ["Quit: gone home"]
    assert next(m for m in replies if m.command == "NICK").source.startswith("bob!")

    # Without event-playback: the two messages, events not counted against the limit.
    plain_replies = await history(plain, "CHATHISTORY LATEST #e * 2", "#e")
    assert [m.params[-1] for m in plain_replies] == ["first", "last"]
    # With it, the limit counts events too.
    newest = await history(reader, "CHATHISTORY LATEST #e * 2", "#e")
    assert [m.command for m in newest] == ["QUIT", "PRIVMSG"]


async def test_a_quit_and_a_nick_change_are_kept_in_every_channel_of_their_user(
    server: RunningServer,
) -> None:
    """One QUIT (or NICK) is one message: each channel's history holds it under the
    msgid its members were sent."""
    reader = await server.client("reader", EVENTS)
    mover = await server.client("mover")
    for channel in ("#one", "#two"):
        await reader.join(channel)
        await mover.join(channel)
    await reader.sync()
    reader.backlog.clear()
    await mover.send("NICK moved")
    nick = await reader.expect("NICK")
    await mover.send("QUIT :bye")
    quit_ = await reader.expect("QUIT")
    for channel in ("#one", "#two"):
        replies = await history(reader, f"CHATHISTORY LATEST {channel} * 2", channel)
        assert [seen(m) for m in replies] == [seen(nick), seen(quit_)]


async def test_extended_join_clients_get_the_account_and_realname_back(
    server: RunningServer,
) -> None:
    extended = await server.client("ext", [*EVENTS, "extended-join"])
    bare = await server.client("bare", EVENTS)
    for c in (extended, bare):
        await c.join("#x")
    user = await server.client("user")
    await register_account(user)
    await user.join("#x")
    live = await extended.expect("JOIN", lambda m: (m.source or "").startswith("user!"))
    assert live.params == ["#x", "user", "Real user"]
    await bare.expect("JOIN", lambda m: (m.source or "").startswith("user!"))
    anon = await server.client("anon")
    await anon.join("#x")
    await extended.expect("JOIN", lambda m: (m.source or "").startswith("anon!"))
    await bare.expect("JOIN", lambda m: (m.source or "").startswith("anon!"))

    got = await history(extended, "CHATHISTORY LATEST #x * 2", "#x")
    assert [m.params for m in got] == [["#x", "user", "Real user"], ["#x", "*", "Real anon"]]
    assert got[0].tags["msgid"] == live.tags["msgid"]
    assert got[0].tags.get("account") == "user"  # a logged-in user's tags, as relayed
    plain = await history(bare, "CHATHISTORY LATEST #x * 2", "#x")
    assert [m.params for m in plain] == [["#x"], ["#x"]]


@pytest.mark.parametrize(
    "server_config", [suite_config(history_playback=0, history_events=False)], ids=["off"]
)
async def test_without_history_events_only_topic_changes_are_kept(
    server: RunningServer,
) -> None:
    reader = await server.client("reader", EVENTS)
    await reader.join("#q")
    other = await server.client("other")
    await other.join("#q")
    await reader.send("TOPIC #q :kept")
    await other.send("NICK renamed")
    await other.send("PART #q")
    await reader.expect("PART")
    await reader.send("PRIVMSG #q :said")
    await reader.sync()
    replies = await history(reader, "CHATHISTORY LATEST #q * 10", "#q")
    assert [(m.command, m.params[-1]) for m in replies] == [("TOPIC", "kept"), ("PRIVMSG", "said")]
