"""SQLite store of record: WAL mode, versioned schema, one transaction per tick."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from chat.msgid import msgid_ms

from .model import (
    CLOSED_COMMAND,
    REDACTED_COMMAND,
    TRANSIT_PREFIX,
    FoundMessage,
    NewMessage,
    Query,
    Ref,
    Search,
    StoredMessage,
    transit_bounds,
)
from .query import (
    SERVED_COMMANDS,
    Cond,
    floor_sql,
    latest_served_sql,
    run_plan,
    served,
    served_sql,
    walk_limit,
)
from .store import (
    SEARCH_CONVERSATIONS,
    DueTargets,
    conversation_rows,
    latest_within,
    search_conditions,
    search_limit,
)

MIGRATIONS: list[str] = [
    # 1: messages with a per-channel sequence number as the total order.
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        target TEXT NOT NULL,
        seq INTEGER NOT NULL,
        msgid TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        source TEXT NOT NULL,
        command TEXT NOT NULL,
        channel TEXT NOT NULL,
        text TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT ''
    );
    CREATE UNIQUE INDEX messages_target_seq ON messages (target, seq);
    CREATE UNIQUE INDEX messages_msgid ON messages (msgid);
    CREATE INDEX messages_target_time ON messages (target, time_ms);
    """,
    # 2: direct-message conversations per account, for CHATHISTORY TARGETS: one row
    # per (account, partner), upserted with the messages (see store.conversation_rows).
    # WITHOUT ROWID: the index's entries end with the key, so it also serves the
    # (last_ms, partner) order of conversations() without a sort.
    """
    CREATE TABLE conversations (
        account TEXT NOT NULL,
        partner TEXT NOT NULL,
        partner_name TEXT NOT NULL,
        target TEXT NOT NULL,
        last_ms INTEGER NOT NULL,
        PRIMARY KEY (account, partner)
    ) WITHOUT ROWID;
    CREATE INDEX conversations_account_last ON conversations (account, last_ms);
    """,
    # 3: who sent each message (NewMessage.sender), for REDACT's own-message check;
    # older rows have none.
    """
    ALTER TABLE messages ADD COLUMN sender TEXT NOT NULL DEFAULT ''
    """,
    # 4: a msgid is unique within a target, not across them: a QUIT or a nick change
    # is one message, kept in each channel its user was in (event playback). The
    # msgid comes first, as before, so a target's reads keep walking messages_target_seq.
    """
    DROP INDEX messages_msgid;
    CREATE UNIQUE INDEX messages_msgid_target ON messages (msgid, target)
    """,
    # 5: where each unregistered private channel ended (model.ENDED_COMMAND): every
    # read of a target looks up its newest such row (query.floor_sql).
    """
    CREATE INDEX messages_ended ON messages (target, seq) WHERE command = 'ENDED'
    """,
    # 6: where a MODE made a channel closed or open again (model.CLOSED_COMMAND), read
    # once at start (``left_closed``).
    """
    CREATE INDEX messages_closed ON messages (target, seq) WHERE command IN ('CLOSED', 'OPENED')
    """,
    # 7: a row's time_ms is its msgid's millisecond (ServerCore.new_relay), so a msgid
    # is found through messages_target_time (``_BY_MSGID``), and the (msgid, target)
    # index, a fifth of what each stored message cost, goes. Older rows stored the
    # clock's time, which differed from the msgid's only after the clock went back:
    # those take their msgid's.
    """
    UPDATE messages SET time_ms = msgid_ms(msgid)
    WHERE msgid_ms(msgid) IS NOT NULL AND time_ms != msgid_ms(msgid);
    DROP INDEX messages_msgid_target
    """,
]

