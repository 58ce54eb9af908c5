"""TOPICLEN, KICKLEN and AWAYLEN count UTF-8 bytes, cut at a character boundary; USER's
realname is cut to the length SETNAME accepts. Over real TCP, on every backend."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.utf8 import truncate_utf8
from server.config import ServerConfig
from tests.conftest import RunningServer, suite_config
from tests.server.helpers import ask, only

LIMIT = 100  # bytes, for every length under test
# Two ASCII characters, then 3-byte ones: byte LIMIT falls inside the 35th character, so
# a cut in characters (or in bytes, ignoring boundaries) shows.
TEXT = "ab" + "日本語" * 40  # 362 bytes
CUT = "ab" + ("日本語" * 40)[:32]  # 98 bytes: one more character would make 101


@pytest.fixture
def server_config() -> ServerConfig:
    return suite_config(topiclen=LIMIT, kicklen=LIMIT, awaylen=LIMIT)


def size(text: str) -> int:
    return len(text.encode())


def test_cut_text_is_what_was_expected() -> None:
    assert size(CUT) == LIMIT - 2 and truncate_utf8(TEXT, LIMIT) == CUT
    assert truncate_utf8(TEXT, LIMIT - 3) == CUT[:-1]
    assert truncate_utf8(TEXT, 1) == "a" and truncate_utf8("日", 2) == ""


@given(st.text(), st.integers(min_value=0, max_value=64))
def test_truncate_is_a_prefix_within_the_limit(text: str, limit: int) -> None:
    cut = truncate_utf8(text, limit)
    data = cut.encode("utf-8", "surrogatepass")
    assert text.startswith(cut) and len(data) <= limit
    if cut != text:  # the next character would not have fitted
        assert len(data) + len(text[len(cut)].encode("utf-8", "surrogatepass")) > limit


async def test_topic_is_cut_in_bytes_and_shown_alike_everywhere(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#c")
    await bob.join("#c")
    await alice.sync()
    await alice.send(f"TOPIC #c :{TEXT}")
    assert (await alice.expect("TOPIC")).params == ["#c", CUT]
    assert (await bob.expect("TOPIC")).params == ["#c", CUT]
    assert only(await ask(bob, "TOPIC #c"), "332")[0].params[-1] == CUT
    assert only(await ask(bob, "LIST #c"), "322")[0].params[-1] == CUT


async def test_kick_reason_is_cut_in_bytes(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#c")
    await bob.join("#c")
    await alice.sync()
    await alice.send(f"KICK #c bob :{TEXT}")
    assert (await bob.expect("KICK")).params == ["#c", "bob", CUT]


async def test_part_reason_is_cut_in_bytes(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#c")
    await bob.join("#c")
    await alice.sync()
    await bob.send(f"PART #c :{TEXT}")
    assert (await alice.expect("PART")).params == ["#c", CUT]


async def test_away_message_is_cut_in_bytes(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.send(f"AWAY :{TEXT}")
    await alice.expect("306")
    assert only(await ask(bob, "WHOIS alice"), "301")[0].params[-1] == CUT


async def test_user_realname_is_cut_to_what_setname_accepts(server: RunningServer) -> None:
    alice = await server.client()
    realname = "é" * 150  # 300 bytes; SETNAME takes 200
    await alice.send("NICK alice")
    await alice.send(f"USER alice 0 * :{realname}")
    await alice.expect("001")
    shown = only(await ask(alice, "WHOIS alice"), "311")[0].params[-1]
    assert shown == "é" * 100
    await alice.send("CAP REQ setname")
    await alice.expect("CAP")
    await alice.send(f"SETNAME :{shown}")  # what one registered with is always allowed back
    assert (await alice.expect("SETNAME")).params == [shown]
