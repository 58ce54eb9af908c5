"""User input: /commands, plain text for the current buffer, and tab completion.

Every command works on a :class:`~client.session.Session` and produces outgoing lines
(through ``session.send``/``say``) and/or local lines and events; bad usage produces
a local error line, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat.digits import is_digits

from .config import DEFAULT_KEYS
from .keyhelp import help_lines
from .model import MESSAGE_KINDS, Buffer, BufferKind, Line, Reaction
from .passwords import mask_message, mask_nickserv, secret_raw
from .smartfilter import Events

if TYPE_CHECKING:
    from .session import Completion, Session

Handler = Callable[["Session", str, float], None]


class UsageError(Exception):
    """Bad arguments: shown as 'Usage: ...' for the command."""


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    handler: Handler
    usage: str
    help: str
    online: bool = True  # needs a registered connection


COMMANDS: dict[str, Command] = {}
NICKSERV_NICK = "NickServ"  # /ns sends to it
CHANSERV_NICK = "ChanServ"  # /cs sends to it
MEMOSERV_NICK = "MemoServ"  # /ms sends to it
MATCHES_SHOWN = 10  # buffers named when /win NAME matches several
ALIASES = {
    "j": "join",
    "leave": "part",
    "q": "query",
    "m": "msg",
    "raw": "quote",
    "w": "win",
    "window": "win",
    "buffer": "win",  # (WeeChat's)
    "wc": "close",
    "h": "help",
    "exit": "quit",
    "action": "me",
    "kb": "kickban",
    "nickserv": "ns",
    "chanserv": "cs",
    "memoserv": "ms",
}


def command(
    name: str, usage: str, help: str, *, online: bool = True
) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = Command(name, fn, usage, help, online)
        return fn

    return register


# Commands that take text of several lines (typed "/msg bob ", then a paste): their
# text is a message (one multi-line message, or one per line) or is joined into one line.
PASTE_COMMANDS = frozenset({"msg", "query", "notice", "me", "ns", "cs", "ms", "topic", "away"})


def run_input(s: Session, text: str, now: float) -> bool:
    """Run what the user typed. False when it was neither run nor sent, refused with an
    error line saying why (``Session.refuse``; the UI puts it in the input history):
    an unknown command, or text of several lines (a paste) starting with ``/`` that is
    not one of the ``PASTE_COMMANDS`` — a pasted block is never run as a command, nor
    sent as a message (it may be commands for another client, with a password); ``//``
    sends it; or a line ``//command text`` (a command retyped after a ``/``: sent when
    entered a second time in a row); text that cannot be sent (here, or now: too many
    waiting), also a command's. True otherwise (usage errors included: the command was
    understood)."""
    if not text.strip():
        return True
    confirmed, s.slash_refused = s.slash_refused == text, None
    s.input_refused = False
    if text.startswith("/") and not text.startswith("//"):
        line = text.rstrip()  # (a trailing line break, e.g. a pasted command line)
        name, args = [*line[1:].split(None, 1), "", ""][:2]
        name = name.lower()
        cmd = COMMANDS.get(ALIASES.get(name, name))
        shown = name[:40] + ("…" if len(name) > 40 else "")
        several = "\n" in line or "\r" in line
        if several and (cmd is None or cmd.name not in PASTE_COMMANDS):
            s.refuse(
                f"Not run: several lines starting with /{shown} (a paste?) are not a "
                "command; put // before them to send them as a message", now,
            )  # fmt: skip
            return False
        if cmd is None:
            s.refuse(f"Unknown command /{shown} (try /help; // sends a line starting with /)",
                     now)  # fmt: skip
            return False
        if cmd.online and not s.registered:
            s.refuse(f"/{cmd.name}: not connected", now)
            return False
        try:
            cmd.handler(s, args.strip(), now)
        except UsageError as exc:
            s.error(str(exc) or f"Usage: {cmd.usage}", now)
        return not s.input_refused  # (its text could not be sent: kept, as typed text)
    if text.startswith("//"):
        if _looks_like_a_command(text[2:]) and not confirmed:
            # Almost always a command retyped after a "/" (a typo'd "/mgs NickServ
            # IDENTIFY pw" brought back and fixed): it must not reach a channel, with
            # its password, by accident. The same line entered again is sent.
            s.slash_refused = text
            s.refuse(
                f"Not sent: //{text[2:].split(None, 1)[0][:40]} looks like a command "
                "typed after a /; enter it again to send it as a message", now,
            )  # fmt: skip
            return False
        text = text[1:]
    if _password_kept_back(s, s.current.name, text, now):
        return False
    if _can_say_here(s, now):  # (line breaks: one multi-line message, or one per line)
        s.say(s.current.name, text, now)
    return not s.input_refused


def _looks_like_a_command(rest: str) -> bool:
    """Whether ``rest`` (after ``//``) is one line starting with a command name, or an
    alias, followed by more text."""
    if "\n" in rest or "\r" in rest:
        return False  # a paste: // was put before it on purpose, as the error line said
    name, _, args = rest.partition(" ")
    name = name.lower()
    return bool(args.strip()) and ALIASES.get(name, name) in COMMANDS


def _can_say_here(s: Session, now: float) -> bool:
    """Whether a message typed into the current buffer can be taken: sent now, or kept
    in the outbox while the connection is down (the driver reconnecting). If not, an
    error line says why."""
    buf = s.current
    if buf.kind is BufferKind.SERVER:
        s.refuse("This is the server buffer: /join a channel, /msg NICK TEXT or /quote a line",
                 now)  # fmt: skip
    elif buf.kind is BufferKind.SEARCH:
        s.refuse("These are search results: /search TEXT searches again, /close closes them",
                 now)  # fmt: skip
    elif not s.registered and not s.reconnecting:
        s.refuse("Not connected: the message was not sent", now)
    elif not s.outbox.accepts(buf):
        s.refuse(f"You are not in {buf.name} (/join {buf.name})", now)
    else:
        return True
    return False


def _password_kept_back(s: Session, target: str, text: str, now: float) -> bool:
    """A password to NickServ typed while disconnected is not kept to go out later: on
    the next connection whoever holds the nick NickServ then would get it (a network
    without services, someone taking the nick in the meantime). Refused, to be sent
    once connected (irssi and WeeChat refuse any /msg then)."""
    if s.registered or mask_message(target, text) == text:
        return False
    s.refuse("Not connected: a password is not kept to be sent later (it could reach "
             "someone else's NickServ); send it once connected", now)  # fmt: skip
    return True


def secret_input(text: str, current: Buffer) -> bool:
    """Whether a typed line carries a password (typed in buffer ``current``): the UI
    keeps it out of the input history. /register; /msg, /query, /notice or /ns to
    NickServ with IDENTIFY, REGISTER, SET PASSWORD...; such text typed in a NickServ
    query; /quote lines with credentials (NS, NICKSERV, PASS, OPER, AUTHENTICATE...)."""
    if text.startswith("/") and not text.startswith("//"):
        name, _, args = text[1:].partition(" ")
        name = name.lower()
        name = ALIASES.get(name, name)
        args = args.strip()
        if name == "register":
            return True
        if name == "quote":
            return secret_raw(args)
        if name == "ns":
            return mask_nickserv(args) != args
        if name in ("msg", "query", "notice"):
            target, _, rest = args.partition(" ")
            return mask_message(target, rest) != rest
        return False
    if text.startswith("//"):
        text = text[1:]
    return current.kind is BufferKind.QUERY and any(
        mask_message(current.name, line) != line for line in text.splitlines()
    )


def _need(args: str, minimum: int, usage: str) -> list[str]:
    parts = args.split()
    if len(parts) < minimum:
        raise UsageError(f"Usage: {usage}")
    return parts


def _check_name(name: str, what: str) -> str:
    if not name or any(ch in name for ch in " ,\x00\r\n\x07") or name.startswith(":"):
        raise UsageError(f"Invalid {what}: {name!r}")
    return name


def _channel_arg(s: Session, args: str) -> tuple[str | None, str]:
    """(channel, rest): an explicit leading channel, else the current channel."""
    first, _, rest = args.partition(" ")
    if first and s.is_channel(first):
        return first, rest.strip()
    if s.current.kind is BufferKind.CHANNEL:
        return s.current.name, args
    return None, args


# ---------------------------------------------------------------------- channel commands


@command(
    "join",
    "/join #channel[,#other] [key[,key]]",
    "Join channels (and switch to them); typed while not connected, they are joined"
    " once connected.",
    online=False,
)
def _join(s: Session, args: str, now: float) -> None:
    parts = _need(args, 1, COMMANDS["join"].usage)
    if len(parts) > 1 and all(s.is_channel(p) for p in parts):
        names, keys = parts, []  # "/join #a #b" works too
    else:
        names = parts[0].split(",")
        keys = parts[1].split(",") if len(parts) > 1 else []
    chans = []
    for name in names:
        if not name:
            continue
        if not s.is_channel(name):
            name = "#" + name
        chans.append(_check_name(name, "channel"))
    if not s.registered:
        s.join_later(chans, keys, now)
        return
    already = [c for c in chans if (b := s.buffer(c)) is not None and b.joined]
    todo = [c for c in chans if c not in already]
    if already and not todo:
        s.switch(already[-1], now)
        return
    s.join(todo, keys)


@command(
    "part",
    "/part [#channel] [reason]",
    "Leave a channel (the buffer stays; /close it); while not connected, do not join it"
    " when connected.",
    online=False,
)
def _part(s: Session, args: str, now: float) -> None:
    chan, reason = _channel_arg(s, args)
    if chan is None:
        raise UsageError("Usage: /part [#channel] [reason] (in a channel buffer)")
    if not s.registered:
        if not s.forget_join(chan, now):
            s.error("/part: not connected", now)
        return
    s.send("PART", chan, *([reason] if reason else []))


@command("topic", "/topic [#channel] [new topic | -delete]", "Show or set a channel topic.")
def _topic(s: Session, args: str, now: float) -> None:
    chan, text = _channel_arg(s, args)
    if chan is None:
        raise UsageError("Usage: /topic #channel [new topic]")
    if not text:
        s.show_topic(chan)
        s.send("TOPIC", chan)
    elif text == "-delete":
        s.send("TOPIC", chan, "")
    else:
        s.send("TOPIC", chan, text)


@command("names", "/names [#channel]", "List the members of a channel.")
def _names(s: Session, args: str, now: float) -> None:
    chan, _ = _channel_arg(s, args)
    if chan is None:
        raise UsageError("Usage: /names #channel")
    s.show_names(chan)
    s.send("NAMES", chan)


@command("list", "/list [pattern]", "List channels on the server.")
def _list(s: Session, args: str, now: float) -> None:
    if args:
        s.send("LIST", _check_name(args.split()[0], "pattern"))
    else:
        s.send("LIST")


SEARCH_OPTIONS = ("-in", "-from", "-all")


@command(
    "search",
    "/search [-in TARGET] [-from NICK] [-all] TEXT",
    "Search the server's messages (soju.im/search): in this channel or query, in TARGET,"
    " or everywhere (-all, or from the server buffer); -from NICK: by NICK (TEXT may then"
    " be left out). Results, newest 100, go to the *search* buffer.",
)
def _search(s: Session, args: str, now: float) -> None:
    """``SEARCH text=…;in=…;from=…;limit=N`` (values escaped as message-tag values);
    options come first, anything else starts the text (``--`` ends them)."""
    target: str | None = None
    sender: str | None = None
    everywhere = False
    rest = args
    while rest.startswith("-"):
        word, _, tail = rest.partition(" ")
        option = word.lower()
        if option == "--":
            rest = tail.lstrip()
            break
        if option not in SEARCH_OPTIONS:
            break
        rest = tail.lstrip()
        if option == "-all":
            everywhere = True
            continue
        value, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        if not value:
            raise UsageError(f"{option} needs a value. Usage: {COMMANDS['search'].usage}")
        if option == "-in":
            target = _check_name(value, "target")
        else:
            sender = _check_name(value, "nick")
    text = rest.strip()
    if not text and sender is None:
        raise UsageError(f"Search for what? Usage: {COMMANDS['search'].usage}")
    if target is None and not everywhere and s.current.kind in (
        BufferKind.CHANNEL,
        BufferKind.QUERY,
    ):
        target = s.current.name
    if everywhere:
        target = None
    if not s.search_enabled:
        s.error("This server has no message search (soju.im/search)", now)
        return
    s.search(text, target, sender, now)


@command("invite", "/invite NICK [#channel]", "Invite someone to a channel.")
def _invite(s: Session, args: str, now: float) -> None:
    parts = _need(args, 1, COMMANDS["invite"].usage)
    chan = parts[1] if len(parts) > 1 else None
    if chan is None and s.current.kind is BufferKind.CHANNEL:
        chan = s.current.name
    if chan is None:
        raise UsageError("Usage: /invite NICK #channel")
    s.invite(_check_name(parts[0], "nick"), _check_name(chan, "channel"))


@command("knock", "/knock #channel [message]", "Ask a closed channel's operators for an invite.")
def _knock(s: Session, args: str, now: float) -> None:
    chan, _, text = args.partition(" ")
    if not chan or not s.is_channel(chan):
        raise UsageError(f"Usage: {COMMANDS['knock'].usage}")
    _check_name(chan, "channel")
    if text.strip():
        s.send("KNOCK", chan, text.strip())
    else:
        s.send("KNOCK", chan)


def _kick_args(s: Session, args: str, name: str) -> tuple[str, str, str]:
    """``[#channel] NICK [reason]`` -> (channel, nick, reason)."""
    chan, rest = _channel_arg(s, args)
    nick, _, reason = rest.partition(" ")
    if chan is None or not nick:
        raise UsageError(f"Usage: {COMMANDS[name].usage}")
    return chan, _check_name(nick, "nick"), reason.strip()


def _send_kick(s: Session, chan: str, nick: str, reason: str) -> None:
    s.send("KICK", chan, nick, *([reason] if reason else []))


@command("kick", "/kick [#channel] NICK [reason]", "Remove someone from a channel.")
def _kick(s: Session, args: str, now: float) -> None:
    _send_kick(s, *_kick_args(s, args, "kick"))


DEFAULT_MODES = 3  # parameter modes per MODE line when the server gives no ISUPPORT MODES
MAX_MODES = 12


def _modes_per_line(s: Session) -> int:
    value = s.isupport.get("MODES")
    if value is None:
        return DEFAULT_MODES
    return min(int(value), MAX_MODES) if is_digits(value) and int(value) > 0 else MAX_MODES


def _send_modes(s: Session, chan: str, change: str, params: list[str]) -> None:
    """``MODE chan +ooo a b c``, as many lines as ISUPPORT MODES asks for."""
    per = _modes_per_line(s)
    sign, letter = change[0], change[1]
    for i in range(0, len(params), per):
        chunk = params[i : i + per]
        s.send("MODE", chan, sign + letter * len(chunk), *chunk)


def _channel_and_names(s: Session, args: str, name: str) -> tuple[str, list[str]]:
    chan, rest = _channel_arg(s, args)
    names = rest.split()
    if chan is None or not names:
        raise UsageError(f"Usage: {COMMANDS[name].usage}")
    return chan, [_check_name(n, "nick or mask") for n in names]


def ban_mask(s: Session, chan: str, who: str) -> str:
    """A mask as given, or for a member's nick ``*!*@host`` (``nick!*@*`` if unknown)."""
    if "!" in who or "@" in who or "*" in who:
        return who
    buf = s.buffer(chan)
    member = buf.members.get(s.fold(who)) if buf is not None else None
    if member is not None and member.userhost:
        return "*!*@" + member.userhost.partition("@")[2]
    return f"{who}!*@*"


def _status_command(name: str, change: str, what: str) -> None:
    @command(name, f"/{name} [#channel] NICK...", what)
    def run(s: Session, args: str, now: float) -> None:
        chan, nicks = _channel_and_names(s, args, name)
        _send_modes(s, chan, change, nicks)


_status_command("op", "+o", "Give channel operator status.")
_status_command("deop", "-o", "Take channel operator status away.")
_status_command("voice", "+v", "Let someone speak in a moderated channel.")
_status_command("devoice", "-v", "Take voice away.")


def _mask_commands(add: str, remove: str, letter: str, what: str, undo: str) -> None:
    """/ban and /unban, /quiet and /unquiet: list mode ``letter`` on nicks (by host) or
    masks; ``add`` alone asks for the list."""

    @command(add, f"/{add} [#channel] [NICK|MASK...]", what)
    def run_add(s: Session, args: str, now: float) -> None:
        chan, rest = _channel_arg(s, args)
        if chan is None:
            raise UsageError(f"Usage: {COMMANDS[add].usage}")
        if not rest.split():
            s.send("MODE", chan, "+" + letter)  # the list
            return
        chan, names = _channel_and_names(s, args, add)
        _send_modes(s, chan, "+" + letter, [ban_mask(s, chan, n) for n in names])

    @command(remove, f"/{remove} [#channel] NICK|MASK...", undo)
    def run_remove(s: Session, args: str, now: float) -> None:
        chan, names = _channel_and_names(s, args, remove)
        _send_modes(s, chan, "-" + letter, [ban_mask(s, chan, n) for n in names])


_mask_commands("ban", "unban", "b", "Ban nicks (by host) or masks; list bans.", "Lift bans.")
_mask_commands("quiet", "unquiet", "q", "Keep nicks (by host) or masks from speaking (+q).",
               "Let them speak again.")


@command("kickban", "/kickban [#channel] NICK [reason]", "Ban someone by host, then kick them.")
def _kickban(s: Session, args: str, now: float) -> None:
    chan, nick, reason = _kick_args(s, args, "kickban")
    s.send("MODE", chan, "+b", ban_mask(s, chan, nick))
    _send_kick(s, chan, nick, reason)


@command("mode", "/mode [target] [+/-modes [args]]", "Show or change channel or user modes.")
def _mode(s: Session, args: str, now: float) -> None:
    parts = args.split()
    if not parts or parts[0][0] in "+-":
        target = s.current.name if s.current.kind is BufferKind.CHANNEL else s.nick
        parts.insert(0, target)
    for p in parts:
        _check_name(p, "mode argument")
    s.send("MODE", *parts)


# ---------------------------------------------------------------------- messaging


@command(
    "msg", "/msg TARGET[,TARGET] TEXT", "Send a message to nicks or channels.", online=False
)
def _msg(s: Session, args: str, now: float) -> None:
    target, _, text = args.partition(" ")
    if not target or not text.strip():
        raise UsageError(f"Usage: {COMMANDS['msg'].usage}")
    # "bob,carol": one message each (as irssi), each shown in its own buffer.
    targets = list(dict.fromkeys(_check_name(t, "target") for t in target.split(",")))
    if any(_password_kept_back(s, t, text, now) for t in targets):
        return
    if _can_send_to(s, targets, now):
        for t in targets:
            s.say(t, text, now)


def _can_send_to(s: Session, targets: list[str], now: float) -> bool:
    """Whether a message to ``targets`` (a /msg, /notice) can be taken: sent now, or,
    while the connection is down, kept in the outbox as typed text is (a nick's for
    the registration, a channel's for its rejoin). If not, it is refused with an error
    line saying why."""
    if s.registered:
        return True
    if not s.reconnecting:
        s.refuse("Not connected: the message was not sent", now)
        return False
    for target in targets:
        name = target.lstrip(s.prefix_symbols)
        buf = s.buffer(name)
        if s.is_channel(name) and (buf is None or not s.outbox.accepts(buf)):
            s.refuse(f"Not connected, and not in {name}: the message was not sent", now)
            return False
    return True


@command(
    "query", "/query NICK [TEXT]", "Open a private conversation (and send TEXT).", online=False
)
def _query(s: Session, args: str, now: float) -> None:
    nick, _, text = args.partition(" ")
    if not nick or s.is_channel(nick):
        raise UsageError(f"Usage: {COMMANDS['query'].usage}")
    _check_name(nick, "nick")
    if s.open_query(nick, now) is None:
        raise UsageError("Cannot open another buffer")
    if text.strip() and not _password_kept_back(s, nick, text, now) and _can_send_to(
        s, [nick], now
    ):
        s.say(nick, text, now)


@command(
    "ns",
    "/ns TEXT",
    "Send TEXT to NickServ (/msg NickServ TEXT): IDENTIFY [account] password,"
    " REGISTER password [email], SET PASSWORD new, HELP; passwords show as ********.",
    online=False,
)
def _ns(s: Session, args: str, now: float) -> None:
    _to_service(s, NICKSERV_NICK, "ns", args, now)


def _to_service(s: Session, service: str, name: str, args: str, now: float) -> None:
    if not args:
        raise UsageError(f"Usage: {COMMANDS[name].usage}")
    if _password_kept_back(s, service, args, now):
        return
    if _can_send_to(s, [service], now):  # while disconnected: as /msg NickServ ...
        s.say(service, args, now)


@command(
    "cs",
    "/cs TEXT",
    "Send TEXT to ChanServ (/msg ChanServ TEXT): REGISTER #channel, OP #channel [nick],"
    " ACCESS #channel ADD account, INFO #channel, DROP #channel, HELP.",
    online=False,
)
def _cs(s: Session, args: str, now: float) -> None:
    _to_service(s, CHANSERV_NICK, "cs", args, now)


@command(
    "ms",
    "/ms TEXT",
    "Send TEXT to MemoServ (/msg MemoServ TEXT): SEND account text, LIST, READ NEW,"
    " DEL number, HELP.",
    online=False,
)
def _ms(s: Session, args: str, now: float) -> None:
    _to_service(s, MEMOSERV_NICK, "ms", args, now)


@command(
    "me", "/me ACTION", "Send an action (CTCP ACTION) to the current buffer.", online=False
)
def _me(s: Session, args: str, now: float) -> None:
    if not args:
        raise UsageError(f"Usage: {COMMANDS['me'].usage}")
    if _password_kept_back(s, s.current.name, args, now):
        return
    if _can_say_here(s, now):
        s.say(s.current.name, args, now, action=True)


@command(
    "resend",
    "/resend",
    "Send this buffer's failed messages (marked \"not sent\" or \"may not have been"
    " delivered\") again, in order.",
    online=False,
)
def _resend(s: Session, args: str, now: float) -> None:
    buf = s.current
    if not _can_say_here(s, now):
        return
    count = s.outbox.resend(buf, now)
    if count is None:
        s.error("Not sent: too many messages are waiting to be sent", now)
    elif not count:
        s.error(f"No failed messages to resend in {buf.name}", now)


@command(
    "unqueue",
    "/unqueue",
    "Drop this buffer's messages not sent yet (a paste held back by flood control, or"
    " typed while disconnected): they are marked \"not sent\"; /resend sends them.",
    online=False,
)
def _unqueue(s: Session, args: str, now: float) -> None:
    buf = s.current
    count, lines = s.outbox.unqueue(buf)
    if not count:
        s.error(f"No messages waiting to be sent in {buf.name}", now)
        return
    what = f"{count} message" + ("s" if count > 1 else "")
    if lines > count:
        what += f" ({lines} lines)"
    s.info(f"Not sending {what}; /resend sends them again", now)


@command("notice", "/notice TARGET TEXT", "Send a notice.", online=False)
def _notice(s: Session, args: str, now: float) -> None:
    target, _, text = args.partition(" ")
    if not target or not text.strip():
        raise UsageError(f"Usage: {COMMANDS['notice'].usage}")
    if _password_kept_back(s, target, text, now):
        return
    if _can_send_to(s, [_check_name(target, "target")], now):
        s.notice(target, text, now)


@command("ctcp", "/ctcp TARGET CMD [args]", "Send a CTCP request (VERSION, PING, TIME...).")
def _ctcp(s: Session, args: str, now: float) -> None:
    target, cmd, rest = [*args.split(None, 2), "", "", ""][:3]  # (all three may be missing)
    if not target or not cmd:
        raise UsageError(f"Usage: {COMMANDS['ctcp'].usage}")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", cmd):
        raise UsageError(f"Invalid CTCP command: {cmd[:40]!r}")
    s.ctcp(_check_name(target, "target"), cmd, rest.strip(), now)


@command("ping", "/ping NICK", "CTCP PING: how long a reply from NICK takes.")
def _ping(s: Session, args: str, now: float) -> None:
    if len(args.split()) != 1:
        raise UsageError(f"Usage: {COMMANDS['ping'].usage}")
    s.ctcp(_check_name(args.strip(), "target"), "PING", "", now)


@command("version", "/version NICK", "CTCP VERSION: which client NICK uses.")
def _version(s: Session, args: str, now: float) -> None:
    if len(args.split()) != 1:
        raise UsageError(f"Usage: {COMMANDS['version'].usage}")
    s.ctcp(_check_name(args.strip(), "target"), "VERSION", "", now)


@command(
    "redact",
    "/redact [NICK] [reason]",
    "Delete your newest message in this buffer (or NICK's: channel operators may);"
    " it shows as (message deleted) to everyone whose client supports it.",
)
def _redact(s: Session, args: str, now: float) -> None:
    """IRCv3 draft/message-redaction: ``REDACT <buffer> <msgid> [:reason]`` for the newest
    message here (that has a msgid) sent by NICK, or by us. The first word is NICK only
    when a message here is from that nick; otherwise it all is the reason. The line
    changes when the server's REDACT comes back; its refusals are FAIL REDACT."""
    buf = s.current
    if buf.kind not in (BufferKind.CHANNEL, BufferKind.QUERY):
        raise UsageError("/redact deletes a message in a channel or query buffer")
    if not s.redaction_enabled:
        s.error("This server cannot delete messages (no draft/message-redaction)", now)
        return
    first, _, rest = args.partition(" ")
    nick: str | None = None
    reason = args
    if first and any(_sent_by(s, ln, first) for ln in buf.lines):
        nick, reason = first, rest.strip()
    line = deletable(s, buf, nick)
    if line is None or line.msgid is None:
        whose = "of yours" if nick is None or s.is_me(nick) else f"from {nick}"
        s.error(f"No message {whose} to delete in {buf.name}", now)
        return
    s.send("REDACT", buf.name, line.msgid, *([reason] if reason else []))


def _sent_by(s: Session, line: Line, nick: str | None) -> bool:
    """A message line from ``nick`` (None, or our nick: from us)."""
    if line.kind not in MESSAGE_KINDS:
        return False
    if nick is None or s.is_me(nick):
        return line.own
    return s.fold(line.nick) == s.fold(nick)


def deletable(s: Session, buf: Buffer, nick: str | None) -> Line | None:
    """The newest message in ``buf`` sent by ``nick`` (None: by us) that /redact can
    name: it has a msgid (usable as a parameter) and is not deleted already."""
    for line in reversed(buf.lines):
        msgid = line.msgid
        if (
            msgid
            and not line.redacted
            and " " not in msgid
            and not msgid.startswith(":")
            and _sent_by(s, line, nick)
        ):
            return line
    return None


# Reactions typed as :shortcodes: (a terminal may make emoji hard to type); Tab
# completes them to the emoji.
SHORTCODES: dict[str, str] = {
    ":+1:": "👍", ":thumbsup:": "👍", ":-1:": "👎", ":thumbsdown:": "👎",
    ":heart:": "❤️", ":joy:": "😂", ":rofl:": "🤣", ":smile:": "😄", ":laughing:": "😆",
    ":wink:": "😉", ":cry:": "😢", ":sob:": "😭", ":thinking:": "🤔", ":eyes:": "👀",
    ":tada:": "🎉", ":fire:": "🔥", ":rocket:": "🚀", ":100:": "💯", ":pray:": "🙏",
    ":clap:": "👏", ":wave:": "👋", ":ok_hand:": "👌", ":check:": "✅", ":x:": "❌",
    ":star:": "⭐",
}  # fmt: skip


def _reaction_arg(word: str) -> str:
    """The reaction typed: a :shortcode:'s emoji, or the word itself (checked)."""
    from .session import MAX_REACTION, reaction_text

    word = SHORTCODES.get(word.lower(), word)
    text = reaction_text(word)
    if not text or text != word:  # (cut to MAX_REACTION, or control characters)
        raise UsageError(
            f"A reaction is an emoji, a :shortcode: or a word of at most {MAX_REACTION}"
            f" characters, not {word!r}"
        )
    return text


@command(
    "react",
    "/react EMOJI [NICK]",
    "React to the newest message in this buffer (NICK's, if given) with an emoji,"
    " a :shortcode: such as :+1: or a short word; shown as [👍 1] after the message.",
)
def _react(s: Session, args: str, now: float) -> None:
    """IRCv3 reactions: ``@+draft/react=<emoji>;+draft/reply=<msgid> TAGMSG <buffer>``
    for the newest message here (that has a msgid), sent by NICK when given. The line
    shows it when the server's echo comes back (at once without echo-message)."""
    buf = s.current
    if buf.kind not in (BufferKind.CHANNEL, BufferKind.QUERY):
        raise UsageError("/react reacts to a message in a channel or query buffer")
    words = args.split()
    if not 1 <= len(words) <= 2:
        raise UsageError(f"Usage: {COMMANDS['react'].usage}")
    text = _reaction_arg(words[0])
    nick = words[1] if len(words) > 1 else None
    if "message-tags" not in s.caps:
        s.error("This server cannot carry reactions (no message-tags)", now)
        return
    if buf.kind is BufferKind.CHANNEL and not buf.joined:
        s.error(f"You are not in {buf.name} (/join {buf.name})", now)
        return
    line = reactable(s, buf, nick)
    if line is None:
        whose = f" from {nick}" if nick is not None else ""
        s.error(f"No message{whose} to react to in {buf.name}", now)
        return
    if any(r.own and r.text == text for r in line.reactions):
        s.error(f"You reacted {text} to that message already (/unreact {text})", now)
        return
    s.react(buf, line, text, now)


def reactable(s: Session, buf: Buffer, nick: str | None) -> Line | None:
    """The newest message in ``buf`` (sent by ``nick`` when given; our own nick: by us)
    that can take a reaction: it has a msgid and is not deleted."""
    for line in reversed(buf.lines):
        if line.msgid and not line.redacted and line.kind in MESSAGE_KINDS and (
            nick is None or _sent_by(s, line, nick)
        ):
            return line
    return None


@command(
    "unreact",
    "/unreact [EMOJI]",
    "Take back your newest reaction in this buffer (of EMOJI, if given).",
)
def _unreact(s: Session, args: str, now: float) -> None:
    """``REDACT <buffer> <msgid>`` for our newest reaction here (its msgid came with the
    echo; one REDACT per copy when it was sent more than once). The line changes when
    the server's REDACT comes back."""
    buf = s.current
    if buf.kind not in (BufferKind.CHANNEL, BufferKind.QUERY):
        raise UsageError("/unreact takes back a reaction in a channel or query buffer")
    words = args.split()
    if len(words) > 1:
        raise UsageError(f"Usage: {COMMANDS['unreact'].usage}")
    text = _reaction_arg(words[0]) if words else None
    if not s.redaction_enabled:
        s.error("This server cannot take reactions back (no draft/message-redaction)", now)
        return
    reaction = own_reaction(buf, text)
    if reaction is None:
        what = f" {text}" if text is not None else ""
        s.error(f"No reaction{what} of yours to take back in {buf.name}", now)
        return
    for msgid in reaction.msgids:
        if _param_safe(msgid):
            s.send("REDACT", buf.name, msgid)


def own_reaction(buf: Buffer, text: str | None) -> Reaction | None:
    """Our newest reaction (by its time; the later line on a tie) in ``buf``, of ``text``
    when given, that can be taken back: it has a msgid usable as a parameter."""
    best: Reaction | None = None
    for line in buf.lines:
        for r in line.reactions:
            if (
                r.own
                and (text is None or r.text == text)
                and any(_param_safe(m) for m in r.msgids)
                and (best is None or r.time >= best.time)
            ):
                best = r
    return best


def _param_safe(msgid: str) -> bool:
    return bool(msgid) and " " not in msgid and not msgid.startswith(":")


# ---------------------------------------------------------------------- you and others


@command("nick", "/nick NEWNICK", "Change your nick.")
def _nick(s: Session, args: str, now: float) -> None:
    parts = _need(args, 1, COMMANDS["nick"].usage)
    s.change_nick(_check_name(parts[0], "nick"))


@command("whois", "/whois NICK", "Show information about someone.")
def _whois(s: Session, args: str, now: float) -> None:
    parts = _need(args, 1, COMMANDS["whois"].usage)
    s.whois(_check_name(parts[0], "nick"))


@command("whowas", "/whowas NICK [COUNT]", "Show who recently used a nick, newest first.")
def _whowas(s: Session, args: str, now: float) -> None:
    parts = _need(args, 1, COMMANDS["whowas"].usage)
    nick = _check_name(parts[0], "nick")
    if len(parts) > 1:
        if not is_digits(parts[1]):
            raise UsageError(f"Usage: {COMMANDS['whowas'].usage}")
        s.send("WHOWAS", nick, parts[1])
    else:
        s.send("WHOWAS", nick)


@command(
    "who",
    "/who [#channel|MASK] [o]",
    "List the users of a channel, or those matching a mask (o: only IRC operators);"
    " without one, the current channel's.",
)
def _who(s: Session, args: str, now: float) -> None:
    parts = args.split()
    here = s.current.name if s.current.kind is BufferKind.CHANNEL else None
    mask = parts[0] if parts else here
    if mask is None or len(parts) > 2 or parts[1:] not in ([], ["o"]):
        raise UsageError(f"Usage: {COMMANDS['who'].usage}")
    s.send("WHO", _check_name(mask, "mask"), *parts[1:])


@command(
    "notify",
    "/notify [add|del] [NICK...]",
    "Watch nicks come and go (without NICK: show the list); also `notify` in the config.",
    online=False,
)
def _notify(s: Session, args: str, now: float) -> None:
    words = args.replace(",", " ").split()
    if not words:
        s.show_notify(now)
        return
    adding, words = _add_or_del(words, COMMANDS["notify"].usage)
    nicks = list(dict.fromkeys(_check_name(word, "nick") for word in words))
    for nick in nicks:
        if s.is_channel(nick):
            raise UsageError(f"Not a nick: {nick!r}")
    if adding:
        s.watch(nicks, now)
    else:
        s.unwatch(nicks, now)


@command(
    "ignore",
    "/ignore [add|del] [MASK...]",
    "Drop messages, notices, CTCPs and invites from a nick or nick!user@host mask"
    " (without MASK: show the list); also `ignore` in the config.",
    online=False,
)
def _ignore(s: Session, args: str, now: float) -> None:
    words = args.split()
    if not words:
        s.show_ignores(now)
        return
    adding, words = _add_or_del(words, COMMANDS["ignore"].usage)
    masks = [_check_name(word, "mask") for word in words]
    if adding:
        s.ignore(masks, now)
    else:
        s.unignore(masks, now)


def _add_or_del(words: list[str], usage: str) -> tuple[bool, list[str]]:
    """``[add|del|remove|rm] NAME...`` (no verb: add, irssi's form) -> (adding, names)."""
    verb = words[0].lower()
    adding = verb not in ("del", "remove", "rm")
    if verb in ("add", "del", "remove", "rm"):
        words = words[1:]
    if not words:
        raise UsageError(f"Usage: {usage}")
    return adding, words


@command(
    "accept",
    "/accept [NICK[,NICK...] | -NICK | *]",
    "Caller ID: while you have user mode +g (/mode YOURNICK +g) only nicks you accept may"
    " message you privately; -NICK takes it back; without NICK (or *): show the list.",
)
def _accept(s: Session, args: str, now: float) -> None:
    """``ACCEPT nick,-nick`` (as on solanum and charybdis), then ``ACCEPT *`` to show
    the list the server then has (it does not confirm a change)."""
    if s.callerid_mode is None:
        s.error("This server has no caller ID (+g)", now)
        return
    words = args.replace(",", " ").split()
    if not words or words == ["*"]:
        s.send("ACCEPT", "*")
        return
    entries: list[str] = []
    for word in words:
        nick = word.removeprefix("-")
        if nick == "*" or s.is_channel(nick):
            raise UsageError(f"Not a nick: {word!r} (usage: {COMMANDS['accept'].usage})")
        _check_name(nick, "nick")
        entries.append(word)
    s.accept(list(dict.fromkeys(entries)))


@command("unignore", "/unignore MASK...", "Stop ignoring a nick or mask.", online=False)
def _unignore(s: Session, args: str, now: float) -> None:
    masks = [_check_name(word, "mask") for word in _need(args, 1, COMMANDS["unignore"].usage)]
    s.unignore(masks, now)


@command(
    "register",
    "/register [ACCOUNT] PASSWORD",
    "Create an account (named after your nick without ACCOUNT) and log in to it.",
)
def _register(s: Session, args: str, now: float) -> None:
    """IRCv3 draft/account-registration: ``REGISTER <account|*> * <password>``.

    The password is never shown: errors name only the account, and nothing local
    echoes the command (the UI keeps it out of the input history too)."""
    parts = args.split()
    if not 1 <= len(parts) <= 2:
        raise UsageError(f"Usage: {COMMANDS['register'].usage} (the password without spaces)")
    if "draft/account-registration" not in s.available_caps:
        s.error("This server does not offer account registration (draft/account-registration)",
                now)  # fmt: skip
        return
    account = _check_name(parts[0], "account name") if len(parts) == 2 else "*"
    s.send("REGISTER", account, "*", parts[-1])
    s.login_attempt(None if account == "*" else account, parts[-1], now)  # for reconnects
    s.info(f"Registering the account {s.nick if account == '*' else account}…", now)


@command(
    "away",
    "/away [message]",
    "Set an away message; without one, come back. Kept across reconnects.",
    online=False,
)
def _away(s: Session, args: str, now: float) -> None:
    s.set_away(args, now)


@command("wallops", "/wallops TEXT", "Operators: send TEXT to everyone with user mode +w.")
def _wallops(s: Session, args: str, now: float) -> None:
    if not args.strip():
        raise UsageError(f"Usage: {COMMANDS['wallops'].usage}")
    s.send("WALLOPS", args.strip())


@command("quote", "/quote RAW LINE", "Send a raw IRC line to the server.")
def _quote(s: Session, args: str, now: float) -> None:
    if not args:
        raise UsageError(f"Usage: {COMMANDS['quote'].usage}")
    s.send_raw(args)


QUIT_AGAIN = 10.0  # seconds a second /quit has to confirm quitting with messages unsent


@command(
    "reconnect",
    "/reconnect",
    "Close the connection and connect again at once (also to stop waiting to retry).",
    online=False,
)
def _reconnect(s: Session, args: str, now: float) -> None:
    s.reconnect(now)


@command("quit", "/quit [message]", "Disconnect and exit.", online=False)
def _quit(s: Session, args: str, now: float) -> None:
    # Messages held back by flood control or waiting for the connection would go with
    # us, told in buffers nobody sees any more: say so once, as irssi's /quit -yes.
    waiting = s.outbox.queued + s.outbox.unsent
    if waiting and now - s.quit_warned_at > QUIT_AGAIN:
        s.quit_warned_at = now
        what = "1 message is" if waiting == 1 else f"{waiting} messages are"
        raise UsageError(f"{what} not sent yet: /quit again to quit anyway")
    s.quit(args, now)


# ---------------------------------------------------------------------- local


@command("close", "/close [buffer]", "Close a buffer (parts a channel).", online=False)
def _close(s: Session, args: str, now: float) -> None:
    buf = s.find_buffer(args.split()[0]) if args else s.current
    if buf is None:
        raise UsageError(f"No buffer {args.split()[0]!r}")
    if buf.kind is BufferKind.SERVER:
        raise UsageError("The server buffer cannot be closed (use /quit)")
    s.close_buffer(buf, now)


@command(
    "win",
    "/win N|NAME|next|prev|goto N|NAME|close [N|NAME]",
    "Switch to buffer number N (1 is the server buffer), or to the buffer NAME, or the"
    " one buffer whose name contains it (/win c45 for #c45). As irssi's /window: next,"
    " prev, goto (the same; /win goto next for a buffer named next), close (/close)."
    " Also /window, /buffer.",
    online=False,
)
def _win(s: Session, args: str, now: float) -> None:
    usage = COMMANDS["win"].usage
    parts = _need(args, 1, usage)
    sub = parts[0].lower()
    if sub in ("next", "prev") and len(parts) == 1:
        s.switch_relative(1 if sub == "next" else -1, now)
    elif sub == "close":
        buf = _named_buffer(s, parts[1]) if len(parts) > 1 else s.current
        if buf.kind is BufferKind.SERVER:
            raise UsageError("The server buffer cannot be closed (use /quit)")
        s.close_buffer(buf, now)
    elif sub == "goto":
        s.switch(_named_buffer(s, _need(args, 2, usage)[1]), now)
    else:
        s.switch(_named_buffer(s, parts[0]), now)


def _named_buffer(s: Session, text: str) -> Buffer:
    """The buffer numbered ``text``, named ``text``, or whose name contains it."""
    if is_digits(text):
        if not 0 < int(text) <= len(s.buffers):
            raise UsageError(f"No buffer number {text} (there are {len(s.buffers)})")
        return s.buffers[int(text) - 1]
    return s.find_buffer(text) or _partial_buffer(s, text)


def _partial_buffer(s: Session, text: str) -> Buffer:
    """The one buffer whose name contains ``text`` (as irssi's /window goto): a name that
    is ``text`` after its channel prefix (``c4`` for ``#c4``, not ``#c45``) first."""
    want = s.fold(text)
    found = [b for b in s.buffers if want in s.fold(b.name)]
    if len(found) > 1:
        found = [b for b in found if s.fold(b.name.lstrip(s.chantypes)) == want] or found
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(f"No buffer {text!r}")
    names = ", ".join(b.name for b in found[:MATCHES_SHOWN])
    more = f" (+{len(found) - MATCHES_SHOWN} more)" if len(found) > MATCHES_SHOWN else ""
    raise UsageError(f"Several buffers match {text!r}: {names}{more}")


@command("clear", "/clear", "Clear the current buffer's scrollback.", online=False)
def _clear(s: Session, args: str, now: float) -> None:
    s.clear(s.current)


@command(
    "filter",
    "/filter [all|smart|none]",
    "Joins, parts, quits and nick changes in channels: show all, smart (only of nicks"
    " who spoke there within a few minutes of them; the default) or none; without a"
    " word, the next of these. For this session; `events` in the config.",
    online=False,
)
def _filter(s: Session, args: str, now: float) -> None:
    words = args.lower().split()
    if len(words) > 1 or (words and words[0] not in tuple(Events)):
        raise UsageError(f"Usage: {COMMANDS['filter'].usage}")
    s.set_filter(Events(words[0]) if words else None, now)


@command("help", "/help [command|keys]", "List commands, describe one, or list the keys.",
         online=False)  # fmt: skip
def _help(s: Session, args: str, now: float) -> None:
    if args.split()[:1] == ["keys"]:
        s.info("Keys (rebind them by action name in [keys] of the config file):", now)
        for line in help_lines(s.config.keys if s.config.keys is not None else DEFAULT_KEYS):
            s.info(line, now)
        return
    if args:
        name = args.split()[0].lstrip("/").lower()
        cmd = COMMANDS.get(ALIASES.get(name, name))
        if cmd is None:
            raise UsageError(f"Unknown command /{name}")
        s.info(f"{cmd.usage} — {cmd.help}", now)
        return
    s.info("Commands (/help COMMAND for details, /help keys for the keys; //text sends text "
           "starting with /):", now)  # fmt: skip
    for cmd in COMMANDS.values():
        s.info(f"  {cmd.usage:<42} {cmd.help}", now)


# ---------------------------------------------------------------------- completion


def command_names() -> list[str]:
    return sorted(COMMANDS)


def complete(s: Session, text: str, cursor: int) -> Completion:
    from .session import Completion

    cursor = max(0, min(cursor, len(text)))
    start = text.rfind(" ", 0, cursor) + 1
    word = text[start:cursor]
    if not word:
        return Completion(start, cursor, [])
    if start == 0 and word.startswith("/"):
        stem = word[1:].lower()
        return Completion(start, cursor, [f"/{n} " for n in command_names() if n.startswith(stem)])
    fold = s.fold
    stem = fold(word)
    before = text[:start].split()
    if before and before[0].lower() == "/search":
        found = _complete_search(s, before, word)
        if found is not None:
            return Completion(start, cursor, found)
    if word[0] in s.chantypes:
        names = [b.name for b in s.buffers if b.kind is BufferKind.CHANNEL]
        return Completion(start, cursor, [n for n in names if fold(n).startswith(stem)])
    buf = s.current
    if text[:start].lower() == "/redact ":  # whose message: those who wrote here
        senders: dict[str, str] = {}  # folded -> as written, newest first
        for ln in reversed(buf.lines):
            if ln.kind in MESSAGE_KINDS and ln.nick and not ln.own and not s.is_me(ln.nick):
                senders.setdefault(fold(ln.nick), ln.nick)
        names = [n + " " for key, n in senders.items() if key.startswith(stem)]
        return Completion(start, cursor, names)
    if text[:start].lower().startswith("/accept "):
        return _complete_accept(s, start, word, cursor)
    if before and before[0].lower() in ("/react", "/unreact") and text[:start].endswith(" "):
        return _complete_reaction(s, before, start, word, cursor)
    nicks = _buffer_nicks(s, buf)
    suffix = ": " if start == 0 else " "
    return Completion(start, cursor, [n + suffix for n in nicks if fold(n).startswith(stem)])


def _complete_reaction(
    s: Session, before: list[str], start: int, word: str, cursor: int
) -> Completion:
    """/react's emoji (a :shortcode:'s, or one used here, newest first) then the nick
    (of those who wrote here); /unreact's emoji (ours here)."""
    from .session import Completion

    buf = s.current
    if len(before) == 1:
        unreact = before[0].lower() == "/unreact"
        used: dict[str, None] = {}  # texts, newest first
        for line in reversed(buf.lines):
            for r in reversed(line.reactions):
                if r.own or not unreact:
                    used.setdefault(r.text)
        found = [t for t in used if t.startswith(word)]
        if word.startswith(":") and not unreact:
            stem = word.lower()
            found += [e for code, e in SHORTCODES.items() if code.startswith(stem)]
        return Completion(start, cursor, [t + " " for t in dict.fromkeys(found)])
    if len(before) == 2 and before[0].lower() == "/react":
        stem = s.fold(word)
        senders: dict[str, str] = {}  # folded -> as written, newest first
        for ln in reversed(buf.lines):
            if ln.kind in MESSAGE_KINDS and ln.nick and ln.msgid and not ln.own:
                senders.setdefault(s.fold(ln.nick), ln.nick)
        names = [n + " " for key, n in senders.items() if key.startswith(stem)]
        return Completion(start, cursor, names)
    return Completion(start, cursor, [])


def _complete_search(s: Session, before: list[str], word: str) -> list[str] | None:
    """/search's options (while only options came before), ``-in``'s channels and
    queries, ``-from``'s nicks (the current buffer's, then query partners); None: the
    word is text (ordinary completion)."""
    fold = s.fold
    stem = fold(word)
    prev = before[-1].lower()
    options_only = all(
        w.lower() in SEARCH_OPTIONS or before[i - 1].lower() in ("-in", "-from")
        for i, w in enumerate(before[1:], 1)
    )
    if not options_only:
        return None
    if prev == "-in":
        names = [b.name for b in s.buffers if b.kind is BufferKind.CHANNEL]
        names += [b.name for b in s.buffers if b.kind is BufferKind.QUERY]
        return [n + " " for n in names if fold(n).startswith(stem)]
    if prev == "-from":
        found: dict[str, str] = {}  # folded -> as written, in order
        nicks = _buffer_nicks(s, s.current)
        nicks += [b.name for b in s.buffers if b.kind is BufferKind.QUERY]
        nicks.append(s.nick)  # (our own messages: last)
        for nick in nicks:
            if fold(nick).startswith(stem):
                found.setdefault(fold(nick), nick)
        return [n + " " for n in found.values()]
    if word.startswith("-"):
        return [o + " " for o in SEARCH_OPTIONS if o.startswith(word.lower())]
    return None


def _buffer_nicks(s: Session, buf: Buffer) -> list[str]:
    """Nicks to complete in ``buf``: a channel's members (recent speakers first, not
    us), a query's partner."""
    if buf.kind is BufferKind.CHANNEL:
        # Speaking is a message, not a join or a nick change (as WeeChat's "speakers"),
        # at its line's time: history lines count too, so a reconnect forgets nobody.
        members = sorted(buf.members.values(),
                         key=lambda m: (-buf.last_spoke(m.nick), s.fold(m.nick)))  # fmt: skip
        return [m.nick for m in members if not s.is_me(m.nick)]
    if buf.kind is BufferKind.QUERY:
        return [buf.name]
    return []


def _complete_accept(s: Session, start: int, word: str, cursor: int) -> Completion:
    """/accept's nicks: the word's last one after ``,`` or ``-``; the current buffer's
    nicks, then the partners of open queries."""
    from .session import Completion

    skip = word.rfind(",") + 1
    if word[skip : skip + 1] == "-":
        skip += 1
    stem = s.fold(word[skip:])
    nicks = _buffer_nicks(s, s.current)
    nicks += [b.name for b in s.buffers if b.kind is BufferKind.QUERY]
    found: dict[str, str] = {}  # folded -> as written, in order
    for nick in nicks:
        key = s.fold(nick)
        if key.startswith(stem) and not s.is_me(nick):
            found.setdefault(key, nick)
    return Completion(start + skip, cursor, [n + " " for n in found.values()])
