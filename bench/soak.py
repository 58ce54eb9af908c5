"""Soak test: thousands of churning clients while Redis goes away and comes back.

    python -m bench.soak                          # 300 s, up to 2000 clients
    python -m bench.soak --duration 60 --clients 500 --json   # a quick run

One command, loopback only, bounded in time and in count; it stops by itself
(a watchdog thread kills everything it started if a phase ever hangs). It starts

* a ``redis-server`` on a free port without persistence (pinned with the
  generator to core 1), and
* our server (``python -m server``, pinned to core 0 like ``bench.run`` does)
  with ``--redis``, ``--db`` in a temp dir, ``--metrics-port``, the per-host
  limits lifted for loopback (``--max-per-host 0 --throttle-burst 0
  --max-clients 0 --scan-burst 0``) but flood control ON with modest values
  (``--flood-burst 10 --flood-rate 2 --flood-max-queue 40`` by default).

Phases:

1. warm-up: a small population (``--warmup-clients``) touches every code path
   (every channel gets messages, a flooder, a fakelagged burst, playback, one
   short Redis outage, CHATHISTORY reads), then quits. After ``--idle`` seconds
   with no connection the server's VmRSS, open fds (by kind: client, Redis
   with TCP state, files...), threads and (through the probe, below) live
   asyncio tasks and a gc census are the baseline. ``--warmup-churn`` warms up
   with the full churn instead, for a baseline taken after a full-size peak.
2. churn for ``--duration`` seconds, in waves of ``--wave`` seconds: up to
   ``--clients`` concurrent clients connect, register (some negotiate tags,
   all echo-message), join and part among ``--channels`` channels, send
   PRIVMSG/NOTICE with a unique id ``k<client>.<seq>`` in each text, idle,
   burst past the flood burst (fakelag, no disconnect expected), flood
   (``ERROR :Excess Flood`` expected), and leave by QUIT, RST (SO_LINGER 0),
   FIN without QUIT, a half-written line, or a mass RST drop at each wave's
   peak. A message counts as *accepted* when its echo (echo-message) arrives.
   Meanwhile Redis is killed every ``--redis-every`` s for ``--redis-down`` s,
   FLUSHALLed once and stalled once with ``CLIENT PAUSE``.
3. wind-down: every client QUITs; the server's ``chat_connections`` metric
   must reach 0; after ``--idle`` s the same measurements as the baseline.
   RSS must be within ``--rss-tolerance`` (10 %) of the baseline; no client
   socket and no dead (CLOSE_WAIT) Redis socket may be left; fds (the Redis
   pool aside), threads and tasks back to the baseline; no server/chat object
   type grown. Every flooder must have got Excess Flood, no fakelagged client
   may have been disconnected, and the circuit breaker may only have opened
   while Redis was down or paused (log lines against the soak's own timeline).
4. history: for every channel, CHATHISTORY LATEST then BEFORE paging (with
   batch, server-time, message-tags), once with Redis stopped (store path) and
   once with Redis back (cache path). Every accepted message must be there
   exactly once, with the msgid its echo carried, in per-sender order; nothing
   unknown or misrouted; both passes identical; the rows read plus the store's
   event rows (joins, parts... not served without event-playback) equal to
   ``chat_history_writes_total``.
5. SIGTERM: the server must exit 0 without tracebacks in its log.

The probe: by default the server runs as ``python -c '<boot>' <args>``, where
the boot starts a daemon thread listening on a Unix socket in the temp dir and
then runs the ``server`` module exactly as ``python -m server`` does. Asked, the
thread answers with the number of pending asyncio tasks (by coroutine), threads
and a ``gc`` census of live objects by type (after ``gc.collect()``), can call
glibc's ``malloc_trim(0)`` (both only after the primary RSS reading), and tells
where the heap is: pymalloc's arenas (``sys._debugmallocstats``, at rest only),
glibc's ``mallinfo2()`` and SQLite's own allocation count (also every 5 s).
That is how "no task leaked" is checked. ``--no-probe`` runs plain ``python -m
server`` (tasks and objects unchecked).

Exit status: 0 when every check passed, 1 when one failed, 2 on a setup error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import gc
import json
import os
import random
import shlex
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from bench.loadgen import new_loop, percentile, proc_cpu_seconds, raise_nofile
from bench.run import (
    GENERATOR_CORE,
    HOST,
    REPO_ROOT,
    SERVER_CORE,
    free_port,
    machine_info,
    pinned,
    revision,
    wait_listening,
)
from server.history.cache import POOL_SIZE as REDIS_POOL_MAX  # its max_connections
from server.history.query import EVENT_COMMANDS

LIMIT = 100  # CHATHISTORY page size (the server's default chathistory_limit)
TAG_CAPS = b"echo-message message-tags server-time batch"
READER_CAPS = b"batch draft/chathistory server-time message-tags"
JOIN_FAIL = frozenset({b"403", b"405", b"471", b"473", b"474", b"475", b"477"})
KEY_SPAN = 1_000_000  # message key = client id * KEY_SPAN + seq
PROBE_ENV = "CHAT_SOAK_PROBE"
PROBE_BOOT = (
    "import sys; sys.argv[0] = 'server'; from bench.soak import serve_with_probe; "
    "serve_with_probe()"
)
LOG_BAD = ("Traceback", "Task was destroyed", "never retrieved", "CRITICAL", " ERROR ")


# --------------------------------------------------------------------- the probe (server side)


def serve_with_probe() -> None:
    """Run ``python -m server`` with the probe thread beside it (see the module doc)."""
    import runpy

    path = os.environ.pop(PROBE_ENV, "")
    if path:
        threading.Thread(target=_probe_loop, args=(path,), name="soak-probe", daemon=True).start()
    runpy.run_module("server", run_name="__main__", alter_sys=True)


def _probe_loop(path: str) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    while True:
        conn, _ = listener.accept()
        with conn:
            try:
                command = conn.recv(64).strip()
                if command == b"trim":
                    reply: dict[str, Any] = {"trimmed": _malloc_trim()}
                elif command in (b"mem", b"heap"):
                    reply = _mem_stats(pymalloc=command == b"mem")
                else:
                    reply = _census(collect=command == b"gc")
                conn.sendall(json.dumps(reply).encode())
            except Exception as exc:  # the probe must never take the server down
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps({"error": repr(exc)}).encode())


def _malloc_trim() -> int | None:
    """glibc's malloc_trim(0): give free heap pages back to the OS (diagnostic only)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return int(ctypes.CDLL(name).malloc_trim(0))
    except (OSError, AttributeError):
        return None


def _mem_stats(pymalloc: bool = True) -> dict[str, Any]:
    """Where the heap is, in bytes: pymalloc's arenas, glibc malloc (every arena), SQLite.

    pymalloc (objects up to 512 bytes) takes 1 MiB arenas with mmap and returns one
    only when it is empty; everything bigger (buffers, dict/list storage, SQLite's page
    caches) is glibc malloc, which ``malloc_trim(0)`` can shrink. Diagnostic only.
    """
    import ctypes

    out: dict[str, Any] = {}
    if pymalloc:  # not for "heap" (sampled during the churn): it borrows fd 2
        out["pymalloc"] = _pymalloc_stats()
    fields = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
              "uordblks", "fordblks", "keepcost")

    class MallInfo2(ctypes.Structure):
        _fields_ = [(f, ctypes.c_size_t) for f in fields]

    with contextlib.suppress(OSError, AttributeError, TypeError):
        fn = ctypes.CDLL(None).mallinfo2  # glibc 2.33+, summed over every arena
        fn.restype = MallInfo2
        info = fn()
        out["glibc"] = {f: int(getattr(info, f)) for f in fields}
    with contextlib.suppress(OSError, AttributeError):
        lib = ctypes.CDLL("libsqlite3.so.0")
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        lib.sqlite3_memory_highwater.restype = ctypes.c_int64
        out["sqlite"] = {
            "used": int(lib.sqlite3_memory_used()),
            "highwater": int(lib.sqlite3_memory_highwater(0)),
        }
    return out


def _pymalloc_stats() -> dict[str, int]:
    """pymalloc's arena counts and bytes, parsed from ``sys._debugmallocstats()``."""
    import tempfile

    # It prints to the C stderr: catch fd 2 for the call (at rest, so at worst a log
    # line of that millisecond lands in the temp file).
    with tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    wanted = {
        "# arenas allocated current": "arenas",
        "# arenas highwater mark": "arenas_highwater",
        "# bytes in allocated blocks": "used",
        "# bytes in available blocks": "free_blocks",
        "# bytes lost to pool headers": "pool_headers",
        "# bytes lost to quantization": "quantization",
        "# bytes lost to arena alignment": "arena_alignment",
    }
    stats: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, value = line.rpartition("=")
        key = " ".join(key.split())
        name = "unused_pools" if key.endswith("unused pools * 16384 bytes") else wanted.get(key)
        if sep and name:
            with contextlib.suppress(ValueError):
                stats[name] = int(value.strip().replace(",", ""))
    if "arenas" in stats:
        stats["arena_bytes"] = stats["arenas"] << 20  # 1 MiB arenas on 64-bit 3.10+
    return stats


def _census(collect: bool) -> dict[str, Any]:
    collected = gc.collect() if collect else None
    objs = gc.get_objects()
    by_type: Counter[type] = Counter(type(o) for o in objs)
    total = len(objs)
    del objs
    all_tasks = getattr(asyncio.tasks, "_all_tasks", None)
    tasks = [t for t in list(all_tasks or ()) if not t.done()]
    names: Counter[str] = Counter()
    for t in tasks:
        coro = t.get_coro()
        names[getattr(coro, "__qualname__", type(coro).__name__)] += 1
    watched = ("server", "chat", "asyncio", "_asyncio", "uvloop", "redis", "sqlite3", "socket")
    types: dict[str, int] = {}
    for t, n in by_type.items():
        module = getattr(t, "__module__", "")
        module = module if isinstance(module, str) else "?"
        if module.split(".")[0] in watched or n >= 10:
            name = f"{module}.{t.__qualname__}"
            types[name] = types.get(name, 0) + n
    return {
        "collected": collected,
        "gc_objects": total,
        "tasks": len(tasks) if all_tasks is not None else None,
        "task_names": dict(names),
        "threads": sorted(t.name for t in threading.enumerate()),
        "types": types,
    }


