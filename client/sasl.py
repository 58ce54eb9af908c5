"""SASL at connect (IRCv3 sasl-3.1/3.2): logging in before registration ends, with
SCRAM-SHA-256 when the server offers it, else PLAIN (or the one ``sasl_mechanism`` names).

``sasl`` is requested with the other capabilities when the server offers it with
SCRAM-SHA-256 or PLAIN (or with no list of mechanisms: PLAIN); after the ACK the
exchange runs in AUTHENTICATE lines and CAP END waits for its outcome. SCRAM never
sends the password, and the login counts only once the server has proved it holds the
password's credentials (its signature); a wrong one is a failed login, aborted.

PLAIN sends the password itself, so it goes only over TLS with a verified certificate
(``sasl_plain_insecure`` allows it elsewhere), and never in place of a failed SCRAM:
an impostor, or anyone on a plaintext path, could answer SCRAM with 904 (or strip it
from CAP LS) to be sent the password. An account the server has no SCRAM credentials
for yet logs in with ``sasl_mechanism = "PLAIN"``; the 904 line says so.

A login that is not offered, refused, failed or never answered is reported with an
error line, and registration goes on without it (WeeChat's ``sasl_fail=continue``).
Every connection logs in again.

Without configured credentials, those of a login made during the session (``/register``,
NickServ ``IDENTIFY``: :meth:`SaslLogin.learn`) are used from the next connect on, for
the rest of the session: kept in memory only, never shown, logged or written.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Literal, Protocol

from chat import sasl as framing
from chat.scram import MECHANISM as SCRAM
from chat.scram import ScramClient, ScramError

from .formatting import plain
from .model import Buffer, Kind

SASL_CHUNK = framing.CHUNK  # bytes of base64 per AUTHENTICATE line (IRCv3 sasl-3.1)
SASL_TIMEOUT = 20.0  # an exchange still unanswered at a keepalive after this is given up
MAX_MESSAGE = 4 * SASL_CHUNK  # base64 of one server message; a longer one is refused
ATTEMPT_WINDOW = 120.0  # seconds a password sent to log in waits for its 900
MECHANISMS = (SCRAM, "PLAIN")  # what sasl_mechanism may name
# After a failed SCRAM: how an account the server has no SCRAM credentials for logs in.
PLAIN_HINT = (
    'to log in with PLAIN instead (over TLS): --sasl-mechanism PLAIN, or sasl_mechanism = "PLAIN"')

# SASL at connect: idle -> requested (CAP REQ) -> started (AUTHENTICATE <mechanism>) ->
# sent (our first message) -> done; "done" also when it was not offered or failed.
SaslStep = Literal["idle", "requested", "started", "sent", "done"]


class Credentials(Protocol):
    """Where the username and password are read (a :class:`client.session.SessionConfig`)."""

    @property
    def sasl_username(self) -> str | None: ...
    @property
    def sasl_password(self) -> str | None: ...
    @property
    def sasl_mechanism(self) -> str | None: ...  # None: SCRAM-SHA-256 when offered, else PLAIN
    @property
    def sasl_plain_insecure(self) -> bool: ...  # PLAIN also without verified TLS


@dataclass(frozen=True, slots=True)
class Learned:
    """An account and its password that logged in during the session (never shown)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Attempt:
    """A password sent to log in (``/register``, NickServ ``IDENTIFY``), awaiting the
    900; ``account`` None: whichever the server names (the nick's)."""

    account: str | None
    password: str = field(repr=False)
    at: float = 0.0


class SaslSession(Protocol):
    """What a login needs from :class:`client.session.Session`."""

    @property
    def server(self) -> Buffer: ...
    @property
    def account(self) -> str | None: ...
    @property
    def registered(self) -> bool: ...
    @property
    def secure(self) -> bool: ...  # the connection is TLS
    @property
    def tls_verified(self) -> bool: ...  # ...with a verified certificate
    def fold(self, name: str) -> str: ...
    def send(self, command: str, *params: str) -> None: ...
    def error(self, text: str, now: float, buffer: Buffer | None = None) -> None: ...
    def end_cap(self) -> None: ...
    def quit(self, message: str, now: float) -> None: ...


