"""Connection registration: CAP, PASS, NICK, USER, welcome burst, PING/PONG, QUIT."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import TYPE_CHECKING

from chat import numerics as N
from chat.digits import is_digits
from chat.message import MAX_LINE_BODY, Message
from chat.names import CHANTYPES, is_valid_nick
from chat.servertime import format_time
from chat.utf8 import truncate_utf8
from server import VERSION

from .. import caps as caps_mod
from ..connlimits import HostRate
from ..listing import ELIST
from ..relay import relay_wire
from .accounts import (
    SERVICE_NAMES,
    abort_sasl,
    note_pass_login,
    pass_login,
    refuse_reserved_nick,
    reserved,
    reserved_for_other,
)
from .bans import banned_by, refuse
from .channels import connected_too_lately, filtered_quit_reason, is_banned, is_quieted
from .modes import KEYLEN, MAX_LIST_ENTRIES

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Channel, Client

# RPL_MYINFO: bot, registered-only PMs, invisible, operator, server notices, wallops
USER_MODES = "BRgiosw"
CHANNEL_MODES = "CIbceiklmnoqrstv"  # RPL_MYINFO; those with a parameter follow it
REALNAME_MAX = 200  # bytes: USER cuts to it, SETNAME refuses more (one can restore the other)
# Nick changes a connection may make at once, and the seconds in which that many come
# back (solanum's max_nick_changes, max_nick_time); the first NICK and operators are free.
NICK_CHANGES = 5
NICK_TIME = 20.0


# ---------------------------------------------------------------------- CAP



def handle_cap(core: ServerCore, client: Client, msg: Message) -> None:
    sub = msg.params[0].upper()
    nick = client.nick
    name = core.config.name
    if sub == "LS":
        if not client.registered:
            client.cap_negotiating = True
        version = 0
        if len(msg.params) > 1 and is_digits(msg.params[1]):
            version = int(msg.params[1])
        if version >= 302:
            client.cap_version = max(client.cap_version, version)
            # CAP LS 302 implies cap-notify.
            core.set_caps(client, client.caps | {"cap-notify"})
        caps = core.caps_available
        sts = caps_mod.sts_value(core.config.sts_duration, core.sts_port, client.secure)
        if sts is not None and version >= 302:  # a value only 302 clients can read
            caps = dict(sorted({**caps, "sts": sts}.items()))  # listed, never requestable
        _send_cap_list(core, client, "LS", caps_mod.ls_tokens(version, caps))
    elif sub == "LIST":
        _send_cap_list(core, client, "LIST", sorted(client.caps))
    elif sub == "REQ":
        if not client.registered:
            client.cap_negotiating = True
        wanted = msg.params[1].split() if len(msg.params) > 1 else []
        new = set(client.caps)
        # The ACK echoes the request whole: one that could not fit a line is refused
        # (a NAK cut short is harmless; an ACK cut short would name a cap not granted).
        # Only that bounds it: every cap we offer at once already takes ~400 bytes.
        room = MAX_LINE_BODY - len(f":{name} CAP {nick} ACK :\r\n".encode())
        ok = bool(wanted) and len(msg.params[1].encode()) <= room
        for item in wanted:
            remove = item.startswith("-")
            cap = item[1:] if remove else item
            if cap not in core.caps_available:
                ok = False
                break
            if remove:
                new.discard(cap)
            else:
                new.add(cap)
        verb = "ACK" if ok else "NAK"
        if ok:
            core.set_caps(client, new)
        request = msg.params[1] if len(msg.params) > 1 else ""
        core.send(client, Message("CAP", [nick, verb, request], name))
    elif sub == "END":
        if not client.registered:
            client.cap_negotiating = False
            try_register(core, client)
    else:
        core.reply(client, "410", msg.params[0], "Invalid CAP command")


def _send_cap_list(core: ServerCore, client: Client, sub: str, tokens: list[str]) -> None:
    # Split across lines with the '*' continuation marker when one line would overflow
    # (only 302 clients know the marker: the others get a second line, which is what
    # servers do, but the list has room to spare on one line for them).
    overhead = len(f":{core.config.name} CAP {client.nick} {sub} * :\r\n".encode())
    budget = MAX_LINE_BODY - overhead
    chunks: list[list[str]] = [[]]
    size = 0
    for token in tokens:
        if size + len(token.encode()) + 1 > budget and chunks[-1]:
            chunks.append([])
            size = 0
        chunks[-1].append(token)
        size += len(token.encode()) + 1
    for i, chunk in enumerate(chunks):
        params = [client.nick, sub]
        if i < len(chunks) - 1 and client.cap_version >= 302:
            params.append("*")
        params.append(" ".join(chunk))
        core.send(client, Message("CAP", params, core.config.name))


# ---------------------------------------------------------------------- PASS / NICK / USER


def handle_pass(core: ServerCore, client: Client, msg: Message) -> None:
    if client.registered:
        core.reply(client, N.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    if not msg.params or not msg.params[0]:
        core.reply(client, N.ERR_NEEDMOREPARAMS, "PASS", "Not enough parameters")
        return
    expected = core.config.password
    client.pass_ok = expected is not None and _same(msg.params[0], expected)
    if expected is None:  # with a server password, PASS is that and nothing else
        note_pass_login(client, msg.params[0])


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def handle_nick(core: ServerCore, client: Client, msg: Message) -> None:
    if not msg.params or not msg.params[0]:
        core.reply(client, N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    nick = msg.params[0]
    if not is_valid_nick(nick, core.config.nicklen):
        # A nick with a space or a leading ':' cannot be echoed as a middle param.
        shown = "*" if nick[0] == ":" or " " in nick else nick
        core.reply(client, N.ERR_ERRONEUSNICKNAME, shown, "Erroneous nickname")
        return
    folded = core.fold(nick)
    holder = core.nicks.get(folded)
    if holder is not None and holder is not client:
        core.reply(client, N.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
        return
    if folded in SERVICE_NAMES:
        core.reply(client, N.ERR_NICKNAMEINUSE, nick, "Nickname is reserved for services")
        return
    # Before registration the nick is checked at the end (SASL may log in meanwhile).
    if client.registered and core.account_names and reserved_for_other(core, client, folded):
        core.reply(client, N.ERR_NICKNAMEINUSE, nick, reserved(core, client, nick))
        return
    if nick == client.nick:
        return
    if client.registered:
        if (channel := _bannickchange_channel(core, client)) is not None:
            core.reply(client, N.ERR_BANNICKCHANGE, nick, channel.name,
                       "Cannot change nickname while banned on channel")
            return
        if not _may_change_nick(core, client, nick):
            return
    if core.cluster and folded != client.folded:
        pending = core.nick_pending.get(folded)
        if pending is not None and pending is not client:
            core.reply(client, N.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
            return
        core.claim_nick(client, nick, folded)  # nick_claim_result() carries on
        return
    apply_nick(core, client, nick, folded)


def _bannickchange_channel(core: ServerCore, client: Client) -> Channel | None:
    """A channel where ``client`` is banned or quieted (+b, +q, no +e) and neither voiced
    nor an operator: it may not change nick there, or a ban or quiet by nick would be
    shed with one NICK (solanum's ``find_bannickchange_channel``)."""
    for channel in client.channels.values():
        if channel.members.get(client):  # voiced or op: may speak through bans
            continue
        if is_banned(core, channel, client) or is_quieted(core, channel, client):
            return channel
    return None


def _may_change_nick(core: ServerCore, client: Client, nick: str) -> bool:
    """A registered user's nick change within the rate (438 past it), as solanum's
    ``anti_nick_flood``: each change is relayed, stored per channel and given up to
    WHOWAS, so one connection could flush a channel's history and WHOWAS in seconds."""
    if "o" in client.modes:
        return True
    rate = client.nick_rate
    if rate is None:
        rate = client.nick_rate = HostRate(NICK_CHANGES, NICK_CHANGES / NICK_TIME)
    now = core.clock()
    if rate.take("", now):
        return True
    wait = max(1, math.ceil(rate.wait("", now)))
    core.reply(client, N.ERR_NICKTOOFAST, nick,
               f"Nick change too fast. Please wait {wait} seconds.")
    return False


def apply_nick(core: ServerCore, client: Client, nick: str, folded: str) -> None:
    if client.registered:
        relay = core.new_relay(client, "NICK", [nick])
        core.fan_out(core.peers(client, include_self=False), relay)
        core.on_channel_event(client.channels.values(), client.mask, relay, nick)
        core.deliver(client, relay)
        if core.cluster:
            core.publish("nick", client.channels, core.uid(client), nick=nick,
                         r=relay_wire(client, relay))
    given_up = client.registered and client.folded != folded  # not a change of case
    if given_up:
        core.remember(client)
        core.nick_offline(client.folded, client.nick)
    if client.folded and core.nicks.get(client.folded) is client:
        if core.cluster and client.folded != folded:
            core.release_nick(client)
        del core.nicks[client.folded]
    client.nick = nick
    client.folded = folded
    core.nicks[folded] = client
    if given_up:
        core.nick_online(client)
    if not client.registered:
        try_register(core, client)


_NOT_IN_USERNAME = str.maketrans("", "", " @!*?,")  # dropped from the USER parameter


def handle_user(core: ServerCore, client: Client, msg: Message) -> None:
    if client.registered or client.user:
        core.reply(client, N.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    if len(msg.params) < 4:
        core.reply(client, N.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
        return
    username, realname = msg.params[0], msg.params[3]
    if not username or not realname:  # empty is missing (modern-irc issue 85)
        core.reply(client, N.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
        return
    # Usernames from USER are unverified: mark them with '~' as ident-less servers do.
    # The '~' counts within USERLEN (ircu's definition, solanum's practice).
    room = max(core.config.userlen - 1, 1)
    client.user = "~" + (username.translate(_NOT_IN_USERNAME) or "user")[:room]
    client.realname = truncate_utf8(realname, REALNAME_MAX) or client.user
    try_register(core, client)


def try_register(core: ServerCore, client: Client) -> None:
    if client.registered or client.cap_negotiating or not client.user or not client.folded:
        return
    if core.config.password is not None and not client.pass_ok:
        core.reply(client, N.ERR_PASSWDMISMATCH, "Password incorrect")
        core.disconnect(client, "Bad password")
        return
    if core.bans.klines:
        ban = banned_by(core, client)
        if ban is not None:
            refuse(core, client, ban)
            return
    if client.sasl is not None:
        abort_sasl(core, client)
    # PASS <account>:<password> (rare): no closure made for the others.
    if client.pass_login is not None and pass_login(
        core, client, lambda: try_register(core, client)
    ):
        return  # input is held until the password is checked; then this carries on
    if core.account_names and reserved_for_other(core, client, client.folded):
        refuse_reserved_nick(core, client)
        return
    core.set_registered(client)
    if core.monitor.watchers:  # the connect path: no call when nobody monitors
        core.nick_online(client)
    if core.cluster:
        core.publish("up", (), core.uid(client), rec=user_record(client))
    core.stats.registrations += 1
    client.last_speak = core.clock()
    core.max_clients_seen = max(core.max_clients_seen, core.user_count())
    burst = welcome_burst(core)
    nick = client.nick
    cfg = core.config
    # As core.numeric would make it (the text always holds spaces: a trailing param).
    welcome = (
        f":{cfg.name} {N.RPL_WELCOME} {nick} :Welcome to the {cfg.network} IRC Network"
        f" {client.mask}\r\n"
    ).encode("utf-8", "surrogateescape")
    name = nick.encode("utf-8", "surrogateescape")
    block = b"".join(
        (
            welcome,
            name.join(burst.intro),  # 002-004 and ISUPPORT
            lusers_lines(core, burst, name),
            name.join(burst.motd),
        )
    )
    # One bytes object for the twenty-odd lines: a registration costs a join, not
    # twenty encodes, list appends and length checks. Only a nick past what the
    # burst was sized for (REHASH lowered NICKLEN) or an overlong 001 takes the
    # line-by-line path, which cuts long lines.
    if len(name) <= burst.nick_room and len(welcome) <= MAX_LINE_BODY:
        core.write_block(client, block)
    else:
        core.write_lines(client, block.splitlines(keepends=True))
    if core.unread_memos and client.account is not None:  # logged in with SASL
        from .memoserv import logged_in

        logged_in(core, client)


class WelcomeBurst:
    """The fixed numerics of the registration burst, serialised once per configuration.

    Every numeric reads ``:<server> <code> <nick> ...``; from one client to the next
    only the nick, the mask in 001 and the LUSERS figures change. So each run of fixed
    numerics is kept as the bytes between its nicks (``nick.join(parts)`` gives the
    lines), made by ``core.numeric`` like any reply, and LUSERS as a %-template
    (``lusers_lines``). ``welcome_burst`` makes a new one when REHASH replaces
    ``core.config``.
    """

    __slots__ = ("config", "intro", "isupport", "lusers", "motd", "nick_room")

    def __init__(self, core: ServerCore) -> None:
        cfg = core.config
        self.config = cfg

        def fixed(code: str, *params: str) -> tuple[bytes, bytes]:
            return _around_nick(core, code, *params)

        isupport = [
            fixed(N.RPL_ISUPPORT, *tokens, "are supported by this server")
            for tokens in isupport_lines(core)
        ]
        intro = [
            fixed(N.RPL_YOURHOST, f"Your host is {cfg.name}, running version {VERSION}"),
            fixed(N.RPL_CREATED, f"This server was created {format_time(core.created)}"),
            fixed(N.RPL_MYINFO, cfg.name, VERSION, USER_MODES, CHANNEL_MODES, "Ibekloqv"),
            *isupport,
        ]
        if cfg.motd_lines:
            motd = [
                fixed(N.RPL_MOTDSTART, f"- {cfg.name} Message of the day - "),
                *(fixed(N.RPL_MOTD, f"- {line}") for line in cfg.motd_lines),
                fixed(N.RPL_ENDOFMOTD, "End of /MOTD command."),
            ]
        else:
            motd = [fixed(N.ERR_NOMOTD, "MOTD File is missing")]
        self.isupport = _between_nicks(isupport)
        self.intro = _between_nicks(intro)
        self.motd = _between_nicks(motd)
        self.lusers = _lusers_template(cfg.name)
        # The longest nick whose burst lines all fit; LUSERS counts sized as 15 digits.
        widest = lusers_lines(core, self, b"", figure=10**15 - 1).splitlines()
        longest = max(
            max(len(head) + len(tail) for head, tail in intro + motd),
            max(len(line) + 2 for line in widest),
        )
        self.nick_room = MAX_LINE_BODY - longest


def _between_nicks(lines: list[tuple[bytes, bytes]]) -> list[bytes]:
    """``(head, tail)`` pairs as the parts that ``nick.join`` turns into the lines."""
    parts = [lines[0][0]]
    for (_, tail), (head, _) in pairwise(lines):
        parts.append(tail + head)
    parts.append(lines[-1][1])
    return parts


def _around_nick(core: ServerCore, code: str, *params: str) -> tuple[bytes, bytes]:
    """The bytes ``core.reply`` sends for this numeric, split either side of the nick."""
    line = core.numeric("*", code, *params)
    head = f":{core.config.name} {code} ".encode("utf-8", "surrogateescape")
    assert line.startswith(head + b"* ")
    return head, line[len(head) + 1 :]


def welcome_burst(core: ServerCore) -> WelcomeBurst:
    """The burst for the current configuration (a REHASH replaces the config object)."""
    burst: WelcomeBurst | None = core.welcome
    if burst is None or burst.config is not core.config:
        burst = core.welcome = WelcomeBurst(core)
    return burst


def user_record(client: Client) -> dict[str, object]:
    """What other nodes need to know about a user (cluster)."""
    return {
        "nick": client.nick, "user": client.user, "host": client.host,
        "realname": client.realname, "away": client.away, "modes": sorted(client.modes),
        "secure": client.secure, "since": client.connected_at, "account": client.account,
    }


def isupport_tokens(core: ServerCore) -> list[str]:
    cfg = core.config
    targets = cfg.max_targets
    return [
        f"ACCEPT={cfg.accept_limit}",
        f"AWAYLEN={cfg.awaylen}",
        "BOT=B",
        "CALLERID=g",
        f"CASEMAPPING={cfg.casemapping}",
        f"CHANLIMIT={CHANTYPES}:{cfg.max_channels}",
        "CHANMODES=beIq,k,l,Ccimnrst",
        f"CHANNELLEN={cfg.channellen}",
        f"CHANTYPES={CHANTYPES}",
        f"ELIST={ELIST}",
        "EXCEPTS=e",
        "EXTBAN=$,a",
        "INVEX=I",
        f"KEYLEN={KEYLEN}",
        f"KICKLEN={cfg.kicklen}",
        "KNOCK",
        f"MAXLIST=beIq:{MAX_LIST_ENTRIES}",
        "MODES=4",
        f"MONITOR={cfg.monitor_limit}",
        f"NETWORK={cfg.network}",
        f"NICKLEN={cfg.nicklen}",
        "PREFIX=(ov)@+",
        "STATUSMSG=@+",
        f"TARGMAX=PRIVMSG:{targets},NOTICE:{targets},TAGMSG:{targets},JOIN:,PART:,"
        f"KICK:{targets},NAMES:{targets},WHOIS:1,ISON:,USERHOST:5",
        f"TOPICLEN={cfg.topiclen}",
        f"USERLEN={cfg.userlen}",
        "UTF8ONLY",
        "WHOX",
        *(
            [f"CHATHISTORY={cfg.chathistory_limit}", "MSGREFTYPES=timestamp,msgid"]
            if core.history_enabled
            else []
        ),
    ]


def isupport_lines(core: ServerCore) -> list[list[str]]:
    """The ISUPPORT tokens, thirteen to a 005 line (as many as Modern IRC allows)."""
    tokens = isupport_tokens(core)
    return [tokens[start : start + 13] for start in range(0, len(tokens), 13)]


def send_isupport(core: ServerCore, client: Client) -> None:
    _send_lines(core, client, _nick_join(welcome_burst(core).isupport, client.nick))


def send_lusers(core: ServerCore, client: Client) -> None:
    nick = client.nick.encode("utf-8", "surrogateescape")
    _send_lines(core, client, lusers_lines(core, welcome_burst(core), nick))


def send_motd(core: ServerCore, client: Client) -> None:
    _send_lines(core, client, _nick_join(welcome_burst(core).motd, client.nick))


def _nick_join(parts: list[bytes], nick: str) -> bytes:
    return nick.encode("utf-8", "surrogateescape").join(parts)


def _send_lines(core: ServerCore, client: Client, block: bytes) -> None:
    """Numerics asked for by command: line by line, so long ones are cut."""
    core.write_lines(client, block.splitlines(keepends=True))


def lusers_lines(
    core: ServerCore, burst: WelcomeBurst, nick: bytes, *, figure: int | None = None
) -> bytes:
    """The seven LUSERS numerics (``figure`` stands in for every count)."""
    counts = core.counts  # local connections; remote users (cluster) are counted here
    remote = core.remote.values()
    invisible, opers, mine, servers = counts.invisible, counts.opers, counts.users, 1
    if remote:
        invisible += sum(1 for c in remote if "i" in c.modes)
        opers += sum(1 for c in remote if "o" in c.modes)
    if core.cluster:  # every node this one knows of, with users or not (as LINKS lists)
        from server.cluster.apply import other_servers

        servers += len(other_servers(core))
    total = mine + len(remote)
    unknown, channels = counts.unknown, len(core.channels)
    peak = max(core.max_clients_seen, mine)
    gpeak = max(core.max_clients_seen, total)
    users = total - invisible
    if figure is not None:
        invisible = opers = unknown = channels = mine = peak = total = gpeak = users = figure
        servers = figure
    # One line of arguments per line of _lusers_template: these seven lines are a
    # third of a registration's numerics, and one bytes % of a template made once
    # costs a third of an f-string of sixty-odd pieces and the encode after it.
    return burst.lusers % (
        nick, users, invisible, servers,
        nick, opers,
        nick, unknown,
        nick, channels,
        nick, mine, servers - 1,
        nick, mine, peak, mine, peak,
        nick, total, gpeak, total, gpeak,
    )


def _lusers_template(server: str) -> bytes:
    """The LUSERS numerics with %s for the nick and %d for the figures: the same bytes
    as ``core.numeric`` makes (every param is a number or fixed text)."""
    head = ":" + server.replace("%", "%%") + " "
    return (
        f"{head}{N.RPL_LUSERCLIENT} %s :There are %d users and %d invisible on %d servers\r\n"
        f"{head}{N.RPL_LUSEROP} %s %d :operator(s) online\r\n"
        f"{head}{N.RPL_LUSERUNKNOWN} %s %d :unknown connection(s)\r\n"
        f"{head}{N.RPL_LUSERCHANNELS} %s %d :channels formed\r\n"
        f"{head}{N.RPL_LUSERME} %s :I have %d clients and %d servers\r\n"
        f"{head}{N.RPL_LOCALUSERS} %s %d %d :Current local users %d, max %d\r\n"
        f"{head}{N.RPL_GLOBALUSERS} %s %d %d :Current global users %d, max %d\r\n"
    ).encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------- PING / PONG / QUIT


def handle_ping(core: ServerCore, client: Client, msg: Message) -> None:
    if not msg.params or not msg.params[0]:
        core.reply(client, "409", "No origin specified")
        return
    core.send(client, Message("PONG", [core.config.name, msg.params[0]], core.config.name))


def _too_new_to_say(core: ServerCore, client: Client) -> bool:
    """Whether ``client`` connected too lately for its QUIT reason to be shown (solanum's
    anti_spam_exit_message_time): connect, join, quit with an advert reached a channel
    before any of its operators could act. Operators are exempt."""
    return "o" not in client.modes and connected_too_lately(core, client)


def handle_pong(core: ServerCore, client: Client, msg: Message) -> None:
    # Any received line already reset the ping timer; nothing else to do.
    return


def handle_quit(core: ServerCore, client: Client, msg: Message) -> None:
    reason = filtered_quit_reason(client.channels.values(), msg.params[0] if msg.params else "")
    if reason and _too_new_to_say(core, client):
        text = "Client Quit"
    else:
        text = f"Quit: {reason}" if reason else "Quit"
    core.quit(client, truncate_utf8(text, core.config.kicklen), send_error=True)
