"""The notify list: nicks whose coming and going the user wants to hear about.

A server that offers IRCv3 MONITOR (ISUPPORT ``MONITOR``) tells the client when a
watched nick connects or leaves; with any other server the session polls the list
with ISON at each keepalive, as irssi does. This module holds the list and each
nick's last known state, and decides which changes are worth a line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Nicks per MONITOR or ISON line: well inside 512 bytes at any NICKLEN a server uses.
NICKS_PER_LINE = 16


@dataclass(slots=True)
class Watched:
    nick: str  # as the user wrote it
    online: bool | None = None  # None: not asked since this connection started
    mask: str = ""  # nick!user@host while online, when the server said
    asked: bool = False  # added by the user just now: report its first state, even offline
    away: str | None = None  # the away message, when AWAY said so (away-notify)


class NotifyList:
    def __init__(self, nicks: Iterable[str] = (), fold: Callable[[str], str] = str.lower) -> None:
        self._fold = fold
        self.watched: dict[str, Watched] = {}
        for nick in nicks:
            self.watched.setdefault(fold(nick), Watched(nick))

    def __len__(self) -> int:
        return len(self.watched)

    def __contains__(self, nick: str) -> bool:
        return self._fold(nick) in self.watched

    def nicks(self) -> list[str]:
        return [w.nick for w in self.watched.values()]

    def refold(self, fold: Callable[[str], str]) -> None:
        """The server's casemapping changed: key the list by the new folding."""
        self._fold = fold
        self.watched = {fold(w.nick): w for w in self.watched.values()}

    def add(self, nick: str) -> bool:
        """Watch ``nick``; False if it was already watched."""
        key = self._fold(nick)
        if key in self.watched:
            return False
        self.watched[key] = Watched(nick, asked=True)
        return True

    def remove(self, nick: str) -> Watched | None:
        return self.watched.pop(self._fold(nick), None)

    def forget_states(self) -> None:
        """A new connection: nothing is known until the server answers again."""
        for watched in self.watched.values():
            watched.online, watched.mask, watched.asked, watched.away = None, "", False, None

    def seen(self, nick: str, online: bool, mask: str = "") -> Watched | None:
        """Record a nick's state; the entry when the change should be shown, else None.

        Coming online is always shown; going offline only when it was known to be
        online, or when the user has just asked about the nick (after a reconnect
        the server reports every offline nick, which is no news).
        """
        watched = self.watched.get(self._fold(nick))
        if watched is None:
            return None
        before, asked = watched.online, watched.asked
        watched.online, watched.asked = online, False
        watched.mask = mask if online else ""
        if before is not online:
            watched.away = None  # a new session: not away until AWAY says so
        if online:
            return watched if before is not True else None
        return watched if before is True or asked else None

    def set_away(self, nick: str, away: str | None) -> None:
        watched = self.watched.get(self._fold(nick))
        if watched is not None:
            watched.away = away

    def polled(self, asked: Iterable[str], online: Iterable[str]) -> list[Watched]:
        """An ISON reply: of the nicks ``asked`` about, only ``online`` are on."""
        on = {self._fold(nick): nick for nick in online}
        changed = []
        for nick in asked:
            shown = self.seen(nick, self._fold(nick) in on)
            if shown is not None:
                changed.append(shown)
        return changed


def chunks(nicks: list[str], size: int = NICKS_PER_LINE) -> list[list[str]]:
    return [nicks[i : i + size] for i in range(0, len(nicks), size)]
