"""IRCv3 ``draft/multiline`` for the client: one message of several lines.

Received, a ``draft/multiline`` batch (live, or nested in a chathistory or search
batch) is assembled into one :class:`MultilineMessage`: a PRIVMSG whose text is the
lines joined by ``\\n`` (``draft/multiline-concat`` lines joined directly), carrying the
opening BATCH line's tags (msgid, time, account, client tags). The session then
handles it as any PRIVMSG, so highlights, ignores, reactions, deletions, history and
the outbox see one message.

Pure functions and plain data; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from chat.message import Message

CAP = "draft/multiline"
BATCH_TYPE = "draft/multiline"
CONCAT = "draft/multiline-concat"

MAX_LINES = 1000  # lines of a received batch kept (a hostile server's endless batch)
MAX_TEXT = 65536  # characters of a received message kept

# One line of a batch: its text, and whether it is joined to the previous one without
# a line feed (draft/multiline-concat).
WireLine = tuple[str, bool]


class MultilineMessage(Message):
    """A PRIVMSG assembled from a ``draft/multiline`` batch: ``params[1]`` holds line
    feeds, which no message from the wire can. Only these keep them when shown."""

    __slots__ = ()


# ---------------------------------------------------------------------- receiving


def combine(lines: Sequence[WireLine]) -> str:
    """The message the lines make: joined by line feeds, concatenated lines directly."""
    out: list[str] = []
    for i, (text, concat) in enumerate(lines):
        if i and not concat:
            out.append("\n")
        out.append(text)
    return "".join(out)


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
