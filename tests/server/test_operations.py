"""Operations: Prometheus metrics, health, JSON logs, REHASH and SIGHUP reloads."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from server.passwords import hash_password
from tests.conftest import RunningServer, start_server, suite_config
from tests.history.conftest import RedisServer, redis_server  # noqa: F401
from tests.ircclient import IRCTestClient
from tests.net import free_port, wait_listening


def scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sample(text: str, name: str, labels: str = "") -> float:
    """The value of one sample line, e.g. sample(t, "chat_messages_in_total", 'command="X"')."""
    key = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {key}")


@pytest.fixture
async def metered(backend: str, tmp_path: Path) -> Iterator[tuple[RunningServer, int]]:
    port = free_port()
    server = start_server(
        suite_config(metrics_port=port), backend, db=str(tmp_path / "history.db")
    )
    try:
        yield server, port
    finally:
        for c in server.clients:
            await c.close()
        server.handle.stop()


async def test_metrics_count_known_traffic_exactly(
    metered: tuple[RunningServer, int],
) -> None:
    server, port = metered
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#m")
    await bob.join("#m")
    for n in range(3):
        await alice.send(f"PRIVMSG #m :secret {n}")
    for _ in range(3):
        await bob.expect("PRIVMSG")
    await alice.sync()
    status, text = scrape(port)
    assert status == 200
    assert sample(text, "chat_connections") == 2
    assert sample(text, "chat_connections_opened_total") == 2
    assert sample(text, "chat_registrations_total") == 2
    assert sample(text, "chat_messages_in_total", 'command="PRIVMSG"') == 3
    assert sample(text, "chat_messages_in_total", 'command="JOIN"') == 2
    assert sample(text, "chat_messages_out_total", 'command="PRIVMSG"') == 3
    assert sample(text, "chat_messages_out_total", 'command="JOIN"') == 2
    # JOINs reach 1 then 2 members; each PRIVMSG reaches bob only.
    assert sample(text, "chat_deliveries_total") == 1 + 2 + 3
    assert sample(text, "chat_history_writes_total") == 3 + 2  # and the JOINs (events)
    assert sample(text, "chat_sendq_disconnects_total") == 0
    assert sample(text, "chat_loop_lag_seconds") >= 0
    assert scrape(port, "/healthz") == (200, "ok\n")
    assert scrape(port, "/nope")[0] == 404


async def test_refusals_are_counted_by_reason(backend: str, tmp_path: Path) -> None:
    port = free_port()
    cfg = replace(suite_config(metrics_port=port, db=""), max_per_host=1)
    server = start_server(cfg, backend, suite_defaults=False)
    try:
        await server.client("one")
        extra = await IRCTestClient.open(server.port)
        await extra.wait_closed()
        await extra.close()
        _, text = scrape(port)
        assert sample(
            text, "chat_connections_refused_total", 'reason="Too many connections from your host"'
        ) == 1
    finally:
        for c in server.clients:
            await c.close()
        server.handle.stop()


# ---------------------------------------------------------------------- real process


class Proc:
    def __init__(self, tmp: Path, *args: str) -> None:
        self.port = free_port()
        self.log_path = tmp / "server.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "--port", str(self.port), "--db", "",
             "--throttle-burst", "0", "--anti-spam-exit-message-time", "0", *args],
            stdout=subprocess.DEVNULL, stderr=self.log,
        )
        wait_listening(self.port, self.proc)

    def lines(self) -> list[str]:
        return self.log_path.read_text().splitlines()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(15)
        self.log.close()
        return code


async def test_json_logs_have_one_line_per_connection_and_no_message_text(tmp_path: Path) -> None:
    p = Proc(tmp_path, "--log-format", "json")
    try:
        c = await IRCTestClient.open(p.port)
        await c.register("alice")
        await c.join("#x")
        await c.send("PRIVMSG #x :the-private-words")
        await c.send("QUIT :bye")
        await c.wait_closed()
    finally:
        assert p.stop() == 0
    records = [json.loads(line) for line in p.lines()]
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    # One open and one close line per connection (the start-up probe is one too).
    opens = [r["conn"] for r in records if r.get("event") == "open"]
    closes = [r["conn"] for r in records if r.get("event") == "close"]
    assert sorted(opens) == sorted(closes) and len(set(opens)) == len(opens) == 2
    assert any("Quit: bye" in r["message"] for r in records if r.get("event") == "close")
    assert not any("the-private-words" in json.dumps(r) for r in records)


def test_check_probe_exit_codes(tmp_path: Path) -> None:
    p = Proc(tmp_path)
    try:
        ok = subprocess.run(
            [sys.executable, "-m", "server", "--check", "--port", str(p.port)],
            capture_output=True, text=True, timeout=30,
        )
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "healthy" in ok.stdout
    finally:
        p.stop()
    down = subprocess.run(
        [sys.executable, "-m", "server", "--check", "--port", str(free_port())],
        capture_output=True, text=True, timeout=30,
    )
    assert down.returncode == 1
    assert "unhealthy" in down.stdout


def write_config(path: Path, motd: str, oper_hash: str, extra: str = "") -> None:
    (path.parent / "motd.txt").write_text(motd + "\n")
    path.write_text(f'motd = "motd.txt"\n{extra}\n[opers]\nroot = "{oper_hash}"\n')


async def motd_of(port: int, nick: str) -> list[str]:
    c = await IRCTestClient.open(port)
    burst = await c.register(nick)
    await c.close()
    return [m.params[-1] for m in burst if m.command == "372"]


@pytest.mark.parametrize("backend", ["asyncio", "select"])
async def test_rehash_reloads_motd_and_rejects_a_bad_config(
    tmp_path: Path, backend: str
) -> None:
    conf = tmp_path / "chat.toml"
    oper_hash = hash_password("pw")
    write_config(conf, "first motd", oper_hash)
    p = Proc(tmp_path, "--config", str(conf), "--backend", backend)
    try:
        op = await IRCTestClient.open(p.port)
        await op.register("op")
        await op.send("OPER root pw")
        await op.expect("381")
        assert await motd_of(p.port, "u1") == ["- first motd"]

        write_config(conf, "second motd", oper_hash)
        await op.send("REHASH")
        assert (await op.expect("382")).params[1:] == [str(conf), "Rehashing"]  # the file
        assert await motd_of(p.port, "u2") == ["- second motd"]

        conf.write_text("port = 'not a number'\n")
        await op.send("REHASH")
        fail = await op.expect("FAIL")
        assert fail.params[:2] == ["REHASH", "CONFIG_INVALID"]
        assert "port" in fail.params[-1]
        assert await motd_of(p.port, "u3") == ["- second motd"]  # old config kept
        await op.sync()  # the operator's connection survived every reload

        # labeled-response: the answer, which comes after the reload, carries the label.
        labelled = await IRCTestClient.open(p.port)
        await labelled.register("lab", ["labeled-response", "batch"])
        await labelled.send("OPER root pw")
        await labelled.expect("381")
        write_config(conf, "third motd", oper_hash)
        await labelled.send("@label=r1 REHASH")
        seen = [await labelled.read_message()]
        while seen[-1].command != "382":
            seen.append(await labelled.read_message())
        assert seen[-1].tags.get("label") == "r1"
        assert "ACK" not in [m.command for m in seen]  # was: an ACK, then a bare 382
        # What follows a REHASH in the same packet is answered after its 382, in order.
        await labelled.send_raw(b"@label=r2 REHASH\r\nPING :after\r\n")
        seen = [await labelled.read_message()]
        while seen[-1].command != "PONG":
            seen.append(await labelled.read_message())
        assert [m.command for m in seen] == ["382", "PONG"]
        assert seen[0].tags.get("label") == "r2" and seen[1].params[-1] == "after"
        await labelled.close()

        plain = await IRCTestClient.open(p.port)
        await plain.register("plain")
        await plain.send("REHASH")
        assert (await plain.expect("481")).command == "481"
        await plain.close()
        await op.close()
    finally:
        assert p.stop() == 0


@pytest.mark.parametrize("backend", ["asyncio", "select"])
async def test_sighup_reloads_without_dropping_connections(tmp_path: Path, backend: str) -> None:
    conf = tmp_path / "chat.toml"
    oper_hash = hash_password("pw")
    write_config(conf, "before hup", oper_hash)
    p = Proc(tmp_path, "--config", str(conf), "--backend", backend)
    try:
        stay = await IRCTestClient.open(p.port)
        await stay.register("stay")
        await stay.send("OPER root pw")  # +os: told of the reload, as of a REHASH
        await stay.expect("381")
        write_config(conf, "after hup", oper_hash)
        os.kill(p.proc.pid, signal.SIGHUP)
        notice = await stay.expect("NOTICE")
        assert notice.params[-1] == "*** Notice -- Rehashing the server configuration (SIGHUP)"
        deadline = time.monotonic() + 10
        attempt = 0
        while await motd_of(p.port, f"u{attempt}") != ["- after hup"]:
            assert time.monotonic() < deadline, "SIGHUP did not reload the MOTD"
            attempt += 1
            await asyncio.sleep(0.1)
        # A bad file: the old config stays, and the operators hear why.
        conf.write_text("port = 'not a number'\n")
        os.kill(p.proc.pid, signal.SIGHUP)
        await stay.expect("NOTICE")
        failed = await stay.expect("NOTICE")
        assert failed.params[-1].startswith("*** Notice -- Rehash failed, old config kept: ")
        await stay.sync()
        await stay.close()
    finally:
        assert p.stop() == 0
    assert any("configuration reloaded" in line for line in p.lines())


async def test_cache_and_breaker_metrics_after_known_history_reads(
    backend: str, tmp_path: Path, redis_server: RedisServer  # noqa: F811
) -> None:
    port = free_port()
    cfg = suite_config(metrics_port=port, redis=redis_server.url, history_playback=0)
    server = start_server(cfg, backend, db=str(tmp_path / "history.db"))
    try:
        c = await server.client(
            "reader", ["batch", "server-time", "message-tags", "draft/chathistory"]
        )
        await c.join("#h")
        for n in range(3):
            await c.send(f"PRIVMSG #h :m{n}")
        await c.sync()
        for _ in range(2):  # the first read misses and fills, the second hits
            await c.send("CHATHISTORY LATEST #h * 10")
            await c.expect("BATCH", lambda m: m.params[0].startswith("-"))
        _, text = scrape(port)
        assert sample(text, "chat_cache_misses_total") == 1
        assert sample(text, "chat_cache_fills_total") == 1
        assert sample(text, "chat_cache_hits_total") == 1
        assert sample(text, "chat_cache_drops_total") == 0  # no other node wrote to #h
        assert sample(text, "chat_breaker_open") == 0
        assert sample(text, "chat_history_writes_total") == 3 + 1  # and the JOIN (an event)
    finally:
        for cl in server.clients:
            await cl.close()
        server.handle.stop()