def ask_probe(path: str | None, command: str = "census", timeout: float = 30.0) -> dict[str, Any]:
    if not path:
        return {}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        result: dict[str, Any] = json.loads(b"".join(chunks))
        return result
    except (OSError, ValueError) as exc:
        return {"error": repr(exc)}


# --------------------------------------------------------------------- /proc, metrics, redis


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile, RssShmem (KiB), Threads and open fds of ``pid``."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                key, _, rest = line.partition(b":")
                name = key.decode()
                if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads"):
                    out[name] = int(rest.split()[0])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        pass
    return out


TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT"}


def _tcp_sockets() -> dict[str, tuple[int, int, str]]:
    """inode -> (local port, remote port, state) of every TCP socket (/proc/net/tcp{,6})."""
    out: dict[str, tuple[int, int, str]] = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(name, encoding="ascii") as f:
            next(f, None)
            for line in f:
                cols = line.split()
                if len(cols) > 9:
                    local = int(cols[1].rsplit(":", 1)[1], 16)
                    remote = int(cols[2].rsplit(":", 1)[1], 16)
                    out[cols[9]] = (local, remote, cols[3])
    return out


def fd_classes(pid: int, server_port: int, redis_port: int, metrics_port: int) -> dict[str, int]:
    """The server's open fds by kind: client/listen/redis/metrics sockets, files, others."""
    tcp = _tcp_sockets()
    kinds: Counter[str] = Counter()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return {}
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            info = tcp.get(target[8:-1])
            if info is None:
                kinds["socket (unix/other)"] += 1
            elif info[2] == "0A":
                kinds[f"listen :{info[0]}"] += 1
            elif info[0] == server_port:
                kinds["client"] += 1
            elif info[1] == redis_port:
                kinds["redis " + TCP_STATES.get(info[2], info[2])] += 1
            elif info[0] == metrics_port:
                kinds["metrics client"] += 1
            else:
                kinds["tcp other"] += 1
        elif target.startswith("/"):
            kinds["file " + Path(target).name.replace(" (deleted)", "")] += 1
        elif target.startswith("anon_inode:"):
            kinds[target] += 1
        else:
            kinds[target.split(":")[0]] += 1
    return dict(sorted(kinds.items()))


def scrape(port: int, timeout: float = 5.0) -> dict[str, float]:
    """Prometheus text from our metrics port as {'name{labels}': value}; {} on failure."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=timeout) as r:
            text = r.read().decode()
    except (OSError, ValueError):
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        with contextlib.suppress(ValueError):
            out[name] = float(value)
    return out


def metric_sum(metrics: dict[str, float], name: str) -> float:
    """A metric's value, summed over its labels."""
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


