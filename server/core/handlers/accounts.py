"""Accounts: SASL PLAIN and SCRAM-SHA-256 (AUTHENTICATE), IRCv3 account registration
(REGISTER), password changes and drops (for NickServ), reserved nicks, and what a login
changes for others (account-notify, the account tag, WHOIS 330).

The password work (scrypt, the store of record) is the transport's, off the loop: the
core emits ``Login``/``Register``/``SetPassword``/``DropAccount``/``FindScram`` and
holds the client's input until ``core.answered``. SCRAM's own maths (chat.scram) is a
few HMACs, done here; the PBKDF2 behind the stored credentials ran where the password
was seen.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from chat import numerics as N
from chat import sasl as framing
from chat import scram
from chat.message import Message
from chat.names import is_valid_nick

from ..caps import SASL_MECHANISMS
from ..relay import relay_wire
from .operator import (
    end_check,
    host_wait,
    password_wait,
    start_check,
    too_many_failures,
    too_many_text,
)
from .readmarker import forget_markers

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..relay import Relay
    from ..state import Client

log = logging.getLogger("chat.server.accounts")

SASL_CHUNK = framing.CHUNK  # an AUTHENTICATE line carries at most this; exactly this: more follows
# base64 bytes of one client message (PLAIN: two names and a password; SCRAM: a name
# and a nonce, or the nonces and a proof)
SASL_MAX = 1200
MAX_PASSWORD = 300  # bytes; the spec's advice, so that it fits a line to services too
ACCOUNT_EXISTS_TEXT = "An account with that name exists already"
# Nicks of the server's services (folded).
SERVICE_NAMES = frozenset({  # ours, and the services Atheme, Anope and Ergo networks run
    "alis", "botserv", "chanfix", "chanserv", "gameserv", "global", "groupserv", "helpserv",
    "histserv", "hostserv", "infoserv", "memoserv", "nickserv", "operserv", "reportserv",
    "rpgserv", "saslserv", "statserv",
})


def service_notice(core: ServerCore, client: Client, service: str, text: str) -> None:
    """A NOTICE from one of the server's services (NickServ, ChanServ)."""
    source = f"{service}!{service}@{core.config.name}"
    core.send(client, Message("NOTICE", [client.nick, text], source))


SERVER_WIDE = "*"  # the one key of core.register_rate (no host is spelt so)
REGISTERED = "ok"  # the answers to Register (server.accounts.service.RegisterResult values)
EXISTS = "exists"


@dataclass(frozen=True, slots=True)
class Login:
    """Effect: check ``password`` against the account ``folded`` off the loop; answer
    with ``core.answered(check_id, name)``, the account's name or None."""

    check_id: int
    folded: str
    password: str


@dataclass(frozen=True, slots=True)
class Register:
    """Effect: create the account off the loop; answer with ``core.answered(check_id,
    result)``: "ok", "exists" or "unavailable"."""

    check_id: int
    folded: str
    name: str
    password: str


@dataclass(frozen=True, slots=True)
class SetPassword:
    """Effect: give the account ``folded`` a new password off the loop; answer with
    ``core.answered(check_id, ok)``."""

    check_id: int
    folded: str
    password: str


@dataclass(frozen=True, slots=True)
class FindAccount:
    """Effect: look the account ``folded`` up off the loop; answer with
    ``core.answered(check_id, found)``: (name, created_ms), or None."""

    check_id: int
    folded: str


@dataclass(frozen=True, slots=True)
class FindScram:
    """Effect: the SCRAM-SHA-256 credentials of the account ``folded``, off the loop;
    answer with ``core.answered(check_id, found)``: (name, stored credentials) or None
    (no such account, none stored yet, or the store failed)."""

    check_id: int
    folded: str


@dataclass(slots=True)
class ScramExchange:
    """A SASL SCRAM-SHA-256 exchange in progress (``Client.scram``)."""

    server: scram.ScramServer | None = None  # once the client-first message is in
    name: str | None = None  # the account's name; None: decoy credentials
    proven: bool = False  # the server-final message went out: the client's '+' ends it
    paid: bool = False  # the host paid for the check up front (operator.start_check)


