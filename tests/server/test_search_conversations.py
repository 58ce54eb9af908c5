"""SEARCH without ``in=`` covers a logged-in user's newest SEARCH_CONVERSATIONS private
conversations, and is charged for that many targets (real TCP, every backend, real
SQLite history: the older conversations are stored before the server starts)."""

from __future__ import annotations

import time
from pathlib import Path

from server.core.history import dm_key
from server.history.model import DirectPair, NewMessage
from server.history.sqlite_store import SQLiteStore
from server.history.store import SEARCH_CONVERSATIONS
from tests.conftest import RunningServer, serving, start_server, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask
from tests.server.test_abuse_limits import product_config
from tests.server.test_search import CAPS, search, texts


def direct(sender: str, recipient: str, text: str, time_ms: int) -> NewMessage:
    """A private message between two accounts, stored as the core stores one."""
    return NewMessage(dm_key(sender, recipient), f"{sender}-{time_ms}", time_ms,
                      f"{sender}!{sender}@host", "PRIVMSG", recipient, text,
                      dm=DirectPair(sender, sender, recipient, recipient),
                      sender=f"a:{sender}")


def seed(path: str) -> None:
    """alice's conversation with bob, then SEARCH_CONVERSATIONS newer ones."""
    now = int(time.time() * 1000)
    store = SQLiteStore(path)
    try:
        store.append([direct("bob", "alice", "an old needle", now - 3_600_000)])
        store.append([direct(f"p{i}", "alice", f"needle {i}", now - 1_800_000 + i * 1000)
                      for i in range(SEARCH_CONVERSATIONS)])
    finally:
        store.close()


async def registered(server: RunningServer, nick: str) -> IRCTestClient:
    c = await server.client(nick, CAPS)
    assert [m.command for m in await ask(c, "REGISTER * * long-password")] == [
        "REGISTER", "900"]
    return c


async def test_an_older_conversation_is_searched_only_by_name(
    backend: str, tmp_path: Path
) -> None:
    path = str(tmp_path / "history.db")
    seed(path)
    async with serving(suite_config(history_playback=0, chathistory_limit=50), backend,
                       db=path) as server:
        alice = await registered(server, "alice")
        await registered(server, "bob")
        newest = [f"needle {i}" for i in range(SEARCH_CONVERSATIONS)]
        assert texts(await search(alice, "text=needle")) == newest
        assert texts(await search(alice, "text=needle;in=bob")) == ["an old needle"]


async def test_conversations_are_charged_as_searched(backend: str, tmp_path: Path) -> None:
    # Each target is counted as history_max_rows (1,000) rows: a logged-in user in one
    # channel pays for 1 + SEARCH_CONVERSATIONS targets, 21,000 rows of a 30,000 burst.
    cfg = product_config(scan_burst=30_000, scan_rate=0.01, flood_burst=0,
                         history_max_rows=1_000, db=str(tmp_path / "chat.db"))
    server = start_server(cfg, backend, suite_defaults=False)
    try:
        alice = await registered(server, "alice")
        await alice.join("#a")
        await alice.send("PRIVMSG #a :hello there")
        await alice.sync()
        assert texts(await search(alice, "text=hello")) == ["hello there"]
        await alice.send("SEARCH text=hello")
        fail = await alice.expect("FAIL")
        assert fail.params[:3] == ["SEARCH", "TEMPORARILY_UNAVAILABLE", "*"], fail
        # One target named is one target paid for.
        assert texts(await search(alice, "text=hello;in=#a")) == ["hello there"]
    finally:
        for c in server.clients:
            await c.close()
        server.handle.stop()
