"""Accounts in the client: SASL at connect (SCRAM-SHA-256; PLAIN when SCRAM is not
offered, or asked for, and only over verified TLS) and /register, against our real
server over TCP and TLS (the server's own view checked with a second connection's WHOIS
330), against ngIRCd, a real server that has never heard of SASL, and against fake
servers: one whose SCRAM signature is wrong, one answering SCRAM with 904 to be sent
the password with PLAIN.

At the end, a few sans-IO cases the real servers cannot produce (a server offering only
EXTERNAL, or only PLAIN, one without CAP, one that never answers AUTHENTICATE).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from chat import sasl
from chat.message import parse
from chat.scram import ScramServer, derive
from client.chatlog import ChatLog
from client.model import Kind, QuitRequested
from client.sasl import SASL_TIMEOUT
from client.session import Session
from server.transport.background import BackgroundServer
from tests.conftest import RunningServer, suite_config
from tests.conftest import start_server as start_chat_server
from tests.e2e.irc_clients import RunningServer as ExternalServer
from tests.e2e.irc_clients import server_skip_reason, start_server
from tests.server.helpers import ask, forget_scram, only

from .helpers import NOW, all_text, burst_offering, chat_session, feed, make, reconnect
from .netutil import ChatClient, Ircd, cert_or_skip, restart_server, start_logged

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
    # Offered, SCRAM is used: the password never went over the wire.
    assert [line for line in erin.sent if line.startswith("AUTHENTICATE ")][:1] == [
        "AUTHENTICATE SCRAM-SHA-256"]
    assert "AUTHENTICATE PLAIN" not in erin.sent
    assert not any(base64.b64encode(PASSWORD.encode()).decode()[:8] in line for line in erin.sent)
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
    assert errors == [
        "SASL login as frank failed: SASL authentication failed (a wrong password, or an "
        "account this server has no SCRAM credentials for yet); to log in with PLAIN instead "
        '(over TLS): --sasl-mechanism PLAIN, or sasl_mechanism = "PLAIN"; connecting '
        "without logging in"]
    # SCRAM alone: a 904 is no reason to send the password itself with PLAIN.
    assert "AUTHENTICATE SCRAM-SHA-256" in frank.sent and "AUTHENTICATE PLAIN" not in frank.sent
    assert not any("not the password" in text for text in all_text(s))
    assert await whois_account(server, "frank") is None


@pytest.mark.parametrize("extra", [0, 3])
async def test_credentials_go_in_400_byte_chunks(
    server: RunningServer, clients: list[ChatClient], extra: int
) -> None:
    """PLAIN's credentials (asked for, and allowed over the test's plaintext TCP):
    extra 0: the base64 is exactly 400 bytes, one full line, so a '+' must follow
    (without it the server would wait for more and registration would never end);
    extra 3: 404 bytes, a full line and a short one."""
    password = "x" * (300 - len("hank") - 2 + extra)
    assert len(base64.b64encode(f"\0hank\0{password}".encode())) == 400 + 4 * (extra > 0)
    await make_account(server, "hank", password)
    forget_scram(server.config.db, "hank")
    hank = ChatClient.start(server.port, "hank", sasl=("hank", password),
                            sasl_mechanism="PLAIN", sasl_plain_insecure=True)  # fmt: skip
    clients.append(hank)
    await hank.wait(lambda: hank.session.registered, "registration")
    assert hank.session.account == "hank"
    assert await whois_account(server, "hank") == "hank"
    assert "AUTHENTICATE PLAIN" in hank.sent and "AUTHENTICATE SCRAM-SHA-256" not in hank.sent


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[RunningServer, Path]]:
    """Our server with a TLS port too (its certificate, self-signed for 127.0.0.1, is
    the second item: a client trusting it verifies the connection)."""
    cert, key = cert_or_skip(tmp_path)
    config = replace(suite_config(), tls_port=0, tls_cert=str(cert), tls_key=str(key))
    running = start_chat_server(config, "asyncio", db=str(tmp_path / "history.db"))
    try:
        yield running, cert
    finally:
        running.handle.stop()


def over_tls(server: RunningServer, cert: Path, nick: str, **kw: object) -> ChatClient:
    """A client for ``nick`` on ``server``'s TLS port, trusting ``cert`` (verified TLS)."""
    assert server.handle.tls_port is not None
    c = ChatClient.start(server.handle.tls_port, nick, tls=True, **kw)  # type: ignore[arg-type]
    c.conn._ssl = ssl.create_default_context(cafile=str(cert))
    return c


