"""Several server nodes as one network: Redis pub/sub backplane, nick leases, resync.

``events`` holds the effects the core emits and the wire format; ``apply`` is the
sans-IO side (what a remote event or snapshot does to a core); ``bus`` is the
asyncio side that talks to Redis.
"""

from __future__ import annotations

from server.config import ServerConfig


def config_problem(config: ServerConfig, backend: str) -> str | None:
    """Why ``config`` cannot run as a cluster node on ``backend`` (None: it can)."""
    if not config.cluster:
        return None
    if not config.redis:
        return "--cluster needs --redis URL (the backplane)"
    if not config.db:
        return "--cluster needs --db (a store shared by every node: postgresql://...)"
    if backend == "select":
        return "--cluster runs on the asyncio and uvloop backends only, not --backend select"
    return None
