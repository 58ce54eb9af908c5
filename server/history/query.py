"""CHATHISTORY semantics over an ordered list of messages (used on cached windows)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .model import ENDED_COMMAND, REDACT_EVENT, Query, Ref, StoredMessage

# What a reply carries. Without draft/event-playback the chathistory spec allows only
# PRIVMSG and NOTICE in a reply batch: stored TAGMSGs still serve as references, but
# are then not returned and do not count against the limit.
SERVED_COMMANDS = ("PRIVMSG", "NOTICE")
SERVED_WITH_TAGS = (*SERVED_COMMANDS, "TAGMSG")
# draft/event-playback: channel events kept beside the messages (a QUIT or NICK in each
# channel its user was in).
EVENT_COMMANDS = ("TOPIC", "JOIN", "PART", "KICK", "QUIT", "NICK", "MODE")
# A store read serving only some commands (PRIVMSG and NOTICE, to a client without
# draft/event-playback) walks the target's rows in seq order past the others: "the
# newest 50 messages" of a channel of JOIN/PART churn read every event row (0.6 s at
# a million in SQLite). It examines at most this many times the rows asked for (and
# at least SERVED_WALK_MIN rows), and serves the served ones among them: such a channel
# answers with fewer messages than asked rather than read them all. None, past that
# much churn, would tell a client paging back that history ends there, so the floor is
# the default retention cap (``history_max_rows``): where a channel keeps that many rows
# at most, no read is cut short, and the walk of 10,000 rows costs about 5 ms; only a
# server keeping everything bounds it. An index of served rows would have them found at
# once, but every stored message would pay its upkeep.
SERVED_WALK = 10
SERVED_WALK_MIN = 10_000
# A join's playback (read for every channel a client joins, charged to its host's scan
# budget by the rows it serves) walks less: JOIN/PART cycling in a channel of churn made
# each rejoin's playback walk 10,000 rows (20 ms on the one reader thread) for 20 served.
# Fewer messages played back is fine there: the client can fetch more.
PLAYBACK_WALK_MIN = 500
# CHATHISTORY TARGETS looks for each joined channel's latest PRIVMSG or NOTICE among
# its newest this many rows (by time). Unbounded, a channel whose newest rows were
# reactions or JOIN/PART churn was walked to the retention cap: 50 such channels made
# one TARGETS read 500,000 rows (0.2 s on the one reader thread), and ten connections
# of one address held every history read and every JOIN's playback for 2 s. A channel
# with more churn than this since its last message is not listed: its members see it
# live or in their join's playback, and a message there lists it again.
TARGETS_WALK = 1_000


def served(q: Query) -> tuple[str, ...]:
    """The commands a reply to ``q`` may carry; references may be any stored row."""
    commands = SERVED_WITH_TAGS if q.with_tagmsg else SERVED_COMMANDS
    if q.with_events:
        commands = (*commands, *EVENT_COMMANDS)
    return (*commands, REDACT_EVENT) if q.with_redactions else commands


def walk_limit(limit: int, playback: bool = False) -> int:
    """How many rows a store read of ``limit`` served rows examines at most (for a
    join's ``playback``, fewer)."""
    floor = PLAYBACK_WALK_MIN if playback else SERVED_WALK_MIN
    return max(SERVED_WALK * limit, floor) if limit > 0 else 0


def served_sql(commands: tuple[str, ...]) -> str:
    """SQL condition for ``commands`` (constants of this module, never client input)."""
    return "command IN ({})".format(", ".join(f"'{c}'" for c in commands))


def _before(row: StoredMessage, ref: Ref, ref_seq: int) -> bool:
    return row.seq < ref_seq if ref.kind == "msgid" else row.time_ms < ref.time_ms


def _after(row: StoredMessage, ref: Ref, ref_seq: int) -> bool:
    return row.seq > ref_seq if ref.kind == "msgid" else row.time_ms > ref.time_ms


def evaluate(
    rows: Sequence[StoredMessage], q: Query, complete: bool
) -> list[StoredMessage] | None:
    """Answer ``q`` from ``rows`` (ascending by seq, no gaps from rows[0] to the newest).

    ``complete`` says rows hold every retained message of the channel. Returns
    None when the answer may need older messages than the window holds. Only rows
    after the newest ENDED_COMMAND row are served (``since_floor``).
    """
    seqs = {}
    # References resolve against every message, as the stores do; until_msgid only
    # narrows what may be returned.
    for ref in (q.ref, q.ref2):
        if ref.kind == "msgid":
            found = next((r for r in rows if r.msgid == ref.msgid), None)
            if found is None:
                if not complete:
                    return None
                return []  # unknown msgid: nothing to return
            seqs[ref.msgid] = found.seq
    every = rows
    rows, complete = since_floor(rows, complete)
    first = rows[0] if rows else None
    if q.until_msgid:
        rows = [r for r in rows if r.msgid < q.until_msgid]
    commands = served(q)
    rows = [r for r in rows if r.command in commands]

    def covers(ref: Ref) -> bool:
        """Whether every message after ``ref`` is in the window."""
        if complete or ref.kind == "msgid":
            return True
        return first is not None and ref.time_ms >= first.time_ms

    def last_n(selected: list[StoredMessage], n: int) -> list[StoredMessage] | None:
        if len(selected) >= n:
            return selected[len(selected) - n :] if n else []
        return selected if complete else None

    ref, limit = q.ref, q.limit
    rseq = seqs.get(ref.msgid, 0)
    if q.subcommand == "LATEST":
        if ref.kind == "none":
            return last_n(list(rows), limit)
        if not covers(ref):
            return None
        return [r for r in rows if _after(r, ref, rseq)][-limit:] if limit else []
    if q.subcommand == "BEFORE":
        return last_n([r for r in rows if _before(r, ref, rseq)], limit)
    if q.subcommand == "AFTER":
        if not covers(ref):
            return None
        return [r for r in rows if _after(r, ref, rseq)][:limit]
    if q.subcommand == "AROUND":
        half = limit // 2
        older = last_n([r for r in rows if _before(r, ref, rseq)], half)
        if older is None or not covers(ref):
            return None
        newer = [r for r in rows if not _before(r, ref, rseq)][: limit - len(older)]
        return older + newer
    # BETWEEN
    ref2 = q.ref2
    r2seq = seqs.get(ref2.msgid, 0)
    if _ascending(q, every, seqs):
        if not covers(ref):
            return None
        return [r for r in rows if _after(r, ref, rseq) and _before(r, ref2, r2seq)][:limit]
    return last_n([r for r in rows if _before(r, ref, rseq) and _after(r, ref2, r2seq)], limit)


def since_floor(
    rows: Sequence[StoredMessage], complete: bool
) -> tuple[Sequence[StoredMessage], bool]:
    """The rows after the newest ENDED_COMMAND row, and whether they are every row that
    may be served: all of them are when the window reaches back to that row."""
    for i in range(len(rows) - 1, -1, -1):
        if rows[i].command == ENDED_COMMAND:
            return rows[i + 1 :], True
    return rows, complete


def _ascending(q: Query, rows: Sequence[StoredMessage], seqs: dict[str, int]) -> bool:
    a, b = q.ref, q.ref2
    if a.kind == "msgid" and b.kind == "msgid":
        return seqs[a.msgid] <= seqs[b.msgid]
    return ref_time(a, rows) <= ref_time(b, rows)


def ref_time(ref: Ref, rows: Sequence[StoredMessage]) -> int:
    if ref.kind == "msgid":
        for r in rows:
            if r.msgid == ref.msgid:
                return r.time_ms
    return ref.time_ms


# ---------------------------------------------------------------------- SQL stores


def floor_sql(target: str, *, by_time: bool = False) -> str:
    """SQL condition (both stores): the row comes after its target's newest ENDED_COMMAND
    row, if any. ``target`` is an SQL expression for the target (a placeholder or an
    outer column); the partial index ``messages_ended`` makes it one index lookup.

    ``by_time``: the query walks the target's rows by time (SEARCH), stopping
    early; "+seq" keeps the planner from taking this range of seq instead and sorting
    every row after it (SQLite did, for each target of a TARGETS).
    """
    seq = "+seq" if by_time else "seq"
    return (
        f"{seq} > COALESCE((SELECT MAX(f.seq) FROM messages f "
        f"WHERE f.target = {target} AND f.command = '{ENDED_COMMAND}'), 0)"
    )


def latest_served_sql(target: str) -> str:
    """SQL (both stores) for ``target``'s latest served message, (channel, time_ms): the
    newest PRIVMSG or NOTICE among its newest TARGETS_WALK rows, after its floor.
    ``target`` is an SQL expression for the target, used twice (a placeholder, or an
    outer column in a LATERAL). The floor is checked outside the walk, so rows before it
    count too: a channel made again after it ended walks no more than another. The walk
    goes in index order, by time alone (ties at its end fall either way): ordering it
    by seq too sorted every row walked, which took 40 % of the read."""
    return (
        "SELECT channel, time_ms FROM (SELECT channel, time_ms, seq, command FROM messages w "
        f"WHERE w.target = {target} ORDER BY time_ms DESC LIMIT {TARGETS_WALK}) "
        f"AS walk WHERE {served_sql(SERVED_COMMANDS)} AND {floor_sql(target)} "
        "ORDER BY time_ms DESC, seq DESC LIMIT 1"
    )


# One condition of a store query: (column, operator, value), e.g. ("seq", "<", 42).
Cond = tuple[str, str, int | str]
Select = Callable[[list[Cond], bool, int], list[StoredMessage]]


def run_plan(
    q: Query,
    resolve: Callable[[Ref], tuple[int, int] | None],
    select: Select,
) -> list[StoredMessage]:
    """CHATHISTORY over a database, shared by the SQL stores.

    ``resolve`` gives a msgid reference's (seq, time_ms) in ``q.target`` or None;
    ``select(conds, newest, limit)`` returns up to ``limit`` served rows of the
    target matching every condition (and ``until_msgid``), oldest first, taking
    the newest ones when ``newest``: those among the first ``walk_limit(limit)``
    rows matching the conditions, walking from the newest end when ``newest``.
    """
    bounds: dict[int, tuple[int, int]] = {}
    for i, ref in enumerate((q.ref, q.ref2)):
        if ref.kind == "msgid":
            found = resolve(ref)
            if found is None:
                return []  # unknown msgid: nothing to return
            bounds[i] = found

    def cond(i: int, ref: Ref, op: str) -> Cond:
        if ref.kind == "msgid":
            return ("seq", op, bounds[i][0])
        return ("time_ms", op, ref.time_ms)

    limit = q.limit
    if q.subcommand == "LATEST":
        return select([] if q.ref.kind == "none" else [cond(0, q.ref, ">")], True, limit)
    if q.subcommand == "BEFORE":
        return select([cond(0, q.ref, "<")], True, limit)
    if q.subcommand == "AFTER":
        return select([cond(0, q.ref, ">")], False, limit)
    if q.subcommand == "AROUND":
        older = select([cond(0, q.ref, "<")], True, limit // 2)
        newer = select([cond(0, q.ref, ">=")], False, limit - len(older))
        return older + newer
    # BETWEEN: direction from the order of the two references.
    if q.ref.kind == "msgid" and q.ref2.kind == "msgid":
        ascending = bounds[0][0] <= bounds[1][0]
    else:
        t1 = bounds[0][1] if q.ref.kind == "msgid" else q.ref.time_ms
        t2 = bounds[1][1] if q.ref2.kind == "msgid" else q.ref2.time_ms
        ascending = t1 <= t2
    if ascending:
        return select([cond(0, q.ref, ">"), cond(1, q.ref2, "<")], False, limit)
    return select([cond(0, q.ref, "<"), cond(1, q.ref2, ">")], True, limit)
