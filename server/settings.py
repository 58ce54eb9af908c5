"""Build a :class:`~server.config.ServerConfig` from its sources.

Precedence, lowest first: the dataclass defaults, a TOML file (``--config FILE``
or ``CHAT_CONFIG``), environment variables (``CHAT_<FIELD>``, e.g. ``CHAT_PORT``),
then command-line flags (``--<field>``, e.g. ``--log-level``).

Every scalar field of ``ServerConfig`` is an option; the list is derived from the
dataclass, so a new ``int``/``float``/``str``/``bool`` field (optionally ``| None``)
gets a TOML key, an environment variable and a flag without touching this file.
Operators come only from the ``[opers]`` table of the TOML file.

Every problem raises :class:`ConfigError` with a one-line message that names the
flag, variable or file key at fault. ``server.config`` stays a pure dataclass;
all file reading (config file, MOTD) happens here, so the core never does I/O.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib.util
import math
import os
import re
import stat
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args, get_origin

from chat.utf8 import truncate_utf8
from server.config import BACKENDS, ServerConfig
from server.passwords import is_password_hash

__all__ = [
    "CONFIG_ENV",
    "ENV_PREFIX",
    "LOG_LEVELS",
    "OPTIONS",
    "ConfigError",
    "Option",
    "build_parser",
    "config_from_args",
    "load_config",
    "read_motd",
]

LOG_LEVELS = ("debug", "info", "warning", "error")
ENV_PREFIX = "CHAT_"
CONFIG_ENV = "CHAT_CONFIG"
MOTD_MAX_BYTES = 64 * 1024
MOTD_LINE_BYTES = 400  # leaves room for ":<server> 372 <nick> :- " within 512 bytes

Kind = Literal["str", "int", "float", "bool"]


class ConfigError(Exception):
    """A configuration problem, described in one line."""


class _Invalid(ValueError):
    """A bad value; the caller prefixes the name of the option at fault."""


# --------------------------------------------------------------------------- options


@dataclass(frozen=True, slots=True)
class Option:
    name: str  # ServerConfig field name, also the TOML key
    kind: Kind
    optional: bool  # the field accepts None
    choices: tuple[str, ...] | None
    default: object
    help: str
    metavar: str | None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


# String options whose empty value means something ("" db: history off).
_MAY_BE_EMPTY = frozenset({"db", "cloak_key", "node_id", "ban_file"})

# Fields that are not plain options: derived (motd_lines, config_file) or structured (opers).
_NOT_OPTIONS = frozenset({"motd_lines", "config_file", "opers"})

_CHOICES: dict[str, tuple[str, ...]] = {
    "backend": tuple(BACKENDS),
    "log_level": LOG_LEVELS,
}

_HELP: dict[str, str] = {
    "host": "address to listen on",
    "port": "TCP port to listen on (0 lets the system pick one)",
    "tls_port": (
        "TCP port of a TLS listener next to the plaintext one (0 lets the system pick "
        "one; needs tls_cert and tls_key)"
    ),
    "tls_cert": "PEM certificate file for TLS, optionally followed by intermediate certificates",
    "tls_key": "PEM private key file (unencrypted) for the TLS certificate",
    "tls_handshake_timeout": "seconds a TLS client has to complete its handshake",
    "select_impl": (
        "the select backend's system call: auto (epoll, kqueue or poll, whichever the "
        "system has) or select"
    ),
    "sts_duration": (
        "advertise IRCv3 STS: clients on the plaintext port move to the TLS port and keep "
        "to it for this many seconds (0: off; needs tls_port and a certificate clients "
        "can verify)"
    ),
    "name": "server name shown to clients; hostname-like and containing a dot",
    "network": "network name advertised to clients (ISUPPORT NETWORK)",
    "description": "what LINKS and WHOIS say about this server (empty: the network name)",
    "admin_location": "location line of the ADMIN reply",
    "admin_email": "contact address of the ADMIN reply",
    "motd": "file holding the message of the day (UTF-8); without it clients get 422",
    "password": (
        "server password clients must send with PASS; a flag is visible in ps, "
        "so prefer CHAT_PASSWORD or the config file"
    ),
    "backend": "event loop: auto (uvloop when installed, else asyncio), asyncio, uvloop, select",
    "log_level": "logging verbosity",
    "log_format": "log lines as human-readable text or JSON lines",
    "metrics_port": "serve Prometheus metrics and /healthz on this HTTP port (off when unset)",
    "metrics_host": "address for the metrics port",
    "casemapping": "how nick and channel names compare",
    "nicklen": "maximum nickname length",
    "channellen": "maximum channel name length, in UTF-8 bytes",
    "topiclen": "maximum topic length",
    "kicklen": "maximum kick reason length",
    "awaylen": "maximum away message length",
    "userlen": "maximum username length",
    "max_channels": "channels one client may join",
    "max_targets": "targets per PRIVMSG/NOTICE and similar commands (TARGMAX)",
    "sendq": "bytes queued to one client before it is disconnected",
    "registration_timeout": "seconds a new connection has to register",
    "ping_interval": "idle seconds before the server pings a client",
    "ping_timeout": "seconds a client has to answer that PING",
    "flood_burst": "lines a client may send at once before they are delayed (0: no flood control)",
    "flood_rate": "lines per second a client may sustain",
    "flood_max_queue": "delayed lines beyond which a client is disconnected (Excess Flood)",
    "max_clients": "connections in all (0: no limit)",
    "max_per_host": "connections per IPv4 address or IPv6 /64 (0: no limit)",
    "throttle_burst": "new connections per host in a burst (0: no throttle)",
    "throttle_rate": "new connections per host per second after the burst",
    "oper_attempts": "failed password checks (OPER, SASL) allowed per connection per minute",
    "login_failures": "failed logins one account may have at once, from any connections "
    "and hosts, before its logins are refused for a while (0: no limit)",
    "login_refill": "seconds until an account may have one more failed login",
    "host_password_failures": "failed password checks (logins, OPER, REGISTER) one host "
    "(an IPv4 address or an IPv6 /64) may have at once, whatever the accounts and "
    "connections, before its checks are refused for a while (0: no limit)",
    "host_password_refill": "seconds until a host may have one more failed password check",
    "target_limit": (
        "new nicks a client may send private messages to at once; replies and nicks "
        "messaged lately do not count (0: no limit; operators are exempt)"
    ),
    "target_refill": "seconds after which a client may message one more new nick",
    "away_interval": (
        "seconds before a client may set or change its away message again, after one "
        "extra change; coming back is always allowed (0: no limit; operators are exempt)"
    ),
    "anti_spam_exit_message_time": (
        "seconds a client must have been connected before its QUIT and PART reasons are "
        "shown to others; a newer client's quit says 'Client Quit' and its part gives no "
        "reason (0: always shown; operators are exempt from the QUIT rule, a channel's "
        "operators from the PART one)"
    ),
    "whowas_size": "nicks remembered for WHOWAS, the oldest forgotten first (0: off)",
    "monitor_limit": "nicks one client may watch with MONITOR",
    "accept_limit": "users one client may put on its ACCEPT list (caller ID, user mode +g)",
    "multiline_max_bytes": (
        "bytes one multi-line message (IRCv3 draft/multiline) may hold (0: not offered)"
    ),
    "multiline_max_lines": "lines one multi-line message (IRCv3 draft/multiline) may hold",
    "cloak_hosts": "show clients a keyed hash instead of each other's addresses",
    "reserve_account_nicks": "keep each account's name as a nick for those logged in to it",
    "allow_register": "let users register accounts (REGISTER, NickServ REGISTER)",
    "account_limit": "accounts one host (an IPv4 address or an IPv6 /64) may register at once "
    "(0: no limit)",
    "account_refill": "seconds until a host may register one more account",
    "register_limit": "accounts the whole server registers at once, whatever the hosts "
    "(0: no limit)",
    "register_refill": "seconds until the server registers one more account (the rate of "
    "registrations server-wide)",
    "password_min_length": "characters an account's password must have at least",
    "memo_limit": "memos an account may send at once with MemoServ (0: no limit)",
    "memo_refill": "seconds until an account may send one more memo",
    "scan_burst": "matches one host may spend at once before 'try again': LIST (channels "
    "matched), WHO (users matched and listed), NAMES of a channel past one line (members "
    "listed), SEARCH, CHATHISTORY and join playback (history rows read; past it a "
    "playback is skipped) (0: no limit; operators are not counted)",
    "scan_rate": "matches per second a host earns back for LIST, WHO, NAMES, SEARCH, "
    "CHATHISTORY and join playback",
    "cloak_key": "secret for host cloaks (empty: a random one kept in the --db database, "
    "so cloaks stay the same across restarts; random per start without a database)",
    "ban_file": "file that keeps operators' K-lines and D-lines across restarts "
    "(empty: bans last until the server stops)",
    "db": "history store of record: a SQLite file, or a postgresql:// URL; empty turns history off",
    "history_playback": "messages replayed on JOIN to clients without chathistory (0: none)",
    "history_events": "keep joins, parts, kicks, quits, nick and mode changes in channel "
    "history for clients with draft/event-playback (topic changes are always kept; "
    "false stores no more of them, those kept already are still replayed)",
    "chathistory_limit": "most messages one CHATHISTORY request returns",
    "redact_window": "seconds during which users may delete (REDACT) their own messages "
    "(0: no limit; channel operators may delete any message of their channel)",
    "history_max_rows": "rows kept per channel, messages and events alike (0: no limit)",
    "history_max_age_days": "days a message is kept (0: forever)",
    "redis": "Redis URL for the history cache, e.g. redis://localhost:6379/0 (off when unset)",
    "redis_window": "newest messages per channel cached in Redis",
    "cluster": "run as one node of a cluster: events over Redis pub/sub, nicks claimed in "
    "Redis; needs --redis and --db (PostgreSQL for several hosts); asyncio/uvloop only",
    "node_id": "this node's name in the cluster (empty: a random one per start)",
    "cluster_heartbeat": "seconds between cluster heartbeats and nick lease renewals",
    "cluster_dead_after": "seconds without a heartbeat before a node counts as dead",
    "nick_lease": "seconds a nick claim lives in Redis unless its node renews it",
    "redis_timeout": "seconds before a Redis call counts as failed",
    "breaker_failures": "consecutive Redis failures that open the circuit breaker",
    "breaker_cooldown": "seconds the breaker stays open before probing Redis again",
}

_METAVAR: dict[str, str] = {
    "scan_rate": "N",
    "away_interval": "SECONDS",
    "anti_spam_exit_message_time": "SECONDS",
    "host": "HOST",
    "port": "PORT",
    "tls_port": "PORT",
    "tls_cert": "FILE",
    "tls_key": "FILE",
    "name": "NAME",
    "network": "NAME",
    "motd": "FILE",
    "password": "PASSWORD",
    "sendq": "BYTES",
    "db": "PATH|URL",
    "ban_file": "FILE",
    "redis": "URL",
}

# Inclusive integer bounds; fields not listed must be >= 1.
_INT_BOUNDS: dict[str, tuple[int, int | None]] = {
    "port": (0, 65535),
    "tls_port": (0, 65535),
    "sendq": (512, None),
    "userlen": (2, None),  # USERLEN counts the "~" an unverified username gets
    "history_playback": (0, 1000),
    "redact_window": (0, None),
    "metrics_port": (0, 65535),
    "flood_burst": (0, None),
    "flood_max_queue": (0, None),
    "max_clients": (0, None),
    "max_per_host": (0, None),
    "throttle_burst": (0, None),
    "target_limit": (0, 1000),
    "away_interval": (0, 86400),
    "anti_spam_exit_message_time": (0, 86400),
    "history_max_rows": (0, None),
    "history_max_age_days": (0, None),
    "whowas_size": (0, 100_000),  # WHOWAS scans the log: keep a lookup within milliseconds
    "monitor_limit": (1, 10_000),
    "accept_limit": (1, 1000),
    "password_min_length": (1, 256),
    "memo_limit": (0, 1000),
    "register_limit": (0, None),
    "account_limit": (0, None),
    "scan_burst": (0, None),
    "login_failures": (0, 1000),
    "host_password_failures": (0, 100_000),
    "multiline_max_bytes": (0, 65536),
    "multiline_max_lines": (1, 1000),
    "sts_duration": (0, 400 * 86400),
}
_FLOAT_MAX = 1_000_000.0  # seconds; anything above is a typo, and some loops overflow

_PATH_OPTIONS = frozenset({"motd", "tls_cert", "tls_key"})

_SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_CONTROL = re.compile(r"[\x00\r\n]")


def _classify(tp: object) -> tuple[Kind, bool, tuple[str, ...] | None] | None:
    optional = False
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = get_args(tp)
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1 or len(rest) == len(args):
            return None
        optional, tp = True, rest[0]
    if get_origin(tp) is Literal:
        values = get_args(tp)
        if values and all(isinstance(v, str) for v in values):
            return "str", optional, tuple(str(v) for v in values)
        return None
    if tp is bool:
        return "bool", optional, None
    if tp is int:
        return "int", optional, None
    if tp is float:
        return "float", optional, None
    if tp is str:
        return "str", optional, None
    return None


def _build_options() -> tuple[Option, ...]:
    hints = typing.get_type_hints(ServerConfig)
    defaults = ServerConfig()
    options = []
    for f in dataclasses.fields(ServerConfig):
        if f.name in _NOT_OPTIONS:
            continue
        classified = _classify(hints[f.name])
        if classified is None:
            continue  # not a scalar: cannot be set from a flag or a variable
        kind, optional, choices = classified
        choices = _CHOICES.get(f.name, choices)
        if kind == "int":
            metavar: str | None = "N"
        elif kind == "float":
            metavar = "SECONDS"
        else:
            metavar = None if choices else "VALUE"
        options.append(
            Option(
                name=f.name,
                kind=kind,
                optional=optional,
                choices=choices,
                default=getattr(defaults, f.name),
                help=_HELP.get(f.name, f.name.replace("_", " ")),
                metavar=_METAVAR.get(f.name, metavar),
            )
        )
    return tuple(options)


OPTIONS: tuple[Option, ...] = _build_options()
_BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


# --------------------------------------------------------------------------- values


def _check(opt: Option, value: object) -> object:
    """Validate an already-typed value for ``opt``; returns it, possibly normalised."""
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise _Invalid("must not contain NUL, CR or LF")
        if opt.choices is not None:
            folded = value.lower()
            if folded not in opt.choices:
                raise _Invalid(f"must be one of {', '.join(opt.choices)} (got {value!r})")
            return folded
        if not value and opt.name not in _MAY_BE_EMPTY:
            raise _Invalid("must not be empty")
        if opt.name == "name":
            if len(value) > 63 or not _SERVER_NAME.fullmatch(value) or "." not in value:
                raise _Invalid(
                    f"must be a hostname-like name of at most 63 characters "
                    f"containing a dot (got {value!r})"
                )
        elif opt.name in ("host", "network") and any(c.isspace() for c in value):
            raise _Invalid(f"must not contain whitespace (got {value!r})")
        elif opt.name == "redis":
            _check_redis_url(value)
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        low, high = _INT_BOUNDS.get(opt.name, (1, None))
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise _Invalid(f"must be {bound} (got {value})")
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or value <= 0 or value > _FLOAT_MAX:
            raise _Invalid(f"must be a number of seconds above 0 and at most {_FLOAT_MAX:g}")
        return value
    raise _Invalid(f"unsupported value {value!r}")  # pragma: no cover


def _check_redis_url(url: str) -> None:
    """Refuse at start a URL redis-py would refuse at the first cache call: else the
    server ran with every history read failing. The URL is not echoed (a password)."""
    from redis.connection import parse_url  # (only when a URL is configured)

    try:
        parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as e:
        raise _Invalid(f"not a Redis URL: {e}") from None


_TOML_TYPE_NAMES = {bool: "boolean", int: "integer", float: "float", str: "string"}


def _toml_type(value: object) -> str:
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    return _TOML_TYPE_NAMES.get(type(value), "date/time")


_EXPECTED = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false"}


def _from_toml_value(opt: Option, value: object) -> object:
    ok = (
        (opt.kind == "str" and isinstance(value, str))
        or (opt.kind == "bool" and isinstance(value, bool))
        or (opt.kind == "int" and isinstance(value, int) and not isinstance(value, bool))
        or (opt.kind == "float" and isinstance(value, int | float) and not isinstance(value, bool))
    )
    if not ok:
        raise _Invalid(f"expected {_EXPECTED[opt.kind]}, got {_toml_type(value)}")
    if opt.kind == "float":
        assert isinstance(value, int | float)
        value = float(value)
    return _check(opt, value)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _from_text(opt: Option, text: str) -> object:
    """Parse an environment variable or command-line string for ``opt``."""
    value: object
    if opt.kind == "str":
        value = text
    elif opt.kind == "int":
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise _Invalid(f"expected an integer, got {text!r}") from None
    elif opt.kind == "float":
        try:
            value = float(text.strip())
        except ValueError:
            raise _Invalid(f"expected a number, got {text!r}") from None
    else:
        word = text.strip().lower()
        if word not in _TRUE | _FALSE:
            raise _Invalid(f"expected one of 1/0, true/false, yes/no, on/off, got {text!r}")
        value = word in _TRUE
    return _check(opt, value)


def _resolve_path(text: str, base: Path | None) -> str:
    path = Path(text).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    return str(path)


# --------------------------------------------------------------------------- sources


@dataclass(slots=True)
class _Collected:
    values: dict[str, object] = dataclasses.field(default_factory=dict)
    labels: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> where it was set
    opers: dict[str, str] = dataclasses.field(default_factory=dict)

    def set(self, name: str, value: object, label: str) -> None:
        self.values[name] = value
        self.labels[name] = label


def _suggest(key: str) -> str:
    candidates = [*_BY_NAME, "opers"]
    match = difflib.get_close_matches(key.replace("-", "_").lower(), candidates, n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _load_file(path: Path, origin: str, out: _Collected) -> None:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{origin}: cannot read config file {path}: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from e
    base = path.parent
    for key, value in data.items():
        if key == "opers":
            out.opers = _load_opers(path, value)
            continue
        opt = _BY_NAME.get(key)
        if opt is None:
            raise ConfigError(f"{path}: unknown key {key!r}{_suggest(key)}")
        try:
            checked = _from_toml_value(opt, value)
        except _Invalid as e:
            raise ConfigError(f"{path}: {key}: {e}") from None
        if key in _PATH_OPTIONS:
            assert isinstance(checked, str)
            checked = _resolve_path(checked, base)
        out.set(key, checked, f"{path}: {key}")


def _load_opers(path: Path, table: object) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: opers: expected a table, got {_toml_type(table)}")
    opers: dict[str, str] = {}
    for name, stored in table.items():
        where = f"{path}: opers.{name}"
        if not name or any(c.isspace() or c in "\x00:" for c in name):
            raise ConfigError(f"{where}: invalid operator name {name!r}")
        if not isinstance(stored, str):
            raise ConfigError(f"{where}: expected a password hash string, got {_toml_type(stored)}")
        if not is_password_hash(stored):
            if stored.startswith("scrypt$"):
                raise ConfigError(
                    f"{where}: malformed or out-of-bounds scrypt hash; "
                    "make a new one with `chat-server --hash-password`"
                )
            raise ConfigError(
                f"{where}: plaintext passwords are not accepted; store a hash made with "
                "`chat-server --hash-password`"
            )
        opers[name] = stored
    return opers


def _load_env(environ: Mapping[str, str], out: _Collected) -> None:
    for opt in OPTIONS:
        text = environ.get(opt.env)
        if not text:  # unset or empty: no effect
            continue
        try:
            value = _from_text(opt, text)
        except _Invalid as e:
            raise ConfigError(f"{opt.env}: {e}") from None
        if opt.name in _PATH_OPTIONS:
            assert isinstance(value, str)
            value = _resolve_path(value, None)
        out.set(opt.name, value, opt.env)


def _load_args(args: argparse.Namespace, out: _Collected) -> None:
    for opt in OPTIONS:
        if not hasattr(args, opt.name):  # flags default to SUPPRESS: absent unless given
            continue
        raw = getattr(args, opt.name)
        try:
            value = raw if isinstance(raw, bool) else _from_text(opt, str(raw))
        except _Invalid as e:
            raise ConfigError(f"{opt.flag}: {e}") from None
        if opt.name in _PATH_OPTIONS:
            assert isinstance(value, str)
            value = _resolve_path(value, None)
        out.set(opt.name, value, opt.flag)


# --------------------------------------------------------------------------- MOTD


def read_motd(path: str) -> tuple[str, ...]:
    """Read a MOTD file into lines. Raises OSError or ValueError with a readable message.

    Decoding is UTF-8 with undecodable bytes replaced; a BOM is dropped. Lines are
    split on LF, CRLF or CR only (IRC formatting codes such as \\x1d stay intact),
    NUL bytes are removed and each line is cut to ``MOTD_LINE_BYTES`` bytes.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):  # a FIFO or a device would block or never end
        raise ValueError(f"{path} is not a regular file")
    with open(path, "rb") as f:
        data = f.read(MOTD_MAX_BYTES + 1)
    if len(data) > MOTD_MAX_BYTES:
        raise ValueError(f"{path} is larger than {MOTD_MAX_BYTES} bytes")
    text = data.decode("utf-8-sig", errors="replace").replace("\x00", "")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return tuple(truncate_utf8(line.rstrip(" \t"), MOTD_LINE_BYTES) for line in lines)


