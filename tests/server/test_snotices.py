"""Server notices (user mode +s) to operators, over real TCP on every backend."""

from __future__ import annotations

import pytest

from chat.message import Message
from server.config import ServerConfig
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer
from tests.ircclient import IRCTestClient
from tests.server.test_oper import ask, oper_up


@pytest.fixture
def server_config(oper_hash: str) -> ServerConfig:
    # Flood control on (the suite turns it off): a burst no test client but the flooder
    # reaches, and a short queue.
    return ServerConfig(name="test.server", network="TestNet", opers={OPER_NAME: oper_hash},
                        flood_burst=19, flood_max_queue=10)


def snotices(msgs: list[Message]) -> list[str]:
    return [m.params[1].removeprefix("*** Notice -- ") for m in msgs
            if m.command == "NOTICE" and m.params[1].startswith("*** Notice -- ")]


async def test_operators_get_server_notices_of_what_happens(server: RunningServer) -> None:
    root = await server.client("root")
    await oper_up(root)
    await root.sync()

    mallory = await server.client("mallory")
    await mallory.send(f"OPER {OPER_NAME} :guess")
    await mallory.expect("464")
    await mallory.send(f"OPER {OPER_NAME} :{OPER_PASSWORD}")
    await mallory.expect("381")
    assert snotices(await root.sync()) == [
        f"Failed OPER attempt as {OPER_NAME} by mallory (~mallory@127.0.0.1)",
        f"mallory (~mallory@127.0.0.1) is now an operator ({OPER_NAME})",
    ]

    victim = await server.client("victim")
    await mallory.send("KILL victim :testing")
    await victim.wait_closed()
    await mallory.send("KLINE 5 spam@192.0.2.1 :spam")
    await mallory.send("UNKLINE spam@192.0.2.1")
    await mallory.sync()
    assert snotices(await root.sync()) == [
        "Received KILL message for victim (~victim@127.0.0.1) from mallory (testing)",
        "mallory added temporary 5 min. K-Line for [spam@192.0.2.1] [spam]",
        "mallory has removed the K-Line for [spam@192.0.2.1]",
    ]
    # The operator who acted is answered directly, not told again.
    assert snotices(await mallory.sync()) == []

    flooder = await server.client("flooder")
    await flooder.send_raw(b"".join(b"PING :x%d\r\n" % i for i in range(100)))
    await flooder.wait_closed()
    assert snotices(await root.sync()) == ["Excess Flood: flooder (~flooder@127.0.0.1)"]


async def test_only_operators_have_server_notices(server: RunningServer) -> None:
    alice = await server.client("alice")
    assert await ask(alice, "MODE alice +s") == []  # no change for a user
    assert (await ask(alice, "MODE alice"))[0].params[1] == "+"
    root = await server.client("root")
    await oper_up(root)
    msgs = await ask(root, "MODE root -s")
    assert [(m.command, m.params) for m in msgs] == [("MODE", ["root", "-s"])]
    observer = await server.client("observer")
    await oper_up(observer)
    await ask(root, "MODE root +s")
    assert snotices(await ask(observer, "MODE observer -o")) == []
    # Dropping operator status drops +s too; nobody is told anything meanwhile.
    assert (await ask(observer, "MODE observer"))[0].params[1] == "+"
    other = await IRCTestClient.open(server.port)
    server.clients.append(other)
    await other.register("other")
    await other.send(f"OPER {OPER_NAME} :nope")
    await other.expect("464")
    assert snotices(await observer.sync()) == []
    assert snotices(await root.sync()) == [f"Failed OPER attempt as {OPER_NAME} by other "
                                           "(~other@127.0.0.1)"]
