"""Server bans set by operators: K-lines (user@host) and D-lines (IP or CIDR)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from chat.masks import HOSTLEN, mask_matches

KLINE = "K"
DLINE = "D"
MAX_SECONDS = 366 * 86400  # a temporary ban lasts at most a year
MAX_MASK = 128
MAX_REASON = 180  # leaves room for the 465 line around it
REMOVALS_KEPT = 30 * 86400  # seconds a lifted ban is remembered (see Removal)
# The narrowest networks a ban may cover: a /8 of IPv4 or a /24 of IPv6 is already a lot.
MIN_PREFIX = {4: 8, 6: 24}
# InspIRCd's <insane trigger="95.5">: a ban matching more of the users online than this
# is refused, whatever its mask looks like ('*@*.ip' matches every cloak).
INSANE_PERMILLE = 955
# Below this many users a share tells nothing about the mask: with the operator and the
# one user meant, a ban on their shared address matches "everyone" (MYSELF covers that).
INSANE_MIN_USERS = 3
_DURATION = re.compile(r"(\d{1,7})([smhdw]?)")
_UNIT_SECONDS = {"": 60, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BadMask(ValueError):
    """A ban mask the server refuses; the text says why."""


@dataclass(frozen=True, slots=True)
class ServerBan:
    kind: str  # KLINE or DLINE
    mask: str  # K: user@host (host: glob, IP or CIDR); D: IP or CIDR
    reason: str
    setter: str  # the operator's nick (and oper name)
    set_at: float  # wall-clock seconds
    expires: float | None  # wall-clock seconds; None: until removed

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Any) -> ServerBan:
        """A ban from its JSON form (the ban file, cluster events); ValueError if malformed."""
        if not isinstance(record, dict):
            raise ValueError("a ban is an object")
        kind, mask, reason = record.get("kind"), record.get("mask"), record.get("reason")
        setter, set_at, expires = record.get("setter"), record.get("set_at"), record.get("expires")
        if kind not in (KLINE, DLINE) or not isinstance(mask, str):
            raise ValueError("a ban needs kind K or D and a mask")
        if not isinstance(reason, str) or not isinstance(setter, str):
            raise ValueError("a ban needs a reason and a setter")
        if any(c in reason + setter for c in "\r\n\0"):  # they go into reply lines
            raise ValueError("a ban's reason and setter are single lines")
        if not isinstance(set_at, int | float) or not (
            expires is None or isinstance(expires, int | float)
        ):
            raise ValueError("a ban's times are numbers")
        canonical = kline_mask(mask) if kind == KLINE else dline_mask(mask)
        return cls(kind, canonical, reason, setter, float(set_at),
                   None if expires is None else float(expires))


@dataclass(frozen=True, slots=True)
class Removal:
    """A ban lifted at ``at``: kept a while so that a node that still has the ban
    (it was down) does not bring it back through its cluster snapshot."""

    kind: str
    mask: str
    at: float

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Any) -> Removal:
        if not isinstance(record, dict):
            raise ValueError("a removal is an object")
        kind, mask, at = record.get("kind"), record.get("mask"), record.get("at")
        if kind not in (KLINE, DLINE) or not isinstance(mask, str):
            raise ValueError("a removal needs kind K or D and a mask")
        if not isinstance(at, int | float):
            raise ValueError("a removal's time is a number")
        return cls(kind, mask, float(at))


def parse_duration(text: str) -> int | None:
    """Seconds from '30' (minutes, as in other servers), '90s', '30m', '2h', '7d' or '1w';
    None if ``text`` is not a duration. 0 means permanent."""
    found = _DURATION.fullmatch(text)
    if found is None:
        return None
    return min(int(found[1]) * _UNIT_SECONDS[found[2]], MAX_SECONDS)


def describe_duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min.", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _network(text: str) -> Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def dline_network(text: str, *, wide: bool = False) -> Network:
    """The network a D-line covers; BadMask when it is not an address or, unless
    ``wide``, is too wide."""
    net = _network(text)
    if net is None:
        raise BadMask(f"{text} is not an IP address or CIDR network")
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None:
        mapped = net.network_address.ipv4_mapped
        net = ipaddress.ip_network(f"{mapped}/{max(net.prefixlen - 96, 0)}", strict=False)
    elif isinstance(net, ipaddress.IPv6Network) and net.network_address.scope_id is not None:
        # 'fe80::1%<anything>' covers what 'fe80::1' does (a scope takes no part in
        # matching): kept, any text an operator typed after the '%' was saved and listed.
        net = ipaddress.IPv6Network((int(net.network_address), net.prefixlen))
    if not wide and net.prefixlen < MIN_PREFIX[net.version]:
        raise BadMask(f"{text} covers too many addresses (at most /{MIN_PREFIX[net.version]})")
    return net


def dline_mask(text: str, *, wide: bool = False) -> str:
    """The canonical text of a D-line: '192.0.2.0/24', or a lone address without '/32'."""
    net = dline_network(text, wide=wide)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def _matches_anything(glob: str, separators: str = "") -> bool:
    """True when ``glob`` is only wildcards (and ``separators``) with a '*' among them."""
    return "*" in glob and not glob.strip("*?" + separators)


def kline_mask(text: str, userlen: int | None = None) -> str:
    """The canonical user@host form of a K-line mask; BadMask when it would match everyone.
    With ``userlen`` (a new K-line) the user is cut to it and a host to HOSTLEN, as
    ratbox's find_user_host: no user's is longer, so a longer part was kept, saved and
    listed for nothing (a glob of many wildcards at best, which may match more, cut)."""
    if len(text) > MAX_MASK or " " in text or "," in text or "!" in text:
        raise BadMask(f"{text[:MAX_MASK]} is not a user@host mask")
    user, sep, host = text.rpartition("@")
    if not sep:
        user, host = "*", text
    user = user or "*"
    if not host:
        raise BadMask(f"{text} has no host")
    if userlen is not None:
        # A network is not cut: dline_mask gives it its short canonical form.
        user, host = user[:userlen], host if "/" in host else host[:HOSTLEN]
    # Every USER name is shown as '~name' (never verified): '~*' is everyone too.
    everyone = _matches_anything(user.removeprefix("~"))
    # A named user may be banned from anywhere ('~eve@*', as InspIRCd allows): only
    # when the user part is everyone does the host part have to narrow it down.
    if "/" in host:
        host = dline_mask(host, wide=not everyone)
    elif everyone and _matches_anything(host, ".:"):
        raise BadMask(f"{text} matches everyone")
    return f"{user}@{host}"


def matches_too_many(matched: int, online: int) -> bool:
    """True when a ban matching ``matched`` of the ``online`` users matches "everyone"."""
    return online >= INSANE_MIN_USERS and matched * 1000 > online * INSANE_PERMILLE


@dataclass(frozen=True, slots=True)
class _Rule:
    ban: ServerBan
    user: str  # K-lines: glob on the username ('*' for D-lines)
    host: str  # K-lines: glob on address and cloak, when not a network
    net: Network | None  # D-lines, and K-lines whose host is an IP or CIDR


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def is_address(text: str) -> bool:
    return _ip(text) is not None


class BanList:
    """The bans in force, keyed by (kind, folded mask); expired ones drop out on ``expire``.

    Between nodes the newer change to a mask wins: a ban set at ``set_at`` against a
    removal at ``at`` (last writer wins, by each node's wall clock).
    """

    def __init__(self, fold: Callable[[str], str]) -> None:
        self.fold = fold
        self._rules: dict[tuple[str, str], _Rule] = {}
        self._removed: dict[tuple[str, str], Removal] = {}
        self.dlines = 0  # counts: the connect path skips the checks when there are none
        self.klines = 0

    def __len__(self) -> int:
        return len(self._rules)

    def __bool__(self) -> bool:  # the tick has work while bans or removals are kept
        return bool(self._rules or self._removed)

    def __iter__(self) -> Iterator[ServerBan]:
        return iter(sorted((r.ban for r in self._rules.values()), key=lambda b: b.set_at))

    def key(self, kind: str, mask: str) -> tuple[str, str]:
        return kind, self.fold(mask)

    def get(self, kind: str, mask: str) -> ServerBan | None:
        rule = self._rules.get(self.key(kind, mask))
        return None if rule is None else rule.ban

    def removals(self) -> list[Removal]:
        return sorted(self._removed.values(), key=lambda r: r.at)

    def is_news(self, ban: ServerBan) -> bool:
        """True when ``ban`` (from another node) is newer than what is known of its mask."""
        key = self.key(ban.kind, ban.mask)
        removal = self._removed.get(key)
        if removal is not None and removal.at >= ban.set_at:
            return False
        rule = self._rules.get(key)
        return rule is None or rule.ban.set_at < ban.set_at

    def add(self, ban: ServerBan) -> ServerBan | None:
        """Put ``ban`` in force (replacing one on the same mask); returns the replaced one."""
        if ban.kind == DLINE:
            rule = _Rule(ban, "*", "*", dline_network(ban.mask))
        else:
            user, _, host = ban.mask.rpartition("@")
            net = _network(host) if ("/" in host or _ip(host) is not None) else None
            rule = _Rule(ban, user, host, net)
        key = self.key(ban.kind, ban.mask)
        old = self._rules.pop(key, None)
        if old is not None:
            self._count(old.ban, -1)
        self._removed.pop(key, None)  # set again after it was lifted
        self._rules[key] = rule
        self._count(ban, 1)
        return None if old is None else old.ban

    def remove(self, kind: str, mask: str, at: float | None = None) -> ServerBan | None:
        """Lift the ban on ``mask``; with ``at``, remember the removal (see Removal)."""
        key = self.key(kind, mask)
        if at is not None:
            known = self._removed.get(key)
            if known is None or known.at < at:
                self._removed[key] = Removal(kind, mask, at)
        rule = self._rules.pop(key, None)
        if rule is None:
            return None
        self._count(rule.ban, -1)
        return rule.ban

    def load(self, bans: Iterable[ServerBan], removals: Iterable[Removal], now: float) -> None:
        for ban in bans:
            if ban.expires is None or ban.expires > now:
                self.add(ban)
        for removal in removals:
            if now - removal.at < REMOVALS_KEPT and self.is_news_removal(removal):
                self.remove(removal.kind, removal.mask, removal.at)

    def is_news_removal(self, removal: Removal) -> bool:
        """True when ``removal`` is newer than the ban (or removal) known for its mask."""
        key = self.key(removal.kind, removal.mask)
        known = self._removed.get(key)
        if known is not None and known.at >= removal.at:
            return False
        rule = self._rules.get(key)
        return rule is None or rule.ban.set_at <= removal.at

    def expire(self, now: float) -> list[ServerBan]:
        """Drop the bans whose time is up (returned) and removals kept long enough."""
        gone = [r.ban for r in self._rules.values() if r.ban.expires is not None
                and r.ban.expires <= now]
        for ban in gone:
            self.remove(ban.kind, ban.mask)
        old = [k for k, r in self._removed.items() if now - r.at >= REMOVALS_KEPT]
        for key in old:
            del self._removed[key]
        return gone

    def dline_for(self, ip: str) -> ServerBan | None:
        if not self.dlines:
            return None
        addr = _ip(ip)
        if addr is None:
            return None
        for rule in self._rules.values():
            if rule.ban.kind == DLINE and rule.net is not None and addr in rule.net:
                return rule.ban
        return None

    def dline_refusal(self, ip: str) -> str | None:
        """Why a connection from ``ip`` is refused by a D-line (its ERROR's words and
        the metrics' reason), or None."""
        dline = self.dline_for(ip)
        return None if dline is None else f"D-Lined: {dline.reason}"

    def kline_for(self, user: str, ip: str, host: str) -> ServerBan | None:
        """The K-line matching ``user`` at ``ip`` (or its cloak ``host``), if any."""
        if not self.klines:
            return None
        addr = _ip(ip)
        fold = self.fold
        # USER names are unverified and shown as '~name': 'name@host' bans them too.
        bare = user[1:] if user.startswith("~") else user
        for rule in self._rules.values():
            if rule.ban.kind != KLINE:
                continue
            if not (mask_matches(rule.user, user, fold) or mask_matches(rule.user, bare, fold)):
                continue
            if rule.net is not None:
                if addr is not None and addr in rule.net:
                    return rule.ban
            elif mask_matches(rule.host, ip, fold) or mask_matches(rule.host, host, fold):
                return rule.ban
        return None

    def _count(self, ban: ServerBan, step: int) -> None:
        if ban.kind == DLINE:
            self.dlines += step
        else:
            self.klines += step
