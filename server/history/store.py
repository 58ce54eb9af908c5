"""The store-of-record interface: SQLite and PostgreSQL fill it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
        further passes to be found, within the SQLite store's SWEEP_INTERVAL_MS."""
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
