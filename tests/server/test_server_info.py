"""VERSION, TIME, ADMIN, INFO and STATS as the Modern IRC spec gives them."""

from __future__ import annotations

from datetime import datetime

import pytest

from server import VERSION
from tests.conftest import RunningServer
from tests.server.helpers import ask


async def test_version_replies_351_then_isupport(server: RunningServer) -> None:
    c = await server.client("alice")
    await c.send("VERSION")
    msgs = await c.sync()
    assert msgs[0].command == "351"
    assert msgs[0].params[:3] == ["alice", VERSION, "test.server"]
    assert [m.command for m in msgs[1:]] == ["005"] * (len(msgs) - 1)
    assert any("NETWORK=TestNet" in m.params for m in msgs[1:])


async def test_time_gives_the_server_clock(server: RunningServer) -> None:
    c = await server.client("alice")
    await c.send("TIME")
    (msg,) = await c.sync()
    assert msg.command == "391"
    # 391 <nick> <server> :<time>, as solanum: no <timestamp> <offset> for clients to
    # show raw.
    nick, name, text = msg.params
    assert (nick, name) == ("alice", "test.server")
    datetime.strptime(text, "%A %B %d %Y -- %H:%M:%S +00:00")


async def test_other_server_gets_402(server: RunningServer) -> None:
    c = await server.client("alice")
    for command in ("VERSION", "TIME", "ADMIN", "INFO"):
        await c.send(f"{command} other.server")
        (msg,) = await c.sync()
        assert msg.command == "402"
        assert msg.params[1] == "other.server"


async def test_admin_lines(server: RunningServer) -> None:
    c = await server.client("alice")
    await c.send("ADMIN test.server")
    msgs = await c.sync()
    assert [m.command for m in msgs] == ["256", "257", "258", "259"]
    assert msgs[0].params[1] == "test.server"
    assert msgs[3].params[-1] == server.config.admin_email


async def test_info_ends_with_374(server: RunningServer) -> None:
    c = await server.client("alice")
    await c.send("INFO")
    msgs = await c.sync()
    assert [m.command for m in msgs][-1] == "374"
    assert {m.command for m in msgs[:-1]} == {"371"}
    assert VERSION in msgs[0].params[-1]


async def test_stats_m_counts_commands_and_u_uptime(server: RunningServer) -> None:
    c = await server.client("alice")
    for _ in range(3):
        await c.send("TIME")
    await c.sync()
    await c.send("STATS m")
    msgs = await c.sync()
    counts = {m.params[1]: int(m.params[2]) for m in msgs if m.command == "212"}
    assert counts["TIME"] == 3
    assert counts["NICK"] == 1 and counts["USER"] == 1
    assert msgs[-1].command == "219" and msgs[-1].params[1] == "m"
    await c.send("STATS u")
    msgs = await c.sync()
    assert msgs[0].command == "242" and msgs[0].params[-1].startswith("Server Up 0 days")
    assert msgs[-1].params[1] == "u"
    await c.send("STATS x")
    assert [m.command for m in await c.sync()] == ["219"]


@pytest.mark.parametrize("line", ["STATS", "STATS :"])
async def test_stats_without_a_letter_is_461(server: RunningServer, line: str) -> None:
    # Modern IRC: STATS <query> [<server>]; InspIRCd answers the same.
    c = await server.client("alice")
    msgs = await ask(c, line)
    assert [(m.command, m.params) for m in msgs] == [
        ("461", ["alice", "STATS", "Not enough parameters"])]
