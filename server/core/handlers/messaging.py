"""PRIVMSG, NOTICE and TAGMSG to channels and nicks; AWAY; SETNAME."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat import numerics as N
from chat.formatting import strip_formatting
from chat.message import MAX_LINE_BODY, Message
from chat.multiline import Line, combine
from chat.names import CHANTYPES
from chat.utf8 import truncate_utf8
from server import VERSION

from ..caps import PRE_AWAY
from ..connlimits import HostRate
from ..relay import relay_wire
from ..services import pseudo_client, service_target
from ..targets import TargetGate
from .accounts import service_notice
from .callerid import blocks as callerid_blocks
from .callerid import let_answer
from .channels import is_banned, is_quieted, refused_ctcp
from .chanserv import chanserv
from .memoserv import memoserv, offline_hint
from .nickserv import nickserv
from .registration import REALNAME_MAX

# AWAYs that set or change the message a connection may send at once (the second is
# solanum's "one additional AWAY command"); then one per ``away_interval`` seconds.
AWAY_BURST = 2
AWAY_TOO_FAST = ("This command could not be completed because it has been used recently, "
                 "and is rate-limited.")  # solanum's 263 for AWAY

SERVICES = {"nickserv": nickserv, "chanserv": chanserv, "memoserv": memoserv}
SERVICE_COMMANDS = {
    "NICKSERV": nickserv, "NS": nickserv, "CHANSERV": chanserv, "CS": chanserv,
    "MEMOSERV": memoserv, "MS": memoserv,
}


def handle_service(core: ServerCore, client: Client, msg: Message) -> None:
    """``NS <text>``, ``CHANSERV <text>``...: as ``PRIVMSG NickServ :<text>``."""
    SERVICE_COMMANDS[msg.command.upper()](core, client, " ".join(msg.params))

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Channel, Client


def handle_privmsg(core: ServerCore, client: Client, msg: Message) -> None:
    relay_message(core, client, msg)


def handle_notice(core: ServerCore, client: Client, msg: Message) -> None:
    relay_message(core, client, msg)


def handle_tagmsg(core: ServerCore, client: Client, msg: Message) -> None:
    relay_message(core, client, msg)


def _error(core: ServerCore, client: Client, command: str, *params: str) -> None:
    """An error numeric, except for NOTICE: Modern IRC says servers "must not send any error
    back to the client on receipt of a NOTICE command" (no auto-reply loops)."""
    if command != "NOTICE":
        core.reply(client, *params)


# Refused while the store fails. Not TAGMSG: typing notifications would each get a FAIL;
# a reaction goes through and waits with the rest for the store (history.backlog).
REFUSED_UNSTORED = frozenset({"PRIVMSG", "NOTICE"})


def _unstorable(core: ServerCore, client: Client, command: str, target: str) -> None:
    """The store of record is failing: a message that would be kept is refused (the
    sender may send it again) rather than relayed and then lost."""
    core.fail(client, command, "TEMPORARILY_UNAVAILABLE", target,
              "Message not sent: the server cannot store messages right now; try again soon")


def can_send(core: ServerCore, channel: Channel, client: Client) -> bool:
    modes = channel.members.get(client)
    if modes is None:
        if "n" in channel.modes:
            return False
        modes = ""
    if modes:  # voiced or op: always allowed
        return True
    if "m" in channel.modes:
        return False
    return not is_banned(core, channel, client) and not is_quieted(core, channel, client)


