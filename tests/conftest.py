"""Shared fixtures: one server per test on a free port, for every transport backend."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import hypothesis  # noqa: F401
import pytest

from server.config import ServerConfig
from server.passwords import hash_password
from server.transport.background import BackgroundServer
from tests.ircclient import IRCTestClient

# hypothesis is imported above, while collection is shallow, on purpose: otherwise a run
# without property tests first imports it from the plugin's terminal summary, deep in
# pytest's hooks, where CPython 3.11.7 can fail compiling it under assertion rewriting
# ("SystemError: AST constructor recursion depth mismatch") and exit 1 after passing.

BACKENDS = ["asyncio", "uvloop", "select"]

# An operator for the tests that need one (config.opers maps the name to oper_hash).
OPER_NAME = "root"
OPER_PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def oper_hash() -> str:
    """The scrypt hash of OPER_PASSWORD, made once: scrypt is slow on purpose."""
    return hash_password(OPER_PASSWORD)


@dataclass
class RunningServer:
    backend: str
    config: ServerConfig
    port: int
    handle: BackgroundServer
    clients: list[IRCTestClient] = field(default_factory=list)

    async def client(self, nick: str | None = None, caps: list[str] | None = None) -> IRCTestClient:
        """A connected client; registered as ``nick`` when given."""
        c = await IRCTestClient.open(self.port)
        self.clients.append(c)
        if nick is not None:
            await c.register(nick, caps)
        return c


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop is not installed on this platform")
    return name


# The protocol suite asserts exact hostmasks and opens hundreds of connections
# from 127.0.0.1 as fast as it can: cloaking, flood control, per-host limits, the
# private-message target limit, the accounts-per-host and server-wide registration
# limits, the memo rate, the search budget and the hiding of new clients' QUIT reasons
# are off here and proven on their own (tests/server/test_abuse_limits.py,
# test_target_limit.py, test_accounts.py, test_register_limits.py, test_memoserv.py,
# test_quit_reasons.py).
TEST_DEFAULTS = {
    "cloak_hosts": False,
    "flood_burst": 0,
    "target_limit": 0,
    "max_per_host": 0,
    "throttle_burst": 0,
    "account_limit": 0,
    "register_limit": 0,
    "memo_limit": 0,
    "scan_burst": 0,
    "anti_spam_exit_message_time": 0,
}


def suite_config(**overrides: object) -> ServerConfig:
    """The suite's baseline config with ``overrides`` applied."""
    return replace(
        ServerConfig(name="test.server", network="TestNet"), **{**TEST_DEFAULTS, **overrides}
    )


@pytest.fixture
def server_config() -> ServerConfig:
    """Override in a test module to change settings for its servers."""
    return suite_config()


def start_server(
    config: ServerConfig,
    backend: str,
    db: str = "",
    *,
    bans: str = "",
    suite_defaults: bool = True,
) -> RunningServer:
    """Start on a free port; ``db`` and ``bans`` replace the default history and ban
    files (never the cwd's).

    With ``suite_defaults``, fields still at their product default take the
    suite's values (TEST_DEFAULTS), so modules may build their own ServerConfig.
    """
    defaults = ServerConfig()
    if config.db == defaults.db:
        config = replace(config, db=db)
    if config.ban_file == defaults.ban_file:
        config = replace(config, ban_file=bans)
    if suite_defaults:
        changes = {
            k: v for k, v in TEST_DEFAULTS.items() if getattr(config, k) == getattr(defaults, k)
        }
        config = replace(config, **changes)  # type: ignore[arg-type]
    config = replace(config, host="127.0.0.1", port=0, backend=backend)
    handle = BackgroundServer(config, backend)
    port = handle.start()
    return RunningServer(backend, config, port, handle)


@contextlib.asynccontextmanager
async def serving(
    config: ServerConfig, backend: str, db: str = "", *, suite_defaults: bool = True
) -> AsyncIterator[RunningServer]:
    """``start_server`` for a test's own configuration (or a restart): its clients are
    closed and the server stopped afterwards, as the ``server`` fixture does."""
    running = start_server(config, backend, db=db, suite_defaults=suite_defaults)
    try:
        yield running
    finally:
        for c in running.clients:
            await c.close()
        running.handle.stop()


@pytest.fixture
async def server(
    backend: str, server_config: ServerConfig, tmp_path: Path
) -> AsyncIterator[RunningServer]:
    running = start_server(
        server_config, backend, db=str(tmp_path / "history.db"), bans=str(tmp_path / "bans.json")
    )
    try:
        yield running
    finally:
        for c in running.clients:
            await c.close()
        running.handle.stop()


ClientFactory = Callable[..., Awaitable[IRCTestClient]]


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    yield "asyncio"
