"""IRCv3 server-time formatting and parsing (ISO 8601, UTC, millisecond precision)."""

from __future__ import annotations

from datetime import UTC, datetime


def format_time(epoch: float) -> str:
    """Epoch seconds -> '2026-11-21T06:39:00.123Z'."""
    dt = datetime.fromtimestamp(epoch, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(text: str) -> float:
    """'2026-11-21T06:39:00.123Z' -> epoch seconds; raises ValueError on bad input."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
