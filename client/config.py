"""chat-client configuration: a TOML file in the user's config directory.

Location: ``$XDG_CONFIG_HOME/chat-client/config.toml`` (``~/.config/...`` when the
variable is unset); ``--config FILE`` overrides it. A missing default file is fine
(built-in defaults); a missing explicit file, bad TOML or a bad value is a
:class:`ConfigError` with a one-line message naming the file and the setting.

Example::

    nick = "alice"                      # defaults for every server
    scrollback = 2000                   # lines kept per buffer
    history_lines = 100                 # lines per CHATHISTORY request
    highlight_words = ["deploy"]        # highlighted like your nick
    notify = ["bob"]                    # nicks to watch come and go (every server)
    ignore = ["spammer", "*!*@bad.example"]  # drop their messages (every server)
    bell = false                        # ring the terminal bell on highlight
    nicklist = true                     # show the nick list initially
    mouse = true                        # the wheel scrolls (Shift+drag selects text then)
    timestamp_format = "%H:%M"
    log_dir = "~/irclogs"               # one file per buffer, under a folder per server
    send_typing = true                  # tell others when you type (IRCv3 typing)
    events = "smart"                    # joins/parts/quits shown: "all", "smart", "none"
    smart_filter_minutes = 5            # smart: of nicks who spoke within this many minutes
    send_burst = 5                      # flood control: lines written at once...
    send_rate = 1.0                     # ...then lines a second (either 0: no pacing)
    connection_timeout = 60             # seconds from connecting to the welcome (0: none)
    default_server = "home"

    [servers.home]
    host = "irc.example.org"
    port = 6697
    tls = true
    channels = ["#chat", "#dev"]
    user_modes = "+g"                   # set on yourself after every connect (+g: caller ID)
    sasl_username = "alice"             # log in to this account at connect (SASL)...
    sasl_password = "secret"            # ...or set CHAT_SASL_PASSWORD instead
    # sasl_mechanism = "PLAIN"          # an account the server has no SCRAM credentials for
    # sasl_plain_insecure = true        # PLAIN without verified TLS: the password readable
    notify = ["carol"]                  # added to the list above on this server
    ignore = ["troll"]                  # likewise
    send_rate = 4                       # this server (a bouncer) takes more

    [colours]                           # prompt_toolkit style strings
    highlight = "bold #ff5f5f"
    nicks = ["#5fafff", "#87d787"]      # palette for nick colours

    [keys]                              # action = key or [keys]; the UI interprets names
    next_buffer = "c-n"
    toggle_nicklist = ["f7", "escape n"]
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat.names import is_valid_nick

from .pacing import DEFAULT_BURST, DEFAULT_RATE, Pacing
from .sasl import MECHANISMS
from .smartfilter import DEFAULT_MINUTES, Events

MAX_BURST = 1000  # send_burst: lines at once
MAX_RATE = 1000  # send_rate: lines a second
USER_MODES = re.compile(r"[+-][A-Za-z+-]{1,30}")  # what MODE <own nick> may take
APP_DIR = "chat-client"
FILE_NAME = "config.toml"

DEFAULT_COLOURS: dict[str, str] = {
    "timestamp": "#808080",
    "own_nick": "bold",
    "highlight": "bold #ff5f5f",
    "message": "",
    "action": "italic",
    "notice": "#d7af00",
    "join": "#5f875f",
    "part": "#875f5f",
    "quit": "#875f5f",
    "kick": "#d75f5f",
    "nick": "#5f87af",
    "topic": "#5fafaf",
    "mode": "#8787af",
    "info": "#808080",
    "error": "bold #ff0000",
    "history": "#6c6c6c",
    "redacted": "italic #6c6c6c",  # a deleted message's placeholder
    "reactions": "#87afaf",  # the reactions after a message: [👍 2 ❤️ 1]
    "pending": "#6c6c6c",  # our message until the server confirms it (… not sent yet)
    "failed": "#d75f5f",  # our message that was not sent (✗ not sent: reason)
    "topic_bar": "reverse",
    "status_bar": "reverse",
    "buffer_current": "reverse bold",
    "buffer_activity": "#afaf5f",
    "buffer_unread": "bold",
    "buffer_highlight": "bold #ff5f5f",
    "nicklist": "",
    "nicklist_away": "#6c6c6c",
    "input": "",
}

DEFAULT_NICK_COLOURS: tuple[str, ...] = (
    "#5fafff", "#87d787", "#d7af5f", "#d787d7", "#5fd7d7", "#ff8787",
    "#afaf00", "#87afff", "#d7875f", "#af87ff", "#5fd787", "#ff87af",
)  # fmt: skip

# Action -> key sequences (prompt_toolkit key names, space-separated for a sequence).
DEFAULT_KEYS: dict[str, tuple[str, ...]] = {
    "next_buffer": ("c-n",),
    "prev_buffer": ("c-p",),
    **{f"buffer_{n}": (f"escape {n}",) for n in range(1, 10)},
    "buffer_10": ("escape 0",),  # Alt+0, as in irssi
    # Alt+Q..Alt+O: buffers 11-19, as in irssi.
    **{f"buffer_{n}": (f"escape {key}",) for n, key in enumerate("qwertyuio", start=11)},
    "jump_buffer": ("escape j",),  # then two digits: buffer 01-99, as in WeeChat
    # Then b, c, i, u, v, s or o: a mIRC formatting code (readline's Ctrl+V inserts the
    # next key as is; WeeChat's prefix, Ctrl+C, clears the input line here).
    "format_prefix": ("c-v",),
    "scroll_up": ("pageup",),
    "scroll_down": ("pagedown",),
    "scroll_bottom": ("c-end", "escape end"),  # (and End on an empty input line)
    "next_active": ("escape a",),  # Alt+A, as in irssi and WeeChat
    "complete": ("tab",),
    "history_prev": ("up",),
    "history_next": ("down",),
    "toggle_nicklist": ("f7",),
    # The nick list a page up or down (F11/F12 as in WeeChat; Alt+PgUp/PgDn, as some
    # terminals take F11 for full screen).
    "nicklist_up": ("escape pageup", "f11"),
    "nicklist_down": ("escape pagedown", "f12"),
    "quit": ("c-q",),
}

_SERVER_KEYS = {
    "host",
    "port",
    "tls",
    "tls_verify",
    "nick",
    "user",
    "realname",
    "password",
    "sasl_username",
    "sasl_password",
    "sasl_mechanism",
    "sasl_plain_insecure",
    "channels",
    "user_modes",
    "notify",
    "ignore",
    "send_burst",
    "send_rate",
}
_TOP_KEYS = {
    "nick",
    "user",
    "realname",
    "scrollback",
    "history_lines",
    "highlight_words",
    "notify",
    "ignore",
    "bell",
    "nicklist",
    "mouse",
    "timestamp_format",
    "log_dir",
    "send_typing",
    "events",
    "smart_filter_minutes",
    "send_burst",
    "send_rate",
    "connection_timeout",
    "default_server",
    "servers",
    "colours",
    "colors",
    "keys",
}


class ConfigError(Exception):
    """A configuration problem; ``str()`` is one line naming the file and setting."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    name: str
    host: str
    port: int | None = None  # None: 6697 with TLS, else 6667
    tls: bool = False
    tls_verify: bool = True
    nick: str = ""
    user: str = ""
    realname: str = ""
    password: str | None = None
    sasl_username: str | None = None  # SASL at connect (SCRAM-SHA-256 or PLAIN), with a password
    sasl_password: str | None = field(default=None, repr=False)
    # None: SCRAM-SHA-256 when offered, else PLAIN; "PLAIN" for an account the server
    # has no SCRAM credentials for (never chosen after a failed SCRAM: client/sasl.py).
    sasl_mechanism: str | None = None
    sasl_plain_insecure: bool = False  # PLAIN also without TLS with a verified certificate
    channels: tuple[str, ...] = ()
    user_modes: str = ""  # e.g. "+g": set on ourselves after every registration
    notify: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    send_burst: int | None = None  # None: the top level's
    send_rate: float | None = None

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 6697 if self.tls else 6667


