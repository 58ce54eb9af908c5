"""Run real Session + Connection clients in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from client.chatlog import ChatLog
from client.connection import Connection, ConnectionSettings
from client.headless import run_headless
from client.model import Buffer, Delivery, Event, Kind, Line
from client.session import Session, SessionConfig
from server.transport.background import BackgroundServer
from tests.conftest import RunningServer

DEADLINE = 15.0


class Gate:
    """A reconnect sleep the test controls: closed, the client waits before reconnecting."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.opened.set()
        self.waiting = asyncio.Event()

    def close(self) -> None:
        self.opened.clear()
        self.waiting.clear()

    def open(self) -> None:
        self.opened.set()

    async def sleep(self, delay: float) -> None:
        self.waiting.set()
        await self.opened.wait()
        await asyncio.sleep(min(delay, 0.05))  # never spin while a server is down


@dataclass
class ChatClient:
    session: Session
    conn: Connection
    gate: Gate
    task: asyncio.Task[None]
    events: list[Event] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # every line the client sent

    @classmethod
    def start(
        cls,
        port: int,
        nick: str,
        channels: tuple[str, ...] = (),
        host: str = "127.0.0.1",
        notify: tuple[str, ...] = (),
        sasl: tuple[str, str] | None = None,  # (username, password): SASL at connect
        sasl_mechanism: str | None = None,
        sasl_plain_insecure: bool = False,
        history_lines: int = 100,
        scrollback: int = 2000,
        **settings: float,
    ) -> ChatClient:
        settings.setdefault("quit_timeout", 1.0)
        user, password = sasl if sasl is not None else (None, None)
        session = Session(SessionConfig(
            nick=nick, channels=channels, notify=notify, sasl_username=user, sasl_password=password,
            sasl_mechanism=sasl_mechanism, sasl_plain_insecure=sasl_plain_insecure,
            history_lines=history_lines, scrollback=scrollback,
        ))  # fmt: skip
        gate = Gate()
        conn = Connection(
            session,
            ConnectionSettings(
                host=host,
                port=port,
                backoff_base=0.05,
                backoff_cap=0.2,
                **settings,  # type: ignore[arg-type]
            ),
            sleep=gate.sleep,
        )
        client = cls(session, conn, gate, asyncio.ensure_future(conn.run()))
        conn.subscribe(client.events.append)
        take = session.take_lines

        def record() -> list[tuple[str, bool]]:  # the connection drains the session so
            lines = take()
            client.sent.extend(line for line, _typed in lines)
            return lines

        session.take_lines = record  # type: ignore[method-assign]
        return client

    @property
    def untagged(self) -> list[str]:
        """The lines sent, without their tags (the outbox labels messages)."""
        return [line.split(" ", 1)[1] if line.startswith("@") else line for line in self.sent]

    async def wait(self, predicate: Callable[[], bool], what: str = "") -> None:
        try:
            await self.conn.wait_until(predicate, DEADLINE)
        except TimeoutError:
            raise AssertionError(f"{self.session.nick}: timed out waiting for {what}") from None

    async def joined(self, channel: str) -> Buffer:
        def ok() -> bool:
            buf = self.session.buffer(channel)
            return buf is not None and buf.joined and not buf.history_loading

        await self.wait(ok, f"join {channel}")
        buf = self.session.buffer(channel)
        assert buf is not None
        return buf

    async def lose_connection(self, cut: Callable[[], object] | None = None) -> None:
        """Lose the connection (``cut``, else a drop on our side) and wait until the
        client is held at its gate, about to reconnect: the caller opens it."""
        self.gate.close()
        (cut or self.conn.drop)()
        await asyncio.wait_for(self.gate.waiting.wait(), DEADLINE)

    async def stop(self) -> None:
        if not self.task.done():
            self.gate.open()
            self.conn.close("bye")
            try:
                await asyncio.wait_for(asyncio.shield(self.task), DEADLINE)
            except TimeoutError:
                self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def in_channel(
    clients: list[ChatClient], port: int, nick: str, channel: str = "#t"
) -> tuple[ChatClient, Buffer]:
    """A client for ``nick`` (stopped with ``clients``), once it is in ``channel`` with
    the channel's history in: the client and the channel's buffer."""
    client = ChatClient.start(port, nick, (channel,))
    clients.append(client)
    return client, await client.joined(channel)


async def start_logged(
    clients: list[ChatClient], port: int, nick: str, tmp_path: Path
) -> tuple[ChatClient, ChatLog]:
    """A client for ``nick`` (stopped with ``clients``) writing a chat log under
    ``tmp_path``/logs, once registered."""
    c = ChatClient.start(port, nick)
    clients.append(c)
    log = ChatLog(tmp_path / "logs")
    c.conn.subscribe(log.handle)
    await c.wait(lambda: c.session.registered, "registration")
    return c, log


async def restart_server(first: RunningServer, db: str, client: ChatClient) -> BackgroundServer:
    """Stop ``first`` (its clients lose their connections) and, once ``client`` waits to
    reconnect (held at its gate, to be opened by the caller), start the server again on
    the same port and database."""
    await client.lose_connection(first.handle.stop)
    second = BackgroundServer(
        replace(first.config, host="127.0.0.1", port=first.port, db=db), first.backend
    )
    assert second.start() == first.port
    return second


