"""Connection lifecycle over real TCP: PING/PONG, timeouts, QUIT, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import re

import pytest

from chat.message import Message, parse
from server.config import ServerConfig
from tests.conftest import RunningServer, start_server
from tests.ircclient import IRCTestClient

SERVER = "test.server"
HOST = "127.0.0.1"
# The core's timers run once a second: with these settings an idle client is pinged
# within about 2 s and dropped within about 4 s. Waits below are deadlines, not timings.
INTERVAL = 1.0
TIMEOUT = 1.0
DEADLINE = 10.0


@pytest.fixture
def server_config() -> ServerConfig:
    return ServerConfig(
        name=SERVER,
        network="TestNet",
        registration_timeout=1.0,
        ping_interval=INTERVAL,
        ping_timeout=TIMEOUT,
        db="",  # history off: nothing here reads it
    )


def mask(nick: str) -> str:
    return f"{nick}!~{nick}@{HOST}"


def closing(reason: str) -> Message:
    return Message("ERROR", [f"Closing Link: {HOST} ({reason})"])


async def read_raw(c: IRCTestClient, timeout: float = DEADLINE) -> Message | None:
    """The next message exactly as sent, PINGs included and unanswered; None at EOF."""
    while True:
        try:
            raw = await asyncio.wait_for(c.reader.readline(), timeout)
        except ConnectionError:
            return None
        if not raw:
            return None
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        if text:
            return parse(text)


async def read_all_raw(c: IRCTestClient, timeout: float = DEADLINE) -> list[Message]:
    """Everything up to EOF, without answering the server's PINGs."""
    out: list[Message] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (msg := await read_raw(c, max(deadline - loop.time(), 0.001))) is not None:
        out.append(msg)
    return out


# ---------------------------------------------------------------------- PING / PONG


async def test_ping_gets_pong_with_token(server: RunningServer) -> None:
    c = await server.client("alice")
    await c.send("PING token123")
    assert await c.expect("PONG") == Message("PONG", [SERVER, "token123"], SERVER)
    await c.send("PING :with spaces in it")
    assert await c.expect("PONG") == Message("PONG", [SERVER, "with spaces in it"], SERVER)


async def test_ping_before_registration(server: RunningServer) -> None:
    c = await server.client()
    await c.send("PING early")
    assert await c.expect("PONG") == Message("PONG", [SERVER, "early"], SERVER)


async def test_ping_without_token_gives_409(server: RunningServer) -> None:
    c = await server.client("alice")
    await c.send("PING")
    assert await c.expect("409") == Message("409", ["alice", "No origin specified"], SERVER)


async def test_client_pong_gets_no_reply(server: RunningServer) -> None:
    c = await server.client("alice")
    await c.send("PONG :test.server")
    await c.send("PONG")
    assert await c.sync() == []


# ---------------------------------------------------------------------- keepalive


async def test_idle_client_is_pinged_then_dropped(server: RunningServer) -> None:
    idle = await server.client("idle")
    peer = await server.client("peer")
    await idle.join("#chan")
    await peer.join("#chan")
    await idle.sync()  # the last line the idle client sends
    # The peer answers its own keepalive PINGs while it waits for the QUIT.
    peer_quit = asyncio.create_task(peer.expect("QUIT", timeout=DEADLINE))
    try:
        ping = await read_raw(idle)
        rest = await read_all_raw(idle)
    except BaseException:
        peer_quit.cancel()
        raise
    assert ping == Message("PING", [SERVER])
    assert len(rest) == 1 and rest[0].command == "ERROR"
    match = re.fullmatch(
        rf"Closing Link: {re.escape(HOST)} \(Ping timeout: (\d+) seconds\)", rest[0].params[0]
    )
    assert match, rest[0]
    seconds = int(match.group(1))
    assert seconds >= int(INTERVAL + TIMEOUT)
    quit_ = await peer_quit
    assert quit_ == Message("QUIT", [f"Ping timeout: {seconds} seconds"], mask("idle"))
    # The nick is free again and the peer is still fine.
    again = await server.client()
    await again.send("NICK idle")
    await again.send("USER idle 0 * :Idle")
    assert (await again.collect_until("376", "422"))[0].params[0] == "idle"
    assert await peer.sync() == []


async def test_answering_pings_keeps_client_alive(server: RunningServer) -> None:
    c = await server.client("alive")
    for _ in range(2):
        ping = await read_raw(c)
        assert ping == Message("PING", [SERVER])
        await c.send(f"PONG :{SERVER}")
    # Well past interval + timeout since the first PING: still connected.
    assert await c.sync() == []


async def test_any_traffic_counts_as_activity(server: RunningServer) -> None:
    c = await server.client("chatty")
    ping = await read_raw(c)
    assert ping == Message("PING", [SERVER])
    # Not a PONG: any line shows the client is alive.
    await c.send("LUSERS")
    await c.collect_until("266")
    ping = await read_raw(c)
    assert ping == Message("PING", [SERVER])
    await c.send("PONG x")
    assert await c.sync() == []


