"""Per-connection flood control: a token bucket with fakelag and a hard limit."""

from __future__ import annotations

from collections import deque

SPACE, AT, COLON = 32, 64, 58
_BEFORE_COMMAND = frozenset((SPACE, AT, COLON))
# How a JOIN or PART line that starts with its command starts, in any case.
_JOIN_OR_PART = frozenset(a + b for a in (b"J", b"j") for b in (b"O", b"o")) | frozenset(
    a + b for a in (b"P", b"p") for b in (b"A", b"a"))


def _skip_spaces(line: bytes, pos: int) -> int:
    while pos < len(line) and line[pos] == SPACE:
        pos += 1
    return pos


# Tags a line may carry for its one token: a label, +draft/reply, +typing, an account...
# Past it, a token more per this many bytes: a line of 4 KB of client tags, relayed whole
# to every member, cost one token as a 20-byte line did (fan-out bytes x9 at the line rate).
FREE_TAG_BYTES = 512


def tag_cost(tag_len: int) -> float:
    """The tokens a line's ``tag_len`` bytes of tags cost besides its own."""
    return float(-(-max(tag_len - FREE_TAG_BYTES, 0) // FREE_TAG_BYTES))


def line_cost(line: bytes, cap: float) -> float:
    """Flood control's charge for a raw line: a JOIN or PART a token per channel it
    names, ``JOIN 0`` ``cap``, any other line one token; and a token more per 512 bytes
    of tags past the first 512 (``tag_cost``); none more than ``cap``."""
    # One JOIN of 45 new names and a JOIN 0 made and dropped 45 channels (90 stored
    # join/part rows) for two tokens. ``cap`` is the burst: the bucket never holds more,
    # so a line costing more could never pass. JOIN 0 costs the cap, not the channels it
    # leaves: counted here, before it runs, behind a queued JOIN it would see none; and
    # people seldom send it. The line is read as chat.message.parse reads it (tags, a
    # source, runs of spaces, a first parameter sent as trailing): parsing comes later.
    head = line[:2]
    if head not in _JOIN_OR_PART and (not head or head[0] not in _BEFORE_COMMAND):
        return 1.0  # every untagged PRIVMSG ends here (0.26 µs, not 0.37)
    extra = 0.0
    pos = 0
    if line[0] in _BEFORE_COMMAND:  # rare: most lines begin with their command
        pos = _skip_spaces(line, 0)
        for prefix in (AT, COLON):  # tags, then a source
            if pos < len(line) and line[pos] == prefix:
                start, pos = pos, line.find(b" ", pos)
                if pos == -1:
                    return 1.0
                if prefix == AT:
                    extra = tag_cost(pos - start - 1)
                pos = _skip_spaces(line, pos)
    return min(_command_cost(line, pos, cap) + extra, cap)


def _command_cost(line: bytes, pos: int, cap: float) -> float:
    """The command at ``pos``: a JOIN or PART a token per channel, JOIN 0 ``cap``,
    anything else one."""
    command = line[pos : pos + 5].upper()
    if command != b"JOIN " and command != b"PART ":
        return 1.0
    pos = _skip_spaces(line, pos + 5)
    if pos < len(line) and line[pos] == COLON:
        first = line[pos + 1 :]
    else:
        end = line.find(b" ", pos)
        first = line[pos:] if end == -1 else line[pos:end]
    if first == b"0" and command == b"JOIN ":
        return cap
    names = sum(1 for name in first.split(b",") if name)  # as the handlers skip empty ones
    return float(min(max(names, 1), cap))


class FloodGate:
    """Lines within the burst pass at once; later ones wait for tokens (fakelag).

    A line costs one token, or less (``cost``: a draft/multiline batch's lines, which a
    client sends all at once), or more (a JOIN or PART of several channels, at most the
    burst: ``line_cost``; or for its tags). Waiting lines worth more than ``max_queue`` tokens mean
    the client keeps flooding: the caller disconnects it (``ERROR :Excess Flood``).
    """

    __slots__ = ("burst", "costs", "queue", "queued", "rate", "tokens", "updated")

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self.burst = float(burst)
        self.rate = rate
        self.tokens = float(burst)
        self.updated = now
        self.queue: deque[bytes] = deque()
        self.costs: deque[float] = deque()  # each waiting line's cost, in step with queue
        self.queued = 0.0  # the waiting lines' costs added up

    def _refill(self, now: float) -> None:
        elapsed = now - self.updated
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.updated = now

    def admit(self, line: bytes, now: float, cost: float = 1.0) -> bool:
        """True: handle ``line`` now. False: it was queued behind the fakelag."""
        if not self.queue:
            self._refill(now)
            if self.tokens >= cost:
                self.tokens -= cost
                return True
        self.queue.append(line)
        self.costs.append(cost)
        self.queued += cost
        return False

    def release(self, now: float) -> list[bytes]:
        """Queued lines whose turn has come."""
        if not self.queue:
            return []
        # Uncapped while lines wait, so a coarse timer still releases ``rate`` per second.
        elapsed = now - self.updated
        if elapsed > 0:
            self.tokens += elapsed * self.rate
            self.updated = now
        out = []
        while self.queue and self.tokens >= self.costs[0]:
            cost = self.costs.popleft()
            self.tokens -= cost
            self.queued -= cost
            out.append(self.queue.popleft())
        if not self.queue:
            self.queued = 0.0  # no float drift left behind
        self.tokens = min(self.tokens, self.burst)
        return out

    def clear(self) -> list[bytes]:
        """Every waiting line, now (an operator is exempt)."""
        lines = list(self.queue)
        self.queue.clear()
        self.costs.clear()
        self.queued = 0.0
        return lines
