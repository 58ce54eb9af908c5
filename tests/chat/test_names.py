"""chat.names: nick, channel and username validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.message import Message, parse
from chat.names import (
    CHANTYPES,
    NICK_SPECIAL,
    is_channel_name,
    is_valid_channel,
    is_valid_nick,
    is_valid_username,
)


@pytest.mark.parametrize(
    "nick",
    [
        "alice",
        "A",
        "_",
        "[bot]",
        "{x}",
        "a-1",
        "`quote",
        "^caret",
        "|pipe|",
        "back\\slash",
        "a" * 30,
    ],
)
def test_valid_nicks(nick: str) -> None:
    assert is_valid_nick(nick)


@pytest.mark.parametrize(
    "nick",
    [
        "",
        "1abc",  # digit first
        "-dash",  # '-' only allowed after the first character
        "a b",
        "a,b",
        "a!b",
        "a@b",
        "a.b",
        "a*",
        "a?",
        "#chan",
        "&chan",
        ":colon",
        "a:b",
        "nïck",  # non-ASCII
        "tab\t",
        "nul\x00",
        "a" * 31,  # over the default NICKLEN
    ],
)
def test_invalid_nicks(nick: str) -> None:
    assert not is_valid_nick(nick)


def test_nick_maxlen_is_configurable() -> None:
    assert is_valid_nick("abcdefghi", maxlen=9)
    assert not is_valid_nick("abcdefghij", maxlen=9)
    assert is_valid_nick("a" * 40, maxlen=40)


def test_every_special_is_allowed_first_and_later() -> None:
    for ch in NICK_SPECIAL:
        assert is_valid_nick(ch)
        assert is_valid_nick("a" + ch)


@pytest.mark.parametrize(
    "name", ["#a", "&a", "#chat", "##python", "#ü", "#a.b-c_d", "#" + "x" * 49]
)
def test_valid_channels(name: str) -> None:
    assert is_valid_channel(name)
    assert is_channel_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "#",  # type only, no name
        "chat",  # no type prefix
        "+chat",  # not in the default CHANTYPES
        "!chat",
        "#a b",
        "#a,b",
        "#a\x07",
        "#a\x00",
        "#a\r",
        "#a\n",
        "#a:b",
        "#" + "x" * 50,  # 51 > default CHANNELLEN
    ],
)
def test_invalid_channels(name: str) -> None:
    assert not is_valid_channel(name)


def test_channel_maxlen_and_chantypes_are_configurable() -> None:
    assert is_valid_channel("#abc", maxlen=4)
    assert not is_valid_channel("#abcd", maxlen=4)
    assert not is_valid_channel("&abc", chantypes="#")
    assert is_valid_channel("+abc", chantypes="#+")


def test_channel_maxlen_counts_utf8_bytes() -> None:
    assert is_valid_channel("#" + "é" * 24)  # 49 bytes
    assert not is_valid_channel("#" + "é" * 25)  # 51 bytes, 26 characters
    assert not is_valid_channel("#" + "😀" * 13)  # 53 bytes, 14 characters
    assert is_valid_channel("#" + "😀" * 12)  # 49 bytes


def test_channel_maxlen_of_undecodable_text_does_not_raise() -> None:
    """Found by the parser fuzz target: bytes decoded with surrogateescape."""
    undecodable = b"\x9f".decode("utf-8", "surrogateescape")
    assert not is_valid_channel("#" + undecodable * 20)  # counted as 3 bytes each: 61
    assert is_valid_channel("#" + undecodable * 16)  # 49


def test_is_channel_name_only_looks_at_the_type() -> None:
    assert CHANTYPES == "#&"
    assert is_channel_name("#")
    assert is_channel_name("#a b")
    assert not is_channel_name("")
    assert not is_channel_name("nick")
    assert not is_channel_name("&x", chantypes="#")


@pytest.mark.parametrize("user", ["user", "~user", "a.b", "x" * 10, "ü"])
def test_valid_usernames(user: str) -> None:
    assert is_valid_username(user)


@pytest.mark.parametrize("user", ["", "a b", "a@b", "a\x00", "a\r", "a\n"])
def test_invalid_usernames(user: str) -> None:
    assert not is_valid_username(user)


valid_nicks = st.from_regex(r"\A[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,29}\Z")
valid_channels = st.from_regex(r"\A[#&][^ ,\x07\x00\r\n:]{1,49}\Z").filter(
    lambda name: len(name.encode()) <= 50  # CHANNELLEN counts bytes
)


@settings(deadline=None)
@given(valid_nicks)
def test_valid_nicks_are_safe_as_params_and_sources(nick: str) -> None:
    assert is_valid_nick(nick)
    assert not is_channel_name(nick)
    # A valid nick is one middle param and the nick part of a hostmask.
    msg = parse(Message("NICK", [nick, "x"], source=f"{nick}!u@h").to_line())
    assert msg.params == [nick, "x"]
    assert msg.source is not None and msg.source.partition("!")[0] == nick


@settings(deadline=None)
@given(valid_channels)
def test_valid_channels_are_safe_as_middle_params(name: str) -> None:
    assert is_valid_channel(name)
    assert not is_valid_nick(name)
    msg = parse(Message("JOIN", [name, "key"]).to_line())
    assert msg.params == [name, "key"]
    # A comma-separated list of valid channels splits back into the same channels.
    assert f"{name},{name}".split(",") == [name, name]


@settings(deadline=None)
@given(st.text(max_size=40))
def test_nick_validation_matches_the_grammar(text: str) -> None:
    expected = (
        0 < len(text) <= 30
        and (text[0].isascii() and (text[0].isalpha() or text[0] in NICK_SPECIAL))
        and all(ch.isascii() and (ch.isalnum() or ch in NICK_SPECIAL + "-") for ch in text)
    )
    assert is_valid_nick(text) == expected
