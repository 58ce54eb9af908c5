"""Serialise a relayed message once per tag form, so fan-out hands out shared bytes."""

from __future__ import annotations

from chat.message import Message, serialize_tags

from .state import FORM_TAGS, FORM_TIME


class Relay:
    """The four wire forms of one message: plain, +time, +msgid/client tags, both."""

    __slots__ = ("forms", "msgid", "time")

    def __init__(
        self,
        source: str,
        command: str,
        params: list[str],
        time: str,
        msgid: str,
        client_tags: dict[str, str] | None = None,
    ) -> None:
        self.time = time
        self.msgid = msgid
        base = Message(command, params, source).to_line()
        plain = base.encode("utf-8", "surrogateescape") + b"\r\n"
        time_tag = "@time=" + time + " "
        tags = {"msgid": msgid}
        if client_tags:
            tags.update(client_tags)
        tagged = serialize_tags(tags)
        self.forms: tuple[bytes, bytes, bytes, bytes] = (
            plain,
            time_tag.encode() + plain,
            ("@" + tagged + " ").encode("utf-8", "surrogateescape") + plain,
            ("@time=" + time + ";" + tagged + " ").encode("utf-8", "surrogateescape") + plain,
        )

    def for_form(self, form: int) -> bytes:
        return self.forms[form & (FORM_TIME | FORM_TAGS)]


def add_tag(data: bytes, tag: bytes) -> bytes:
    """Insert one serialised tag (b'label=x') into an already serialised line."""
    if data.startswith(b"@"):
        return b"@" + tag + b";" + data[1:]
    return b"@" + tag + b" " + data
