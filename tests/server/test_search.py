"""SEARCH (soju.im/search) over real TCP, on every backend, against real SQLite history.

Only what CHATHISTORY would let the user read is searched; results are the newest
matches, oldest first, as members received them (source, target, text, msgid, time).
"""

from __future__ import annotations

import asyncio

import pytest

from chat.message import Message
from server.config import ServerConfig
from tests.conftest import RunningServer, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, cap_ls, mask

CAP = "soju.im/search"
CAPS = ["batch", "server-time", "message-tags", "echo-message", CAP]


@pytest.fixture
def server_config() -> ServerConfig:
    return suite_config(history_playback=0, chathistory_limit=50)


async def search(c: IRCTestClient, attrs: str) -> list[Message]:
    """The messages of the soju.im/search batch answering ``SEARCH attrs``."""
    await c.send(f"SEARCH {attrs}")
    start = await c.expect("BATCH")
    assert start.params[1:] == ["soju.im/search"]
    lines = await c.collect_until("BATCH")
    assert lines[-1].params == ["-" + start.params[0][1:]]
    return lines[:-1]


def texts(msgs: list[Message]) -> list[str]:
    return [m.params[-1] for m in msgs]


async def say(c: IRCTestClient, target: str, text: str) -> Message:
    await c.send(f"PRIVMSG {target} :{text}")
    return await c.expect("PRIVMSG", lambda m: m.params[-1] == text)


async def test_capability_and_help(server: RunningServer) -> None:
    c = await server.client()
    assert CAP in await cap_ls(c)
    alice = await server.client("alice")
    assert [m.command for m in await ask(alice, "HELP SEARCH")][:1] == ["704"]


async def test_finds_what_was_said_newest_first_shown_oldest_first(
    server: RunningServer,
) -> None:
    alice = await server.client("alice", CAPS)
    bob = await server.client("bob", CAPS)
    for c in (alice, bob):
        await c.join("#t")
    await alice.sync()
    sent = [await say(alice, "#t", "the Needle is here"), await say(bob, "#t", "no match")]
    await asyncio.sleep(0.01)  # a later millisecond, for the after= bound below
    sent += [await say(bob, "#t", "another needle, from bob"),
             await say(alice, "#t", "100% needle_ish")]
    await alice.join("#other")
    await asyncio.sleep(0.01)  # a later millisecond: results are in time order
    await say(alice, "#other", "needle elsewhere")

    got = await search(alice, "text=needle;in=#t")
    assert texts(got) == ["the Needle is here", "another needle, from bob", "100% needle_ish"]
    assert [m.tags["msgid"] for m in got] == [sent[i].tags["msgid"] for i in (0, 2, 3)]
    assert [m.tags["time"] for m in got] == [sent[i].tags["time"] for i in (0, 2, 3)]
    assert got[1].source == mask(bob) and got[1].params[0] == "#t"
    # The newest N, oldest first.
    assert texts(await search(alice, "text=needle;in=#t;limit=2")) == [
        "another needle, from bob", "100% needle_ish"]
    # From one nick; wildcards are literal; values are tag-escaped.
    assert texts(await search(alice, "from=BOB;in=#t")) == ["no match", "another needle, from bob"]
    assert texts(await search(alice, "text=100%;in=#t")) == ["100% needle_ish"]
    assert texts(await search(alice, r"text=needle,\sfrom;in=#t")) == ["another needle, from bob"]
    assert texts(await search(alice, "text=needle_;in=#t")) == ["100% needle_ish"]
    # Time bounds.
    after = sent[1].tags["time"]
    assert texts(await search(alice, f"text=needle;in=#t;after={after}")) == [
        "another needle, from bob", "100% needle_ish"]
    # Without in=: every channel the user is in.
    assert texts(await search(alice, "text=needle")) == [
        "the Needle is here", "another needle, from bob", "100% needle_ish", "needle elsewhere"]
    assert texts(await search(bob, "text=needle")) == [
        "the Needle is here", "another needle, from bob", "100% needle_ish"]


