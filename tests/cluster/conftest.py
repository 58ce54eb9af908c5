"""Cluster fixtures: a real redis-server and in-process nodes sharing one store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from server.config import ServerConfig
from server.transport.background import BackgroundServer, ephemeral
from tests.history.conftest import RedisServer, redis_server

__all__ = ["Cluster", "redis_server"]


class Cluster:
    """Nodes n1, n2, ... on free ports, one Redis, one SQLite file."""

    def __init__(self, redis: RedisServer, db: str) -> None:
        self.redis = redis
        self.db = db
        self.nodes: dict[str, BackgroundServer] = {}

    def config(self, node: str, **overrides: Any) -> ServerConfig:
        fields: dict[str, Any] = {
            "name": f"{node}.chat.local", "cluster_heartbeat": 0.2, "cluster_dead_after": 1.5,
            "nick_lease": 2.0, "ban_file": "", **overrides,
        }
        return replace(
            ephemeral(ServerConfig()),
            db=self.db, redis=self.redis.url, cluster=True, node_id=node, flood_burst=0,
            throttle_burst=0, max_per_host=0, account_limit=0, anti_spam_exit_message_time=0,
            **fields,
        )

    def start(self, node: str, **overrides: Any) -> int:
        server = BackgroundServer(self.config(node, **overrides), "asyncio")
        port = server.start()
        self.nodes[node] = server
        deadline = time.monotonic() + 10
        while not self.bus(node).subscribed.is_set():
            assert time.monotonic() < deadline, "node did not subscribe"
            time.sleep(0.02)
        return port

    def bus(self, node: str) -> Any:
        return self.nodes[node].server.bus  # type: ignore[attr-defined]

    def port(self, node: str) -> int:
        return self.nodes[node].port

    def stop(self, node: str, *, announce: bool = True) -> None:
        server = self.nodes.pop(node)
        server.server.announce_stop = announce  # type: ignore[attr-defined]
        server.stop()

    def close(self) -> None:
        for node in list(self.nodes):
            self.stop(node)


@pytest.fixture
def cluster(redis_server: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(redis_server, str(tmp_path / "shared.db"))
    try:
        yield c
    finally:
        c.close()
