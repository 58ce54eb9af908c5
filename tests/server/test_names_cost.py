"""An explicit NAMES of a big channel is paid from the host's scan budget by the
members it lists, as WHO of a channel is; a one-line answer and the NAMES a JOIN
sends are free, and operators are not counted."""

from __future__ import annotations

from chat.message import Message
from server.core.handlers.channels import NAMES_MEMBER_COST
from tests.conftest import OPER_NAME, OPER_PASSWORD
from tests.ircclient import IRCTestClient
from tests.server.test_abuse_limits import product_config, started, stop

# Nicks of 28 characters: 13 fit a 353 line, so 16 members take two.
MEMBERS = 16


def long_nick(n: int) -> str:
    return f"member{n:02d}".ljust(28, "x")


async def names(client: IRCTestClient, channels: str) -> list[Message]:
    """What ``NAMES <channels>`` answers, up to its last 366."""
    await client.send(f"NAMES {channels}")
    out: list[Message] = []
    for _ in channels.split(","):
        out += await client.collect_until("366")
    return out


def commands(replies: list[Message]) -> list[str]:
    return [m.command for m in replies]


def listed(replies: list[Message]) -> list[str]:
    return sorted(n.lstrip("@+") for m in replies if m.command == "353"
                  for n in m.params[3].split())


async def test_names_of_a_big_channel_is_paid_by_its_members(
    backend: str, oper_hash: str
) -> None:
    # Two NAMES #big fit the burst, a third does not: earned back at one match every
    # 100 s, so a slow machine changes nothing.
    burst = 2 * MEMBERS * NAMES_MEMBER_COST
    config = product_config(scan_burst=burst, scan_rate=0.01, flood_burst=0, max_per_host=0,
                            throttle_burst=0, opers={OPER_NAME: oper_hash})
    server = await started(backend, config)
    try:
        members = [await server.client(long_nick(n)) for n in range(MEMBERS)]
        for member in members:
            await member.join("#big")
        asker = members[0]
        await asker.join("#small")
        for member in members:
            await member.sync()  # the others' JOINs read
        nicks = sorted(long_nick(n) for n in range(MEMBERS))
        for _ in range(2):
            replies = await names(asker, "#big")
            assert commands(replies) == ["353", "353", "366"]
            assert listed(replies) == nicks
        # Over budget: told to try again, and the end of the list.
        replies = await names(asker, "#big")
        assert commands(replies) == ["263", "366"]
        assert replies[0].params[1] == "NAMES"
        # A one-line answer walks little and is always answered, also after a refused one.
        replies = await names(asker, "#big,#small")
        assert commands(replies) == ["263", "366", "353", "366"]
        assert listed(replies) == [long_nick(0)]
        # The budget is the host's; the NAMES a JOIN sends is not paid from it.
        late = await server.client("latecomer")
        joined = await late.join("#big")
        assert listed(joined) == sorted([*nicks, "latecomer"])
        assert commands(await names(late, "#big")) == ["263", "366"]
        # Operators are not counted.
        await late.send(f"OPER {OPER_NAME} :{OPER_PASSWORD}")
        await late.expect("381")
        assert listed(await names(late, "#big")) == sorted([*nicks, "latecomer"])
    finally:
        await stop(server)