async def test_only_what_the_user_may_read(server: RunningServer) -> None:
    alice = await server.client("alice", CAPS)
    await alice.join("#secret")
    await alice.send("MODE #secret +s")
    await alice.expect("MODE")
    await say(alice, "#secret", "hidden needle")
    await alice.join("#open")
    await say(alice, "#open", "public needle")
    eve = await server.client("eve", CAPS)
    msgs = await ask(eve, "SEARCH text=needle;in=#secret")
    assert [(m.command, m.params[:3]) for m in msgs] == [
        ("FAIL", ["SEARCH", "INVALID_TARGET", "#secret"])]
    # A public channel can be searched from outside, as CHATHISTORY reads it.
    assert texts(await search(eve, "text=needle;in=#open")) == ["public needle"]
    # eve is in no channel: nothing to search by default.
    assert await search(eve, "text=needle") == []
    # Private messages: only one's own conversations, only between accounts.
    assert [m.params[:3] for m in await ask(eve, "SEARCH text=x;in=alice")] == [
        ["SEARCH", "INVALID_TARGET", "alice"]]


async def test_private_conversations_between_accounts(server: RunningServer) -> None:
    alice = await server.client("alice", CAPS)
    bob = await server.client("bob", CAPS)
    for c in (alice, bob):
        assert [m.command for m in await ask(c, "REGISTER * * long-password")] == [
            "REGISTER", "900"]
    await say(alice, "bob", "psst, the needle")
    await bob.expect("PRIVMSG")
    got = await search(bob, "text=needle;in=alice")
    assert [(m.source, m.params) for m in got] == [(mask(alice), ["bob", "psst, the needle"])]
    # Without in=: the user's channels and its own conversations, not others'.
    await bob.join("#t")
    await asyncio.sleep(0.01)  # a later millisecond: results are in time order
    await say(bob, "#t", "a channel needle")
    assert texts(await search(bob, "text=needle")) == ["psst, the needle", "a channel needle"]
    carol = await server.client("carol", CAPS)
    assert [m.command for m in await ask(carol, "REGISTER * * long-password")] == [
        "REGISTER", "900"]
    await carol.join("#t")
    assert texts(await search(carol, "text=needle")) == ["a channel needle"]


async def test_bad_requests(server: RunningServer) -> None:
    alice = await server.client("alice", CAPS)
    await alice.join("#t")
    for attrs, code in [
        ("in=#t", "INVALID_PARAMS"),  # neither text= nor from=
        ("text=x;limit=ten", "INVALID_PARAMS"),
        ("text=x;after=yesterday", "INVALID_PARAMS"),
        ("text=" + "x" * 201, "INVALID_PARAMS"),
        ("text=x;in=#nowhere", "INVALID_TARGET"),
    ]:
        msgs = await ask(alice, f"SEARCH {attrs}")
        assert [(m.command, m.params[:2]) for m in msgs] == [("FAIL", ["SEARCH", code])], attrs
    assert [m.command for m in await ask(alice, "SEARCH")] == ["461"]


async def test_a_deleted_message_is_not_found(server: RunningServer) -> None:
    alice = await server.client("alice", [*CAPS, "draft/message-redaction"])
    await alice.join("#t")
    gone = await say(alice, "#t", "secret needle")
    await say(alice, "#t", "kept needle")
    await alice.send(f"REDACT #t {gone.tags['msgid']}")
    await alice.expect("REDACT")
    assert texts(await search(alice, "text=needle;in=#t")) == ["kept needle"]


async def test_without_history_there_is_no_search(backend: str) -> None:
    from tests.conftest import serving

    async with serving(suite_config(db=""), backend) as srv:
        c = await srv.client()
        await c.send("CAP LS 302")
        assert CAP not in (await c.expect("CAP")).params[-1].split()
        alice = await srv.client("alice")
        assert [m.command for m in await ask(alice, "SEARCH text=x")] == ["421"]