def relay_message(
    core: ServerCore, client: Client, msg: Message, lines: list[Line] | None = None
) -> None:
    """PRIVMSG, NOTICE or TAGMSG; ``lines``: a draft/multiline PRIVMSG's lines (``msg``
    then holds the batch's target and tags, and the combined text)."""
    command = msg.command
    params = msg.params
    if not params or not params[0]:
        if command == "TAGMSG":
            core.reply(client, N.ERR_NEEDMOREPARAMS, command, "Not enough parameters")
        else:
            _error(core, client, command, N.ERR_NORECIPIENT, f"No recipient given ({command})")
        return
    if command == "TAGMSG":
        text_params: list[str] = []
    else:
        if len(params) < 2 or not params[1]:
            _error(core, client, command, N.ERR_NOTEXTTOSEND, "No text to send")
            return
        text_params = [params[1]]
    client_tags: dict[str, str] | None = None
    if msg.tags and "message-tags" in client.caps:
        client_tags = {k: v for k, v in msg.tags.items() if k[0] == "+"} or None
    targets = unique_targets(core, params[0])
    limit = core.config.max_targets
    if len(targets) > limit:
        _error(
            core, client, command, N.ERR_TOOMANYTARGETS, params[0],
            f"Too many targets, only {limit} are accepted",
        )
        targets = targets[:limit]
    need_cap = "message-tags" if command == "TAGMSG" else None
    # What the recipients' line adds to the sender's: ":<mask> " in front.
    spare = MAX_LINE_BODY - len(client.mask.encode("utf-8", "surrogateescape")) - 2
    for target in targets:
        if not target:
            continue
        if command == "PRIVMSG" and lines is None and _overflows(spare, target, text_params):
            # Refused rather than cut for the recipients (and stored whole), as Ergo: the
            # sender learns to split. A NOTICE, which gets no errors, is cut as before.
            core.reply(client, N.ERR_INPUTTOOLONG,
                       "Line too long to be relayed without truncation")
            continue
        status = ""
        name = target
        while name and name[0] in "@+" and len(name) > 1 and name[1] in "@+" + CHANTYPES:
            status += name[0]
            name = name[1:]
        if name[:1] in CHANTYPES:
            _to_channel(core, client, command, name, status, text_params, client_tags, need_cap,
                        lines)
        else:
            _to_nick(core, client, command, target, text_params, client_tags, need_cap, lines)
    if command == "PRIVMSG":
        client.last_speak = core.clock()


def unique_targets(core: ServerCore, names: str) -> list[str]:
    """A target list without its repeats (folded, status prefixes kept apart), each as
    first written: ``PRIVMSG #c,#c,#C,#c`` delivered and stored the message four times.
    As on solanum, a repeat counts neither as a target nor towards the limit."""
    if "," not in names:
        return [names]
    seen: dict[str, str] = {}
    for name in names.split(","):
        seen.setdefault(core.fold(name), name)
    return list(seen.values())


def _service_ctcp(core: ServerCore, client: Client, service: str, text: str) -> None:
    """A CTCP to a service is no command: PING and VERSION are answered (as Atheme
    does: a quick "are services up?"), anything else ignored."""
    body = text.strip("\x01")
    command, _, arg = body.partition(" ")
    command = command.upper()
    if command == "PING":
        answer = f"PING {arg}".rstrip()
    elif command == "VERSION":
        answer = f"VERSION {VERSION} ({core.config.name})"
    else:
        return
    pseudo = pseudo_client(core, service)
    if pseudo is not None:
        service_notice(core, client, pseudo.nick, f"\x01{answer}\x01")


def _overflows(spare: int, target: str, text: list[str]) -> bool:
    """Whether ``PRIVMSG <target> :<text>`` (CRLF included) passes ``spare`` bytes."""
    size = len(target.encode("utf-8", "surrogateescape")) + 12  # "PRIVMSG " " :" CRLF
    return size + len(text[0].encode("utf-8", "surrogateescape")) > spare


def _to_channel(
    core: ServerCore,
    client: Client,
    command: str,
    name: str,
    status: str,
    text: list[str],
    client_tags: dict[str, str] | None,
    need_cap: str | None,
    lines: list[Line] | None = None,
) -> None:
    channel = core.channels.get(core.fold(name))
    if channel is None:
        _error(core, client, command, N.ERR_NOSUCHNICK, name, "No such nick/channel")
        return
    if not can_send(core, channel, client):
        _error(
            core, client, command, N.ERR_CANNOTSENDTOCHAN, channel.name, "Cannot send to channel"
        )
        return
    modes = channel.modes
    if ("c" in modes or "C" in modes) and lines is not None:
        lines = _filter_lines(core, client, channel, lines)
        if lines is None:
            return
        text = [combine(lines)]
    elif ("c" in modes or "C" in modes) and text:
        filtered = _channel_filters(core, client, command, channel, text[0])
        if filtered is None:
            return
        text = [filtered]
    target = status + channel.name
    if core.history_unwritable and not status and command in REFUSED_UNSTORED:
        _unstorable(core, client, command, channel.name)
        return
    relay = core.new_relay(client, command, [target, *text], client_tags, lines)
    if status:
        # STATUSMSG: '@' reaches ops; '+' reaches voiced and ops.
        allowed = "o" if "+" not in status else "ov"
        members = [m for m, modes in channel.members.items() if any(c in modes for c in allowed)]
        core.fan_out(members, relay, exclude=client, need_cap=need_cap)
    else:
        core.fan_out(channel.members, relay, exclude=client, need_cap=need_cap)
    if "echo-message" in client.caps and (need_cap is None or need_cap in client.caps):
        core.deliver(client, relay)
    if core.cluster:
        core.publish("msg", (channel.folded,), core.uid(client), t=channel.folded, st=status,
                     cap=need_cap, r=relay_wire(client, relay))
    # History keeps what the channel saw: the text as cut to fit the relayed line.
    core.on_channel_message(channel, client, relay, command, relay.params[1:], relay.client_tags,
                            status)  # the relay's tags: new_relay added the account


