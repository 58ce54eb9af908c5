"""IRCv3 capabilities this server offers, and what each changes on the wire."""

from __future__ import annotations

from chat.sasl import MECHANISMS

from .state import FORM_ACCOUNT, FORM_MULTILINE, FORM_TAGS, FORM_TIME

SASL_MECHANISMS = ",".join(MECHANISMS)  # CAP LS's sasl value and 908's list

# Name -> value advertised in CAP LS 302 (empty: no value).
SUPPORTED: dict[str, str] = {
    "account-notify": "",
    "account-tag": "",
    "away-notify": "",
    "batch": "",
    "cap-notify": "",
    "draft/account-registration": "before-connect,custom-account-name",
    "draft/no-implicit-names": "",
    "draft/pre-away": "",
    "echo-message": "",
    "extended-join": "",
    "extended-monitor": "",
    "invite-notify": "",
    "labeled-response": "",
    "message-tags": "",
    "draft/read-marker": "",
    "multi-prefix": "",
    "no-implicit-names": "",
    "sasl": SASL_MECHANISMS,
    "server-time": "",
    "setname": "",
    "userhost-in-names": "",
}


# draft/event-playback: TAGMSGs (reactions, replies with client tags) come back in
# history too; joins, parts and quits are not stored, so there are none to replay.
# draft/message-redaction: REDACT deletes stored messages, so it needs history too.
HISTORY_CAPS: dict[str, str] = {
    "draft/chathistory": "", "draft/event-playback": "", "draft/message-redaction": "",
    "soju.im/search": "",
}


# JOIN without its NAMES reply (IRCv3 no-implicit-names; some clients still ask for it
# under its draft name).
NO_IMPLICIT_NAMES = frozenset({"no-implicit-names", "draft/no-implicit-names"})
PRE_AWAY = "draft/pre-away"


def available(
    history: bool, register: bool = True, multiline: tuple[int, int] = (0, 0)
) -> dict[str, str]:
    """What CAP LS offers; ``multiline``: draft/multiline's (max-bytes, max-lines),
    not offered when max-bytes is 0."""
    caps = dict(SUPPORTED)
    if multiline[0]:
        caps["draft/multiline"] = f"max-bytes={multiline[0]},max-lines={multiline[1]}"
    if history:
        caps.update(HISTORY_CAPS)
    if not register:  # REGISTER is refused: do not advertise it
        del caps["draft/account-registration"]
    return dict(sorted(caps.items()))


def tag_form(caps: set[str]) -> int:
    form = 0
    if "server-time" in caps:
        form |= FORM_TIME
    if "message-tags" in caps:
        form |= FORM_TAGS  # msgid and the sender's tags, the account among them
    elif "account-tag" in caps:
        form |= FORM_ACCOUNT
    if "draft/multiline" in caps and "batch" in caps:
        form |= FORM_MULTILINE
    return form


def ls_tokens(version: int, caps: dict[str, str] | None = None) -> list[str]:
    caps = SUPPORTED if caps is None else caps
    if version >= 302:
        return [f"{name}={value}" if value else name for name, value in caps.items()]
    return list(caps)


def sts_value(duration: int, tls_port: int | None, secure: bool) -> str | None:
    """The ``sts`` cap's value: the TLS port on plaintext, the policy's duration on TLS."""
    if not duration or tls_port is None:
        return None
    return f"duration={duration}" if secure else f"port={tls_port}"