@dataclass(frozen=True, slots=True)
class ClientConfig:
    servers: dict[str, ServerSettings] = field(default_factory=dict)
    default_server: str | None = None
    nick: str = ""
    user: str = ""
    realname: str = ""
    scrollback: int = 2000
    history_lines: int = 100
    highlight_words: tuple[str, ...] = ()
    notify: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    bell: bool = False
    nicklist: bool = True
    # The terminal reports the mouse: its wheel scrolls the message pane and the nick
    # list. Off by default: a plain drag then selects text (a URL) in the terminal,
    # which with it on takes Shift (in most terminals).
    mouse: bool = False
    timestamp_format: str = "%H:%M"
    log_dir: Path | None = None  # chat logs (client.chatlog); None: no logs
    send_typing: bool = False  # others' typing is shown either way
    # Joins, parts, quits and nick changes shown in channels (client/smartfilter.py):
    # "all", "smart" (of nicks who spoke within smart_filter_minutes) or "none".
    events: str = Events.SMART
    smart_filter_minutes: int = DEFAULT_MINUTES
    # Flood control (client/pacing.py): lines at once, then lines a second; 0: off.
    send_burst: int = DEFAULT_BURST
    send_rate: float = DEFAULT_RATE
    # Seconds from the TCP connection to the server's welcome before giving up on this
    # connection (and retrying), as WeeChat's; 0: no limit.
    connection_timeout: int = 60
    colours: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_COLOURS))
    nick_colours: tuple[str, ...] = DEFAULT_NICK_COLOURS
    keys: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_KEYS))
    path: Path | None = None  # the file it came from

    def server(self, name: str | None) -> ServerSettings | None:
        """The server called ``name``; with None the default (or only) server."""
        if name is not None:
            return self.servers.get(name)
        if self.default_server is not None:
            return self.servers.get(self.default_server)
        if len(self.servers) == 1:
            return next(iter(self.servers.values()))
        return None

    def pacing(self, server: ServerSettings | None = None) -> Pacing:
        """Flood control for ``server``: its own settings, else the top level's."""
        burst, rate = self.send_burst, self.send_rate
        if server is not None and server.send_burst is not None:
            burst = server.send_burst
        if server is not None and server.send_rate is not None:
            rate = server.send_rate
        return Pacing(burst, rate)


