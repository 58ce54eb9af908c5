"""Harness for the end-to-end interop tests.

Pieces, all usable on their own:

* :func:`start_server` - run an IRC server under test as a subprocess on a free
  port (our ``python -m server``, or ngircd as a reference implementation).
* :class:`LoggingProxy` - a transparent TCP proxy that records every line in
  both directions, so a test can tell when a real client has registered and a
  failure report can show exactly what the client sent and what it got back.
* :class:`RawClient` - a minimal asyncio IRC client (NICK/USER, PING, JOIN...).
* :class:`Tmux` / :class:`Irssi` - irssi running inside a private tmux server,
  driven with ``send-keys`` and observed with ``capture-pane``.
* :class:`WeeChat` - ``weechat-headless`` driven through its FIFO and observed
  through its logger plugin's files.

Every wait is a bounded poll with a deadline; nothing sleeps for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"

# ---------------------------------------------------------------------------
# Small utilities
# ---------------------------------------------------------------------------


def _tail(text: str, limit: int = 6000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


# ---------------------------------------------------------------------------
# Servers under test
# ---------------------------------------------------------------------------


@dataclass
class RunningServer:
    kind: str
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        return _read(self.log_path)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _ngircd_command(port: int, workdir: Path) -> list[str]:
    conf = workdir / "ngircd.conf"
    motd = workdir / "ngircd.motd"
    motd.write_text("interop test server\n", encoding="utf-8")
    conf.write_text(
        "\n".join(
            [
                "[Global]",
                "Name = test.local",
                "Info = interop test",
                "AdminInfo1 = test",
                "AdminInfo2 = test",
                "AdminEMail = test@test.local",
                f"Listen = {HOST}",
                f"Ports = {port}",
                f"MotdFile = {motd}",
                "[Limits]",
                "MaxConnectionsIP = 0",
                "PingTimeout = 120",
                "[Options]",
                "DNS = no",
                "Ident = no",
                "PAM = no",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return ["ngircd", "--nodaemon", "--passive", "--config", str(conf)]


def _chat_command(port: int, workdir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "server",
        "--host",
        HOST,
        "--port",
        str(port),
        "--name",
        "test.local",
        # A private history store: the default (chat.db in the working directory)
        # would replay other runs' messages on JOIN.
        "--db",
        str(workdir / "history.db"),
        # Quit reasons shown at once: clients here quit seconds after connecting.
        "--anti-spam-exit-message-time",
        "0",
    ]


# kind -> (binary that must exist or None, command builder)
SERVERS: dict[str, tuple[str | None, Callable[[int, Path], list[str]]]] = {
    "chat": (None, _chat_command),
    "ngircd": ("ngircd", _ngircd_command),
}


def server_skip_reason(kind: str) -> str | None:
    binary, _ = SERVERS[kind]
    if binary is not None and shutil.which(binary) is None:
        return f"{binary} is not installed (apt-get install {binary})"
    return None


class _PortTaken(RuntimeError):
    pass


def start_server(kind: str, workdir: Path, *, timeout: float = 15.0) -> RunningServer:
    """Start the server ``kind`` on a free port and wait until it accepts TCP.

    The port is picked just before the server binds it; if another process wins
    that race the server fails to bind and is started again on a new port.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        try:
            return _launch(kind, workdir, free_port(), timeout)
        except _PortTaken:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _launch(kind: str, workdir: Path, port: int, timeout: float) -> RunningServer:
    _, build = SERVERS[kind]
    cmd = build(port, workdir)
    log_path = workdir / f"{kind}-server.log"
    # The server reads CHAT_* variables (config file, Redis, DB path...): keep the
    # developer's environment out of the test.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(kind, HOST, port, proc, log_path)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            output = server.output()
            message = (
                f"{kind} server exited with {proc.returncode} before accepting connections\n"
                f"command: {shlex.join(cmd)}\n{_tail(output)}"
            )
            if re.search(r"in use|can't bind", output, re.IGNORECASE):
                raise _PortTaken(message)
            raise RuntimeError(message)
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(
                f"{kind} server did not accept connections on port {port} within {timeout}s\n"
                f"command: {shlex.join(cmd)}\n{_tail(server.output())}"
            )
        time.sleep(0.05)


# ---------------------------------------------------------------------------
# IRC lines
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    raw: str
    tags: str | None
    prefix: str | None
    command: str
    params: tuple[str, ...]

    @property
    def nick(self) -> str | None:
        return None if self.prefix is None else self.prefix.split("!", 1)[0]


