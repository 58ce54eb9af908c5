"""PASS <account>:<password> logs in at connect on a server without a server password
(Ergo's login-via-pass-command), for clients and bouncers without SASL; over real TCP
on every backend, with accounts in the suite server's real SQLite database."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from chat.message import Message
from tests.conftest import RunningServer, serving, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, nickserv_says, only, quit_and_wait, too_many_failures
from tests.server.test_accounts import (
    PASSWORD,
    authenticate,
    plain,
    register_account,
    reserved_for,
    sasl_connection,
)

WRONG = "n0t-the-r1ght-one"


@pytest.fixture(autouse=True)
def server_log(caplog: pytest.LogCaptureFixture) -> None:
    """Every record the server (on a thread of this process) logs, at every level."""
    caplog.set_level(logging.DEBUG, logger="chat")


async def account(server: RunningServer, name: str) -> None:
    """Register ``name`` (with PASSWORD) and leave, so that its nick is free."""
    owner = await server.client(name)
    await register_account(owner)
    await quit_and_wait(owner)


async def connect(c: IRCTestClient, password: str, nick: str) -> list[Message]:
    """PASS, NICK and USER; everything up to the end of the welcome (or a 433)."""
    await c.send(f"PASS {password}")
    await c.send(f"NICK {nick}")
    await c.send(f"USER {nick} 0 * :Real {nick}")
    msgs = await c.collect_until("376", "422", "433")
    c.nick = nick
    return msgs


def notices(msgs: list[Message]) -> list[str]:
    return [m.params[-1] for m in only(msgs, "NOTICE")]


def logged_in_as(whois: list[Message]) -> list[str]:
    return [m.params[2] for m in only(whois, "330")]


@pytest.mark.parametrize("form", ["{}:{}", "{}@phone:{}"], ids=["plain", "ergo-device"])
async def test_pass_logs_in_before_the_welcome(
    server: RunningServer, caplog: pytest.LogCaptureFixture, form: str
) -> None:
    await account(server, "alice")
    watcher = await server.client("watcher", ["extended-join"])
    await watcher.send("JOIN #room")
    await watcher.expect("366")
    c = await server.client()
    msgs = await connect(c, form.format("ALICE", PASSWORD), "alice")  # its reserved nick
    codes = [m.command for m in msgs]
    assert "900" in codes and codes.index("900") < codes.index("001"), codes
    assert only(msgs, "900")[0].params == [
        "alice", "alice!~alice@127.0.0.1", "alice", "You are now logged in as alice"]
    assert msgs[codes.index("001")].params[0] == "alice"
    assert notices(msgs) == []
    assert logged_in_as(await ask(c, "WHOIS alice")) == ["alice"]
    await c.send("JOIN #room")
    join = await watcher.expect("JOIN", lambda m: (m.source or "").startswith("alice!"))
    assert join.params == ["#room", "alice", "Real alice"]  # extended-join sees the account
    assert PASSWORD not in caplog.text


async def test_a_wrong_password_is_told_and_connects_without_an_account(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    await account(server, "bob")
    c = await server.client()
    msgs = await connect(c, f"bob:{WRONG}", "bobby")
    codes = [m.command for m in msgs]
    assert "900" not in codes and "001" in codes
    assert notices(msgs) == [
        "*** Login as bob failed: wrong account name or password; connecting without an account"]
    assert codes.index("NOTICE") < codes.index("001")
    assert logged_in_as(await ask(c, "WHOIS bobby")) == []
    # Logged like any failed login, without the password.
    assert "failed login as 'bob' from 127.0.0.1 (bobby)" in caplog.text
    assert WRONG not in caplog.text


async def test_a_wrong_password_leaves_the_reserved_nick_to_its_account(
    server: RunningServer,
) -> None:
    await account(server, "carol")
    c = await server.client()
    msgs = await connect(c, f"carol:{WRONG}", "carol")
    assert notices(msgs)[0].startswith("*** Login as carol failed")
    assert only(msgs, "433")[0].params == ["*", "carol", reserved_for("carol", connecting=True)]
    await c.send("NICK carol_")
    await c.expect("001")
    assert logged_in_as(await ask(c, "WHOIS carol_")) == []


@pytest.mark.parametrize("server_config", [suite_config(oper_attempts=1)], ids=["one-try"])
async def test_a_wrong_pass_counts_against_the_login_limit(server: RunningServer) -> None:
    await account(server, "dora")
    c = await server.client()
    assert "001" in [m.command for m in await connect(c, f"dora:{WRONG}", "dora_")]
    said = await ask(c, f"NICKSERV IDENTIFY dora {PASSWORD}")  # the right password, too late
    assert [m.command for m in said] == ["NOTICE"]
    assert too_many_failures(said[0].params[-1]), said  # not "Invalid ... password"
    assert logged_in_as(await ask(c, "WHOIS dora_")) == []


async def test_failed_sasl_attempts_count_against_a_pass_login(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    await account(server, "edna")
    c = await sasl_connection(server)
    for _ in range(3):
        assert [m.command for m in await authenticate(c, plain("edna", WRONG))] == ["904"]
    await c.send("CAP END")
    msgs = await connect(c, f"edna:{PASSWORD}", "edna_")
    assert notices(msgs) == [
        "*** Login as edna refused: too many failed attempts; connecting without an account"]
    assert "900" not in [m.command for m in msgs]
    assert "PASS login as 'edna' from 127.0.0.1 refused: too many failures" in caplog.text


@pytest.mark.parametrize("pass_first", [True, False], ids=["pass-then-sasl", "sasl-then-pass"])
async def test_sasl_wins_over_pass(server: RunningServer, pass_first: bool) -> None:
    await account(server, "fay")
    await account(server, "gus")
    c = await server.client()
    await c.send("CAP LS 302")
    if pass_first:
        await c.send(f"PASS gus:{WRONG}")
    await c.send("CAP REQ :sasl")
    await c.expect("CAP", lambda m: m.params[1] == "ACK")
    assert [m.command for m in await authenticate(c, plain("fay", PASSWORD))] == ["900", "903"]
    if not pass_first:
        await c.send(f"PASS gus:{PASSWORD}")
    await c.send("CAP END")
    await c.send("NICK fay")
    await c.send("USER fay 0 * :Fay")
    msgs = await c.collect_until("376", "422")
    c.nick = "fay"
    # PASS's account is not even checked: no second 900, no notice, no failure.
    assert [m.command for m in msgs if m.command in ("900", "NOTICE", "433")] == []
    assert logged_in_as(await ask(c, "WHOIS fay")) == ["fay"]


async def test_pass_without_a_colon_is_no_login(server: RunningServer) -> None:
    await account(server, "hugo")
    c = await server.client()
    msgs = await connect(c, PASSWORD, "hugo")  # Ergo takes no account from the nick
    assert "900" not in [m.command for m in msgs] and notices(msgs) == []
    assert only(msgs, "433")[0].params[1] == "hugo"


async def test_with_a_server_password_pass_is_only_that(backend: str, tmp_path: Path) -> None:
    server_password = f"ivy:{PASSWORD}"  # shaped like an account's login, and one's too
    async with serving(suite_config(password=server_password), backend,
                       db=str(tmp_path / "h.db")) as running:
        owner = await running.client()
        await connect(owner, server_password, "ivy")
        await register_account(owner)
        await quit_and_wait(owner)
        c = await running.client()
        msgs = await connect(c, server_password, "ivy_")
        assert "001" in [m.command for m in msgs] and "900" not in [m.command for m in msgs]
        assert logged_in_as(await ask(c, "WHOIS ivy_")) == []
        wrong = await running.client()
        await wrong.send(f"PASS ivy:{WRONG}")
        await wrong.send("NICK ivy__")
        await wrong.send("USER ivy 0 * :Ivy")
        assert [m.command for m in await wrong.wait_closed()] == ["464", "ERROR"]


async def test_nickserv_help_mentions_it_where_it_works(backend: str, tmp_path: Path) -> None:
    line = "Without SASL: send PASS <account>:<password> when connecting"
    async with serving(suite_config(), backend, db=str(tmp_path / "a.db")) as running:
        c = await running.client("jane")
        assert line in nickserv_says(await ask(c, "PRIVMSG NickServ :HELP"))
    async with serving(suite_config(password="letmein"), backend,
                       db=str(tmp_path / "b.db")) as running:
        c = await running.client()
        assert "001" in [m.command for m in await connect(c, "letmein", "jane")]
        assert line not in nickserv_says(await ask(c, "PRIVMSG NickServ :HELP"))
