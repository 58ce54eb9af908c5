"""PART and QUIT reasons in a +c channel (no colours) lose their colours and formatting,
as a message there does, over real TCP on every backend. One QUIT line goes to all the
quitter's channels: a +c one among them strips it for all."""

from __future__ import annotations

import pytest

from server.config import ServerConfig
from tests.conftest import RunningServer, suite_config
from tests.server.helpers import ask
from tests.server.test_nick_limits import in_channel
from tests.server.test_part_reasons import parts_seen

COLOURED = "\x02bold\x02 \x0304,01red\x03 and \x1funderlined\x1f"
PLAIN = "bold red and underlined"


@pytest.fixture
def server_config() -> ServerConfig:
    return suite_config(db="")


async def test_a_part_reason_loses_its_colours_in_a_plus_c_channel(
    server: RunningServer,
) -> None:
    alice, bob = await in_channel(server, "+c")
    await alice.join("#d")  # not +c: the codes stay
    await bob.join("#d")
    await alice.sync()
    seen = await parts_seen(alice, bob, f"PART #c,#d :{COLOURED}")
    assert [m.params for m in seen] == [["#c", PLAIN], ["#d", COLOURED]]


async def test_a_part_reason_of_nothing_but_formatting_is_no_reason(
    server: RunningServer,
) -> None:
    alice, bob = await in_channel(server, "+c")
    seen = await parts_seen(alice, bob, "PART #c :\x02\x0304\x0f")
    assert [m.params for m in seen] == [["#c"]]


async def test_a_quit_reason_loses_its_colours_when_one_channel_is_plus_c(
    server: RunningServer,
) -> None:
    alice, bob = await in_channel(server, "+c")
    carol = await server.client("carol")
    for client in (carol, bob):
        await client.join("#d")  # not +c, and carol is not on #c: one line for all
    await alice.sync()
    await carol.sync()
    await bob.send(f"QUIT :{COLOURED}")
    for peer in (alice, carol):
        assert (await peer.expect("QUIT")).params == [f"Quit: {PLAIN}"]


async def test_a_quit_reason_keeps_its_colours_without_plus_c(server: RunningServer) -> None:
    alice, bob = await in_channel(server)
    await ask(bob, "JOIN #d")
    await alice.sync()
    await bob.send(f"QUIT :{COLOURED}")
    assert (await alice.expect("QUIT")).params == [f"Quit: {COLOURED}"]
