"""The store-of-record interface: SQLite and PostgreSQL fill it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from .model import FoundMessage, NewMessage, Query, Search, StoredMessage

# One row of the conversations table: (account, partner, partner_name, target, last_ms).
ConversationRow = tuple[str, str, str, str, int]

# A search with ``Search.account`` covers that account's newest this many conversations
# (by their last message), not all of them: each is a walk of its own rows, and one
# account may have hundreds (the SEARCH handler charges this many targets for them).
SEARCH_CONVERSATIONS = 20
# The most rows one search returns, whatever it asks for (a LIMIT both databases take).
MAX_SEARCH_LIMIT = (1 << 31) - 1
# ASCII letters only, as SQLite's LIKE folds them (str.lower() also folds non-ASCII).
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


# The retention pass (``prune``, on the loop) looks at the targets the store's writer
# numbered past the row cap since the last pass (``DueTargets``), not at every target.
# Rows over the cap it did not write (there before the process started, written by
# another server on the database, or under a cap since lowered) are found by a sweep
# of every target in key order, this many per pass (an index probe or three each: ~2 ms
# on the loop in SQLite), started at the first pass, when the cap changes, and again
# SWEEP_INTERVAL_MS after the last one started.
SWEEP_TARGETS = 500
SWEEP_INTERVAL_MS = 3_600_000


class HistoryStore(Protocol):
    """Writes happen on the loop thread (one transaction per tick); reads on any thread."""

    reads: int  # number of reads served (query, window, find...), for cache-effectiveness tests

    def append(self, messages: Sequence[NewMessage]) -> list[StoredMessage]:
        """Store one tick's messages in one transaction; returns them numbered.

        Messages with ``dm`` set also update both accounts' conversations rows
        (see ``conversation_rows``) in the same transaction.
        """
        ...

    def redact(self, target: str, msgid: str) -> bool:
        """Turn ``target``'s message ``msgid`` into a tombstone, in one transaction on
        the loop thread: command REDACTED_COMMAND, empty text and tags; everything
        else (seq, msgid, time, source, channel, sender) kept. Returns whether a row
        changed: False if ``target`` has no such message or it was already redacted.

        Cached windows may still hold the old row: the caller drops them
        (HistoryService.stale).
        """
        ...

    def query(self, q: Query) -> list[StoredMessage]: ...

    def find(self, target: str, msgid: str) -> FoundMessage | None:
        """``target``'s stored row whose msgid is ``msgid`` (a redacted one too) and
        who sent it; None if ``target`` has no such row."""
        ...

    def left_closed(self) -> list[tuple[str, str]]:
        """(target, channel name) of each channel whose newest CLOSED_COMMAND or
        OPENED_COMMAND row is a CLOSED one after its newest ENDED_COMMAND row, if any: it
        was closed when the server was killed, and never ended. Read once, at start."""
        ...

    def window(self, target: str, size: int) -> list[StoredMessage]:
        """The newest ``size`` messages of ``target``, oldest first."""
        ...

    def targets(
        self, folded: Sequence[str], start_ms: int, end_ms: int, limit: int
    ) -> list[tuple[str, int]]:
        """(display name, time_ms) of the targets whose latest served message is strictly
        inside the time range (``latest_within``), oldest first."""
        ...

    def conversations(
        self, account: str, start_ms: int, end_ms: int, limit: int
    ) -> list[tuple[str, str, int]]:
        """(partner_name, target key, last_ms) of ``account``'s conversations whose last message
        falls strictly between the two times (either order), oldest first, at most ``limit``."""
        ...

    def search(self, q: Search) -> list[StoredMessage]:
        """The newest ``q.limit`` PRIVMSG and NOTICE rows of ``q.targets`` matching every
        condition of ``q`` (see search_patterns), oldest first: ascending by time_ms,
        then target, then seq. Never TAGMSG, tombstones or REDACT events; no targets: [].

        With ``q.account``, also that account's newest SEARCH_CONVERSATIONS conversations
        (by ``last_ms``, then partner, descending), not the older ones."""
        ...

    def prune(self, max_rows: int, max_age_ms: int, now_ms: int, budget: int) -> int:
        """Delete at most ``budget`` rows beyond the retention limits; returns how many.

        Called on the loop thread, so a pass costs about what was written since the
        last one, not the table: rows beyond ``max_rows`` that this store did not
        write (before it was opened, by another server, under a higher cap) may take
        further passes to be found (``DueTargets``), within SWEEP_INTERVAL_MS."""
        ...

    def transit(self, prefix: str, since_ms: int, limit: int) -> list[StoredMessage]:
        """The newest ``limit`` rows of the transit targets starting with ``prefix`` (one
        node's users: ``%node:``) whose ``time_ms`` is ``since_ms`` or later, oldest
        first (by time, target, seq): one read, whatever the number of users."""
        ...

    def prune_transit(self, before_ms: int, budget: int) -> int:
        """Delete at most ``budget`` transit rows older than ``before_ms``; returns how
        many. Never touches another row, so no cached window needs dropping after it."""
        ...

    def close(self) -> None: ...


def conversation_rows(messages: Sequence[NewMessage]) -> list[ConversationRow]:
    """The conversations rows a tick's direct messages upsert, one per (account, partner),
    sorted by that key (the same lock order on every node).

    Each direct message gives the sender's row (partner: the recipient) and the
    recipient's (partner: the sender); a note to oneself gives one. Per key, the
    message with the greatest ``time_ms`` wins (the later one in the tick on a tie):
    its time, its partner's display name and its target. The stores apply the same
    rule against the row already stored.
    """
    latest: dict[tuple[str, str], tuple[str, str, int]] = {}
    for m in messages:
        dm = m.dm
        if dm is None:
            continue
        sides = [(dm.sender, dm.recipient, dm.recipient_name)]
        if dm.recipient != dm.sender:
            sides.append((dm.recipient, dm.sender, dm.sender_name))
        for account, partner, name in sides:
            seen = latest.get((account, partner))
            if seen is None or m.time_ms >= seen[2]:
                latest[(account, partner)] = (name, m.target, m.time_ms)
    return [(a, p, *latest[(a, p)]) for a, p in sorted(latest)]


def latest_within(
    latest: Iterable[tuple[str, int]], lo: int, hi: int, limit: int
) -> list[tuple[str, int]]:
    """CHATHISTORY TARGETS from each target's latest served message (display name,
    time): those whose latest message falls strictly between ``lo`` and ``hi`` (one with
    a later message is left out: its latest is not in the window), oldest first."""
    found = sorted(((t, name) for name, t in latest if lo < t < hi))
    return [(name, t) for t, name in found[: max(limit, 0)]]


def ascii_lower(text: str) -> str:
    """``text`` with ASCII letters lowered, every other character kept."""
    return text.translate(_ASCII_LOWER)


def like_escape(text: str) -> str:
    """``text`` as a LIKE pattern matching it literally (with ``ESCAPE '\\'``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_limit(q: Search) -> int:
    """``q.limit`` bounded to [0, MAX_SEARCH_LIMIT]."""
    return max(0, min(q.limit, MAX_SEARCH_LIMIT))


def search_patterns(q: Search) -> tuple[str, str]:
    """LIKE patterns (``ESCAPE '\\'``, ASCII letters lowered) for ``text`` and ``source``:
    the text contains ``q.text``; the source starts with ``q.sender`` + "!". Both
    compared with ASCII letters folded; "" where ``q`` sets no condition."""
    text = f"%{like_escape(ascii_lower(q.text))}%" if q.text else ""
    sender = f"{like_escape(ascii_lower(q.sender))}!%" if q.sender else ""
    return text, sender


def search_conditions(q: Search, mark: str, fold: str) -> tuple[list[str], list[int | str]]:
    """The SQL conditions of ``q`` beyond its targets (time bounds, text, sender) and
    their values, for a store whose placeholder is ``mark`` and whose ASCII-only case
    folding of a column is ``fold`` (a format string: ``fold.format(column)``)."""
    where: list[str] = []
    values: list[int | str] = []
    if q.after_ms:
        where.append(f"time_ms > {mark}")
        values.append(q.after_ms)
    if q.before_ms:
        where.append(f"time_ms < {mark}")
        values.append(q.before_ms)
    text, sender = search_patterns(q)
    for column, pattern in (("text", text), ("source", sender)):
        if pattern:
            where.append(f"{fold.format(column)} LIKE {mark} ESCAPE '\\'")
            values.append(pattern)
    return where, values


class DueTargets:
    """What a store's retention pass looks at: the targets that may hold rows over the
    row cap, each with its newest seq known (``due``). The writer adds those it numbers
    past ``cap`` (``note``, once committed: a number rolled back would prune too much);
    a sweep adds those found over it (``swept``, a piece per pass). Both stores keep one
    and do the SQL; this keeps the bookkeeping the same for both."""

    def __init__(self) -> None:
        self.due: dict[str, int] = {}
        self.cap = sys.maxsize  # the last pass's row cap; none yet: nothing noted
        self.cursor: str | None = None  # the sweep's last target; None: not sweeping
        self._swept_ms: int | None = None  # when the last sweep started
        self.probes = 0  # targets the current pass probed (sweep, then due), for tests
        self.piece = SWEEP_TARGETS  # targets per piece of the sweep

    def begin(self, max_rows: int, now_ms: int) -> str | None:
        """Start a pass under the cap ``max_rows`` (0: none); returns the cursor to
        sweep a piece from, if a sweep is under way or due now."""
        self.probes = 0
        if max_rows <= 0:
            self.cap = sys.maxsize  # nothing to note until a cap is set again
            return None
        started = self._swept_ms
        if (max_rows != self.cap or started is None
                or (self.cursor is None and not 0 <= now_ms - started < SWEEP_INTERVAL_MS)):
            self.cursor, self._swept_ms = "", now_ms  # (or the clock went back)
        self.cap = max_rows
        return self.cursor

    def note(self, over: dict[str, int]) -> None:
        """Targets the writer committed past ``cap``, with their newest seq."""
        self.due.update(over)

    def swept(self, rows: Sequence[tuple[str, int, bool]]) -> None:
        """A piece of the sweep (at most ``piece`` targets, in key order, from the
        cursor): each target, its newest seq, and whether it holds a row older than its
        newest ``cap``."""
        self.probes += len(rows)
        for target, newest, over in rows:
            if over:
                self.due[target] = max(newest, self.due.get(target, 0))
        self.cursor = rows[-1][0] if len(rows) == self.piece else None

    def prune(self, delete: Callable[[str, int, int], int], budget: int) -> int:
        """Delete up to ``budget`` rows beyond the cap, due target by due target:
        ``delete(target, up_to_seq, at_most)`` returns how many it deleted. A target
        cut short by the budget stays due, as do those not reached."""
        deleted = 0
        for target, newest in list(self.due.items()):
            if deleted >= budget:
                break
            self.probes += 1
            left = budget - deleted
            gone = delete(target, newest - self.cap, left)
            deleted += gone
            if gone < left:
                del self.due[target]
        return deleted
