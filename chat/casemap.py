"""IRC casemappings: how nick and channel names compare."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

Casemapping = Literal["ascii", "rfc1459", "strict-rfc1459"]

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"

_ASCII = str.maketrans(_UPPER, _LOWER)
_RFC1459 = str.maketrans(_UPPER + "[]\\~", _LOWER + "{}|^")
_STRICT = str.maketrans(_UPPER + "[]\\", _LOWER + "{}|")

_TABLES = {"ascii": _ASCII, "rfc1459": _RFC1459, "strict-rfc1459": _STRICT}


def casefold(name: str, mapping: Casemapping = "rfc1459") -> str:
    """Fold a nick or channel name so that equal names compare equal."""
    return name.translate(_TABLES[mapping])


def folder(mapping: Casemapping) -> Callable[[str], str]:
    table = _TABLES[mapping]

    def fold(name: str) -> str:
        return name.translate(table)

    return fold


def is_casemapping(name: str) -> bool:
    return name in _TABLES
