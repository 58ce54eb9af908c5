"""Failed password checks per host (``--host-password-failures``) over real TCP on every
backend, with a real SQLite account store: past them a host's logins, OPERs and
REGISTERs are refused before any check reaches the password thread, whatever the
account names and connections, while another host logs in; right passwords never
count."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from chat.message import Message
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer, serving, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, nickserv_says
from tests.server.test_accounts import (
    PASSWORD,
    authenticate,
    plain,
    register_account,
    sasl_connection,
)
from tests.server.test_pass_login import connect, notices
from tests.server.test_register_limits import client_from

LIMIT = 4  # failed checks the host may have; none comes back within the test
WRONG = "n0t-the-r1ght-one"
REFUSED = re.compile(r"Too many failed attempts; try again in \d+ s")
FAILED = ("904", "SASL authentication failed")


def said(msgs: list[Message]) -> list[tuple[str, str]]:
    return [(m.command, m.params[-1]) for m in msgs]


def checks_failed(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The accounts of failed logins the server logged: one for each check that reached
    the password thread and failed."""
    return [r.getMessage() for r in caplog.records
            if r.getMessage().startswith("failed login as")]


async def sasl_from(server: RunningServer, host: str) -> IRCTestClient:
    """``sasl_connection`` from the loopback address ``host``."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, local_addr=(host, 0), limit=1 << 20)
    c = IRCTestClient(reader, writer)
    server.clients.append(c)
    await c.send("CAP REQ :sasl")
    await c.expect("CAP", lambda m: m.params[1] == "ACK")
    return c


async def test_failed_checks_are_limited_per_host(
    backend: str, tmp_path: Path, oper_hash: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = suite_config(host_password_failures=LIMIT, host_password_refill=3600.0,
                          opers={OPER_NAME: oper_hash})
    async with serving(config, backend, db=str(tmp_path / "chat.db")) as server:
        await register_account(await server.client("owner"))
        # Wrong passwords, each for an account of its own (no per-account limit
        # applies), each on a new connection (each may fail three times).
        first = await sasl_connection(server)
        assert said(await authenticate(first, plain("nobody0", WRONG))) == [FAILED]
        # Right ones give their check back: an operator's OPER, logins.
        op = await server.client("op")
        for _ in range(LIMIT + 1):
            assert "381" in [m.command for m in await ask(op, f"OPER {OPER_NAME} :{OPER_PASSWORD}")]
        for _ in range(LIMIT + 1):
            msgs = await authenticate(await sasl_connection(server), plain("owner", PASSWORD))
            assert [m.command for m in msgs] == ["900", "903"], msgs
        for i in range(1, LIMIT - 1):
            c = await sasl_connection(server)
            assert said(await authenticate(c, plain(f"nobody{i}", WRONG))) == [FAILED]
        # The last one, asked for on three connections at once: one is checked.
        last = [await sasl_connection(server) for _ in range(3)]
        for c in last:
            await c.send("AUTHENTICATE PLAIN")
            assert (await c.expect("AUTHENTICATE")).params == ["+"]
        for c in last:
            await c.send(f"AUTHENTICATE {plain(f'nobody{LIMIT - 1}', WRONG)}")
        answers = [(await c.expect("904")).params[-1] for c in last]
        assert sorted(REFUSED.fullmatch(a) is not None for a in answers) == [False, True, True]
        assert FAILED[1] in answers, answers
        [refusal] = await authenticate(c, plain("nobody", WRONG))
        assert refusal.command == "904" and REFUSED.fullmatch(refusal.params[-1]), refusal
        fresh = await sasl_connection(server)
        [refusal] = await authenticate(fresh, plain("owner", PASSWORD))  # not checked at all
        assert refusal.command == "904" and REFUSED.fullmatch(refusal.params[-1]), refusal
        # OPER, REGISTER, NickServ and PASS get their own refusals, checking nothing.
        [m] = await ask(op, f"OPER {OPER_NAME} :{OPER_PASSWORD}")
        assert m.command == "464" and REFUSED.fullmatch(m.params[-1]), m
        assert [(m.command, m.params[1:]) for m in await ask(op, f"REGISTER op2 * {PASSWORD}")] \
            == [("FAIL", ["TEMPORARILY_UNAVAILABLE", "op2", "Too many attempts; try again later"])]
        [text] = nickserv_says(await ask(op, f"NS IDENTIFY owner {PASSWORD}"))
        assert REFUSED.fullmatch(text), text
        msgs = await connect(await server.client(), f"owner:{PASSWORD}", "passer")
        assert notices(msgs) == [
            "*** Login as owner refused: too many failed attempts; connecting without an account"]
        assert checks_failed(caplog) == [
            f"failed login as 'nobody{i}' from 127.0.0.1 (*)" for i in range(LIMIT)]
        # Another host is not held up.
        other = await sasl_from(server, "127.0.0.2")
        assert [m.command for m in await authenticate(other, plain("owner", PASSWORD))] == [
            "900", "903"]
        away = await client_from(server, "127.0.0.3", "away")
        assert "381" in [m.command for m in await ask(away, f"OPER {OPER_NAME} :{OPER_PASSWORD}")]
