"""Accounts in PostgreSQL (psycopg 3): the ``accounts`` table of the history database,
and beside it ``read_markers`` (IRCv3 draft/read-marker, per account and target),
``registered_channels`` (ChanServ's registrations) and ``memos`` (MemoServ's).

Several nodes of a cluster share the table; the primary key makes a name's creation
atomic across all of them (``INSERT ... ON CONFLICT DO NOTHING``), and a channel's
registration likewise. The history
store's versioned migrations do not include these tables: the account store creates
them with ``CREATE TABLE IF NOT EXISTS``, under an advisory lock so that nodes
starting together do not race on the catalog, and adds a column added since
(``accounts.scram``) to an older database with ``ADD COLUMN IF NOT EXISTS``.

One connection behind a lock: registrations and logins are rare next to the scrypt
hash around each, and one connection per node keeps the server's share of
``max_connections`` small.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg

from server.history.postgres_store import connect

from .model import ACCOUNT_MARKERS, Account, Memo, RegisteredChannel
from .store import SECRET_BYTES

T = TypeVar("T")

APPLICATION_NAME = "chat-accounts"  # in pg_stat_activity

# Serialises the CREATE TABLE of nodes starting at once (pg_advisory_xact_lock key).
# Concurrent CREATE TABLE IF NOT EXISTS of one name can fail on pg_type's unique index.
_SCHEMA_LOCK = 0x61636374  # "acct"

# With hashtext(recipient), the pg_advisory_xact_lock(int, int) key that serialises
# sends to one recipient across nodes. Two-int keys never meet the one-bigint keys
# above and in the history store; a hash collision only makes two recipients wait.
_MEMO_LOCK = 0x6D656D6F  # "memo"

# The folded name compares byte-wise ("C"), as in SQLite and Python, whatever the
# database's default collation. BIGINT: milliseconds since 1970 overflow INTEGER.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    folded TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    scram TEXT
)
"""

# Databases from before SCRAM: the column is added at start (NULL: no credentials yet).
_SCRAM_COLUMN = "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS scram TEXT"

_MARKERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS read_markers (
    account TEXT COLLATE "C" NOT NULL,
    target TEXT COLLATE "C" NOT NULL,
    time_ms BIGINT NOT NULL,
    PRIMARY KEY (account, target)
)
"""

# ops: the folded account names joined by single spaces ("" for none). state: TEXT,
# not JSONB, so the caller's JSON comes back byte for byte.
_CHANNELS_SCHEMA = """
CREATE TABLE IF NOT EXISTS registered_channels (
    folded TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    founder TEXT COLLATE "C" NOT NULL,
    created_ms BIGINT NOT NULL,
    ops TEXT NOT NULL,
    state TEXT NOT NULL
)
"""

# Dropping an account deletes the channels it founded.
_CHANNELS_FOUNDER_INDEX = (
    "CREATE INDEX IF NOT EXISTS registered_channels_founder ON registered_channels (founder)"
)

# BIGSERIAL: a sequence never hands out a value twice, even when the inserting
# transaction rolls back, so a deleted memo's id is never reused.
_MEMOS_SCHEMA = """
CREATE TABLE IF NOT EXISTS memos (
    memo_id BIGSERIAL PRIMARY KEY,
    recipient TEXT COLLATE "C" NOT NULL,
    sender TEXT NOT NULL,
    sent_ms BIGINT NOT NULL,
    text TEXT NOT NULL,
    read BOOLEAN NOT NULL DEFAULT FALSE
)
"""

_MEMOS_RECIPIENT_INDEX = "CREATE INDEX IF NOT EXISTS memos_recipient ON memos (recipient, memo_id)"

# Secrets the server keeps across restarts (AccountStore.secret): the cloak key.
_SECRETS_SCHEMA = """
CREATE TABLE IF NOT EXISTS server_secrets (
    name TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
)
"""

# memo_id is a BIGINT: a larger id (typed by a user) matches no memo, and sending it
# would fail the statement.
_MAX_ID = 2**63 - 1

Conn = psycopg.Connection[tuple[Any, ...]]


class PostgresAccountStore:
    """Accounts in the PostgreSQL database at ``url`` (shared by a cluster's nodes)."""

    def __init__(
        self, url: str, *, connect_timeout: int = 5, statement_timeout_ms: int = 5000
    ) -> None:
        self.url = url
        self._connect_timeout = connect_timeout
        self._statement_timeout_ms = statement_timeout_ms
        self._lock = threading.Lock()
        self._closed = False
        self._conn: Conn | None = None
        # Connects here, so a bad --db stops the server at start-up.
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                    conn.execute(_SCHEMA)
                    conn.execute(_SCRAM_COLUMN)
                    conn.execute(_MARKERS_SCHEMA)
                    conn.execute(_CHANNELS_SCHEMA)
                    conn.execute(_CHANNELS_FOUNDER_INDEX)
                    conn.execute(_MEMOS_SCHEMA)
                    conn.execute(_MEMOS_RECIPIENT_INDEX)
                    conn.execute(_SECRETS_SCHEMA)
            except BaseException:
                conn.close()
                raise

    def _connect(self) -> Conn:
        # Each statement is its own transaction, committed (durably, as the server's
        # synchronous_commit says) before execute() returns.
        conn = connect(self.url, self._connect_timeout, APPLICATION_NAME)
        # One worker thread serves every login and registration: a statement stuck
        # on a lock or a sick server must fail, not hold all of them.
        conn.execute(f"SET statement_timeout = {int(self._statement_timeout_ms)}")
        return conn

    def _connection(self) -> Conn:
        """The connection, opened again if lost. Call with the lock held."""
        if self._closed:
            raise RuntimeError("the account store is closed")
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            conn = self._conn = self._connect()
        return conn

    def _run(
        self, fn: Callable[[Conn, bool], T], *, may_retry: Callable[[], bool] = lambda: True
    ) -> T:
        """``fn(conn, retried)`` under the lock; run once more on a new connection if
        the old one turned out to be dead (the server restarted, a proxy dropped it),
        so the first call after an outage succeeds rather than failing a login.
        ``may_retry()`` False after the failure: raise it instead."""
        with self._lock:
            conn = self._connection()
            try:
                return fn(conn, False)
            except psycopg.OperationalError:
                if not (conn.broken or conn.closed):
                    raise
                conn.close()
                self._conn = None
                if not may_retry():
                    raise
            return fn(self._connection(), True)

    def create(self, folded: str, account: Account) -> bool:
        def insert(conn: Conn, retried: bool) -> bool:
            row = conn.execute(
                "INSERT INTO accounts (folded, name, password_hash, created_ms, scram) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (folded) DO NOTHING RETURNING 1",
                (folded, account.name, account.password_hash, account.created_ms, account.scram),
            ).fetchone()
            if row is not None:
                return True
            if not retried:
                return False
            # The lost attempt may have committed before its connection died. Its row
            # is ours only if it holds our hash: a fresh random salt, so no one
            # else's registration can carry the same one.
            return _find(conn, folded) == account

        return self._run(insert)

    def find(self, folded: str) -> Account | None:
        return self._run(lambda conn, _retried: _find(conn, folded))

    def set_password(self, folded: str, password_hash: str, scram: str | None = None) -> bool:
        def update(conn: Conn, _retried: bool) -> bool:
            cur = conn.execute(
                "UPDATE accounts SET password_hash = %s, scram = %s WHERE folded = %s",
                (password_hash, scram, folded),
            )
            return cur.rowcount == 1

        return self._run(update)

    def set_scram(self, folded: str, password_hash: str, scram: str) -> bool:
        def update(conn: Conn, _retried: bool) -> bool:
            # Only while the hash is the one the credentials were derived from: a
            # password change on any node meanwhile wins. Idempotent, so a retry after
            # a lost connection is harmless.
            cur = conn.execute(
                "UPDATE accounts SET scram = %s WHERE folded = %s AND password_hash = %s",
                (scram, folded, password_hash),
            )
            return cur.rowcount == 1

        return self._run(update)

    def delete(self, folded: str) -> bool:
        def remove(conn: Conn, _retried: bool) -> bool:
            # One transaction: the account, its markers, its channels and its memos
            # go together or not at all.
            with conn.transaction():
                conn.execute("DELETE FROM read_markers WHERE account = %s", (folded,))
                conn.execute("DELETE FROM memos WHERE recipient = %s", (folded,))
                conn.execute("DELETE FROM registered_channels WHERE founder = %s", (folded,))
                cur = conn.execute("DELETE FROM accounts WHERE folded = %s", (folded,))
            return cur.rowcount == 1

        return self._run(remove)

    def read_markers(self) -> list[tuple[str, str, int]]:
        def select(conn: Conn, _retried: bool) -> list[tuple[str, str, int]]:
            rows = conn.execute("SELECT account, target, time_ms FROM read_markers")
            return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

        return self._run(select)

    def set_read_markers(self, markers: Sequence[tuple[str, str, int]]) -> None:
        # In a fixed order, one statement (its own transaction) each: two nodes
        # writing overlapping batches never hold row locks the other waits for.
        rows = sorted(markers)

        def upsert(conn: Conn, _retried: bool) -> None:
            # Atomic across nodes: a conflicting update waits for the other node's row
            # and compares with its committed value, so the later time always stays.
            # Idempotent, so running it again after a lost connection is harmless.
            conn.cursor().executemany(
                "INSERT INTO read_markers (account, target, time_ms) SELECT %s, %s, %s "
                "WHERE EXISTS (SELECT 1 FROM accounts WHERE folded = %s) "
                "ON CONFLICT (account, target) "
                "DO UPDATE SET time_ms = GREATEST(read_markers.time_ms, EXCLUDED.time_ms)",
                [(a, t, ms, a) for a, t, ms in rows],
            )
            # The account's oldest past ACCOUNT_MARKERS go, as ``model.Markers`` drops
            # them (names compared as code points, as there and in SQLite).
            for account in sorted({a for a, _t, _ms in rows}):
                conn.execute(
                    "DELETE FROM read_markers WHERE account = %s AND target IN (SELECT "
                    "target FROM read_markers WHERE account = %s "
                    'ORDER BY time_ms DESC, target COLLATE "C" DESC OFFSET %s)',
                    (account, account, ACCOUNT_MARKERS),
                )

        if rows:
            self._run(upsert)

    def drop_read_markers(self, account: str) -> None:
        def remove(conn: Conn, _retried: bool) -> None:
            conn.execute("DELETE FROM read_markers WHERE account = %s", (account,))

        self._run(remove)

    def channels(self) -> list[tuple[str, RegisteredChannel]]:
        def select(conn: Conn, _retried: bool) -> list[tuple[str, RegisteredChannel]]:
            rows = conn.execute(
                "SELECT folded, name, founder, created_ms, ops, state FROM registered_channels"
            )
            return [(str(r[0]), _channel(r[1:])) for r in rows]

        return self._run(select)

    def register_channel(self, folded: str, channel: RegisteredChannel) -> bool:
        def insert(conn: Conn, retried: bool) -> bool:
            cur = conn.execute(
                "INSERT INTO registered_channels "
                "(folded, name, founder, created_ms, ops, state) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (folded) DO NOTHING",
                (
                    folded, channel.name, channel.founder, channel.created_ms,
                    " ".join(channel.ops), channel.state,
                ),
            )
            if cur.rowcount == 1:
                return True
            if not retried:
                return False
            # The lost attempt may have committed before its connection died: the row
            # is taken as ours when it is exactly ours (same founder, same millisecond).
            return _find_channel(conn, folded) == channel

        return self._run(insert)

    def save_channel(self, folded: str, channel: RegisteredChannel) -> bool:
        def update(conn: Conn, _retried: bool) -> bool:
            cur = conn.execute(
                "UPDATE registered_channels SET founder = %s, ops = %s, state = %s "
                "WHERE folded = %s",
                (channel.founder, " ".join(channel.ops), channel.state, folded),
            )
            return cur.rowcount == 1

        return self._run(update)

    def drop_channel(self, folded: str) -> bool:
        def remove(conn: Conn, _retried: bool) -> bool:
            cur = conn.execute("DELETE FROM registered_channels WHERE folded = %s", (folded,))
            return cur.rowcount == 1

        return self._run(remove)

    def send_memo(
        self, recipient: str, sender: str, sent_ms: int, text: str, limit: int
    ) -> int | None:
        # Set once COMMIT is sent: a connection lost after that leaves unknown whether
        # the memo was stored, and sending it again could deliver it twice. Before
        # that, the server rolled the transaction back, and a retry is safe.
        committing = False

        def insert(conn: Conn, _retried: bool) -> int | None:
            nonlocal committing
            with conn.transaction():
                # Held to the end of the transaction: a concurrent send to the same
                # recipient (any node) waits here, then counts our memo.
                conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_MEMO_LOCK, recipient)
                )
                row = conn.execute(
                    "SELECT COUNT(*) FROM memos WHERE recipient = %s", (recipient,)
                ).fetchone()
                if row is None or int(row[0]) >= limit:
                    return None
                row = conn.execute(
                    "INSERT INTO memos (recipient, sender, sent_ms, text) "
                    "VALUES (%s, %s, %s, %s) RETURNING memo_id",
                    (recipient, sender, sent_ms, text),
                ).fetchone()
                committing = True
            assert row is not None
            return int(row[0])

        return self._run(insert, may_retry=lambda: not committing)

    def memos(self, recipient: str) -> list[Memo]:
        def select(conn: Conn, _retried: bool) -> list[Memo]:
            rows = conn.execute(
                "SELECT memo_id, sender, sent_ms, text, read FROM memos "
                "WHERE recipient = %s ORDER BY memo_id",
                (recipient,),
            )
            return [Memo(int(r[0]), str(r[1]), int(r[2]), str(r[3]), bool(r[4])) for r in rows]

        return self._run(select)

    def mark_memo_read(self, recipient: str, memo_id: int) -> bool:
        def update(conn: Conn, _retried: bool) -> bool:
            if not 0 < memo_id <= _MAX_ID:
                return False
            # Idempotent (a row already read still counts as updated), so a retry
            # after a lost connection answers as the lost attempt would have.
            cur = conn.execute(
                "UPDATE memos SET read = TRUE WHERE recipient = %s AND memo_id = %s",
                (recipient, memo_id),
            )
            return cur.rowcount == 1

        return self._run(update)

    def delete_memos(self, recipient: str, memo_ids: list[int]) -> int:
        ids = sorted({i for i in memo_ids if 0 < i <= _MAX_ID})
        # As in send_memo: once COMMIT is sent, a retry would count 0 for memos the
        # lost attempt may have deleted.
        committing = False

        def remove(conn: Conn, _retried: bool) -> int:
            nonlocal committing
            if not ids:
                return 0
            with conn.transaction():
                cur = conn.execute(
                    "DELETE FROM memos WHERE recipient = %s AND memo_id = ANY(%s::bigint[])",
                    (recipient, ids),
                )
                committing = True
            return cur.rowcount

        return self._run(remove, may_retry=lambda: not committing)

    def secret(self, name: str) -> str:
        def get(conn: Conn, _retried: bool) -> str:
            # Whichever node asks first makes it; the others read it.
            conn.execute(
                "INSERT INTO server_secrets (name, value) VALUES (%s, %s) "
                "ON CONFLICT (name) DO NOTHING",
                (name, secrets.token_hex(SECRET_BYTES)),
            )
            row = conn.execute("SELECT value FROM server_secrets WHERE name = %s", (name,))
            found = row.fetchone()
            assert found is not None  # inserted, or there already
            return str(found[0])

        return self._run(get)

    def unread_memos(self) -> list[tuple[str, int]]:
        def select(conn: Conn, _retried: bool) -> list[tuple[str, int]]:
            rows = conn.execute(
                "SELECT recipient, COUNT(*) FROM memos WHERE NOT read GROUP BY recipient"
            )
            return [(str(r[0]), int(r[1])) for r in rows]

        return self._run(select)

    def names(self) -> list[str]:
        def select(conn: Conn, _retried: bool) -> list[str]:
            return [str(row[0]) for row in conn.execute("SELECT folded FROM accounts")]

        return self._run(select)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _find(conn: Conn, folded: str) -> Account | None:
    row = conn.execute(
        "SELECT name, password_hash, created_ms, scram FROM accounts WHERE folded = %s",
        (folded,),
    ).fetchone()
    if row is None:
        return None
    return Account(str(row[0]), str(row[1]), int(row[2]), None if row[3] is None else str(row[3]))


def _find_channel(conn: Conn, folded: str) -> RegisteredChannel | None:
    row = conn.execute(
        "SELECT name, founder, created_ms, ops, state FROM registered_channels "
        "WHERE folded = %s",
        (folded,),
    ).fetchone()
    return None if row is None else _channel(row)


def _channel(row: tuple[Any, ...]) -> RegisteredChannel:
    """A registration from (name, founder, created_ms, ops, state)."""
    name, founder, created_ms, ops, state = row
    return RegisteredChannel(
        str(name), str(founder), int(created_ms), tuple(str(ops).split()), str(state)
    )
