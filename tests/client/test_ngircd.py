"""Against ngIRCd (no server-time, echo-message, batch or chathistory): clean degradation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from client.model import Kind
from tests.e2e.irc_clients import RunningServer, server_skip_reason, start_server

from .netutil import ChatClient, has_texts, in_channel, messages, texts

pytestmark = pytest.mark.skipif(
    server_skip_reason("ngircd") is not None, reason=server_skip_reason("ngircd") or ""
)


@pytest.fixture
def ngircd(tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server("ngircd", tmp_path / "ngircd")
    try:
        yield server
    finally:
        server.stop()


async def test_chat_without_history_caps(ngircd: RunningServer, clients: list[ChatClient]) -> None:
    alice, a_buf = await in_channel(clients, ngircd.port, "alice")  # first in: channel operator
    bob, b_buf = await in_channel(clients, ngircd.port, "bob")
    s = alice.session
    assert not s.history_enabled and not s.echo and "server-time" not in s.caps
    assert s.casemapping == "ascii" and s.prefix_symbols == "~&@%+"
    await alice.wait(lambda: "bob" in a_buf.members, "bob in the member list")
    assert a_buf.members["alice"].prefixes == "@"

    alice.conn.switch(a_buf)
    bob.conn.switch(b_buf)
    alice.conn.input("hello from alice")
    alice.conn.input("/me waves")
    bob.conn.input("hi alice")
    want = ["hello from alice", "waves", "hi alice"]
    await alice.wait(lambda: has_texts(a_buf, want), "the chat (alice)")
    await bob.wait(lambda: has_texts(b_buf, want), "the chat (bob)")
    # Own messages shown locally, exactly once (no echo-message to double them).
    assert texts(a_buf) == want
    assert [m.own for m in messages(a_buf)] == [True, True, False]
    assert [m.highlight for m in messages(a_buf)] == [False, False, True]
    assert [m.kind for m in messages(b_buf) if m.text == "waves"] == [Kind.ACTION]
    assert all(m.msgid is None for m in messages(b_buf))

    # Older history cannot be requested; nothing asks for CHATHISTORY.
    assert not alice.conn.request_older(a_buf)
    errors = [ln.text for b in s.buffers for ln in b.lines if ln.kind is Kind.ERROR]
    assert errors == []

    # A dropped connection is recovered: rejoin, one short note, no history request.
    alice.conn.drop()
    await alice.wait(lambda: s.connects >= 2 and a_buf.joined, "the rejoin")
    await alice.wait(lambda: any("Reconnected" in ln.text for ln in a_buf.lines), "the note")
    assert sum("Reconnected" in ln.text for ln in a_buf.lines) == 1
    bob.conn.input("welcome back")
    await alice.wait(lambda: has_texts(a_buf, ["welcome back"]), "live messages again")
    errors = [ln.text for b in s.buffers for ln in b.lines if ln.kind is Kind.ERROR]
    assert all("Disconnected" in e for e in errors), errors


async def test_nick_collision_fallback(ngircd: RunningServer, clients: list[ChatClient]) -> None:
    first = ChatClient.start(ngircd.port, "dup")
    clients.append(first)
    await first.wait(lambda: first.session.registered, "registration")
    second = ChatClient.start(ngircd.port, "dup")
    clients.append(second)
    await second.wait(lambda: second.session.registered, "registration with a fallback nick")
    assert second.session.nick == "dup_"


async def test_a_nick_with_brackets_registers(
    ngircd: RunningServer, clients: list[ChatClient]
) -> None:
    """The default user name leaves out what ngIRCd refuses in one ("Invalid user
    name" closed the connection, and every reconnect again)."""
    client = ChatClient.start(ngircd.port, "[w]")
    clients.append(client)
    s = client.session
    await client.wait(lambda: s.registered or s.connects > 1, "registration or a reconnect")
    assert s.registered and s.connects == 1


async def test_a_user_name_refused_three_times_stops_reconnecting(
    ngircd: RunningServer, clients: list[ChatClient]
) -> None:
    """An explicit user name ngIRCd refuses ("Invalid user name", the link closed)
    stays refused: after three refusals in a row the client stops retrying and says
    why, instead of reconnecting for ever."""
    client = ChatClient.start(ngircd.port, "bob")
    client.session.config.user = "a!b"  # (before the connection is made)
    clients.append(client)
    s = client.session
    stopped = ("Not reconnecting: the server refused us 3 times in a row (Invalid user "
               "name); /reconnect to try again")  # fmt: skip
    await client.wait(lambda: stopped in [ln.text for ln in s.server.lines], "the stop")
    assert s.connects == 3 and not s.registered
    assert [ln.text for ln in s.server.lines].count("Server: Invalid user name") == 3
