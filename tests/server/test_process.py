"""The real `python -m server` process: SIGTERM with clients connected, bad options."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ircclient import IRCTestClient
from tests.net import free_port, wait_listening


@pytest.fixture
def server_process(
    backend: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--port", str(port), "--backend", backend,
         "--name", "proc.test", "--log-level", "info"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,  # its default chat.db, not one in the work tree
    )
    try:
        wait_listening(port, proc)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


async def test_sigterm_sends_error_to_every_client_and_exits_zero(
    server_process: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = server_process
    clients = []
    for i in range(5):
        c = await IRCTestClient.open(port)
        await c.register(f"user{i}")
        await c.join("#stay")
        clients.append(c)
    os.kill(proc.pid, signal.SIGTERM)
    for c in clients:
        tail = await c.wait_closed(timeout=10)
        errors = [m for m in tail if m.command == "ERROR"]
        assert len(errors) == 1
        assert "Server shutting down" in errors[0].params[0]
        # No QUIT storm among clients that are all leaving anyway.
        assert not [m for m in tail if m.command == "QUIT"]
        await c.close()
    code = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 15)
    assert code == 0
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert "Traceback" not in stderr


def test_bad_option_exits_nonzero_with_one_line_naming_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "--port", "99999"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert any("port" in line for line in lines)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("backend", ["asyncio", "select"])
def test_a_database_that_cannot_be_opened_is_one_line_and_exit_1(
    tmp_path: Path, backend: str
) -> None:
    missing = tmp_path / "no such directory" / "chat.db"
    result = subprocess.run(
        [sys.executable, "-m", "server", "--port", "0", "--backend", backend,
         "--db", str(missing)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"cannot open the history database {missing}: unable to open database file" in (
        result.stderr)
    assert "Traceback" not in result.stderr
