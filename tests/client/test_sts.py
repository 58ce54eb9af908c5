"""IRCv3 STS in the client: the session's part, the policy store, and a real TLS server."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from pathlib import Path

import pytest

from client.model import Kind, StsPolicy, StsUpgrade
from client.session import Session
from client.sts import (
    MAX_DURATION,
    Policy,
    StsStore,
    default_path,
    parse_sts,
    valid_duration,
    valid_port,
)
from server.config import ServerConfig
from tests.conftest import start_server

from .helpers import NOW, feed, make
from .netutil import ChatClient, cert_or_skip


def negotiate(s: Session, ls: str, *, secure: bool) -> tuple[list[str], list[object]]:
    s.connection_made(NOW, secure=secure)
    s.take_outgoing()
    s.take_events()
    out = feed(s, [f":srv CAP * LS :{ls}"])
    return out, [e for e in s.take_events() if isinstance(e, StsUpgrade | StsPolicy)]


def test_plaintext_connection_is_told_to_upgrade() -> None:
    s = make()
    out, events = negotiate(s, "multi-prefix sts=port=6697,duration=300", secure=False)
    assert events == [StsUpgrade(6697)]
    assert out == []  # no CAP REQ, no CAP END: registration stops here
    assert "reconnecting securely to port 6697" in s.server.lines[-1].text


def test_the_upgrade_disconnect_is_no_error() -> None:
    s = make()
    negotiate(s, "sts=port=6697", secure=False)
    s.connection_lost(NOW, "connection closed")  # the connection drops it on StsUpgrade
    last = s.server.lines[-1]
    assert (last.kind, last.text) == (Kind.INFO, "Disconnected, to reconnect with TLS (STS)")
    assert not [ln for ln in s.server.lines if ln.kind is Kind.ERROR]
    # A later connection lost for real is an error again.
    s.connection_made(NOW, secure=True)
    feed(s, [":srv CAP * LS :sts=duration=300", ":srv 001 alice :hi"])
    s.connection_lost(NOW, "Connection reset by peer")
    assert s.server.lines[-1].kind is Kind.ERROR


def test_secure_connection_gets_the_policy_and_registers() -> None:
    s = make()
    out, events = negotiate(s, "multi-prefix sts=duration=300,port=6697", secure=True)
    assert events == [StsPolicy(300)]
    assert out == ["CAP REQ multi-prefix"]


@pytest.mark.parametrize("value", ["port=0", "port=x", "port=70000", "duration=1", "", "port"])
def test_a_bad_sts_value_on_plaintext_is_ignored(value: str) -> None:
    out, events = negotiate(make(), f"multi-prefix sts={value}", secure=False)
    assert events == [] and out == ["CAP REQ multi-prefix"]


@pytest.mark.parametrize("value", ["duration=-5", "duration=x", "port=6697", "duration="])
def test_a_bad_duration_over_tls_is_ignored(value: str) -> None:
    _, events = negotiate(make(), f"sts={value}", secure=True)
    assert events == []


def test_sts_in_cap_new_is_followed_too() -> None:
    s = make()
    negotiate(s, "multi-prefix", secure=False)
    feed(s, [":srv CAP alice NEW :sts=port=6697"])
    assert [e for e in s.take_events() if isinstance(e, StsUpgrade)] == [StsUpgrade(6697)]


def test_parsers() -> None:
    assert parse_sts("port=6697,duration=300,preload") == {
        "port": "6697", "duration": "300", "preload": ""}
    assert valid_port("6697") == 6697 and valid_port("٣") is None and valid_port("0") is None
    assert valid_duration("0") == 0 and valid_duration("12345678901") is None


def test_store_keeps_expires_and_drops_policies(tmp_path: Path) -> None:
    path = tmp_path / "state" / "sts.json"
    store = StsStore(path)
    assert store.get("irc.example", 100.0) is None
    store.set("IRC.example", 6697, 300, 100.0)
    policy = store.get("irc.EXAMPLE", 399.0)
    assert policy is not None and policy.port == 6697
    assert store.get("irc.example", 400.0) is None  # expired
    again = StsStore(path)  # read back from the file
    assert again.get("irc.example", 200.0) == policy
    again.set("irc.example", 6697, 0, 200.0)  # duration 0: the policy is dropped
    assert StsStore(path).get("irc.example", 200.0) is None
    assert [p.name for p in path.parent.iterdir()] == ["sts.json"]


def test_a_policy_is_kept_a_year_at_most(tmp_path: Path) -> None:
    path = tmp_path / "sts.json"
    store = StsStore(path)
    store.set("irc.example", 6697, 9_999_999_999, 100.0)  # 317 years asked
    assert store.get("irc.example", 100.0 + MAX_DURATION - 1) is not None
    assert store.get("irc.example", 100.0 + MAX_DURATION) is None
    # A file written before the cap (or edited) is read capped too.
    path.write_text(json.dumps({"old.example": {"port": 6697, "expires": 11795398290.97}}))
    assert StsStore(path, now=100.0).get("old.example", 100.0 + MAX_DURATION) is None
    assert StsStore(path, now=100.0).get("old.example", 100.0) is not None


def test_forget_drops_one_hosts_policy(tmp_path: Path) -> None:
    path = tmp_path / "sts.json"
    store = StsStore(path)
    for host in ("a.example", "b.example"):
        store.set(host, 6697, 300, 100.0)
    assert store.forget("A.example") and not store.forget("a.example")
    again = StsStore(path, now=100.0)
    assert again.get("a.example", 100.0) is None and again.get("b.example", 100.0) is not None


def test_store_survives_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "sts.json"
    path.write_text("{not json")
    assert StsStore(path).get("x", 0.0) is None
    path.write_text(json.dumps({"x": {"port": "6697", "expires": 9e99}, "y": [1]}))
    assert StsStore(path).get("x", 0.0) is None
    assert default_path({"XDG_STATE_HOME": "/s"}) == Path("/s/chat-client/sts.json")


async def test_the_client_moves_to_tls_and_stays_there(tmp_path: Path) -> None:
    cert, key = cert_or_skip(tmp_path)
    config = ServerConfig(name="test.server", tls_port=0, tls_cert=str(cert), tls_key=str(key),
                          sts_duration=3600)
    running = start_server(config, "asyncio", db="")
    store_path = tmp_path / "sts.json"
    started: list[ChatClient] = []
    try:
        tls_port = running.handle.tls_port
        assert tls_port is not None
        for nick in ("alice", "bob"):
            c = ChatClient.start(running.port, nick)  # both are pointed at plaintext
            c.conn.sts = StsStore(store_path)
            c.conn._ssl = ssl.create_default_context(cafile=str(cert))
            started.append(c)
            await c.wait(lambda c=c: c.session.registered, f"{nick} registered")  # type: ignore[misc]
            assert c.session.secure and c.conn.endpoint() == (True, tls_port)
        alice, bob = started
        # alice learnt it on her first connection; bob, from the stored policy, never
        # touched plaintext at all.
        assert alice.session.connects == 2
        assert any("reconnecting securely" in ln.text for ln in alice.session.server.lines)
        assert bob.session.connects == 1
        assert not any("reconnecting securely" in ln.text for ln in bob.session.server.lines)
        saved = json.loads(store_path.read_text())
        assert saved["127.0.0.1"]["port"] == tls_port
    finally:
        for c in started:
            await c.stop()
        running.handle.stop()


async def test_a_stored_policy_is_capped_and_said_when_it_moves_a_run_to_tls(
    tmp_path: Path,
) -> None:
    """A server over verified TLS asks for 317 years of STS: kept a year. A later run
    pointed at a plaintext port goes to the TLS port, and its server buffer says why,
    until when, and how to undo it."""
    cert, key = cert_or_skip(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def tls_ircd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            if line.startswith(b"CAP LS"):
                writer.write(b":tls.test CAP * LS :sts=duration=9999999999\r\n")
            elif line.startswith(b"CAP END"):
                writer.write(b":tls.test 001 alice :Welcome\r\n:tls.test 422 alice :No MOTD\r\n")
        writer.close()

    srv = await asyncio.start_server(tls_ircd, "127.0.0.1", 0, ssl=server_ctx)
    tls_port = srv.sockets[0].getsockname()[1]
    store_path = tmp_path / "sts.json"
    started: list[ChatClient] = []
    try:
        first = ChatClient.start(tls_port, "alice", tls=True)  # type: ignore[arg-type]
        started.append(first)
        first.conn._ssl = ssl.create_default_context(cafile=str(cert))
        first.conn.sts = StsStore(store_path)
        await first.wait(lambda: first.session.registered, "registration over TLS")
        expires = json.loads(store_path.read_text())["127.0.0.1"]["expires"]
        assert expires <= time.time() + MAX_DURATION
        later = ChatClient.start(6667, "alice")  # pointed at plaintext, as the user asked
        started.append(later)
        later.conn._ssl = ssl.create_default_context(cafile=str(cert))
        later.conn.sts = StsStore(store_path)
        await later.wait(lambda: later.session.registered, "registration over TLS")
        assert later.session.tls_verified and later.conn.endpoint() == (True, tls_port)
        until = time.strftime("%Y-%m-%d %H:%M", time.localtime(expires))
        shown = [ln.text for ln in later.session.server.lines]
        said = (f"Using TLS on port {tls_port}, not plaintext port 6667: 127.0.0.1 asked to be "
                f"reached only over TLS (STS) until {until}; to forget that, start chat-client "
                "with --forget-sts")  # fmt: skip
        assert shown.index(said) < shown.index(f"Connecting to 127.0.0.1:{tls_port}")
        assert not any("Using TLS" in text for text in
                       (ln.text for ln in first.session.server.lines))  # (asked for TLS)
    finally:
        for c in started:
            await c.stop()
        srv.close()


async def test_after_an_upgrade_the_client_never_falls_back_to_plaintext(
    tmp_path: Path,
) -> None:
    """The TLS port it was sent to refuses: it keeps trying TLS there, not plaintext."""
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    plaintext_connections = 0

    async def tiny_ircd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal plaintext_connections
        plaintext_connections += 1
        while line := await reader.readline():
            if line.startswith(b"CAP LS"):
                writer.write(f":srv CAP * LS :sts=port={dead_port}\r\n".encode())
        writer.close()

    srv = await asyncio.start_server(tiny_ircd, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    alice = ChatClient.start(port, "alice")
    alice.conn.sts = StsStore(tmp_path / "sts.json")
    try:
        await alice.wait(lambda: alice.conn.attempt >= 3, "three failed TLS attempts")
        assert alice.conn.endpoint() == (True, dead_port)
        assert plaintext_connections == 1
        errors = [ln.text for ln in alice.session.server.lines if f":{dead_port}:" in ln.text]
        assert errors and all("Could not connect" in e for e in errors)
        assert not (tmp_path / "sts.json").exists()  # no policy without a TLS session
    finally:
        await alice.stop()
        srv.close()


async def test_channels_are_joined_after_the_upgrade(tmp_path: Path) -> None:
    """--join #t, pointed at plaintext: the first connection ends at CAP LS (STS), the
    TLS one registers and joins #t (it joined nothing, the first connection counted)."""
    cert, key = cert_or_skip(tmp_path)
    config = ServerConfig(name="test.server", tls_port=0, tls_cert=str(cert), tls_key=str(key),
                          sts_duration=300)
    running = start_server(config, "asyncio", db="")
    alice = ChatClient.start(running.port, "alice", ("#t",))
    alice.conn._ssl = ssl.create_default_context(cafile=str(cert))
    try:
        buf = await alice.joined("#t")
        assert alice.session.secure and alice.session.connects == 2
        assert buf.joined
        # The plaintext connection ended on purpose: an info line, no error.
        server_lines = [(ln.kind, ln.text) for ln in alice.session.server.lines]
        assert (Kind.INFO, "Disconnected, to reconnect with TLS (STS)") in server_lines
        assert not [text for kind, text in server_lines if kind is Kind.ERROR]
    finally:
        await alice.stop()
        running.handle.stop()


