"""labeled-response at its edges, over real TCP on every backend: requests that close
the connection."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chat.message import Message
from server.config import ServerConfig
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer, serving, suite_config

SERVER = "test.server"
HOST = "127.0.0.1"
LABELS = ["labeled-response", "batch"]
PASSWORD_CONFIG = suite_config(password="sekret", db="")


@pytest.fixture
def server_config(oper_hash: str) -> ServerConfig:
    return suite_config(opers={OPER_NAME: oper_hash}, db="")


def in_batch(got: list[Message], label: str) -> list[Message]:
    """The lines of the one labeled-response batch that is all of ``got``."""
    start, *inner, end = got
    assert (start.command, start.params[1:], start.tags) == (
        "BATCH", ["labeled-response"], {"label": label}
    )
    ref = start.params[0][1:]
    assert end == Message("BATCH", ["-" + ref], SERVER)
    assert all(m.tags == {"batch": ref} for m in inner)
    return [Message(m.command, m.params, m.source) for m in inner]


# ------------------------------------------------------- requests that close the connection


async def test_labelled_quit_gets_its_error_labelled(server: RunningServer) -> None:
    alice = await server.client("alice", LABELS)
    await alice.sync()
    await alice.send("@label=q QUIT :x")
    assert await alice.wait_closed() == [
        Message("ERROR", [f"Closing Link: {HOST} (Quit: x)"], tags={"label": "q"})
    ]


@pytest.mark.parametrize("server_config", [PASSWORD_CONFIG], ids=["password"])
@pytest.mark.parametrize("last", ["CAP END", "USER"])
async def test_labelled_registration_with_a_wrong_password_gets_464_and_error(
    server: RunningServer, last: str
) -> None:
    c = await server.client()
    await c.send("CAP LS 302")
    await c.send("CAP REQ :labeled-response batch message-tags")
    await c.expect("CAP", lambda m: m.params[1] == "ACK")
    await c.send("PASS wrong")
    await c.send("NICK alice")
    if last == "USER":
        await c.send("CAP END")
        await c.send("@label=end USER alice 0 * :Alice")
    else:
        await c.send("USER alice 0 * :Alice")
        await c.send("@label=end CAP END")
    assert in_batch(await c.wait_closed(), "end") == [
        Message("464", ["alice", "Password incorrect"], SERVER),
        Message("ERROR", [f"Closing Link: {HOST} (Bad password)"]),
    ]


async def test_labelled_kill_of_oneself_gets_its_answer(server: RunningServer) -> None:
    alice = await server.client("alice", LABELS)
    await alice.send(f"OPER {OPER_NAME} :{OPER_PASSWORD}")
    await alice.expect("381")
    await alice.sync()
    await alice.send("@label=k KILL alice :bye")
    got = in_batch(await alice.wait_closed(), "k")
    assert [m.command for m in got] == ["KILL", "QUIT", "ERROR"]
    assert got[-1].params == [f"Closing Link: {HOST} (Killed (alice (bye)))"]


async def test_labelled_quit_delayed_by_fakelag_gets_its_error(backend: str) -> None:
    config = replace(suite_config(db=""), flood_burst=8, flood_rate=4.0)
    async with serving(config, backend, db="") as flooded:
        c = await flooded.client("alice", LABELS)  # six lines of the burst
        # Past the burst the QUIT waits for a token (the next tick); it still gets its
        # answer.
        await c.send_raw(b"PING a\r\nPING b\r\nPING c\r\n@label=late QUIT :slow\r\n")
        got = await c.wait_closed()
        assert got[-1] == Message(
            "ERROR", [f"Closing Link: {HOST} (Quit: slow)"], tags={"label": "late"}
        )
