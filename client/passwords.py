"""Passwords typed to NickServ, masked wherever the client shows or keeps text.

``/msg NickServ IDENTIFY alice hunter2`` goes to the server as typed, but the query
buffer, the chat log and an echo coming back show ``IDENTIFY alice ********``
(:func:`mask_message`); the UI keeps such lines, and raw lines with credentials, out of
the Up/Down input history (:func:`commands.secret_input` uses :func:`secret_raw`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from chat.message import ParseError, parse

MASK = "********"
NICKSERV = "nickserv"  # folded; any case mapping folds it alike


def is_nickserv(target: str) -> bool:
    """``NickServ`` in any case, also ``NickServ@services.host`` (the secure form)."""
    return target.partition("@")[0].lower() == NICKSERV


def _keep_first(args: list[str]) -> list[str] | None:
    """``CMD account password``: the first word shows, the rest is masked."""
    return [args[0], MASK] if len(args) >= 2 else None


def _identify(args: list[str]) -> list[str] | None:
    """``IDENTIFY [account] password``: one word is the password, two are account and
    password (more: account, then everything else masked)."""
    if not args:
        return None
    return [MASK] if len(args) == 1 else [args[0], MASK]


def _register(args: list[str]) -> list[str] | None:
    """``REGISTER password [email]``: the email shows (a last word with an @)."""
    if not args:
        return None
    email = [args[-1]] if len(args) >= 2 and "@" in args[-1] else []
    return [MASK, *email]


def _set(args: list[str]) -> list[str] | None:
    """``SET PASSWORD new`` (``SET PASS`` on some services)."""
    if len(args) >= 2 and args[0].upper() in ("PASSWORD", "PASS"):
        return [args[0], MASK]
    return None


def _saset(args: list[str]) -> list[str] | None:
    """Operators: ``SASET account PASSWORD new`` (Anope)."""
    if len(args) >= 3 and args[1].upper() in ("PASSWORD", "PASS"):
        return [args[0], args[1], MASK]
    return None


def _all(args: list[str]) -> list[str] | None:
    """``PASSWD current new new`` (Ergo): every word is a password."""
    return [MASK] if args else None


# NickServ commands that carry a password (our server's, Atheme's, Anope's, Ergo's).
_COMMANDS: dict[str, Callable[[list[str]], list[str] | None]] = {
    "IDENTIFY": _identify,
    "ID": _identify,
    "LOGIN": _identify,
    "REGISTER": _register,
    "SET": _set,
    "SASET": _saset,
    "PASSWD": _all,
    "GHOST": _keep_first,
    "RECOVER": _keep_first,
    "RELEASE": _keep_first,
    "REGAIN": _keep_first,
    "GROUP": _keep_first,
    "DROP": _keep_first,
    "SAREGISTER": _keep_first,
    "SETPASS": _keep_first,
}


def mask_nickserv(text: str) -> str:
    """``text`` sent to NickServ with its password replaced by :data:`MASK`.

    The command is matched in any case and words are split on any whitespace, as
    services do; a masked result has single spaces. Text without a password (HELP,
    INFO, a bare IDENTIFY) comes back unchanged.
    """
    words = text.split()
    if not words:
        return text
    rule = _COMMANDS.get(words[0].upper())
    shown = rule(words[1:]) if rule is not None else None
    return text if shown is None else " ".join([words[0], *shown])


def nickserv_login(text: str) -> tuple[str | None, str] | None:
    """``(account, password)`` when ``text`` sent to NickServ logs in with a password:
    ``IDENTIFY [account] password`` (``ID``, ``LOGIN``), or ``REGISTER password
    [email]``, which logs in to the new account. ``account`` is None when the services
    take the nick's (our server, Atheme and Anope do). None for anything else."""
    words = text.split()
    if not words:
        return None
    command, args = words[0].upper(), words[1:]
    if command in ("IDENTIFY", "ID", "LOGIN") and len(args) in (1, 2):
        return (args[0] if len(args) == 2 else None), args[-1]
    if command == "REGISTER" and args:
        return None, args[0]
    return None


def nickserv_password_change(text: str) -> str | None:
    """The new password when ``text`` sent to NickServ changes the account's password:
    ``SET PASSWORD new`` (``SET PASS``; our server, Atheme, Anope) or ``PASSWD current
    new [new]`` (Ergo). None for anything else."""
    words = text.split()
    if len(words) == 3 and words[0].upper() == "SET" and words[1].upper() in ("PASSWORD", "PASS"):
        return words[2]
    if len(words) in (3, 4) and words[0].upper() == "PASSWD":
        return words[2] if len(words) == 3 or words[2] == words[3] else None
    return None


# Services confirm a change in their own words ("The password of alice is changed",
# Atheme's "...has been changed to...", Anope's "Password for alice changed.", Ergo's
# "Password changed"); a refusal says what went wrong, often with "changed" in it too.
_REFUSAL = re.compile(r"\b(not|cannot|can't|couldn't|failed|fail|error|invalid|incorrect|"
                      r"denied|wrong|must|too)\b", re.IGNORECASE)


def confirms_password_change(text: str) -> bool:
    """Whether NickServ's ``text`` reads as a successful password change."""
    return "changed" in text.lower() and _REFUSAL.search(text) is None


def mask_message(target: str, text: str) -> str:
    """What to show of a PRIVMSG or NOTICE to ``target``: masked when it is NickServ."""
    return mask_nickserv(text) if is_nickserv(target) else text


# Raw commands whose parameters are credentials (server password, operator password,
# SASL, IRCv3 account registration).
_SECRET_RAW = frozenset({"PASS", "OPER", "AUTHENTICATE", "REGISTER"})


def secret_raw(line: str) -> bool:
    """A raw line (``/quote``) that carries a password: ``NS``/``NICKSERV`` or a
    PRIVMSG/NOTICE to NickServ with one, or PASS, OPER, AUTHENTICATE, REGISTER."""
    try:
        msg = parse(line.strip())
    except ParseError:
        return False
    if msg.command in _SECRET_RAW:
        return True
    if msg.command in ("NS", "NICKSERV"):
        text = " ".join(msg.params)
        return mask_nickserv(text) != text
    if msg.command in ("PRIVMSG", "NOTICE") and len(msg.params) >= 2:
        return mask_message(msg.params[0], msg.params[1]) != msg.params[1]
    return False
