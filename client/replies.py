"""Replies to the queries a user makes (WHOIS, WHOWAS, WHO, LIST, ban lists, HELP):
which numerics they are, and friendlier text for the common ones (also for the
InspIRCd list mode refusals); and the text for a DCC offer, which we do not take."""

from __future__ import annotations

import contextlib
import time

from chat import numerics as N
from chat.digits import is_digits

from .formatting import plain

# Replies to queries the user made: shown in the current buffer.
QUERY_NUMERICS = frozenset(
    {
        N.RPL_WHOISUSER, N.RPL_WHOISSERVER, N.RPL_WHOISOPERATOR, N.RPL_WHOISIDLE,
        N.RPL_ENDOFWHOIS, N.RPL_WHOISCHANNELS, N.RPL_WHOISHOST, N.RPL_WHOISMODES,
        N.RPL_WHOISSECURE, "307", "320", "330", "338", "276", "378",
        N.RPL_LISTSTART, N.RPL_LISTEND, N.RPL_WHOREPLY, N.RPL_ENDOFWHO,
        N.RPL_BANLIST, N.RPL_ENDOFBANLIST, N.RPL_EXCEPTLIST, N.RPL_ENDOFEXCEPTLIST,
        N.RPL_INVITELIST, N.RPL_ENDOFINVITELIST, N.RPL_QUIETLIST, N.RPL_ENDOFQUIETLIST,
        N.RPL_USERHOST, N.RPL_ISON,
        N.RPL_WHOWASUSER, N.RPL_ENDOFWHOWAS,
        N.RPL_HELPSTART, N.RPL_HELPTXT, N.RPL_ENDOFHELP,
    }
)  # fmt: skip

# ...except LIST's, in the server buffer (as irssi's status window, WeeChat's server
# buffer): a big network's list is thousands of lines, not the channel's nor its log's.
LIST_NUMERICS = frozenset({N.RPL_LISTSTART, N.RPL_LIST, N.RPL_LISTEND})

WHOWAS_SERVER = (4, "{1} left {2} at {3}")

# Friendlier text for common query replies: (minimum params, format over params).
QUERY_FORMATS: dict[str, tuple[int, str]] = {
    # HELP (/quote help): the text without the subject each line repeats.
    N.RPL_HELPSTART: (3, "{2}"),
    N.RPL_HELPTXT: (3, "{2}"),
    N.RPL_ENDOFHELP: (3, "{2}"),
    N.RPL_WHOISUSER: (6, "{1} is {2}@{3} ({5})"),
    N.RPL_WHOISSERVER: (4, "{1} is connected to {2} ({3})"),
    N.RPL_WHOWASUSER: (6, "{1} was {2}@{3} ({5})"),
    N.RPL_ENDOFWHOWAS: (2, "End of WHOWAS for {1}"),
    N.RPL_WHOISOPERATOR: (2, "{1} is an IRC operator"),
    N.RPL_WHOISIDLE: (4, "{1} has been idle for {2} s"),  # (whois_idle found no number)
    N.RPL_WHOISCHANNELS: (3, "{1} is on {2}"),
    N.RPL_ENDOFWHOIS: (2, "End of WHOIS for {1}"),
    "330": (3, "{1} is logged in as {2}"),
    N.RPL_BANLIST: (4, "{1}: ban {2} (set by {3})"),
    N.RPL_ENDOFBANLIST: (2, "End of {1} ban list"),
    N.RPL_EXCEPTLIST: (4, "{1}: ban exception {2} (set by {3})"),
    N.RPL_ENDOFEXCEPTLIST: (2, "End of {1} exception list"),
    N.RPL_INVITELIST: (4, "{1}: invite exception {2} (set by {3})"),
    N.RPL_ENDOFINVITELIST: (2, "End of {1} invite list"),
    N.RPL_QUIETLIST: (5, "{1}: quiet {3} (set by {4})"),  # <chan> q <mask> <setter> <time>
    N.RPL_ENDOFQUIETLIST: (2, "End of {1} quiet list"),
    N.RPL_ENDOFWHO: (2, "End of WHO for {1}"),
    N.RPL_LISTSTART: (1, "Channels (users) topic:"),
    N.RPL_LISTEND: (1, "End of channel list"),
}


