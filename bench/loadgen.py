"""IRC load generator over loopback, built to cost less per line than the server.

Modes (``--mode``):

traffic  register ``--clients`` clients, spread them over ``--rooms`` channels
         (client i joins room i % rooms), then the first ``--senders`` clients
         send PRIVMSG to their room, ``--rate`` messages/s each (0 = as fast as
         flow control allows) for ``--warmup`` + ``--duration`` seconds.
idle     register ``--clients`` clients and hold them: server RSS per connection.
connect  ``--concurrency`` workers connect, register and QUIT in a loop:
         registrations per second.

Cheap receiving: a plain ``asyncio.Protocol`` counts the lines of each raw chunk
with ``bytes.count(b"\\n")``; only the sampled receivers (``--samplers`` per
room) split and parse their lines, to take end-to-end latency from the send
timestamp and sequence number that every message carries:

    PRIVMSG #room :<sender id> <seq> <perf_counter_ns at send> xxxx...

With ``--rate 0`` a sender keeps at most ``--window`` messages unacknowledged,
where acknowledged means seen by the room's first sampled receiver, and also
stops while its transport's write buffer is above the high-water mark. So the
load saturates the server without piling megabytes into socket buffers.

Server CPU seconds for the measured window come from utime+stime in
/proc/PID/stat (``--server-pid``), RSS from VmRSS in /proc/PID/status.

Every phase has a deadline and the process exits by itself (a SIGALRM backstop
ends it if something still hangs). Only loopback addresses are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

# Connection modes: what data_received does with a chunk.
SETUP = 0  # split and interpret every line (registration, JOIN, PING)
COUNT = 1  # count newlines only; answer PING
SAMPLE = 2  # split and parse every line: latency, gaps, acknowledgements

NEVER = 1 << 62
MAX_BATCH = 256  # messages per write() from one sender
PAD = b"x" * 65536
WRITE_HIGH_WATER = 64 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

REGISTER_FAIL = frozenset({b"431", b"432", b"433", b"436", b"437", b"464", b"465", b"ERROR"})
JOIN_FAIL = frozenset({b"403", b"405", b"471", b"473", b"474", b"475", b"476", b"477"})
# The commands _control acts on outside SAMPLE mode; other lines are skipped unparsed.
CONTROL = REGISTER_FAIL | JOIN_FAIL | {b"PING", b"001", b"366"}


# --------------------------------------------------------------------- /proc helpers


def proc_cpu_times(pid: int | None) -> tuple[float, float] | None:
    """(utime, stime) of process ``pid`` in seconds (all its threads), or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after ')' do not.
    fields = stat[stat.rfind(b")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def proc_cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of process ``pid`` in seconds, or None."""
    times = proc_cpu_times(pid)
    return None if times is None else times[0] + times[1]


def proc_rss_kb(pid: int | None) -> int | None:
    """VmRSS of process ``pid`` in KiB, or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores spent busy since boot (/proc/stat), or None."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != b"cpu":
        return None
    ticks = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4] - ticks[7]) / CLK_TCK


def raise_nofile(needed: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE towards the hard limit; return (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = want
    return soft, hard


def percentile(sorted_values: list[int], p: float) -> int:
    """Nearest-rank percentile of an ascending list (p in 0..100)."""
    if not sorted_values:
        return 0
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil
    return sorted_values[min(len(sorted_values), int(rank)) - 1]


def latency_summary(samples_ns: list[int]) -> dict[str, Any]:
    values = sorted(samples_ns)
    ms = 1e-6
    return {
        "samples": len(values),
        "p50_ms": round(percentile(values, 50) * ms, 3),
        "p90_ms": round(percentile(values, 90) * ms, 3),
        "p99_ms": round(percentile(values, 99) * ms, 3),
        "max_ms": round((values[-1] if values else 0) * ms, 3),
    }


def split_line(line: bytes) -> tuple[bytes, list[bytes]]:
    """(command, params) of one IRC line; tags and source are skipped."""
    line = line.rstrip(b"\r")
    if line.startswith(b"@"):
        line = line.partition(b" ")[2].lstrip(b" ")
    if line.startswith(b":"):
        line = line.partition(b" ")[2].lstrip(b" ")
    head, sep, trailing = line.partition(b" :")
    params = head.split()
    if not params:
        return b"", []
    if sep:
        params.append(trailing)
    return params[0].upper(), params[1:]


# --------------------------------------------------------------------- options


@dataclass
class Options:
    host: str = "127.0.0.1"
    port: int = 6667
    mode: str = "traffic"
    clients: int = 200
    rooms: int = 1
    senders: int = 10
    rate: float = 0.0
    duration: float = 10.0
    warmup: float = 2.0
    size: int = 64
    window: int = 200
    samplers: int = 1
    concurrency: int = 100
    server_pid: int | None = None
    setup_timeout: float = 120.0
    drain: float = 5.0
    settle: float = 0.5
    prefix: str = ""
    loop: str = "auto"
    json: bool = False

    def deadline_seconds(self) -> float:
        """An upper bound on the whole run, for the SIGALRM backstop and callers."""
        setup = 2 * self.setup_timeout if self.mode == "traffic" else self.setup_timeout
        return setup + self.warmup + self.duration + self.drain + self.settle + 30.0


def build_parser() -> argparse.ArgumentParser:
    d = Options()
    p = argparse.ArgumentParser(
        prog="python -m bench.loadgen",
        description="IRC load generator (loopback only).",
    )
    p.add_argument("--host", default=d.host, help="server address; must be loopback")
    p.add_argument("--port", type=int, default=d.port)
    p.add_argument("--mode", choices=("traffic", "idle", "connect"), default=d.mode)
    p.add_argument("--clients", type=int, default=d.clients, help="connections to open")
    p.add_argument("--rooms", type=int, default=d.rooms, help="channels to spread clients over")
    p.add_argument("--senders", type=int, default=d.senders, help="clients that send PRIVMSG")
    p.add_argument(
        "--rate", type=float, default=d.rate, help="messages/s per sender; 0 = max (flow control)"
    )
    p.add_argument("--duration", type=float, default=d.duration, help="measured seconds")
    p.add_argument("--warmup", type=float, default=d.warmup, help="unmeasured seconds before")
    p.add_argument("--size", type=int, default=d.size, help="PRIVMSG payload bytes (>= 40)")
    p.add_argument(
        "--window", type=int, default=d.window, help="max unacknowledged messages per sender"
    )
    p.add_argument(
        "--samplers", type=int, default=d.samplers, help="parsing receivers per room (latency)"
    )
    p.add_argument(
        "--concurrency", type=int, default=d.concurrency, help="registrations in flight at once"
    )
    p.add_argument("--server-pid", type=int, default=None, help="server PID for CPU/RSS")
    p.add_argument("--setup-timeout", type=float, default=d.setup_timeout)
    p.add_argument("--drain", type=float, default=d.drain, help="max seconds to await stragglers")
    p.add_argument("--settle", type=float, default=d.settle, help="pause between phases")
    p.add_argument("--prefix", default=d.prefix, help="nick/channel prefix (default: from pid)")
    p.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default=d.loop)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def parse_options(argv: list[str] | None = None) -> Options:
    parser = build_parser()
    ns = parser.parse_args(argv)
    opts = Options(**{k: v for k, v in vars(ns).items()})
    try:
        addr = ipaddress.ip_address(socket.gethostbyname(opts.host))
    except (OSError, ValueError):
        parser.error(f"cannot resolve --host {opts.host!r}")
    if not addr.is_loopback:
        parser.error("--host must be a loopback address")
    if opts.clients < 1 or opts.rooms < 1 or opts.rooms > opts.clients:
        parser.error("need clients >= rooms >= 1")
    if opts.senders < 0 or opts.senders > opts.clients:
        parser.error("need 0 <= senders <= clients")
    if opts.size < 40 or opts.size > 400:
        parser.error("--size must be within 40..400")
    if opts.window < 1 or opts.concurrency < 1 or opts.samplers < 0:
        parser.error("--window and --concurrency must be >= 1, --samplers >= 0")
    if min(opts.duration, opts.warmup, opts.drain, opts.settle) < 0 or opts.setup_timeout <= 0:
        parser.error("times must be non-negative")
    if not opts.prefix:
        opts.prefix = f"g{os.getpid() % 10000}x"
    return opts


# --------------------------------------------------------------------- protocol


class Conn(asyncio.Protocol):
    """One IRC client connection."""

    def __init__(self, gen: Generator, index: int, nick: str) -> None:
        self.gen = gen
        self.index = index
        self.nick = nick
        self.transport: asyncio.Transport | None = None
        self.mode = SETUP
        self.lines = 0
        self.pings = 0
        self.other = 0  # non-PRIVMSG lines seen while sampling
        self.buf = b""  # partial line (SETUP/SAMPLE)
        self.tail = b""  # partial line (COUNT), only to spot a PING split over chunks
        self.paused = False
        self.room: Room | None = None
        self.sender: Sender | None = None
        self.acker = False
        self.next_seq: dict[int, int] = {}
        self.gaps = 0
        self.reorders = 0
        self.error: str | None = None
        loop = gen.loop
        self.registered: asyncio.Future[None] = loop.create_future()
        self.joined: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t = cast(asyncio.Transport, transport)
        self.transport = t
        t.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        n = self.nick.encode()
        t.write(b"NICK " + n + b"\r\nUSER " + n + b" 0 * :bench\r\n")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.error is None:
            self.error = "closed by server" if exc is None else f"lost: {exc!r}"
        for fut in (self.registered, self.joined):
            if not fut.done():
                fut.set_exception(ConnectionError(self.error))
                fut.exception()  # mark retrieved: nobody may be waiting
        if not self.closed.done():
            self.closed.set_result(None)
        self.gen.lost_connection(self)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.sender is not None:
            self.sender.pump()

    def data_received(self, data: bytes) -> None:
        if self.mode == COUNT:  # the hot path
            self.lines += data.count(b"\n")
            if b"PING" in data or self.tail[:1] == b"P":
                self._pings(data)
            i = data.rfind(b"\n")
            self.tail = data[i + 1 :] if i >= 0 else self.tail + data
            return
        buf = self.buf + data if self.buf else data
        lines = buf.split(b"\n")
        self.buf = lines.pop()
        if self.mode == SAMPLE:
            self.lines += len(lines)
            self._sample(lines)
        else:
            for line in lines:
                if line[:1] == b":":  # a server's line: look at its command only
                    start = line.find(b" ") + 1
                    end = line.find(b" ", start)
                    if line[start : end if end > 0 else None].rstrip(b"\r") not in CONTROL:
                        continue  # most of a registration burst: no split_line for it
                self._control(line)

    # line handling

    def _pings(self, data: bytes) -> None:
        for line in (self.tail + data).split(b"\n")[:-1]:
            if line.startswith(b"PING") or b" PING " in line[:80]:
                self._control(line)

    def _control(self, line: bytes) -> None:
        command, params = split_line(line)
        if command == b"PING":
            self.pings += 1
            self.write(b"PONG :" + (params[-1] if params else b"x") + b"\r\n")
        elif command == b"001":
            if not self.registered.done():
                self.registered.set_result(None)
        elif command == b"366":
            if not self.joined.done():
                self.joined.set_result(None)
        elif command in REGISTER_FAIL and not self.registered.done():
            self.error = line.rstrip(b"\r").decode("utf-8", "replace")
            self.registered.set_exception(ConnectionError(self.error))
        elif command in JOIN_FAIL and not self.joined.done():
            self.error = line.rstrip(b"\r").decode("utf-8", "replace")
            self.joined.set_exception(ConnectionError(self.error))
        elif self.mode == SAMPLE:
            self.other += 1

    def _sample(self, lines: list[bytes]) -> None:
        now = time.perf_counter_ns()
        gen = self.gen
        lo = gen.lat_lo
        hi = gen.lat_hi
        latencies = gen.latencies
        next_seq = self.next_seq
        senders = gen.senders
        for line in lines:
            p = line.find(b" PRIVMSG ")
            if p < 0:
                self._control(line)
                continue
            q = line.find(b" :", p + 9)
            try:
                f = line[q + 2 :].split(b" ", 3)
                sid = int(f[0])
                seq = int(f[1])
                ts = int(f[2])
            except (ValueError, IndexError):
                self.other += 1
                continue
            if lo <= ts <= hi:
                latencies.append(now - ts)
            expected = next_seq.get(sid, 0)
            if seq == expected:
                next_seq[sid] = seq + 1
            elif seq > expected:
                self.gaps += seq - expected
                next_seq[sid] = seq + 1
            else:
                self.reorders += 1
            if self.acker and sid < len(senders):
                sender = senders[sid]
                if seq >= sender.acked:
                    sender.acknowledge(seq)

    # actions

    def write(self, data: bytes) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(data)

    def quit(self) -> None:
        self.write(b"QUIT :bench done\r\n")
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


@dataclass
class Room:
    name: bytes
    size: int = 0


class Sender:
    """Sends PRIVMSG to one room: paced (rate > 0) or flow-controlled (rate 0)."""

    def __init__(self, gen: Generator, conn: Conn, sid: int, room: Room) -> None:
        self.gen = gen
        self.conn = conn
        self.sid = sid
        self.room = room
        self.prefix = b"PRIVMSG " + room.name + b" :"
        self.size = gen.opts.size
        self.window = gen.opts.window
        self.low_water = max(1, self.window // 4)
        self.rate = gen.opts.rate
        self.seq = 0
        self.acked = 0
        self.blocked = False
        self.sending = False
        self.t0 = 0.0
        self.handle: asyncio.TimerHandle | None = None

    def start(self, t0: float) -> None:
        self.sending = True
        self.conn.sender = self
        if self.rate > 0:
            # Spread the senders' phases over one period.
            self.t0 = t0 + (self.sid * 0.618034 % 1.0) / self.rate
            self.handle = self.gen.loop.call_at(self.t0, self.tick)
        else:
            self.pump()

    def stop(self) -> None:
        self.sending = False
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def pump(self) -> None:
        """Max-rate mode: fill the window, then wait for acknowledgements."""
        if not self.sending or self.rate > 0:
            return
        free = self.window - (self.seq - self.acked)
        self.blocked = True  # the acker or resume_writing() calls pump() again
        if free <= 0 or self.conn.paused:
            return
        self.send(min(free, MAX_BATCH))
        if free > MAX_BATCH:
            self.gen.loop.call_soon(self.pump)

    def acknowledge(self, seq: int) -> None:
        """The room's acker saw message ``seq``; pump once a quarter window is free."""
        self.acked = seq + 1
        if self.blocked and self.window - (self.seq - self.acked) >= self.low_water:
            self.blocked = False
            self.pump()

    def tick(self) -> None:
        """Paced mode: send what is due by now (bounded by the window), re-arm."""
        if not self.sending:
            return
        loop = self.gen.loop
        now = loop.time()
        due = int((now - self.t0) * self.rate) + 1 - self.seq
        if due > 0:
            n = min(due, self.window - (self.seq - self.acked), MAX_BATCH)
            if n > 0 and not self.conn.paused:
                self.send(n)
        at = self.t0 + self.seq / self.rate
        self.handle = loop.call_at(max(at, now + 0.001), self.tick)

    def send(self, n: int) -> None:
        ts = time.perf_counter_ns()
        sid = self.sid
        seq = self.seq
        size = self.size
        prefix = self.prefix
        parts = []
        for s in range(seq, seq + n):
            head = b"%d %d %d " % (sid, s, ts)
            parts.append(prefix + head + PAD[: size - len(head)] + b"\r\n")
        self.seq = seq + n
        self.conn.write(b"".join(parts))


# --------------------------------------------------------------------- generator


@dataclass
class Snapshot:
    t: float
    lines: int
    pings: int
    sent: int
    expected: int
    server_cpu: float | None
    server_sys: float | None
    gen_cpu: float
    machine_busy: float | None


def others_cpu_pct(a: Snapshot, b: Snapshot) -> float | None:
    """CPU % (of one core) used by processes other than the server and this generator."""
    if a.machine_busy is None or b.machine_busy is None:
        return None
    busy = b.machine_busy - a.machine_busy
    ours = (cpu_delta(a, b) or 0.0) + (b.gen_cpu - a.gen_cpu)
    return round(100 * max(0.0, busy - ours) / (b.t - a.t), 1)


def sys_pct(a: Snapshot, b: Snapshot) -> float | None:
    """Server system (kernel) CPU % of one core between two snapshots."""
    if a.server_sys is None or b.server_sys is None:
        return None
    return round(100 * (b.server_sys - a.server_sys) / (b.t - a.t), 1)


def cpu_delta(a: Snapshot, b: Snapshot) -> float | None:
    """Server CPU seconds between two snapshots, or None without a server PID."""
    if a.server_cpu is None or b.server_cpu is None:
        return None
    return b.server_cpu - a.server_cpu


class Generator:
    def __init__(self, opts: Options, loop: asyncio.AbstractEventLoop) -> None:
        self.opts = opts
        self.loop = loop
        self.conns: list[Conn] = []
        self.rooms: list[Room] = []
        self.senders: list[Sender] = []
        self.latencies: list[int] = []
        self.lat_lo = NEVER
        self.lat_hi = NEVER
        self.disconnects = 0
        self.expect_open = False
        self.errors: list[str] = []
        self.nick_seq = 0

    def lost_connection(self, conn: Conn) -> None:
        if self.expect_open:
            self.disconnects += 1
            if len(self.errors) < 10:
                self.errors.append(f"{conn.nick}: {conn.error}")

    def new_conn(self) -> Conn:
        conn = Conn(self, self.nick_seq, f"{self.opts.prefix}{self.nick_seq}")
        self.nick_seq += 1
        return conn

    async def connect(self, conn: Conn) -> None:
        o = self.opts
        await self.loop.create_connection(lambda: conn, o.host, o.port)
        await conn.registered

    async def open_clients(self, n: int) -> tuple[list[Conn], float]:
        """Open and register ``n`` clients, ``concurrency`` at a time; (conns, seconds)."""
        sem = asyncio.Semaphore(self.opts.concurrency)
        conns = [self.new_conn() for _ in range(n)]

        async def one(conn: Conn) -> None:
            async with sem:
                await self.connect(conn)

        t0 = time.perf_counter()
        await self._all([one(c) for c in conns], conns, "registration")
        return conns, time.perf_counter() - t0

    async def _all(
        self, coros: list[Coroutine[Any, Any, None]], conns: list[Conn], what: str
    ) -> None:
        tasks = [asyncio.ensure_future(c) for c in coros]
        try:
            async with asyncio.timeout(self.opts.setup_timeout):
                results = await asyncio.gather(*tasks, return_exceptions=True)
        except TimeoutError:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            done = sum(1 for t in tasks if t.done() and not t.cancelled() and not t.exception())
            self.close_all(conns)
            raise RuntimeError(
                f"{what} timed out after {self.opts.setup_timeout:.0f}s ({done}/{len(tasks)} done)"
            ) from None
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            self.close_all(conns)
            raise RuntimeError(
                f"{what}: {len(failures)}/{len(tasks)} failed, first: {failures[0]!r}"
            )

    def close_all(self, conns: list[Conn]) -> None:
        self.expect_open = False
        for c in conns:
            c.abort()

    async def shutdown(self, conns: list[Conn], grace: float = 3.0) -> None:
        self.expect_open = False
        for c in conns:
            c.quit()
        pending = [c.closed for c in conns if not c.closed.done()]
        if pending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await asyncio.gather(*pending, return_exceptions=True)
        for c in conns:
            if not c.closed.done():
                c.abort()
        await asyncio.sleep(0)

    def snapshot(self) -> Snapshot:
        times = proc_cpu_times(self.opts.server_pid)
        return Snapshot(
            t=time.perf_counter(),
            lines=sum(c.lines for c in self.conns),
            pings=sum(c.pings for c in self.conns),
            sent=sum(s.seq for s in self.senders),
            expected=sum(s.seq * (s.room.size - 1) for s in self.senders),
            server_cpu=None if times is None else times[0] + times[1],
            server_sys=None if times is None else times[1],
            gen_cpu=time.process_time(),
            machine_busy=machine_busy_seconds(),
        )

    # ----------------------------------------------------------------- traffic

    async def run_traffic(self) -> dict[str, Any]:
        o = self.opts
        self.rooms = [Room(f"#{o.prefix}{r}".encode()) for r in range(o.rooms)]
        rss_before = proc_rss_kb(o.server_pid)
        self.expect_open = True
        conns, reg_seconds = await self.open_clients(o.clients)
        self.conns = conns

        # Assign rooms, senders and samplers; join.
        for i, c in enumerate(conns):
            c.room = self.rooms[i % o.rooms]
            c.room.size += 1
        per_room = [0] * o.rooms
        sampler: set[int] = set()
        for i, c in enumerate(conns):
            assert c.room is not None
            if i < o.senders:
                self.senders.append(Sender(self, c, i, c.room))
            elif per_room[i % o.rooms] < o.samplers:
                c.acker = per_room[i % o.rooms] == 0
                per_room[i % o.rooms] += 1
                sampler.add(i)

        sem = asyncio.Semaphore(o.concurrency)

        async def join(c: Conn) -> None:
            async with sem:
                assert c.room is not None
                c.write(b"JOIN " + c.room.name + b"\r\n")
                await c.joined

        t0 = time.perf_counter()
        await self._all([join(c) for c in conns], conns, "join")
        join_seconds = time.perf_counter() - t0
        await asyncio.sleep(o.settle)  # let the last JOIN notices arrive
        rss_ready = proc_rss_kb(o.server_pid)

        for i, c in enumerate(conns):
            c.lines = c.pings = c.other = 0
            if i in sampler:
                c.mode = SAMPLE
            else:
                c.mode = COUNT
                c.tail, c.buf = c.buf, b""
        base = self.snapshot()
        start = self.loop.time()
        for s in self.senders:
            s.start(start)
        await asyncio.sleep(o.warmup)
        s0 = self.snapshot()
        self.lat_lo = time.perf_counter_ns()
        await asyncio.sleep(o.duration)
        self.lat_hi = time.perf_counter_ns()
        s1 = self.snapshot()
        for s in self.senders:
            s.stop()

        # Drain: wait until every expected delivery arrived or nothing moves for 1 s.
        deadline = time.perf_counter() + o.drain
        last = -1
        still_since = time.perf_counter()
        while time.perf_counter() < deadline:
            snap = self.snapshot()
            if snap.lines - snap.pings >= snap.expected:
                break
            now = time.perf_counter()
            if snap.lines != last:
                last, still_since = snap.lines, now
            elif now - still_since >= 1.0:
                break
            await asyncio.sleep(0.05)
        end = self.snapshot()
        rss_after = proc_rss_kb(o.server_pid)
        await self.shutdown(conns)

        window = s1.t - s0.t
        deliveries = (s1.lines - s1.pings) - (s0.lines - s0.pings)
        sent = s1.sent - s0.sent
        cpu = cpu_delta(s0, s1)
        received = (end.lines - end.pings) - (base.lines - base.pings)
        expected = end.expected - base.expected
        samplers = [c for i, c in enumerate(conns) if i in sampler]
        return {
            "mode": "traffic",
            "clients": o.clients,
            "concurrency": o.concurrency,
            "rooms": o.rooms,
            "senders": o.senders,
            "rate": o.rate,
            "size": o.size,
            "window": o.window,
            "warmup_s": o.warmup,
            "duration_s": round(window, 3),
            "setup": {
                "register_s": round(reg_seconds, 3),
                "registrations_per_s": round(o.clients / reg_seconds, 1),
                "join_s": round(join_seconds, 3),
            },
            "sent": sent,
            "sent_per_s": round(sent / window, 1),
            "deliveries": deliveries,
            "deliveries_per_s": round(deliveries / window, 1),
            "expected_total": expected,
            "received_total": received,
            "lost": max(0, expected - received),
            "extra": max(0, received - expected),
            "disconnects": self.disconnects,
            "sampled_gaps": sum(c.gaps for c in samplers),
            "sampled_reorders": sum(c.reorders for c in samplers),
            "sampled_other_lines": sum(c.other for c in samplers),
            "latency": latency_summary(self.latencies),
            "server_cpu_s": None if cpu is None else round(cpu, 3),
            "server_cpu_pct": None if cpu is None else round(100 * cpu / window, 1),
            "server_sys_pct": sys_pct(s0, s1),
            "deliveries_per_server_cpu_s": (None if not cpu else round(deliveries / cpu, 1)),
            "server_rss_kb": {"before": rss_before, "ready": rss_ready, "after": rss_after},
            "generator_cpu_pct": round(100 * (s1.gen_cpu - s0.gen_cpu) / window, 1),
            "others_cpu_pct": others_cpu_pct(s0, s1),
            "errors": self.errors,
        }

    # ----------------------------------------------------------------- idle

    async def run_idle(self) -> dict[str, Any]:
        o = self.opts
        rss_empty = proc_rss_kb(o.server_pid)
        self.expect_open = True
        prime_n = min(100, max(1, o.clients // 10))
        primed, _ = await self.open_clients(prime_n)
        await asyncio.sleep(o.settle)
        rss_primed = proc_rss_kb(o.server_pid)
        rest: list[Conn] = []
        seconds = 0.0
        if o.clients > prime_n:
            rest, seconds = await self.open_clients(o.clients - prime_n)
        conns = primed + rest
        self.conns = conns
        await asyncio.sleep(max(o.settle, 1.0))
        rss_full = proc_rss_kb(o.server_pid)
        s0 = self.snapshot()
        await asyncio.sleep(o.duration)
        s1 = self.snapshot()
        rss_held = proc_rss_kb(o.server_pid)
        alive = sum(1 for c in conns if not c.closed.done())
        await self.shutdown(conns)
        cpu = cpu_delta(s0, s1)
        per_conn = None
        if rss_primed is not None and rss_held is not None and len(rest):
            per_conn = round((rss_held - rss_primed) / len(rest), 3)
        return {
            "mode": "idle",
            "clients": o.clients,
            "concurrency": o.concurrency,
            "alive_after_hold": alive,
            "disconnects": self.disconnects,
            "register_s": round(seconds, 3),
            "registrations_per_s": round(len(rest) / seconds, 1) if seconds else None,
            "server_rss_kb": {
                "empty": rss_empty,
                "primed": rss_primed,
                "full": rss_full,
                "held": rss_held,
            },
            "primer_clients": prime_n,
            "rss_kb_per_conn": per_conn,
            "hold_s": round(s1.t - s0.t, 3),
            "server_cpu_pct_idle": None if cpu is None else round(100 * cpu / (s1.t - s0.t), 2),
            "others_cpu_pct": others_cpu_pct(s0, s1),
            "errors": self.errors,
        }

    # ----------------------------------------------------------------- connect

    async def run_connect(self) -> dict[str, Any]:
        o = self.opts
        done_times: list[float] = []
        reg_lat: list[int] = []
        failures: list[str] = []
        stop = False

        async def worker() -> None:
            while not stop:
                conn = self.new_conn()
                t = time.perf_counter_ns()
                try:
                    async with asyncio.timeout(10.0):
                        await self.connect(conn)
                except (OSError, ConnectionError, TimeoutError) as e:
                    if len(failures) < 10:
                        failures.append(repr(e))
                    conn.abort()
                    if isinstance(e, OSError):
                        await asyncio.sleep(0.01)
                    continue
                reg_lat.append(time.perf_counter_ns() - t)
                done_times.append(time.perf_counter())
                conn.quit()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5.0):
                        await conn.closed
                conn.abort()

        workers = [asyncio.ensure_future(worker()) for _ in range(o.concurrency)]
        try:
            await asyncio.sleep(o.warmup)
            s0 = self.snapshot()
            n0 = len(done_times)
            lat0 = len(reg_lat)
            await asyncio.sleep(o.duration)
            s1 = self.snapshot()
            n1 = len(done_times)
            lat1 = len(reg_lat)
        finally:
            stop = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(o.drain + 10.0):
                    await asyncio.gather(*workers, return_exceptions=True)
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        window = s1.t - s0.t
        cpu = cpu_delta(s0, s1)
        regs = n1 - n0
        return {
            "mode": "connect",
            "concurrency": o.concurrency,
            "duration_s": round(window, 3),
            "registrations": regs,
            "registrations_per_s": round(regs / window, 1),
            "register_latency": latency_summary(reg_lat[lat0:lat1]),
            "server_cpu_s": None if cpu is None else round(cpu, 3),
            "server_cpu_pct": None if cpu is None else round(100 * cpu / window, 1),
            "server_sys_pct": sys_pct(s0, s1),
            "registrations_per_server_cpu_s": None if not cpu else round(regs / cpu, 1),
            "generator_cpu_pct": round(100 * (s1.gen_cpu - s0.gen_cpu) / window, 1),
            "others_cpu_pct": others_cpu_pct(s0, s1),
            "failures": failures,
        }


# --------------------------------------------------------------------- entry point


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return cast(asyncio.AbstractEventLoop, uvloop.new_event_loop())
    return asyncio.new_event_loop()


def run(opts: Options) -> dict[str, Any]:
    """Run one measurement and return its results (blocking)."""
    need = opts.clients + opts.concurrency + 64 if opts.mode != "connect" else opts.concurrency * 2
    soft, hard = raise_nofile(need + 64)
    if soft < need:
        raise RuntimeError(f"RLIMIT_NOFILE {soft} (hard {hard}) is below the {need} needed")
    loop = new_loop(opts.loop)
    try:
        gen = Generator(opts, loop)
        runners: dict[str, Callable[[], Coroutine[Any, Any, dict[str, Any]]]] = {
            "traffic": gen.run_traffic,
            "idle": gen.run_idle,
            "connect": gen.run_connect,
        }
        result = loop.run_until_complete(runners[opts.mode]())
        result["loop"] = type(loop).__module__.split(".")[0]
        result["server_pid"] = opts.server_pid
        return result
    finally:
        loop.close()


def format_human(r: dict[str, Any]) -> str:
    lines = []
    for key, value in r.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}={v}" for k, v in value.items())
            lines.append(f"{key:>28}: {inner}")
        else:
            lines.append(f"{key:>28}: {value}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv)
    # Backstop: SIGALRM's default action ends the process if a bug ever hangs a phase.
    signal.alarm(int(opts.deadline_seconds()) + 1)
    try:
        result = run(opts)
    except (RuntimeError, OSError) as e:
        if opts.json:
            print(json.dumps({"error": str(e)}))
        print(f"loadgen: error: {e}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
    print(json.dumps(result) if opts.json else format_human(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
