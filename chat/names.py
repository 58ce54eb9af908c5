"""Nick and channel name validation."""

from __future__ import annotations

from .utf8 import utf8_size

CHANTYPES = "#&"
NICK_SPECIAL = "[]\\`_^{|}"
_NICK_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" + NICK_SPECIAL)
_NICK_REST = _NICK_FIRST | frozenset("0123456789-")
_CHANNEL_FORBIDDEN = frozenset(" ,\x07\x00\r\n:")


def is_valid_nick(nick: str, maxlen: int = 30) -> bool:
    """RFC 2812 nick grammar: letter or special first, then letters, digits, specials, '-'."""
    if not nick or len(nick) > maxlen:
        return False
    if nick[0] not in _NICK_FIRST:
        return False
    return _NICK_REST.issuperset(nick[1:])


def is_channel_name(name: str, chantypes: str = CHANTYPES) -> bool:
    """Whether the name is addressed as a channel (starts with a channel type)."""
    return bool(name) and name[0] in chantypes


def is_valid_channel(name: str, maxlen: int = 50, chantypes: str = CHANTYPES) -> bool:
    """``maxlen`` (CHANNELLEN) counts UTF-8 bytes, as TOPICLEN and KICKLEN do here and
    CHANNELLEN does in solanum, InspIRCd and ergo: 50 four-byte characters made lines
    that the other limits leave room for 200 bytes too long."""
    if len(name) < 2 or name[0] not in chantypes:
        return False
    # (Short names need no encoding. Text decoded with surrogateescape, as the parser
    # does, must not raise: utf8_size counts a surrogate as 3 bytes.)
    if len(name) > maxlen // 4 and utf8_size(name) > maxlen:
        return False
    return _CHANNEL_FORBIDDEN.isdisjoint(name)


def is_valid_username(user: str, maxlen: int = 10) -> bool:
    return bool(user) and not any(ch in " @\x00\r\n" for ch in user)