@dataclass(frozen=True, slots=True)
class DropAccount:
    """Effect: delete the account ``folded`` off the loop; answer with
    ``core.answered(check_id, ok)``."""

    check_id: int
    folded: str


# ---------------------------------------------------------------------- SASL


def handle_authenticate(core: ServerCore, client: Client, msg: Message) -> None:
    arg = msg.params[0]
    if "sasl" not in client.caps:
        _sasl_failed(core, client)
        return
    if client.account is not None:
        core.reply(client, N.ERR_SASLALREADY, "You have already authenticated using SASL")
        return
    if arg == "*":
        _end_sasl(client)
        core.reply(client, N.ERR_SASLABORTED, "SASL authentication aborted")
        return
    if client.sasl is None:  # the first line names the mechanism
        mechanism = arg.upper()
        if mechanism not in framing.MECHANISMS:
            core.reply(client, N.RPL_SASLMECHS, SASL_MECHANISMS, "are available SASL mechanisms")
            _sasl_failed(core, client)
            return
        client.sasl = ""
        client.scram = ScramExchange() if mechanism == scram.MECHANISM else None
        core.send(client, Message("AUTHENTICATE", ["+"]))
        return
    if len(arg) > SASL_CHUNK or len(client.sasl) + len(arg) > SASL_MAX:
        _end_sasl(client)
        core.reply(client, N.ERR_SASLTOOLONG, "SASL message too long")
        return
    data, complete = framing.add_line(client.sasl, arg)
    if not complete:
        client.sasl = data  # a full chunk: the rest follows
        return
    if client.scram is not None:
        client.sasl = ""  # the exchange goes on; its next message starts empty
        _scram_step(core, client, client.scram, data)
        return
    client.sasl = None  # PLAIN is one message
    credentials = _plain(data)
    if credentials is None:
        _sasl_failed(core, client)
        return
    authcid, password = credentials

    def succeeded(name: str) -> None:
        core.reply(client, N.RPL_SASLSUCCESS, "SASL authentication successful")

    check_login(core, client, authcid, password, succeeded, lambda: _sasl_failed(core, client),
                throttled=lambda text: _sasl_failed(core, client, text))


def _scram_step(core: ServerCore, client: Client, exchange: ScramExchange, data: str) -> None:
    """One client message of SCRAM-SHA-256: client-first (the credentials are looked up
    off the loop, then the server-first goes out), client-final (the proof checked,
    the server-final out), then the empty answer that ends it: 900 and 903."""
    if exchange.proven:
        if data or exchange.name is None:  # SCRAM's last client message is empty
            _scram_failed(core, client, "a non-empty answer to the server-final message")
            return
        _end_sasl(client)
        end_check(core, client, exchange.paid, True)
        log_in(core, client, exchange.name)
        core.reply(client, N.RPL_SASLSUCCESS, "SASL authentication successful")
        return
    try:
        message = base64.b64decode(data, validate=True)
        if exchange.server is None:
            _scram_first(core, client, exchange, scram.ScramServer(message))
            return
        final = exchange.server.final(message)
    except ValueError as e:  # not base64 (binascii.Error, or not ASCII), or a ScramError
        if exchange.server is not None:  # past the look-up: a failed attempt, counted
            login_failed(core, client, core.fold(exchange.server.username))
            end_check(core, client, exchange.paid, False)
        _scram_failed(core, client, str(e), counted=exchange.server is not None)
        return
    if exchange.name is None:  # decoy credentials: no proof matches (defensive)
        _scram_failed(core, client, "no credentials")
        return
    exchange.proven = True
    _send_sasl(core, client, final)


