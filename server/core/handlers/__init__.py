"""Command table: name -> (handler, minimum number of parameters)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import history
from . import (
    accounts,
    bans,
    batch,
    callerid,
    channels,
    help,
    messaging,
    modes,
    monitor,
    operator,
    queries,
    readmarker,
    redact,
    registration,
    search,
    server_info,
)

if TYPE_CHECKING:
    from ..core import Handler

COMMANDS: dict[str, tuple[Handler, int]] = {
    "CAP": (registration.handle_cap, 1),
    "PASS": (registration.handle_pass, 0),  # 462 once registered, whatever the params
    "NICK": (registration.handle_nick, 0),
    "USER": (registration.handle_user, 0),  # 462 once registered, whatever the params
    "PING": (registration.handle_ping, 0),
    "PONG": (registration.handle_pong, 0),
    "QUIT": (registration.handle_quit, 0),
    "MOTD": (server_info.handle_motd, 0),
    "LUSERS": (server_info.handle_lusers, 0),
    "JOIN": (channels.handle_join, 1),
    "PART": (channels.handle_part, 1),
    "TOPIC": (channels.handle_topic, 1),
    "NAMES": (channels.handle_names, 0),
    "LIST": (channels.handle_list, 0),
    "KICK": (channels.handle_kick, 2),
    "INVITE": (channels.handle_invite, 0),
    "KNOCK": (channels.handle_knock, 1),
    "MODE": (modes.handle_mode, 1),
    "PRIVMSG": (messaging.handle_privmsg, 0),
    "NOTICE": (messaging.handle_notice, 0),
    "TAGMSG": (messaging.handle_tagmsg, 0),
    "BATCH": (batch.handle_batch, 1),
    "AWAY": (messaging.handle_away, 0),
    "SETNAME": (messaging.handle_setname, 1),
    "WHO": (queries.handle_who, 0),
    "WHOIS": (queries.handle_whois, 1),
    "WHOWAS": (queries.handle_whowas, 1),
    "MONITOR": (monitor.handle_monitor, 1),
    "ACCEPT": (callerid.handle_accept, 1),
    "ISON": (queries.handle_ison, 1),
    "USERHOST": (queries.handle_userhost, 1),
    "OPER": (operator.handle_oper, 2),
    "AUTHENTICATE": (accounts.handle_authenticate, 1),
    "REGISTER": (accounts.handle_register, 3),
    "VERIFY": (accounts.handle_verify, 2),
    # The services, also as commands: the rest of the line is what a PRIVMSG would say.
    **{name: (messaging.handle_service, 0) for name in messaging.SERVICE_COMMANDS},
    "MARKREAD": (readmarker.handle_markread, 0),
    "KILL": (operator.handle_kill, 1),
    "REHASH": (operator.handle_rehash, 0),
    "WALLOPS": (operator.handle_wallops, 1),
    "SAMODE": (operator.handle_samode, 2),
    "KLINE": (bans.handle_kline, 1),
    "UNKLINE": (bans.handle_unkline, 1),
    "DLINE": (bans.handle_dline, 1),
    "UNDLINE": (bans.handle_undline, 1),
    "CHATHISTORY": (history.handle_chathistory, 1),
    "REDACT": (redact.handle_redact, 2),
    "SEARCH": (search.handle_search, 1),
    "VERSION": (server_info.handle_version, 0),
    "TIME": (server_info.handle_time, 0),
    "ADMIN": (server_info.handle_admin, 0),
    "INFO": (server_info.handle_info, 0),
    "STATS": (server_info.handle_stats, 1),  # Modern IRC: the query letter is required
    "LINKS": (server_info.handle_links, 0),
    "HELP": (help.handle_help, 0),
    "HELPOP": (help.handle_help, 0),
}
