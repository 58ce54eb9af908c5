"""The chathistory batch names its target canonically, over real TCP on every backend:
a private conversation by its partner's nick as spelled now or as stored, however the
request spelled it (channels already were)."""

from __future__ import annotations

from tests.conftest import RunningServer
from tests.server.helpers import quit_and_wait
from tests.server.test_private_history import account_user, answer


async def test_a_conversation_is_named_as_the_nick_is_spelled(server: RunningServer) -> None:
    alice = await account_user(server, "alice")
    bob = await account_user(server, "dmBob")
    await alice.send("PRIVMSG dmbob :hello")
    await bob.expect("PRIVMSG")
    msgs = await answer(alice, "CHATHISTORY LATEST DMBOB * 10")
    assert msgs[0].params[1:] == ["chathistory", "dmBob"]
    assert [m.params for m in msgs[1:-1]] == [["dmBob", "hello"]]
    # Its user gone, the conversation is named as the newest row stored the nick.
    await quit_and_wait(bob)
    msgs = await answer(alice, "CHATHISTORY LATEST DMBOB * 10")
    assert msgs[0].params[1:] == ["chathistory", "dmBob"]
