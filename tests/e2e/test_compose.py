"""The docker compose demo, run as local processes (no Docker engine here).

The commands come from docker-compose.yml itself, with only the addresses
rewritten: the service host names become 127.0.0.1 and fixed ports become free
ones, so a change to the compose file is exercised here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from tests.ircclient import IRCTestClient
from tests.server.test_process import free_port, wait_listening

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CAPS = ["server-time", "message-tags", "batch", "draft/chathistory"]


def load_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    # Installed beside this interpreter by the dev extras, even when the venv is not on PATH.
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which(
        "check-jsonschema"
    )
    if exe is None:
        pytest.skip("check-jsonschema is not installed (it comes with the dev extras)")
    result = subprocess.run(
        [exe, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def rewrite(args: list[str], mapping: dict[str, str]) -> list[str]:
    """Replace whole arguments and substrings (service hosts, ports, paths)."""
    out = []
    for arg in args:
        for old, new in mapping.items():
            arg = arg.replace(old, new)
        out.append(arg)
    return out


def set_flag(args: list[str], flag: str, value: str) -> list[str]:
    args = list(args)
    i = args.index(flag)
    args[i + 1] = value
    return args


class Topology:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.compose = load_compose()
        self.redis_port = free_port()
        self.chat_port = free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start_redis(self) -> None:
        command = list(self.compose["services"]["redis"]["command"])
        assert command[0] == "redis-server"
        command = set_flag(command, "--port", str(self.redis_port))
        command += ["--bind", "127.0.0.1", "--dir", str(self.tmp)]
        self.procs["redis"] = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_listening(self.redis_port, self.procs["redis"])

    def start_chat(self) -> None:
        service = self.compose["services"]["chat"]
        assert service["build"] == "."
        (mount,) = service["volumes"]
        volume_dir = mount.split(":")[1]
        args = rewrite(
            list(service["command"]),
            {
                "redis://redis:6379": f"redis://127.0.0.1:{self.redis_port}",
                volume_dir: str(self.tmp),
            },
        )
        args = set_flag(args, "--host", "127.0.0.1")
        args = set_flag(args, "--port", str(self.chat_port))
        # The image's ENTRYPOINT is chat-server, i.e. `python -m server`.
        self.procs["chat"] = subprocess.Popen(
            [sys.executable, "-m", "server", *args], stdout=subprocess.DEVNULL
        )
        wait_listening(self.chat_port, self.procs["chat"])

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.kill()
        proc.wait(10)

    def close(self) -> None:
        for name in list(self.procs):
            self.kill(name)


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/test installs it)")
    topo = Topology(tmp_path)
    try:
        yield topo
    finally:
        topo.close()


async def history_texts(port: int, nick: str, channel: str) -> list[str]:
    c = await IRCTestClient.open(port)
    await c.register(nick, CAPS)
    await c.join(channel)
    await c.send(f"CHATHISTORY LATEST {channel} * 50")
    await c.expect("BATCH", lambda m: m.params[0].startswith("+"))
    texts = []
    while True:
        msg = await c.read_message()
        if msg.command == "BATCH":
            break
        texts.append(msg.params[1])
    await c.close()
    return texts


async def test_history_through_redis_survives_a_server_restart(topology: Topology) -> None:
    topology.start_redis()
    topology.start_chat()
    alice = await IRCTestClient.open(topology.chat_port)
    await alice.register("alice", CAPS)
    await alice.join("#demo")
    for n in range(5):
        await alice.send(f"PRIVMSG #demo :hello {n}")
    await alice.sync()
    await alice.close()

    expected = [f"hello {n}" for n in range(5)]
    assert await history_texts(topology.chat_port, "bob", "#demo") == expected
    cache = redis.Redis(port=topology.redis_port)
    assert cache.dbsize() > 0, "the history read did not fill the Redis cache"

    # The server restarts on the same volume: history is still there.
    topology.kill("chat")
    topology.start_chat()
    assert await history_texts(topology.chat_port, "carol", "#demo") == expected
    cache.close()
