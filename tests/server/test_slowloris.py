"""Slowloris: thousands of connections trickling bytes cost bounded memory and are
closed on time by the registration timeout, on every backend (real process)."""

from __future__ import annotations

import resource
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.net import free_port, wait_listening

CONNECTIONS = 5000
TIMEOUT = 3  # seconds the server allows for registration in this test
PER_CONNECTION_BUDGET = 16 * 1024  # bytes of server RSS per idle half-open client


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def test_five_thousand_trickling_connections_are_bounded_and_closed_on_time(
    backend: str, tmp_path: Path
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < CONNECTIONS + 200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {CONNECTIONS} connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, CONNECTIONS + 200), hard))
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--port", str(port), "--backend", backend,
         "--db", "", "--registration-timeout", str(TIMEOUT),
         # Every client is 127.0.0.1 here; the per-host limits would refuse them first.
         "--max-per-host", "0", "--throttle-burst", "0", "--max-clients", "0"],
        stdout=subprocess.DEVNULL, stderr=log,
    )
    socks: list[socket.socket] = []
    try:
        wait_listening(port, proc)
        time.sleep(0.5)
        base_rss, base_fds = rss_bytes(proc.pid), open_fds(proc.pid)
        for _ in range(CONNECTIONS):
            s = socket.create_connection(("127.0.0.1", port))
            s.setblocking(False)
            socks.append(s)
        # Each sends one byte of a never-finished line, as slowloris does.
        for s in socks:
            s.send(b"N")
        deadline = time.monotonic() + 30
        while open_fds(proc.pid) < base_fds + CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.1)
        assert open_fds(proc.pid) >= base_fds + CONNECTIONS, "the server did not accept all"
        grown = rss_bytes(proc.pid) - base_rss
        assert grown / CONNECTIONS < PER_CONNECTION_BUDGET, f"{grown / CONNECTIONS:.0f} B/conn"

        # Every one of them is told why and closed once the timeout passes.
        sel = selectors.DefaultSelector()
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        received: dict[socket.socket, bytes] = {s: b"" for s in socks}
        closed = 0
        deadline = time.monotonic() + TIMEOUT + 30
        while closed < CONNECTIONS and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1.0):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                try:
                    data = s.recv(4096)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                if data:
                    received[s] += data
                else:
                    sel.unregister(s)
                    closed += 1
        assert closed == CONNECTIONS, f"only {closed} of {CONNECTIONS} were closed"
        timed_out = sum(b"Registration timeout" in data for data in received.values())
        assert timed_out == CONNECTIONS
        deadline = time.monotonic() + 10
        while open_fds(proc.pid) > base_fds + 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert open_fds(proc.pid) <= base_fds + 5, "the server kept sockets open"
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        proc.wait(20)
        log.close()
