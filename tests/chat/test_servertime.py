"""chat.servertime: the IRCv3 server-time tag format."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.servertime import format_time, parse_time

FORMAT = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")


@pytest.mark.parametrize(
    ("epoch", "text"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (0.5, "1970-01-01T00:00:00.500Z"),
        (1_000_000_000.0, "2001-09-09T01:46:40.000Z"),
        (1_763_707_140.123, "2025-11-21T06:39:00.123Z"),
        (1_763_707_140.1239, "2025-11-21T06:39:00.123Z"),  # truncated, not rounded
        (1_763_707_140.001, "2025-11-21T06:39:00.001Z"),
        (951_782_400.0, "2000-02-29T00:00:00.000Z"),  # leap day
        (4_102_444_799.999, "2099-12-31T23:59:59.999Z"),
        # The year is four digits however small: '999-…' and '1-…' are not server-time.
        (-30_610_224_000.0, "1000-01-01T00:00:00.000Z"),
        (-30_641_760_000.0, "0999-01-01T00:00:00.000Z"),
        (-62_135_596_800.0, "0001-01-01T00:00:00.000Z"),
        (-62_135_596_799.007, "0001-01-01T00:00:00.993Z"),  # a float a few µs off
        (-0.5, "1969-12-31T23:59:59.500Z"),
        (253_402_300_799.999, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_format_time(epoch: float, text: str) -> None:
    assert format_time(epoch) == text
    assert parse_time(text) == pytest.approx(epoch, abs=0.001)


def test_format_is_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert format_time(0.0) == "1970-01-01T00:00:00.000Z"
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2025-11-21T06:39:00.123Z", 1_763_707_140.123),
        ("2025-11-21T06:39:00Z", 1_763_707_140.0),
        ("2025-11-21T06:39:00.123456Z", 1_763_707_140.123456),
        ("2025-11-21T07:39:00.123+01:00", 1_763_707_140.123),
        ("2025-11-21T06:39:00.123+00:00", 1_763_707_140.123),
        ("2025-11-21T06:39:00.123", 1_763_707_140.123),  # naive is taken as UTC
    ],
)
def test_parse_time_accepts_iso_forms(text: str, epoch: float) -> None:
    assert parse_time(text) == pytest.approx(epoch, abs=1e-6)


@pytest.mark.parametrize(
    "text",
    ["", "yesterday", "2025-13-01T00:00:00.000Z", "2025-11-21T25:00:00.000Z", "Z", "12345"],
)
def test_parse_time_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


# 1970 .. 2200: well inside the range where a float epoch has sub-microsecond precision.
epochs = st.floats(min_value=0.0, max_value=7_258_118_400.0, allow_nan=False)


@settings(deadline=None)
@given(epochs)
def test_format_shape_and_parse_round_trip(epoch: float) -> None:
    text = format_time(epoch)
    assert FORMAT.match(text), text
    back = parse_time(text)
    assert abs(back - epoch) < 0.001 + 1e-6
    # Formatting what was parsed gives the same text back exactly.
    assert format_time(back) == text


@settings(deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1),
        max_value=datetime(2200, 1, 1),
    ).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC))
)
def test_text_round_trip(moment: datetime) -> None:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    assert format_time(parse_time(text)) == text
    assert parse_time(text) == pytest.approx(moment.timestamp(), abs=1e-6)


@pytest.mark.parametrize("epoch", [-62_135_596_800.001, 253_402_300_800.0])
def test_format_time_refuses_what_has_no_four_digit_year(epoch: float) -> None:
    with pytest.raises(ValueError):
        format_time(epoch)


@settings(deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))
    .map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC))
)
def test_every_year_round_trips_padded(moment: datetime) -> None:
    # Any time server-time can spell formats back to the same text, in every year.
    text = (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z")
    assert format_time(parse_time(text)) == text
    assert FORMAT.match(text)


@settings(deadline=None)
@given(epochs, epochs)
def test_text_order_is_time_order(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert format_time(lo) <= format_time(hi)