# --------------------------------------------------------------------------- entry points


def _pct(text: str) -> str:
    return text.replace("%", "%%")  # argparse %-formats help strings


def build_parser() -> argparse.ArgumentParser:
    """The ``chat-server`` argument parser (every option, documented)."""
    parser = argparse.ArgumentParser(
        prog="chat-server",
        description="IRC-compatible chat server.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_pct(
            "Precedence, lowest first: built-in defaults, the TOML config file, environment\n"
            f"variables ({ENV_PREFIX}<OPTION>, e.g. CHAT_PORT, CHAT_LOG_LEVEL), "
            "command-line flags.\n\n"
            'The config file takes the option names as top-level keys (log_level = "debug",\n'
            "port = 6667, ...) and an [opers] table mapping operator names to password\n"
            "hashes made with --hash-password:\n\n"
            "    [opers]\n"
            '    alice = "scrypt$16384$8$1$..."\n\n'
            "Relative motd, tls_cert and tls_key paths in the file are relative to the\n"
            "file's directory; relative db and ban_file paths (files the server writes), as\n"
            "every path given as a flag or in the environment, to the working directory."
        ),
    )
    general = parser.add_argument_group("general")
    general.add_argument(
        "--config",
        metavar="FILE",
        help=f"TOML configuration file (env {CONFIG_ENV})",
    )
    general.add_argument(
        "--hash-password",
        action="store_true",
        help=(
            "read a password from standard input (prompting when it is a terminal), "
            "print its hash for the [opers] table, and exit"
        ),
    )
    general.add_argument(
        "--check",
        action="store_true",
        help=(
            "health probe: PING the server at --host/--port and exit 0 if it answers "
            "(for Docker HEALTHCHECK)"
        ),
    )
    general.add_argument("--version", action="version", version=f"%(prog)s {_version()}")

    group = parser.add_argument_group("server options")
    for opt in OPTIONS:
        default = "none" if opt.default is None else str(opt.default)
        help_text = f"{opt.help} (default: {default}; env {opt.env})"
        if opt.kind == "bool":
            group.add_argument(
                opt.flag,
                dest=opt.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=_pct(help_text),
            )
            continue
        group.add_argument(
            opt.flag,
            dest=opt.name,
            metavar=opt.metavar,
            choices=opt.choices,
            type=str.lower if opt.choices else str,
            default=argparse.SUPPRESS,
            help=_pct(help_text),
        )
    return parser


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("chat")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> ServerConfig:
    """Merge defaults, config file, environment and parsed flags into a ServerConfig."""
    collected = _Collected()
    config_path = getattr(args, "config", None)
    config_file: Path | None = None
    if config_path:
        config_file = Path(config_path).expanduser()
        _load_file(config_file, "--config", collected)
    elif environ.get(CONFIG_ENV):
        config_file = Path(environ[CONFIG_ENV]).expanduser()
        _load_file(config_file, CONFIG_ENV, collected)
    _load_env(environ, collected)
    _load_args(args, collected)

    values = collected.values
    if values.get("backend") == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise ConfigError(
            f"{collected.labels['backend']}: the uvloop backend needs the uvloop package, "
            "which is not installed"
        )

    _check_tls(collected)

    motd_lines: tuple[str, ...] | None = None
    motd = values.get("motd")
    if isinstance(motd, str):
        try:
            motd_lines = read_motd(motd)
        except OSError as e:
            raise ConfigError(
                f"{collected.labels['motd']}: cannot read MOTD file {motd}: {e.strerror or e}"
            ) from e
        except ValueError as e:
            raise ConfigError(f"{collected.labels['motd']}: {e}") from e

    try:
        return ServerConfig(
            **values,  # type: ignore[arg-type]
            motd_lines=motd_lines,
            opers=collected.opers,
            config_file=str(config_file) if config_file is not None else None,
        )
    except (TypeError, ValueError) as e:  # a __post_init__ check added to ServerConfig
        raise ConfigError(str(e).splitlines()[0] if str(e) else type(e).__name__) from e


