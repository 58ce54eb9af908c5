"""Channel membership and metadata: JOIN, PART, TOPIC, NAMES, LIST, KICK, INVITE, KNOCK."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from chat import numerics as N
from chat.formatting import strip_formatting
from chat.masks import EXTBAN_PREFIX, compile_mask, extban_matches
from chat.message import MAX_LINE_BODY, Message
from chat.names import is_valid_channel
from chat.utf8 import truncate_utf8, utf8_size

from ..caps import NO_IMPLICIT_NAMES
from ..listing import parse_list
from ..relay import Relay, relay_wire
from ..state import Ban, Channel
from .readmarker import CAP as READ_MARKER_CAP
from .readmarker import marker_on_join

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Client

# UTF-8 bytes of names per 353 line at most, fewer when the prefix leaves less of 512
# (a channel name may be 50 four-byte characters).
NAMES_LINE_BUDGET = 400
# Scan-budget matches a member an explicit NAMES lists costs: a name takes about 0.3 µs
# of the loop (a 1,000-member channel 0.32 ms; a WHOX line 7.4 µs, WHO_LINE_COST 8).
NAMES_MEMBER_COST = 1
KNOCK_WINDOW = 60.0  # seconds before the same user may KNOCK on the same channel again
# Seconds after a KNOCK is delivered on a channel before anyone's next one is (solanum's
# knock_delay_channel, its default too). Many nicks from one address got 500 notices to an
# op of 50 channels in 15 s; this makes it one per channel a minute. On a small server two
# genuine knocks on one channel within a minute are rare, the ops were told already, and
# the second knocker is told which limit (712 "(channel)") and may try again.
KNOCK_CHANNEL_WINDOW = 60.0


def on_list(core: ServerCore, masks: list[Ban], client: Client) -> bool:
    """Whether ``client`` matches a mask of the list. Every message to a channel asks
    about +b and +q: each mask is compiled once (``Ban.glob``) and the client's mask
    folded once per list, not once per mask (100 glob bans cost 0.4 ms a message)."""
    if not masks:  # most lists are: no mask built
        return False
    target = ""
    for ban in masks:
        mask = ban.mask
        if mask[0] == EXTBAN_PREFIX:
            if extban_matches(mask, client.account, core.fold):
                return True
            continue
        glob = ban.glob
        if glob is None:
            glob = ban.glob = compile_mask(mask, core.fold)
        if not target:
            target = core.fold(client.mask)
        if glob.matches(target):
            return True
    return False


def is_banned(core: ServerCore, channel: Channel, client: Client) -> bool:
    """Matched by a +b mask and by no +e mask."""
    return on_list(core, channel.bans, client) and not on_list(core, channel.excepts, client)


def is_quieted(core: ServerCore, channel: Channel, client: Client) -> bool:
    """Matched by a +q mask (may not speak) and by no +e mask."""
    return on_list(core, channel.quiets, client) and not on_list(core, channel.excepts, client)


def _records(masks: list[Ban]) -> list[list[object]]:
    return [[b.mask, b.setter, b.set_at] for b in masks]


def channel_record(channel: Channel) -> dict[str, object]:
    """A channel's metadata as cluster events and snapshots carry it."""
    return {
        "name": channel.name, "created": channel.created, "topic": channel.topic,
        "setter": channel.topic_setter, "ttime": channel.topic_time,
        "modes": sorted(channel.modes), "key": channel.key, "limit": channel.limit,
        "bans": _records(channel.bans), "excepts": _records(channel.excepts),
        "invex": _records(channel.invex), "quiets": _records(channel.quiets),
        "origin": channel.origin,
    }


