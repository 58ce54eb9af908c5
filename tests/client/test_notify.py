"""The notify list: MONITOR where the server has it, ISON polling where it does not."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.cli import build
from client.config import ConfigError, parse
from client.model import BufferKind, Kind, Line
from client.notify import NotifyList
from client.session import Session
from server.config import ServerConfig
from tests.conftest import RunningServer, start_server
from tests.e2e.irc_clients import server_skip_reason
from tests.e2e.irc_clients import start_server as start_peer

from .helpers import NOW, feed, make
from .netutil import ChatClient
from .recorded import CHAT_BURST, NGIRCD_BURST

# Our server's burst as recorded before MONITOR, with the token it now sends.
MONITOR_005 = ":test.server 005 alice MONITOR=100 :are supported by this server"


def register(s: Session, burst: list[str], *extra: str) -> list[str]:
    """Connect and register; what the session sent after the welcome."""
    s.connection_made(NOW)
    feed(s, [*burst[:-1], *extra])
    return feed(s, burst[-1:])


def events(s: Session) -> list[tuple[Kind, str, str]]:
    return [(ln.kind, ln.nick, ln.text) for ln in s.current.lines if ln.kind is not Kind.INFO]


def infos(s: Session) -> list[str]:
    return [ln.text for ln in s.current.lines if ln.kind is Kind.INFO]


# ---------------------------------------------------------------------- MONITOR


def test_the_list_is_monitored_after_registration_and_changes_are_shown() -> None:
    s = make(channels=(), notify=("bob", "Carol"))
    assert register(s, CHAT_BURST, MONITOR_005) == ["MONITOR + bob,Carol"]
    feed(s, [":test.server 730 alice :bob!~b@host.example", ":test.server 731 alice :carol"])
    # Carol's first state after connecting is offline: no news, nothing shown.
    assert events(s) == [(Kind.JOIN, "bob", "is online (~b@host.example)")]
    feed(s, [":test.server 730 alice :bob!~b@host.example"])  # repeated: no new line
    feed(s, [":test.server 731 alice :BOB", ":test.server 730 alice :carol!~c@h,zed!~z@h"])
    assert events(s)[1:] == [
        (Kind.QUIT, "bob", "is offline"),
        (Kind.JOIN, "Carol", "is online (~c@h)"),
    ]
    s.show_notify(NOW)
    assert infos(s)[-1] == "Notify list: bob (offline), Carol (online)"


def test_notify_command_adds_and_removes_while_connected() -> None:
    s = make(channels=())
    register(s, CHAT_BURST, MONITOR_005)
    s.input("/notify add dave, erin", NOW)
    assert s.take_outgoing() == ["MONITOR + dave,erin"]
    # The user asked: even offline is news.
    feed(s, [":test.server 731 alice :dave,erin"])
    assert events(s) == [(Kind.QUIT, "dave", "is offline"), (Kind.QUIT, "erin", "is offline")]
    s.input("/notify dave", NOW)  # irssi's form
    assert s.take_outgoing() == []
    assert infos(s)[-1] == "Already on the notify list: dave"
    s.input("/notify del erin zed", NOW)
    assert s.take_outgoing() == ["MONITOR - erin"]
    assert infos(s)[-2:] == ["Not on the notify list: zed", "No longer watching erin"]
    feed(s, [":test.server 730 alice :erin!~e@h"])  # a late answer for a removed nick
    assert len(events(s)) == 2
    s.input("/notify", NOW)
    assert infos(s)[-1] == "Notify list: dave (offline)"
    for bad in ("/notify add", "/notify #chan", "/notify add a\x07b"):
        s.input(bad, NOW)
        assert s.current.lines[-1].kind is Kind.ERROR, bad
    assert s.take_outgoing() == []


def test_removing_a_nick_in_another_case_removes_it() -> None:
    s = make(channels=())
    register(s, CHAT_BURST, MONITOR_005)
    s.input("/notify bob", NOW)
    s.take_outgoing()
    s.input("/notify del BOB", NOW)
    assert s.take_outgoing() == ["MONITOR - bob"]
    assert infos(s)[-1] == "No longer watching bob"
    assert not any(t.startswith("Not on the notify list") for t in infos(s))


def test_offline_additions_are_sent_at_registration() -> None:
    s = make(channels=())
    s.input("/notify bob", NOW)  # not connected: kept for later
    assert s.take_outgoing() == []
    assert register(s, CHAT_BURST, MONITOR_005) == ["MONITOR + bob"]


def test_reconnect_watches_again_and_reports_who_is_online() -> None:
    s = make(channels=(), notify=("bob",))
    register(s, CHAT_BURST, MONITOR_005)
    feed(s, [":test.server 730 alice :bob!~b@h"])
    s.connection_lost(NOW, "reset")
    assert register(s, CHAT_BURST, MONITOR_005) == ["MONITOR + bob"]
    feed(s, [":test.server 730 alice :bob!~b@h"])
    online = [e for e in events(s) if e[0] is Kind.JOIN]
    assert online == [(Kind.JOIN, "bob", "is online (~b@h)")] * 2


def test_a_query_with_the_nick_gets_the_line_too() -> None:
    s = make(channels=(), notify=("bob",))
    register(s, CHAT_BURST, MONITOR_005)
    query = s.open_query("bob", NOW, switch=False)
    assert query is not None and query.kind is BufferKind.QUERY
    feed(s, [":test.server 730 alice :bob!~b@h"])
    assert [(ln.kind, ln.text) for ln in query.lines] == [(Kind.JOIN, "is online (~b@h)")]
    assert s.current is s.server and events(s) == [(Kind.JOIN, "bob", "is online (~b@h)")]


def test_a_full_server_list_is_an_error_line() -> None:
    s = make(channels=())
    register(s, CHAT_BURST, MONITOR_005)
    s.input("/notify add x1 x2", NOW)
    feed(s, [":test.server 734 alice 100 x1,x2 :Monitor list is full."])
    last: Line = s.current.lines[-1]
    assert last.kind is Kind.ERROR
    assert last.text == "The server watches at most 100 nicks: not watching x1, x2"


def test_casemapping_folds_the_watched_nicks() -> None:
    nl = NotifyList(["Bob[x]"])
    nl.refold(lambda n: n.lower().translate(str.maketrans("[]", "{}")))
    assert "bob{x}" in nl and nl.seen("BOB{X}", True, "") is not None


# ---------------------------------------------------------------------- ISON fallback


def test_ison_polls_where_the_server_has_no_monitor() -> None:
    s = make(channels=(), notify=("bob", "carol"))
    assert register(s, NGIRCD_BURST) == ["ISON bob carol"]
    feed(s, [":test.local 303 alice :bob "])
    assert events(s) == [(Kind.JOIN, "bob", "is online")]
    s.ping(NOW)
    assert s.take_outgoing() == ["PING chat-lag-1", "ISON bob carol"]
    s.ping(NOW)  # the last poll is unanswered: no second one
    assert s.take_outgoing() == ["PING chat-lag-2"]
    feed(s, [":test.local 303 alice :"])
    assert events(s)[1:] == [(Kind.QUIT, "bob", "is offline")]
    s.input("/notify add dave", NOW)  # asked at once, not at the next keepalive
    assert s.take_outgoing() == ["ISON dave"]
    feed(s, [":test.local 303 alice :dave"])
    assert events(s)[-1] == (Kind.JOIN, "dave", "is online")
    # The user's own ISON, with no poll waiting for an answer, is shown as a reply.
    s.input("/quote ISON zed", NOW)
    feed(s, [":test.local 303 alice :zed"])
    assert infos(s)[-1] == "zed"


def test_polls_never_answered_are_given_up_after_three_keepalives() -> None:
    s = make(channels=(), notify=("bob",))
    assert register(s, NGIRCD_BURST) == ["ISON bob"]  # never answered
    for n in (1, 2):
        s.ping(NOW)
        assert s.take_outgoing() == [f"PING chat-lag-{n}"]
    s.ping(NOW)
    assert s.take_outgoing() == ["PING chat-lag-3", "ISON bob"]
    feed(s, [":test.local 303 alice :bob"])  # the new poll's answer counts
    assert events(s) == [(Kind.JOIN, "bob", "is online")]
    s.ping(NOW)
    assert s.take_outgoing() == ["PING chat-lag-4", "ISON bob"]


def test_no_polling_without_a_list_or_with_monitor() -> None:
    s = make(channels=())
    register(s, NGIRCD_BURST)
    s.ping(NOW)
    assert s.take_outgoing() == ["PING chat-lag-1"]
    m = make(channels=(), notify=("bob",))
    register(m, CHAT_BURST, MONITOR_005)
    m.ping(NOW)
    assert m.take_outgoing() == ["PING chat-lag-1"]


# ---------------------------------------------------------------------- configuration


def test_config_notify_lists_merge(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'notify = ["bob", "carol"]\n'
        '[servers.home]\nhost = "127.0.0.1"\nnotify = ["carol", "dave"]\n'
    )
    setup = build(["--config", str(path), "home"])
    assert setup.session.notify.nicks() == ["bob", "carol", "dave"]
    with pytest.raises(ConfigError, match="notify"):
        parse({"notify": ["bad nick"]})
    with pytest.raises(ConfigError, match=r"servers\.home\.notify"):
        parse({"servers": {"home": {"host": "h", "notify": "bob"}}})


# ---------------------------------------------------------------------- real servers


@pytest.fixture
def ours(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(ServerConfig(name="test.server", network="TestNet"), "asyncio")
    try:
        yield running
    finally:
        running.handle.stop()


# A keepalive (and so an ISON poll) about every second.
# ISON goes out with each keepalive PING (every interval + timeout). A timeout of 0.5 s
# made a loaded machine's half-second stall look like a dead connection (a reconnect,
# and bob's quit never seen): the flake seen in full runs.
FAST_KEEPALIVE = {"ping_interval": 0.25, "ping_timeout": 3.0}


def said(client: ChatClient, kind: Kind, nick: str) -> bool:
    return any(ln.kind is kind and ln.nick == nick for ln in client.session.current.lines)


async def test_our_server_tells_when_a_watched_nick_comes_and_goes(
    ours: RunningServer, clients: list[ChatClient]
) -> None:
    alice = ChatClient.start(ours.port, "alice", notify=("bob",))
    clients.append(alice)
    await alice.wait(lambda: alice.session.monitor_supported, "registration with MONITOR")
    bob = ChatClient.start(ours.port, "bob")
    clients.append(bob)
    await alice.wait(lambda: said(alice, Kind.JOIN, "bob"), "bob is online")
    await bob.stop()
    await alice.wait(lambda: said(alice, Kind.QUIT, "bob"), "bob is offline")
    assert alice.session.notify.watched["bob"].online is False


@pytest.mark.skipif(server_skip_reason("ngircd") is not None, reason="ngircd is not installed")
async def test_ngircd_is_polled_with_ison(tmp_path: Path, clients: list[ChatClient]) -> None:
    ngircd = start_peer("ngircd", tmp_path / "ngircd")
    try:
        alice = ChatClient.start(ngircd.port, "alice", notify=("bob",), **FAST_KEEPALIVE)
        clients.append(alice)
        await alice.wait(lambda: alice.session.registered, "registration")
        assert not alice.session.monitor_supported
        bob = ChatClient.start(ngircd.port, "bob")
        clients.append(bob)
        await alice.wait(lambda: said(alice, Kind.JOIN, "bob"), "bob is online")
        await bob.stop()
        await alice.wait(lambda: said(alice, Kind.QUIT, "bob"), "bob is offline")
    finally:
        for c in clients:
            await c.stop()
        clients.clear()
        ngircd.stop()


def test_away_of_a_watched_nick_shows_in_the_list() -> None:
    s = make(channels=(), notify=("bob",))
    register(s, CHAT_BURST, MONITOR_005)
    feed(s, [":test.server 730 alice :bob!~b@h", ":bob!~b@h AWAY :at lunch"])
    s.show_notify(NOW)
    assert infos(s)[-1] == "Notify list: bob (online, away: at lunch)"
    feed(s, [":bob!~b@h AWAY"])
    s.show_notify(NOW)
    assert infos(s)[-1] == "Notify list: bob (online)"
    feed(s, [":bob!~b@h AWAY :again", ":test.server 731 alice :bob"])
    s.show_notify(NOW)
    assert infos(s)[-1] == "Notify list: bob (offline)"


async def test_our_server_sends_away_of_watched_nicks(
    ours: RunningServer, clients: list[ChatClient]
) -> None:
    alice = ChatClient.start(ours.port, "alice", notify=("bob",))
    clients.append(alice)
    await alice.wait(lambda: "extended-monitor" in alice.session.caps, "extended-monitor")
    bob = ChatClient.start(ours.port, "bob")
    clients.append(bob)
    await alice.wait(lambda: said(alice, Kind.JOIN, "bob"), "bob is online")
    await bob.wait(lambda: bob.session.registered, "bob's registration")
    bob.conn.input("/away back soon")
    # An AWAY changes no buffer, so ask for the list until it shows (as a user would).
    want = "Notify list: bob (online, away: back soon)"
    for _ in range(300):
        alice.conn.input("/notify")
        if any(ln.text == want for ln in alice.session.current.lines):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"never saw {want!r}")
