"""chat.msgid: unique, sortable message ids."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.msgid import (
    MsgIdGenerator,
    decode,
    encode,
    is_msgid,
    msgid_at,
    msgid_ms,
    timestamp_ms,
)

NOW = 1_763_707_140.123  # 2025-11-21T06:39:00.123Z


def test_id_shape() -> None:
    msgid = MsgIdGenerator(node=7).next(NOW)
    assert len(msgid) == 16
    assert is_msgid(msgid)
    assert msgid.isascii() and msgid.isalnum() and msgid == msgid.upper()
    # Crockford base32 leaves out the easily confused letters.
    assert not set(msgid) & set("ILOU")


def test_timestamp_and_node_are_embedded() -> None:
    msgid = MsgIdGenerator(node=0xBEEF).next(NOW)
    assert timestamp_ms(msgid) == int(NOW * 1000)
    assert decode(msgid) & 0xFFFF == 0xBEEF


def test_node_is_masked_to_16_bits() -> None:
    msgid = MsgIdGenerator(node=0x1_0005).next(NOW)
    assert decode(msgid) & 0xFFFF == 5
    assert timestamp_ms(msgid) == int(NOW * 1000)


def test_random_node_when_none_given() -> None:
    nodes = {decode(MsgIdGenerator().next(NOW)) & 0xFFFF for _ in range(20)}
    assert len(nodes) > 1  # 20 draws of 16 random bits are not all equal


def test_same_millisecond_ids_are_unique_and_increasing() -> None:
    gen = MsgIdGenerator(node=1)
    ids = [gen.next(NOW) for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert ids == sorted(ids)
    assert {timestamp_ms(i) for i in ids} == {int(NOW * 1000)}


def test_clock_going_backwards_still_increases() -> None:
    gen = MsgIdGenerator(node=1)
    first = gen.next(NOW)
    earlier = gen.next(NOW - 3600)  # the wall clock jumped back an hour
    assert earlier > first
    assert timestamp_ms(earlier) == timestamp_ms(first)  # held at the last time seen
    later = gen.next(NOW + 1)
    assert later > earlier
    assert timestamp_ms(later) == int((NOW + 1) * 1000)


def test_last_ms_is_the_millisecond_of_the_last_id() -> None:
    """What the core stamps a message with (its time tag, its stored time), so that
    the store can find a row by its msgid's millisecond."""
    gen = MsgIdGenerator(node=1)
    for now in (NOW, NOW - 3600, NOW + 1):
        msgid = gen.next(now)
        assert gen.last_ms == timestamp_ms(msgid) == msgid_ms(msgid)
    assert gen.last_ms == int((NOW + 1) * 1000)


def test_msgid_ms_of_what_is_not_an_id() -> None:
    assert msgid_ms("not-a-msgid") is None
    assert msgid_ms("0" * 15) is None  # too short
    assert msgid_ms("I" * 16) is None  # I is not in the alphabet
    assert msgid_ms("0" * 16) == 0


def test_msgid_at_names_its_millisecond() -> None:
    msgid = msgid_at(1_800_000_000_123, 0xABCD_1234)
    assert is_msgid(msgid) and msgid_ms(msgid) == 1_800_000_000_123
    assert decode(msgid) & 0xFFFFFFFF == 0xABCD_1234
    assert msgid_at(5, 1) < msgid_at(5, 2) < msgid_at(6, 0)  # the order is the time's


def test_counter_overflow_borrows_the_next_millisecond() -> None:
    gen = MsgIdGenerator(node=1)
    ids = [gen.next(NOW) for _ in range(0x10000 + 3)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    ms = int(NOW * 1000)
    assert timestamp_ms(ids[0xFFFF]) == ms
    assert timestamp_ms(ids[0x10000]) == ms + 1
    # The real clock reaching the borrowed millisecond does not repeat an id.
    assert gen.next(NOW + 0.001) > ids[-1]


def test_later_millisecond_sorts_after_across_generators() -> None:
    a = MsgIdGenerator(node=0xFFFF)
    b = MsgIdGenerator(node=0)
    for _ in range(5):
        a.next(NOW)  # a's counter is ahead, its node is larger
    assert b.next(NOW + 0.002) > a.next(NOW)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0123456789ABCDE",  # 15 chars
        "0123456789ABCDEFG",  # 17 chars
        "0123456789ABCDEI",  # I is not in the alphabet
        "0123456789ABCDEU",
        "0123456789abcdef",  # lowercase is not what we emit
        "0123456789ABCD-F",
        "0123456789ABCD F",
    ],
)
def test_is_msgid_rejects(text: str) -> None:
    assert not is_msgid(text)


def test_is_msgid_accepts_the_alphabet() -> None:
    assert is_msgid("0123456789ABCDEF")
    assert is_msgid("GHJKMNPQRSTVWXYZ")
    assert is_msgid("0" * 16)
    assert is_msgid("Z" * 16)


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=(1 << 80) - 1))
def test_encode_decode_round_trip(value: int) -> None:
    text = encode(value)
    assert len(text) == 16
    assert is_msgid(text)
    assert decode(text) == value


@settings(deadline=None)
@given(
    st.integers(min_value=0, max_value=(1 << 80) - 1),
    st.integers(min_value=0, max_value=(1 << 80) - 1),
)
def test_string_order_is_numeric_order(a: int, b: int) -> None:
    assert (encode(a) < encode(b)) == (a < b)


@settings(deadline=None)
@given(
    st.floats(min_value=1.0e9, max_value=4.0e9, allow_nan=False),
    st.lists(st.floats(min_value=-5.0, max_value=5.0, allow_nan=False), max_size=60),
    st.integers(min_value=0, max_value=0xFFFF),
)
def test_monotonic_under_any_clock(start: float, steps: list[float], node: int) -> None:
    """Whatever the clock does (stand still, jump back, jump ahead), ids strictly increase."""
    gen = MsgIdGenerator(node=node)
    now = start
    ids = [gen.next(now)]
    high = int(now * 1000)
    for step in steps:
        now += step
        high = max(high, int(now * 1000))
        msgid = gen.next(now)
        assert msgid > ids[-1]
        assert is_msgid(msgid)
        assert decode(msgid) & 0xFFFF == node
        # The embedded time never runs behind the clock's high-water mark.
        assert timestamp_ms(msgid) >= high
        ids.append(msgid)
    assert len(set(ids)) == len(ids)


@settings(deadline=None)
@given(
    st.floats(min_value=1.0e9, max_value=4.0e9, allow_nan=False),
    st.floats(min_value=0.002, max_value=1.0e6, allow_nan=False),
)
def test_fresh_generator_ids_sort_by_time(t1: float, gap: float) -> None:
    early = MsgIdGenerator(node=0xFFFF).next(t1)
    late = MsgIdGenerator(node=0).next(t1 + gap)
    assert early < late
    assert timestamp_ms(early) == int(t1 * 1000)
