"""A draft/multiline fallback carries the client tags on its first line only, and they
count towards max-bytes, on every backend (fourth hostile round, item 2)."""

from __future__ import annotations

import pytest

from server.config import ServerConfig
from tests.conftest import RunningServer
from tests.server.test_client_tag_cost import BIG, history_of
from tests.server.test_multiline import config, read_multiline, send_batch, trio


@pytest.fixture
def server_config() -> ServerConfig:
    return config()



async def test_fallback_lines_after_the_first_carry_no_client_tags(
    server: RunningServer,
) -> None:
    alice, bob, charlie = await trio(server)
    await send_batch(alice, "#test", ["one", "two", "three"],
                     opening_tags=f"+draft/reply=abc;+x={BIG}")
    start, _lines = await read_multiline(bob)  # the batch form: the tags once
    assert start.tags["+x"] == BIG and start.tags["+draft/reply"] == "abc"
    fallback = [await charlie.expect("PRIVMSG") for _ in range(3)]
    assert [m.params[1] for m in fallback] == ["one", "two", "three"]
    assert fallback[0].tags["+x"] == BIG and fallback[0].tags["+draft/reply"] == "abc"
    assert [sorted(m.tags) for m in fallback[1:]] == [["time"], ["time"]]
    # Replayed from history the same way (and the oversized tag was not kept).
    got = await history_of(server, "plainh", "#test")
    assert [m.params[1] for m in got] == ["one", "two", "three"]
    assert got[0].tags["+draft/reply"] == "abc" and "+x" not in got[0].tags
    assert [sorted(k for k in m.tags if k[0] == "+") for m in got] == [["+draft/reply"], [], []]


async def test_client_tags_count_towards_max_bytes(server: RunningServer) -> None:
    """max-bytes 4096: 3,000 bytes of tags (2,500 past the free 512) and 2,000 of text
    are too much; 4,000 bytes of text under a small reply tag pass."""
    alice, bob, charlie = await trio(server)
    lines = ["x" * 399] * 5  # 2,000 bytes with the line feeds
    await send_batch(alice, "#test", lines, opening_tags=f"label=big;+x={BIG}")
    fail = await alice.expect("FAIL")
    assert fail.params[:3] == ["BATCH", "MULTILINE_MAX_BYTES", "4096"]
    assert fail.tags["label"] == "big"
    assert [m.command for m in await charlie.sync()] == []
    await send_batch(alice, "#test", ["y" * 399] * 10, opening_tags="+draft/reply=abc")
    _start, got = await read_multiline(bob)
    assert [m.params[1] for m in got] == ["y" * 399] * 10
