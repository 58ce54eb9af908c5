"""A server target names this server (or a mask matching it), else 402, for every query."""

from __future__ import annotations

import pytest

from chat import masks
from server.config import ServerConfig
from tests.conftest import RunningServer, suite_config
from tests.server.helpers import ask

NOSUCH = ["alice", "nosuch.server", "No such server"]


@pytest.fixture
def server_config() -> ServerConfig:
    return suite_config(motd_lines=("Be nice",))


@pytest.mark.parametrize(
    "line",
    [
        "MOTD nosuch.server",
        "LUSERS * nosuch.server",
        "STATS u nosuch.server",
        "WHOIS nosuch.server bob",
        "VERSION nosuch.server",
        "TIME nosuch.server",
        "ADMIN nosuch.server",
        "INFO nosuch.server",
    ],
)
async def test_an_unknown_server_gets_402_alone(server: RunningServer, line: str) -> None:
    c = await server.client("alice")
    await server.client("bob")
    assert [(m.command, m.params) for m in await ask(c, line)] == [("402", NOSUCH)]


@pytest.mark.parametrize("target", ["test.server", "TEST.Server", "*.server", "*"])
@pytest.mark.parametrize(
    ("line", "last"),
    [
        ("MOTD {}", "376"),
        ("LUSERS * {}", "266"),
        ("STATS u {}", "219"),
        ("WHOIS {} bob", "318"),
        ("VERSION {}", "005"),
        ("TIME {}", "391"),
        ("ADMIN {}", "259"),
        ("INFO {}", "374"),
    ],
)
async def test_this_server_by_name_or_mask_answers(
    server: RunningServer, line: str, last: str, target: str
) -> None:
    c = await server.client("alice")
    await server.client("bob")
    msgs = await ask(c, line.format(target))
    assert msgs[-1].command == last
    assert "402" not in {m.command for m in msgs}


@pytest.mark.parametrize("target", ["bob", "BOB", "alice"])
async def test_whois_with_a_user_as_target_asks_the_users_server(
    server: RunningServer, target: str
) -> None:
    # WHOIS nick nick (irssi's /wii, WeeChat's double nick): the target is a user,
    # whose server is this one.
    c = await server.client("alice")
    await server.client("bob")
    msgs = await ask(c, f"WHOIS {target} bob")
    assert msgs[0].command == "311" and msgs[0].params[1] == "bob"
    assert msgs[-1].command == "318"


async def test_whois_nick_nick_for_a_missing_nick_is_401(server: RunningServer) -> None:
    c = await server.client("alice")
    assert [m.command for m in await ask(c, "WHOIS gone gone")] == ["401", "318"]


async def test_server_masks_are_not_kept_in_the_shared_mask_cache(server: RunningServer) -> None:
    """A stream of made-up server masks must not churn the cache that K-lines and
    extbans are matched through (chat.masks._cache)."""
    c = await server.client("alice")
    for n in range(5):
        await ask(c, f"MOTD *nosuch{n}*")
        await ask(c, f"LINKS *other{n}* *")
        await ask(c, f"LINKS *else{n}*")
    kept = set(masks._cache._globs)
    assert not [m for m in kept if "nosuch" in m or "other" in m or "else" in m]
