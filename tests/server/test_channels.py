"""JOIN, PART, TOPIC, NAMES, LIST, KICK and INVITE over real TCP, on every backend."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from chat.message import Message
from server.config import ServerConfig
from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask


def config(**changes: Any) -> ServerConfig:
    return replace(ServerConfig(name="test.server", network="TestNet"), **changes)


def mask(c: IRCTestClient) -> str:
    return f"{c.nick}!~{c.nick[:9]}@127.0.0.1"


def only(msgs: list[Message], command: str) -> list[Message]:
    return [m for m in msgs if m.command == command]


def names_of(msgs: list[Message]) -> list[str]:
    """Every entry of every 353 line, in order."""
    return [entry for m in only(msgs, "353") for entry in m.params[3].split()]


async def names(c: IRCTestClient, channel: str) -> list[Message]:
    await c.sync()  # drop whatever earlier commands left unread
    await c.send(f"NAMES {channel}")
    return await c.collect_until("366")


async def list_channels(c: IRCTestClient, *args: str) -> dict[str, Message]:
    await c.sync()
    await c.send(" ".join(["LIST", *args]))
    msgs = await c.collect_until("323")
    assert msgs[0].command == "321"
    assert msgs[0].params == [c.nick, "Channel", "Users  Name"]
    assert msgs[-1].params == [c.nick, "End of /LIST"]
    return {m.params[1]: m for m in only(msgs, "322")}


# ---------------------------------------------------------------------- JOIN


async def test_join_replies_and_first_joiner_is_op(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await alice.join("#chan")
    assert [m.command for m in msgs] == ["JOIN", "353", "366"]
    assert msgs[0].source == mask(alice)
    assert msgs[0].params == ["#chan"]
    assert msgs[1].params == ["alice", "=", "#chan", "@alice"]
    assert msgs[2].params == ["alice", "#chan", "End of /NAMES list"]


async def test_join_is_broadcast_to_members_and_names_lists_everyone(
    server: RunningServer,
) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")
    await alice.join("#chan")
    await bob.join("#chan")
    msgs = await carol.join("#chan")
    assert msgs[0].command == "JOIN" and msgs[0].source == mask(carol)
    assert names_of(msgs) == ["@alice", "bob", "carol"]
    for member in (alice, bob):
        joins = only(await member.sync(), "JOIN")
        assert [(j.source, j.params) for j in joins][-1] == (mask(carol), ["#chan"])


async def test_join_sends_topic_before_names(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await alice.send("TOPIC #chan :the topic")
    await alice.expect("TOPIC")
    msgs = await bob.join("#chan")
    assert [m.command for m in msgs] == ["JOIN", "332", "333", "353", "366"]
    assert msgs[1].params == ["bob", "#chan", "the topic"]
    assert msgs[2].params[:3] == ["bob", "#chan", mask(alice)]
    assert abs(int(msgs[2].params[3]) - time.time()) < 300


async def test_join_several_channels_at_once(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.send("JOIN #one,#two,&three")
    msgs = await alice.collect_until("366")
    msgs += await alice.collect_until("366")
    msgs += await alice.collect_until("366")
    assert [m.params[0] for m in only(msgs, "JOIN")] == ["#one", "#two", "&three"]
    assert [m.params[1] for m in only(msgs, "366")] == ["#one", "#two", "&three"]


async def test_join_with_key_list(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.send("JOIN #a,#b,#c")
    await alice.send("MODE #a +k ka")
    await alice.send("MODE #b +k kb")
    await alice.sync()
    # Keys are matched by position; #c has no key so the missing one does not matter.
    await bob.send("JOIN #a,#b,#c ka,wrong")
    msgs = await bob.sync()
    assert [m.params[0] for m in only(msgs, "JOIN")] == ["#a", "#c"]
    errors = only(msgs, "475")
    assert len(errors) == 1
    assert errors[0].params[:2] == ["bob", "#b"]
    await bob.send("JOIN #b kb")
    assert (await bob.collect_until("366"))[0].params == ["#b"]


async def test_join_zero_parts_every_channel(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#a")
    await alice.join("#b")
    await bob.join("#a")
    await bob.join("#b")
    await alice.sync()
    await bob.send("JOIN 0")
    parts = only(await bob.sync(), "PART")
    assert sorted(p.params[0] for p in parts) == ["#a", "#b"]
    seen = only(await alice.sync(), "PART")
    assert sorted(p.params[0] for p in seen) == ["#a", "#b"]
    assert all(p.source == mask(bob) for p in seen)
    assert names_of(await names(alice, "#a")) == ["@alice"]


async def test_join_bad_channel_name(server: RunningServer) -> None:
    alice = await server.client("alice")
    for bad in ("nochan", "#", "#a\x07b"):
        await alice.send(f"JOIN {bad}")
        msgs = await alice.sync()
        assert [m.command for m in msgs] == ["476"], bad
        assert msgs[0].params[:2] == ["alice", bad]


async def test_join_channel_name_too_long(server: RunningServer) -> None:
    alice = await server.client("alice")
    name = "#" + "x" * 50  # CHANNELLEN=50
    await alice.send(f"JOIN {name}")
    assert [m.command for m in await alice.sync()] == ["476"]


@pytest.mark.parametrize("server_config", [config(max_channels=2)], ids=["max_channels=2"])
async def test_join_too_many_channels(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.send("JOIN #a,#b,#c")
    msgs = await alice.sync()
    assert [m.params[0] for m in only(msgs, "JOIN")] == ["#a", "#b"]
    errors = only(msgs, "405")
    assert len(errors) == 1 and errors[0].params[:2] == ["alice", "#c"]
    # Leaving one makes room again; rejoining one already held is not a new channel.
    await alice.send("PART #a")
    await alice.send("JOIN #b,#c")
    msgs = await alice.sync()
    assert [m.params[0] for m in only(msgs, "JOIN")] == ["#c"]
    assert only(msgs, "405") == []


async def test_join_wrong_key(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await alice.send("MODE #chan +k sesame")
    await alice.sync()
    for attempt in ("JOIN #chan", "JOIN #chan wrong"):
        await bob.send(attempt)
        msgs = await bob.sync()
        assert [m.command for m in msgs] == ["475"], attempt
        assert msgs[0].params[:2] == ["bob", "#chan"]
    msgs = await bob.join("#chan sesame")
    assert names_of(msgs) == ["@alice", "bob"]


async def test_invite_only_and_invite_lets_in(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await alice.send("MODE #chan +i")
    await alice.sync()
    await bob.send("JOIN #chan")
    msgs = await bob.sync()
    assert [m.command for m in msgs] == ["473"]
    assert msgs[0].params[:2] == ["bob", "#chan"]
    await alice.send("INVITE bob #chan")
    await bob.expect("INVITE")
    assert names_of(await bob.join("#chan")) == ["@alice", "bob"]
    # The invitation is used up: after leaving, bob is locked out again.
    await bob.send("PART #chan")
    await bob.send("JOIN #chan")
    assert "473" in [m.command for m in await bob.sync()]


async def test_an_invite_is_to_the_channel_not_to_its_next_holder(server: RunningServer) -> None:
    # alice invites bob to her #ops and leaves: the channel is gone. carol makes a new
    # #ops, locked; the old invite must not let bob past +i, +k, +l or a ban.
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")
    await alice.join("#ops")
    await alice.send("INVITE bob #ops")
    await bob.expect("INVITE")
    await alice.send("PART #ops")
    await alice.sync()
    await carol.join("#ops")
    await carol.send("MODE #ops +iklb secret 1 *!*@*")
    await carol.sync()
    assert [m.command for m in await ask(bob, "JOIN #ops")] == ["475"]  # the key, first
    assert [(m.command, m.params[1:]) for m in await ask(bob, "INVITE")] == [
        ("337", ["End of /INVITE list"])]
    # An invite to this #ops lets him in.
    await carol.send("INVITE bob #ops")
    await bob.expect("INVITE")
    assert "JOIN" in [m.command for m in await ask(bob, "JOIN #ops")]


async def test_channel_full(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")
    await alice.join("#chan")
    await alice.send("MODE #chan +l 2")
    await alice.sync()
    await bob.join("#chan")
    await carol.send("JOIN #chan")
    msgs = await carol.sync()
    assert [m.command for m in msgs] == ["471"]
    assert msgs[0].params[:2] == ["carol", "#chan"]


@pytest.mark.parametrize(
    "ban",
    ["BOB!*@*", "b?b!*@*", "*!~bob@127.0.0.*", "*!*@127.0.0.1", "bob"],
)
async def test_banned_cannot_join(server: RunningServer, ban: str) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")
    await alice.join("#chan")
    await alice.send(f"MODE #chan +b {ban}")
    await alice.sync()
    await bob.send("JOIN #chan")
    msgs = await bob.sync()
    assert [m.command for m in msgs] == ["474"]
    assert msgs[0].params[:2] == ["bob", "#chan"]
    if ban != "*!*@127.0.0.1":
        assert names_of(await carol.join("#chan")) == ["@alice", "carol"]


async def test_ban_uses_rfc1459_casemapping(server: RunningServer) -> None:
    alice = await server.client("alice")
    evil = await server.client("ev{il}")
    await alice.join("#chan")
    await alice.send("MODE #chan +b EV[IL]!*@*")
    await alice.sync()
    await evil.send("JOIN #chan")
    assert [m.command for m in await evil.sync()] == ["474"]


async def test_join_when_already_on_channel_does_nothing(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await bob.join("#chan")
    await alice.sync()
    await bob.send("JOIN #CHAN")
    assert await bob.sync() == []
    assert await alice.sync() == []


async def test_channel_names_are_case_insensitive(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#Chan")
    msgs = await bob.join("#CHAN")
    # The channel keeps the spelling of its creator.
    assert msgs[0].params == ["#Chan"]
    assert names_of(msgs) == ["@alice", "bob"]


# ---------------------------------------------------------------------- PART


async def test_part_with_reason_is_broadcast(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await bob.join("#chan")
    await alice.sync()
    await bob.send("PART #chan :see you later")
    mine = await bob.expect("PART")
    assert mine.source == mask(bob) and mine.params == ["#chan", "see you later"]
    theirs = await alice.expect("PART")
    assert theirs.source == mask(bob) and theirs.params == ["#chan", "see you later"]
    assert names_of(await names(alice, "#chan")) == ["@alice"]


async def test_part_without_reason(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.join("#chan")
    await alice.send("PART #chan")
    msg = await alice.expect("PART")
    assert msg.params == ["#chan"]


async def test_part_several_and_errors(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#a")
    await alice.join("#b")
    await bob.join("#other")
    await alice.send("PART #a,#nope,#other,#b :bye")
    msgs = await alice.sync()
    assert [m.command for m in msgs] == ["PART", "403", "442", "PART"]
    assert msgs[0].params == ["#a", "bye"]
    assert msgs[1].params[:2] == ["alice", "#nope"]
    assert msgs[2].params[:2] == ["alice", "#other"]
    assert msgs[3].params == ["#b", "bye"]


async def test_part_needs_params(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.send("PART")
    msgs = await alice.sync()
    assert [m.command for m in msgs] == ["461"]
    assert msgs[0].params[:2] == ["alice", "PART"]


async def test_empty_channel_is_destroyed(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await alice.send("TOPIC #chan :old topic")
    await alice.send("MODE #chan +k key")
    await bob.join("#chan key")
    await alice.send("PART #chan")
    await bob.send("PART #chan")
    await alice.sync()
    await bob.sync()
    assert "#chan" not in await list_channels(bob)
    # A fresh channel: no key, no topic, and its first joiner is op.
    msgs = await bob.join("#chan")
    assert [m.command for m in msgs] == ["JOIN", "353", "366"]
    assert names_of(msgs) == ["@bob"]


# ---------------------------------------------------------------------- TOPIC


async def test_topic_query_set_and_broadcast(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await bob.join("#chan")
    await bob.send("TOPIC #chan")
    msgs = await bob.sync()
    assert [m.command for m in msgs] == ["331"]
    assert msgs[0].params == ["bob", "#chan", "No topic is set"]

    await alice.send("TOPIC #chan :Hello world")
    for c in (alice, bob):
        msg = await c.expect("TOPIC")
        assert msg.source == mask(alice)
        assert msg.params == ["#chan", "Hello world"]

    await bob.send("TOPIC #chan")
    msgs = await bob.sync()
    assert [m.command for m in msgs] == ["332", "333"]
    assert msgs[0].params == ["bob", "#chan", "Hello world"]
    assert msgs[1].params[:3] == ["bob", "#chan", mask(alice)]
    assert msgs[1].params[3].isdigit()


async def test_topic_can_be_cleared(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.join("#chan")
    await alice.send("TOPIC #chan :something")
    await alice.send("TOPIC #chan :")
    msgs = only(await alice.sync(), "TOPIC")
    assert [m.params for m in msgs] == [["#chan", "something"], ["#chan", ""]]
    await alice.send("TOPIC #chan")
    assert [m.command for m in await alice.sync()] == ["331"]


async def test_a_topic_that_changes_nothing_is_not_broadcast(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await bob.join("#chan")
    await bob.sync()
    # Clearing a channel that has no topic, as InspIRCd: no TOPIC to anyone.
    assert await ask(alice, "TOPIC #chan :") == []
    await alice.send("TOPIC #chan :same")
    await bob.expect("TOPIC")
    await alice.sync()
    # Setting it again, by anyone, neither; nor does its setter change.
    await alice.send("MODE #chan -t")
    await alice.sync()
    await bob.sync()
    assert await ask(bob, "TOPIC #chan :same") == []
    assert await ask(alice, "TOPIC #chan :same") == []
    assert only(await bob.sync(), "TOPIC") == []
    whotime = only(await ask(bob, "TOPIC #chan"), "333")
    assert whotime[0].params[2] == mask(alice)


async def test_topic_protected_needs_op_until_minus_t(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await bob.join("#chan")
    await bob.send("TOPIC #chan :mine now")
    msgs = await bob.sync()
    assert [m.command for m in msgs] == ["482"]
    assert msgs[0].params[:2] == ["bob", "#chan"]

    await alice.send("MODE #chan -t")
    await alice.sync()
    await bob.sync()
    await bob.send("TOPIC #chan :mine now")
    msg = await alice.expect("TOPIC")
    assert msg.source == mask(bob) and msg.params == ["#chan", "mine now"]


async def test_topic_not_on_channel_and_no_such_channel(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await alice.send("MODE #chan -t")
    await alice.sync()
    await bob.send("TOPIC #chan :drive-by")
    msgs = await bob.sync()
    assert [m.command for m in msgs] == ["442"]
    assert msgs[0].params[:2] == ["bob", "#chan"]
    await bob.send("TOPIC #nope")
    msgs = await bob.sync()
    assert [m.command for m in msgs] == ["403"]
    assert msgs[0].params[:2] == ["bob", "#nope"]
    await bob.send("TOPIC #nope :x")
    assert [m.command for m in await bob.sync()] == ["403"]


@pytest.mark.parametrize("server_config", [config(topiclen=10)], ids=["topiclen=10"])
async def test_topic_is_truncated_to_topiclen(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.join("#chan")
    await alice.send("TOPIC #chan :0123456789abcdef")
    msg = await alice.expect("TOPIC")
    assert msg.params == ["#chan", "0123456789"]
    await alice.send("TOPIC #chan")
    assert (await alice.expect("332")).params == ["alice", "#chan", "0123456789"]


# ---------------------------------------------------------------------- NAMES


async def test_names_of_secret_channel_hidden_from_outsiders(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#secret")
    await alice.send("MODE #secret +s")
    await alice.sync()
    msgs = await names(bob, "#secret")
    assert [m.command for m in msgs] == ["366"]
    assert msgs[0].params[:2] == ["bob", "#secret"]
    # Members see it, marked '@' (secret).
    msgs = await names(alice, "#secret")
    assert only(msgs, "353")[0].params == ["alice", "@", "#secret", "@alice"]


async def test_names_hides_invisible_users_from_outsiders(server: RunningServer) -> None:
    alice = await server.client("alice")
    ghost = await server.client("ghost")
    outsider = await server.client("outsider")
    await ghost.send("MODE ghost +i")
    await alice.join("#chan")
    await ghost.join("#chan")
    assert names_of(await names(outsider, "#chan")) == ["@alice"]
    assert names_of(await names(alice, "#chan")) == ["@alice", "ghost"]


async def test_names_unknown_channel(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await names(alice, "#nope")
    assert [m.command for m in msgs] == ["366"]
    assert msgs[0].params == ["alice", "#nope", "End of /NAMES list"]


async def test_names_splits_many_members_over_lines(server: RunningServer) -> None:
    nicks = [f"member{i:02d}" + "x" * 22 for i in range(16)]  # NICKLEN=30 each
    clients = [await server.client(n) for n in nicks]
    for c in clients:
        await c.join("#big")
    msgs = await names(clients[0], "#big")
    lines = only(msgs, "353")
    assert len(lines) >= 2
    assert names_of(msgs) == ["@" + nicks[0], *nicks[1:]]
    for line in lines:
        assert line.params[:3] == [nicks[0], "=", "#big"]
        assert len(line.to_line().encode()) + 2 <= 512


async def test_names_prefixes_with_multi_prefix_and_userhost_in_names(
    server: RunningServer,
) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    plain = await server.client("plain")
    multi = await server.client("multi", caps=["multi-prefix"])
    full = await server.client("full", caps=["userhost-in-names"])
    await alice.join("#chan")
    await bob.join("#chan")
    await alice.send("MODE #chan +ov bob bob")
    await alice.sync()
    assert names_of(await names(plain, "#chan")) == ["@alice", "@bob"]
    assert names_of(await names(multi, "#chan")) == ["@alice", "@+bob"]
    assert names_of(await names(full, "#chan")) == ["@" + mask(alice), "@" + mask(bob)]


async def test_names_several_channels(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.join("#a")
    await alice.join("#b")
    await alice.send("NAMES #a,#nope,#b")
    msgs = await alice.sync()
    assert [(m.command, m.params[1] if m.command == "366" else m.params[2]) for m in msgs] == [
        ("353", "#a"),
        ("366", "#a"),
        ("366", "#nope"),
        ("353", "#b"),
        ("366", "#b"),
    ]


async def test_names_takes_as_many_channels_as_targmax_says(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.send("VERSION")  # ISUPPORT again
    isupport = " ".join(" ".join(m.params) for m in await alice.sync() if m.command == "005")
    assert "NAMES:4," in isupport
    for name in ("#a", "#b", "#c", "#d", "#e"):
        await alice.join(name)
    await alice.send("NAMES #a,#b,,#c,#d,#e")
    msgs = await alice.sync()
    assert [(m.command, m.params[1]) for m in msgs if m.command in ("407", "366")] == [
        ("407", "#a,#b,,#c,#d,#e"), ("366", "#a"), ("366", "#b"), ("366", "#c"), ("366", "#d")]


async def test_names_skips_empty_list_items(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.join("#a")
    await alice.sync()
    await alice.send("NAMES ,#a,")
    msgs = await alice.sync()
    assert [(m.command, m.params[:2]) for m in msgs] == [
        ("353", ["alice", "="]),
        ("366", ["alice", "#a"]),
    ]


# ---------------------------------------------------------------------- LIST


async def test_list(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#a")
    await alice.send("TOPIC #a :topic of a")
    await alice.join("#b")
    await bob.join("#b")
    await alice.sync()
    listed = await list_channels(bob)
    assert listed["#a"].params == ["bob", "#a", "1", "topic of a"]
    assert listed["#b"].params == ["bob", "#b", "2", ""]
    assert set(listed) == {"#a", "#b"}


async def test_list_named_channel(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.join("#a")
    await alice.join("#b")
    assert set(await list_channels(alice, "#a")) == {"#a"}
    assert set(await list_channels(alice, "#A,#b")) == {"#a", "#b"}
    assert set(await list_channels(alice, "#nope")) == set()


async def test_list_hides_secret_channels_from_outsiders(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#hidden")
    await alice.send("MODE #hidden +s")
    await alice.join("#open")
    await alice.sync()
    assert set(await list_channels(bob)) == {"#open"}
    assert set(await list_channels(bob, "#hidden")) == set()
    assert set(await list_channels(alice)) == {"#hidden", "#open"}


async def test_list_elist_user_counts(server: RunningServer) -> None:
    clients = [await server.client(f"u{i}") for i in range(3)]
    for n, name in enumerate(["#one", "#two", "#three"]):
        for c in clients[: n + 1]:
            await c.join(name)
    viewer = clients[0]
    assert set(await list_channels(viewer, ">1")) == {"#two", "#three"}
    assert set(await list_channels(viewer, "<3")) == {"#one", "#two"}
    assert set(await list_channels(viewer, ">1,<3")) == {"#two"}


async def test_list_elist_masks_and_negation(server: RunningServer) -> None:
    alice = await server.client("alice")
    for name in ("#chat", "#Chatter", "#python", "#other"):
        await alice.join(name)
    assert set(await list_channels(alice, "*CHAT*")) == {"#chat", "#Chatter"}
    assert set(await list_channels(alice, "#?ython,#oth*")) == {"#python", "#other"}
    assert set(await list_channels(alice, "!*chat*")) == {"#python", "#other"}
    assert set(await list_channels(alice, "*t*,!#chat")) == {"#Chatter", "#python", "#other"}
    # A mask and a count together: both must hold.
    assert set(await list_channels(alice, "*chat*,>1")) == set()


async def test_list_elist_creation_and_topic_times(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.join("#topical")
    await alice.send("TOPIC #topical :fresh")
    await alice.join("#bare")
    await alice.sync()
    # Both were made (and the topic set) within the last minute, none before it.
    assert set(await list_channels(alice, "C<1")) == {"#topical", "#bare"}
    assert set(await list_channels(alice, "C>1")) == set()
    # A channel without a topic had no topic change in any period.
    assert set(await list_channels(alice, "T<1")) == {"#topical"}
    assert set(await list_channels(alice, "T>1")) == set()
    await alice.send("VERSION")
    tokens = [t for m in await alice.sync() if m.command == "005" for t in m.params]
    assert "ELIST=CMNTU" in tokens


# ---------------------------------------------------------------------- KICK


async def test_kick_broadcast_and_target_removed(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")
    for c in (alice, bob, carol):
        await c.join("#chan")
    await alice.sync()
    await bob.sync()
    await alice.send("KICK #chan bob :behave")
    for c in (alice, bob, carol):
        msg = await c.expect("KICK")
        assert msg.source == mask(alice)
        assert msg.params == ["#chan", "bob", "behave"]
    assert names_of(await names(alice, "#chan")) == ["@alice", "carol"]
    # bob is outside a +n channel now.
    await bob.send("PRIVMSG #chan :let me back")
    msgs = await bob.sync()
    assert [m.command for m in msgs] == ["404"]
    assert msgs[0].params[:2] == ["bob", "#chan"]
    assert only(await carol.sync(), "PRIVMSG") == []


async def test_kick_channels_and_nicks_in_pairs(server: RunningServer) -> None:
    """RFC 2812: as many channels as nicks kick each nick from its channel (irctest's
    double kick); one channel and several nicks kick them all from it."""
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")
    for name in ("#a", "#b"):
        for c in (alice, bob, carol):
            await c.join(name)
    await alice.sync()
    await alice.send("KICK #a,#b bob,carol :bye")
    kicks = [await alice.expect("KICK") for _ in range(2)]
    assert [m.params for m in kicks] == [["#a", "bob", "bye"], ["#b", "carol", "bye"]]
    assert names_of(await names(alice, "#a")) == ["@alice", "carol"]
    assert names_of(await names(alice, "#b")) == ["@alice", "bob"]
    await alice.send("KICK #a,#a carol,nobody :again")  # the same channel twice, too
    assert (await alice.expect("KICK")).params == ["#a", "carol", "again"]
    assert (await alice.expect("441")).params[1:3] == ["nobody", "#a"]
    # Two channels and three nicks: no pairing.
    assert [m.command for m in await ask(alice, "KICK #a,#b x,y,z")] == ["461"]


async def test_kick_default_reason(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await bob.join("#chan")
    await alice.send("KICK #chan bob")
    msg = await bob.expect("KICK")
    assert msg.params[:2] == ["#chan", "bob"]
    assert msg.params[2]  # some default text, never empty


async def test_kick_errors(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")
    await alice.join("#chan")
    await bob.join("#chan")
    await alice.sync()

    await bob.send("KICK #chan alice")  # not an operator
    msgs = await bob.sync()
    assert [m.command for m in msgs] == ["482"]
    assert msgs[0].params[:2] == ["bob", "#chan"]

    await alice.send("KICK #chan carol")  # target not on channel
    msgs = await alice.sync()
    assert [m.command for m in msgs] == ["441"]
    assert msgs[0].params[:3] == ["alice", "carol", "#chan"]

    await carol.send("KICK #chan bob")  # kicker not on channel
    msgs = await carol.sync()
    assert [m.command for m in msgs] == ["442"]
    assert msgs[0].params[:2] == ["carol", "#chan"]

    await alice.send("KICK #nope bob")
    msgs = await alice.sync()
    assert [m.command for m in msgs] == ["403"]
    assert msgs[0].params[:2] == ["alice", "#nope"]

    await alice.send("KICK #chan")
    msgs = await alice.sync()
    assert [m.command for m in msgs] == ["461"]
    assert msgs[0].params[:2] == ["alice", "KICK"]
    # Nobody was kicked by any of that.
    assert names_of(await names(alice, "#chan")) == ["@alice", "bob"]


async def test_kick_several_targets(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")
    for c in (alice, bob, carol):
        await c.join("#chan")
    await alice.sync()
    await alice.send("KICK #chan BOB,nobody,carol :out")
    msgs = await alice.sync()
    assert [(m.command, m.params[1]) for m in msgs] == [
        ("KICK", "bob"),
        ("441", "nobody"),
        ("KICK", "carol"),
    ]
    assert names_of(await names(alice, "#chan")) == ["@alice"]


async def test_kicking_the_last_member_destroys_the_channel(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.join("#chan")
    await alice.send("KICK #chan alice :bye me")
    assert (await alice.expect("KICK")).params == ["#chan", "alice", "bye me"]
    assert "#chan" not in await list_channels(alice)


# ---------------------------------------------------------------------- INVITE


async def test_invite(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await alice.send("INVITE bob #chan")
    msgs = await alice.sync()
    assert [m.command for m in msgs] == ["341"]
    assert msgs[0].params == ["alice", "bob", "#chan"]
    msg = await bob.expect("INVITE")
    assert msg.source == mask(alice)
    assert msg.params == ["bob", "#chan"]


async def test_invite_alone_lists_the_channels_one_is_invited_to(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    assert [(m.command, m.params[1:]) for m in await ask(bob, "INVITE")] == [
        ("337", ["End of /INVITE list"])]
    for name in ("#Zed", "#abc"):
        await alice.join(name)
        await alice.send(f"INVITE bob {name}")
        await alice.expect("341")
    listed = await ask(bob, "INVITE")
    assert [(m.command, m.params[1:]) for m in listed] == [
        ("336", ["#abc"]), ("336", ["#Zed"]), ("337", ["End of /INVITE list"])]
    await bob.join("#abc")  # an invite is used up by joining
    assert [m.params[1] for m in await ask(bob, "INVITE") if m.command == "336"] == ["#Zed"]
    # One parameter is still a missing one.
    assert [m.command for m in await ask(bob, "INVITE alice")] == ["461"]


async def test_invite_notify_tells_members_who_may_invite(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob", caps=["invite-notify"])
    carol = await server.client("carol")  # no invite-notify
    dave = await server.client("dave", caps=["invite-notify"])
    for c in (alice, bob, carol):
        await c.join("#chan")
    await alice.sync()
    await bob.sync()
    await alice.send("INVITE dave #chan")
    assert [m.command for m in await alice.sync()] == ["341"]  # the inviter: 341 only
    seen = await bob.expect("INVITE")
    assert seen.source == mask(alice) and seen.params == ["dave", "#chan"]
    assert (await dave.expect("INVITE")).params == ["dave", "#chan"]  # once, as the target
    assert only(await dave.sync(), "INVITE") == []
    assert only(await carol.sync(), "INVITE") == []

    # On an invite-only channel only its operators may invite, and only they are told.
    frank = await server.client("frank", caps=["invite-notify"])
    await frank.join("#chan")
    await alice.send("MODE #chan +io frank")
    await alice.sync()
    await bob.sync()
    await frank.sync()
    erin = await server.client("erin")
    await alice.send("INVITE erin #chan")
    await alice.expect("341")
    seen = await frank.expect("INVITE")
    assert seen.source == mask(alice) and seen.params == ["erin", "#chan"]
    assert only(await bob.sync(), "INVITE") == []  # no operator of the +i channel
    assert (await erin.expect("INVITE")).params == ["erin", "#chan"]


async def test_invite_errors(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")
    await alice.join("#chan")
    await bob.join("#chan")
    await alice.sync()

    await alice.send("INVITE bob #chan")  # already on it
    msgs = await alice.sync()
    assert [m.command for m in msgs] == ["443"]
    assert msgs[0].params[:3] == ["alice", "bob", "#chan"]

    await carol.send("INVITE bob #chan")  # inviter not on channel
    msgs = await carol.sync()
    assert [m.command for m in msgs] == ["442"]
    assert msgs[0].params[:2] == ["carol", "#chan"]

    await alice.send("INVITE nobody #chan")
    msgs = await alice.sync()
    assert [m.command for m in msgs] == ["401"]
    assert msgs[0].params[:2] == ["alice", "nobody"]

    await alice.send("INVITE carol #nope")
    msgs = await alice.sync()
    assert [m.command for m in msgs] == ["403"]
    assert msgs[0].params[:2] == ["alice", "#nope"]

    assert only(await carol.sync(), "INVITE") == []


async def test_invite_to_invite_only_needs_op(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")
    await alice.join("#chan")
    await bob.join("#chan")
    await alice.send("MODE #chan +i")
    await alice.sync()
    assert [m.command for m in await bob.sync()] == ["MODE"]
    await bob.send("INVITE carol #chan")
    msgs = await bob.sync()
    assert [m.command for m in msgs] == ["482"]
    assert msgs[0].params[:2] == ["bob", "#chan"]
    assert await carol.sync() == []
    await carol.send("JOIN #chan")
    assert [m.command for m in await carol.sync()] == ["473"]


@pytest.mark.parametrize("leave", ["NICK bob2", "QUIT"])
async def test_invite_is_not_inherited_by_the_next_holder_of_the_nick(
    server: RunningServer, leave: str
) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#vip")
    await alice.send("MODE #vip +ik sesame")
    await alice.send("MODE #vip +b *!*@*")
    await alice.send("INVITE bob #vip")
    await bob.expect("INVITE")
    await bob.send(leave)
    if leave == "QUIT":
        await bob.wait_closed()
    else:
        await bob.expect("NICK")
    mallory = await server.client("bob")
    await mallory.send("JOIN #vip")
    msgs = await mallory.sync()
    assert only(msgs, "JOIN") == []
    assert [m.command for m in msgs] in (["473"], ["474"], ["475"])


async def test_invite_away_target(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await bob.send("AWAY :out to lunch")
    await bob.sync()
    await alice.send("INVITE bob #chan")
    msgs = await alice.sync()
    assert [m.command for m in msgs] == ["341", "301"]
    assert msgs[1].params == ["alice", "bob", "out to lunch"]
    assert (await bob.expect("INVITE")).params == ["bob", "#chan"]
