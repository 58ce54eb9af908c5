"""The SQLite database file deleted or replaced under a running server: the server puts
the database back at its path from its open connection, and after kill -9 and a
restart on that path every message (before and after the deletion) and every account
is there. Real server processes over real TCP, on every backend."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.ircclient import IRCTestClient
from tests.net import eventually
from tests.server.helpers import ask
from tests.server.test_accounts import PASSWORD, plain
from tests.server.test_durability import CAPS, ServerProcess, fetch_all, server_proc

__all__ = ["server_proc"]  # the fixture, used here

RESTORED = "restored from the open connection"
REPLACEMENT_TABLE = "someone_elses"


def server_log(sp: ServerProcess) -> str:
    sp.log.flush()
    return (sp.db.parent / "server.log").read_text(errors="replace")


async def say(c: IRCTestClient, channel: str, texts: list[str]) -> None:
    for text in texts:
        c.writer.write(f"PRIVMSG {channel} :{text}\r\n".encode())
    await c.sync()  # read (and, group commit, stored) before the PONG


async def register(port: int, nick: str) -> None:
    c = await IRCTestClient.open(port)
    await c.register(nick)
    msgs = await ask(c, f"REGISTER * * {PASSWORD}")
    assert [m.command for m in msgs] == ["REGISTER", "900"], msgs
    await c.close()


async def logs_in(port: int, account: str) -> bool:
    """Whether SASL PLAIN as ``account`` succeeds on the server at ``port``."""
    c = await IRCTestClient.open(port)
    try:
        await c.send("CAP REQ :sasl")
        await c.expect("CAP", lambda m: m.params[1] == "ACK")
        await c.send("AUTHENTICATE PLAIN")
        await c.expect("AUTHENTICATE")
        msgs = await ask(c, f"AUTHENTICATE {plain(account, PASSWORD)}")
        return "903" in [m.command for m in msgs]
    finally:
        await c.close()


def replace_with_another_database(db: Path) -> None:
    """Put another SQLite file at ``db`` (a rename over it), as an operator might."""
    other = db.parent / "other.db"
    conn = sqlite3.connect(other)
    conn.execute(f"CREATE TABLE {REPLACEMENT_TABLE} (x)")
    conn.execute(f"INSERT INTO {REPLACEMENT_TABLE} VALUES (42)")
    conn.commit()
    conn.close()
    os.replace(other, db)


@pytest.mark.parametrize("how", ["file", "file-wal-shm", "replaced"])
async def test_a_database_file_deleted_under_the_server_loses_nothing(
    server_proc: ServerProcess, how: str
) -> None:
    port = server_proc.port
    db = server_proc.db
    writer = await IRCTestClient.open(port)
    await writer.register("writer", CAPS)
    await writer.join("#c")
    sent = [f"before {n}" for n in range(40)]
    await say(writer, "#c", sent)
    await register(port, "alice")

    if how == "replaced":
        replace_with_another_database(db)
    else:
        for suffix in ("", "-wal", "-shm") if how == "file-wal-shm" else ("",):
            os.unlink(f"{db}{suffix}")
    # Until the server notices (its next tick), these go to the deleted file.
    during = [f"during {n}" for n in range(40)]
    await say(writer, "#c", during)
    sent += during

    await eventually(lambda: RESTORED in server_log(server_proc), "the restore's log line")
    assert db.exists()
    after = [f"after {n}" for n in range(40)]
    await say(writer, "#c", after)
    sent += after
    await register(port, "bob")  # the account store writes to the restored file
    # The history readers moved too: they see what was stored after the restore.
    assert [t for _, t in await fetch_all(port, "#c")] == sent

    assert server_proc.signal(signal.SIGKILL) == -signal.SIGKILL
    await writer.close()
    said = server_log(server_proc)
    assert said.count(RESTORED) == 1, said
    assert ("replaced (kept as" in said) == (how == "replaced"), said
    if how == "replaced":  # the file put there is kept beside it, whole
        [aside] = [p for p in db.parent.iterdir() if p.name.startswith("history.db.replaced-")
                   and not p.name.endswith(("-wal", "-shm"))]
        conn = sqlite3.connect(aside)
        assert conn.execute(f"SELECT x FROM {REPLACEMENT_TABLE}").fetchall() == [(42,)]
        conn.close()

    server_proc.start()
    assert [t for _, t in await fetch_all(port, "#c")] == sent
    assert await logs_in(port, "alice")
    assert await logs_in(port, "bob")


async def test_a_database_file_deleted_twice_while_messages_keep_coming_loses_nothing(
    server_proc: ServerProcess,
) -> None:
    """Messages sent without a pause while the file is deleted, restored, and deleted
    again: each deletion is noticed, and nothing sent is missing after kill -9."""
    port = server_proc.port
    db = server_proc.db
    writer = await IRCTestClient.open(port)
    await writer.register("writer", CAPS)
    await writer.join("#busy")
    sent: list[str] = []
    stop = asyncio.Event()

    async def keep_sending() -> None:
        n = 0
        while not stop.is_set():
            batch = [f"m {n + i}" for i in range(20)]
            await say(writer, "#busy", batch)
            sent.extend(batch)
            n += 20

    sender = asyncio.create_task(keep_sending())
    try:
        for round_ in (1, 2):
            await eventually(lambda: db.exists(), "the database file at its path")
            os.unlink(db)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{db}{suffix}")
            await eventually(lambda r=round_: server_log(server_proc).count(RESTORED) == r,
                             f"restore number {round_}")
    finally:
        stop.set()
        await asyncio.wait_for(sender, 30)
    assert len(sent) > 0
    assert server_proc.signal(signal.SIGKILL) == -signal.SIGKILL
    await writer.close()
    server_proc.start()
    assert [t for _, t in await fetch_all(port, "#busy")] == sent