CHECKPOINT_INTERVAL = 1.0  # seconds between WAL checkpoints on the background thread
CHECKPOINT_NICE = 10  # low enough to yield to the loop at once, high enough to keep up
# The WAL starts over only when a write begins with every frame checkpointed. Under
# steady traffic a background checkpoint never quite catches up (commits land while
# it copies), so the WAL grew for as long as the traffic lasted, to gigabytes, and
# every commit got slower. Past this size the writer copies the few frames the
# background pass missed itself, just before its next write, so that write restarts it.
WAL_RESTART_BYTES = 64 << 20
# A commit writes every page it touched (the table's leaf and three index leaves) to
# the WAL and checksums it: with 1 KiB pages a one-message commit costs ~20 % less
# than with the 4 KiB default. Applies to new databases; existing ones keep theirs.
PAGE_SIZE = 1024
LAST_SEQ_KEPT = 10_000  # targets whose last sequence number the writer keeps in memory
# The age limit walks the oldest rows by id (insertion order, which is time order but
# for the clock skew between servers on one file), at most this many times the
# budget of them a pass, rather than scanning the table for old times: there is no
# index on time_ms alone, and one would cost every stored message.
AGE_WALK = 4

# A database file deleted or replaced under the running server (see ``check_file``).
SIDECARS = ("-wal", "-shm")
RESTORE_TRIES = 3  # copies tried in one check while other connections keep committing
# How long the old file's write lock is held after a restore: a second server on the
# same file (another process, or an in-process cluster node) writing to the old file
# meanwhile fails and retries on the restored one, rather than writing into a file
# nobody will read again. Twice its busy_timeout, and more than a second's tick.
RETIRE_SECONDS = 10.0

log = logging.getLogger("chat.server.history")

_COLUMNS = "target, seq, msgid, time_ms, source, command, channel, text, tags"
_INSERT = f"INSERT INTO messages ({_COLUMNS}, sender) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# A busy tick's rows go INSERT_CHUNK to a statement: about 1 µs a row less than one
# executemany step each (a fifth of a row's cost; larger chunks were no better), the
# rest of the tick through _INSERT.
INSERT_CHUNK = 32
_INSERT_CHUNK = _INSERT + ", (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" * (INSERT_CHUNK - 1)
# Replies carry only these (see query.SERVED_COMMANDS); references may be any row.
_SERVED = served_sql(SERVED_COMMANDS)
_FLOOR = floor_sql("?")  # its one placeholder: the target, again
# A row by its msgid: the millisecond the msgid names narrows the walk of
# messages_target_time to the few rows of that millisecond (migration 7).
_BY_MSGID = "target = ? AND time_ms = ? AND msgid = ?"
_FLOOR_BY_TIME = floor_sql("?", by_time=True)
_LATEST_SERVED = latest_served_sql("?")  # its two placeholders: the target, twice
# A piece of the retention sweep (store.SWEEP_TARGETS): the next targets after the
# cursor, one MIN(target) probe each, with their newest and oldest seq (two more probes;
# SQLite does one min() or max() as a probe, both in one SELECT as a walk of the target).
_SWEEP = (
    "WITH RECURSIVE t(target) AS (SELECT (SELECT MIN(target) FROM messages "
    "WHERE target > ?) UNION ALL SELECT (SELECT MIN(m.target) FROM messages m "
    "WHERE m.target > t.target) FROM t WHERE t.target IS NOT NULL LIMIT ?) "
    "SELECT target, (SELECT MAX(seq) FROM messages n WHERE n.target = t.target), "
    "(SELECT MIN(seq) FROM messages o WHERE o.target = t.target) "
    "FROM t WHERE target IS NOT NULL"
)
# The newest message wins a conversation row: its time, partner name and target
# (every SET expression reads the row as it was, so the CASEs see the old last_ms).
_UPSERT_CONVERSATION = (
    "INSERT INTO conversations (account, partner, partner_name, target, last_ms) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account, partner) DO UPDATE SET "
    "partner_name = CASE WHEN excluded.last_ms >= last_ms "
    "THEN excluded.partner_name ELSE partner_name END, "
    "target = CASE WHEN excluded.last_ms >= last_ms THEN excluded.target ELSE target END, "
    "last_ms = MAX(last_ms, excluded.last_ms)"
)


