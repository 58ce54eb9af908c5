"""User queries: WHO, WHOIS, WHOWAS, ISON, USERHOST."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from chat import numerics as N
from chat.digits import is_digits
from chat.masks import compile_mask
from chat.message import Message
from chat.names import is_channel_name

from ..listing import compile_cost
from ..services import PSEUDO_CLIENTS, PseudoClient, pseudo_client
from ..state import shown_address
from .channels import can_see
from .server_info import other_server, server_description

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Channel, Client


WHOIS_CHANNELS_BUDGET = 400  # bytes of a 319/303 list, well inside 512 with the prefix


def _shares_channel(a: Client, b: Client) -> bool:
    return any(folded in b.channels for folded in a.channels)


def _visible(viewer: Client, other: Client) -> bool:
    return "i" not in other.modes or viewer is other or _shares_channel(viewer, other)


# WHOX (ISUPPORT WHOX): `WHO <mask> %<fields>[,<token>]` answers with one 354 per user,
# holding the asked fields in this order whatever order they were asked in.
WHOX_FIELDS = "tcuihsnfdlaor"
HIDDEN_IP = "255.255.255.255"  # WHOX's "i" for an address the asker may not see


@dataclass(frozen=True, slots=True)
class Whox:
    fields: str  # the asked letters of WHOX_FIELDS, in that order
    token: str


def parse_who_options(arg: str) -> tuple[str, Whox | None]:
    """``o%cnf,42`` -> ("o", Whox("cnf", "42")): filter flags, then the WHOX request."""
    flags, percent, rest = arg.partition("%")
    if not percent:
        return flags, None
    letters, _, token = rest.partition(",")
    fields = "".join(f for f in WHOX_FIELDS if f in letters)
    if not fields:  # "%" alone or unknown letters: a 354 with nothing in it helps nobody
        return flags, None
    valid = is_digits(token) and len(token) <= 3
    return flags, Whox(fields, token if valid else "0")


def _who_line(
    core: ServerCore, viewer: Client, other: Client, channel: Channel | None,
    whox: Whox | None = None,
) -> None:
    flags = "G" if other.away is not None else "H"
    if "o" in other.modes:
        flags += "*"
    if "B" in other.modes:
        flags += "B"
    if channel is not None:
        flags += channel.prefix_of(other, "multi-prefix" in viewer.caps)
    name = channel.name if channel is not None else "*"
    hops = 0 if other.remote is None else 1  # a node is one away
    if whox is None:
        core.reply(viewer, N.RPL_WHOREPLY, name, other.user, other.host, core.server_of(other),
                   other.nick, flags, f"{hops} {other.realname}")
        return
    core.reply(viewer, N.RPL_WHOSPCRPL, *[
        _whox_field(core, viewer, other, f, whox.token, name, flags, hops) for f in whox.fields
    ])


def _whox_field(
    core: ServerCore, viewer: Client, other: Client, field: str, token: str, channel: str,
    flags: str, hops: int,
) -> str:
    if field == "t":
        return token
    if field == "c":
        return channel
    if field == "u":
        return other.user
    if field == "i":
        # Cloaks hide addresses from users; operators and the user themselves see them.
        shown = other.remote is None and (
            not core.config.cloak_hosts or viewer is other or "o" in viewer.modes
        )
        return shown_address(other.ip) if shown else HIDDEN_IP
    if field == "h":
        return other.host
    if field == "s":
        return core.server_of(other)
    if field == "n":
        return other.nick
    if field == "f":
        return flags
    if field == "d":
        return str(hops)
    if field == "l":
        return str(max(int(core.clock() - other.last_speak), 0)) if other.remote is None else "0"
    if field == "a":
        return other.account or "0"  # 0: not logged in
    if field == "o":
        return "n/a"
    return other.realname  # "r", always the last field


def _service_who_line(
    core: ServerCore, viewer: Client, service: PseudoClient, whox: Whox | None
) -> None:
    # "H" alone, as Ergo: a service is here and never away, and no IRC operator ("*").
    name = core.config.name
    if whox is None:
        core.reply(viewer, N.RPL_WHOREPLY, "*", service.nick, name, name, service.nick, "H",
                   f"0 {service.realname}")
        return
    values = {
        "t": whox.token, "c": "*", "u": service.nick, "i": HIDDEN_IP, "h": name, "s": name,
        "n": service.nick, "f": "H", "d": "0", "l": "0", "a": "0", "o": "n/a",
        "r": service.realname,
    }
    core.reply(viewer, N.RPL_WHOSPCRPL, *[values[f] for f in whox.fields])


# Scan-budget matches a WHO reply line costs: a 354 of every WHOX field takes about 8 µs
# of the loop, as many as 8-16 glob matches, so listing a member is charged as 8 matches.
WHO_LINE_COST = 8


def handle_who(core: ServerCore, client: Client, msg: Message) -> None:
    mask = msg.params[0] if msg.params and msg.params[0] else "*"
    filters, whox = parse_who_options(msg.params[1]) if len(msg.params) > 1 else ("", None)
    opers_only = "o" in filters
    if is_channel_name(mask):
        channel = core.channels.get(core.fold(mask))
        if channel is not None and can_see(channel, client):
            listed = _channel_who(client, channel, opers_only)
            if not _may_list(core, client, mask, len(listed)):
                return
            for other in listed:
                _who_line(core, client, other, channel, whox)
    elif (service := pseudo_client(core, mask)) is not None:
        if not opers_only:
            _service_who_line(core, client, service, whox)
    elif (exact := core.nicks.get(core.fold(mask))) is not None and exact.registered:
        # "An exact nickname, in which case a single user is returned": +i hides a user from
        # mask patterns, not from a lookup by nick (WHOIS shows them all the same).
        if not opers_only or "o" in exact.modes:
            _who_line(core, client, exact, None, whox)
    elif not _who_mask(core, client, mask, opers_only, whox):
        return
    core.reply(client, N.RPL_ENDOFWHO, mask, "End of WHO list")


def _channel_who(client: Client, channel: Channel, opers_only: bool) -> list[Client]:
    """The members ``WHO #channel`` lists to ``client``: +i ones only to a member."""
    member = client in channel.members
    return [
        other for other in channel.members
        if (not opers_only or "o" in other.modes) and (member or "i" not in other.modes)
    ]