def _scram_first(
    core: ServerCore, client: Client, exchange: ScramExchange, server: scram.ScramServer
) -> None:
    """The client-first message is well formed: look the account's credentials up."""
    if server.authzid and server.authzid != server.username:  # as PLAIN: no one else's
        _scram_failed(core, client, "an authorization identity of someone else")
        return
    folded = core.fold(server.username)
    wait = login_wait(core, client, folded)
    if wait:
        if core.login_refusal_log.allow():
            log.warning("login as %r from %s refused: too many failures",
                        server.username, client.ip)
        _end_sasl(client)
        _sasl_failed(core, client, too_many_text(wait))
        return

    def answer(client: Client, found: tuple[str, str] | None) -> None:
        if client.scram is not exchange:
            return  # the exchange ended meanwhile
        credentials = scram.Credentials.from_text(found[1]) if found is not None else None
        if found is not None and credentials is not None:
            exchange.name = found[0]
        else:
            # No account, or none for SCRAM yet: a server-first message like any other
            # (a salt that never changes for the name), so the name's existence does
            # not show; the proof fails.
            credentials = scram.decoy(core.cloak_key, folded)
        exchange.server = server
        _send_sasl(core, client, server.first(credentials))

    # The proof is checked here, not on the password thread; a failure counts the same.
    exchange.paid = start_check(core, client)
    core.emit(FindScram(core.await_answer(client, answer), folded))


def _scram_failed(core: ServerCore, client: Client, why: str, *, counted: bool = False) -> None:
    """End the exchange with 904. A failure that counts against the limits is always
    logged; a malformed exchange (nothing checked, nothing counted, as cheap to repeat
    as a refusal) within the refusals' budget."""
    exchange = client.scram
    name = exchange.server.username if exchange is not None and exchange.server else "?"
    if counted or core.login_refusal_log.allow():
        log.warning("failed SCRAM login as %r from %s (%s): %s",
                    name, client.ip, client.nick, why)
    _end_sasl(client)
    _sasl_failed(core, client)


def _send_sasl(core: ServerCore, client: Client, message: bytes) -> None:
    for line in framing.to_lines(message):
        core.send(client, Message("AUTHENTICATE", [line]))


def _end_sasl(client: Client) -> None:
    client.sasl = None
    client.scram = None


def check_login(
    core: ServerCore,
    client: Client,
    account: str,
    password: str,
    succeeded: Callable[[str], None],
    failed: Callable[[], None],
    *,
    throttled: Callable[[str], None],
    log_in_too: bool = True,
) -> None:
    """Check ``password`` for ``account`` off the loop; on success log the client in
    (900, ACCOUNT; unless not ``log_in_too``) and call ``succeeded(name)``, else
    ``failed()``. Failures count against the per-connection limit, with OPER's: past
    it nothing is checked and ``throttled`` gets the text saying so."""
    folded = core.fold(account)
    wait = login_wait(core, client, folded)
    if wait:
        if core.login_refusal_log.allow():
            log.warning("login as %r from %s refused: too many failures", account, client.ip)
        throttled(too_many_text(wait))
        return

    def answer(client: Client, name: str | None) -> None:
        end_check(core, client, paid, name is not None)
        if name is None:
            login_failed(core, client, folded)
            log.warning("failed login as %r from %s (%s)", account, client.ip, client.nick)
            failed()
            return
        if log_in_too:
            log_in(core, client, name)
        succeeded(name)

    paid = start_check(core, client)
    core.emit(Login(core.await_answer(client, answer), folded, password))


def login_wait(core: ServerCore, client: Client, folded: str) -> int:
    """Seconds before a password may be checked for the account ``folded`` on this
    connection (0: now): the connection's failures limit it (``password_wait``), and
    so do the account's, from any connection and host (``--login-failures``), or a
    brute force from many addresses gets a guess per scrypt hash, and the host's, for
    any accounts (``host_wait``)."""
    account_wait = core.login_failures.wait(folded, core.clock())
    return max(password_wait(core, client), math.ceil(account_wait), host_wait(core, client))


def login_failed(core: ServerCore, client: Client, folded: str) -> None:
    """A wrong password for ``folded``: counted for the connection and the account."""
    now = core.clock()
    client.password_failures.append(now)
    core.login_failures.take(folded, now)


def _plain(data: str) -> tuple[str, str] | None:
    """``authzid NUL authcid NUL password`` (RFC 4616), base64; None when malformed.

    Logging in as someone else (an authzid other than the authcid) is not allowed."""
    try:
        raw = base64.b64decode(data, validate=True)
        authzid, authcid, password = raw.decode("utf-8").split("\0")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not authcid or not password or (authzid and authzid != authcid):
        return None
    return authcid, password