async def test_an_account_from_before_scram_logs_in_with_plain_when_asked_then_scram(
    tls_server: tuple[RunningServer, Path], clients: list[ChatClient]
) -> None:
    """SCRAM fails (the server has no credentials for the account yet): no PLAIN after
    it, and the error line says how to log in; with sasl_mechanism PLAIN over verified
    TLS the login works and gives the server the credentials, so that the next
    connection logs in with SCRAM alone."""
    server, cert = tls_server
    await make_account(server, "kate")
    forget_scram(server.config.db, "kate")
    first = over_tls(server, cert, "kate", sasl=("kate", PASSWORD))
    clients.append(first)
    await first.wait(lambda: first.session.registered, "registration")
    assert first.session.tls_verified and first.session.account is None
    assert [line for line in first.sent if line in SASL_STARTS] == ["AUTHENTICATE SCRAM-SHA-256"]
    (error,) = server_texts(first.session, Kind.ERROR)
    assert "--sasl-mechanism PLAIN" in error
    second = over_tls(server, cert, "kate2", sasl=("kate", PASSWORD), sasl_mechanism="PLAIN")
    clients.append(second)
    await second.wait(lambda: second.session.registered, "registration")
    assert second.session.account == "kate" and server_texts(second.session, Kind.ERROR) == []
    assert [line for line in second.sent if line in SASL_STARTS] == ["AUTHENTICATE PLAIN"]
    third = over_tls(server, cert, "kate3", sasl=("kate", PASSWORD))
    clients.append(third)
    await third.wait(lambda: third.session.registered, "registration")
    assert third.session.account == "kate"
    assert [line for line in third.sent if line in SASL_STARTS] == ["AUTHENTICATE SCRAM-SHA-256"]
    assert await whois_account(server, "kate3") == "kate"


async def registering(ircd: Ircd, password: str, **kw: object) -> ChatClient:
    """A client logging in as lee with ``password`` to the scripted ``ircd``, which
    leaves registration to the test; once its CAP LS has come."""
    ircd.welcome = False
    c = ChatClient.start(ircd.port, "lee", sasl=("lee", password), **kw)  # type: ignore[arg-type]
    await ircd.wait(lambda: any(ln.startswith("USER ") for ln in ircd.lines), "USER")
    return c


def leaked(lines: list[str], password: str) -> list[str]:
    """The lines carrying ``password`` as PLAIN sends it (its base64), or as is."""
    token = base64.b64encode(f"\0lee\0{password}".encode()).decode()
    return [line for line in lines if token[:12] in line or password in line]


async def test_a_904_to_scram_does_not_get_the_password_with_plain(
    ircd: Ircd, clients: list[ChatClient]
) -> None:
    """An impostor (or anyone on a plaintext path) offers SCRAM and PLAIN, answers
    SCRAM with 904, and waits for PLAIN's password: it never comes."""
    password = "hunter2hunter2"
    lee = await registering(ircd, password)
    clients.append(lee)
    ircd.send(":evil.test CAP * LS :sasl=SCRAM-SHA-256,PLAIN server-time")
    await ircd.wait(lambda: any(ln.startswith("CAP REQ") for ln in ircd.lines), "CAP REQ")
    ircd.send(":evil.test CAP lee ACK :sasl server-time")
    await ircd.wait(lambda: "AUTHENTICATE SCRAM-SHA-256" in ircd.lines, "SCRAM")
    ircd.send("AUTHENTICATE +")
    await ircd.wait(lambda: len([ln for ln in ircd.lines if ln.startswith("AUTHENTICATE")]) == 2,
                    "the client-first message")  # fmt: skip
    ircd.send(":evil.test 904 lee :SASL authentication failed")
    await ircd.wait(lambda: "CAP END" in ircd.lines or "AUTHENTICATE PLAIN" in ircd.lines,
                    "what follows the 904")  # fmt: skip
    ircd.send(":evil.test 001 lee :Welcome")
    ircd.send("AUTHENTICATE +")  # (as if PLAIN had been asked for: nothing must answer it)
    ircd.send(":evil.test 422 lee :No MOTD")
    await lee.wait(lambda: lee.session.registered, "registration")
    assert "AUTHENTICATE PLAIN" not in ircd.lines
    assert leaked(ircd.lines, password) == []
    assert [e for e in server_texts(lee.session, Kind.ERROR) if "--sasl-mechanism PLAIN" in e]


