"""QUIT reasons from new connections (solanum's anti_spam_exit_message_time): a client
connected for less than ``--anti-spam-exit-message-time`` seconds quits with "Client
Quit" whatever it said, so that connect, join and quit with an advert says nothing;
operators are exempt, and 0 turns it off. Over real TCP on every backend, and the
window itself with the core's fake clock."""

from __future__ import annotations

from chat.message import Message
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer, serving, suite_config
from tests.fuzz.harness import CoreHarness
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask

REASON = "buy cheap stuff at spam.example"
DAY = 86400


async def quit_seen(running: RunningServer, oper: bool = False) -> tuple[Message, str]:
    """alice's view of bob's ``QUIT :REASON`` (bob an operator if ``oper``), and the
    reason bob's own ERROR line gives."""
    alice = await running.client("alice")
    bob = await running.client("bob")
    await alice.join("#c")
    await bob.join("#c")
    if oper:
        await ask(bob, f"OPER {OPER_NAME} :{OPER_PASSWORD}")
    await alice.sync()
    await bob.send(f"QUIT :{REASON}")
    [error] = await bob.wait_closed()
    return await alice.expect("QUIT"), error.params[0]


def closing(reason: str) -> str:
    return f"Closing Link: 127.0.0.1 ({reason})"


async def test_a_new_client_quits_without_its_reason(backend: str) -> None:
    config = suite_config(db="", anti_spam_exit_message_time=DAY)
    async with serving(config, backend) as running:
        seen, error = await quit_seen(running)
        assert seen.params == ["Client Quit"]
        assert error == closing("Client Quit")


async def test_an_operator_keeps_the_reason(backend: str, oper_hash: str) -> None:
    config = suite_config(db="", anti_spam_exit_message_time=DAY,
                          opers={OPER_NAME: oper_hash})
    async with serving(config, backend) as running:
        seen, _error = await quit_seen(running, oper=True)
        assert seen.params == [f"Quit: {REASON}"]


async def test_zero_always_shows_the_reason(backend: str) -> None:
    async with serving(suite_config(db="", anti_spam_exit_message_time=0), backend) as running:
        seen, error = await quit_seen(running)
        assert seen.params == [f"Quit: {REASON}"]
        assert error == closing(f"Quit: {REASON}")


async def test_a_quit_without_a_reason_stays_quit(backend: str) -> None:
    config = suite_config(db="", anti_spam_exit_message_time=DAY)
    async with serving(config, backend) as running:
        alice = await running.client("alice")
        bob: IRCTestClient = await running.client("bob")
        await alice.join("#c")
        await bob.join("#c")
        await alice.sync()
        await bob.send("QUIT")
        assert (await alice.expect("QUIT")).params == ["Quit"]


def test_the_reason_is_shown_once_connected_long_enough() -> None:
    wait = 300
    # No PING on the way (else the idle wait would end in a ping timeout).
    config = suite_config(name="test.server", db="", anti_spam_exit_message_time=wait,
                          ping_interval=float(DAY))
    with CoreHarness(config) as h:
        alice = h.register("alice")
        h.send_line(alice, "JOIN #c")

        def quit_after(nick: str, seconds: float) -> bytes:
            """What alice sees of ``nick`` quitting ``seconds`` after connecting."""
            conn = h.register(nick, ip="192.0.2.7")
            h.send_line(conn, "JOIN #c")
            h.tick(seconds)
            [line] = h.send_line(conn, f"QUIT :{REASON}")[alice]
            return line.rstrip(b"\r\n").split(b" :", 1)[1]

        assert quit_after("early", wait - 1) == b"Client Quit"
        assert quit_after("late", wait) == f"Quit: {REASON}".encode()
