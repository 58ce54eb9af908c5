"""Netsplit and netjoin folding, as irssi does.

When two servers of a network lose each other, every user behind the far one quits
with the reason ``"hub.example.net leaf.example.net"``, and comes back with a JOIN per
channel when the servers meet again: hundreds of lines. The session still updates its
member lists at once, but hands the lines of such quits (and of the joins of the same
users coming back within :data:`REMEMBER` seconds) to :class:`Netsplits`, which folds
them per channel into one line, ``Netsplit a.net <-> b.net quits: bob, carol (+37 more)``
or ``Netsplit over, joins: bob, carol`` (those who spoke in the channel first, most
recently first), given out once no more came for
:data:`QUIET` seconds (or :data:`MAX_WAIT` after the first). The session is sans-IO:
it asks for the folds due whenever it is called with the time (a line received, a
keepalive, :meth:`client.session.Session.tick`), and gives a channel's pending folds
out before any other line added to it, so lines stay in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .formatting import display
from .model import Buffer, Kind, Line

QUIET = 1.0  # a fold is given out once no more came for this long (irssi: 1 s)
MAX_WAIT = 5.0  # ...or this long after its first, however many keep coming
REMEMBER = 15 * 60.0  # a user who split and joins again within this: a netjoin
MAX_NICKS = 10  # nicks named in a folded line; the rest are "+N more" (irssi's default)
MAX_REMEMBERED = 10_000  # split users remembered for netjoins (the oldest go first)

# A server name: labels of letters, digits, '-' or '*' (a masked name, "*.net"), at
# least two of them, the last (the top-level domain) letters or '*'.
_SERVER = re.compile(r"(?:[A-Za-z0-9*](?:[A-Za-z0-9*-]*[A-Za-z0-9*])?\.)+(?:[A-Za-z]{2,}|\*)")


def split_servers(reason: str) -> tuple[str, str] | None:
    """The two servers a quit ``reason`` names when it is a netsplit's, else None.

    A user's own quit message can look like one ("foo.bar baz.qux"); servers prefix
    those with "Quit: " (or similar), so only a reason of exactly two different server
    names, with nothing else, counts.
    """
    words = reason.split(" ")
    if len(words) != 2 or words[0].lower() == words[1].lower():
        return None
    if not all(_SERVER.fullmatch(w) for w in words):
        return None
    return words[0], words[1]


@dataclass(slots=True)
class _Fold:
    """Quits (or joins) of one channel waiting to be given out as one line."""

    buf: Buffer
    kind: Kind  # QUIT or JOIN
    servers: tuple[str, str] | None  # (quits only)
    time: float  # the first one's line time (server time)
    first: float  # local clock readings
    last: float
    nicks: list[str] = field(default_factory=list)

    def line(self) -> Line:
        # Those who spoke here, most recently first, are named before the rest (in
        # the order they came), so "+N more" hides the silent ones, not the talkers.
        nicks = sorted(self.nicks, key=lambda nick: -self.buf.last_spoke(nick))
        shown = ", ".join(nicks[:MAX_NICKS])
        if len(nicks) > MAX_NICKS:
            shown += f" (+{len(nicks) - MAX_NICKS} more)"
        if self.kind is Kind.QUIT and self.servers is not None:
            text = f"Netsplit {self.servers[0]} <-> {self.servers[1]} quits: {shown}"
        else:
            text = f"Netsplit over, joins: {shown}"
        text, spans = display(text)
        return Line(self.time, self.kind, "", text, spans, nicks=tuple(nicks))


@dataclass(slots=True)
class _Gone:
    """A user who quit in a netsplit: where from, to tell their netjoin."""

    userhost: str
    when: float  # local clock
    channels: set[Buffer] = field(default_factory=set)


class Netsplits:
    """The folds waiting to be shown, and the users who split (for netjoins)."""

    def __init__(self, fold: Callable[[str], str]) -> None:
        self._fold = fold  # the session's casemapping (it may change at ISUPPORT)
        self._pending: dict[tuple[Buffer, Kind, tuple[str, str] | None], _Fold] = {}
        self._gone: dict[str, _Gone] = {}

    def waiting(self, buf: Buffer) -> bool:
        """Whether a fold of ``buf`` is waiting (cheap: called for every line added)."""
        return bool(self._pending) and any(key[0] is buf for key in self._pending)

    @property
    def due_at(self) -> float | None:
        """When the next fold is due (local clock), or None."""
        if not self._pending:
            return None
        return min(min(f.last + QUIET, f.first + MAX_WAIT) for f in self._pending.values())

    def quit(
        self,
        buf: Buffer,
        nick: str,
        userhost: str,
        servers: tuple[str, str],
        line_time: float,
        now: float,
    ) -> None:
        """``nick`` quit ``buf`` in the split of ``servers``: fold it; remember them."""
        self._add(buf, Kind.QUIT, servers, nick, line_time, now)
        key = self._fold(nick)
        gone = self._gone.pop(key, None)  # (re-inserted: the newest last)
        if gone is None or gone.userhost != userhost or now - gone.when > REMEMBER:
            gone = _Gone(userhost, now)
        gone.when = now
        gone.channels.add(buf)
        self._gone[key] = gone
        while len(self._gone) > MAX_REMEMBERED:
            del self._gone[next(iter(self._gone))]

    def rejoined(self, buf: Buffer, nick: str, userhost: str, now: float) -> bool:
        """Whether ``nick`` joining ``buf`` is their return from a netsplit (forgotten
        for ``buf`` then: a second JOIN is an ordinary one)."""
        key = self._fold(nick)
        gone = self._gone.get(key)
        if gone is None or buf not in gone.channels:
            return False
        if now - gone.when > REMEMBER or (userhost and gone.userhost and userhost != gone.userhost):
            del self._gone[key]
            return False
        gone.channels.discard(buf)
        if not gone.channels:
            del self._gone[key]
        return True

    def join(self, buf: Buffer, nick: str, line_time: float, now: float) -> None:
        """Fold the netjoin of ``nick`` into ``buf``."""
        self._add(buf, Kind.JOIN, None, nick, line_time, now)

    def _add(
        self,
        buf: Buffer,
        kind: Kind,
        servers: tuple[str, str] | None,
        nick: str,
        line_time: float,
        now: float,
    ) -> None:
        key = (buf, kind, servers)
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Fold(buf, kind, servers, line_time, now, now)
        pending.last = now
        pending.nicks.append(nick)

    def due(self, now: float) -> list[tuple[Buffer, Line]]:
        """The folds due at ``now``, as (channel, line), taken; old splits forgotten."""
        out = [
            key for key, f in self._pending.items()
            if now >= f.last + QUIET or now >= f.first + MAX_WAIT
        ]  # fmt: skip
        if self._gone and now - next(iter(self._gone.values())).when > REMEMBER:
            self._gone = {k: g for k, g in self._gone.items() if now - g.when <= REMEMBER}
        return [(key[0], self._pending.pop(key).line()) for key in out]

    def take(self, buf: Buffer | None = None) -> list[tuple[Buffer, Line]]:
        """The folds waiting for ``buf`` (all, for None), taken now whatever the time."""
        out = [key for key in self._pending if buf is None or key[0] is buf]
        return [(key[0], self._pending.pop(key).line()) for key in out]

    def forget(self, buf: Buffer) -> None:
        """``buf`` is closed: drop what waits for it and who split from it."""
        for key in [key for key in self._pending if key[0] is buf]:
            del self._pending[key]
        for gone in self._gone.values():
            gone.channels.discard(buf)

    def clear(self) -> None:
        """A new connection: nobody's JOIN is a netjoin any more."""
        self._gone.clear()
