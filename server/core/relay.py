"""Serialise a relayed message once per tag form, so fan-out hands out shared bytes."""

from __future__ import annotations

from chat.message import MAX_LINE_BODY, Message, parse, serialize_tags

from .state import FORM_ACCOUNT, FORM_MULTILINE, FORM_TAGS, FORM_TIME, FORMS

_UNBUILT: tuple[None, ...] = (None,) * (FORMS - 1)  # a new relay's forms but the plain one


class Relay:
    """The four wire forms of one message: plain, +time, +msgid/client tags, both."""

    __slots__ = ("client_tags", "command", "forms", "msgid", "params", "time")

    def __init__(
        self,
        source: str,
        command: str,
        params: list[str],
        time: str,
        msgid: str,
        client_tags: dict[str, str] | None = None,
    ) -> None:
        self.command = command
        self.time = time
        self.msgid = msgid
        base = Message(command, params, source).to_line()
        plain = base.encode("utf-8", "surrogateescape") + b"\r\n"
        if len(plain) > MAX_LINE_BODY:
            # What recipients get: the last param cut so that the line fits 512 bytes.
            params = fit_params(source, command, params)
            plain = Message(command, params, source).to_bytes()
        self.params = params
        self.client_tags = client_tags
        # Tagged forms are built the first time a recipient needs one: most channels
        # have few clients that negotiated tags, many have none. Forms with
        # FORM_MULTILINE are those of draft/multiline clients: the same bytes for a
        # one-line message.
        self.forms: list[bytes | None] = [plain, *_UNBUILT]

    def for_form(self, form: int) -> bytes:
        data = self.forms[form]
        return data if data is not None else self.build(form)

    def build(self, form: int) -> bytes:
        if form & FORM_MULTILINE:
            data = self.for_form(form & ~FORM_MULTILINE)
            self.forms[form] = data
            return data
        plain = self.forms[0]
        assert plain is not None
        tags = form_tags(form, self.time, self.msgid, self.client_tags)
        data = plain
        if tags:
            data = ("@" + serialize_tags(tags) + " ").encode("utf-8", "surrogateescape") + plain
        self.forms[form] = data
        return data


def form_tags(
    form: int, time: str, msgid: str, client_tags: dict[str, str] | None
) -> dict[str, str]:
    """The tags a message carries for clients of tag form ``form``: time (server-time);
    msgid and the sender's tags (message-tags); or only the account (account-tag alone:
    no msgid, no client-only tags for a client that did not ask for tags)."""
    tags: dict[str, str] = {}
    if form & FORM_TIME:
        tags["time"] = time
    if form & FORM_TAGS:
        tags["msgid"] = msgid
        if client_tags:
            tags.update(client_tags)
    elif form & FORM_ACCOUNT and client_tags and "account" in client_tags:
        tags["account"] = client_tags["account"]
    return tags


def relay_wire(source: object, relay: Relay) -> list[object]:
    """A relay as a cluster event carries it, so every node sends identical lines.

    ``source`` is the sending Client (its mask) or a mask string.
    """
    mask = source if isinstance(source, str) else getattr(source, "mask", "")
    wire = [mask, relay.command, relay.params, relay.time, relay.msgid, relay.client_tags]
    lines = getattr(relay, "lines", None)  # a multiline message's own line structure
    if lines is not None:
        wire.append([[text, concat] for text, concat in lines])
    return wire


def add_tag(data: bytes, tag: bytes) -> bytes:
    """Insert one serialised tag (b'label=x') into an already serialised line."""
    if data.startswith(b"@"):
        return b"@" + tag + b";" + data[1:]
    return b"@" + tag + b" " + data


def fit_params(source: str | None, command: str, params: list[str]) -> list[str]:
    """``params`` with the last one cut (at a character boundary) so that the line,
    CRLF included and tags excluded, fits MAX_LINE_BODY bytes. Limits such as TOPICLEN
    count characters and a relay adds the sender's mask: either can overflow the line.
    Unchanged when it fits, or when the other parts alone are too long."""
    size = len(Message(command, params, source).to_line().encode("utf-8", "surrogateescape")) + 2
    excess = size - MAX_LINE_BODY
    if excess <= 0 or not params:
        return params
    last = params[-1].encode("utf-8", "surrogateescape")
    while excess > 0 and last:
        # 'ignore' drops the partial character left at the cut.
        text = last[: max(len(last) - excess, 0)].decode("utf-8", "ignore")
        fitted = [*params[:-1], text]
        line = Message(command, fitted, source).to_line()
        excess = len(line.encode("utf-8", "surrogateescape")) + 2 - MAX_LINE_BODY
        last = text.encode("utf-8", "surrogateescape")
        if excess <= 0:
            return fitted
    return params


def fit_line(data: bytes) -> bytes:
    """A serialised line (CRLF included) with its body cut to fit, as ``fit_params``.
    Several lines (a multiline message, made to fit line by line) are left as they are."""
    if data.find(b"\n") != len(data) - 1:
        return data
    tag_len = data.find(b" ") + 1 if data[:1] == b"@" else 0
    if len(data) - tag_len <= MAX_LINE_BODY:
        return data
    msg = parse(data[tag_len:].decode("utf-8", "surrogateescape"))
    params = fit_params(msg.source, msg.command, msg.params)
    if params is msg.params:
        return data
    return data[:tag_len] + Message(msg.command, params, msg.source).to_bytes()
