"""K-line masks are cut as list masks are (ratbox's find_user_host, as pretty_mask for
+b): the user to USERLEN and a host to 63; a D-line's IPv6 scope is dropped. Over real
TCP on every backend, with a real ban file that loads again after a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ServerConfig
from tests.conftest import OPER_NAME, RunningServer, start_server
from tests.server.test_bans import ban_file, notice
from tests.server.test_oper import ask, oper_up

LONG_HOST = "h" * 70 + ".example"  # 78: no user's host is longer than 63


@pytest.fixture
def server_config(oper_hash: str) -> ServerConfig:
    return ServerConfig(name="test.server", network="TestNet", opers={OPER_NAME: oper_hash})


async def test_a_kline_is_cut_to_what_a_user_has(server: RunningServer) -> None:
    root = await server.client("root")
    await oper_up(root)
    text = await notice(root, f"KLINE {'u' * 20}@{LONG_HOST} :x")
    assert text == f"Added K-Line [{'u' * 10}@{'h' * 63}] (x)"
    [record] = ban_file(server)
    assert record["mask"] == f"{'u' * 10}@{'h' * 63}"
    [entry, _end] = await ask(root, "STATS k")
    assert entry.params[2:4] == ["h" * 63, "*"] and entry.params[4] == "u" * 10


async def test_the_user_cut_bans_one_whose_user_was_cut_alike(server: RunningServer) -> None:
    # USER cuts a name to USERLEN too: the K-line on the name given names that user.
    root = await server.client("root")
    longname = await server.client("longusername")
    await oper_up(root)
    text = await notice(root, "KLINE ~longusername@127.0.0.1 :x")
    assert text == "Added K-Line [~longusern@127.0.0.1] (x), 1 disconnected"
    assert [m.command for m in await longname.wait_closed()] == ["465", "ERROR"]


async def test_a_host_that_is_all_wildcards_once_cut_matches_everyone(
    server: RunningServer,
) -> None:
    root = await server.client("root")
    await oper_up(root)
    text = await notice(root, f"KLINE *@{'*.' * 35}example :x")
    assert text == f"Not a valid K-Line: *@{'*.' * 35}example matches everyone"
    assert [m.command for m in await ask(root, "STATS k")] == ["219"]


async def test_unkline_names_a_cut_kline_as_it_was_given(server: RunningServer) -> None:
    root = await server.client("root")
    await oper_up(root)
    await notice(root, f"KLINE *@{LONG_HOST} :x")
    assert await notice(root, f"UNKLINE *@{LONG_HOST}") == (
        f"K-Line for [*@{'h' * 63}] is removed")
    assert ban_file(server) == []


async def test_a_dline_drops_an_ipv6_scope(server: RunningServer) -> None:
    root = await server.client("root")
    await oper_up(root)
    assert await notice(root, f"DLINE fe80::1%{'x' * 300} :x") == "Added D-Line [fe80::1] (x)"
    assert [r["mask"] for r in ban_file(server)] == ["fe80::1"]
    assert await notice(root, "UNDLINE fe80::1%eth0") == "D-Line for [fe80::1] is removed"


async def test_cut_bans_load_again_after_a_restart(
    backend: str, oper_hash: str, tmp_path: Path
) -> None:
    path = tmp_path / "bans.json"
    config = ServerConfig(name="test.server", network="TestNet", opers={OPER_NAME: oper_hash})
    first = start_server(config, backend, bans=str(path))
    try:
        root = await first.client("root")
        await oper_up(root)
        await notice(root, f"KLINE {'u' * 20}@{LONG_HOST} :x")
        await notice(root, "DLINE fe80::%eth0/64 :x")
        before = [m.params for m in await ask(root, "STATS k")]
        await root.close()
    finally:
        first.handle.stop()
    second = start_server(config, backend, bans=str(path))
    try:
        root = await second.client("root")
        await oper_up(root)
        assert [m.params for m in await ask(root, "STATS k")] == before
        [entry, _end] = await ask(root, "STATS d")
        assert entry.params[2] == "fe80::/64"
    finally:
        for c in second.clients:
            await c.close()
        second.handle.stop()
