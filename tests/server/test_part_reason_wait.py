"""PART reasons from new connections (solanum's can_send_part and
anti_spam_exit_message_time): a member connected for less than
``--anti-spam-exit-message-time`` seconds leaves without its reason, so that connect,
join and part with an advert says nothing; the channel's operators are exempt, server
operators not (as solanum's), and 0 turns it off. Over real TCP on every backend, and
the window itself with the core's fake clock."""

from __future__ import annotations

from chat.message import Message
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer, serving, suite_config
from tests.fuzz.harness import CoreHarness
from tests.server.helpers import ask

REASON = "buy cheap stuff at spam.example"
DAY = 86400


async def part_seen(running: RunningServer, mode: str = "", oper: bool = False) -> Message:
    """alice's view of bob's ``PART #c :REASON``, alice (the channel's operator) having
    set ``mode`` on #c and bob become a server operator if ``oper``."""
    alice = await running.client("alice")
    bob = await running.client("bob")
    await alice.join("#c")
    await bob.join("#c")
    if mode:
        await ask(alice, f"MODE #c {mode}")
    if oper:
        await ask(bob, f"OPER {OPER_NAME} :{OPER_PASSWORD}")
    await alice.sync()
    await bob.send(f"PART #c :{REASON}")
    return await alice.expect("PART")


async def test_a_new_client_parts_without_its_reason(backend: str) -> None:
    config = suite_config(db="", anti_spam_exit_message_time=DAY)
    async with serving(config, backend) as running:
        assert (await part_seen(running)).params == ["#c"]


async def test_a_voiced_new_client_parts_without_its_reason(backend: str) -> None:
    config = suite_config(db="", anti_spam_exit_message_time=DAY)
    async with serving(config, backend) as running:
        assert (await part_seen(running, "+v bob")).params == ["#c"]


async def test_a_channel_operator_keeps_the_reason(backend: str) -> None:
    config = suite_config(db="", anti_spam_exit_message_time=DAY)
    async with serving(config, backend) as running:
        assert (await part_seen(running, "+o bob")).params == ["#c", REASON]


async def test_a_server_operator_waits_as_anyone(backend: str, oper_hash: str) -> None:
    config = suite_config(db="", anti_spam_exit_message_time=DAY,
                          opers={OPER_NAME: oper_hash})
    async with serving(config, backend) as running:
        assert (await part_seen(running, oper=True)).params == ["#c"]


async def test_zero_always_gives_the_reason(backend: str) -> None:
    async with serving(suite_config(db="", anti_spam_exit_message_time=0), backend) as running:
        assert (await part_seen(running)).params == ["#c", REASON]


def test_the_reason_is_given_once_connected_long_enough() -> None:
    wait = 300
    # No PING on the way (else the idle wait would end in a ping timeout).
    config = suite_config(name="test.server", db="", anti_spam_exit_message_time=wait,
                          ping_interval=float(DAY))
    with CoreHarness(config) as h:
        alice = h.register("alice")
        h.send_line(alice, "JOIN #c")

        def part_after(nick: str, seconds: float) -> bytes:
            """What alice sees of ``nick`` parting ``seconds`` after connecting."""
            conn = h.register(nick, ip="192.0.2.7")
            h.send_line(conn, "JOIN #c")
            h.tick(seconds)
            [line] = h.send_line(conn, f"PART #c :{REASON}")[alice]
            return line.rstrip(b"\r\n")

        assert part_after("early", wait - 1).endswith(b" PART #c")
        assert part_after("late", wait).endswith(f" PART #c :{REASON}".encode())
