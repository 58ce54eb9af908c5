"""Zero loss: kill -9 mid-burst and SIGTERM, then history from a restarted server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ircclient import IRCTestClient
from tests.net import free_port, wait_listening

CAPS = ["server-time", "message-tags", "batch", "draft/chathistory"]


class ServerProcess:
    def __init__(self, backend: str, db: Path) -> None:
        self.backend = backend
        self.db = db
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = (db.parent / "server.log").open("ab")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "--port", str(self.port), "--backend",
             self.backend, "--db", str(self.db), "--history-playback", "0",
             # Retention would legitimately prune a burst this size; keep every row.
             "--history-max-rows", "0",
             # A burst of thousands of lines from one host: no fakelag, no host limits;
             # and fetch_all pages all of it back at once, past the host's read budget.
             "--flood-burst", "0", "--max-per-host", "0", "--throttle-burst", "0",
             "--scan-burst", "0"],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        wait_listening(self.port, self.proc)

    def signal(self, sig: int) -> int:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)
        return self.proc.wait(20)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture
def server_proc(backend: str, tmp_path: Path) -> Iterator[ServerProcess]:
    sp = ServerProcess(backend, tmp_path / "history.db")
    sp.start()
    try:
        yield sp
    finally:
        sp.stop()


async def fetch_all(port: int, channel: str) -> list[tuple[str | None, str]]:
    """Every stored message of ``channel`` as (msgid, text), oldest first, by paging back."""
    c = await IRCTestClient.open(port)
    await c.register("reader", CAPS)
    await c.join(channel)
    out: list[tuple[str, str]] = []
    ref = "*"
    while True:
        cmd = "LATEST" if ref == "*" else "BEFORE"
        await c.send(f"CHATHISTORY {cmd} {channel} {ref} 100")
        await c.expect("BATCH", lambda m: m.params[0].startswith("+"), timeout=10)
        page: list[tuple[str, str]] = []
        while True:
            msg = await c.read_message(10)
            if msg.command == "BATCH":
                break
            if msg.command == "PRIVMSG":  # a multiline message's later lines: no msgid
                page.append((msg.tags.get("msgid"), msg.params[1]))
        out[:0] = page
        if len(page) < 100:
            break
        ref = f"msgid={page[0][0]}"
    await c.close()
    return out


async def record(c: IRCTestClient, into: list[tuple[str, str]]) -> None:
    """Collect every PRIVMSG until the connection dies."""
    try:
        while True:
            msg = await c.read_message(30)
            if msg.command == "PRIVMSG":
                into.append((msg.tags["msgid"], msg.params[1]))
    except (ConnectionError, TimeoutError, OSError):
        return


async def test_kill_9_mid_burst_loses_nothing_any_client_received(
    server_proc: ServerProcess,
) -> None:
    senders = []
    for i in range(4):
        c = await IRCTestClient.open(server_proc.port)
        await c.register(f"s{i}", CAPS)
        await c.join("#burst")
        senders.append(c)
    observer = await IRCTestClient.open(server_proc.port)
    await observer.register("observer", CAPS)
    await observer.join("#burst")
    for c in senders:
        await c.sync()

    received: dict[str, list[tuple[str, str]]] = {c.nick: [] for c in [*senders, observer]}
    readers = [asyncio.create_task(record(c, received[c.nick])) for c in [*senders, observer]]

    async def blast(c: IRCTestClient) -> None:
        try:
            for n in range(5000):
                c.writer.write(f"PRIVMSG #burst :{c.nick}-{n}\r\n".encode())
                if n % 50 == 0:
                    await c.writer.drain()
        except (ConnectionError, OSError):
            return

    blasters = [asyncio.create_task(blast(c)) for c in senders]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while len(received["observer"]) < 2000 and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert len(received["observer"]) >= 2000, "the burst never got going"
    assert server_proc.signal(signal.SIGKILL) == -signal.SIGKILL
    await asyncio.gather(*blasters, *readers)
    for c in [*senders, observer]:
        await c.close()

    server_proc.start()
    stored = await fetch_all(server_proc.port, "#burst")
    ids = [m for m, _ in stored]
    assert len(ids) == len(set(ids)), "a message is stored twice"
    position = {m: i for i, m in enumerate(ids)}
    union = {m for got in received.values() for m, _ in got}
    missing = union - position.keys()
    assert not missing, (
        f"{len(missing)} of {len(union)} received messages are not in history "
        f"({len(ids)} stored): {sorted(missing)[:5]}"
    )
    # Every client saw messages in the stored order.
    for got in received.values():
        positions = [position[m] for m, _ in got]
        assert positions == sorted(positions)
    # Per sender, the stored messages are its messages in the order sent.
    for c in senders:
        numbers = [int(t.split("-")[1]) for _, t in stored if t.startswith(c.nick + "-")]
        assert numbers == list(range(len(numbers)))


async def test_sigterm_keeps_every_accepted_message(server_proc: ServerProcess) -> None:
    c = await IRCTestClient.open(server_proc.port)
    await c.register("writer", CAPS)
    await c.join("#calm")
    for n in range(300):
        c.writer.write(f"PRIVMSG #calm :line {n}\r\n".encode())
    await c.sync()  # the server has read (accepted) every line before the PONG
    assert server_proc.signal(signal.SIGTERM) == 0
    await c.close()
    server_proc.start()
    stored = await fetch_all(server_proc.port, "#calm")
    assert [t for _, t in stored] == [f"line {n}" for n in range(300)]


async def test_kill_9_after_a_redact_keeps_the_message_deleted(
    server_proc: ServerProcess,
) -> None:
    """The tombstone is committed before the REDACT is sent: once anyone saw the REDACT,
    a crash cannot bring the message back."""
    caps = [*CAPS, "echo-message", "draft/message-redaction"]
    alice = await IRCTestClient.open(server_proc.port)
    await alice.register("alice", caps)
    await alice.join("#r")
    ids = []
    for text in ("keep", "secret", "also keep"):
        await alice.send(f"PRIVMSG #r :{text}")
        ids.append((await alice.expect("PRIVMSG", lambda m, t=text: m.params[-1] == t))
                   .tags["msgid"])
    await alice.send(f"REDACT #r {ids[1]}")
    await alice.expect("REDACT")
    assert server_proc.signal(signal.SIGKILL) == -signal.SIGKILL
    await alice.close()
    server_proc.start()
    assert await fetch_all(server_proc.port, "#r") == [(ids[0], "keep"), (ids[2], "also keep")]


async def test_kill_9_after_a_multiline_echo_keeps_the_whole_message(
    server_proc: ServerProcess,
) -> None:
    """A draft/multiline message is committed whole before anyone receives it: after
    kill -9, the restarted server replays it with every line (a client without the
    capability reads its lines; one with it, one nested batch)."""
    caps = [*CAPS, "echo-message", "draft/multiline"]
    alice = await IRCTestClient.open(server_proc.port)
    await alice.register("alice", caps)
    await alice.join("#m")
    lines = ["first", "", "  indented", "last " + "y" * 200]
    await alice.send("BATCH +k draft/multiline #m")
    for line in lines:
        await alice.send(f"@batch=k PRIVMSG #m :{line}")
    await alice.send("BATCH -k")
    start = await alice.expect("BATCH", lambda m: m.params[0].startswith("+"))
    await alice.expect("BATCH", lambda m: m.params[0] == "-" + start.params[0][1:])
    msgid = start.tags["msgid"]
    assert server_proc.signal(signal.SIGKILL) == -signal.SIGKILL
    await alice.close()
    server_proc.start()
    # Without draft/multiline: its non-blank lines, the msgid on the first.
    assert await fetch_all(server_proc.port, "#m") == [
        (msgid, "first"), *[(None, text) for text in lines[2:]]]


async def test_kill_9_leaves_no_closed_channel_open_to_the_next_comer(
    server_proc: ServerProcess,
) -> None:
    """A kill -9 ends no channel: the restarted server ends the ones it left closed
    (tests/server/test_ended_channels.py), and only those, before anyone joins."""
    alice = await IRCTestClient.open(server_proc.port)
    await alice.register("alice", [*CAPS, "echo-message"])
    modes = {"#closed": "+k door", "#open": "", "#reopened": "+s", "#shut": "+i"}
    for channel, mode in modes.items():
        await alice.join(channel)
        if mode:
            await alice.send(f"MODE {channel} {mode}")
            await alice.expect("MODE")
        await alice.send(f"PRIVMSG {channel} :said in {channel}")
        await alice.expect("PRIVMSG", lambda m, c=channel: m.params[0] == c)
    await alice.send("MODE #reopened -s")
    await alice.expect("MODE")
    assert server_proc.signal(signal.SIGKILL) == -signal.SIGKILL
    await alice.close()
    server_proc.start()
    said = {channel: [text for _, text in await fetch_all(server_proc.port, channel)]
            for channel in modes}
    assert said == {"#closed": [], "#open": ["said in #open"],
                    "#reopened": ["said in #reopened"], "#shut": []}
