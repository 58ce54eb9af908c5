"""REGISTER bursts over real TCP on every backend, with a real SQLite account store: a
server-wide registration rate besides the per-host one."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from tests.conftest import RunningServer, serving, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, nickserv_says, only
from tests.server.test_accounts import PASSWORD, register_account

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

