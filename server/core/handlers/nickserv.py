"""NickServ, where irssi and WeeChat users look for it: ``/msg NickServ REGISTER``,
``IDENTIFY`` and ``HELP`` (or the NICKSERV and NS commands), on the same accounts as
REGISTER and SASL. Answers are notices from ``NickServ``; nobody can take that nick."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat.message import Message

from .accounts import (
    change_password,
    check_login,
    drop_account,
    drop_own_account,
    log_out,
    register_account,
)

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Client

NICK = "NickServ"

HELP = [
    "NickServ keeps accounts: an account's name is a nick only its owner may use.",
    "REGISTER <password> [email]  registers your current nick as an account",
    "IDENTIFY [account] <password>  logs you in (LOGIN works too)",
    "SET PASSWORD <new password>  changes the password of the account you are logged in to",
    "LOGOUT  logs you out (under a nick other than your account's name)",
    "DROP <account> <password>  deletes your account (operators: DROP <account>, any)",
    "Better: let your client log in with SASL PLAIN when it connects.",
]


def tell(core: ServerCore, client: Client, text: str) -> None:
    source = f"{NICK}!{NICK}@{core.config.name}"
    core.send(client, Message("NOTICE", [client.nick, text], source))


@dataclass(frozen=True, slots=True)
class NoticeReplies:
    core: ServerCore
    client: Client

    def fail(self, code: str, account: str, text: str) -> None:
        tell(self.core, self.client, text)

    def success(self, account: str, text: str) -> None:
        tell(self.core, self.client, text)


def handle_nickserv(core: ServerCore, client: Client, msg: Message) -> None:
    """``NICKSERV <command> ...`` and ``NS ...``: as a message to NickServ."""
    nickserv(core, client, " ".join(msg.params))


def nickserv(core: ServerCore, client: Client, text: str) -> None:
    words = text.split()
    command = words[0].upper() if words else "HELP"
    args = words[1:]
    if command == "HELP":
        for line in HELP:
            tell(core, client, line)
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
        check_login(
            core, client, account, password,
            lambda name: tell(core, client, f"You are now logged in as {name}"),
            lambda: tell(core, client, "Invalid account name or password"),
        )
    elif command == "SET" and args[:1] and args[0].upper() == "PASSWORD":
        if len(args) < 2:
            tell(core, client, "Syntax: SET PASSWORD <new password>")
            return
        change_password(core, client, args[1], NoticeReplies(core, client))
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