@pytest.mark.parametrize("offered", ["sasl=PLAIN", "sasl"])
async def test_plain_is_not_sent_over_plaintext(
    ircd: Ircd, clients: list[ChatClient], offered: str
) -> None:
    """A server offering only PLAIN (or no list, sasl-3.1) over plaintext TCP: no login,
    and the line says why and what would allow it."""
    password = "hunter2hunter2"
    lee = await registering(ircd, password)
    clients.append(lee)
    ircd.send(f":evil.test CAP * LS :{offered} server-time")
    await ircd.wait(lambda: any(ln.startswith("CAP REQ") for ln in ircd.lines), "CAP REQ")
    ircd.send(":evil.test CAP lee ACK :server-time")
    await ircd.wait(lambda: "CAP END" in ircd.lines, "CAP END")
    ircd.send(":evil.test 001 lee :Welcome")
    ircd.send(":evil.test 422 lee :No MOTD")
    await lee.wait(lambda: lee.session.registered, "registration")
    assert not [ln for ln in ircd.lines if ln.startswith("AUTHENTICATE") or "sasl" in ln]
    assert leaked(ircd.lines, password) == []
    assert server_texts(lee.session, Kind.ERROR) == [
        "SASL login as lee skipped: PLAIN would send the password unencrypted: connect "
        "with --tls, or send it anyway with --sasl-plain-insecure (sasl_plain_insecure = "
        "true); connecting without logging in"]


SASL_STARTS = ("AUTHENTICATE SCRAM-SHA-256", "AUTHENTICATE PLAIN")


@contextlib.asynccontextmanager
async def forging_server(password: str) -> AsyncIterator[tuple[int, list[str]]]:
    """A fake server offering only SCRAM-SHA-256, whose exchange is right up to the
    server-final message, which carries a signature it could not have made; then it
    welcomes the client all the same. Yields its port and the lines it received."""
    received: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(line: str) -> None:
            writer.write(f":fake.test {line}\r\n".encode())

        scram: ScramServer | None = None
        gathered = ""
        with contextlib.suppress(ConnectionError):
            while raw := await reader.readline():
                line = raw.decode().rstrip("\r\n")
                received.append(line)
                msg = parse(line)
                if msg.command == "CAP" and msg.params[0] == "LS":
                    say("CAP * LS :sasl=SCRAM-SHA-256")
                elif msg.command == "CAP" and msg.params[0] == "REQ":
                    say(f"CAP * ACK :{msg.params[1]}")
                elif msg.command == "AUTHENTICATE" and msg.params[0] == "SCRAM-SHA-256":
                    writer.write(b"AUTHENTICATE +\r\n")
                elif msg.command == "AUTHENTICATE" and msg.params[0] not in ("*", "+"):
                    gathered, done = sasl.add_line(gathered, msg.params[0])
                    if not done:
                        continue
                    data, gathered = base64.b64decode(gathered), ""
                    if scram is None:
                        scram = ScramServer(data)
                        reply = scram.first(derive(password))
                    else:
                        scram.final(data)  # the client's proof is right...
                        reply = b"v=" + base64.b64encode(bytes(32))  # ...our signature not
                    for part in sasl.to_lines(reply):
                        writer.write(f"AUTHENTICATE {part}\r\n".encode())
                elif msg.command == "AUTHENTICATE" and msg.params[0] == "*":
                    say("906 * :SASL authentication aborted")
                elif msg.command == "CAP" and msg.params[0] == "END":  # USER came before
                    say("001 lee :Welcome to the fake network")
                    say("422 lee :MOTD File is missing")
                elif msg.command == "QUIT":
                    break
                await writer.drain()
        writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1], received
    finally:
        srv.close()