def _sasl_failed(
    core: ServerCore, client: Client, text: str = "SASL authentication failed"
) -> None:
    core.reply(client, N.ERR_SASLFAIL, text)


# ---------------------------------------------------------------------- PASS login

# PASS <account>:<password> without a server password (Ergo's login-via-pass-command,
# for clients and bouncers without SASL). Checked only when registration ends, so that
# SASL, usually sent after PASS, wins (kept in Client.pass_login until then).
def note_pass_login(client: Client, text: str) -> None:
    """PASS on a server without a password: keep ``account:password`` for the end of
    registration (the last PASS counts; one without a colon is no login)."""
    client.pass_login = None
    account, colon, password = text.partition(":")
    account = account.partition("@")[0]  # Ergo's account@device: no devices here
    if not colon or not account or not password or client.account is not None:
        return
    client.pass_login = (account, password)


def pass_login(core: ServerCore, client: Client, then: Callable[[], None]) -> bool:
    """At the end of registration, log in with PASS's account and password unless
    something (SASL, REGISTER) logged in meanwhile. True when a check is under way:
    ``then`` runs once it is over, logged in or not (told why by a notice)."""
    credentials, client.pass_login = client.pass_login, None
    if credentials is None or client.account is not None or core.config.password is not None:
        return False
    account, password = credentials

    def tell(text: str) -> None:
        core.send(client, Message("NOTICE", [client.nick, text], core.config.name))

    if login_wait(core, client, core.fold(account)):
        if core.login_refusal_log.allow():
            log.warning("PASS login as %r from %s refused: too many failures",
                        account, client.ip)
        tell(f"*** Login as {account} refused: too many failed attempts; "
             "connecting without an account")
        then()
        return True

    def failed() -> None:
        tell(f"*** Login as {account} failed: wrong account name or password; "
             "connecting without an account")
        then()

    # The check above refused it already if it had to (and said so in its own words).
    check_login(core, client, account, password, lambda name: then(), failed,
                throttled=lambda text: failed())
    return True


def abort_sasl(core: ServerCore, client: Client) -> None:
    """Registration completed in the middle of an exchange: it ends there (sasl-3.1)."""
    _end_sasl(client)
    core.reply(client, N.ERR_SASLABORTED, "SASL authentication aborted")


# ---------------------------------------------------------------------- REGISTER / VERIFY


class Replies(Protocol):
    """How an account request is answered: REGISTER's FAIL/SUCCESS lines, or
    NickServ's notices."""

    def fail(self, code: str, account: str, text: str) -> None: ...

    def success(self, account: str, text: str) -> None: ...


@dataclass(frozen=True, slots=True)
class RegisterReplies:
    core: ServerCore
    client: Client

    def fail(self, code: str, account: str, text: str) -> None:
        self.core.fail(self.client, "REGISTER", code, account, text)

    def success(self, account: str, text: str) -> None:
        self.core.send(self.client, Message("REGISTER", ["SUCCESS", account, text],
                                            self.core.config.name))


def handle_register(core: ServerCore, client: Client, msg: Message) -> None:
    """``REGISTER <account> {<email> | *} <password>``; the email is not used."""
    register_account(core, client, msg.params[0], msg.params[2], RegisterReplies(core, client))