def lower_thread_priority(nice: int) -> None:
    """Make the calling thread yield to the event loop's thread (Linux: per-thread).

    A checkpoint copies many pages; at the loop's priority it held the CPU for
    milliseconds at a time (under SCHED_FIFO until done), which was most of the p99
    latency of a busy server. Where the OS has no per-thread priority, nothing changes.
    """
    with contextlib.suppress(AttributeError, OSError):
        if os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR):
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    with contextlib.suppress(AttributeError, OSError):
        current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), max(current, nice))


def _row(r: tuple[object, ...]) -> StoredMessage:
    return StoredMessage(*r)  # type: ignore[arg-type]


Identity = tuple[int, int]  # (st_dev, st_ino): which file a path names


def file_identity(path: str) -> Identity | None:
    """The file ``path`` names now; None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class DatabaseFile:
    """One SQLite file as this process uses it, shared by every store on its path (the
    history and account stores share ``--db``; in-process cluster nodes share one).

    ``lock`` is held by a history store while it restores or follows the file, and by
    the account store around each of its calls; ``generation`` goes up each time a
    history store moves to a new file at the path, and every other connection (readers,
    the checkpointer, the account store's) is opened again at its next use."""

    __slots__ = ("generation", "lock", "path", "users")

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.generation = 0
        self.users = 0


_FILES: dict[str, DatabaseFile] = {}
_FILES_LOCK = threading.Lock()


def share_file(path: str) -> DatabaseFile:
    """The process's DatabaseFile for ``path``; ``release_file`` when closed."""
    key = os.path.abspath(path)
    with _FILES_LOCK:
        shared = _FILES.get(key)
        if shared is None:
            shared = _FILES[key] = DatabaseFile(key)
        shared.users += 1
        return shared


def release_file(shared: DatabaseFile) -> None:
    with _FILES_LOCK:
        shared.users -= 1
        if shared.users <= 0 and _FILES.get(shared.path) is shared:
            del _FILES[shared.path]


def existing_file_uri(path: str) -> str:
    """A URI that opens ``path`` only if it exists: a connection opened while the file
    is deleted must fail, not make an empty database there."""
    return Path(path).absolute().as_uri() + "?mode=rw"


def _record_path(path: str) -> str:
    return path + ".restored"


def _read_record(path: str) -> tuple[Identity, Identity] | None:
    """(the file that was lost, the one restored in its place), as the last restore at
    ``path`` wrote them (this process or another server on the file)."""
    try:
        with open(_record_path(path), encoding="ascii") as f:
            data = json.load(f)
        lost, restored = data["lost"], data["restored"]
        return (int(lost[0]), int(lost[1])), (int(restored[0]), int(restored[1]))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def _write_record(path: str, lost: Identity, restored: Identity) -> None:
    record = _record_path(path)
    partial = f"{record}.{os.getpid()}"
    with open(partial, "w", encoding="ascii") as f:
        json.dump({"lost": list(lost), "restored": list(restored)}, f)
    os.replace(partial, record)


class SQLiteStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self.reads = 0
        self._local = threading.local()
        self._last_seq: dict[str, int] = {}
        self._data_version: int | None = None  # PRAGMA data_version after our last look
        self._retention = DueTargets()  # what ``prune`` looks at
        self._writer = self._connect(create=True)
        try:
            self._migrate(self._writer)
        except BaseException:
            self._writer.close()
            raise
        # Checkpoints fsync; the writer runs on the event loop, so they run here instead.
        self._writer.execute("PRAGMA wal_autocheckpoint=0")
        self._page_size = int(self._writer.execute("PRAGMA page_size").fetchone()[0])
        # The file the writer has open, and its WAL and shared-memory files, to notice
        # the path naming another file (``check_file``).
        self._file = share_file(path)
        self._identity = file_identity(path)
        self._sidecars = {suffix: file_identity(path + suffix) for suffix in SIDECARS}
        self._retired: list[tuple[float, sqlite3.Connection]] = []  # old writers, locked
        self._check_failing = False
        self.wal_catch_up = False  # set by the checkpoint thread, cleared by the writer
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="history-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _connect(self, *, create: bool = False) -> sqlite3.Connection:
        """A connection with the store's pragmas. Only the first writer may create the
        file: any other opened while it is deleted fails rather than make an empty one."""
        if create:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        else:
            conn = sqlite3.connect(existing_file_uri(self.path), isolation_level=None,
                                   check_same_thread=False, uri=True)
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # no-op once the file has pages
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit is in the OS before it returns, so it survives kill -9 of
        # the server (not a power cut), without an fsync per tick.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        # The file keeps its size when the WAL starts over (rewriting it is cheaper than
        # growing it); only a file left bigger than this by a burst is cut back.
        conn.execute(f"PRAGMA journal_size_limit={2 * WAL_RESTART_BYTES}")
        return conn

    def _reader(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        generation = self._file.generation
        if conn is None or local.generation != generation:
            if conn is not None:  # on the file the path named before a restore
                local.conn = None
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            conn = self._connect()
            local.conn, local.generation = conn, generation
        return conn

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """This thread's reader inside one read transaction: several queries (one per
        target) see the same database."""
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        conn.create_function("msgid_ms", 1, msgid_ms, deterministic=True)  # for 7
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = int(row[0] or 0)
        for version, script in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Another server on the same file may have applied it since we looked.
                row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
                if int(row[0] or 0) < version:
                    for statement in script.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_version (version) VALUES (?)", (version,)
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def schema_version(self) -> int:
        row = self._writer.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    # ------------------------------------------------------------------ writes

    def append(self, messages: Sequence[NewMessage]) -> list[StoredMessage]:
        if not messages:
            return []
        conn = self._writer
        last_seq = self._last_seq
        rows: list[StoredMessage] = []
        params: list[tuple[object, ...]] = []  # each row and its sender, for the INSERT
        transit: list[str] = []  # transit targets numbered in this tick
        cap = self._retention.cap
        over: dict[str, int] = {}  # targets written past the row cap: due for the next pass
        if self.wal_catch_up:
            self.wal_catch_up = False
            # The frames the checkpoint thread missed, and fsyncs: 1-5 ms on the loop,
            # every ~4 s at 4,000 commits/s. (At 16 MiB, once a second, it doubled the
            # rooms benchmark's p99; a WAL left to grow cost every commit far more.)
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process (a second server on the same file) committed since we
            # last looked: the cached last numbers may be stale. Our own commits do
            # not change data_version, so one server alone never pays for a re-read.
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:
                last_seq.clear()
                self._data_version = version
            for m in messages:
                last = last_seq.get(m.target)
                if last is None:
                    row = conn.execute(
                        "SELECT MAX(seq) FROM messages WHERE target = ?", (m.target,)
                    ).fetchone()
                    last = int(row[0] or 0)
                    if m.target[:1] == TRANSIT_PREFIX:
                        transit.append(m.target)
                last_seq[m.target] = seq = last + 1
                if seq > cap:
                    over[m.target] = seq
                stored = m.numbered(seq)
                rows.append(stored)
                # One tuple concatenation in C (unpacking into a new tuple is slower).
                params.append(stored + (m.sender,))  # noqa: RUF005
            whole = len(params) - len(params) % INSERT_CHUNK
            for start in range(0, whole, INSERT_CHUNK):
                chunk = params[start:start + INSERT_CHUNK]
                conn.execute(_INSERT_CHUNK, [value for row in chunk for value in row])
            if whole < len(params):
                conn.executemany(_INSERT, params[whole:])
            conversations = conversation_rows(messages)
            if conversations:
                conn.executemany(_UPSERT_CONVERSATION, conversations)
            conn.execute("COMMIT")
        except BaseException:
            self._last_seq.clear()  # re-read from the database next time
            # SQLite may have rolled back by itself (a full disk, an I/O error): a
            # ROLLBACK then fails, and hid the error that matters.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if over:  # (only once committed: a rolled-back number would prune too much)
            self._retention.note(over)
        # A transit target is one recipient's connection: few rows, then never again.
        # Its number is read from the index each time rather than kept for the run.
        for target in transit:
            last_seq.pop(target, None)
        # Channels made to be thrown away (JOIN 45 names, JOIN 0, again) would each keep
        # an entry for the run: the earliest known go first, and are read again if used.
        while len(last_seq) > LAST_SEQ_KEPT:
            del last_seq[next(iter(last_seq))]
        return rows

    def redact(self, target: str, msgid: str) -> bool:
        # One statement: its own transaction (the connection is in autocommit mode).
        # Sequence numbers do not move, so _last_seq stays right.
        ms = msgid_ms(msgid)
        if ms is None:
            return False
        cur = self._writer.execute(
            f"UPDATE messages SET command = ?, text = '', tags = '' WHERE {_BY_MSGID} "
            "AND command != ?",
            (REDACTED_COMMAND, target, ms, msgid, REDACTED_COMMAND),
        )
        return cur.rowcount > 0

    @property
    def prune_probes(self) -> int:
        """Targets the last retention pass probed, for tests."""
        return self._retention.probes

    def prune(self, max_rows: int, max_age_ms: int, now_ms: int, budget: int) -> int:
        # Only messages: conversations rows are left alone (one tiny row per account
        # and partner), so a conversation stays listed after its messages expire.
        deleted = 0
        if max_age_ms > 0:
            deleted += self._prune_by_age(now_ms - max_age_ms, budget)
        retention = self._retention
        cursor = retention.begin(max_rows, now_ms)
        if max_rows <= 0:
            return deleted
        if cursor is not None:
            rows = self._writer.execute(_SWEEP, (cursor, retention.piece)).fetchall()
            retention.swept([(str(t), int(new), old <= new - max_rows) for t, new, old in rows])
        return deleted + retention.prune(self._delete_up_to, budget - deleted)

    def _prune_by_age(self, before_ms: int, budget: int) -> int:
        """Delete up to ``budget`` rows older than ``before_ms`` among the oldest
        AGE_WALK * ``budget`` rows by id (see AGE_WALK): the walk stops there, so a
        pass with nothing old reads that many rows, not the table."""
        cur = self._writer.execute(
            "DELETE FROM messages WHERE id IN (SELECT id FROM (SELECT id, time_ms "
            "FROM messages ORDER BY id LIMIT ?) WHERE time_ms < ? LIMIT ?)",
            (AGE_WALK * budget, before_ms, budget),
        )
        return max(cur.rowcount, 0)

    def _delete_up_to(self, target: str, seq: int, limit: int) -> int:
        """Delete up to ``limit`` of ``target``'s rows numbered ``seq`` or lower."""
        cur = self._writer.execute(
            "DELETE FROM messages WHERE id IN (SELECT id FROM messages "
            "WHERE target = ? AND seq <= ? LIMIT ?)",
            (target, seq, limit),
        )
        return max(cur.rowcount, 0)

    def prune_transit(self, before_ms: int, budget: int) -> int:
        low, high = transit_bounds(TRANSIT_PREFIX)
        cur = self._writer.execute(
            "DELETE FROM messages WHERE id IN (SELECT id FROM messages "
            "WHERE target >= ? AND target < ? AND time_ms < ? LIMIT ?)",
            (low, high, before_ms, budget),
        )
        return max(cur.rowcount, 0)

    # ------------------------------------------------------------------ reads

    def transit(self, prefix: str, since_ms: int, limit: int) -> list[StoredMessage]:
        self.reads += 1
        low, high = transit_bounds(prefix)
        # One walk of the prefix's range of messages_target_time: a node's transit rows
        # of the last hour at most (prune_transit), whatever the number of its users.
        rows = self._reader().execute(
            f"SELECT {_COLUMNS} FROM messages WHERE target >= ? AND target < ? "
            "AND time_ms >= ? ORDER BY time_ms DESC, target DESC, seq DESC LIMIT ?",
            (low, high, since_ms, limit),
        ).fetchall()
        return [_row(r) for r in reversed(rows)]

    def left_closed(self) -> list[tuple[str, str]]:
        self.reads += 1
        # The bare columns of a MAX() aggregate come from its row (SQLite's rule); the
        # IN is the partial index's own condition, so the walk is of those rows only.
        rows = self._reader().execute(
            "SELECT target, channel FROM (SELECT target, channel, command, MAX(seq) AS seq "
            "FROM messages WHERE command IN ('CLOSED', 'OPENED') GROUP BY target) "
            f"AS c WHERE command = '{CLOSED_COMMAND}' AND {floor_sql('c.target')}"
        ).fetchall()
        return [(str(t), str(name)) for t, name in rows]

    def window(self, target: str, size: int) -> list[StoredMessage]:
        self.reads += 1
        rows = self._reader().execute(
            f"SELECT {_COLUMNS} FROM messages WHERE target = ? ORDER BY seq DESC LIMIT ?",
            (target, size),
        ).fetchall()
        return [_row(r) for r in reversed(rows)]

    def find(self, target: str, msgid: str) -> FoundMessage | None:
        self.reads += 1
        ms = msgid_ms(msgid)
        if ms is None:
            return None
        row = self._reader().execute(
            f"SELECT {_COLUMNS}, sender FROM messages WHERE {_BY_MSGID} AND {_FLOOR}",
            (target, ms, msgid, target),
        ).fetchone()
        return FoundMessage(_row(row[:-1]), str(row[-1])) if row else None

    def _resolve(self, target: str, ref: Ref) -> tuple[int, int] | None:
        """(seq, time_ms) of a msgid reference in this target, or None if unknown."""
        ms = msgid_ms(ref.msgid)
        if ms is None:
            return None
        row = self._reader().execute(
            f"SELECT seq FROM messages WHERE {_BY_MSGID}", (target, ms, ref.msgid)
        ).fetchone()
        return (int(row[0]), ms) if row else None

    def query(self, q: Query) -> list[StoredMessage]:
        self.reads += 1
        conn = self._reader()

        def select(conds: list[Cond], newest: bool, limit: int) -> list[StoredMessage]:
            where = ["target = ?", _FLOOR, *(f"{c} {op} ?" for c, op, _ in conds)]
            values: list[int | str] = [value for _, _, value in conds]
            if q.until_msgid:  # msgids sort by time: this leaves out the newest few
                where.append("msgid < ?")
                values.append(q.until_msgid)
            order = "DESC" if newest else "ASC"
            commands = frozenset(served(q))
            out: list[StoredMessage] = []
            # The served rows among the first walk_limit(limit), picked here as SQLite
            # steps through them, so the walk stops at ``limit`` of them. (With the
            # commands in the WHERE, the walk went past every other row; in an outer
            # query, SQLite sorted the whole walk before the LIMIT.)
            with contextlib.closing(conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE {' AND '.join(where)} "
                f"ORDER BY seq {order} LIMIT ?",
                (q.target, q.target, *values, walk_limit(limit, q.playback)),
            )) as walk:
                for r in walk:
                    if r[5] in commands:
                        out.append(_row(r))
                        if len(out) == limit:
                            break
            return out[::-1] if newest else out

        return run_plan(q, lambda ref: self._resolve(q.target, ref), select)

    def targets(
        self, folded: Sequence[str], start_ms: int, end_ms: int, limit: int
    ) -> list[tuple[str, int]]:
        self.reads += 1
        if not folded:
            return []
        lo, hi = min(start_ms, end_ms), max(start_ms, end_ms)
        # Each target's latest served message: a walk of at most TARGETS_WALK rows down
        # messages_target_time from its newest end.
        with self._snapshot() as conn:
            latest = [conn.execute(_LATEST_SERVED, (t, t)).fetchone()
                      for t in dict.fromkeys(folded)]
        return latest_within(((str(r[0]), int(r[1])) for r in latest if r), lo, hi, limit)

    def conversations(
        self, account: str, start_ms: int, end_ms: int, limit: int
    ) -> list[tuple[str, str, int]]:
        self.reads += 1
        lo, hi = min(start_ms, end_ms), max(start_ms, end_ms)
        rows = self._reader().execute(
            "SELECT partner_name, target, last_ms FROM conversations "
            "WHERE account = ? AND last_ms > ? AND last_ms < ? "
            "ORDER BY last_ms ASC, partner LIMIT ?",
            (account, lo, hi, limit),
        ).fetchall()
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def search(self, q: Search) -> list[StoredMessage]:
        self.reads += 1
        limit = search_limit(q)
        if (not q.targets and not q.account) or limit == 0:
            return []
        # LIKE folds ASCII letters only (no ICU), as the patterns expect.
        conditions, values = search_conditions(q, "?", "{}")
        where = ["target = ?", _FLOOR_BY_TIME, _SERVED, *conditions]
        # One walk down messages_target_time per target, newest first, stopping at
        # ``limit`` hits: never other targets' rows, never more than needed of these.
        sql = (
            f"SELECT {_COLUMNS} FROM messages WHERE {' AND '.join(where)} "
            "ORDER BY time_ms DESC, seq DESC LIMIT ?"
        )
        with self._snapshot() as conn:
            keys = set(q.targets)
            if q.account:
                keys.update(str(r[0]) for r in conn.execute(
                    "SELECT target FROM conversations WHERE account = ? "
                    "ORDER BY last_ms DESC, partner DESC LIMIT ?",
                    (q.account, SEARCH_CONVERSATIONS)))
            targets = sorted(keys)
            hits = [
                [_row(r) for r in conn.execute(sql, (t, t, *values, limit)).fetchall()]
                for t in targets
            ]
        newest = heapq.merge(
            *hits, key=lambda r: (r.time_ms, r.target, r.seq), reverse=True
        )
        return list(itertools.islice(newest, limit))[::-1]

    def _checkpoint_loop(self) -> None:
        lower_thread_priority(CHECKPOINT_NICE)
        generation = self._file.generation
        conn: sqlite3.Connection | None = self._connect()
        try:
            while not self._stop.wait(CHECKPOINT_INTERVAL):
                with contextlib.suppress(sqlite3.Error):
                    if conn is None or generation != self._file.generation:
                        if conn is not None:  # the file was restored: checkpoint that one
                            conn.close()
                            conn = None
                        generation = self._file.generation
                        conn = self._connect()
                    self.checkpoint(conn)
        finally:
            if conn is not None:
                conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """The checkpoint thread's pass, on its own connection ``conn``."""
        # PASSIVE never waits for the writer, so commits are never held up.
        frames = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        if frames * self._page_size >= WAL_RESTART_BYTES:
            # A second pass copies what was committed during the first, so the
            # writer's own catch-up has only a few frames left to copy.
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.wal_catch_up = True

    # ------------------------------------------------------------------ the file

    def check_file(self) -> bool:
        """Whether the path still names the file the writer has open; if not, put the
        database back there. Called on the writer's thread (the transport's loop), once
        a tick, between commits: one stat() when all is well.

        SQLite keeps using a file deleted under it (and the WAL and shared-memory files
        beside it): everything written after the deletion, and before, would be gone at
        the next start. The open connection still reads the whole database, so it is
        copied (the backup API) to a new file put at the path, and every connection
        moves there: the writer now, readers, the checkpointer and the account store at
        their next use (``DatabaseFile.generation``). A file found at the path instead
        (replaced) is kept beside it as ``<path>.replaced-<time>``, never overwritten.
        If another server on the file restored it first (it leaves a record of which
        file it replaced by which), this one moves to that file instead.

        Returns True when the writer moved; a failure is logged (once while it lasts)
        and tried again at the next call."""
        if self._retired:
            self._close_retired(time.monotonic())
        try:
            if file_identity(self.path) == self._identity:
                return False
            with self._file.lock:
                moved = self._recover(file_identity(self.path))
        except Exception:
            if not self._check_failing:
                log.exception("history database %s is gone from its path and could not be "
                              "restored yet; trying again", self.path)
            self._check_failing = True
            return False
        self._check_failing = False
        return moved

    def _recover(self, found: Identity | None) -> bool:
        if found == self._identity:
            return False
        if found is not None and _read_record(self.path) == (self._identity, found):
            self._move_to(found)
            log.warning("history database %s was restored by another server on the same "
                        "file: moved to the restored file", self.path)
            return True
        started = time.monotonic()
        aside = self._restore(found)
        pages = int(self._writer.execute("PRAGMA page_count").fetchone()[0])
        log.warning(
            "history database %s was %s under the running server: restored from the open "
            "connection (%d pages, %.2f s); carrying on with the restored file", self.path,
            "deleted" if aside is None else f"replaced (kept as {aside})",
            pages, time.monotonic() - started)
        return True

    def _restore(self, found: Identity | None) -> str | None:
        """Copy the database the writer sees to a new file at the path; move the writer
        there. Returns where a file found at the path was moved, if any."""
        path = self.path
        old = self._writer
        partial = f"{path}.restoring-{os.getpid()}"
        for _ in range(RESTORE_TRIES):
            version = old.execute("PRAGMA data_version").fetchone()[0]
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
            copy = sqlite3.connect(partial)
            try:
                old.backup(copy)
            finally:
                copy.close()
            # Others writing to the old file (the account store is held off by the
            # file's lock; another server on the file is not) wait from here on; if one
            # committed during the copy, copy again.
            old.execute("BEGIN IMMEDIATE")
            if old.execute("PRAGMA data_version").fetchone()[0] == version:
                break
            old.execute("ROLLBACK")
        else:
            os.unlink(partial)
            raise sqlite3.OperationalError("the database kept changing while it was copied")
        try:
            aside = f"{path}.replaced-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
            kept = False
            if found is not None:  # someone else's file: kept, not overwritten
                os.replace(path, aside)
                kept = True
            for suffix, ours in self._sidecars.items():
                sidecar = path + suffix
                there = file_identity(sidecar)
                if there is None:
                    continue
                if there == ours:  # the old file's own: its connections keep it open
                    os.unlink(sidecar)
                else:  # the replacement's (or a stray one): beside it
                    os.replace(sidecar, aside + suffix)
                    kept = True
            restored = file_identity(partial)
            assert restored is not None
            if self._identity is not None:
                _write_record(path, self._identity, restored)
            os.replace(partial, path)
            self._move_to(restored)
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                old.execute("ROLLBACK")
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise
        # The old writer keeps the old file's write lock for a while (RETIRE_SECONDS).
        self._retired.append((time.monotonic() + RETIRE_SECONDS, old))
        return aside if kept else None

    def _move_to(self, identity: Identity) -> None:
        """The writer on the file now at the path; the other connections at their next
        use. The caller holds the file's lock and keeps or closes the old writer."""
        writer = self._connect()
        try:
            writer.execute("PRAGMA wal_autocheckpoint=0")
            # A read: our database, and its WAL and shared-memory files made (noted below).
            writer.execute("SELECT MAX(version) FROM schema_version").fetchone()
        except BaseException:
            writer.close()
            raise
        old, self._writer = self._writer, writer
        if not old.in_transaction:  # (a restore's old writer is kept, still locked)
            with contextlib.suppress(sqlite3.Error):
                old.close()
        self._identity = identity
        self._sidecars = {suffix: file_identity(self.path + suffix) for suffix in SIDECARS}
        self._last_seq.clear()
        self._data_version = None
        self._file.generation += 1

    def _close_retired(self, now: float | None = None) -> None:
        """Old writers whose time is up (every one when ``now`` is None)."""
        while self._retired and (now is None or now >= self._retired[0][0]):
            _, conn = self._retired.pop(0)
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._checkpointer.join(5)
        self._close_retired()
        with contextlib.suppress(sqlite3.Error):
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        self._writer.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        release_file(self._file)
