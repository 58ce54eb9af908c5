"""Chat history (IRCv3 draft/chathistory): what the session asks for, and what it does
with the answers.

A channel asks for its recent lines when joined (LATEST) and, after a reconnect, for
what it missed (AFTER its newest msgid, paged until caught up: the gap fill); PageUp
pages back (BEFORE). A query does the same, but only when logged in (servers keep
private history only between accounts), and after a reconnect CHATHISTORY TARGETS
opens queries for the conversations that got messages meanwhile. Answers come as
batches, merged into their buffer by time and msgid. With labeled-response each request
carries a label and its answer is the batch (or FAIL, or ACK) with that label, so a
request never answered does not take the next one's answer; without, answers are
matched to a buffer's requests in order. A deletion in an answer (REDACT,
draft/message-redaction) is no line: the message's line gets its placeholder. Nor is a
reaction (a TAGMSG with ``+draft/react``, draft/event-playback): it annotates its line.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

from chat.message import Message
from chat.servertime import format_time, parse_time

from .model import (
    MESSAGE_KINDS,
    Buffer,
    BufferChanged,
    BufferKind,
    Event,
    HistoryAdded,
    HistoryCause,
    Line,
)
from .outbox import LABEL_CAP

MAX_GAP_PAGES = 30  # CHATHISTORY AFTER pages fetched after one reconnect
MAX_TARGETS = 50  # queries CHATHISTORY TARGETS may open after one reconnect
MAX_ORPHANS = 500  # queries gone with answers still due (one per buffer: MAX_BUFFERS)
# Channels loading history at once: a server (or bouncer) that joins us to hundreds of
# channels must not queue a request for each. A join past it is fetched when its
# buffer is first shown (the one in view is asked for whatever the count) or gets a
# message, a rejoin's gap fill as soon as fewer channels load.
MAX_LOADING = 20
# Seconds a request written may wait for its answer (a batch, or FAIL): a server that
# answers some without a batch (nothing to send, say) or not at all must not leave a
# buffer loading for ever, nor a reconnect without its line.
HISTORY_TIMEOUT = 60.0
NO_ANSWER = "no answer from the server"
# PageUp asks again this long after a MESSAGE_ERROR: our server says "try again in a
# few seconds" when the host's read budget is spent (others when their store is busy).
RETRY_REFUSED_SECONDS = 5.0

# Batch types that carry history, and a TARGETS listing.
HISTORY_BATCHES = frozenset({"chathistory", "draft/chathistory"})
TARGETS_BATCHES = frozenset({"chathistory-targets", "draft/chathistory-targets"})

HistoryKind = Literal["latest", "before", "after"]

# Our own events a reconnect's gap fill leaves out: the quit of the connection lost
# (under the nick it had) and a join of ours (the rejoin, a connection in between). The
# Disconnected and Reconnected lines say it, and by server time the quit may land on
# either side of the Disconnected line.
OWN_GAP_EVENTS = frozenset({"QUIT", "JOIN"})


@dataclass(slots=True)
class _HistoryRequest:
    kind: HistoryKind
    limit: int
    # Part of a reconnect gap fill (AFTER pages, or the LATEST of a channel rejoined
    # with no message seen: all its messages are missed ones).
    gap: bool = False
    pages: int = 1
    paging: bool = False  # PageUp's: brings back what /clear took away too
    due: float | None = None  # given up at (HISTORY_TIMEOUT after it was written)
    # Given up (no answer by ``due``), kept in its place: without labels answers come in
    # order, so the next one for the buffer is its answer, late, and not that of a
    # request after it; with labels its own answer still finds it.
    late: bool = False
    resumed: bool = False  # a page of a gap fill resumed by a late answer
    label: str | None = None  # labeled-response: the label its answer carries


@dataclass(frozen=True, slots=True)
class _PutOff:
    """A channel's history not asked for yet (MAX_LOADING were loading): a join's
    recent lines, asked when its buffer is shown or gets a message, or (``gap``) a
    rejoin's gap fill, ``CHATHISTORY <sub> <channel> <ref>`` as it was when the channel
    was rejoined (live messages since must not move where the fill starts), asked as
    soon as there is room."""

    gap: bool = False
    sub: str = "LATEST"
    ref: str = "*"


@dataclass(frozen=True, slots=True)
class _Answer:
    """What a chathistory batch held, whether shown or not: ``count`` messages, the
    newest (the last) with ``newest_msgid``, the oldest (the first) with a msgid and a
    server time at ``oldest`` (time, msgid)."""

    count: int
    newest_msgid: str | None
    oldest: tuple[float, str] | None
    newest_known: bool = False  # the newest was seen before this answer came


@dataclass(slots=True)
class _Targets:
    """CHATHISTORY TARGETS asked after a reconnect: conversations with messages since
    ``since`` (server time) open queries, at most ``left`` more."""

    since: float
    left: int


class HistorySettings(Protocol):
    """Where the request size is read (a :class:`client.session.SessionConfig`)."""

    @property
    def history_lines(self) -> int: ...


class HistoryListener(Protocol):
    """Who waits for history (the outbox, client/outbox.py: our messages still without a
    msgid, written before the connection died or not, may be in it)."""

    def confirm(self, buf: Buffer, lines: list[Line]) -> list[Line]: ...
    def history_done(self, buf: Buffer, ok: bool, now: float) -> None: ...
    def awaits_history(self, buf: Buffer) -> bool: ...
    @property
    def paced(self) -> bool:
        """Lines wait for flood control: the connection says when a request is
        written (:meth:`ChatHistory.written`)."""
        ...


class HistorySession(Protocol):
    """What history needs from :class:`client.session.Session`."""

    @property
    def buffers(self) -> list[Buffer]: ...
    @property
    def current(self) -> Buffer: ...
    @property
    def account(self) -> str | None: ...
    @property
    def chathistory_limit(self) -> int: ...
    @property
    def registered(self) -> bool: ...
    @property
    def history_enabled(self) -> bool: ...
    @property
    def query_history_enabled(self) -> bool: ...
    def fold(self, name: str) -> str: ...
    def buffer(self, name: str) -> Buffer | None: ...
    def is_channel(self, name: str) -> bool: ...
    def is_me(self, nick: str) -> bool: ...
    def was_me(self, msg: Message) -> bool: ...
    @property
    def caps(self) -> set[str]: ...
    def local_time(self, now: float) -> float: ...
    def send(self, command: str, *params: str, tags: dict[str, str] | None = None) -> None: ...
    def emit(self, event: Event) -> None: ...
    def info(
        self, text: str, now: float, buffer: Buffer | None = None, *, count: bool = True
    ) -> None: ...
    def open_query(
        self, nick: str, now: float, switch: bool = True, *, fetch: bool = True
    ) -> Buffer | None: ...
    def history_line(self, msg: Message, now: float, buf: Buffer) -> Line | None: ...
    def history_redaction(self, msg: Message, now: float, buf: Buffer) -> str | None: ...
    def history_reaction(self, msg: Message, now: float, buf: Buffer) -> None: ...


class ChatHistory:
    """One session's history requests in flight, keyed by folded buffer name, and what
    follows from them: gap fills under way, answers due for queries that are gone, and a
    TARGETS listing."""

    def __init__(
        self, settings: HistorySettings, session: HistorySession, listener: HistoryListener
    ) -> None:
        self._settings = settings
        self._session = session
        self._listener = listener
        self._requests: dict[str, deque[_HistoryRequest]] = {}  # oldest first
        self._gap: dict[str, int] = {}  # buffer key -> missed messages fetched so far
        # Query keys -> history answers still due for a buffer that is gone (closed, or
        # renamed by a NICK): they are dropped, not shown in a reopened buffer.
        self._orphans: dict[str, int] = {}
        self._targets: _Targets | None = None  # a CHATHISTORY TARGETS in flight
        # Buffer key -> (time, msgid) of the oldest message a LATEST or BEFORE answer held,
        # shown or not, and the buffer's ``trimmed`` then: PageUp goes on from there when
        # it is older than every line, unless lines fell off the top since (they are
        # between the two).
        self._floor: dict[str, tuple[float, str, int]] = {}
        # Channel key -> its history put off, in join order. A join's stays from one
        # connection to the next (never loaded: its rejoin has no gap to fill), a gap
        # fill's goes with the connection (the next rejoin asks again).
        self._put_off: dict[str, _PutOff] = {}
        self._labels = 0  # labels given so far (h1, h2...: never one of the outbox's)

    # ------------------------------------------------------------------ the session's life

    def connection_made(self) -> None:
        self._requests.clear()
        self._orphans.clear()
        self._targets = None
        for buf in self._session.buffers:
            buf.no_history = False  # a new connection may have accounts where the last had none

    def connection_lost(self) -> None:
        self._requests.clear()
        self._gap.clear()
        self._orphans.clear()
        self._targets = None
        self._put_off = {key: p for key, p in self._put_off.items() if not p.gap}

    def buffer_closed(self, buf: Buffer) -> None:
        """``buf`` was closed: answers still due for it are dropped, so it loads nothing."""
        key = self._session.fold(buf.name)
        if buf.kind is BufferKind.QUERY:
            self._orphan(key)
        buf.history_loading = False
        self._requests.pop(key, None)
        self._gap.pop(key, None)
        self._floor.pop(key, None)
        self._put_off.pop(key, None)

    def cleared(self, buf: Buffer) -> None:
        """``/clear``: PageUp goes on from where the clear left off, not from the oldest
        page loaded before it."""
        self._floor.pop(self._session.fold(buf.name), None)

    def query_renamed(self, buf: Buffer, old_key: str, now: float) -> None:
        """A NICK renamed a query to another key. Answers come back under the name asked
        for: ask again under the new one (the server keeps the conversation by account)."""
        floor = self._floor.pop(old_key, None)
        if floor is not None:  # the same conversation: the server keeps it by account
            self._floor[self._session.fold(buf.name)] = floor
        if old_key not in self._requests:
            return
        kinds = {req.kind for req in self._requests[old_key]}
        self._orphan(old_key)
        self._gap.pop(old_key, None)
        buf.history_loading = False
        if kinds != {"before"}:  # PageUp asks again by itself
            self.for_query(buf, now, latest="latest" in kinds)

    def fail_all(self, now: float, why: str) -> None:
        """The server does not really support CHATHISTORY (``why``, its answer): nothing
        asked is coming; the gap fills under way end with their line."""
        s = self._session
        gaps = {key for key, queue in self._requests.items()
                if any(r.gap and not r.late for r in queue)}
        gaps |= {key for key, p in self._put_off.items() if p.gap}
        fetched = self._gap.copy()
        self._requests.clear()
        self._gap.clear()
        self._targets = None
        self._put_off = {key: p for key, p in self._put_off.items() if not p.gap}
        for buf in list(s.buffers):
            key = s.fold(buf.name)
            if key in gaps:
                s.info(_unfetched(fetched.get(key, 0), why), now, buf, count=False)
            if buf.history_loading:
                buf.history_loading = False
                self._session.emit(BufferChanged(buf))
                self._listener.history_done(buf, False, now)

    # ------------------------------------------------------------------ requests

    def request_older(self, buf: Buffer, now: float) -> bool:
        """PageUp at the top: ask for history before the oldest line (a full scrollback
        grows by a page for it). False if not possible."""
        s = self._session
        if (
            not s.history_enabled
            or not s.registered
            or buf.kind in (BufferKind.SERVER, BufferKind.SEARCH)
            or (buf.kind is BufferKind.QUERY and not s.query_history_enabled)
            or buf.no_history
            or buf.history_loading
            or (buf.history_complete and not buf.cleared)  # (what /clear took is newer)
            or now < buf.history_retry_at
        ):
            return False
        limit = self._limit()
        if buf.full and not buf.grow(limit):
            return False
        oldest = buf.oldest_message()
        floor = self._floor.get(s.fold(buf.name))
        if (
            floor is not None
            and floor[2] == buf.trimmed
            and (oldest is None or floor[0] < oldest.time)
        ):
            ref = f"msgid={floor[1]}"  # a page with nothing shown (all deletions, say)
        elif oldest is not None:
            ref = f"msgid={oldest.msgid}"
        elif buf.lines:
            ref = f"timestamp={format_time(buf.lines[0].time)}"
        else:
            self._request(buf, _HistoryRequest("latest", limit, paging=True), "LATEST", "*", now)
            return True
        self._request(buf, _HistoryRequest("before", limit, paging=True), "BEFORE", ref, now)
        return True

    def on_join(self, buf: Buffer, rejoin: bool, now: float) -> None:
        s = self._session
        if not s.history_enabled:
            if rejoin:  # (as the Disconnected line, no news: every channel gets one)
                s.info("Reconnected (this server keeps no history for us)", now, buf,
                       count=False)  # fmt: skip
            return
        key = s.fold(buf.name)
        before = self._put_off.pop(key, None)
        if before is not None and not before.gap:
            rejoin = False  # never loaded: no gap to fill, its recent lines when shown
        if rejoin and buf.last_msgid:
            ask = _PutOff(True, "AFTER", f"msgid={buf.last_msgid}")
        elif rejoin and buf.last_time is not None:
            ask = _PutOff(True, "AFTER", f"timestamp={format_time(buf.last_time)}")
        else:
            # (No message seen yet on a rejoin: the newest ones are what was missed, and
            # the fill ends with the same line as any other.)
            ask = _PutOff(rejoin)
        # (Messages of ours that may be lost wait for the gap fill to tell.)
        if (
            buf is s.current
            or self._listener.awaits_history(buf)
            or self._loading() < MAX_LOADING
        ):
            self._ask(buf, ask, now)
        else:
            self._put_off[key] = ask

    def shown(self, buf: Buffer, now: float) -> None:
        """``buf`` is in view: its history put off (:data:`MAX_LOADING`) is asked for."""
        if buf.is_channel:
            self._take_put_off(buf, now, room=False)

    def activity(self, buf: Buffer, now: float) -> None:
        """A message came to ``buf``: a join's history put off is asked for when fewer
        than :data:`MAX_LOADING` channels load (a gap fill waits its turn)."""
        p = self._put_off.get(self._session.fold(buf.name))
        if p is not None and not p.gap and buf.is_channel:
            self._take_put_off(buf, now, room=True)

    def _take_put_off(self, buf: Buffer, now: float, *, room: bool) -> bool:
        """Ask for ``buf``'s history put off, if any, when it can be (``room``: only
        when fewer than :data:`MAX_LOADING` load). True when asked."""
        s = self._session
        key = s.fold(buf.name)
        p = self._put_off.get(key)
        if (
            p is None
            or not s.history_enabled
            or not s.registered
            or not buf.joined  # (kept for the rejoin)
            or (room and self._loading() >= MAX_LOADING)
        ):
            return False
        del self._put_off[key]
        self._ask(buf, p, now)
        return True

    def _make_room(self, now: float) -> None:
        """A channel stopped loading: the gap fills put off go next, oldest first."""
        for key in [key for key, p in self._put_off.items() if p.gap]:
            if self._loading() >= MAX_LOADING:
                return
            buf = self._session.buffer(key)
            if buf is None or not self._take_put_off(buf, now, room=True):
                self._put_off.pop(key, None)  # (not joined: the next rejoin asks again)

    def _loading(self) -> int:
        """How many buffers wait for a history answer (not given up)."""
        return sum(1 for key in self._requests if self._waiting(key))

    def _ask(self, buf: Buffer, ask: _PutOff, now: float) -> None:
        """Send a channel's join history, or its gap fill (``ask.gap``)."""
        if ask.gap:
            self._gap[self._session.fold(buf.name)] = 0
        kind: HistoryKind = "latest" if ask.sub == "LATEST" else "after"
        req = _HistoryRequest(kind, self._limit(), gap=ask.gap)
        self._request(buf, req, ask.sub, ask.ref, now)

    def for_query(self, buf: Buffer, now: float, *, latest: bool = False) -> None:
        """A query's history, when the server can have it: the recent conversation for a
        new one (or one with no message yet, or ``latest``), else what was missed since
        its newest message (after a reconnect; paged like a channel's gap fill)."""
        if (
            not self._session.query_history_enabled
            or buf.no_history
            or buf.history_loading
            or buf.name.startswith(":")  # not sendable as a middle parameter
        ):
            return
        limit = self._limit()
        if buf.last_msgid and not latest:
            ref = f"msgid={buf.last_msgid}"
        elif buf.last_time is not None and not latest:
            ref = f"timestamp={format_time(buf.last_time)}"
        else:
            self._request(buf, _HistoryRequest("latest", limit), "LATEST", "*", now)
            return
        self._gap[self._session.fold(buf.name)] = 0
        self._request(buf, _HistoryRequest("after", limit, gap=True), "AFTER", ref, now)

    def ask_targets(self, now: float) -> None:
        """After a reconnect: which conversations got messages since the newest message
        we saw (CHATHISTORY TARGETS); those without a query open one, gap-filled."""
        s = self._session
        seen = [b.last_time for b in s.buffers if b.last_time is not None]
        if not s.query_history_enabled or not seen:
            return
        since = max(seen)
        limit = min(self._limit(), MAX_TARGETS)
        self._targets = _Targets(since, limit)
        until = format_time(s.local_time(now) + 60)  # a server clock a little ahead
        s.send("CHATHISTORY", "TARGETS", f"timestamp={format_time(since)}",
               f"timestamp={until}", str(limit))  # fmt: skip

    def _limit(self) -> int:
        limit = max(1, self._settings.history_lines)
        if self._session.chathistory_limit:
            limit = min(limit, self._session.chathistory_limit)
        return limit

    def _request(
        self, buf: Buffer, req: _HistoryRequest, sub: str, ref: str, now: float
    ) -> None:
        key = self._session.fold(buf.name)
        if not self._listener.paced:  # (written now)
            req.due = now + HISTORY_TIMEOUT
        queue = self._requests.setdefault(key, deque(maxlen=8))
        queue.append(req)
        buf.history_loading = True
        self._session.emit(BufferChanged(buf))
        tags = None
        if LABEL_CAP in self._session.caps:  # its answer says which request it is
            self._labels += 1
            req.label = f"h{self._labels}"
            tags = {"label": req.label}
        self._session.send("CHATHISTORY", sub, buf.name, ref, str(req.limit), tags=tags)

    def written(self, key: str, now: float) -> None:
        """A request for the buffer ``key`` (folded) was written, flood control's turn
        come: its answer is waited for from now."""
        queue = self._requests.get(key, ())
        req = next((r for r in queue if r.due is None and not r.late), None)
        if req is not None:
            req.due = now + HISTORY_TIMEOUT

    def _waiting(self, key: str) -> bool:
        """The buffer ``key`` waits for an answer (one not given up)."""
        return any(not r.late for r in self._requests.get(key, ()))

    def _oldest_waited(self, key: str) -> _HistoryRequest | None:
        """The buffer's oldest request not given up (written in order: only it can be
        the next to time out)."""
        return next((r for r in self._requests.get(key, ()) if not r.late), None)

    @property
    def due_at(self) -> float | None:
        """When the oldest request written times out, None when none is waited for."""
        dues = [req.due for key in self._requests
                if (req := self._oldest_waited(key)) is not None and req.due is not None]
        return min(dues) if dues else None

    def expire(self, now: float) -> None:
        """Requests unanswered HISTORY_TIMEOUT after they were written end as a FAIL
        would, but stay in their place, given up (``late``): an answer that comes after
        all is merged as the late answer to what was asked (its buffer's lines, a late
        gap fill's own line, a chat log's note), not taken for the next request's."""
        for key in list(self._requests):
            req = self._oldest_waited(key)
            if req is None or req.due is None or req.due > now:
                continue
            buf = self._session.buffer(key)
            if buf is None:
                del self._requests[key]  # (no buffer to end it in: not due again)
            else:
                req.late = True
                self._failed(buf, req, "", now, NO_ANSWER)

    def _take(self, buf: Buffer, label: str | None) -> _HistoryRequest | None:
        """The request of ``buf``'s that an answer carrying ``label`` answers, taken out:
        the one with that label, else (an answer without one) the oldest, as answers
        come in order. None when it answers none of them."""
        key = self._session.fold(buf.name)
        queue = self._requests.get(key)
        if not queue:
            return None
        if label is None:
            req: _HistoryRequest | None = queue.popleft()
        elif (req := next((r for r in queue if r.label == label), None)) is not None:
            queue.remove(req)
        if not queue:
            self._requests.pop(key, None)
        return req

    def _labelled(self, label: str) -> tuple[Buffer, _HistoryRequest] | None:
        """The buffer and request that ``label`` was sent with, if still waited for."""
        for key, queue in self._requests.items():
            for req in queue:
                if req.label == label and (buf := self._session.buffer(key)) is not None:
                    return buf, req
        return None

    # ------------------------------------------------------------------ answers

    def on_target(self, name: str, now: float) -> None:
        """``CHATHISTORY TARGETS <name> <time>``, in answer to :meth:`ask_targets` (the
        session has checked that ``name`` is usable as a buffer name)."""
        s, targets = self._session, self._targets
        if targets is None:
            return
        mine = s.account is not None and s.fold(name) == s.fold(s.account)
        if (
            targets.left <= 0
            or s.is_channel(name)
            or s.is_me(name)
            or mine  # notes to ourselves
            or name.startswith(":")  # not sendable as a middle parameter
            or s.buffer(name) is not None  # open: its own gap fill covers it
        ):
            return
        targets.left -= 1
        buf = s.open_query(name, now, switch=False, fetch=False)
        if buf is not None:
            buf.last_time = targets.since  # fetch from there: it all counts as missed
            self.for_query(buf, now)

    def on_batch(
        self,
        kind: str,
        params: list[str],
        messages: list[tuple[Message, float]],
        now: float,
        label: str | None = None,
    ) -> None:
        """A batch ended: a chathistory answer (to the request sent with ``label``, when
        it carries one) is merged into its buffer."""
        if kind in TARGETS_BATCHES:
            self._targets = None
            return
        if kind not in HISTORY_BATCHES or not params:
            return
        s = self._session
        name = params[0]
        deletions = [(m, at) for m, at in messages if m.command == "REDACT"]
        others = [(m, at) for m, at in messages if m.command != "REDACT"]
        # TAGMSGs (draft/event-playback): reactions, never lines; applied once the
        # answer's lines are in, so a reaction may come before its message, or after.
        reactions = [(m, at) for m, at in others if m.command == "TAGMSG"]
        texts = [(m, at) for m, at in others if m.command != "TAGMSG"]
        if s.is_channel(name):
            buf = s.buffer(name)
        elif self._orphan_answer(name):  # the query was closed or renamed meanwhile
            return
        elif (deletions or reactions) and not texts:  # nothing to open a query for
            buf = s.buffer(name)
        else:  # a server may send a conversation unasked: it opens the query
            buf = s.open_query(name, now, switch=False, fetch=False)
        if buf is None:
            return
        refs = [m for m, _ in others or messages]
        newest = next((m.tags["msgid"] for m in reversed(refs) if m.tags.get("msgid")), None)
        known = newest is not None and newest in buf.seen
        req = self._take(buf, label)
        if req is not None and req.gap:
            mine = [m for m, _ in texts if m.command in OWN_GAP_EVENTS and s.was_me(m)]
            for m in mine:  # (seen: a later fill does not bring them back)
                if m.tags.get("msgid"):
                    buf.seen.add(m.tags["msgid"])
            dropped = {id(m) for m in mine}
            texts = [(m, at) for m, at in texts if id(m) not in dropped]
        # Deletions made while we were away (draft/message-redaction) are no lines: a
        # line with that msgid gets its placeholder, and the message itself, should this
        # answer (whichever comes first) or a later one still hold it, is not shown.
        deleted: set[str] = set()
        for m, at in deletions:
            msgid = s.history_redaction(m, at, buf)
            if msgid is not None:
                deleted.add(msgid)
                buf.seen.add(msgid)
        lines = []
        for m, at in texts:
            line = s.history_line(m, at, buf)
            if line is not None and line.msgid not in deleted:
                lines.append(line)
        # Paging goes by what the server sent, shown or not (a CTCP, an ignored sender, a
        # reaction): its count against the limit, its newest msgid for the next AFTER
        # page, its oldest for the next BEFORE one (a deletion's only when there is
        # nothing else).
        oldest = next(filter(None, map(_stamp, refs)), None)
        answer = _Answer(len(messages), newest, oldest, known)
        self._done(buf, req, lines, now, answer)
        for m, at in reactions:  # taken back in this answer already: not applied
            if m.tags.get("msgid") not in deleted:
                s.history_reaction(m, at, buf)

    def on_fail(self, params: list[str], now: float, label: str | None = None) -> bool:
        """``FAIL CHATHISTORY <code> ...`` (or WARN, NOTE): the request it answers (the
        one sent with ``label``, when it carries one) ends. True when it is not to be
        shown."""
        p, s = params, self._session
        if p[2:3] == ["TARGETS"] and self._targets is not None:
            self._targets = None  # asked on our own after a reconnect: not an error
            return True
        found = self._labelled(label) if label is not None else None
        if found is not None:  # (whatever its parameters name)
            self._take(found[0], label)
            return self._refused(*found, p, now)
        for arg in p[2:-1]:
            if self._orphan_answer(arg):  # for a query closed or renamed meanwhile
                return True
            buf = s.buffer(arg)
            if buf is not None and s.fold(arg) in self._requests:
                return self._refused(buf, self._take(buf, label), p, now)
        return False

    def _refused(
        self, buf: Buffer, req: _HistoryRequest | None, params: list[str], now: float
    ) -> bool:
        """``FAIL CHATHISTORY`` answered ``req``: True when it is not to be shown."""
        if req is None or req.late:
            return req is not None  # given up, and said so, already (or not ours)
        code = params[1]
        said = self._failed(buf, req, code, now, f"{params[-1]} ({code})")
        # Private history is simply not served: nothing to report. A gap fill's last
        # line says why it stopped: not said twice.
        return code == "INVALID_TARGET" or said

    def answered(self, label: str, now: float) -> None:
        """The whole answer to ``label`` came (an ACK, a labelled reply, the end of its
        batch): a request sent with it that no chathistory batch or FAIL answered got
        nothing, an empty answer."""
        found = self._labelled(label)
        if found is not None:
            buf, req = found
            self._take(buf, label)
            self._done(buf, req, [], now, _Answer(0, None, None))

    def _done(
        self,
        buf: Buffer,
        req: _HistoryRequest | None,
        lines: list[Line],
        now: float,
        answer: _Answer,
    ) -> None:
        s = self._session
        lines = self._listener.confirm(buf, lines)  # our own, shown already (no msgid)
        trimmed = buf.trimmed
        added, older = buf.merge(
            lines,
            above=req is not None and req.kind == "before",
            restore=req is not None and req.paging,
        )
        buf.history_loading = self._waiting(s.fold(buf.name))
        kind = req.kind if req is not None else "latest"
        if req is not None and req.late and kind in ("latest", "before"):
            buf.history_refused = ""  # (the timeout took it for the end)
            buf.history_complete = answer.count < req.limit
        # Lines that fell off the top (a full scrollback) leave a top that is not the end
        # of this answer: neither the beginning of history nor a floor to page on from.
        if req is not None and kind in ("latest", "before") and buf.trimmed == trimmed:
            if answer.count < req.limit:
                buf.history_complete = True
            floor = self._floor.get(s.fold(buf.name))
            if answer.oldest is not None and (
                floor is None or floor[2] != trimmed or answer.oldest[0] < floor[0]
            ):
                self._floor[s.fold(buf.name)] = (*answer.oldest, trimmed)
        complete = True  # what was asked for came whole (a gap fill may stop short)
        note = ""  # the gap fill's last line, once it is over
        if req is not None and req.gap:
            key = s.fold(buf.name)
            # Others' messages: the joins, parts... a server with event playback sends are
            # no news, and neither are our own (sent again after the reconnect, say).
            fetched = self._gap.get(key, 0) + sum(
                ln.kind in MESSAGE_KINDS and not ln.own for ln in added
            )
            self._gap[key] = fetched
            read = buf.marked_ms  # draft/read-marker: read up to here elsewhere
            for line in added:  # missed while away: these count as unread
                if (
                    buf is not s.current
                    and line.kind in MESSAGE_KINDS
                    and not line.own
                    and (read is None or round(line.time * 1000) > read)
                ):
                    buf.unread += 1
                    buf.highlights += line.highlight
                    buf.activity = True
            # Caught up when the page reaches, at its newest end, what came live since the
            # rejoin. A line already seen elsewhere in it proves nothing: the fill starts
            # after the newest *message*, so the joins and quits seen live after it come
            # back first. A page of nothing new (all such events) is no proof either.
            caught_up = (
                req.kind == "latest"  # the newest there are
                or answer.count < req.limit
                or (answer.newest_known and bool(added))
            )
            if not caught_up and req.pages < MAX_GAP_PAGES and answer.newest_msgid:
                nxt = _HistoryRequest("after", req.limit, gap=True, pages=req.pages + 1,
                                      resumed=req.late or req.resumed)  # fmt: skip
                self._request(buf, nxt, "AFTER", f"msgid={answer.newest_msgid}", now)
            else:
                self._gap.pop(key, None)
                complete = caught_up
                note = _gap_note(fetched, caught_up, buf.is_channel, req.late or req.resumed)
        late = req is not None and (req.late or req.resumed)
        if added:
            s.emit(HistoryAdded(buf, len(added), older, tuple(added), _cause(req), late))
        if note:  # after what it counts, for those who get events in order (chat logs)
            s.info(note, now, buf, count=False)  # (the missed messages count, above)
        buf.version += 1
        s.emit(BufferChanged(buf))
        if not buf.history_loading:
            # A gap fill cut short may not have reached a message of ours: the outbox
            # must then not guess that it was lost (it would send it twice).
            self._listener.history_done(buf, complete, now)
            self._make_room(now)

    def _failed(
        self, buf: Buffer, req: _HistoryRequest | None, code: str, now: float, why: str
    ) -> bool:
        """A FAIL answered ``buf``'s oldest request ``req``, or none came in time
        (``why``, in words): it ends, and is not asked again (PageUp) on this
        connection, but after a MESSAGE_ERROR (the server could not read it now), which
        PageUp asks again after RETRY_REFUSED_SECONDS. True when a gap fill's last line
        said why."""
        key = self._session.fold(buf.name)
        said = False
        if req is not None and req.gap:
            fetched = self._gap.pop(key, 0)
            # (Every rejoined channel ends its reconnect with a line; a query with
            # history that is not kept says nothing.)
            said = code != "INVALID_TARGET"
            if said:
                self._session.info(_unfetched(fetched, why), now, buf, count=False)
        if code == "INVALID_TARGET" and buf.kind is BufferKind.QUERY:
            buf.no_history = True  # no accounts on both sides: the server keeps none
        elif req is not None and req.kind in ("latest", "before"):
            buf.history_refused = why
            if code == "MESSAGE_ERROR":  # (for now: the spec's "could not retrieve")
                buf.history_retry_at = now + RETRY_REFUSED_SECONDS
            else:
                buf.history_complete = True
        buf.history_loading = self._waiting(key)
        buf.version += 1
        self._session.emit(BufferChanged(buf))
        if not buf.history_loading:
            self._listener.history_done(buf, False, now)
            self._make_room(now)
        return said

    # ------------------------------------------------------------------ queries gone

    def _orphan(self, key: str) -> None:
        """The query ``key`` is gone: the answers still due for it are to be dropped."""
        due = len(self._requests.pop(key, ()))
        if due and (key in self._orphans or len(self._orphans) < MAX_ORPHANS):
            self._orphans[key] = self._orphans.get(key, 0) + due

    def _orphan_answer(self, name: str) -> bool:
        """A history answer for ``name`` that is to be dropped (one of them is counted)."""
        key = self._session.fold(name)
        due = self._orphans.get(key, 0)
        if not due:
            return False
        if due > 1:
            self._orphans[key] = due - 1
        else:
            del self._orphans[key]
        return True


