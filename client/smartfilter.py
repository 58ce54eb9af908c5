"""Which join, part, quit and nick-change lines of a channel are hidden from view.

As WeeChat's ``irc.look.smart_filter`` (and irssi users' hide-joins scripts): in a
busy channel most lines are people coming and going, and history (with IRCv3
draft/event-playback) brings those back too. Three modes (config ``events``, the
``/filter`` command for the session):

* ``all``: every such line is shown.
* ``smart`` (the default): the line of a nick who has not spoken in the channel lately
  is hidden. It is shown when the nick sent a message there within ``minutes`` before
  it (the old nick, for a nick change), and a join (or a nick change) also when the
  nick speaks within ``minutes`` after it, so the join of someone who then talks shows
  up once they do. Times are the lines' own (server time), so history lines follow the
  same rule as live ones.
* ``none``: all of them are hidden.

A netsplit's quits, folded into one line per channel (client/netsplit.py), are one
event: ``smart`` shows it when any of its nicks spoke lately, and so for the netjoin's
joins. Our own lines, kicks, topic and mode changes are always shown, and so are the notify
list's "is online" lines (a ``Kind.JOIN`` too); queries and the server buffer are
never filtered. Hiding is a display matter only: the lines stay in the buffer (chat
logs, search, history paging and msgid dedup see them all); the message pane and
``--headless`` output skip them, and a hidden line does not make a buffer look active.
But a full scrollback drops the oldest of them before the conversation (unless
``all``: ``Buffer.events_hidden``, model.EVENT_SHARE), so their flood never pushes what
was said out of view.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .model import NICK_CHANGE, Buffer, Kind, Line


class Events(StrEnum):
    """Which joins, parts, quits and nick changes are shown."""

    ALL = "all"
    SMART = "smart"
    NONE = "none"


DEFAULT_MINUTES = 5


@dataclass(slots=True)
class EventFilter:
    mode: Events = Events.SMART
    minutes: int = DEFAULT_MINUTES  # smart: "spoke lately" is within this many minutes

    def hides(self, buf: Buffer, line: Line) -> bool:
        """Whether ``line`` of ``buf`` is left out of view (only what
        :meth:`Buffer.is_event` says may be)."""
        if self.mode is Events.ALL or not buf.is_event(line):
            return False
        if self.mode is Events.NONE:
            return True
        if line.nicks:  # a netsplit's quits, or its joins, folded: one event
            return not any(self._spoke_near(buf, line.kind, nick, line.time) for nick in line.nicks)
        if line.kind is Kind.NICK:
            window = self.minutes * 60.0
            at = line.time
            return not (
                buf.spoke(line.nick, at - window, at)
                or buf.spoke(line.text[len(NICK_CHANGE) :], at, at + window)
            )
        return not self._spoke_near(buf, line.kind, line.nick, line.time)

    def _spoke_near(self, buf: Buffer, kind: Kind, nick: str, at: float) -> bool:
        """Whether ``nick`` spoke within the minutes before ``at``, or after it for a
        join (the newcomer who talks)."""
        window = self.minutes * 60.0
        if buf.spoke(nick, at - window, at):
            return True
        return kind is Kind.JOIN and buf.spoke(nick, at, at + window)

    def describe(self) -> str:
        """What the mode shows, as a sentence."""
        if self.mode is Events.ALL:
            return "Showing all joins, parts, quits and nick changes (/filter all)"
        if self.mode is Events.NONE:
            return "Hiding joins, parts, quits and nick changes in channels (/filter none)"
        minutes = f"{self.minutes} minute" + ("" if self.minutes == 1 else "s")
        return (
            "Showing joins, parts, quits and nick changes in channels only of nicks who"
            f" spoke there within {minutes} of them (/filter smart)"
        )
