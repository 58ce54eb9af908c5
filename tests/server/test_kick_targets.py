"""KICK with more nicks than TARGMAX KICK: the first are kicked, 407 names the rest."""

from __future__ import annotations

import pytest

from server.config import ServerConfig
from tests.conftest import RunningServer, suite_config
from tests.server.helpers import ask, only

LIMIT = 4


@pytest.fixture
def server_config() -> ServerConfig:
    return suite_config(max_targets=LIMIT)


async def test_kick_beyond_targmax_says_which_were_dropped(server: RunningServer) -> None:
    op = await server.client("op")
    await op.join("#c")
    users = [await server.client(f"u{i}") for i in range(LIMIT + 2)]
    for u in users:
        await u.join("#c")
    await op.sync()
    msgs = await ask(op, "KICK #c u0,u1,u2,u3,u4,u5 :out")
    assert [m.params[1] for m in only(msgs, "KICK")] == ["u0", "u1", "u2", "u3"]
    (too_many,) = only(msgs, "407")
    assert too_many.params[1] == "u4,u5"
    names = only(await ask(op, "NAMES #c"), "353")[0].params[-1].split()
    assert sorted(names) == ["@op", "u4", "u5"]


async def test_kick_pairs_beyond_targmax_say_which_were_dropped(server: RunningServer) -> None:
    op = await server.client("op")
    channels = [f"#c{i}" for i in range(LIMIT + 1)]
    users = [await server.client(f"u{i}") for i in range(LIMIT + 1)]
    for channel, u in zip(channels, users, strict=True):
        await op.join(channel)
        await u.join(channel)
    await op.sync()
    msgs = await ask(op, f"KICK {','.join(channels)} u0,u1,u2,u3,u4")
    assert [m.params[:2] for m in only(msgs, "KICK")] == [
        [f"#c{i}", f"u{i}"] for i in range(LIMIT)
    ]
    assert [m.params[1] for m in only(msgs, "407")] == ["u4"]


async def test_kick_within_targmax_has_no_407(server: RunningServer) -> None:
    op = await server.client("op")
    await op.join("#c")
    for i in range(LIMIT):
        await (await server.client(f"u{i}")).join("#c")
    await op.sync()
    msgs = await ask(op, "KICK #c u0,u1,u2,u3")
    assert len(only(msgs, "KICK")) == LIMIT and not only(msgs, "407")
