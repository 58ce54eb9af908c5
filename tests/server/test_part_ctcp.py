"""PART and QUIT reasons in a +C channel (no CTCPs) over real TCP on every backend: a
reason that is a CTCP other than ACTION is dropped, as a message there is refused.
One QUIT line goes to all the quitter's channels: a +C one among them drops it for all."""

from __future__ import annotations

import pytest

from server.config import ServerConfig
from tests.conftest import RunningServer, suite_config
from tests.server.helpers import ask
from tests.server.test_nick_limits import in_channel
from tests.server.test_part_reasons import parts_seen

CTCP = "\x01VERSION\x01"


@pytest.fixture
def server_config() -> ServerConfig:
    return suite_config(db="")


async def test_a_ctcp_part_reason_is_dropped_in_a_plus_C_channel(server: RunningServer) -> None:
    alice, bob = await in_channel(server, "+C")
    await alice.join("#d")  # not +C: the reason stays
    await bob.join("#d")
    await alice.sync()
    seen = await parts_seen(alice, bob, f"PART #c,#d :{CTCP}")
    assert [m.params for m in seen] == [["#c"], ["#d", CTCP]]


async def test_an_action_part_reason_stays_in_a_plus_C_channel(server: RunningServer) -> None:
    alice, bob = await in_channel(server, "+C")
    action = "\x01ACTION waves\x01"
    seen = await parts_seen(alice, bob, f"PART #c :{action}")
    assert [m.params for m in seen] == [["#c", action]]


async def test_formatting_before_a_ctcp_does_not_slip_it_past_plus_C(
    server: RunningServer,
) -> None:
    alice, bob = await in_channel(server, "+cC")
    seen = await parts_seen(alice, bob, f"PART #c :\x02{CTCP}")
    assert [m.params for m in seen] == [["#c"]]


async def test_a_ctcp_quit_reason_is_dropped_when_one_channel_is_plus_C(
    server: RunningServer,
) -> None:
    alice, bob = await in_channel(server, "+C")
    carol = await server.client("carol")
    for client in (carol, bob):
        await client.join("#d")  # not +C, and carol is not on #c: one line for all
    await alice.sync()
    await carol.sync()
    await bob.send(f"QUIT :{CTCP}")
    for peer in (alice, carol):
        assert (await peer.expect("QUIT")).params == ["Quit"]


async def test_a_ctcp_quit_reason_stays_without_plus_C(server: RunningServer) -> None:
    alice, bob = await in_channel(server)
    await alice.sync()
    await bob.send(f"QUIT :{CTCP}")
    assert (await alice.expect("QUIT")).params == [f"Quit: {CTCP}"]


async def test_a_quit_reason_is_stripped_for_plus_c_before_plus_C_looks_at_it(
    server: RunningServer,
) -> None:
    alice, bob = await in_channel(server, "+C")
    for client in (alice, bob):
        await client.join("#d")  # joined after #c: +C's channel comes first
    await ask(alice, "MODE #d +c")
    await bob.sync()
    await bob.send(f"QUIT :\x02{CTCP}")  # a CTCP once #d has stripped it
    assert (await alice.expect("QUIT")).params == ["Quit"]
