"""MODE for users (+i, +w, +B, +s, -o) and channels (b e I q k l o v C c i m n r s t)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat import numerics as N
from chat.digits import is_digits
from chat.masks import EXTBAN_PREFIX, bound_mask, is_valid_extban, normalize_mask
from chat.message import MAX_LINE_BODY, Message
from chat.names import is_channel_name
from chat.utf8 import utf8_size

from ..history import is_closed, note_closed
from ..relay import relay_wire
from ..state import Ban, Channel

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Client

# r: only users logged in to an account may join; C: no CTCPs but ACTION; c: formatting
# stripped (both applied in messaging._to_channel).
FLAG_MODES = frozenset("Ccimnrst")
# User modes anyone may set or unset on themselves; R: private messages only from
# users logged in to an account; g: only from users on one's ACCEPT list (caller ID).
SELF_USER_MODES = frozenset("iwBRg")
PARAM_MODES_PER_COMMAND = 4  # ISUPPORT MODES=4
# Flag changes (Ccimnrst) applied per command beyond which the rest are ignored, as
# solanum's MAXMODES_SIMPLE: "+m-m+m-m..." otherwise relays and stores 250 changes a line.
FLAG_MODES_PER_COMMAND = 46
# Entries of the four lists together, as solanum (ISUPPORT MAXLIST=beIq:<this>): 100 each
# let one user hold ~7.5 MB with 50 channels of full lists.
MAX_LIST_ENTRIES = 100
KEYLEN = 23  # characters of a channel key (ISUPPORT KEYLEN); a longer one gets 525
# List modes: letter -> (entry numeric, end numeric, end text). The quiet list's
# numerics (solanum's 728/729) carry the mode letter after the channel.
LIST_MODES = {
    "b": (N.RPL_BANLIST, N.RPL_ENDOFBANLIST, "End of channel ban list"),
    "e": (N.RPL_EXCEPTLIST, N.RPL_ENDOFEXCEPTLIST, "End of channel exception list"),
    "I": (N.RPL_INVITELIST, N.RPL_ENDOFINVITELIST, "End of channel invite list"),
    "q": (N.RPL_QUIETLIST, N.RPL_ENDOFQUIETLIST, "End of channel quiet list"),
}
MAX_BAN_MASK = 200  # keeps 367 RPL_BANLIST (mask + setter + time) inside 512 bytes


def handle_mode(core: ServerCore, client: Client, msg: Message) -> None:
    target = msg.params[0]
    if is_channel_name(target):
        channel_mode(core, client, target, msg.params[1:])
    else:
        user_mode(core, client, target, msg.params[1:])


# ---------------------------------------------------------------------- user modes


def user_mode(core: ServerCore, client: Client, target: str, args: list[str]) -> None:
    other = core.nicks.get(core.fold(target))
    if other is None:
        core.reply(client, N.ERR_NOSUCHNICK, target, "No such nick/channel")
        return
    if other is not client:
        core.reply(client, N.ERR_USERSDONTMATCH, "Cant change mode for other users")
        return
    if not args or not args[0]:
        core.reply(client, N.RPL_UMODEIS, "+" + "".join(sorted(client.modes)))
        return
    adding = True
    added: list[str] = []
    removed: list[str] = []
    unknown = False
    for ch in args[0]:
        if ch in "+-":
            adding = ch == "+"
        elif ch in SELF_USER_MODES:
            if adding and ch not in client.modes:
                core.set_user_mode(client, ch, True)
                added.append(ch)
            elif not adding and ch in client.modes:
                core.set_user_mode(client, ch, False)
                removed.append(ch)
        elif ch == "o":
            # +o only comes from OPER; -o drops operator status, and server notices.
            if not adding and "o" in client.modes:
                core.set_user_mode(client, "o", False)
                client.oper_name = None
                removed.append("o")
                if "s" in client.modes:
                    core.set_user_mode(client, "s", False)
                    removed.append("s")
        elif ch == "s":
            # Server notices carry users' real addresses: operators only.
            if adding and "s" not in client.modes and "o" in client.modes:
                core.set_user_mode(client, "s", True)
                added.append("s")
            elif not adding and "s" in client.modes:
                core.set_user_mode(client, "s", False)
                removed.append("s")
        else:
            unknown = True
    if unknown:
        core.reply(client, N.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    change = ("+" + "".join(added) if added else "") + ("-" + "".join(removed) if removed else "")
    if change:
        core.send(client, Message("MODE", [client.nick, change], client.mask))


# ---------------------------------------------------------------------- channel modes


def channel_modestring(channel: Channel, show_key: bool) -> list[str]:
    flags = "".join(sorted(channel.modes))
    args: list[str] = []
    if channel.key is not None:
        flags += "k"
        args.append(channel.key if show_key else "*")
    if channel.limit is not None:
        flags += "l"
        args.append(str(channel.limit))
    return ["+" + flags, *args]


def channel_mode(
    core: ServerCore, client: Client, name: str, args: list[str], *, override: bool = False
) -> bool:
    """MODE on a channel (``override``: SAMODE, an IRC operator acting as a channel
    operator); whether any change was made."""
    channel = core.channels.get(core.fold(name))
    if channel is None:
        core.reply(client, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        return False
    if not args or not args[0]:
        member = client in channel.members
        core.reply(client, N.RPL_CHANNELMODEIS, channel.name, *channel_modestring(channel, member))
        core.reply(client, N.RPL_CREATIONTIME, channel.name, str(channel.created))
        return False
    modestring, params = args[0], list(args[1:])
    was_closed = is_closed(channel)
    is_op = override or channel.is_op(client)
    adding = True
    applied: list[tuple[str, str, str | None]] = []  # (sign, letter, arg)
    param_count = 0
    flag_count = 0
    listed: set[str] = set()
    denied = False
    for ch in modestring:
        if ch in "+-":
            adding = ch == "+"
            continue
        if ch in LIST_MODES:
            if not params:
                # Each list once per command, as solanum: "MODE #c bbbb..." sent the
                # ban list once per letter (500 lists, ~15 MB, from one 512-byte line).
                if ch in listed:
                    continue
                listed.add(ch)
                # As solanum ("non-ops cant see +eI lists"): +e and +I only to channel
                # operators (and SAMODE), for they say who gets past a ban or +i; 482
                # (once, below) to anyone else. +b and +q stay public, but a secret
                # channel's show an outsider only their end, as NAMES does: a setter's
                # mask would tell who is in it.
                if adding and ch in "eI" and not is_op:
                    denied = True
                elif adding:
                    hide = "s" in channel.modes and client not in channel.members
                    send_mask_list(core, client, channel, ch, hide=hide and not override)
                continue
            given = params.pop(0)
            extban = given.startswith(EXTBAN_PREFIX)
            mask = given if extban else normalize_mask(given)
            param_count += 1
            if param_count > PARAM_MODES_PER_COMMAND:
                break
            if not is_op:
                denied = True
                continue
            if extban and not is_valid_extban(mask):
                core.reply(client, N.ERR_INVALIDMODEPARAM, channel.name, ch, mask,
                           "Unknown extended ban (EXTBAN=$,a: $a, $a:<account>, $~a)")
                continue
            changed = _change_mask_list(core, client, channel, ch, adding, mask)
            if changed is not None:
                applied.append(("+" if adding else "-", ch, changed))
        elif ch == "k":
            if adding and not params:
                core.reply(client, N.ERR_INVALIDMODEPARAM, channel.name, "k", "*", "Key is missing")
                continue
            key = params.pop(0) if params else None
            param_count += 1
            if param_count > PARAM_MODES_PER_COMMAND:
                break
            if not is_op:
                denied = True
                continue
            if adding:
                assert key is not None
                if not key or " " in key or "," in key or len(key) > KEYLEN:
                    core.reply(client, N.ERR_INVALIDKEY, channel.name, "Key is not well-formed")
                    continue
                channel.key = key
                applied.append(("+", "k", key))
            elif channel.key is not None:
                channel.key = None
                applied.append(("-", "k", "*"))
        elif ch == "l":
            if adding:
                if not params:
                    core.reply(
                        client, N.ERR_INVALIDMODEPARAM, channel.name, "l", "*", "Limit is missing"
                    )
                    continue
                raw = params.pop(0)
                param_count += 1
                if param_count > PARAM_MODES_PER_COMMAND:
                    break
                if not is_op:
                    denied = True
                    continue
                if not is_digits(raw) or int(raw) <= 0:
                    core.reply(
                        client, N.ERR_INVALIDMODEPARAM, channel.name, "l", raw, "Invalid limit"
                    )
                    continue
                channel.limit = int(raw)
                applied.append(("+", "l", str(channel.limit)))
            else:
                if not is_op:
                    denied = True
                    continue
                if channel.limit is not None:
                    channel.limit = None
                    applied.append(("-", "l", None))
        elif ch in "ov":
            if not params:
                continue
            nick = params.pop(0)
            param_count += 1
            if param_count > PARAM_MODES_PER_COMMAND:
                break
            if not is_op:
                denied = True
                continue
            if not nick:
                continue  # as if missing: no 401 with an empty middle parameter
            target = core.nicks.get(core.fold(nick))
            if target is None:
                core.reply(client, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
                continue
            if target not in channel.members:
                core.reply(
                    client,
                    N.ERR_USERNOTINCHANNEL,
                    target.nick,
                    channel.name,
                    "They aren't on that channel",
                )
                continue
            if not set_prefix(channel, target, ch, adding):
                continue
            applied.append(("+" if adding else "-", ch, target.nick))
        elif ch in FLAG_MODES:
            if not is_op:
                denied = True
                continue
            flag_count += 1
            if flag_count > FLAG_MODES_PER_COMMAND:
                continue
            if adding and ch not in channel.modes:
                channel.modes.add(ch)
            elif not adding and ch in channel.modes:
                channel.modes.discard(ch)
            else:
                continue
            applied.append(("+" if adding else "-", ch, None))
        else:
            core.reply(client, N.ERR_UNKNOWNMODE, ch, "is unknown mode char to me")
    if denied:
        # Modern IRC, MODE: without the privileges to change modes, ERR_CHANOPRIVSNEEDED is
        # returned; that holds for non-members too (ergo, InspIRCd and solanum agree).
        core.reply(client, N.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")
    # Four 120-byte ban masks and the setter's mask do not fit one line: split the change
    # across MODE lines rather than let the relay cut the last mask short.
    relays = []
    for chunk in _fitting_chunks(client.mask, channel.name, applied):
        change = render_changes(chunk)
        relay = core.new_relay(client, "MODE", [channel.name, *change])
        core.fan_out(channel.members, relay)
        core.on_channel_event((channel,), client.mask, relay, " ".join(change))
        relays.append(relay_wire(client, relay))
    if relays:
        note_closed(core, channel, was_closed)
    if core.cluster and relays:
        publish_mode(core, channel, core.uid(client), relays)
    if relays and channel.folded in core.registered_channels:
        from .chanserv import channel_changed

        channel_changed(core, channel)
    return bool(relays)


def set_prefix(channel: Channel, target: Client, letter: str, adding: bool) -> bool:
    """Give or take a member's o or v; False when it had it, or lacked it, already."""
    modes = channel.members[target]
    if adding == (letter in modes):
        return False
    channel.members[target] = (
        "".join(sorted(modes + letter, key="ov".index)) if adding else modes.replace(letter, "")
    )
    return True


