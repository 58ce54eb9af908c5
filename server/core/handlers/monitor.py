"""MONITOR (IRCv3 monitor): a client's list of nicks to hear about as they come and go."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat import numerics as N
from chat.message import Message
from chat.names import is_valid_nick

from ..services import pseudo_client
from .queries import WHOIS_CHANNELS_BUDGET, word_lines

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Client


def handle_monitor(core: ServerCore, client: Client, msg: Message) -> None:
    op = msg.params[0].upper()
    if op in ("+", "-"):
        if len(msg.params) < 2:
            core.reply(client, N.ERR_NEEDMOREPARAMS, "MONITOR", "Not enough parameters")
            return
        targets = [t for t in msg.params[1].split(",") if t]
        if op == "+":
            _add(core, client, targets)
        else:
            for target in targets:
                core.monitor.remove(client, core.fold(target))
    elif op == "C":
        core.monitor.clear(client)
    elif op == "L":
        listed = list((client.monitoring or {}).values())
        for line in word_lines(listed, WHOIS_CHANNELS_BUDGET, ","):
            core.reply(client, N.RPL_MONLIST, line)
        core.reply(client, N.RPL_ENDOFMONLIST, "End of MONITOR list")
    elif op == "S":
        _status(core, client, list((client.monitoring or {}).values()))
    # Any other subcommand: the spec defines none, and servers ignore them.


def _add(core: ServerCore, client: Client, targets: list[str]) -> None:
    limit = core.config.monitor_limit
    added: list[str] = []
    full: list[str] = []
    seen: set[str] = set()
    for target in targets:
        if not is_valid_nick(target, core.config.nicklen):
            continue  # a channel or garbage: nobody can ever hold it
        folded = core.fold(target)
        if folded in seen:
            continue  # "mnbo,MNBo" is one nick: one entry, one 730/731
        seen.add(folded)
        monitoring = client.monitoring or {}
        if folded not in monitoring and len(monitoring) >= limit:
            full.append(target)
            continue
        core.monitor.add(client, folded, target)
        added.append(target)
    if full:
        core.reply(client, N.ERR_MONLISTFULL, str(limit), ",".join(full)[:300],
                   "Monitor list is full")  # fmt: skip
    _status(core, client, added)


def _status(core: ServerCore, client: Client, targets: list[str]) -> None:
    """730 for the targets someone holds (as nick!user@host), 731 for the others."""
    online: list[str] = []
    offline: list[str] = []
    for target in targets:
        if (service := pseudo_client(core, target)) is not None:
            online.append(service.mask(core))  # always online: nothing to tell later
            continue
        other = core.nicks.get(core.fold(target))
        if other is not None and other.registered:
            online.append(other.mask)
        else:
            offline.append(target)
    for line in word_lines(online, WHOIS_CHANNELS_BUDGET, ","):
        core.reply(client, N.RPL_MONONLINE, line)
    for line in word_lines(offline, WHOIS_CHANNELS_BUDGET, ","):
        core.reply(client, N.RPL_MONOFFLINE, line)
