"""Small helpers the protocol tests share."""

from __future__ import annotations

import re
import sqlite3

import psycopg

from chat.message import Message
from server.history.stores import is_postgres
from tests.ircclient import IRCTestClient


def mask(c: IRCTestClient) -> str:
    """The hostmask the suite's uncloaked server gives a client registered as c.nick."""
    return f"{c.nick}!~{c.nick[:9]}@127.0.0.1"


def only(msgs: list[Message], command: str) -> list[Message]:
    return [m for m in msgs if m.command == command]


async def ask(c: IRCTestClient, line: str) -> list[Message]:
    """Everything the server answers to one command (after dropping anything pending)."""
    await c.sync()
    await c.send(line)
    return await c.sync()


async def quit_and_wait(c: IRCTestClient) -> None:
    """QUIT and wait until the server has closed the connection (it is gone for everyone)."""
    await c.send("QUIT :bye")
    await c.wait_closed()


def too_many_failures(text: str) -> bool:
    """True for the refusal of a password check past the per-connection limit (which
    must not read as a wrong password): it says when to try again, within the minute."""
    found = re.fullmatch(r"Too many failed attempts; try again in (\d+) s", text)
    return found is not None and 1 <= int(found[1]) <= 60


def service_says(msgs: list[Message], service: str) -> list[str]:
    """The texts of the notices ``service`` (NickServ, ChanServ) sent among ``msgs``."""
    return [m.params[-1] for m in msgs
            if m.command == "NOTICE" and (m.source or "").startswith(service + "!")]


def nickserv_says(msgs: list[Message]) -> list[str]:
    return service_says(msgs, "NickServ")


def chanserv_says(msgs: list[Message]) -> list[str]:
    return service_says(msgs, "ChanServ")


async def cap_ls(c: IRCTestClient) -> list[str]:
    """Every token of the answer to CAP LS 302, across its continuation lines."""
    await c.send("CAP LS 302")
    tokens: list[str] = []
    while True:
        m = await c.expect("CAP", lambda m: m.params[1] == "LS")
        tokens += m.params[-1].split()
        if len(m.params) < 4:  # no '*' continuation marker: the last line
            return tokens


def forget_scram(db: str, folded: str) -> None:
    """Make ``folded`` an account from before SCRAM (no credentials), in the running
    server's database (a SQLite file or a PostgreSQL URL), behind the server's back."""
    if is_postgres(db):
        with psycopg.connect(db, autocommit=True) as pg:
            pg.execute("UPDATE accounts SET scram = NULL WHERE folded = %s", (folded,))
        return
    conn = sqlite3.connect(db, timeout=5)
    try:
        conn.execute("UPDATE accounts SET scram = NULL WHERE folded = ?", (folded,))
        conn.commit()
    finally:
        conn.close()