def _check_tls(collected: _Collected) -> None:
    """tls_port needs a certificate and a key that load (without tls_port they are unused)."""
    values, labels = collected.values, collected.labels
    cert, key = values.get("tls_cert"), values.get("tls_key")
    if values.get("tls_port") is None:
        if values.get("sts_duration"):
            raise ConfigError(f"{labels['sts_duration']}: STS needs a TLS listener (tls_port)")
        return
    where = labels["tls_port"]
    port = values.get("port", ServerConfig().port)
    if values["tls_port"] != 0 and values["tls_port"] == port:
        raise ConfigError(f"{where}: the TLS port must differ from the plaintext port {port}")
    missing = [_BY_NAME[n] for n in ("tls_cert", "tls_key") if values.get(n) is None]
    if missing:
        names = " and ".join(f"{o.flag} ({o.env})" for o in missing)
        raise ConfigError(f"{where}: a TLS listener needs {names}")
    assert isinstance(cert, str) and isinstance(key, str)
    from server.tls import TLSConfigError, server_context

    try:
        server_context(cert, key)  # reads both files: fail now, not at the first handshake
    except TLSConfigError as e:
        label = labels[e.which] if e.which else f"{labels['tls_cert']}/{labels['tls_key']}"
        raise ConfigError(f"{label}: {e}") from None


def load_config(argv: Sequence[str] | None, environ: Mapping[str, str]) -> ServerConfig:
    """Parse ``argv`` (``sys.argv[1:]`` when None) and build the configuration.

    Command-line syntax errors exit through argparse (status 2); every other problem
    raises :class:`ConfigError`.
    """
    args = build_parser().parse_args(None if argv is None else list(argv))
    return config_from_args(args, environ)
