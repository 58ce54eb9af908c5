"""The SQLite store's retention pass costs what was written since the last pass, not
the table: it probes the targets it wrote past the cap (the sweep of the others and
the bookkeeping are in the store contract tests), and walks the oldest rows for the
age limit. Real SQLite files; the work a pass does is counted in SQLite VM
instructions (a scan of N rows takes at least N)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chat.msgid import msgid_at
from server.history.model import NewMessage
from server.history.sqlite_store import SQLiteStore

BASE_MS = 1_700_000_000_000


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "history.db")


@pytest.fixture
def store(path: str) -> Iterator[SQLiteStore]:
    s = SQLiteStore(path)
    try:
        yield s
    finally:
        s.close()


class Writer:
    """Messages with unique msgids, one ms apart."""

    def __init__(self) -> None:
        self.n = 0

    def rows(self, target: str, count: int) -> list[NewMessage]:
        out = []
        for _ in range(count):
            self.n += 1
            time_ms = BASE_MS + self.n
            out.append(NewMessage(target, msgid_at(time_ms, 0), time_ms, "n!u@h", "PRIVMSG",
                                  target, f"text {self.n}"))
        return out


def vm_steps(store: SQLiteStore, work: Callable[[], object]) -> int:
    """SQLite VM instructions the writer runs during ``work``."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    store._writer.set_progress_handler(count, 1)
    try:
        work()
    finally:
        store._writer.set_progress_handler(None, 1)
    return steps


def table_rows(path: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])


def test_a_pass_probes_the_targets_written_past_the_cap_not_the_table(
    path: str, store: SQLiteStore
) -> None:
    w = Writer()
    store.append([m for t in range(200) for m in w.rows(f"#t{t}", 30)])
    assert store.prune(max_rows=20, max_age_ms=0, now_ms=BASE_MS, budget=5000) == 2000
    assert store.prune(max_rows=20, max_age_ms=0, now_ms=BASE_MS, budget=5000) == 0
    store.append(w.rows("#t7", 5))
    rows = table_rows(path)
    deleted: list[int] = []
    steps = vm_steps(store, lambda: deleted.append(
        store.prune(max_rows=20, max_age_ms=0, now_ms=BASE_MS, budget=5000)))
    assert deleted == [5]
    assert steps < rows  # the old GROUP BY read every row
    assert store.prune_probes == 1  # of 200 targets
    assert [r.seq for r in store.window("#t7", 100)] == list(range(16, 36))


def test_the_age_limit_walks_the_oldest_rows_not_the_table(
    path: str, store: SQLiteStore
) -> None:
    w = Writer()
    store.append([m for t in range(20) for m in w.rows(f"#t{t}", 200)])
    now = BASE_MS + w.n + 1
    rows = table_rows(path)
    deleted: list[int] = []
    # Nothing is old: the old statement scanned every row looking for one.
    steps = vm_steps(store, lambda: deleted.append(
        store.prune(max_rows=0, max_age_ms=60_000, now_ms=now, budget=10)))
    assert deleted == [0]
    assert steps < rows
    # The oldest go first, a budget at a time: the 25 older than BASE_MS + 26.
    age = now - (BASE_MS + 26)
    assert store.prune(max_rows=0, max_age_ms=age, now_ms=now, budget=10) == 10
    assert store.prune(max_rows=0, max_age_ms=age, now_ms=now, budget=10) == 10
    assert store.prune(max_rows=0, max_age_ms=age, now_ms=now, budget=10) == 5
    assert store.prune(max_rows=0, max_age_ms=age, now_ms=now, budget=10) == 0
    assert table_rows(path) == rows - 25
