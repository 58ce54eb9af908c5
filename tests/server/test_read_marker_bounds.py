"""MARKREAD times before 1970 over real TCP on every backend: refused with FAIL, kept
nowhere, and later JOINs of the channel complete, with or without an account."""

from __future__ import annotations

import pytest

from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask
from tests.server.test_read_marker import CAPS, markreads, session

# ISO 8601 with an offset: the year 1 as written, the year 0 in UTC, which no
# server-time can spell.
BEFORE_YEAR_1 = ["timestamp=0001-01-01T00:00:00+00:01", "timestamp=0001-01-01T00:00:00+23:59"]
BEFORE_1970 = "timestamp=1969-12-31T23:59:59.999Z"


async def refused_then_joined(c: IRCTestClient) -> None:
    for bad in [*BEFORE_YEAR_1, BEFORE_1970]:
        msgs = await ask(c, f"MARKREAD #club {bad}")
        assert [(m.command, m.params) for m in msgs] == [
            ("FAIL", ["MARKREAD", "INVALID_PARAMS", bad, "Invalid timestamp"])], msgs
    lines = await c.join("#club")  # up to its 366
    assert "353" in [m.command for m in lines], lines
    assert markreads(lines) == [["#club", "*"]]


async def test_a_time_before_1970_is_refused_without_an_account(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    guest = await server.client("guest", CAPS)
    await refused_then_joined(guest)
    assert markreads(await ask(guest, "MARKREAD #club")) == [["#club", "*"]]
    assert "handler for MARKREAD failed" not in caplog.text


async def test_a_time_before_1970_is_refused_for_an_account(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    first = await session(server, "ann_a", register=True)
    second = await session(server, "ann_b")
    await refused_then_joined(first)
    assert markreads(await second.sync()) == []  # nothing moved, nothing told
    await refused_then_joined(second)
    assert "handler for MARKREAD failed" not in caplog.text
