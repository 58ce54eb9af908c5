"""Client data model: display lines, buffers, members and the events the UI receives.

Everything here is plain data owned by :class:`client.session.Session`; a UI reads it
and never mutates it (it calls Session methods instead).
"""

from __future__ import annotations

import sys
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from typing import Literal

from .formatting import Span


class Kind(StrEnum):
    MESSAGE = "message"
    ACTION = "action"  # CTCP ACTION (/me)
    NOTICE = "notice"
    JOIN = "join"
    PART = "part"
    QUIT = "quit"
    KICK = "kick"
    NICK = "nick"
    TOPIC = "topic"
    MODE = "mode"
    ERROR = "error"
    INFO = "info"


# Kinds that count as unread messages (the others are "activity" only).
MESSAGE_KINDS = frozenset({Kind.MESSAGE, Kind.ACTION, Kind.NOTICE})

# The text of a nick change line (``Kind.NICK``) before the new nick.
NICK_CHANGE = "is now known as "

# Joins, parts, quits and nick changes, with how the session's text for each begins (a
# line of such a kind with other text, e.g. the notify list's "bob is online", is none
# of them): in a channel, those of others are the lines the event filter may hide
# (client/smartfilter.py), and a full scrollback keeps them apart (EVENT_SHARE).
EVENT_TEXTS: dict[Kind, str] = {
    Kind.JOIN: "has joined ",
    Kind.PART: "has left",
    Kind.QUIT: "has quit",
    Kind.NICK: NICK_CHANGE,
}

# A full scrollback's share (1/EVENT_SHARE) that such events may take from the
# conversation when they may be hidden: past it they push out only older events, so a
# flood of joins and parts nobody sees never pushes what was said out of view.
EVENT_SHARE = 10

# Seconds a server time (a time tag, a read marker) may be from the local clock and be
# believed: past it, a server's clock is wrong, or a hostile server lies, and one such
# time must not date later lines, hide logged history or stop gap fills.
MAX_CLOCK_SKEW = 24 * 3600.0


class BufferKind(StrEnum):
    SERVER = "server"
    CHANNEL = "channel"
    QUERY = "query"
    # Message search results (``/search``, soju.im/search): lines from any channel or
    # query, each naming where it was said (``Line.where``); never sent to.
    SEARCH = "search"


class Delivery(StrEnum):
    """How far our own message has got (every other line is ``DELIVERED``)."""

    DELIVERED = "delivered"
    # Typed but not confirmed by the server yet: waiting for the connection (or the
    # channel's rejoin), or written and waiting for its echo.
    PENDING = "pending"
    FAILED = "failed"  # not sent, or not known to be: ``Line.note`` says why


