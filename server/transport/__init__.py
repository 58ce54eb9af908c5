"""Event loops that drive the sans-IO core: asyncio, uvloop, and a selectors loop."""

from __future__ import annotations

import logging
from collections.abc import Callable

from server.config import ServerConfig

log = logging.getLogger("chat.server.transport")


def resolve_backend(backend: str) -> str:
    """'auto' -> uvloop when importable, else asyncio."""
    if backend != "auto":
        return backend
    from .asyncio_transport import uvloop_available

    return "uvloop" if uvloop_available() else "asyncio"


def run(config: ServerConfig, reloader: Callable[[], ServerConfig] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; return the process exit code."""
    backend = resolve_backend(config.backend)
    if backend == "uvloop":
        from .asyncio_transport import uvloop_available

        if not uvloop_available():
            log.error("uvloop is not installed; use --backend asyncio or select")
            return 2
    from server.cluster import config_problem

    problem = config_problem(config, backend)
    if problem is not None:
        log.error("%s", problem)
        return 2
    log.info("backend: %s", backend)
    from server.history.stores import StoreOpenError

    try:
        if backend == "select":
            from .select_transport import run as run_select

            return run_select(config, reloader)
        from .asyncio_transport import run as run_asyncio

        return run_asyncio(config, backend, reloader)
    except StoreOpenError as exc:
        log.error("%s", exc)
        return 1
