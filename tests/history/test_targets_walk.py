"""CHATHISTORY TARGETS reads a bounded number of rows per target, in both stores.

Each joined channel's latest PRIVMSG or NOTICE is looked for among its newest
``TARGETS_WALK`` rows only: reactions or JOIN/PART churn after it are not walked to the
retention cap (hostile round 5, finding 1). A channel with more churn than that since
its last message is left out of the listing; one with less is listed as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chat.msgid import msgid_at
from server.history.model import ENDED_COMMAND, NewMessage
from server.history.postgres_store import PostgresStore
from server.history.query import TARGETS_WALK
from server.history.sqlite_store import SQLiteStore
from server.history.stores import open_store
from tests.history.postgres_fixture import pg_server_fixture, pg_url_fixture  # noqa: F401

BASE_MS = 1_700_000_000_000
Store = SQLiteStore | PostgresStore


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    where = str(tmp_path / "history.db")
    if request.param == "postgres":
        where = request.getfixturevalue("pg_url")
    opened = open_store(where)
    assert isinstance(opened, SQLiteStore | PostgresStore)
    try:
        yield opened
    finally:
        opened.close()


class Rows:
    """Rows one second apart, in the order made."""

    def __init__(self) -> None:
        self.n = 0

    def new(self, target: str, command: str = "PRIVMSG") -> NewMessage:
        self.n += 1
        return NewMessage(
            target=target, msgid=msgid_at(BASE_MS + self.n * 1000, 0),
            time_ms=BASE_MS + self.n * 1000,
            source="nick!user@host", command=command, channel=target,
            text="" if command in ("TAGMSG", ENDED_COMMAND) else f"text {self.n}",
        )

    def churn(self, target: str, count: int) -> list[NewMessage]:
        """Reactions and joins: rows TARGETS does not list a channel by."""
        return [self.new(target, "TAGMSG" if i % 2 else "JOIN") for i in range(count)]


def test_a_channel_is_listed_by_a_message_within_the_walk(store: Store) -> None:
    rows = Rows()
    [said] = store.append([rows.new("#near")])
    store.append(rows.churn("#near", TARGETS_WALK - 1))
    assert store.targets(["#near"], 0, 2**62, 10) == [("#near", said.time_ms)]


def test_churn_past_the_walk_hides_the_older_message(store: Store) -> None:
    """The walk stops after TARGETS_WALK rows: the message behind them is not reached
    (before the bound, every row down to it was read, to the retention cap)."""
    rows = Rows()
    store.append([rows.new("#far")])
    store.append(rows.churn("#far", TARGETS_WALK))
    [said] = store.append([rows.new("#near")])
    assert store.targets(["#far", "#near"], 0, 2**62, 10) == [("#near", said.time_ms)]
    # A message there lists the channel again, at once.
    [again] = store.append([rows.new("#far")])
    assert store.targets(["#far", "#near"], 0, 2**62, 10) == [
        ("#near", said.time_ms), ("#far", again.time_ms)]


def test_the_floor_still_hides_what_came_before_an_end(store: Store) -> None:
    """The ENDED floor, now checked outside the walk, still leaves out a channel with
    no message since it ended, and lists it by a message after."""
    rows = Rows()
    store.append([rows.new("#p"), rows.new("#p", "NOTICE")])
    store.append([rows.new("#p", ENDED_COMMAND)])
    store.append(rows.churn("#p", 3))
    assert store.targets(["#p"], 0, 2**62, 10) == []
    [said] = store.append([rows.new("#p", "NOTICE")])
    store.append(rows.churn("#p", 3))
    assert store.targets(["#p"], 0, 2**62, 10) == [("#p", said.time_ms)]
