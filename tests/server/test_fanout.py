"""Fan-out and slow consumers, on every backend."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace

import pytest

from server.config import ServerConfig
from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient

MEMBERS = 200
SENDERS = 4
PER_SENDER = 25


async def test_every_member_gets_every_message_in_order_once(server: RunningServer) -> None:
    clients = [await server.client(f"user{i}") for i in range(MEMBERS)]
    for c in clients:
        await c.join("#big")
    # Each member must have seen every later JOIN; sync so nothing is left in flight.
    for c in clients:
        await c.sync()
    senders = clients[:SENDERS]
    for n in range(PER_SENDER):
        for s in senders:
            await s.send(f"PRIVMSG #big :{s.nick} {n}")

    async def drain(c: IRCTestClient) -> dict[str, list[int]]:
        expected = PER_SENDER * (SENDERS - (1 if c in senders else 0))
        seen: dict[str, list[int]] = {}
        got = 0
        while got < expected:
            msg = await c.expect("PRIVMSG", timeout=20)
            nick, num = msg.params[1].split()
            assert msg.source is not None and msg.source.startswith(nick + "!")
            seen.setdefault(nick, []).append(int(num))
            got += 1
        # Nothing extra: the next thing after a sync is not another PRIVMSG.
        extra = [m for m in await c.sync() if m.command == "PRIVMSG"]
        assert extra == []
        return seen

    results = await asyncio.gather(*(drain(c) for c in clients))
    for c, seen in zip(clients, results, strict=True):
        for s in senders:
            if s is c:
                assert s.nick not in seen  # no echo without echo-message
            else:
                assert seen[s.nick] == list(range(PER_SENDER))


@pytest.fixture
def server_config() -> ServerConfig:
    return ServerConfig(name="test.server", sendq=64 * 1024)


async def test_slow_consumer_is_cut_at_sendq_and_others_keep_receiving(
    server: RunningServer,
) -> None:
    talker = await server.client("talker")
    reader = await server.client("reader")
    await talker.join("#flood")
    await reader.join("#flood")

    # A raw client that registers, joins, then never reads again; a tiny receive
    # buffer makes the server's queue for it grow quickly.
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", server.port))
    slow.sendall(b"NICK slow\r\nUSER slow 0 * :slow\r\nJOIN #flood\r\n")
    await reader.expect("JOIN", lambda m: (m.source or "").startswith("slow!"))

    # The kernel's socket buffers absorb a few MB before the server's own queue
    # grows, so keep talking until the slow client is cut (bounded).
    payload = "x" * 440
    sent = 0
    received: list[int] = []
    quit_reason: str | None = None

    async def read_available(timeout: float) -> None:
        nonlocal quit_reason
        while True:
            try:
                msg = await reader.read_message(timeout)
            except TimeoutError:
                return
            if msg.command == "PRIVMSG":
                received.append(int(msg.params[1].split()[0]))
            elif msg.command == "QUIT" and (msg.source or "").startswith("slow!"):
                quit_reason = msg.params[0]

    while quit_reason is None and sent < 40_000:
        for _ in range(500):
            await talker.send(f"PRIVMSG #flood :{sent} {payload}")
            sent += 1
        await read_available(0.2)
    assert quit_reason == "SendQ exceeded"
    while len(received) < sent:
        before = len(received)
        await read_available(2.0)
        if len(received) == before:
            break
    assert received == list(range(sent))
    slow.close()


async def test_sendq_bound_applies_per_connection(server: RunningServer) -> None:
    """A SendQ disconnect does not touch a client that reads normally."""
    cfg = replace(server.config)
    assert cfg.sendq == 64 * 1024
    a = await server.client("a1")
    b = await server.client("b1")
    await a.join("#q")
    await b.join("#q")
    for n in range(300):
        await a.send(f"PRIVMSG #q :{n} " + "y" * 400)
    got = [int((await b.expect("PRIVMSG", timeout=20)).params[1].split()[0]) for _ in range(300)]
    assert got == list(range(300))
