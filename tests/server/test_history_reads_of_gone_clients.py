"""History reads of a client that has gone are not run, over real TCP, on every backend.

Reads queue on the one history-read thread (SEARCH on its own), and JOIN/JOIN 0 churn
from clients that then disconnected kept it busy for minutes after they left (third
hostile-user round, finding 1). Each read asks, on that thread just before it runs,
whether its client is still here (``ops.HistoryReaders``).

To make the queue deterministic the tests park a blocker on the reader threads first,
so every read asked for meanwhile is queued behind it; the store's ``reads`` counter
then shows which ran. A later read of a client still here is answered after all of
them (one thread, first in first out), so no timing is asserted.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from server.config import ServerConfig
from server.history.service import HistoryService
from tests.conftest import RunningServer, suite_config
from tests.ircclient import IRCTestClient
from tests.server.test_chathistory import read_batch

CHANNELS = [f"#c{i}" for i in range(20)]
FULL = ["batch", "server-time", "message-tags", "draft/chathistory", "soju.im/search"]


@pytest.fixture
def server_config() -> ServerConfig:
    return suite_config(history_playback=5)


def served(server: RunningServer) -> Any:
    """The AsyncioServer or SelectServer (read-only inspection, and the blocker)."""
    return server.handle.server


def history(server: RunningServer) -> HistoryService:
    found = served(server).history
    assert isinstance(found, HistoryService)
    return found


@contextlib.contextmanager
def readers_blocked(service: HistoryService) -> Iterator[None]:
    """Hold the history-read and history-search threads until the block ends: every
    read asked for meanwhile waits in their queues, in order."""
    gate = threading.Event()
    blockers = [
        service._executor.submit(gate.wait, 30),
        service._searcher.submit(gate.wait, 30),
    ]
    try:
        yield
    finally:
        gate.set()
        for blocker in blockers:
            blocker.result(10)


async def bystander(server: RunningServer) -> IRCTestClient:
    """bob, in every channel, asks for his history himself (no playback of his own)."""
    bob = await server.client("bob", FULL)
    await bob.send(f"JOIN {','.join(CHANNELS)}")
    for _ in CHANNELS:
        await bob.expect("366")
    await bob.send("PRIVMSG #c0 :hello there")
    await bob.sync()
    return bob


async def latest(bob: IRCTestClient) -> None:
    """bob's CHATHISTORY, answered: queued after every read asked for before it."""
    await bob.sync()
    await bob.send("CHATHISTORY LATEST #c0 * 10")
    lines = await read_batch(bob, "chathistory", "#c0")
    assert lines[0].params[-1] == "hello there"


def pending_history(server: RunningServer) -> int:
    return len(served(server).core._pending_history)


async def test_join_playback_of_a_client_gone_is_not_read(server: RunningServer) -> None:
    bob = await bystander(server)
    store = history(server).store
    with readers_blocked(history(server)):
        before = store.reads
        mal = await server.client("mal")  # no draft/chathistory: a playback per channel
        await mal.send(f"JOIN {','.join(CHANNELS)}")
        # bob sees the JOIN once the whole line was handled, and its 20 playback reads
        # were queued (effects run before the tick's output is written).
        await bob.expect("JOIN", lambda m: m.source is not None and m.source.startswith("mal!"))
        await mal.close()
        await bob.expect("QUIT", lambda m: m.source is not None and m.source.startswith("mal!"))
        assert store.reads == before  # nothing ran yet: all of them wait behind the block
    await latest(bob)
    assert store.reads == before + 1  # bob's read only: mal's 20 were skipped
    assert pending_history(server) == 0  # and the core forgot them


async def test_chathistory_targets_and_search_of_clients_gone_are_not_read(
    server: RunningServer,
) -> None:
    bob = await bystander(server)
    store = history(server).store
    requests = {
        "latest": "CHATHISTORY LATEST #c0 * 10",
        "targets": (
            "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z "
            "timestamp=2100-01-01T00:00:00.000Z 10"
        ),
        "search": "SEARCH in=#c0;text=hello",
    }
    with readers_blocked(history(server)):
        before = store.reads
        for nick, request in requests.items():
            c = await server.client(nick, FULL)
            await c.join("#c0")
            await c.sync()
            # Twenty (marker, request) pairs in one write: once bob sees the first marker
            # the request behind it was handled too; what follows it is held (history
            # replies come in order) and dies with the client.
            await c.send_raw(f"PRIVMSG #c0 :{nick} asks\r\n{request}\r\n".encode() * 20)
            await bob.expect("PRIVMSG", lambda m, nick=nick: m.params[-1] == f"{nick} asks")
            await c.close()
            await bob.expect(
                "QUIT", lambda m, nick=nick: m.source is not None and m.source.startswith(nick)
            )
        assert store.reads == before
    await latest(bob)  # after the CHATHISTORY and TARGETS reads on the reader thread
    await bob.send("SEARCH in=#c0;text=hello")  # after the SEARCH on the search thread
    found = await read_batch(bob, "soju.im/search")
    assert [m.params[-1] for m in found] == ["hello there"]
    assert store.reads == before + 2  # bob's two reads only
    assert pending_history(server) == 0