def test_reschedule_pushes_a_policy_on_by_its_duration(tmp_path: Path) -> None:
    path = tmp_path / "sts.json"
    store = StsStore(path)
    store.set("irc.example", 6697, 300, 100.0)
    store.reschedule("IRC.example", 1000.0)  # (it had expired meanwhile: still pushed on)
    assert StsStore(path, now=1000.0).get("irc.example", 1299.0) == Policy(6697, 1300.0, 300)
    store.reschedule("other.example", 1000.0)  # no policy: none made
    assert StsStore(path, now=1000.0).get("other.example", 1000.0) is None
    # A file from before durations were kept: left to expire as it was.
    path.write_text(json.dumps({"old.example": {"port": 6697, "expires": 500.0}}))
    old = StsStore(path, now=100.0)
    old.reschedule("old.example", 400.0)
    assert old.get("old.example", 499.0) == Policy(6697, 500.0, 0)


@pytest.mark.parametrize("said", [True, False], ids=["said-at-connect", "stored-before"])
async def test_closing_a_secure_connection_reschedules_the_policy(
    tmp_path: Path, said: bool
) -> None:
    """A policy of 300 s, said at connect (or stored by an earlier run, the server not
    saying it again); the connection lasts 1000 s (the injected clock): when it closes,
    the policy expires 300 s from then, not from the connect (IRCv3 STS, "Rescheduling
    expiry on disconnect")."""
    cert, key = cert_or_skip(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def tls_ircd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            if line.startswith(b"CAP LS"):
                writer.write(b":tls.test CAP * LS :" + (b"sts=duration=300" if said else b"")
                             + b"\r\n")
            elif line.startswith(b"CAP END"):
                writer.write(b":tls.test 001 alice :Welcome\r\n:tls.test 422 alice :No MOTD\r\n")
        writer.close()

    srv = await asyncio.start_server(tls_ircd, "127.0.0.1", 0, ssl=server_ctx)
    tls_port = srv.sockets[0].getsockname()[1]
    store_path = tmp_path / "sts.json"
    clock = [time.time()]
    connected_at = clock[0]
    if not said:
        StsStore(store_path).set("127.0.0.1", tls_port, 300, connected_at)
    alice = ChatClient.start(tls_port, "alice", tls=True)  # type: ignore[arg-type]
    try:
        alice.conn._ssl = ssl.create_default_context(cafile=str(cert))
        alice.conn.sts = StsStore(store_path)
        alice.conn._clock = lambda: clock[0]
        await alice.wait(lambda: alice.session.registered, "registration over TLS")
        assert json.loads(store_path.read_text())["127.0.0.1"]["expires"] == connected_at + 300
        clock[0] += 1000
    finally:
        await alice.stop()
        srv.close()
    saved = json.loads(store_path.read_text())["127.0.0.1"]
    assert (saved["expires"], saved["duration"]) == (connected_at + 1000 + 300, 300)
