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

from tests.history.postgres_fixture import pg_server_fixture, pg_url_fixture  # noqa: F401
from tests.ircclient import IRCTestClient
from tests.net import free_port, wait_listening

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
    """redis + PostgreSQL + two chat nodes, from the compose file's own commands."""

    def __init__(self, tmp: Path, pg_url: str) -> None:
        self.tmp = tmp
        self.pg_url = pg_url
        self.compose = load_compose()
        self.redis_port = free_port()
        self.ports = {"chat1": free_port(), "chat2": free_port()}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start_redis(self) -> None:
        command = list(self.compose["services"]["redis"]["command"])
        assert command[0] == "redis-server"
        command = set_flag(command, "--port", str(self.redis_port))
        command += ["--bind", "127.0.0.1", "--dir", str(self.tmp)]
        self.procs["redis"] = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_listening(self.redis_port, self.procs["redis"])

    def start_node(self, name: str) -> None:
        service = self.compose["services"][name]
        assert service["build"] == "."
        postgres = self.compose["services"]["postgres"]["environment"]
        compose_db = (
            f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
            f"@postgres:5432/{postgres['POSTGRES_DB']}"
        )
        args = rewrite(
            list(service["command"]),
            {"redis://redis:6379": f"redis://127.0.0.1:{self.redis_port}", compose_db: self.pg_url},
        )
        assert self.pg_url in args, "the node's --db is not the compose file's database"
        args = set_flag(args, "--host", "127.0.0.1")
        args = set_flag(args, "--port", str(self.ports[name]))
        log = (self.tmp / f"{name}.log").open("ab")
        # The image's ENTRYPOINT is chat-server, i.e. `python -m server`.
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "server", *args, "--cluster-dead-after", "3"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        wait_listening(self.ports[name], self.procs[name])

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.kill()
        proc.wait(10)

    def close(self) -> None:
        for name in list(self.procs):
            self.kill(name)


@pytest.fixture
def topology(tmp_path: Path, pg_url: str) -> Iterator[Topology]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/test installs it)")
    topo = Topology(tmp_path, pg_url)
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


async def test_two_nodes_chat_and_share_history(topology: Topology) -> None:
    topology.start_redis()
    topology.start_node("chat1")
    topology.start_node("chat2")
    alice = await IRCTestClient.open(topology.ports["chat1"])
    await alice.register("alice", CAPS)
    await alice.join("#demo")
    bob = await IRCTestClient.open(topology.ports["chat2"])
    await bob.register("bob", CAPS)
    await bob.join("#demo")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("bob!"), timeout=10)

    await alice.send("PRIVMSG #demo :hello from node 1")
    got = await bob.expect("PRIVMSG", timeout=10)
    assert got.params == ["#demo", "hello from node 1"]
    await bob.send("PRIVMSG #demo :hello from node 2")
    got = await alice.expect("PRIVMSG", timeout=10)
    assert got.params == ["#demo", "hello from node 2"]
    # One nick across the cluster.
    dup = await IRCTestClient.open(topology.ports["chat2"])
    await dup.send("NICK alice")
    await dup.send("USER x 0 * :x")
    assert (await dup.expect("433", timeout=10)).params[1] == "alice"
    await dup.close()

    expected = ["hello from node 1", "hello from node 2"]
    assert await history_texts(topology.ports["chat2"], "carol", "#demo") == expected
    cache = redis.Redis(port=topology.redis_port)
    assert cache.dbsize() > 0, "Redis holds neither cache nor cluster state"
    cache.close()

    # kill -9 node 1: its user quits on node 2 once the node is declared dead.
    topology.kill("chat1")
    quit_msg = await bob.expect("QUIT", lambda m: (m.source or "").startswith("alice!"), timeout=20)
    assert quit_msg.command == "QUIT"
    await bob.close()
    await alice.close()
    # Node 1 comes back on the shared database: the history is all there.
    topology.start_node("chat1")
    assert await history_texts(topology.ports["chat1"], "dave", "#demo") == expected