async def test_a_wrong_server_signature_is_a_failed_login(clients: list[ChatClient]) -> None:
    async with forging_server(PASSWORD) as (port, received):
        lee = ChatClient.start(port, "lee", sasl=("lee", PASSWORD))
        clients.append(lee)
        await lee.wait(lambda: lee.session.registered, "registration")
        s = lee.session
        assert s.account is None
        assert errors(s) == [
            "SASL login as lee failed: the server's signature is wrong; "
            "connecting without logging in"
        ]
        sasl_lines = [line for line in received if line.startswith("AUTHENTICATE")]
        assert len(sasl_lines) == 4  # the mechanism, client-first, client-final, then:
        assert sasl_lines[-1] == "AUTHENTICATE *"  # abort, never '+'
        assert "AUTHENTICATE +" not in received
        assert received.index("AUTHENTICATE *") < received.index("CAP END")


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
    gina, chatlog = await start_logged(clients, server.port, "gina", tmp_path)
    s = gina.session
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


async def test_a_register_during_the_session_logs_reconnects_in(
    clients: list[ChatClient], tmp_path: Path
) -> None:
    """The server keeps a registered account's nick for it: a reconnect that did not
    log in came back as alicia_, out of the account (its ChanServ access, its bans'
    exceptions). After /register, reconnects log in with SASL, password in memory only."""
    db = str(tmp_path / "chat.db")
    server = start_chat_server(suite_config(), "asyncio", db=db)
    handles = [server.handle]
    try:
        await register_then_restart(server, db, handles, clients, tmp_path)
    finally:
        for c in clients:
            await c.stop()
        for handle in handles:
            handle.stop()


async def register_then_restart(
    server: RunningServer, db: str, handles: list[BackgroundServer],
    clients: list[ChatClient], tmp_path: Path,
) -> None:  # fmt: skip
    alicia = ChatClient.start(server.port, "alicia", ("#t",))
    clients.append(alicia)
    chatlog = ChatLog(tmp_path / "logs")
    alicia.conn.subscribe(chatlog.handle)
    s = alicia.session
    await alicia.joined("#t")
    assert s.account is None and s.sasl_learned is None
    alicia.conn.input(f"/register {PASSWORD}")
    await alicia.wait(lambda: s.account == "alicia", "the account")
    assert s.sasl_learned == "alicia" and not s.sasl_configured
    assert any(text.startswith("Reconnects log in as alicia for the rest of this session; "
                               "to log in as alicia when connecting: --sasl-username alicia")
               for text in server_texts(s))  # fmt: skip

    # The server restarts (same database): the client comes back logged in, as alicia.
    handles.remove(server.handle)
    handles.append(await restart_server(server, db, alicia))
    sent_before = len(alicia.sent)
    alicia.gate.open()
    await alicia.wait(lambda: s.connects == 2 and s.registered, "the reconnect")
    await alicia.joined("#t")
    assert s.nick == "alicia" and s.account == "alicia"
    assert "AUTHENTICATE SCRAM-SHA-256" in alicia.sent[sent_before:]
    assert await whois_account(server, "alicia") == "alicia"
    assert not [e for e in server_texts(s, Kind.ERROR) if "SASL" in e]
    await alicia.stop()
    chatlog.close()
    logged = "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))
    assert PASSWORD not in logged and not any(PASSWORD in text for text in all_text(s))
    assert PASSWORD not in repr(s._sasl._learned)


async def test_a_nickserv_identify_during_the_session_logs_reconnects_in(
    server: RunningServer, clients: list[ChatClient], tmp_path: Path
) -> None:
    await make_account(server, "bert")
    bert, chatlog = await start_logged(clients, server.port, "bert", tmp_path)
    s = bert.session
    assert s.nick == "bert_"  # bert is kept for the account's owner
    bert.conn.input("/ns IDENTIFY bert wr0ng-guess")  # refused: nothing learnt
    await bert.wait(lambda: any(text.startswith("Invalid account name or password")
                                for text in all_text(s)), "the refusal")  # fmt: skip
    assert s.sasl_learned is None
    bert.conn.input(f"/ns IDENTIFY bert {PASSWORD}")
    await bert.wait(lambda: s.account == "bert", "the login (900)")
    assert s.sasl_learned == "bert"
    assert "Reconnects log in as bert for the rest of this session" in all_text(s)

    bert.conn.drop()
    await bert.wait(lambda: s.connects == 2 and s.registered, "the reconnect")
    assert s.account == "bert" and s.nick == "bert"  # logged in at connect: the nick too
    assert await whois_account(server, "bert") == "bert"
    chatlog.close()
    logged = "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))
    for secret in (PASSWORD, "wr0ng-guess"):
        assert secret not in logged and not any(secret in text for text in all_text(s))


