"""Flood control of what a client sends: empty lines cost a token like any line, and a
client whose lines wait behind its flood gate is not read meanwhile (the kernel's
buffer pushes back, as on ngIRCd)."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from server.config import ServerConfig
from tests.conftest import RunningServer, start_server
from tests.ircclient import IRCTestClient
from tests.server.test_tls import (  # noqa: F401
    PKI,
    client_context,
    open_tls,
    pki,
    read_lines,
    tls_config,
    tls_port,
)


def product_config(**overrides: object) -> ServerConfig:
    """The product defaults (flood control on), with the suite's name and ``overrides``."""
    return replace(ServerConfig(name="test.server", network="TestNet", db=""), **overrides)


async def open_client(server: RunningServer, pki: PKI, tls: bool) -> IRCTestClient:  # noqa: F811
    """An unregistered client, over TLS or not (each backend reads TLS its own way)."""
    if tls:
        c = await open_tls(tls_port(server), client_context(pki))
    else:
        c = await IRCTestClient.open(server.port)
    server.clients.append(c)
    return c


async def stop(server: RunningServer) -> None:
    for c in server.clients:
        await c.close()
    server.handle.stop()


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
async def test_a_stream_of_empty_lines_is_excess_flood(backend: str, ending: bytes) -> None:
    """100,000 empty lines: one registered client is cut for Excess Flood as any flooder
    (seen by a channel member), an unregistered one too (counted), and a bystander is
    answered meanwhile."""
    server = start_server(product_config(), backend, suite_defaults=False)
    try:
        flooder = await server.client("flooder")
        watcher = await server.client("watcher")
        bystander = await server.client("bystander")
        await flooder.join("#f")
        await watcher.join("#f")
        await flooder.send("PRIVMSG #f :a line or two with an empty one is fine")
        await flooder.send_raw(ending)
        assert (await watcher.expect("PRIVMSG")).params[1].startswith("a line or two")
        # The empty line cost a token, and nothing else: no answer.
        assert all(m.command == "JOIN" for m in await flooder.sync())

        await flooder.send_raw(ending * 100_000)
        await bystander.sync()
        await flooder.wait_closed()
        quit_msg = await watcher.expect("QUIT")
        assert quit_msg.source is not None and quit_msg.source.startswith("flooder!")
        assert quit_msg.params == ["Excess Flood"]

        unknown = await IRCTestClient.open(server.port)
        server.clients.append(unknown)
        await unknown.send_raw(ending * 100_000)
        await bystander.sync()
        await unknown.wait_closed()
        # (Its ERROR may be lost to the reset of a socket closed with unread input.)
        assert server.handle.server.core.stats.flood_disconnects == 2  # type: ignore[attr-defined]
    finally:
        await stop(server)


def blocking_client(server: RunningServer, pki: PKI, tls: bool) -> socket.socket:  # noqa: F811
    """A plain blocking socket (an SSLSocket writes straight to the kernel, where
    asyncio's TLS transport would buffer without bound) with a fixed, small send
    buffer: otherwise the kernel's autotuning holds megabytes."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    sock.settimeout(5)
    if not tls:
        sock.connect(("127.0.0.1", server.port))
        return sock
    sock.connect(("127.0.0.1", tls_port(server)))
    return client_context(pki).wrap_socket(sock, server_hostname="localhost")


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_a_fakelagged_client_is_not_read_until_its_lines_have_run(
    backend: str, pki: PKI, tls: bool  # noqa: F811
) -> None:
    """Lines held behind the gate: the server stops reading the client, so megabytes it
    sends meanwhile stay in the kernel (its send never completes) instead of being split
    into lines in the loop. The bucket never refills here, so nothing is read again."""
    cfg = tls_config(pki, flood_burst=5, flood_rate=1e-9, flood_max_queue=1_000_000)
    server = start_server(cfg, backend, suite_defaults=False)
    flooder = blocking_client(server, pki, tls)
    try:
        bystander = await server.client("bystander")
        flooder.sendall(b"".join(b"PING %d\r\n" % n for n in range(6)))
        pongs = [line for line in read_lines(flooder, b"PONG test.server 4", bytearray())
                 if b" PONG " in line]
        assert len(pongs) == 5  # the 6th waits
        line = b"PRIVMSG nobody :" + b"x" * 400 + b"\r\n"
        flooder.settimeout(3)
        with pytest.raises(TimeoutError):
            # Read, the 8 MB would be queued lines (far below flood_max_queue).
            flooder.sendall(line * 20_000)
        await bystander.sync()
    finally:
        flooder.close()
        await stop(server)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_reading_resumes_once_the_waiting_lines_have_run(
    backend: str, pki: PKI, tls: bool  # noqa: F811
) -> None:
    """What a client sends after its read was paused is read once its queue drains."""
    cfg = tls_config(pki, flood_burst=5, flood_rate=20.0, flood_max_queue=100)
    server = start_server(cfg, backend, suite_defaults=False)
    try:
        c = await open_client(server, pki, tls)
        await c.send_raw(b"".join(b"PING %d\r\n" % n for n in range(6)))
        for n in range(5):
            assert (await c.expect("PONG")).params[-1] == str(n)
        await c.send("PING later")  # arrives while the 6th waits: not read then
        assert (await c.expect("PONG")).params[-1] == "5"
        assert (await c.expect("PONG")).params[-1] == "later"
    finally:
        await stop(server)
