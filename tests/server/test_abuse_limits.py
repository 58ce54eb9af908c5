"""Flood control (fakelag, Excess Flood), connection limits, cloaks, OPER attempts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from server.config import ServerConfig
from server.passwords import hash_password
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer, start_server, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import too_many_failures


def product_config(**overrides: object) -> ServerConfig:
    """The product defaults (limits on), with the suite's name and ``overrides``."""
    return replace(ServerConfig(name="test.server", network="TestNet", db=""), **overrides)


async def started(backend: str, config: ServerConfig) -> RunningServer:
    return start_server(config, backend, suite_defaults=False)


async def stop(server: RunningServer) -> None:
    for c in server.clients:
        await c.close()
    server.handle.stop()


async def test_lines_beyond_the_burst_are_delayed_not_dropped(backend: str) -> None:
    server = await started(
        backend, product_config(flood_burst=5, flood_rate=20.0, flood_max_queue=100)
    )
    try:
        alice = await server.client("alice")
        bob = await server.client("bob")
        await alice.join("#f")
        await bob.join("#f")
        await alice.sync()
        await bob.sync()
        # 30 lines at once: 5 pass, 25 wait for tokens; all arrive, in order.
        await alice.send_raw(b"".join(f"PRIVMSG #f :{n}\r\n".encode() for n in range(30)))
        got = [int((await bob.expect("PRIVMSG", timeout=10)).params[1]) for _ in range(30)]
        assert got == list(range(30))
    finally:
        await stop(server)


async def test_flooding_past_the_hard_limit_is_excess_flood(backend: str) -> None:
    server = await started(
        backend, product_config(flood_burst=5, flood_rate=1.0, flood_max_queue=20)
    )
    try:
        alice = await server.client("alice")
        watcher = await server.client("watcher")
        await alice.join("#f")
        await watcher.join("#f")
        await alice.send_raw(b"".join(f"PRIVMSG #f :{n}\r\n".encode() for n in range(200)))
        tail = await alice.wait_closed(timeout=10)
        assert tail[-1].command == "ERROR"
        assert "Excess Flood" in tail[-1].params[0]
        quit_msg = await watcher.expect("QUIT")
        assert quit_msg.params == ["Excess Flood"]
        # It never got past its burst plus the queue bound.
        texts = []
        for m in await watcher.sync():
            if m.command == "PRIVMSG":
                texts.append(m.params[1])
        assert len(texts) <= 5 + 20
    finally:
        await stop(server)


async def test_operators_are_exempt_from_fakelag(backend: str) -> None:
    cfg = product_config(
        flood_burst=3, flood_rate=0.5, flood_max_queue=5, opers={"root": hash_password("pw")}
    )
    server = await started(backend, cfg)
    try:
        op = await server.client("op")
        bob = await server.client("bob")
        await op.send("OPER root pw")
        await op.expect("381")
        await op.join("#f")
        await bob.join("#f")
        await op.sync()
        await op.send_raw(b"".join(f"PRIVMSG #f :{n}\r\n".encode() for n in range(50)))
        got = [int((await bob.expect("PRIVMSG")).params[1]) for _ in range(50)]
        assert got == list(range(50))
    finally:
        await stop(server)


async def test_per_host_limit_refuses_with_error(backend: str) -> None:
    server = await started(backend, product_config(max_per_host=3, throttle_burst=0))
    try:
        keep = [await server.client(f"u{i}") for i in range(3)]
        extra = await IRCTestClient.open(server.port)
        server.clients.append(extra)
        tail = await extra.wait_closed()
        assert [m.command for m in tail] == ["ERROR"]
        assert "Too many connections from your host" in tail[0].params[0]
        # Closing one frees a slot.
        await keep[0].send("QUIT")
        await keep[0].wait_closed()
        again = await server.client("again")
        await again.sync()
    finally:
        await stop(server)


async def test_connect_throttle(backend: str) -> None:
    server = await started(
        backend, product_config(max_per_host=0, throttle_burst=3, throttle_rate=0.01)
    )
    try:
        for i in range(3):
            await server.client(f"u{i}")
        extra = await IRCTestClient.open(server.port)
        server.clients.append(extra)
        tail = await extra.wait_closed()
        assert "Connecting too fast" in tail[-1].params[0]
    finally:
        await stop(server)