class SaslLogin:
    """One session's SASL login: the step it has reached on this connection."""

    def __init__(self, credentials: Credentials, session: SaslSession) -> None:
        self._credentials = credentials
        self._session = session
        self.step: SaslStep = "idle"
        self.since = 0.0  # when the exchange began (SASL_TIMEOUT counts from there)
        self._mechanism = "PLAIN"  # or SCRAM-SHA-256, when the server offers it
        self._plain_offered = False  # SCRAM failing, the failure says how to use PLAIN
        self._scram: ScramClient | None = None  # a SCRAM exchange's state
        self._proof_sent = False  # SCRAM: the client-final went out
        self._incoming = ""  # SCRAM: the base64 of the server message so far
        self._learned: Learned | None = None  # a login made during the session
        self._attempt: _Attempt | None = None  # a password on its way to a login
        self._change: _Attempt | None = None  # a new password sent to NickServ

    @property
    def configured(self) -> bool:
        """A SASL username and password are set: log in at every connect."""
        return bool(self._credentials.sasl_username and self._credentials.sasl_password)

    @property
    def enabled(self) -> bool:
        """Log in at connect: credentials configured, or learnt during the session."""
        return self.configured or self._learned is not None

    @property
    def learned(self) -> str | None:
        """The account whose credentials were learnt (used when none are configured)."""
        return self._learned.username if self._learned is not None else None

    def attempt(self, account: str | None, password: str, now: float) -> None:
        """A password was sent to log in (``/register``, NickServ ``IDENTIFY`` or
        ``REGISTER``): learnt when a 900 follows (:meth:`logged_in`)."""
        self._attempt = _Attempt(account, password, now)

    def logged_in(self, account: str, now: float) -> bool:
        """A 900 after registration: when it answers the last :meth:`attempt` (recent,
        and to the account it named), its credentials are learnt. Whether they were."""
        attempt, self._attempt = self._attempt, None
        if attempt is None or now - attempt.at > ATTEMPT_WINDOW:
            return False
        fold = self._session.fold
        if attempt.account is not None and fold(attempt.account) != fold(account):
            return False
        return self.learn(account, attempt.password)

    def forget(self) -> None:
        """Logged out (901) during the session: reconnects no longer log in by themselves."""
        self._learned = self._attempt = self._change = None

    def change_sent(self, password: str, now: float) -> None:
        """A new password was sent to NickServ (``SET PASSWORD``): used from the next
        connect on once NickServ confirms it (:meth:`change_confirmed`)."""
        self._change = _Attempt(None, password, now)

    def change_confirmed(self, account: str | None, now: float) -> bool:
        """NickServ confirmed a password change of ``account`` (the one logged in to):
        reconnects log in with the new password, also over a configured one of the same
        account. Whether a change was waiting for it."""
        change, self._change = self._change, None
        if change is None or account is None or now - change.at > ATTEMPT_WINDOW:
            return False
        return self.learn(account, change.password)

    @property
    def configured_outdated(self) -> bool:
        """The configured password is not the one reconnects use (changed since)."""
        return self.configured and self._uses_learned

    def learn(self, username: str, password: str) -> bool:
        """A login with a password succeeded during the session: the next connects log
        in with it when nothing is configured. False for what SASL cannot send."""
        if not username or not password or any(c in username for c in " \0\r\n"):
            return False
        self._learned = Learned(username, password)
        return True

    @property
    def _uses_learned(self) -> bool:
        """Log in with what was learnt: nothing is configured, or the configured
        account's password was changed (or given again) during the session."""
        learned = self._learned
        if learned is None:
            return False
        if not self.configured:
            return True
        fold = self._session.fold
        return fold(learned.username) == fold(self._credentials.sasl_username or "")

    @property
    def _username(self) -> str:
        if self._uses_learned:
            assert self._learned is not None
            return self._learned.username
        return self._credentials.sasl_username or ""

    @property
    def _password(self) -> str:
        if self._uses_learned:
            assert self._learned is not None
            return self._learned.password
        return self._credentials.sasl_password or ""

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
        open): configured, not asked yet, and offered with SCRAM-SHA-256 or PLAIN (or
        with no list of mechanisms). When it is not, say so: the connection goes on
        without logging in."""
        if not self.enabled or self.step != "idle":
            return False
        value = offered.get("sasl")
        mechanisms = value.upper().split(",") if value else []
        mechanism = self._choose(mechanisms)
        if value is None:
            reason = "the server does not offer SASL"
        elif mechanism is None:
            wanted = self._credentials.sasl_mechanism or f"{SCRAM} or PLAIN"
            reason = f"the server offers SASL only as {plain(value)[:64]}, not {wanted}"
        elif mechanism == "PLAIN" and (refusal := self._plain_refusal()):
            reason = refusal
        else:
            self._mechanism = mechanism
            self._plain_offered = not mechanisms or "PLAIN" in mechanisms
            self.step = "requested"
            return True
        self._over(reason, now, tried=False)
        return False

    def _choose(self, mechanisms: list[str]) -> str | None:
        """The mechanism to log in with, of those offered (none listed: sasl-3.1
        servers, which all take PLAIN), None when none will do."""
        wanted = self._credentials.sasl_mechanism
        plain_ok = not mechanisms or "PLAIN" in mechanisms
        if wanted == "PLAIN":
            return "PLAIN" if plain_ok else None
        if SCRAM in mechanisms or (wanted == SCRAM and not mechanisms):
            return SCRAM
        return "PLAIN" if plain_ok and wanted is None else None

    def _plain_refusal(self) -> str:
        """Why PLAIN must not send the password on this connection ('' when it may):
        only TLS with a verified certificate keeps it from other eyes than the
        server's, the one the user chose."""
        session = self._session
        if session.tls_verified or self._credentials.sasl_plain_insecure:
            return ""
        allow = "or send it anyway with --sasl-plain-insecure (sasl_plain_insecure = true)"
        if session.secure:
            return ("PLAIN would send the password to a server whose TLS certificate was "
                    f"not verified: trust the certificate instead of --tls-no-verify, {allow}")
        return f"PLAIN would send the password unencrypted: connect with --tls, {allow}"

    def cap_acked(self, acked: list[str], now: float) -> bool:
        """CAP ACK: True when the login holds back CAP END (or has sent it already)."""
        if self.step != "requested":
            return False
        if "sasl" in acked:
            self._start(now)  # CAP END waits for its outcome
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
        if self.enabled and self.step != "done":  # no CAP, or it ended elsewhere
            idle = self.step == "idle"
            reason = "the server does not support capabilities (CAP)" if idle else (
                "the server completed the connection first")
            self._over(reason, now, tried=not idle)

    def challenge(self, params: list[str], now: float) -> None:
        """An AUTHENTICATE line from the server: the empty challenge (``+``) that
        starts both mechanisms, then SCRAM's server-first and server-final messages
        (base64, in 400-byte lines as ours)."""
        if self.step == "started":
            if params[:1] != ["+"]:
                self._session.send("AUTHENTICATE", "*")  # not the empty challenge: abort (906)
                return
            user, password = self._username, self._password
            if self._mechanism == SCRAM:
                self._scram = ScramClient(user, password)
                message = self._scram.first()
            else:
                message = f"\0{user}\0{password}".encode("utf-8", "surrogateescape")
            self._send(message)
            self.step = "sent"
        elif self.step == "sent" and self._scram is not None and params:
            self._scram_message(self._scram, params[0], now)

    def _scram_message(self, scram: ScramClient, param: str, now: float) -> None:
        """One line of a SCRAM server message; the whole message answered: the proof
        for the server-first, ``+`` for a server-final whose signature is right."""
        self._incoming, complete = framing.add_line(self._incoming, param)
        if len(self._incoming) > MAX_MESSAGE:
            self._abort("the server's SASL message is too long", now)
            return
        if not complete:
            return
        data, self._incoming = self._incoming, ""
        try:
            message = base64.b64decode(data, validate=True)
            if not self._proof_sent:
                self._send(scram.final(message))
                self._proof_sent = True
                return
            scram.verify(message)
        except ScramError as e:  # malformed, or a server that cannot prove it knows the password
            self._abort(str(e), now)
            return
        except ValueError:  # binascii.Error, or not even ASCII
            self._abort("the server's SASL message is not base64", now)
            return
        self._scram = None  # done: any further AUTHENTICATE line is not ours to answer
        self._session.send("AUTHENTICATE", "+")  # the login is the server's to confirm

    def reply(self, code: str, params: list[str], now: float) -> tuple[Kind, str] | None:
        """903 success, 902/904/905/906 failures, 907 already, 908 the mechanisms: the
        line to show of it, if any (in the server buffer until registration completes,
        which is always so during an exchange: CAP END waits for it)."""
        p = params
        text = p[-1] if len(p) > 1 else code
        if self.step in ("started", "sent"):
            if code == "903" and self._scram is not None:
                # Logged in before the server proved it knows the password: SCRAM's
                # point is lost, and this may not be the server meant. Leave it.
                self.step = "done"
                user = plain(self._username)
                self._session.error(
                    f"SASL login as {user}: the server said yes without proving it knows "
                    "the password (no SCRAM signature); disconnecting", now,
                    self._session.server)
                self._session.quit("SASL: the server was not verified", now)
                return None
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
                self._plain_offered = "PLAIN" in mechanisms.upper().split(",")
                self._over(self._scram_hint(
                    f"the server offers {plain(mechanisms)[:64]}, not {self._mechanism}"), now)
            elif code == "904" and self._mechanism == SCRAM:
                # Never PLAIN in its place: an impostor would answer 904 to get the password.
                self._over(self._scram_hint(
                    f"{text} (a wrong password, or an account this server has no SCRAM "
                    "credentials for yet)"), now)
            else:
                self._over(text, now)
            return None
        if not self._session.registered and self.step == "done":
            return None  # the tail of an exchange already reported (904 after 908, 906 after *)
        kind = Kind.INFO if code in ("903", "907", "908") else Kind.ERROR
        if code == "908" and len(p) > 2:
            text = f"SASL mechanisms: {p[1]}"
        return kind, text

    def _scram_hint(self, reason: str) -> str:
        """A failed SCRAM's reason, with how to log in with PLAIN when it may help."""
        if self._mechanism != SCRAM or not self._plain_offered:  # (PLAIN would not help)
            return reason
        return f"{reason}; {PLAIN_HINT}"

    def _start(self, now: float) -> None:
        """AUTHENTICATE with the chosen mechanism: a new exchange."""
        self.step, self.since = "started", now
        self._scram, self._proof_sent, self._incoming = None, False, ""
        self._session.send("AUTHENTICATE", self._mechanism)

    def _send(self, message: bytes) -> None:
        for line in framing.to_lines(message):
            self._session.send("AUTHENTICATE", line)

    def _abort(self, reason: str, now: float) -> None:
        """Our side gives the exchange up (906 follows): not logged in."""
        self._session.send("AUTHENTICATE", "*")
        self._over(reason, now)

    def _over(self, reason: str, now: float, *, tried: bool = True) -> None:
        """SASL did not log us in: an error line, and registration goes on without it
        (CAP END, when an attempt held it back)."""
        self.step = "done"
        verb = "failed" if tried else "skipped"
        user = plain(self._username)
        text = f"SASL login as {user} {verb}: {reason}; connecting without logging in"
        self._session.error(text, now, self._session.server)
        if tried:
            self._session.end_cap()
