"""asyncio (and uvloop) transport: Protocol callbacks feed the core, one flush per tick."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import socket
import ssl
import time
from collections.abc import Callable, Coroutine
from typing import Any, cast

from server import memory
from server.banfile import save_bans
from server.config import ServerConfig
from server.core import ServerCore
from server.core.handlers.accounts import Login
from server.core.handlers.bans import SaveBans
from server.core.handlers.operator import CheckOper, Rehash
from server.core.handlers.redact import FindMessage
from server.core.history import HistoryRequest, HistoryStale
from server.history.service import HistoryService, ReadSkipped
from server.history.setup import build_history, prune_history
from server.limits import raise_nofile_limit
from server.tasks import spawn
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
    ANSWERED,
    LOGIN_ROUNDS,
    NEW_PASSWORDS,
    WRITTEN_BEHIND,
    AccountTurns,
    AnsweredEffect,
    HistoryReaders,
    NewPasswordEffect,
    Reloader,
    TransportStats,
    Turn,
    WrittenBehind,
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
    read_account_state,
    rehash,
    reload_on_signal,
    restore_bans,
    retry_backlog,
    snapshot,
    start_metrics,
    store_new_password,
    take_account_state,
    write_behind,
    write_history,
)

log = logging.getLogger("chat.server.transport")

TICK_SECONDS = 1.0
PRUNE_INTERVAL = 60.0
CLOSE_GRACE_SECONDS = 10.0  # how long a closing socket may take to drain before abort


class IRCProtocol(asyncio.Protocol):
    __slots__ = ("admission", "conn_id", "grace", "secure", "server", "transport")

    def __init__(
        self, server: AsyncioServer, secure: bool = False, admission: Admission | None = None
    ) -> None:
        self.server = server
        self.secure = secure  # made by the TLS listener: connection_made() after the handshake
        self.admission = admission  # its place among the TLS handshakes in flight
        self.transport: asyncio.Transport | None = None
        self.conn_id = 0
        self.grace: asyncio.TimerHandle | None = None  # aborts a close that does not drain

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.admission is not None:
            # Before core.connect: from here the core counts it, and it must not count
            # twice for an accept that runs before _tls_handshake resumes.
            self.admission.release()
            self.admission = None
        # uvloop's transports are not asyncio.Transport subclasses but quack the same.
        self.transport = cast(asyncio.Transport, transport)
        if not self.secure:  # (a TLS socket's was set before its handshake)
            sock = transport.get_extra_info("socket")
            if sock is not None:
                limit_send_buffer(sock)
        self.conn_id = next(self.server.ids)
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.server.conns[self.conn_id] = self
        client = self.server.core.connect(
            self.conn_id, str(peer[0]), int(peer[1]), secure=self.secure
        )
        if client.closing is not None:
            self.server.schedule_flush()  # refused: send the ERROR and close now

    def data_received(self, data: bytes) -> None:
        server = self.server
        core = server.core
        core.data_received(self.conn_id, data)
        if core.input_waiting(self.conn_id):
            server.pause_reading(self)
        if not server.flush_scheduled:
            server.flush_scheduled = True
            server.loop.call_soon(server.flush)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        server = self.server
        server.conns.pop(self.conn_id, None)
        server.paused.pop(self.conn_id, None)
        server.readers.gone(self.conn_id)
        if self.grace is not None:
            self.grace.cancel()  # closed in time: no timer left behind per connection
            self.grace = None
        reason = "Connection closed" if exc is None else f"Read error: {_describe(exc)}"
        server.core.connection_lost(self.conn_id, reason)
        if server.core.has_work():  # a client that sent QUIT left nothing to send
            server.schedule_flush()


def _describe(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__


class AsyncioServer:
    """Owns the listening socket(s) and drives a ServerCore from one event loop."""

    def __init__(
        self,
        config: ServerConfig,
        loop: asyncio.AbstractEventLoop,
        reloader: Reloader | None = None,
    ) -> None:
        self.config = config
        self.loop = loop
        self.reloader = reloader
        self.stats = TransportStats()
        self.metrics: Any = None
        self.core = ServerCore(config, clock=time.time)
        restore_bans(self.core)
        self.conns: dict[int, IRCProtocol] = {}
        self.ids = itertools.count(1)
        self.flush_scheduled = False
        self._servers: list[asyncio.Server] = []
        self._ticker: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = config.port
        self.tls_port: int | None = config.tls_port  # the bound port once started
        # The TLS port is served by an accept loop of our own (``_accept_tls``), not by
        # create_server(ssl=...): that drops a failed handshake in silence.
        self._tls_listeners: list[socket.socket] = []
        self._accepting: list[asyncio.Task[Any]] = []
        self.tls_gate = HandshakeGate(self.core)
        self.history: HistoryService | None = build_history(config)
        self.readers = HistoryReaders()  # which queued history reads are still wanted
        # Connections not read while their lines wait behind the flood gate (fakelag).
        self.paused: dict[int, IRCProtocol] = {}
        self.accounts = open_account_store(config)
        # Account-store calls, one at a time, in order; stop() lets the queued ones
        # (state written behind) finish.
        self._accounts_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="accounts"
        )
        # Password checks (scrypt: OPER, logins) on a thread of their own, so that state
        # written behind is not queued behind them (a reconnect storm of SASL logins).
        self._password_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="passwords"
        )
        # New passwords (REGISTER, SET PASSWORD) hashed on a thread of their own, so that
        # neither logins nor the store calls wait behind them (ops.AccountTurns).
        self._hash_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="new-passwords"
        )
        self.turns = AccountTurns()  # store calls of an account in the order they came
        self._accounts_closed = False
        load_account_state(self.core, self.accounts)
        end_channels_left_closed(self.core, self.history, self.stats)
        self._next_prune = 0.0
        self.bus: Any = None  # server.cluster.bus.ClusterBus with --cluster
        self.announce_stop = True  # tests: False stops like a crash (no "bye")

    async def start(self) -> int:
        """Listen (plaintext, and TLS when ``config.tls_port`` is set); return the port.

        Raises OSError when a port cannot be bound and TLSConfigError when the
        certificate or key cannot be loaded; nothing is left listening then.
        """
        config = self.config
        tls: ssl.SSLContext | None = None
        if config.tls_port is not None:
            if not config.tls_cert or not config.tls_key:
                raise TLSConfigError("a TLS port needs a certificate and a key")
            tls = server_context(config.tls_cert, config.tls_key)
        try:
            server = await self.loop.create_server(
                lambda: IRCProtocol(self),
                config.host,
                config.port,
                reuse_address=True,
                backlog=1024,
            )
            self._servers.append(server)
            self.port = int(server.sockets[0].getsockname()[1])
            if tls is not None:
                assert config.tls_port is not None
                self._tls_listeners, self.tls_port = bind_listeners(config.host, config.tls_port)
                self.core.sts_port = self.tls_port
        except BaseException:
            for listening in self._servers:
                listening.close()
            self._servers.clear()
            for sock in self._tls_listeners:
                sock.close()
            self._tls_listeners.clear()
            raise
        if tls is not None:
            for sock in self._tls_listeners:
                self._accepting.append(spawn(self._tasks, self._accept_tls(sock, tls), log))
        if config.cluster:
            from server.cluster.bus import ClusterBus

            self.bus = ClusterBus(self.core, config, self.history, self.schedule_flush)
            self.bus.after_subscribe = self._refresh_accounts
            self.bus.start()
        self._tick_due = self.loop.time() + TICK_SECONDS
        self._ticker = self.loop.call_at(self._tick_due, self._tick)
        self.metrics = start_metrics(
            config,
            lambda: snapshot(self.core, self.stats, self.history),
            lambda: self.stats.heartbeat,
        )
        log.info("listening on %s:%d", config.host, self.port)
        if tls is not None:
            log.info("listening for TLS on %s:%d", config.host, self.tls_port)
        return self.port

    def _tick(self) -> None:
        now = self.loop.time()
        self.stats.loop_lag = max(0.0, now - self._tick_due)
        self.stats.heartbeat = time.monotonic()
        self.stats.tls_failures.tick()
        self.tls_gate.expire()
        if self.history is not None:
            check_history_file(self.history)
            retry_backlog(self.core, self.history, self.stats)
        self.core.tick()
        self._resume_reading()
        self.flush()
        if self.history is not None and self.loop.time() >= self._next_prune:
            self._next_prune = self.loop.time() + PRUNE_INTERVAL
            prune_history(self.history, self.config)
        self._tick_due = now + TICK_SECONDS
        self._ticker = self.loop.call_at(self._tick_due, self._tick)
        memory.tick(len(self.core.clients))  # give memory back after a load peak

    def pause_reading(self, conn: IRCProtocol) -> None:
        """Stop reading a client whose lines wait behind its flood gate: what it sends
        meanwhile stays in the kernel, whose full buffer stops the sender."""
        transport = conn.transport
        if transport is not None and not transport.is_closing() and conn.conn_id not in self.paused:
            transport.pause_reading()
            self.paused[conn.conn_id] = conn

    def _resume_reading(self) -> None:
        """Read again from those whose waiting lines have all run (released by the tick)."""
        core = self.core
        for conn_id, conn in list(self.paused.items()):
            if not core.input_waiting(conn_id):
                del self.paused[conn_id]
                transport = conn.transport
                if transport is not None and not transport.is_closing():
                    transport.resume_reading()

    def schedule_flush(self) -> None:
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write every queued byte with one write() per connection, then close the closing."""
        self.flush_scheduled = False
        core = self.core
        sendq = self.config.sendq
        effects = core.take_effects()
        while effects:  # a REHASH answered here releases held lines, which may add more
            self.run_effects(effects)
            effects = core.take_effects()
        pending = core.take_output()
        while pending:
            for client in pending:
                conn = self.conns.get(client.conn_id)
                out = client.out
                if conn is None or conn.transport is None:
                    out.clear()
                    continue
                transport = conn.transport
                if out:
                    data = out[0] if len(out) == 1 else b"".join(out)
                    out.clear()
                    if not transport.is_closing():
                        transport.write(data)
                if client.closing is not None:
                    self.readers.gone(client.conn_id)
                    self._close(conn, abort=transport.get_write_buffer_size() > sendq)
                elif transport.get_write_buffer_size() > sendq:
                    core.sendq_exceeded(client.conn_id)
            # SendQ disconnects queue QUITs for others: deliver them in this tick too.
            pending = core.take_output()

    def run_effects(self, effects: list[Any]) -> None:
        """Group commit: one transaction for the tick's messages, before any byte is sent."""
        if not effects:
            return
        for effect in effects:
            if isinstance(effect, Rehash):
                rehash(self.core, self.reloader, effect)
            elif isinstance(effect, (CheckOper, Login, *ANSWERED, *WRITTEN_BEHIND)):
                self._account_work(effect)
            elif isinstance(effect, SaveBans):  # rare (operators, expiry) and small
                save_bans(self.core.config.ban_file, effect.bans, effect.removed)
        history = self.history
        if history is not None:
            write_history(self.core, history, effects, self.stats)
        if self.bus is not None:
            self.bus.handle(effects)  # after the commit: others may read what we publish
        if history is None:
            return
        if self.bus is not None:  # only cluster events mark windows stale
            stale = [e.target for e in effects if isinstance(e, HistoryStale)]
            if stale:
                history.stale(stale)
        for effect in effects:
            if isinstance(effect, HistoryRequest):
                self._spawn(self._answer(effect))
            elif isinstance(effect, FindMessage):
                self._spawn(self._find(effect))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        spawn(self._tasks, coro, log, self.loop)

    async def _accept_tls(self, listener: socket.socket, tls: ssl.SSLContext) -> None:
        """Accept on the TLS port; each admitted address's handshake runs on its own."""
        while True:
            try:
                sock, addr = await self.loop.sock_accept(listener)
            except OSError as exc:
                # Out of descriptors (EMFILE) or buffers: as asyncio's own listener
                # does, wait a little instead of spinning on the error.
                log.warning("accepting a TLS connection failed: %s", _describe(exc))
                await asyncio.sleep(ACCEPT_RETRY_SECONDS)
                continue
            ip = str(addr[0])
            admission = self.tls_gate.admit(ip)
            if admission is None:
                sock.close()
                continue
            self._spawn(self._tls_handshake(sock, ip, admission, tls))

    async def _tls_handshake(
        self, sock: socket.socket, ip: str, admission: Admission, tls: ssl.SSLContext
    ) -> None:
        """Hand the connection to an ``IRCProtocol`` once its handshake is over (its
        ``connection_made`` then runs); a failure is counted and logged with its reason,
        and a client that spoke plaintext is told so in plaintext."""
        deadline = self.loop.time() + self.config.tls_handshake_timeout
        try:
            first = await self._first_byte(sock, self.config.tls_handshake_timeout)
            if not first:
                self.stats.tls_failures.closed_silently(ip)
                sock.close()
                return
            if first[0] != TLS_RECORD:
                answer_plaintext(sock, not_tls_reply(self.port))
                raise NotTLS
            limit_send_buffer(sock)
            await self.loop.connect_accepted_socket(
                lambda: IRCProtocol(self, secure=True, admission=admission), sock, ssl=tls,
                ssl_handshake_timeout=max(deadline - self.loop.time(), 0.1),
            )
        except asyncio.CancelledError:  # the server is stopping
            sock.close()
            raise
        except Exception as exc:
            self.stats.tls_failures.failed(ip, exc)
            sock.close()  # (a no-op once its transport closed it)
        finally:
            admission.release()  # failed (the core never counted it), or a no-op

    async def _first_byte(self, sock: socket.socket, timeout: float) -> bytes:
        """The client's first byte, left in the socket for the TLS layer to read."""
        ready: asyncio.Future[None] = self.loop.create_future()
        fd = sock.fileno()

        def readable() -> None:
            if not ready.done():
                ready.set_result(None)

        self.loop.add_reader(fd, readable)
        try:
            async with asyncio.timeout(timeout):
                await ready
        finally:
            self.loop.remove_reader(fd)
        return first_byte(sock)

    async def _refresh_accounts(self) -> None:
        """Clustered, after (re)subscribing: what other nodes did while their events
        could not reach us (accounts registered, read markers moved) is in the shared
        store."""
        if self._accounts_closed:
            return
        state = await self.loop.run_in_executor(
            self._accounts_pool, read_account_state, self.accounts
        )
        if state is not None:
            take_account_state(self.core, state)

    def _account_work(
        self, effect: CheckOper | Login | AnsweredEffect | WrittenBehind
    ) -> None:
        """Password checks on the password worker, new passwords hashed on theirs, and
        account-store calls on the ordered account worker, each account's in the order
        they came (``ops.AccountTurns``)."""
        if self._accounts_closed:
            return  # stopping: work submitted now could not run
        if isinstance(effect, WRITTEN_BEHIND):  # nothing waits
            self.loop.run_in_executor(self._accounts_pool, write_behind, self.accounts, effect)
        elif isinstance(effect, CheckOper):
            self._off_loop(effect, self._password_pool, check_oper, effect)
        elif isinstance(effect, Login):
            self._spawn(self._login(effect))
        elif isinstance(effect, NEW_PASSWORDS):
            self._spawn(self._new_password(effect, self.turns.hashing(effect.folded)))
        else:
            self.turns.run(account_key(effect), lambda: self._off_loop(
                effect, self._accounts_pool, answer_account, self.accounts, effect
            ))

    def _off_loop(
        self,
        effect: CheckOper | AnsweredEffect,
        pool: concurrent.futures.ThreadPoolExecutor,
        work: Callable[..., Any],
        *args: Any,
    ) -> None:
        """A password check or an account-store call on a worker thread, submitted now
        (the ordered worker runs them in the order of these calls); the core gets the
        answer back on the loop."""
        self._spawn(self._answer_check(effect, self.loop.run_in_executor(pool, work, *args)))

    async def _answer_check(
        self, effect: CheckOper | AnsweredEffect, work: asyncio.Future[Any]
    ) -> None:
        """Give the core the answer of ``work`` once it is done. Work that raises (a bug)
        is logged and answered as a failed check: the client's held lines must go on."""
        try:
            result = await work
        except Exception as exc:
            log_failed_check(effect, exc)
            result = failed_answer(effect)
        self.core.answered(effect.check_id, result)
        self.schedule_flush()

    async def _new_password(self, effect: NewPasswordEffect, turn: Turn) -> None:
        """A registration's or a password change's password hashed on the new-password
        worker, then its store call on the ordered account worker, in its turn. A hash
        that raises (a bug) is logged and answered as failed, and gives up its turn."""
        try:
            new = await self.loop.run_in_executor(self._hash_pool, hash_new, effect)
        except Exception as exc:
            log_failed_check(effect, exc)
            new = None
        if self._accounts_closed:
            return  # stopping: the ordered worker takes nothing more
        if new is None:
            self.turns.hashed(turn, lambda: None)
            self.core.answered(effect.check_id, failed_answer(effect))
            self.schedule_flush()
            return
        self.turns.hashed(turn, lambda: self._off_loop(
            effect, self._accounts_pool, store_new_password, self.accounts, new, effect
        ))

    async def _in_turn(self, folded: str, work: Callable[..., Any], *args: Any) -> Any:
        """``work(*args)`` on the ordered account worker once the store calls of
        ``folded`` that came before it are there (``ops.AccountTurns``)."""
        submitted: asyncio.Future[asyncio.Future[Any]] = self.loop.create_future()

        def submit() -> None:
            if not submitted.done():  # cancelled: the server is stopping
                submitted.set_result(
                    self.loop.run_in_executor(self._accounts_pool, work, *args)
                )

        self.turns.run(folded, submit)
        return await (await submitted)

    async def _login(self, effect: Login) -> None:
        """A login checked on the password worker and confirmed on the ordered account
        worker (why: the comment above ``ops.LOGIN_ROUNDS``)."""
        name: str | None = None
        try:
            for _ in range(LOGIN_ROUNDS):
                checked = await self.loop.run_in_executor(
                    self._password_pool, check_login, self.accounts, effect
                )
                if await self._in_turn(
                    effect.folded, login_stands, self.accounts, effect, checked
                ):
                    name = checked.name
                    break
        except Exception as exc:  # a bug: as in _off_loop
            log_failed_check(effect, exc)
            name = None
        self.core.answered(effect.check_id, name)
        self.schedule_flush()

    async def _answer(self, request: HistoryRequest) -> None:
        history = self.history
        assert history is not None
        # Asked again on the reader thread just before each read (ops.HistoryReaders).
        wanted = self.readers.wanted(self.core, request.request_id)
        try:
            if wanted is None:
                raise ReadSkipped  # its client is gone already
            if request.search is not None:
                found = await history.search(request.search, wanted)
                self.core.history_ready(request.request_id, rows=found)
            elif request.query is not None:
                rows = await history.query(request.query, wanted)
                self.core.history_ready(request.request_id, rows=rows)
            else:
                targets = await list_targets(history, request, wanted)
                self.core.history_ready(request.request_id, targets=targets)
        except ReadSkipped:  # its client went: the core only forgets the request
            self.core.history_ready(request.request_id, rows=None)
        except Exception:
            log.exception("history request failed")
            self.core.history_ready(request.request_id, rows=None)
        self.schedule_flush()

    async def _find(self, effect: FindMessage) -> None:
        assert self.history is not None
        self.core.answered(effect.check_id, await find_message(self.history, effect))
        self.schedule_flush()

    def _close(self, conn: IRCProtocol, *, abort: bool) -> None:
        transport = conn.transport
        if transport is None or transport.is_closing():
            return
        if abort:
            transport.abort()
            return
        transport.close()
        if not conn.secure and not transport.get_write_buffer_size():
            return  # nothing left to drain: the socket closes at once
        # A peer that stops reading (or a TLS shutdown that never completes) must not
        # hold the socket open forever.
        conn.grace = self.loop.call_later(CLOSE_GRACE_SECONDS, transport.abort)

    async def stop(self, reason: str = "Server shutting down") -> None:
        """Send ERROR to everyone, close every socket, stop listening."""
        if self._ticker is not None:
            self._ticker.cancel()
        if self.metrics is not None:
            self.metrics.stop()
            self.metrics = None
        for server in self._servers:
            server.close()
        for accepting in self._accepting:
            accepting.cancel()
        for sock in self._tls_listeners:
            sock.close()
        self._tls_listeners.clear()
        if self.bus is not None:
            await self.bus.stop(announce=self.announce_stop)
            self.bus = None
        self.core.shutdown(reason)
        self.flush()
        deadline = self.loop.time() + 2.0
        while self.conns and self.loop.time() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self.conns.values()):
            if conn.transport is not None:
                conn.transport.abort()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        for task in list(self._tasks):
            task.cancel()  # TLS handshakes under way too
        if self.history is not None:
            await self.history.close()
            self.history.store.close()
        self._accounts_closed = True
        # Queued checks are dropped: whoever waited for them has been disconnected.
        self._password_pool.shutdown(wait=True, cancel_futures=True)
        self._hash_pool.shutdown(wait=True, cancel_futures=True)
        self._accounts_pool.shutdown(wait=True)
        if self.accounts is not None:
            self.accounts.close()


