"""IRCv3 draft/read-marker over real TCP on every backend: markers per account, kept
in the suite server's real SQLite file, shared between a user's sessions."""

from __future__ import annotations

from pathlib import Path

from chat.servertime import format_time, parse_time
from server.accounts.model import ACCOUNT_MARKERS
from tests.conftest import RunningServer, serving, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, only

CAPS = ["draft/read-marker", "sasl"]
PASSWORD = "marker-password"
T1 = "timestamp=2026-01-02T03:04:05.678Z"
T0 = "timestamp=2025-12-31T23:59:59.000Z"
T2 = "timestamp=2026-02-03T04:05:06.789Z"


async def session(server: RunningServer, nick: str, *, register: bool = False) -> IRCTestClient:
    """A registered user with the cap, logged in to the account ``ann``."""
    c = await server.client(nick, CAPS)
    line = f"REGISTER ann * {PASSWORD}" if register else f"NS IDENTIFY ann {PASSWORD}"
    assert "900" in [m.command for m in await ask(c, line)]
    return c


def markreads(msgs: list) -> list[list[str]]:  # type: ignore[type-arg]
    return [m.params for m in only(msgs, "MARKREAD")]


async def test_markers_are_kept_per_account_and_shared(server: RunningServer) -> None:
    first = await session(server, "ann_a", register=True)
    second = await session(server, "ann_b")
    assert markreads(await ask(first, "MARKREAD #room")) == [["#room", "*"]]
    assert markreads(await ask(first, f"MARKREAD #room {T1}")) == [["#room", T1]]
    # The other session hears of it; an older time does not move it back.
    assert markreads(await second.sync()) == [["#room", T1]]
    assert markreads(await ask(second, f"MARKREAD #Room {T0}")) == [["#Room", T1]]
    assert markreads(await first.sync()) == []
    assert markreads(await ask(second, f"MARKREAD #room {T2}")) == [["#room", T2]]
    assert markreads(await first.sync()) == [["#room", T2]]
    # Private targets too; someone else's markers are their own.
    assert markreads(await ask(first, f"MARKREAD bob {T1}")) == [["bob", T1]]
    other = await server.client("other", CAPS)
    assert markreads(await ask(other, "MARKREAD #room")) == [["#room", "*"]]


async def test_a_connection_without_an_account_keeps_its_own_markers(
    server: RunningServer,
) -> None:
    """Not logged in: markers work for the connection (irctest), seen by nobody else and
    gone with it."""
    ann = await session(server, "ann_a", register=True)
    assert markreads(await ask(ann, f"MARKREAD #room {T1}")) == [["#room", T1]]
    guest = await server.client("guest", CAPS)
    assert markreads(await ask(guest, "MARKREAD #room")) == [["#room", "*"]]  # not ann's
    assert markreads(await ask(guest, f"MARKREAD #room {T2}")) == [["#room", T2]]
    assert markreads(await ask(guest, f"MARKREAD #room {T0}")) == [["#room", T2]]  # forward
    assert markreads(await ask(guest, f"MARKREAD Ann {T1}")) == [["Ann", T1]]
    assert markreads(await ask(guest, "MARKREAD ann")) == [["ann", T1]]
    assert markreads(await guest.join("#room")) == [["#room", T2]]
    assert markreads(await ann.sync()) == []
    assert markreads(await ask(ann, "MARKREAD #room")) == [["#room", T1]]
    for bad in ("timestamp=*", "bogus"):
        assert [(m.command, m.params[1]) for m in await ask(guest, f"MARKREAD #room {bad}")] \
            == [("FAIL", "INVALID_PARAMS")]
    again = await server.client("guest2", CAPS)
    assert markreads(await again.join("#room")) == [["#room", "*"]]


