"""The selectors loop itself: partial writes, SendQ, FD_SETSIZE, stopping, timers.

The protocol suite runs on this backend through the ``server`` fixture; these tests
look at what only this loop does, with plain blocking sockets on the test side.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import resource
import selectors
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.config import ServerConfig
from server.transport import select_transport
from server.transport.background import BackgroundServer
from server.transport.select_transport import (
    SELECT_FD_LIMIT,
    Connection,
    SelectServer,
)
from tests.conftest import TEST_DEFAULTS

TIMEOUT = 10.0


class RawClient:
    """A blocking line-oriented test client (no asyncio on this side either)."""

    def __init__(self, port: int, *, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.eof = False

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def read_line(self, timeout: float = TIMEOUT) -> str | None:
        """The next line, or None at EOF."""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            if self.eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no line from the server")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode("utf-8", "replace")

    def expect(self, pred: Callable[[str], bool], timeout: float = TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.read_line(max(deadline - time.monotonic(), 0.001))
            if line is None:
                raise ConnectionError("server closed the connection")
            if pred(line):
                return line

    def read_until_eof(self, timeout: float = TIMEOUT) -> list[str]:
        lines: list[str] = []
        while (line := self.read_line(timeout)) is not None:
            lines.append(line)
        return lines

    def register(self, nick: str) -> None:
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick}")
        self.expect(lambda line: f" 376 {nick} " in line or f" 422 {nick} " in line)

    def join(self, channel: str) -> None:
        self.send(f"JOIN {channel}")
        self.expect(lambda line: " 366 " in line)

    def sync(self) -> None:
        self.send("PING :sync")
        self.expect(lambda line: " PONG " in line and line.endswith("sync"))

    def close(self) -> None:
        self.sock.close()


def wait_for(cond: Callable[[], bool], timeout: float = TIMEOUT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Running:
    def __init__(self, server: SelectServer) -> None:
        self.server = server
        self.port = server.listen()
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.clients: list[RawClient] = []

    def client(self, nick: str | None = None, **kwargs: Any) -> RawClient:
        c = RawClient(self.port, **kwargs)
        self.clients.append(c)
        if nick is not None:
            c.register(nick)
        return c

    def conn_of(self, nick: str) -> Connection:
        core = self.server.core
        client = next(c for c in list(core.clients.values()) if c.nick == nick)
        return self.server.conns[client.conn_id]

    def stop(self) -> None:
        self.server.request_stop()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()
        for c in self.clients:
            c.close()


@contextlib.contextmanager
def running(server: SelectServer) -> Iterator[Running]:
    r = Running(server)
    r.thread.start()
    try:
        yield r
    finally:
        r.stop()


def config(**kwargs: Any) -> ServerConfig:
    base: dict[str, Any] = {
        "name": "test.server", "host": "127.0.0.1", "port": 0, "db": "", "ban_file": "",
        **TEST_DEFAULTS,
    }
    base.update(kwargs)
    return ServerConfig(**base)


class RecordingServer(SelectServer):
    """Tiny kernel send buffers, and a record of every send() attempt per flush."""

    sndbuf = 4096

    def __init__(self, cfg: ServerConfig) -> None:
        super().__init__(cfg)
        self.sends: list[tuple[int, int]] = []  # (flush serial, conn id)

    def _new_connection(self, sock: socket.socket, addr: Any) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
        super()._new_connection(sock, addr)

    def _send(self, conn: Connection, serial: int) -> None:
        self.sends.append((serial, conn.conn_id))
        super()._send(conn, serial)

    def _send_bytes(self, conn: Connection, data: bytes, serial: int) -> None:
        self.sends.append((serial, conn.conn_id))
        super()._send_bytes(conn, data, serial)


# ---------------------------------------------------------------------- selector choice


def test_select_impl_chooses_the_selector() -> None:
    auto = SelectServer(config())
    plain = SelectServer(config(select_impl="select"))
    try:
        assert isinstance(plain.selector, selectors.SelectSelector)
        assert plain.max_fd == SELECT_FD_LIMIT
        if sys.platform == "linux":
            assert isinstance(auto.selector, selectors.EpollSelector)
            assert auto.max_fd is None
    finally:
        auto.close()
        plain.close()
    with pytest.raises(ValueError, match="select_impl"):
        SelectServer(config(select_impl="epoll-please"))


def test_metrics_answer_once_listen_returns() -> None:
    """A supervisor (or the test harness) that polls /health as soon as the port
    listens was refused: the select backend started the HTTP server in serve_forever."""
    from tests.net import free_port
    from tests.server.test_operations import scrape

    port = free_port()
    server = SelectServer(config(metrics_host="127.0.0.1", metrics_port=port))
    try:
        server.listen()  # (serve_forever never runs here)
        assert scrape(port, "/healthz") == (200, "ok\n")
    finally:
        server.close()
    with pytest.raises(OSError):  # and close() stopped it
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


# ---------------------------------------------------------------------- writes


@pytest.mark.parametrize("impl", ["auto", "select"])
def test_partial_writes_are_buffered_in_order_and_write_interest_is_dropped(impl: str) -> None:
    server = RecordingServer(config(select_impl=impl))
    with running(server) as r:
        talker = r.client("talker")
        reader = r.client("reader", rcvbuf=4096)
        talker.join("#c")
        reader.join("#c")
        talker.sync()
        count, payload = 1000, "z" * 400
        for n in range(count):
            talker.send(f"PRIVMSG #c :{n} {payload}")
        talker.sync()
        # ~420 KB into a 256 KB send buffer (ops.SEND_BUFFER) and a 4 KB receive buffer
        # that nobody reads:
        # the rest waits in the connection's own buffer, with EVENT_WRITE registered.
        conn = r.conn_of("reader")
        wait_for(lambda: len(conn.wbuf) > 0, what="a partial write")
        assert conn.events & selectors.EVENT_WRITE
        got = [
            int(reader.expect(lambda line: " PRIVMSG #c :" in line).split(":", 2)[2].split()[0])
            for _ in range(count)
        ]
        assert got == list(range(count))
        reader.sync()
        wait_for(lambda: not conn.wbuf and conn.events == selectors.EVENT_READ, what="drain")
        # Coalescing: never two send() calls for one connection in one flush.
        sends = list(server.sends)
        assert len(sends) == len(set(sends))
        reader_sends = [s for s in sends if s[1] == conn.conn_id]
        assert len(reader_sends) < count  # many messages per send()


def test_sendq_exceeded_aborts_and_the_core_forgets_the_client() -> None:
    server = RecordingServer(config(sendq=16 * 1024))
    with running(server) as r:
        talker = r.client("talker")
        watcher = r.client("watcher")
        slow = r.client("slow", rcvbuf=4096)
        for c in (talker, watcher, slow):
            c.join("#flood")
        watcher.sync()
        slow_id = r.conn_of("slow").conn_id
        payload = "q" * 400
        sent = 0
        while slow_id in server.conns and sent < 20_000:
            for _ in range(100):
                talker.send(f"PRIVMSG #flood :{sent} {payload}")
                sent += 1
            talker.sync()
        line = watcher.expect(lambda line: line.startswith(":slow!") and " QUIT " in line)
        assert line.endswith(":SendQ exceeded")
        wait_for(lambda: slow_id not in server.core.clients, what="the core to forget slow")
        # The slow client's socket was closed (after whatever the kernel had buffered).
        slow.sock.settimeout(TIMEOUT)
        with contextlib.suppress(ConnectionResetError):
            while slow.sock.recv(65536):
                pass
        # Everyone else is unaffected.
        talker.sync()
        watcher.sync()


def test_closing_socket_whose_peer_does_not_read_is_aborted_after_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(select_transport, "CLOSE_GRACE_SECONDS", 1.0)
    server = RecordingServer(config())
    with running(server) as r:
        talker = r.client("talker")
        stuck = r.client("stuck", rcvbuf=4096)
        talker.join("#c")
        stuck.join("#c")
        talker.sync()
        for n in range(1000):  # past the 256 KB kernel send buffer (ops.SEND_BUFFER)
            talker.send(f"PRIVMSG #c :{n} " + "w" * 400)
        talker.sync()
        conn = r.conn_of("stuck")
        wait_for(lambda: len(conn.wbuf) > 0, what="a backlog")
        stuck.send("QUIT :bye")  # the core closes it; the backlog cannot drain
        talker.expect(lambda line: line.startswith(":stuck!") and " QUIT " in line)
        wait_for(lambda: conn.closing, what="closing")
        assert not conn.closed
        wait_for(lambda: conn.closed, timeout=5, what="the grace period to end")
        # The loop thread forgets the connection just after marking it closed.
        wait_for(
            lambda: conn.conn_id not in server.conns and conn.conn_id not in server.core.clients,
            timeout=5,
            what="the connection to be forgotten",
        )


# ---------------------------------------------------------------------- FD_SETSIZE


def test_plain_select_refuses_descriptors_past_the_limit_cleanly() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = SELECT_FD_LIMIT + 64
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip("RLIMIT_NOFILE too low to reach FD_SETSIZE")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    server = SelectServer(config(select_impl="select"))
    fillers: list[int] = []
    try:
        with running(server) as r:
            early = r.client("early")
            early.join("#c")
            # Push every free descriptor number up to the limit.
            while not fillers or fillers[-1] < SELECT_FD_LIMIT + 8:
                fillers.append(os.open(os.devnull, os.O_RDONLY))
            late = r.client()
            assert late.read_until_eof() == ["ERROR :Server is full"]
            # The loop survived: the early client is still served.
            early.sync()
            assert len(server.conns) == 1
            for fd in fillers:
                os.close(fd)
            fillers.clear()
            again = r.client("again")
            again.join("#c")
            early.expect(lambda line: line.startswith(":again!") and " JOIN " in line)
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_lowered_fd_limit_refuses_with_error(monkeypatch: pytest.MonkeyPatch) -> None:
    server = SelectServer(config(select_impl="select"))
    with running(server) as r:
        first = r.client("first")
        server.max_fd = 0  # every further descriptor is "too high"
        refused = r.client()
        assert refused.read_until_eof() == ["ERROR :Server is full"]
        first.sync()
        assert first.sock.fileno() != -1


# ---------------------------------------------------------------------- stopping


def test_request_stop_from_another_thread_shuts_down_gracefully() -> None:
    server = SelectServer(config())
    r = Running(server)
    r.thread.start()
    a = r.client("alice")
    b = r.client("bob")
    a.join("#c")
    b.join("#c")
    a.sync()
    stopper = threading.Thread(target=server.request_stop)
    stopper.start()
    stopper.join()
    r.thread.join(TIMEOUT)  # a deadline, not a timing claim
    assert not r.thread.is_alive()
    for c in (a, b):
        lines = c.read_until_eof()
        assert lines[-1] == "ERROR :Closing Link: 127.0.0.1 (Server shutting down)"
        # An ERROR each, not a storm of QUITs.
        assert not any(" QUIT " in line for line in lines)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", r.port), timeout=1).close()
    assert not server.conns and not server.core.clients
    r.stop()


def test_request_stop_before_serving_returns_promptly() -> None:
    server = SelectServer(config())
    server.listen()
    server.request_stop()
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    serving.join(TIMEOUT)  # a stop requested before serving ends it at once, not never
    assert not serving.is_alive()
    server.request_stop()  # harmless once closed


def test_run_returns_1_when_it_cannot_listen() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert select_transport.run(config(port=port)) == 1


# ---------------------------------------------------------------------- timers


def test_ticks_once_a_second_without_busy_looping() -> None:
    server = SelectServer(config())
    ticks: list[float] = []
    selects: list[float | None] = []
    real_tick = server.core.tick
    real_select = server.selector.select

    def tick() -> None:
        ticks.append(time.monotonic())
        real_tick()

    def select(timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        selects.append(timeout)
        return real_select(timeout)

    server.core.tick = tick  # type: ignore[method-assign]
    server.selector.select = select  # type: ignore[method-assign]
    with running(server):
        time.sleep(2.6)
    assert 2 <= len(ticks) <= 3
    assert all(0.8 < b - a < 1.5 for a, b in itertools.pairwise(ticks))
    # Idle: about one wake-up per tick (plus the stop), not a spin.
    assert len(selects) <= 8
    assert all(t is None or t > 0.5 for t in selects[:2])


def test_registration_timeout_is_driven_by_the_tick() -> None:
    server = SelectServer(config(registration_timeout=1.0))
    with running(server) as r:
        lazy = r.client()
        lines = lazy.read_until_eof(timeout=5)
        assert lines[-1] == "ERROR :Closing Link: 127.0.0.1 (Registration timeout)"
        wait_for(lambda: not server.core.clients, what="the core to forget the client")


# ---------------------------------------------------------------------- parity


def _background(backend: str) -> tuple[BackgroundServer, int]:
    handle = BackgroundServer(config(), backend)
    return handle, handle.start()


@pytest.mark.parametrize("backend", ["asyncio", "select"])
def test_peer_reset_is_reported_like_asyncio(backend: str) -> None:
    handle, port = _background(backend)
    try:
        watcher = RawClient(port)
        watcher.register("watcher")
        watcher.join("#c")
        rude = RawClient(port)
        rude.register("rude")
        rude.join("#c")
        watcher.expect(lambda line: line.startswith(":rude!") and " JOIN " in line)
        rude.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        rude.close()  # RST
        line = watcher.expect(lambda line: line.startswith(":rude!") and " QUIT " in line)
        assert line.endswith(":Read error: Connection reset by peer")
        watcher.close()
    finally:
        handle.stop()


@pytest.mark.parametrize("backend", ["asyncio", "select"])
def test_half_closed_client_still_gets_its_replies(backend: str) -> None:
    handle, port = _background(backend)
    try:
        watcher = RawClient(port)
        watcher.register("watcher")
        watcher.join("#c")
        half = RawClient(port)
        half.send("NICK half")
        half.send("USER half 0 * :half")
        half.send("JOIN #c")
        half.sock.shutdown(socket.SHUT_WR)
        lines = half.read_until_eof()
        assert any(" 001 half " in line for line in lines)
        assert any(line.startswith(":half!") and " JOIN " in line for line in lines)
        line = watcher.expect(lambda line: line.startswith(":half!") and " QUIT " in line)
        assert line.endswith(":Connection closed")
        watcher.close()
    finally:
        handle.stop()


@pytest.mark.parametrize("impl", ["auto", "select"])
def test_garbage_and_abrupt_clients_do_not_hurt_the_loop(impl: str) -> None:
    server = SelectServer(config(select_impl=impl))
    with running(server) as r:
        good = r.client("good")
        for n in range(20):
            junk = RawClient(r.port)
            junk.sock.sendall(bytes(range(256)) * (n + 1) + b"\r\n\xff\xfe\x00\r\n")
            if n % 2:
                junk.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            junk.close()
        good.sync()
        wait_for(lambda: len(server.conns) == 1, what="the junk connections to go")
        assert len(server.core.clients) == 1


# ---------------------------------------------------------------------- history effects


def test_history_runs_on_a_worker_thread_and_answers_through_the_socketpair(
    tmp_path: Path,
) -> None:
    server = SelectServer(config(db=str(tmp_path / "history.db"), history_playback=0))
    with running(server) as r:
        writer = r.client("writer")
        writer.join("#h")
        for n in range(5):
            writer.send(f"PRIVMSG #h :line {n}")
        writer.sync()
        reader = r.client()
        reader.send("CAP LS 302")
        reader.send("CAP REQ :batch server-time message-tags draft/chathistory")
        reader.expect(lambda line: " ACK " in line)
        reader.send("CAP END")
        reader.register("reader")
        reader.send("CHATHISTORY LATEST #h * 10")
        lines: list[str] = []
        while True:
            line = reader.expect(lambda line: " PRIVMSG " in line or " BATCH -" in line)
            if " BATCH -" in line:
                break
            lines.append(line.rsplit(":", 1)[1])
        assert lines == [f"line {n}" for n in range(5)]
        worker = server._history_worker
        assert worker is not None and worker._thread is not None
        assert worker._thread.is_alive()
    assert not worker._thread.is_alive()
