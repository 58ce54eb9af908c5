"""Headless front end: display lines to stdout, commands from stdin.

Useful for scripts and tests, and the fallback when the full-screen UI cannot start.
Each line printed is ``HH:MM:SS BUFFER BODY`` where BODY is ``<nick> text``,
``* nick action``, ``-nick- notice``, ``-- nick joined ...`` for events,
``-- text`` for info and ``!! text`` for errors; a deleted message (IRCv3
message-redaction) is ``-- carol deleted bob's message of HH:MM:SS: reason``, a
reaction ``-- alice reacted 👍 to bob's message of HH:MM:SS``. Our own message is
printed once, when the server confirms it (not while pending); one that fails is an
error line, ``!! <text> (not sent: <reason>)``. A message of several lines (IRCv3
multiline) prints its lines after the first below it, indented under its text.
Joins, parts, quits and nick changes the smart filter hides (``Session.hidden``, as
the message pane) are not printed; a join hidden when it came is printed once its nick
speaks soon after (before what they said), as the pane then shows it.

Input lines are held until the first registration. After a ``/join`` the next
input line waits (up to 10 s) until the channel is joined, so a script can join
and then talk. End of input sends /quit.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections import deque
from dataclasses import replace
from typing import TextIO

from .chatlog import indent_lines
from .connection import Connection
from .model import (
    MESSAGE_KINDS,
    Buffer,
    BufferClosed,
    Delivery,
    DeliveryChanged,
    Event,
    HistoryAdded,
    Kind,
    Line,
    LineAdded,
    LineReacted,
    LineRedacted,
)

JOIN_WAIT = 10.0
HELD_LINES = 50  # per buffer: hidden lines a nick speaking soon after may yet show


def format_line(buffer: Buffer, line: Line, timestamp_format: str = "%H:%M:%S") -> str:
    stamp = time.strftime(timestamp_format, time.localtime(line.time))
    if line.kind is Kind.MESSAGE:
        body = f"<{line.prefix}{line.nick}> "
    elif line.kind is Kind.ACTION:
        body = f"* {line.nick} "
    elif line.kind is Kind.NOTICE:
        body = f"-{line.nick}- "
    elif line.kind is Kind.ERROR:
        body = "!! "
    elif line.nick:
        body = f"-- {line.nick} "
    else:
        body = "-- "
    if line.where:  # a search result: where it was said
        body = f"{line.where} {body}"
    head = f"{stamp} {buffer.name} {body}"
    return head + indent_lines(line.text, len(head))


def format_reaction(event: LineReacted, timestamp_format: str = "%H:%M:%S") -> str:
    stamp = time.strftime(timestamp_format, time.localtime(event.time))
    sent = time.strftime(timestamp_format, time.localtime(event.old.time))
    return f"{stamp} {event.buffer.name} -- {event.describe(sent)}"


def format_redaction(event: LineRedacted, timestamp_format: str = "%H:%M:%S") -> str:
    stamp = time.strftime(timestamp_format, time.localtime(event.time))
    sent = time.strftime(timestamp_format, time.localtime(event.old.time))
    return f"{stamp} {event.buffer.name} -- {event.describe(sent)}"


async def run_headless(
    conn: Connection,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    timestamp_format: str = "%H:%M:%S",
) -> int:
    out = stdout if stdout is not None else sys.stdout
    src = stdin if stdin is not None else sys.stdin
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    hidden = conn.session.hidden
    held: dict[Buffer, deque[Line]] = {}  # hidden when they came

    def write(buffer: Buffer, line: Line) -> None:
        if hidden(buffer, line):
            held.setdefault(buffer, deque(maxlen=HELD_LINES)).append(line)
            return
        waiting = held.get(buffer)
        if waiting and line.kind in MESSAGE_KINDS:
            # The pane shows a join once its nick speaks soon after: printed now.
            for shown in [ln for ln in waiting if not hidden(buffer, ln)]:
                waiting.remove(shown)
                out.write(format_line(buffer, shown, timestamp_format) + "\n")
        out.write(format_line(buffer, line, timestamp_format) + "\n")

    def show(event: Event) -> None:
        if isinstance(event, LineAdded | DeliveryChanged):
            line = event.line
            if line.delivery is Delivery.PENDING:
                return  # shown when the server confirms it
            if line.delivery is Delivery.FAILED:
                line = replace(line, kind=Kind.ERROR, text=f"{line.text} ({line.note})")
            write(event.buffer, line)
        elif isinstance(event, HistoryAdded):
            for line in event.lines:
                write(event.buffer, line)
        elif isinstance(event, LineRedacted):
            out.write(format_redaction(event, timestamp_format) + "\n")
        elif isinstance(event, LineReacted):
            out.write(format_reaction(event, timestamp_format) + "\n")
        else:
            if isinstance(event, BufferClosed):
                held.pop(event.buffer, None)
            return
        with contextlib.suppress(Exception):
            out.flush()

    conn.subscribe(show)

    def reader() -> None:  # a daemon thread: a blocked readline never holds up exit
        try:
            for text in src:
                loop.call_soon_threadsafe(lines.put_nowait, text.rstrip("\r\n"))
        except (OSError, ValueError):
            pass
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=reader, name="chat-stdin", daemon=True).start()
    runner = asyncio.ensure_future(conn.run())
    feeder = asyncio.ensure_future(_feed(conn, lines))
    try:
        await asyncio.wait({runner, feeder}, return_when=asyncio.FIRST_COMPLETED)
        if not runner.done():
            await runner
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
    return 0


async def _feed(conn: Connection, lines: asyncio.Queue[str | None]) -> None:
    session = conn.session
    while True:
        text = await lines.get()
        if text is None:
            break
        if text.lstrip().lower().startswith("/quit"):
            conn.input(text)
            return
        with contextlib.suppress(TimeoutError):
            await conn.wait_until(lambda: session.registered, timeout=3600)
        conn.input(text)
        words = text.split()
        if words and words[0].lower() in ("/join", "/j") and len(words) > 1:
            names = [n if session.is_channel(n) else "#" + n for n in words[1].split(",") if n]

            def joined(names: list[str] = names) -> bool:
                return all((b := session.buffer(n)) is not None and b.joined for n in names)

            with contextlib.suppress(TimeoutError):
                await conn.wait_until(joined, JOIN_WAIT)
            if names and (buf := session.buffer(names[-1])) is not None:
                conn.switch(buf)
    # End of input: let pending history requests and messages finish, then quit.
    with contextlib.suppress(TimeoutError):
        await conn.wait_until(
            lambda: not session.outbox.pending
            and not any(b.history_loading for b in session.buffers),
            JOIN_WAIT,
        )
    conn.close()
