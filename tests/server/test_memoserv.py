"""MemoServ over real TCP on every backend: memos left for an account in the real SQLite
file, found on logging in (also with SASL, and after a restart), read, listed and
deleted."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from chat.message import Message
from server.core.handlers.memoserv import MAX_MEMOS
from tests.conftest import RunningServer, serving, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, only, service_says

PASSWORD = "tr0ub4dor&3"


def memoserv_says(msgs: list[Message]) -> list[str]:
    return service_says(msgs, "MemoServ")


async def with_account(server: RunningServer, nick: str) -> IRCTestClient:
    c = await server.client(nick)
    msgs = await ask(c, f"REGISTER * * {PASSWORD}")
    assert [m.command for m in msgs] == ["REGISTER", "900"], msgs
    return c


async def log_in(
    server: RunningServer, account: str, nick: str
) -> tuple[IRCTestClient, list[str]]:
    """A new connection as ``nick`` logging in to ``account`` with NickServ: what
    MemoServ said."""
    c = await server.client(nick)
    msgs = await ask(c, f"NS IDENTIFY {account} {PASSWORD}")
    assert only(msgs, "900"), msgs
    return c, memoserv_says(msgs)


async def test_a_memo_waits_for_its_account(server: RunningServer) -> None:
    alice = await with_account(server, "alice")
    bob = await with_account(server, "bob")
    await bob.send("QUIT :bye")
    await bob.wait_closed()
    assert memoserv_says(await ask(alice, "PRIVMSG MemoServ :SEND bob see you at 10 ✓")) == [
        "Memo sent to bob"]
    assert memoserv_says(await ask(alice, "MS SEND Bob and bring the key")) == ["Memo sent to Bob"]
    bob, said = await log_in(server, "bob", "bob_laptop")
    assert said == ["You have 2 unread memos: /msg MemoServ READ NEW"]
    listed = memoserv_says(await ask(bob, "MS LIST"))
    assert listed[0] == "You have 2 memos (2 unread):"
    assert listed[1].startswith("* 1: from alice, 20") and listed[1].endswith(": see you at 10 ✓")
    read = memoserv_says(await ask(bob, "MS READ NEW"))
    assert len(read) == 2
    assert read[0].startswith("Memo 1 from alice (") and read[0].endswith("): see you at 10 ✓")
    assert read[1].endswith("): and bring the key")
    assert memoserv_says(await ask(bob, "MS READ NEW")) == ["You have no unread memos"]
    assert memoserv_says(await ask(bob, "MS LIST"))[0] == "You have 2 memos (0 unread):"
    assert memoserv_says(await ask(bob, "MS DEL 1")) == ["Memo 1 deleted"]
    assert memoserv_says(await ask(bob, "MS READ 1"))[0].endswith("): and bring the key")
    assert memoserv_says(await ask(bob, "MS DEL 5")) == [
        "No memo 5: you have 1 (LIST shows them)"]
    assert memoserv_says(await ask(bob, "MS LIST"))[0] == "You have 1 memo (0 unread):"
    assert memoserv_says(await ask(bob, "MS DEL ALL")) == ["All your memos are deleted"]
    assert memoserv_says(await ask(bob, "MS LIST")) == ["You have no memos"]
    # Nothing waits now: the next login hears nothing from MemoServ.
    _, said = await log_in(server, "bob", "bob_phone")
    assert said == []


async def test_a_memo_to_someone_online_is_announced(server: RunningServer) -> None:
    carol = await with_account(server, "carol")
    dave = await with_account(server, "dave")
    await ask(dave, "NICK dave_away")
    await ask(carol, "MS SEND dave_away lunch?")  # a nick: the account it is logged in to
    said = memoserv_says(await dave.sync())
    assert said == ["You have a new memo from carol: /msg MemoServ READ NEW"]


async def test_refusals(server: RunningServer) -> None:
    anon = await server.client("anon_m")
    assert memoserv_says(await ask(anon, "MS SEND x hi")) == [
        "You must be logged in to an account to use memos"]
    erin = await with_account(server, "erin")
    assert memoserv_says(await ask(erin, "MS SEND anon_m hi")) == [
        "anon_m is not a registered account"]
    assert memoserv_says(await ask(erin, "MS SEND erin")) == ["Syntax: SEND <account|nick> <text>"]
    assert memoserv_says(await ask(erin, "MS SEND erin " + "x" * 301)) == [
        "A memo holds at most 300 bytes"]
    assert memoserv_says(await ask(erin, "MS SEND erin " + "é" * 151)) == [
        "A memo holds at most 300 bytes"]  # 302 bytes in UTF-8
    # The longest memo reads back whole, in one line.
    longest = "é" * 150
    assert memoserv_says(await ask(erin, f"MS SEND erin {longest}")) == ["Memo sent to erin"]
    read = memoserv_says(await ask(erin, "MS READ NEW"))
    assert len(read) == 1 and read[0].endswith(f"): {longest}")
    assert memoserv_says(await ask(erin, "MS READ")) == ["Syntax: READ <number|NEW>"]
    assert memoserv_says(await ask(erin, "MS FROB")) == ["Unknown command FROB: /msg MemoServ HELP"]
    assert any(line.startswith("SEND <account|nick>")
               for line in memoserv_says(await ask(erin, "MS HELP")))
    assert only(await ask(erin, "NICK MemoServ"), "433")


async def test_a_full_memo_box(server: RunningServer) -> None:
    frank = await with_account(server, "frank")
    for i in range(MAX_MEMOS):
        await frank.send(f"MS SEND frank note {i}")
    assert memoserv_says(await ask(frank, "MS SEND frank one too many")) == [
        f"frank's memo box is full ({MAX_MEMOS})"]
    said = memoserv_says(await ask(frank, "MS LIST"))
    assert said[0] == f"You have {MAX_MEMOS} memos ({MAX_MEMOS} unread):"


@pytest.mark.parametrize(
    "server_config", [suite_config(memo_limit=2, memo_refill=3600)], ids=["two-per-hour"]
)
async def test_a_sender_may_not_fill_a_memo_box_at_once(server: RunningServer) -> None:
    """The sender's account has a memo rate (--memo-limit at once, one more per
    --memo-refill): refused past it, for any recipient; others may still send."""
    gina = await with_account(server, "gina")
    hugo = await with_account(server, "hugo")
    for i in range(2):
        assert memoserv_says(await ask(hugo, f"MS SEND gina note {i}")) == ["Memo sent to gina"]
    assert memoserv_says(await ask(hugo, "MS SEND gina note 2")) == [
        "You are sending memos too fast; wait a minute"]
    assert memoserv_says(await ask(hugo, "MS SEND hugo to myself")) == [
        "You are sending memos too fast; wait a minute"]
    assert memoserv_says(await ask(gina, "MS SEND hugo thanks")) == ["Memo sent to hugo"]
    said = memoserv_says(await ask(gina, "MS LIST"))
    assert said[0] == "You have 2 memos (2 unread):"


async def test_sasl_login_hears_of_memos_after_the_welcome(backend: str, tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    async with serving(suite_config(), backend, db=db) as running:
        gina = await with_account(running, "gina")
        await ask(gina, "NICK gina_")
        await ask(gina, "MS SEND gina note to self")
    # After a restart, from the store.
    async with serving(suite_config(), backend, db=db) as running:
        c = await running.client()
        await c.send("CAP LS 302")
        await c.send("CAP REQ :sasl")
        await c.expect("CAP", lambda m: m.params[1] == "ACK")
        await c.send("AUTHENTICATE PLAIN")
        await c.expect("AUTHENTICATE")
        await c.send("AUTHENTICATE " + base64.b64encode(f"\0gina\0{PASSWORD}".encode()).decode())
        await c.expect("903")
        await c.send("CAP END")
        burst = await c.register("gina")
        said = memoserv_says(await c.sync())
        assert burst[0].command == "001"
        assert said == ["You have 1 unread memo: /msg MemoServ READ NEW"]


async def test_a_message_to_an_offline_account_suggests_a_memo(server: RunningServer) -> None:
    hana = await with_account(server, "hana")
    ivan = await with_account(server, "ivan")
    await ivan.send("QUIT :bye")
    await ivan.wait_closed()
    msgs = await ask(hana, "PRIVMSG ivan :are you there?")
    assert [m.command for m in msgs] == ["401", "NOTICE"]
    assert memoserv_says(msgs) == [
        "ivan is not online; /msg MemoServ SEND ivan <text> leaves a memo"]
    # Not for a NOTICE, nor a nick that is no account, nor a sender without one.
    assert await ask(hana, "NOTICE ivan :hm") == []
    assert memoserv_says(await ask(hana, "PRIVMSG nobody_here :hi")) == []
    anon = await server.client("anon_h")
    assert [m.command for m in await ask(anon, "PRIVMSG ivan :hi")] == ["401"]
