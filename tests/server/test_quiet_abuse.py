"""What a client can repeat at will must cost the server little and say nothing new:
refused logins and REGISTERs logged within a budget, AWAY and SETNAME that change
nothing told to no one; and +e and +I lists are shown to channel operators only. Over
real TCP on every backend (the server runs on a thread of this process, so caplog
sees its log)."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from chat.message import Message
from server.config import ServerConfig
from server.core.core import REFUSALS_LOGGED, ServerCore
from tests.conftest import OPER_NAME, RunningServer, serving, suite_config
from tests.server.helpers import ask, mask, nickserv_says
from tests.server.test_accounts import PASSWORD, plain, register_account, sasl_connection
from tests.server.test_oper import oper_up

WRONG = "n0t-the-r1ght-one"
ATTEMPTS = 12  # of each kind: together well past the budget


@pytest.fixture(autouse=True)
def server_log(caplog: pytest.LogCaptureFixture) -> None:
    """Every record the server (on a thread of this process) logs, at every level."""
    caplog.set_level(logging.DEBUG, logger="chat")


def said(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


async def test_refused_logins_and_registrations_are_logged_within_a_budget(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # One failure locks the account "victim" for an hour (from any connection), and a
    # host may register one account an hour: everything after is refused, each time
    # answered, but logged only twenty times a minute whatever the mix.
    config = suite_config(login_failures=1, login_refill=3600.0,
                          account_limit=1, account_refill=3600.0)
    async with serving(config, backend, db=str(tmp_path / "h.db")) as running:
        await register_account(await running.client("victim"))
        guesser = await running.client("guesser")
        assert nickserv_says(await ask(guesser, f"PRIVMSG NickServ :IDENTIFY victim {WRONG}"))
        assert len(said(caplog, "failed login as 'victim'")) == 1  # a real check: logged
        for _ in range(ATTEMPTS):  # refused before any check
            assert nickserv_says(await ask(guesser, f"PRIVMSG NickServ :IDENTIFY victim {WRONG}"))
        sasl = await sasl_connection(running)
        for _ in range(ATTEMPTS):
            await sasl.send("AUTHENTICATE PLAIN")
            await sasl.expect("AUTHENTICATE")
            assert [m.command for m in await ask(sasl, f"AUTHENTICATE {plain('victim', WRONG)}")
                    ] == ["904"]
        for _ in range(ATTEMPTS):
            await sasl.send("AUTHENTICATE SCRAM-SHA-256")
            await sasl.expect("AUTHENTICATE")
            first = base64.b64encode(b"n,,n=victim,r=0123456789abcdef").decode()
            assert [m.command for m in await ask(sasl, f"AUTHENTICATE {first}")] == ["904"]
        squatter = await running.client("squatter")
        for i in range(ATTEMPTS):  # the host's one account is made
            msgs = await ask(squatter, f"REGISTER spare{i} * {PASSWORD}")
            assert [(m.command, m.params[1]) for m in msgs] == [
                ("FAIL", "TEMPORARILY_UNAVAILABLE")]
    refused = said(caplog, "refused: too many")
    assert len(refused) == REFUSALS_LOGGED < 4 * ATTEMPTS
    assert said(caplog, "login as 'victim' from 127.0.0.1 refused: too many failures")
    # Those past the budget are counted, and told once the minute is over (unit test
    # below): the server was stopped before.
    assert not said(caplog, "not logged")


async def test_malformed_scram_exchanges_are_logged_within_the_budget(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing is checked or counted for a SCRAM exchange that is not even well formed:
    # as cheap to repeat as a refusal, and under the same budget.
    async with serving(suite_config(), backend, db=str(tmp_path / "h.db")) as running:
        c = await sasl_connection(running)
        for _ in range(2 * REFUSALS_LOGGED):
            await c.send("AUTHENTICATE SCRAM-SHA-256")
            await c.expect("AUTHENTICATE")
            assert [m.command for m in await ask(c, "AUTHENTICATE !!!")] == ["904"]
    assert len(said(caplog, "failed SCRAM login as '?'")) == REFUSALS_LOGGED


def test_refused_logins_past_the_budget_are_summed_up(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    core = ServerCore(ServerConfig(name="t.server", db=""), lambda: now[0])
    with caplog.at_level(logging.INFO, logger="chat.server.accounts"):
        allowed = [core.login_refusal_log.allow() for _ in range(REFUSALS_LOGGED + 7)]
        assert allowed == [True] * REFUSALS_LOGGED + [False] * 7
        now[0] += 61
        core.tick()  # the core's one-second tick ends the minute
    assert "7 more logins or registrations refused in that minute (not logged)" in caplog.text
    assert core.login_refusal_log.allow()  # a new minute


# ---------------------------------------------------------------------- AWAY, SETNAME


async def test_away_and_setname_that_change_nothing_are_told_to_no_one(
    server: RunningServer,
) -> None:
    caps = ["away-notify", "setname"]
    alice = await server.client("alice", caps=caps)
    peer = await server.client("peer", caps=caps)  # shares a channel
    watcher = await server.client("watcher", caps=["extended-monitor", *caps])  # MONITORs
    for c in (alice, peer):
        await c.join("#room")
    await ask(watcher, "MONITOR + alice")
    await peer.sync()
    # Back while not away: answered, told to no one.
    assert [m.command for m in await ask(alice, "AWAY")] == ["305"]
    # The same text three times: answered each time, told once.
    for _ in range(3):
        assert [m.command for m in await ask(alice, "AWAY :lunch")] == ["306"]
    # The registration's realname again: echoed to alice (the spec's confirmation).
    got = await ask(alice, "SETNAME :Real alice")
    assert [(m.command, m.params) for m in got] == [("SETNAME", ["Real alice"])]
    # A new one twice: told once.
    for _ in range(2):
        got = await ask(alice, "SETNAME :Alice L.")
        assert [(m.command, m.params) for m in got] == [("SETNAME", ["Alice L."])]
    assert [m.command for m in await ask(alice, "AWAY")] == ["305"]
    assert [m.command for m in await ask(alice, "AWAY")] == ["305"]
    for c in (peer, watcher):
        assert [(m.command, m.source, m.params) for m in await c.sync()] == [
            ("AWAY", mask(alice), ["lunch"]),
            ("SETNAME", mask(alice), ["Alice L."]),
            ("AWAY", mask(alice), []),
        ], c.nick


# ---------------------------------------------------------------------- channel lists


def listed(msgs: list[Message]) -> list[tuple[str, list[str]]]:
    return [(m.command, m.params[1:]) for m in msgs]


async def test_exception_and_invite_lists_are_for_channel_operators(
    backend: str, tmp_path: Path, oper_hash: str
) -> None:
    config = suite_config(opers={OPER_NAME: oper_hash})
    async with serving(config, backend, db=str(tmp_path / "h.db")) as running:
        op = await running.client("op")
        member = await running.client("member")
        outsider = await running.client("outsider")
        for c in (op, member):
            await c.join("#chan")
        await ask(op, "MODE #chan +eIbq friend!*@* invited!*@* foe!*@* hush!*@*")
        # The operator sees all four lists.
        for letter, mask_set in (("e", "friend!*@*"), ("I", "invited!*@*"),
                                 ("b", "foe!*@*"), ("q", "hush!*@*")):
            msgs = await ask(op, f"MODE #chan {letter}")
            assert len(msgs) == 2 and mask_set in msgs[0].params, msgs
            assert mask(op) in msgs[0].params
        # Anyone else: 482 for +e and +I, once for both; +b and +q stay public.
        for c in (member, outsider):
            for query in ("MODE #chan e", "MODE #chan I", "MODE #chan eI", "MODE #chan +e"):
                assert listed(await ask(c, query)) == [
                    ("482", ["#chan", "You're not channel operator"])], (c.nick, query)
            assert [m.command for m in await ask(c, "MODE #chan b")] == ["367", "368"]
            assert [m.command for m in await ask(c, "MODE #chan q")] == ["728", "729"]
        # An IRC operator with SAMODE acts as a channel operator: it may list them.
        root = await running.client("root")
        await oper_up(root)
        msgs = await ask(root, "SAMODE #chan e")
        assert [m.command for m in msgs] == ["348", "349"] and "friend!*@*" in msgs[0].params


async def test_a_secret_channels_ban_list_shows_an_outsider_nothing(
    server: RunningServer,
) -> None:
    op = await server.client("op")
    outsider = await server.client("outsider")
    await op.join("#hidden")
    await ask(op, "MODE #hidden +sbq foe!*@* hush!*@*")
    # The setter's mask would say who is in the channel: the end of the list only, as
    # NAMES of a secret channel.
    assert listed(await ask(outsider, "MODE #hidden b")) == [
        ("368", ["#hidden", "End of channel ban list"])]
    assert listed(await ask(outsider, "MODE #hidden q")) == [
        ("729", ["#hidden", "q", "End of channel quiet list"])]
    assert [m.command for m in await ask(op, "MODE #hidden b")] == ["367", "368"]