def test_only_a_900_answering_the_password_sent_is_learnt() -> None:
    s = chat_session()
    welcome = ":test.server 900 alice alice!~a@h {} :You are now logged in as {}"
    s.input("/msg NickServ IDENTIFY other s3cret-one", NOW)
    feed(s, [welcome.format("alice", "alice")], NOW + 1)  # another account's 900
    assert s.sasl_learned is None
    s.input("/ns IDENTIFY s3cret-two", NOW + 2)  # the account the server takes: any
    feed(s, [welcome.format("Alice", "Alice")], NOW + 2 + 121)  # too late
    assert s.sasl_learned is None
    s.input("/ns IDENTIFY s3cret-two", NOW + 200)
    feed(s, [welcome.format("Alice", "Alice")], NOW + 201)
    assert s.sasl_learned == "Alice"
    # The next connection logs in with it (SCRAM offered here: the password is not sent).
    s.connection_lost(NOW + 300)
    s.connection_made(NOW + 301)
    s.take_outgoing()
    ls = ":test.server CAP * LS :sasl=SCRAM-SHA-256,PLAIN server-time"
    assert feed(s, [ls], NOW + 301) == ["CAP REQ :server-time sasl"]
    out = feed(s, [":test.server CAP alice ACK :server-time sasl", "AUTHENTICATE +"], NOW + 301)
    assert out[0] == "AUTHENTICATE SCRAM-SHA-256"
    first = base64.b64decode(out[1].split()[1])
    assert first.startswith(b"n,,n=Alice,r=")
    assert not any("s3cret" in text for text in all_text(s))


def test_logging_out_forgets_the_login_made_during_the_session() -> None:
    s = chat_session()
    s.input("/ns IDENTIFY s3cret", NOW)
    feed(s, [":test.server 900 alice alice!~a@h alice :You are now logged in as alice"])
    assert s.sasl_learned == "alice"
    feed(s, [":test.server 901 alice alice!~a@h :You are now logged out"])  # /ns LOGOUT
    assert s.sasl_learned is None
    out = reconnect(s, burst_offering("sasl=SCRAM-SHA-256,PLAIN"))
    assert not any(line.startswith("AUTHENTICATE") or "sasl" in line for line in out)


def test_configured_credentials_win_over_a_login_made_during_the_session() -> None:
    s = chat_session(sasl_username="lee", sasl_password="configured-pw")
    s.input("/ns IDENTIFY s3cret", NOW)
    feed(s, [":test.server 900 alice alice!~a@h alice :You are now logged in as alice"])
    assert not any("Reconnects log in" in text for text in all_text(s))
    s.connection_lost(NOW + 1)
    s.connection_made(NOW + 2, secure=True, verified=True)
    feed(s, [":test.server CAP * LS :sasl=PLAIN", ":test.server CAP alice ACK :sasl"])
    out = feed(s, ["AUTHENTICATE +"])
    assert base64.b64decode(out[0].split()[1]) == b"\0lee\0configured-pw"


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


def sasl_session(*, tls: bool = False, verified: bool = False, **kw: object) -> Session:
    """Logging in as lee, over plaintext TCP unless ``tls`` (``verified``: its
    certificate checked, where PLAIN may go)."""
    s = make(sasl_username="lee", sasl_password="hunter2hunter2", **kw)
    s.connection_made(NOW, secure=tls, verified=verified)
    s.take_outgoing()
    return s


def errors(s: Session) -> list[str]:
    return server_texts(s, Kind.ERROR)


def test_the_exchange_on_the_wire() -> None:
    s = sasl_session(tls=True, verified=True)
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
        "SASL login as lee skipped: the server offers SASL only as EXTERNAL, not "
        "SCRAM-SHA-256 or PLAIN; connecting without logging in"
    ]


def authenticate_lines(message: bytes) -> list[str]:
    return [f"AUTHENTICATE {line}" for line in sasl.to_lines(message)]


