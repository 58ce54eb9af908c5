"""Build the history service from the config; retention for the transports' timers."""

from __future__ import annotations

import logging
import time

from server.config import ServerConfig

from .service import HistoryService
from .sqlite_store import SQLiteStore

log = logging.getLogger("chat.server.history")

PRUNE_BUDGET = 5000  # rows per pass: keeps each pass short on the loop thread


def build_history(config: ServerConfig) -> HistoryService | None:
    """None when history is off (empty --db)."""
    if not config.db:
        return None
    store = SQLiteStore(config.db)
    cache = None
    if config.redis:
        from .cache import RedisHistoryCache

        cache = RedisHistoryCache.from_config(config)
    return HistoryService(store, cache)


def prune_history(history: HistoryService, config: ServerConfig) -> int:
    max_age_ms = config.history_max_age_days * 86_400_000
    if config.history_max_rows <= 0 and max_age_ms <= 0:
        return 0
    try:
        deleted = history.store.prune(
            config.history_max_rows, max_age_ms, int(time.time() * 1000), PRUNE_BUDGET
        )
    except Exception:
        log.exception("history retention pass failed")
        return 0
    if deleted:
        log.info("retention removed %d old messages", deleted)
    return deleted
