"""`chat-client`: connect to an IRC server with the terminal client."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chat.names import NICK_SPECIAL, is_valid_nick

from .chatlog import ChatLog, log_root
from .config import (
    ClientConfig,
    ConfigError,
    ServerSettings,
    default_nick,
    default_path,
    default_user,
    load,
    user_problem,
)
from .connection import Connection, ConnectionSettings
from .sasl import MECHANISMS
from .session import Session, SessionConfig
from .sts import StsStore
from .sts import default_path as sts_path

SASL_PASSWORD_ENV = "CHAT_SASL_PASSWORD"

EPILOG = f"""\
HOST may also name a [servers.NAME] table of the config file; without HOST the
config's default (or only) server is used. Options override the config file.

config file: {default_path()} (TOML; servers, nick, channels, colours, key bindings,
scrollback). See client/README.md.

SASL login at connect: --sasl-username NAME (or sasl_username in the config) with
the password in the environment variable {SASL_PASSWORD_ENV} (or sasl_password in the
config); there is no option for the password, so that it never shows in ps. SCRAM-SHA-256
when the server offers it; PLAIN, which sends the password itself, only over TLS with a
verified certificate (unless --sasl-plain-insecure), and never after a failed SCRAM: an
account the server has no SCRAM credentials for yet needs --sasl-mechanism PLAIN.

In the client: /help lists the commands (/join /part /msg /query /me /notice /nick
/topic /names /list /whois /whowas /notify /ignore /away /register /ns /invite /knock /kick
/mode /wallops /quit /close /win N /clear /quote).
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chat-client",
        description="Terminal IRC client for chat (works with any IRC server).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("host", nargs="?", help="server host name or address (or a config server name)")
    p.add_argument("--port", type=int, help="server port (default 6667, or 6697 with --tls)")
    p.add_argument("--tls", action="store_true", default=None, help="connect with TLS")
    p.add_argument(
        "--tls-no-verify",
        action="store_true",
        help="with --tls, do not verify the server certificate (self-signed test servers)",
    )
    p.add_argument("--nick", help="nick name (default: from the config, else your login name)")
    p.add_argument(
        "--user",
        help="user name sent in USER (default: the nick's letters, digits, '_' and '-')",
    )
    p.add_argument("--realname", help="real name sent in USER (default: the nick)")
    p.add_argument("--password", help="server password (PASS)")
    p.add_argument(
        "--sasl-username",
        metavar="NAME",
        help=f"log in to account NAME at connect (SASL SCRAM-SHA-256 or PLAIN); the password "
        f"comes from ${SASL_PASSWORD_ENV} or the config file",
    )
    p.add_argument(
        "--sasl-mechanism",
        type=str.upper,
        choices=MECHANISMS,
        help="log in with this mechanism only (default: SCRAM-SHA-256 when offered, else "
        "PLAIN); PLAIN for an account the server has no SCRAM credentials for yet",
    )
    p.add_argument(
        "--sasl-plain-insecure",
        action="store_true",
        help="allow SASL PLAIN without TLS or with an unverified certificate (the password "
        "can then be read by anyone on the way, or by an impostor)",
    )
    p.add_argument(
        "--forget-sts",
        action="store_true",
        help="forget the server's STS policy (it asked to be reached only over TLS, and "
        "plaintext connections to it go to its TLS port) before connecting",
    )
    p.add_argument("--join", metavar="CHANNELS", help="channels to join, comma-separated: '#a,#b'")
    p.add_argument("--config", metavar="FILE", help=f"config file (default {default_path()})")
    p.add_argument(
        "--headless",
        action="store_true",
        help="no full-screen UI: print lines to stdout, read commands from stdin "
        "(for scripts; end of input quits)",
    )
    return p


@dataclass(frozen=True, slots=True)
class Setup:
    config: ClientConfig
    server: ServerSettings
    session: Session
    connection: Connection


