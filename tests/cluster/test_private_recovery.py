"""Private messages a gap lost, recovered from a real shared store over a real Redis:
a failed read is tried again, and live messages wait for the read under way."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from server.cluster import apply
from server.cluster import bus as bus_module
from tests.cluster.conftest import Cluster
from tests.cluster.test_cluster import connect, no_more_from, register_account
from tests.ircclient import IRCTestClient
from tests.net import eventually


def before_private_reads(
    monkeypatch: pytest.MonkeyPatch, history: Any, before: Callable[[str], Awaitable[None]]
) -> None:
    """``before(read)`` (which may raise, or wait) ahead of each read a node's private
    recoveries make: "conversations" (between accounts) and "transit" (the others)."""
    for name in ("conversations", "transit"):
        real = getattr(history, name)

        async def read(*args: Any, _real: Any = real, _name: str = name) -> Any:
            await before(_name)
            return await _real(*args)

        monkeypatch.setattr(history, name, read)


async def three_users(cluster: Cluster) -> tuple[IRCTestClient, IRCTestClient, IRCTestClient]:
    """alice (logged in) and carol (not) on n1, bob (logged in) on n2, and a message from
    each of them that bob was sent (the recovery's window starts there)."""
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    alice = await connect(p1, "alice", ["echo-message"])
    carol = await connect(p1, "carol", ["echo-message"])
    bob = await connect(p2, "bob")
    for c in (alice, bob):
        await register_account(c)
    await eventually(lambda: getattr(cluster.bus("n1").core.nicks.get("bob"), "account", None)
                     == "bob")
    for sender in (alice, carol):
        await sender.send("PRIVMSG bob :before")
        await sender.expect("PRIVMSG", lambda m: m.params[-1] == "before")
    got = {(await bob.expect("PRIVMSG", timeout=5)).source for _ in range(2)}
    assert {(s or "").split("!")[0] for s in got} == {"alice", "carol"}
    return alice, carol, bob


async def lose_in_a_gap(cluster: Cluster, alice: IRCTestClient, carol: IRCTestClient) -> None:
    """Each sender's message "lost" never reaches n2 as an event: Redis is away."""
    cluster.redis.stop()
    for sender in (alice, carol):
        await sender.send("PRIVMSG bob :lost")
        await sender.expect("PRIVMSG", lambda m: m.params[-1] == "lost")  # the echo: stored
    await asyncio.sleep(0.3)
    cluster.redis.start()


def heard_again(cluster: Cluster) -> bool:
    """Both nodes subscribed again: n1's events reach n2 from now on (those published
    before n2 subscribed were lost too, and recovered with the others)."""
    return all(cluster.bus(n).subscribed.is_set() and cluster.bus(n).redis_ok
               for n in ("n1", "n2"))


def caught_up(cluster: Cluster) -> bool:
    """n2 hears n1 again and has every event of its, and no private recovery of n2's
    holds messages back."""
    n1, n2 = cluster.bus("n1").core.cluster_state, cluster.bus("n2").core.cluster_state
    return heard_again(cluster) and n2.seen_g.get("n1") == n1.g and not n2.recovering_private


async def from_senders(bob: IRCTestClient, count: int) -> list[str]:
    """The next ``count`` private messages to bob, as "sender text"."""
    got: list[str] = []
    while len(got) < count:
        m = await bob.read_message(timeout=10)
        if m.command == "PRIVMSG" and m.params[0] == "bob":
            got.append(f"{(m.source or '').split('!')[0]} {m.params[-1]}")
    return got


async def test_a_private_recovery_whose_store_read_failed_is_tried_again(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The store unavailable when a gap showed: the private messages the gap lost, in a
    conversation (alice to bob) or not (carol to bob), were never delivered (a channel's
    read was tried again, these not). Both are tried again and deliver each one once;
    and not again the live messages that came meanwhile, more of them than the msgids
    remembered per user (here 8): a retry reads only what was sent until the first try."""
    monkeypatch.setattr(bus_module, "RECOVER_RETRY_FIRST", 0.2)
    monkeypatch.setattr(apply, "RECENT_IDS", 8)
    for module in (apply, bus_module):  # one clock for every node here
        monkeypatch.setattr(module, "CLOCK_SKEW_MS", 0)
    caplog.set_level(logging.WARNING, "chat.server.cluster")
    alice, carol, bob = await three_users(cluster)
    down = [True]
    failed = {"conversations": 0, "transit": 0}

    async def failing(read: str) -> None:
        if down[0]:
            failed[read] += 1
            raise sqlite3.OperationalError("disk I/O error")

    before_private_reads(monkeypatch, cluster.bus("n2").history, failing)
    # The recovery's window starts after a heartbeat heard since the messages "before":
    # the 8 msgids remembered, no more, will not cover them (nor would 512, with as many).
    n2 = cluster.bus("n2").core.cluster_state
    heard = n2.heard_ms["n1"]
    await eventually(lambda: n2.heard_ms["n1"] > heard)
    await lose_in_a_gap(cluster, alice, carol)
    await eventually(lambda: min(failed.values()) > 0 and caught_up(cluster), timeout=10)
    for n in range(20):
        for sender in (alice, carol):
            await sender.send(f"PRIVMSG bob :live {n}")
    live = await from_senders(bob, 40)
    assert sorted(live) == sorted(f"{who} live {n}" for n in range(20) for who in ("alice",
                                                                                   "carol"))
    down[0] = False
    assert sorted(await from_senders(bob, 2)) == ["alice lost", "carol lost"]
    for sender in ("alice", "carol"):
        await no_more_from(bob, sender)
    logged = [r.getMessage() for r in caplog.records]
    assert any("private messages of bob from the store failed again" in m for m in logged)
    assert any("private messages to users here from the store failed again" in m
               for m in logged)
    for c in (alice, carol, bob):
        await c.close()


async def test_a_live_private_message_waits_for_the_recovery_under_way(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live private message that came while its recipient's messages were being
    recovered (here: the reads are slow) reached it before the older ones the recovery
    then found. It waits for the read, in a conversation and outside one alike."""
    alice, carol, bob = await three_users(cluster)
    paused = [True]
    started = {"conversations": 0, "transit": 0}

    async def slow(read: str) -> None:
        started[read] += 1
        while paused[0]:
            await asyncio.sleep(0.02)

    before_private_reads(monkeypatch, cluster.bus("n2").history, slow)
    await lose_in_a_gap(cluster, alice, carol)
    await eventually(lambda: min(started.values()) > 0 and heard_again(cluster), timeout=10)
    for sender in (alice, carol):
        await sender.send("PRIVMSG bob :live")
        await sender.expect("PRIVMSG", lambda m: m.params[-1] == "live")
    n1, n2 = cluster.bus("n1").core.cluster_state, cluster.bus("n2").core.cluster_state
    await eventually(lambda: n2.seen_g.get("n1") == n1.g)  # both came to n2 meanwhile
    paused[0] = False
    got = await from_senders(bob, 4)
    for sender in ("alice", "carol"):
        assert [m for m in got if m.startswith(sender)] == [f"{sender} lost", f"{sender} live"]
        await no_more_from(bob, sender)
    for c in (alice, carol, bob):
        await c.close()
