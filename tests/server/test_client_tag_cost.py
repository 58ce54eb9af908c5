"""Client-only tags cannot multiply what a message costs, on every backend (fourth
hostile round, item 5): a line pays a flood token per 512 bytes of tags past the first
512, and a history row keeps at most 512 bytes of them."""

from __future__ import annotations

import pytest

from chat.message import Message
from server.core.flood import line_cost
from tests.conftest import RunningServer, suite_config
from tests.server.test_multiline import BASE

BIG = "A" * 3000  # a client tag's value: far past the 512 bytes a line carries free
HISTORY = ["draft/chathistory", "batch", "message-tags", "server-time"]


async def history_of(
    server: RunningServer, nick: str, target: str, caps: tuple[str, ...] = ()
) -> list[Message]:
    """The rows CHATHISTORY LATEST gives a client with message-tags, not multiline."""
    reader = await server.client(nick, caps=[*HISTORY, *caps])
    await reader.send(f"CHATHISTORY LATEST {target} * 10")
    await reader.expect("BATCH")
    return [m for m in await reader.collect_until("BATCH") if m.command != "BATCH"]



@pytest.mark.parametrize(
    ("line", "cost"),
    [
        (b"@label=x;+draft/reply=abc PRIVMSG #a :hi", 1.0),
        (b"@+x=" + b"A" * 509 + b" PRIVMSG #a :hi", 1.0),  # 512 bytes of tags: free
        (b"@+x=" + b"A" * 510 + b" PRIVMSG #a :hi", 2.0),
        (b"@+x=" + b"A" * 2000 + b" TAGMSG #a", 4.0),
        (b"@+x=" + b"A" * 4090 + b" PRIVMSG #a :hi", 6.0),  # 8, capped at the burst
        (b"@+x=" + b"A" * 600 + b" JOIN #a,#b", 3.0),  # the channels and the tags
        (b"@+x=" + b"A" * 600 + b" :src JOIN #a", 2.0),
    ],
)
def test_a_line_pays_for_its_tags(line: bytes, cost: float) -> None:
    assert line_cost(line, 6.0) == cost


@pytest.mark.parametrize(
    "server_config", [suite_config(flood_burst=6, flood_rate=0.5, flood_max_queue=10)],
    ids=["flood-control"],
)
async def test_a_line_of_big_tags_costs_more_tokens(server: RunningServer) -> None:
    """NICK and USER leave 4 of the 6 tokens; 2,000 bytes of tags cost 3 more than the
    line's own: the line after them waits for a token (0.5 a second), behind bob's PING."""
    bob = await server.client("bob")
    alice = await server.client("alice")
    await alice.send_raw(
        f"@+x={'A' * 2000} PRIVMSG bob :tagged\r\nPRIVMSG bob :after\r\n".encode()
    )
    assert (await bob.expect("PRIVMSG")).params == ["bob", "tagged"]
    assert [m for m in await bob.sync() if m.command == "PRIVMSG"] == []
    assert (await bob.expect("PRIVMSG")).params == ["bob", "after"]  # delayed, not dropped


async def test_history_keeps_512_bytes_of_client_tags(server: RunningServer) -> None:
    alice = await server.client("alice", caps=BASE)
    bob = await server.client("bob", caps=BASE)
    for c in (alice, bob):
        await c.join("#test")
    for c in (alice, bob):
        await c.sync()
    await alice.send(f"@+x={BIG};+draft/reply=abc PRIVMSG #test :hi")
    live = await bob.expect("PRIVMSG")
    assert live.tags["+x"] == BIG and live.tags["+draft/reply"] == "abc"  # relayed whole
    await alice.send(f"@+x={BIG} TAGMSG #test")  # nothing small to keep: not stored
    assert (await bob.expect("TAGMSG")).tags["+x"] == BIG
    await alice.send("@+draft/react=ok TAGMSG #test")
    await bob.expect("TAGMSG")
    # draft/event-playback: TAGMSGs are replayed too.
    rows = await history_of(server, "reader", "#test", ("draft/event-playback",))
    got = [m for m in rows if m.command in ("PRIVMSG", "TAGMSG")]
    assert [(m.command, sorted(k for k in m.tags if k[0] == "+")) for m in got] == [
        ("PRIVMSG", ["+draft/reply"]), ("TAGMSG", ["+draft/react"]),
    ]
