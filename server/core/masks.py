"""Hostmask globs (bans): '*' and '?' wildcards compared under the casemapping."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache


@lru_cache(maxsize=4096)
def _compile(folded_mask: str) -> re.Pattern[str]:
    pattern = "".join(
        ".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in folded_mask
    )
    return re.compile(pattern, re.DOTALL)


def mask_matches(mask: str, target: str, fold: Callable[[str], str]) -> bool:
    return _compile(fold(mask)).fullmatch(fold(target)) is not None


def normalize_mask(mask: str) -> str:
    """Complete a partial ban mask: 'nick' -> 'nick!*@*', 'u@h' -> '*!u@h'."""
    if "!" not in mask and "@" not in mask:
        return f"{mask}!*@*"
    if "!" not in mask:
        return f"*!{mask}"
    if "@" not in mask:
        return f"{mask}@*"
    return mask