def register_account(
    core: ServerCore, client: Client, account: str, password: str, replies: Replies
) -> None:
    """Create ``account`` (``*``: the current nick) and log the client in to it."""
    if not core.config.allow_register:
        replies.fail("TEMPORARILY_UNAVAILABLE", account, "Accounts are not registered here")
        return
    if client.account is not None:
        replies.fail("ALREADY_AUTHENTICATED", client.account,
                     f"You are already logged in as {client.account}")
        return
    if account == "*":
        if not client.folded:
            replies.fail("NEED_NICK", "*", "Send NICK first")
            return
        account = client.nick
    if not client.registered and core.config.password is not None and not client.pass_ok:
        # Early registration must not get round the server password.
        replies.fail("TEMPORARILY_UNAVAILABLE", account, "Send the server password (PASS) first")
        return
    folded = core.fold(account)
    if not is_valid_nick(account, core.config.nicklen):
        replies.fail("BAD_ACCOUNT_NAME", account, "An account name must be a valid nickname")
        return
    if folded in SERVICE_NAMES:
        replies.fail("BAD_ACCOUNT_NAME", account, "That name is reserved for services")
        return
    if folded in core.account_names:  # known here: no need to ask the store
        replies.fail("ACCOUNT_EXISTS", account, ACCOUNT_EXISTS_TEXT)
        return
    holder = core.nicks.get(folded)
    if holder is not None and holder is not client:
        # Its name would become a nick someone else is using.
        replies.fail("BAD_ACCOUNT_NAME", account, "That name is a nickname in use by someone else")
        return
    if not acceptable_password(password, account, replies, core.config.password_min_length):
        return
    if too_many_failures(core, client) or host_wait(core, client):
        replies.fail("TEMPORARILY_UNAVAILABLE", account, "Too many attempts; try again later")
        return
    refusal = registration_refused(core, client)
    if refusal is not None:
        why, text = refusal
        if core.login_refusal_log.allow():
            log.warning("REGISTER of %r from %s refused: %s", account, client.ip, why)
        replies.fail("TEMPORARILY_UNAVAILABLE", account, text)
        return
    # Every attempt costs a scrypt hash: each counts against the limit, success too;
    # against the host's, only one that fails.
    client.password_failures.append(core.clock())
    paid = start_check(core, client)
    # Reserved while the store decides, so that nobody takes the nick meanwhile.
    reserved_now = folded not in core.account_names
    core.account_names.add(folded)

    def stored(result: str) -> None:  # whether or not the client is still here
        if result == REGISTERED:
            if core.cluster:
                core.publish("newacct", (), f"{core.node_id}:{conn_id}", f=folded)
        elif result != EXISTS and reserved_now:
            core.account_names.discard(folded)

    def answer(client: Client, result: str) -> None:
        stored(result)
        end_check(core, client, paid, result == REGISTERED)
        if result == REGISTERED:
            log.info("account %r registered by %s (%s)", account, client.nick, client.ip)
            replies.success(account, f"Account {account} registered")
            log_in(core, client, account)
        elif result == EXISTS:
            replies.fail("ACCOUNT_EXISTS", account, ACCOUNT_EXISTS_TEXT)
        else:
            replies.fail("TEMPORARILY_UNAVAILABLE", account,
                         "Accounts cannot be registered right now; try again later")

    conn_id = client.conn_id
    check = core.await_answer(client, answer, stored)
    core.emit(Register(check, folded, account, password))


def registration_refused(core: ServerCore, client: Client) -> tuple[str, str] | None:
    """(why for the log, text for the client) when a registration now would exceed the
    host's rate (``core.account_rate``) or the server's (``core.register_rate``); None
    when it may go on, counted against both. A refusal by one spends nothing of the
    other: a host refused server-wide keeps its own accounts for later."""
    now = core.clock()
    if core.account_rate.wait(client.host_key, now):
        return ("too many accounts from that host",
                "Too many accounts registered from your host; try again later")
    if not core.register_rate.take(SERVER_WIDE, now):
        wait = math.ceil(core.register_rate.wait(SERVER_WIDE, now))
        return ("too many registrations on the server",
                f"Too many accounts are being registered right now; try again in {wait} s")
    core.account_rate.take(client.host_key, now)
    return None


def acceptable_password(password: str, account: str, replies: Replies, least: int) -> bool:
    """``least``: the shortest password taken (``--password-min-length``)."""
    if len(password) < least:
        replies.fail("WEAK_PASSWORD", account,
                     f"The password must be at least {least} characters long")
        return False
    if len(password.encode("utf-8", "surrogateescape")) > MAX_PASSWORD:
        replies.fail("UNACCEPTABLE_PASSWORD", account,
                     f"The password must be at most {MAX_PASSWORD} bytes long")
        return False
    return True


