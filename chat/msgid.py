"""Sortable unique message ids: 48-bit millisecond time + 16-bit counter + 16-bit node/random.

Encoded in Crockford base32 so the string order equals the time order.
"""

from __future__ import annotations

import os

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {ch: i for i, ch in enumerate(_ALPHABET)}
_LENGTH = 16  # 80 bits / 5


# Every two-character string, in the order of the 10-bit value it encodes.
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]


def encode(value: int) -> str:
    """The low 80 bits of ``value``, 16 characters, most significant first."""
    # Eight lookups of ten bits each: one id per relayed message, and a loop over the
    # sixteen characters cost three times as much.
    p = _PAIRS
    return (
        p[value >> 70 & 1023] + p[value >> 60 & 1023] + p[value >> 50 & 1023]
        + p[value >> 40 & 1023] + p[value >> 30 & 1023] + p[value >> 20 & 1023]
        + p[value >> 10 & 1023] + p[value & 1023]
    )


def decode(text: str) -> int:
    value = 0
    for ch in text:
        value = (value << 5) | _DECODE[ch]
    return value


def msgid_at(ms: int, low: int) -> str:
    """The id of millisecond ``ms`` whose low 32 bits (counter and node) are ``low``."""
    return encode((ms << 32) | (low & 0xFFFFFFFF))


class MsgIdGenerator:
    """Monotonic within one process: ids from later calls always sort after earlier ones."""

    def __init__(self, node: int | None = None) -> None:
        self._node = (node if node is not None else int.from_bytes(os.urandom(2), "big")) & 0xFFFF
        self._last_ms = 0
        self._counter = 0

    def next(self, now: float) -> str:
        ms = int(now * 1000)
        if ms <= self._last_ms:
            ms = self._last_ms
            self._counter += 1
            if self._counter > 0xFFFF:
                # Borrow the next millisecond rather than repeat an id.
                ms += 1
                self._counter = 0
        else:
            self._counter = 0
        self._last_ms = ms
        return encode((ms << 32) | (self._counter << 16) | self._node)  # once a message

    @property
    def last_ms(self) -> int:
        """The millisecond in the last id made: later than ``now`` had the clock gone
        back, or more than 65,536 ids been made in one millisecond."""
        return self._last_ms


def timestamp_ms(msgid: str) -> int:
    """The millisecond timestamp embedded in an id from MsgIdGenerator."""
    return decode(msgid) >> 32


def is_msgid(text: str) -> bool:
    return len(text) == _LENGTH and all(ch in _DECODE for ch in text)


def msgid_ms(text: str) -> int | None:
    """The millisecond an id names, or None if ``text`` is not one of ours."""
    return timestamp_ms(text) if is_msgid(text) else None
