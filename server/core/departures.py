"""Where users left channels, for join playback: a fixed-size table of marks.

An entry is the 64-bit hash of ``"<channel> <who>"`` and the mark made when they
left (a msgid: 80 bits), kept in arrays allocated once. Nothing is allocated per
entry: one string per entry (an OrderedDict before) meant tens of thousands of small
long-lived objects made amid the churn of connections, which pinned pymalloc arenas
the transient objects around them had freed (the soak's RSS, docs/RELIABILITY.md).

The table is set-associative: a key goes to one of the WAYS slots of the set its
hash picks, replacing the oldest mark there. So it keeps about the newest
``sets * WAYS`` departures, older ones going first (not strictly: a full set drops
its oldest while another set still holds older ones). That is all join playback
needs: a departure not found plays the last lines, as for a newcomer. Two keys with
the same 64-bit hash (about one chance in 10^11 among 100,000 keys) would share a
mark.
"""

from __future__ import annotations

from array import array

from chat.msgid import decode, encode

WAYS = 4


class Departures:
    """``key -> mark`` for the newest departures, in fixed memory."""

    def __init__(self, sets: int = 4096) -> None:
        self._sets = sets
        slots = sets * WAYS
        self._hashes = array("q", bytes(8 * slots))
        self._marks = array("Q", bytes(8 * slots))  # the mark's top 64 bits; 0: empty
        self._nodes = array("H", bytes(2 * slots))  # ...and its low 16 (the node)

    @property
    def capacity(self) -> int:
        return self._sets * WAYS

    def __len__(self) -> int:
        return self.capacity - self._marks.count(0)

    def record(self, key: str, mark: str) -> None:
        value = decode(mark)
        h = hash(key)
        first = (h % self._sets) * WAYS
        slot = first
        for i in range(first, first + WAYS):
            if self._hashes[i] == h and self._marks[i]:
                slot = i
                break
            if self._marks[i] < self._marks[slot]:
                slot = i  # the oldest (or an empty one)
        self._hashes[slot] = h
        self._marks[slot] = value >> 16
        self._nodes[slot] = value & 0xFFFF

    def get(self, key: str) -> str | None:
        h = hash(key)
        first = (h % self._sets) * WAYS
        for i in range(first, first + WAYS):
            if self._hashes[i] == h and self._marks[i]:
                return encode((self._marks[i] << 16) | self._nodes[i])
        return None
