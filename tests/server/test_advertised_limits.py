"""Length limits the server enforces are the ones its ISUPPORT advertises."""

from __future__ import annotations

import pytest

from chat.message import Message
from tests.conftest import RunningServer, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask


def isupport(burst: list[Message]) -> dict[str, str]:
    """The ``KEY=value`` tokens of the 005 lines in ``burst``."""
    tokens: dict[str, str] = {}
    for m in burst:
        if m.command == "005":
            for token in m.params[1:-1]:
                key, _, value = token.partition("=")
                tokens[key] = value
    return tokens


async def register(c: IRCTestClient, nick: str, user: str) -> list[Message]:
    await c.send(f"NICK {nick}")
    await c.send(f"USER {user} 0 * :Real Name")
    burst = await c.collect_until("376", "422")
    c.nick = nick
    return burst


@pytest.mark.parametrize("server_config", [suite_config(), suite_config(userlen=4)])
@pytest.mark.parametrize("user", ["averyveryverylongusername", "abcdefghij", "abc"])
async def test_username_with_its_tilde_fits_userlen(server: RunningServer, user: str) -> None:
    # ircu's USERLEN counts the '~' of an unverified username, and solanum fits it in:
    # a client building *!~user@* masks to that width must not be a character short.
    c = await server.client()
    burst = await register(c, "alice", user)
    userlen = int(isupport(burst)["USERLEN"])
    (whois,) = [m for m in await ask(c, "WHOIS alice") if m.command == "311"]
    username = whois.params[2]
    assert username == "~" + user[: userlen - 1]
    assert burst[0].params[-1].endswith(f"alice!{username}@127.0.0.1")


async def test_keys_up_to_keylen_are_taken_and_longer_ones_refused(server: RunningServer) -> None:
    c = await server.client()
    keylen = int(isupport(await register(c, "alice", "alice"))["KEYLEN"])
    await ask(c, "JOIN #c")
    longest = "k" * keylen
    assert [(m.command, m.params) for m in await ask(c, f"MODE #c +k {longest}")] == [
        ("MODE", ["#c", "+k", longest])]
    too_long = "x" * (keylen + 1)
    assert [(m.command, m.params) for m in await ask(c, f"MODE #c +k {too_long}")] == [
        ("525", ["alice", "#c", "Key is not well-formed"])]
