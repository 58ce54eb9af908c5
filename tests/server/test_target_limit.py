"""The private-message target limit (ERR_TARGCHANGE 707) over real TCP, every backend."""

from __future__ import annotations

import pytest

from server.config import ServerConfig
from tests.conftest import OPER_NAME, RunningServer
from tests.server.helpers import ask, only
from tests.server.test_oper import oper_up


@pytest.fixture
def server_config(oper_hash: str) -> ServerConfig:
    # Three new nicks at once and no refill within a test.
    return ServerConfig(name="test.server", network="TestNet", opers={OPER_NAME: oper_hash},
                        target_limit=3, target_refill=1000.0)


async def test_new_targets_run_out_but_known_ones_and_channels_do_not(
    server: RunningServer,
) -> None:
    spam = await server.client("spam")
    others = [await server.client(n) for n in ("bob", "carol", "dave", "erin")]
    for nick in ("bob", "carol", "dave"):
        assert await ask(spam, f"PRIVMSG {nick} :buy now") == []
    msgs = await ask(spam, "PRIVMSG erin :buy now")
    assert [(m.command, m.params[1:]) for m in msgs] == [
        ("707", ["erin", "Targets changing too fast, message dropped"])]
    assert only(await others[3].sync(), "PRIVMSG") == []  # dropped, not delivered
    assert await ask(spam, "NOTICE erin :psst") == []  # no error for a NOTICE...
    assert only(await others[3].sync(), "NOTICE") == []  # ...and not delivered either
    # Someone already talked to costs nothing; channels are not limited.
    assert await ask(spam, "PRIVMSG BOB :again") == []
    await others[0].expect("PRIVMSG", lambda m: m.params[1] == "again")
    await spam.join("#chan")
    assert await ask(spam, "PRIVMSG #chan :hello channel") == []


async def test_answering_is_free_and_operators_are_exempt(server: RunningServer) -> None:
    alice = await server.client("alice")
    for n in ("b1", "b2", "b3"):
        await server.client(n)
    for n in ("b1", "b2", "b3"):
        await ask(alice, f"PRIVMSG {n} :hi")
    fan = await server.client("fan")
    assert only(await ask(alice, "PRIVMSG fan :hi"), "707")  # out of new targets
    await fan.send("PRIVMSG alice :hello alice!")
    await alice.expect("PRIVMSG")
    assert await ask(alice, "PRIVMSG fan :hello back") == []  # a reply is free
    assert (await fan.expect("PRIVMSG")).params[1] == "hello back"
    root = await server.client("root")
    await oper_up(root)
    for n in ("b1", "b2", "b3", "fan", "alice"):
        assert await ask(root, f"PRIVMSG {n} :operator here") == []
