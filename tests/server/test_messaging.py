"""PRIVMSG, NOTICE, TAGMSG and AWAY over real TCP, on every backend."""

from __future__ import annotations

import pytest

from server.config import ServerConfig
from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, mask, only


async def joined(*clients: IRCTestClient, channel: str = "#chan") -> None:
    """Join them in order (the first is op), then drain every one of them."""
    for c in clients:
        await c.join(channel)
    for c in clients:
        await c.sync()


# ---------------------------------------------------------------------- PRIVMSG / NOTICE


@pytest.mark.parametrize("command", ["PRIVMSG", "NOTICE"])
async def test_to_channel_reaches_members_but_not_sender(
    server: RunningServer, command: str
) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")
    outsider = await server.client("outsider")
    await joined(alice, bob, carol)
    assert await ask(alice, f"{command} #chan :hello everyone") == []
    for c in (bob, carol):
        msg = await c.expect(command)
        assert msg.source == mask(alice)
        assert msg.params == ["#chan", "hello everyone"]
    assert only(await outsider.sync(), command) == []


async def test_channel_target_is_case_insensitive(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await joined(alice, bob, channel="#Chan")
    await alice.send("PRIVMSG #CHAN :hi")
    # Relayed with the channel's own spelling.
    assert (await bob.expect("PRIVMSG")).params == ["#Chan", "hi"]


async def test_echo_message_returns_the_message_to_sender(server: RunningServer) -> None:
    alice = await server.client("alice", caps=["echo-message"])
    bob = await server.client("bob")
    await joined(alice, bob)
    msgs = await ask(alice, "PRIVMSG #chan :echoed")
    assert [(m.command, m.source, m.params) for m in msgs] == [
        ("PRIVMSG", mask(alice), ["#chan", "echoed"])
    ]
    msgs = await ask(alice, "PRIVMSG bob :private echo")
    assert [(m.command, m.params) for m in msgs] == [("PRIVMSG", ["bob", "private echo"])]


@pytest.mark.parametrize("command", ["PRIVMSG", "NOTICE"])
async def test_to_nick(server: RunningServer, command: str) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")
    assert await ask(alice, f"{command} BOB :just for you") == []
    msg = await bob.expect(command)
    assert msg.source == mask(alice)
    assert msg.params == ["bob", "just for you"]
    assert await carol.sync() == []


async def test_several_targets(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")
    await joined(alice, carol)
    assert await ask(alice, "PRIVMSG bob,#chan :to both") == []
    assert [(m.command, m.params) for m in await bob.sync()] == [("PRIVMSG", ["bob", "to both"])]
    assert [(m.command, m.params) for m in await carol.sync()] == [
        ("PRIVMSG", ["#chan", "to both"])
    ]


async def test_several_targets_with_one_bad(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    msgs = await ask(alice, "PRIVMSG nobody,bob :hi")
    assert [m.command for m in msgs] == ["401"]
    assert msgs[0].params[:2] == ["alice", "nobody"]
    assert (await bob.expect("PRIVMSG")).params == ["bob", "hi"]


async def test_no_recipient_and_no_text(server: RunningServer) -> None:
    alice = await server.client("alice")
    await server.client("bob")
    msgs = await ask(alice, "PRIVMSG")
    assert [m.command for m in msgs] == ["411"]
    assert msgs[0].params == ["alice", "No recipient given (PRIVMSG)"]
    for line in ("PRIVMSG bob", "PRIVMSG bob :"):
        msgs = await ask(alice, line)
        assert [m.command for m in msgs] == ["412"], line
        assert msgs[0].params == ["alice", "No text to send"]


@pytest.mark.parametrize(
    "server_config",
    [ServerConfig(name="test.server", network="TestNet", max_targets=2)],
    ids=["max_targets=2"],
)
async def test_notice_never_gets_an_error_back(server: RunningServer) -> None:
    """Modern IRC: servers "must not send any error back to the client on receipt of a
    NOTICE command" (so two bots cannot loop on each other's errors)."""
    alice = await server.client("alice")
    bob = await server.client("bob")
    await joined(bob, channel="#closed")
    await joined(bob, channel="#quiet")
    await ask(bob, "MODE #quiet -n+m")
    for line in [
        "NOTICE",  # 411 for PRIVMSG
        "NOTICE bob",  # 412
        "NOTICE bob :",  # 412
        "NOTICE nobody :x",  # 401
        "NOTICE #nowhere :x",  # 401
        "NOTICE #closed :x",  # 404 (+n)
        "NOTICE #quiet :x",  # 404 (+m)
        "NOTICE @#closed :x",  # 404
    ]:
        assert await ask(alice, line) == [], line
    assert await bob.sync() == []
    # Too many targets: no 407 either; the notice still reaches the first ones.
    assert await ask(alice, "NOTICE bob,nobody,alice :x") == []
    assert [(m.command, m.params) for m in await bob.sync()] == [("NOTICE", ["bob", "x"])]


async def test_no_such_nick_or_channel(server: RunningServer) -> None:
    alice = await server.client("alice")
    for target in ("nobody", "#nowhere"):
        msgs = await ask(alice, f"PRIVMSG {target} :anyone?")
        assert [m.command for m in msgs] == ["401"], target
        assert msgs[0].params[:2] == ["alice", target]


async def test_outsider_cannot_send_to_no_external_channel(server: RunningServer) -> None:
    alice = await server.client("alice")
    outsider = await server.client("outsider")
    await joined(alice)
    msgs = await ask(outsider, "PRIVMSG #chan :let me in")
    assert [m.command for m in msgs] == ["404"]
    assert msgs[0].params[:2] == ["outsider", "#chan"]
    assert await alice.sync() == []


async def test_moderated_channel_blocks_unvoiced(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await joined(alice, bob)
    await ask(alice, "MODE #chan +m")
    msgs = await ask(bob, "PRIVMSG #chan :muted?")
    assert [m.command for m in msgs] == ["404"]
    assert msgs[0].params[:2] == ["bob", "#chan"]
    assert only(await alice.sync(), "PRIVMSG") == []


async def test_banned_member_cannot_send_but_voiced_can(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await joined(alice, bob)
    await ask(alice, "MODE #chan +b *!*bob@*")
    msgs = await ask(bob, "PRIVMSG #chan :banned?")
    assert [m.command for m in msgs] == ["404"]
    assert only(await alice.sync(), "PRIVMSG") == []
    await ask(alice, "MODE #chan +v bob")
    assert await ask(bob, "PRIVMSG #chan :voice beats the ban") == []
    assert (await alice.expect("PRIVMSG")).params == ["#chan", "voice beats the ban"]


async def test_away_reply_for_privmsg_not_notice(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await ask(bob, "AWAY :gone fishing")
    msgs = await ask(alice, "PRIVMSG bob :are you there?")
    assert [m.command for m in msgs] == ["301"]
    assert msgs[0].params == ["alice", "bob", "gone fishing"]
    assert (await bob.expect("PRIVMSG")).params == ["bob", "are you there?"]
    assert await ask(alice, "NOTICE bob :no auto-reply to notices") == []
    assert (await bob.expect("NOTICE")).params == ["bob", "no auto-reply to notices"]


@pytest.mark.parametrize(
    "server_config",
    [ServerConfig(name="test.server", network="TestNet", max_targets=3)],
    ids=["max_targets=3"],
)
async def test_too_many_targets(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await server.client("carol")
    await server.client("dave")
    msgs = await ask(alice, "PRIVMSG bob,carol,alice,dave :spam")
    errors = only(msgs, "407")
    assert len(errors) == 1
    assert errors[0].params[:2] == ["alice", "bob,carol,alice,dave"]
    # Exactly TARGMAX targets are still fine, and a repeat is no target (once to bob).
    msgs = await ask(alice, "PRIVMSG bob,carol,dave,BOB :ok")
    assert only(msgs, "407") == []
    assert [m.params for m in only(await bob.sync(), "PRIVMSG")][-2:] == [
        ["bob", "spam"],
        ["bob", "ok"],
    ]


# ---------------------------------------------------------------------- TAGMSG / tags


async def test_tagmsg_reaches_only_message_tags_clients(server: RunningServer) -> None:
    alice = await server.client("alice", caps=["message-tags"])
    bob = await server.client("bob", caps=["message-tags"])
    carol = await server.client("carol")
    await joined(alice, bob, carol)
    assert await ask(alice, "@+typing=active TAGMSG #chan") == []
    msgs = await bob.sync()
    assert [m.command for m in msgs] == ["TAGMSG"]
    assert msgs[0].source == mask(alice)
    assert msgs[0].params == ["#chan"]
    assert msgs[0].tags["+typing"] == "active"
    assert "msgid" in msgs[0].tags
    assert await carol.sync() == []

    # To a nick: the same rule.
    assert await ask(alice, "@+typing=paused TAGMSG carol") == []
    assert await carol.sync() == []
    await alice.send("@+typing=paused TAGMSG bob")
    msg = await bob.expect("TAGMSG")
    assert msg.params == ["bob"] and msg.tags["+typing"] == "paused"


async def test_client_tags_stripped_for_clients_without_message_tags(
    server: RunningServer,
) -> None:
    alice = await server.client("alice", caps=["message-tags"])
    bob = await server.client("bob", caps=["message-tags"])
    carol = await server.client("carol")
    await joined(alice, bob, carol)
    await alice.send("@+draft/reply=abc PRIVMSG #chan :tagged")
    tagged = await bob.expect("PRIVMSG")
    assert tagged.tags["+draft/reply"] == "abc"
    plain = await carol.expect("PRIVMSG")
    assert plain.params == ["#chan", "tagged"]
    assert plain.tags == {}


async def test_tagmsg_needs_a_target(server: RunningServer) -> None:
    alice = await server.client("alice", caps=["message-tags"])
    msgs = await ask(alice, "@+typing=active TAGMSG")
    assert [m.command for m in msgs] == ["461"]
    assert msgs[0].params[:2] == ["alice", "TAGMSG"]


# ---------------------------------------------------------------------- STATUSMSG


async def test_statusmsg_to_ops_only(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    voiced = await server.client("voiced")
    carol = await server.client("carol")
    await joined(alice, bob, voiced, carol)
    await ask(alice, "MODE #chan +ov bob voiced")
    for c in (bob, voiced, carol):
        await c.sync()

    assert await ask(carol, "PRIVMSG @#chan :psst, ops") == []
    for op in (alice, bob):
        msg = await op.expect("PRIVMSG")
        assert msg.source == mask(carol)
        assert msg.params == ["@#chan", "psst, ops"]
    assert only(await voiced.sync(), "PRIVMSG") == []

    await carol.send("NOTICE +#chan :voiced and up")
    for c in (alice, bob, voiced):
        assert (await c.expect("NOTICE")).params == ["+#chan", "voiced and up"]
    assert only(await carol.sync(), "NOTICE") == []


async def test_statusmsg_obeys_channel_send_rules(server: RunningServer) -> None:
    alice = await server.client("alice")
    outsider = await server.client("outsider")
    await joined(alice)
    msgs = await ask(outsider, "PRIVMSG @#chan :from outside")
    assert [m.command for m in msgs] == ["404"]
    assert await alice.sync() == []


# ---------------------------------------------------------------------- AWAY


async def test_away_and_back(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, "AWAY :brb")
    assert [m.command for m in msgs] == ["306"]
    assert msgs[0].params == ["alice", "You have been marked as being away"]
    msgs = await ask(alice, "AWAY")
    assert [m.command for m in msgs] == ["305"]
    assert msgs[0].params == ["alice", "You are no longer marked as being away"]
    # No longer away: no 301.
    bob = await server.client("bob")
    assert await ask(bob, "PRIVMSG alice :hi") == []


async def test_away_notify_goes_to_capable_peers_only(server: RunningServer) -> None:
    alice = await server.client("alice")
    notified = await server.client("notified", caps=["away-notify"])
    plain = await server.client("plain")
    stranger = await server.client("stranger", caps=["away-notify"])
    await joined(alice, notified, plain)

    await ask(alice, "AWAY :lunch")
    msgs = await notified.sync()
    assert [(m.command, m.source, m.params) for m in msgs] == [("AWAY", mask(alice), ["lunch"])]
    assert await plain.sync() == []
    assert await stranger.sync() == []  # shares no channel

    await ask(alice, "AWAY")
    msgs = await notified.sync()
    assert [(m.command, m.params) for m in msgs] == [("AWAY", [])]
    assert await plain.sync() == []


async def test_away_notify_on_join_of_away_user(server: RunningServer) -> None:
    alice = await server.client("alice", caps=["away-notify"])
    bob = await server.client("bob")
    await joined(alice)
    await ask(bob, "AWAY :not here")
    await bob.join("#chan")
    msgs = await alice.sync()
    assert [(m.command, m.source) for m in msgs] == [
        ("JOIN", mask(bob)),
        ("AWAY", mask(bob)),
    ]
    assert msgs[1].params == ["not here"]