def parse_line(line: str) -> Message:
    """Parse one IRC line (without CRLF); tolerant of junk."""
    rest = line
    tags = prefix = None
    if rest.startswith("@"):
        tags, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    if rest.startswith(":"):
        prefix, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    params: list[str] = []
    while rest:
        if rest.startswith(":"):
            params.append(rest[1:])
            break
        word, _, rest = rest.partition(" ")
        rest = rest.lstrip(" ")
        if word:
            params.append(word)
    command = params.pop(0).upper() if params else ""
    return Message(line, tags, prefix, command, tuple(params))


# ---------------------------------------------------------------------------
# Logging proxy between a real client and the server
# ---------------------------------------------------------------------------


@dataclass
class ProxyLine:
    conn: int
    direction: str  # "C>S" (client to server), "S>C", or "---" for proxy events
    line: str
    t: float  # seconds since the proxy started
    msg: Message = field(repr=False)


class LoggingProxy:
    """Transparent TCP proxy; records every IRC line that crosses it."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.lines: list[ProxyLine] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self._conns = 0
        self._t0 = time.monotonic()

    async def start(self) -> LoggingProxy:
        self._server = await asyncio.start_server(self._handle, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self._conns += 1
        conn = self._conns
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.upstream)
        except OSError as exc:
            await self._record(conn, "---", f"proxy could not reach server: {exc}")
            c_writer.close()
            return
        self._writers += [c_writer, s_writer]
        await self._record(conn, "---", "connection opened")
        for args in ((conn, "C>S", c_reader, s_writer), (conn, "S>C", s_reader, c_writer)):
            task = asyncio.create_task(self._pump(*args))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self, conn: int, direction: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                data = await reader.readline()
                if not data:
                    break
                writer.write(data)
                await writer.drain()
                await self._record(conn, direction, data.decode("utf-8", "replace").rstrip("\r\n"))
        except (ConnectionError, OSError):
            pass
        finally:
            await self._record(conn, direction, "<EOF>")
            writer.close()

    async def _record(self, conn: int, direction: str, line: str) -> None:
        async with self._changed:
            t = time.monotonic() - self._t0
            self.lines.append(ProxyLine(conn, direction, line, t, parse_line(line)))
            self._changed.notify_all()

    async def wait_for(
        self,
        pred: Callable[[ProxyLine], bool],
        *,
        timeout: float,
        what: str,
        since: int = 0,
    ) -> ProxyLine:
        def find() -> ProxyLine | None:
            return next((pl for pl in self.lines[since:] if pred(pl)), None)

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: find() is not None), timeout)
            except TimeoutError:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}\n{self.transcript()}"
                ) from None
        found = find()
        assert found is not None
        return found

    def client_sent(self, command: str) -> list[ProxyLine]:
        return [pl for pl in self.lines if pl.direction == "C>S" and pl.msg.command == command]

    def transcript(self, limit: int = 8000) -> str:
        text = "\n".join(f"{pl.t:7.3f} [{pl.conn}] {pl.direction} {pl.line}" for pl in self.lines)
        return "proxy transcript (real client <-> server):\n" + _tail(text, limit)


# ---------------------------------------------------------------------------
# Raw asyncio IRC client
# ---------------------------------------------------------------------------


class RawClient:
    """A bare-bones IRC client over asyncio streams that records what it receives."""

    def __init__(self, nick: str) -> None:
        self.nick = nick
        self.received: list[Message] = []
        self.sent: list[str] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self.closed = False

    async def connect(self, host: str, port: int) -> RawClient:
        self._reader, self._writer = await asyncio.open_connection(host, port)
        self._task = asyncio.create_task(self._read_loop())
        return self

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                data = await self._reader.readline()
                if not data:
                    break
                msg = parse_line(data.decode("utf-8", "replace").rstrip("\r\n"))
                if msg.command == "PING":
                    await self.send("PONG" + ("" if not msg.params else f" :{msg.params[-1]}"))
                async with self._changed:
                    self.received.append(msg)
                    self._changed.notify_all()
        except (ConnectionError, OSError):
            pass
        finally:
            async with self._changed:
                self.closed = True
                self._changed.notify_all()

    async def send(self, line: str) -> None:
        assert self._writer is not None
        self.sent.append(line)
        self._writer.write(line.encode("utf-8") + b"\r\n")
        await self._writer.drain()

    def mark(self) -> int:
        """Index to pass as ``since`` so a wait ignores what was already received."""
        return len(self.received)

    async def wait_for(
        self,
        pred: Callable[[Message], bool],
        *,
        timeout: float,
        what: str,
        since: int = 0,
    ) -> Message:
        def find() -> Message | None:
            return next((m for m in self.received[since:] if pred(m)), None)

        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: find() is not None or self.closed), timeout
                )
            except TimeoutError:
                raise AssertionError(
                    f"{self.nick}: timed out after {timeout}s waiting for {what}\n"
                    + self.transcript()
                ) from None
        found = find()
        if found is None:
            raise AssertionError(
                f"{self.nick}: connection closed while waiting for {what}\n" + self.transcript()
            )
        return found

    async def register(self, *, timeout: float = 10.0) -> Message:
        await self.send(f"NICK {self.nick}")
        await self.send(f"USER {self.nick} 0 * :raw interop client")
        return await self.wait_for(
            lambda m: m.command == "001", timeout=timeout, what="001 RPL_WELCOME"
        )

    async def join(self, channel: str, *, timeout: float = 10.0) -> Message:
        since = self.mark()
        await self.send(f"JOIN {channel}")
        return await self.wait_for(
            lambda m: m.command == "366" and channel.lower() in (p.lower() for p in m.params),
            timeout=timeout,
            what=f"366 RPL_ENDOFNAMES for {channel}",
            since=since,
        )

    async def quit(self, reason: str = "bye") -> None:
        if self._writer is None or self.closed:
            return
        with contextlib.suppress(ConnectionError, OSError):
            await self.send(f"QUIT :{reason}")
        await self.close()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def transcript(self, limit: int = 4000) -> str:
        text = "\n".join(m.raw for m in self.received)
        return f"{self.nick} received:\n" + _tail(text, limit)


# ---------------------------------------------------------------------------
# tmux + irssi
# ---------------------------------------------------------------------------

TMUX_CONF = """\
set -g remain-on-exit on
set -g status off
set -g history-limit 5000
set -g default-terminal "screen"
set -g escape-time 0
"""


class Tmux:
    """A private tmux server (own socket) holding one session with one pane."""

    def __init__(self, workdir: Path, *, width: int = 200, height: int = 50) -> None:
        self.socket_name = f"chat-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.conf = workdir / "tmux.conf"
        self.conf.write_text(TMUX_CONF, encoding="utf-8")
        self.width = width
        self.height = height
        self.target = "e2e:0.0"
        self.started = False
        self.socket_path: str | None = None

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, TERM="xterm-256color")
        return subprocess.run(
            ["tmux", "-L", self.socket_name, "-f", str(self.conf), *args],
            check=check,
            capture_output=True,
            text=True,
            timeout=10,
            env=env,
        )

    def start(self, command: list[str], *, env: dict[str, str] | None = None) -> None:
        env_args: list[str] = []
        for key, value in (env or {}).items():
            env_args += ["-e", f"{key}={value}"]
        self._run(
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            str(self.width),
            "-y",
            str(self.height),
            *env_args,
            shlex.join(command),
        )
        self.started = True
        result = self._run("display-message", "-p", "#{socket_path}", check=False)
        self.socket_path = result.stdout.strip() or None

    def type(self, text: str) -> None:
        """Type ``text`` literally (no Enter)."""
        self._run("send-keys", "-t", self.target, "-l", text)

    def press(self, key: str) -> None:
        """Press a named key, e.g. ``Enter``."""
        self._run("send-keys", "-t", self.target, key)

    def capture(self) -> str:
        if not self.started:
            return ""
        result = self._run("capture-pane", "-p", "-J", "-t", self.target, check=False)
        return result.stdout

    def pane_dead(self) -> bool:
        result = self._run("display-message", "-p", "-t", self.target, "#{pane_dead}", check=False)
        return result.stdout.strip() == "1"

    def kill(self) -> None:
        if self.started:
            self._run("kill-server", check=False)
            self.started = False
        if self.socket_path:
            # kill-server leaves the socket file behind.
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)
            self.socket_path = None


IRSSI_CONFIG = """\
servers = ( {servers} );
chatnets = {{ {chatnets} }};
channels = ( );
settings = {{
  core = {{
    real_name = "irssi interop";
    user_name = "{nick}";
    nick = "{nick}";
    settings_autosave = "no";
    resolve_prefer_ipv6 = "no";
    server_reconnect_time = "1h";
  }};
  "irc/core" = {{
    alternate_nick = "{nick}_";
    cmd_queue_speed = "10msec";
    cmds_max_at_once = 50;
    skip_motd = "no";
  }};
  "fe-common/core" = {{
    autolog = "yes";
    autolog_path = "{home}/logs/$0.log";
    autolog_level = "all";
    beep_msg_level = "";
  }};
  "fe-text" = {{
    paste_detect_time = "0";
  }};
}};
"""


# SASL needs a network (chatnet) in irssi: one network holding the credentials
# and one server entry in it that irssi connects to on start.
IRSSI_SASL_CHATNET = """\
{network} = {{
    type = "IRC";
    sasl_mechanism = "PLAIN";
    sasl_username = "{username}";
    sasl_password = "{password}";
  }};"""

IRSSI_SASL_SERVER = """{{
    address = "{host}";
    chatnet = "{network}";
    port = "{port}";
    use_tls = "no";
    tls_verify = "no";
    autoconnect = "yes";
  }}"""


class Irssi:
    """irssi in tmux with a throw-away home directory.

    With ``sasl=(username, password)`` irssi logs in with SASL PLAIN: the config
    gets a network with those credentials and an autoconnect server entry in it.
    """

    NETWORK = "testnet"

    def __init__(self, workdir: Path, nick: str, *, sasl: tuple[str, str] | None = None) -> None:
        self.nick = nick
        self.sasl = sasl
        self.home = workdir / "irssi-home"
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        self._write_config()
        self.tmux = Tmux(workdir)

    def _write_config(self, host: str = HOST, port: int = 0) -> None:
        servers = chatnets = ""
        if self.sasl is not None:
            username, password = self.sasl
            chatnets = IRSSI_SASL_CHATNET.format(
                network=self.NETWORK, username=username, password=password
            )
            servers = IRSSI_SASL_SERVER.format(host=host, port=port, network=self.NETWORK)
        (self.home / "config").write_text(
            IRSSI_CONFIG.format(
                nick=self.nick, home=self.home, servers=servers, chatnets=chatnets
            ),
            encoding="utf-8",
        )

    def start(self, host: str, port: int) -> None:
        command = ["irssi", f"--home={self.home}", "-n", self.nick]
        if self.sasl is None:
            command += ["-c", host, "-p", str(port)]
        else:
            self._write_config(host, port)  # the autoconnect server entry connects
        self.tmux.start(
            command, env={"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": str(self.home)}
        )

    def input_line(self) -> str:
        """irssi's prompt line (the last line of the screen)."""
        lines = self.screen().rstrip().splitlines()
        return lines[-1] if lines else ""

    async def command(self, text: str, *, timeout: float = 5.0) -> None:
        """Type ``text`` into irssi's prompt and press Enter.

        The text is typed, then we wait until irssi shows it on its prompt line
        before pressing Enter, and then until the prompt is empty again, so a
        keystroke lost in transit fails here rather than as a missing message.
        """
        self.tmux.type(text)
        await self._wait_prompt(lambda line: line.rstrip().endswith(text), timeout, f"{text!r}")
        self.tmux.press("Enter")
        await self._wait_prompt(
            lambda line: not line.rstrip().endswith(text), timeout, f"prompt to clear of {text!r}"
        )

    async def _wait_prompt(self, pred: Callable[[str], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred(self.input_line()):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"irssi: timed out after {timeout}s waiting for {what} on the prompt line"
                )
            await asyncio.sleep(0.05)

    def screen(self) -> str:
        return self.tmux.capture()

    def debug(self) -> str:
        return f"--- irssi screen ---\n{self.screen().rstrip()}\n--- irssi logs ---\n{self.logs()}"

    def logs(self) -> str:
        parts = []
        for path in sorted((self.home / "logs").glob("*.log")):
            parts.append(f"--- {path.name} ---\n{_read(path)}")
        return "\n".join(parts)

    async def wait_for_screen(self, pattern: str, *, timeout: float, what: str) -> re.Match[str]:
        """Poll ``capture-pane`` until a line matches the regex ``pattern``."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            found = regex.search(screen)
            if found:
                return found
            if time.monotonic() > deadline or self.tmux.pane_dead():
                raise AssertionError(
                    f"irssi: timed out after {timeout}s waiting for {what} "
                    f"(regex {pattern!r}) on screen"
                )
            await asyncio.sleep(0.1)

    async def wait_for_log(self, pattern: str, *, timeout: float, what: str) -> re.Match[str]:
        """Poll irssi's autolog files (one per channel/query) for the regex ``pattern``."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            for path in (self.home / "logs").glob("*.log"):
                found = regex.search(_read(path))
                if found:
                    return found
            if time.monotonic() > deadline or self.tmux.pane_dead():
                raise AssertionError(
                    f"irssi: timed out after {timeout}s waiting for {what} "
                    f"(regex {pattern!r}) in {self.home / 'logs'}"
                )
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        self.tmux.kill()


# ---------------------------------------------------------------------------
# weechat-headless
# ---------------------------------------------------------------------------


class WeeChat:
    """weechat-headless with a throw-away ``--dir``, driven through its FIFO.

    ``alternates`` are further nicks for WeeChat's ``nicks`` list, tried in turn
    when the server refuses a nick while connecting.  With ``sasl=(username,
    password)`` WeeChat logs in with SASL PLAIN and disconnects if that fails.
    """

    SERVER = "test"

    def __init__(
        self,
        workdir: Path,
        nick: str,
        *,
        alternates: tuple[str, ...] = (),
        sasl: tuple[str, str] | None = None,
    ) -> None:
        self.nick = nick
        self.alternates = alternates
        self.sasl = sasl
        self.home = workdir / "weechat-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.out_path = workdir / "weechat.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, host: str, port: int) -> None:
        srv = f"irc.server.{self.SERVER}"
        commands = [
            "/set logger.file.flush_delay 0",
            "/set logger.file.auto_log on",
            "/set script.scripts.download_enabled off",
            f"/server add {self.SERVER} {host}/{port} -notls",
            f"/set {srv}.nicks {','.join((self.nick, *self.alternates))}",
            f"/set {srv}.username {self.nick}",
            f'/set {srv}.realname "weechat interop"',
            f"/set {srv}.autoreconnect off",
        ]
        if self.sasl is not None:
            username, password = self.sasl
            # Commands are ';'-separated and WeeChat evaluates ${...} in the password.
            assert not set(";${}\"") & set(username + password), "keep SASL test values plain"
            commands += [
                f"/set {srv}.sasl_mechanism plain",
                f'/set {srv}.sasl_username "{username}"',
                f'/set {srv}.sasl_password "{password}"',
                f"/set {srv}.sasl_fail disconnect",
            ]
        commands.append(f"/connect {self.SERVER}")
        env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", HOME=str(self.home))
        with self.out_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    "weechat-headless",
                    "--dir",
                    str(self.home),
                    "--run-command",
                    ";".join(commands),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def _fifo(self) -> Path | None:
        assert self.proc is not None
        path = self.home / f"weechat_fifo_{self.proc.pid}"
        return path if path.exists() else None

    async def command(self, text: str, *, buffer: str | None = None, timeout: float = 10.0) -> None:
        """Run ``text`` (a /command or a plain message) in ``buffer`` via the FIFO."""
        deadline = time.monotonic() + timeout
        while (fifo := self._fifo()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"weechat FIFO never appeared in {self.home}")
            await asyncio.sleep(0.05)
        line = f"{buffer} *{text}\n" if buffer else f"*{text}\n"
        # Non-blocking open fails with ENXIO while weechat has not opened its end.
        while True:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)

    def buffer_name(self, channel: str) -> str:
        return f"irc.{self.SERVER}.{channel}"

    def log_path(self, channel: str | None) -> Path:
        """The logger file of ``channel``'s buffer, or of the server buffer for None."""
        name = f"irc.server.{self.SERVER}" if channel is None else self.buffer_name(channel)
        return self.home / "logs" / f"{name.lower()}.weechatlog"

    def log_text(self, channel: str | None) -> str:
        return _read(self.log_path(channel))

    async def wait_for_log(
        self, channel: str | None, pattern: str, *, timeout: float, what: str
    ) -> re.Match[str]:
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.log_text(channel))
            if found:
                return found
            assert self.proc is not None
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(
                    f"weechat: timed out after {timeout}s waiting for {what} "
                    f"(regex {pattern!r}) in {self.log_path(channel)}"
                )
            await asyncio.sleep(0.1)

    def debug(self) -> str:
        parts = [f"--- weechat stdout ---\n{_tail(_read(self.out_path), 2000)}"]
        for path in sorted((self.home / "logs").glob("*.weechatlog")):
            parts.append(f"--- {path.name} ---\n{_tail(_read(path), 3000)}")
        return "\n".join(parts)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@contextlib.contextmanager
def running_server(kind: str, workdir: Path) -> Iterator[RunningServer]:
    server = start_server(kind, workdir)
    try:
        yield server
    finally:
        server.stop()
