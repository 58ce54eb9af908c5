"""The built-in services (NickServ, ChanServ, MemoServ) as the pseudo-clients users see.

They hold no connection and no ``Client``: WHOIS, WHO, ISON, USERHOST and MONITOR
answer for them from this table, as Atheme's and Ergo's networks do, so that a script
waiting for NickServ to come online before identifying sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core import ServerCore


@dataclass(frozen=True, slots=True)
class PseudoClient:
    nick: str  # also its user name, as in the NOTICEs it sends (NickServ!NickServ@...)
    realname: str

    def mask(self, core: ServerCore) -> str:
        return f"{self.nick}!{self.nick}@{core.config.name}"


# Folded nick -> the service; the handlers behind them are messaging.SERVICES.
PSEUDO_CLIENTS = {
    "nickserv": PseudoClient("NickServ", "Nickname Services"),
    "chanserv": PseudoClient("ChanServ", "Channel Services"),
    "memoserv": PseudoClient("MemoServ", "Memo Services"),
}


def pseudo_client(core: ServerCore, nick: str) -> PseudoClient | None:
    """The service called ``nick`` (in any case), if there is one."""
    return PSEUDO_CLIENTS.get(core.fold(nick))


def service_target(core: ServerCore, target: str) -> str | None:
    """The folded name of the service a message to ``target`` is for, or None.

    Besides the bare nick, ``NickServ@<server name>`` names it: users write that form
    so that their password cannot reach an impostor holding the nick elsewhere.
    """
    nick, at, server = target.partition("@")
    if at and server.lower() != core.config.name.lower():
        return None
    folded = core.fold(nick)
    return folded if folded in PSEUDO_CLIENTS else None
