"""Run real Session + Connection clients in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from client.connection import Connection, ConnectionSettings
from client.model import Buffer, Delivery, Event, Kind, Line
from client.session import Session, SessionConfig

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
        sasl: tuple[str, str] | None = None,  # (username, password): SASL PLAIN at connect
        history_lines: int = 100,
        **settings: float,
    ) -> ChatClient:
        settings.setdefault("quit_timeout", 1.0)
        user, password = sasl if sasl is not None else (None, None)
        session = Session(SessionConfig(
            nick=nick, channels=channels, notify=notify, sasl_username=user, sasl_password=password,
            history_lines=history_lines,
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
        take = session.take_outgoing

        def record() -> list[str]:  # the connection drains the session through this
            lines = take()
            client.sent.extend(lines)
            return lines

        session.take_outgoing = record  # type: ignore[method-assign]
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


def make_cert(tmp_path: Path) -> tuple[Path, Path] | None:
    """A self-signed certificate for localhost and 127.0.0.1, or None without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    result = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
        check=False,
    )  # fmt: skip
    return (cert, key) if result.returncode == 0 else None