def query_text(code: str, params: list[str], after_whowas: bool) -> str:
    """The text to show for query reply ``code``; ``after_whowas``: the reply before it
    was a 314 (then a 312 says when they left, not where they are)."""
    template = QUERY_FORMATS.get(code)
    if code == N.RPL_WHOISSERVER and after_whowas:
        template = WHOWAS_SERVER
    if code == N.RPL_WHOISIDLE and (idle := whois_idle(params)) is not None:
        return idle
    if template is not None and len(params) >= template[0]:
        return template[1].format(*params)
    if code == N.RPL_WHOREPLY and len(params) >= 8:
        # <me> <channel> <user> <host> <server> <nick> <flags> :<hops> <realname>
        channel, user, host, _server, nick, flags = params[1:7]
        realname = params[7].partition(" ")[2]
        return f"{channel}: {nick} [{flags}] {user}@{host} ({realname})"
    return " ".join(params[1:])


MAX_NUMBER_DIGITS = 19  # a time in seconds longer than this is no time (nor fits a C long)
# Units of an idle time, largest first: irssi's words, but one of each is singular.
IDLE_UNITS = (("day", 86400), ("hour", 3600), ("min", 60), ("sec", 1))


def whois_idle(params: list[str]) -> str | None:
    """A 317 (``<me> <nick> <idle> [<signon>] :text``) as irssi shows it: ``bob idle :
    1 hour 2 mins 3 secs [signon : Mon Nov 23 06:12:01 2026]``, the signon in local
    time (left out when the server sends none, or no time). None when the idle time is
    no number."""
    if len(params) < 4 or not _seconds(params[2]):
        return None
    text = f"{params[1]} idle : {idle_text(int(params[2]))}"
    signon = params[3] if len(params) > 4 else ""  # (else params[3] is the text)
    if _seconds(signon):
        # (A year the platform cannot show: left out.)
        with contextlib.suppress(OverflowError, OSError, ValueError):
            text += f" [signon : {time.asctime(time.localtime(int(signon)))}]"
    return text


def idle_text(seconds: int) -> str:
    """``seconds`` in words from the largest unit it reaches: ``1 hour 2 mins 3 secs``,
    ``2 days 0 hours 0 mins 5 secs``, ``0 secs``."""
    parts: list[str] = []
    for unit, size in IDLE_UNITS:
        count, seconds = divmod(seconds, size)
        if count or parts or size == 1:
            parts.append(f"{count} {unit}" + ("" if count == 1 else "s"))
    return " ".join(parts)


def _seconds(text: str) -> bool:
    return is_digits(text) and len(text) <= MAX_NUMBER_DIGITS


# InspIRCd's refusals of a list mode change ("<nick> <chan> <mask> <mode> :text"): /ban of
# a mask already banned, /unban of one that is not.
ERR_LISTMODEALREADYSET = "697"
ERR_LISTMODENOTSET = "698"
LIST_NAMES = {"b": "ban list", "e": "ban exception list", "I": "invite exception list",
              "q": "quiet list"}  # fmt: skip


def list_mode_text(code: str, params: list[str]) -> str | None:
    """The text for a 697 or 698, e.g. "#c: *!*@host is already on the ban list"; None
    when it lacks its parameters."""
    if len(params) < 4:
        return None
    channel, mask, mode = params[1:4]
    name = LIST_NAMES.get(mode, f"+{mode} list")
    verb = "is already on" if code == ERR_LISTMODEALREADYSET else "is not on"
    return f"{channel}: {mask} {verb} the {name}"


MAX_DCC_NAME = 100  # characters of an offered file's name shown (a name can be 400)


def dcc_text(nick: str, args: str) -> str:
    """What a CTCP DCC from ``nick`` asks (``args``: after "DCC "), said with "DCC is
    not supported": a file offer (SEND) names the file and its size. Only those are
    read; the address and port never are."""
    sub, _, rest = args.partition(" ")
    who = plain(nick)
    if sub.upper() == "CHAT":
        return f"{who} offers a chat by DCC; DCC is not supported"
    if sub.upper() != "SEND":
        return f"{who} sent a DCC {plain(sub)[:16]} request; DCC is not supported"
    name, tail = _dcc_file(rest)
    fields = tail.split()  # ip port size [token]
    size = fields[2] if len(fields) >= 3 and is_digits(fields[2]) and len(fields[2]) < 20 else ""
    shown = f"{name} ({int(size):,} bytes)" if size else name
    return f"{who} offers a file by DCC: {shown}; DCC is not supported"


def _dcc_file(rest: str) -> tuple[str, str]:
    """(the file's name fit to show, what follows it) from a DCC SEND's arguments; the
    name may be in double quotes (it has spaces). Control characters, formatting and
    direction overrides go; a long name is cut."""
    if rest.startswith('"') and (end := rest.find('"', 1)) > 0:
        name, tail = rest[1:end], rest[end + 1 :]
    else:
        name, _, tail = rest.partition(" ")
    name = plain(name).strip() or "(no name)"
    if len(name) > MAX_DCC_NAME:
        name = name[: MAX_DCC_NAME - 1] + "…"
    return name, tail
