"""SQLite store file: the checkpoint thread runs below the loop's priority; page size."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from server.history import sqlite_store
from server.history.sqlite_store import CHECKPOINT_NICE, SQLiteStore
from tests.history.conftest import append


def _nice_of(native_id: int) -> int:
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of stat; the first two are cut off with the name


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_checkpoint_thread_is_niced_and_the_caller_is_not(tmp_path: Path) -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    store = SQLiteStore(str(tmp_path / "h.db"))
    try:
        thread = store._checkpointer
        assert thread.native_id is not None
        for _ in range(500):  # the thread lowers itself as its first step
            if _nice_of(thread.native_id) >= CHECKPOINT_NICE:
                break
            thread.join(0.01)
        assert _nice_of(thread.native_id) == max(before, CHECKPOINT_NICE)
        assert os.getpriority(os.PRIO_PROCESS, 0) == before  # the loop's thread kept its own
    finally:
        store.close()


def test_new_databases_get_small_pages_and_old_ones_keep_theirs(tmp_path: Path) -> None:
    fresh = SQLiteStore(str(tmp_path / "new.db"))
    assert fresh._writer.execute("PRAGMA page_size").fetchone()[0] == sqlite_store.PAGE_SIZE
    fresh.close()
    old_path = str(tmp_path / "old.db")
    with contextlib.closing(sqlite3.connect(old_path)) as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE unrelated (x INTEGER)")
    old = SQLiteStore(old_path)
    try:
        assert old._writer.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert [m.seq for m in append(old, "#a", 3)] == [1, 2, 3]
    finally:
        old.close()
