"""IRCv3 server-time formatting and parsing (ISO 8601, UTC, millisecond precision)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_time(epoch: float) -> str:
    """Epoch seconds -> '2026-11-21T06:39:00.123Z' (whole milliseconds, truncated);
    raises ValueError outside the years 1..9999.

    The year is always four digits: ``%Y`` wrote years below 1000 unpadded ('999-…'),
    which is not server-time and which parse_time refuses."""
    # A float epoch is a few units in the last place off the millisecond it was parsed
    # from (4 µs in the year 1, 30 µs in 9999): truncating that gave the millisecond
    # before, so those few units count as the next millisecond.
    ms = epoch * 1000
    try:
        dt = _EPOCH + timedelta(milliseconds=math.floor(ms + 4 * math.ulp(ms)))
    except OverflowError as e:
        raise ValueError(f"{epoch} is not in the years 1..9999") from e
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
            f"{dt.second:02d}.{dt.microsecond // 1000:03d}Z")


def parse_time(text: str) -> float:
    """'2026-11-21T06:39:00.123Z' -> epoch seconds; raises ValueError on bad input."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
