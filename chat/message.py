"""IRC line model with IRCv3 message tags: parse and serialise, round-trip exact."""

from __future__ import annotations

from dataclasses import dataclass, field

# Limits from the Modern IRC / message-tags specs.
MAX_LINE_BODY = 512  # bytes, including the trailing CRLF
MAX_TAGS = 8191  # bytes of tag data, including the leading '@' and trailing space

_ESCAPE = {";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"}
_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


class ParseError(ValueError):
    """The line is not a well-formed IRC message."""


def escape_tag_value(value: str) -> str:
    if not any(ch in value for ch in _ESCAPE):
        return value
    return "".join(_ESCAPE.get(ch, ch) for ch in value)


def unescape_tag_value(value: str) -> str:
    if "\\" not in value:
        return value
    out: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if ch == "\\":
            i += 1
            if i < n:
                nxt = value[i]
                # An unknown escape drops the backslash, per the spec.
                out.append(_UNESCAPE.get(nxt, nxt))
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def parse_tags(raw: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in raw.split(";"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not key:
            continue
        # Later duplicates win, as the spec says.
        tags[key] = unescape_tag_value(value) if sep else ""
    return tags


def serialize_tags(tags: dict[str, str]) -> str:
    parts = []
    for key, value in tags.items():
        parts.append(f"{key}={escape_tag_value(value)}" if value else key)
    return ";".join(parts)


# Commands whose last param is always sent with ':', needed or not, as Ergo does: many
# bots and scripts take the text after " :" as a message's, and mIRC reads a NAMES
# reply (353) only that way. Also WHOIS channels (319) and USERHOST (302).
FORCE_TRAILING = frozenset({"PRIVMSG", "NOTICE", "353", "319", "302"})


def trailing(last: str, force: bool = False) -> str:
    """The last param as sent: ':' in front when it is empty, starts with ':' or holds
    a space (a middle param can be none of those), or when ``force``d."""
    if force or not last or last[0] == ":" or " " in last:
        return ":" + last
    return last


@dataclass(slots=True)
class Message:
    """One IRC message. ``params`` holds middles and the trailing param alike."""

    command: str
    params: list[str] = field(default_factory=list)
    source: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.to_line()

    def to_line(self) -> str:
        """Serialise without CRLF; the last param gets ':' when it needs it (always for
        :data:`FORCE_TRAILING` commands)."""
        parts: list[str] = []
        if self.tags:
            parts.append("@" + serialize_tags(self.tags))
        if self.source:
            parts.append(":" + self.source)
        parts.append(self.command)
        params = self.params
        if params:
            for middle in params[:-1]:
                parts.append(middle)
            parts.append(trailing(params[-1], self.command in FORCE_TRAILING))
        return " ".join(parts)

    def to_bytes(self) -> bytes:
        return self.to_line().encode("utf-8", "surrogateescape") + b"\r\n"


def parse(line: str) -> Message:
    """Parse one line (without its line ending). Raises ParseError when it is empty."""
    line = line.rstrip("\r\n")
    # Most lines are "CMD a b :text" with single spaces and neither tags nor a source:
    # those split directly. Everything else takes the general path.
    head, colon, text = line.partition(" :")
    if head and head[0] not in " @:" and head[-1] != " " and "  " not in head:
        params = head.split(" ")
        command = params.pop(0)  # (a starred assignment copies the list: dearer)
        if colon:
            params.append(text)
        return Message(command.upper(), params)
    return parse_general(line)


def parse_general(line: str) -> Message:
    """``parse`` for any line: tags, source, runs of spaces."""
    tags: dict[str, str] = {}
    source: str | None = None
    pos = 0
    n = len(line)

    def skip_spaces(p: int) -> int:
        while p < n and line[p] == " ":
            p += 1
        return p

    pos = skip_spaces(pos)
    if pos < n and line[pos] == "@":
        end = line.find(" ", pos)
        if end == -1:
            raise ParseError("tags without a command")
        tags = parse_tags(line[pos + 1 : end])
        pos = skip_spaces(end)
    if pos < n and line[pos] == ":":
        end = line.find(" ", pos)
        if end == -1:
            raise ParseError("source without a command")
        source = line[pos + 1 : end] or None  # ": CMD" has no source, not an empty one
        pos = skip_spaces(end)
    if pos >= n:
        raise ParseError("no command")
    if line[pos] in ":@":
        # ": :x" or "@ @x": a second source or tags where the command goes. Taken as a
        # command, it would serialise to a line that parses differently (or not at all).
        raise ParseError("no command")
    end = line.find(" ", pos)
    if end == -1:
        return Message(line[pos:].upper(), [], source, tags)
    command = line[pos:end].upper()
    pos = end
    params: list[str] = []
    while True:
        pos = skip_spaces(pos)
        if pos >= n:
            break
        if line[pos] == ":":
            params.append(line[pos + 1 :])
            break
        end = line.find(" ", pos)
        if end == -1:
            params.append(line[pos:])
            break
        params.append(line[pos:end])
        pos = end
    return Message(command, params, source, tags)


def hostmask(nick: str, user: str, host: str) -> str:
    return f"{nick}!{user}@{host}"


def split_hostmask(mask: str) -> tuple[str, str, str]:
    """'nick!user@host' -> (nick, user, host); missing parts are empty."""
    nick, _, rest = mask.partition("!")
    user, _, host = rest.partition("@")
    return nick, user, host
