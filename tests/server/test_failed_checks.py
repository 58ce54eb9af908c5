"""A password check or an account request whose work raises (a server bug: the work
functions catch store failures themselves) is logged once and answered as a failed
check, and the client's later lines are answered: over real TCP, on every backend.

No real input makes them raise (every store call is caught inside), so the work
function the transport calls is replaced, in the in-process suite server, by one that
raises for one marked input and does the real work for any other."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from chat.message import Message
from server.config import ServerConfig
from server.core.handlers.accounts import Login, Register
from server.core.handlers.operator import CheckOper
from server.transport import asyncio_transport, ops, select_transport
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer, suite_config
from tests.server.helpers import ask, only
from tests.server.test_accounts import PASSWORD, plain, register_account, sasl_connection

BOOM = "boom-goes-the-check"  # the password the broken work functions raise for


@pytest.fixture
def server_config(oper_hash: str) -> ServerConfig:
    return suite_config(opers={OPER_NAME: oper_hash})


def raising_for(
    real: Callable[..., Any], kind: type, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Put a ``name`` in both transport modules that raises for an effect of ``kind``
    carrying the BOOM password (``real`` for anything else)."""

    def work(*args: Any) -> Any:
        effect = args[-1]
        if isinstance(effect, kind) and getattr(effect, "password", None) == BOOM:
            raise RuntimeError("a bug in the check")
        return real(*args)

    for module in (asyncio_transport, select_transport):
        monkeypatch.setattr(module, name, work)


def answers(got: list[Message], *commands: str) -> list[str]:
    """The replies among ``commands``, and the PONGs with their token, in order."""
    return [f"PONG {m.params[-1]}" if m.command == "PONG" else m.command
            for m in got if m.command in (*commands, "PONG")]


def check_errors(caplog: pytest.LogCaptureFixture, kind: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "chat.server.ops" and r.levelno == logging.ERROR
            and r.getMessage().startswith(kind) and r.exc_info is not None]


async def test_an_oper_check_that_raises_is_refused_and_the_client_goes_on(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    raising_for(ops.check_oper, CheckOper, monkeypatch, "check_oper")
    c = await server.client("olga")
    await c.sync()
    # The PING is read while the check runs: held, then answered after the 464.
    await c.send(f"OPER {OPER_NAME} :{BOOM}\r\nPING :after")
    got = await c.sync()
    assert answers(got, "381", "464") == ["464", "PONG after"], got
    assert len(check_errors(caplog, "CheckOper")) == 1
    # The real check still works for the next attempt.
    assert "381" in [m.command for m in await ask(c, f"OPER {OPER_NAME} :{OPER_PASSWORD}")]


async def test_a_login_check_that_raises_fails_the_login_and_the_client_goes_on(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    owner = await server.client("lena")
    await register_account(owner)
    raising_for(ops.check_login, Login, monkeypatch, "check_login")
    c = await sasl_connection(server)
    await c.send("AUTHENTICATE PLAIN")
    assert (await c.expect("AUTHENTICATE")).params == ["+"]
    await c.send(f"AUTHENTICATE {plain('lena', BOOM)}\r\nPING :after")
    got = await c.sync()
    assert answers(got, "900", "903", "904") == ["904", "PONG after"], got
    assert len(check_errors(caplog, "Login")) == 1
    # Registration goes on, and the right password still logs in.
    await c.send("AUTHENTICATE PLAIN")
    assert (await c.expect("AUTHENTICATE")).params == ["+"]
    await c.send(f"AUTHENTICATE {plain('lena', PASSWORD)}")
    await c.expect("903")
    await c.send("CAP END")
    await c.register("lena2")


# A registration's hash (on the new-password worker) or its store call (on the ordered
# account worker, in its turn) raising.
@pytest.mark.parametrize("step", ["hash_new", "store_new_password"])
async def test_an_account_request_that_raises_is_answered_unavailable(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    step: str,
) -> None:
    raising_for(getattr(ops, step), Register, monkeypatch, step)
    c = await server.client("rita")
    await c.sync()
    await c.send(f"REGISTER * * {BOOM}\r\nPING :after")
    got = await c.sync()
    assert answers(got, "FAIL", "REGISTER", "900") == ["FAIL", "PONG after"], got
    assert only(got, "FAIL")[0].params[1] == "TEMPORARILY_UNAVAILABLE"
    assert len(check_errors(caplog, "Register")) == 1
    # The nick was not left reserved by the failed registration, nor its turn on the
    # account worker kept (ops.AccountTurns): it registers now.
    await register_account(c)



def test_every_answered_effect_has_an_answer_for_failure() -> None:
    """A new kind of answered effect needs its failed answer (``ops.failed_answer``)."""
    assert set(ops.FAILED_ANSWERS) == {CheckOper, Login, *ops.ANSWERED}
