"""K-/D-lines set on one node hold on every node (real Redis, real ban files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cluster.conftest import Cluster
from tests.cluster.test_cluster import connect
from tests.conftest import OPER_NAME, OPER_PASSWORD
from tests.ircclient import IRCTestClient
from tests.net import eventually


async def refused(port: int, nick: str, user: str) -> list[str]:
    c = await IRCTestClient.open(port)
    await c.send(f"NICK {nick}")
    await c.send(f"USER {user} 0 * :Real")
    commands = [m.command for m in await c.wait_closed()]
    await c.close()
    return commands


def saved(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [b["mask"] for b in json.loads(path.read_text())["bans"]]


async def test_kline_on_one_node_holds_on_the_others(
    cluster: Cluster, oper_hash: str, tmp_path: Path
) -> None:
    opers = {OPER_NAME: oper_hash}
    files = {n: tmp_path / f"{n}-bans.json" for n in ("n1", "n2")}
    p1 = cluster.start("n1", opers=opers, ban_file=str(files["n1"]))
    p2 = cluster.start("n2", opers=opers, ban_file=str(files["n2"]))
    root = await connect(p1, "root")
    carol = await connect(p1, "carol")
    spam = await connect(p2, "spam")
    for c in (carol, spam):
        await c.send("JOIN #chan")
        await c.expect("366")
    await carol.expect("JOIN", lambda m: bool(m.source and m.source.startswith("spam!")))
    await root.send(f"OPER {OPER_NAME} :{OPER_PASSWORD}")
    await root.expect("381")

    # n1 knows spam (on n2) by the cloak only: no D-line by nick from here.
    await root.send("DLINE spam :x")
    assert (await root.expect("NOTICE")).params[1] == (
        "spam is on another server, whose address is not known here: D-line the address")
    await root.send("KLINE 1h spam@127.0.0.1 :spam")
    notice = await root.expect("NOTICE")
    assert notice.params[1] == "Added temporary 1 h K-Line [spam@127.0.0.1] (spam)"
    # (Joining at once on two nodes may also have brought a MODE from the creation race.)
    closing = [m.command for m in await spam.wait_closed() if m.command not in ("JOIN", "MODE")]
    assert closing == ["465", "ERROR"]
    quit_msg = await carol.expect("QUIT")
    assert quit_msg.source and quit_msg.source.startswith("spam!")
    assert quit_msg.params == ["K-Lined"]
    assert saved(files["n1"]) == saved(files["n2"]) == ["spam@127.0.0.1"]
    # Another nick: the banned user's own may still be held in Redis for a moment.
    assert await refused(p2, "spam2", "spam") == ["465", "ERROR"]

    await root.send("UNKLINE spam@127.0.0.1")
    assert (await root.expect("NOTICE")).params[1] == "K-Line for [spam@127.0.0.1] is removed"
    await eventually(lambda: saved(files["n2"]) == [])
    again = await connect(p2, "spam")
    assert again.nick == "spam"
    for c in (root, carol, spam, again):
        await c.close()


async def test_a_node_that_was_away_catches_up_with_bans_and_removals(
    cluster: Cluster, oper_hash: str, tmp_path: Path
) -> None:
    opers = {OPER_NAME: oper_hash}
    files = {n: tmp_path / f"{n}-bans.json" for n in ("n1", "n2")}

    def start(node: str) -> int:
        return cluster.start(node, opers=opers, ban_file=str(files[node]))

    p1 = start("n1")
    start("n2")
    root = await connect(p1, "root")
    await root.send(f"OPER {OPER_NAME} :{OPER_PASSWORD}")
    await root.expect("381")
    await root.send("KLINE old@127.0.0.1 :set while both were up")
    await root.expect("NOTICE")
    await eventually(lambda: saved(files["n2"]) == ["old@127.0.0.1"])

    cluster.stop("n2")
    await root.send("KLINE new@127.0.0.1 :set while n2 was away")
    await root.expect("NOTICE")
    await root.send("UNKLINE old@127.0.0.1")
    await root.expect("NOTICE")
    assert saved(files["n2"]) == ["old@127.0.0.1"]  # n2's file is behind

    # Back up: n1's snapshot brings the new ban and the removal; n2's stale copy of the
    # old ban does not come back to n1, since its removal is newer.
    p2 = start("n2")
    await eventually(lambda: saved(files["n2"]) == ["new@127.0.0.1"])
    assert await refused(p2, "new", "new") == ["465", "ERROR"]
    old = await connect(p2, "old")
    assert old.nick == "old"
    assert saved(files["n1"]) == ["new@127.0.0.1"]
    await root.send("STATS k")
    listed = await root.collect_until("219")
    assert [m.params[4] for m in listed if m.command == "216"] == ["new"]
    for c in (root, old):
        await c.close()


@pytest.mark.parametrize(
    ("name", "tag"),
    [
        (None, "n2.chat.local"),  # a name that starts with the node id says it all
        # Nodes left at the default name all say chat.local: the node id tells them apart.
        ("chat.local", "chat.local/n2"),
    ],
)
async def test_server_notices_reach_operators_on_every_node(
    cluster: Cluster, oper_hash: str, name: str | None, tag: str
) -> None:
    settings: dict[str, object] = {"opers": {OPER_NAME: oper_hash}}
    if name is not None:
        settings["name"] = name
    p1, p2 = cluster.start("n1", **settings), cluster.start("n2", **settings)
    root = await connect(p1, "root")
    await root.send(f"OPER {OPER_NAME} :{OPER_PASSWORD}")
    await root.expect("381")
    mallory = await connect(p2, "mallory")
    await mallory.send(f"OPER {OPER_NAME} :guess")
    await mallory.expect("464")
    notice = await root.expect("NOTICE", lambda m: "Failed OPER" in m.params[-1])
    assert notice.params[-1] == (f"*** Notice -- [{tag}] Failed OPER attempt as "
                                 f"{OPER_NAME} by mallory (~mallory@127.0.0.1)")
    for c in (root, mallory):
        await c.close()
