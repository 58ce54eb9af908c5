"""Build the history service from the config; retention for the transports' timers."""

from __future__ import annotations

import logging
import time

from server.config import ServerConfig

from .service import HistoryService, build_history

log = logging.getLogger("chat.server.history")

__all__ = ["build_history", "prune_history"]

PRUNE_BUDGET = 5000  # rows per pass: keeps each pass short on the loop thread


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
        history.pruned(deleted)  # cached windows may hold what was just removed
    return deleted
