"""PART reasons over real TCP, on every backend: a member who may not speak in a channel
(quieted, banned, unvoiced under +m) leaves it without its reason, as solanum's
can_send_part; others keep theirs. Otherwise a quiet was one PART (or a JOIN/PART loop)
away from saying anything to the channel, and its history."""

from __future__ import annotations

import pytest

from chat.message import Message
from server.config import ServerConfig
from tests.conftest import RunningServer, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask
from tests.server.test_nick_limits import in_channel

REASON = "buy cheap stuff at spam.example"


@pytest.fixture
def server_config() -> ServerConfig:
    return suite_config(db="")


async def parts_seen(alice: IRCTestClient, bob: IRCTestClient, line: str) -> list[Message]:
    """What alice sees of bob's ``line``; bob's own copy is the same."""
    own = await ask(bob, line)
    seen = [m for m in await alice.sync() if m.command == "PART"]
    assert [m.params for m in own] == [m.params for m in seen]
    return seen


@pytest.mark.parametrize("modes", [("+q bob!*@*",), ("+b bob!*@*",), ("+m",)],
                         ids=["quieted", "banned", "moderated"])
async def test_one_who_may_not_speak_leaves_without_a_reason(
    server: RunningServer, modes: tuple[str, ...]
) -> None:
    alice, bob = await in_channel(server, *modes)
    seen = await parts_seen(alice, bob, f"PART #c :{REASON}")
    assert [m.params for m in seen] == [["#c"]]


async def test_a_reason_is_dropped_only_where_it_may_not_be_said(
    server: RunningServer,
) -> None:
    alice, bob = await in_channel(server, "+q bob!*@*")
    await alice.join("#d")
    await bob.join("#d")
    await alice.sync()
    seen = await parts_seen(alice, bob, f"PART #c,#d :{REASON}")
    assert [m.params for m in seen] == [["#c"], ["#d", REASON]]


@pytest.mark.parametrize("modes", [(), ("+m", "+v bob"), ("+q bob!*@*", "+e bob!*@*")],
                         ids=["plain", "voiced", "excepted"])
async def test_one_who_may_speak_keeps_the_reason(
    server: RunningServer, modes: tuple[str, ...]
) -> None:
    alice, bob = await in_channel(server, *modes)
    seen = await parts_seen(alice, bob, f"PART #c :{REASON}")
    assert [m.params for m in seen] == [["#c", REASON]]
