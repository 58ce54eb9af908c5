"""Operator commands: OPER, KILL, REHASH, WALLOPS; the kill NickServ GHOST uses too."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat import numerics as N
from chat.message import Message
from chat.names import is_channel_name

from ..relay import relay_wire
from ..services import pseudo_client

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..relay import Relay
    from ..state import Client

log = logging.getLogger("chat.server.oper")

OPER_WINDOW = 60.0  # seconds over which failed OPER attempts are counted


@dataclass(frozen=True, slots=True)
class CheckOper:
    """Effect: run ``verify_password(password, stored)`` off the loop (scrypt takes
    ~45 ms) and answer with ``core.answered(check_id, ok)``."""

    check_id: int
    password: str
    stored: str


def is_oper(core: ServerCore, client: Client) -> bool:
    """True for an operator; anyone else gets 481 (operator-only commands start here)."""
    if "o" in client.modes:
        return True
    core.reply(client, N.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
    return False


def handle_oper(core: ServerCore, client: Client, msg: Message) -> None:
    name, password = msg.params[0], msg.params[1]
    wait = max(password_wait(core, client), host_wait(core, client))
    if wait:
        if core.login_refusal_log.allow():
            log.warning("OPER attempt as %r from %s (%s) refused: too many failures",
                        name, client.ip, client.nick)
        # Not "Password incorrect": the password was not even checked.
        core.reply(client, N.ERR_PASSWDMISMATCH, too_many_text(wait))
        return
    stored = core.config.opers.get(name)
    if stored is None:
        oper_failed(core, client, name)
        return

    def answer(client: Client, ok: bool) -> None:
        end_check(core, client, paid, ok)
        (oper_succeeded if ok else oper_failed)(core, client, name)

    # The client's next lines wait for the answer, so nothing it sends overtakes it.
    paid = start_check(core, client)
    core.emit(CheckOper(core.await_answer(client, answer), password, stored))


def password_wait(core: ServerCore, client: Client) -> int:
    """Seconds before this connection may have a password checked again (0: now).
    Failed checks (OPER, SASL, logins) per connection are limited: each costs ~45 ms
    of scrypt."""
    now = core.clock()
    failures = [t for t in client.password_failures if now - t < OPER_WINDOW]
    client.password_failures = failures
    over = len(failures) - core.config.oper_attempts
    if over < 0 or not failures:
        return 0
    # Allowed again once enough of the oldest failures have left the window.
    return max(1, math.ceil(failures[over] + OPER_WINDOW - now))


def host_wait(core: ServerCore, client: Client) -> int:
    """Seconds before a password may be checked for this connection's host (0: now).
    Failed checks are limited per host too (``core.password_hosts``,
    ``--host-password-failures``): new connections and made-up account names bought a
    scrypt check each, on the one thread every login and OPER waits behind."""
    return math.ceil(core.password_hosts.wait(client.host_key, core.clock()))


def start_check(core: ServerCore, client: Client) -> bool:
    """A password check is about to be queued; True when the host paid for it now.

    Only failed checks count against the host (``end_check``). A host with failures
    to its name pays up front, and is paid back if the check passes: each of its
    connections could otherwise have a check in flight on its last token. A host
    without any pays only if it fails, so that a bouncer logging many users in at
    once is not refused."""
    rate, key, now = core.password_hosts, client.host_key, core.clock()
    if rate.full(key, now):
        return False
    rate.take(key, now)
    return True


def end_check(core: ServerCore, client: Client, paid: bool, passed: bool) -> None:
    """The check ``start_check`` began is over: a failure costs the host a token, a
    right password (an operator's own OPER, a login) nothing."""
    if passed and paid:
        core.password_hosts.give(client.host_key, core.clock())
    elif not passed and not paid:
        core.password_hosts.take(client.host_key, core.clock())


def too_many_failures(core: ServerCore, client: Client) -> bool:
    return password_wait(core, client) > 0


def too_many_text(wait: int) -> str:
    """What a refused password check says, rather than "wrong password"."""
    return f"Too many failed attempts; try again in {wait} s"


def oper_failed(core: ServerCore, client: Client, name: str) -> None:
    client.password_failures.append(core.clock())
    log.warning("failed OPER attempt as %r from %s (%s)", name, client.ip, client.nick)
    core.snotice(f"Failed OPER attempt as {name} by {core.describe(client)}")
    core.reply(client, N.ERR_PASSWDMISMATCH, "Password incorrect")


def oper_succeeded(core: ServerCore, client: Client, name: str) -> None:
    """+o, and +s (server notices) as operators usually start with."""
    client.oper_name = name
    change = "".join(m for m in "os" if m not in client.modes)
    for mode in change:
        core.set_user_mode(client, mode, True)
    if change:
        core.send(client, Message("MODE", [client.nick, "+" + change], client.mask))
    core.reply(client, N.RPL_YOUREOPER, "You are now an IRC operator")
    log.info("%s (%s) is now operator %r", client.nick, client.ip, name)
    core.snotice(f"{core.describe(client)} is now an operator ({name})", skip=client)


@dataclass(frozen=True, slots=True)
class Rehash:
    """Effect: re-read the configuration; answer with ``core.rehash_done``."""

    conn_id: int
    label: str | None = None  # labeled-response: the answer comes after the reload


def handle_rehash(core: ServerCore, client: Client, msg: Message) -> None:
    if not is_oper(core, client):
        return
    log.info("operator %s (%s) requested REHASH", client.nick, client.oper_name,
             extra={"event": "oper", "action": "rehash"})
    core.snotice(f"{client.nick} is rehashing the server configuration", skip=client)
    core.emit(Rehash(client.conn_id, core.defer_label()))
    # The 382 comes from the transport's reload: what the operator sent next is
    # answered after it, in the order it was sent.
    core.hold_input(client)


def handle_kill(core: ServerCore, client: Client, msg: Message) -> None:
    if not is_oper(core, client):
        return
    nick = msg.params[0]
    # The comment is required by the spec, but irssi's and others' /kill send none:
    # the operator's nick stands in, as on solanum.
    comment = msg.params[1] if len(msg.params) > 1 and msg.params[1] else client.nick
    target = core.nicks.get(core.fold(nick))
    if target is None and pseudo_client(core, nick) is not None:
        # Online to WHOIS and WHO, so not "no such nick": a part of the server (as
        # solanum answers for a service on a services server).
        core.reply(client, N.ERR_CANTKILLSERVER, "You cannot kill a network service")
        return
    if target is None or not target.registered:
        core.reply(client, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        return
    log.info("operator %s killed %s (%s)", client.nick, target.nick, comment)
    core.snotice(f"Received KILL message for {core.describe(target)} from {client.nick} "
                 f"({comment})", skip=client)
    kill(core, target, client.mask, client.nick, comment)


def kill(core: ServerCore, target: Client, source: str, killer: str, comment: str) -> None:
    """Disconnect ``target`` as a KILL does, on whichever node it is connected to."""
    if target.remote is not None:
        # Its own node disconnects it; the QUIT comes back as that node's event.
        core.publish("kill", (), target.remote, s=source, by=killer, why=comment)
        return
    reason = f"Killed ({killer} ({comment}))"
    if target.registered:
        core.send(target, Message("KILL", [target.nick, comment], source))
        # Modern IRC: "The user being killed and every user sharing a channel with them
        # receives a QUIT message"; core.disconnect sends it to the peers, then ERROR to
        # the target.
        core.send(target, Message("QUIT", [reason], target.mask))
    core.disconnect(target, reason)


def handle_samode(core: ServerCore, client: Client, msg: Message) -> None:
    """``SAMODE <#channel> <modes> [args]``: an IRC operator changes a channel's modes as
    its operators could, member or not (a channel left without operators, a takeover);
    the MODE comes from the operator, and the other operators are told."""
    if not is_oper(core, client):
        return
    name = msg.params[0]
    if not is_channel_name(name):
        core.reply(client, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    from .modes import channel_mode

    if channel_mode(core, client, name, msg.params[1:], override=True):
        changes = " ".join(msg.params[1:])
        core.snotice(f"{client.nick} used SAMODE: {name} {changes}", skip=client)
        log.info("operator %s (%s) used SAMODE %s %s", client.nick, client.oper_name, name,
                 changes, extra={"event": "oper", "action": "samode"})


def handle_wallops(core: ServerCore, client: Client, msg: Message) -> None:
    """``:nick!user@host WALLOPS :text`` to every user with +w (the sender too, if +w)."""
    if not is_oper(core, client):
        return
    relay = core.new_relay(client, "WALLOPS", [msg.params[0]])
    deliver_wallops(core, relay)
    if core.cluster:
        core.publish("wallops", (), core.uid(client), r=relay_wire(client, relay))
    log.info("operator %s (%s) sent WALLOPS", client.nick, client.oper_name,
             extra={"event": "oper", "action": "wallops"})


def deliver_wallops(core: ServerCore, relay: Relay) -> None:
    """A WALLOPS to this node's registered users with +w (a rare command: one scan)."""
    core.fan_out(
        [c for c in core.clients.values() if c.registered and "w" in c.modes], relay
    )