def new_loop(backend: str) -> asyncio.AbstractEventLoop:
    if backend == "uvloop":
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    return asyncio.new_event_loop()


def uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


async def serve_until_signalled(config: ServerConfig, reloader: Reloader | None = None) -> int:
    import signal

    loop = asyncio.get_running_loop()
    server = AsyncioServer(config, loop, reloader)
    try:
        await server.start()
    except TLSConfigError as exc:
        log.error("cannot start the TLS listener: %s", exc)
        return 1
    except OSError as exc:
        log.error("cannot listen on %s: %s", _addresses(config), _describe(exc))
        return 1
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def on_hup() -> None:
        reload_on_signal(server.core, reloader)
        server.schedule_flush()

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    memory.freeze_startup()  # after the handlers: a SIGTERM meanwhile is a clean stop
    await stop.wait()
    log.info("shutting down")
    await server.stop()
    return 0


def _addresses(config: ServerConfig) -> str:
    if config.tls_port is None:
        return f"{config.host}:{config.port}"
    return f"{config.host}:{config.port} (TLS: {config.tls_port})"


def run(config: ServerConfig, backend: str, reloader: Reloader | None = None) -> int:
    raise_nofile_limit()
    loop = new_loop(backend)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(serve_until_signalled(config, reloader))
    finally:
        loop.close()


__all__ = ["AsyncioServer", "run"]