def set_channel_record(channel: Channel, record: dict[str, Any]) -> None:
    """The inverse of ``channel_record`` for the metadata (not the name, time or origin)."""
    channel.topic = str(record.get("topic", ""))
    channel.topic_setter = str(record.get("setter", ""))
    channel.topic_time = int(record.get("ttime", 0))
    channel.modes = set(record.get("modes", ()))
    key = record.get("key")
    channel.key = str(key) if key is not None else None
    limit = record.get("limit")
    channel.limit = int(limit) if limit is not None else None
    for letter, field in (("b", "bans"), ("e", "excepts"), ("I", "invex"), ("q", "quiets")):
        masks = channel.mask_list(letter)
        masks[:] = [Ban(str(m), str(s), int(t)) for m, s, t in record.get(field, ())]


def can_see(channel: Channel, client: Client) -> bool:
    return "s" not in channel.modes or client in channel.members


# ---------------------------------------------------------------------- JOIN / PART


def handle_join(core: ServerCore, client: Client, msg: Message) -> None:
    if msg.params[0] == "0":
        for channel in list(client.channels.values()):
            part(core, client, channel, "Left all channels")
        return
    names = msg.params[0].split(",")
    keys = msg.params[1].split(",") if len(msg.params) > 1 else []
    for i, name in enumerate(names):
        if not name:
            continue
        join(core, client, name, keys[i] if i < len(keys) else "")


def join(core: ServerCore, client: Client, name: str, key: str) -> None:
    cfg = core.config
    if not is_valid_channel(name, cfg.channellen):
        core.reply(client, N.ERR_BADCHANMASK, name, "Invalid channel name")
        return
    folded = core.fold(name)
    channel = core.channels.get(folded)
    if channel is not None and client in channel.members:
        return
    if len(client.channels) >= cfg.max_channels:
        core.reply(client, N.ERR_TOOMANYCHANNELS, name, "You have joined too many channels")
        return
    now = int(core.clock())
    created = channel is None
    if created and folded in core.unended:
        from ..history import wait_for_cluster_view  # (history imports this module)

        wait_for_cluster_view(core, client, name)
        return
    registered = core.registered_channels.get(folded) if core.registered_channels else None
    if registered is None:
        trusted = created  # the creator of an unregistered channel gets +o
    else:
        from .chanserv import is_trusted, restore

        # Only the founder and the access list: an op's changes would be kept.
        trusted = is_trusted(core, registered, client)
    if channel is None:
        channel = Channel(name=registered.name if registered else name, folded=folded,
                          created=now, origin=core.node_id)
        if registered is not None:
            restore(channel, registered)  # its kept key, bans and +i apply to this join
    if not trusted and refused(core, client, channel, key):
        return
    if created:
        core.channels[folded] = channel
    client.invites.pop(folded, None)
    # Joining a registered channel with members, the founder gets +o from ChanServ below.
    channel.members[client] = "o" if trusted and (created or registered is None) else ""
    client.channels[folded] = channel
    relay = core.new_relay(client, "JOIN", [channel.name])
    announce_join(core, client, channel, relay)
    core.on_channel_event((channel,), client.mask, relay,
                          f"{client.account or '*'} {client.realname}")
    if core.cluster:
        # ``new``: this join made the channel, which another node may have made too.
        core.publish("join", (folded,), core.uid(client), t=folded, p=channel.members[client],
                     ch=channel_record(channel), new=created, r=relay_wire(client, relay))
    if client.away is not None:
        away = core.new_relay(client, "AWAY", [client.away])
        core.fan_out(channel.members, away, exclude=client, need_cap="away-notify")
    if channel.topic:
        send_topic(core, client, channel)
    if READ_MARKER_CAP in client.caps:  # before the names end, as the spec asks
        marker_on_join(core, client, channel.name)
    if NO_IMPLICIT_NAMES.isdisjoint(client.caps):
        send_names(core, client, channel)
    core.after_join(client, channel)
    if registered is not None and trusted and not created:
        from .chanserv import give_op

        give_op(core, channel, client)


