"""Getting our nick back (sans-IO; owned by the session), as irssi's and WeeChat's
"regain nick" features do.

A connection that registered under a fallback (``alice_``) because the nick it asked
for was in use (433, 437) — often our own previous connection, which the server has
not noticed gone yet, or a cluster's nick lease still running — asks for it again:

* at keepalives, with backoff: the first try ``REGAIN_FIRST`` seconds after the
  welcome, then twice as long after each, at most ``REGAIN_CAP`` apart,
  ``REGAIN_TRIES`` tries in all;
* at once when MONITOR (where the server has it; the session watches the nick for
  this) says the nick went offline (731);
* at once after a login (900) to the account of that name: a server that keeps an
  account's name for it then lets us have it.

It stops once the nick is ours, when the user changes nick (``/nick``), when the
server calls the nick erroneous (432), and with the connection. A refused try (433,
437) says nothing; the last keepalive try refused, without MONITOR, says it gives up.

A nick the server keeps for an account (a 433 saying "reserved", as ours and Ergo's
do) is not held by anyone and never becomes free: only the login tries for it
(``login_only``).
"""

from __future__ import annotations

from collections.abc import Callable

REGAIN_FIRST = 20.0  # seconds after the welcome before the first keepalive try
REGAIN_CAP = 900.0  # longest wait between two keepalive tries
REGAIN_TRIES = 8  # keepalive tries in all (MONITOR and logins try on their own)


class NickRegain:
    def __init__(self) -> None:
        self.target: str | None = None  # the nick to get back; None: not trying
        self.monitored = False  # MONITOR + target was sent for this (to be taken back)
        self.asked = False  # a NICK for it awaits the server's answer
        self.login_only = False  # reserved for an account: tried only after a login
        self._next = 0.0  # the next keepalive try, not before then
        self._gap = REGAIN_FIRST
        self._tries = 0

    def start(self, nick: str, now: float, *, login_only: bool = False) -> None:
        """Registered under a fallback: ``nick`` was in use (``login_only``: reserved
        for an account)."""
        self.target = nick
        self.monitored = self.asked = False
        self.login_only = login_only
        self._next = now + REGAIN_FIRST
        self._gap = REGAIN_FIRST
        self._tries = REGAIN_TRIES if login_only else 0

    def reserved(self) -> bool:
        """A try was refused as reserved for an account: only a login tries again.
        True when MONITOR was watching the nick for this (to be taken back)."""
        monitored = self.monitored
        self.monitored = self.asked = False
        self.login_only = True
        self._tries = REGAIN_TRIES
        return monitored

    def stop(self) -> bool:
        """No more tries; True when MONITOR was watching the nick for this."""
        monitored = self.monitored
        self.target = None
        self.monitored = self.asked = False
        return monitored

    def is_target(self, nick: str, fold: Callable[[str], str]) -> bool:
        return self.target is not None and fold(nick) == fold(self.target)

    def due(self, now: float) -> bool:
        """A keepalive: whether to try now (a try is counted, the next one later)."""
        if self.target is None or self._tries >= REGAIN_TRIES or now < self._next:
            return False
        self._tries += 1
        self._gap = min(self._gap * 2, REGAIN_CAP)
        self._next = now + self._gap
        return True

    @property
    def exhausted(self) -> bool:
        """Every keepalive try is spent (MONITOR and logins may still try)."""
        return self._tries >= REGAIN_TRIES