def scram_exchange(s: Session, offered: str, password: str = "hunter2hunter2") -> list[str]:
    """Offer ``offered`` and play a SCRAM server to the end (the server-final message);
    what the client sent last."""
    feed(s, [f":srv CAP * LS :sasl={offered}"])
    assert feed(s, [":srv CAP * ACK :sasl"]) == ["AUTHENTICATE SCRAM-SHA-256"]
    (first,) = feed(s, ["AUTHENTICATE +"])
    server = ScramServer(base64.b64decode(first.split()[1]))
    assert server.username == "lee"
    final = feed(s, authenticate_lines(server.first(derive(password))))
    assert len(final) == 1
    return feed(s, authenticate_lines(server.final(base64.b64decode(final[0].split()[1]))))


def test_scram_on_the_wire() -> None:
    s = sasl_session()
    assert scram_exchange(s, "PLAIN,SCRAM-SHA-256") == ["AUTHENTICATE +"]
    assert feed(s, [":srv 900 lee lee!*@h lee :You are now logged in as lee"]) == []
    assert feed(s, [":srv 903 lee :SASL authentication successful"]) == ["CAP END"]
    assert s.account == "lee" and errors(s) == []


def test_a_failed_scram_never_falls_back_to_plain() -> None:
    """Even over verified TLS: 904 is what an impostor answers to get the password."""
    s = sasl_session(tls=True, verified=True)
    feed(s, [":srv CAP * LS :sasl=SCRAM-SHA-256,PLAIN", ":srv CAP * ACK :sasl"])
    feed(s, ["AUTHENTICATE +"])
    # The server has no SCRAM credentials for the account: 904 at the first message.
    assert feed(s, [":srv 904 lee :SASL authentication failed"]) == ["CAP END"]
    assert errors(s) == [
        "SASL login as lee failed: SASL authentication failed (a wrong password, or an "
        "account this server has no SCRAM credentials for yet); to log in with PLAIN instead "
        '(over TLS): --sasl-mechanism PLAIN, or sasl_mechanism = "PLAIN"; connecting '
        "without logging in"]
    assert feed(s, ["AUTHENTICATE +"]) == []  # nothing to answer


def test_a_failed_scram_ends_the_login_when_plain_is_not_offered() -> None:
    s = sasl_session()
    feed(s, [":srv CAP * LS :sasl=SCRAM-SHA-256", ":srv CAP * ACK :sasl", "AUTHENTICATE +"])
    assert feed(s, [":srv 904 lee :SASL authentication failed"]) == ["CAP END"]
    assert errors(s) == [
        "SASL login as lee failed: SASL authentication failed (a wrong password, or an "
        "account this server has no SCRAM credentials for yet); connecting without logging "
        "in"]  # (no PLAIN hint: the server has none)


def test_908_then_904_during_scram_ends_the_login() -> None:
    s = sasl_session(tls=True, verified=True)
    feed(s, [":srv CAP * LS :sasl=SCRAM-SHA-256,PLAIN", ":srv CAP * ACK :sasl"])
    assert feed(s, [":srv 908 lee PLAIN :are available SASL mechanisms"]) == ["CAP END"]
    assert feed(s, [":srv 904 lee :SASL authentication failed"]) == []
    assert errors(s) == [
        "SASL login as lee failed: the server offers PLAIN, not SCRAM-SHA-256; to log in "
        'with PLAIN instead (over TLS): --sasl-mechanism PLAIN, or sasl_mechanism = "PLAIN"; '
        "connecting without logging in"]


def test_a_server_offering_only_plain_gets_plain_over_verified_tls() -> None:
    s = sasl_session(tls=True, verified=True)
    feed(s, [":srv CAP * LS :sasl=PLAIN"])
    assert feed(s, [":srv CAP * ACK :sasl"]) == ["AUTHENTICATE PLAIN"]


