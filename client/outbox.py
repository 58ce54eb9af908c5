"""The outbox: a message the user typed is never silently lost.

With echo-message, a message (PRIVMSG, /me, NOTICE; each piece of a long one) shows at
once as a PENDING line of its buffer and is written with a ``label`` tag when
labeled-response is on. Its echo (matched by the label, else by target and text,
oldest first) replaces that line in place with the server's (time, msgid); an error
answering it (a numeric, FAIL) makes the line FAILED with the reason. Without
echo-message a message shows as sent when it is written, as it always did, and a PONG
vouches for it (the session PINGs shortly after): lost with the connection before
that, it is unconfirmed as one awaiting its echo is.

Typed while the connection is down (the driver reconnecting), a message waits: for a
channel until the rejoin's JOIN (a +n channel would refuse it before), for a query
until registration. Written but not confirmed when the connection died, it is looked
for in the history the reconnect fetches (the gap fill): found (our own, the same
text, not before it was sent), that history line takes its place; not found, it is
written again. Where there is no history to look in, it is FAILED with "may not have
been delivered" and ``/resend`` writes it again. A buffer's messages go out in the
order they were typed. Any history (a gap fill, a join's, PageUp's) holding a message
of ours still shown without a msgid (awaiting its echo, or shown as sent without
echo-message) gives that line the msgid instead of showing it twice: :meth:`confirm`.

A message of several lines (IRCv3 draft/multiline) is one entry and one pending line:
written as a batch, the label on its BATCH line; its echo is a batch too, assembled by
the session into one line, and a ``FAIL BATCH MULTILINE_*`` fails it. Should the server
no longer take such messages when it is (re)written, its lines go out as messages of
their own. Typed while not connected (the server's limits unknown), it is planned into
messages only when written (``Piece.later``).

With flood control (:attr:`Outbox.paced`, set by the connection), a message ready to be
written is QUEUED instead: still pending, in the order of the connection's send queue,
which writes it (:meth:`Outbox.write_queued`) when the budget allows. Until then it is
not sent: the connection lost, it waits for the next one as a message typed while
disconnected does, and ``/quit`` drops it as not sent; so does ``/unqueue`` (a buffer's
messages not written yet, a paste the user thinks better of; ``/resend`` sends them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Protocol

from .formatting import display_lines, plain
from .model import (
    MESSAGE_KINDS,
    Buffer,
    BufferKind,
    Delivery,
    DeliveryChanged,
    Event,
    Kind,
    Line,
    LineAdded,
)
from .multiline import LINE_BREAK, Limits, WireLine
from .passwords import mask_message

MAX_WAITING = 100  # messages on their way (not failed) in all; more are refused
MAX_FAILED = 100  # failed messages kept for /resend (the oldest are forgotten first)
MAX_REASON = 300  # characters of a refusal's reason kept
HISTORY_SLACK = 5.0  # seconds a history copy may seem older than its send (clocks)
MATCH_WINDOW = 60.0  # seconds after a message shown as sent that its history copy may be
LABEL_CAP = "labeled-response"

NOT_YET = "not sent yet"
MAYBE_LOST = "may not have been delivered; /resend to send it again"
SECRET_HELD = "not sent: it holds a password, typed before the connection was lost; /resend"

# Numerics refusing a PRIVMSG/NOTICE, naming its target second: without labels a
# refusal goes to the oldest message awaiting its echo to that target.
SEND_ERRORS = frozenset({
    "401",  # ERR_NOSUCHNICK
    "403",  # ERR_NOSUCHCHANNEL
    "404",  # ERR_CANNOTSENDTOCHAN
    "407",  # ERR_TOOMANYTARGETS
    "477",  # ERR_NEEDREGGEDNICK (a +R channel on some servers)
    "486",  # ERR_NONONREG (caller ID: only registered users may message)
    "492",  # ERR_NOCTCP / ERR_CANNOTSENDTOUSER
    "531",  # ERR_CANTSENDTOUSER
    "716",  # ERR_TARGUMODEG (caller ID: the target has +g)
})  # fmt: skip
# Numerics refusing a JOIN, naming the channel second: the rejoin a channel's waiting
# messages wait for will not come.
JOIN_ERRORS = frozenset({"403", "405", "471", "473", "474", "475", "476", "477", "489", "520"})


@dataclass(frozen=True, slots=True)
class Piece:
    """One message to write: ``text`` as written (a multi-line one's combined text),
    ``shown`` as shown (a password masked), ``lines`` the draft/multiline batch's lines
    (None: one PRIVMSG or NOTICE)."""

    text: str
    shown: str
    lines: tuple[WireLine, ...] | None = None
    # Text with line breaks typed before the server said whether it takes multi-line
    # messages (while disconnected): one message until written, planned then; as many
    # as this, a message per line, when the server does not take them.
    later: int = 0


class _Step(Enum):
    WAITING = "waiting"  # not written: for the connection, the rejoin, or history
    QUEUED = "queued"  # ready, waiting for its turn in the connection's send queue
    SENT = "sent"  # written on this connection; its echo has not come yet
    UNCONFIRMED = "unconfirmed"  # written on a connection that died before the echo
    FAILED = "failed"  # refused, or may be lost: only /resend writes it again


@dataclass(eq=False, slots=True)
class Outgoing:
    """One message (one piece of what was typed) on its way to ``target``."""

    buffer: Buffer
    command: str  # PRIVMSG or NOTICE
    target: str
    text: str  # as written, without the CTCP ACTION wrapping
    action: bool
    line: Line  # its line in ``buffer``, replaced as it gets further
    lines: tuple[WireLine, ...] | None = None  # a draft/multiline batch's lines
    later: int = 0  # its lines are planned into messages when written (Piece.later)
    step: _Step = _Step.WAITING
    nick: str = ""  # ours when it was written
    label: str | None = None
    sent_at: float = 0.0  # when it was written, by the server's clock as far as known
    bulk: bool = False  # one of several (a paste, /resend): flood control lets others first

    @property
    def text_lines(self) -> int:
        """Lines of text it carries (a multi-line message's as typed, blank ones too)."""
        return self.text.count("\n") + 1

    @property
    def kind(self) -> Kind:
        if self.action:
            return Kind.ACTION
        return Kind.NOTICE if self.command == "NOTICE" else Kind.MESSAGE

    @property
    def secret(self) -> bool:
        """It carries a password (to NickServ): never written on a later connection
        than the one it was meant for, where someone else may hold the nick NickServ."""
        return mask_message(self.target, self.text) != self.text


class OutboxSession(Protocol):
    """What the outbox needs from :class:`client.session.Session`."""

    @property
    def registered(self) -> bool: ...
    @property
    def echo(self) -> bool: ...
    @property
    def caps(self) -> set[str]: ...
    @property
    def nick(self) -> str: ...
    @property
    def multiline_limits(self) -> Limits | None: ...
    def pieces(self, command: str, target: str, text: str, action: bool) -> list[Piece]: ...
    def fold(self, name: str) -> str: ...
    def buffer(self, name: str) -> Buffer | None: ...
    def local_time(self, now: float) -> float: ...
    def write_message(
        self,
        command: str,
        target: str,
        text: str,
        *,
        lines: tuple[WireLine, ...] | None = None,
        action: bool = False,
        tags: dict[str, str] | None = None,
    ) -> None: ...
    def emit(self, event: Event) -> None: ...
    def info(self, text: str, now: float, buffer: Buffer | None = None) -> None: ...
    def want_ack(self, now: float) -> None: ...


class Outbox:
    """A session's messages from typed to confirmed (or failed), in the order typed."""

    def __init__(self, session: OutboxSession) -> None:
        self._s = session
        self._entries: list[Outgoing] = []
        self._labels: dict[str, Outgoing] = {}  # labels written on this connection
        # Labels whose answer has not ended, and their message's buffer: a notice in
        # that answer (a service's word about the message) is said there.
        self._answering: dict[str, Buffer] = {}
        self._next_label = 0
        self._refused: set[Buffer] = set()  # channels whose rejoin failed (this connection)
        # The connection paces what it writes: messages are queued for it (QUEUED)
        # instead of being written at once.
        self.paced = False
        self._queued: list[Outgoing] = []  # queued since the connection last took them
        # Without echo-message: messages written and shown as sent that no PONG has
        # vouched for yet (the server answers a PING after what was written before it),
        # each with its number among such writes (``written``).
        self._unacked: list[tuple[int, Outgoing]] = []
        self.written = 0
        # Queued messages dropped before their turn (failed, their buffer closed): the
        # connection takes them out of its send queue when this changes.
        self.dropped = 0

    # ------------------------------------------------------------------ state

    @property
    def unsent(self) -> int:
        """Messages not written yet, or to be written again (waiting for the connection,
        a rejoin or the history after a reconnect)."""
        return sum(e.step in (_Step.WAITING, _Step.UNCONFIRMED) for e in self._entries)

    @property
    def queued(self) -> int:
        """Messages ready but held back by flood control (see :attr:`paced`)."""
        return sum(e.step is _Step.QUEUED for e in self._entries)

    @property
    def pending(self) -> int:
        """Messages on their way: not confirmed by the server yet, nor failed."""
        return sum(e.step is not _Step.FAILED for e in self._entries)

    def _room(self) -> int:
        """Messages the outbox can still take (one planned when written counts as the
        most it may make)."""
        waiting = (e for e in self._entries if e.step is not _Step.FAILED)
        return MAX_WAITING - sum(max(1, e.later) for e in waiting)

    def refusal(self, text: str, pieces: list[Piece]) -> str:
        """Why :meth:`add` did not take ``text`` (``pieces``): too much at once, or too
        much waiting already."""
        count = _count(pieces)
        if count <= MAX_WAITING:
            return "Not sent: too many messages are waiting to be sent"
        what, how = ("this paste", "paste") if LINE_BREAK.search(text) else ("this text", "send")
        return (f"Not sent: {what} makes {count} messages, more than the {MAX_WAITING} "
                f"that can wait to be sent; {how} it in parts")  # fmt: skip

    def accepts(self, buf: Buffer) -> bool:
        """A message typed into ``buf`` can be taken (now or after the reconnect): a
        query, a channel we are in, or one the reconnect will rejoin."""
        if buf.kind is BufferKind.CHANNEL:
            return buf.joined or (buf.rejoin and buf not in self._refused)
        return buf.kind is BufferKind.QUERY

    def rejoin_refused(self, buf: Buffer) -> bool:
        """The server refused ``buf``'s rejoin on this connection (a JOIN since is the
        user's own)."""
        return buf in self._refused

    def ready(self, buf: Buffer) -> bool:
        """A message to ``buf`` can be written now."""
        return self._s.registered and (buf.joined or buf.kind is not BufferKind.CHANNEL)

    def line(self, buf: Buffer, kind: Kind, text: str, now: float) -> Line:
        """Our message as we show it before the server says anything about it."""
        s = self._s
        shown, spans = display_lines(text)  # (line feeds only in a multi-line message)
        me = buf.members.get(s.fold(s.nick)) if buf.is_channel else None
        prefix = me.prefix if me else ""
        return Line(s.local_time(now), kind, s.nick, shown, spans, None, prefix, own=True)

    # ------------------------------------------------------------------ typed

    def add(
        self,
        buf: Buffer,
        command: str,
        target: str,
        pieces: list[Piece],
        now: float,
        *,
        action: bool = False,
    ) -> bool:
        """Take a message for ``target`` shown in ``buf``: ``pieces`` are its messages,
        one line each. False (nothing taken) when the outbox is full."""
        if self._room() < _count(pieces):
            return False
        kind = Kind.ACTION if action else Kind.NOTICE if command == "NOTICE" else Kind.MESSAGE
        for piece in pieces:
            line = self.line(buf, kind, piece.shown, now)
            entry = Outgoing(buf, command, target, piece.text, action, line, lines=piece.lines,
                             later=piece.later)  # fmt: skip
            entry.bulk = len(pieces) > 1
            self._enqueue(entry, now)
        return True

    def resend(self, buf: Buffer, now: float) -> int | None:
        """``/resend``: the failed messages of ``buf`` go out again, in order, from the
        bottom of the buffer. How many; None when the outbox has no room for them."""
        failed = [e for e in self._entries if e.buffer is buf and e.step is _Step.FAILED]
        if self._room() < sum(max(1, e.later) for e in failed):
            return None
        for entry in failed:
            self._entries.remove(entry)
            buf.remove(entry.line)
            entry.step, entry.label = _Step.WAITING, None
            entry.bulk = len(failed) > 1
            entry.line = self.line(buf, entry.kind, entry.line.text, now)
            self._enqueue(entry, now)
        return len(failed)

    def _enqueue(self, entry: Outgoing, now: float) -> None:
        buf = entry.buffer
        # Behind a message of this buffer that still waits, it waits too: in order.
        behind = any(
            e.buffer is buf and e.step in (_Step.WAITING, _Step.UNCONFIRMED)
            for e in self._entries
        )
        self._entries.append(entry)
        write = self.ready(buf) and not behind
        entry.line = replace(entry.line, delivery=Delivery.PENDING, note="" if write else NOT_YET)
        if buf.append(entry.line):
            self._s.emit(LineAdded(buf, entry.line))
        if write:
            self._write(entry, now)

    def _write(self, entry: Outgoing, now: float) -> None:
        s = self._s
        if entry.later:  # the server's limits are known now
            self._split(entry, s.pieces(entry.command, entry.target, entry.text, entry.action), now)
            return
        if entry.lines is not None and s.multiline_limits is None:
            self._unbatch(entry, now)
            return
        if self.paced:
            entry.step = _Step.QUEUED
            self._queued.append(entry)
            return
        self._write_now(entry, now)

    def take_queued(self) -> list[Outgoing]:
        """Messages queued (paced) since the last call, in order: the connection puts
        them in its send queue, to :meth:`write_queued` each when its turn comes."""
        queued, self._queued = self._queued, []
        return queued

    def is_queued(self, entry: Outgoing) -> bool:
        """``entry`` still waits for its turn in the send queue."""
        return entry.step is _Step.QUEUED and entry in self._entries

    def write_queued(self, entry: Outgoing, now: float) -> bool:
        """Write ``entry`` now (its turn in the send queue came). False when it is no
        longer queued (its buffer was closed, /quit, the connection lost)."""
        if not self.is_queued(entry):
            return False
        entry.step = _Step.WAITING
        if entry.lines is not None and self._s.multiline_limits is None:
            # (draft/multiline withdrawn while it waited: its lines go in its place.)
            self.paced = False
            try:
                self._unbatch(entry, now)
            finally:
                self.paced = True
            return True
        self._write_now(entry, now)
        return True

    @staticmethod
    def cost(entry: Outgoing) -> tuple[int, int]:
        """About what ``entry`` costs on the wire: (lines, bytes). The connection
        charges what was written; this only decides when it may go."""
        overhead = len(entry.target) + 40  # command, tags, CTCP wrapping, CRLF
        if entry.lines is None:
            return 1, len(entry.text.encode()) + overhead
        size = sum(len(text.encode()) + overhead for text, _ in entry.lines)
        return len(entry.lines) + 2, size + 2 * overhead

    def _write_now(self, entry: Outgoing, now: float) -> None:
        s = self._s
        entry.nick = s.nick
        entry.sent_at = s.local_time(now)
        if not s.echo:  # no echo will confirm it: shown as sent, as it always was...
            self._send(entry, None)
            self._entries.remove(entry)
            sent = self.line(entry.buffer, entry.kind, entry.line.text, now)
            self._update(entry, sent)
            # ...until a PONG does; lost with the connection before that, it fails.
            self.written += 1
            self._unacked.append((self.written, entry))
            del self._unacked[: max(0, len(self._unacked) - MAX_WAITING)]
            s.want_ack(now)
            return
        tags = None
        if LABEL_CAP in s.caps:
            self._next_label += 1
            entry.label = f"o{self._next_label}"
            self._labels[entry.label] = entry
            self._answering[entry.label] = entry.buffer
            if len(self._answering) > MAX_WAITING:  # (answers that never ended)
                del self._answering[next(iter(self._answering))]
            tags = {"label": entry.label}
        entry.step = _Step.SENT
        self._send(entry, tags)
        if entry.line.note:
            self._update(entry, replace(entry.line, note=""))

    def _send(self, entry: Outgoing, tags: dict[str, str] | None) -> None:
        self._s.write_message(
            entry.command, entry.target, entry.text, lines=entry.lines, action=entry.action,
            tags=tags,
        )  # fmt: skip

    def _unbatch(self, entry: Outgoing, now: float) -> None:
        """A multi-line message to be written on a connection without draft/multiline
        (a reconnect to a server that no longer offers it): its lines go out as messages
        of their own."""
        self._split(entry, [Piece(text, text) for text, _ in entry.lines or () if text], now)

    def _split(self, entry: Outgoing, pieces: list[Piece], now: float) -> None:
        """``entry`` goes out as ``pieces``, in its place among the waiting ones, each
        with a pending line of its own."""
        buf = entry.buffer
        at = self._entries.index(entry)
        self._entries.remove(entry)
        buf.remove(entry.line)
        for piece in pieces:
            line = replace(self.line(buf, entry.kind, piece.shown, now), delivery=Delivery.PENDING)
            part = Outgoing(buf, entry.command, entry.target, piece.text, entry.action, line,
                            lines=piece.lines)  # fmt: skip
            part.bulk = entry.bulk or len(pieces) > 1
            self._entries.insert(at, part)
            at += 1
            if buf.append(line):
                self._s.emit(LineAdded(buf, line))
            self._write(part, now)

    # ------------------------------------------------------------------ answers

    def echo(self, target: str, kind: Kind, text: str, line: Line, label: str | None) -> bool:
        """Our message came back (echo-message) as ``line``: it takes the place of the
        message's pending line. False when it answers none of ours, or that line has
        left the scrollback (the caller then adds it as any line)."""
        if label is not None:
            entry = self._labels.pop(label, None)
        else:  # no labels: the oldest of ours to that target with that text
            key = self._s.fold(target)
            # (An echo whose msgid is shown already is a copy of one that history
            # confirmed: it answers none of those still pending.)
            entry = next(
                (e for e in self._entries
                 if e.step is _Step.SENT and e.label is None and e.kind is kind
                 and e.text == text and self._s.fold(e.target) == key
                 and (line.msgid is None or line.msgid not in e.buffer.seen)),
                None,
            )  # fmt: skip
        if entry is None or entry.step is not _Step.SENT:
            return False
        self._entries.remove(entry)
        return self._settle(entry, line)

    def answered(self, label: str) -> None:
        """The server's whole answer to ``label`` came (an ACK, the end of its batch):
        a message it neither echoed nor refused was taken without an echo."""
        self._answering.pop(label, None)
        entry = self._labels.pop(label, None)
        if entry is not None and entry.step is _Step.SENT:
            self._entries.remove(entry)
            self._update(entry, replace(entry.line, delivery=Delivery.DELIVERED))

    def answering(self, label: str | None) -> Buffer | None:
        """The buffer of our message whose answer carries ``label``, until it ends."""
        return self._answering.get(label) if label is not None else None

    def refused(self, code: str, params: list[str], label: str | None) -> bool:
        """A numeric (or ``FAIL``) came: a message of ours it refuses is FAILED.
        True when one was (its line tells the reason: nothing else needs saying)."""
        p = params
        if code != "FAIL" and not ("400" <= code < "600" or code in SEND_ERRORS):
            return False
        if code == "FAIL":
            reason = f"{p[-1]} ({p[1]})" if len(p) > 2 else " ".join(p)
        else:
            reason = p[-1] if len(p) > 1 else code
            if len(p) > 2 and reason[:1].islower():  # "bob" "is in +g mode": one sentence
                reason = f"{p[1]} {reason}"
        reason = plain(reason)[:MAX_REASON]  # the server's words: no codes or controls
        if label is not None:
            entry = self._labels.pop(label, None)
            if entry is None or entry.step is not _Step.SENT:
                return False
            self._fail(entry, f"not sent: {reason}")
            return True
        if code == "FAIL" and p[0] == "BATCH":
            # Without labels: our oldest multi-line message awaiting its echo.
            entry = next((e for e in self._entries if e.step is _Step.SENT
                          and e.label is None and e.lines is not None), None)  # fmt: skip
            if entry is not None:
                self._fail(entry, f"not sent: {reason}")
            return entry is not None
        if code in JOIN_ERRORS and len(p) > 2:
            self._rejoin_refused(p[1], reason)
        if code not in SEND_ERRORS or len(p) < 3:
            return False
        key = self._s.fold(p[1])
        for entry in self._entries:  # (a labelled one's refusal carries its label)
            if entry.step is _Step.SENT and entry.label is None and key in (
                self._s.fold(entry.target),
                self._s.fold(entry.buffer.name),
            ):
                self._fail(entry, f"not sent: {reason}")
                return True
        return False

    def _rejoin_refused(self, name: str, reason: str) -> None:
        """A JOIN for ``name`` was refused: what waits for that channel's rejoin fails,
        and what is typed there next is refused at once (:meth:`accepts`), also when
        nothing waited yet, until a JOIN comes (this connection)."""
        buf = self._s.buffer(name)
        if buf is None or buf.kind is not BufferKind.CHANNEL or buf.joined:
            return
        self._refused.add(buf)
        for entry in self._of(buf, _Step.WAITING, _Step.UNCONFIRMED):
            self._fail(entry, f"not sent: {reason}")

    # ------------------------------------------------------------------ history

    def confirm(self, buf: Buffer, lines: list[Line]) -> list[Line]:
        """History for ``buf`` (a gap fill after a reconnect, a join's, PageUp's): a
        message of ours in it that is shown already without a msgid takes that line's
        place instead of being added. Such a line is one written and awaiting its echo
        (on this connection, or before the connection died: then it is not written
        again), or one shown as sent (without echo-message, or taken without an echo).
        A copy is ours (our nick, or ours in a query), the same kind and text, not seen
        before, not older than the send (minus HISTORY_SLACK) and, for a line shown as
        sent, at most MATCH_WINDOW after it; matched one to one, oldest first, so a
        message said twice is two. The other lines, to merge."""
        if not any(ln.msgid is not None and ln.kind in MESSAGE_KINDS for ln in lines):
            return lines
        mine = self._unconfirmed(buf)
        if not mine:
            return lines
        rest: list[Line] = []
        for line in lines:
            found = next((m for m in mine if self._copy_of(buf, m, line)), None)
            if found is None:
                rest.append(line)
                continue
            mine.remove(found)
            if not line.own:  # (said under our nick of then)
                line = replace(line, own=True, highlight=False)
            shown, entry = found
            line = replace(line, prefix=shown.prefix)  # (our rank when we said it)
            if entry is None:  # shown (and logged) as sent already: it gets the msgid
                buf.settle(shown, line)
                continue
            self._entries.remove(entry)
            if entry.label is not None:  # its echo, should it still come, is a copy
                self._labels.pop(entry.label, None)
                entry.label = None
            if not self._settle(entry, line):
                rest.append(line)
        return rest

    def _unconfirmed(self, buf: Buffer) -> list[tuple[Line, Outgoing | None]]:
        """Our messages in ``buf`` that history may hold and that have no msgid yet,
        oldest first: (its line, its entry while it awaits its echo)."""
        found: list[tuple[Line, Outgoing | None]] = [
            (e.line, e) for e in self._entries
            if e.buffer is buf and e.step in (_Step.SENT, _Step.UNCONFIRMED)
        ]  # fmt: skip
        found += [
            (ln, None) for ln in buf.lines
            if ln.own and ln.msgid is None and ln.kind in MESSAGE_KINDS
            and ln.delivery is Delivery.DELIVERED
        ]  # fmt: skip
        found.sort(key=lambda m: m[0].time)
        return found

    def _copy_of(self, buf: Buffer, mine: tuple[Line, Outgoing | None], line: Line) -> bool:
        s = self._s
        shown, entry = mine
        nick = entry.nick if entry is not None else shown.nick
        if not (
            line.msgid is not None
            and line.msgid not in buf.seen
            and line.kind is shown.kind
            and line.text == shown.text
            and (line.own or s.fold(line.nick) == s.fold(nick))
        ):
            return False
        if entry is not None:
            return line.time >= entry.sent_at - HISTORY_SLACK
        return shown.time - HISTORY_SLACK <= line.time <= shown.time + MATCH_WINDOW

    def awaits_history(self, buf: Buffer) -> bool:
        """Messages of ours to ``buf`` written before the connection died wait for its
        history (the gap fill) to say whether they got there."""
        return any(e.buffer is buf and e.step is _Step.UNCONFIRMED for e in self._entries)

    def history_done(self, buf: Buffer, ok: bool, now: float) -> None:
        """``buf``'s history requests are answered (``ok``), or failed: what waited for
        them goes out, in order."""
        if self.ready(buf) and not buf.history_loading:
            self._release(buf, history=ok, now=now)

    # ------------------------------------------------------------------ the connection

    def connection_made(self) -> None:
        self._labels.clear()
        self._answering.clear()
        self._refused.clear()

    @property
    def unacknowledged(self) -> int:
        """Messages shown as sent without echo-message that no PONG has vouched for."""
        return len(self._unacked)

    def acknowledged(self, written: int) -> None:
        """A PONG answered a PING written after the first ``written`` messages without
        echo-message: the server has them."""
        self._unacked = [(n, e) for n, e in self._unacked if n > written]

    def connection_lost(self, *, quitting: bool) -> None:
        """Messages awaiting their echo may or may not have been delivered; those still
        queued were not written: they wait for the next connection. Without
        echo-message, those written since the last PONG may not have reached the server
        (a link that died silently takes what was written in the minute before it was
        noticed): they are unconfirmed, as messages awaiting their echo are."""
        self._labels.clear()
        self._answering.clear()
        self._queued.clear()
        unacked, self._unacked = self._unacked, []
        for _, entry in [] if quitting else unacked:
            entry.step = _Step.UNCONFIRMED
            self._entries.append(entry)
        for entry in list(self._entries):
            if entry.step is _Step.QUEUED:
                entry.step = _Step.WAITING
                self._update(entry, replace(entry.line, note=NOT_YET))
            elif entry.step is _Step.SENT:
                entry.label = None
                if quitting:
                    self._fail(entry, MAYBE_LOST)
                else:
                    entry.step = _Step.UNCONFIRMED

    def target_ready(self, buf: Buffer, now: float) -> None:
        """``buf`` can be written to again (a channel's JOIN, a query's registration):
        its waiting messages go out, unless some wait for its history (the gap fill)."""
        self._refused.discard(buf)
        if not self.ready(buf) or not any(e.buffer is buf for e in self._entries):
            return
        if buf.history_loading and self.awaits_history(buf):
            return  # history_done decides
        self._release(buf, history=False, now=now)

    def registered(self, now: float) -> None:
        """After registration: queries can be written to; a channel that will not be
        rejoined never will (its rejoin comes with its JOIN)."""
        for buf in list(dict.fromkeys(e.buffer for e in self._entries)):
            if buf.kind is BufferKind.QUERY:
                self.target_ready(buf, now)
            elif not buf.rejoin and not buf.joined:
                for entry in self._of(buf, _Step.WAITING, _Step.UNCONFIRMED):
                    maybe = entry.step is _Step.UNCONFIRMED
                    self._fail(entry, MAYBE_LOST if maybe else f"not sent: not in {buf.name}")

    def _release(self, buf: Buffer, *, history: bool, now: float) -> None:
        """Write ``buf``'s waiting messages; those written before the connection died are
        written again when ``history`` did not have them, else they fail."""
        for entry in self._of(buf, _Step.WAITING, _Step.UNCONFIRMED):
            if entry.step is _Step.UNCONFIRMED and (entry.secret or not history):
                self._fail(entry, MAYBE_LOST)  # (history never holds what NickServ got)
            elif entry.secret:
                self._fail(entry, SECRET_HELD)
            else:
                if entry.step is _Step.UNCONFIRMED or entry.line.note == NOT_YET:
                    self._to_bottom(entry, now)
                self._write(entry, now)

    def _to_bottom(self, entry: Outgoing, now: float) -> None:
        """Typed while the connection was down, or written again because the history
        after the reconnect did not have it, it goes out now: shown now, below what came
        meanwhile (the disconnect, the rejoin, the gap fill), in the order the chat log
        and the others get it, instead of above them with a later time."""
        buf = entry.buffer
        if buf.remove(entry.line):
            entry.line = replace(self.line(buf, entry.kind, entry.line.text, now),
                                 delivery=Delivery.PENDING)  # fmt: skip
            if buf.append(entry.line):
                self._s.emit(LineAdded(buf, entry.line))

    # ------------------------------------------------------------------ dropped

    def quit(self, now: float, why: str = "/quit") -> None:
        """/quit, or no connection to come (``why``): what was not written is dropped
        (one line per buffer says so)."""
        dropped: dict[Buffer, int] = {}
        for entry in self._of(None, _Step.WAITING, _Step.QUEUED, _Step.UNCONFIRMED):
            maybe = entry.step is _Step.UNCONFIRMED
            self._fail(entry, "may not have been delivered" if maybe else f"not sent ({why})")
            dropped[entry.buffer] = dropped.get(entry.buffer, 0) + 1
        for buf, count in dropped.items():
            self._s.info(f"{why}: {_messages(count)} not sent", now, buf)

    def unqueue(self, buf: Buffer) -> tuple[int, int]:
        """``/unqueue``: ``buf``'s messages not written yet (held back by flood
        control, or waiting for the connection) fail as not sent, for ``/resend``. Those
        written already stay: the server may have them. Nothing of the buffer is left
        waiting behind them, so nothing goes before an earlier message. (Messages,
        lines of text) dropped."""
        gone = self._of(buf, _Step.WAITING, _Step.QUEUED)
        for entry in gone:
            self._fail(entry, "not sent (/unqueue)")
        return len(gone), sum(e.text_lines for e in gone)

    def left(self, buf: Buffer, note: str) -> int:
        """We left channel ``buf`` (a PART, a KICK): what was not written yet to it (the
        rest of a paste) fails with ``note`` instead of going to a channel we are no
        longer in (refused, or on a -n channel delivered after all); /resend after a
        rejoin. How many."""
        gone = self._of(buf, _Step.WAITING, _Step.QUEUED)
        for entry in gone:
            self._fail(entry, note)
        return len(gone)

    def closed(self, buf: Buffer) -> int:
        """``buf`` was closed: its messages are forgotten. How many were not written."""
        gone = [e for e in self._entries if e.buffer is buf]
        self._entries = [e for e in self._entries if e.buffer is not buf]
        self.dropped += sum(e.step is _Step.QUEUED for e in gone)
        for entry in gone:
            if entry.label is not None:
                self._labels.pop(entry.label, None)
        self._refused.discard(buf)
        for label in [k for k, b in self._answering.items() if b is buf]:
            del self._answering[label]
        return sum(e.step in (_Step.WAITING, _Step.QUEUED, _Step.UNCONFIRMED) for e in gone)

    # ------------------------------------------------------------------ internals

    def _of(self, buf: Buffer | None, *steps: _Step) -> list[Outgoing]:
        return [
            e for e in self._entries if (buf is None or e.buffer is buf) and e.step in steps
        ]

    def _settle(self, entry: Outgoing, line: Line) -> bool:
        old = entry.line
        entry.line = line
        if not entry.buffer.settle(old, line):
            return False
        if old.delivery is not Delivery.DELIVERED:  # (else shown and logged as sent already)
            self._s.emit(DeliveryChanged(entry.buffer, old, line))
        return True

    def _update(self, entry: Outgoing, line: Line) -> None:
        old = entry.line
        entry.line = line
        if entry.buffer.replace(old, line):
            self._s.emit(DeliveryChanged(entry.buffer, old, line))

    def _fail(self, entry: Outgoing, note: str) -> None:
        if entry.label is not None:
            self._labels.pop(entry.label, None)
            entry.label = None
        if entry.step is _Step.QUEUED:
            self.dropped += 1
        entry.step = _Step.FAILED
        self._update(entry, replace(entry.line, delivery=Delivery.FAILED, note=note))
        failed = [e for e in self._entries if e.step is _Step.FAILED]
        for old in failed[: max(0, len(failed) - MAX_FAILED)]:
            self._entries.remove(old)  # its line stays; /resend forgets it


def _messages(count: int) -> str:
    return f"{count} message" + ("" if count == 1 else "s")


def _count(pieces: list[Piece]) -> int:
    """Messages ``pieces`` may make (one planned when written counts as the most)."""
    return sum(max(1, p.later) for p in pieces)
