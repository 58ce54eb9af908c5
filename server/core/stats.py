"""Plain counters the core keeps for metrics; read from another thread at scrape time."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class CoreStats:
    connections_opened: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # reason -> count
    registrations: int = 0
    deliveries: int = 0  # relayed messages queued to recipients
    relayed: dict[str, int] = field(default_factory=dict)  # command -> messages relayed
    sendq_disconnects: int = 0
    flood_disconnects: int = 0

    def refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1
