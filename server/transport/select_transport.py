"""A plain ``selectors`` event loop driving the sans-IO core: no asyncio in the I/O path.

The select backend behaves like the asyncio transport (``asyncio_transport.py``), step
for step, so the same protocol test-suite passes on both:

* One loop iteration = ``selector.select(timeout)`` -> accept / read / note writability
  for every ready socket -> due timers (``core.tick()`` once a second, close grace
  periods) -> callbacks handed over by other threads -> ``flush()``. The select timeout
  is the time to the next timer deadline, so an idle server sleeps.
* ``flush()`` mirrors ``AsyncioServer.flush``: ``run_effects(core.take_effects())``, then
  drain ``core.take_output()`` until it is empty (a SendQ disconnect queues QUITs for
  other clients, delivered in the same tick).
* Write coalescing: the core appends shared ``bytes`` objects to ``Client.out``; here
  they are joined once per connection per tick and written with at most one ``send()``
  per connection per tick. When the connection has no unsent bytes, the joined bytes go
  straight to ``send()`` (no copy); only the unsent tail is kept, in a per-connection
  ``bytearray``. ``EVENT_WRITE`` is registered only while that buffer is non-empty,
  and while it is, new output is appended without trying to send until the selector
  reports the socket writable (asyncio's ``Transport.write`` does the same).
* SendQ: when a connection's unsent bytes exceed ``config.sendq``,
  ``core.sendq_exceeded()`` is called; the core queues ``ERROR`` and marks the client
  closing, and the socket is then aborted without flushing, as asyncio does.
* A connection the core closes (``Client.closing``) stops being read, its remaining
  output is written best-effort, then it is shut down and closed; a peer that does not
  read is cut off after ``CLOSE_GRACE_SECONDS``.
* Read backpressure: a client whose lines wait behind its flood gate
  (``core.input_waiting``) is not watched for reading until the tick that runs the
  last of them, as asyncio's ``pause_reading``: the kernel's buffer stops the sender.

Selector choice (``ServerConfig.select_impl``): ``"auto"`` uses
``selectors.DefaultSelector`` (epoll on Linux, kqueue on the BSDs and macOS, else
poll), which has no descriptor limit beyond ``RLIMIT_NOFILE``. ``"select"`` forces
``selectors.SelectSelector``, i.e. plain ``select.select()``, which can only watch file
descriptors below ``FD_SETSIZE`` (1024 on Linux and macOS): a larger descriptor makes
``select()`` fail for every socket. With that implementation a connection whose
descriptor number is ``SELECT_FD_LIMIT`` (1000) or more is refused cleanly: it gets
``ERROR :Server is full`` and is closed, and the server keeps serving the others.

TLS (``config.tls_port``): a second set of listening sockets whose accepted sockets
are wrapped with ``SSLContext.wrap_socket(..., do_handshake_on_connect=False)`` and
become ``TLSConnection`` objects, a distinct type so that the plaintext hot path pays
nothing (dispatch is on the exact type; the SSL exceptions only appear in ``except``
clauses, which cost nothing until raised). The handshake is driven by the selector
(``SSLWantReadError``/``SSLWantWriteError`` choose the event to wait for) under a
deadline of ``config.tls_handshake_timeout``; until it completes the core does not
know the connection (as with asyncio, whose ``connection_made`` comes after the
handshake), then ``core.connect(..., secure=True)``; so the address is admitted with the
core's limits as it is accepted, before ``wrap_socket`` (``handshakes.HandshakeGate``,
shared with asyncio). Before OpenSSL sees anything the client's first byte is peeked,
as asyncio's does: a client that is not speaking TLS is answered in plaintext. Reads
drain ``pending()``
decrypted bytes the selector cannot see; a read that needs the socket writable, or
a write that needs it readable, waits for that event. Writes go through the same
coalescing and partial-send code as plaintext (OpenSSL's partial-write and
moving-buffer modes let a stopped ``SSL_write`` resume from the buffered tail). A
clean close sends ``close_notify`` best-effort (``unwrap()`` without waiting).

Effects are executed as the asyncio transport executes them, with the same history
service: ``run_effects`` commits the tick's ``StoreMessage`` rows in one transaction on
the loop thread before any byte of the tick is written (group commit), then hands
``HistoryRequest`` effects to a ``HistoryWorker``: a thread of its own running an
asyncio loop for the async ``HistoryService`` (cache-aside reads, store reads on the
service's executor). Results come back with ``call_soon_threadsafe(callback)``, which
queues the callback and writes a byte to a socketpair that the select loop watches;
the loop runs ``core.history_ready(...)`` and flushes. The same socketpair makes
``request_stop()`` thread-safe and signal-safe. asyncio runs only on that worker
thread, and only when history is enabled: never in the client I/O path.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import errno
import heapq
import itertools
import logging
import selectors
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

from server import memory
from server.accounts.service import NewPassword
from server.banfile import save_bans
from server.config import ServerConfig
from server.core import ServerCore
from server.core.handlers.accounts import Login
from server.core.handlers.bans import SaveBans
from server.core.handlers.operator import CheckOper, Rehash
from server.core.handlers.redact import FindMessage
from server.core.history import HistoryRequest
from server.history.model import StoredMessage
from server.history.service import HistoryService, ReadSkipped, Wanted
from server.history.setup import build_history, prune_history
from server.limits import raise_nofile_limit
from server.tls import TLSConfigError, server_context
from server.transport.handshakes import (
    TLS_RECORD,
    Admission,
    HandshakeGate,
    NotTLS,
    answer_plaintext,
    first_byte,
    not_tls_reply,
)
from server.transport.ops import (
    ACCEPT_RETRY_SECONDS,
    LOGIN_ROUNDS,
    NEW_PASSWORDS,
    STORE_REQUESTS,
    WRITTEN_BEHIND,
    AccountTurns,
    AnsweredEffect,
    CheckedLogin,
    HistoryReaders,
    NewPasswordEffect,
    Reloader,
    StoreRequest,
    TransportStats,
    account_key,
    answer_account,
    bind_listeners,
    check_history_file,
    check_login,
    check_oper,
    end_channels_left_closed,
    failed_answer,
    find_message,
    hash_new,
    limit_send_buffer,
    list_targets,
    load_account_state,
    log_failed_check,
    login_stands,
    open_account_store,
    rehash,
    reload_on_signal,
    restore_bans,
    retry_backlog,
    snapshot,
    start_metrics,
    store_new_password,
    write_behind,
    write_history,
)

log = logging.getLogger("chat.server.transport")

TICK_SECONDS = 1.0
PRUNE_INTERVAL = 60.0  # seconds between history retention passes
HISTORY_CLOSE_SECONDS = 10.0  # shutdown: wait this long for the history worker
CLOSE_GRACE_SECONDS = 10.0  # how long a closing socket may take to drain before abort
SHUTDOWN_DRAIN_SECONDS = 2.0  # graceful stop: time given to clients to read their ERROR
RECV_SIZE = 64 * 1024
ACCEPT_BATCH = 128  # connections accepted per listening socket per loop iteration
FD_SETSIZE = 1024
SELECT_FD_LIMIT = 1000  # plain select(): refuse connections on descriptors from here up
SERVER_FULL = b"ERROR :Server is full\r\n"
SELECT_IMPLS = ("auto", "select")

_ACCEPT_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def _describe(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__


class Timer:
    """A scheduled callback; ``cancel()`` makes it a no-op."""

    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Connection:
    """Transport-side state of one client socket."""

    __slots__ = (
        "closed",
        "closing",
        "conn_id",
        "events",
        "fd",
        "grace",
        "lost_reason",
        "paused",
        "sent",
        "sock",
        "wbuf",
        "writable",
    )

    tls = False  # class constant; TLSConnection overrides it

    def __init__(self, sock: socket.socket, conn_id: int) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.conn_id = conn_id
        self.wbuf = bytearray()  # unsent bytes; non-empty <=> EVENT_WRITE registered
        self.events = selectors.EVENT_READ  # what the selector currently watches
        self.writable = False  # the selector reported EVENT_WRITE this iteration
        self.sent = 0  # serial of the last flush that called send()
        self.closing = False  # like asyncio's transport.is_closing(): no more reads/writes
        self.closed = False
        self.paused = False  # not read while its lines wait behind the flood gate
        self.lost_reason = "Connection closed"  # given to core.connection_lost at the end
        self.grace: Timer | None = None


class TLSConnection(Connection):
    """A TLS client socket (an ``ssl.SSLSocket``); a distinct type, so the plaintext
    path pays nothing for it (``_run_once`` dispatches on the exact type).

    Until ``handshaking`` is False the core does not know the connection: it is not in
    ``SelectServer.conns`` and has no core client, only a handshake deadline.
    """

    __slots__ = (
        "addr",
        "admission",
        "deadline",
        "handshaking",
        "heard",
        "read_wants_write",
        "write_wants_read",
    )

    tls = True

    def __init__(
        self, sock: ssl.SSLSocket, conn_id: int, addr: tuple[str, int], admission: Admission
    ) -> None:
        super().__init__(sock, conn_id)
        self.addr = addr
        self.admission = admission  # its place among the handshakes in flight
        self.handshaking = True
        self.heard = False  # its first byte was looked at (a TLS record)
        self.deadline: Timer | None = None  # handshake timeout
        self.read_wants_write = False  # SSL_read needs the socket writable to go on
        self.write_wants_read = False  # SSL_write needs the socket readable to go on


class _Listener:
    __slots__ = ("paused", "sock", "tls")

    def __init__(self, sock: socket.socket, tls: ssl.SSLContext | None = None) -> None:
        self.sock = sock
        self.paused = False
        self.tls = tls  # the TLS listener's context; None for plaintext


class _Waker:
    __slots__ = ()


_WAKER = _Waker()


class HistoryWorker:
    """Runs the async HistoryService on an asyncio loop in a thread of its own.

    ``submit`` is called on the select thread; the answer is handed back with
    ``post`` (the server's ``call_soon_threadsafe``), so the core is only ever touched
    from the select thread. The thread starts with the first request.
    """

    def __init__(
        self, history: HistoryService, post: Callable[[Callable[[], object]], None]
    ) -> None:
        self.history = history
        self._post = post
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._futures: set[concurrent.futures.Future[None]] = set()

    def _start(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()

        self._thread = threading.Thread(target=main, name="chat-history", daemon=True)
        self._thread.start()
        started.wait()
        self._loop = loop
        return loop

    def submit(
        self, request: HistoryRequest, answer: Callable[..., None], wanted: Wanted | None = None
    ) -> None:
        """Run ``request``; later, on the select thread: ``answer(request_id, rows=...)``
        (``rows=None`` too when ``wanted``, asked before each read, said no)."""
        self._run(self._answer(request, answer, wanted))

    def find(self, effect: FindMessage, answer: Callable[[int, object], None]) -> None:
        """Look a REDACT's message up; later, on the select thread: ``answer(check_id,
        found)``."""
        self._run(self._find(effect, answer))

    def _run(self, work: Coroutine[Any, Any, None]) -> None:
        loop = self._loop or self._start()
        future = asyncio.run_coroutine_threadsafe(work, loop)
        self._futures.add(future)
        future.add_done_callback(self._futures.discard)

    async def _find(self, effect: FindMessage, answer: Callable[[int, object], None]) -> None:
        found = await find_message(self.history, effect)
        self._post(lambda: answer(effect.check_id, found))

    async def _answer(
        self, request: HistoryRequest, answer: Callable[..., None], wanted: Wanted | None
    ) -> None:
        history = self.history
        rid = request.request_id
        try:
            if request.search is not None:
                found: list[StoredMessage] = await history.search(request.search, wanted)
                self._post(lambda: answer(rid, rows=found))
            elif request.query is not None:
                rows: list[StoredMessage] = await history.query(request.query, wanted)
                self._post(lambda: answer(rid, rows=rows))
            else:
                targets = await list_targets(history, request, wanted)
                self._post(lambda: answer(rid, targets=targets))
        except asyncio.CancelledError:
            raise
        except ReadSkipped:  # its client went: the core only forgets the request
            self._post(lambda: answer(rid, rows=None))
        except Exception:
            log.exception("history request failed")
            self._post(lambda: answer(rid, rows=None))

    def close(self) -> None:
        """Cancel what is in flight, close the service (cache, executor) and the store."""
        try:
            loop = self._loop or self._start()  # the service closes on an event loop
            for future in list(self._futures):
                future.cancel()
            done = asyncio.run_coroutine_threadsafe(self.history.close(), loop)
            try:
                done.result(HISTORY_CLOSE_SECONDS)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                log.warning("history service did not close in time")
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(HISTORY_CLOSE_SECONDS)
            if self._thread is None or not self._thread.is_alive():
                loop.close()
        except Exception:
            log.exception("closing the history service failed")
        finally:
            self.history.store.close()


def make_selector(impl: str) -> selectors.BaseSelector:
    if impl == "select":
        return selectors.SelectSelector()
    if impl == "auto":
        return selectors.DefaultSelector()
    raise ValueError(f"unknown select_impl {impl!r}: expected one of {', '.join(SELECT_IMPLS)}")


class SelectServer:
    """Owns the listening socket(s) and drives a ServerCore from a ``selectors`` loop.

    ``listen()`` binds and returns the port; ``serve_forever()`` runs the loop on the
    calling thread until ``request_stop()``, then shuts down gracefully.
    """

    def __init__(self, config: ServerConfig, reloader: Reloader | None = None) -> None:
        if config.cluster:
            raise ValueError("--cluster runs on the asyncio and uvloop backends only")
        self.config = config
        self.reloader = reloader
        self.stats = TransportStats()
        self.metrics: Any = None
        self._reload_requested = False
        self.selector = make_selector(config.select_impl)
        self.core = ServerCore(config, clock=time.time)
        restore_bans(self.core)
        self.history: HistoryService | None = build_history(config)
        self._history_worker: HistoryWorker | None = (
            HistoryWorker(self.history, self.call_soon_threadsafe)
            if self.history is not None
            else None
        )
        self.readers = HistoryReaders()  # which queued history reads are still wanted
        # Connections not read while their lines wait behind the flood gate (fakelag).
        self.paused: dict[int, Connection] = {}
        self.accounts = open_account_store(config)
        load_account_state(self.core, self.accounts)
        end_channels_left_closed(self.core, self.history, self.stats)
        self._accounts_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._password_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._hash_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.turns = AccountTurns()  # store calls of an account in the order they came
        self._next_prune = 0.0
        self.conns: dict[int, Connection] = {}
        self.ids = itertools.count(1)
        self.port = config.port
        self.tls_port: int | None = config.tls_port  # the bound TLS port after listen()
        self._handshakes: set[TLSConnection] = set()  # TLS sockets not yet handed to the core
        self.tls_gate = HandshakeGate(self.core)
        # Descriptors from max_fd up are refused (plain select() cannot watch them).
        self.max_fd: int | None = (
            SELECT_FD_LIMIT if isinstance(self.selector, selectors.SelectSelector) else None
        )
        self._listeners: list[_Listener] = []
        self._timers: list[tuple[float, int, Timer]] = []
        self._timer_seq = itertools.count()
        self._ticker: Timer | None = None
        self._ready: collections.deque[Callable[[], object]] = collections.deque()
        self._writable: list[Connection] = []
        self._serial = 0
        self._stop_requested = False
        self._stopped = False
        self._closed = False
        self._last_full_warning = float("-inf")
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, _WAKER)

    # ------------------------------------------------------------------ public API

    def listen(self) -> int:
        """Bind and listen on config.host:config.port (and config.tls_port with TLS).

        Returns the actual plaintext port; ``tls_port`` holds the TLS one. Raises
        OSError when a port cannot be bound and TLSConfigError when the certificate or
        key cannot be loaded; nothing is left listening then.
        """
        config = self.config
        tls: ssl.SSLContext | None = None
        if config.tls_port is not None:
            if not config.tls_cert or not config.tls_key:
                raise TLSConfigError("a TLS port needs a certificate and a key")
            tls = server_context(config.tls_cert, config.tls_key)
        socks, self.port = bind_listeners(config.host, config.port)
        listeners = [_Listener(sock) for sock in socks]
        if tls is not None:
            assert config.tls_port is not None
            try:
                tls_socks, self.tls_port = bind_listeners(config.host, config.tls_port)
            except OSError:
                for sock in socks:
                    sock.close()
                raise
            listeners += [_Listener(sock, tls) for sock in tls_socks]
            self.core.sts_port = self.tls_port
        try:
            # Here, not in serve_forever: once listen() returns, /metrics and /health
            # answer too (a supervisor or test polling them at once was refused).
            self.metrics = start_metrics(
                config,
                lambda: snapshot(self.core, self.stats, self.history),
                lambda: self.stats.heartbeat,
            )
        except BaseException:
            for listener in listeners:
                listener.sock.close()
            raise
        for listener in listeners:
            self._listeners.append(listener)
            self.selector.register(listener.sock, selectors.EVENT_READ, listener)
        log.info("listening on %s:%d", config.host, self.port)
        if tls is not None:
            log.info("listening for TLS on %s:%d", config.host, self.tls_port)
        return self.port

    def request_stop(self) -> None:
        """Ask serve_forever() to shut down; safe from any thread and from signal handlers."""
        self._stop_requested = True
        self._wake()

    def call_soon_threadsafe(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the loop thread at its next iteration (then flush).

        This is how a worker thread (history, cluster bus) hands results back.
        """
        self._ready.append(callback)
        self._wake()

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Timer:
        """Loop-thread only: run ``callback(*args)`` after ``delay`` seconds."""
        timer = Timer(time.monotonic() + delay, callback, args)
        heapq.heappush(self._timers, (timer.when, next(self._timer_seq), timer))
        return timer

    def serve_forever(self) -> None:
        """Run until request_stop(), then shut down gracefully and release every socket."""
        if self._stopped:
            raise RuntimeError("this server has already been stopped")
        if not self._listeners:
            self.listen()
        self._ticker = self.call_later(TICK_SECONDS, self._tick)
        self._tick_due = time.monotonic() + TICK_SECONDS
        try:
            while not self._stop_requested:
                self._run_once()
            log.info("shutting down")
            self._shutdown()
        finally:
            self.close()

    def close(self) -> None:
        """Release every socket at once, without a goodbye (see serve_forever for that)."""
        if self._closed:
            return
        self._closed = True
        self._stopped = True
        if self.metrics is not None:  # (listen() started it; serve_forever may not have run)
            self.metrics.stop()
            self.metrics = None
        self._close_listeners()
        for pending in list(self._handshakes):
            self._drop_handshake(pending)
        for conn in list(self.conns.values()):
            self._finish(conn)
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()
        if self._history_worker is not None:
            self._history_worker.close()
        if self._password_pool is not None:  # queued checks: nobody waits for them now
            self._password_pool.shutdown(wait=True, cancel_futures=True)
        if self._hash_pool is not None:  # nor for these hashes
            self._hash_pool.shutdown(wait=True, cancel_futures=True)
        if self._accounts_pool is not None:  # queued work (state written behind) finishes first
            self._accounts_pool.shutdown(wait=True)
        if self.accounts is not None:
            self.accounts.close()

    # ------------------------------------------------------------------ the loop

    def _run_once(self, max_timeout: float | None = None) -> None:
        timeout = self._next_timeout()
        if max_timeout is not None:
            timeout = max_timeout if timeout is None else min(timeout, max_timeout)
        events = self.selector.select(timeout)
        for key, mask in events:
            data = key.data
            if type(data) is Connection:
                try:
                    if mask & selectors.EVENT_READ:
                        self._read(data)
                    if mask & selectors.EVENT_WRITE and not data.closed:
                        data.writable = True
                        self._writable.append(data)
                except Exception:
                    log.exception("internal error on connection %d", data.conn_id)
                    self._abort(data)
            elif type(data) is TLSConnection:
                try:
                    self._tls_event(data, mask)
                except Exception:
                    log.exception("internal error on TLS connection %d", data.conn_id)
                    if data.handshaking:
                        self._drop_handshake(data)
                    else:
                        self._abort(data)
            elif type(data) is _Listener:
                try:
                    self._accept(data)
                except Exception:
                    log.exception("internal error accepting a connection")
            else:
                self._drain_waker()
        if self._timers and self._timers[0][0] <= time.monotonic():
            self._run_timers()
        while self._ready:
            callback = self._ready.popleft()
            try:
                callback()
            except Exception:
                log.exception("callback %r failed", callback)
        try:
            self.flush()
        except Exception:
            log.exception("flush failed")

    def _next_timeout(self) -> float | None:
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)
        if self._ready:
            return 0.0
        if not timers:
            return None
        return max(0.0, timers[0][0] - time.monotonic())

    def _run_timers(self) -> None:
        timers = self._timers
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            timer = heapq.heappop(timers)[2]
            if timer.cancelled:
                continue
            try:
                timer.callback(*timer.args)
            except Exception:
                log.exception("timer %r failed", timer.callback)

    def _tick(self) -> None:
        now = time.monotonic()
        self.stats.loop_lag = max(0.0, now - self._tick_due)
        self.stats.heartbeat = now
        self.stats.tls_failures.tick()
        self.tls_gate.expire()
        self._tick_due = now + TICK_SECONDS
        self._ticker = self.call_later(TICK_SECONDS, self._tick)
        if self._reload_requested:
            self._reload_requested = False
            reload_on_signal(self.core, self.reloader)
        if self.history is not None:
            check_history_file(self.history)
            retry_backlog(self.core, self.history, self.stats)
        self.core.tick()
        self._resume_reading()
        if self.history is not None and time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_INTERVAL
            prune_history(self.history, self.config)
        memory.tick(len(self.core.clients))  # give memory back after a load peak

    def _wake(self) -> None:
        # OSError: the buffer is full (a wake-up is pending anyway) or already closed.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _drain_waker(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    # ------------------------------------------------------------------ accept / read

    def _accept(self, listener: _Listener) -> None:
        lsock = listener.sock
        tls = listener.tls
        for _ in range(ACCEPT_BATCH):
            try:
                sock, addr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the peer gave up while queued
            except OSError as exc:
                if exc.errno in _ACCEPT_RESOURCE_ERRNOS:
                    log.error(
                        "cannot accept connections (%s): pausing for %.0f s",
                        _describe(exc),
                        ACCEPT_RETRY_SECONDS,
                    )
                    self._pause_listener(listener)
                else:
                    log.debug("accept failed: %s", _describe(exc))
                return
            if tls is None:
                self._new_connection(sock, addr)
            else:
                self._new_tls_connection(sock, addr, tls)

    def _pause_listener(self, listener: _Listener) -> None:
        if listener.paused:
            return
        listener.paused = True
        self.selector.unregister(listener.sock)

        def resume() -> None:
            if listener.paused and listener in self._listeners:
                listener.paused = False
                self.selector.register(listener.sock, selectors.EVENT_READ, listener)

        self.call_later(ACCEPT_RETRY_SECONDS, resume)

    def _new_connection(self, sock: socket.socket, addr: Any) -> None:
        try:
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            limit_send_buffer(sock)
            fd = sock.fileno()
            if self.max_fd is not None and fd >= self.max_fd:
                self._refuse(sock, fd)
                return
            conn_id = next(self.ids)
            conn = Connection(sock, conn_id)
            self.selector.register(sock, selectors.EVENT_READ, conn)
        except (OSError, ValueError) as exc:
            log.debug("dropping a new connection: %s", _describe(exc))
            sock.close()
            return
        self.conns[conn_id] = conn
        if isinstance(addr, tuple) and len(addr) >= 2:
            ip, port = str(addr[0]), int(addr[1])
        else:
            ip, port = "?", 0
        self.core.connect(conn_id, ip, port)

    def _refuse(self, sock: socket.socket, fd: int, *, tls: bool = False) -> None:
        now = time.monotonic()
        if now - self._last_full_warning >= 60.0:
            self._last_full_warning = now
            log.warning(
                "server is full: select() cannot watch descriptor %d (FD_SETSIZE %d); "
                "refusing connections (use select_impl 'auto' for more)",
                fd,
                FD_SETSIZE,
            )
        if not tls:  # a TLS client could not read a plaintext ERROR
            with contextlib.suppress(OSError):
                sock.send(SERVER_FULL)
        sock.close()

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(conn, exc)
            return
        if data:
            self.core.data_received(conn.conn_id, data)
            if self.core.input_waiting(conn.conn_id):
                self._pause_reading(conn)
            return
        # EOF: close our side too, once what is queued has been written (asyncio's
        # eof_received() -> None); the core hears about it when the socket is closed.
        log.debug("connection %d: end of file", conn.conn_id)
        if conn.wbuf:
            self._begin_close(conn)
        else:
            self._finish(conn)

    # ------------------------------------------------------------------ TLS

    def _new_tls_connection(self, sock: socket.socket, addr: Any, ctx: ssl.SSLContext) -> None:
        """Wrap an accepted socket; the handshake runs on the loop, bounded in time."""
        if isinstance(addr, tuple) and len(addr) >= 2:
            peer = (str(addr[0]), int(addr[1]))
        else:
            peer = ("?", 0)
        admission = self.tls_gate.admit(peer[0])
        if admission is None:  # before wrap_socket, which already costs memory and a read
            sock.close()
            return
        try:
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            limit_send_buffer(sock)
            fd = sock.fileno()
            if self.max_fd is not None and fd >= self.max_fd:
                admission.release()
                self._refuse(sock, fd, tls=True)
                return
            tls_sock = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError) as exc:
            admission.release()
            # A client reset before it was accepted: wrap_socket reads the socket to
            # find out whether it had sent anything (an SSLError if it had), so that
            # it is judged as on the asyncio transport, which peeks the same way.
            if isinstance(exc, ssl.SSLError):
                self.stats.tls_failures.failed(peer[0], ConnectionResetError())
            elif isinstance(exc, ConnectionResetError):
                self.stats.tls_failures.closed_silently(peer[0])
            else:
                log.debug("dropping a new TLS connection: %s", _describe(exc))
            sock.close()
            return
        conn = TLSConnection(tls_sock, next(self.ids), peer, admission)
        try:
            self.selector.register(tls_sock, selectors.EVENT_READ, conn)
        except (OSError, ValueError) as exc:
            log.debug("dropping a new TLS connection: %s", _describe(exc))
            admission.release()
            tls_sock.close()
            return
        self._handshakes.add(conn)
        conn.deadline = self.call_later(
            self.config.tls_handshake_timeout, self._handshake_expired, conn
        )
        self._handshake(conn)

    def _handshake(self, conn: TLSConnection) -> None:
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            if not conn.heard:
                # As the asyncio transport does: a plaintext client is known by its
                # first byte, so both log it, and answer it, alike.
                first = first_byte(sock)
                if not first:
                    self.stats.tls_failures.closed_silently(conn.addr[0])
                    self._drop_handshake(conn)
                    return
                if first[0] != TLS_RECORD:
                    answer_plaintext(sock, not_tls_reply(self.port))
                    raise NotTLS
                conn.heard = True
            sock.do_handshake()
        except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            self._tls_watch(conn, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._tls_watch(conn, selectors.EVENT_WRITE)
            return
        except (OSError, ValueError, NotTLS) as exc:  # SSLError: garbage, old protocol
            self.stats.tls_failures.failed(conn.addr[0], exc)
            self._drop_handshake(conn)
            return
        # Established: from here on the connection is like any other, but secure.
        conn.handshaking = False
        self._handshakes.discard(conn)
        conn.admission.release()  # the core counts it from here on
        self._cancel_deadline(conn)
        self.conns[conn.conn_id] = conn
        self._tls_watch(conn, selectors.EVENT_READ)
        ip, port = conn.addr
        self.core.connect(conn.conn_id, ip, port, secure=True)
        log.debug(
            "connection %d from %s (%s, %s)",
            conn.conn_id,
            ip,
            sock.version(),
            (sock.cipher() or ("?",))[0],
        )
        # The client's first lines may have come with its last handshake message.
        self._tls_read(conn)

    def _cancel_deadline(self, conn: TLSConnection) -> None:
        if conn.deadline is not None:
            conn.deadline.cancel()
            conn.deadline.args = ()  # the cancelled timer stays queued: do not keep conn alive
            conn.deadline = None

    def _handshake_expired(self, conn: TLSConnection) -> None:
        conn.deadline = None
        if conn.handshaking and not conn.closed:
            self.stats.tls_failures.failed(conn.addr[0], None)
            self._drop_handshake(conn)

    def _drop_handshake(self, conn: TLSConnection) -> None:
        """Close a TLS socket that never became a client (the core never heard of it)."""
        self._handshakes.discard(conn)
        conn.admission.release()
        self._cancel_deadline(conn)
        if conn.closed:
            return
        conn.closed = conn.closing = True
        if conn.events:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.unregister(conn.sock)
            conn.events = 0
        conn.sock.close()

    def _tls_event(self, conn: TLSConnection, mask: int) -> None:
        """The selector reported ``mask`` for a TLS socket: OpenSSL decides what it means.

        A read may need the socket writable to go on (``read_wants_write``), and a
        write readable (``write_wants_read``); each waits for the event it needs.
        """
        if conn.handshaking:
            self._handshake(conn)
            return
        if mask & selectors.EVENT_READ or (conn.read_wants_write and mask & selectors.EVENT_WRITE):
            # Paused, it is read only for a write that needs it (rare: level-triggered
            # readiness left unread would spin the loop).
            if not conn.closing and (not conn.paused or conn.write_wants_read):
                self._tls_read(conn)
            if conn.closed:
                return
        if conn.wbuf and (
            mask & selectors.EVENT_WRITE or (conn.write_wants_read and mask & selectors.EVENT_READ)
        ):
            conn.write_wants_read = False
            if not conn.writable:
                conn.writable = True
                self._writable.append(conn)

    def _tls_read(self, conn: TLSConnection) -> None:
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        if conn.read_wants_write:
            conn.read_wants_write = False
            self._tls_watch(conn, self._tls_events(conn))
        try:
            data = sock.recv(RECV_SIZE)
            # Bytes OpenSSL has decrypted but not returned: the selector cannot see them.
            pending = sock.pending()
            while data and pending:
                data += sock.recv(pending)
                pending = sock.pending()
        except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            return
        except ssl.SSLWantWriteError:
            conn.read_wants_write = True
            self._tls_watch(conn, self._tls_events(conn))
            return
        except ssl.SSLZeroReturnError:  # close_notify: a clean end of file
            data = b""
        except OSError as exc:  # SSLError (a bad record), a reset
            self._lost(conn, exc)
            return
        if data:
            self.core.data_received(conn.conn_id, data)
            if self.core.input_waiting(conn.conn_id):
                self._pause_reading(conn)
            return
        log.debug("connection %d: end of file", conn.conn_id)
        if conn.wbuf:
            self._begin_close(conn)
        else:
            self._finish(conn)

    def _pause_reading(self, conn: Connection) -> None:
        """Stop reading a client whose lines wait behind its flood gate: what it sends
        meanwhile stays in the kernel, whose full buffer stops the sender."""
        if conn.closing or conn.paused:
            return
        conn.paused = True
        self.paused[conn.conn_id] = conn
        self._watch(conn)

    def _resume_reading(self) -> None:
        """Read again from those whose waiting lines have all run (released by the tick)."""
        core = self.core
        for conn_id, conn in list(self.paused.items()):
            if not core.input_waiting(conn_id):
                del self.paused[conn_id]
                conn.paused = False
                if not conn.closing:
                    self._watch(conn)

    def _watch(self, conn: Connection) -> None:
        """The events to watch after ``paused`` changed."""
        if type(conn) is TLSConnection:
            self._tls_watch(conn, self._tls_events(conn))
        else:
            self._set_events(conn)

    def _write_wants_read(self, conn: Connection) -> None:
        """SSL_write needs to read first (renegotiation-like traffic): wait for readable
        only, or the socket, always writable, would spin the loop."""
        assert isinstance(conn, TLSConnection)
        conn.write_wants_read = True
        self._tls_watch(conn, selectors.EVENT_READ)

    def _tls_events(self, conn: TLSConnection) -> int:
        events = 0 if conn.closing or conn.paused else selectors.EVENT_READ
        if conn.wbuf or conn.read_wants_write:
            events |= selectors.EVENT_WRITE
        return events

    def _tls_watch(self, conn: TLSConnection, events: int) -> None:
        if events == conn.events:
            return
        try:
            if events == 0:
                self.selector.unregister(conn.sock)
            elif conn.events == 0:
                self.selector.register(conn.sock, events, conn)
            else:
                self.selector.modify(conn.sock, events, conn)
        except (OSError, ValueError, KeyError) as exc:
            log.debug("connection %d: selector update failed: %s", conn.conn_id, exc)
        conn.events = events

    # ------------------------------------------------------------------ write / flush

    def flush(self) -> None:
        """Hand effects over, then write queued output: one send() per connection per tick."""
        core = self.core
        sendq = self.config.sendq
        conns = self.conns
        self._serial = serial = self._serial + 1
        effects = core.take_effects()
        while effects:  # a REHASH answered here releases held lines, which may add more
            self.run_effects(effects)
            effects = core.take_effects()
        pending = core.take_output()
        while pending:
            for client in pending:
                out = client.out
                conn = conns.get(client.conn_id)
                if conn is None:
                    out.clear()
                    continue
                if out:
                    data = out[0] if len(out) == 1 else b"".join(out)
                    out.clear()
                    if not conn.closing:
                        wbuf = conn.wbuf
                        if conn.sent == serial or (wbuf and not conn.writable):
                            wbuf += data  # sent this tick already, or socket is full
                            if not conn.events & selectors.EVENT_WRITE:
                                self._set_events(conn)
                        elif wbuf:
                            wbuf += data
                            self._send(conn, serial)
                        else:
                            self._send_bytes(conn, data, serial)
                        if conn.closed:
                            continue
                if client.closing is not None:
                    self.readers.gone(client.conn_id)
                    self._close(conn, abort=len(conn.wbuf) > sendq)
                elif len(conn.wbuf) > sendq and not conn.closing:
                    core.sendq_exceeded(client.conn_id)
            # SendQ disconnects queue QUITs for others: deliver them in this tick too.
            pending = core.take_output()
        writable = self._writable
        if writable:
            self._writable = []
            for conn in writable:
                if conn.writable and not conn.closed:
                    if conn.sent != serial and conn.wbuf:
                        self._send(conn, serial)
                    conn.writable = False

    def _send_bytes(self, conn: Connection, data: bytes, serial: int) -> None:
        """Nothing buffered: send ``data`` directly and keep only what the kernel refused."""
        conn.sent = serial
        try:
            n = conn.sock.send(data)
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
            n = 0
        except ssl.SSLWantReadError:  # TLS only: the write goes on once the socket is readable
            conn.wbuf += data
            self._write_wants_read(conn)
            return
        except OSError as exc:
            self._lost(conn, exc)
            return
        if n < len(data):
            conn.wbuf += memoryview(data)[n:] if n else data
            self._set_events(conn)
        elif conn.closing:
            self._finish(conn)

    def _send(self, conn: Connection, serial: int) -> None:
        """One send() of the buffered bytes."""
        conn.sent = serial
        conn.writable = False
        wbuf = conn.wbuf
        try:
            n = conn.sock.send(wbuf)
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
            return
        except ssl.SSLWantReadError:  # TLS only: the write goes on once the socket is readable
            self._write_wants_read(conn)
            return
        except OSError as exc:
            self._lost(conn, exc)
            return
        if n == len(wbuf):
            wbuf.clear()
            if conn.closing:
                self._finish(conn)
                return
        else:
            del wbuf[:n]
        self._set_events(conn)

    def _set_events(self, conn: Connection) -> None:
        """Watch EVENT_READ unless closing or paused, EVENT_WRITE while unsent bytes remain."""
        events = 0 if conn.closing or conn.paused else selectors.EVENT_READ
        if conn.wbuf:
            events |= selectors.EVENT_WRITE
        if events == conn.events:
            return
        try:
            if events == 0:
                self.selector.unregister(conn.sock)
            elif conn.events == 0:
                self.selector.register(conn.sock, events, conn)
            else:
                self.selector.modify(conn.sock, events, conn)
        except (OSError, ValueError, KeyError) as exc:
            log.debug("connection %d: selector update failed: %s", conn.conn_id, exc)
        conn.events = events

    def run_effects(self, effects: list[Any]) -> None:
        """Group commit: one transaction for the tick's messages, before any byte is sent;
        history requests go to the worker thread and come back as callbacks."""
        if not effects:
            return
        for effect in effects:
            if isinstance(effect, Rehash):
                rehash(self.core, self.reloader, effect)
            elif isinstance(effect, CheckOper):
                self._off_loop(effect, self._passwords(), check_oper, effect)
            elif isinstance(effect, Login):
                self._login(effect, LOGIN_ROUNDS)
            elif isinstance(effect, NEW_PASSWORDS):
                self._new_password(effect)
            elif isinstance(effect, STORE_REQUESTS):
                self._store_request(effect)
            elif isinstance(effect, WRITTEN_BEHIND):  # nothing waits
                self._pool().submit(write_behind, self.accounts, effect)
            elif isinstance(effect, SaveBans):  # rare (operators, expiry) and small
                save_bans(self.core.config.ban_file, effect.bans, effect.removed)
        history = self.history
        worker = self._history_worker
        if history is None or worker is None:
            return
        write_history(self.core, history, effects, self.stats)
        for effect in effects:
            if isinstance(effect, HistoryRequest):
                # Asked again on the reader thread just before each read (ops.HistoryReaders).
                wanted = self.readers.wanted(self.core, effect.request_id)
                if wanted is None:  # its client is gone already: only forget the request
                    self.core.history_ready(effect.request_id, rows=None)
                else:
                    worker.submit(effect, self.core.history_ready, wanted)
            elif isinstance(effect, FindMessage):
                worker.find(effect, self.core.answered)

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        """The ordered worker thread for the account store (loop thread only)."""
        if self._accounts_pool is None:
            self._accounts_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="accounts"
            )
        return self._accounts_pool

    def _passwords(self) -> concurrent.futures.ThreadPoolExecutor:
        """The worker thread for password checks (scrypt: OPER, logins; loop thread only),
        so that state written behind is not queued behind them."""
        if self._password_pool is None:
            self._password_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="passwords"
            )
        return self._password_pool

    def _hashes(self) -> concurrent.futures.ThreadPoolExecutor:
        """The worker thread for new passwords (REGISTER, SET PASSWORD; loop thread only),
        so that neither logins nor the store calls wait behind them (ops.AccountTurns)."""
        if self._hash_pool is None:
            self._hash_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="new-passwords"
            )
        return self._hash_pool

    def _store_request(self, effect: StoreRequest) -> None:
        """An account-store call on the ordered worker, in its account's turn."""
        self.turns.run(account_key(effect), lambda: self._off_loop(
            effect, self._pool(), answer_account, self.accounts, effect
        ))

    def _new_password(self, effect: NewPasswordEffect) -> None:
        """A registration's or a password change's password hashed on the new-password
        worker, then its store call on the ordered account worker, in its turn. A hash
        that raises (a bug) is answered as failed by ``_then`` and gives up its turn."""
        turn = self.turns.hashing(effect.folded)

        def hashed(new: NewPassword) -> None:
            self.turns.hashed(turn, lambda: self._off_loop(
                effect, self._pool(), store_new_password, self.accounts, new, effect
            ))

        self._then(effect, self._hashes(), hashed, hash_new, effect,
                   on_failure=lambda: self.turns.hashed(turn, lambda: None))

    def _then(
        self,
        effect: CheckOper | Login | AnsweredEffect,
        pool: concurrent.futures.ThreadPoolExecutor,
        then: Callable[[Any], object],
        work: Callable[..., Any],
        *args: Any,
        on_failure: Callable[[], object] | None = None,
    ) -> None:
        """``work(*args)`` on ``pool`` for ``effect``, then ``then(result)`` on the loop
        thread, through the wake-up pipe. Work that raises (a bug) is logged and the
        check answered as failed instead (``ops.failed_answer``), after ``on_failure``:
        the client's held lines must go on. Work cancelled by close() is answered so
        too, unlogged."""
        future = pool.submit(work, *args)
        core = self.core

        def answer_failed() -> None:
            if on_failure is not None:
                on_failure()
            core.answered(effect.check_id, failed_answer(effect))

        def done(f: concurrent.futures.Future[Any]) -> None:
            exc = None if f.cancelled() else f.exception()
            if f.cancelled() or exc is not None:
                if exc is not None:
                    log_failed_check(effect, exc)
                self.call_soon_threadsafe(answer_failed)
                return
            result = f.result()
            self.call_soon_threadsafe(lambda: then(result))

        future.add_done_callback(done)

    def _off_loop(
        self,
        effect: CheckOper | AnsweredEffect,
        pool: concurrent.futures.ThreadPoolExecutor,
        work: Callable[..., Any],
        *args: Any,
    ) -> None:
        """A password check or an account-store call on a worker thread; the core gets
        the answer on the loop thread."""
        core = self.core
        self._then(effect, pool, lambda result: core.answered(effect.check_id, result),
                   work, *args)

    def _login(self, effect: Login, rounds: int) -> None:
        """A login checked on the password worker and confirmed on the ordered account
        worker (why: the comment above ``ops.LOGIN_ROUNDS``); each step is submitted from
        the loop thread, so none reaches a pool that close() has shut down."""
        core = self.core

        def checked(result: CheckedLogin) -> None:
            self.turns.run(effect.folded, lambda: self._then(
                effect, self._pool(), lambda stands: confirmed(result, stands),
                login_stands, self.accounts, effect, result,
            ))

        def confirmed(result: CheckedLogin, stands: bool) -> None:
            if stands:
                core.answered(effect.check_id, result.name)
            elif rounds > 1:
                self._login(effect, rounds - 1)
            else:
                core.answered(effect.check_id, None)

        self._then(effect, self._passwords(), checked, check_login, self.accounts, effect)

    # ------------------------------------------------------------------ closing

    def _close(self, conn: Connection, *, abort: bool) -> None:
        """The core closed this client: abort, or write what is left then close."""
        if conn.closing or conn.closed:
            return
        if abort or not conn.wbuf:
            self._finish(conn)
        else:
            self._begin_close(conn)

    def _begin_close(self, conn: Connection) -> None:
        conn.closing = True
        self._set_events(conn)
        # A peer that stops reading must not hold the socket open forever.
        conn.grace = self.call_later(CLOSE_GRACE_SECONDS, self._grace_expired, conn)

    def _grace_expired(self, conn: Connection) -> None:
        if not conn.closed:
            log.debug("connection %d: close grace period over, aborting", conn.conn_id)
            self._finish(conn)

    def _lost(self, conn: Connection, exc: OSError) -> None:
        """The socket failed (reset, broken pipe): drop it and tell the core why."""
        conn.lost_reason = f"Read error: {_describe(exc)}"
        log.debug("connection %d: %s", conn.conn_id, conn.lost_reason)
        self._finish(conn)

    def _abort(self, conn: Connection) -> None:
        if not conn.closed:
            self._finish(conn)

    def _finish(self, conn: Connection) -> None:
        """Close the socket now, forget the connection, and tell the core."""
        if conn.closed:
            return
        conn.closed = True
        conn.closing = True
        conn.writable = False
        if conn.grace is not None:
            conn.grace.cancel()
            conn.grace = None
        if conn.events:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.unregister(conn.sock)
            conn.events = 0
        sock = conn.sock
        if not conn.wbuf:
            if conn.tls:
                _tls_goodbye(sock)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        conn.wbuf.clear()
        sock.close()
        self.conns.pop(conn.conn_id, None)
        self.paused.pop(conn.conn_id, None)
        self.readers.gone(conn.conn_id)
        self.core.connection_lost(conn.conn_id, conn.lost_reason)
        log.debug("connection %d closed: %s", conn.conn_id, conn.lost_reason)

    def _close_listeners(self) -> None:
        for listener in self._listeners:
            if not listener.paused:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self.selector.unregister(listener.sock)
            listener.sock.close()
        self._listeners.clear()

    def request_reload(self) -> None:
        """Signal-safe: re-read the configuration on the next timer tick (SIGHUP)."""
        self._reload_requested = True
        self._wake()

    def _shutdown(self, reason: str = "Server shutting down") -> None:
        """Send ERROR to everyone, give them a moment to read it, close every socket."""
        if self.metrics is not None:
            self.metrics.stop()
            self.metrics = None
        if self._ticker is not None:
            self._ticker.cancel()
        self._close_listeners()
        for pending in list(self._handshakes):  # not clients yet: nobody to say goodbye to
            self._drop_handshake(pending)
        self.core.shutdown(reason)
        self.flush()
        deadline = time.monotonic() + SHUTDOWN_DRAIN_SECONDS
        while self.conns:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._run_once(max_timeout=remaining)
        for conn in list(self.conns.values()):
            self._finish(conn)
        self.flush()


