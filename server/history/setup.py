"""Build the history service from the config; retention for the transports' timers."""

from __future__ import annotations

import logging
import time

from server.config import ServerConfig

from .service import HistoryService, build_history

log = logging.getLogger("chat.server.history")

__all__ = ["build_history", "prune_history"]

PRUNE_BUDGET = 5000  # rows per pass: keeps each pass short on the loop thread
# Transit rows (model.TRANSIT_PREFIX) serve only the recovery after a gap in a node's
# events, which reads back to the last contact with that node (less clock skew): seconds
# after a lost event, as long as Redis was away after an outage. An hour covers any
# outage not long since noticed and dealt with by hand; a row that old is kept for
# nothing, as they are written at the rate of cross-node private messages.
TRANSIT_MAX_AGE_MS = 3_600_000
# Deleting transit rows goes on in further passes of PRUNE_BUDGET while each finds that
# many (they are written at the rate of cross-node private messages, and must not pile
# up), up to this many per retention pass.
TRANSIT_PRUNE_ROUNDS = 10


def prune_history(history: HistoryService, config: ServerConfig) -> int:
    """One retention pass: transit rows past TRANSIT_MAX_AGE_MS, then what the retention
    settings drop. Returns how many rows the latter removed."""
    now_ms = int(time.time() * 1000)
    prune_transit(history, now_ms)
    max_age_ms = config.history_max_age_days * 86_400_000
    if config.history_max_rows <= 0 and max_age_ms <= 0:
        return 0
    try:
        deleted = history.store.prune(
            config.history_max_rows, max_age_ms, now_ms, PRUNE_BUDGET
        )
    except Exception:
        log.exception("history retention pass failed")
        return 0
    if deleted:
        log.info("retention removed %d old messages", deleted)
        history.pruned(deleted)  # cached windows may hold what was just removed
    return deleted


def prune_transit(history: HistoryService, now_ms: int) -> int:
    """Delete transit rows older than TRANSIT_MAX_AGE_MS, whatever the retention settings
    (keeping everything must not keep these). No cached window holds them, so the cache
    is left alone. Returns how many were removed."""
    removed = 0
    try:
        for _ in range(TRANSIT_PRUNE_ROUNDS):
            deleted = history.store.prune_transit(now_ms - TRANSIT_MAX_AGE_MS, PRUNE_BUDGET)
            removed += deleted
            if deleted < PRUNE_BUDGET:
                break
    except Exception:
        log.exception("pruning transit rows failed")
    if removed:
        log.debug("retention removed %d transit rows", removed)
    return removed
