"""Account-store work over real TCP on every backend, with the suite server's real SQLite
file: state written behind (a registered channel's TOPIC) is not queued behind password
checks (scrypt), which run on a worker of their own; and a login checked there is
confirmed against what the ordered account worker did meanwhile (a real SQLite store)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from server.accounts import open_accounts
from server.accounts.service import change_password, drop, register
from server.core.handlers.accounts import Login
from server.transport.ops import check_login, login_stands
from tests.conftest import RunningServer
from tests.server.test_chanserv import PASSWORD, registered_channel

LOGINS = 30
TOPIC = "written behind, not behind the logins"
DEADLINE = 30.0  # a hung server fails the test instead of hanging it; never asserted on


@contextlib.contextmanager
def login_sockets(port: int, account: str) -> Iterator[list[socket.socket]]:
    """LOGINS connections that sent PASS <account>:<password>, NICK and USER: each is a
    login (one scrypt hash) the server checks when its registration ends. Plain sockets,
    so that what the server has sent can be peeked at without reading it."""
    socks: list[socket.socket] = []
    try:
        for i in range(LOGINS):
            sock = socket.create_connection(("127.0.0.1", port))
            socks.append(sock)
            nick = f"waiter{i}"
            sock.sendall(f"PASS {account}:{PASSWORD}\r\nNICK {nick}\r\nUSER {nick} 0 * :w\r\n"
                         .encode())
            sock.setblocking(False)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def answered(sock: socket.socket) -> bool:
    """Whether the server has sent this connection its 900 (logged in) yet: over loopback
    a sent line is in our receive queue when the server's send returns."""
    try:
        pending = sock.recv(1 << 16, socket.MSG_PEEK)
    except BlockingIOError:
        return False
    return b" 900 " in pending


def stored_topic(db: sqlite3.Connection, folded: str) -> str | None:
    """The topic the account store keeps for a registered channel (in its JSON state)."""
    row = db.execute("SELECT state FROM registered_channels WHERE folded = ?", (folded,)).fetchone()
    return None if row is None else json.loads(row[0]).get("topic")


async def logged_in(sock: socket.socket) -> None:
    """Read until this connection's welcome, which follows its 900."""
    loop = asyncio.get_running_loop()
    received = b""
    while b" 001 " not in received:
        data = await loop.sock_recv(sock, 1 << 16)
        assert data, received
        received += data
    assert b" 900 " in received, received


async def test_a_topic_is_written_while_logins_still_wait(
    server: RunningServer,
) -> None:
    founder = await registered_channel(server, "fiona", "#behind")
    db = sqlite3.connect(f"file:{server.config.db}?mode=ro", uri=True)
    try:
        with login_sockets(server.port, "fiona") as socks:
            async with asyncio.timeout(DEADLINE):
                # Once one login is answered every other one has long been read and
                # queued (their lines were sent first; a check is a scrypt hash), so
                # the TOPIC comes after all of them on any single account worker.
                while not any(answered(s) for s in socks):
                    await asyncio.sleep(0.002)
                await founder.send(f"TOPIC #behind :{TOPIC}")
                while stored_topic(db, "#behind") != TOPIC:
                    await asyncio.sleep(0.002)
                waiting = [s for s in socks if not answered(s)]
                # Queued behind the logins, the write would come after every check was
                # done and all but the last answer sent (its send may race the write).
                assert len(waiting) >= 2, f"{LOGINS - len(waiting)} of {LOGINS} answered"
                for sock in socks:  # real logins, all of them: each cost a hash
                    await logged_in(sock)
    finally:
        db.close()


def test_a_login_checked_before_a_password_change_is_checked_again(tmp_path: Path) -> None:
    store = open_accounts(str(tmp_path / "accounts.db"))
    try:
        register(store, "fiona", "Fiona", PASSWORD, 0)
        old = Login(1, "fiona", PASSWORD)
        checked = check_login(store, old)
        assert checked.name == "Fiona"
        # A SET PASSWORD queued on the ordered worker before the confirmation.
        assert change_password(store, "fiona", "n3w-password")
        assert not login_stands(store, old, checked)
        again = check_login(store, old)
        assert again.name is None and login_stands(store, old, again)
        new = Login(2, "fiona", "n3w-password")
        assert check_login(store, new).name == "Fiona"
    finally:
        store.close()


def test_a_login_checked_before_a_drop_or_a_registration_is_checked_again(
    tmp_path: Path,
) -> None:
    store = open_accounts(str(tmp_path / "accounts.db"))
    try:
        register(store, "fiona", "Fiona", PASSWORD, 0)
        effect = Login(1, "fiona", PASSWORD)
        checked = check_login(store, effect)
        assert checked.name == "Fiona"
        assert drop(store, "fiona")  # an operator's DROP, queued before the confirmation
        assert not login_stands(store, effect, checked)
        gone = check_login(store, effect)
        assert gone.name is None and login_stands(store, effect, gone)
        # Registered again (a new hash, fresh salt) before that failure was confirmed.
        register(store, "fiona", "Fiona", PASSWORD, 1)
        assert not login_stands(store, effect, gone)
        assert check_login(store, effect).name == "Fiona"
    finally:
        store.close()