class Redis:
    """One redis-server without persistence, killable and restartable on its port."""

    def __init__(self, directory: Path, port: int) -> None:
        self.exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.directory = directory
        self.port = port
        self.url = f"redis://{HOST}:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        # Wall-clock (time.time) intervals when Redis was down or paused.
        self.unhealthy: list[tuple[float, float]] = []
        self._down_since: float | None = None

    def start(self, timeout: float = 10.0) -> None:
        assert self.proc is None
        self.starts += 1
        argv = [self.exe, "--port", str(self.port), "--bind", HOST, "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.directory)]
        argv += ["--logfile", str(self.directory / f"redis-{self.starts}.log")]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError):
                if self.command("PING", timeout=1.0) == b"+PONG":
                    if self._down_since is not None:
                        self.unhealthy.append((self._down_since, time.time()))
                        self._down_since = None
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGKILL: as abrupt as a crash (nothing is persisted anyway)."""
        proc, self.proc = self.proc, None
        if proc is not None and self._down_since is None:
            self._down_since = time.time()
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait(timeout=10)

    def command(self, *args: str, timeout: float = 5.0) -> bytes:
        """One command over RESP; the first line of the reply."""
        req = f"*{len(args)}\r\n".encode()
        for a in args:
            req += f"${len(a.encode())}\r\n{a}\r\n".encode()
        with socket.create_connection((HOST, self.port), timeout=timeout) as s:
            s.sendall(req)
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.split(b"\r\n", 1)[0]


# --------------------------------------------------------------------- IRC line helpers


def parse(line: bytes) -> tuple[dict[bytes, bytes], bytes, bytes, list[bytes]]:
    """(tags, source, command, params) of one line (tag values are not unescaped)."""
    tags: dict[bytes, bytes] = {}
    if line.startswith(b"@"):
        raw, _, line = line.partition(b" ")
        for item in raw[1:].split(b";"):
            k, _, v = item.partition(b"=")
            tags[k] = v
    source = b""
    if line.startswith(b":"):
        source, _, line = line.partition(b" ")
        source = source[1:]
    head, sep, trailing = line.partition(b" :")
    params = head.split()
    if not params:
        return tags, source, b"", []
    if sep:
        params.append(trailing)
    return tags, source, params[0].upper(), params[1:]


def message_key(text: bytes) -> int | None:
    """``k<cid>.<seq> ...`` -> cid * KEY_SPAN + seq."""
    token = text.split(b" ", 1)[0]
    if not token.startswith(b"k"):
        return None
    cid, dot, seq = token[1:].partition(b".")
    if not dot or not cid.isdigit() or not seq.isdigit():
        return None
    return int(cid) * KEY_SPAN + int(seq)


# --------------------------------------------------------------------- settings


@dataclass
class Settings:
    duration: float = 300.0
    clients: int = 2000
    channels: int = 100
    wave: float = 40.0
    connect_rate: float = 200.0
    max_sessions: int = 60000
    lifetime: tuple[float, float] = (5.0, 60.0)
    act_interval: float = 6.0
    warmup: float = 20.0
    warmup_clients: int = 100
    warmup_churn: bool = False
    idle: float = 10.0
    flood_burst: int = 10
    flood_rate: float = 2.0
    flood_max_queue: int = 40
    flood_lines: int = 200
    redis_every: float = 60.0
    redis_down: float = 10.0
    readers: int = 50
    rss_tolerance: float = 10.0
    seed: int | None = None
    probe: bool = True
    server_args: list[str] = field(default_factory=list)
    keep: str | None = None
    json: bool = False
    out: str | None = None
    prefix: str = ""


KINDS = {"normal": 0.78, "lurker": 0.08, "fakelag": 0.05, "flood": 0.03, "early": 0.06}
EXITS = {"quit": 0.55, "rst": 0.15, "rst-after-send": 0.05, "fin": 0.12, "midline": 0.13}


def pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


# --------------------------------------------------------------------- clients


class Conn(asyncio.Protocol):
    """A churn client: registers, joins, sends, and tracks which messages echoed."""

    def __init__(self, soak: Soak, cid: int, tags: bool, kind: str = "") -> None:
        self.soak = soak
        self.cid = cid
        self.kind = kind
        self.nick = f"{soak.prefix}{cid:x}".encode()
        self.me = b":" + self.nick + b"!"
        self.tags = tags
        self.srv: bytes | None = None  # b":server.name " once registered
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.seq = 0
        self.joined: set[int] = set()
        self.join_waiters: dict[int, asyncio.Future[None]] = {}
        self.unechoed: dict[int, float] = {}  # seq -> send time
        self.drained: asyncio.Future[None] | None = None  # set when unechoed empties
        self.error: bytes | None = None
        loop = soak.loop
        self.registered: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.dropped = False

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        why = ConnectionError("closed")
        for fut in (self.registered, *self.join_waiters.values()):
            if not fut.done():
                fut.set_exception(why)
                fut.exception()
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        lines = (self.buf + data if self.buf else data).split(b"\n")
        self.buf = lines.pop()
        self.soak.lines_in += len(lines)
        me, srv = self.me, self.srv
        for raw in lines:
            line = raw[raw.find(b" ") + 1 :] if raw.startswith(b"@") else raw
            if line.startswith(me):
                self._own(line.rstrip(b"\r"), raw)
            elif srv is None or line.startswith(srv):
                self._server(line.rstrip(b"\r"))
            elif line.startswith(b"PING"):
                self.write(b"PONG" + line.rstrip(b"\r")[4:] + b"\r\n")
            elif line.startswith(b"ERROR"):
                self.error = line.rstrip(b"\r")

    # lines

    def _own(self, line: bytes, raw: bytes) -> None:
        parts = line.split(b" ", 3)
        if len(parts) < 3:
            return
        command, target = parts[1], parts[2].lstrip(b":")
        chan = self.soak.chan_index.get(target.lower())
        if chan is None:
            return
        if command == b"PRIVMSG" or command == b"NOTICE":
            if len(parts) < 4:
                return
            key = message_key(parts[3][1:])
            if key is None or key // KEY_SPAN != self.cid:
                return
            sent_at = self.unechoed.pop(key % KEY_SPAN, None)
            if sent_at is not None:
                self.soak.echoed(key, sent_at, raw, self.kind)
            if not self.unechoed and self.drained is not None and not self.drained.done():
                self.drained.set_result(None)
        elif command == b"JOIN":
            self.joined.add(chan)
            waiter = self.join_waiters.pop(chan, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif command == b"PART":
            self.joined.discard(chan)

    def _server(self, line: bytes) -> None:
        _, source, command, params = parse(line)
        if command == b"PING":
            self.write(b"PONG :" + (params[-1] if params else b"x") + b"\r\n")
        elif command == b"ERROR":
            self.error = line
        elif command == b"001":
            self.srv = b":" + source + b" "
            if not self.registered.done():
                self.registered.set_result(None)
        elif command in JOIN_FAIL and len(params) > 1:
            chan = self.soak.chan_index.get(params[1].lower())
            waiter = self.join_waiters.pop(chan, None) if chan is not None else None
            if waiter is not None and not waiter.done():
                waiter.set_exception(ConnectionError(line.decode(errors="replace")))
                waiter.exception()
            self.soak.n["join_refused"] += 1
        elif command in (b"404", b"401"):
            self.soak.n["cannot_send"] += 1
        elif command in (b"432", b"433", b"436", b"451") and not self.registered.done():
            self.registered.set_exception(ConnectionError(line.decode(errors="replace")))
            self.registered.exception()

    # actions

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def write(self, data: bytes) -> None:
        if self.open:
            assert self.transport is not None
            self.transport.write(data)

    def register(self) -> None:
        caps = TAG_CAPS if self.tags else b"echo-message"
        n = self.nick
        self.write(b"CAP REQ :" + caps + b"\r\nNICK " + n + b"\r\nUSER " + n + b" 0 * :soak\r\n")
        self.write(b"CAP END\r\n")

    def join(self, chan: int) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = self.soak.loop.create_future()
        self.join_waiters[chan] = fut
        self.write(b"JOIN " + self.soak.chan_names[chan] + b"\r\n")
        return fut

    def part(self, chan: int) -> None:
        self.joined.discard(chan)
        self.write(b"PART " + self.soak.chan_names[chan] + b" :soak\r\n")

    def message(self, chan: int, notice: bool = False, timed: bool = True) -> bytes:
        """One PRIVMSG/NOTICE line with a fresh key; registered as sent (not written).

        ``timed``: its echo latency counts (not for bursts that are delayed on purpose).
        """
        self.seq += 1
        key = self.cid * KEY_SPAN + self.seq
        self.soak.sent[key] = chan
        self.unechoed[self.seq] = time.monotonic() if timed else -1.0
        pad = self.soak.pad[: self.soak.rng.randrange(8, 120)]
        command = b"NOTICE " if notice else b"PRIVMSG "
        return b"".join(
            (
                command,
                self.soak.chan_names[chan],
                b" :k",
                str(self.cid).encode(),
                b".",
                str(self.seq).encode(),
                b" ",
                pad,
                b"\r\n",
            )
        )

    def abort_rst(self) -> None:
        """Close with a TCP RST (SO_LINGER 0), as a crashed host or a NAT drop would."""
        if self.transport is None:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            # uvloop's pseudo-socket raises ValueError once the fd is already closed
            with contextlib.suppress(OSError, AttributeError, ValueError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def wait_drained(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = self.soak.loop.create_future()
        if not self.unechoed or self.closed.done():
            fut.set_result(None)
        self.drained = fut
        return fut


class Reader(asyncio.Protocol):
    """A history reader: JOIN, page through CHATHISTORY, PART; one request in flight."""

    def __init__(self, loop: asyncio.AbstractEventLoop, nick: bytes) -> None:
        self.loop = loop
        self.nick = nick
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.registered: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.waiter: asyncio.Future[Any] | None = None
        self.waiting_for = b""  # b"JOIN", b"PART" or b"BATCH"
        self.batch: bytes | None = None
        self.rows: list[tuple[bytes, bytes, bytes, bytes]] = []  # msgid, time, command, text

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        n = self.nick
        self.transport.write(
            b"CAP REQ :"
            + READER_CAPS
            + b"\r\nNICK "
            + n
            + b"\r\nUSER "
            + n
            + b" 0 * :reader\r\nCAP END\r\n"
        )

    def connection_lost(self, exc: Exception | None) -> None:
        for fut in (self.registered, self.waiter):
            if fut is not None and not fut.done():
                fut.set_exception(ConnectionError("reader connection closed"))
                fut.exception()
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        lines = (self.buf + data if self.buf else data).split(b"\n")
        self.buf = lines.pop()
        for raw in lines:
            self._line(raw.rstrip(b"\r"))

    def _line(self, line: bytes) -> None:
        tags, source, command, params = parse(line)
        if command == b"PING":
            self.write(b"PONG :" + (params[-1] if params else b"x") + b"\r\n")
        elif command == b"001":
            if not self.registered.done():
                self.registered.set_result(None)
        elif command in (b"JOIN", b"PART") and source.split(b"!")[0] == self.nick:
            if self.waiting_for == command:
                self._done(None)
        elif command == b"BATCH" and params:
            if params[0].startswith(b"+") and len(params) > 1 and params[1] == b"chathistory":
                self.batch, self.rows = params[0][1:], []
            elif params[0] == b"-" + (self.batch or b"\0"):
                self.batch = None
                if self.waiting_for == b"BATCH":
                    self._done(self.rows)
        elif self.batch is not None and tags.get(b"batch") == self.batch:
            text = params[1] if len(params) > 1 else b""
            self.rows.append((tags.get(b"msgid", b""), tags.get(b"time", b""), command, text))
        elif (command == b"FAIL" or (command[:1] == b"4" and self.waiting_for)) and (
            self.waiter is not None and not self.waiter.done()
        ):
            self.waiter.set_exception(RuntimeError(line.decode(errors="replace")))
            self.waiter.exception()

    def _done(self, value: Any) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(value)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def request(self, line: bytes, expect: bytes, timeout: float = 120.0) -> Any:
        self.waiter = self.loop.create_future()
        self.waiting_for = expect
        self.write(line + b"\r\n")
        try:
            async with asyncio.timeout(timeout):
                return await self.waiter
        finally:
            self.waiting_for = b""

    async def history(self, channel: bytes) -> list[tuple[bytes, bytes, bytes, bytes]]:
        """Every stored message of ``channel``, oldest first (LATEST, then BEFORE pages)."""
        await self.request(b"JOIN " + channel, b"JOIN")
        rows: list[tuple[bytes, bytes, bytes, bytes]] = []
        page = await self.request(b"CHATHISTORY LATEST " + channel + b" * %d" % LIMIT, b"BATCH")
        while page:
            rows[:0] = page
            ref = b"msgid=" + page[0][0]
            page = await self.request(
                b"CHATHISTORY BEFORE " + channel + b" " + ref + b" %d" % LIMIT, b"BATCH"
            )
        await self.request(b"PART " + channel, b"PART")
        return rows


# --------------------------------------------------------------------- the soak


@dataclass
class Sample:
    t: float
    phase: str
    sessions: int
    metrics: dict[str, float]
    proc: dict[str, int]
    fd_kinds: dict[str, int]
    accepted: int
    redis_up: bool
    heap: dict[str, Any] = field(default_factory=dict)  # the probe's "heap" answer


class Soak:
    def __init__(self, cfg: Settings) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.prefix = cfg.prefix or f"s{os.getpid() % 1000}x"
        self.chan_names = [f"#{self.prefix}{i}".encode() for i in range(cfg.channels)]
        self.chan_index = {name: i for i, name in enumerate(self.chan_names)}
        self.pad = bytes(self.rng.choice(b"abcdefghijklmnopqrstuvwxyz ") for _ in range(200))
        self.loop = new_loop("auto")
        self.n: Counter[str] = Counter()
        self.lines_in = 0
        self.sent: dict[int, int] = {}  # key -> channel
        self.accepted: dict[int, bytes] = {}  # key -> msgid its echo carried (b"" if none)
        self.latencies: list[float] = []
        self.slow_echoes: list[dict[str, Any]] = []  # echoes slower than 2 s (first 100)
        self.fakelag_delays: list[float] = []
        self.errors: Counter[str] = Counter()  # ERROR reasons the server gave churn clients
        self.ids = 0
        self.live: dict[int, Conn] = {}
        self.sessions: set[asyncio.Task[None]] = set()
        self.stopping = False
        self.stop_fut: asyncio.Future[None] = self.loop.create_future()
        self.phase = "setup"
        self.samples: list[Sample] = []
        self.events: list[dict[str, Any]] = []
        self.tmp = tempfile.TemporaryDirectory(prefix="soak-")
        self.dir = Path(self.tmp.name)
        self.redis = Redis(self.dir, free_port())
        self.port = free_port()
        self.metrics_port = free_port()
        self.probe_path: str | None = str(self.dir / "probe.sock") if cfg.probe else None
        self.server: subprocess.Popen[bytes] | None = None
        self.server_command: list[str] = []
        self.t0 = time.monotonic()

    # ----------------------------------------------------------------- processes

    def start_server(self) -> None:
        cfg = self.cfg
        args = ["--host", HOST, "--port", str(self.port), "--metrics-port", str(self.metrics_port)]
        args += ["--db", str(self.dir / "history.db"), "--redis", self.redis.url]
        args += ["--max-per-host", "0", "--throttle-burst", "0", "--max-clients", "0"]
        args += ["--scan-burst", "0"]  # the history check pages every channel from here
        args += ["--flood-burst", str(cfg.flood_burst), "--flood-rate", str(cfg.flood_rate)]
        args += ["--flood-max-queue", str(cfg.flood_max_queue), "--history-max-rows", "0"]
        args += ["--log-level", "info", *cfg.server_args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
        if self.probe_path:
            argv = [sys.executable, "-c", PROBE_BOOT, *args]
            env[PROBE_ENV] = self.probe_path
        else:
            argv = [sys.executable, "-m", "server", *args]
        self.server_command = pinned(SERVER_CORE, 0, argv)
        with open(self.dir / "server.log", "wb") as log:
            self.server = subprocess.Popen(
                self.server_command,
                cwd=str(REPO_ROOT),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        wait_listening(self.port, self.server, 30.0)
        deadline = time.monotonic() + 15
        while not scrape(self.metrics_port):
            if time.monotonic() > deadline:
                raise RuntimeError("the metrics port does not answer")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self.server is not None
        return self.server.pid

    def server_alive(self) -> bool:
        return self.server is not None and self.server.poll() is None

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return (self.dir / "server.log").read_text(errors="replace")
        return ""

    def cleanup(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.kill()
            self.server.wait(timeout=10)
        self.redis.stop()
        if self.cfg.keep:
            dest = Path(self.cfg.keep)
            dest.mkdir(parents=True, exist_ok=True)
            for name in ("server.log", "history.db"):
                with contextlib.suppress(OSError):
                    shutil.copy(self.dir / name, dest / name)
        self.tmp.cleanup()

    # ----------------------------------------------------------------- bookkeeping

    def now(self) -> float:
        return time.monotonic() - self.t0

    def echoed(self, key: int, sent_at: float, line: bytes, kind: str) -> None:
        msgid = b""
        if line.startswith(b"@"):
            tags, _, _, _ = parse(line)
            msgid = tags.get(b"msgid", b"")
        self.accepted[key] = msgid
        if sent_at >= 0:
            latency = time.monotonic() - sent_at
            self.latencies.append(latency)
            if latency > 2.0 and len(self.slow_echoes) < 100:
                cid, seq = divmod(key, KEY_SPAN)
                self.slow_echoes.append(
                    {
                        "t": round(self.now(), 1),
                        "s": round(latency, 2),
                        "kind": kind,
                        "key": f"k{cid}.{seq}",
                    }
                )

    def event(self, what: str, **extra: Any) -> None:
        self.events.append(
            {
                "t": round(self.now(), 1),
                "wall": time.strftime("%H:%M:%S", time.localtime()),
                "phase": self.phase,
                "event": what,
                **extra,
            }
        )
        wall = time.strftime("%H:%M:%S", time.localtime())
        print(f"# {self.now():7.1f}s {wall} {what} {extra or ''}", file=sys.stderr, flush=True)

    async def metrics(self) -> dict[str, float]:
        return await asyncio.to_thread(scrape, self.metrics_port)

    async def sample(self) -> Sample:
        s = Sample(
            t=round(self.now(), 1),
            phase=self.phase,
            sessions=len(self.live),
            metrics=await self.metrics(),
            proc=proc_status(self.pid),
            fd_kinds=fd_classes(self.pid, self.port, self.redis.port, self.metrics_port),
            accepted=len(self.accepted),
            redis_up=self.redis.proc is not None,
            heap=await asyncio.to_thread(ask_probe, self.probe_path, "heap", 5.0),
        )
        self.samples.append(s)
        return s

    async def sampler(self, every: float = 5.0) -> None:
        last_print = 0.0
        cpu0, t0 = proc_cpu_seconds(self.pid) or 0.0, time.monotonic()
        while True:
            await asyncio.sleep(every)
            if not self.server_alive():
                code = self.server.returncode if self.server else None
                self.event("server died", returncode=code)
                return
            s = await self.sample()
            if time.monotonic() - last_print >= 30:
                last_print = time.monotonic()
                cpu1, t1 = proc_cpu_seconds(self.pid) or 0.0, time.monotonic()
                cpu_pct = 100 * (cpu1 - cpu0) / max(t1 - t0, 1e-9)
                cpu0, t0 = cpu1, t1
                m = s.metrics
                print(
                    f"# {s.t:7.1f}s {s.phase:8} sessions {s.sessions:5d} "
                    f"server conns {m.get('chat_connections', -1):5.0f} "
                    f"RSS {s.proc.get('VmRSS', 0) / 1024:6.1f} MiB fds {s.proc.get('fds', 0):5d} "
                    f"accepted {s.accepted:7d} "
                    f"floods {m.get('chat_flood_disconnects_total', 0):4.0f} "
                    f"breaker {m.get('chat_breaker_open', -1):.0f} "
                    f"redis {'up' if s.redis_up else 'DOWN'} "
                    f"({sum(v for k, v in s.fd_kinds.items() if k.startswith('redis '))} socks) "
                    f"server CPU {cpu_pct:4.0f}%",
                    file=sys.stderr,
                    flush=True,
                )

    async def wait_connections(self, value: int, timeout: float) -> float | None:
        """Seconds until chat_connections == value, or None on timeout."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            m = await self.metrics()
            if m.get("chat_connections") == value:
                return time.monotonic() - t0
            await asyncio.sleep(0.5)
        return None

    async def measure(self, label: str) -> dict[str, Any]:
        """Server state at rest: RSS etc. first, then the probe's census (which runs a GC)."""
        proc = proc_status(self.pid)
        fds = fd_classes(self.pid, self.port, self.redis.port, self.metrics_port)
        metrics = await self.metrics()
        mem = await asyncio.to_thread(ask_probe, self.probe_path, "mem")
        census = await asyncio.to_thread(ask_probe, self.probe_path, "gc")
        after_gc = proc_status(self.pid)
        mem_after_gc = await asyncio.to_thread(ask_probe, self.probe_path, "mem")
        await asyncio.to_thread(ask_probe, self.probe_path, "trim")
        after_trim = proc_status(self.pid)
        mem_after_trim = await asyncio.to_thread(ask_probe, self.probe_path, "mem")
        result = {
            "label": label,
            "t": round(self.now(), 1),
            "proc": proc,
            "fd_kinds": fds,
            "rss_after_gc_kb": after_gc.get("VmRSS"),
            "rss_after_trim_kb": after_trim.get("VmRSS") if self.probe_path else None,
            "proc_after_gc": after_gc,
            "proc_after_trim": after_trim,
            "mem": {"at rest": mem, "after gc": mem_after_gc, "after trim": mem_after_trim},
            "connections": metrics.get("chat_connections"),
            "census": census,
        }
        self.event(
            f"measured {label}",
            rss_kb=proc.get("VmRSS"),
            fds=proc.get("fds"),
            threads=proc.get("Threads"),
            tasks=census.get("tasks"),
            connections=metrics.get("chat_connections"),
        )
        return result

    # ----------------------------------------------------------------- sessions

    def spawn(self, kind: str, life: float, channels: list[int] | None = None) -> None:
        self.ids += 1
        task = self.loop.create_task(self.session(self.ids, kind, life, channels))
        self.sessions.add(task)
        task.add_done_callback(self.sessions.discard)

    async def pause(self, seconds: float) -> bool:
        """Sleep; True (at once) when the soak is winding down."""
        if not self.stopping and seconds > 0:
            await asyncio.wait([self.stop_fut], timeout=seconds)
        return self.stopping

    async def session(self, cid: int, kind: str, life: float, channels: list[int] | None) -> None:
        rng = self.rng
        n = self.n
        conn = Conn(self, cid, tags=rng.random() < 0.5, kind=kind)
        n["sessions"] += 1
        n[f"kind_{kind}"] += 1
        try:
            async with asyncio.timeout(15):
                await self.loop.create_connection(lambda: conn, HOST, self.port)
        except (OSError, TimeoutError):
            n["connect_failed"] += 1
            return
        self.live[cid] = conn
        try:
            await self._session(conn, kind, life, channels)
        except (ConnectionError, TimeoutError) as exc:
            if not conn.dropped:
                n["session_errors"] += 1
                if n["session_errors"] <= 5:
                    self.event("session error", cid=cid, kind=kind, error=repr(exc)[:200])
        finally:
            self.live.pop(cid, None)
            if conn.error is not None:
                reason = conn.error.rsplit(b"(", 1)[-1].rstrip(b")").decode(errors="replace")
                # "Client Quit": the answer to the QUIT of a connection younger than
                # --anti-spam-exit-message-time (its reason is not relayed), as solanum.
                quit_ = reason.startswith(("Quit", "Client Quit"))
                self.errors["Quit" if quit_ else reason[:40]] += 1
            if not conn.closed.done():
                conn.abort_rst()

    async def _session(
        self, conn: Conn, kind: str, life: float, channels: list[int] | None
    ) -> None:
        rng, n = self.rng, self.n
        conn.register()
        if kind == "early":  # RST during registration
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            n["exit_early_rst"] += 1
            conn.abort_rst()
            return
        async with asyncio.timeout(60):
            await conn.registered
        n["registered"] += 1
        want = channels or rng.sample(range(self.cfg.channels), rng.choice((1, 1, 2, 2, 3)))
        async with asyncio.timeout(60):
            await asyncio.gather(*(conn.join(c) for c in want))
        deadline = time.monotonic() + life
        if kind == "flood":
            await self._flood(conn)
            return
        if kind == "fakelag":
            await self._fakelag(conn)
        while time.monotonic() < deadline and not conn.closed.done():
            wait = min(rng.expovariate(1 / self.cfg.act_interval), deadline - time.monotonic())
            if await self.pause(max(wait, 0.0)) or conn.closed.done():
                break
            if kind != "lurker":
                self._act(conn)
        if conn.closed.done():
            if conn.dropped:
                n["exit_mass_drop"] += 1
            else:
                n["closed_by_server"] += 1
            return
        await self._leave(conn, "quit" if self.stopping else pick(rng, EXITS))

    def _act(self, conn: Conn) -> None:
        rng, n = self.rng, self.n
        joined = sorted(conn.joined)
        r = rng.random()
        if not joined or r < 0.10:
            if joined:
                conn.part(rng.choice(joined))
                n["parts"] += 1
            conn.join(rng.randrange(self.cfg.channels))
            n["joins"] += 1
        elif r < 0.14 and len(joined) < 4:
            conn.join(rng.randrange(self.cfg.channels))
            n["joins"] += 1
        elif r < 0.18:
            chan = rng.choice(joined)
            conn.write(b"".join(conn.message(chan) for _ in range(3)))
            n["sent"] += 3
        elif r < 0.21:
            name = self.chan_names[rng.choice(joined)]
            conn.write(rng.choice((b"NAMES ", b"WHO ", b"TOPIC ", b"MODE ")) + name + b"\r\n")
            n["other_commands"] += 1
        else:
            notice = r > 0.93
            conn.write(conn.message(rng.choice(joined), notice=notice))
            n["sent"] += 1

    async def _flood(self, conn: Conn) -> None:
        """Far past the burst: the server must answer ERROR :Excess Flood and close."""
        if not conn.open or not conn.joined:
            return
        chan = min(conn.joined)
        lines = [conn.message(chan, timed=False) for _ in range(self.cfg.flood_lines)]
        conn.write(b"".join(lines))
        self.n["sent"] += len(lines)
        self.n["flood_sent"] += 1
        try:
            async with asyncio.timeout(60):
                await conn.closed
        except TimeoutError:
            self.n["flood_not_disconnected"] += 1
            self.event("flooder not disconnected", cid=conn.cid)
            return
        if conn.error is not None and b"Excess Flood" in conn.error:
            self.n["flood_excess_flood"] += 1
        elif conn.dropped:
            self.n["flood_dropped"] += 1  # the mass RST drop got there first
        else:
            self.n["flood_closed_otherwise"] += 1
            if self.n["flood_closed_otherwise"] <= 5:
                self.event("flooder closed without Excess Flood", error=str(conn.error))

    async def _fakelag(self, conn: Conn) -> None:
        """Past the burst but under the hard limit: delayed, never disconnected."""
        if not conn.open or not conn.joined:
            return
        chan = min(conn.joined)
        count = self.cfg.flood_burst + self.cfg.flood_max_queue // 2
        t0 = time.monotonic()
        conn.write(b"".join(conn.message(chan, timed=False) for _ in range(count)))
        self.n["sent"] += count
        bound = count / self.cfg.flood_rate + 60
        try:
            async with asyncio.timeout(bound):
                await conn.wait_drained()
        except TimeoutError:
            self.n["fakelag_timeout"] += 1
            return
        if conn.closed.done() and conn.dropped:
            self.n["fakelag_dropped"] += 1
            return
        if conn.closed.done():
            self.n["fakelag_disconnected"] += 1
            if self.n["fakelag_disconnected"] <= 5:
                self.event("fakelag client disconnected", cid=conn.cid, error=str(conn.error))
            return
        self.n["fakelag_complete"] += 1
        self.fakelag_delays.append(time.monotonic() - t0)

    async def _leave(self, conn: Conn, how: str) -> None:
        n = self.n
        n[f"exit_{how}"] += 1
        joined = sorted(conn.joined)
        if how == "quit":
            conn.write(b"QUIT :soak over\r\n")
            try:
                async with asyncio.timeout(20):
                    await conn.closed
            except TimeoutError:
                n["quit_not_closed"] += 1
                conn.abort_rst()
        elif how == "rst":
            conn.abort_rst()
        elif how == "rst-after-send":
            if joined:
                conn.write(conn.message(self.rng.choice(joined)))
                n["sent"] += 1
            conn.abort_rst()
        elif how == "fin":
            assert conn.transport is not None
            conn.transport.close()
        elif how == "midline":
            assert conn.transport is not None
            chan = self.chan_names[joined[0]] if joined else b"#x"
            conn.write(b"PRIVMSG " + chan + b" :partial-line-never-terminated")
            conn.transport.close()
        if how in ("fin", "midline"):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(20):
                    await conn.closed

    def mass_drop(self, fraction: float) -> int:
        victims = [c for c in self.live.values() if c.registered.done() and not c.closed.done()]
        victims = self.rng.sample(victims, int(len(victims) * fraction))
        for c in victims:
            c.dropped = True
            c.abort_rst()
        return len(victims)

    # ----------------------------------------------------------------- phases

    async def population(self, until: float, target: Callable[[float], int], warm: bool) -> None:
        """Keep ``target(t)`` sessions alive until ``until`` (soak clock), <= connect_rate/s."""
        cfg, rng = self.cfg, self.rng
        tick = 0.05
        budget = 0.0
        while self.now() < until and not self.stopping:
            budget = min(budget + cfg.connect_rate * tick, cfg.connect_rate)
            want = target(self.now()) - len(self.sessions)
            while want > 0 and budget >= 1 and self.n["sessions"] < cfg.max_sessions:
                kind = pick(rng, KINDS) if not warm else "normal"
                self.spawn(kind, rng.uniform(*cfg.lifetime))
                want -= 1
                budget -= 1
            await asyncio.sleep(tick)

    async def redis_outage(self, seconds: float) -> None:
        await asyncio.to_thread(self.redis.stop)
        self.event("redis stopped (SIGKILL)", seconds=seconds)
        self.n["redis_outages"] += 1
        await asyncio.sleep(seconds)
        await asyncio.to_thread(self.redis.start)
        self.event("redis started")

    async def redis_events(self, start: float) -> None:
        cfg = self.cfg
        outages: list[float] = []
        at = cfg.redis_every / 2
        while cfg.redis_every > 0 and at + cfg.redis_down <= cfg.duration - 5:
            outages.append(at)
            at += cfg.redis_every
        # Redis is up between the outages: FLUSHALL in the 1st such gap after an outage,
        # CLIENT PAUSE in the 2nd (or at 1/3 and 2/3 of the only one).
        bounds = [0.0, *(x for a in outages for x in (a, a + cfg.redis_down)), cfg.duration]
        gaps = [(bounds[i], bounds[i + 1]) for i in range(0, len(bounds) - 1, 2)]
        up = gaps[1:] or gaps
        if len(up) >= 2:
            flush_at, pause_at = sum(up[0]) / 2, sum(up[1]) / 2
        else:
            a, b = up[0]
            flush_at, pause_at = a + (b - a) / 3, a + 2 * (b - a) / 3
        plan = [(t, "outage") for t in outages] + [(flush_at, "flushall"), (pause_at, "pause")]
        for when, what in sorted(plan):
            delay = start + when - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            if what == "outage":
                await self.redis_outage(cfg.redis_down)
            elif what == "flushall":
                reply = await asyncio.to_thread(self.redis.command, "FLUSHALL")
                self.n["redis_flushall"] += 1
                self.event("redis FLUSHALL", reply=reply.decode(errors="replace"))
            else:
                pause = ("CLIENT", "PAUSE", "3000", "ALL")
                self.redis.unhealthy.append((time.time(), time.time() + 3.0))
                reply = await asyncio.to_thread(self.redis.command, *pause)
                self.n["redis_pauses"] += 1
                self.event("redis CLIENT PAUSE 3000 ALL", reply=reply.decode(errors="replace"))

    async def wind_down(self, timeout: float = 90.0) -> None:
        self.stopping = True
        if not self.stop_fut.done():
            self.stop_fut.set_result(None)
        pending = set(self.sessions)
        if pending:
            _, still = await asyncio.wait(pending, timeout=timeout)
            if still:
                self.event("sessions still running after wind-down", count=len(still))
                for conn in list(self.live.values()):
                    conn.abort_rst()
                for t in still:
                    t.cancel()
                await asyncio.wait(still, timeout=10)
        self.stopping = False
        self.stop_fut = self.loop.create_future()

    async def warmup(self) -> None:
        cfg = self.cfg
        self.phase = "warmup"
        start = self.now()
        churn: asyncio.Task[None] | None = None
        if cfg.warmup_churn:  # the full churn mix at --clients, no waves or drops
            self.event("warm-up with the full churn", clients=cfg.clients, seconds=cfg.warmup)
            churn = self.loop.create_task(
                self.population(start + cfg.warmup, lambda t: cfg.clients, warm=False)
            )
        else:
            self.event("warm-up", clients=cfg.warmup_clients, seconds=cfg.warmup)
            per = max(1, cfg.channels // max(1, cfg.warmup_clients))
            for i in range(cfg.warmup_clients):
                chans = sorted(
                    {(i * per + j) % cfg.channels for j in range(per)}
                    | {self.rng.randrange(cfg.channels)}
                )
                self.spawn("normal", cfg.warmup + 60, chans)
            self.spawn("flood", cfg.warmup, [0])
            self.spawn("fakelag", cfg.warmup, [1 % cfg.channels])
            self.spawn("early", cfg.warmup)
        await asyncio.sleep(min(3.0, cfg.warmup / 4))
        if cfg.redis_every > 0:
            await self.redis_outage(min(7.0, max(cfg.warmup / 3, 1.0)))
        await asyncio.sleep(max(0.0, start + cfg.warmup - self.now()))
        if churn is not None:
            await churn
        # every channel gets at least one message before the baseline
        for c in list(self.live.values()):
            if c.joined and c.open:
                for chan in sorted(c.joined):
                    c.write(c.message(chan))
                    self.n["sent"] += 1
        await asyncio.sleep(2.0)
        await self.wind_down()

    async def churn(self) -> None:
        cfg = self.cfg
        self.phase = "churn"
        start = self.now()
        self.event("churn", clients=cfg.clients, seconds=cfg.duration, wave=cfg.wave)
        low = max(1, cfg.clients // 4)

        def target(t: float) -> int:
            return cfg.clients if ((t - start) % cfg.wave) < cfg.wave * 0.6 else low

        async def drops() -> None:
            at = start + cfg.wave * 0.6
            while at < start + cfg.duration:
                await asyncio.sleep(max(0.0, at - self.now()))
                dropped = self.mass_drop(0.25)
                self.n["mass_drops"] += 1
                self.n["mass_dropped_clients"] += dropped
                self.event("mass RST drop", clients=dropped)
                at += cfg.wave

        helpers = [self.loop.create_task(drops()), self.loop.create_task(self.redis_events(start))]
        try:
            await self.population(start + cfg.duration, target, warm=False)
        finally:
            helpers[0].cancel()
            # an outage or pause in progress finishes before the wind-down (Redis comes back)
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(helpers[1], timeout=cfg.redis_down + 15)
            await asyncio.gather(*helpers, return_exceptions=True)
            if self.redis.proc is None:
                await asyncio.to_thread(self.redis.start)
                self.event("redis started (after the churn)")
        self.phase = "wind-down"
        self.event("churn over: every client quits", sessions=len(self.live))
        await self.wind_down()

    async def read_history(self, label: str) -> dict[int, list[tuple[bytes, bytes, bytes, bytes]]]:
        """Every channel's history, read by ``readers`` parallel reader connections."""
        queue = list(range(self.cfg.channels))
        result: dict[int, list[tuple[bytes, bytes, bytes, bytes]]] = {}
        failures: list[str] = []

        async def reader(i: int) -> None:
            self.ids += 1
            nick = f"{self.prefix}r{self.ids:x}".encode()
            conn = Reader(self.loop, nick)
            try:
                async with asyncio.timeout(30):
                    await self.loop.create_connection(lambda: conn, HOST, self.port)
                    await conn.registered
                while queue:
                    chan = queue.pop()
                    result[chan] = await conn.history(self.chan_names[chan])
                conn.write(b"QUIT :read\r\n")
                async with asyncio.timeout(20):
                    await conn.closed
            except (OSError, ConnectionError, RuntimeError, TimeoutError) as exc:
                failures.append(f"{nick.decode()}: {exc!r}"[:300])
                if conn.transport is not None:
                    conn.transport.abort()

        t0 = time.monotonic()
        await asyncio.gather(*(reader(i) for i in range(min(self.cfg.readers, len(queue) or 1))))
        self.event(
            f"history read ({label})",
            channels=len(result),
            seconds=round(time.monotonic() - t0, 1),
            rows=sum(len(r) for r in result.values()),
            failures=len(failures),
        )
        if failures:
            raise RuntimeError(f"history read ({label}) failed: {failures[:3]}")
        return result

    def check_history(
        self, history: dict[int, list[tuple[bytes, bytes, bytes, bytes]]]
    ) -> dict[str, Any]:
        """Accepted messages: each exactly once, in its channel, per-sender order, same msgid."""
        seen: Counter[int] = Counter()
        where: dict[int, int] = {}
        msgids: Counter[bytes] = Counter()
        problems: dict[str, list[str]] = {
            "missing": [],
            "duplicate": [],
            "misrouted": [],
            "unknown": [],
            "reordered": [],
            "msgid_mismatch": [],
        }
        time_regressions = 0
        for chan, rows in history.items():
            last_seq: dict[int, int] = {}
            last_time = b""
            for msgid, when, _command, text in rows:
                msgids[msgid] += 1
                if when < last_time:
                    time_regressions += 1
                last_time = max(last_time, when)
                key = message_key(text)
                if key is None or key not in self.sent:
                    problems["unknown"].append(f"{self.chan_names[chan].decode()}: {text[:60]!r}")
                    continue
                seen[key] += 1
                where[key] = chan
                if self.sent[key] != chan:
                    problems["misrouted"].append(f"k{key // KEY_SPAN}.{key % KEY_SPAN}")
                cid, seq = divmod(key, KEY_SPAN)
                if seq <= last_seq.get(cid, 0):
                    problems["reordered"].append(f"{self.chan_names[chan].decode()} k{cid}.{seq}")
                last_seq[cid] = seq
                echo_msgid = self.accepted.get(key)
                if echo_msgid and echo_msgid != msgid:
                    problems["msgid_mismatch"].append(f"k{cid}.{seq}")
        for key, count in seen.items():
            if count > 1:
                problems["duplicate"].append(f"k{key // KEY_SPAN}.{key % KEY_SPAN} x{count}")
        for key in self.accepted:
            if seen[key] == 0:
                name = self.chan_names[self.sent[key]].decode()
                problems["missing"].append(f"{name} k{key // KEY_SPAN}.{key % KEY_SPAN}")
        rows_total = sum(len(r) for r in history.values())
        return {
            "rows": rows_total,
            "accepted": len(self.accepted),
            "accepted_found": sum(1 for k in self.accepted if seen[k] >= 1),
            "stored_not_acknowledged": sum(1 for k in seen if k not in self.accepted),
            "sent_neither_stored_nor_acknowledged": len(self.sent)
            - len(self.accepted)
            - sum(1 for k in seen if k not in self.accepted),
            "duplicate_msgids": sum(1 for m, c in msgids.items() if c > 1),
            "time_regressions": time_regressions,
            **{k: len(v) for k, v in problems.items()},
            "examples": {k: v[:5] for k, v in problems.items() if v},
        }

    # ----------------------------------------------------------------- main

    async def main(self) -> dict[str, Any]:
        cfg = self.cfg
        sampler = self.loop.create_task(self.sampler())
        machine_t0 = time.monotonic()
        gen_cpu0 = time.process_time()
        try:
            await self.warmup()
            if await self.wait_connections(0, 60) is None:
                raise RuntimeError("warm-up: connections did not drop to 0")
            warm_history = await self.read_history("warm-up")
            warm_check = self.check_history(warm_history)
            await self.wait_connections(0, 30)
            self.phase = "idle"
            await asyncio.sleep(cfg.idle)
            baseline = await self.measure("baseline")
            base_metrics = await self.metrics()
            cpu0 = proc_cpu_seconds(self.pid) or 0.0
            churn_t0 = time.monotonic()
            await self.churn()
            churn_seconds = time.monotonic() - churn_t0
            server_cpu = (proc_cpu_seconds(self.pid) or 0.0) - cpu0
            self.phase = "settle"
            settle = await self.wait_connections(0, 120)
            self.event(
                "connections back to 0" if settle is not None else "connections NOT 0",
                seconds=None if settle is None else round(settle, 1),
            )
            self.phase = "idle"
            await asyncio.sleep(cfg.idle)
            final = await self.measure("final")
            peak_rss = max((s.proc.get("VmRSS", 0) for s in self.samples), default=0)
            churn_metrics = await self.metrics()
            # history: store path (Redis down, breaker open), then cache path (Redis back)
            self.phase = "verify"
            await asyncio.to_thread(self.redis.stop)
            self.event("redis stopped for the store-path read")
            store_read = await self.read_history("store")
            await asyncio.to_thread(self.redis.start)
            self.event("redis started for the cache-path read")
            await asyncio.sleep(6.0)  # past the breaker's default 5 s cool-down
            cache_read = await self.read_history("cache")
            cache_read_again = await self.read_history("cache-warm")
            check = self.check_history(cache_read)
            check["store_path_identical"] = store_read == cache_read
            check["cache_warm_identical"] = cache_read_again == cache_read
            check["event_rows"] = await asyncio.to_thread(self.count_event_rows)
            await self.wait_connections(0, 60)
            self.phase = "idle"
            await asyncio.sleep(cfg.idle)
            after_verify = await self.measure("after history reads")
            end_metrics = await self.metrics()
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
        return {
            "warmup_history": warm_check,
            "baseline": baseline,
            "final": final,
            "after_verify": after_verify,
            "peak_rss_kb": peak_rss,
            "history": check,
            "metrics": {"baseline": base_metrics, "churn_end": churn_metrics, "end": end_metrics},
            "churn_seconds": round(churn_seconds, 1),
            "server_cpu_pct_churn": round(100 * server_cpu / churn_seconds, 1),
            "generator_cpu_pct": round(
                100 * (time.process_time() - gen_cpu0) / (time.monotonic() - machine_t0), 1
            ),
        }

    def count_event_rows(self) -> int:
        """Rows of joins, parts, quits... (draft/event-playback) in the store: written
        like messages, never served to the soak's readers, which ask without it."""
        path = self.dir / "history.db"
        marks = ",".join("?" for _ in EVENT_COMMANDS)
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            row = db.execute(
                f"SELECT COUNT(*) FROM messages WHERE command IN ({marks})", EVENT_COMMANDS
            ).fetchone()
        return int(row[0])

    def stop_server(self) -> dict[str, Any]:
        assert self.server is not None
        t0 = time.monotonic()
        self.server.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
            self.server.kill()
            self.server.wait(timeout=10)
        return {"returncode": code, "seconds": round(time.monotonic() - t0, 2)}


# --------------------------------------------------------------------- report


def log_time(line: str) -> float | None:
    """Epoch seconds of a text log line (local time, as the server wrote it)."""
    try:
        return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    except ValueError:
        return None


def log_summary(text: str, unhealthy: list[tuple[float, float]]) -> dict[str, Any]:
    """Breaker transitions, cache drops, error lines; breaker openings on a healthy Redis.

    An opening counts as expected when it falls inside a time Redis was down or
    paused, or within 1.5 s after (the failures that open it may trail the event).
    """
    lines = text.splitlines()
    breaker = [ln for ln in lines if "circuit breaker" in ln]
    healthy_opens = []
    for ln in breaker:
        t = log_time(ln)
        opened = "circuit breaker open:" in ln and t is not None
        if opened and not any(a - 0.5 <= (t or 0) <= b + 1.5 for a, b in unhealthy):
            healthy_opens.append(ln[:200])
    transitions: Counter[str] = Counter()
    for ln in breaker:
        for state in ("half-open", "open", "closed"):
            if f"circuit breaker {state}:" in ln:
                transitions[state] += 1
                break
    bad = [ln for ln in lines if any(b in ln for b in LOG_BAD)]
    return {
        "lines": len(lines),
        "breaker_transitions": dict(transitions),
        "breaker_log": [ln[:200] for ln in breaker[:60]],
        "breaker_opens_redis_healthy": len(healthy_opens),
        "breaker_opens_redis_healthy_log": healthy_opens[:20],
        "redis_unhealthy": [
            (time.strftime("%H:%M:%S", time.localtime(a)), round(b - a, 1)) for a, b in unhealthy
        ],
        "cache_drops": sum(1 for ln in lines if "history cache: dropping" in ln),
        "cache_drop_reasons": dict(
            Counter(ln.split("(", 1)[-1].rstrip(")") for ln in lines if "cache: dropping" in ln)
        ),
        "warnings": sum(1 for ln in lines if " WARNING " in ln),
        "bad_lines": len(bad),
        "bad_examples": [ln[:300] for ln in bad[:10]],
    }


def census_growth(
    before: dict[str, Any], after: dict[str, Any], min_growth: int = 200
) -> dict[str, int]:
    """Object types whose live count grew by ``min_growth`` or more."""
    b, a = before.get("types", {}), after.get("types", {})
    grown = {k: a[k] - b.get(k, 0) for k in a if a[k] - b.get(k, 0) >= min_growth}
    return dict(sorted(grown.items(), key=lambda kv: -kv[1]))


def checks(soak: Soak, r: dict[str, Any]) -> list[tuple[str, bool, str]]:
    cfg = soak.cfg
    out: list[tuple[str, bool, str]] = []
    base, final = r["baseline"], r["final"]
    b_rss, f_rss = base["proc"].get("VmRSS", 0), final["proc"].get("VmRSS", 0)
    pct = 100 * (f_rss - b_rss) / b_rss if b_rss else float("inf")
    detail = f"{b_rss} -> {f_rss} KiB ({pct:+.1f} %, limit +{cfg.rss_tolerance:g} %)"
    bt_rss, ft_rss = base.get("rss_after_trim_kb"), final.get("rss_after_trim_kb")
    if bt_rss and ft_rss:
        detail += (
            f"; after gc.collect() + malloc_trim(0): {bt_rss} -> {ft_rss} KiB "
            f"({100 * (ft_rss - bt_rss) / bt_rss:+.1f} %)"
        )
    out.append(("RSS back within tolerance of the baseline", pct <= cfg.rss_tolerance, detail))
    out.append(("chat_connections back to 0", final["connections"] == 0, f"{final['connections']}"))
    b_fd, f_fd = base["proc"].get("fds", 0), final["proc"].get("fds", 0)
    b_kinds, f_kinds = base["fd_kinds"], final["fd_kinds"]
    clients = f_kinds.get("client", 0)
    out.append(("no client socket left open (fds)", clients == 0, f"{clients}"))
    dead = {k: v for k, v in f_kinds.items() if "CLOSE_WAIT" in k or k.endswith(" CLOSE")}
    out.append(("no dead (CLOSE_WAIT) socket held", not dead, str(dead or "none")))
    b_redis = sum(v for k, v in b_kinds.items() if k.startswith("redis "))
    f_redis = sum(v for k, v in f_kinds.items() if k.startswith("redis "))
    out.append(
        (
            f"Redis pool within the cache's POOL_SIZE ({REDIS_POOL_MAX})",
            f_redis <= REDIS_POOL_MAX,
            f"{b_redis} -> {f_redis}",
        )
    )
    pool = {k: v for k, v in f_kinds.items() if k.startswith("redis ")}
    out.append(
        (
            "open fds back to the baseline (Redis pool aside)",
            f_fd - f_redis <= b_fd - b_redis,
            f"{b_fd - b_redis} -> {f_fd - f_redis} (all fds {b_fd} -> {f_fd}, Redis pool {pool})",
        )
    )
    b_th, f_th = base["proc"].get("Threads", 0), final["proc"].get("Threads", 0)
    out.append(("threads back to the baseline", f_th <= b_th, f"{b_th} -> {f_th}"))
    bt, ft = base["census"].get("tasks"), final["census"].get("tasks")
    if bt is not None and ft is not None:
        out.append(
            (
                "asyncio tasks back to the baseline",
                ft <= bt,
                f"{bt} -> {ft} ({final['census'].get('task_names')})",
            )
        )
    if base["census"].get("types") and final["census"].get("types"):
        grown = census_growth(base["census"], final["census"], min_growth=1)
        ours = {k: v for k, v in grown.items() if k.split(".")[0] in ("server", "chat")}
        out.append(
            (
                "no server/chat object type grew by 50+ (gc census)",
                all(v < 50 for v in ours.values()),
                str(ours or "none grew"),
            )
        )
        gb, gf = base["census"]["gc_objects"], final["census"]["gc_objects"]
        out.append(
            (
                "live gc-tracked objects within 10 % of the baseline",
                gf <= gb * 1.1,
                f"{gb} -> {gf} ({100 * (gf - gb) / gb:+.1f} %)",
            )
        )
    h = r["history"]
    for key in ("missing", "duplicate", "misrouted", "unknown", "reordered", "msgid_mismatch"):
        out.append((f"history: {key} messages", h[key] == 0, str(h[key])))
    out.append(
        (
            "history: every accepted message found",
            h["accepted_found"] == h["accepted"],
            f"{h['accepted_found']}/{h['accepted']}",
        )
    )
    writes = metric_sum(r["metrics"]["end"], "chat_history_writes_total")
    events = h.get("event_rows", 0)
    out.append(
        (
            "history rows (messages read + events) == chat_history_writes_total",
            h["rows"] + events == writes,
            f"{h['rows']} message rows + {events} event rows, metric {writes:.0f}",
        )
    )
    out.append(
        (
            "history: store path (Redis down) == cache path",
            bool(h["store_path_identical"]),
            str(h["store_path_identical"]),
        )
    )
    out.append(
        (
            "history: cache path read twice, identical",
            bool(h["cache_warm_identical"]),
            str(h["cache_warm_identical"]),
        )
    )
    w = r["warmup_history"]
    out.append(
        (
            "warm-up history complete",
            w["accepted_found"] == w["accepted"]
            and not any(w[k] for k in ("duplicate", "unknown", "reordered")),
            f"{w['accepted_found']}/{w['accepted']}",
        )
    )
    n = soak.n
    fm = metric_sum(r["metrics"]["end"], "chat_flood_disconnects_total")
    seen, dropped = n["flood_excess_flood"], n["flood_dropped"]
    ok = (
        seen <= fm <= seen + dropped
        and n["flood_not_disconnected"] + n["flood_closed_otherwise"] == 0
    )
    out.append(
        (
            "every flooder got ERROR :Excess Flood (and the metric agrees)",
            ok,
            f"{n['flood_sent']} flooders: Excess Flood {seen}, RST-dropped first {dropped}, "
            f"closed otherwise {n['flood_closed_otherwise']}, not disconnected "
            f"{n['flood_not_disconnected']}; chat_flood_disconnects_total {fm:.0f}",
        )
    )
    out.append(
        (
            "no fakelagged client disconnected or timed out",
            soak.n["fakelag_disconnected"] + soak.n["fakelag_timeout"] == 0,
            f"{soak.n['fakelag_complete']} complete, {soak.n['fakelag_disconnected']} "
            f"disconnected, {soak.n['fakelag_timeout']} timed out",
        )
    )
    unexpected = {k: v for k, v in soak.errors.items() if k not in ("Quit", "Excess Flood")}
    out.append(("no unexpected ERROR from the server", not unexpected, str(unexpected or "none")))
    stop = r["shutdown"]
    out.append(("server exits 0 on SIGTERM", stop["returncode"] == 0, str(stop)))
    logs = r["log"]
    out.append(
        (
            "no traceback/error lines in the server log",
            logs["bad_lines"] == 0,
            f"{logs['bad_lines']} {logs['bad_examples'][:2]}",
        )
    )
    out.append(
        (
            "breaker never opened while Redis was up and answering",
            logs["breaker_opens_redis_healthy"] == 0,
            f"{logs['breaker_opens_redis_healthy']} of {logs['breaker_transitions'].get('open', 0)}"
            " openings",
        )
    )
    out.append(("server never died", not any(e["event"] == "server died" for e in soak.events), ""))
    return out


def percentile_s(values: list[float], p: float) -> float:
    ms = sorted(int(v * 1e6) for v in values)
    return round(percentile(ms, p) / 1e3, 1)


def human(soak: Soak, r: dict[str, Any], results: list[tuple[str, bool, str]]) -> str:
    cfg, n = soak.cfg, soak.n
    base, final, after = r["baseline"], r["final"], r["after_verify"]
    m_end = r["metrics"]["end"]
    lines = [
        "",
        f"soak: {cfg.duration:g} s churn, up to {cfg.clients} clients, {cfg.channels} channels, "
        f"waves of {cfg.wave:g} s; flood burst {cfg.flood_burst} rate {cfg.flood_rate:g}/s "
        f"max-queue {cfg.flood_max_queue}",
        (
            f"warm-up: full churn at {cfg.clients} clients for {cfg.warmup:g} s"
            if cfg.warmup_churn
            else f"warm-up: {cfg.warmup_clients} clients for {cfg.warmup:g} s"
        )
        + f", then {cfg.idle:g} s idle before each measurement",
        f"server: {shlex.join(soak.server_command)}",
        f"machine: {json.dumps(r['machine'])}",
        f"revision: {r['revision']}",
        "",
        f"sessions {n['sessions']} (registered {n['registered']}), kinds "
        + ", ".join(f"{k[5:]} {v}" for k, v in sorted(n.items()) if k.startswith("kind_")),
        "exits: "
        + ", ".join(f"{k[5:]} {v}" for k, v in sorted(n.items()) if k.startswith("exit_"))
        + f", closed by server {n['closed_by_server']}",
        f"mass RST drops {n['mass_drops']} ({n['mass_dropped_clients']} clients); "
        f"connect failures {n['connect_failed']}, session errors {n['session_errors']}",
        f"messages sent {n['sent']}, accepted (echoed) {len(soak.accepted)}, "
        f"echo p50 {percentile_s(soak.latencies, 50)} ms p99 {percentile_s(soak.latencies, 99)} ms "
        f"max {percentile_s(soak.latencies, 100)} ms",
        f"flooders {n['flood_sent']}: Excess Flood ERROR seen {n['flood_excess_flood']}, "
        f"chat_flood_disconnects_total {metric_sum(m_end, 'chat_flood_disconnects_total'):.0f}; "
        f"fakelag bursts complete {n['fakelag_complete']} (delay p50 "
        f"{percentile_s(soak.fakelag_delays, 50) / 1000:.1f} s, max "
        f"{percentile_s(soak.fakelag_delays, 100) / 1000:.1f} s)",
        f"server ERROR reasons: {dict(soak.errors)}",
        f"redis: {n['redis_outages']} outages (SIGKILL, {cfg.redis_down:g} s each, one more in the "
        f"warm-up), {n['redis_flushall']} FLUSHALL, {n['redis_pauses']} CLIENT PAUSE 3 s; "
        f"breaker transitions in the log {r['log']['breaker_transitions']}; cache drops "
        f"{r['log']['cache_drop_reasons']}",
        f"cache hits {metric_sum(m_end, 'chat_cache_hits_total'):.0f} misses "
        f"{metric_sum(m_end, 'chat_cache_misses_total'):.0f} fills "
        f"{metric_sum(m_end, 'chat_cache_fills_total'):.0f} invalidations "
        f"{metric_sum(m_end, 'chat_cache_invalidations_total'):.0f}; deliveries "
        f"{metric_sum(m_end, 'chat_deliveries_total'):.0f}; connections opened "
        f"{metric_sum(m_end, 'chat_connections_opened_total'):.0f}",
        f"server CPU during churn {r['server_cpu_pct_churn']} % of a core; generator "
        f"{r['generator_cpu_pct']} %",
        "",
        f"RSS KiB: baseline {base['proc'].get('VmRSS')} (after GC {base['rss_after_gc_kb']}, "
        f"after malloc_trim {base['rss_after_trim_kb']}), "
        f"peak sampled {r['peak_rss_kb']} (VmHWM {final['proc'].get('VmHWM')}), final "
        f"{final['proc'].get('VmRSS')} (after GC {final['rss_after_gc_kb']}, after malloc_trim "
        f"{final['rss_after_trim_kb']}), after the history "
        f"reads {after['proc'].get('VmRSS')}",
        f"fds {base['proc'].get('fds')} -> {final['proc'].get('fds')} -> "
        f"{after['proc'].get('fds')}",
        f"fds at baseline {base['fd_kinds']}",
        f"fds at final {final['fd_kinds']}",
        f"fds after the history reads {after['fd_kinds']}",
        f"threads {base['proc'].get('Threads')} -> "
        f"{final['proc'].get('Threads')}; tasks {base['census'].get('tasks')} -> "
        f"{final['census'].get('tasks')} -> {after['census'].get('tasks')}",
        f"gc objects {base['census'].get('gc_objects')} -> {final['census'].get('gc_objects')}; "
        f"types grown by >= 50: {census_growth(base['census'], final['census'], min_growth=50)}",
        f"history: {json.dumps({k: v for k, v in r['history'].items() if k != 'examples'})}",
    ]
    if r["history"].get("examples"):
        lines.append(f"history examples: {r['history']['examples']}")
    lines += ["", "| check | result | detail |", "|---|---|---|"]
    for name, ok, detail in results:
        lines.append(f"| {name} | {'PASS' if ok else '**FAIL**'} | {detail} |")
    return "\n".join(lines)


# --------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    d = Settings()
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=d.duration, help="churn seconds (300)")
    p.add_argument("--clients", type=int, default=d.clients, help="most concurrent clients")
    p.add_argument("--channels", type=int, default=d.channels)
    p.add_argument("--wave", type=float, default=d.wave, help="seconds per wave (high 60 %%, low)")
    p.add_argument("--connect-rate", type=float, default=d.connect_rate, help="new conns/s at most")
    p.add_argument("--max-sessions", type=int, default=d.max_sessions, help="sessions in all")
    p.add_argument(
        "--act-interval",
        type=float,
        default=d.act_interval,
        help="mean seconds between a client's actions",
    )
    p.add_argument("--warmup", type=float, default=d.warmup, help="warm-up seconds")
    p.add_argument("--warmup-clients", type=int, default=d.warmup_clients)
    p.add_argument(
        "--warmup-churn",
        action="store_true",
        help="warm up with the full churn at --clients instead (baseline after a peak)",
    )
    p.add_argument("--idle", type=float, default=d.idle, help="idle seconds before measuring")
    p.add_argument("--flood-burst", type=int, default=d.flood_burst)
    p.add_argument("--flood-rate", type=float, default=d.flood_rate)
    p.add_argument("--flood-max-queue", type=int, default=d.flood_max_queue)
    p.add_argument("--flood-lines", type=int, default=d.flood_lines, help="lines a flooder sends")
    p.add_argument(
        "--redis-every",
        type=float,
        default=d.redis_every,
        help="seconds between Redis outages (0: none)",
    )
    p.add_argument("--redis-down", type=float, default=d.redis_down, help="seconds per outage")
    p.add_argument("--readers", type=int, default=d.readers, help="parallel history readers")
    p.add_argument("--rss-tolerance", type=float, default=d.rss_tolerance, help="%% over baseline")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-probe", action="store_true", help="plain python -m server, no task count")
    p.add_argument("--server-arg", action="append", default=[], help="extra server flag")
    p.add_argument("--keep", metavar="DIR", help="copy the server log and history DB here")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object too")
    p.add_argument("--out", metavar="FILE", help="write the JSON result to FILE")
    return p


def settings_from(argv: list[str] | None) -> Settings:
    p = build_parser()
    a = p.parse_args(argv)
    if a.clients < 1 or a.channels < 1 or a.duration <= 0 or a.wave <= 0:
        p.error("need clients, channels, duration and wave > 0")
    if a.redis_every and a.redis_down >= a.redis_every:
        p.error("--redis-down must be shorter than --redis-every")
    return Settings(
        duration=a.duration,
        clients=a.clients,
        channels=a.channels,
        wave=a.wave,
        connect_rate=a.connect_rate,
        max_sessions=a.max_sessions,
        act_interval=a.act_interval,
        warmup=a.warmup,
        warmup_clients=a.warmup_clients,
        warmup_churn=a.warmup_churn,
        idle=a.idle,
        flood_burst=a.flood_burst,
        flood_rate=a.flood_rate,
        flood_max_queue=a.flood_max_queue,
        flood_lines=a.flood_lines,
        redis_every=a.redis_every,
        redis_down=a.redis_down,
        readers=a.readers,
        rss_tolerance=a.rss_tolerance,
        seed=a.seed,
        probe=not a.no_probe,
        server_args=a.server_arg,
        keep=a.keep,
        json=a.json,
        out=a.out,
    )


def watchdog(soak: Soak, seconds: float) -> None:
    """Backstop: if the run is still going after ``seconds``, kill what it started and exit."""

    def fire() -> None:
        print(f"soak: watchdog: still running after {seconds:.0f}s, giving up", file=sys.stderr)
        with contextlib.suppress(Exception):
            soak.cleanup()
        os._exit(2)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def main(argv: list[str] | None = None) -> int:
    cfg = settings_from(argv)
    if not shutil.which("redis-server") and not Path("/usr/bin/redis-server").exists():
        print("soak: redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 2
    soft, _ = raise_nofile(cfg.clients * 2 + cfg.readers + 1000)
    if soft < cfg.clients + cfg.readers + 200:
        print(f"soak: RLIMIT_NOFILE {soft} is too low for {cfg.clients} clients", file=sys.stderr)
        return 2
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {int(GENERATOR_CORE)})  # redis-server inherits this
    soak = Soak(cfg)
    watchdog(soak, cfg.warmup + cfg.duration + 8 * cfg.idle + 900)
    result: dict[str, Any] = {"settings": dataclasses.asdict(cfg)}
    try:
        soak.redis.start()
        soak.start_server()
        soak.event("started", server_pid=soak.pid, port=soak.port, redis_port=soak.redis.port)
        result["machine"] = machine_info()
        result["revision"] = revision()
        result.update(soak.loop.run_until_complete(soak.main()))
        result["shutdown"] = soak.stop_server()
        result["log"] = log_summary(soak.log_text(), soak.redis.unhealthy)
    except (RuntimeError, OSError) as exc:
        print(f"soak: error: {exc}", file=sys.stderr)
        print(soak.log_text()[-3000:], file=sys.stderr)
        soak.cleanup()
        return 2
    except BaseException:
        soak.cleanup()
        raise
    finally:
        soak.loop.close()
    soak.cleanup()
    results = checks(soak, result)
    result["server_command"] = shlex.join(soak.server_command)
    result["counters"] = dict(soak.n)
    result["server_errors"] = dict(soak.errors)
    result["accepted"] = len(soak.accepted)
    result["echo_ms"] = {p: percentile_s(soak.latencies, p) for p in (50, 99, 100)}
    result["slow_echoes"] = soak.slow_echoes
    result["events"] = soak.events
    result["samples"] = [s.__dict__ for s in soak.samples]
    result["checks"] = [{"check": c, "ok": ok, "detail": d} for c, ok, d in results]
    result["ok"] = all(ok for _, ok, _ in results)
    print(human(soak, result, results))
    text = json.dumps(result, default=str)
    if cfg.out:
        Path(cfg.out).write_text(text + "\n")
    if cfg.json:
        print(text)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