def refused(core: ServerCore, client: Client, channel: Channel, key: str) -> bool:
    """Whether the channel's key, +i, +l, bans or +r keep the client out (told why)."""
    invited = client.invites.get(channel.folded) is channel
    if channel.key is not None and key != channel.key and not invited:
        core.reply(client, N.ERR_BADCHANNELKEY, channel.name, "Cannot join channel (+k)")
    elif "i" in channel.modes and not invited and not on_list(core, channel.invex, client):
        core.reply(client, N.ERR_INVITEONLYCHAN, channel.name, "Cannot join channel (+i)")
    elif channel.limit is not None and len(channel.members) >= channel.limit and not invited:
        core.reply(client, N.ERR_CHANNELISFULL, channel.name, "Cannot join channel (+l)")
    elif not invited and is_banned(core, channel, client):
        core.reply(client, N.ERR_BANNEDFROMCHAN, channel.name, "Cannot join channel (+b)")
    elif "r" in channel.modes and client.account is None and not invited:
        core.reply(client, N.ERR_NEEDREGGEDNICK, channel.name,
                   "Cannot join channel (+r) - you need to be logged in to an account")
    else:
        return False
    return True


def announce_join(core: ServerCore, client: Client, channel: Channel, relay: Relay) -> None:
    """The JOIN to the members; those with extended-join get the account and realname."""
    members = channel.members
    if not any("extended-join" in m.caps for m in members):
        core.fan_out(members, relay)
        return
    core.fan_out([m for m in members if "extended-join" not in m.caps], relay)
    params = [channel.name, client.account or "*", client.realname]
    extended = Relay(client.mask, "JOIN", params, relay.time, relay.msgid, relay.client_tags)
    core.fan_out([m for m in members if "extended-join" in m.caps], extended)