def _tls_goodbye(sock: socket.socket) -> None:
    """Best effort: send close_notify without waiting for the peer's."""
    if isinstance(sock, ssl.SSLSocket):
        with contextlib.suppress(OSError, ValueError):
            sock.unwrap()


def run(config: ServerConfig, reloader: Reloader | None = None) -> int:
    """Serve on the calling thread until SIGTERM/SIGINT; 0 after a clean stop, 1 if no listen.

    The handlers are installed before the server is built, so a signal that arrives
    while it starts up still means a graceful stop (it is remembered until then).
    """
    raise_nofile_limit()
    server: SelectServer | None = None
    early_stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal early_stop
        if server is None:
            early_stop = True
        else:
            server.request_stop()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)

        def on_hup(signum: int, frame: FrameType | None) -> None:
            if server is not None:
                server.request_reload()

        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hup)
    try:
        try:
            built = SelectServer(config, reloader)
        except ValueError as exc:
            log.error("%s", exc)
            return 1
        try:
            built.listen()
        except TLSConfigError as exc:
            log.error("cannot start the TLS listener: %s", exc)
            built.close()
            return 1
        except OSError as exc:
            where = f"{config.host}:{config.port}"
            if config.tls_port is not None:
                where += f" (TLS: {config.tls_port})"
            log.error("cannot listen on %s: %s", where, _describe(exc))
            built.close()
            return 1
        server = built
        if early_stop:
            server.request_stop()
        memory.freeze_startup()
        server.serve_forever()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["SELECT_FD_LIMIT", "SelectServer", "run"]