def _channel_filters(
    core: ServerCore, client: Client, command: str, channel: Channel, text: str
) -> str | None:
    """Channel modes +c (colours and formatting stripped) and +C (no CTCPs but ACTION),
    for everyone, operators and voiced users too, as on solanum: the text to relay, or
    None when it is refused (412 or 404; a NOTICE silently). Stripping comes first, so
    formatting in front of a CTCP cannot slip it past +C."""
    if "c" in channel.modes:
        text = strip_formatting(text)
        if not text:  # nothing but formatting
            _error(core, client, command, N.ERR_NOTEXTTOSEND, "No text to send")
            return None
    if "C" in channel.modes and refused_ctcp(text):
        _error(core, client, command, N.ERR_CANNOTSENDTOCHAN, channel.name,
               "Cannot send to channel (+C: no CTCPs)")
        return None
    return text


def _filter_lines(
    core: ServerCore, client: Client, channel: Channel, lines: list[Line]
) -> list[Line] | None:
    """+c and +C for a multiline message: each line stripped, and refused whole when
    one of them is a CTCP other than ACTION, or when nothing but formatting is left."""
    if "c" in channel.modes:
        lines = [(strip_formatting(text), concat) for text, concat in lines]
        if not any(text for text, _concat in lines):
            core.reply(client, N.ERR_NOTEXTTOSEND, "No text to send")
            return None
    if "C" in channel.modes and any(refused_ctcp(text) for text, _concat in lines):
        core.reply(client, N.ERR_CANNOTSENDTOCHAN, channel.name,
                   "Cannot send to channel (+C: no CTCPs)")
        return None
    return lines


def may_start_talking(core: ServerCore, client: Client, target: Client) -> bool:
    """The target-change limit (operators and messages to oneself are exempt); the
    target, when local, may then answer freely."""
    cfg = core.config
    if not cfg.target_limit or "o" in client.modes or target is client:
        return True
    now = core.clock()
    gate = client.targets
    if gate is None:
        gate = client.targets = TargetGate(cfg.target_limit, cfg.target_refill, now)
    if not gate.allow(target.folded, now):
        return False
    note_sender(core, target, client.folded)
    return True


def note_sender(core: ServerCore, target: Client, sender: str) -> None:
    """``target`` (a local user) was written to by ``sender``: answering is free."""
    if target.remote is not None or not core.config.target_limit:
        return
    if target.targets is None:
        target.targets = TargetGate(core.config.target_limit, core.config.target_refill,
                                    core.clock())
    target.targets.remember(sender)


