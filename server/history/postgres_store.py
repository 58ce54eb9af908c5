"""PostgreSQL store of record: the shared history of a cluster (psycopg 3).

Same contract as the SQLite store (see store.HistoryStore): a per-channel ``seq``
is the total order, msgids are unique per target, ``append`` stores one tick's messages in
ONE transaction on the loop thread, reads run on reader threads.

Several nodes append to the same database at once, so ``seq`` cannot come from a
per-process cache of the last number (the SQLite store's way). It is allocated
inside the appending transaction from a ``channel_seq`` row per channel::

    INSERT INTO channel_seq ... ON CONFLICT (target) DO UPDATE
        SET last_seq = channel_seq.last_seq + EXCLUDED.last_seq RETURNING ...

The upsert row-locks the channel's counter until COMMIT: another node appending to
the same channel waits for it, then continues from the committed number. A
transaction that fails rolls its counter update back with its rows, so numbers
stay unique and gap-free. One statement takes a tick's counters in sorted order,
so two nodes whose ticks touch the same channels never deadlock.

Text columns that are compared or ordered (msgid for ``until_msgid``, the channel
for TARGETS' MAX) use the "C" collation: byte order, as in SQLite and Python,
whatever the database's default collation is.

Transit rows (model.TRANSIT_PREFIX: a private message to a user of another node, kept
for that node's recovery after a gap) are numbered from one counter per recipient node
(``%node:``), not per recipient: a counter per connection would leave a ``channel_seq``
row behind for every connection ever messaged, and one deleted with its last message
could be taken again by an append racing the delete, repeating numbers. Their numbers
are then unique and increasing per target, with gaps, which nothing reads them by.

Direct messages also upsert one ``conversations`` row per account and partner in
the appending transaction, after the counters and in key order, so concurrent
ticks lock those rows in the same order too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

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
    is_transit,
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

T = TypeVar("T")

# Applied in order (the pending ones in one transaction: PostgreSQL DDL is
# transactional); their number is the schema version.
MIGRATIONS: list[str] = [
    # 1: messages with a per-channel sequence number as the total order, and the
    # per-channel counters that allocate it under concurrent appends.
    """
    CREATE TABLE messages (
        target TEXT COLLATE "C" NOT NULL,
        seq BIGINT NOT NULL,
        msgid TEXT COLLATE "C" NOT NULL,
        time_ms BIGINT NOT NULL,
        source TEXT NOT NULL,
        command TEXT NOT NULL,
        channel TEXT COLLATE "C" NOT NULL,
        text TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (target, seq)
    );
    CREATE UNIQUE INDEX messages_msgid ON messages (msgid);
    CREATE INDEX messages_target_time ON messages (target, time_ms);
    CREATE INDEX messages_time ON messages (time_ms);
    CREATE TABLE channel_seq (
        target TEXT COLLATE "C" PRIMARY KEY,
        last_seq BIGINT NOT NULL
    );
    """,
    # 2: direct-message conversations per account, for CHATHISTORY TARGETS: one row
    # per (account, partner), upserted with the messages (see store.conversation_rows).
    """
    CREATE TABLE conversations (
        account TEXT COLLATE "C" NOT NULL,
        partner TEXT COLLATE "C" NOT NULL,
        partner_name TEXT NOT NULL,
        target TEXT COLLATE "C" NOT NULL,
        last_ms BIGINT NOT NULL,
        PRIMARY KEY (account, partner)
    );
    CREATE INDEX conversations_account_last ON conversations (account, last_ms);
    """,
    # 3: who sent each message (NewMessage.sender), for REDACT's own-message check;
    # older rows have none. A constant default: no table rewrite.
    """
    ALTER TABLE messages ADD COLUMN sender TEXT NOT NULL DEFAULT ''
    """,
    # 4: a msgid is unique within a target, not across them: a QUIT or a nick change
    # is one message, kept in each channel its user was in (event playback).
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
]

APPLICATION_NAME = "chat-history"  # in pg_stat_activity

# Serialises migrations across nodes starting at once (pg_advisory_xact_lock key).
_MIGRATION_LOCK = 0x63686174  # "chat"

_COLUMNS = "target, seq, msgid, time_ms, source, command, channel, text, tags"
# Replies carry only these (see query.SERVED_COMMANDS); references may be any row.
_SERVED = served_sql(SERVED_COMMANDS)
_FLOOR = floor_sql("%s")  # its one placeholder: the target, again
_FLOOR_OF_T = floor_sql("t.target", by_time=True)  # in a LATERAL walk per target t
_LATEST_SERVED_OF_T = latest_served_sql("t.target")
# Folds ASCII letters only, whatever the database's locale (lower() and ILIKE follow it).
_ASCII_FOLD = "translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"

Conn = psycopg.Connection[tuple[Any, ...]]


def connect(url: str, connect_timeout: int, application_name: str) -> Conn:
    """An autocommit connection (a statement outside ``transaction()`` commits at once,
    so no connection sits idle in a transaction), with defaults the URL may override."""
    given = conninfo_to_dict(url)
    extra: dict[str, Any] = {}
    if "connect_timeout" not in given:
        extra["connect_timeout"] = connect_timeout
    if "application_name" not in given:
        extra["application_name"] = application_name  # in pg_stat_activity
    return psycopg.connect(url, autocommit=True, **extra)


def _counter(target: str) -> str:
    """The ``channel_seq`` row numbering ``target``'s messages: its own, or for a transit
    target the one of its recipient's node (``%node:conn`` -> ``%node:``)."""
    if target[:1] != TRANSIT_PREFIX:
        return target
    return target[: target.rindex(":") + 1]


