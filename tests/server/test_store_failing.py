"""A store of record that fails (a full disk) loses nothing a client received: the
failed commit's messages are kept and stored once it takes writes again, and new
messages to store are refused meanwhile (FAIL), not relayed and lost.

The store fails for real: SQLite's ``max_page_count``, set on the server's writer
connection, makes a commit that needs a new page fail with SQLITE_FULL, as a full disk
does (and SQLite rolls the transaction back by itself, as it does then)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

from chat.message import Message
from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient
from tests.net import eventually
from tests.server.test_accounts import register_account
from tests.server.test_durability import fetch_all

CAPS = ["echo-message", "server-time", "message-tags", "batch", "draft/chathistory"]
TEMPORARILY = "TEMPORARILY_UNAVAILABLE"


def on_loop(server: RunningServer, call: Callable[[Any], object]) -> None:
    """Run ``call(transport)`` on the server's loop thread (where the store is written)
    and wait for it."""
    transport = server.handle.server
    done = threading.Event()

    def run() -> None:
        try:
            call(transport)
        finally:
            done.set()

    loop = getattr(transport, "loop", None)
    if loop is not None:  # asyncio / uvloop
        loop.call_soon_threadsafe(run)
    else:
        transport.call_soon_threadsafe(run)
    assert done.wait(10)


def fill_the_disk(server: RunningServer) -> None:
    def cap(transport: Any) -> None:
        writer = transport.history.store._writer
        pages = writer.execute("PRAGMA page_count").fetchone()[0]
        writer.execute(f"PRAGMA max_page_count={pages}")

    on_loop(server, cap)


def free_the_disk(server: RunningServer) -> None:
    on_loop(server, lambda t: t.history.store._writer.execute("PRAGMA max_page_count=1073741823"))


async def next_of(c: IRCTestClient, *commands: str) -> Message:
    """The next message with one of these commands (others skipped)."""
    while True:
        msg = await c.read_message(10)
        if msg.command in commands:
            return msg


def unwritable(server: RunningServer) -> bool:
    return bool(server.handle.server.core.history_unwritable)  # type: ignore[attr-defined]


async def filled(server: RunningServer, sender: IRCTestClient, target: str) -> list[str]:
    """Fill the disk, then send until a message is refused: the texts sent before it
    (relayed in the tick whose commit failed: kept for the store)."""
    fill_the_disk(server)
    sent: list[str] = []
    for n in range(200):  # a commit fails once it needs a new page
        text = f"kept {n} " + "x" * 300
        await sender.send(f"PRIVMSG {target} :{text}")
        answer = await next_of(sender, "PRIVMSG", "FAIL")
        if answer.command == "FAIL":
            assert answer.params[:3] == ["PRIVMSG", TEMPORARILY, target]
            return sent
        sent.append(text)
    raise AssertionError("the store never failed")


async def test_a_full_disk_loses_no_channel_message(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    alice = await server.client("alice", CAPS)
    bob = await server.client("bob", CAPS)
    for c in (alice, bob):
        await c.join("#c")
    with caplog.at_level(logging.INFO, logger="chat.server.history"):
        kept = await filled(server, alice, "#c")
        assert unwritable(server) and kept  # (the failed tick's messages reached bob)
        await alice.send("PRIVMSG #c :refused too")
        fail = await alice.expect("FAIL")
        assert fail.params[:3] == ["PRIVMSG", TEMPORARILY, "#c"]
        await alice.send("TAGMSG #c")  # (not refused: no FAIL for each typing notice)
        free_the_disk(server)
        await eventually(lambda: not unwritable(server), "the kept messages stored")
    # bob got what was relayed in the failed tick, never a refused one.
    got = [m.params[1] for m in await bob.sync() if m.command == "PRIVMSG"]
    assert got == kept
    await alice.send("PRIVMSG #c :after")
    await bob.expect("PRIVMSG", lambda m: m.params[1] == "after")
    texts = [text for _, text in await fetch_all(server.port, "#c")]
    assert texts == [*kept, "after"]  # in order, none lost, none twice
    said = [r for r in caplog.records if r.name == "chat.server.history"]
    assert [r.levelname for r in said] == ["ERROR", "WARNING"]  # once each, no flood
    assert said[0].exc_info is not None and "disk is full" in str(said[0].exc_info[1])
    assert "writable again" in said[1].getMessage()
    for c in (alice, bob):
        await c.close()


async def test_a_full_disk_refuses_private_messages_between_accounts(
    server: RunningServer,
) -> None:
    alice = await server.client("alice", CAPS)
    bob = await server.client("bob", CAPS)
    for c in (alice, bob):
        await register_account(c)
    kept = await filled(server, alice, "bob")
    # Not kept between accounts: a nick is not an identity, nothing to refuse for.
    carol = await server.client("carol", CAPS)
    await carol.send("PRIVMSG bob :no account, no history")
    echo = await next_of(carol, "PRIVMSG", "FAIL")
    assert echo.command == "PRIVMSG"
    free_the_disk(server)
    await eventually(lambda: not unwritable(server), "the kept messages stored")
    await bob.send("CHATHISTORY LATEST alice * 100")
    await bob.expect("BATCH")
    rows = await bob.collect_until("BATCH")
    assert [m.params[1] for m in rows if m.command == "PRIVMSG"] == kept
    for c in (alice, bob, carol):
        await c.close()
