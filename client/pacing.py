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
from collections.abc import Iterable
from dataclasses import dataclass, field

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

    @property
    def size(self) -> int:
        return sum(len(d) for d in self.data)


class SendQueue:
    """Lines in the order they are to be written, released as the bucket allows."""

    def __init__(self, pacing: Pacing, now: float) -> None:
        self.bucket = TokenBucket(pacing, now)
        self._units: deque[Unit] = deque()

    def __len__(self) -> int:
        """Units waiting (a batch or an outbox message is one)."""
        return len(self._units)

    def clear(self, now: float) -> None:
        """A new connection: nothing waits, and the server counts from nothing."""
        self._units.clear()
        self.bucket = TokenBucket(self.bucket.pacing, now)

    def add(self, lines: Iterable[str], now: float, *, urgent: bool = False) -> list[bytes]:
        """Queue ``lines``; what may be written right away is returned (urgent lines,
        or all of them with ``urgent``: registration, which the server allows for)."""
        out: list[bytes] = []
        for line in lines:
            data = wire(line)
            command = command_of(line)
            tail = self._units[-1] if self._units else None
            if tail is not None and tail.open_batch is not None:
                tail.data.append(data)  # (nothing comes between a batch's lines)
                if command == "BATCH" and _batch_ref(line) == "-" + tail.open_batch:
                    tail.open_batch = None
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
            self._units.append(unit)
        return out

    def add_ticket(self, ticket: object) -> None:
        self._units.append(Unit(ticket=ticket))

    def head(self) -> Unit | None:
        return self._units[0] if self._units else None

    def ready(self, unit: Unit, lines: int, nbytes: int, now: float) -> float:
        """0 when ``unit`` (costing ``lines`` and ``nbytes``) may go now, else the wait;
        an unfinished batch (its end not queued yet) waits for its end."""
        if unit.open_batch is not None:
            return float("inf")
        return self.bucket.wait(lines, nbytes, now)

    def pop(self) -> Unit:
        return self._units.popleft()


def _batch_ref(line: str) -> str:
    """The reference of a BATCH line (``+ref`` or ``-ref``), "" when there is none."""
    parts = _words(line)
    return parts[1] if len(parts) > 1 else ""