def publish_mode(core: ServerCore, channel: Channel, uid: str, relays: list[list[object]]) -> None:
    """A channel's MODE lines to the other nodes, with its metadata and prefixes as they
    now are."""
    from .channels import channel_record

    prefixes = {core.uid(m): p for m, p in channel.members.items()}
    core.publish("mode", (channel.folded,), uid, t=channel.folded,
                 ch=channel_record(channel), pre=prefixes, rs=relays)


def _fitting_chunks(
    source: str, name: str, applied: list[tuple[str, str, str | None]]
) -> list[list[tuple[str, str, str | None]]]:
    """``applied`` cut into runs whose MODE line fits 512 bytes, the bytes counted as
    each change is added (rendering each growing run was quadratic)."""
    # ":source MODE name " and CRLF; a run adds its modestring and " arg" per argument.
    base = utf8_size(source) + utf8_size(name) + len(":  MODE \r\n")
    chunks: list[list[tuple[str, str, str | None]]] = []
    size = 0
    sign = ""
    for change in applied:
        s, _letter, arg = change
        # The last argument may need a ':' (empty, or starting with one): counted for
        # any such argument, which at worst splits a line a byte early.
        extra = 0 if arg is None else 1 + utf8_size(arg) + _needs_colon(arg)
        if chunks and size + 1 + (s != sign) + extra <= MAX_LINE_BODY:
            chunks[-1].append(change)
            size += 1 + (s != sign) + extra
        else:
            chunks.append([change])
            size = base + 2 + extra
        sign = s
    return chunks


