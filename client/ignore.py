"""Ignored senders: nicks or ``nick!user@host`` masks with ``*`` and ``?``.

Messages, notices, CTCP requests and invites from a matching source are dropped
before they reach a buffer (so no query opens and no CTCP reply goes out); their
joins, parts, quits and nick changes update the member lists without a line.
Masks compare under the server's casemapping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from chat.masks import mask_matches, normalize_mask


class IgnoreList:
    def __init__(self, masks: Iterable[str] = (), fold: Callable[[str], str] = str.lower) -> None:
        self._fold = fold
        self._masks: dict[str, str] = {}  # folded full mask -> full mask
        for mask in masks:
            self.add(mask)

    def __len__(self) -> int:
        return len(self._masks)

    def masks(self) -> list[str]:
        return list(self._masks.values())

    def refold(self, fold: Callable[[str], str]) -> None:
        """The server's casemapping changed."""
        self._fold = fold
        self._masks = {fold(mask): mask for mask in self._masks.values()}

    def add(self, mask: str) -> str | None:
        """Ignore ``mask`` (a bare nick means ``nick!*@*``); the full mask, or None if known."""
        full = normalize_mask(mask)
        key = self._fold(full)
        if key in self._masks:
            return None
        self._masks[key] = full
        return full

    def remove(self, mask: str) -> str | None:
        return self._masks.pop(self._fold(normalize_mask(mask)), None)

    def matches(self, source: str | None) -> bool:
        """Whether a message from ``source`` (``nick!user@host``, or a bare nick) is ignored."""
        if not source or not self._masks:
            return False
        if "!" not in source:
            source += "!@"  # only masks that do not care about user and host match
        return any(mask_matches(mask, source, self._fold) for mask in self._masks.values())
