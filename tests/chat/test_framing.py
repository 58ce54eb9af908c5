"""chat.framing: splitting a byte stream into bounded IRC lines."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.framing import MAX_LINE, LineBuffer, LineTooLong
from chat.message import MAX_LINE_BODY, MAX_TAGS


def test_default_limit_allows_tags_plus_body() -> None:
    assert MAX_LINE == MAX_LINE_BODY + MAX_TAGS
    assert LineBuffer().limit == MAX_LINE


def test_crlf_and_bare_lf() -> None:
    buf = LineBuffer()
    assert buf.feed(b"NICK a\r\nUSER a 0 * :A\nPING x\r\n") == [
        b"NICK a",
        b"USER a 0 * :A",
        b"PING x",
    ]
    assert buf.pending == 0


def test_only_one_trailing_cr_is_stripped_and_bare_cr_is_not_an_ending() -> None:
    buf = LineBuffer()
    assert buf.feed(b"a\r\r\n") == [b"a\r"]
    assert buf.feed(b"b\rc\n") == [b"b\rc"]
    assert buf.feed(b"d\r") == []
    assert buf.pending == 2


def test_empty_lines_are_returned_as_empty() -> None:
    assert LineBuffer().feed(b"\r\n\n\r\nX\n") == [b"", b"", b"", b"X"]


def test_partial_lines_across_feeds() -> None:
    buf = LineBuffer()
    assert buf.feed(b"PRIV") == []
    assert buf.pending == 4
    assert buf.feed(b"MSG #a :hel") == []
    assert buf.feed(b"lo\r") == []  # CR and LF split across reads
    assert buf.feed(b"\nPING") == [b"PRIVMSG #a :hello"]
    assert buf.pending == 4
    assert buf.feed(b" x\n") == [b"PING x"]
    assert buf.pending == 0


def test_one_byte_at_a_time() -> None:
    stream = b"NICK alice\r\nJOIN #a\nPRIVMSG #a :hi there\r\n"
    buf = LineBuffer()
    out: list[bytes] = []
    for i in range(len(stream)):
        out += buf.feed(stream[i : i + 1])
    assert out == [b"NICK alice", b"JOIN #a", b"PRIVMSG #a :hi there"]


def test_empty_feed_is_harmless() -> None:
    buf = LineBuffer()
    assert buf.feed(b"") == []
    assert buf.feed(b"ab") == []
    assert buf.feed(b"") == []
    assert buf.pending == 2


def test_lines_are_bytes_not_decoded() -> None:
    assert LineBuffer().feed(b"PRIVMSG #a :\xff\xfe\n") == [b"PRIVMSG #a :\xff\xfe"]


@pytest.mark.parametrize("ending", [b"\r\n", b"\n"])
def test_line_of_exactly_limit_bytes_is_accepted(ending: bytes) -> None:
    buf = LineBuffer(limit=16)
    line = b"x" * 16
    assert buf.feed(line + ending) == [line]


@pytest.mark.parametrize("ending", [b"\r\n", b"\n"])
def test_line_over_limit_raises(ending: bytes) -> None:
    buf = LineBuffer(limit=16)
    with pytest.raises(LineTooLong):
        buf.feed(b"x" * 17 + ending)
    assert buf.pending == 0


def test_limit_line_with_cr_split_from_lf_is_accepted() -> None:
    """The verdict must not depend on where the TCP stream was split."""
    buf = LineBuffer(limit=16)
    assert buf.feed(b"x" * 16 + b"\r") == []
    assert buf.feed(b"\n") == [b"x" * 16]


def test_unterminated_junk_raises_and_is_dropped() -> None:
    buf = LineBuffer(limit=16)
    assert buf.feed(b"y" * 16) == []
    assert buf.pending == 16
    with pytest.raises(LineTooLong):
        buf.feed(b"y")
    assert buf.pending == 0


def test_unterminated_junk_in_small_pieces_raises() -> None:
    buf = LineBuffer(limit=100)
    with pytest.raises(LineTooLong):
        for _ in range(1000):
            buf.feed(b"junk ")
            assert buf.pending <= 100
    assert buf.pending == 0


def test_unterminated_junk_after_good_lines_raises_with_those_lines() -> None:
    buf = LineBuffer(limit=16)
    with pytest.raises(LineTooLong) as info:
        buf.feed(b"QUIT :bye\r\nOK\n" + b"z" * 17)
    assert info.value.lines == [b"QUIT :bye", b"OK"]
    assert buf.pending == 0


def test_long_complete_line_reports_the_lines_before_it() -> None:
    buf = LineBuffer(limit=16)
    with pytest.raises(LineTooLong) as info:
        buf.feed(b"A\nB\r\n" + b"z" * 17 + b"\r\nC\n")
    assert info.value.lines == [b"A", b"B"]
    assert buf.pending == 0


def test_line_too_long_without_lines() -> None:
    assert LineTooLong().lines == []
    assert isinstance(LineTooLong(), Exception)


def test_default_limit_boundary() -> None:
    buf = LineBuffer()
    assert buf.feed(b"@" + b"t" * (MAX_LINE - 1) + b"\r\n") == [b"@" + b"t" * (MAX_LINE - 1)]
    with pytest.raises(LineTooLong):
        buf.feed(b"x" * (MAX_LINE + 1) + b"\r\n")
    with pytest.raises(LineTooLong):
        buf.feed(b"x" * (MAX_LINE + 1))


def test_buffer_recovers_after_a_caught_error() -> None:
    buf = LineBuffer(limit=8)
    with pytest.raises(LineTooLong):
        buf.feed(b"123456789")
    assert buf.feed(b"ok\n") == [b"ok"]


# ----------------------------------------------------------------------------- properties

LIMIT = 24


def _reference(stream: bytes, limit: int) -> tuple[list[bytes], bytes, bool]:
    """What any chunking must produce: (complete lines, tail, too_long)."""
    parts = stream.split(b"\n")
    tail = parts.pop()
    lines = [p[:-1] if p.endswith(b"\r") else p for p in parts]
    too_long = any(len(line) > limit for line in lines)
    too_long = too_long or len(tail) - tail.endswith(b"\r") > limit
    return lines, tail, too_long


def _chunk(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts})
    edges = [0, *points, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(edges)]


_line_bytes = st.binary(max_size=LIMIT + 2).map(lambda b: b.replace(b"\n", b"."))


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(_line_bytes, max_size=8))
    endings = draw(st.lists(st.sampled_from([b"\r\n", b"\n"]), min_size=len(lines)))
    body = b"".join(line + end for line, end in zip(lines, endings, strict=False))
    return body + draw(st.one_of(st.just(b""), _line_bytes, st.just(b"q" * LIMIT + b"\r")))


@settings(deadline=None, max_examples=300)
@given(streams(), st.lists(st.integers(min_value=0), max_size=10))
def test_any_chunking_gives_the_same_lines(stream: bytes, cuts: list[int]) -> None:
    expected_lines, expected_tail, too_long = _reference(stream, LIMIT)
    buf = LineBuffer(limit=LIMIT)
    got: list[bytes] = []
    try:
        for chunk in _chunk(stream, cuts):
            got += buf.feed(chunk)
            # Never more than the limit (plus a CR awaiting its LF) is held.
            assert buf.pending <= LIMIT + 1
    except LineTooLong as exc:
        got += exc.lines
        assert too_long
        # Every complete line before the offending one was handed out, in order.
        assert got == expected_lines[: len(got)]
        assert len(got) == next(
            (i for i, line in enumerate(expected_lines) if len(line) > LIMIT),
            len(expected_lines),
        )
        return
    assert not too_long
    assert got == expected_lines
    assert buf.pending == len(expected_tail)


@settings(deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(min_value=0), max_size=10))
def test_arbitrary_bytes_never_escape_the_bound(stream: bytes, cuts: list[int]) -> None:
    buf = LineBuffer(limit=LIMIT)
    for chunk in _chunk(stream, cuts):
        try:
            lines = buf.feed(chunk)
        except LineTooLong as exc:
            lines = exc.lines
        assert all(len(line) <= LIMIT and b"\n" not in line for line in lines)
        assert buf.pending <= LIMIT + 1


@settings(deadline=None, max_examples=300)
@given(streams(), st.lists(st.integers(min_value=0), max_size=10))
def test_skipping_keeps_every_other_line_whatever_the_chunking(
    stream: bytes, cuts: list[int]
) -> None:
    """The client's reader: a line too long is dropped and counted, the lines around it
    kept, and no piece of it ever comes out as a line of its own."""
    expected_lines, expected_tail, _too_long = _reference(stream, LIMIT)
    kept = [line for line in expected_lines if len(line) <= LIMIT]
    tail_too_long = len(expected_tail) - expected_tail.endswith(b"\r") > LIMIT
    buf = LineBuffer(limit=LIMIT)
    got: list[bytes] = []
    dropped = 0
    for chunk in _chunk(stream, cuts):
        lines, count = buf.feed_skipping(chunk)
        got += lines
        dropped += count
        assert buf.pending <= LIMIT + 1
    assert got == kept
    assert dropped == len(expected_lines) - len(kept) + tail_too_long
    assert buf.pending == (0 if tail_too_long else len(expected_tail))


def test_skipping_a_line_too_long_in_pieces_never_frames_its_rest() -> None:
    buf = LineBuffer(limit=LIMIT)
    assert buf.feed_skipping(b"good\r\n" + b"C" * (LIMIT + 5)) == ([b"good"], 1)
    assert buf.feed_skipping(b"C" * 100) == ([], 0)
    forged = b" :m PRIVMSG #t :tail\r\n:b PRIVMSG #t :after\r\n"  # (LIMIT: 24)
    assert buf.feed_skipping(forged) == ([b":b PRIVMSG #t :after"], 0)
