"""Outgoing flood control: how fast lines may be written to the server.

Servers hold back or disconnect a client that sends too much at once: InspIRCd (the
connect class Debian ships: ``threshold=10``, ``commandrate=1000``, ``recvq=8192``)
allows a penalty of 10 commands, then one a second, and quits a client whose unread
lines pass 8 KB with "RecvQ exceeded"; Solanum/Libera (``client_flood_burst_max=5``,
``client_flood_message_num=2`` a second, ``client_flood_max_lines=20``) and Ergo
(fakelag: a burst of 5, then 2 a second) kill with "Excess Flood". A 60-line paste
written at once is past all of them, so lines go through a token bucket on lines
and on bytes, as irssi (``cmds_max_at_once``, ``cmd_queue_speed``) and WeeChat
(``anti_flood``) do.

Pure: every method takes ``now`` (a monotonic clock), nothing awaits.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum

# A burst of 5 lines is what Solanum processes at once and half InspIRCd's threshold
# (the other half is left for PONGs and our PINGs); one line a second after it is
# InspIRCd's commandrate and half Solanum's and Ergo's steady rate, so a paste never
# builds up a penalty on any of them, at the cost of a minute for 60 lines (irssi
# takes 2.2 s a line).
DEFAULT_BURST = 5
DEFAULT_RATE = 1.0
# Bytes: 800 a line of burst (4000 for 5: under half of InspIRCd's 8 KB recvq, so
# lines waiting in it can never fill it) and 1000 a second per line a second. A
# line of ordinary length is held by the line count; the bytes only hold back long
# lines with big tags, and a draft/multiline batch, which costs what it is.
BYTES_PER_BURST_LINE = 800
BYTES_PER_RATE_LINE = 1000

# Always written at once, never behind a paste: a held PONG (or PING) gets us
# disconnected for a ping timeout, and QUIT must not wait for what it ends.
URGENT = frozenset({"PONG", "PING", "CAP", "AUTHENTICATE", "QUIT"})
# Lines that carry a message to a target: never reordered against an earlier one to it.
MESSAGES = frozenset({"PRIVMSG", "NOTICE", "TAGMSG", "BATCH"})


class Priority(IntEnum):
    """Which waiting line goes first (lower first; in order within each), as WeeChat's
    high- and low-priority queues: what the user waits for before what the client asks
    on its own, so a line typed after a reconnect does not wait behind 20 channels'
    history, nor a /whois behind a paste."""

    TYPED = 0  # typed: a command's lines, a message of one piece
    BULK = 1  # own messages of a paste (several pieces), /resend
    AUTO = 2  # the client's own: history, WHO/MODE after a join, polls, replies, typing
    # (the history of the buffer in view first: :meth:`SendQueue.view`)


@dataclass(frozen=True, slots=True)
class Pacing:
    """Flood control settings: ``burst`` lines at once, then ``rate`` lines a second.
    Either 0: no pacing (:attr:`enabled`)."""

    burst: int = DEFAULT_BURST
    rate: float = DEFAULT_RATE

    @property
    def enabled(self) -> bool:
        return self.burst > 0 and self.rate > 0

    @property
    def burst_bytes(self) -> int:
        return self.burst * BYTES_PER_BURST_LINE

    @property
    def rate_bytes(self) -> float:
        return self.rate * BYTES_PER_RATE_LINE


class TokenBucket:
    """Two buckets, lines and bytes, filled at the settings' rates up to their bursts.

    What is sent is taken from both; a unit may go when both hold its cost, or when
    both are full (a multiline batch costing more than a burst would otherwise never
    go). Urgent lines are charged even past empty: the debt delays what follows, as
    the server counts them too.
    """

    def __init__(self, pacing: Pacing, now: float) -> None:
        self.pacing = pacing
        self.lines = float(pacing.burst)
        self.bytes = float(pacing.burst_bytes)
        self._at = now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._at)
        self._at = max(self._at, now)
        p = self.pacing
        self.lines = min(float(p.burst), self.lines + elapsed * p.rate)
        self.bytes = min(float(p.burst_bytes), self.bytes + elapsed * p.rate_bytes)

    def wait(self, lines: int, nbytes: int, now: float) -> float:
        """Seconds until a unit of ``lines`` lines and ``nbytes`` bytes may go (0: now)."""
        self._refill(now)
        p = self.pacing
        # (A unit bigger than the burst waits for a full bucket instead.)
        want_lines = min(float(lines), float(p.burst))
        want_bytes = min(float(nbytes), float(p.burst_bytes))
        return max(
            0.0,
            (want_lines - self.lines) / p.rate,
            (want_bytes - self.bytes) / p.rate_bytes,
        )

    def take(self, lines: int, nbytes: int, now: float) -> None:
        self._refill(now)
        self.lines -= lines
        self.bytes -= nbytes


def _words(line: str) -> list[str]:
    """A raw line's command and parameters as words (its tags and source skipped)."""
    rest = line
    if rest.startswith("@"):
        rest = rest.partition(" ")[2].lstrip(" ")
    if rest.startswith(":"):
        rest = rest.partition(" ")[2].lstrip(" ")
    return rest.split(" ")


