"""CHATHISTORY LATEST latency over loopback, with a warm or a cold Redis cache.

    python -m bench.histlat --port 6667 --modes warm,cold --redis-port 6379 \
        --requests 200 --limit 50 --fill 500 --server-pid PID --json

One writer client joins ``--channel`` and sends ``--fill`` PRIVMSGs; a reader
that negotiated ``draft/chathistory batch server-time message-tags`` (and is in
the channel) waits until it has received all of them, so they are all in the
store. Then, per mode, the reader sends ``--requests`` times
``CHATHISTORY LATEST <channel> * <limit>`` one at a time and times each request
from the write to the end of its ``chathistory`` batch (``BATCH -ref``); every
reply must hold ``--limit`` messages.

Modes:

warm   one unmeasured request fills the Redis window first; every measured one
       should then be a cache hit.
cold   ``FLUSHALL`` on Redis before each request (outside the timed interval): the
       server finds its generation gone, reads the store and refills the cache.
store  no Redis flushing: meant for a server started without ``--redis``, where
       every request reads SQLite.
search ``SEARCH text=fill;in=<channel>;limit=<limit>`` (soju.im/search): every
       stored message matches, so the store stops after the newest ``limit``.
search-miss
       ``SEARCH text=<absent>;in=<channel>;limit=<limit>``: nothing matches, so every
       stored message of the channel is scanned (the worst case); replies are empty.

With ``--metrics-port`` (the server's Prometheus port) each mode also reports how
the server's cache_hits/cache_misses/cache_fills/cache_invalidations and
history reads moved, which shows whether "warm" really hit the cache.

Prints one JSON object per run (``--json``): per mode p50/p90/p99/max ms and the
server CPU milliseconds per request (utime+stime of ``--server-pid``). Every
wait has a timeout and SIGALRM is a backstop; only loopback hosts are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import signal
import sys
import time
import urllib.request
from typing import Any

from bench.loadgen import latency_summary, proc_cpu_seconds

CAPS = b"draft/chathistory batch server-time message-tags"
SEARCH_CAPS = CAPS + b" soju.im/search"  # requested only for the search modes
MODES = ("warm", "cold", "store", "search", "search-miss")


def parse_line(line: bytes) -> tuple[dict[bytes, bytes], bytes, list[bytes]]:
    """(tags, command, params) of one IRC line; the source is skipped."""
    line = line.rstrip(b"\r")
    tags: dict[bytes, bytes] = {}
    if line.startswith(b"@"):
        raw, _, line = line.partition(b" ")
        for item in raw[1:].split(b";"):
            key, _, value = item.partition(b"=")
            tags[key] = value
        line = line.lstrip(b" ")
    if line.startswith(b":"):
        line = line.partition(b" ")[2].lstrip(b" ")
    head, sep, trailing = line.partition(b" :")
    params = head.split()
    if not params:
        return tags, b"", []
    if sep:
        params.append(trailing)
    return tags, params[0].upper(), params[1:]


class Client:
    """A line-oriented IRC client on asyncio streams; answers PING while reading."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, host: str, port: int) -> Client:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        return cls(reader, writer)

    def send(self, line: bytes) -> None:
        self.writer.write(line + b"\r\n")

    async def read(self) -> tuple[dict[bytes, bytes], bytes, list[bytes]]:
        while True:
            raw = await self.reader.readline()
            if not raw:
                raise RuntimeError("server closed the connection")
            tags, cmd, params = parse_line(raw.rstrip(b"\n"))
            if cmd == b"PING":
                self.send(b"PONG :" + (params[-1] if params else b""))
                continue
            return tags, cmd, params

    async def until(self, *commands: bytes) -> list[bytes]:
        while True:
            _, cmd, params = await self.read()
            if cmd in commands:
                return params
            if cmd in (b"ERROR", b"433", b"432", b"465", b"403", b"471", b"473", b"474"):
                raise RuntimeError(f"server refused: {cmd.decode()} {params!r}")

    async def register(self, nick: bytes, caps: bytes = b"") -> None:
        if caps:
            self.send(b"CAP LS 302")
            self.send(b"CAP REQ :" + caps)
            params = await self.until(b"CAP")
            while params[1:2] == [b"LS"]:
                params = await self.until(b"CAP")
            if params[1:2] != [b"ACK"]:
                raise RuntimeError(f"capabilities not acknowledged: {params!r}")
            self.send(b"CAP END")
        self.send(b"NICK " + nick)
        self.send(b"USER " + nick + b" 0 * :histlat")
        await self.until(b"001")

    async def join(self, channel: bytes) -> None:
        self.send(b"JOIN " + channel)
        await self.until(b"366")

    async def close(self) -> None:
        self.send(b"QUIT :done")
        self.writer.close()
        try:
            async with asyncio.timeout(2):
                await self.writer.wait_closed()
        except (TimeoutError, OSError):
            pass


async def flushall(host: str, port: int) -> None:
    """FLUSHALL on Redis over a raw RESP connection (no client library needed)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"*1\r\n$8\r\nFLUSHALL\r\n")
        reply = await reader.readline()
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"FLUSHALL: {reply!r}")
    finally:
        writer.close()


COUNTERS = ("cache_hits", "cache_misses", "cache_fills", "cache_invalidations")


def scrape(host: str, port: int | None) -> dict[str, float]:
    """The cache counters from the server's /metrics (empty without a port)."""
    if port is None:
        return {}
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, _, value = line.rpartition(" ")
        for counter in COUNTERS:
            if counter in name and not name.endswith("_created"):
                found[counter] = found.get(counter, 0.0) + float(value)
    return found


