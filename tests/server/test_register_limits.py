"""REGISTER bursts over real TCP on every backend, with a real SQLite account store: a
server-wide registration rate besides the per-host one, and new passwords hashed off
the ordered account worker, so that a login does not wait behind queued registrations
(while one after a password change still waits for that change)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from server.transport.ops import AccountTurns
from tests.conftest import RunningServer, serving, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, nickserv_says, only
from tests.server.test_accounts import (
    PASSWORD,
    authenticate,
    plain,
    register_account,
    sasl_connection,
)

REGISTERING = 10  # registrations queued at once: a scrypt hash each
DEADLINE = 30.0  # a hung server fails the test instead of hanging it; never asserted on
SERVER_BUSY = re.compile(r"Too many accounts are being registered right now; try again in \d+ s")


async def client_from(server: RunningServer, host: str, nick: str) -> IRCTestClient:
    """A client registered as ``nick``, connected from the loopback address ``host``:
    another host to the server's per-host limits than the suite's 127.0.0.1."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, local_addr=(host, 0), limit=1 << 20
    )
    c = IRCTestClient(reader, writer)
    server.clients.append(c)
    await c.register(nick)
    return c


async def test_registrations_are_limited_server_wide(backend: str, tmp_path: Path) -> None:
    # Three accounts per host (the product default): the hosts below are far from it.
    config = suite_config(account_limit=3, register_limit=2, register_refill=3600.0)
    async with serving(config, backend, db=str(tmp_path / "h.db")) as running:
        for i, nick in enumerate(("first", "second")):
            await register_account(await client_from(running, f"127.0.0.{i + 2}", nick))
        third = await client_from(running, "127.0.0.4", "third")
        msgs = await ask(third, f"REGISTER * * {PASSWORD}")
        assert [(m.command, m.params[:3]) for m in msgs] == [
            ("FAIL", ["REGISTER", "TEMPORARILY_UNAVAILABLE", "third"])], msgs
        assert SERVER_BUSY.fullmatch(msgs[0].params[-1]), msgs[0].params[-1]
        # NickServ REGISTER is the same registration, refused the same way.
        fourth = await client_from(running, "127.0.0.5", "fourth")
        said = nickserv_says(await ask(fourth, f"NS REGISTER {PASSWORD}"))
        assert len(said) == 1 and SERVER_BUSY.fullmatch(said[0]), said
        # Nothing was made of them: the names are free, and nobody is logged in.
        assert only(await ask(fourth, "WHOIS third"), "330") == []
        assert nickserv_says(await ask(fourth, "NS INFO third")) == [
            "third is not a registered account"]


async def answer_order(
    registering: list[IRCTestClient], login: IRCTestClient, credentials: str
) -> list[str]:
    """Send REGISTER on every client of ``registering``; once the first is answered (all
    of them are queued by then: their lines came first, and each answer is a hash),
    log ``login`` in by SASL PLAIN. The names of the answers in the order they came:
    the registering clients' nicks and "login"."""
    order: list[str] = []
    first = asyncio.Event()

    async def registered(c: IRCTestClient) -> None:
        await c.expect("REGISTER", timeout=DEADLINE)
        order.append(c.nick)
        first.set()

    async def logged_in() -> None:
        await first.wait()
        await login.send(f"AUTHENTICATE {credentials}")
        reply = await login.expect("903", timeout=DEADLINE)
        assert reply.params[-1] == "SASL authentication successful"
        order.append("login")

    await login.send("AUTHENTICATE PLAIN")
    assert (await login.expect("AUTHENTICATE")).params == ["+"]
    for c in registering:
        await c.send(f"REGISTER * * {PASSWORD}")
    await asyncio.gather(logged_in(), *(registered(c) for c in registering))
    return order


async def test_a_login_does_not_wait_for_registrations_being_hashed(
    server: RunningServer,
) -> None:
    fiona = await server.client("fiona")
    await register_account(fiona)
    registering = [await server.client(f"reg{i}") for i in range(REGISTERING)]
    login = await sasl_connection(server)
    order = await answer_order(registering, login, plain("fiona", PASSWORD))
    # Queued behind the registrations, the login would be answered after every one.
    answered_after = order[order.index("login") + 1:]
    assert len(answered_after) >= 2, order


async def test_a_login_after_a_password_change_waits_for_the_change(
    server: RunningServer,
) -> None:
    rosa = await server.client("rosa")
    await register_account(rosa)
    registering = [await server.client(f"reg{i}") for i in range(REGISTERING)]
    old = await sasl_connection(server)
    for c in registering:  # keep the hashing busy: the change's hash comes after theirs
        await c.send(f"REGISTER * * {PASSWORD}")
    await rosa.send("NS SET PASSWORD new-password")
    # Read by the server no later than this exchange (its line was sent first), so the
    # change was asked for before the login below: the old password must not let in,
    # however long the new one takes to hash.
    await old.send("AUTHENTICATE PLAIN")
    assert (await old.expect("AUTHENTICATE")).params == ["+"]
    await old.send(f"AUTHENTICATE {plain('rosa', PASSWORD)}")
    answer = await old.collect_until("903", "904", timeout=DEADLINE)
    assert [m.command for m in answer] == ["904"], answer
    assert nickserv_says(await rosa.collect_until("NOTICE", timeout=DEADLINE)) == [
        "The password of rosa is changed"]
    new = await sasl_connection(server)
    assert [m.command for m in await authenticate(new, plain("rosa", "new-password"))] == [
        "900", "903"]
    for c in registering:
        await c.expect("REGISTER", timeout=DEADLINE)


def test_account_turns_keep_each_accounts_order() -> None:
    turns = AccountTurns()
    done: list[str] = []
    first = turns.hashing("rosa")
    turns.run("rosa", lambda: done.append("drop rosa"))
    turns.run("fiona", lambda: done.append("find fiona"))  # another account: at once
    turns.run(None, lambda: done.append("memo"))  # no account's row: at once
    second = turns.hashing("rosa")
    turns.run("rosa", lambda: done.append("confirm rosa"))
    turns.hashed(second, lambda: done.append("store rosa 2"))  # hashed first: waits
    assert done == ["find fiona", "memo"]
    turns.hashed(first, lambda: done.append("store rosa 1"))
    assert done[2:] == ["store rosa 1", "drop rosa", "store rosa 2", "confirm rosa"]
    turns.run("rosa", lambda: done.append("later"))  # nothing hashed any more: at once
    assert done[-1] == "later"
