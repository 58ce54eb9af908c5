"""MONITOR (IRCv3): who watches which nick, so 730/731 go out as nicks come and go."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .state import Client


class MonitorIndex:
    """Folded nick -> the clients watching it.

    Each watcher's own list is ``client.monitoring`` (folded -> the target as written),
    made on its first MONITOR, so a client that never uses MONITOR costs nothing.
    """

    def __init__(self) -> None:
        self.watchers: dict[str, set[Client]] = {}

    def add(self, client: Client, folded: str, target: str) -> None:
        if client.monitoring is None:
            client.monitoring = {}
        # The first spelling stays: adding "MNBo" after "mnbo" changes nothing.
        client.monitoring.setdefault(folded, target)
        self.watchers.setdefault(folded, set()).add(client)

    def remove(self, client: Client, folded: str) -> None:
        if client.monitoring is None or client.monitoring.pop(folded, None) is None:
            return
        watching = self.watchers.get(folded)
        if watching is not None:
            watching.discard(client)
            if not watching:
                del self.watchers[folded]

    def clear(self, client: Client) -> None:
        for folded in list(client.monitoring or ()):
            self.remove(client, folded)
        client.monitoring = None