async def latest(client: Client, channel: bytes, limit: int) -> int:
    """One CHATHISTORY LATEST; the number of messages in its batch."""
    client.send(b"CHATHISTORY LATEST " + channel + b" * " + str(limit).encode())
    return await batch_size(client, b"chathistory")


async def search(client: Client, channel: bytes, text: bytes, limit: int) -> int:
    """One SEARCH (soju.im/search); the number of messages in its batch."""
    client.send(b"SEARCH text=" + text + b";in=" + channel + b";limit=" + str(limit).encode())
    return await batch_size(client, b"soju.im/search")


async def batch_size(client: Client, kind: bytes) -> int:
    """The messages in the next batch of type ``kind``, read to its end (a FAIL raises)."""
    ref = b""
    count = 0
    while True:
        tags, cmd, params = await client.read()
        if cmd == b"BATCH" and params:
            if params[0].startswith(b"+") and params[1:2] == [kind]:
                ref = params[0][1:]
            elif ref and params[0] == b"-" + ref:
                return count
        elif cmd in (b"PRIVMSG", b"NOTICE") and ref and tags.get(b"batch") == ref:
            count += 1
        elif cmd == b"FAIL":
            raise RuntimeError(f"{kind.decode()} request failed: {params!r}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    host, channel = args.host, args.channel.encode()
    step = args.timeout
    writer = await Client.connect(host, args.port)
    reader = await Client.connect(host, args.port)
    result: dict[str, Any] = {"mode": "chathistory", "fill": args.fill, "limit": args.limit}
    try:
        async with asyncio.timeout(step):
            await writer.register(b"hlw" + args.tag.encode())
            searching = any(m.startswith("search") for m in args.modes)
            await reader.register(b"hlr" + args.tag.encode(), SEARCH_CAPS if searching else CAPS)
            await writer.join(channel)
            await reader.join(channel)
        # Fill: the reader sees a message only after it was committed to the store.
        pad = b"x" * max(0, args.size - 12)
        got = 0
        async with asyncio.timeout(step + args.fill / 500):
            for i in range(args.fill):
                writer.send(b"PRIVMSG " + channel + b" :fill " + str(i).encode() + b" " + pad)
                if i % 200 == 199:
                    await writer.writer.drain()
            while got < args.fill:
                _, cmd, _ = await reader.read()
                if cmd == b"PRIVMSG":
                    got += 1
        for mode in args.modes:
            if mode == "warm":
                async with asyncio.timeout(step):
                    await latest(reader, channel, args.limit)  # fills the window
            samples: list[int] = []
            bad = 0
            m0 = scrape(host, args.metrics_port)
            cpu0 = proc_cpu_seconds(args.server_pid)
            t_start = time.perf_counter()
            for _ in range(args.requests):
                async with asyncio.timeout(step):
                    if mode == "cold":
                        await flushall(host, args.redis_port)
                    t0 = time.perf_counter_ns()
                    if mode == "search":
                        n = await search(reader, channel, b"fill", args.limit)
                    elif mode == "search-miss":
                        n = await search(reader, channel, b"absent-word", args.limit)
                    else:
                        n = await latest(reader, channel, args.limit)
                    samples.append(time.perf_counter_ns() - t0)
                if n != (0 if mode == "search-miss" else args.limit):
                    bad += 1
            elapsed = time.perf_counter() - t_start
            cpu1 = proc_cpu_seconds(args.server_pid)
            m1 = scrape(host, args.metrics_port)
            entry: dict[str, Any] = {
                "requests": args.requests,
                "short_replies": bad,
                "latency": latency_summary(samples),
                "mean_ms": round(sum(samples) / len(samples) / 1e6, 3),
                "elapsed_s": round(elapsed, 3),
            }
            if cpu0 is not None and cpu1 is not None:
                entry["server_cpu_ms_per_request"] = round(1000 * (cpu1 - cpu0) / args.requests, 3)
            if m1:
                entry["server_counters"] = {k: m1[k] - m0.get(k, 0.0) for k in m1}
            result[mode] = entry
    finally:
        await writer.close()
        await reader.close()
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.histlat", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="server address; must be loopback")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--redis-port", type=int, help="Redis port (needed by mode cold)")
    p.add_argument("--modes", default="warm,cold", help=f"comma list of {', '.join(MODES)}")
    p.add_argument("--channel", default="#histlat")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--fill", type=int, default=500, help="messages stored before measuring")
    p.add_argument("--size", type=int, default=64, help="approximate message text size")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per step")
    p.add_argument("--server-pid", type=int)
    p.add_argument("--metrics-port", type=int, help="the server's Prometheus port")
    p.add_argument("--tag", default="0", help="nick suffix")
    p.add_argument("--json", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if any(m not in MODES for m in args.modes):
        raise SystemExit(f"--modes: choose from {MODES}")
    if "cold" in args.modes and args.redis_port is None:
        raise SystemExit("mode cold needs --redis-port")
    if not ipaddress.ip_address(args.host).is_loopback:
        raise SystemExit("--host must be a loopback address")
    bound = args.timeout * (3 + args.requests * len(args.modes)) + args.fill / 100 + 30
    signal.alarm(int(bound))
    try:
        result = asyncio.run(run(args))
    except (RuntimeError, OSError, TimeoutError, ValueError) as e:
        result = {"error": f"{type(e).__name__}: {e}"}
    finally:
        signal.alarm(0)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