def change_password(core: ServerCore, client: Client, password: str, replies: Replies) -> None:
    """A new password for the account the client is logged in to."""
    account = client.account
    if account is None:
        replies.fail("ACCOUNT_REQUIRED", "*", "You are not logged in")
        return
    if not acceptable_password(password, account, replies, core.config.password_min_length):
        return
    if too_many_failures(core, client):  # each change costs a scrypt hash
        replies.fail("TEMPORARILY_UNAVAILABLE", account, "Too many attempts; try again later")
        return
    client.password_failures.append(core.clock())

    def answer(client: Client, ok: bool) -> None:
        if ok:
            log.info("account %r: password changed by %s (%s)", account, client.nick, client.ip)
            replies.success(account, f"The password of {account} is changed")
        else:
            replies.fail("TEMPORARILY_UNAVAILABLE", account,
                         "The password could not be changed; try again later")

    core.emit(SetPassword(core.await_answer(client, answer), core.fold(account), password))


def handle_verify(core: ServerCore, client: Client, msg: Message) -> None:
    """Registration never asks for a code here, so there is none to verify."""
    account = msg.params[0]
    if client.account is not None:
        core.fail(client, "VERIFY", "ALREADY_AUTHENTICATED", client.account,
                  f"You are already logged in as {client.account}")
        return
    core.fail(client, "VERIFY", "INVALID_CODE", account, "No verification is pending")


# ---------------------------------------------------------------------- reserved nicks


def reserved(core: ServerCore, client: Client, nick: str) -> str:
    """433's reason for a nick that is an account's name: how to get it, when the
    client is logged in to no account at all."""
    if client.account is not None:
        return "Nickname is reserved by a different account"
    # The account's own spelling when known here; the nick typed may differ in case.
    name = known_name(core, core.fold(nick))
    account = "an account" if name is None else f"the account {name}"
    # Before registration a client can still be set to log in as it connects: a client
    # without SASL has a "server password" setting, which PASS carries (see PASS).
    login = name or nick
    server_password = "" if client.registered else f"the server password {login}:<password>, "
    return (f"Nickname is reserved for {account}: log in to it first (SASL, {server_password}"
            f"or /msg NickServ IDENTIFY {login} <password>)")


def known_name(core: ServerCore, folded: str) -> str | None:
    """The account's name as registered, when a session on this node is logged in to it."""
    for session in core.account_sessions.get(folded, ()):
        if session.account is not None:
            return session.account
    return None


def with_account_names(
    core: ServerCore, client: Client, accounts: list[str],
    then: Callable[[Client, dict[str, str]], None],
) -> None:
    """``then(client, names)``: each folded name of ``accounts`` mapped to the account's
    name as registered (as WHOIS and ACCOUNT show it), from this node's sessions or the
    store; the folded name stands when neither answers."""
    names: dict[str, str] = {}
    missing: list[str] = []
    for folded in accounts:
        name = known_name(core, folded)
        names[folded] = name or folded
        if name is None and folded not in missing:
            missing.append(folded)

    def next_one(client: Client) -> None:
        if not missing:
            then(client, names)
            return
        folded = missing.pop()

        def found(client: Client, answer: tuple[str, int] | None) -> None:
            if answer is not None:
                names[folded] = answer[0]
            next_one(client)

        core.emit(FindAccount(core.await_answer(client, found), folded))

    next_one(client)


def reserved_for_other(core: ServerCore, client: Client, folded: str) -> bool:
    """True when the nick ``folded`` is an account's name and ``client`` is not
    logged in to that account."""
    if folded not in core.account_names or not core.config.reserve_account_nicks:
        return False
    return client.account is None or core.fold(client.account) != folded


def refuse_reserved_nick(core: ServerCore, client: Client) -> None:
    """At registration: 433 and the nick is given up; the client picks another (as
    irssi and WeeChat do on 433) or logs in first."""
    nick = client.nick
    if core.nicks.get(client.folded) is client:
        if core.cluster:
            core.release_nick(client)
        del core.nicks[client.folded]
    client.nick, client.folded = "*", ""
    core.reply(client, N.ERR_NICKNAMEINUSE, nick, reserved(core, client, nick))  # "433 * nick"