def _may_list(core: ServerCore, client: Client, mask: str, lines: int) -> bool:
    """Charge ``lines`` reply lines to the host's scan budget; past it, 263 and the end
    of the list (False), as a WHO * over budget."""
    if lines <= 1 or core.may_scan(client, "WHO", lines * WHO_LINE_COST):
        return True
    core.reply(client, N.RPL_ENDOFWHO, mask, "End of WHO list")
    return False


def _who_mask(
    core: ServerCore, client: Client, mask: str, opers_only: bool, whox: Whox | None
) -> bool:
    """``WHO *`` or a mask over every user: paid for the matches before they are made,
    then for the lines; False when refused (the end of the list was sent)."""
    everyone = mask in ("*", "0")
    cost = len(core.nicks) * (1 if everyone else 3) + compile_cost(mask)
    if not core.may_scan(client, "WHO", cost):
        core.reply(client, N.RPL_ENDOFWHO, mask, "End of WHO list")
        return False
    glob = compile_mask(mask, core.fold)
    fold = core.fold
    listed = [
        other for other in core.nicks.values()
        if other.registered and _visible(client, other)
        and (not opers_only or "o" in other.modes)
        and (everyone or glob.matches(other.folded) or glob.matches(fold(other.mask)))
    ]
    if not _may_list(core, client, mask, len(listed)):
        return False
    for other in listed:
        _who_line(core, client, other, None, whox)
    if not everyone and not opers_only:
        # A pattern naming them ("*Serv*"), not "everyone": like users hidden from a
        # bare WHO * on the big networks, they are there when asked for.
        for service in PSEUDO_CLIENTS.values():
            if glob.matches(fold(service.nick)) or glob.matches(fold(service.mask(core))):
                _service_who_line(core, client, service, whox)
    return True


def _no_such_target(core: ServerCore, client: Client, msg: Message) -> bool:
    """WHOIS <target> <nick>: True (after 402) when <target> names no user and no server.

    A nick as <target> asks that user's server (``WHOIS nick nick``, irssi's /wii):
    every user is answered here, as every server of a cluster is.
    """
    if len(msg.params) < 2:
        return False
    target = msg.params[0]
    folded = core.fold(target)
    if folded == core.fold(msg.params[1].split(",")[0]) or folded in core.nicks:
        return False
    return pseudo_client(core, target) is None and other_server(core, client, target)


def handle_whois(core: ServerCore, client: Client, msg: Message) -> None:
    if _no_such_target(core, client, msg):
        return
    nick = (msg.params[1] if len(msg.params) > 1 else msg.params[0]).split(",")[0]
    if not nick:
        core.reply(client, N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    if (service := pseudo_client(core, nick)) is not None:
        _whois_service(core, client, service)
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
    core.reply(client, N.RPL_WHOISSERVER, other.nick, core.server_of(other),
               server_description(core))
    if "o" in other.modes:
        core.reply(client, N.RPL_WHOISOPERATOR, other.nick, "is an IRC operator")
    if "B" in other.modes:
        core.reply(client, N.RPL_WHOISBOT, other.nick, f"is a bot on {core.config.network}")
    if other.account is not None:
        core.reply(client, N.RPL_WHOISACCOUNT, other.nick, other.account, "is logged in as")
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


def _whois_service(core: ServerCore, client: Client, service: PseudoClient) -> None:
    nick = service.nick
    core.reply(client, N.RPL_WHOISUSER, nick, nick, core.config.name, "*", service.realname)
    core.reply(client, N.RPL_WHOISSERVER, nick, core.config.name, server_description(core))
    # 313 with this text, as Ergo and Anope send: clients show it as is, and a service
    # is not an operator a user could ask for help.
    core.reply(client, N.RPL_WHOISOPERATOR, nick, "is a Network Service")
    core.reply(client, N.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")


def handle_whowas(core: ServerCore, client: Client, msg: Message) -> None:
    # WHOWAS <nick>[,<nick>...] [<count> [<server>]]: the first nick only, as WHOIS.
    nick = msg.params[0].split(",")[0]
    if not nick:
        core.reply(client, N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    count = msg.params[1] if len(msg.params) > 1 else ""
    # A count that is missing, not a number or not positive asks for every entry.
    limit = int(count) if is_digits(count) and len(count) < 6 else 0
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
            if (service := pseudo_client(core, nick)) is not None:
                shown = service.nick
            elif (other := core.nicks.get(core.fold(nick))) is not None and other.registered:
                shown = other.nick
            else:
                continue
            # One reply line: stop before it would overflow (a nick repeated 80 times).
            if size + len(shown) + 1 > WHOIS_CHANNELS_BUDGET:
                break
            found.append(shown)
            size += len(shown) + 1
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
        if (service := pseudo_client(core, nick)) is not None:
            replies.append(f"{service.nick}=+{service.nick}@{core.config.name}")
            continue
        other = core.nicks.get(core.fold(nick))
        if other is None or not other.registered:
            continue
        oper = "*" if "o" in other.modes else ""
        away = "-" if other.away is not None else "+"
        replies.append(f"{other.nick}{oper}={away}{other.user}@{other.host}")
    core.reply(client, N.RPL_USERHOST, " ".join(replies))