class State(StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    REGISTERING = "registering"  # TCP is up, waiting for 001
    CONNECTED = "connected"  # registered


@dataclass(frozen=True, slots=True)
class Line:
    """One display line. ``text``/``nick`` are sanitised: no control characters, but
    the line feeds of a message of several lines (IRCv3 multiline): draw each of its
    lines on rows of their own (the spans hold them as ``Span("\\n")``).

    For message kinds ``nick`` is the sender and ``text`` the message. For events
    (join/part/quit/kick/nick/topic/mode) ``nick`` is the actor and ``text`` the rest
    of the sentence ("has joined #chan"); render as ``f"{nick} {text}"``. Info and
    error lines have an empty ``nick``. ``spans`` is ``text`` split into styled runs
    (mIRC bold/colour/...); their texts concatenate to ``text``.
    """

    time: float  # epoch seconds (server-time when the server sent it)
    kind: Kind
    nick: str
    text: str
    spans: tuple[Span, ...] = ()
    msgid: str | None = None
    prefix: str = ""  # the sender's highest channel prefix ("@", "+") when known
    own: bool = False  # sent by us
    highlight: bool = False  # mentions our nick (or a highlight word), or a private message
    history: bool = False  # came from a CHATHISTORY batch
    # Deleted (IRCv3 message-redaction): ``text`` is a placeholder such as "(message
    # deleted by carol: spam)"; time, kind, nick and msgid are the original message's.
    redacted: bool = False
    # IRCv3 reactions (``+draft/react``) to this message, oldest first: one per nick and
    # text (see :meth:`reaction_groups` for what to draw).
    reactions: tuple[Reaction, ...] = ()
    # A search result (a ``BufferKind.SEARCH`` buffer): the channel, or the nick of the
    # private conversation, the message was said in; our message to a channel we have
    # no buffer for, shown where we typed it: ``[msg(#c)]``. Drawn before the nick.
    where: str = ""
    # Our own message on its way (client/outbox.py): drawn dimmed with a marker while
    # PENDING, as an error when FAILED; ``note`` says more ("not sent yet", "not sent:
    # Cannot send to channel"). Confirmed, the line is replaced by the server's.
    delivery: Delivery = Delivery.DELIVERED
    note: str = ""
    # A netsplit's quits (``Kind.QUIT``) or the netjoin's joins (``Kind.JOIN``) folded
    # into one line (client/netsplit.py): the nicks, all of them; ``nick`` is empty.
    nicks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A buffer holds thousands of lines from a few nicks: one string per nick, not
        # one per line (a frozen dataclass is set through object.__setattr__).
        object.__setattr__(self, "nick", sys.intern(self.nick))

    def reaction_groups(self) -> list[tuple[str, tuple[str, ...], bool]]:
        """The reactions by text, in the order each text first came: (text, the nicks
        who reacted with it, whether we did)."""
        groups: dict[str, tuple[list[str], list[bool]]] = {}
        for r in self.reactions:
            nicks, own = groups.setdefault(r.text, ([], []))
            nicks.append(r.nick)
            own.append(r.own)
        return [(text, tuple(nicks), any(own)) for text, (nicks, own) in groups.items()]


@dataclass(frozen=True, slots=True)
class Reaction:
    """``nick`` reacted to a message with ``text`` (IRCv3 ``+draft/react``: an emoji or a
    short text, sanitised) at ``time`` (server time). ``msgids`` are the reaction's own
    (its TAGMSG's; more than one when the same was sent again, none when the server gave
    none): a REDACT of one of them takes it back. ``own``: ours."""

    text: str
    nick: str
    time: float
    msgids: tuple[str, ...] = ()
    own: bool = False


@dataclass(slots=True)
class Member:
    nick: str
    prefixes: str = ""  # all prefix symbols, highest rank first ("@+")
    userhost: str = ""  # user@host when the server said (JOIN, userhost-in-names)
    away: bool = False

    @property
    def prefix(self) -> str:
        """The highest prefix symbol, or ''."""
        return self.prefixes[:1]


class SeenIds:
    """A bounded set of message ids: the oldest ids are forgotten first."""

    __slots__ = ("_order", "_set")

    def __init__(self, limit: int) -> None:
        self._order: deque[str] = deque(maxlen=max(1, limit))
        self._set: set[str] = set()

    def add(self, msgid: str) -> bool:
        """Remember ``msgid``; False when it was already known (a duplicate)."""
        if msgid in self._set:
            return False
        if len(self._order) == self._order.maxlen:
            self._set.discard(self._order[0])
        self._order.append(msgid)
        self._set.add(msgid)
        return True

    def __contains__(self, msgid: object) -> bool:
        return msgid in self._set

    def take(self, msgid: str) -> bool:
        """Forget ``msgid``; whether it was known. (Its place in the order stays: an id
        taken and added again may be forgotten a little early.)"""
        if msgid not in self._set:
            return False
        self._set.discard(msgid)
        return True

    def grow(self, limit: int) -> None:
        """Remember up to ``limit`` ids from now on (never fewer than now)."""
        if limit > (self._order.maxlen or 0):
            self._order = deque(self._order, maxlen=limit)

    def __len__(self) -> int:
        return len(self._set)


# PageUp at the top of a full scrollback grows it, up to this many times its size,
# until the view follows new lines again (Buffer.grow, Buffer.shrink).
SCROLLBACK_GROWTH = 4


@dataclass(eq=False, slots=True)
class Buffer:
    """The server buffer, a channel or a private query."""

    kind: BufferKind
    name: str  # display name, and the target used on the wire
    scrollback: int = 2000
    lines: deque[Line] = field(init=False)
    seen: SeenIds = field(init=False)
    unread: int = 0  # message lines added while the buffer was not current
    highlights: int = 0  # highlighted lines added while not current
    activity: bool = False  # any line added while not current (joins, parts, ...)
    topic: str = ""
    topic_spans: tuple[Span, ...] = ()
    topic_setter: str = ""
    members: dict[str, Member] = field(default_factory=dict)  # folded nick -> member
    joined: bool = False  # we are in the channel right now
    rejoin: bool = False  # was joined when the connection was lost
    key: str = ""  # channel key to rejoin with
    history_loading: bool = False  # a CHATHISTORY request is in flight
    history_complete: bool = False  # the server has nothing older
    # Why the server's older history was not fetched (a FAIL's text, no answer): it is
    # not asked again on this connection, but it is not the beginning of history.
    history_refused: str = ""
    # A MESSAGE_ERROR (the server could not read it now: a busy store, a spent read
    # budget) is not the end: PageUp asks again from this time (monotonic, like ``now``).
    history_retry_at: float = 0.0
    # /clear was used and no older history has been merged since: the top line is
    # where the clear left off, not the beginning of history.
    cleared: bool = False
    # The msgids of the messages /clear took away: PageUp's history brings them back
    # (other history, a join's, does not: they stay seen).
    cleared_ids: set[str] = field(default_factory=set, repr=False)
    # Lines dropped above the top so far (the scrollback limit, or an older page that did
    # not fit): the server may still have them, so the top is neither the beginning of
    # history nor where a /clear left off, and PageUp goes on from the oldest line held.
    trimmed: int = 0
    # The msgids of the lines dropped so (not deleted ones): seen, yet PageUp's history
    # brings them back.
    dropped_ids: SeenIds = field(init=False, repr=False)
    # A query whose history the server refused (CHATHISTORY INVALID_TARGET: the partner or
    # we have no account): not asked again on this connection.
    no_history: bool = False
    last_msgid: str | None = None  # newest msgid seen (for the reconnect gap fill)
    last_time: float | None = None  # server time of the newest message seen
    # IRCv3 typing: folded nick -> (nick, "active" or "paused", until when).
    typing: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    typing_sent: float = 0.0  # when we last said we were typing here (0: not typing)
    read_marker: Line | None = None  # the newest line when we last left this buffer
    # IRCv3 draft/read-marker: the newest "read up to" time the server has for this
    # buffer (ms since the epoch), told by it or sent by us; None: not known.
    marked_ms: int | None = None
    version: int = 0  # bumped on every change: a cheap "redraw needed" check
    fold: Callable[[str], str] = field(default=str.lower, repr=False)  # (casemapping)
    # Folded nick -> times of their messages here, oldest first: when each nick spoke
    # (the smart filter of joins and parts). It may still hold times of lines gone
    # from the scrollback; it is rebuilt from the lines when it grows past them.
    spoken: dict[str, list[float]] = field(init=False, default_factory=dict, repr=False)
    spoken_count: int = field(init=False, default=0, repr=False)
    # Joins, parts, quits and nick changes of others may be hidden here (the event
    # filter is not ``all``): a full scrollback then makes room among them before it
    # drops the conversation's lines (EVENT_SHARE).
    events_hidden: bool = True
    event_lines: int = field(init=False, default=0, repr=False)  # such lines held

    def __post_init__(self) -> None:
        self.lines = deque(maxlen=max(1, self.scrollback))
        self.seen = SeenIds(max(2 * self.scrollback, 1000))
        self.dropped_ids = SeenIds(max(2 * self.scrollback, 1000))

    @property
    def is_channel(self) -> bool:
        return self.kind is BufferKind.CHANNEL

    @property
    def highlight(self) -> bool:
        return self.highlights > 0

    @property
    def full(self) -> bool:
        return len(self.lines) >= (self.lines.maxlen or 0)

    @property
    def can_grow(self) -> bool:
        """PageUp may still make room above (see :meth:`grow`)."""
        return (self.lines.maxlen or 0) < SCROLLBACK_GROWTH * max(1, self.scrollback)

    @property
    def _event_share(self) -> int:
        """How many event lines may push the conversation out (EVENT_SHARE)."""
        return max(1, (self.lines.maxlen or 0) // EVENT_SHARE)

    def is_event(self, line: Line) -> bool:
        """``line`` is a join, part, quit or nick change of someone else in a channel
        (a netsplit's folded quits or joins too): one the event filter may hide."""
        if self.kind is not BufferKind.CHANNEL or line.own:
            return False
        if line.nicks:
            return True
        mark = EVENT_TEXTS.get(line.kind)
        return mark is not None and line.text.startswith(mark)

    def _count_events(self) -> None:
        self.event_lines = sum(map(self.is_event, self.lines))

    def _make_room(self, count: int) -> None:
        """Room for ``count`` more lines in the scrollback: the oldest lines go, but
        while events (:meth:`is_event`) that may be hidden hold more than their share,
        a line of the conversation does not. The oldest events go instead, down to
        half their share at once: dropping them one a line would walk the scrollback
        at every line of a flood."""
        lines = self.lines
        while lines and len(lines) + count > (lines.maxlen or 0):
            oldest = lines[0]
            if (
                self.events_hidden
                and self.event_lines > self._event_share
                and not self.is_event(oldest)
            ):
                self._drop_events(self.event_lines - self._event_share // 2)
            else:
                self._trim((oldest,))
                lines.popleft()
                self.event_lines -= self.is_event(oldest)

    def _drop_events(self, count: int) -> None:
        """The ``count`` oldest event lines go, below the top (the oldest line is the
        conversation's); the read marker on one moves to the line above it."""
        kept: list[Line] = []
        for line in self.lines:
            if count and self.is_event(line):
                count -= 1
                if line is self.read_marker:
                    self.read_marker = kept[-1] if kept else None
            else:
                kept.append(line)
        self.lines.clear()
        self.lines.extend(kept)
        self._count_events()
        self.version += 1

    def grow(self, lines: int) -> bool:
        """Room for ``lines`` more (PageUp at the top of a full scrollback: older history
        must not push newer lines out), up to SCROLLBACK_GROWTH times the scrollback,
        until :meth:`shrink`. False when it cannot grow."""
        if not self.can_grow:
            return False
        size = min((self.lines.maxlen or 0) + max(1, lines), SCROLLBACK_GROWTH * self.scrollback)
        self.lines = deque(self.lines, maxlen=size)
        self.seen.grow(2 * size)  # (as many ids per line as at the start)
        return True

    def shrink(self) -> None:
        """Back to the scrollback's size once the view follows new lines again: the
        oldest lines go, those PageUp paged in beyond it first."""
        size = max(1, self.scrollback)
        if (self.lines.maxlen or 0) <= size:
            return
        self._trim(list(islice(self.lines, max(0, len(self.lines) - size))))
        self.lines = deque(self.lines, maxlen=size)  # (the newest stay)
        self._count_events()
        self.version += 1

    def sorted_members(self, ranks: str = "") -> list[Member]:
        """Members by highest prefix (in ``ranks`` order, e.g. "~&@%+"), then by nick."""

        def key(m: Member) -> tuple[int, str]:
            p = m.prefix
            rank = ranks.find(p) if p and p in ranks else len(ranks)
            return rank, m.nick.lower()

        return sorted(self.members.values(), key=key)

    def spoke(self, nick: str, start: float, end: float) -> bool:
        """Whether ``nick`` sent a message here timed from ``start`` to ``end`` (both
        included; a nick change carries the newest time before it to the new nick)."""
        times = self.spoken.get(self.fold(nick))
        if not times:
            return False
        i = bisect_left(times, start)
        return i < len(times) and times[i] <= end

    def last_spoke(self, nick: str) -> float:
        """When ``nick`` last sent a message here (0: not in the lines held)."""
        times = self.spoken.get(self.fold(nick))
        return times[-1] if times else 0.0

    def _note_spoken(self, lines: Iterable[Line]) -> None:
        spoken, fold = self.spoken, self.fold
        for line in lines:
            if line.kind in MESSAGE_KINDS:
                if line.nick:
                    insort(spoken.setdefault(fold(line.nick), []), line.time)
                    self.spoken_count += 1
            elif line.kind is Kind.NICK and line.text.startswith(NICK_CHANGE):
                times = spoken.get(fold(line.nick))
                i = bisect_right(times, line.time) if times else 0
                if times and i:
                    new = fold(line.text[len(NICK_CHANGE) :])
                    insort(spoken.setdefault(new, []), times[i - 1])
                    self.spoken_count += 1
        if self.spoken_count > 2 * len(self.lines) + 64:
            self._index_spoken()

    def _index_spoken(self) -> None:
        """``spoken`` anew from the lines held."""
        self.spoken = {}
        self.spoken_count = 0
        self._note_spoken(self.lines)

    def oldest_message(self) -> Line | None:
        """The oldest message line with a msgid (a CHATHISTORY BEFORE reference)."""
        for line in self.lines:
            if line.msgid and line.kind in MESSAGE_KINDS:
                return line
        return None

    def find_message(self, msgid: str) -> Line | None:
        """The message line (``MESSAGE_KINDS``) with ``msgid``, searching newest first."""
        for line in reversed(self.lines):
            if line.msgid == msgid and line.kind in MESSAGE_KINDS:
                return line
        return None

    def find_reaction(self, msgid: str) -> tuple[Line, Reaction] | None:
        """The line holding the reaction whose own msgid is ``msgid``, and that reaction
        (newest line first)."""
        for line in reversed(self.lines):
            if line.reactions:
                for reaction in line.reactions:
                    if msgid in reaction.msgids:
                        return line, reaction
        return None

    def replace(self, old: Line, new: Line) -> bool:
        """Put ``new`` where ``old`` is (the same object, searched newest first); the read
        marker follows. False when ``old`` is no longer in the scrollback."""
        lines = self.lines
        for back, line in enumerate(reversed(lines)):
            if line is old:
                lines[len(lines) - 1 - back] = new
                self.event_lines += self.is_event(new) - self.is_event(old)
                if self.read_marker is old:
                    self.read_marker = new
                self.version += 1
                return True
        return False

    def settle(self, old: Line, new: Line) -> bool:
        """Put our confirmed message ``new`` (the server's line, with its msgid) where its
        pending line ``old`` is, remembering the msgid as :meth:`append` would. False
        when ``old`` is no longer in the scrollback."""
        if not self.replace(old, new):
            return False
        if new.msgid is not None:
            self.seen.add(new.msgid)
            if new.kind in MESSAGE_KINDS and (self.last_time is None or new.time >= self.last_time):
                self.last_msgid = new.msgid
                self.last_time = new.time
        return True

    def remove(self, line: Line) -> bool:
        """Take ``line`` (the same object) out; the read marker moves to the line above."""
        lines = self.lines
        for back, ln in enumerate(reversed(lines)):
            if ln is line:
                i = len(lines) - 1 - back
                if self.read_marker is line:
                    self.read_marker = lines[i - 1] if i else None
                del lines[i]
                self.event_lines -= self.is_event(line)
                self.version += 1
                return True
        return False

    def append(self, line: Line) -> bool:
        """Add a live line at the bottom; False (and nothing added) for a duplicate msgid."""
        if line.msgid is not None:
            if not self.seen.add(line.msgid):
                return False
            if line.kind in MESSAGE_KINDS:  # only messages are kept in server history
                self.last_msgid = line.msgid
                self.last_time = line.time
        if self.full:
            self._make_room(1)
        self.lines.append(line)
        self.event_lines += self.is_event(line)
        if line.kind in MESSAGE_KINDS or line.kind is Kind.NICK:
            self._note_spoken((line,))
        self.version += 1
        return True

    def merge(
        self, batch: Iterable[Line], *, above: bool = False, restore: bool = False
    ) -> tuple[list[Line], bool]:
        """Merge history lines in time order, skipping known msgids.

        Returns (the lines added, whether they all went above the existing ones). Older
        history never pushes newer lines out: when the scrollback is full only what fits
        is kept. ``above`` (a CHATHISTORY BEFORE page) puts a line above existing lines
        of the same time: server-time has millisecond resolution, so a burst of messages
        shares timestamps, and a page of older ones must not land below them.
        ``restore`` (PageUp's page): the messages /clear took away, and those dropped
        above the top, are not skipped.
        """
        cleared = self.cleared_ids if restore else set()
        new = [
            ln for ln in batch
            if ln.msgid is None or self.seen.add(ln.msgid) or _take(cleared, ln.msgid)
            or (restore and self.dropped_ids.take(ln.msgid))
        ]  # fmt: skip
        if not new:
            return [], False
        new.sort(key=_time)
        maxlen = self.lines.maxlen or 0
        lines = self.lines
        older = False
        if not lines or (
            new[0].time > lines[-1].time if above else new[0].time >= lines[-1].time
        ):
            for ln in new:  # (as live lines: what makes room for each is the same)
                self._make_room(1)
                lines.append(ln)
                self.event_lines += self.is_event(ln)
            held = set(map(id, lines))
            added = [ln for ln in new if id(ln) in held]
        else:
            # Insert each new line after the last existing line that is not newer,
            # scanning from the bottom: existing lines keep their (arrival) order.
            existing = list(lines)
            i = len(existing)
            merged_rev: list[Line] = []
            for ln in reversed(new):
                while i > 0 and (
                    existing[i - 1].time > ln.time or (above and existing[i - 1].time == ln.time)
                ):
                    i -= 1
                    merged_rev.append(existing[i])
                merged_rev.append(ln)
                if ln is new[-1]:
                    older = i == 0  # even the newest goes above every existing line
            if older:
                # Older history never pushes newer lines out: keep only what fits.
                room = maxlen - len(existing)
                added = new[max(0, len(new) - room) :] if room > 0 else []
                merged = added + existing
                self._trim(new[: len(new) - len(added)])
            else:
                merged = existing[:i] + merged_rev[::-1]
                added = new
                self._trim(merged[: max(0, len(merged) - maxlen)])
                merged = merged[-maxlen:]
            lines.clear()
            lines.extend(merged)
            self._count_events()
        self._note_spoken(added)
        if (older or restore) and added:
            self.cleared = False  # the top is history again
        newest = next((ln for ln in reversed(new) if ln.msgid and ln.kind in MESSAGE_KINDS), None)
        if newest is not None and (self.last_time is None or newest.time >= self.last_time):
            self.last_msgid = newest.msgid
            self.last_time = newest.time
        self.version += 1
        return added, older

    def _trim(self, dropped: Sequence[Line]) -> None:
        """``dropped`` fell off the top (or, older history, did not fit): PageUp may
        bring them back, deleted messages aside."""
        if dropped:
            self.trimmed += len(dropped)
            self.history_complete = False
            self.history_refused = ""
            self.cleared = False
            for line in dropped:
                if line.msgid and not line.redacted:
                    self.dropped_ids.add(line.msgid)

    def clear(self) -> None:
        """Forget the lines; the seen ids stay so history does not bring them back,
        but PageUp's (:meth:`merge` with ``restore``)."""
        # (Earlier clears' ids no longer seen would come back anyway: not kept.)
        kept = {i for i in self.cleared_ids if i in self.seen}
        taken = {ln.msgid for ln in self.lines if ln.msgid and not ln.redacted}
        self.cleared_ids = kept | taken
        self.lines.clear()
        self.event_lines = 0
        self.cleared = True
        self.version += 1

    def reset(self, lines: Iterable[Line]) -> None:
        """Hold exactly ``lines`` (the newest that fit), forgetting the old lines, seen
        ids and read marker: a search buffer's new results. Nothing is counted as
        unread and no newest message is remembered for history or read markers."""
        self.lines.clear()
        self.lines.extend(lines)
        self._count_events()
        self.seen = SeenIds(max(2 * self.scrollback, 1000))
        self.dropped_ids = SeenIds(max(2 * self.scrollback, 1000))
        self.read_marker = None
        self.cleared = False
        self.cleared_ids = set()
        self._index_spoken()
        self.version += 1


def _time(line: Line) -> float:
    return line.time


def _take(ids: set[str], msgid: str) -> bool:
    """Whether ``msgid`` was in ``ids`` (it no longer is)."""
    if msgid in ids:
        ids.discard(msgid)
        return True
    return False


# ---------------------------------------------------------------------- events

# What a history answer was asked for: the recent lines of a channel joined or a query
# opened (or sent unasked), what a reconnect missed (the gap fill), or PageUp's older page.
HistoryCause = Literal["recent", "missed", "older"]


@dataclass(frozen=True, slots=True)
class LineAdded:
    """A live line was appended to ``buffer`` (check ``line.highlight`` for the bell)."""

    buffer: Buffer
    line: Line


@dataclass(frozen=True, slots=True)
class HistoryAdded:
    """``count`` history lines were merged into ``buffer``.

    ``older`` is True when they all went above the existing lines (PageUp loading):
    a UI scrolled up should move its offset by ``count`` to keep its position.
    ``lines`` are the merged lines, oldest first; ``cause`` what they were asked for;
    ``late``: the answer came after its request was given up (HISTORY_TIMEOUT), or
    is a page of a gap fill such an answer resumed.
    """

    buffer: Buffer
    count: int
    older: bool
    lines: tuple[Line, ...] = ()
    cause: HistoryCause = "recent"
    late: bool = False


@dataclass(frozen=True, slots=True)
class LineRedacted:
    """A message of ``buffer`` was deleted (IRCv3 message-redaction): ``old`` was
    replaced, in place, by ``line`` (``redacted`` set, a placeholder for its text). ``by``
    deleted it at ``time`` (server time), giving ``reason`` ('' when none);
    ``by_sender``: the one who sent it did."""

    buffer: Buffer
    old: Line
    line: Line
    by: str
    reason: str
    time: float
    by_sender: bool

    def describe(self, sent: str) -> str:
        """A sentence for a log: "carol deleted bob's message of <sent>: spam", where
        ``sent`` is the message's time as the caller writes times."""
        whose = "their" if self.by_sender else f"{self.old.nick}'s"
        return f"{self.by} deleted {whose} message of {sent}" + (
            f": {self.reason}" if self.reason else ""
        )


@dataclass(frozen=True, slots=True)
class LineReacted:
    """A reaction (IRCv3 ``+draft/react``) to a message of ``buffer`` came or, when
    ``removed``, was taken back (a REDACT of the reaction's msgid): ``old`` was replaced,
    in place, by ``line`` (its ``reactions`` changed). ``nick`` reacted with ``text``;
    ``time`` (server time) is when that, or the removal, happened; ``msgid`` is the
    reaction's own. ``by`` removed it ('' when the reactor did); ``by_sender``: the
    message's sender reacted; ``history``: learnt from a history answer."""

    buffer: Buffer
    old: Line
    line: Line
    nick: str
    text: str
    time: float
    msgid: str | None = None
    by_sender: bool = False
    removed: bool = False
    by: str = ""
    history: bool = False

    def describe(self, sent: str) -> str:
        """A sentence for a log: "alice reacted 👍 to bob's message of <sent>", where
        ``sent`` is the message's time as the caller writes times."""
        whose = "their" if self.by_sender else f"{self.old.nick}'s"
        if not self.removed:
            return f"{self.nick} reacted {self.text} to {whose} message of {sent}"
        if not self.by:
            return f"{self.nick} took back {self.text} from {whose} message of {sent}"
        whose = f"{self.old.nick}'s"
        return f"{self.by} removed {self.nick}'s {self.text} from {whose} message of {sent}"


@dataclass(frozen=True, slots=True)
class DeliveryChanged:
    """Our own message in ``buffer`` got further (client/outbox.py): ``old`` was replaced,
    in place, by ``line``. ``line.delivery`` is DELIVERED when the server confirmed it
    (its echo, or history after a reconnect: the server's time and msgid; at once on a
    server without echo-message), FAILED when it was refused or may be lost, PENDING
    when it was written after waiting for the connection."""

    buffer: Buffer
    old: Line
    line: Line


@dataclass(frozen=True, slots=True)
class BufferOpened:
    buffer: Buffer


@dataclass(frozen=True, slots=True)
class BufferClosed:
    buffer: Buffer


@dataclass(frozen=True, slots=True)
class BufferChanged:
    """Topic, members, unread counts, name or join state of ``buffer`` changed."""

    buffer: Buffer


@dataclass(frozen=True, slots=True)
class BufferCleared:
    buffer: Buffer


@dataclass(frozen=True, slots=True)
class CurrentChanged:
    """The current (visible) buffer is now ``buffer``."""

    buffer: Buffer


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """Own nick, connection state, lag, away status or capabilities changed."""


@dataclass(frozen=True, slots=True)
class QuitRequested:
    """The user typed /quit: the QUIT line is queued; close after sending, don't reconnect."""

    message: str


@dataclass(frozen=True, slots=True)
class ReconnectRequested:
    """The user typed /reconnect: end this connection (its QUIT is queued) and connect
    again at once, without the backoff's wait."""


@dataclass(frozen=True, slots=True)
class StsUpgrade:
    """A plaintext connection was told to use TLS on ``port`` (IRCv3 STS): reconnect."""

    port: int


@dataclass(frozen=True, slots=True)
class StsPolicy:
    """Over TLS the server asked to be reached only over TLS for ``duration`` seconds."""

    duration: int


Event = (
    LineAdded
    | HistoryAdded
    | LineRedacted
    | LineReacted
    | DeliveryChanged
    | BufferOpened
    | BufferClosed
    | BufferChanged
    | BufferCleared
    | CurrentChanged
    | StatusChanged
    | QuitRequested
    | ReconnectRequested
    | StsUpgrade
    | StsPolicy
)

EventCallback = Callable[[Event], None]
