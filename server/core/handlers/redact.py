"""REDACT (IRCv3 ``draft/message-redaction``): deleting a stored message.

Who may: the sender (the same account, or the same connection when not logged in),
for ``redact_window`` seconds; a channel's operators, any message of their channel;
IRC operators, any channel message. The store keeps the message as a tombstone (no
text, never served by CHATHISTORY, still a reference), and the REDACT reaches the
conversation's members that negotiated the capability, the way a PRIVMSG would; it is
stored too, and CHATHISTORY serves it to them, for those who were away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat import numerics as N
from chat.message import Message
from chat.msgid import is_msgid
from chat.names import CHANTYPES
from chat.servertime import parse_time
from server.history.model import REDACT_EVENT, FoundMessage

from ..history import (
    REDACT_CAP,
    STORED_COMMANDS,
    StoreMessage,
    connection_key,
    conversation_of,
    message_to_store,
    sender_key,
)
from ..relay import Relay, relay_wire

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Channel, Client

REASON_MAX = 300  # bytes of a reason; the relayed line must still fit


@dataclass(frozen=True, slots=True)
class FindMessage:
    """Effect: look ``msgid`` up in ``target``'s history (a folded channel or a
    conversation key); answered with a FoundMessage, None (no such message) or
    "unavailable" (the store failed)."""

    check_id: int
    target: str
    msgid: str


@dataclass(frozen=True, slots=True)
class RedactMessage:
    """Effect: make the message a tombstone in the store of record, before the tick's
    output (the REDACT) is sent."""

    target: str
    msgid: str


def handle_redact(core: ServerCore, client: Client, msg: Message) -> None:
    if not core.history_enabled:  # nothing is stored, so there is nothing to delete
        core.reply(client, N.ERR_UNKNOWNCOMMAND, "REDACT", "Unknown command")
        return
    target, msgid = msg.params[0], msg.params[1]
    reason = _cut(msg.params[2]) if len(msg.params) > 2 else ""
    key = _history_key(core, client, target)
    if key is None:
        _invalid_target(core, client, target)
        return
    if not is_msgid(msgid):
        _unknown(core, client, target, msgid)
        return

    def answer(client: Client, found: FoundMessage | str | None) -> None:
        _answered(core, client, target, msgid, reason, key, found)

    core.emit(FindMessage(core.await_answer(client, answer), key, msgid))


def _history_key(core: ServerCore, client: Client, target: str) -> str | None:
    """The target's history key, if ``client`` may delete messages there at all:
    a channel it is in (any channel, for an IRC operator), or its own conversation."""
    if target[:1] in CHANTYPES:
        channel = core.channels.get(core.fold(target))
        if channel is None or (client not in channel.members and "o" not in client.modes):
            return None
        return channel.folded
    return conversation_of(core, client, target)


def _answered(
    core: ServerCore,
    client: Client,
    target: str,
    msgid: str,
    reason: str,
    key: str,
    found: FoundMessage | str | None,
) -> None:
    if isinstance(found, str):
        core.fail(client, "REDACT", "TEMPORARILY_UNAVAILABLE", target,
                  "Messages cannot be deleted right now, try again later")
        return
    if found is None or found.row.command not in STORED_COMMANDS:
        _unknown(core, client, target, msgid)  # never stored, pruned, or deleted already
        return
    if _history_key(core, client, target) != key:  # left the channel, or it is gone
        _invalid_target(core, client, target)
        return
    channel = core.channels.get(key) if target[:1] in CHANTYPES else None
    moderator = channel is not None and (
        "o" in channel.members.get(client, "") or "o" in client.modes
    )
    if not moderator:
        # Its own account's, or sent by this connection before it logged in.
        if found.sender not in (sender_key(core, client), connection_key(core, client)):
            core.fail(client, "REDACT", "REDACT_FORBIDDEN", target, msgid,
                      "You are not authorised to delete this message")
            return
        window = core.config.redact_window
        if window and core.clock() * 1000 - found.row.time_ms > window * 1000:
            core.fail(client, "REDACT", "REDACT_WINDOW_EXPIRED", target, msgid, str(window),
                      "You can no longer delete this message")
            return
    core.emit(RedactMessage(key, msgid))
    params = [target, msgid, reason] if reason else [target, msgid]
    if channel is not None:
        relay = _to_channel(core, client, channel, params)
    else:
        relay = _to_partner(core, client, target, key, params)
    # Kept in history too, for those who were away: sent to them in CHATHISTORY.
    event = message_to_store(
        key, relay.params[0], client.mask, REDACT_EVENT, [" ".join(relay.params[1:])], None,
        relay.msgid, round(parse_time(relay.time) * 1000), sender=sender_key(core, client),
    )
    if event is not None:
        core.emit(StoreMessage(event))


def _to_channel(
    core: ServerCore, client: Client, channel: Channel, params: list[str]
) -> Relay:
    params[0] = channel.name
    relay = core.new_relay(client, "REDACT", params)
    core.fan_out(channel.members, relay, exclude=client, need_cap=REDACT_CAP)
    core.deliver(client, relay)  # the sender's confirmation, with or without the cap
    if core.cluster:
        core.publish("msg", (channel.folded,), core.uid(client), t=channel.folded, st="",
                     cap=REDACT_CAP, r=relay_wire(client, relay))
    return relay


def _to_partner(
    core: ServerCore, client: Client, nick: str, key: str, params: list[str]
) -> Relay:
    """A private message's REDACT goes where the message went: to the nick, if it is
    still online (its window is stale on every node either way)."""
    partner = core.nicks.get(core.fold(nick))
    if partner is None or not partner.registered or partner is client:
        partner = None
    else:
        params[0] = partner.nick
    relay = core.new_relay(client, "REDACT", params)
    if partner is not None and partner.remote is not None:
        core.publish("msg", (), core.uid(client), to=partner.remote, cap=REDACT_CAP,
                     r=relay_wire(client, relay), h=key)
    else:
        if partner is not None and REDACT_CAP in partner.caps:
            core.deliver(partner, relay)
        if core.cluster:  # other nodes may cache the conversation's window
            core.publish("stale", (), core.uid(client), h=key)
    core.deliver(client, relay)
    return relay


def _cut(reason: str) -> str:
    data = reason.encode("utf-8", "surrogateescape")
    if len(data) <= REASON_MAX:
        return reason
    return data[:REASON_MAX].decode("utf-8", "ignore")


def _invalid_target(core: ServerCore, client: Client, target: str) -> None:
    core.fail(client, "REDACT", "INVALID_TARGET", target,
              f"You cannot delete messages from {target}")


def _unknown(core: ServerCore, client: Client, target: str, msgid: str) -> None:
    core.fail(client, "REDACT", "UNKNOWN_MSGID", target, msgid,
              "This message does not exist or is too old")