def account_registered(core: ServerCore, folded: str) -> None:
    """An account now exists (here or on another node): its name is reserved."""
    core.account_names.add(folded)


# ---------------------------------------------------------------------- logged in


def log_in(core: ServerCore, client: Client, name: str) -> None:
    """900, and for a registered user ACCOUNT to those sharing a channel (and itself)
    with account-notify, on every node."""
    core.set_account(client, name)
    # Before registration the mask may lack parts: '*' stands for them.
    shown = f"{client.nick}!{client.user or '*'}@{client.host}"
    core.reply(client, N.RPL_LOGGEDIN, shown, name, f"You are now logged in as {name}")
    if not client.registered:
        return  # nobody can see the user yet; JOINs and WHOIS will show it
    relay = core.new_relay(client, "ACCOUNT", [name])
    notify_account(core, client, relay)
    if core.cluster:
        core.publish("account", (), core.uid(client), a=name, r=relay_wire(client, relay))
    if core.registered_channels and client.channels:
        from .chanserv import op_trusted

        op_trusted(core, client)  # the founder who logs in after joining gets +o too
    if core.unread_memos:
        from .memoserv import logged_in

        logged_in(core, client)


def log_out(core: ServerCore, client: Client) -> None:
    """901, and ACCOUNT * to those who were told of the login, on every node."""
    core.set_account(client, None)
    core.reply(client, N.RPL_LOGGEDOUT, client.mask, "You are now logged out")
    if not client.registered:
        return
    relay = core.new_relay(client, "ACCOUNT", ["*"])
    notify_account(core, client, relay)
    if core.cluster:
        core.publish("account", (), core.uid(client), a="*", r=relay_wire(client, relay))


def drop_own_account(
    core: ServerCore, client: Client, account: str, password: str, replies: Replies
) -> None:
    """A user deletes the account it is logged in to, giving its password again."""
    if client.account is None or core.fold(client.account) != core.fold(account):
        replies.fail("ACCOUNT_REQUIRED", account, f"Log in to {account} to drop it")
        return

    def verified(name: str) -> None:
        drop_account(core, client, name, replies)

    def refused() -> None:
        replies.fail("INVALID_PASSWORD", account, "Wrong password: the account stays")

    check_login(core, client, account, password, verified, refused, log_in_too=False,
                throttled=lambda text: replies.fail("TEMPORARILY_UNAVAILABLE", account, text))


def drop_account(core: ServerCore, client: Client, account: str, replies: Replies) -> None:
    """Delete an account (an operator: spam, abuse; or its owner): its users are logged
    out and its nick is free again, on every node. Its private history stays."""
    folded = core.fold(account)

    def answer(client: Client, ok: bool) -> None:
        if not ok:
            replies.fail("ACCOUNT_UNKNOWN", account,
                         f"Account {account} could not be dropped: no such account, "
                         "or the database failed")
            return
        who = f"{client.nick} ({client.oper_name or 'its owner'})"
        log.info("account %r dropped by %s", account, who)
        core.snotice(f"Account {account} dropped by {who}", skip=client)
        replies.success(account, f"Account {account} dropped")
        account_dropped(core, folded)
        if core.cluster:
            core.publish("dropacct", (), core.uid(client), f=folded)

    core.emit(DropAccount(core.await_answer(client, answer), folded))


def account_dropped(core: ServerCore, folded: str, *, here: bool = True) -> None:
    """The account is gone (dropped ``here`` or on another node): its nick is free,
    this node's users logged in to it are logged out, and its channels are gone."""
    from .chanserv import account_gone

    core.account_names.discard(folded)
    forget_markers(core, folded)
    account_gone(core, folded, here=here)
    core.unread_memos.pop(folded, None)  # the store dropped its memos with it
    for client in list(core.account_sessions.get(folded, ())):
        if client.closing is None:
            log_out(core, client)


def notify_account(core: ServerCore, client: Client, relay: Relay) -> None:
    # extended-monitor: those MONITORing the user hear it too, as for AWAY.
    audience = core.with_watchers(client, core.peers(client, include_self=client.remote is None))
    core.fan_out(audience, relay, need_cap="account-notify")
