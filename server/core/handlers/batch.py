"""Client-initiated batches: IRCv3 ``draft/multiline``, a PRIVMSG of several lines.

``BATCH +ref draft/multiline <target>`` opens one (its tags: the message's client-only
tags, and the label its answer carries); ``@batch=ref PRIVMSG <target> :line`` adds a
line (``draft/multiline-concat``: joined to the previous one without a line feed);
``BATCH -ref`` sends it, as PRIVMSG would, through every check PRIVMSG makes. Limits
(``--multiline-max-bytes``, ``--multiline-max-lines``) and malformed batches are
answered with the spec's ``FAIL BATCH`` codes, at once; the rest of a failed batch is
dropped without another word.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chat.message import Message, serialize_tags
from chat.multiline import BATCH_TYPE, CAP, CONCAT, Line, combine
from chat.utf8 import utf8_size

from ..flood import FREE_TAG_BYTES
from .messaging import relay_message

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Client

# Between the lines of a batch only these may come without ending it.
_PASS_THROUGH = frozenset({"PING", "PONG", "BATCH"})


@dataclass(slots=True)
class OpenBatch:
    ref: str
    target: str
    tags: dict[str, str]  # the BATCH line's client-only tags: the message's
    label: str | None  # labeled-response: the BATCH line's, for the answer
    lines: list[Line] = field(default_factory=list)
    size: int = 0  # bytes as max-bytes counts them (text, line feeds, tags past 512)
    failed: bool = False


def handle_batch(core: ServerCore, client: Client, msg: Message) -> None:
    ref = msg.params[0]
    if ref[:1] == "+" and len(ref) > 1:
        _open(core, client, msg, ref[1:])
    elif ref[:1] == "-" and len(ref) > 1:
        _close(core, client, ref[1:])
    else:
        core.fail(client, "BATCH", "MULTILINE_INVALID", "Invalid batch reference")


def _open(core: ServerCore, client: Client, msg: Message, ref: str) -> None:
    if CAP not in client.caps or "batch" not in client.caps:
        core.fail(client, "BATCH", "MULTILINE_INVALID",
                  "Negotiate draft/multiline and batch to send batches")
        return
    if len(msg.params) < 3 or msg.params[1] != BATCH_TYPE or not msg.params[2]:
        core.fail(client, "BATCH", "MULTILINE_INVALID", "Only draft/multiline batches are taken")
        return
    if "," in msg.params[2]:
        core.fail(client, "BATCH", "MULTILINE_INVALID_TARGET", msg.params[2], msg.params[2],
                  "A multiline message has one target")
        return
    old = client.multiline
    if old is not None and not old.failed:
        _fail(core, client, old, "MULTILINE_INVALID", "A multiline batch was left open")
    tags = {k: v for k, v in msg.tags.items() if k[0] == "+"} if "message-tags" in client.caps \
        else {}
    # The answer (the echo, or an error) comes with the batch's end: labelled then.
    client.multiline = OpenBatch(ref, msg.params[2], tags, core.defer_label(),
                                 size=_tag_bytes(tags))


def _tag_bytes(tags: dict[str, str]) -> int:
    """What the message's client tags count towards max-bytes: their bytes past the 512
    a line carries for its token (a reply, a react), so that a message's text and tags
    together stay within max-bytes + 512."""
    if not tags:
        return 0
    return max(utf8_size(serialize_tags(tags)) - FREE_TAG_BYTES, 0)


def take_line(core: ServerCore, client: Client, msg: Message) -> bool:
    """With a batch open: whether ``msg`` was one of its lines (or broke it) and is
    therefore handled; False lets it be dispatched as usual."""
    batch = client.multiline
    assert batch is not None
    ref = msg.tags.get("batch")
    if ref is None:
        if msg.command not in _PASS_THROUGH:
            _fail(core, client, batch, "MULTILINE_INVALID",
                  f"{msg.command} inside a multiline batch")
        return False
    if ref != batch.ref:
        _fail(core, client, batch, "MULTILINE_INVALID", "Line of a batch that is not open")
        return True
    if batch.failed:
        return True
    if msg.command != "PRIVMSG" or len(msg.params) < 2:
        _fail(core, client, batch, "MULTILINE_INVALID", "A multiline batch holds PRIVMSGs")
        return True
    target, text = msg.params[0], msg.params[1]
    if core.fold(target) != core.fold(batch.target):
        _fail(core, client, batch, "MULTILINE_INVALID_TARGET", batch.target, target,
              "Invalid multiline target")
        return True
    concat = CONCAT in msg.tags
    if concat and not text:
        _fail(core, client, batch, "MULTILINE_INVALID", "A concatenated line may not be blank")
        return True
    cfg = core.config
    if len(batch.lines) >= cfg.multiline_max_lines:
        _fail(core, client, batch, "MULTILINE_MAX_LINES", str(cfg.multiline_max_lines),
              "Multiline batch max-lines exceeded")
        return True
    size = batch.size + len(text.encode("utf-8", "surrogateescape"))
    size += 1 if batch.lines and not concat else 0  # the line feed joining it
    if size > cfg.multiline_max_bytes:
        _fail(core, client, batch, "MULTILINE_MAX_BYTES", str(cfg.multiline_max_bytes),
              "Multiline batch max-bytes exceeded")
        return True
    batch.size = size
    batch.lines.append((text, concat))
    return True


def _close(core: ServerCore, client: Client, ref: str) -> None:
    batch = client.multiline
    if batch is None or batch.ref != ref:
        core.fail(client, "BATCH", "MULTILINE_INVALID", "No such batch is open")
        return
    client.multiline = None
    if batch.failed:
        return
    if not any(text for text, _concat in batch.lines):
        _fail(core, client, batch, "MULTILINE_INVALID", "A multiline message may not be blank")
        return
    lines = batch.lines
    msg = Message("PRIVMSG", [batch.target, combine(lines)], tags=batch.tags)
    core.answer_later(client, batch.label, lambda: relay_message(core, client, msg, lines))


def _fail(core: ServerCore, client: Client, batch: OpenBatch, code: str, *context: str) -> None:
    """The batch is void: FAIL (labelled as its opening line was), once."""
    if batch.failed:
        return
    batch.failed = True
    core.answer_later(client, batch.label, lambda: core.fail(client, "BATCH", code, *context))
