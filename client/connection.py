"""asyncio driver for a :class:`~client.session.Session`.

TCP (optionally TLS) with a bounded line reader, a write queue paced by flood control
(:mod:`client.pacing`), PING keepalive (which also measures lag), dead-connection
detection, and reconnection with exponential backoff and jitter. The session does the
protocol work, including rejoining channels and the CHATHISTORY gap fill after a
reconnect; this module only moves bytes and keeps time.

Everything runs on one event loop; nothing blocks. UI code calls :meth:`Connection.input`
and friends from the same loop and gets events through :meth:`Connection.subscribe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chat.framing import LineBuffer

from .model import (
    Buffer,
    Event,
    EventCallback,
    QuitRequested,
    ReconnectRequested,
    State,
    StatusChanged,
    StsPolicy,
    StsUpgrade,
)
from .outbox import Outbox, Outgoing
from .pacing import Pacing, Priority, SendQueue, command_of, wire
from .session import Session
from .sts import StsStore

log = logging.getLogger(__name__)

READ_SIZE = 65536
# OpenSSL's X509_V_ERR_* codes for a certificate that is not for the name connected to
# (host name, e-mail, IP address) and for one outside its dates (not yet, expired).
NAME_MISMATCH = frozenset({62, 63, 64})
OUT_OF_DATE = frozenset({9, 10})
RECONNECT_GRACE = 1.0  # seconds a server has to close the connection after /reconnect's QUIT
# A server that closes the link while we register with the same ERROR this many times in
# a row (a user name it refuses, a ban) refuses us for good: retrying stops, as irssi's
# does after repeated failures, until /reconnect.
REFUSALS_TO_STOP = 3
# ...unless its words say the refusal passes (a throttle, a full server, a restart).
PASSING_REFUSAL = re.compile(
    r"full|too (fast|many)|throttl|try again|later|wait|restart|shut", re.IGNORECASE)


@dataclass(slots=True)
class ConnectionSettings:
    host: str
    port: int = 6667
    tls: bool = False
    tls_verify: bool = True
    ping_interval: float = 30.0  # seconds between keepalive PINGs
    ping_timeout: float = 30.0  # no data for this long after a PING: the connection is dead
    connect_timeout: float = 20.0
    # From the TCP connection to the server's welcome (001), as WeeChat's
    # connection_timeout: a server that answers (if only with 451s) but never welcomes us
    # keeps the keepalive content forever. 0: no limit.
    register_timeout: float = 60.0
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    stable_after: float = 60.0  # a connection up this long resets the backoff
    quit_timeout: float = 3.0  # after QUIT, how long to wait for the server to close
    reconnect: bool = True
    # Flood control: None (or 0 in either field) writes every line at once. chat-client
    # turns it on (the config's send_burst and send_rate); a bare Connection, as the
    # tests use, does not.
    pacing: Pacing | None = None


def backoff_delay(
    attempt: int, base: float = 1.0, cap: float = 60.0, rand: Callable[[], float] = random.random
) -> float:
    """Delay before reconnect attempt ``attempt`` (0-based): exponential, capped, jittered.

    "Equal jitter": half of the exponential step is fixed and half random, so clients
    that lost the same server spread out but never retry in a tight loop.
    """
    step: float = min(cap, base * 2.0 ** min(attempt, 32))
    return step / 2 + rand() * step / 2


Sleep = Callable[[float], Awaitable[None]]


class Connection:
    def __init__(
        self,
        session: Session,
        settings: ConnectionSettings,
        *,
        on_event: EventCallback | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep | None = None,
        rand: Callable[[], float] = random.random,
        sts: StsStore | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.settings = settings
        self.sts = sts  # IRCv3 STS policies kept across runs (None: this run only)
        self._sts_port: int | None = None  # TLS port a server told us to use (STS)
        self._upgrade: int | None = None  # StsUpgrade seen: reconnect there at once
        self._sts_said = False  # the line saying a stored policy moved us to TLS (once a run)
        self._sts_held = False  # a policy held on this connection: pushed on when it closes
        self._callbacks: list[EventCallback] = [on_event] if on_event is not None else []
        self._ssl = ssl_context
        self._clock = clock
        self._sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self._rand = rand
        self._monotonic = monotonic  # flood control's clock
        self._sendq: SendQueue | None = None  # paced lines of this connection
        self._pace_timer: asyncio.TimerHandle | None = None
        self._tick_timer: asyncio.TimerHandle | None = None  # Session.tick at due_at
        self._tick_at = 0.0  # (the due_at it was set for)
        self._skip_backoff = False  # /reconnect: the next connection without waiting
        self._queued_shown = 0  # connection.queued when StatusChanged last told it
        self._dropped_seen = 0  # outbox.dropped when the send queue was last purged
        session.outbox.paced = self.pacing is not None
        self._writer: asyncio.StreamWriter | None = None
        self._wq: deque[bytes] = deque()
        self._wq_ready: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._changed: asyncio.Event | None = None
        self._quit: asyncio.Event | None = None
        self._closing = False
        self._last_rx = 0.0
        self.attempt = 0  # consecutive failed or short-lived connections
        self._refused = ("", 0)  # the server's refusal (Session.refusal), times in a row
        self._tls_hint_shown = False  # the untrusted-certificate hint (once a run)
        self.running = False

    # ------------------------------------------------------------------ UI-facing API

    def subscribe(self, callback: EventCallback) -> None:
        """Call ``callback(event)`` for every session event (on the event loop)."""
        self._callbacks.append(callback)

    @property
    def closing(self) -> bool:
        """/quit or close() was requested: no more reconnecting."""
        return self._closing

    @property
    def connected(self) -> bool:
        return self._writer is not None

    @property
    def pacing(self) -> Pacing | None:
        """Flood control in use, None when lines are written at once."""
        pacing = self.settings.pacing
        return pacing if pacing is not None and pacing.enabled else None

    @property
    def queued(self) -> int:
        """Lines held back by flood control; a multi-line message of ours counts its
        lines of text (a paste's progress shows in [sending N])."""
        return self._sendq.lines if self._sendq is not None else 0

    def input(self, text: str, recall: str = "") -> bool:
        """A line the user typed (a /command or text for the current buffer). False when
        it was refused, with an error line ending in ``recall`` (see
        :meth:`Session.input`)."""
        taken = self.session.input(text, self._clock(), recall)
        self.flush()
        return taken

    def typed(self, text: str) -> None:
        """The input line changed (typing notifications, when enabled)."""
        self.session.typed(text, self._clock())
        self.flush()

    def request_older(self, buffer: Buffer) -> bool:
        """PageUp at the top of ``buffer``: load older history if the server has it."""
        sent = self.session.request_older(buffer, self._clock())
        self.flush()
        return sent

    def switch(self, target: Buffer | str | int) -> bool:
        ok = self.session.switch(target, self._clock())
        self.flush()
        return ok

    def switch_relative(self, step: int) -> None:
        """Ctrl+N / Ctrl+P: the next or previous buffer."""
        self.session.switch_relative(step, self._clock())
        self.flush()

    def close(self, message: str = "") -> None:
        """Send QUIT (when connected) and stop; :meth:`run` then returns."""
        self.session.quit(message, self._clock())
        self.flush()

    def drop(self) -> None:
        """Abort the TCP connection as a network failure would; reconnection follows."""
        if self._writer is not None:
            self._writer.transport.abort()

    def reconnect_now(self) -> None:
        """Skip the remaining backoff delay."""
        if self._wake is not None:
            self._wake.set()

    def _reconnect_at_once(self) -> None:
        """``/reconnect``: no backoff after this connection; a server that does not close
        it after our QUIT (a dead link, the reason to reconnect) is cut off shortly."""
        writer = self._writer
        if writer is None:  # waiting to reconnect: now
            self.reconnect_now()
            return
        self._skip_backoff = True
        with contextlib.suppress(RuntimeError):  # (no loop: nothing to cut off)
            asyncio.get_running_loop().call_later(RECONNECT_GRACE, writer.transport.abort)

    def flush(self) -> None:
        """Move the session's outgoing lines to the socket and its events to subscribers."""
        lines = self.session.take_lines()
        if self._writer is not None:
            if self._sendq is None:
                self._write([wire(line) for line, _typed in lines])
            else:
                self._pace(lines)
        events = self.session.take_events()
        for event in events:
            if isinstance(event, StsUpgrade):
                self._upgrade = event.port
                self.drop()
            elif isinstance(event, StsPolicy):
                self._keep_policy(event.duration)
            if isinstance(event, ReconnectRequested):
                self._reconnect_at_once()
            if isinstance(event, QuitRequested):
                self._closing = True
                if self._sendq is not None:  # (the QUIT went out already: it is urgent)
                    self._sendq.clear(self._monotonic())
                if self._quit is not None:
                    self._quit.set()
                if self._wake is not None:
                    self._wake.set()
            self._deliver(event)
        if self._changed is not None and (events or lines):
            self._changed.set()
            self._changed = asyncio.Event()
        self._schedule_tick()

    def _schedule_tick(self) -> None:
        """Call the session back when it has lines waiting for a time (a netsplit's
        quits, folded into one line once the burst is over), traffic or not: for
        every front end (the UI, --headless, a script)."""
        due = self.session.due_at
        if due is None:
            return
        if self._tick_timer is not None:
            if due >= self._tick_at:
                return
            self._tick_timer.cancel()  # something came due sooner
            self._tick_timer = None
        with contextlib.suppress(RuntimeError):  # (no loop: the next line received does)
            loop = asyncio.get_running_loop()
            self._tick_timer = loop.call_later(max(due - self._clock(), 0.0) + 0.01, self._tick)
            self._tick_at = due

    def _tick(self) -> None:
        self._tick_timer = None
        self.session.tick(self._clock())
        self.flush()

    def _write(self, data: list[bytes]) -> None:
        if data:
            self._wq.append(b"".join(data))
            if self._wq_ready is not None:
                self._wq_ready.set()

    def _pace(self, lines: list[tuple[str, bool]]) -> None:
        """Lines through flood control: urgent ones (and registration) at once, the
        rest, and the outbox's queued messages, as the budget allows: what the user
        typed first (:class:`~client.pacing.Priority`)."""
        q = self._sendq
        assert q is not None
        now = self._monotonic()
        # Before registration everything goes at once: servers allow for it, and it
        # must never wait (nothing long is sent before: the outbox waits for it).
        urgent = not self.session.registered
        q.view(self.session.current.name)
        for line, typed in lines:
            # A JOIN (the rejoin's too) goes with what was typed: messages waiting for
            # that channel wait for it, and a channel not joined yet misses what is said.
            first = typed or command_of(line) == "JOIN"
            priority = Priority.TYPED if first else Priority.AUTO
            self._write(q.add([line], now, urgent=urgent, priority=priority))
        outbox = self.session.outbox
        for entry in outbox.take_queued():
            priority = Priority.BULK if entry.bulk else Priority.TYPED
            q.add_ticket(entry, entry.buffer.name, priority, entry.text_lines)
        if outbox.dropped != self._dropped_seen:  # (/unqueue, /close, a PART...)
            self._dropped_seen = outbox.dropped
            q.purge(lambda t: isinstance(t, Outgoing) and outbox.is_queued(t))
        self._pump(now)
        if self.queued != self._queued_shown:  # the status line's [sending N]
            self._queued_shown = self.queued
            self._deliver(StatusChanged())

    def _pump(self, now: float) -> None:
        q = self._sendq
        assert q is not None
        while (unit := q.head()) is not None:
            entry = unit.ticket
            if isinstance(entry, Outgoing):
                lines, size = Outbox.cost(entry)
            else:
                lines, size = len(unit.data), unit.size
            wait = q.ready(unit, lines, size, now)
            if wait > 0:
                if self._pace_timer is None and wait != float("inf"):
                    loop = asyncio.get_running_loop()
                    self._pace_timer = loop.call_later(wait, self._pace_due)
                return
            q.pop()
            data = unit.data
            if isinstance(entry, Outgoing):
                if not self.session.outbox.write_queued(entry, self._clock()):
                    continue  # (dropped meanwhile: it costs nothing)
                data = [wire(line) for line in self.session.take_outgoing()]
            q.bucket.take(len(data), sum(len(d) for d in data), now)
            self._write(data)
            if unit.history:  # (its answer is waited for from now on)
                self.session.history_written(unit.history, self._clock())

    def _pace_due(self) -> None:
        self._pace_timer = None
        if self._sendq is not None:
            self.flush()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until ``predicate()`` holds (checked after every change); TimeoutError."""
        async with asyncio.timeout(timeout):
            while not predicate():
                if self._changed is None:
                    self._changed = asyncio.Event()
                await self._changed.wait()

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        """Connect, and reconnect after every loss, until /quit or :meth:`close`."""
        self.running = True
        self._wake = asyncio.Event()
        self._changed = self._changed or asyncio.Event()
        loop = asyncio.get_running_loop()
        s = self.settings
        try:
            while not self._closing:
                tls, port = self.endpoint()
                refusal = ""
                self._say_stored_policy()
                self.session.connecting(self._clock(), target=f"{s.host}:{port}")
                self.flush()
                try:
                    opened = await self._connect(tls, port)
                except (OSError, TimeoutError, ssl.SSLError) as exc:
                    self.session.error(
                        f"Could not connect to {s.host}:{port}: {_describe(exc)}",
                        self._clock(),
                        self.session.server,
                        # (The retries of a reconnect: the status line counts them.)
                        count=not self.session.registrations,
                    )
                    if isinstance(exc, ssl.SSLCertVerificationError):
                        self._tls_hint(exc)
                    self.flush()
                else:
                    if opened is None or self.closing:  # /quit while connecting
                        if opened is not None:
                            opened[1].close()
                        break
                    reader, writer = opened
                    started = loop.time()
                    await self._serve(reader, writer, secure=tls)
                    refusal = self.session.refusal
                    if loop.time() - started >= s.stable_after:
                        self.attempt = 0
                if self._upgrade is not None and not self._closing:
                    # STS: straight to the TLS port, and never back to plaintext.
                    self._sts_port, self._upgrade = self._upgrade, None
                    continue
                if self._closing or not s.reconnect:
                    break
                if self._refused_for_good(refusal):
                    await self._pause(None)  # until /reconnect (or /quit)
                    self.attempt = 0
                    continue
                delay = backoff_delay(self.attempt, s.backoff_base, s.backoff_cap, self._rand)
                self.attempt += 1
                if self._skip_backoff:  # /reconnect
                    self._skip_backoff, delay, self.attempt = False, 0.0, 0
                self.session.connecting(self._clock(), delay)
                self.flush()
                if delay > 0:
                    await self._pause(delay)
        finally:
            self.running = False
            if self.session.state is not State.DISCONNECTED:
                self.session.connection_lost(self._clock(), "closed")
            self.session.reconnect_delay = None
            self.session.stopped(self._clock())
            self.flush()

    def _refused_for_good(self, refusal: str) -> bool:
        """Count ``refusal`` (the last connection's, "" for none) in a row; True, said,
        when retrying is to stop. Network errors and a server that let us in break the
        row; so do a refusal that passes and different words."""
        if not refusal or PASSING_REFUSAL.search(refusal):
            self._refused = ("", 0)
            return False
        last, times = self._refused
        times = times + 1 if refusal == last else 1
        self._refused = (refusal, times)
        if times < REFUSALS_TO_STOP:
            return False
        self.session.not_reconnecting(refusal, times, self._clock())
        self.flush()
        return True

    def endpoint(self) -> tuple[bool, int]:
        """(TLS?, port) for the next connection: STS policies override plaintext."""
        s = self.settings
        if s.tls:
            return True, s.port
        if self._sts_port is not None:
            return True, self._sts_port
        policy = self.sts.get(s.host, self._clock()) if self.sts is not None else None
        if policy is not None:
            return True, policy.port
        return False, s.port

    def _say_stored_policy(self) -> None:
        """A policy stored in an earlier run moves this run to TLS: say so, once, with
        until when and how to undo it, or the user sees only a port not theirs (and,
        should nothing listen there, retries without end)."""
        s = self.settings
        if self._sts_said or s.tls or self._sts_port is not None or self.sts is None:
            return
        now = self._clock()
        policy = self.sts.get(s.host, now)
        if policy is None:
            return
        self._sts_said = True
        until = time.strftime("%Y-%m-%d %H:%M", time.localtime(policy.expires))
        self.session.info(
            f"Using TLS on port {policy.port}, not plaintext port {s.port}: {s.host} asked "
            f"to be reached only over TLS (STS) until {until}; to forget that, start "
            "chat-client with --forget-sts",
            now,
            self.session.server,
        )

    def _tls_hint(self, exc: ssl.SSLCertVerificationError) -> None:
        """The certificate did not verify: say once what to do about it. Retrying goes
        on as after any failure (a certificate may be renewed; /quit stops it)."""
        if self._tls_hint_shown:
            return
        self._tls_hint_shown = True
        why = exc.verify_message or "self-signed?"
        if exc.verify_code in NAME_MISMATCH:
            # Not a certificate to trust by hand: what an impostor's looks like.
            text = (f"TLS: the server's certificate is not for {self.settings.host} ({why}): "
                    "that is what an impostor looks like; connect with a name the certificate "
                    "is for, or ask the server's operator; still retrying")
        elif exc.verify_code in OUT_OF_DATE:
            text = (f"TLS: the server's certificate is out of date ({why}): its operator "
                    "must renew it, or this computer's clock is wrong; still retrying")
        else:
            text = (f"TLS: the server's certificate is not trusted ({why}): use --tls-no-verify "
                    "(tls_verify = false in the config), or trust it with "
                    "SSL_CERT_FILE=<its PEM file>; still retrying")
        self.session.error(text, self._clock(), self.session.server)

    def _verifies(self) -> bool:
        if self._ssl is not None:
            return self._ssl.verify_mode != ssl.CERT_NONE
        return self.settings.tls_verify

    def _keep_policy(self, duration: int) -> None:
        """STS over TLS: remember it (only when the certificate was verified)."""
        tls, port = self.endpoint()
        if self.sts is None or not tls or not self._verifies():
            return
        self.sts.set(self.settings.host, port, duration, self._clock())
        self._sts_held = duration > 0

    def _holds_policy(self) -> bool:
        """This (TLS) connection goes where a stored policy is in force, verified."""
        if self.sts is None or not self._verifies():
            return False
        return self.sts.get(self.settings.host, self._clock()) is not None

    def _reschedule_policy(self) -> None:
        """A secure connection under a policy closed: the policy runs its duration from
        now (the spec's MUST), even if it would have expired while connected."""
        if self._sts_held and self.sts is not None:
            self._sts_held = False
            self.sts.reschedule(self.settings.host, self._clock())

    async def _connect(
        self, tls: bool, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """:meth:`_open` within connect_timeout; None when /quit comes first: a host
        that drops SYNs, or a server that never ends the TLS handshake, does not hold
        the exit back (the attempt is cancelled)."""
        assert self._wake is not None
        opening = asyncio.ensure_future(
            asyncio.wait_for(self._open(tls, port), self.settings.connect_timeout))
        try:
            while not opening.done() and not self._closing:
                self._wake.clear()  # (a /reconnect's wake-up: keep connecting)
                waker = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({opening, waker}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waker.cancel()
        finally:
            if not opening.done():
                opening.cancel()
                await asyncio.gather(opening, return_exceptions=True)
        return None if opening.cancelled() else opening.result()

    async def _open(
        self, tls: bool, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        s = self.settings
        ctx = self._ssl
        if ctx is None and tls:
            ctx = ssl.create_default_context()
            if not s.tls_verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
        if not tls:
            return await asyncio.open_connection(s.host, port)
        assert ctx is not None
        return await asyncio.open_connection(s.host, port, ssl=ctx, server_hostname=s.host)

    async def _pause(self, delay: float | None) -> None:
        """Wait ``delay`` seconds (None: no end), or until woken (/reconnect, /quit)."""
        assert self._wake is not None
        self._wake.clear()
        if self._closing:
            return
        if delay is None:
            await self._wake.wait()
            return
        sleeper = asyncio.ensure_future(self._sleep(delay))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, secure: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        self._writer = writer
        self._wq.clear()
        pacing = self.pacing
        self._sendq = None
        if pacing is not None:
            # (A channel's messages are one target, also those to @#chan.)
            session = self.session

            def target(name: str) -> str:
                return session.fold(name.lstrip(session.prefix_symbols))

            self._sendq = SendQueue(pacing, self._monotonic(), target)
        self.session.outbox.paced = pacing is not None
        self._wq_ready = asyncio.Event()
        self._quit = asyncio.Event()
        self._last_rx = loop.time()
        self._sts_held = secure and self._holds_policy()
        self.session.connection_made(
            self._clock(), secure=secure, verified=secure and self._verifies())
        self.flush()
        tasks = {
            asyncio.ensure_future(self._read_loop(reader)),
            asyncio.ensure_future(self._write_loop(writer)),
            asyncio.ensure_future(self._keepalive()),
            asyncio.ensure_future(self._quit_watch()),
            asyncio.ensure_future(self._register_watch()),
        }
        reason = "connection lost"
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is None:
                    reason = task.result()
                elif not task.cancelled():
                    reason = _describe(task.exception())
                break
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._writer = None
            self._wq.clear()
            self._sendq = None  # (its messages wait in the outbox for the next one)
            self._queued_shown = 0
            if self._pace_timer is not None:
                self._pace_timer.cancel()
                self._pace_timer = None
            self._quit = None
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2.0)
            self._reschedule_policy()
            self.session.connection_lost(self._clock(), reason)
            self.flush()

    async def _read_loop(self, reader: asyncio.StreamReader) -> str:
        loop = asyncio.get_running_loop()
        lines_in = LineBuffer()
        while True:
            try:
                data = await reader.read(READ_SIZE)
            except (OSError, ssl.SSLError) as exc:
                return _describe(exc)
            if not data:
                return "connection closed by the server"
            lines, dropped = lines_in.feed_skipping(data)
            if lines or dropped:  # (a byte now and then, never a line, is no answer)
                self._last_rx = loop.time()
            if dropped:
                self.session.lines_too_long(dropped, self._clock())
            now = self._clock()
            for line in lines:
                self.session.feed(line, now)
            self.flush()

    async def _write_loop(self, writer: asyncio.StreamWriter) -> str:
        assert self._wq_ready is not None
        ready = self._wq_ready
        while True:
            await ready.wait()
            ready.clear()
            while self._wq:
                writer.write(self._wq.popleft())
            try:
                await writer.drain()
            except (OSError, ssl.SSLError) as exc:
                return _describe(exc)

    async def _keepalive(self) -> str:
        """Every ``ping_interval`` a keepalive (:meth:`Session.ping`: a PING once
        registered; before, the server has our CAP, NICK and USER to answer); no line
        at all within ``ping_timeout`` after it ends the connection."""
        loop = asyncio.get_running_loop()
        s = self.settings
        while True:
            await asyncio.sleep(s.ping_interval)
            sent = loop.time()
            self.session.ping(self._clock())
            self.flush()
            await asyncio.sleep(s.ping_timeout)
            if self._last_rx < sent:
                return f"no reply from the server for {s.ping_timeout:g} s"

    async def _register_watch(self) -> str:
        """Ends the connection when the server has not welcomed us in time."""
        timeout = self.settings.register_timeout
        if timeout > 0:
            try:
                await self.wait_until(lambda: self.session.registered, timeout)
            except TimeoutError:
                return f"no welcome from the server {timeout:g} s after connecting"
        await asyncio.get_running_loop().create_future()  # (registered: nothing to watch)
        return ""

    async def _quit_watch(self) -> str:
        assert self._quit is not None
        await self._quit.wait()
        # Let the QUIT line go out, then give the server a moment to close first.
        await asyncio.sleep(0)
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.drain(), self.settings.quit_timeout)
        await asyncio.sleep(self.settings.quit_timeout)
        return "quit"

    def _deliver(self, event: Event) -> None:
        for callback in self._callbacks:
            try:
                callback(event)
            except Exception:  # a UI bug must not stop the connection
                log.exception("event callback failed")


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return text