def default_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / APP_DIR / FILE_NAME


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> ClientConfig:
    """Read ``path`` (or the default file, which may be absent) and validate it."""
    explicit = path is not None
    file = Path(path) if path is not None else default_path(env)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{file}: no such file") from None
        return ClientConfig()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    try:
        return parse(data, file)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None


def parse(data: Mapping[str, Any], path: Path | None = None) -> ClientConfig:
    """Validate a decoded TOML document (errors name the setting, not the file)."""
    for key in data:
        if key not in _TOP_KEYS:
            raise ConfigError(f"unknown setting {key!r}")
    if "colours" in data and "colors" in data:
        raise ConfigError("use either [colours] or [colors], not both")
    defaults = {
        "nick": _nick(data, "nick", "nick", optional=True),
        "user": _user(data, "user"),
        "realname": _str(data, "realname", "realname"),
    }
    servers_raw = data.get("servers", {})
    if not isinstance(servers_raw, dict):
        raise ConfigError("servers: expected a table of [servers.NAME] tables")
    servers = {name: _server(name, value) for name, value in servers_raw.items()}
    default_server = data.get("default_server")
    if default_server is not None:
        if not isinstance(default_server, str):
            raise ConfigError("default_server: expected a string")
        if default_server not in servers:
            raise ConfigError(f"default_server: no [servers.{default_server}] table")
    colours = dict(DEFAULT_COLOURS)
    nick_colours = DEFAULT_NICK_COLOURS
    colour_table = data.get("colours", data.get("colors", {}))
    section = "colours" if "colours" in data else "colors"
    if not isinstance(colour_table, dict):
        raise ConfigError(f"{section}: expected a table")
    for key, value in colour_table.items():
        where = f"{section}.{key}"
        if key == "nicks":
            nick_colours = _str_list(value, where, allow_empty=False)
        elif key not in DEFAULT_COLOURS:
            raise ConfigError(f"{where}: unknown colour (known: {', '.join(DEFAULT_COLOURS)})")
        elif not isinstance(value, str):
            raise ConfigError(f"{where}: expected a style string such as 'bold #ff0000'")
        else:
            colours[key] = value
    keys = dict(DEFAULT_KEYS)
    key_table = data.get("keys", {})
    if not isinstance(key_table, dict):
        raise ConfigError("keys: expected a table")
    for action, value in key_table.items():
        where = f"keys.{action}"
        if action not in DEFAULT_KEYS:
            raise ConfigError(f"{where}: unknown action (known: {', '.join(DEFAULT_KEYS)})")
        keys[action] = (value,) if isinstance(value, str) else _str_list(value, where)
        if any(not k.strip() for k in keys[action]):
            raise ConfigError(f"{where}: empty key name")
    timestamp_format = _str(data, "timestamp_format", "timestamp_format") or "%H:%M"
    return ClientConfig(
        servers=servers,
        default_server=default_server,
        nick=defaults["nick"],
        user=defaults["user"],
        realname=defaults["realname"],
        scrollback=_int(data, "scrollback", 2000, 100, 1_000_000),
        history_lines=_int(data, "history_lines", 100, 1, 1000),
        highlight_words=_str_list(data.get("highlight_words", []), "highlight_words"),
        notify=_nick_list(data, "notify"),
        ignore=_mask_list(data, "ignore"),
        bell=_bool(data, "bell", False, "bell"),
        nicklist=_bool(data, "nicklist", True, "nicklist"),
        mouse=_bool(data, "mouse", False, "mouse"),
        timestamp_format=timestamp_format,
        log_dir=_log_dir(data, path),
        send_typing=_bool(data, "send_typing", False, "send_typing"),
        events=_events(data),
        smart_filter_minutes=_int(data, "smart_filter_minutes", DEFAULT_MINUTES, 1, 1440),
        send_burst=_int(data, "send_burst", DEFAULT_BURST, 0, MAX_BURST),
        send_rate=_rate(data.get("send_rate", DEFAULT_RATE), "send_rate"),
        connection_timeout=_int(data, "connection_timeout", 60, 0, 3600),
        colours=colours,
        nick_colours=nick_colours,
        keys=keys,
        path=path,
    )


