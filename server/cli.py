"""``chat-server`` command line entry point."""

from __future__ import annotations

import getpass
import logging
import os
import sys
from collections.abc import Sequence

from server.config import ServerConfig
from server.health import check
from server.logsetup import configure_logging
from server.passwords import hash_password
from server.settings import ConfigError, build_parser, config_from_args

PROG = "chat-server"

log = logging.getLogger("server")


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _read_password() -> str | None:
    """The password to hash, or None after reporting why there is none."""
    stdin = sys.stdin
    if stdin is None:
        _error("no standard input to read the password from")
        return None
    try:
        if stdin.isatty():
            first = getpass.getpass("Password: ")
            if getpass.getpass("Repeat password: ") != first:
                _error("passwords do not match")
                return None
            plain = first
        else:
            plain = stdin.readline()
            if plain.endswith("\n"):
                plain = plain[:-1]
            if plain.endswith("\r"):
                plain = plain[:-1]
    except (EOFError, KeyboardInterrupt):
        print(file=sys.stderr)
        _error("no password given")
        return None
    except UnicodeDecodeError:
        _error("the password on standard input is not valid text in the locale's encoding")
        return None
    if not plain:
        _error("empty password; write the password on standard input")
        return None
    return plain


def _hash_password_command() -> int:
    plain = _read_password()
    if plain is None:
        return 2
    print(hash_password(plain))
    return 0


def _describe(config: ServerConfig) -> str:
    hidden = {"password", "opers", "motd_lines"}
    parts = [
        f"{name}={getattr(config, name)!r}"
        for name in config.__dataclass_fields__
        if name not in hidden
    ]
    parts.append(f"password={'set' if config.password else 'none'}")
    parts.append(f"opers={sorted(config.opers)!r}")
    return " ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(None if argv is None else list(argv))
    if args.hash_password:
        return _hash_password_command()
    try:
        config = config_from_args(args, os.environ)
    except ConfigError as e:
        _error(str(e))
        return 2
    configure_logging(config.log_level, config.log_format)
    if args.check:
        ok, detail = check(config)
        print(f"{PROG}: {'healthy' if ok else 'unhealthy'}: {detail}")
        return 0 if ok else 1
    log.debug("configuration: %s", _describe(config))

    from server.transport import run  # lazy: keeps --help and --hash-password light

    try:
        # SIGHUP and REHASH re-read the same sources: file, environment, flags.
        return run(config, reloader=lambda: config_from_args(args, os.environ))
    except KeyboardInterrupt:
        return 130
