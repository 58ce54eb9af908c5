"""REDACT (IRCv3 draft/message-redaction) over real TCP, on every backend, with real
SQLite history (and, in one test, the real Redis cache in front of it).

A redacted message is gone from CHATHISTORY for everyone, its msgid still works as a
reference, and the REDACT reaches exactly the members that negotiated the capability
(and the one who asked, as confirmation). Who may: the sender (its account, or its
connection when not logged in) within the window, channel operators and IRC
operators for channel messages; others get FAIL REDACT REDACT_FORBIDDEN.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from chat.message import Message
from server.config import ServerConfig
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer, serving, suite_config
from tests.history.conftest import RedisServer, redis_server  # noqa: F401
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, cap_ls, mask, only

CAP = "draft/message-redaction"
CAPS = ["message-tags", "echo-message", "batch", "server-time", "draft/chathistory", CAP]
UNKNOWN = "0000000000000000"  # a well-formed msgid never issued


@pytest.fixture
def server_config() -> ServerConfig:
    return suite_config(history_playback=0)


async def say(c: IRCTestClient, target: str, text: str) -> str:
    """Send a PRIVMSG; its msgid, from the echo."""
    await c.send(f"PRIVMSG {target} :{text}")
    echo = await c.expect("PRIVMSG", lambda m: m.params[-1] == text)
    return echo.tags["msgid"]


async def history(c: IRCTestClient, target: str, ref: str = "*", sub: str = "LATEST") -> list[str]:
    """The texts CHATHISTORY returns for ``target``."""
    await c.send(f"CHATHISTORY {sub} {target} {ref} 50")
    lines = await c.collect_until("BATCH", "FAIL")
    assert lines[-1].command == "BATCH", lines
    lines = await c.collect_until("BATCH")
    return [m.params[1] for m in lines if m.command in ("PRIVMSG", "NOTICE")]


def fails(msgs: list[Message]) -> list[list[str]]:
    return [m.params[:-1] for m in only(msgs, "FAIL")]


async def room(server: RunningServer) -> tuple[IRCTestClient, IRCTestClient, IRCTestClient]:
    """alice (op of #r) and bob with the capability, carol without it; all in #r."""
    alice = await server.client("alice", CAPS)
    bob = await server.client("bob", CAPS)
    carol = await server.client("carol", ["message-tags", "echo-message"])
    for c in (alice, bob, carol):
        await c.join("#r")
    for c in (alice, bob, carol):
        await c.sync()
    return alice, bob, carol


async def test_capability_is_offered_with_history(server: RunningServer) -> None:
    c = await server.client()
    assert CAP in await cap_ls(c)


async def test_sender_deletes_own_message(server: RunningServer) -> None:
    alice, bob, carol = await room(server)
    keep = await say(alice, "#r", "hello")
    gone = await say(alice, "#r", "my password is hunter2")
    after = await say(alice, "#r", "sorry")
    for c in (bob, carol):
        await c.sync()

    await alice.send(f"REDACT #r {gone} :pasted a secret")
    mine = await alice.expect("REDACT")
    assert mine.source == mask(alice)
    assert mine.params == ["#r", gone, "pasted a secret"]
    assert mine.tags["msgid"] not in (keep, gone, after)  # a message of its own
    told = await bob.expect("REDACT")
    assert told.params == ["#r", gone, "pasted a secret"]
    assert told.source == mask(alice)
    # carol did not negotiate the capability: she is told nothing.
    assert "REDACT" not in [m.command for m in await carol.sync()]

    for c in (alice, bob):
        assert await history(c, "#r") == ["hello", "sorry"]
        # Its msgid is still a reference: what came after it.
        assert await history(c, "#r", f"msgid={gone}", "AFTER") == ["sorry"]
        assert await history(c, "#r", f"msgid={gone}", "BEFORE") == ["hello"]
    # Deleted once: a second REDACT finds nothing.
    assert fails(await ask(alice, f"REDACT #r {gone}")) == [
        ["REDACT", "UNKNOWN_MSGID", "#r", gone]]


async def test_others_may_not_but_channel_operators_may(server: RunningServer) -> None:
    alice, bob, carol = await room(server)  # alice made #r: she is its operator
    mine = await say(alice, "#r", "from the op")
    spam = await say(bob, "#r", "buy now")
    await alice.expect("PRIVMSG", lambda m: m.params[-1] == "buy now")

    assert fails(await ask(bob, f"REDACT #r {mine}")) == [
        ["REDACT", "REDACT_FORBIDDEN", "#r", mine]]
    assert fails(await ask(carol, f"REDACT #r {spam}")) == [
        ["REDACT", "REDACT_FORBIDDEN", "#r", spam]]
    assert await history(bob, "#r") == ["from the op", "buy now"]

    await alice.send(f"REDACT #r {spam} :spam")
    assert (await alice.expect("REDACT")).params == ["#r", spam, "spam"]
    told = await bob.expect("REDACT")
    assert told.source == mask(alice) and told.params == ["#r", spam, "spam"]
    assert await history(bob, "#r") == ["from the op"]
    # Without +o, the same request is refused.
    await alice.send("MODE #r -o alice")
    await alice.expect("MODE")
    again = await say(bob, "#r", "more spam")
    assert fails(await ask(alice, f"REDACT #r {again}")) == [
        ["REDACT", "REDACT_FORBIDDEN", "#r", again]]


async def test_irc_operator_may_delete_in_any_channel(
    backend: str, oper_hash: str, tmp_path: Path
) -> None:
    config = suite_config(history_playback=0, opers={OPER_NAME: oper_hash})
    async with serving(config, backend, db=str(tmp_path / "h.db")) as srv:
        alice, bob, _ = await room(srv)
        spam = await say(bob, "#r", "spam from bob")
        oper = await srv.client("oper", CAPS)
        assert "381" in [m.command for m in await ask(oper, f"OPER {OPER_NAME} :{OPER_PASSWORD}")]
        # Not a member of #r, and no channel status: an IRC operator all the same.
        await oper.send(f"REDACT #r {spam}")
        assert (await oper.expect("REDACT")).params == ["#r", spam]
        assert (await alice.expect("REDACT")).params == ["#r", spam]
        assert await history(alice, "#r") == []


async def test_bad_requests(server: RunningServer) -> None:
    alice, bob, _ = await room(server)
    msgid = await say(alice, "#r", "in #r")
    await alice.join("#other")
    elsewhere = await say(alice, "#other", "in #other")
    outsider = await server.client("dave", CAPS)

    assert fails(await ask(alice, f"REDACT #r {UNKNOWN}")) == [
        ["REDACT", "UNKNOWN_MSGID", "#r", UNKNOWN]]
    assert fails(await ask(alice, "REDACT #r not-a-msgid")) == [
        ["REDACT", "UNKNOWN_MSGID", "#r", "not-a-msgid"]]
    # A message of another channel is not one of this channel's.
    assert fails(await ask(alice, f"REDACT #r {elsewhere}")) == [
        ["REDACT", "UNKNOWN_MSGID", "#r", elsewhere]]
    assert fails(await ask(outsider, f"REDACT #r {msgid}")) == [
        ["REDACT", "INVALID_TARGET", "#r"]]
    assert fails(await ask(alice, f"REDACT #nowhere {msgid}")) == [
        ["REDACT", "INVALID_TARGET", "#nowhere"]]
    # A nick is a private conversation: only between accounts, and these are not.
    assert fails(await ask(alice, f"REDACT bob {msgid}")) == [
        ["REDACT", "INVALID_TARGET", "bob"]]
    short = await ask(alice, "REDACT #r")
    assert [m.command for m in short] == ["461"]
    # Nothing was deleted by any of it.
    assert await history(bob, "#r") == ["in #r"]


async def test_a_long_reason_is_cut_to_fit(server: RunningServer) -> None:
    alice, bob, _ = await room(server)
    msgid = await say(alice, "#r", "x")
    await alice.send(f"REDACT #r {msgid} :{'é' * 220}")
    got = await bob.expect("REDACT")
    assert got.params[:2] == ["#r", msgid]
    assert got.params[2] == "é" * 150  # 300 bytes


async def test_a_new_connection_may_not_delete_an_old_ones_messages(
    server: RunningServer,
) -> None:
    """Without an account, a message is its connection's: the same nick later is
    someone else as far as the server can tell."""
    alice, bob, _ = await room(server)
    msgid = await say(bob, "#r", "from bob's first connection")
    await bob.send("QUIT")
    await bob.wait_closed()
    again = await server.client("bob", CAPS)
    await again.join("#r")
    assert fails(await ask(again, f"REDACT #r {msgid}")) == [
        ["REDACT", "REDACT_FORBIDDEN", "#r", msgid]]
    assert await history(alice, "#r") == ["from bob's first connection"]


async def register(c: IRCTestClient, password: str = "long-password") -> None:
    assert [m.command for m in await ask(c, f"REGISTER * * {password}")] == ["REGISTER", "900"]


async def test_an_accounts_messages_are_its_own_on_every_connection(
    server: RunningServer,
) -> None:
    alice, bob, _ = await room(server)
    await register(bob)
    msgid = await say(bob, "#r", "said while logged in")
    await bob.send("QUIT")
    await bob.wait_closed()
    phone = await server.client("bobphone", CAPS)
    assert "900" in [m.command for m in await ask(phone, "NS IDENTIFY bob long-password")]
    await phone.join("#r")
    await phone.send(f"REDACT #r {msgid}")
    assert (await phone.expect("REDACT")).params == ["#r", msgid]
    assert (await alice.expect("REDACT")).source == mask(phone)
    assert await history(alice, "#r") == []


async def test_messages_sent_before_logging_in_stay_the_connections(
    server: RunningServer,
) -> None:
    alice, bob, _ = await room(server)
    msgid = await say(bob, "#r", "before logging in")
    await register(bob)
    await bob.send(f"REDACT #r {msgid}")
    assert (await bob.expect("REDACT")).params == ["#r", msgid]
    assert await history(alice, "#r") == []


async def two_accounts(server: RunningServer) -> tuple[IRCTestClient, IRCTestClient]:
    """alice and bob, each logged in to an account of that name: their private
    messages are kept."""
    alice = await server.client("alice", CAPS)
    bob = await server.client("bob", CAPS)
    for c in (alice, bob):
        await register(c)
    return alice, bob


async def test_private_messages_between_accounts(server: RunningServer) -> None:
    alice, bob = await two_accounts(server)
    first = await say(alice, "bob", "one")
    await bob.expect("PRIVMSG")
    second = await say(alice, "bob", "two")
    await bob.expect("PRIVMSG")
    theirs = await say(bob, "alice", "three")
    await alice.expect("PRIVMSG", lambda m: m.params[-1] == "three")

    # The partner may not delete what the other said.
    assert fails(await ask(bob, f"REDACT alice {second}")) == [
        ["REDACT", "REDACT_FORBIDDEN", "alice", second]]
    await alice.send(f"REDACT bob {second} :wrong window")
    assert (await alice.expect("REDACT")).params == ["bob", second, "wrong window"]
    told = await bob.expect("REDACT")
    assert told.source == mask(alice) and told.params == ["bob", second, "wrong window"]
    assert await history(alice, "bob") == ["one", "three"]
    assert await history(bob, "alice") == ["one", "three"]
    assert await history(bob, "alice", f"msgid={first}", "AFTER") == ["three"]
    await bob.send(f"REDACT alice {theirs}")
    assert (await bob.expect("REDACT")).params == ["alice", theirs]
    assert (await alice.expect("REDACT")).params == ["alice", theirs]
    assert await history(alice, "bob") == ["one"]


async def test_labelled_request_gets_the_redact_as_its_answer(server: RunningServer) -> None:
    alice = await server.client("alice", [*CAPS, "labeled-response"])
    await alice.join("#r")
    msgid = await say(alice, "#r", "labelled")
    await alice.send(f"@label=x1 REDACT #r {msgid}")
    got = await alice.expect("REDACT")
    assert got.tags.get("label") == "x1" and got.params == ["#r", msgid]


@pytest.mark.parametrize("server_config", [suite_config(history_playback=0, redact_window=1)],
                         ids=["window-1s"])
async def test_own_messages_only_within_the_window(server: RunningServer) -> None:
    alice, bob, _ = await room(server)
    mine = await say(bob, "#r", "old news")
    await asyncio.sleep(1.2)  # past the one-second window (the check is server-side)
    assert fails(await ask(bob, f"REDACT #r {mine}")) == [
        ["REDACT", "REDACT_WINDOW_EXPIRED", "#r", mine, "1"]]
    # Channel operators are not bound by it.
    await alice.send(f"REDACT #r {mine}")
    assert (await alice.expect("REDACT")).params == ["#r", mine]


async def test_without_history_there_is_nothing_to_delete(backend: str) -> None:
    async with serving(suite_config(db=""), backend) as srv:
        c = await srv.client()
        assert CAP not in await cap_ls(c)
        alice = await srv.client("alice")
        assert [m.command for m in await ask(alice, f"REDACT #r {UNKNOWN}")] == ["421"]


async def test_the_cached_window_forgets_a_deleted_message(
    backend: str, redis_server: RedisServer, tmp_path: Path  # noqa: F811
) -> None:
    config = replace(suite_config(history_playback=0), redis=redis_server.url, redis_window=10)
    async with serving(config, backend, db=str(tmp_path / "history.db")) as srv:
        alice, bob, _ = await room(srv)
        texts = [f"m{i}" for i in range(5)]
        ids = [await say(alice, "#r", t) for t in texts]
        assert await history(bob, "#r") == texts  # read once: the window is cached now
        assert await history(bob, "#r") == texts
        await alice.send(f"REDACT #r {ids[4]}")
        await bob.expect("REDACT")
        assert await history(bob, "#r") == texts[:4]
        await alice.send(f"REDACT #r {ids[1]}")
        await bob.expect("REDACT")
        assert await history(bob, "#r") == ["m0", "m2", "m3"]
        later = await say(alice, "#r", "m5")
        assert await history(bob, "#r") == ["m0", "m2", "m3", "m5"]
        assert await history(bob, "#r", f"msgid={ids[4]}", "AFTER") == ["m5"]
        assert later


async def batch(c: IRCTestClient, line: str) -> list[Message]:
    """The lines of the chathistory batch answering ``line``."""
    await c.send(line)
    await c.expect("BATCH")
    lines = await c.collect_until("BATCH")
    return lines[:-1]


async def test_history_tells_those_with_the_capability_what_was_deleted(
    server: RunningServer,
) -> None:
    """Who was away learns of a deletion from CHATHISTORY: the REDACT comes back where
    it happened (after the message), to clients with the capability only."""
    alice, bob, _ = await room(server)
    first = await say(alice, "#r", "first")
    gone = await say(alice, "#r", "oops")
    await alice.send(f"REDACT #r {gone} :typo")
    redact = await alice.expect("REDACT")
    last = await say(bob, "#r", "last")
    late = await server.client("late", CAPS)
    await late.join("#r")

    got = await batch(late, "CHATHISTORY LATEST #r * 10")
    assert [(m.command, m.params) for m in got] == [
        ("PRIVMSG", ["#r", "first"]),
        ("REDACT", ["#r", gone, "typo"]),
        ("PRIVMSG", ["#r", "last"]),
    ]
    assert got[1].source == mask(alice)
    assert got[1].tags["msgid"] == redact.tags["msgid"]
    assert got[1].tags["time"] == redact.tags["time"]
    # A reconnecting client's gap fill after the deleted message sees the REDACT too.
    after = await batch(late, f"CHATHISTORY AFTER #r msgid={first} 10")
    assert [m.command for m in after] == ["REDACT", "PRIVMSG"]
    # Without the capability: only the messages.
    reader = await server.client("reader", ["batch", "server-time", "message-tags",
                                            "draft/chathistory"])
    await reader.join("#r")
    got = await batch(reader, "CHATHISTORY LATEST #r * 10")
    assert [(m.command, m.params[-1]) for m in got] == [("PRIVMSG", "first"), ("PRIVMSG", "last")]
    # The record of a deletion cannot itself be deleted.
    assert fails(await ask(alice, f"REDACT #r {redact.tags['msgid']}")) == [
        ["REDACT", "UNKNOWN_MSGID", "#r", redact.tags["msgid"]]]
    assert last


@pytest.mark.parametrize("server_config", [suite_config(history_playback=5)], ids=["playback"])
async def test_join_playback_carries_the_redact(server: RunningServer) -> None:
    alice = await server.client("alice", CAPS)
    await alice.join("#r")
    gone = await say(alice, "#r", "oops")
    await alice.send(f"REDACT #r {gone}")
    await alice.expect("REDACT")
    # Batch-capable clients without chathistory get the playback as a batch.
    late = await server.client("late", ["batch", "server-time", "message-tags", CAP])
    await late.join("#r")
    await late.expect("BATCH")  # the playback follows the join
    lines = await late.collect_until("BATCH")
    assert [(m.command, m.params) for m in lines[:-1]] == [("REDACT", ["#r", gone])]
    # Clients without batch get notices of messages only: nothing to show here.
    old = await server.client("old")
    lines = await old.join("#r")
    assert [m for m in lines if m.command == "NOTICE" and m.params[0] == "#r"] == []


async def test_private_history_carries_the_redact(server: RunningServer) -> None:
    alice, bob = await two_accounts(server)
    gone = await say(alice, "bob", "wrong window")
    await bob.expect("PRIVMSG")
    await alice.send(f"REDACT bob {gone}")
    await bob.expect("REDACT")
    got = await batch(bob, "CHATHISTORY LATEST alice * 10")
    assert [(m.source, m.command, m.params) for m in got] == [
        (mask(alice), "REDACT", ["bob", gone])]
    assert [m.params for m in await batch(alice, "CHATHISTORY LATEST bob * 10")] == [
        ["bob", gone]]
