"""IRCv3 ``draft/multiline`` for the client: one message of several lines.

Received, a ``draft/multiline`` batch (live, or nested in a chathistory or search
batch) is assembled into one :class:`MultilineMessage`: a PRIVMSG whose text is the
lines joined by ``\\n`` (``draft/multiline-concat`` lines joined directly), carrying the
opening BATCH line's tags (msgid, time, account, client tags). The session then
handles it as any PRIVMSG, so highlights, ignores, reactions, deletions, history and
the outbox see one message.

Sent, text with line breaks is planned into batches (:func:`plan`): a line too long
for one IRC line is cut into concatenated pieces, and a block over the server's
``max-bytes`` or ``max-lines`` is sent as several messages, each within them.
Pure functions and plain data; no I/O.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from chat.digits import is_digits
from chat.message import Message
from chat.multiline import (
    BATCH_TYPE,
    CAP,
    CONCAT,
    Line,
    combine,
    split_concat,
)
from chat.utf8 import utf8_size

# The names and pieces shared with the server, used through this module too.
__all__ = ["BATCH_TYPE", "CAP", "CONCAT", "Limits", "MultilineMessage", "WireLine", "assemble",
           "combine", "parse_limits", "plan", "split_concat"]

MAX_LINES = 1000  # lines of a received batch kept (a hostile server's endless batch)
MAX_TEXT = 65536  # characters of a received message kept

# A line break as typed or pasted (str.splitlines would also split on \x1d and \x1e,
# the italic and strikethrough codes).
LINE_BREAK = re.compile(r"\r\n|\r|\n")

# One line of a batch (chat.multiline.Line).
WireLine = Line


@dataclass(frozen=True, slots=True)
class Limits:
    """What the server takes in one multi-line message (the cap's value)."""

    max_bytes: int  # the combined text, a byte per joining line feed
    max_lines: int | None = None  # lines of the batch; None: no limit given


class MultilineMessage(Message):
    """A PRIVMSG assembled from a ``draft/multiline`` batch: ``params[1]`` holds line
    feeds, which no message from the wire can. Only these keep them when shown."""

    __slots__ = ()


def parse_limits(value: str) -> Limits | None:
    """The cap's value (``max-bytes=4096,max-lines=100``); None without a usable
    ``max-bytes`` (the spec makes it required). Unknown keys are ignored."""
    found: dict[str, int] = {}
    for token in value.split(","):
        key, _, number = token.partition("=")
        if key in ("max-bytes", "max-lines") and is_digits(number) and len(number) < 10:
            found[key] = int(number)
    max_bytes = found.get("max-bytes", 0)
    if max_bytes <= 0:
        return None
    return Limits(max_bytes, found.get("max-lines") or None)


# ---------------------------------------------------------------------- receiving


def assemble(opener: Message, lines: Sequence[Message]) -> MultilineMessage | None:
    """The message of a batch: its opening ``BATCH +ref draft/multiline <target>`` line
    and the lines it held. None when it holds no text (nothing to show).

    A CTCP ACTION is one only when the first line is one (the message then is that
    action and the lines after it); any other CTCP marker is dropped, the text shown
    plainly (a CTCP request of several lines is no request)."""
    held = [m for m in lines if m.command in ("PRIVMSG", "NOTICE") and len(m.params) >= 2]
    if not any(m.params[1] for m in held):
        return None
    first = held[0]
    text = combine([(m.params[1], CONCAT in m.tags) for m in held])[:MAX_TEXT]
    head, newline, rest = text.partition("\n")
    if head.startswith("\x01ACTION") and head[7:8] in ("", " "):
        body = head[8:].removesuffix("\x01")
        text = f"\x01ACTION {body}{newline}{rest}\x01"
    elif head.startswith("\x01"):
        text = head.replace("\x01", "") + newline + rest
    target = opener.params[2] if len(opener.params) > 2 else first.params[0]
    # The message's tags are the opening line's; a line's stand in for what it lacks.
    drop = ("batch", "label", CONCAT)
    tags = {k: v for k, v in first.tags.items() if k not in drop}
    tags.update((k, v) for k, v in opener.tags.items() if k not in drop)
    source = first.source or opener.source
    return MultilineMessage(first.command, [target, text], source, tags)


# ---------------------------------------------------------------------- sending


def plan(text: str, budget: int, limits: Limits) -> list[list[WireLine]]:
    """The messages to send for ``text`` (holding line breaks): each a list of batch
    lines, within ``limits``. A line longer than ``budget`` bytes (what one IRC line
    leaves for the text) is cut into concatenated pieces. When the block is over the
    limits it is cut into several messages, between lines when a line fits in one.
    Blank lines at the start and end of the text, and of each message, are left out."""
    lines = LINE_BREAK.split(text)
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    piece_limit = max(1, min(budget, limits.max_bytes))
    max_lines = limits.max_lines or sys.maxsize
    groups: list[list[WireLine]] = []
    group: list[WireLine] = []
    size = 0
    for line in lines:
        pieces = split_concat(line, piece_limit)
        fits_alone = len(pieces) <= max_lines and utf8_size(line) <= limits.max_bytes
        room = (len(group) + len(pieces) <= max_lines
                and size + 1 + utf8_size(line) <= limits.max_bytes)
        if group and fits_alone and not room:
            groups.append(group)  # the line fits in a message of its own: start one
            group, size = [], 0
        for i, piece in enumerate(pieces):
            concat = i > 0
            add = utf8_size(piece) + (1 if group and not concat else 0)
            if group and (len(group) >= max_lines or size + add > limits.max_bytes):
                groups.append(group)
                group, size = [], 0
                concat, add = False, utf8_size(piece)
            group.append((piece, concat))
            size += add
    groups.append(group)
    return [g for g in map(_trim, groups) if g]


def _trim(group: list[WireLine]) -> list[WireLine]:
    """A message without the blank lines at its start and end (a line feed that was
    between two messages)."""
    start, end = 0, len(group)
    while start < end and not group[start][0].strip():
        start += 1
    while end > start and not group[end - 1][0].strip():
        end -= 1
    kept = group[start:end]
    if kept and kept[0][1]:
        kept[0] = (kept[0][0], False)  # the first line joins nothing
    return kept