def handle_part(core: ServerCore, client: Client, msg: Message) -> None:
    reason = msg.params[1] if len(msg.params) > 1 else ""
    for name in msg.params[0].split(","):
        if not name:
            continue
        channel = core.channels.get(core.fold(name))
        if channel is None:
            core.reply(client, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        elif client not in channel.members:
            core.reply(client, N.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")
        elif reason and not may_give_part_reason(core, channel, client):
            part(core, client, channel, "")
        else:
            part(core, client, channel, filtered_reason(channel, reason))


def may_give_part_reason(core: ServerCore, channel: Channel, client: Client) -> bool:
    """Whether ``client``'s PART reason is said to ``channel`` (solanum's can_send_part).
    It is said there and kept in its history: not by one who may not speak there, or +q
    and +m were a PART away; nor by one connected too lately, or connect, join and part
    with an advert reached the channel before its operators could act. The channel's
    operators are exempt from the wait, server operators not (as solanum's)."""
    from .messaging import can_send  # messaging imports this module

    if not can_send(core, channel, client):
        return False
    return "o" in channel.members[client] or not connected_too_lately(core, client)


def connected_too_lately(core: ServerCore, client: Client) -> bool:
    """Whether ``client`` has been connected for less than --anti-spam-exit-message-time
    (solanum's anti_spam_exit_message_time; 0: never), by the core's clock."""
    wait = core.config.anti_spam_exit_message_time
    return bool(wait) and core.clock() - client.connected_at < wait


def filtered_reason(channel: Channel, reason: str) -> str:
    """A reason said to ``channel`` as +c and +C let it be said, as a message there
    (solanum runs its message hooks on a PART reason): without colours and formatting
    under +c, "" when nothing else was in it; "" under +C when it is a CTCP other than
    ACTION, which a message there may not be either."""
    modes = channel.modes
    if "c" in modes:
        reason = strip_formatting(reason)
    return "" if "C" in modes and refused_ctcp(reason) else reason


def filtered_quit_reason(channels: Iterable[Channel], reason: str) -> str:
    """A QUIT reason as ``channels`` let it be said: the one QUIT line reaches them all,
    so a +c one strips it for all, and a +C one drops it for all when, stripped, it is a
    CTCP other than ACTION (stripping first, whatever the channels' order)."""
    modes = {mode for channel in channels for mode in channel.modes}
    if "c" in modes:
        reason = strip_formatting(reason)
    return "" if "C" in modes and refused_ctcp(reason) else reason


def refused_ctcp(text: str) -> bool:
    """Whether +C refuses ``text``: a CTCP other than ACTION (a ``/me``)."""
    return text[:1] == "\x01" and not _is_action(text)


def _is_action(ctcp: str) -> bool:
    """``\\x01ACTION ...`` (a ``/me``): the CTCP command, ACTION in any case, ends at a
    space, the closing ``\\x01`` or the end of the text."""
    word = ctcp[1:7]
    return word.isascii() and word.upper() == "ACTION" and ctcp[7:8] in ("", " ", "\x01")


def part(core: ServerCore, client: Client, channel: Channel, reason: str) -> None:
    reason = truncate_utf8(reason, core.config.kicklen)
    params = [channel.name, reason] if reason else [channel.name]
    relay = core.new_relay(client, "PART", params)
    core.fan_out(channel.members, relay)
    core.on_channel_event((channel,), client.mask, relay, params[1] if len(params) > 1 else "")
    if core.cluster:
        core.publish("part", (channel.folded,), core.uid(client), t=channel.folded,
                     r=relay_wire(client, relay))
    core.remove_member(channel, client)


# ---------------------------------------------------------------------- TOPIC


def send_topic(core: ServerCore, client: Client, channel: Channel) -> None:
    if not channel.topic:
        core.reply(client, N.RPL_NOTOPIC, channel.name, "No topic is set")
        return
    core.reply(client, N.RPL_TOPIC, channel.name, channel.topic)
    core.reply(
        client, N.RPL_TOPICWHOTIME, channel.name, channel.topic_setter, str(channel.topic_time)
    )


def handle_topic(core: ServerCore, client: Client, msg: Message) -> None:
    name = msg.params[0]
    channel = core.channels.get(core.fold(name))
    if channel is None:
        core.reply(client, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    if len(msg.params) < 2:
        if not can_see(channel, client):
            core.reply(client, N.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")
            return
        send_topic(core, client, channel)
        return
    if client not in channel.members:
        core.reply(client, N.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")
        return
    if "t" in channel.modes and not channel.is_op(client):
        core.reply(client, N.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")
        return
    topic = truncate_utf8(msg.params[1], core.config.topiclen)
    if topic == channel.topic:
        # As on InspIRCd (Modern IRC leaves it open): nothing changed, nothing to tell,
        # so clearing a channel without a topic is not shown as "removed the topic".
        return
    channel.topic = topic
    channel.topic_setter = client.mask
    channel.topic_time = int(core.clock())
    relay = core.new_relay(client, "TOPIC", [channel.name, channel.topic])
    core.fan_out(channel.members, relay)
    if core.cluster:
        core.publish("topic", (channel.folded,), core.uid(client), t=channel.folded,
                     ch=channel_record(channel), r=relay_wire(client, relay))
    core.on_channel_event((channel,), client.mask, relay, channel.topic)
    if channel.folded in core.registered_channels:
        from .chanserv import channel_changed

        channel_changed(core, channel)


# ---------------------------------------------------------------------- NAMES / LIST


def send_names(core: ServerCore, client: Client, channel: Channel, *, paid: bool = False) -> None:
    """353 lines of the members ``client`` may see, then 366. ``paid`` (an explicit NAMES;
    not the one a JOIN sends, which a client cannot avoid): an answer of more than one
    line costs the host's scan budget ``NAMES_MEMBER_COST`` a member listed, as WHO of a
    channel does; past it 263 and the 366 alone."""
    multi = "multi-prefix" in client.caps
    full = "userhost-in-names" in client.caps
    member = client in channel.members
    symbol = "@" if "s" in channel.modes else "="
    entries: list[str] = []
    for other, _modes in channel.members.items():
        if not member and "i" in other.modes:
            continue
        who = other.mask if full else other.nick
        entries.append(channel.prefix_of(other, multi) + who)
    head = core.numeric(client.nick, N.RPL_NAMREPLY, symbol, channel.name, "")
    lines = _name_lines(entries, min(NAMES_LINE_BUDGET, MAX_LINE_BODY - len(head)))
    if paid and len(lines) > 1 and not core.may_scan(
        client, "NAMES", len(entries) * NAMES_MEMBER_COST
    ):
        lines = []
    for text in lines:
        core.reply(client, N.RPL_NAMREPLY, symbol, channel.name, text)
    core.reply(client, N.RPL_ENDOFNAMES, channel.name, "End of /NAMES list")


def _name_lines(entries: list[str], budget: int) -> list[str]:
    """``entries`` joined into 353 texts of at most ``budget`` UTF-8 bytes (an entry
    longer than that alone on its line)."""
    lines: list[str] = []
    line: list[str] = []
    size = 0
    for entry in entries:
        length = utf8_size(entry)  # (a userhost-in-names username may be multibyte)
        if line and size + length + 1 > budget:
            lines.append(" ".join(line))
            line, size = [], 0
        line.append(entry)
        size += length + 1
    if line:
        lines.append(" ".join(line))
    return lines


def handle_names(core: ServerCore, client: Client, msg: Message) -> None:
    if not msg.params or not msg.params[0]:
        core.reply(client, N.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    names = [name for name in msg.params[0].split(",") if name]  # an empty one: no 366
    limit = core.config.max_targets  # TARGMAX: each channel may be a long reply
    if len(names) > limit:
        core.reply(client, N.ERR_TOOMANYTARGETS, msg.params[0],
                   f"Too many targets, only {limit} are accepted")
        names = names[:limit]
    for name in names:
        channel = core.channels.get(core.fold(name))
        if channel is not None and can_see(channel, client):
            send_names(core, client, channel, paid=True)
        else:
            core.reply(client, N.RPL_ENDOFNAMES, name, "End of /NAMES list")


def handle_list(core: ServerCore, client: Client, msg: Message) -> None:
    query = parse_list(msg.params, core.clock(), core.fold)
    if not core.may_scan(client, "LIST", query.cost(len(core.channels))):
        core.reply(client, N.RPL_LISTEND, "End of /LIST")
        return
    core.reply(client, N.RPL_LISTSTART, "Channel", "Users  Name")
    if query.names is None:
        channels: Iterable[Channel] = core.channels.values()
    else:  # looked up, not walked: the query paid for the names, not for every channel
        found = (core.channels.get(name) for name in query.names)
        channels = [channel for channel in found if channel is not None]
    for channel in channels:
        if can_see(channel, client) and query.wants(channel):
            core.reply(client, N.RPL_LIST, channel.name, str(len(channel.members)),
                       channel.topic)
    core.reply(client, N.RPL_LISTEND, "End of /LIST")


# ---------------------------------------------------------------------- KICK / INVITE


def handle_kick(core: ServerCore, client: Client, msg: Message) -> None:
    """``KICK #chan nick[,nick...]``, or (RFC 2812) as many channels as nicks, in pairs."""
    names = msg.params[0].split(",")
    given = msg.params[1].split(",")
    if len(names) != 1 and len(names) != len(given):
        core.reply(client, N.ERR_NEEDMOREPARAMS, "KICK", "Not enough parameters")
        return
    limit = core.config.max_targets  # TARGMAX KICK
    nicks = given[:limit]
    if len(given) > limit:  # the first ones are kicked: the rest are named, not dropped silently
        core.reply(client, N.ERR_TOOMANYTARGETS, ",".join(given[limit:]),
                   f"Too many targets, only {limit} are accepted")
    reason = truncate_utf8(
        msg.params[2] if len(msg.params) > 2 and msg.params[2] else client.nick,
        core.config.kicklen,
    )
    if len(names) == 1:
        _kick(core, client, names[0], nicks, reason)
    else:
        for name, nick in zip(names[: len(nicks)], nicks, strict=True):
            _kick(core, client, name, [nick], reason)


def _kick(core: ServerCore, client: Client, name: str, nicks: list[str], reason: str) -> None:
    if not name:  # "KICK ,#chan a,b": nothing to name in a reply
        return
    channel = core.channels.get(core.fold(name))
    if channel is None:
        core.reply(client, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    if client not in channel.members:
        core.reply(client, N.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")
        return
    if not channel.is_op(client):
        core.reply(client, N.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")
        return
    for nick in nicks:
        target = core.nicks.get(core.fold(nick))
        if target is None or target not in channel.members:
            core.reply(
                client, N.ERR_USERNOTINCHANNEL, nick, channel.name, "They aren't on that channel"
            )
            continue
        relay = core.new_relay(client, "KICK", [channel.name, target.nick, reason])
        core.fan_out(channel.members, relay)
        core.on_channel_event((channel,), client.mask, relay, f"{target.nick} {reason}")
        if core.cluster:
            core.publish("kick", (channel.folded,), core.uid(client), t=channel.folded,
                         who=core.uid(target), r=relay_wire(client, relay))
        core.remove_member(channel, target)


INVITES_KEPT = 100  # channels one connection keeps invites to; the oldest go first


def invite(client: Client, folded: str, channel: Channel | None) -> None:
    """Let ``client`` into this ``channel`` past +i, +k, +l and bans, once. Bound to the
    channel, not its name: one destroyed and made again by someone else is a new one
    (a stale invite let a user into it past all of those)."""
    invites = client.invites
    invites.pop(folded, None)
    invites[folded] = channel
    if len(invites) > INVITES_KEPT:
        del invites[next(iter(invites))]


def handle_invite(core: ServerCore, client: Client, msg: Message) -> None:
    if not msg.params:
        # Modern IRC: the channels this user has been invited to (and may still join).
        for folded in sorted(client.invites):
            channel = core.channels.get(folded)
            if channel is not None and client.invites[folded] is channel:
                core.reply(client, N.RPL_INVITEDLIST, channel.name)
        core.reply(client, N.RPL_ENDOFINVITEDLIST, "End of /INVITE list")
        return
    if len(msg.params) < 2 or not msg.params[1]:
        core.reply(client, N.ERR_NEEDMOREPARAMS, "INVITE", "Not enough parameters")
        return
    nick, name = msg.params[0], msg.params[1]
    target = core.nicks.get(core.fold(nick))
    if target is None or not target.registered:
        core.reply(client, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        return
    channel = core.channels.get(core.fold(name))
    if channel is None:
        core.reply(client, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    if client not in channel.members:
        core.reply(client, N.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")
        return
    if target in channel.members:
        core.reply(client, N.ERR_USERONCHANNEL, target.nick, channel.name, "is already on channel")
        return
    if "i" in channel.modes and not channel.is_op(client):
        core.reply(client, N.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")
        return
    if "g" in target.modes:  # caller ID holds back INVITEs too, as on solanum
        from .callerid import blocks

        if blocks(core, client, target, "INVITE"):
            return
    from .messaging import can_send, may_start_talking  # messaging imports this module

    # An INVITE is a message to its target (the channel name its text): the target
    # limit PRIVMSG has, as solanum's m_invite, or one address invites everyone.
    if not may_start_talking(core, client, target):
        core.reply(client, N.ERR_TARGCHANGE, target.nick,
                   "Targets changing too fast, message dropped")
        return
    # Bound to the connection, not the nick: a nick is not an identity.
    relay = core.new_relay(client, "INVITE", [target.nick, channel.name])
    if target.remote is None:
        invite(target, channel.folded, channel)
        core.deliver(target, relay)
    # The channel name and the nick are text the channel reads: none from a member who
    # may not speak there (unvoiced under +m, +q, +b), as PART drops their reason.
    muted = not can_send(core, channel, client)
    if core.cluster:
        # The target's node checks the invite when the user joins there; every node
        # tells its members with invite-notify (q: not this one).
        core.publish("invite", (), core.uid(client), to=core.uid(target), t=channel.folded,
                     r=relay_wire(client, relay), q=muted)
    if not muted:
        notify_invite(core, channel, relay, (client, target))
    core.reply(client, N.RPL_INVITING, target.nick, channel.name)
    if target.away is not None:
        core.reply(client, N.RPL_AWAY, target.nick, target.away)


def notify_invite(
    core: ServerCore, channel: Channel, relay: Relay, skip: tuple[Client, ...]
) -> None:
    """invite-notify: local members who may invite (all; on +i its ops) see the INVITE."""
    ops_only = "i" in channel.modes
    watchers = [
        m for m, prefix in channel.members.items()
        if m.remote is None and "invite-notify" in m.caps and m not in skip
        and (not ops_only or "o" in prefix)
    ]
    if watchers:
        core.fan_out(watchers, relay)


# ---------------------------------------------------------------------- KNOCK


def handle_knock(core: ServerCore, client: Client, msg: Message) -> None:
    """KNOCK <channel> [:<message>]: ask the operators of a closed channel for an invite.

    Closed means +i, +k or full (+l), as solanum has it. The channel operators get
    ``:<server> NOTICE @<channel> :[Knock] by <mask> (<message>)``, on every node;
    the knocker gets 711. A user may knock on a channel once per KNOCK_WINDOW, and a
    channel takes one knock, from anyone, per KNOCK_CHANNEL_WINDOW (IRC operators too).
    """
    name = msg.params[0].split(",", 1)[0]  # one channel per KNOCK
    channel = core.channels.get(core.fold(name)) if name else None
    if channel is None:
        core.reply(client, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    if client in channel.members:
        core.reply(client, N.ERR_KNOCKONCHAN, channel.name, "You're already on that channel")
        return
    full = channel.limit is not None and len(channel.members) >= channel.limit
    if "i" not in channel.modes and channel.key is None and not full:
        core.reply(client, N.ERR_CHANOPEN, channel.name, "Channel is open")
        return
    if is_banned(core, channel, client):
        core.reply(client, N.ERR_CANNOTSENDTOCHAN, channel.name, "Cannot send to channel")
        return
    now = core.clock()
    knocks = client.knocks
    if knocks is None:
        knocks = client.knocks = {}
    else:
        for folded, when in list(knocks.items()):  # only recent knocks are kept
            if now - when >= KNOCK_WINDOW:
                del knocks[folded]
    if channel.folded in knocks:
        core.reply(client, N.ERR_TOOMANYKNOCK, channel.name, "Too many KNOCKs (user)")
        return
    if channel.last_knock is not None and now - channel.last_knock < KNOCK_CHANNEL_WINDOW:
        core.reply(client, N.ERR_TOOMANYKNOCK, channel.name, "Too many KNOCKs (channel)")
        return
    knocks[channel.folded] = now
    text = msg.params[1] if len(msg.params) > 1 and msg.params[1] else "has asked for an invite"
    server = core.config.name
    relay = core.new_relay(
        server, "NOTICE", ["@" + channel.name, f"[Knock] by {client.mask} ({text})"]
    )
    deliver_knock(core, channel, relay)
    if core.cluster:
        core.publish("knock", (), core.uid(client), t=channel.folded, r=relay_wire(server, relay))
    core.reply(client, N.RPL_KNOCKDLVR, channel.name, "Your KNOCK has been delivered")


def deliver_knock(core: ServerCore, channel: Channel, relay: Relay) -> None:
    """A KNOCK notice to the channel's operators on this node."""
    # Another node's knock counts too (as in solanum), so the window spans the cluster
    # give or take the bus's delay.
    channel.last_knock = core.clock()
    core.fan_out([m for m, modes in channel.members.items() if "o" in modes], relay)