def _events(data: Mapping[str, Any]) -> str:
    value = data.get("events", Events.SMART)
    if value not in tuple(Events):
        known = ", ".join(f'"{e}"' for e in Events)
        raise ConfigError(f"events: expected one of {known}, got {value!r}")
    return Events(value)


def _log_dir(data: Mapping[str, Any], path: Path | None) -> Path | None:
    """``log_dir`` with ``~`` expanded; a relative one is under the config file's folder."""
    text = _str(data, "log_dir", "log_dir")
    if not text:
        return None
    folder = Path(text).expanduser()
    return folder if folder.is_absolute() or path is None else path.parent / folder


def _server(name: str, table: Any) -> ServerSettings:
    where = f"servers.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    for key in table:
        if key not in _SERVER_KEYS:
            raise ConfigError(f"{where}.{key}: unknown setting")
    host = table.get("host")
    if not isinstance(host, str) or not host.strip() or any(c.isspace() for c in host):
        raise ConfigError(f"{where}.host: expected a host name")
    port = table.get("port")
    if port is not None and (
        not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535
    ):
        raise ConfigError(f"{where}.port: expected an integer from 1 to 65535, got {port!r}")
    password = table.get("password")
    if password is not None and not isinstance(password, str):
        raise ConfigError(f"{where}.password: expected a string")
    sasl_username = _str(table, "sasl_username", f"{where}.sasl_username")
    if any(c.isspace() for c in sasl_username):
        raise ConfigError(f"{where}.sasl_username: expected an account name without spaces")
    sasl_password = table.get("sasl_password")
    if sasl_password is not None and not isinstance(sasl_password, str):
        raise ConfigError(f"{where}.sasl_password: expected a string")
    if sasl_password is not None and "\0" in sasl_password:
        raise ConfigError(f"{where}.sasl_password: must not contain NUL")
    mechanism = _str(table, "sasl_mechanism", f"{where}.sasl_mechanism").upper()
    if mechanism and mechanism not in MECHANISMS:
        raise ConfigError(f"{where}.sasl_mechanism: expected one of "
                          f"{', '.join(MECHANISMS)}, got {mechanism!r}")
    channels = _str_list(table.get("channels", []), f"{where}.channels")
    for chan in channels:
        if not chan or any(c in chan for c in " ,\x07\r\n\0"):
            raise ConfigError(f"{where}.channels: invalid channel name {chan!r}")
    user_modes = _str(table, "user_modes", f"{where}.user_modes")
    if user_modes and not USER_MODES.fullmatch(user_modes):
        raise ConfigError(f"{where}.user_modes: expected modes like \"+g\" or \"+iw-x\", "
                          f"got {user_modes!r}")
    return ServerSettings(
        name=name,
        host=host,
        port=port,
        tls=_bool(table, "tls", False, f"{where}.tls"),
        tls_verify=_bool(table, "tls_verify", True, f"{where}.tls_verify"),
        nick=_nick(table, "nick", f"{where}.nick", optional=True),
        user=_user(table, f"{where}.user"),
        realname=_str(table, "realname", f"{where}.realname"),
        password=password or None,
        sasl_username=sasl_username or None,
        sasl_password=sasl_password or None,
        sasl_mechanism=mechanism or None,
        sasl_plain_insecure=_bool(
            table, "sasl_plain_insecure", False, f"{where}.sasl_plain_insecure"),
        channels=tuple(channels),
        user_modes=user_modes,
        notify=_nick_list(table, "notify", f"{where}.notify"),
        ignore=_mask_list(table, "ignore", f"{where}.ignore"),
        send_burst=(
            _int(table, "send_burst", DEFAULT_BURST, 0, MAX_BURST, f"{where}.send_burst")
            if "send_burst" in table else None
        ),
        send_rate=(
            _rate(table["send_rate"], f"{where}.send_rate") if "send_rate" in table else None
        ),
    )


