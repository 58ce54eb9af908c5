"""NickServ, where irssi and WeeChat users look for it: ``/msg NickServ REGISTER``,
``IDENTIFY``, ``GHOST``, ``REGAIN`` and ``HELP`` (or the NICKSERV and NS commands), on
the same accounts as REGISTER and SASL. Answers are notices from ``NickServ``; nobody
can take that nick."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat import numerics as N
from chat.message import Message
from chat.servertime import format_time

from .accounts import (
    FindAccount,
    change_password,
    check_login,
    drop_account,
    drop_own_account,
    log_out,
    register_account,
    service_notice,
)
from .help import wrap_words
from .operator import kill
from .registration import handle_nick

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Client

NICK = "NickServ"

HELP = [
    "NickServ keeps accounts: an account's name is a nick only its owner may use.",
    "REGISTER <password> [email]  registers your current nick as an account",
    "IDENTIFY [account] <password>  logs you in (LOGIN works too)",
    "SET PASSWORD <new password>  changes the password of the account you are logged in to",
    "GHOST <nick>  disconnects your own other session holding <nick> (a lost connection)",
    "REGAIN [nick]  ghosts whoever holds your account's nick (or <nick>) and takes it",
    "LOGOUT  logs you out (under a nick other than your account's name)",
    "INFO [account]  when an account was registered, and who is using it now",
    "DROP <account> <password>  deletes your account (operators: DROP <account>, any)",
    "Better: let your client log in with SASL PLAIN when it connects.",
]
# Only where it works: with a server password, PASS is that password alone.
PASS_HELP = "Without SASL: send PASS <account>:<password> when connecting"


def tell(core: ServerCore, client: Client, text: str) -> None:
    service_notice(core, client, NICK, text)


@dataclass(frozen=True, slots=True)
class NoticeReplies:
    core: ServerCore
    client: Client

    def fail(self, code: str, account: str, text: str) -> None:
        tell(self.core, self.client, text)

    def success(self, account: str, text: str) -> None:
        tell(self.core, self.client, text)


def nickserv(core: ServerCore, client: Client, text: str) -> None:
    words = text.split()
    command = words[0].upper() if words else "HELP"
    args = words[1:]
    if command == "HELP":
        for line in HELP:
            tell(core, client, line)
        if core.config.password is None:
            tell(core, client, PASS_HELP)
    elif command == "REGISTER":
        if not args:
            tell(core, client, "Syntax: REGISTER <password> [email]")
            return
        register_account(core, client, "*", args[0], NoticeReplies(core, client))
    elif command in ("IDENTIFY", "LOGIN"):
        if not args:
            tell(core, client, "Syntax: IDENTIFY [account] <password>")
            return
        if client.account is not None:
            tell(core, client, f"You are already logged in as {client.account}")
            return
        account, password = (client.nick, args[0]) if len(args) == 1 else (args[0], args[1])
        refusal = "Invalid account name or password"
        if len(args) == 1:  # the nick taken for the account: say so (a fallback nick_?)
            refusal += f" (for account {account}; IDENTIFY <account> <password> for another)"
        check_login(
            core, client, account, password,
            lambda name: tell(core, client, f"You are now logged in as {name}"),
            lambda: tell(core, client, refusal),
            throttled=lambda text: tell(core, client, text),
        )
    elif command == "SET" and args[:1] and args[0].upper() == "PASSWORD":
        if len(args) < 2:
            tell(core, client, "Syntax: SET PASSWORD <new password>")
            return
        change_password(core, client, args[1], NoticeReplies(core, client))
    elif command == "GHOST":
        if not args:
            tell(core, client, "Syntax: GHOST <nick>")
            return
        ghost(core, client, args[0], regain=False)
    elif command in ("REGAIN", "RECOVER"):
        if client.account is None:
            tell(core, client, "You are not logged in")
            return
        ghost(core, client, args[0] if args else client.account, regain=True)
    elif command == "INFO":
        info(core, client, args[0] if args else client.account or client.nick)
    elif command == "LOGOUT":
        if client.account is None:
            tell(core, client, "You are not logged in")
        elif core.config.reserve_account_nicks and core.fold(client.account) == client.folded:
            # Logged out, the user would hold a nick reserved for someone logged in.
            tell(core, client, "Change your nick first: it is reserved for your account")
        else:
            account = client.account
            log_out(core, client)
            tell(core, client, f"You are logged out of {account}")
    elif command == "DROP":
        replies = NoticeReplies(core, client)
        if len(args) >= 2:  # DROP <account> <password>: one's own
            drop_own_account(core, client, args[0], args[1], replies)
        elif "o" not in client.modes:
            tell(core, client, "Syntax: DROP <your account> <password> "
                               "(operators: DROP <account>)")
        elif not args:
            tell(core, client, "Syntax: DROP <account>")
        else:
            drop_account(core, client, args[0], replies)
    else:
        tell(core, client, f"Unknown command {command}: /msg {NICK} HELP")


def info(core: ServerCore, client: Client, name: str) -> None:
    """INFO: the account's name and registration time (from the store), and the nicks
    of its sessions on this server."""
    folded = core.fold(name)
    if folded not in core.account_names:
        tell(core, client, f"{name} is not a registered account")
        return

    def answer(client: Client, found: object) -> None:
        if not isinstance(found, tuple):
            tell(core, client, f"{name} is not a registered account")
            return
        account, created_ms = found
        tell(core, client, f"{account} is registered since {format_time(created_ms / 1000)}")
        nicks = sorted(c.nick for c in core.account_sessions.get(folded, ()) if c.registered)
        if not nicks:
            tell(core, client, "Not logged in on this server now")
            return
        for line in wrap_words(["Logged in now as:", *nicks]):  # many sessions: many lines
            tell(core, client, line)

    core.emit(FindAccount(core.await_answer(client, answer), folded))


def ghost(core: ServerCore, client: Client, nick: str, *, regain: bool) -> None:
    """GHOST: disconnect whoever holds ``nick`` if it is the account's reserved nick or
    the holder is logged in to the same account; REGAIN: then take the nick."""
    if client.account is None:
        tell(core, client, "You are not logged in")
        return
    folded = core.fold(nick)
    holder = core.nicks.get(folded)
    if holder is client:
        tell(core, client, f"You are {client.nick} already" if regain
             else "You cannot ghost yourself")
        return
    mine = core.fold(client.account)
    reserved = folded == mine and core.config.reserve_account_nicks
    same_account = (
        holder is not None and holder.account is not None and core.fold(holder.account) == mine
    )
    if not (reserved or same_account):
        tell(core, client, f"{nick} is neither your account's nick nor in use by "
                           f"a session logged in to {client.account}")
        return
    ghost_uid = core.uid(holder) if holder is not None else ""
    if holder is not None:
        kill(core, holder, f"{NICK}!{NICK}@{core.config.name}", NICK,
             f"GHOST command used by {client.nick}")
        tell(core, client, f"{holder.nick} has been ghosted")
    elif not regain:
        tell(core, client, f"{nick} is not online")
        return
    if not regain:
        return
    if holder is not None and holder.remote is not None:
        # Its node disconnects it: the nick is taken when that node's QUIT arrives.
        core.regaining[folded] = (client, nick, ghost_uid)
        return
    take_nick(core, client, nick, ghost_uid)


def nick_freed(core: ServerCore, folded: str) -> None:
    """A remote user's nick is free here: a REGAIN waiting for it takes it now."""
    waiting = core.regaining.pop(folded, None)
    if waiting is None:
        return
    client, nick, ghost = waiting
    if core.clients.get(client.conn_id) is client and client.closing is None:
        take_nick(core, client, nick, ghost)


def take_nick(core: ServerCore, client: Client, nick: str, ghost: str) -> None:
    """NICK for REGAIN. Clustered, the claim in Redis may still be the ghost's (its
    release and this claim race): the claim takes it over from that uid."""
    if not core.cluster:
        handle_nick(core, client, Message("NICK", [nick]))
        return
    folded = core.fold(nick)
    if core.nicks.get(folded) is None and core.nick_pending.get(folded) in (None, client):
        core.claim_nick(client, nick, folded, ghost)
    else:
        core.reply(client, N.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
