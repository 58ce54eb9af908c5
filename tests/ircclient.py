"""A small asyncio IRC client for tests: real TCP, explicit waits with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from chat.message import Message, parse

DEFAULT_TIMEOUT = 5.0


class IRCTestClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.nick = "*"
        self.backlog: list[Message] = []  # read but not yet consumed by expect()

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> IRCTestClient:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        return cls(reader, writer)

    async def send(self, line: str) -> None:
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_message(self, timeout: float = DEFAULT_TIMEOUT) -> Message:
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), timeout)
            if not raw.endswith(b"\n"):  # (a server killed mid-write leaves half a line)
                raise ConnectionError("server closed the connection")
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not text:
                continue
            msg = parse(text)
            if msg.command == "PING" and not msg.source:
                # Keepalive from the server: answer it, never hand it to a test.
                await self.send(f"PONG :{msg.params[-1] if msg.params else ''}")
                continue
            return msg

    async def expect(
        self,
        command: str,
        where: Callable[[Message], bool] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Message:
        """Return the first message with this command (and predicate); skip others."""
        for i, msg in enumerate(self.backlog):
            if msg.command == command and (where is None or where(msg)):
                del self.backlog[: i + 1]
                return msg
        self.backlog.clear()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {command} within {timeout}s")
            msg = await self.read_message(remaining)
            if msg.command == command and (where is None or where(msg)):
                return msg

    async def collect_until(
        self, command: str, *others: str, timeout: float = DEFAULT_TIMEOUT
    ) -> list[Message]:
        """Every message up to and including the first with one of these commands."""
        ends = {command, *others}
        out: list[Message] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = await self.read_message(max(deadline - loop.time(), 0.001))
            out.append(msg)
            if msg.command in ends:
                return out

    async def sync(self, timeout: float = DEFAULT_TIMEOUT) -> list[Message]:
        """Round-trip a PING: returns everything the server sent before the PONG."""
        token = f"sync{id(self)}{asyncio.get_running_loop().time()}"
        await self.send(f"PING {token}")
        out: list[Message] = []
        while True:
            msg = await self.read_message(timeout)
            if msg.command == "PONG" and msg.params[-1] == token:
                return out
            out.append(msg)

    async def register(self, nick: str, caps: list[str] | None = None) -> list[Message]:
        if caps is not None:
            await self.send("CAP LS 302")
            if caps:
                await self.send("CAP REQ :" + " ".join(caps))
                await self.expect("CAP", lambda m: m.params[1] == "ACK")
            await self.send("CAP END")
        await self.send(f"NICK {nick}")
        await self.send(f"USER {nick} 0 * :Real {nick}")
        burst = await self.collect_until("376", "422")
        self.nick = nick
        return burst

    async def join(self, channel: str) -> list[Message]:
        await self.send(f"JOIN {channel}")
        return await self.collect_until("366")

    async def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> list[Message]:
        """Read until EOF; returns what arrived before it."""
        out: list[Message] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                out.append(await self.read_message(max(deadline - loop.time(), 0.001)))
            except ConnectionError:
                return out

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()
