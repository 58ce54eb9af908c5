"""Private-message history between accounts, over real TCP on every backend, stored in
the suite server's real SQLite file: CHATHISTORY on a nick and TARGETS."""

from __future__ import annotations

from chat.message import Message
from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, mask, only

CAPS = ["draft/chathistory", "batch", "server-time", "message-tags"]
PASSWORD = "correct-horse"


async def account_user(server: RunningServer, nick: str) -> IRCTestClient:
    """A registered user logged in to the account named after it."""
    c = await server.client(nick, CAPS)
    assert [m.command for m in await ask(c, f"REGISTER * * {PASSWORD}")] == ["REGISTER", "900"]
    return c


async def answer(c: IRCTestClient, line: str) -> list[Message]:
    """The whole answer to a CHATHISTORY request: a FAIL, or the batch (both BATCH lines
    included). History answers come later than other replies, so no PING to end it."""
    await c.sync()
    await c.send(line)
    head = await c.collect_until("BATCH", "FAIL")
    if head[-1].command == "FAIL":
        return head[-1:]
    return [head[-1], *await c.collect_until("BATCH")]


async def history(c: IRCTestClient, line: str) -> list[Message]:
    """The messages inside the chathistory batch answering ``line``."""
    msgs = await answer(c, line)
    assert msgs[0].command == "BATCH" and msgs[-1].command == "BATCH", msgs
    return msgs[1:-1]


async def test_a_conversation_between_accounts_is_kept_for_both(server: RunningServer) -> None:
    alice = await account_user(server, "alice")
    bob = await account_user(server, "bob")
    await alice.send("PRIVMSG bob :hello bob")
    await bob.expect("PRIVMSG")
    await bob.send("PRIVMSG alice :hi alice")
    await alice.expect("PRIVMSG")
    await alice.send("NOTICE bob :a notice")
    await bob.expect("NOTICE")
    expected = [
        (mask(alice), "PRIVMSG", ["bob", "hello bob"]),
        (mask(bob), "PRIVMSG", ["alice", "hi alice"]),
        (mask(alice), "NOTICE", ["bob", "a notice"]),
    ]
    for viewer, partner in ((alice, "bob"), (bob, "alice")):
        msgs = await answer(viewer, f"CHATHISTORY LATEST {partner} * 10")
        assert msgs[0].params[1:] == ["chathistory", partner]
        rows = msgs[1:-1]
        assert [(m.source, m.command, m.params) for m in rows] == expected
        assert all("msgid" in m.tags and "time" in m.tags for m in rows)
    # Paging works as for channels: BEFORE the last message's msgid.
    last = (await history(alice, "CHATHISTORY LATEST bob * 1"))[0]
    before = await history(alice, f"CHATHISTORY BEFORE bob msgid={last.tags['msgid']} 10")
    assert [m.params[1] for m in before] == ["hello bob", "hi alice"]


async def test_the_conversation_follows_the_account_not_the_nick(server: RunningServer) -> None:
    alice = await account_user(server, "alice")
    bob = await account_user(server, "bob")
    await alice.send("PRIVMSG bob :before the rename")
    await bob.expect("PRIVMSG")
    await ask(bob, "NICK robert")
    rows = await history(alice, "CHATHISTORY LATEST robert * 10")
    assert [m.params for m in rows] == [["bob", "before the rename"]]
    # With bob gone, the account's name still reaches the conversation.
    await bob.send("QUIT :bye")
    await bob.wait_closed()
    rows = await history(alice, "CHATHISTORY LATEST bob * 10")
    assert [m.params[1] for m in rows] == ["before the rename"]


async def test_nothing_is_kept_without_two_accounts(server: RunningServer) -> None:
    alice = await account_user(server, "alice")
    carol = await server.client("carol", CAPS)
    await alice.send("PRIVMSG carol :carol has no account")
    await carol.expect("PRIVMSG")
    await carol.send("PRIVMSG alice :neither do I")
    await alice.expect("PRIVMSG")
    for viewer, partner in ((alice, "carol"), (carol, "alice")):
        msgs = await answer(viewer, f"CHATHISTORY LATEST {partner} * 10")
        assert [(m.command, m.params[1]) for m in msgs] == [("FAIL", "INVALID_TARGET")]


async def test_others_cannot_read_a_conversation(server: RunningServer) -> None:
    alice = await account_user(server, "alice")
    bob = await account_user(server, "bob")
    eve = await account_user(server, "eve")
    await alice.send("PRIVMSG bob :just for bob")
    await bob.expect("PRIVMSG")
    # eve asking about bob gets her own (empty) conversation with bob, about alice hers.
    assert await history(eve, "CHATHISTORY LATEST bob * 10") == []
    assert await history(eve, "CHATHISTORY LATEST alice * 10") == []


async def test_targets_lists_conversations_beside_channels(server: RunningServer) -> None:
    alice = await account_user(server, "alice")
    bob = await account_user(server, "bob")
    await alice.join("#room")
    await alice.send("PRIVMSG #room :in the room")
    await alice.send("PRIVMSG bob :to bob")
    await bob.expect("PRIVMSG")
    await alice.send("PRIVMSG alice :a note to myself")
    await alice.expect("PRIVMSG")
    msgs = await answer(alice, "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z "
                               "timestamp=2999-01-01T00:00:00.000Z 10")
    listed = [m.params[1] for m in only(msgs, "CHATHISTORY")]
    assert sorted(listed) == ["#room", "alice", "bob"]
    msgs = await answer(bob, "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z "
                             "timestamp=2999-01-01T00:00:00.000Z 10")
    assert [m.params[1] for m in only(msgs, "CHATHISTORY")] == ["alice"]


async def test_targets_names_a_conversation_by_the_partners_nick_while_online(
    server: RunningServer,
) -> None:
    alice = await account_user(server, "alice")
    bob = await account_user(server, "bob")
    await alice.send("PRIVMSG bob :before the nick change")
    await bob.expect("PRIVMSG")
    await ask(bob, "NICK bob_phone")
    targets = ("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z "
               "timestamp=2999-01-01T00:00:00.000Z 10")
    msgs = await answer(alice, targets)
    assert [m.params[1] for m in only(msgs, "CHATHISTORY")] == ["bob_phone"]
    # The name it gives finds the conversation.
    rows = await history(alice, "CHATHISTORY LATEST bob_phone * 10")
    assert [m.params[-1] for m in rows] == ["before the nick change"]
    await bob.send("QUIT :bye")
    await bob.wait_closed()
    msgs = await answer(alice, targets)
    assert [m.params[1] for m in only(msgs, "CHATHISTORY")] == ["bob"]  # offline: the account
