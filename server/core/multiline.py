"""IRCv3 ``draft/multiline`` on the wire: one message of several lines.

A multiline message is a list of ``(text, concat)`` lines (``chat.multiline``). Clients
with the capability get it as a ``draft/multiline`` batch, the opening line carrying the
message's tags (msgid, time, account, client tags); the others get its non-blank
lines as plain PRIVMSGs, the msgid and the client-only tags on the first only. History
stores the combined text (lines joined by ``\\n``, concatenated lines directly) and
replays it as the lines that fit (``stored_lines``): the concatenation points are not
stored, so a message longer than a line is cut again wherever it must be.
"""

from __future__ import annotations

from chat.message import MAX_LINE_BODY, Message, serialize_tags
from chat.multiline import BATCH_TYPE, CAP, CONCAT, Line, combine, split_concat

from .relay import Relay, form_tags
from .state import FORM_MULTILINE, FORMS

# A multiline message's lines come all at once: ten of them cost one line's token
# (flood control), so a pasted block is not held back by the fakelag line by line.
BATCH_LINE_COST = 0.1


def fallback_tags(head: dict[str, str]) -> dict[str, str]:
    """The tags of a fallback line after the first: the server's (time, account, bot),
    not the msgid nor the client-only tags. The spec asks for the batch's tags on the
    first line only; up to 4 KB of client tags on each of 100 lines made one batch
    421 KB for every member without the capability."""
    return {k: v for k, v in head.items() if k != "msgid" and k[0] != "+"}


def batch_line_cost(caps: set[str], line: bytes) -> float:
    """What flood control charges for a raw ``line`` from a client with ``caps``."""
    return BATCH_LINE_COST if CAP in caps and has_batch_tag(line) else 1.0


def has_batch_tag(line: bytes) -> bool:
    """Whether a serialised line carries a ``batch`` tag."""
    if line[:1] != b"@":
        return False
    end = line.find(b" ")
    tags = line[:end] if end != -1 else line
    return tags.startswith(b"@batch=") or b";batch=" in tags


def split_combined(text: str) -> list[Line]:
    """A stored message's lines (the line structure before concatenation is not kept)."""
    return [(piece, False) for piece in text.split("\n")]


def stored_lines(source: str, target: str, text: str) -> list[Line]:
    """A stored message's text as the lines it is replayed in to ``target``: more than
    one when it held line feeds, or was longer than a line (joined by
    draft/multiline-concat, which leaves no line feed: replayed as one, it was cut)."""
    return fit_lines(source, target, split_combined(text))


def fit_lines(source: str, target: str, lines: list[Line]) -> list[Line]:
    """``lines`` with any that would overflow a relayed line (the sender's mask is
    longer than what the client counted on) cut into concatenated pieces: nothing is
    lost, and a client with the capability joins them again."""
    budget = max(MAX_LINE_BODY - len(f":{source} PRIVMSG {target} :\r\n".encode()), 64)
    out: list[Line] = []
    for text, concat in lines:
        pieces = split_concat(text, budget)
        out.append((pieces[0], concat))
        out.extend((piece, True) for piece in pieces[1:])
    return out


def render(
    source: str,
    target: str,
    lines: list[Line],
    *,
    head: dict[str, str],
    rest: dict[str, str],
    ref: str | None,
    outer: str | None = None,
    command: str = "PRIVMSG",
) -> bytes:
    """The message as bytes: a ``draft/multiline`` batch ``ref`` whose opening line
    carries ``head`` (``ref`` None: the fallback, non-blank lines only, ``head`` on the
    first and ``rest`` on the others). ``outer``: the batch it is part of (history)."""
    wrap = {"batch": outer} if outer is not None else {}
    parts: list[bytes] = []
    if ref is not None:
        parts.append(_line({**wrap, **head}, source, "BATCH", ["+" + ref, BATCH_TYPE, target]))
        for text, concat in lines:
            tags = {"batch": ref, CONCAT: ""} if concat else {"batch": ref}
            parts.append(_line(tags, source, command, [target, text]))
        parts.append(_line(wrap, source, "BATCH", ["-" + ref]))
        return b"".join(parts)
    for text, _concat in lines:
        if text:
            parts.append(_line({**wrap, **(rest if parts else head)}, source, command,
                               [target, text]))
    return b"".join(parts)


def _line(tags: dict[str, str], source: str, command: str, params: list[str]) -> bytes:
    data = Message(command, params, source).to_bytes()
    if not tags:
        return data
    return b"@" + serialize_tags(tags).encode("utf-8", "surrogateescape") + b" " + data


class MultilineRelay(Relay):
    """A multiline PRIVMSG in the eight forms fan-out hands out (the tag forms, each
    as a batch for clients with the capability or as fallback lines). ``params`` is
    ``[target, combined text]``, as history stores it."""

    __slots__ = ("lines", "source")

    def __init__(
        self,
        source: str,
        target: str,
        lines: list[Line],
        time: str,
        msgid: str,
        client_tags: dict[str, str] | None = None,
    ) -> None:
        self.command = "PRIVMSG"
        self.time = time
        self.msgid = msgid
        self.client_tags = client_tags
        self.source = source
        self.lines = fit_lines(source, target, lines)
        self.params = [target, combine(self.lines)]
        self.forms = [None] * FORMS

    def build(self, form: int) -> bytes:
        head = form_tags(form, self.time, self.msgid, self.client_tags)
        rest = fallback_tags(head)
        # The batch's reference: unique on any connection, the same bytes for everyone.
        ref = "ml" + self.msgid if form & FORM_MULTILINE else None
        data = render(self.source, self.params[0], self.lines, head=head, rest=rest, ref=ref)
        self.forms[form] = data
        return data
