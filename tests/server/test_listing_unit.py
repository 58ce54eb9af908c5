"""LIST's ELIST filters (server.core.listing) against channels of known ages."""

from __future__ import annotations

from chat.casemap import folder
from server.core.listing import parse_list
from server.core.state import Channel

NOW = 1_800_000_000.0
FOLD = folder("rfc1459")


def channel(name: str, created_min_ago: int, topic_min_ago: int | None = None) -> Channel:
    ch = Channel(name=name, folded=FOLD(name), created=int(NOW - 60 * created_min_ago))
    if topic_min_ago is not None:
        ch.topic, ch.topic_time = "t", int(NOW - 60 * topic_min_ago)
    return ch


CHANNELS = [
    channel("#new", 2, topic_min_ago=1),
    channel("#week", 7 * 24 * 60, topic_min_ago=90),
    channel("#old", 365 * 24 * 60),  # no topic
]


def listed(*params: str) -> list[str]:
    query = parse_list(list(params), NOW, FOLD)
    return [c.name for c in CHANNELS if query.wants(c)]


def test_creation_time_windows_in_minutes() -> None:
    assert listed("C<10") == ["#new"]
    assert listed("C>10") == ["#week", "#old"]
    assert listed("C>10,C<20000") == ["#week"]
    assert listed("c<10") == ["#new"]  # solanum takes either case


def test_topic_time_windows_skip_channels_without_a_topic() -> None:
    assert listed("T<60") == ["#new"]
    assert listed("T>60") == ["#week"]
    assert listed("T<100") == ["#new", "#week"]


def test_masks_counts_and_names_combine() -> None:
    assert listed("#W*,#o*") == ["#week", "#old"]
    assert listed("!#W*") == ["#new", "#old"]
    assert listed("#NEW") == ["#new"]
    assert listed(">0") == []  # no members anywhere
    assert listed("<1,C>10") == ["#week", "#old"]


def test_malformed_items_filter_nothing() -> None:
    # Not numbers, or a bare "!": ignored, as an unknown item is.
    assert listed("C<soon,T>,>x,!") == ["#new", "#week", "#old"]
    # The second parameter may be a server name: no filter.
    assert listed("", "chat.local") == ["#new", "#week", "#old"]
