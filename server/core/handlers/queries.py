"""User queries: WHO, WHOIS, WHOWAS, ISON, USERHOST."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from chat import numerics as N
from chat.masks import mask_matches
from chat.message import Message
from chat.names import is_channel_name

from .channels import can_see

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Channel, Client


WHOIS_CHANNELS_BUDGET = 400  # bytes of a 319/303 list, well inside 512 with the prefix


def _shares_channel(a: Client, b: Client) -> bool:
    return any(folded in b.channels for folded in a.channels)


def _visible(viewer: Client, other: Client) -> bool:
    return "i" not in other.modes or viewer is other or _shares_channel(viewer, other)


def _who_line(core: ServerCore, viewer: Client, other: Client, channel: Channel | None) -> None:
    flags = "G" if other.away is not None else "H"
    if "o" in other.modes:
        flags += "*"
    if channel is not None:
        flags += channel.prefix_of(other, "multi-prefix" in viewer.caps)
    core.reply(
        viewer,
        N.RPL_WHOREPLY,
        channel.name if channel is not None else "*",
        other.user,
        other.host,
        core.server_of(other),
        other.nick,
        flags,
        f"{0 if other.remote is None else 1} {other.realname}",  # hops: a node is one away
    )


def handle_who(core: ServerCore, client: Client, msg: Message) -> None:
    mask = msg.params[0] if msg.params and msg.params[0] else "*"
    opers_only = len(msg.params) > 1 and "o" in msg.params[1]
    if is_channel_name(mask):
        channel = core.channels.get(core.fold(mask))
        if channel is not None and can_see(channel, client):
            member = client in channel.members
            for other in channel.members:
                if opers_only and "o" not in other.modes:
                    continue
                if member or "i" not in other.modes:
                    _who_line(core, client, other, channel)
    elif (exact := core.nicks.get(core.fold(mask))) is not None and exact.registered:
        # "An exact nickname, in which case a single user is returned": +i hides a user from
        # mask patterns, not from a lookup by nick (WHOIS shows them all the same).
        if not opers_only or "o" in exact.modes:
            _who_line(core, client, exact, None)
    else:
        for other in list(core.nicks.values()):
            if not other.registered or not _visible(client, other):
                continue
            if opers_only and "o" not in other.modes:
                continue
            if (
                mask in ("*", "0")
                or mask_matches(mask, other.nick, core.fold)
                or mask_matches(mask, other.mask, core.fold)
            ):
                _who_line(core, client, other, None)
    core.reply(client, N.RPL_ENDOFWHO, mask, "End of WHO list")


def handle_whois(core: ServerCore, client: Client, msg: Message) -> None:
    nick = (msg.params[1] if len(msg.params) > 1 else msg.params[0]).split(",")[0]
    if not nick:
        core.reply(client, N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    other = core.nicks.get(core.fold(nick))
    if other is None or not other.registered:
        core.reply(client, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        core.reply(client, N.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")
        return
    core.reply(client, N.RPL_WHOISUSER, other.nick, other.user, other.host, "*", other.realname)
    multi = "multi-prefix" in client.caps
    chans = [
        ch.prefix_of(other, multi) + ch.name
        for ch in other.channels.values()
        if "s" not in ch.modes or client in ch.members
    ]
    # Up to max_channels names of up to channellen: several 319 lines, as NAMES does 353.
    for line in word_lines(chans, WHOIS_CHANNELS_BUDGET):
        core.reply(client, N.RPL_WHOISCHANNELS, other.nick, line)
    core.reply(client, N.RPL_WHOISSERVER, other.nick, core.server_of(other), core.config.network)
    if "o" in other.modes:
        core.reply(client, N.RPL_WHOISOPERATOR, other.nick, "is an IRC operator")
    if other.away is not None:
        core.reply(client, N.RPL_AWAY, other.nick, other.away)
    if other.secure:
        core.reply(client, N.RPL_WHOISSECURE, other.nick, "is using a secure connection")
    if client is other or "o" in client.modes:
        core.reply(
            client, N.RPL_WHOISHOST, other.nick, f"is connecting from *@{other.ip} {other.ip}"
        )
    idle = int(core.clock() - other.last_speak)
    core.reply(
        client,
        N.RPL_WHOISIDLE,
        other.nick,
        str(max(idle, 0)),
        str(int(other.connected_at)),
        "seconds idle, signon time",
    )
    core.reply(client, N.RPL_ENDOFWHOIS, other.nick, "End of /WHOIS list")


def handle_whowas(core: ServerCore, client: Client, msg: Message) -> None:
    # WHOWAS <nick>[,<nick>...] [<count> [<server>]]: the first nick only, as WHOIS.
    nick = msg.params[0].split(",")[0]
    if not nick:
        core.reply(client, N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    count = msg.params[1] if len(msg.params) > 1 else ""
    # A count that is missing, not a number or not positive asks for every entry.
    limit = int(count) if count.isdigit() and len(count) < 6 else 0
    entries = core.whowas.lookup(core.fold(nick), limit)
    if not entries:
        core.reply(client, N.ERR_WASNOSUCHNICK, nick, "There was no such nickname")
    for entry in entries:
        core.reply(client, N.RPL_WHOWASUSER, entry.nick, entry.user, entry.host, "*",
                   entry.realname)  # fmt: skip
        left = datetime.fromtimestamp(entry.left_at, UTC).strftime("%a %b %d %H:%M:%S %Y")
        core.reply(client, N.RPL_WHOISSERVER, entry.nick, core.config.name, left)
    core.reply(client, N.RPL_ENDOFWHOWAS, nick, "End of WHOWAS")


def handle_ison(core: ServerCore, client: Client, msg: Message) -> None:
    found: list[str] = []
    size = 0
    for param in msg.params:
        for nick in param.split():
            other = core.nicks.get(core.fold(nick))
            if other is not None and other.registered:
                # One reply line: stop before it would overflow (a nick repeated 80 times).
                if size + len(other.nick) + 1 > WHOIS_CHANNELS_BUDGET:
                    break
                found.append(other.nick)
                size += len(other.nick) + 1
    core.reply(client, N.RPL_ISON, " ".join(found))


def word_lines(words: list[str], budget: int, sep: str = " ") -> list[str]:
    """``words`` joined by ``sep`` into lines of at most ``budget`` bytes each."""
    lines: list[str] = []
    line: list[str] = []
    size = 0
    for word in words:
        if line and size + len(word.encode()) + 1 > budget:
            lines.append(sep.join(line))
            line, size = [], 0
        line.append(word)
        size += len(word.encode()) + 1
    if line:
        lines.append(sep.join(line))
    return lines


def handle_userhost(core: ServerCore, client: Client, msg: Message) -> None:
    replies: list[str] = []
    for nick in msg.params[:5]:
        other = core.nicks.get(core.fold(nick))
        if other is None or not other.registered:
            continue
        oper = "*" if "o" in other.modes else ""
        away = "-" if other.away is not None else "+"
        replies.append(f"{other.nick}{oper}={away}{other.user}@{other.host}")
    core.reply(client, N.RPL_USERHOST, " ".join(replies))
