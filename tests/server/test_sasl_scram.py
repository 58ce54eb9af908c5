"""SASL SCRAM-SHA-256 over real TCP on every backend: the whole exchange (the client's
side written with chat.scram), refusals that give nothing away, aborts, malformed
messages without a traceback, 400-byte chunks both ways, accounts from before SCRAM
(upgraded by a PLAIN login), and credentials kept across a restart, in SQLite and in
PostgreSQL."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from chat import sasl
from chat.message import Message
from chat.scram import ITERATIONS, SALT_BYTES, ScramClient
from tests.conftest import RunningServer, serving, suite_config
from tests.history.postgres_fixture import pg_server_fixture, pg_url_fixture  # noqa: F401
from tests.ircclient import IRCTestClient
from tests.server.helpers import (
    ask,
    cap_ls,
    forget_scram,
    nickserv_says,
    only,
    too_many_failures,
)

from .test_accounts import (
    PASSWORD,
    authenticate,
    finish_registration,
    plain,
    register_account,
    sasl_connection,
)

SASL_NUMERICS = ("900", "902", "903", "904", "905", "906", "907", "908")


@pytest.fixture(autouse=True)
def no_server_errors(caplog: pytest.LogCaptureFixture) -> object:
    """Bad input is refused, never a traceback: the server (on a thread of this
    process) logs no error in any of these tests."""
    caplog.set_level(logging.WARNING, logger="chat")
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]


async def start(c: IRCTestClient) -> None:
    await c.send("AUTHENTICATE SCRAM-SHA-256")
    assert (await c.expect("AUTHENTICATE")).params == ["+"]


async def send(c: IRCTestClient, message: bytes) -> None:
    for line in sasl.to_lines(message):
        await c.send(f"AUTHENTICATE {line}")


async def receive(c: IRCTestClient) -> tuple[bytes, int] | Message:
    """The server's next SASL message and how many lines carried it, or the numeric it
    answered instead."""
    gathered, lines = "", 0
    while True:
        msg = await c.read_message()
        if msg.command in SASL_NUMERICS:
            return msg
        if msg.command == "AUTHENTICATE":
            lines += 1
            gathered, done = sasl.add_line(gathered, msg.params[0])
            if done:
                return base64.b64decode(gathered, validate=True), lines


async def server_first(c: IRCTestClient, client: ScramClient) -> bytes:
    """AUTHENTICATE SCRAM-SHA-256 and the client-first message: the server-first."""
    await start(c)
    await send(c, client.first())
    got = await receive(c)
    assert not isinstance(got, Message), got
    return got[0]


async def scram_login(
    c: IRCTestClient, user: str, password: str = PASSWORD, nonce: str | None = None
) -> list[str]:
    """A whole exchange; the numerics that ended it (900, 903 for a login)."""
    client = ScramClient(user, password, nonce)
    first = await server_first(c, client)
    await send(c, client.final(first))
    final = await receive(c)
    if isinstance(final, Message):
        return [final.command]
    client.verify(final[0])  # the server holds the password's credentials
    return [m.command for m in await ask(c, "AUTHENTICATE +")]


def attributes(server_first: bytes) -> dict[str, str]:
    return dict(part.split("=", 1) for part in server_first.decode().split(","))


async def test_offered_with_plain(server: RunningServer) -> None:
    assert "sasl=PLAIN,SCRAM-SHA-256" in await cap_ls(await server.client())
    c = await sasl_connection(server)
    msgs = await ask(c, "AUTHENTICATE DIGEST-MD5")
    assert [(m.command, m.params[1]) for m in msgs] == [
        ("908", "PLAIN,SCRAM-SHA-256"), ("904", "SASL authentication failed")]


async def test_login(server: RunningServer) -> None:
    await register_account(await server.client("erin"))
    c = await sasl_connection(server)
    client = ScramClient("Erin", PASSWORD)  # names are case-insensitive
    first = await server_first(c, client)
    got = attributes(first)
    assert list(got) == ["r", "s", "i"]
    assert got["i"] == str(ITERATIONS) and len(base64.b64decode(got["s"])) == SALT_BYTES
    await send(c, client.final(first))
    final = await receive(c)
    assert not isinstance(final, Message), final
    client.verify(final[0])
    msgs = await ask(c, "AUTHENTICATE +")
    assert [(m.command, m.params[1:]) for m in msgs] == [
        ("900", ["*!*@127.0.0.1", "erin", "You are now logged in as erin"]),
        ("903", ["SASL authentication successful"]),
    ]
    await finish_registration(c, "erin_")
    assert only(await ask(c, "WHOIS erin_"), "330")[0].params[2] == "erin"
    assert only(await ask(c, "AUTHENTICATE SCRAM-SHA-256"), "907")


async def test_wrong_password_and_unknown_account_fail_alike(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    await register_account(await server.client("frank"))
    c = await sasl_connection(server)
    assert await scram_login(c, "frank", "wrong password") == ["904"]
    # Logged (which also shows that no_server_errors sees the server's log).
    assert "failed SCRAM login as 'frank' from 127.0.0.1 (*): wrong proof" in caplog.text
    # An unknown name gets a server-first message of the same shape (its salt the
    # same at each attempt, as a real one's is), and fails only at the proof.
    firsts = []
    for _ in range(2):
        probe = await sasl_connection(server)
        client = ScramClient("nobody", PASSWORD)
        first = await server_first(probe, client)
        firsts.append(attributes(first))
        await send(probe, client.final(first))
        assert [m.command for m in await probe.sync()] == ["904"]
    real = await sasl_connection(server)
    known = attributes(await server_first(real, ScramClient("frank", PASSWORD)))
    for unknown in firsts:
        assert list(unknown) == list(known) and unknown["i"] == known["i"]
        assert len(unknown["r"]) == len(known["r"])
        assert len(base64.b64decode(unknown["s"])) == len(base64.b64decode(known["s"]))
    assert firsts[0]["s"] == firsts[1]["s"] and firsts[0]["r"] != firsts[1]["r"]
    other = await sasl_connection(server)
    assert attributes(await server_first(other, ScramClient("nobody2", "x")))["s"] != (
        firsts[0]["s"])
    # The failed connection registers without an account.
    burst = await finish_registration(c, "guest")
    assert "001" in [m.command for m in burst]
    assert only(await ask(c, "WHOIS guest"), "330") == []


async def test_abort_at_every_step(server: RunningServer) -> None:
    await register_account(await server.client("gus"))
    c = await sasl_connection(server)
    await start(c)
    assert [m.command for m in await ask(c, "AUTHENTICATE *")] == ["906"]
    client = ScramClient("gus", PASSWORD)
    first = await server_first(c, client)
    assert [m.command for m in await ask(c, "AUTHENTICATE *")] == ["906"]
    # After the server-final message, too: no login.
    client = ScramClient("gus", PASSWORD)
    first = await server_first(c, client)
    await send(c, client.final(first))
    assert not isinstance(await receive(c), Message)
    assert [m.command for m in await ask(c, "AUTHENTICATE *")] == ["906"]
    # CAP END in the middle ends it as for PLAIN: 906, then the welcome.
    await server_first(c, ScramClient("gus", PASSWORD))
    burst = await finish_registration(c, "gus_")
    assert [m.command for m in burst][:2] == ["906", "001"]
    assert only(await ask(c, "WHOIS gus_"), "330") == []


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "line",
    [
        "not base64!",
        "é",  # not even ASCII
        b64("p=tls-server-end-point,,n=hank,r=abc"),  # channel binding asked for
        b64("q,,n=hank,r=abc"),
        b64("n,,n=hank"),
        b64("n,,r=abc,n=hank"),
        b64("n,,n=ha=nk,r=abc"),
        b64("n,,n=hank,r=a\x01c"),
        b64("n,,m=ext,n=hank,r=abc"),
        b64("n,a=root,n=hank,r=abc"),  # someone else's identity
        base64.b64encode(b"n,,n=\xff,r=abc").decode(),  # not UTF-8
        "+",  # empty
    ],
)
async def test_malformed_client_first(server: RunningServer, line: str) -> None:
    await register_account(await server.client("hank"))
    c = await sasl_connection(server)
    await start(c)
    assert [m.command for m in await ask(c, f"AUTHENTICATE {line}")] == ["904"]
    # The connection is fine: a proper login follows.
    assert await scram_login(c, "hank") == ["900", "903"]


@pytest.mark.parametrize(
    "final",
    [
        "c=biws,r={nonce}",  # no proof
        "c=biws,r={nonce}x,p=" + "A" * 44,  # another nonce
        "c=eSws,r={nonce},p=" + "A" * 44,  # the binding of a header it did not send
        "c=biws,r={nonce},p=AAAA",  # a short proof
        "c=biws,r={nonce},p=!!!!",
        "r={nonce},c=biws,p=" + "A" * 44,
        "junk",
    ],
)
async def test_malformed_client_final(server: RunningServer, final: str) -> None:
    await register_account(await server.client("ines"))
    c = await sasl_connection(server)
    first = await server_first(c, ScramClient("ines", PASSWORD))
    await send(c, final.format(nonce=attributes(first)["r"]).encode())
    assert [m.command for m in await c.sync()] == ["904"]
    assert await scram_login(c, "ines") == ["900", "903"]
    # Answering the server-final message with anything but '+' is a failure too.
    d = await sasl_connection(server)
    client = ScramClient("ines", PASSWORD)
    await send(d, client.final(await server_first(d, client)))
    assert not isinstance(await receive(d), Message)
    assert [m.command for m in await ask(d, "AUTHENTICATE " + b64("v=x"))] == ["904"]


async def test_messages_over_400_bytes_go_in_chunks(server: RunningServer) -> None:
    """A long client nonce makes every message but the last longer than one line."""
    await register_account(await server.client("judy"))
    c = await sasl_connection(server)
    client = ScramClient("judy", PASSWORD, nonce="n" * 450)
    assert len(sasl.to_lines(client.first())) == 2
    await start(c)
    await send(c, client.first())
    first = await receive(c)
    assert not isinstance(first, Message) and first[1] == 2  # the server splits it too
    final = client.final(first[0])
    assert len(sasl.to_lines(final)) == 2
    await send(c, final)
    signature = await receive(c)
    assert not isinstance(signature, Message)
    client.verify(signature[0])
    assert [m.command for m in await ask(c, "AUTHENTICATE +")] == ["900", "903"]
    # Past the limit of one message: 905, as for PLAIN.
    d = await sasl_connection(server)
    await start(d)
    await send(d, ScramClient("judy", PASSWORD, nonce="n" * 1000).first())
    assert [m.command for m in await d.sync()] == ["905"]


async def test_failures_count_with_plains(server: RunningServer) -> None:
    await register_account(await server.client("kim"))
    c = await sasl_connection(server)
    assert [m.command for m in await authenticate(c, plain("kim", "bad password"))] == ["904"]
    assert await scram_login(c, "kim", "bad password") == ["904"]
    assert await scram_login(c, "nobody", "bad password") == ["904"]
    # The limit (3) is reached: even the right password is refused for now, before
    # any look-up (no server-first message).
    await start(c)
    await send(c, ScramClient("kim", PASSWORD).first())
    refusals = [*await c.sync(), *await authenticate(c, plain("kim", PASSWORD))]
    assert [m.command for m in refusals] == ["904", "904"]
    assert all(too_many_failures(m.params[-1]) for m in refusals), refusals


async def test_an_account_from_before_scram_logs_in_after_one_plain_login(
    server: RunningServer,
) -> None:
    await register_account(await server.client("lena"))
    forget_scram(server.config.db, "lena")
    c = await sasl_connection(server)
    assert await scram_login(c, "lena") == ["904"]  # no credentials: the client falls back
    assert [m.command for m in await authenticate(c, plain("lena", PASSWORD))] == [
        "900", "903"]
    d = await sasl_connection(server)
    assert await scram_login(d, "lena") == ["900", "903"]


async def test_nickserv_register_and_set_password_give_credentials(
    server: RunningServer,
) -> None:
    mia = await server.client("mia")
    assert nickserv_says(await ask(mia, f"NS REGISTER {PASSWORD}")) == ["Account mia registered"]
    assert await scram_login(await sasl_connection(server), "mia") == ["900", "903"]
    assert nickserv_says(await ask(mia, "NS SET PASSWORD new-password")) == [
        "The password of mia is changed"]
    assert await scram_login(await sasl_connection(server), "mia") == ["904"]
    assert await scram_login(await sasl_connection(server), "mia", "new-password") == [
        "900", "903"]


async def test_credentials_survive_a_restart(backend: str, tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    async with serving(suite_config(), backend, db=db) as first:
        await register_account(await first.client("nina"))
    async with serving(suite_config(), backend, db=db) as second:
        assert await scram_login(await sasl_connection(second), "nina") == ["900", "903"]


async def test_postgresql_store(backend: str, pg_url: str) -> None:
    """The same with the accounts in PostgreSQL: a login, an account from before
    SCRAM upgraded by PLAIN, and the credentials kept across a restart."""
    async with serving(suite_config(), backend, db=pg_url) as first:
        await register_account(await first.client("olga"))
        assert await scram_login(await sasl_connection(first), "olga") == ["900", "903"]
        forget_scram(pg_url, "olga")
        c = await sasl_connection(first)
        assert await scram_login(c, "olga") == ["904"]
        assert [m.command for m in await authenticate(c, plain("olga", PASSWORD))] == [
            "900", "903"]
    async with serving(suite_config(), backend, db=pg_url) as second:
        assert await scram_login(await sasl_connection(second), "olga") == ["900", "903"]
