"""Coverage-guided fuzz target (atheris) for the line layer: framing, parsing, tags, names.

    .venv/bin/python fuzz/fuzz_parser.py -dict=fuzz/irc.dict -max_total_time=60 CORPUS_DIR

Any exception other than ParseError/LineTooLong where they are documented, or a broken
property (round trip, bounds), is a crash: libFuzzer saves the input as crash-<sha1>.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["chat"]):
    from chat.casemap import Casemapping, casefold
    from chat.framing import MAX_LINE, LineBuffer, LineTooLong
    from chat.message import (
        Message,
        ParseError,
        escape_tag_value,
        parse,
        parse_tags,
        serialize_tags,
        split_hostmask,
        unescape_tag_value,
    )
    from chat.names import is_channel_name, is_valid_channel, is_valid_nick, is_valid_username


MAPPINGS: tuple[Casemapping, ...] = ("rfc1459", "ascii", "strict-rfc1459")


def check_parse(text: str) -> None:
    try:
        msg = parse(text)
    except ParseError:
        return
    assert msg.command and " " not in msg.command, msg
    for middle in msg.params[:-1]:
        assert middle and " " not in middle and not middle.startswith(":"), msg
    line = msg.to_line()
    again = parse(line)
    assert again == msg, (text, line, again, msg)
    assert again.to_line() == line
    out = msg.to_bytes()
    assert out.endswith(b"\r\n")
    # The only line ending is the one to_bytes adds: the line had none inside to carry.
    assert b"\n" not in out[:-2] and b"\r" not in out[:-2], out


def check_tags(raw: str) -> None:
    tags = parse_tags(raw)
    again = parse_tags(serialize_tags(tags))
    assert again == tags, (raw, tags, again)
    for value in tags.values():
        escaped = escape_tag_value(value)
        assert not any(ch in escaped for ch in " ;\r\n"), escaped
        assert unescape_tag_value(escaped) == value


def check_framing(data: bytes, cuts: list[int]) -> None:
    buf = LineBuffer()
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        try:
            lines = buf.feed(data[start:end])
        except LineTooLong as exc:
            lines = exc.lines
        for line in lines:
            assert b"\n" not in line and len(line) <= MAX_LINE
        assert buf.pending <= MAX_LINE + 1, buf.pending


def check_names(text: str) -> None:
    for mapping in MAPPINGS:
        folded = casefold(text, mapping)
        assert casefold(folded, mapping) == folded
        assert len(folded) == len(text)
    if is_valid_nick(text):
        assert parse(f":{text}!u@h PRIVMSG {text} :x").params[0] == text
        assert not is_channel_name(text)
    if is_valid_channel(text):
        assert parse(f"JOIN {text}").params == [text]
    is_valid_username(text)
    nick, user, host = split_hostmask(text)
    if "!" not in nick and "@" not in user:
        assert split_hostmask(f"{nick}!{user}@{host}") == (nick, user, host)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 3)
    rest = fdp.ConsumeBytes(fdp.remaining_bytes())
    text = rest.decode("utf-8", "surrogateescape")
    if mode == 0:
        # parse() takes one line: framing (or the core, for a bare CR) removed the rest.
        line = text.replace("\r", "").replace("\n", "")
        check_parse(line)
        check_parse(line + "\r\n")
    elif mode == 1:
        check_tags(text.split(" ", 1)[0])
    elif mode == 2:
        cuts = sorted({b % (len(rest) + 1) for b in rest[:6]})
        check_framing(rest, cuts)
    else:
        check_names(text)
    Message("X", [text]).to_bytes()


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
