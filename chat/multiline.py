"""IRCv3 ``draft/multiline`` pieces the server and the client share: names, the line
model, joining lines into a message and cutting a long line into concatenated pieces.

A multiline message travels as lines, each ``(text, concat)``: ``concat`` joins a line
to the previous one without a line feed (``draft/multiline-concat``).
"""

from __future__ import annotations

from collections.abc import Sequence

from .utf8 import utf8_size

CAP = "draft/multiline"
BATCH_TYPE = "draft/multiline"
CONCAT = "draft/multiline-concat"

Line = tuple[str, bool]  # (text, joined to the previous line without a line feed)


def combine(lines: Sequence[Line]) -> str:
    """The message the lines make: joined by line feeds, concatenated lines directly."""
    out: list[str] = []
    for i, (text, concat) in enumerate(lines):
        if i and not concat:
            out.append("\n")
        out.append(text)
    return "".join(out)


def split_concat(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-8 bytes that concatenate to it: cut
    after a space when there is one in the second half of a piece (the space stays at
    the end of the piece, so the words stay apart where the pieces are shown as lines),
    never inside a character."""
    limit = max(limit, 4)  # any character fits
    out: list[str] = []
    while utf8_size(text) > limit:
        cut = size = 0
        for i, ch in enumerate(text):
            size += len(ch.encode("utf-8", "surrogatepass"))
            if size > limit:
                break
            cut = i + 1
        space = text.rfind(" ", 0, cut)
        if space + 1 > cut // 2:
            cut = space + 1
        out.append(text[:cut])
        text = text[cut:]
    out.append(text)
    return out