def _needs_colon(arg: str) -> bool:
    return not arg or arg[0] == ":" or " " in arg


def render_changes(applied: list[tuple[str, str, str | None]]) -> list[str]:
    out = ""
    sign = ""
    args: list[str] = []
    for s, letter, arg in applied:
        if s != sign:
            out += s
            sign = s
        out += letter
        if arg is not None:
            args.append(arg)
    return [out, *args]


def _change_mask_list(
    core: ServerCore, client: Client, channel: Channel, letter: str, adding: bool, mask: str
) -> str | None:
    """Add or remove ``mask`` on list mode ``letter``: the mask added (cut, ``_bounded``)
    or removed, None when the list did not change."""
    masks = channel.mask_list(letter)
    if not adding:
        # As given, or as it is added now: an entry may be from before the cut.
        for each in dict.fromkeys((mask, _bounded(core, mask))):
            folded = core.fold(each)
            before = len(masks)
            masks[:] = [b for b in masks if core.fold(b.mask) != folded]
            if len(masks) != before:
                return each
        return None
    if len(mask.encode()) > MAX_BAN_MASK:  # bytes: 200 characters can be 800
        core.reply(client, N.ERR_INVALIDMODEPARAM, channel.name, letter, "*", "Mask too long")
        return None
    mask = _bounded(core, mask)
    if sum(len(channel.mask_list(each)) for each in LIST_MODES) >= MAX_LIST_ENTRIES:
        what = LIST_MODES[letter][2].removeprefix("End of channel ")
        core.reply(client, N.ERR_BANLISTFULL, channel.name, mask, f"Channel {what} is full")
        return None
    folded = core.fold(mask)
    if any(core.fold(b.mask) == folded for b in masks):
        return None
    masks.append(Ban(mask, client.mask, int(core.clock())))
    return mask


def _bounded(core: ServerCore, mask: str) -> str:
    """A list mode's complete ``mask`` cut to what a user has: nick, user and host to
    NICKLEN, USERLEN and 63 (``bound_mask``), an extban's account to NICKLEN. Each entry
    is kept, listed, and in a cluster carried in every snapshot of its channel: a part
    longer than any user's took those bytes for nothing."""
    config = core.config
    if mask.startswith(EXTBAN_PREFIX):
        kind, colon, account = mask.partition(":")
        return kind + colon + account[:config.nicklen]
    return bound_mask(mask, config.nicklen, config.userlen)


def send_mask_list(
    core: ServerCore, client: Client, channel: Channel, letter: str, *, hide: bool = False
) -> None:
    """367/368 for +b, 348/349 for +e, 346/347 for +I, 728/729 for +q (``hide``: the
    end only); nothing for a client whose queued output is past its sendq (cut)."""
    if core.output_full(client):
        return
    entry, end, text = LIST_MODES[letter]
    where = [channel.name, "q"] if letter == "q" else [channel.name]
    for ban in [] if hide else channel.mask_list(letter):
        core.reply(client, entry, *where, ban.mask, ban.setter, str(ban.set_at))
    core.reply(client, end, *where, text)
