"""The load generator against a real server: it counts what it should, loses nothing.

Not a speed test: the figures it prints are benchmarks (docs/BENCHMARKS.md). These
check that each mode completes against every backend and that its counts hold up,
so a broken generator cannot report a good number.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from tests.conftest import RunningServer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def loadgen(port: int, *args: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.loadgen", "--json", "--port", str(port),
        "--server-pid", str(os.getpid()), *args,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


async def test_connect_mode_registers_and_quits(server: RunningServer) -> None:
    got = await loadgen(
        server.port, "--mode", "connect", "--concurrency", "4", "--duration", "1",
        "--warmup", "0.2", "--prefix", "lc",
    )
    assert got["failures"] == []
    assert got["registrations"] > 0
    assert got["register_latency"]["samples"] == got["registrations"]
    # Every registration quit: only the test's own process holds the port now.
    client = await server.client("after")
    await client.send("LUSERS")
    assert (await client.expect("266")).params[1] == "1"


async def test_traffic_mode_delivers_everything_it_sends(server: RunningServer) -> None:
    got = await loadgen(
        server.port, "--mode", "traffic", "--clients", "20", "--rooms", "2", "--senders",
        "4", "--rate", "50", "--duration", "1", "--warmup", "0.2", "--samplers", "1",
        "--prefix", "lt",
    )
    assert got["errors"] == [] and got["disconnects"] == 0
    assert got["sent"] > 0
    # 4 senders over 2 rooms of 10: each message reaches the 9 other members.
    assert got["expected_total"] == got["received_total"] > 0
    assert got["lost"] == 0 and got["extra"] == 0
    assert got["sampled_gaps"] == 0 and got["sampled_reorders"] == 0
    assert got["latency"]["samples"] > 0


async def test_connect_mode_stops_by_itself_against_a_silent_server() -> None:
    # Accepts and reads, never answers: every registration must time out (10 s),
    # be reported as a failure, and the run must still end on its own.
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(4096):
            pass

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        got = await loadgen(
            port, "--mode", "connect", "--concurrency", "2", "--duration", "0.5",
            "--warmup", "0", "--prefix", "ls",
        )
    finally:
        for w in held:
            w.close()
        listener.close()
    assert got["registrations"] == 0
    assert got["failures"] and all("TimeoutError" in f for f in got["failures"])
    assert len(held) == 2  # one connection per worker, each waited out, none retried early