@pytest.mark.parametrize(("tls", "why"), [
    (False, "PLAIN would send the password unencrypted: connect with --tls"),
    (True, "PLAIN would send the password to a server whose TLS certificate was not "
           "verified: trust the certificate instead of --tls-no-verify"),
])  # fmt: skip
def test_plain_needs_verified_tls_or_the_insecure_option(tls: bool, why: str) -> None:
    s = sasl_session(tls=tls)
    assert feed(s, [":srv CAP * LS :sasl=PLAIN server-time"]) == ["CAP REQ server-time"]
    assert errors(s) == [
        f"SASL login as lee skipped: {why}, or send it anyway with --sasl-plain-insecure "
        "(sasl_plain_insecure = true); connecting without logging in"]
    s = sasl_session(tls=tls, sasl_plain_insecure=True)
    feed(s, [":srv CAP * LS :sasl=PLAIN"])
    assert feed(s, [":srv CAP * ACK :sasl"]) == ["AUTHENTICATE PLAIN"]
    assert feed(s, ["AUTHENTICATE +"]) == [
        "AUTHENTICATE " + base64.b64encode(b"\0lee\0hunter2hunter2").decode()]


def test_the_configured_mechanism_is_the_only_one_tried() -> None:
    s = sasl_session(tls=True, verified=True, sasl_mechanism="PLAIN")
    feed(s, [":srv CAP * LS :sasl=SCRAM-SHA-256,PLAIN"])
    assert feed(s, [":srv CAP * ACK :sasl"]) == ["AUTHENTICATE PLAIN"]
    s = sasl_session(tls=True, verified=True, sasl_mechanism="SCRAM-SHA-256")
    assert feed(s, [":srv CAP * LS :sasl=PLAIN server-time"]) == ["CAP REQ server-time"]
    assert errors(s) == [
        "SASL login as lee skipped: the server offers SASL only as PLAIN, not SCRAM-SHA-256; "
        "connecting without logging in"]


def test_a_wrong_server_signature_is_not_answered_with_plus() -> None:
    s = sasl_session()
    feed(s, [":srv CAP * LS :sasl=SCRAM-SHA-256,PLAIN", ":srv CAP * ACK :sasl"])
    (first,) = feed(s, ["AUTHENTICATE +"])
    server = ScramServer(base64.b64decode(first.split()[1]))
    (final,) = feed(s, authenticate_lines(server.first(derive("hunter2hunter2"))))
    server.final(base64.b64decode(final.split()[1]))  # our proof is right...
    forged = authenticate_lines(b"v=" + base64.b64encode(bytes(32)))  # ...its signature not
    assert feed(s, forged) == ["AUTHENTICATE *", "CAP END"]  # no '+', and no PLAIN after
    assert errors(s) == [
        "SASL login as lee failed: the server's signature is wrong; "
        "connecting without logging in"]
    assert feed(s, [":srv 906 lee :SASL authentication aborted"]) == []  # told once
    assert s.account is None


def test_success_without_the_servers_signature_disconnects() -> None:
    """903 before the server-final message: the server never proved it knows the
    password, so it may be an impostor that took the proof. Leave, not reconnecting."""
    s = sasl_session()
    feed(s, [":srv CAP * LS :sasl=SCRAM-SHA-256,PLAIN", ":srv CAP * ACK :sasl"])
    (first,) = feed(s, ["AUTHENTICATE +"])
    server = ScramServer(base64.b64decode(first.split()[1]))
    assert len(feed(s, authenticate_lines(server.first(derive("hunter2hunter2"))))) == 1
    s.take_events()
    sent = feed(s, [":srv 900 lee lee!*@h lee :You are now logged in as lee",
                    ":srv 903 lee :SASL authentication successful"])  # fmt: skip
    assert sent == ["QUIT :SASL: the server was not verified"]
    assert any(isinstance(e, QuitRequested) for e in s.take_events())
    assert errors(s) == [
        "SASL login as lee: the server said yes without proving it knows the password "
        "(no SCRAM signature); disconnecting"]


@pytest.mark.parametrize(
    "server_first",
    [
        b"r=someone-elses,s=c2FsdA==,i=4096",
        b"e=unknown-user",
        b"not scram",
    ],
)
def test_a_bad_server_first_message_aborts(server_first: bytes) -> None:
    s = sasl_session()
    feed(s, [":srv CAP * LS :sasl=SCRAM-SHA-256", ":srv CAP * ACK :sasl", "AUTHENTICATE +"])
    assert feed(s, authenticate_lines(server_first)) == ["AUTHENTICATE *", "CAP END"]
    assert len(errors(s)) == 1 and s.account is None
    s = sasl_session()
    feed(s, [":srv CAP * LS :sasl=SCRAM-SHA-256", ":srv CAP * ACK :sasl", "AUTHENTICATE +"])
    assert feed(s, ["AUTHENTICATE !!!!"]) == ["AUTHENTICATE *", "CAP END"]