# ---------------------------------------------------------------------- registration timeout


async def test_registration_timeout_closes_unregistered(server: RunningServer) -> None:
    c = await server.client()
    assert await read_all_raw(c) == [closing("Registration timeout")]


async def test_registration_timeout_with_nick_only_frees_nick(server: RunningServer) -> None:
    c = await server.client()
    await c.send("NICK halfway")
    assert await read_all_raw(c) == [closing("Registration timeout")]
    d = await server.client()
    await d.send("NICK halfway")
    await d.send("USER halfway 0 * :Halfway")
    assert (await d.collect_until("376", "422"))[0].params[0] == "halfway"


async def test_registration_timeout_during_cap_negotiation(server: RunningServer) -> None:
    c = await server.client()
    await c.send("CAP LS 302")
    await c.send("NICK capper")
    await c.send("USER capper 0 * :Capper")  # never sends CAP END
    messages = await read_all_raw(c)
    # The CAP LS answer (as many lines as it takes), then the timeout.
    assert {m.command for m in messages[:-1]} == {"CAP"}
    assert messages[-1] == closing("Registration timeout")


async def test_activity_does_not_extend_registration(server: RunningServer) -> None:
    c = await server.client()

    async def keep_pinging() -> None:
        with contextlib.suppress(ConnectionError, OSError):
            for i in range(int(DEADLINE / 0.2)):
                await c.send(f"PING p{i}")
                await asyncio.sleep(0.2)

    pinger = asyncio.create_task(keep_pinging())
    try:
        messages = await read_all_raw(c)
    finally:
        pinger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pinger
    assert {m.command for m in messages[:-1]} <= {"PONG"}
    assert messages[-1] == closing("Registration timeout")


async def test_registered_client_survives_registration_timeout(server: RunningServer) -> None:
    c = await server.client("settled")
    ping = await read_raw(c)  # at least one timer tick has passed since registering
    assert ping == Message("PING", [SERVER])
    await c.send(f"PONG :{SERVER}")
    assert await c.sync() == []


# ---------------------------------------------------------------------- QUIT


async def test_quit_with_reason(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")  # shares no channel with alice
    for channel in ("#one", "#two"):
        await alice.join(channel)
        await bob.join(channel)
    await bob.sync()
    await alice.sync()
    await alice.send("QUIT :going home")
    assert await alice.wait_closed() == [closing("Quit: going home")]
    assert await bob.expect("QUIT") == Message("QUIT", ["Quit: going home"], mask("alice"))
    assert await bob.sync() == []  # exactly once, though two channels were shared
    assert await carol.sync() == []
    await bob.send("NAMES #one")
    assert (await bob.expect("353")).params[-1] == "bob"


async def test_quit_without_reason(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await bob.join("#chan")
    await bob.sync()
    await alice.sync()
    await alice.send("QUIT")
    assert await alice.wait_closed() == [closing("Quit")]
    assert await bob.expect("QUIT") == Message("QUIT", ["Quit"], mask("alice"))


async def test_quit_drops_the_rest_of_the_write(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await bob.join("#chan")
    await bob.sync()
    await alice.sync()
    await alice.send_raw(b"QUIT :bye\r\nPRIVMSG #chan :from beyond\r\n")
    assert await alice.wait_closed() == [closing("Quit: bye")]
    assert await bob.expect("QUIT") == Message("QUIT", ["Quit: bye"], mask("alice"))
    assert await bob.sync() == []


async def test_quit_before_registration(server: RunningServer) -> None:
    watcher = await server.client("watcher")
    c = await server.client()
    await c.send("NICK early")
    await c.send("QUIT :never mind")
    assert await c.wait_closed() == [closing("Quit: never mind")]
    assert await watcher.sync() == []
    d = await server.client()
    await d.send("NICK early")
    await d.send("USER early 0 * :Early")
    assert (await d.collect_until("376", "422"))[0].params[0] == "early"


async def test_abrupt_disconnect_reaches_peers(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await bob.join("#chan")
    await bob.sync()
    await alice.close()
    assert await bob.expect("QUIT") == Message("QUIT", ["Connection closed"], mask("alice"))


# ---------------------------------------------------------------------- shutdown


async def test_shutdown_sends_error_to_everyone(backend: str, server_config: ServerConfig) -> None:
    running = start_server(server_config, backend)
    clients: list[IRCTestClient] = []
    try:
        alice = await IRCTestClient.open(running.port)
        bob = await IRCTestClient.open(running.port)
        unregistered = await IRCTestClient.open(running.port)
        clients += (alice, bob, unregistered)
        await alice.register("alice")
        await bob.register("bob")
        await alice.join("#chan")
        await bob.join("#chan")
        await alice.sync()
        await unregistered.sync()
        await asyncio.get_running_loop().run_in_executor(None, running.handle.stop)
        for c in clients:
            # One ERROR each and no storm of QUITs between the members.
            assert await c.wait_closed() == [closing("Server shutting down")]
    finally:
        for c in clients:
            await c.close()
