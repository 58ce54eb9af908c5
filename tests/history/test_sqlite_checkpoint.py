"""SQLite checkpoints: the thread runs below the loop's priority; the WAL stays bounded."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from collections.abc import Iterator
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


def _wal_frames(store: SQLiteStore) -> int:
    """Frames in the WAL now, read without touching it: the wal-index header's mxFrame.

    (sqlite.org/walformat.html: a u32 at offset 16 of the -shm file, native order.)
    """
    with open(store.path + "-shm", "rb") as shm:
        return int.from_bytes(shm.read(20)[16:20], sys.byteorder)


@pytest.fixture
def quiet_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SQLiteStore]:
    """A store whose own checkpoint thread has stopped: the test runs the passes.

    Stopped, not just asleep: the thread opens its connection when it gets to run, and
    that connection's first pragmas read the file; on a loaded machine that came in the
    middle of a test and kept the WAL from starting over.
    """
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_INTERVAL", 3600.0)
    monkeypatch.setattr(sqlite_store, "WAL_RESTART_BYTES", 64 << 10)
    store = SQLiteStore(str(tmp_path / "h.db"))
    store._stop.set()
    store._checkpointer.join(30)
    assert not store._checkpointer.is_alive()
    try:
        yield store
    finally:
        store.close()


def test_wal_starts_over_although_every_checkpoint_pass_falls_behind(
    quiet_store: SQLiteStore,
) -> None:
    # Under steady traffic commits land while the checkpoint thread copies, so no pass
    # ends with every frame copied. A reader holding an older snapshot during each
    # pass stages exactly that: the pass copies up to the reader's snapshot only.
    store = quiet_store
    checkpointer = store._connect()
    reader = store._connect()
    limit_frames = sqlite_store.WAL_RESTART_BYTES // store._page_size
    per_round = 0
    most = 0
    for round_ in range(150):
        before = _wal_frames(store)
        append(store, f"#c{round_ % 7}", 10)  # no reader now: the WAL may start over here
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM messages").fetchone()
        append(store, f"#c{round_ % 5}", 10)
        per_round = max(per_round, _wal_frames(store) - before)
        store.checkpoint(checkpointer)
        reader.execute("COMMIT")
        most = max(most, _wal_frames(store))
    # Without the writer's catch-up the WAL held every frame of all 150 rounds.
    assert most <= limit_frames + 3 * per_round < 150 * per_round
    assert os.path.getsize(store.path + "-wal") <= 2 * sqlite_store.WAL_RESTART_BYTES + 4 * (
        per_round * (store._page_size + 24)
    )
    # Nothing was lost across the restarts.
    rows = checkpointer.execute("SELECT COUNT(*), COUNT(DISTINCT msgid) FROM messages")
    assert rows.fetchone() == (150 * 20, 150 * 20)
    checkpointer.close()
    reader.close()


def test_the_writer_catches_up_only_when_the_checkpoint_thread_asks(
    quiet_store: SQLiteStore,
) -> None:
    store = quiet_store
    checkpointer = store._connect()
    append(store, "#a", 5)
    store.checkpoint(checkpointer)  # a small WAL: nothing to ask for
    assert not store.wal_catch_up
    while _wal_frames(store) * store._page_size < sqlite_store.WAL_RESTART_BYTES:
        append(store, "#a", 50)
    store.checkpoint(checkpointer)
    assert store.wal_catch_up
    append(store, "#a", 1)  # catches up, then this write starts the WAL over
    assert not store.wal_catch_up
    assert _wal_frames(store) * store._page_size < sqlite_store.WAL_RESTART_BYTES // 4
    checkpointer.close()


def test_new_databases_get_small_pages_and_old_ones_keep_theirs(tmp_path: Path) -> None:
    fresh = SQLiteStore(str(tmp_path / "new.db"))
    assert fresh._page_size == sqlite_store.PAGE_SIZE
    fresh.close()
    old_path = str(tmp_path / "old.db")
    with contextlib.closing(sqlite3.connect(old_path)) as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE unrelated (x INTEGER)")
    old = SQLiteStore(old_path)
    try:
        assert old._page_size == 4096
        assert [m.seq for m in append(old, "#a", 3)] == [1, 2, 3]
    finally:
        old.close()