def _row(r: tuple[Any, ...]) -> StoredMessage:
    return StoredMessage(
        str(r[0]), int(r[1]), str(r[2]), int(r[3]), str(r[4]), str(r[5]), str(r[6]),
        str(r[7]), str(r[8]),
    )


class PostgresStore:
    """History in PostgreSQL; one writer connection, one reader connection per thread."""

    def __init__(self, url: str, *, connect_timeout: int = 5) -> None:
        self.url = url
        self.reads = 0
        self._connect_timeout = connect_timeout
        self._local = threading.local()
        self._readers: list[Conn] = []  # every reader connection, closed by close()
        self._lock = threading.Lock()
        self._closed = False
        self._writer: Conn | None = None
        self._committing = False  # the current append has reached its COMMIT
        self._retention = DueTargets()  # what ``prune`` looks at
        self._migrate(self._write_conn())

    # ------------------------------------------------------------ connections

    def _connect(self) -> Conn:
        # append runs on the event loop: a server that does not answer must not block
        # it for long (the timeout).
        return connect(self.url, self._connect_timeout, APPLICATION_NAME)

    def _write_conn(self) -> Conn:
        if self._closed:
            raise RuntimeError("the history store is closed")
        conn = self._writer
        if conn is None or conn.closed:
            conn = self._writer = self._connect()
        return conn

    def _read_conn(self) -> Conn:
        if self._closed:
            raise RuntimeError("the history store is closed")
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._readers = [c for c in self._readers if not c.closed]
                self._readers.append(conn)
        return conn

    def _reading(self, fn: Callable[[Conn], T]) -> T:
        """Run a read; retried once on a fresh connection if the old one was lost
        (the server restarted, a proxy dropped it): reads are safe to repeat."""
        conn = self._read_conn()
        try:
            return fn(conn)
        except psycopg.OperationalError:
            if not conn.broken and not conn.closed:
                raise
            conn.close()
            self._local.conn = None
        return fn(self._read_conn())

    @staticmethod
    def _migrate(conn: Conn) -> None:
        with conn.transaction():
            # Nodes starting together: the first migrates, the others wait and see it.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = int(row[0] or 0) if row else 0
            for version, script in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))

    def schema_version(self) -> int:
        row = self._write_conn().execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0) if row else 0

    # ------------------------------------------------------------------ writes

    def _writing(self, fn: Callable[[Conn], T]) -> T:
        """Run a write transaction ``fn`` on the writer connection. ``fn`` sets
        ``_committing`` as it leaves its transaction block (which sends COMMIT)."""
        conn = self._write_conn()
        self._committing = False
        try:
            return fn(conn)
        except psycopg.OperationalError:
            if not (conn.broken or conn.closed):
                raise
            conn.close()
            self._writer = None
            # A connection found dead before COMMIT was sent committed nothing: one
            # retry on a new connection is safe. Once COMMIT was sent the outcome is
            # unknown, so the error goes to the caller (a retry could double up).
            if self._committing:
                raise
        conn = self._write_conn()
        self._committing = False
        return fn(conn)

    def append(self, messages: Sequence[NewMessage]) -> list[StoredMessage]:
        if not messages:
            return []
        stored = self._writing(lambda conn: self._append(conn, messages))
        # Committed: channels numbered past the row cap are due for the next pass.
        cap = self._retention.cap
        over = {s.target: s.seq for s in stored if s.seq > cap and not is_transit(s.target)}
        if over:
            self._retention.note(over)
        return stored

    def _append(self, conn: Conn, messages: Sequence[NewMessage]) -> list[StoredMessage]:
        counts: dict[str, int] = {}
        for m in messages:
            counter = _counter(m.target)
            counts[counter] = counts.get(counter, 0) + 1
        targets = sorted(counts)  # lock order: the same on every node, no deadlock
        with conn.transaction():
            # Reserve a block of numbers per channel; the row lock holds until
            # COMMIT, so a concurrent appender to the channel waits for ours.
            rows = conn.execute(
                "INSERT INTO channel_seq (target, last_seq) "
                "SELECT t, n FROM unnest(%s::text[], %s::bigint[]) AS a(t, n) "
                'ORDER BY t COLLATE "C" '
                "ON CONFLICT (target) DO UPDATE "
                "SET last_seq = channel_seq.last_seq + EXCLUDED.last_seq "
                "RETURNING target, last_seq",
                (targets, [counts[t] for t in targets]),
            ).fetchall()
            next_seq = {str(t): int(last) - counts[str(t)] + 1 for t, last in rows}
            stored: list[StoredMessage] = []
            for m in messages:
                counter = _counter(m.target)
                seq = next_seq[counter]
                next_seq[counter] = seq + 1
                stored.append(m.numbered(seq))
            conn.execute(
                f"INSERT INTO messages ({_COLUMNS}, sender) SELECT * FROM unnest("
                "%s::text[], %s::bigint[], %s::text[], %s::bigint[], %s::text[], "
                "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[])",
                (
                    [s.target for s in stored], [s.seq for s in stored],
                    [s.msgid for s in stored], [s.time_ms for s in stored],
                    [s.source for s in stored], [s.command for s in stored],
                    [s.channel for s in stored], [s.text for s in stored],
                    [s.tags for s in stored], [m.sender for m in messages],
                ),
            )
            conversations = conversation_rows(messages)
            if conversations:
                # One row per key (ON CONFLICT may not touch a row twice in one
                # statement), in key order; the newest message wins, as in SQLite.
                conn.execute(
                    "INSERT INTO conversations "
                    "(account, partner, partner_name, target, last_ms) "
                    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], "
                    "%s::text[], %s::bigint[]) AS c(a, p, n, t, l) "
                    'ORDER BY a COLLATE "C", p COLLATE "C" '
                    "ON CONFLICT (account, partner) DO UPDATE SET "
                    "partner_name = CASE WHEN EXCLUDED.last_ms >= conversations.last_ms "
                    "THEN EXCLUDED.partner_name ELSE conversations.partner_name END, "
                    "target = CASE WHEN EXCLUDED.last_ms >= conversations.last_ms "
                    "THEN EXCLUDED.target ELSE conversations.target END, "
                    "last_ms = GREATEST(conversations.last_ms, EXCLUDED.last_ms)",
                    tuple(list(column) for column in zip(*conversations, strict=True)),
                )
            self._committing = True  # leaving the block sends COMMIT
        return stored

    def redact(self, target: str, msgid: str) -> bool:
        def update(conn: Conn) -> bool:
            with conn.transaction():
                cur = conn.execute(
                    "UPDATE messages SET command = %s, text = '', tags = '' "
                    "WHERE msgid = %s AND target = %s AND command <> %s",
                    (REDACTED_COMMAND, msgid, target, REDACTED_COMMAND),
                )
                self._committing = True  # leaving the block sends COMMIT
            return cur.rowcount > 0

        return self._writing(update)

    @property
    def prune_probes(self) -> int:
        """Targets the last retention pass probed, for tests."""
        return self._retention.probes

    def prune(self, max_rows: int, max_age_ms: int, now_ms: int, budget: int) -> int:
        # Deleting by the same criteria again is safe, whatever a lost attempt did: no
        # COMMIT to lose (``_writing`` retries once on a connection found dead).
        return self._writing(lambda conn: self._prune(conn, max_rows, max_age_ms, now_ms, budget))

    def _prune(self, conn: Conn, max_rows: int, max_age_ms: int, now_ms: int, budget: int) -> int:
        # Only messages: conversations rows are left alone (one tiny row per account
        # and partner), so a conversation stays listed after its messages expire.
        deleted = 0
        if max_age_ms > 0:
            cur = conn.execute(
                "DELETE FROM messages WHERE (target, seq) IN "
                "(SELECT target, seq FROM messages WHERE time_ms < %s LIMIT %s)",
                (now_ms - max_age_ms, budget),
            )
            deleted += max(cur.rowcount, 0)
        retention = self._retention
        cursor = retention.begin(max_rows, now_ms)
        if max_rows <= 0:
            return deleted
        if cursor is not None:
            # A piece of the sweep: the next channel counters, an index probe each (one
            # per counter ever made, every pass, took 0.13 s at 100,000 of them).
            rows = conn.execute(
                "SELECT c.target, c.last_seq, EXISTS (SELECT 1 FROM messages m "
                "WHERE m.target = c.target AND m.seq <= c.last_seq - %s) FROM channel_seq c "
                "WHERE c.target > %s ORDER BY c.target LIMIT %s",
                (max_rows, cursor, retention.piece),
            ).fetchall()
            retention.swept([(str(t), int(last), bool(over)) for t, last, over in rows])

        def delete(target: str, seq: int, limit: int) -> int:
            cur = conn.execute(
                "DELETE FROM messages WHERE target = %s AND seq IN (SELECT seq "
                "FROM messages WHERE target = %s AND seq <= %s ORDER BY seq LIMIT %s)",
                (target, target, seq, limit),
            )
            return max(cur.rowcount, 0)

        return deleted + retention.prune(delete, budget - deleted)

    def prune_transit(self, before_ms: int, budget: int) -> int:
        low, high = transit_bounds(TRANSIT_PREFIX)

        def delete(conn: Conn) -> int:
            cur = conn.execute(
                "DELETE FROM messages WHERE (target, seq) IN (SELECT target, seq "
                "FROM messages WHERE target >= %s AND target < %s AND time_ms < %s LIMIT %s)",
                (low, high, before_ms, budget),
            )
            return max(cur.rowcount, 0)

        return self._writing(delete)  # (deleting by the same criteria again is safe)

    # ------------------------------------------------------------------ reads

    def transit(self, prefix: str, since_ms: int, limit: int) -> list[StoredMessage]:
        self.reads += 1
        low, high = transit_bounds(prefix)

        def read(conn: Conn) -> list[StoredMessage]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE target >= %s AND target < %s "
                "AND time_ms >= %s ORDER BY time_ms DESC, target DESC, seq DESC LIMIT %s",
                (low, high, since_ms, limit),
            ).fetchall()
            return [_row(r) for r in reversed(rows)]

        return self._reading(read)

    def left_closed(self) -> list[tuple[str, str]]:
        self.reads += 1

        def read(conn: Conn) -> list[tuple[str, str]]:
            # The IN is the partial index's own condition, so the walk is of those rows.
            rows = conn.execute(
                "SELECT target, channel FROM (SELECT DISTINCT ON (target) target, channel, "
                "command, seq FROM messages WHERE command IN ('CLOSED', 'OPENED') "
                f"ORDER BY target, seq DESC) AS c WHERE command = '{CLOSED_COMMAND}' "
                f"AND {floor_sql('c.target')}"
            ).fetchall()
            return [(str(t), str(name)) for t, name in rows]

        return self._reading(read)

    def window(self, target: str, size: int) -> list[StoredMessage]:
        self.reads += 1

        def read(conn: Conn) -> list[StoredMessage]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE target = %s "
                "ORDER BY seq DESC LIMIT %s",
                (target, size),
            ).fetchall()
            return [_row(r) for r in reversed(rows)]

        return self._reading(read)

    def find(self, target: str, msgid: str) -> FoundMessage | None:
        self.reads += 1

        def read(conn: Conn) -> FoundMessage | None:
            row = conn.execute(
                f"SELECT {_COLUMNS}, sender FROM messages WHERE msgid = %s AND target = %s "
                f"AND {_FLOOR}",
                (msgid, target, target),
            ).fetchone()
            return FoundMessage(_row(row), str(row[9])) if row else None

        return self._reading(read)

    def query(self, q: Query) -> list[StoredMessage]:
        self.reads += 1

        def read(conn: Conn) -> list[StoredMessage]:
            # One snapshot for the reference lookups and both halves of AROUND.
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                return self._query(conn, q)

        return self._reading(read)

    @staticmethod
    def _query(conn: Conn, q: Query) -> list[StoredMessage]:
        def resolve(ref: Ref) -> tuple[int, int] | None:
            row = conn.execute(
                "SELECT seq, time_ms FROM messages WHERE msgid = %s AND target = %s",
                (ref.msgid, q.target),
            ).fetchone()
            return (int(row[0]), int(row[1])) if row else None

        def select(conds: list[Cond], newest: bool, limit: int) -> list[StoredMessage]:
            where = ["target = %s", _FLOOR, *(f"{c} {op} %s" for c, op, _ in conds)]
            values: list[int | str] = [value for _, _, value in conds]
            if q.until_msgid:  # msgids sort by time: this leaves out the newest few
                where.append("msgid < %s")
                values.append(q.until_msgid)
            order = "DESC" if newest else "ASC"
            # The served rows among the first walk_limit(limit) (the subquery): the
            # outer ORDER BY is the walk's own, so no sort, and the outer LIMIT stops
            # the walk once it has ``limit`` of them.
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM (SELECT {_COLUMNS} FROM messages "
                f"WHERE {' AND '.join(where)} ORDER BY seq {order} LIMIT %s) AS walk "
                f"WHERE {served_sql(served(q))} ORDER BY seq {order} LIMIT %s",
                (q.target, q.target, *values, walk_limit(limit, q.playback), limit),
            ).fetchall()
            out = [_row(r) for r in rows]
            return out[::-1] if newest else out

        return run_plan(q, resolve, select)

    def targets(
        self, folded: Sequence[str], start_ms: int, end_ms: int, limit: int
    ) -> list[tuple[str, int]]:
        self.reads += 1
        if not folded:
            return []
        lo, hi = min(start_ms, end_ms), max(start_ms, end_ms)

        def read(conn: Conn) -> list[tuple[str, int]]:
            # Each target's latest served message: per target, a LATERAL walk of at most
            # TARGETS_WALK rows down the (target, time_ms) index from its newest end.
            rows = conn.execute(
                "SELECT m.channel, m.time_ms FROM unnest(%s::text[]) AS t(target) "
                f"CROSS JOIN LATERAL ({_LATEST_SERVED_OF_T}) AS m",
                (list(dict.fromkeys(folded)),),
            ).fetchall()
            return latest_within(((str(r[0]), int(r[1])) for r in rows), lo, hi, limit)

        return self._reading(read)

    def search(self, q: Search) -> list[StoredMessage]:
        self.reads += 1
        limit = search_limit(q)
        targets = sorted(set(q.targets))
        if (not targets and not q.account) or limit == 0:
            return []
        conditions, values = search_conditions(q, "%s", _ASCII_FOLD)
        where = ["x.target = t.target", _FLOOR_OF_T, _SERVED, *conditions]
        columns = ", ".join(f"m.{c.strip()}" for c in _COLUMNS.split(","))
        # Per target, a LATERAL subquery: an index scan of that target's rows only
        # (never messages_time, which would read every target's), top ``limit`` kept;
        # then the newest ``limit`` of those.
        sql = (
            f"SELECT {columns} FROM (SELECT unnest(%s::text[]) UNION "
            "(SELECT target FROM conversations WHERE account = %s "
            "ORDER BY last_ms DESC, partner DESC LIMIT %s)) AS t(target) CROSS JOIN LATERAL "
            f"(SELECT {_COLUMNS} FROM messages x WHERE {' AND '.join(where)} "
            "ORDER BY time_ms DESC, seq DESC LIMIT %s) AS m "
            "ORDER BY m.time_ms DESC, m.target DESC, m.seq DESC LIMIT %s"
        )

        def read(conn: Conn) -> list[StoredMessage]:
            rows = conn.execute(sql, (targets, q.account, SEARCH_CONVERSATIONS, *values,
                                      limit, limit)).fetchall()
            return [_row(r) for r in reversed(rows)]

        return self._reading(read)

    def conversations(
        self, account: str, start_ms: int, end_ms: int, limit: int
    ) -> list[tuple[str, str, int]]:
        self.reads += 1
        lo, hi = min(start_ms, end_ms), max(start_ms, end_ms)

        def read(conn: Conn) -> list[tuple[str, str, int]]:
            rows = conn.execute(
                "SELECT partner_name, target, last_ms FROM conversations "
                "WHERE account = %s AND last_ms > %s AND last_ms < %s "
                "ORDER BY last_ms ASC, partner LIMIT %s",
                (account, lo, hi, limit),
            ).fetchall()
            return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

        return self._reading(read)

    def close(self) -> None:
        self._closed = True
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        with self._lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