async def test_join_sends_the_marker_before_the_names_end(server: RunningServer) -> None:
    ann = await session(server, "ann_a", register=True)
    await ask(ann, f"MARKREAD #room {T1}")
    lines = await ann.join("#room")
    commands = [m.command for m in lines]
    assert commands.index("MARKREAD") < commands.index("366")
    assert markreads(lines) == [["#room", T1]]
    fresh = [m.params for m in only(await ann.join("#new"), "MARKREAD")]
    assert fresh == [["#new", "*"]]
    plain = await server.client("plain")
    assert only(await plain.join("#room"), "MARKREAD") == []  # no cap, no MARKREAD


async def test_bad_markread(server: RunningServer) -> None:
    ann = await session(server, "ann_a", register=True)
    for line, code in (("MARKREAD", "NEED_MORE_PARAMS"), ("MARKREAD #room bogus", "INVALID_PARAMS"),
                       ("MARKREAD #room timestamp=not-a-time", "INVALID_PARAMS"),
                       ("MARKREAD :bad target", "INVALID_PARAMS")):
        msgs = await ask(ann, line)
        assert [(m.command, m.params[1]) for m in msgs] == [("FAIL", code)], line
    # A marker in the future is kept as now, not later.
    future = markreads(await ask(ann, "MARKREAD #room timestamp=2999-01-01T00:00:00.000Z"))
    assert future[0][1] < "timestamp=2999"


async def test_markers_survive_a_restart(backend: str, tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    async with serving(suite_config(), backend, db=db) as first:
        ann = await session(first, "ann_a", register=True)
        await ask(ann, f"MARKREAD #room {T1}")
        await ann.close()
    async with serving(suite_config(), backend, db=db) as second:
        ann = await session(second, "ann_b")
        assert markreads(await ask(ann, "MARKREAD #room")) == [["#room", T1]]


async def test_a_conversations_marker_follows_the_partners_account(
    server: RunningServer,
) -> None:
    ann = await session(server, "ann_m", register=True)
    bob = await server.client("bob_m")
    assert "900" in [m.command for m in await ask(bob, f"REGISTER bobacct * {PASSWORD}")]
    assert markreads(await ask(ann, f"MARKREAD bob_m {T1}")) == [["bob_m", T1]]
    await ask(bob, "NICK bob_elsewhere")
    # The same conversation under the new nick, and under the account's name.
    assert markreads(await ask(ann, "MARKREAD bob_elsewhere")) == [["bob_elsewhere", T1]]
    assert markreads(await ask(ann, "MARKREAD bobacct")) == [["bobacct", T1]]
    # A nick nobody logged in holds has its own marker.
    assert markreads(await ask(ann, "MARKREAD bob_m")) == [["bob_m", "*"]]


async def test_an_account_keeps_its_newest_markers_only(backend: str, tmp_path: Path) -> None:
    # MARKREAD takes any valid name, and each was kept for good, in memory and in the
    # database: ACCOUNT_MARKERS per account now, the oldest going first.
    start = parse_time("2026-01-02T03:04:05.000Z")

    def at(i: int) -> str:
        return "timestamp=" + format_time(start + i / 1000)

    db = str(tmp_path / "chat.db")
    async with serving(suite_config(), backend, db=db) as first:
        ann = await session(first, "ann_a", register=True)
        count = ACCOUNT_MARKERS + 2
        await ann.send_raw(
            b"".join(f"MARKREAD #c{i} {at(i)}\r\n".encode() for i in range(count)))
        await ann.sync()
        assert markreads(await ask(ann, "MARKREAD #c1")) == [["#c1", "*"]]
        assert markreads(await ask(ann, "MARKREAD #c2")) == [["#c2", at(2)]]
        # Older than every marker kept: not kept, and said so.
        assert markreads(await ask(ann, f"MARKREAD #old {at(-1)}")) == [["#old", "*"]]
        await ann.close()
    async with serving(suite_config(), backend, db=db) as second:
        ann = await session(second, "ann_b")
        for target, expected in (("#c0", "*"), ("#c1", "*"), ("#c2", at(2)),
                                 (f"#c{count - 1}", at(count - 1)), ("#old", "*")):
            assert markreads(await ask(ann, f"MARKREAD {target}")) == [[target, expected]]