async def test_global_cap_says_server_is_full(backend: str) -> None:
    server = await started(
        backend, product_config(max_clients=2, max_per_host=0, throttle_burst=0)
    )
    try:
        await server.client("a")
        await server.client("b")
        extra = await IRCTestClient.open(server.port)
        server.clients.append(extra)
        tail = await extra.wait_closed()
        assert "Server is full" in tail[-1].params[0]
    finally:
        await stop(server)


async def test_hosts_are_cloaked_consistently_and_real_ip_only_for_self(backend: str) -> None:
    server = await started(
        backend, product_config(cloak_key="k1", max_per_host=0, throttle_burst=0)
    )
    try:
        alice = await server.client("alice")
        bob = await server.client("bob")
        await alice.join("#c")
        await bob.join("#c")
        join = await alice.expect("JOIN", lambda m: (m.source or "").startswith("bob!"))
        host = (join.source or "").split("@", 1)[1]
        assert "127.0.0.1" not in (join.source or "")
        assert host.endswith(".ip")
        await alice.send("WHOIS bob")
        whois = await alice.collect_until("318")
        assert all("127.0.0.1" not in " ".join(m.params) for m in whois)
        assert next(m for m in whois if m.command == "311").params[3] == host
        await bob.send("WHOIS bob")
        own = await bob.collect_until("318")
        assert any("127.0.0.1" in m.params[-1] for m in own if m.command == "378")
    finally:
        await stop(server)


async def test_without_a_cloak_key_cloaks_outlive_a_restart(backend: str, tmp_path: Path) -> None:
    """The key is kept in the database: an address has the same cloak after a restart
    (and the bans on it still match); with no database it is random per start."""

    async def cloak_once(db: str) -> str:
        config = replace(product_config(max_per_host=0, throttle_burst=0), db=db)
        server = await started(backend, config)
        try:
            c = await server.client("carl")
            await c.send("WHOIS carl")
            whois = await c.collect_until("318")
            return next(m for m in whois if m.command == "311").params[3]
        finally:
            await stop(server)

    db = str(tmp_path / "chat.db")
    first = await cloak_once(db)
    assert first.endswith(".ip") and "127.0.0.1" not in first
    assert await cloak_once(db) == first
    assert await cloak_once("") != await cloak_once("")


