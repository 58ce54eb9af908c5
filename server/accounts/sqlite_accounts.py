"""Accounts in SQLite: the ``accounts`` table of the history store's database file,
and beside it ``read_markers`` (IRCv3 draft/read-marker, per account and target),
``registered_channels`` (ChanServ's registrations) and ``memos`` (MemoServ's).

The history store (server/history/sqlite_store.py) owns the file's versioned
migrations; these tables are not among them. The account store creates them with
``CREATE TABLE IF NOT EXISTS`` on its own, so either store may open the file
first, and neither one's schema version depends on the other. A column added since
(``accounts.scram``) is added to an older file at open when it is missing.

One connection behind a lock: creates and lookups are rare (a registration, a SASL
login) next to the scrypt hash around each, so a connection per worker thread would
buy nothing. The connection waits up to ``busy_timeout`` for the history writer's
transaction on the loop thread, never the other way round for long: each create is
one short statement.

The lock is the file's own (``sqlite_store.DatabaseFile``), shared with the history
store on the same path: when the file is deleted or replaced under the running server,
the history store copies the database back to the path while holding it, so no account
write lands in the old file after the copy, and this store's connection is opened again
on the restored file at its next call (``DatabaseFile.generation``).
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import threading
from collections.abc import Sequence

from server.history.sqlite_store import (
    PAGE_SIZE,
    existing_file_uri,
    release_file,
    share_file,
)

from .model import ACCOUNT_MARKERS, Account, Memo, RegisteredChannel
from .store import SECRET_BYTES

BUSY_TIMEOUT_MS = 5000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    folded TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    scram TEXT
)
"""

# Files from before SCRAM: the column is added at open (NULL: no credentials yet).
_SCRAM_COLUMN = "ALTER TABLE accounts ADD COLUMN scram TEXT"

_MARKERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS read_markers (
    account TEXT NOT NULL,
    target TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    PRIMARY KEY (account, target)
)
"""

# ops: the folded account names joined by single spaces ("" for none).
_CHANNELS_SCHEMA = """
CREATE TABLE IF NOT EXISTS registered_channels (
    folded TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    founder TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    ops TEXT NOT NULL,
    state TEXT NOT NULL
)
"""

# Dropping an account deletes the channels it founded.
_CHANNELS_FOUNDER_INDEX = (
    "CREATE INDEX IF NOT EXISTS registered_channels_founder ON registered_channels (founder)"
)

# AUTOINCREMENT: a deleted memo's id is never given again (plain INTEGER PRIMARY KEY
# would reuse the highest one), so an id a user saw never names another memo.
_MEMOS_SCHEMA = """
CREATE TABLE IF NOT EXISTS memos (
    memo_id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient TEXT NOT NULL,
    sender TEXT NOT NULL,
    sent_ms INTEGER NOT NULL,
    text TEXT NOT NULL,
    read INTEGER NOT NULL DEFAULT 0
)
"""

_MEMOS_RECIPIENT_INDEX = "CREATE INDEX IF NOT EXISTS memos_recipient ON memos (recipient, memo_id)"

# Secrets the server keeps across restarts (AccountStore.secret): the cloak key.
_SECRETS_SCHEMA = """
CREATE TABLE IF NOT EXISTS server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
"""

# A marker moves only forward, and only an existing account keeps one (atomic against
# another server on the same file: a drop there is before or after the statement).
# (The WHERE also settles SQLite's parse of INSERT ... SELECT ... ON CONFLICT.)
_SET_MARKER = (
    "INSERT INTO read_markers (account, target, time_ms) SELECT ?, ?, ? "
    "WHERE EXISTS (SELECT 1 FROM accounts WHERE folded = ?) "
    "ON CONFLICT (account, target) "
    "DO UPDATE SET time_ms = MAX(read_markers.time_ms, excluded.time_ms)"
)
# The account's oldest past ACCOUNT_MARKERS go, as ``model.Markers`` drops them.
_TRIM_MARKERS = (
    "DELETE FROM read_markers WHERE account = ? AND target IN (SELECT target "
    "FROM read_markers WHERE account = ? ORDER BY time_ms DESC, target DESC "
    "LIMIT -1 OFFSET ?)"
)

# SQLite integers are 64-bit: a larger id (typed by a user) matches no memo, and
# binding it would raise OverflowError.
_MAX_ID = 2**63 - 1


class SQLiteAccountStore:
    """Accounts in the SQLite file at ``path`` (WAL; shared with the history store)."""

    def __init__(self, path: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._closed = False
        # Raises here (a missing directory, a file that is not a database), so a bad
        # --db stops the server at start-up rather than failing every login later.
        self._conn = self._connect(busy_timeout_ms)
        self._file = share_file(path)
        self._lock: threading.Lock = self._file.lock
        self._generation = self._file.generation
        try:
            self._conn.execute(_SCHEMA)
            self._add_scram_column()
            self._conn.execute(_MARKERS_SCHEMA)
            self._conn.execute(_CHANNELS_SCHEMA)
            self._conn.execute(_CHANNELS_FOUNDER_INDEX)
            self._conn.execute(_MEMOS_SCHEMA)
            self._conn.execute(_MEMOS_RECIPIENT_INDEX)
            self._conn.execute(_SECRETS_SCHEMA)
        except BaseException:
            self._conn.close()
            release_file(self._file)
            raise

    def _add_scram_column(self) -> None:
        """The migration of a file from before SCRAM, once: SQLite has no ADD COLUMN IF
        NOT EXISTS, so look first; another process opening the same file may add it
        between the look and the ALTER, which then fails harmlessly."""
        if not self._has_scram_column():
            try:
                self._conn.execute(_SCRAM_COLUMN)
            except sqlite3.OperationalError:
                if not self._has_scram_column():
                    raise

    def _has_scram_column(self) -> bool:
        columns = self._conn.execute("PRAGMA table_info(accounts)").fetchall()
        return any(row[1] == "scram" for row in columns)

    def _connect(self, busy_timeout_ms: int, *, create: bool = True) -> sqlite3.Connection:
        # isolation_level=None: each statement is its own transaction, committed before
        # execute() returns. check_same_thread=False: any worker thread, under the lock.
        # Opened again after a restore, never to make a new empty file at the path.
        if create:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        else:
            conn = sqlite3.connect(existing_file_uri(self.path), isolation_level=None,
                                   check_same_thread=False, uri=True)
        try:
            # First, so that the pragmas below wait for the history writer too.
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            # The history store's page size, in case this store creates the file:
            # a no-op once the file has pages, so it never changes an existing one.
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode=WAL")
            # As the history store: in WAL mode a commit is in the OS before it
            # returns, so it survives kill -9 of the server (not a power cut).
            conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            conn.close()
            raise
        # wal_autocheckpoint is left at its default: a checkpoint our rare commits
        # start runs on the worker thread, and it keeps the WAL bounded if no history
        # store shares the file.
        return conn

    def _open_conn(self) -> sqlite3.Connection:
        """The connection, under the lock; opened again on the file a history store put
        back at the path since the last call (the old one is the deleted file's)."""
        if self._closed:
            raise RuntimeError("the account store is closed")
        if self._generation != self._file.generation:
            conn = self._connect(self._busy_timeout_ms, create=False)
            old, self._conn = self._conn, conn
            self._generation = self._file.generation
            with contextlib.suppress(sqlite3.Error):
                old.close()
        return self._conn

    def create(self, folded: str, account: Account) -> bool:
        with self._lock:
            # The primary key makes this atomic across connections and processes
            # (another server on the same file): a second insert of `folded` is ignored.
            cur = self._open_conn().execute(
                "INSERT INTO accounts (folded, name, password_hash, created_ms, scram) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (folded) DO NOTHING",
                (folded, account.name, account.password_hash, account.created_ms, account.scram),
            )
            return cur.rowcount == 1

    def find(self, folded: str) -> Account | None:
        with self._lock:
            row = self._open_conn().execute(
                "SELECT name, password_hash, created_ms, scram FROM accounts WHERE folded = ?",
                (folded,),
            ).fetchone()
        if row is None:
            return None
        return Account(str(row[0]), str(row[1]), int(row[2]), _text_or_none(row[3]))

    def set_password(self, folded: str, password_hash: str, scram: str | None = None) -> bool:
        with self._lock:
            cur = self._open_conn().execute(
                "UPDATE accounts SET password_hash = ?, scram = ? WHERE folded = ?",
                (password_hash, scram, folded),
            )
            return cur.rowcount == 1

    def set_scram(self, folded: str, password_hash: str, scram: str) -> bool:
        with self._lock:
            # One statement: a password change by another process is either before it
            # (no row matches) or after it (and replaces these credentials).
            cur = self._open_conn().execute(
                "UPDATE accounts SET scram = ? WHERE folded = ? AND password_hash = ?",
                (scram, folded, password_hash),
            )
            return cur.rowcount == 1

    def delete(self, folded: str) -> bool:
        with self._lock:
            conn = self._open_conn()
            # One transaction: the account, its markers, its channels and its memos
            # go together or not at all. IMMEDIATE takes the write lock at BEGIN
            # (waiting up to busy_timeout).
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM read_markers WHERE account = ?", (folded,))
                conn.execute("DELETE FROM memos WHERE recipient = ?", (folded,))
                conn.execute("DELETE FROM registered_channels WHERE founder = ?", (folded,))
                cur = conn.execute("DELETE FROM accounts WHERE folded = ?", (folded,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return cur.rowcount == 1

    def read_markers(self) -> list[tuple[str, str, int]]:
        with self._lock:
            rows = self._open_conn().execute(
                "SELECT account, target, time_ms FROM read_markers"
            ).fetchall()
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def set_read_markers(self, markers: Sequence[tuple[str, str, int]]) -> None:
        if not markers:
            return
        with self._lock:
            conn = self._open_conn()
            # One transaction for the lot: the history writer on the loop waits for the
            # file's write lock while this holds it, so it is taken once per batch (the
            # core sends one a second), not once per MARKREAD.
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_SET_MARKER, [(a, t, ms, a) for a, t, ms in markers])
                for account in {a for a, _t, _ms in markers}:
                    conn.execute(_TRIM_MARKERS, (account, account, ACCOUNT_MARKERS))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def drop_read_markers(self, account: str) -> None:
        with self._lock:
            self._open_conn().execute("DELETE FROM read_markers WHERE account = ?", (account,))

    def channels(self) -> list[tuple[str, RegisteredChannel]]:
        with self._lock:
            rows = self._open_conn().execute(
                "SELECT folded, name, founder, created_ms, ops, state FROM registered_channels"
            ).fetchall()
        return [
            (str(r[0]), RegisteredChannel(str(r[1]), str(r[2]), int(r[3]), _ops(r[4]), str(r[5])))
            for r in rows
        ]

    def register_channel(self, folded: str, channel: RegisteredChannel) -> bool:
        with self._lock:
            # Atomic across connections and processes through the primary key, as create.
            cur = self._open_conn().execute(
                "INSERT INTO registered_channels "
                "(folded, name, founder, created_ms, ops, state) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (folded) DO NOTHING",
                (
                    folded, channel.name, channel.founder, channel.created_ms,
                    " ".join(channel.ops), channel.state,
                ),
            )
            return cur.rowcount == 1

    def save_channel(self, folded: str, channel: RegisteredChannel) -> bool:
        with self._lock:
            cur = self._open_conn().execute(
                "UPDATE registered_channels SET founder = ?, ops = ?, state = ? WHERE folded = ?",
                (channel.founder, " ".join(channel.ops), channel.state, folded),
            )
            return cur.rowcount == 1

    def drop_channel(self, folded: str) -> bool:
        with self._lock:
            cur = self._open_conn().execute(
                "DELETE FROM registered_channels WHERE folded = ?", (folded,)
            )
            return cur.rowcount == 1

    def send_memo(
        self, recipient: str, sender: str, sent_ms: int, text: str, limit: int
    ) -> int | None:
        with self._lock:
            conn = self._open_conn()
            # IMMEDIATE takes the file's write lock before the count, so no other
            # connection or process can insert between the count and our insert.
            conn.execute("BEGIN IMMEDIATE")
            try:
                (count,) = conn.execute(
                    "SELECT COUNT(*) FROM memos WHERE recipient = ?", (recipient,)
                ).fetchone()
                memo_id = None
                if count < limit:
                    cur = conn.execute(
                        "INSERT INTO memos (recipient, sender, sent_ms, text) VALUES (?, ?, ?, ?)",
                        (recipient, sender, sent_ms, text),
                    )
                    memo_id = cur.lastrowid
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return memo_id

    def memos(self, recipient: str) -> list[Memo]:
        with self._lock:
            rows = self._open_conn().execute(
                "SELECT memo_id, sender, sent_ms, text, read FROM memos "
                "WHERE recipient = ? ORDER BY memo_id",
                (recipient,),
            ).fetchall()
        return [Memo(int(r[0]), str(r[1]), int(r[2]), str(r[3]), bool(r[4])) for r in rows]

    def mark_memo_read(self, recipient: str, memo_id: int) -> bool:
        with self._lock:
            conn = self._open_conn()
            if not 0 < memo_id <= _MAX_ID:
                return False
            cur = conn.execute(
                "UPDATE memos SET read = 1 WHERE recipient = ? AND memo_id = ?",
                (recipient, memo_id),
            )
            return cur.rowcount == 1

    def delete_memos(self, recipient: str, memo_ids: list[int]) -> int:
        ids = sorted({i for i in memo_ids if 0 < i <= _MAX_ID})
        with self._lock:
            conn = self._open_conn()
            if not ids:
                return 0
            # Far below SQLite's bound on parameters (999 at least): the ids come from
            # one IRC line or one recipient's memos, both short.
            marks = ", ".join("?" * len(ids))
            cur = conn.execute(
                f"DELETE FROM memos WHERE recipient = ? AND memo_id IN ({marks})",
                (recipient, *ids),
            )
            return cur.rowcount

    def secret(self, name: str) -> str:
        with self._lock:
            conn = self._open_conn()
            # Whichever server sharing the file asks first makes it; the others read it.
            conn.execute(
                "INSERT INTO server_secrets (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (name, secrets.token_hex(SECRET_BYTES)),
            )
            row = conn.execute("SELECT value FROM server_secrets WHERE name = ?", (name,))
            return str(row.fetchone()[0])

    def unread_memos(self) -> list[tuple[str, int]]:
        with self._lock:
            rows = self._open_conn().execute(
                "SELECT recipient, COUNT(*) FROM memos WHERE read = 0 GROUP BY recipient"
            ).fetchall()
        return [(str(r[0]), int(r[1])) for r in rows]

    def names(self) -> list[str]:
        with self._lock:
            rows = self._open_conn().execute("SELECT folded FROM accounts").fetchall()
        return [str(row[0]) for row in rows]

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()
        release_file(self._file)


def _ops(text: object) -> tuple[str, ...]:
    return tuple(str(text).split())


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)
