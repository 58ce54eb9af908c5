"""labeled-response at its edges, over real TCP on every backend: requests that close
the connection, messages to oneself, and a client that did not enable batch."""

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


# ------------------------------------------------------------------ messages to oneself


@pytest.mark.parametrize("command", ["PRIVMSG", "NOTICE", "TAGMSG"])
async def test_a_labelled_message_to_oneself_without_echo_is_delivered_unlabelled(
    server: RunningServer, command: str
) -> None:
    """"When a client sends a message to itself, the server MUST NOT include the label
    tag, except for any acknowledgment sent with the echo-message mechanism": without
    echo-message the delivery is not the answer, so the label gets an ACK."""
    alice = await server.client("alice", [*LABELS, "message-tags"])
    await alice.sync()
    text = "" if command == "TAGMSG" else " :to myself"
    await alice.send(f"@label=ps;+x=y {command} alice{text}")
    delivered, ack = await alice.sync()
    assert delivered.command == command and delivered.params[0] == "alice"
    assert "label" not in delivered.tags and delivered.tags["+x"] == "y"
    assert ack == Message("ACK", [], SERVER, {"label": "ps"})


async def test_a_labelled_message_to_oneself_while_away_labels_the_301(
    server: RunningServer,
) -> None:
    alice = await server.client("alice", LABELS)
    await alice.send("AWAY :out")
    await alice.expect("306")
    await alice.sync()
    await alice.send("@label=aw PRIVMSG alice :hi")
    delivered, away = await alice.sync()
    assert delivered == Message("PRIVMSG", ["alice", "hi"], f"alice!~alice@{HOST}")
    assert away == Message("301", ["alice", "alice", "out"], SERVER, {"label": "aw"})


async def test_with_echo_message_the_echo_keeps_the_label(server: RunningServer) -> None:
    alice = await server.client("alice", [*LABELS, "echo-message"])
    await alice.sync()
    await alice.send("@label=e PRIVMSG alice :hi")
    got = await alice.sync()
    assert [m.tags.get("label") for m in got] == [None, "e"]
    assert all(m.command == "PRIVMSG" for m in got)


# ------------------------------------------------------------------ labeled-response alone


async def test_labels_are_ignored_without_batch(server: RunningServer) -> None:
    """labeled-response "depends on the batch capability which MUST be negotiated":
    without it the label is ignored (as on InspIRCd): no batch, no label, no ACK."""
    alice = await server.client("alice", ["labeled-response"])
    await alice.sync()
    await alice.send("@label=W WHOIS alice")
    got = await alice.sync()
    assert [m.command for m in got] == ["311", "312", "378", "317", "318"]
    assert all(m.tags == {} for m in got)
    await alice.send("@label=p PING tok")
    assert await alice.expect("PONG") == Message("PONG", [SERVER, "tok"], SERVER)
    await alice.send("@label=a PONG :x")
    assert await alice.sync() == []
    # Enabled later, batch makes the labels count.
    await alice.send("CAP REQ :batch")
    await alice.expect("CAP")
    await alice.send("@label=p2 PING tok")
    assert await alice.expect("PONG") == Message("PONG", [SERVER, "tok"], SERVER, {"label": "p2"})

