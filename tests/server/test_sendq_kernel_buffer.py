"""A client that never reads is cut for SendQ once the server's queue and a fixed kernel
send buffer are full, not after the megabytes an autotuned buffer takes first (hostile
round 4, item 4)."""

from __future__ import annotations

import socket

import pytest

from server.config import ServerConfig
from server.transport.ops import SEND_BUFFER
from tests.conftest import RunningServer, suite_config

SENDQ = 64 * 1024
LINE = "x" * 440
BATCH = 20  # lines between round trips: the overshoot past the cut is at most this


@pytest.fixture
def server_config() -> ServerConfig:
    return suite_config(sendq=SENDQ)


async def test_a_reader_that_stops_is_cut_within_sendq_and_the_send_buffer(
    server: RunningServer,
) -> None:
    talker = await server.client("talker")
    watcher = await server.client("watcher")
    await talker.join("#flood")
    await watcher.join("#flood")
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", server.port))
    try:
        slow.sendall(b"NICK slow\r\nUSER slow 0 * :slow\r\nJOIN #flood\r\n")
        await watcher.expect("JOIN", lambda m: (m.source or "").startswith("slow!"))
        await watcher.sync()
        # What the server wrote towards the slow client (its line as relayed), counted
        # from the talker's side: sent in batches, each one processed before the next.
        relayed = len(f":talker!talker@127.0.0.1 PRIVMSG #flood :0000 {LINE}\r\n")
        limit = SENDQ + 2 * SEND_BUFFER + 256 * 1024  # Linux doubles SO_SNDBUF; slack
        sent = 0
        cut = False
        while not cut and sent * relayed < 4 * limit:
            for _ in range(BATCH):
                await talker.send(f"PRIVMSG #flood :{sent:04} {LINE}")
                sent += 1
            await talker.sync()
            cut = any(
                m.command == "QUIT" and (m.source or "").startswith("slow!")
                for m in await watcher.sync()
            )
        assert cut, f"not cut after {sent * relayed:,} bytes"
        assert sent * relayed <= limit, f"cut after {sent * relayed:,} bytes"
    finally:
        slow.close()