def test_a_server_without_cap_is_reported_once() -> None:
    s = sasl_session()
    feed(s, [":srv 001 lee :Welcome", ":srv 422 lee :MOTD File is missing"])
    assert s.registered
    assert errors(s) == [
        "SASL login as lee skipped: the server does not support capabilities (CAP); "
        "connecting without logging in"
    ]


def test_an_unanswered_exchange_is_given_up_at_a_keepalive() -> None:
    s = sasl_session(tls=True, verified=True)
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


NICKSERV_NOTICE = ":NickServ!NickServ@services.test NOTICE alice :{}"


@pytest.mark.parametrize(
    ("typed", "confirmation"),
    [
        ("/ns SET PASSWORD n3w-secret", "The password of lee is changed"),  # ours
        ("/msg NickServ set pass n3w-secret", "Password for lee changed."),  # Anope
        ("/ns PASSWD configured-pw n3w-secret n3w-secret", "Password changed"),  # Ergo
    ],
)
def test_a_confirmed_password_change_is_used_by_reconnects(typed: str, confirmation: str) -> None:
    s = chat_session(sasl_username="lee", sasl_password="configured-pw")
    feed(s, [":test.server 900 alice alice!~a@h lee :You are now logged in as lee"])
    s.input(typed, NOW + 1)
    feed(s, [NICKSERV_NOTICE.format(confirmation)], NOW + 2)
    assert any(text.startswith("Reconnects log in with the new password for the rest of this "
                               "session; the configured password is the old one")
               for text in all_text(s))  # fmt: skip
    assert sasl_plain_at_reconnect(s, NOW + 60) == b"\0lee\0n3w-secret"
    assert not any("n3w-secret" in text for text in all_text(s))


@pytest.mark.parametrize(
    "answer",
    [
        "The password could not be changed; try again later",  # ours, refused
        "The password must be at least 8 characters long",
        "Password changed",  # ...but too late: not an answer to ours
    ],
)
def test_a_password_change_not_confirmed_keeps_the_old_password(answer: str) -> None:
    s = chat_session(sasl_username="lee", sasl_password="configured-pw")
    feed(s, [":test.server 900 alice alice!~a@h lee :You are now logged in as lee"])
    s.input("/ns SET PASSWORD n3w-secret", NOW)
    late = answer == "Password changed"
    feed(s, [NICKSERV_NOTICE.format(answer)], NOW + (200 if late else 1))
    feed(s, [NICKSERV_NOTICE.format("Password changed")], NOW + 201)  # none waiting now
    assert not any(text.startswith("Reconnects log in") for text in all_text(s))
    assert sasl_plain_at_reconnect(s, NOW + 260) == b"\0lee\0configured-pw"


def sasl_plain_at_reconnect(s: Session, now: float) -> bytes:
    """The connection drops and comes back (verified TLS) offering PLAIN: what the
    client sends."""
    s.connection_lost(now - 1)
    s.connection_made(now, secure=True, verified=True)
    feed(s, [":test.server CAP * LS :sasl=PLAIN", ":test.server CAP alice ACK :sasl"], now)
    out = feed(s, ["AUTHENTICATE +"], now)
    return base64.b64decode(out[0].split()[1])


async def test_a_password_changed_through_nickserv_logs_reconnects_in(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    await make_account(server, "carla")
    carla = ChatClient.start(server.port, "carla", sasl=("carla", PASSWORD))
    clients.append(carla)
    s = carla.session
    await carla.wait(lambda: s.registered and s.account == "carla", "the SASL login")
    carla.conn.input("/ns SET PASSWORD n3w-passw0rd")
    await carla.wait(lambda: any(text.startswith("Reconnects log in with the new password")
                                 for text in all_text(s)), "the confirmation")  # fmt: skip
    carla.conn.drop()
    await carla.wait(lambda: s.connects == 2 and s.registered, "the reconnect")
    # The server now refuses the old password, so the login proves the new one was used.
    assert s.account == "carla" and s.nick == "carla"
    assert await whois_account(server, "carla") == "carla"
    assert not [e for e in server_texts(s, Kind.ERROR) if "SASL" in e]
