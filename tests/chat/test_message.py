"""chat.message: parsing, serialising and IRCv3 tag escaping."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.message import (
    Message,
    ParseError,
    escape_tag_value,
    hostmask,
    parse,
    parse_general,
    parse_tags,
    serialize_tags,
    split_hostmask,
    trailing,
    unescape_tag_value,
)

# ----------------------------------------------------------------------------- strategies

# Characters a line can never carry raw (NUL is forbidden by the spec, CR/LF end it).
_FORBIDDEN = "\x00\r\n"


def _chars(forbidden: str) -> st.SearchStrategy[str]:
    """Any character but ``forbidden`` and lone surrogates (text, not undecodable bytes)."""
    return st.characters(exclude_categories=["Cs"], exclude_characters=forbidden)


_key_name = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-",
    min_size=1,
    max_size=12,
)
_vendor = st.one_of(
    st.just(""),
    st.from_regex(r"\A[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){0,2}/\Z"),
)
tag_keys = st.builds(
    lambda plus, vendor, name: plus + vendor + name,
    st.sampled_from(["", "+"]),
    _vendor,
    _key_name,
)
# Values are arbitrary text: the escaping must carry ; space \ CR LF (and anything else).
tag_values = st.one_of(
    st.text(max_size=20),
    st.text(alphabet="; \\\r\nabs:", max_size=20),
)
tags = st.dictionaries(tag_keys, tag_values, max_size=6)

sources = st.text(alphabet=_chars(_FORBIDDEN + " "), min_size=1, max_size=30)
commands = st.one_of(
    st.from_regex(r"\A[A-Z]{1,12}\Z"),
    st.from_regex(r"\A[0-9]{3}\Z"),
)
middles = st.text(alphabet=_chars(_FORBIDDEN + " "), min_size=1, max_size=15).filter(
    lambda s: not s.startswith(":")
)
trailings = st.text(alphabet=_chars(_FORBIDDEN), max_size=40)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    params = draw(st.lists(middles, max_size=5))
    if draw(st.booleans()):
        params.append(draw(trailings))
    return Message(
        command=draw(commands),
        params=params,
        source=draw(st.one_of(st.none(), sources)),
        tags=draw(tags),
    )


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("line", "source", "command", "params"),
    [
        ("foo bar baz asdf", None, "FOO", ["bar", "baz", "asdf"]),
        (":coolguy foo bar baz asdf", "coolguy", "FOO", ["bar", "baz", "asdf"]),
        ("foo bar baz :asdf quux", None, "FOO", ["bar", "baz", "asdf quux"]),
        ("foo bar baz :", None, "FOO", ["bar", "baz", ""]),
        ("foo bar baz ::asdf", None, "FOO", ["bar", "baz", ":asdf"]),
        (":coolguy foo bar baz :asdf quux", "coolguy", "FOO", ["bar", "baz", "asdf quux"]),
        (":coolguy foo bar baz :  asdf quux ", "coolguy", "FOO", ["bar", "baz", "  asdf quux "]),
        (":coolguy PRIVMSG bar :lol :) ", "coolguy", "PRIVMSG", ["bar", "lol :) "]),
        (":coolguy foo bar baz :", "coolguy", "FOO", ["bar", "baz", ""]),
        (":coolguy foo bar baz :  ", "coolguy", "FOO", ["bar", "baz", "  "]),
        (":src JOIN #chan", "src", "JOIN", ["#chan"]),
        (":src JOIN :#chan", "src", "JOIN", ["#chan"]),
        (":src AWAY", "src", "AWAY", []),
        (":src AWAY ", "src", "AWAY", []),
        (":cool\tguy foo bar baz", "cool\tguy", "FOO", ["bar", "baz"]),
        ("foo bar baz   asdf", None, "FOO", ["bar", "baz", "asdf"]),
        ("   foo   bar  ", None, "FOO", ["bar"]),
        (
            ":gravel.mozilla.org 432  #momo :Erroneous Nickname: Illegal characters",
            "gravel.mozilla.org",
            "432",
            ["#momo", "Erroneous Nickname: Illegal characters"],
        ),
        (
            ":nick!ident@host.com PRIVMSG me :Hello",
            "nick!ident@host.com",
            "PRIVMSG",
            ["me", "Hello"],
        ),
        ("PING", None, "PING", []),
        ("ping :token with spaces\r\n", None, "PING", ["token with spaces"]),
        ("PRIVMSG #a :hi\n", None, "PRIVMSG", ["#a", "hi"]),
    ],
)
def test_parse_splits_source_command_params(
    line: str, source: str | None, command: str, params: list[str]
) -> None:
    msg = parse(line)
    assert msg.source == source
    assert msg.command == command
    assert msg.params == params
    assert msg.tags == {}


def test_parse_full_example_with_tags() -> None:
    msg = parse(
        "@tag1=value1;tag2;vendor1/tag3=value2;vendor2/tag4 "
        ":irc.example.com COMMAND param1 param2 :param3 param3"
    )
    assert msg.tags == {"tag1": "value1", "tag2": "", "vendor1/tag3": "value2", "vendor2/tag4": ""}
    assert msg.source == "irc.example.com"
    assert msg.command == "COMMAND"
    assert msg.params == ["param1", "param2", "param3 param3"]


def test_command_is_uppercased() -> None:
    assert parse("privmsg #a :x").command == "PRIVMSG"
    assert parse("Nick alice").command == "NICK"


@pytest.mark.parametrize(
    "line",
    ["", "   ", "\r\n", "@a=b", "@a=b ", ":source", ":source   ", "@a=b :source", "@a :src  "],
)
def test_parse_rejects_lines_without_a_command(line: str) -> None:
    with pytest.raises(ParseError):
        parse(line)


def test_parse_error_is_a_value_error() -> None:
    assert issubclass(ParseError, ValueError)


def test_empty_source_is_no_source() -> None:
    msg = parse(": CMD x")
    assert msg.source is None
    assert msg.command == "CMD"
    assert parse(msg.to_line()) == msg


# ----------------------------------------------------------------------------- tags


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Examples from the IRCv3 message-tags specification and the parser test-suite.
        ("a=b\\\\and\\nk;c=72\\s45;d=gh\\:764", {"a": "b\\and\nk", "c": "72 45", "d": "gh;764"}),
        ("c;h=;a=b", {"c": "", "h": "", "a": "b"}),
        ("tag1=value\\\\ntest", {"tag1": "value\\ntest"}),
        ("tag1=value\\1", {"tag1": "value1"}),  # unknown escape: backslash dropped
        ("tag1=value1\\", {"tag1": "value1"}),  # trailing backslash dropped
        ("tag1=1;tag2=3;tag3=4;tag1=5", {"tag1": "5", "tag2": "3", "tag3": "4"}),  # last wins
        ("tag1=1;tag1", {"tag1": ""}),  # last wins even when it is empty
        ("tag1;tag1=x", {"tag1": "x"}),
        ("key=", {"key": ""}),  # empty value == missing value
        ("key", {"key": ""}),
        ("a=x=y", {"a": "x=y"}),  # only the first '=' separates
        ("a=\\r\\n", {"a": "\r\n"}),
        ("a=\\s\\s", {"a": "  "}),
        ("+example.com/draft-x=1", {"+example.com/draft-x": "1"}),
        ("", {}),
        (";;a=1;;", {"a": "1"}),  # empty items are skipped
        ("=orphan;b=2", {"b": "2"}),  # an empty key is skipped
    ],
)
def test_parse_tags_spec_cases(raw: str, expected: dict[str, str]) -> None:
    assert parse_tags(raw) == expected
    assert parse(f"@{raw} CMD").tags == expected


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("", ""),
        ("plain", "plain"),
        (";", "\\:"),
        (" ", "\\s"),
        ("\\", "\\\\"),
        ("\r", "\\r"),
        ("\n", "\\n"),
        ("a; b\\c\r\nd", "a\\:\\sb\\\\c\\r\\nd"),
        ("ünïcödé ☃", "ünïcödé\\s☃"),
    ],
)
def test_escape_tag_value(value: str, escaped: str) -> None:
    assert escape_tag_value(value) == escaped
    assert unescape_tag_value(escaped) == value


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("\\", ""),
        ("abc\\", "abc"),
        ("\\\\\\", "\\"),  # an escaped backslash, then a dangling one
        ("\\b\\t\\0", "bt0"),  # unknown escapes keep the character, drop the backslash
        ("\\:\\s\\\\\\r\\n", "; \\\r\n"),
    ],
)
def test_unescape_edge_cases(raw: str, value: str) -> None:
    assert unescape_tag_value(raw) == value


def test_serialize_tags_empty_value_is_bare_key() -> None:
    assert serialize_tags({"a": "", "b": "1", "c": "x y"}) == "a;b=1;c=x\\sy"
    assert serialize_tags({}) == ""


def test_escaped_value_never_contains_separators() -> None:
    escaped = escape_tag_value("a b;c\r\nd")
    for ch in " ;\r\n":
        assert ch not in escaped


@settings(deadline=None)
@given(tag_values)
def test_escape_round_trip(value: str) -> None:
    escaped = escape_tag_value(value)
    assert not any(ch in escaped for ch in " ;\r\n")
    assert unescape_tag_value(escaped) == value


@settings(deadline=None)
@given(tags)
def test_tags_round_trip(tag_dict: dict[str, str]) -> None:
    raw = serialize_tags(tag_dict)
    assert " " not in raw
    assert parse_tags(raw) == tag_dict


@settings(deadline=None)
@given(st.text(alphabet=_chars(_FORBIDDEN + " ;"), max_size=30))
def test_unescape_never_fails_and_reescape_is_stable(raw: str) -> None:
    value = unescape_tag_value(raw)
    assert unescape_tag_value(escape_tag_value(value)) == value


# ----------------------------------------------------------------------------- serialising


@pytest.mark.parametrize(
    ("msg", "line"),
    [
        (Message("PING"), "PING"),
        (Message("PRIVMSG", ["#chan", "hello"]), "PRIVMSG #chan :hello"),
        (Message("PRIVMSG", ["#chan", "hello world"]), "PRIVMSG #chan :hello world"),
        (Message("PRIVMSG", ["#chan", ":)"]), "PRIVMSG #chan ::)"),
        (Message("PRIVMSG", ["#chan", ""]), "PRIVMSG #chan :"),
        (Message("QUIT", [""]), "QUIT :"),
        (Message("JOIN", ["#a"], source="n!u@h"), ":n!u@h JOIN #a"),
        (
            Message("PRIVMSG", ["#a", "hi there"], "n!u@h", {"time": "2020-01-01T00:00:00.000Z"}),
            "@time=2020-01-01T00:00:00.000Z :n!u@h PRIVMSG #a :hi there",
        ),
        (
            Message("TAGMSG", ["#a"], tags={"+typing": "active", "x": ""}),
            "@+typing=active;x TAGMSG #a",
        ),
        (Message("NOTICE", ["*", "a;b c"], tags={"k": "a;b c"}), "@k=a\\:b\\sc NOTICE * :a;b c"),
    ],
)
def test_to_line(msg: Message, line: str) -> None:
    assert msg.to_line() == line
    assert str(msg) == line
    assert msg.to_bytes() == line.encode() + b"\r\n"
    assert parse(line) == msg


def test_to_bytes_preserves_undecodable_bytes() -> None:
    raw = b"PRIVMSG #a :caf\xe9 \xff"
    msg = parse(raw.decode("utf-8", "surrogateescape"))
    assert msg.to_bytes() == raw + b"\r\n"


def test_to_bytes_utf8() -> None:
    assert Message("PRIVMSG", ["#a", "héllo ☃"]).to_bytes() == "PRIVMSG #a :héllo ☃\r\n".encode()


def test_message_defaults_are_not_shared() -> None:
    a = Message("A")
    b = Message("B")
    a.params.append("x")
    a.tags["k"] = "v"
    assert b.params == []
    assert b.tags == {}


@settings(deadline=None)
@given(messages())
def test_round_trip(msg: Message) -> None:
    line = msg.to_line()
    assert "\r" not in line and "\n" not in line
    assert parse(line) == msg
    assert parse(msg.to_bytes().decode("utf-8")) == msg


@settings(deadline=None)
@given(st.text(alphabet=st.characters(exclude_characters=_FORBIDDEN), max_size=60))
def test_parse_is_total_and_serialisation_is_a_fixed_point(line: str) -> None:
    """Any line either fails with ParseError or survives parse -> serialise -> parse."""
    try:
        msg = parse(line)
    except ParseError:
        return
    assert msg.command
    assert " " not in msg.command
    for middle in msg.params[:-1]:
        assert middle and " " not in middle and not middle.startswith(":")
    again = parse(msg.to_line())
    assert again == msg
    assert again.to_line() == msg.to_line()


@settings(deadline=None)
@given(
    st.binary(max_size=80).map(
        lambda b: b.replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b"")
    )
)
def test_undecodable_bytes_survive_parse_and_serialise(raw: bytes) -> None:
    """Lines that are not UTF-8 (decoded with surrogateescape) keep their bytes."""
    try:
        msg = parse(raw.decode("utf-8", "surrogateescape"))
    except ParseError:
        return
    out = msg.to_bytes()
    assert out.endswith(b"\r\n")
    assert parse(out.decode("utf-8", "surrogateescape")) == msg
    # Param and source bytes come through unchanged.
    for param in msg.params:
        assert param.encode("utf-8", "surrogateescape") in out


@settings(deadline=None)
@given(
    st.text(alphabet=_chars(_FORBIDDEN + " !@"), min_size=1, max_size=10),
    st.text(alphabet=_chars(_FORBIDDEN + " @"), max_size=10),
    st.text(alphabet=_chars(_FORBIDDEN + " "), max_size=10),
)
def test_hostmask_round_trip(nick: str, user: str, host: str) -> None:
    mask = hostmask(nick, user, host)
    assert split_hostmask(mask) == (nick, user, host)
    assert parse(f":{mask} PING x").source == mask


@pytest.mark.parametrize(
    ("mask", "parts"),
    [
        ("nick!user@host", ("nick", "user", "host")),
        ("nick", ("nick", "", "")),
        ("nick!user", ("nick", "user", "")),
        ("irc.example.com", ("irc.example.com", "", "")),
        ("n!u@h@x", ("n", "u", "h@x")),
    ],
)
def test_split_hostmask(mask: str, parts: tuple[str, str, str]) -> None:
    assert split_hostmask(mask) == parts


@pytest.mark.parametrize(
    ("last", "sent"),
    [("word", "word"), ("", ":"), (":x", "::x"), ("two words", ":two words"), ("a:b", "a:b")],
)
def test_trailing_gets_a_colon_only_when_it_needs_one(last: str, sent: str) -> None:
    assert trailing(last) == sent
    assert Message("X", ["m", last]).to_line() == "X m " + sent


@given(st.text(alphabet=st.sampled_from(" :@aB#\t;="), max_size=24))
def test_the_fast_path_parses_like_the_general_one(line: str) -> None:
    try:
        expected: Message | None = parse_general(line)
    except ParseError:
        expected = None
    try:
        got: Message | None = parse(line)
    except ParseError:
        got = None
    assert got == expected
