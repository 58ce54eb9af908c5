"""b/e/I/q masks are cut to what a user has, as ratbox's pretty_mask: nick, user and host
to NICKLEN, USERLEN and 63, an extban's account to NICKLEN (fifth hostile-user round,
finding 3: masks of 110 bytes of junk, each kept, listed and carried in every cluster
snapshot of the channel)."""

from __future__ import annotations

from chat.masks import bound_mask
from server.config import ServerConfig
from server.core import ServerCore
from server.core.state import Ban
from tests.conftest import RunningServer
from tests.server.helpers import ask, only
from tests.server.test_playback_order_unit import register, written

NICK, USER, HOST = "n" * 30, "u" * 10, "h" * 63  # NICKLEN, USERLEN, HOSTLEN


def test_each_part_is_cut_to_its_length() -> None:
    assert bound_mask("n" * 40 + "!" + "u" * 20 + "@" + "h" * 90, 30, 10) == (
        f"{NICK}!{USER}@{HOST}")
    for mask in ("*!*@*", f"{NICK}!{USER}@{HOST}", "a@b!c", "*!*@2001:db8::/32"):
        assert bound_mask(mask, 30, 10) == mask


async def test_a_mask_is_cut_when_set_and_listed_so(server: RunningServer) -> None:
    op = await server.client("op")
    await op.join("#c")
    junk = "x" * 60 + "!" + "y" * 20 + "@" + "z" * 70
    got = only(await ask(op, f"MODE #c +e {junk}"), "MODE")
    assert got[0].params == ["#c", "+e", "x" * 30 + "!" + "y" * 10 + "@" + "z" * 63]
    listed = only(await ask(op, "MODE #c +e"), "348")
    assert [m.params[2] for m in listed] == [got[0].params[2]]


async def test_masks_alike_in_their_first_nicklen_characters_are_one_entry(
    server: RunningServer,
) -> None:
    op = await server.client("op")
    await op.join("#c")
    pad = "x" * 100
    masks = " ".join(f"{pad}{n}!*@*" for n in range(4))
    got = only(await ask(op, f"MODE #c +bbbb {masks}"), "MODE")
    assert [m.params for m in got] == [["#c", "+b", "x" * 30 + "!*@*"]]
    assert len(only(await ask(op, "MODE #c +b"), "367")) == 1


async def test_an_account_extban_is_cut_to_nicklen(server: RunningServer) -> None:
    op = await server.client("op")
    await op.join("#c")
    got = only(await ask(op, "MODE #c +q $a:" + "a" * 80), "MODE")
    assert got[0].params == ["#c", "+q", "$a:" + "a" * 30]
    got = only(await ask(op, "MODE #c +b $~a"), "MODE")
    assert got[0].params == ["#c", "+b", "$~a"]


async def test_a_cut_mask_is_removed_as_given(server: RunningServer) -> None:
    op = await server.client("op")
    await op.join("#c")
    junk = "x" * 40 + "!*@*"
    await ask(op, f"MODE #c +b {junk}")
    got = only(await ask(op, f"MODE #c -b {junk}"), "MODE")
    assert got[0].params == ["#c", "-b", "x" * 30 + "!*@*"]
    assert [m.command for m in await ask(op, "MODE #c +b")] == ["368"]


def test_an_entry_from_before_the_cut_is_removed_by_its_whole_mask() -> None:
    core = ServerCore(ServerConfig(name="test.server", db="", flood_burst=0), clock=lambda: 1e9)
    register(core, 1, "op")
    core.data_received(1, b"JOIN #c\r\n")
    old = "x" * 40 + "!*@*"  # set by a node without the cut, or before it
    core.channels["#c"].bans.append(Ban(old, "op!op@host", 1))
    written(core, 1)
    core.data_received(1, f"MODE #c -b {old}\r\n".encode())
    assert any(f"MODE #c -b {old}" in line for line in written(core, 1))
    assert core.channels["#c"].bans == []
