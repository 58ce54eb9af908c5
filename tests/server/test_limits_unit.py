"""The pure pieces behind the abuse limits, with a clock we control."""

from __future__ import annotations

import logging

import pytest

from server.config import ServerConfig
from server.core.cloak import cloak_host
from server.core.connlimits import ConnectionLimits, HostRate, host_key
from server.core.core import ServerCore
from server.core.flood import FloodGate
from server.core.targets import TargetGate


def test_flood_gate_passes_the_burst_then_queues_in_order() -> None:
    gate = FloodGate(burst=3, rate=2.0, now=0.0)
    admitted = [gate.admit(f"l{i}".encode(), 0.0) for i in range(6)]
    assert admitted == [True, True, True, False, False, False]
    assert gate.release(0.0) == []
    assert gate.release(1.0) == [b"l3", b"l4"]  # 2 tokens per second
    # A new line while others wait queues behind them, even with tokens available.
    assert gate.admit(b"l6", 10.0) is False
    assert gate.release(10.0) == [b"l5", b"l6"]
    assert gate.tokens <= 3.0


def test_flood_gate_refills_up_to_the_burst_only() -> None:
    gate = FloodGate(burst=2, rate=1.0, now=0.0)
    assert gate.admit(b"a", 0.0) and gate.admit(b"b", 0.0)
    assert not gate.admit(b"c", 0.0)
    assert gate.release(100.0) == [b"c"]
    assert gate.tokens == 2.0


def test_host_key_groups_ipv6_by_64_and_keeps_ipv4() -> None:
    assert host_key("192.0.2.7") == "192.0.2.7"
    assert host_key("2001:db8:1:2:aaaa::1") == host_key("2001:db8:1:2:bbbb::9")
    assert host_key("2001:db8:1:2::1") != host_key("2001:db8:1:3::1")
    assert host_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert host_key("not-an-ip") == "not-an-ip"


def test_connection_limits_per_host_global_and_throttle() -> None:
    limits = ConnectionLimits(max_clients=5, max_per_host=2, throttle_burst=3, throttle_rate=1.0)
    assert limits.admit("a", total=0, now=0.0) is None
    limits.opened("a")
    assert limits.admit("a", total=1, now=0.0) is None
    limits.opened("a")
    assert limits.admit("a", total=2, now=0.0) == "Too many connections from your host"
    limits.closed("a")
    assert limits.admit("a", total=1, now=0.0) is None  # third connect of the burst
    assert limits.admit("a", total=1, now=0.0) == "Connecting too fast; try again later"
    assert limits.admit("a", total=1, now=1.0) is None  # one token back after a second
    assert limits.admit("b", total=5, now=1.0) == "Server is full"
    limits.expire(100.0)
    assert limits.throttle._buckets == {}


def test_host_rate_is_a_bucket_per_host_and_off_at_zero() -> None:
    rate = HostRate(burst=2, rate=0.5)
    assert [rate.take("a", 0.0) for _ in range(3)] == [True, True, False]
    assert rate.take("b", 0.0)  # another host has its own bucket
    assert not rate.take("a", 1.0)  # half a token back
    assert rate.take("a", 2.0)
    rate.expire(10.0)
    assert rate._buckets == {}
    off = HostRate(burst=0, rate=0.5)
    assert all(off.take("a", 0.0) for _ in range(10))


def test_host_rate_takes_a_cost_and_a_full_bucket_pays_for_anything() -> None:
    rate = HostRate(burst=100, rate=10.0)
    assert rate.take("a", 0.0, 60) and not rate.take("a", 0.0, 60)  # 40 left
    assert rate.take("a", 2.0, 60)  # 40 + 20 back
    assert rate.take("b", 0.0, 10_000)  # more than the burst: the whole bucket
    assert not rate.take("b", 0.0, 1)
    assert rate.wait("b", 0.05) == pytest.approx(0.05)  # half a token back: 0.05 s more
    assert rate.wait("b", 0.1) == 0.0 and rate.wait("new", 0.0) == 0.0


def test_host_rate_gives_back_at_most_a_full_bucket() -> None:
    rate = HostRate(burst=2, rate=0.5)
    assert rate.take("a", 0.0) and rate.take("a", 0.0)
    rate.give("a", 0.0)  # a check that passed: its token comes back
    assert rate.take("a", 0.0) and not rate.take("a", 0.0)
    rate.give("a", 0.0)
    rate.give("a", 0.0)
    rate.give("a", 0.0)  # never more than the burst
    assert [rate.take("a", 0.0) for _ in range(3)] == [True, True, False]
    rate.give("new", 0.0)  # nothing was spent: nothing to give back
    assert rate.wait("new", 0.0) == 0.0 and "new" not in rate._buckets
    off = HostRate(burst=0, rate=0.5)
    off.give("a", 0.0)
    assert off._buckets == {} and off.full("a", 0.0)


def test_host_rate_is_full_until_spent_from_and_again_once_refilled() -> None:
    rate = HostRate(burst=2, rate=0.5)
    assert rate.full("a", 0.0)
    assert rate.take("a", 0.0) and not rate.full("a", 0.0)
    assert not rate.full("a", 1.0) and rate.full("a", 2.0)  # a token back every 2 s


def test_cloaks_are_stable_keyed_and_hide_the_address() -> None:
    a = cloak_host("192.0.2.7", b"key")
    assert a == cloak_host("192.0.2.7", b"key")
    assert a != cloak_host("192.0.2.7", b"other")
    assert a != cloak_host("192.0.2.8", b"key")
    assert "192" not in a and a.endswith(".ip")
    assert cloak_host("2001:db8::1", b"key").endswith(".ip6")


def test_target_gate_refills_one_new_target_at_a_time() -> None:
    gate = TargetGate(limit=2, refill=10.0, now=0.0)
    assert gate.allow("a", 0.0) and gate.allow("b", 0.0)
    assert not gate.allow("c", 1.0)
    assert gate.allow("a", 1.0)  # known: free
    assert gate.allow("c", 11.0)  # one token back after 10 s
    assert not gate.allow("d", 12.0)
    # Only the last `limit` nicks stay known: "b" has dropped out.
    assert list(gate.recent) == ["a", "c"]
    gate.remember("e")  # someone wrote to us: answering is free
    assert gate.allow("e", 12.0) and list(gate.recent) == ["c", "e"]


def test_refused_connections_are_logged_twenty_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    # A connect flood is refused as fast as it connects: a line each would be
    # gigabytes of log a day. Twenty a minute, then one line with the rest.
    now = [1000.0]
    core = ServerCore(
        ServerConfig(name="t.server", db="", max_per_host=1, throttle_burst=0), lambda: now[0]
    )
    core.connect(1, "192.0.2.1", 1000)
    with caplog.at_level(logging.INFO, logger="chat.server.core"):
        for conn_id in range(2, 32):
            assert core.connect(conn_id, "192.0.2.1", 1000).closing is not None
        refused = [r for r in caplog.records if "refused connection" in r.getMessage()]
        assert len(refused) == 20
        assert core.stats.refused == {"Too many connections from your host": 30}
        now[0] += 61
        core.tick()
    assert "10 more connections refused in that minute (not logged)" in caplog.text
