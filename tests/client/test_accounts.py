"""Accounts in the client: SASL PLAIN at connect and /register, against our real server
over TCP (the server's own view checked with a second connection's WHOIS 330), and
against ngIRCd, a real server that has never heard of SASL.

At the end, a few sans-IO cases the real servers cannot produce (a server offering only
EXTERNAL, one without CAP, one that never answers AUTHENTICATE).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.chatlog import ChatLog
from client.model import Kind
from client.sasl import SASL_TIMEOUT
from client.session import Session
from tests.conftest import RunningServer
from tests.e2e.irc_clients import RunningServer as ExternalServer
from tests.e2e.irc_clients import server_skip_reason, start_server
from tests.server.helpers import ask, only

from .helpers import NOW, all_text, feed, make
from .netutil import ChatClient

PASSWORD = "tr0ub4dor&3"
LOGGED_IN = "You are now logged in as {}"


async def make_account(server: RunningServer, account: str, password: str = PASSWORD) -> None:
    """Register ``account`` from a plain test connection (nick unrelated), then leave."""
    c = await server.client(f"maker_{account}"[:30])
    msgs = await ask(c, f"REGISTER {account} * {password}")
    assert [m.command for m in msgs] == ["REGISTER", "900"], msgs
    await c.close()


async def whois_account(server: RunningServer, nick: str) -> str | None:
    """The account the server reports for ``nick`` to someone else (WHOIS 330)."""
    watcher = await server.client(f"w_{nick}"[:30])
    try:
        found = only(await ask(watcher, f"WHOIS {nick}"), "330")
        return found[0].params[2] if found else None
    finally:
        await watcher.close()


def server_texts(s: Session, kind: Kind | None = None) -> list[str]:
    return [ln.text for ln in s.server.lines if kind is None or ln.kind is kind]


# ---------------------------------------------------------------------- SASL at connect


async def test_sasl_login_at_connect(server: RunningServer, clients: list[ChatClient]) -> None:
    await make_account(server, "erin")
    erin = ChatClient.start(server.port, "erin", sasl=("erin", PASSWORD))
    clients.append(erin)
    await erin.wait(lambda: erin.session.registered, "registration")
    s = erin.session
    assert s.account == "erin" and "sasl" in s.caps
    shown = server_texts(s)
    logged_in = shown.index(LOGGED_IN.format("erin"))
    welcome = next(i for i, text in enumerate(shown) if text.startswith("Welcome"))
    assert logged_in < welcome  # during registration: CAP END waited for it
    assert server_texts(s, Kind.ERROR) == []
    # The server agrees, as another user sees it...
    assert await whois_account(server, "erin") == "erin"
    # ...and the client's own /whois shows the 330 readably.
    erin.conn.input("/whois erin")
    await erin.wait(lambda: "erin is logged in as erin" in server_texts(s), "WHOIS 330")


async def test_a_ghost_holding_the_nick_gets_a_regain_hint(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    await make_account(server, "gina")
    ghost = await server.client("ghost_g")  # the lost session, logged in as gina
    await ask(ghost, f"NS IDENTIFY gina {PASSWORD}")
    assert only(await ask(ghost, "NICK gina"), "NICK")
    gina = ChatClient.start(server.port, "gina", sasl=("gina", PASSWORD))
    clients.append(gina)
    await gina.wait(lambda: gina.session.registered, "registration")
    s = gina.session
    assert s.nick == "gina_" and s.account == "gina"
    hint = "gina is held by another connection; if it is a lost one of yours, /ns REGAIN"
    assert any(text.startswith(hint) for text in server_texts(s))
    gina.conn.input("/ns REGAIN")
    await gina.wait(lambda: s.nick == "gina", "the nick back")
    await ghost.wait_closed()


async def test_a_wrong_password_is_an_error_and_the_client_connects_anyway(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    await make_account(server, "frank")
    frank = ChatClient.start(server.port, "frank", ("#t",), sasl=("frank", "not the password"))
    clients.append(frank)
    await frank.joined("#t")  # registered, and in its channels, all the same
    s = frank.session
    assert s.registered and s.account is None
    errors = server_texts(s, Kind.ERROR)
    assert [e for e in errors if e.startswith("SASL login as frank failed")], errors
    assert not any("not the password" in text for text in all_text(s))
    assert await whois_account(server, "frank") is None


@pytest.mark.parametrize("extra", [0, 3])
async def test_credentials_go_in_400_byte_chunks(
    server: RunningServer, clients: list[ChatClient], extra: int
) -> None:
    """extra 0: the base64 is exactly 400 bytes, one full line, so a '+' must follow
    (without it the server would wait for more and registration would never end);
    extra 3: 404 bytes, a full line and a short one."""
    password = "x" * (300 - len("hank") - 2 + extra)
    assert len(base64.b64encode(f"\0hank\0{password}".encode())) == 400 + 4 * (extra > 0)
    await make_account(server, "hank", password)
    hank = ChatClient.start(server.port, "hank", sasl=("hank", password))
    clients.append(hank)
    await hank.wait(lambda: hank.session.registered, "registration")
    assert hank.session.account == "hank"
    assert await whois_account(server, "hank") == "hank"


async def test_every_reconnect_logs_in_again(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    await make_account(server, "judy")
    judy = ChatClient.start(server.port, "judy", ("#t",), sasl=("judy", PASSWORD))
    clients.append(judy)
    await judy.joined("#t")
    s = judy.session
    assert s.account == "judy"
    judy.conn.drop()
    await judy.wait(lambda: s.connects == 2 and s.registered, "the reconnect")
    await judy.joined("#t")
    assert s.account == "judy"
    assert server_texts(s).count(LOGGED_IN.format("judy")) == 2  # the server said it twice
    assert await whois_account(server, s.nick) == "judy"


# ---------------------------------------------------------------------- /register


async def test_register_creates_an_account_that_logs_in_later(
    server: RunningServer, clients: list[ChatClient], tmp_path: Path
) -> None:
    gina = ChatClient.start(server.port, "gina")
    clients.append(gina)
    chatlog = ChatLog(tmp_path / "logs")
    gina.conn.subscribe(chatlog.handle)
    s = gina.session
    await gina.wait(lambda: s.registered, "registration")
    gina.conn.input("/register sh0rt")
    refused = "Account registration failed: The password must be at least 8"
    await gina.wait(lambda: any(t.startswith(refused) for t in server_texts(s, Kind.ERROR)),
                    "the refusal")  # fmt: skip
    assert s.account is None
    gina.conn.input(f"/register {PASSWORD}")
    await gina.wait(lambda: s.account == "gina", "the account")
    shown = server_texts(s)
    assert "Account gina registered" in shown and LOGGED_IN.format("gina") in shown
    hint = next(i for i, text in enumerate(shown) if "--sasl-username gina" in text)
    assert hint > shown.index(LOGGED_IN.format("gina"))  # how to log in next time
    chatlog.close()
    logged = "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))
    assert "Account gina registered" in logged  # the log has the exchange...
    for secret in ("sh0rt", PASSWORD):  # ...but the password is nowhere
        assert secret not in logged
        assert not any(secret in text for text in all_text(s))
    assert await whois_account(server, "gina") == "gina"
    # A fresh connection, under another nick, logs in with it.
    later = ChatClient.start(server.port, "gina2", sasl=("gina", PASSWORD))
    clients.append(later)
    await later.wait(lambda: later.session.registered, "registration")
    assert later.session.account == "gina"
    assert await whois_account(server, "gina2") == "gina"


async def test_register_with_an_account_name(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    ivy = ChatClient.start(server.port, "ivy")
    clients.append(ivy)
    await ivy.wait(lambda: ivy.session.registered, "registration")
    ivy.conn.input(f"/register ivy_acct {PASSWORD}")
    await ivy.wait(lambda: ivy.session.account == "ivy_acct", "the account")
    assert await whois_account(server, "ivy") == "ivy_acct"
    ivy.conn.input(f"/register other {PASSWORD}")  # once logged in, no second account
    await ivy.wait(
        lambda: any("(ALREADY_AUTHENTICATED)" in t for t in server_texts(ivy.session, Kind.ERROR)),
        "the refusal",
    )


# ---------------------------------------------------------------------- without SASL


@pytest.fixture
def ngircd(tmp_path: Path) -> Iterator[ExternalServer]:
    reason = server_skip_reason("ngircd")
    if reason is not None:
        pytest.skip(reason)
    running = start_server("ngircd", tmp_path / "ngircd")
    try:
        yield running
    finally:
        running.stop()


async def test_a_server_without_sasl_is_joined_without_logging_in(
    ngircd: ExternalServer, clients: list[ChatClient]
) -> None:
    kim = ChatClient.start(ngircd.port, "kim", ("#t",), sasl=("kim", PASSWORD))
    clients.append(kim)
    await kim.joined("#t")  # CAP END went out: registration did not wait for SASL
    s = kim.session
    assert "sasl" not in s.available_caps and s.account is None
    assert server_texts(s, Kind.ERROR) == [
        "SASL login as kim skipped: the server does not offer SASL; "
        "connecting without logging in"
    ]
    kim.conn.input("/register kim_acct longenough")  # nor account registration
    await kim.wait(lambda: "account registration" in s.current.lines[-1].text, "the refusal")
    assert s.current.lines[-1].kind is Kind.ERROR


# ---------------------------------------------------------------------- sans-IO edges


def sasl_session(**kw: object) -> Session:
    s = make(sasl_username="lee", sasl_password="hunter2hunter2", **kw)
    s.connection_made(NOW)
    s.take_outgoing()
    return s


def errors(s: Session) -> list[str]:
    return server_texts(s, Kind.ERROR)


def test_the_exchange_on_the_wire() -> None:
    s = sasl_session()
    assert feed(s, [":srv CAP * LS :multi-prefix sasl=EXTERNAL,PLAIN"]) == [
        "CAP REQ :multi-prefix sasl"]
    assert feed(s, [":srv CAP * ACK :multi-prefix sasl"]) == ["AUTHENTICATE PLAIN"]
    token = base64.b64encode(b"\0lee\0hunter2hunter2").decode()
    assert feed(s, ["AUTHENTICATE +"]) == [f"AUTHENTICATE {token}"]
    assert feed(s, [":srv 900 lee lee!*@h lee :You are now logged in as lee"]) == []
    assert feed(s, [":srv 903 lee :SASL authentication successful"]) == ["CAP END"]
    assert s.account == "lee" and errors(s) == []


def test_a_server_offering_only_other_mechanisms_is_not_asked() -> None:
    s = sasl_session()
    assert feed(s, [":srv CAP * LS :multi-prefix sasl=EXTERNAL"]) == ["CAP REQ multi-prefix"]
    assert feed(s, [":srv CAP * ACK :multi-prefix"]) == ["CAP END"]
    assert errors(s) == [
        "SASL login as lee skipped: the server offers SASL only as EXTERNAL, not PLAIN; "
        "connecting without logging in"
    ]


def test_a_server_without_cap_is_reported_once() -> None:
    s = sasl_session()
    feed(s, [":srv 001 lee :Welcome", ":srv 422 lee :MOTD File is missing"])
    assert s.registered
    assert errors(s) == [
        "SASL login as lee skipped: the server does not support capabilities (CAP); "
        "connecting without logging in"
    ]


def test_an_unanswered_exchange_is_given_up_at_a_keepalive() -> None:
    s = sasl_session()
    feed(s, [":srv CAP * LS :sasl", ":srv CAP * ACK :sasl"])
    s.ping(NOW + 1)
    assert "CAP END" not in s.take_outgoing()  # not yet
    s.ping(NOW + SASL_TIMEOUT)
    assert s.take_outgoing()[-2:] == ["AUTHENTICATE *", "CAP END"]
    assert errors(s) == [
        "SASL login as lee failed: no answer from the server; connecting without logging in"]
    assert feed(s, [":srv 906 lee :SASL authentication aborted"]) == []
    assert errors(s)[-1].endswith("no answer from the server; connecting without logging in")


def test_half_the_credentials_is_said_and_not_used() -> None:
    s = make(sasl_username="lee")
    s.connection_made(NOW)
    assert "CAP REQ multi-prefix" in feed(s, [":srv CAP * LS :multi-prefix sasl"])
    assert errors(s) == [
        "SASL needs a username and a password; the password is missing: not logging in"]
