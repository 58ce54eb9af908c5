"""A node's snapshot in Redis: written when what it holds changed, else only kept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio as aioredis

from server.cluster.apply import encoded_snapshot, snapshot
from server.cluster.events import CHANNEL, NODE_KEY, decode
from server.core import ServerCore
from server.core.state import Ban, Channel
from tests.cluster.conftest import Cluster
from tests.cluster.test_apply import make_core, register
from tests.cluster.test_cluster import connect
from tests.net import eventually


def stored(r: redis.Redis, node: str) -> dict[str, Any]:
    raw = r.get(NODE_KEY + node)
    assert raw is not None
    return dict(json.loads(raw))


def bans(r: redis.Redis, node: str, channel: str) -> list[str]:
    chans = stored(r, node)["chans"]
    return [mask for mask, _setter, _time in chans[channel]["bans"]] if channel in chans else []


async def heartbeats(url: str, node: str, span_ms: int) -> list[dict[str, Any]]:
    """``node``'s heartbeats from now on, until they span ``span_ms`` of its clock."""
    client = aioredis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(CHANNEL)
    seen: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(span_ms / 1000 + 10):
            while len(seen) < 2 or seen[-1]["w"] - seen[0]["w"] < span_ms:
                message = await pubsub.get_message(timeout=1.0)
                event = decode(message["data"]) if message is not None else {}
                if event.get("k") == "hb" and event["n"] == node:
                    seen.append(event)
    finally:
        await pubsub.aclose()
        await client.aclose()
    return seen


async def test_an_unchanged_snapshot_is_kept_not_written_again(cluster: Cluster) -> None:
    # Written every heartbeat, changed or not, one address's channels with full ban
    # lists made 8 MB of JSON a second on the loop.
    port = cluster.start("n1", cluster_dead_after=0.5)  # the snapshot's TTL: 1 s
    r = redis.Redis(port=cluster.redis.port)
    try:
        alice = await connect(port, "alice")
        await alice.join("#c")
        await alice.send("MODE #c +b one!*@*")
        await eventually(lambda: bans(r, "n1", "#c") == ["one!*@*"], "the ban written")
        written = r.get(NODE_KEY + "n1")
        beats = await heartbeats(cluster.redis.url, "n1", 3000)  # three times its TTL
        assert all(beat["g"] == stored(r, "n1")["g"] for beat in beats)
        assert r.get(NODE_KEY + "n1") == written  # kept (its TTL renewed), not rewritten
        assert 0 < r.pttl(NODE_KEY + "n1") <= 1000
        # A change is written at the next heartbeat.
        await alice.send("MODE #c +b two!*@*")
        await eventually(lambda: bans(r, "n1", "#c") == ["one!*@*", "two!*@*"])
        await alice.close()
    finally:
        r.close()


async def test_a_change_another_node_makes_here_is_written(cluster: Cluster) -> None:
    """n1's own counter does not move when bob, on n2, bans or sets the topic in a
    channel of alice's: its snapshot must still say so (a node that starts reads it)."""
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    r = redis.Redis(port=cluster.redis.port)
    try:
        alice = await connect(p1, "alice")
        bob = await connect(p2, "bob")
        await alice.join("#c")
        await eventually(lambda: "#c" in stored(r, "n1")["chans"])
        await bob.join("#c")
        await alice.expect("JOIN", lambda m: (m.source or "").startswith("bob!"))
        await alice.send("MODE #c +o bob")
        await bob.expect("MODE", lambda m: m.params[1:] == ["+o", "bob"])
        state = cluster.bus("n1").core.cluster_state
        g = state.g
        await eventually(lambda: stored(r, "n1")["g"] == g, "n1 wrote its +o")
        await bob.send("MODE #c +b spam!*@*")
        await bob.send("TOPIC #c :set from n2")
        await alice.expect("TOPIC")
        await eventually(lambda: bans(r, "n1", "#c") == ["spam!*@*"], "n1 wrote the ban")
        assert stored(r, "n1")["chans"]["#c"]["topic"] == "set from n2"
        assert state.g == g  # (n1 published nothing of it)
        for c in (alice, bob):
            await c.close()
    finally:
        r.close()


def _with_channel() -> tuple[ServerCore, Channel]:
    core = make_core("a")
    register(core, 1, "alice")
    register(core, 2, "bob")
    core.data_received(1, b"JOIN #c\r\nJOIN #d\r\nMODE #c +b one!*@*\r\n")
    core.data_received(2, b"JOIN #c\r\n")
    core.take_effects()
    return core, core.channels["#c"]


def _as_written(core: ServerCore) -> dict[str, Any]:
    return dict(json.loads(encoded_snapshot(core).data(1_000_000)))


def test_the_encoded_snapshot_is_the_snapshot_after_any_change() -> None:
    """Each channel's record is encoded again only when it changed: whatever of it
    changes (every field of ``channel_record``, a ban swapped for one as long)."""
    core, channel = _with_channel()
    changes: list[Callable[[], object]] = [
        lambda: setattr(channel, "name", "#C"),
        lambda: setattr(channel, "created", channel.created + 1),
        lambda: setattr(channel, "topic", "new"),
        lambda: setattr(channel, "topic_setter", "bob"),
        lambda: setattr(channel, "topic_time", 5),
        lambda: channel.modes.add("m"),
        lambda: setattr(channel, "key", "k"),
        lambda: setattr(channel, "limit", 9),
        lambda: setattr(channel, "origin", "b"),
        lambda: channel.bans.__setitem__(  # another mask, as long
            0, Ban("two!*@*", channel.bans[0].setter, channel.bans[0].set_at)),
        lambda: channel.excepts.append(Ban("e!*@*", "x", 1)),
        lambda: channel.invex.append(Ban("i!*@*", "x", 1)),
        lambda: channel.quiets.append(Ban("q!*@*", "x", 1)),
    ]
    before = encoded_snapshot(core)
    for change in changes:
        change()
        after = encoded_snapshot(core)
        assert after != before
        assert _as_written(core) == {**snapshot(core), "w": 1_000_000}
        before = after


def test_an_unchanged_channel_is_not_encoded_again() -> None:
    core, channel = _with_channel()
    first = encoded_snapshot(core)
    channel.topic = "only #c changed"
    second = encoded_snapshot(core)
    assert first != second
    kept = [one for one in first.chans if any(one is two for two in second.chans)]
    assert kept == [one for one in first.chans if one.startswith(b'"#d"')]
    assert encoded_snapshot(core) == second  # nothing changed: equal to what was written
