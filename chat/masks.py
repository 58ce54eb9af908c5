"""Hostmask globs (bans, WHO): '*' and '?' wildcards compared under the casemapping."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Glob:
    """A glob split on '*': each piece has a fixed length, so no regex ever backtracks.

    A single regex such as ``.*a.*a.*a.*b`` takes time exponential in the number of stars
    on a target that nearly matches; a ban mask is user input, so the pieces are matched
    one after another instead, each at its leftmost place (greedy is exact for globs).
    """

    head: re.Pattern[str]
    head_len: int
    middle: tuple[tuple[re.Pattern[str], int], ...]
    tail: re.Pattern[str] | None  # None: no '*' at all, head must be the whole target
    tail_len: int

    def matches(self, text: str) -> bool:
        if self.tail is None:
            return self.head.fullmatch(text) is not None
        end = len(text) - self.tail_len
        if end < self.head_len or self.head.match(text) is None:
            return False
        if self.tail.match(text, end) is None:
            return False
        pos = self.head_len
        for piece, length in self.middle:
            found = piece.search(text, pos, end)
            if found is None:
                return False
            pos = found.start() + length
        return True


def _piece(text: str) -> re.Pattern[str]:
    return re.compile("".join("." if ch == "?" else re.escape(ch) for ch in text), re.DOTALL)


def glob_pieces(mask: str) -> int:
    """The patterns a ``Glob`` of ``mask`` holds (what each match may try), uncompiled."""
    parts = mask.split("*")
    if len(parts) == 1:
        return 1
    return 2 + sum(1 for p in parts[1:-1] if p)


def _build(folded_mask: str) -> Glob:
    parts = folded_mask.split("*")
    if len(parts) == 1:
        return Glob(_piece(parts[0]), len(parts[0]), (), None, 0)
    middle = tuple((_piece(p), len(p)) for p in parts[1:-1] if p)
    return Glob(_piece(parts[0]), len(parts[0]), middle, _piece(parts[-1]), len(parts[-1]))


# The cache of masks matched again and again (K-lines, account extbans, the client's
# ignore list; a channel's bans keep their own compiled Glob), bounded by its size
# rather than its entries: a Glob takes ~520 bytes and ~70 more per piece, so 4,096 of
# 250 pieces held 76 MB. In units of a piece: at most ~4.6 MB, some 6,000 masks.
CACHE_UNITS = 65_536
ENTRY_UNITS = 8  # a Glob's own overhead, in pieces


class _GlobCache:
    """Least recently used Globs, evicted past ``CACHE_UNITS`` pieces in all."""

    def __init__(self, units: int) -> None:
        self.units = units
        self.used = 0
        self._globs: OrderedDict[str, Glob] = OrderedDict()

    def get(self, folded_mask: str) -> Glob:
        glob = self._globs.get(folded_mask)
        if glob is not None:
            self._globs.move_to_end(folded_mask)
            return glob
        glob = _build(folded_mask)
        self._globs[folded_mask] = glob
        self.used += _units(glob)
        while self.used > self.units and len(self._globs) > 1:
            _, old = self._globs.popitem(last=False)
            self.used -= _units(old)
        return glob


def _units(glob: Glob) -> int:
    return ENTRY_UNITS + len(glob.middle) + 2


_cache = _GlobCache(CACHE_UNITS)
_compile = _cache.get


def mask_matches(mask: str, target: str, fold: Callable[[str], str]) -> bool:
    return _compile(fold(mask)).matches(fold(target))


def compile_mask(mask: str, fold: Callable[[str], str]) -> Glob:
    """``mask`` folded and compiled, for the caller to keep while it matches many folded
    targets (LIST, WHO, a channel's ``Ban.glob``):
    ``compile_mask(m, fold).matches(fold(t)) == mask_matches(m, t, fold)``. Not cached:
    a stream of unique LIST and WHO masks would evict the masks matched again and again."""
    return _build(fold(mask))


def normalize_mask(mask: str) -> str:
    """Complete a partial ban mask: 'nick' -> 'nick!*@*', 'u@h' -> '*!u@h'."""
    if "!" not in mask and "@" not in mask:
        return f"{mask}!*@*"
    if "!" not in mask:
        return f"*!{mask}"
    if "@" not in mask:
        return f"{mask}@*"
    return mask


HOSTLEN = 63  # the longest host a mask needs to name (ratbox's and solanum's HOSTLEN)


def bound_mask(mask: str, nicklen: int, userlen: int, hostlen: int = HOSTLEN) -> str:
    """A complete ``nick!user@host`` mask with each part cut to the longest a user's
    can be, as ratbox's pretty_mask (solanum's too). Longer, a part is junk: a glob of
    many wildcards at best (cut, it may match more), otherwise it matches no one."""
    nick, bang, rest = mask.partition("!")
    user, at, host = rest.partition("@")
    return nick[:nicklen] + bang + user[:userlen] + at + host[:hostlen]


# Extended bans (solanum's syntax, ISUPPORT EXTBAN=$,a): "$a" matches users logged in
# to any account, "$a:<glob>" those whose account matches, "$~a" users logged in to
# none. They go in the b, e, I and q lists beside nick!user@host masks.
EXTBAN_PREFIX = "$"
EXTBAN_TYPES = "a"


def is_valid_extban(mask: str) -> bool:
    if mask in ("$a", "$~a"):
        return True
    return mask.startswith("$a:") and len(mask) > 3 and " " not in mask


def extban_matches(mask: str, account: str | None, fold: Callable[[str], str]) -> bool:
    """Whether the extban ``mask`` matches a user logged in to ``account`` (or none)."""
    if mask == "$~a":
        return account is None
    if account is None:
        return False
    if mask == "$a":
        return True
    return _compile(fold(mask[3:])).matches(fold(account))
