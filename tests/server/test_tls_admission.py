"""The TLS port admits an address before its handshake, with the core's limits.

The core hears of a TLS connection only once its handshake is over; before, one
address could hold thousands of half-open handshakes. Here the server's per-host
limit, global cap and connect throttle refuse a TLS connection as it is accepted:
closed at once, before any handshake work, while the handshakes it admitted stay
until their timeout (``HOLD``: nothing times out unless a test says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from server.config import ServerConfig
from tests.conftest import RunningServer, serving
from tests.ircclient import IRCTestClient
from tests.server.test_tls import (  # noqa: F401
    OPENSSL,
    PKI,
    client_context,
    open_tls,
    pki,
    tls_config,
    tls_port,
)

pytestmark = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is needed")

HOLD = 60.0  # a handshake timeout no test waits for
WAIT = 10.0  # how long to wait for what the server does in its own time (never asserted)
TOO_MANY = "Too many connections from your host"


def admission_config(pki: PKI, **limits: object) -> ServerConfig:  # noqa: F811
    """The TLS test server with only the limits a test names on."""
    settings: dict[str, object] = {
        "tls_handshake_timeout": HOLD, "max_per_host": 0, "throttle_burst": 0,
    }
    settings.update(limits)
    return tls_config(pki, **settings)


def internals(running: RunningServer) -> Any:
    """The AsyncioServer or SelectServer, for what only it knows (read, never changed)."""
    return running.handle.server


async def settle(done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


@contextlib.contextmanager
def raw_connections() -> Iterator[Callable[[int], socket.socket]]:
    """TCP connections that never start a handshake, closed afterwards."""
    socks: list[socket.socket] = []

    def connect(port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        socks.append(sock)
        return sock

    try:
        yield connect
    finally:
        for sock in socks:
            sock.close()


async def registers_over_tls(port: int, pki: PKI, nick: str) -> None:  # noqa: F811
    """A real TLS client is admitted, registers as ``nick`` and leaves."""
    c = await open_tls(port, client_context(pki))
    try:
        await c.register(nick)
        await c.sync()
    finally:
        await c.close()


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed (or reset) the connection, waiting up to ``WAIT``; it
    never sends on these, and they never send."""
    sock.settimeout(WAIT)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def still_open(sock: socket.socket) -> bool:
    """Whether the connection is open now (nothing to read, no end of file)."""
    sock.setblocking(False)
    try:
        sock.recv(1)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def refused(running: RunningServer, reason: str) -> int:
    count: int = internals(running).core.stats.refused.get(reason, 0)
    return count


async def refused_plaintext(running: RunningServer) -> str:
    """The ERROR a new plaintext connection is closed with."""
    extra = await IRCTestClient.open(running.port)
    running.clients.append(extra)
    tail = await extra.wait_closed()
    assert [m.command for m in tail] == ["ERROR"]
    return tail[0].params[0]


async def test_handshakes_past_the_per_host_limit_are_closed_before_the_handshake(
    backend: str, pki: PKI  # noqa: F811
) -> None:
    limit, extra = 3, 2
    async with serving(admission_config(pki, max_per_host=limit), backend,
                       suite_defaults=False) as running:
        port = tls_port(running)
        with raw_connections() as connect:
            held = [connect(port) for _ in range(limit)]
            extras = [connect(port) for _ in range(extra)]
            assert [closed_by_server(s) for s in extras] == [True] * extra
            assert [still_open(s) for s in held] == [True] * limit  # until the timeout
            assert refused(running, TOO_MANY) == extra
            # Their places come back when they go: a real client gets one.
            for sock in held:
                sock.close()
            await settle(lambda: internals(running).tls_gate.in_flight == 0)
            await registers_over_tls(port, pki, "secure")


async def test_a_handshake_that_times_out_gives_its_place_back(
    backend: str, pki: PKI  # noqa: F811
) -> None:
    config = admission_config(pki, max_per_host=1, tls_handshake_timeout=1.0)
    async with serving(config, backend, suite_defaults=False) as running:
        port = tls_port(running)
        with raw_connections() as connect:
            assert closed_by_server(connect(port))  # by the handshake timeout
            c = await open_tls(port, client_context(pki))
            try:
                await c.register("secure")
                # The core counts the client: the next TLS connection is refused as
                # it is accepted, not left to time out.
                assert closed_by_server(connect(port))
                assert refused(running, TOO_MANY) == 1
                await c.sync()
            finally:
                await c.close()


async def test_the_plaintext_port_keeps_its_own_limit(
    backend: str, pki: PKI  # noqa: F811
) -> None:
    async with serving(admission_config(pki, max_per_host=2), backend,
                       suite_defaults=False) as running:
        port = tls_port(running)
        with raw_connections() as connect:
            held = [connect(port) for _ in range(2)]
            assert closed_by_server(connect(port))  # the two in flight fill the host's places
            # The core counts only what it knows: handshakes in flight do not refuse
            # plaintext clients, and its limit stays what it was.
            for nick in ("plain1", "plain2"):
                await (await running.client(nick)).sync()
            assert TOO_MANY in await refused_plaintext(running)
            assert [still_open(s) for s in held] == [True, True]
            for sock in held:
                sock.close()
            await settle(lambda: internals(running).tls_gate.in_flight == 0)
            assert closed_by_server(connect(port))  # the plaintext clients fill them now
            assert refused(running, TOO_MANY) == 3  # two TLS, one plaintext


async def test_a_completed_tls_connection_is_counted_once(
    backend: str, pki: PKI  # noqa: F811
) -> None:
    async with serving(admission_config(pki, max_per_host=2), backend,
                       suite_defaults=False) as running:
        port = tls_port(running)
        core = internals(running).core
        secure = await open_tls(port, client_context(pki))
        try:
            await secure.register("secure")
            await (await running.client("plain")).sync()  # two: the limit
            with raw_connections() as connect:
                assert closed_by_server(connect(port))
            assert TOO_MANY in await refused_plaintext(running)
            await secure.send("QUIT")
            await secure.wait_closed()
        finally:
            await secure.close()
        await settle(lambda: core.limits.per_host.get("127.0.0.1", 0) == 1)
        await registers_over_tls(port, pki, "again")


async def test_the_connect_throttle_refuses_before_the_handshake_and_charges_once(
    backend: str, pki: PKI  # noqa: F811
) -> None:
    config = admission_config(pki, throttle_burst=3, throttle_rate=0.01)
    async with serving(config, backend, suite_defaults=False) as running:
        port = tls_port(running)
        clients: list[IRCTestClient] = []
        try:
            # Three connects, three clients: a TLS connection is not paid for twice.
            for i in range(3):
                clients.append(await open_tls(port, client_context(pki)))
                await clients[-1].register(f"secure{i}")
            with raw_connections() as connect:
                assert closed_by_server(connect(port))
            assert refused(running, "Connecting too fast; try again later") == 1
        finally:
            for c in clients:
                await c.close()


async def test_handshakes_in_flight_count_towards_the_global_cap(
    backend: str, pki: PKI  # noqa: F811
) -> None:
    async with serving(admission_config(pki, max_clients=3), backend,
                       suite_defaults=False) as running:
        port = tls_port(running)
        await (await running.client("plain")).sync()
        with raw_connections() as connect:
            held = [connect(port) for _ in range(2)]
            assert closed_by_server(connect(port))
            assert refused(running, "Server is full") == 1
            assert [still_open(s) for s in held] == [True, True]