def build(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Setup:
    """Parse arguments and config; raise SystemExit (via argparse) or ConfigError."""
    env = os.environ if env is None else env
    parser = build_parser()
    args = parser.parse_args(argv)
    config = load(args.config)
    server = config.server(args.host) if args.host else config.server(None)
    if server is None:
        if not args.host:
            parser.error("no HOST given and the config file has no default server")
        server = ServerSettings(name=args.host, host=args.host)
    if args.port is not None and not 1 <= args.port <= 65535:
        parser.error("--port must be from 1 to 65535")
    tls = server.tls if args.tls is None else True
    port = args.port or server.port or (6697 if tls else 6667)
    nick = args.nick or server.nick or config.nick or default_nick()
    if not is_valid_nick(nick):  # (the config's are checked as it is read)
        parser.error(f"--nick: {nick!r} is not a valid nick (a letter or one of "
                     f"{NICK_SPECIAL} first, then letters, digits, those or '-'; at most 30)")
    user = args.user or server.user or config.user or default_user(nick)
    problem = user_problem(user)
    if problem is not None:
        parser.error(f"--user: {problem}")
    channels = list(server.channels)
    if args.join:
        channels += [c.strip() for c in args.join.split(",") if c.strip()]
    for chan in channels:
        if " " in chan:
            parser.error(f"bad channel name {chan!r}")
    sasl_username = args.sasl_username or server.sasl_username
    if sasl_username is not None and any(c.isspace() for c in sasl_username):
        parser.error("--sasl-username: expected an account name without spaces")
    # The environment wins over the file, as options do; never an option (ps shows those).
    sasl_password = env.get(SASL_PASSWORD_ENV) or server.sasl_password
    session = Session(
        SessionConfig(
            nick=nick,
            user=user,
            realname=args.realname or server.realname or config.realname or nick,
            password=args.password if args.password is not None else server.password,
            sasl_username=sasl_username,
            sasl_password=sasl_password,
            sasl_mechanism=args.sasl_mechanism or server.sasl_mechanism,
            sasl_plain_insecure=args.sasl_plain_insecure or server.sasl_plain_insecure,
            channels=tuple(dict.fromkeys(channels)),
            show_first_channel=True,  # --join #a: the user lands in #a, not the server buffer
            user_modes=server.user_modes,
            server_label=server.name,
            scrollback=config.scrollback,
            history_lines=config.history_lines,
            highlight_words=config.highlight_words,
            notify=tuple(dict.fromkeys((*config.notify, *server.notify))),
            ignore=(*config.ignore, *server.ignore),
            send_typing=config.send_typing,
            events=config.events,
            smart_filter_minutes=config.smart_filter_minutes,
            keys=config.keys,
        )
    )
    settings = ConnectionSettings(
        host=server.host,
        port=port,
        tls=tls,
        tls_verify=server.tls_verify and not args.tls_no_verify,
        pacing=config.pacing(server),
        register_timeout=config.connection_timeout,
    )
    sts = StsStore(sts_path())
    if args.forget_sts:
        forgot = sts.forget(server.host)
        what = "Forgot the STS policy of" if forgot else "No STS policy was stored for"
        session.info(f"{what} {server.host}", time.time(), session.server)
    connection = Connection(session, settings, sts=sts)
    return Setup(config, server, session, connection)


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    try:
        setup = build(raw)
    except ConfigError as exc:
        print(f"chat-client: {exc}", file=sys.stderr)
        return 2
    chatlog = None
    if setup.config.log_dir is not None:
        chatlog = ChatLog(log_root(setup.config.log_dir, setup.server.name))
        setup.connection.subscribe(chatlog.handle)
    try:
        return _run(setup, headless="--headless" in raw)
    finally:
        if chatlog is not None:
            chatlog.close()
        # Everything left lives until the exit, whose garbage collections walked it
        # all: 4 s to quit with 98 full buffers (1.7M objects); hidden, 0.15 s.
        gc.freeze()


def _run(setup: Setup, *, headless: bool) -> int:
    if not headless:
        try:
            # Imported lazily: prompt_toolkit and the UI are only needed here.
            app = importlib.import_module("client.ui.app")
        except ImportError as exc:
            print(
                f"chat-client: the full-screen UI is not available ({exc}); "
                "running headless (lines on stdout, commands on stdin).",
                file=sys.stderr,
            )
        else:
            return int(app.run(setup.connection, setup.config))
    from .headless import run_headless

    try:
        return asyncio.run(run_headless(setup.connection))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
