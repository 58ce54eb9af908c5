"""Typing latency of the full-screen client while a busy channel floods it.

    .venv/bin/python -m bench.client_typing                      # synthetic, 0 and 1000 msg/s
    .venv/bin/python -m bench.client_typing --rate 0,1000,5000 --duration 10
    .venv/bin/python -m bench.client_typing --mode server        # real server + bench.loadgen

The real :class:`client.ui.app.ChatUI` runs headless: keys go in through a
prompt_toolkit pipe input (the same vt100 parser and key processor as a terminal),
the screen goes out through a vt100 output of ``--rows`` x ``--columns`` into a sink
that only counts bytes (so rendering costs what it costs on a terminal).

Incoming load (``--rate`` messages per second into the current channel, whose 200
members speak in turn, 1% mention us, 5% carry mIRC colours):

synthetic  lines are fed to the client's Session from a task on the UI's event loop,
           in ticks of ``--tick`` seconds, as the connection's read loop would.
server     our server runs as a subprocess (``--db ''``, flood limits off) and
           ``bench.loadgen`` sends ``--rate`` messages/s through it (10 senders);
           the client connects over TCP with its real Connection. Server and
           generator are pinned to core 0, the client to core 1 (when there are 2).

While the load runs, a typist sends one printable key every 1/``--kps`` seconds
(Enter after every 40 keys, which sends a message) and records, per key:

key->buffer  from writing the key into the pipe to the key being in the input buffer
             (prompt_toolkit's on_text_changed);
key->screen  to the end of the first redraw that shows it (after_render).

Prints one table per run (percentiles in ms) and, with ``--json``, one JSON object
per run. Nothing here is asserted; see docs/BENCHMARKS.md for recorded numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput, Output
from prompt_toolkit.output.vt100 import Vt100_Output

from chat.servertime import format_time
from client.config import ClientConfig
from client.connection import Connection, ConnectionSettings
from client.session import Session, SessionConfig
from client.ui.app import ChatUI, tune_gc

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
NICK = "typist"
CHANNEL = "#bench"
MEMBERS = 200
WORDS = [
    "deploy",
    "build",
    "queue",
    "merge",
    "review",
    "ship",
    "lunch",
    "coffee",
    "later",
    "patch",
    "release",
    "kernel",
    "latency",
    "network",
    "packet",
    "socket",
    "thread",
    "cache",
    "index",
    "query",
    "shard",
    "replica",
]


class NullSink:
    """A text stream that only counts what is written (the terminal of the benchmark)."""

    encoding = "utf-8"

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: str) -> int:
        self.bytes += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError("not a file")


@dataclass
class Result:
    mode: str
    rate: float  # messages per second asked for
    duration: float
    rows: int
    columns: int
    messages: int = 0  # lines that reached the session while typing
    keys: int = 0
    lost_keys: int = 0  # keys not seen within 2 s
    key_to_buffer_ms: dict[str, float] = field(default_factory=dict)
    key_to_screen_ms: dict[str, float] = field(default_factory=dict)
    renders: int = 0
    render_ms: dict[str, float] = field(default_factory=dict)
    loop_lag_ms: dict[str, float] = field(default_factory=dict)
    cpu_s: float = 0.0  # CPU time of the client process while typing
    output_kb: float = 0.0
    scrollback: int = 0


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    s = sorted(samples)

    def at(q: float) -> float:
        return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 2)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": round(s[-1] * 1000, 2)}


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def member_nick(i: int) -> str:
    return f"user{i:03d}"


def message_line(n: int, now: float, rng: random.Random) -> str:
    nick = member_nick(n % MEMBERS)
    words = rng.choices(WORDS, k=rng.randint(3, 14))
    roll = rng.random()
    if roll < 0.01:
        words.insert(0, f"{NICK}:")
    elif roll < 0.06:
        words[0] = f"\x02{words[0]}\x02"
        words[-1] = f"\x0304{words[-1]}\x03"
    tags = f"@time={format_time(now)};msgid=b{n}"
    return f"{tags} :{nick}!~{nick}@bench.host PRIVMSG {CHANNEL} :{' '.join(words)}"


def synthetic_session() -> Session:
    """A session registered on a fake server and joined to a 200-member channel."""
    s = Session(SessionConfig(nick=NICK, scrollback=2000))
    now = time.time()
    s.connection_made(now)
    s.take_outgoing()
    burst = [
        f":bench.server 001 {NICK} :Welcome",
        f":bench.server 005 {NICK} CHANTYPES=# PREFIX=(ov)@+ CASEMAPPING=rfc1459 :are supported",
        f":bench.server 376 {NICK} :End of MOTD",
        f":{NICK}!~{NICK}@host JOIN {CHANNEL}",
    ]
    names = [f"@{member_nick(0)}", *(member_nick(i) for i in range(1, MEMBERS)), NICK]
    for i in range(0, len(names), 40):
        burst.append(f":bench.server 353 {NICK} = {CHANNEL} :{' '.join(names[i : i + 40])}")
    burst.append(f":bench.server 366 {NICK} {CHANNEL} :End of NAMES")
    for line in burst:
        s.feed(line, now)
    s.take_outgoing()
    buf = s.buffer(CHANNEL)
    assert buf is not None and s.registered
    s.switch(buf)
    return s


class Typist:
    """Sends keys through the pipe and times them to the input buffer and the screen."""

    def __init__(self, ui: ChatUI, send: Any, kps: float) -> None:
        self.ui = ui
        self.send = send
        self.interval = 1.0 / kps
        self.to_buffer: list[float] = []
        self.to_screen: list[float] = []
        self.lost = 0
        self._t0 = 0.0
        self._expect: str | None = None
        self._seen = asyncio.Event()
        self._unrendered: float | None = None  # t0 of a key in the buffer, not yet drawn
        ui.input.on_text_changed += self._changed
        ui.app.after_render += self._rendered

    def _changed(self, _: object) -> None:
        if self._expect is not None and self.ui.input.text == self._expect:
            self.to_buffer.append(time.perf_counter() - self._t0)
            self._expect = None
            self._unrendered = self._t0
            self._seen.set()

    def _rendered(self, _: object) -> None:
        if self._unrendered is not None:
            self.to_screen.append(time.perf_counter() - self._unrendered)
            self._unrendered = None

    async def type(self, duration: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + duration
        rng = random.Random(7)
        count = 0
        while loop.time() < end:
            start = loop.time()
            count += 1
            if count % 41 == 0:
                self.send("\r")  # send the line (a real message through the session)
                await asyncio.sleep(self.interval)
                continue
            ch = rng.choice("abcdefghijklmnopqrstuvwxyz ")
            self._expect = self.ui.input.text + ch
            self._seen.clear()
            self._t0 = time.perf_counter()
            self.send(ch)
            try:
                await asyncio.wait_for(self._seen.wait(), 2.0)
            except TimeoutError:
                self.lost += 1
                self._expect = None
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - start)))


class RenderTimer:
    def __init__(self, ui: ChatUI) -> None:
        self.samples: list[float] = []
        self._start = 0.0
        self.active = False
        ui.app.before_render += self._before
        ui.app.after_render += self._after

    def _before(self, _: object) -> None:
        self._start = time.perf_counter()

    def _after(self, _: object) -> None:
        if self.active:
            self.samples.append(time.perf_counter() - self._start)


async def loop_lag(samples: list[float], period: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    while True:
        t = loop.time()
        await asyncio.sleep(period)
        samples.append(max(0.0, loop.time() - t - period))


def make_output(args: argparse.Namespace) -> tuple[Output, NullSink]:
    sink = NullSink()
    if args.output == "dummy":
        return DummyOutput(), sink
    size = Size(rows=args.rows, columns=args.columns)
    return Vt100_Output(sink, lambda: size, term="xterm-256color"), sink  # type: ignore[arg-type]


# ---------------------------------------------------------------------- synthetic


async def run_synthetic(args: argparse.Namespace, rate: float) -> Result:
    session = synthetic_session()
    conn = Connection(session, ConnectionSettings(host=HOST, port=1))  # never connects
    result = Result("synthetic", rate, args.duration, args.rows, args.columns)
    output, sink = make_output(args)
    with create_pipe_input() as pipe:
        ui = ChatUI(conn, ClientConfig(), input=pipe, output=output)
        if not args.no_gc_tuning:
            tune_gc()  # as chat-client does
        typist = Typist(ui, pipe.send_text, args.kps)
        timer = RenderTimer(ui)
        lags: list[float] = []
        fed = 0
        rng = random.Random(1)
        buf = session.current

        async def feed() -> None:
            nonlocal fed
            loop = asyncio.get_running_loop()
            start = loop.time()
            while True:
                await asyncio.sleep(args.tick)
                due = int((loop.time() - start) * rate) - fed
                now = time.time()
                for _ in range(due):
                    session.feed(message_line(fed, now, rng), now)
                    fed += 1
                conn.flush()

        app_task = asyncio.ensure_future(ui.app.run_async())
        feeder = asyncio.ensure_future(feed()) if rate > 0 else None
        await asyncio.sleep(args.warmup)
        lagger = asyncio.ensure_future(loop_lag(lags))
        fed_before, renders_before, cpu_before = fed, ui.app.render_counter, cpu_seconds()
        timer.active = True
        await typist.type(args.duration)
        timer.active = False
        result.cpu_s = round(cpu_seconds() - cpu_before, 2)
        result.messages = fed - fed_before
        result.renders = ui.app.render_counter - renders_before
        for task in (feeder, lagger):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        ui.app.exit(result=0)
        await app_task
    result.scrollback = len(buf.lines)
    finish(result, typist, timer, lags, sink)
    return result


def finish(
    result: Result, typist: Typist, timer: RenderTimer, lags: list[float], sink: NullSink
) -> None:
    result.keys = len(typist.to_buffer)
    result.lost_keys = typist.lost
    result.key_to_buffer_ms = percentiles(typist.to_buffer)
    result.key_to_screen_ms = percentiles(typist.to_screen)
    result.render_ms = percentiles(timer.samples)
    result.loop_lag_ms = percentiles(lags)
    result.output_kb = round(sink.bytes / 1024, 1)


# ---------------------------------------------------------------------- real server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pinned(core: str) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", core]
    return []


@contextlib.contextmanager
def server_process(port: int, db: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    cmd = [
        *pinned("0"),
        sys.executable,
        "-m",
        "server",
        "--host",
        HOST,
        "--port",
        str(port),
        "--db",
        db,
        "--flood-burst",
        "0",
        "--max-per-host",
        "0",
        "--throttle-burst",
        "0",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def run_server(args: argparse.Namespace, rate: float) -> Result:
    result = Result("server", rate, args.duration, args.rows, args.columns)
    port = free_port()
    prefix = f"ui{os.getpid() % 10000}"
    channel = f"#{prefix}0"
    if (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory() as tmp, server_process(port, f"{tmp}/history.db"):
        session = Session(SessionConfig(nick=NICK, channels=(channel,)))
        conn = Connection(session, ConnectionSettings(host=HOST, port=port, quit_timeout=0.5))
        output, sink = make_output(args)
        with create_pipe_input() as pipe:
            ui = ChatUI(conn, ClientConfig(), input=pipe, output=output)
            if not args.no_gc_tuning:
                tune_gc()  # as chat-client does
            typist = Typist(ui, pipe.send_text, args.kps)
            timer = RenderTimer(ui)
            lags: list[float] = []
            counted = [0]

            def count(event: object) -> None:
                counted[0] += 1

            conn.subscribe(count)
            ui_task = asyncio.ensure_future(ui.run())
            await conn.wait_until(
                lambda: (b := session.buffer(channel)) is not None and b.joined, 15
            )
            conn.switch(channel)
            loadgen = None
            if rate > 0:
                senders = 10
                cmd = [
                    *pinned("0"),
                    sys.executable,
                    "-m",
                    "bench.loadgen",
                    "--port",
                    str(port),
                    "--mode",
                    "traffic",
                    "--clients",
                    str(senders + 1),
                    "--rooms",
                    "1",
                    "--senders",
                    str(senders),
                    "--rate",
                    str(rate / senders),
                    "--warmup",
                    str(args.warmup + 2),
                    "--duration",
                    str(args.duration + 2),
                    "--prefix",
                    prefix,
                    "--json",
                ]
                loadgen = await asyncio.create_subprocess_exec(
                    *cmd,
                    cwd=REPO_ROOT,
                    env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                # Wait until the flood arrives, then a little more for it to settle.
                buf = session.buffer(channel)
                assert buf is not None
                start = counted[0]
                await conn.wait_until(lambda: counted[0] - start > rate, 30)
            await asyncio.sleep(args.warmup)
            lagger = asyncio.ensure_future(loop_lag(lags))
            before = counted[0], ui.app.render_counter, cpu_seconds()
            timer.active = True
            await typist.type(args.duration)
            timer.active = False
            result.cpu_s = round(cpu_seconds() - before[2], 2)
            result.messages = counted[0] - before[0]  # events, ~ one per message
            result.renders = ui.app.render_counter - before[1]
            lagger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lagger
            buf = session.buffer(channel)
            result.scrollback = len(buf.lines) if buf is not None else 0
            conn.close()
            await asyncio.wait_for(ui_task, 10)
            if loadgen is not None:
                with contextlib.suppress(ProcessLookupError):
                    loadgen.terminate()
                await loadgen.wait()
    finish(result, typist, timer, lags, sink)
    return result


# ---------------------------------------------------------------------- main


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def show(r: Result) -> None:
    def fmt(p: dict[str, float]) -> str:
        return " ".join(f"{k} {v:.1f}" for k, v in p.items()) if p else "-"

    got = r.messages / r.duration if r.duration else 0
    print(f"\n{r.mode}, {r.rate:g} msg/s asked ({got:.0f}/s received), {r.rows}x{r.columns} screen")
    print(f"  keys typed        {r.keys} (lost {r.lost_keys})")
    print(f"  key -> buffer ms  {fmt(r.key_to_buffer_ms)}")
    print(f"  key -> screen ms  {fmt(r.key_to_screen_ms)}")
    print(
        f"  redraws           {r.renders} ({r.renders / r.duration:.0f}/s), ms {fmt(r.render_ms)}"
    )
    print(f"  loop lag ms       {fmt(r.loop_lag_ms)}")
    print(
        f"  client CPU        {r.cpu_s:.2f} s in {r.duration:g} s "
        f"({100 * r.cpu_s / r.duration:.0f}%), output {r.output_kb:.0f} KiB, "
        f"scrollback {r.scrollback} lines"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.client_typing",
        description="Keypress latency of the full-screen client under an incoming flood.",
    )
    p.add_argument("--mode", choices=("synthetic", "server"), default="synthetic")
    p.add_argument("--rate", default="0,1000", help="incoming messages/s, comma-separated runs")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of typing per run")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--kps", type=float, default=20.0, help="keys per second typed")
    p.add_argument("--tick", type=float, default=0.005, help="synthetic feed interval (s)")
    p.add_argument("--rows", type=int, default=50)
    p.add_argument("--columns", type=int, default=200)
    p.add_argument("--output", choices=("vt100", "dummy"), default="vt100")
    p.add_argument(
        "--no-gc-tuning",
        action="store_true",
        help="keep Python's default GC settings (chat-client applies client.ui.app.tune_gc)",
    )
    p.add_argument("--json", action="store_true", help="also print one JSON object per run")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rates = [float(r) for r in args.rate.split(",") if r.strip()]
    print(f"machine: {machine()}")
    for rate in rates:
        runner = run_synthetic if args.mode == "synthetic" else run_server
        result = asyncio.run(runner(args, rate))
        show(result)
        if args.json:
            print(json.dumps({"machine": machine(), **asdict(result)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
