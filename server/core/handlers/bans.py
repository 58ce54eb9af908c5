"""Server bans: KLINE, UNKLINE, DLINE, UNDLINE and STATS k/d (operators only)."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from chat import numerics as N
from chat.message import Message

from ..bans import (
    DLINE,
    KLINE,
    MAX_REASON,
    BadMask,
    BanList,
    Removal,
    ServerBan,
    describe_duration,
    dline_mask,
    is_address,
    kline_mask,
    matches_too_many,
    parse_duration,
)
from .operator import is_oper

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Client

log = logging.getLogger("chat.server.oper")

MYSELF = "MYSELF"  # the keyword for a ban that matches the operator setting it
QUIT_REASON = {KLINE: "K-Lined", DLINE: "D-Lined"}  # what peers see; the reason is the user's
NAME = {KLINE: "K-Line", DLINE: "D-Line"}


@dataclass(frozen=True, slots=True)
class SaveBans:
    """Effect: write the bans now in force, and the removals kept, to the ban file."""

    bans: tuple[ServerBan, ...]
    removed: tuple[Removal, ...] = ()


def _save(core: ServerCore) -> None:
    core.emit(SaveBans(tuple(core.bans), tuple(core.bans.removals())))


def _split(params: list[str]) -> tuple[int | None, str, str]:
    """``[duration] <mask> [reason]`` -> (seconds or None, mask, reason)."""
    seconds = parse_duration(params[0]) if len(params) > 1 else None
    rest = params[1:] if seconds is not None else params
    reason = rest[1] if len(rest) > 1 and rest[1] else "No reason"
    return seconds, rest[0], reason[:MAX_REASON]


def _looks_like_nick(text: str) -> bool:
    return not any(ch in text for ch in "@.:/*?")


def handle_kline(core: ServerCore, client: Client, msg: Message) -> None:
    """KLINE [MYSELF] [minutes|30m|2h|7d] <user@host | nick> [:reason]."""
    if is_oper(core, client):
        _set(core, client, KLINE, msg.params)


def handle_dline(core: ServerCore, client: Client, msg: Message) -> None:
    """DLINE [MYSELF] [minutes|30m|2h|7d] <ip | cidr | nick> [:reason]."""
    if is_oper(core, client):
        _set(core, client, DLINE, msg.params)


def handle_unkline(core: ServerCore, client: Client, msg: Message) -> None:
    if is_oper(core, client):
        _unset(core, client, KLINE, msg.params[0])


def handle_undline(core: ServerCore, client: Client, msg: Message) -> None:
    if is_oper(core, client):
        _unset(core, client, DLINE, msg.params[0])


def _set(core: ServerCore, client: Client, kind: str, params: list[str]) -> None:
    # As on Ergo: a ban on one's own address needs the keyword, for it disconnects
    # everyone else there (a nick on the same host becomes a mask matching us).
    myself = bool(params) and params[0].upper() == MYSELF  # alone: 461, not a nick
    if myself:
        params = params[1:]
    seconds, target, reason = _split(params) if params else (None, "", "")
    if not target:
        core.reply(client, N.ERR_NEEDMOREPARAMS, f"{kind}LINE", "Not enough parameters")
        return
    if _looks_like_nick(target):
        user = core.nicks.get(core.fold(target))
        if user is None or not user.registered:
            core.reply(client, N.ERR_NOSUCHNICK, target, "No such nick/channel")
            return
        # A user on another node is known here by their (possibly cloaked) host only.
        if kind == DLINE and user.remote is not None and not is_address(user.ip):
            core.notice(client, f"{user.nick} is on another server, whose address is not "
                                "known here: D-line the address")
            return
        target = user.ip if kind == DLINE else f"*@{user.ip}"
    try:
        mask = kline_mask(target, core.config.userlen) if kind == KLINE else dline_mask(target)
    except BadMask as exc:
        core.notice(client, f"Not a valid {NAME[kind]}: {exc}")
        return
    now = core.clock()
    expires = None if not seconds else now + seconds
    setter = f"{client.nick} ({client.oper_name or '-'})"
    ban = ServerBan(kind, mask, reason, setter, now, expires)
    probe = BanList(core.fold)
    probe.add(ban)
    # Before the MYSELF question: its answer would not make such a ban acceptable.
    if _matches_most(core, probe):
        core.notice(client, f"Not a valid {NAME[kind]}: {mask} matches everyone")
        return
    if not myself and matching_ban(probe, client) is not None:
        words = list(params)
        if len(words) > (2 if seconds is not None else 1):  # the reason: trailing again
            words[-1] = ":" + words[-1]
        again = " ".join([f"/{kind}LINE", MYSELF, *words])
        core.notice(client, f"The {NAME[kind]} [{mask}] matches you, and would disconnect "
                            f"everyone at your address; to set it anyway: {again}")
        return
    replaced, removed = add_ban(core, ban)
    if core.cluster:
        core.publish("ban", (), core.uid(client), b=ban.to_record())
    length = f"temporary {describe_duration(seconds)} " if seconds else ""
    verb = "Updated" if replaced is not None else "Added"
    note = f", {removed} disconnected" if removed else ""
    core.notice(client, f"{verb} {length}{NAME[kind]} [{mask}] ({reason}){note}")
    core.snotice(f"{client.nick} {verb.lower()} {length}{NAME[kind]} for [{mask}] [{reason}]",
                 skip=client)
    log.info("operator %s %s %s%s [%s] (%s)", client.nick, verb.lower(), length, NAME[kind],
             mask, reason, extra={"event": "oper", "action": "ban"})


def _matches_most(core: ServerCore, probe: BanList) -> bool:
    """True when the ban in ``probe`` would match (nearly) every user connected here.

    Hosts are cloaks, so a mask that looks narrow can match everyone (InspIRCd's
    "insane" check). Clustered, only this node's users count: it knows the others by
    their cloaks alone, and a ban that would empty this node is wrong whatever the rest
    of the network holds. A connection still registering does not count (a flood of
    them would dilute the share).
    """
    users = [c for c in core.clients.values() if c.registered and c.closing is None]
    matched = sum(1 for c in users if matching_ban(probe, c) is not None)
    return matches_too_many(matched, len(users))


def _unset(core: ServerCore, client: Client, kind: str, target: str) -> None:
    named = _masks_named(core, kind, target)
    mask = next((m for m in named if core.bans.get(kind, m) is not None), None)
    if mask is None:
        core.notice(client, f"No {NAME[kind]} for [{target}]")
        return
    now = core.clock()
    remove_ban(core, Removal(kind, mask, now))
    if core.cluster:
        core.publish("unban", (), core.uid(client), t=kind, m=mask, at=now)
    core.notice(client, f"{NAME[kind]} for [{mask}] is removed")
    core.snotice(f"{client.nick} has removed the {NAME[kind]} for [{mask}]", skip=client)
    log.info("operator %s removed %s %s", client.nick, NAME[kind], mask,
             extra={"event": "oper", "action": "unban"})


def _masks_named(core: ServerCore, kind: str, target: str) -> list[str]:
    """The masks UNKLINE/UNDLINE ``target`` may name: as given, or as a K-line is cut
    now (one set before the cut is kept whole)."""
    masks = []
    for userlen in (None,) if kind == DLINE else (None, core.config.userlen):
        with contextlib.suppress(BadMask):
            masks.append(dline_mask(target) if kind == DLINE else kline_mask(target, userlen))
    return masks or [target]


def add_ban(core: ServerCore, ban: ServerBan) -> tuple[ServerBan | None, int]:
    """Put a ban in force here and save it; returns (the ban it replaced, users disconnected)."""
    replaced = core.bans.add(ban)
    _save(core)
    removed = 0
    for other in list(core.clients.values()):
        match = banned_by(core, other) if other.closing is None else None
        if match is None:
            continue
        if "o" in other.modes:  # operators stay: a ban must not lock out its own setter
            if match is ban:
                core.notice(other, f"*** A {NAME[ban.kind]} [{ban.mask}] matches you")
            continue
        refuse(core, other, match)
        removed += 1
    return replaced, removed


def remove_ban(core: ServerCore, removal: Removal) -> ServerBan | None:
    """Lift a ban here and save (the removal too, for the cluster); returns the ban."""
    ban = core.bans.remove(removal.kind, removal.mask, removal.at)
    _save(core)
    return ban


def merge_remote(core: ServerCore, bans: list[ServerBan], removals: list[Removal]) -> None:
    """Another node's bans and removals (an event or its snapshot): the newer change to
    each mask wins, so nodes that missed events agree again."""
    now = core.clock()
    for removal in removals:
        if core.bans.is_news_removal(removal):
            remove_ban(core, removal)
    for ban in bans:
        if (ban.expires is None or ban.expires > now) and core.bans.is_news(ban):
            add_ban(core, ban)


def expire_bans(core: ServerCore) -> None:
    """Drop the temporary bans whose time is up (from the core's tick)."""
    gone = core.bans.expire(core.clock())
    for ban in gone:
        log.info("%s [%s] expired", NAME[ban.kind], ban.mask)
        # Every node expires its own copy: each tells only its own operators.
        core.snotice(f"Temporary {NAME[ban.kind]} for [{ban.mask}] expired", local=True)
    if gone:
        _save(core)


def banned_by(core: ServerCore, client: Client) -> ServerBan | None:
    """The ban that shuts this local connection out, if any."""
    return matching_ban(core.bans, client)


def matching_ban(bans: BanList, client: Client) -> ServerBan | None:
    """The ban in ``bans`` that this local connection matches, if any."""
    if client.remote is not None:
        return None
    return bans.dline_for(client.ip) or (
        bans.kline_for(client.user, client.ip, client.host) if client.user else None
    )


def refuse(core: ServerCore, client: Client, ban: ServerBan) -> None:
    """465 with the operator's reason, then ERROR and close; peers see only K-/D-Lined."""
    core.reply(client, N.ERR_YOUREBANNEDCREEP, f"You are banned from this server- {ban.reason}")
    core.disconnect(client, QUIT_REASON[ban.kind])


def stats_bans(core: ServerCore, client: Client, kind: str) -> None:
    """STATS k (216 per K-line) or d (225 per D-line), for operators."""
    if not is_oper(core, client):
        return
    for ban in core.bans:
        if ban.kind != kind:
            continue
        reason = ban.reason
        if ban.expires is not None:
            until = datetime.fromtimestamp(ban.expires, UTC).strftime("%Y-%m-%d %H:%M UTC")
            reason = f"{reason} (until {until})"
        if kind == KLINE:
            user, _, host = ban.mask.rpartition("@")
            core.reply(client, N.RPL_STATSKLINE, "K", host, "*", user, reason)
        else:
            core.reply(client, N.RPL_STATSDLINE, "D", ban.mask, reason)