def _str(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if any(c in value for c in "\r\n\0"):
        raise ConfigError(f"{where}: must be a single line")
    return value


def _nick(table: Mapping[str, Any], key: str, where: str, *, optional: bool) -> str:
    value = _str(table, key, where)
    if (value or not optional) and not is_valid_nick(value):
        raise ConfigError(f"{where}: {value!r} is not a valid nick")
    return value


def _user(table: Mapping[str, Any], where: str) -> str:
    value = _str(table, "user", where)
    problem = user_problem(value) if value else None
    if problem is not None:
        raise ConfigError(f"{where}: {problem}")
    return value


def _nick_list(table: Mapping[str, Any], key: str, where: str = "") -> tuple[str, ...]:
    return _checked_list(table, key, where, lambda n: is_valid_nick(n, maxlen=64), "a valid nick")


def _mask_list(table: Mapping[str, Any], key: str, where: str = "") -> tuple[str, ...]:
    def valid(mask: str) -> bool:
        return bool(mask) and not any(c in mask for c in " ,\x00\r\n\x07")

    return _checked_list(table, key, where, valid, "a nick or mask")


def _checked_list(
    table: Mapping[str, Any], key: str, where: str, valid: Callable[[str], bool], what: str
) -> tuple[str, ...]:
    where = where or key
    items = _str_list(table.get(key, []), where)
    for item in items:
        if not valid(item):
            raise ConfigError(f"{where}: {item!r} is not {what}")
    return items


def _bool(table: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _int(
    table: Mapping[str, Any], key: str, default: int, low: int, high: int, where: str = ""
) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(
            f"{where or key}: expected an integer from {low} to {high}, got {value!r}"
        )
    return value


def _rate(value: Any, where: str) -> float:
    """Lines a second: a number from 0 (no flood control) to MAX_RATE."""
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not 0 <= value <= MAX_RATE
    ):
        raise ConfigError(
            f"{where}: expected a number of lines a second from 0 (no flood control) "
            f"to {MAX_RATE}, got {value!r}"
        )
    return float(value)


def _str_list(value: Any, where: str, *, allow_empty: bool = True) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings")
    if not allow_empty and not value:
        raise ConfigError(f"{where}: must not be empty")
    return tuple(value)


def user_problem(name: str) -> str | None:
    """Why ``name`` cannot be the user name of USER (a middle parameter), or None.
    Anything else is the server's to judge: a bouncer takes "alice/net@phone"."""
    if not name:
        return "expected a user name"
    if any(c.isspace() or not c.isprintable() for c in name):
        return f"{name!r}: a user name has no spaces or control characters"
    if name.startswith(":"):
        return f"{name!r}: a user name cannot begin with ':'"
    return None


def default_user(nick: str) -> str:
    """The user name when none is set: the nick's letters, digits, '_' and '-', from
    its first letter or digit ("[bob]" gives "bob"), as ngIRCd drops the connection
    for the nick's other characters and solanum for a name beginning with '_' or '-';
    'guest' when nothing is left."""
    return re.sub(r"[^A-Za-z0-9_-]", "", nick).lstrip("_-") or "guest"


def default_nick(env: Mapping[str, str] | None = None) -> str:
    """A nick from the login name, made valid; 'guest' when nothing usable."""
    env = os.environ if env is None else env
    name = env.get("USER") or env.get("LOGNAME") or ""
    name = re.sub(r"[^A-Za-z0-9\[\]\\`_^{|}\-]", "", name)[:16]
    return name if is_valid_nick(name) else "guest"
