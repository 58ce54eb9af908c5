"""SASL PLAIN at connect (IRCv3 sasl-3.1/3.2): logging in before registration ends.

``sasl`` is requested with the other capabilities when the server offers it with PLAIN
(or with no list of mechanisms); after the ACK the credentials go out in AUTHENTICATE
lines and CAP END waits for the outcome. A login that is not offered, refused, failed
or never answered is reported with an error line, and registration goes on without it
(WeeChat's ``sasl_fail=continue``). Every connection logs in again.
"""

from __future__ import annotations

import base64
from typing import Literal, Protocol

from .formatting import plain
from .model import Buffer, Kind

SASL_CHUNK = 400  # bytes of base64 per AUTHENTICATE line (IRCv3 sasl-3.1)
SASL_TIMEOUT = 20.0  # an exchange still unanswered at a keepalive after this is given up

# SASL at connect: idle -> requested (CAP REQ) -> started (AUTHENTICATE PLAIN) -> sent
# (the credentials) -> done; "done" also when it was not offered or failed.
SaslStep = Literal["idle", "requested", "started", "sent", "done"]


class Credentials(Protocol):
    """Where the username and password are read (a :class:`client.session.SessionConfig`)."""

    @property
    def sasl_username(self) -> str | None: ...
    @property
    def sasl_password(self) -> str | None: ...


class SaslSession(Protocol):
    """What a login needs from :class:`client.session.Session`."""

    @property
    def server(self) -> Buffer: ...
    @property
    def account(self) -> str | None: ...
    @property
    def registered(self) -> bool: ...
    def send(self, command: str, *params: str) -> None: ...
    def error(self, text: str, now: float, buffer: Buffer | None = None) -> None: ...
    def end_cap(self) -> None: ...


class SaslLogin:
    """One session's SASL login: the step it has reached on this connection."""

    def __init__(self, credentials: Credentials, session: SaslSession) -> None:
        self._credentials = credentials
        self._session = session
        self.step: SaslStep = "idle"
        self.since = 0.0  # when the exchange began (SASL_TIMEOUT counts from there)

    @property
    def configured(self) -> bool:
        """A SASL username and password are set: log in at every connect."""
        return bool(self._credentials.sasl_username and self._credentials.sasl_password)

    def reset(self, now: float) -> None:
        """A new connection: nothing asked yet."""
        self.step, self.since = "idle", now

    def check_credentials(self, now: float) -> None:
        """Only one of the username and the password is set: say which is missing."""
        user, password = self._credentials.sasl_username, self._credentials.sasl_password
        if bool(user) != bool(password):
            missing = "password" if user else "username"
            text = f"SASL needs a username and a password; the {missing} is missing: not logging in"
            self._session.error(text, now, self._session.server)

    def request(self, offered: dict[str, str], now: float) -> bool:
        """Whether to request sasl with these offered capabilities (CAP negotiation still
        open): configured, not asked yet, and offered with PLAIN (or with no list of
        mechanisms). When it is not, say so: the connection goes on without logging in."""
        if not self.configured or self.step != "idle":
            return False
        mechanisms = offered.get("sasl")
        if mechanisms is None:
            reason = "the server does not offer SASL"
        elif mechanisms and "PLAIN" not in mechanisms.upper().split(","):
            reason = f"the server offers SASL only as {plain(mechanisms)[:64]}, not PLAIN"
        else:
            self.step = "requested"
            return True
        self._over(reason, now, tried=False)
        return False

    def cap_acked(self, acked: list[str], now: float) -> bool:
        """CAP ACK: True when the login holds back CAP END (or has sent it already)."""
        if self.step != "requested":
            return False
        if "sasl" in acked:
            self.step, self.since = "started", now
            self._session.send("AUTHENTICATE", "PLAIN")  # CAP END waits for its outcome
        else:
            self._over("the server did not enable SASL", now)
        return True

    def cap_refused(self, now: float) -> None:
        """CAP NAK."""
        if self.step == "requested":
            self._over("the server refused the sasl capability", now)

    def keepalive(self, now: float) -> None:
        """An exchange unanswered for SASL_TIMEOUT is aborted: a server that never
        answers does not hold registration back for ever."""
        if self.step in ("started", "sent") and now - self.since >= SASL_TIMEOUT:
            self._session.send("AUTHENTICATE", "*")
            self._over("no answer from the server", now)

    def welcomed(self, now: float) -> None:
        """Registration completed (001) before the login ended."""
        if self.configured and self.step != "done":  # no CAP, or it ended elsewhere
            idle = self.step == "idle"
            reason = "the server does not support capabilities (CAP)" if idle else (
                "the server completed the connection first")
            self._over(reason, now, tried=not idle)

    def challenge(self, params: list[str]) -> None:
        """The server's challenge: PLAIN has only an empty one (``+``), answered with
        base64(authzid NUL authcid NUL password) in 400-byte lines; a last line of
        exactly 400 is followed by ``+``."""
        if self.step != "started":
            return
        if params[:1] != ["+"]:
            self._session.send("AUTHENTICATE", "*")  # not PLAIN's empty challenge: abort (906)
            return
        user = self._credentials.sasl_username or ""
        password = self._credentials.sasl_password or ""
        raw = f"\0{user}\0{password}".encode("utf-8", "surrogateescape")
        data = base64.b64encode(raw).decode("ascii")
        chunks = [data[i : i + SASL_CHUNK] for i in range(0, len(data), SASL_CHUNK)]
        if not chunks or len(chunks[-1]) == SASL_CHUNK:
            chunks.append("+")
        for chunk in chunks:
            self._session.send("AUTHENTICATE", chunk)
        self.step = "sent"

    def reply(self, code: str, params: list[str], now: float) -> tuple[Kind, str] | None:
        """903 success, 902/904/905/906 failures, 907 already, 908 the mechanisms: the
        line to show of it, if any (in the server buffer until registration completes,
        which is always so during an exchange: CAP END waits for it)."""
        p = params
        text = p[-1] if len(p) > 1 else code
        if self.step in ("started", "sent"):
            if code == "903":
                self.step = "done"
                self._session.end_cap()
                return (Kind.INFO, text) if self._session.account is None else None  # no 900
            if code == "907":
                self.step = "done"
                self._session.end_cap()
                return Kind.INFO, text
            if code == "908":
                mechanisms = p[1] if len(p) > 2 else "?"
                self._over(f"the server offers {mechanisms}, not PLAIN", now)
            else:
                self._over(text, now)
            return None
        if not self._session.registered and self.step == "done":
            return None  # the tail of an exchange already reported (904 after 908, 906 after *)
        kind = Kind.INFO if code in ("903", "907", "908") else Kind.ERROR
        if code == "908" and len(p) > 2:
            text = f"SASL mechanisms: {p[1]}"
        return kind, text

    def _over(self, reason: str, now: float, *, tried: bool = True) -> None:
        """SASL did not log us in: an error line, and registration goes on without it
        (CAP END, when an attempt held it back)."""
        self.step = "done"
        verb = "failed" if tried else "skipped"
        user = plain(self._credentials.sasl_username or "")
        text = f"SASL login as {user} {verb}: {reason}; connecting without logging in"
        self._session.error(text, now, self._session.server)
        if tried:
            self._session.end_cap()