def command_of(line: str) -> str:
    """The command of a raw line (after its tags and source), upper-cased."""
    return _words(line)[0].upper()


def wire(line: str) -> bytes:
    return (line + "\r\n").encode("utf-8", "replace")


@dataclass(slots=True)
class Unit:
    """Lines that go out together (one line, or a whole BATCH +ref ... BATCH -ref),
    or a ``ticket``: an outbox message, written (and measured) when its turn comes."""

    data: list[bytes] = field(default_factory=list)
    ticket: object | None = None
    open_batch: str | None = None  # a batch reference whose end has not come yet
    targets: frozenset[str] = frozenset()  # a message's targets (folded), else none
    typing: bool = False  # a typing notification: stale once a newer one or a message comes
    history: str = ""  # a CHATHISTORY request: the buffer it is for (folded)
    text_lines: int = 1  # a ticket's lines of text (a multi-line message's: all of them)

    @property
    def size(self) -> int:
        return sum(len(d) for d in self.data)

    @property
    def waiting(self) -> int:
        """Lines it stands for, as the user counts them (the status line's [sending N])."""
        return self.text_lines if self.ticket is not None else len(self.data)


class SendQueue:
    """Lines waiting to be written, by :class:`Priority` (in order within each), released
    as the bucket allows. A message (a line or a ticket with ``targets``) is never put
    before an earlier one to the same target: an automatic one (a CTCP reply) is moved
    up with it, else it waits in the lower queue behind them (a line typed into a
    channel a paste goes to). A waiting typing notification is dropped when a newer one,
    or a message, to its target comes: it would be stale, or say typing after the message.
    The history requests of the buffer in view go before the client's other own lines:
    after joining 60 channels, the one looked at does not load last, a minute later."""

    def __init__(
        self, pacing: Pacing, now: float, fold: Callable[[str], str] = str.lower
    ) -> None:
        self.bucket = TokenBucket(pacing, now)
        self._fold = fold
        self._queues: tuple[deque[Unit], ...] = tuple(deque() for _ in Priority)
        self._open: Unit | None = None  # the batch whose lines are still coming
        self._viewing = ""  # the buffer in view (folded): its history requests go first

    def __len__(self) -> int:
        """Units waiting (a batch or an outbox message is one)."""
        return sum(len(q) for q in self._queues)

    @property
    def lines(self) -> int:
        """Lines waiting: a multi-line message counts its lines of text, not one."""
        return sum(u.waiting for q in self._queues for u in q)

    def clear(self, now: float) -> None:
        """A new connection: nothing waits, and the server counts from nothing."""
        for q in self._queues:
            q.clear()
        self._open = None
        self.bucket = TokenBucket(self.bucket.pacing, now)

    def add(
        self,
        lines: Iterable[str],
        now: float,
        *,
        urgent: bool = False,
        priority: Priority = Priority.AUTO,
    ) -> list[bytes]:
        """Queue ``lines``; what may be written right away is returned (urgent lines,
        or all of them with ``urgent``: registration, which the server allows for)."""
        out: list[bytes] = []
        for line in lines:
            data = wire(line)
            words = _words(line)
            command = words[0].upper()
            tail = self._open
            if tail is not None:
                tail.data.append(data)  # (nothing comes between a batch's lines)
                if command == "BATCH" and _batch_ref(line) == "-" + (tail.open_batch or ""):
                    tail.open_batch = None
                    self._open = None
                continue
            if urgent or command in URGENT:
                if not urgent:
                    self.bucket.take(1, len(data), now)
                out.append(data)
                continue
            unit = Unit([data])
            ref = _batch_ref(line) if command == "BATCH" else ""
            if ref.startswith("+"):
                unit.open_batch = ref[1:]
                self._open = unit
            if command in MESSAGES:
                at = 3 if command == "BATCH" else 1  # (BATCH +ref type target)
                target = words[at] if len(words) > at else ""
                unit.targets = frozenset(self._fold(t) for t in target.split(",") if t)
                unit.typing = command == "TAGMSG" and "+typing=" in line.partition(" ")[0]
            elif command == "CHATHISTORY" and len(words) > 2 and words[1].upper() != "TARGETS":
                unit.history = self._fold(words[2])
            self._place(unit, priority)
        return out

    def add_ticket(
        self,
        ticket: object,
        target: str = "",
        priority: Priority = Priority.TYPED,
        lines: int = 1,
    ) -> None:
        """Queue an outbox message to ``target`` (of ``lines`` lines of text), written
        when its turn comes."""
        unit = Unit(ticket=ticket, targets=frozenset({self._fold(target)} if target else ()))
        unit.text_lines = lines
        self._place(unit, priority)

    def purge(self, keep: Callable[[object], bool]) -> int:
        """Take out the tickets ``keep`` says no to (messages dropped before their
        turn: they would cost nothing, yet wait for the budget and count as waiting).
        How many. What stays keeps its order, so nothing overtakes an earlier message."""
        gone = 0
        for q in self._queues:
            kept = [u for u in q if u.ticket is None or keep(u.ticket)]
            gone += len(q) - len(kept)
            if len(kept) != len(q):
                q.clear()
                q.extend(kept)
        return gone

    def view(self, buffer: str) -> None:
        """``buffer`` is the one in view: its history requests waiting go first among
        the client's own lines (in their order), and so do those that come later."""
        key = self._fold(buffer)
        if key == self._viewing:
            return
        self._viewing = key
        auto = self._queues[Priority.AUTO]
        first = [u for u in auto if u.history == key]
        if first:
            rest = [u for u in auto if u.history != key]
            auto.clear()
            auto.extend(first + rest)

    def _place(self, unit: Unit, priority: Priority) -> None:
        if priority == Priority.AUTO and unit.history and unit.history == self._viewing:
            auto = self._queues[Priority.AUTO]
            at = next((i for i, u in enumerate(auto) if u.history != unit.history), len(auto))
            auto.insert(at, unit)  # behind the earlier ones of the buffer in view
            return
        if unit.targets:
            for q in self._queues:  # (superseded: a newer state, or the message itself)
                for stale in [u for u in q if u.typing and u.targets & unit.targets]:
                    q.remove(stale)
            # Behind an own message to the same target waiting lower: there too.
            for lower in range(Priority.AUTO - 1, priority, -1):
                if any(u.targets & unit.targets for u in self._queues[lower]):
                    priority = Priority(lower)
                    break
            if priority < Priority.AUTO:  # automatic ones to it are moved up, in order
                auto = self._queues[Priority.AUTO]
                earlier = [u for u in auto if u.targets & unit.targets and u is not self._open]
                for u in earlier:
                    auto.remove(u)
                self._queues[priority].extend(earlier)
        self._queues[priority].append(unit)

    def head(self) -> Unit | None:
        """The next unit to go: the first of the highest priority waiting."""
        return next((q[0] for q in self._queues if q), None)

    def ready(self, unit: Unit, lines: int, nbytes: int, now: float) -> float:
        """0 when ``unit`` (costing ``lines`` and ``nbytes``) may go now, else the wait;
        an unfinished batch (its end not queued yet) waits for its end."""
        if unit.open_batch is not None:
            return float("inf")
        return self.bucket.wait(lines, nbytes, now)

    def pop(self) -> Unit:
        """Take :meth:`head`."""
        return next(q for q in self._queues if q).popleft()


def _batch_ref(line: str) -> str:
    """The reference of a BATCH line (``+ref`` or ``-ref``), "" when there is none."""
    parts = _words(line)
    return parts[1] if len(parts) > 1 else ""