def _cause(req: _HistoryRequest | None) -> HistoryCause:
    if req is not None and req.gap:
        return "missed"
    return "older" if req is not None and req.paging else "recent"


def _gap_note(fetched: int, caught_up: bool, channel: bool, late: bool) -> str:
    """The last line of a gap fill that got its answers; ``late``: after its request
    was given up, when a line said the missed messages were not fetched."""
    notes = [f"late: the server answered after {HISTORY_TIMEOUT:g} s"] if late else []
    if fetched:
        if not caught_up:  # (the fill goes forward: it left out the newest missed)
            notes.append("later ones not fetched")
        word = "message" if fetched == 1 else "messages"
        what = f"fetched {fetched} missed {word}"
    elif channel or late:  # (a query says nothing when nothing was missed, in time)
        what = "no missed messages"
    else:
        return ""
    return f"Reconnected, {what}" + (f" ({'; '.join(notes)})" if notes else "")


def _unfetched(fetched: int, why: str) -> str:
    """The last line of a gap fill the server did not answer (``why``), after
    ``fetched`` missed messages."""
    if not fetched:
        return f"Reconnected, missed messages not fetched: {why}"
    word = "message" if fetched == 1 else "messages"
    return f"Reconnected, fetched {fetched} missed {word} (later ones not fetched: {why})"


def _stamp(msg: Message) -> tuple[float, str] | None:
    """(server time, msgid) of a history message; None without both."""
    msgid, stamp = msg.tags.get("msgid"), msg.tags.get("time")
    if not msgid or not stamp:
        return None
    try:
        return parse_time(stamp), msgid
    except (ValueError, OverflowError, OSError):
        return None
