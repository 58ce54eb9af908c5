"""Server queries: MOTD, LUSERS, VERSION, TIME, ADMIN, INFO, STATS, LINKS."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from chat import numerics as N
from chat.masks import compile_mask
from chat.message import Message
from server import VERSION

from .bans import stats_bans
from .registration import send_isupport, send_lusers, send_motd

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Client

RPL_STATSCOMMANDS = "212"
RPL_ENDOFSTATS = "219"
RPL_STATSUPTIME = "242"
RPL_ADMINME = "256"
RPL_ADMINLOC1 = "257"
RPL_ADMINLOC2 = "258"
RPL_ADMINEMAIL = "259"
RPL_VERSION = "351"
RPL_INFO = "371"
RPL_ENDOFINFO = "374"
RPL_TIME = "391"
ERR_NOSUCHSERVER = "402"

INFO_LINES = (
    f"{VERSION}: an IRC-compatible chat server written in Python on asyncio.",
    "Sans-IO protocol core; asyncio, uvloop and selectors transports.",
    "History: SQLite store of record with a Redis cache-aside layer.",
)


def other_server(core: ServerCore, client: Client, name: str) -> bool:
    """True (after replying 402) when ``name``, a server name or mask, matches no server.

    No name means this server. Another cluster node counts as known: WHOIS's answer is
    about a user, whom every node knows, so this one answers it (as LINKS does).
    """
    if not name or _server_matches(core, name, linked_servers(core)):
        return False
    core.reply(client, ERR_NOSUCHSERVER, name, "No such server")
    return True


def not_this_server(core: ServerCore, client: Client, name: str) -> bool:
    """True (after replying 402) when ``name``, a server name or mask, does not name
    this server (no name does). The MOTD, STATS, clock and version asked for are a
    server's own, and this one does not forward: another cluster node's answer given
    here under its name would be this node's. So another node's name gets 402, as a
    server that does not forward gives it (solanum's and ngIRCd's answer to a server
    they cannot reach); a mask matching this server's name is this server, as with
    solanum's hunt_server, whatever else it matches."""
    if not name or _server_matches(core, name, [(core.config.name, 0)]):
        return False
    text = "No such server"
    if _server_matches(core, name, linked_servers(core)):  # LINKS lists it: say why
        text = "Not answered here: another server of this network"
    core.reply(client, ERR_NOSUCHSERVER, name, text)
    return True


def _server_matches(core: ServerCore, mask: str, servers: list[tuple[str, int]]) -> bool:
    """Whether a client's server ``mask`` matches one of ``servers``: compiled here, not
    through the shared mask cache, which a stream of made-up masks would churn."""
    glob = compile_mask(mask, core.fold)
    return any(glob.matches(core.fold(name)) for name, _ in servers)


def _not_this_server_at(
    core: ServerCore, client: Client, msg: Message, at: int = 0
) -> bool:
    """``not_this_server`` for the target in ``msg.params[at]`` (when there is one)."""
    return not_this_server(core, client, msg.params[at] if len(msg.params) > at else "")


def handle_motd(core: ServerCore, client: Client, msg: Message) -> None:
    """MOTD [<target>]."""
    if _not_this_server_at(core, client, msg):
        return
    send_motd(core, client)


def handle_lusers(core: ServerCore, client: Client, msg: Message) -> None:
    """LUSERS [<mask> [<target>]]: the mask is ignored (the counts are the network's)."""
    if _not_this_server_at(core, client, msg, 1):
        return
    send_lusers(core, client)


def handle_version(core: ServerCore, client: Client, msg: Message) -> None:
    if _not_this_server_at(core, client, msg):
        return
    core.reply(client, RPL_VERSION, VERSION, core.config.name, "IRCv3")
    send_isupport(core, client)


def handle_time(core: ServerCore, client: Client, msg: Message) -> None:
    if _not_this_server_at(core, client, msg):
        return
    human = datetime.fromtimestamp(core.clock(), UTC).strftime("%A %B %d %Y -- %H:%M:%S +00:00")
    # Only the text, as solanum, InspIRCd and Ergo send it: clients show every param,
    # and ircu's <timestamp> <offset> came out as raw numbers in irssi and WeeChat.
    core.reply(client, RPL_TIME, core.config.name, human)


def handle_admin(core: ServerCore, client: Client, msg: Message) -> None:
    if _not_this_server_at(core, client, msg):
        return
    cfg = core.config
    core.reply(client, RPL_ADMINME, cfg.name, "Administrative info")
    core.reply(client, RPL_ADMINLOC1, cfg.admin_location)
    core.reply(client, RPL_ADMINLOC2, cfg.network)
    core.reply(client, RPL_ADMINEMAIL, cfg.admin_email)


def handle_info(core: ServerCore, client: Client, msg: Message) -> None:
    if _not_this_server_at(core, client, msg):
        return
    for line in INFO_LINES:
        core.reply(client, RPL_INFO, line)
    core.reply(client, RPL_ENDOFINFO, "End of INFO list")


def handle_stats(core: ServerCore, client: Client, msg: Message) -> None:
    """STATS <query> [<target>]."""
    if _not_this_server_at(core, client, msg, 1):
        return
    letter = msg.params[0][:1]
    if letter == "u":
        up = int(core.clock() - core.created)
        days, rest = divmod(up, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        core.reply(
            client, RPL_STATSUPTIME, f"Server Up {days} days {hours}:{minutes:02d}:{seconds:02d}"
        )
    elif letter in "kKdD":
        stats_bans(core, client, letter.upper())
    elif letter == "m":
        for command, count in sorted(core.command_counts.items()):
            core.reply(client, RPL_STATSCOMMANDS, command, str(count))
    core.reply(client, RPL_ENDOFSTATS, letter, "End of /STATS report")


def linked_servers(core: ServerCore) -> list[tuple[str, int]]:
    """(name, hop count): this server, then the other cluster nodes it knows of."""
    servers = [(core.config.name, 0)]
    if core.cluster:
        from server.cluster.apply import other_servers

        servers += [(name, 1) for name in other_servers(core)]  # all one hop: the bus
    return servers


def server_description(core: ServerCore) -> str:
    """The server's description (``--description``, else the network's name)."""
    return core.config.description or core.config.network


def handle_links(core: ServerCore, client: Client, msg: Message) -> None:
    """LINKS [[<remote server>] <server mask>]: 364 per matching server, then 365.

    Every node sees the same cluster, so a <remote server> this node knows of is
    answered here (no forwarding); one it does not know gets 402.
    """
    servers = linked_servers(core)
    params = msg.params[:2]
    if len(params) == 2 and params[0]:
        remote = params[0]
        if not _server_matches(core, remote, servers):
            core.reply(client, ERR_NOSUCHSERVER, remote, "No such server")
            return
    mask = params[-1] if params else ""
    info = server_description(core)
    here = core.config.name
    glob = compile_mask(mask, core.fold) if mask else None
    for name, hops in servers:
        if glob is None or glob.matches(core.fold(name)):
            # "<server> <the server it links through>", as solanum and ergo send it (and
            # irctest expects); the other nodes are linked to this one over the bus.
            core.reply(client, N.RPL_LINKS, name, here, f"{hops} {info}")
    core.reply(client, N.RPL_ENDOFLINKS, mask or "*", "End of /LINKS list")