async def test_failed_oper_attempts_are_limited(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = await started(
        backend, suite_config(db="", opers={"root": hash_password("right")}, oper_attempts=2)
    )
    try:
        c = await server.client("mallory")
        for _ in range(2):
            await c.send("OPER root wrong")
            assert (await c.expect("464")).params[-1] == "Password incorrect"
        # Third attempt, even with the right password, is refused within the window,
        # saying why: the password was not checked.
        await c.send("OPER root right")
        msgs = await c.sync()
        assert [m.command for m in msgs] == ["464"]
        assert too_many_failures(msgs[0].params[-1]), msgs[0]
        assert "OPER attempt as 'root' from 127.0.0.1 (mallory) refused: too many failures" \
            in caplog.text
    finally:
        await stop(server)


async def test_refused_connections_do_not_leak_slots(backend: str) -> None:
    server = await started(backend, product_config(max_per_host=2, throttle_burst=0))
    try:
        for round_ in range(5):
            members = [await server.client(f"m{round_}x{i}") for i in range(2)]
            for _ in range(2):
                extra = await IRCTestClient.open(server.port)
                tail = await extra.wait_closed()
                assert "Too many connections" in tail[-1].params[0]
                await extra.close()
            for m in members:
                await m.send("QUIT")
                await m.wait_closed()
        # Refusals and quits gave every slot back: two clients fit again.
        for i in range(2):
            await (await server.client(f"last{i}")).sync()
    finally:
        await stop(server)


async def test_list_and_who_searches_are_paced_per_host(backend: str, oper_hash: str) -> None:
    # 130 matches at once, earned back at one every 100 s (so a slow machine changes
    # nothing): two LISTs of 5 channels with two masks (3 matches a channel, and 10 a
    # piece to compile: 5 pieces) use it up.
    cfg = product_config(scan_burst=130, scan_rate=0.01, flood_burst=0,
                         opers={OPER_NAME: oper_hash})
    server = await started(backend, cfg)
    try:
        alice = await server.client("alice")
        for n in range(1, 6):
            await alice.join(f"#c{n}")
        await alice.sync()

        async def listed(client: IRCTestClient, query: str) -> list[str] | None:
            """The channels LIST names, or None when it was told to try again."""
            await client.send(f"LIST {query}")
            replies = await client.collect_until("323")
            if any(m.command == "263" for m in replies):
                assert [m.params[1] for m in replies if m.command == "263"] == ["LIST"]
                return None
            return sorted(m.params[1] for m in replies if m.command == "322")

        expected = ["#c1", "#c2", "#c3", "#c4"]
        assert await listed(alice, "*c*,!*5") == expected
        assert await listed(alice, "*c*,!*5") == expected
        assert await listed(alice, "*c*,!*5") is None
        # The budget is the host's: another connection from it waits too, for WHO as well.
        bob = await server.client("bob")
        await bob.send("WHO *a*")
        replies = await bob.collect_until("315")
        assert [m.command for m in replies] == ["263", "315"]
        # Channel names are paid for, a match each, but one name alone is always answered.
        assert await listed(bob, "#c1,#c2") is None
        assert await listed(bob, "#c1") == ["#c1"]
        # Operators are not counted.
        await alice.send(f"OPER {OPER_NAME} :{OPER_PASSWORD}")
        await alice.expect("381")
        for _ in range(3):
            assert await listed(alice, "*c*,!*5") == expected
        await alice.send("WHO *ob*")
        replies = await alice.collect_until("315")
        assert sorted(m.params[5] for m in replies if m.command == "352") == ["bob"]
    finally:
        await stop(server)


async def test_list_takes_four_masks_each_way(backend: str) -> None:
    # Every mask is matched against every channel: 125 fit a line. The first four of
    # each kind count, as solanum keeps one.
    server = await started(backend, product_config(flood_burst=0))
    try:
        alice = await server.client("alice")
        for name in ("#a", "#b", "#c", "#d", "#e", "#f"):
            await alice.join(name)
        await alice.sync()
        await alice.send("LIST *a,*b,*c,*d,*e,*f")
        replies = await alice.collect_until("323")
        assert sorted(m.params[1] for m in replies if m.command == "322") == [
            "#a", "#b", "#c", "#d"
        ]
        await alice.send("LIST !*a,!*b,!*c,!*d,!*e")
        replies = await alice.collect_until("323")
        assert sorted(m.params[1] for m in replies if m.command == "322") == ["#e", "#f"]
    finally:
        await stop(server)


async def test_searches_share_the_budget_and_fail_past_it(backend: str, tmp_path: Path) -> None:
    # A SEARCH that matches nothing reads every row of every target: counted as
    # history_max_rows per target (2 channels: 2,000 rows here), from the same budget.
    cfg = product_config(scan_burst=4_000, scan_rate=0.01, flood_burst=0,
                         history_max_rows=1_000, db=str(tmp_path / "chat.db"))
    server = await started(backend, cfg)
    try:
        # draft/chathistory: no join playback, which the same budget pays for.
        alice = await server.client("alice", ["soju.im/search", "batch", "draft/chathistory"])
        await alice.join("#a")
        await alice.join("#b")
        await alice.send("PRIVMSG #a :hello there")
        await alice.sync()
        for _ in range(2):
            await alice.send("SEARCH text=hello")
            replies = await alice.collect_until("BATCH", "FAIL")
            assert replies[-1].command == "BATCH"
            await alice.expect("BATCH")  # its end
        await alice.send("SEARCH text=hello")
        fail = await alice.expect("FAIL")
        assert fail.params[:3] == ["SEARCH", "TEMPORARILY_UNAVAILABLE", "*"], fail
        # A LIST over the channels is out of the same budget.
        await alice.send("LIST *")
        replies = await alice.collect_until("323")
        assert [m.command for m in replies] == ["263", "323"]
    finally:
        await stop(server)