def _to_nick(
    core: ServerCore,
    client: Client,
    command: str,
    nick: str,
    text: list[str],
    client_tags: dict[str, str] | None,
    need_cap: str | None,
    lines: list[Line] | None = None,
) -> None:
    service = service_target(core, nick)  # "NickServ", or "NickServ@<server name>"
    if service is not None:  # services answer PRIVMSGs; anything else is dropped
        if lines is not None:
            core.fail(client, "BATCH", "MULTILINE_INVALID",
                      "Services take one line at a time")
        elif command == "PRIVMSG" and text[0].startswith("\x01"):
            _service_ctcp(core, client, service, text[0])
        elif command == "PRIVMSG":
            SERVICES[service](core, client, text[0])
        return
    folded = core.fold(nick)
    target = core.nicks.get(folded)
    if target is None or not target.registered:
        _error(core, client, command, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        if command == "PRIVMSG" and folded in core.account_names and client.account:
            offline_hint(core, client, nick)
        return
    if (
        "R" in target.modes
        and client.account is None
        and target is not client
        and "o" not in client.modes
    ):
        _error(core, client, command, N.ERR_NEEDREGGEDNICK, target.nick,
               "You must be logged in to an account to message this user")
        return
    if "g" in target.modes and callerid_blocks(core, client, target, command):
        return  # caller ID: not on the target's ACCEPT list (716/717/718 in callerid.py)
    if not may_start_talking(core, client, target):
        _error(core, client, command, N.ERR_TARGCHANGE, target.nick,
               "Targets changing too fast, message dropped")
        return
    if (
        core.history_unwritable
        and command in REFUSED_UNSTORED
        and core.keeps_private(client, target, command)
    ):
        _unstorable(core, client, command, target.nick)
        return
    relay = core.new_relay(client, command, [target.nick, *text], client_tags, lines)
    stored = core.on_private_message(client, target, relay, command, relay.client_tags)
    if target.remote is not None:
        # ``h``: the conversation's history key, for the nodes' caches (None: not kept).
        core.publish("msg", (), core.uid(client), to=target.remote, cap=need_cap,
                     r=relay_wire(client, relay), h=stored)
    else:
        if need_cap is None or need_cap in target.caps:
            if target is client:
                # labeled-response: a message to oneself "MUST NOT include the label
                # tag", except on the echo: with echo-message the echo below answers
                # the label, without it an ACK does (as on InspIRCd).
                core.deliver_unlabelled(target, relay)
            else:
                core.deliver(target, relay)
        if stored is not None and core.cluster:  # other nodes may cache this conversation
            core.publish("stale", (), core.uid(client), h=stored)
    if command == "PRIVMSG":
        if target.away is not None:
            core.reply(client, N.RPL_AWAY, target.nick, target.away)
        if "g" in client.modes:  # caller ID: whoever a +g user messages may answer
            let_answer(core, client, target)
    # To oneself too: the delivery and the echo are two messages (irctest; ergo).
    if "echo-message" in client.caps and (need_cap is None or need_cap in client.caps):
        core.deliver(client, relay)


def handle_away(core: ServerCore, client: Client, msg: Message) -> None:
    text = truncate_utf8(msg.params[0], core.config.awaylen) if msg.params else ""
    if not client.registered:
        # draft/pre-away: the state is set now and told to no one; watchers learn it
        # when the user comes online (registration's MONITOR notices).
        if PRE_AWAY not in client.caps:
            core.reply(client, N.ERR_NOTREGISTERED, "You have not registered")
            return
        client.away = text or None
        if text:
            core.reply(client, N.RPL_NOWAWAY, "You have been marked as being away")
        else:
            core.reply(client, N.RPL_UNAWAY, "You are no longer marked as being away")
        return
    # An AWAY that changes nothing (the same text again, or back while not away) is
    # answered but told to no one: a line each would reach every peer and watcher.
    changed = (text or None) != client.away
    if text and changed and not _may_set_away(core, client):
        return
    if text:
        client.away = text
        core.reply(client, N.RPL_NOWAWAY, "You have been marked as being away")
    else:
        client.away = None
        core.reply(client, N.RPL_UNAWAY, "You are no longer marked as being away")
    if not changed:
        return
    relay = core.new_relay(client, "AWAY", [text] if text else [])
    audience = core.with_watchers(client, core.peers(client, include_self=False))
    core.fan_out(audience, relay, exclude=client, need_cap="away-notify")
    if core.cluster:
        core.publish("away", client.channels, core.uid(client), away=client.away,
                     r=relay_wire(client, relay))


def _may_set_away(core: ServerCore, client: Client) -> bool:
    """Whether ``client`` may set or change its away message now (263 past the rate),
    as solanum's ``away_interval``: each change reaches every channel peer with
    away-notify and every watcher, so a toggling user made noise for all of them.
    Coming back is free, as on solanum: it only ends the noise."""
    interval = core.config.away_interval
    if not interval or "o" in client.modes:
        return True
    rate = client.away_rate
    if rate is None:
        rate = client.away_rate = HostRate(AWAY_BURST, 1.0 / interval)
    rate.rate = 1.0 / interval  # as REHASHed
    if rate.take("", core.clock()):
        return True
    core.reply(client, N.RPL_TRYAGAIN, "AWAY", AWAY_TOO_FAST)
    return False


def handle_setname(core: ServerCore, client: Client, msg: Message) -> None:
    realname = msg.params[0]
    if not realname or len(realname.encode()) > REALNAME_MAX:
        core.fail(client, "SETNAME", "INVALID_REALNAME", "Realname is not valid")
        return
    relay = core.new_relay(client, "SETNAME", [realname])
    if realname == client.realname:
        # Unchanged: confirmed to the client (the spec's answer), told to no one else.
        if "setname" in client.caps:
            core.deliver(client, relay)
        return
    client.realname = realname
    audience = core.with_watchers(client, core.peers(client, include_self=True))
    core.fan_out(audience, relay, need_cap="setname")
    if core.cluster:
        core.publish("setname", client.channels, core.uid(client), name=realname,
                     r=relay_wire(client, relay))
