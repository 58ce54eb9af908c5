"""The scan budget pays for WHO of a channel (by the members it lists) and for
compiling LIST's masks before they are compiled (hostile round 4, items 3 and 7)."""

from __future__ import annotations

from server.core.handlers.queries import WHO_LINE_COST
from server.core.listing import PIECE_COMPILE_COST
from tests.ircclient import IRCTestClient
from tests.server.test_abuse_limits import product_config, started, stop

MEMBERS = 5


async def who(client: IRCTestClient, query: str) -> list[str] | None:
    """The nicks a WHO lists, or None when it was told to try again."""
    await client.send(f"WHO {query}")
    replies = await client.collect_until("315")
    if any(m.command == "263" for m in replies):
        assert [m.command for m in replies] == ["263", "315"]
        return None
    return sorted(m.params[5] for m in replies if m.command == "352")


async def test_who_of_a_channel_is_paid_by_its_members(backend: str) -> None:
    # Two WHO #big of 5 members fit the burst, a third does not: earned back at one
    # match every 100 s, so a slow machine changes nothing.
    burst = 2 * MEMBERS * WHO_LINE_COST
    server = await started(backend, product_config(scan_burst=burst, scan_rate=0.01,
                                                   flood_burst=0, max_per_host=0))
    try:
        members = [await server.client(f"m{n}") for n in range(MEMBERS)]
        for member in members:
            await member.join("#big")
        for member in members:
            await member.sync()  # the others' JOINs read
        asker = members[0]
        nicks = sorted(m.nick for m in members if m.nick)
        assert await who(asker, "#big") == nicks
        assert await who(asker, "#big") == nicks
        assert await who(asker, "#big") is None
        # The budget is the host's: WHOX from another connection of it waits too.
        await members[1].send("WHO #big %tnf,42")
        replies = await members[1].collect_until("315")
        assert [m.command for m in replies] == ["263", "315"]
        # One line (a nick) walks nothing and is always answered.
        assert await who(asker, "m1") == ["m1"]
    finally:
        await stop(server)


async def test_list_pays_for_compiling_its_masks_first(backend: str) -> None:
    # Eight masks of 22 pieces over one channel: their matches cost 9, their compiling
    # 8 * 22 * PIECE_COMPILE_COST. A burst of two such LISTs' matches alone would have
    # answered many; it pays for one (a full bucket pays for anything), then 263.
    mask = "*" + "a*" * 20  # 20 pieces between the stars, the empty head and tail
    masks = ",".join([mask] * 4 + ["!" + mask] * 4)
    burst = 8 * 22 * PIECE_COMPILE_COST  # just under one LIST's cost
    server = await started(backend, product_config(scan_burst=burst, scan_rate=0.01,
                                                   flood_burst=0))
    try:
        alice = await server.client("alice")
        await alice.join("#a")
        await alice.send(f"LIST {masks}")
        first = await alice.collect_until("323")
        assert [m.command for m in first] == ["321", "323"]  # none matches, none left out
        for query in (masks, f"#a,{masks}"):  # naming channels does not make it free
            await alice.send(f"LIST {query}")
            replies = await alice.collect_until("323")
            assert [m.command for m in replies] == ["263", "323"], query
        # A list of channel names alone walks nothing: always answered.
        await alice.send("LIST #a")
        replies = await alice.collect_until("323")
        assert [m.params[1] for m in replies if m.command == "322"] == ["#a"]
    finally:
        await stop(server)
