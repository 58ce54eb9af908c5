"""A repeated target in PRIVMSG's list gets one copy, on every backend (fourth hostile
round, item 10)."""

from __future__ import annotations

from tests.conftest import RunningServer
from tests.server.helpers import ask
from tests.server.test_client_tag_cost import history_of


async def test_a_repeated_target_gets_one_copy(server: RunningServer) -> None:
    alice = await server.client("alice", caps=["echo-message"])
    bob = await server.client("bob")
    for c in (alice, bob):
        await c.join("#dup")
    for c in (alice, bob):
        await c.sync()
    echoed = await ask(alice, "PRIVMSG #dup,#DUP,#dup,bob,BOB :once")
    assert [m.params for m in echoed] == [["#dup", "once"], ["bob", "once"]]
    got = [m for m in await bob.sync() if m.command == "PRIVMSG"]
    assert [m.params for m in got] == [["#dup", "once"], ["bob", "once"]]
    rows = await history_of(server, "reader", "#dup")
    assert [m.params for m in rows if m.command == "PRIVMSG"] == [["#dup", "once"]]
