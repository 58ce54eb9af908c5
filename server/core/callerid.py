"""Caller ID (user mode +g): who has whom on their ACCEPT list, and when each +g user
was last told of a blocked message."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .state import Client

NOTIFY_INTERVAL = 60.0  # seconds between two 718s to one +g user (charybdis's caller_id_wait)


class AcceptIndex:
    """Accept lists hold users (``Client`` objects), not nick strings: an entry follows
    its user's nick changes and goes when the user does (charybdis keeps pointer lists
    both ways for the same reason).

    Each owner's own list is ``client.accepting`` (made on its first ACCEPT, dropped when
    it empties), so a client that never uses ACCEPT costs nothing. ``accepted_by`` is the
    reverse, so that a user who leaves is taken off every list with one lookup. Remote
    users (cluster) have lists here too: copies of what their node published.
    """

    def __init__(self) -> None:
        self.accepted_by: dict[Client, dict[Client, None]] = {}
        self.told: dict[Client, float] = {}  # +g user -> when it was last sent 718 (clock)

    def add(self, owner: Client, user: Client) -> None:
        if owner.accepting is None:
            owner.accepting = {}
        owner.accepting[user] = None
        self.accepted_by.setdefault(user, {})[owner] = None

    def remove(self, owner: Client, user: Client) -> bool:
        """Take ``user`` off ``owner``'s list; False when it was not there."""
        if owner.accepting is None or user not in owner.accepting:
            return False
        del owner.accepting[user]
        if not owner.accepting:
            owner.accepting = None
        holders = self.accepted_by.get(user)
        if holders is not None:
            holders.pop(owner, None)
            if not holders:
                del self.accepted_by[user]
        return True

    def replace(self, owner: Client, users: Iterable[Client]) -> None:
        """``owner``'s list becomes ``users`` (a remote user's list, as its node sent it)."""
        self.clear(owner)
        for user in users:
            self.add(owner, user)

    def clear(self, owner: Client) -> None:
        for user in list(owner.accepting or ()):
            self.remove(owner, user)

    def forget(self, client: Client) -> None:
        """``client`` is gone: its own list, and its place on everyone else's."""
        if client.accepting is not None:
            self.clear(client)
        holders = self.accepted_by.pop(client, None)
        if holders is not None:
            for owner in holders:
                if owner.accepting is not None:
                    owner.accepting.pop(client, None)
                    if not owner.accepting:
                        owner.accepting = None
        self.told.pop(client, None)

    def may_notify(self, target: Client, now: float) -> bool:
        """Whether ``target`` may be sent a 718 now (once per NOTIFY_INTERVAL); if so,
        that it was."""
        last = self.told.get(target)
        if last is not None and 0 <= now - last < NOTIFY_INTERVAL:  # (a clock set back: tell)
            return False
        self.told[target] = now
        return True


def accepts(target: Client, sender: Client) -> bool:
    """``sender`` is on ``target``'s accept list."""
    return target.accepting is not None and sender in target.accepting