class Ircd:
    """A tiny server: welcomes, records every line received, sends what it is told."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.changed = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.welcome = True  # False: registration is never answered (send it yourself)

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        with contextlib.suppress(Exception):
            while raw := await reader.readline():
                line = raw.decode().rstrip("\r\n")
                self.lines.append(line)
                self.changed.set()
                if line.startswith("USER") and self.welcome:
                    writer.write(b":srv 001 alice :Welcome\r\n:srv 422 alice :No MOTD\r\n")
        writer.close()

    def send(self, line: str) -> None:
        self.writers[-1].write((line + "\r\n").encode())

    async def wait(self, predicate: Callable[[], bool], what: str) -> None:
        async def until() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(until(), DEADLINE)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}: {self.lines}") from None

    def privmsgs(self) -> list[str]:
        return [ln for ln in self.lines if ln.startswith("PRIVMSG")]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@contextlib.asynccontextmanager
async def headless(port: int, config: SessionConfig) -> AsyncIterator[tuple[io.StringIO, int]]:
    """``run_headless`` connected to ``port``, its stdin a pipe: yields what it prints
    and the pipe's write end (to type into). At the end, the end of input (a /quit),
    and the run over."""
    conn = Connection(
        Session(config), ConnectionSettings(host="127.0.0.1", port=port, quit_timeout=0.2)
    )
    read_end, write_end = os.pipe()
    out = io.StringIO()
    with os.fdopen(read_end) as stdin:
        task = asyncio.ensure_future(run_headless(conn, stdin, out))
        try:
            yield out, write_end
        finally:
            os.close(write_end)
            await asyncio.wait_for(task, DEADLINE)


class Relay:
    """A TCP relay in front of a server, standing in for the network: it can hold what
    the server sends (the echo of a message lost with the connection) or what the
    client sends (a message that never arrives), and cut every connection."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.hold_down = False  # keep what the server sends from the client
        self.hold_up = False  # keep what the client sends from the server
        self.held = 0  # bytes kept back so far
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers += [writer, up_writer]
        await asyncio.gather(
            self._upward(reader, up_writer, writer),
            self._pump(up_reader, writer, up=False),
            return_exceptions=True,
        )

    async def _upward(
        self, reader: asyncio.StreamReader, up: asyncio.StreamWriter, client: asyncio.StreamWriter
    ) -> None:
        """What the client sends, on its way to the server."""
        await self._pump(reader, up, up=True)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, up: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if self.hold_up if up else self.hold_down:
                    self.held += len(data)  # never delivered: lost with the connection
                    continue
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()  # one side gone: the other with it, held bytes too

    def cut(self) -> None:
        """Every connection fails at once (what was held is lost)."""
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class HistoryStandIn(Relay):
    """A relay in front of our server standing in for a server that answers CHATHISTORY
    its own way: while ``answer`` is set, the client's CHATHISTORY requests (TARGETS
    aside) do not reach the server, and ``answer(request)`` gives the lines sent back
    instead (none: as a server that never answers; None: the request waits, for
    :meth:`release` to send it on to the server, a slow answer)."""

    def __init__(self, upstream_port: int) -> None:
        super().__init__(upstream_port)
        self.answer: Callable[[str], list[str] | None] | None = None
        self.kept: list[str] = []  # the requests answered here
        self.waiting: list[str] = []  # ...of which those for release()
        self._up: asyncio.StreamWriter | None = None

    def release(self) -> None:
        """Send the requests waiting on to the server: it answers them now."""
        assert self._up is not None
        self._up.write("".join(f"{request}\r\n" for request in self.waiting).encode())
        self.waiting.clear()

    async def _upward(
        self, reader: asyncio.StreamReader, up: asyncio.StreamWriter, client: asyncio.StreamWriter
    ) -> None:
        self._up = up
        try:
            while raw := await reader.readline():
                request = raw.decode(errors="replace").strip()
                # (Its label aside: the answers here carry none, as a server's without
                # labeled-response; one released to the server is sent with it.)
                bare = request.split(" ", 1)[-1] if request.startswith("@") else request
                words = bare.split()
                if self.answer is not None and words[:1] == ["CHATHISTORY"] and (
                    words[1:2] != ["TARGETS"]
                ):
                    self.kept.append(bare)
                    back = self.answer(bare)
                    if back is None:
                        self.waiting.append(request)
                    else:
                        client.write("".join(f"{ln}\r\n" for ln in back).encode())
                    continue
                up.write(raw)
                await up.drain()
        finally:
            up.transport.abort()


def messages(buf: Buffer) -> list[Line]:
    return [ln for ln in buf.lines if ln.kind in (Kind.MESSAGE, Kind.ACTION, Kind.NOTICE)]


def texts(buf: Buffer) -> list[str]:
    return [ln.text for ln in messages(buf)]


def has_texts(buf: Buffer | None, wanted: list[str]) -> bool:
    """``buf`` shows all of ``wanted`` as delivered messages (ours: confirmed by the
    server, not pending)."""
    if buf is None:
        return False
    delivered = [m.text for m in messages(buf) if m.delivery is Delivery.DELIVERED]
    return all(w in delivered for w in wanted)


def cert_or_skip(tmp_path: Path, names: str = "DNS:localhost,IP:127.0.0.1") -> tuple[Path, Path]:
    """``make_cert``'s certificate and key; the test is skipped without openssl."""
    pair = make_cert(tmp_path, names)
    if pair is None:
        pytest.skip("openssl cannot make a test certificate here")
    return pair


def make_cert(
    tmp_path: Path, names: str = "DNS:localhost,IP:127.0.0.1"
) -> tuple[Path, Path] | None:
    """A self-signed certificate for ``names`` (a subjectAltName: localhost and
    127.0.0.1), or None without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    result = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", f"subjectAltName={names}",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
        check=False,
    )  # fmt: skip
    return (cert, key) if result.returncode == 0 else None
