"""Channel and user MODE over real TCP, on every backend."""

from __future__ import annotations

import time

import pytest

from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, mask, only


async def modes_of(c: IRCTestClient, channel: str) -> tuple[set[str], list[str]]:
    """(mode letters, mode arguments) from RPL_CHANNELMODEIS."""
    msgs = await ask(c, f"MODE {channel}")
    reply = only(msgs, "324")[0]
    assert reply.params[1] == channel
    assert reply.params[2].startswith("+")
    return set(reply.params[2][1:]), reply.params[3:]


async def names(c: IRCTestClient, channel: str) -> list[str]:
    msgs = await ask(c, f"NAMES {channel}")
    return [e for m in only(msgs, "353") for e in m.params[3].split()]


async def channel_of(server: RunningServer, *nicks: str) -> list[IRCTestClient]:
    """Clients that all joined #chan, in order (the first is its operator), all drained."""
    clients = [await server.client(n) for n in nicks]
    for c in clients:
        await c.join("#chan")
    for c in clients:
        await c.sync()
    return clients


# ---------------------------------------------------------------------- query


async def test_mode_query_defaults(server: RunningServer) -> None:
    (alice,) = await channel_of(server, "alice")
    msgs = await ask(alice, "MODE #chan")
    assert [m.command for m in msgs] == ["324", "329"]
    assert msgs[0].params == ["alice", "#chan", "+nt"]
    assert msgs[1].params[:2] == ["alice", "#chan"]
    assert abs(int(msgs[1].params[2]) - time.time()) < 300


async def test_mode_query_no_such_channel(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, "MODE #nope")
    assert [m.command for m in msgs] == ["403"]
    assert msgs[0].params[:2] == ["alice", "#nope"]


# ---------------------------------------------------------------------- o / v


async def test_op_and_voice_grant_and_revoke(server: RunningServer) -> None:
    alice, bob, carol = await channel_of(server, "alice", "bob", "carol")
    for change, expected in [
        ("+o", ["@alice", "@bob", "carol"]),
        ("-o", ["@alice", "bob", "carol"]),
        ("+v", ["@alice", "+bob", "carol"]),
        ("-v", ["@alice", "bob", "carol"]),
    ]:
        await alice.send(f"MODE #chan {change} bob")
        for c in (alice, bob, carol):
            msg = await c.expect("MODE")
            assert msg.source == mask(alice)
            assert msg.params == ["#chan", change, "bob"]
        assert await names(carol, "#chan") == expected


async def test_op_mode_uses_the_targets_own_nick(server: RunningServer) -> None:
    alice, _bob = await channel_of(server, "alice", "Bob")
    await alice.send("MODE #chan +o BOB")
    assert (await alice.expect("MODE")).params == ["#chan", "+o", "Bob"]


async def test_redundant_change_is_not_broadcast(server: RunningServer) -> None:
    alice, bob = await channel_of(server, "alice", "bob")
    assert await ask(alice, "MODE #chan +nt") == []
    assert await ask(alice, "MODE #chan -o bob") == []
    assert await bob.sync() == []


async def test_op_with_empty_nick_is_ignored(server: RunningServer) -> None:
    alice, bob = await channel_of(server, "alice", "bob")
    # No "401 alice  :No such nick" with an empty middle parameter.
    assert await ask(alice, "MODE #chan +o :") == []
    assert await bob.sync() == []


async def test_op_target_errors(server: RunningServer) -> None:
    alice, _bob = await channel_of(server, "alice", "bob")
    await server.client("carol")
    msgs = await ask(alice, "MODE #chan +o carol")
    assert [m.command for m in msgs] == ["441"]
    assert msgs[0].params[:3] == ["alice", "carol", "#chan"]
    msgs = await ask(alice, "MODE #chan +v nobody")
    assert [m.command for m in msgs] == ["401"]
    assert msgs[0].params[:2] == ["alice", "nobody"]


# ---------------------------------------------------------------------- flags


async def test_flag_modes_set_and_unset(server: RunningServer) -> None:
    alice, bob = await channel_of(server, "alice", "bob")
    await alice.send("MODE #chan +ims")
    msg = await bob.expect("MODE")
    assert msg.source == mask(alice) and msg.params == ["#chan", "+ims"]
    assert (await modes_of(bob, "#chan"))[0] == set("imnst")
    await alice.send("MODE #chan -imnst")
    msg = await bob.expect("MODE")
    assert msg.params == ["#chan", "-imnst"]
    assert await modes_of(bob, "#chan") == (set(), [])


async def test_several_modes_in_one_command_make_one_broadcast(server: RunningServer) -> None:
    alice, bob, carol = await channel_of(server, "alice", "bob", "carol")
    await ask(alice, "MODE #chan +mv-t+o bob carol")  # handled once alice's PONG is back
    msgs = only(await carol.sync(), "MODE")
    assert len(msgs) == 1
    assert msgs[0].params == ["#chan", "+mv-t+o", "bob", "carol"]
    assert only(await bob.sync(), "MODE") == msgs
    assert await names(alice, "#chan") == ["@alice", "+bob", "@carol"]
    assert (await modes_of(alice, "#chan"))[0] == {"m", "n"}


async def test_secret_channel_mode_hides_it(server: RunningServer) -> None:
    (alice,) = await channel_of(server, "alice")
    outsider = await server.client("outsider")
    await ask(alice, "MODE #chan +s")
    await outsider.send("LIST")
    listed = [m.params[1] for m in only(await outsider.collect_until("323"), "322")]
    assert "#chan" not in listed


async def test_moderated_channel(server: RunningServer) -> None:
    alice, bob, carol = await channel_of(server, "alice", "bob", "carol")
    await ask(alice, "MODE #chan +m")
    await carol.sync()
    msgs = await ask(bob, "PRIVMSG #chan :can anyone hear me")
    assert [m.command for m in msgs] == ["404"]
    assert msgs[0].params[:2] == ["bob", "#chan"]
    assert only(await carol.sync(), "PRIVMSG") == []

    await ask(alice, "MODE #chan +v bob")
    await bob.sync()
    assert await ask(bob, "PRIVMSG #chan :now you can") == []
    msg = await carol.expect("PRIVMSG")
    assert msg.source == mask(bob) and msg.params == ["#chan", "now you can"]
    # Operators always speak.
    await alice.send("PRIVMSG #chan :ops too")
    assert (await carol.expect("PRIVMSG")).params == ["#chan", "ops too"]


async def test_no_external_messages_flag(server: RunningServer) -> None:
    alice, bob = await channel_of(server, "alice", "bob")
    outsider = await server.client("outsider")
    msgs = await ask(outsider, "PRIVMSG #chan :hello from outside")
    assert [m.command for m in msgs] == ["404"]
    await ask(alice, "MODE #chan -n")
    assert await ask(outsider, "PRIVMSG #chan :hello from outside") == []
    msg = await bob.expect("PRIVMSG")
    assert msg.source == mask(outsider)


# ---------------------------------------------------------------------- key / limit


async def test_key_shown_to_members_only(server: RunningServer) -> None:
    alice, bob = await channel_of(server, "alice", "bob")
    outsider = await server.client("outsider")
    await alice.send("MODE #chan +k sesame")
    msg = await bob.expect("MODE")
    assert msg.params == ["#chan", "+k", "sesame"]
    assert await modes_of(bob, "#chan") == (set("ntk"), ["sesame"])
    assert await modes_of(outsider, "#chan") == (set("ntk"), ["*"])
    await alice.send("MODE #chan -k sesame")
    msg = await bob.expect("MODE")
    assert msg.params[:2] == ["#chan", "-k"]
    assert await modes_of(outsider, "#chan") == (set("nt"), [])


async def test_key_needs_a_parameter(server: RunningServer) -> None:
    (alice,) = await channel_of(server, "alice")
    msgs = await ask(alice, "MODE #chan +k")
    assert [m.command for m in msgs] == ["696"]
    assert msgs[0].params[:4] == ["alice", "#chan", "k", "*"]


async def test_limit(server: RunningServer) -> None:
    alice, bob = await channel_of(server, "alice", "bob")
    await alice.send("MODE #chan +l 5")
    assert (await bob.expect("MODE")).params == ["#chan", "+l", "5"]
    assert await modes_of(bob, "#chan") == (set("ntl"), ["5"])
    await alice.send("MODE #chan -l")
    assert (await bob.expect("MODE")).params == ["#chan", "-l"]
    assert await modes_of(bob, "#chan") == (set("nt"), [])


async def test_limit_with_invalid_parameter(server: RunningServer) -> None:
    alice, bob = await channel_of(server, "alice", "bob")
    for bad in ("many", "0", "-3"):
        msgs = await ask(alice, f"MODE #chan +l {bad}")
        assert [m.command for m in msgs] == ["696"], bad
        assert msgs[0].params[:4] == ["alice", "#chan", "l", bad]
    msgs = await ask(alice, "MODE #chan +l")
    assert [m.command for m in msgs] == ["696"]
    assert await bob.sync() == []
    assert await modes_of(alice, "#chan") == (set("nt"), [])


async def test_limit_must_be_ascii_digits_and_is_normalised(server: RunningServer) -> None:
    alice, bob = await channel_of(server, "alice", "bob")
    # str.isdigit() accepts these, the protocol does not.
    for bad in ("\uff15", "\u0665", "+5", "1e3"):
        bad = bad.encode().decode("unicode_escape")
        msgs = await ask(alice, f"MODE #chan +l {bad}")
        assert [m.command for m in msgs] == ["696"], repr(bad)
    assert await bob.sync() == []
    # The broadcast carries the value the channel now has, as 324 shows it.
    await alice.send("MODE #chan +l 007")
    assert (await bob.expect("MODE")).params == ["#chan", "+l", "7"]
    assert await modes_of(bob, "#chan") == (set("ntl"), ["7"])


# ---------------------------------------------------------------------- bans


async def test_ban_add_list_remove(server: RunningServer) -> None:
    alice, bob = await channel_of(server, "alice", "bob")
    await alice.send("MODE #chan +b troll!*@*")
    msg = await bob.expect("MODE")
    assert msg.source == mask(alice) and msg.params == ["#chan", "+b", "troll!*@*"]
    # A partial mask is completed.
    await alice.send("MODE #chan +b spammer")
    assert (await bob.expect("MODE")).params == ["#chan", "+b", "spammer!*@*"]

    for query in ("MODE #chan +b", "MODE #chan b"):
        msgs = await ask(bob, query)  # anyone may read the list
        assert [m.command for m in msgs] == ["367", "367", "368"], query
        assert msgs[0].params[:4] == ["bob", "#chan", "troll!*@*", mask(alice)]
        assert msgs[0].params[4].isdigit()
        assert msgs[1].params[2] == "spammer!*@*"
        assert msgs[2].params[:2] == ["bob", "#chan"]

    # Removal matches case-insensitively.
    await alice.send("MODE #chan -b TROLL!*@*")
    removed = await bob.expect("MODE")
    assert removed.params[:2] == ["#chan", "-b"] and removed.params[2].lower() == "troll!*@*"
    msgs = await ask(bob, "MODE #chan +b")
    assert [m.command for m in msgs] == ["367", "368"]
    assert msgs[0].params[2] == "spammer!*@*"
    # Removing a mask that is not on the list changes nothing and is not broadcast.
    assert await ask(alice, "MODE #chan -b nothere!*@*") == []


async def test_overlong_ban_mask_is_refused(server: RunningServer) -> None:
    """A mask near the input limit would make a 367 line of 600 bytes: refuse it."""
    nick, channel = "n" * 30, "#" + "c" * 49
    op = await server.client(nick)
    await op.join(channel)
    ban = "x" * (510 - len(f"MODE {channel} +b ") - 4) + "!*@*"
    msgs = await ask(op, f"MODE {channel} +b {ban}")
    assert [m.command for m in msgs] == ["696"]
    assert msgs[0].params[:3] == [nick, channel, "b"]
    assert all(len(m.to_line().encode()) + 2 <= 512 for m in msgs)
    msgs = await ask(op, f"MODE {channel} +b")
    assert [m.command for m in msgs] == ["368"]
    # A long but sane mask is fine, and its 367 stays inside the line limit.
    ban = "*!*@" + "h" * 150
    assert only(await ask(op, f"MODE {channel} +b {ban}"), "MODE")
    msgs = await ask(op, f"MODE {channel} +b")
    assert [m.command for m in msgs] == ["367", "368"]
    assert len(msgs[0].to_line().encode()) + 2 <= 512


async def test_at_most_four_parameter_modes_per_command(server: RunningServer) -> None:
    alice, *others = await channel_of(server, "alice", "b1", "b2", "b3", "b4", "b5")
    await alice.send("MODE #chan +vvvvv b1 b2 b3 b4 b5")
    msg = await others[0].expect("MODE")
    assert msg.params == ["#chan", "+vvvv", "b1", "b2", "b3", "b4"]  # ISUPPORT MODES=4
    assert await names(alice, "#chan") == ["@alice", "+b1", "+b2", "+b3", "+b4", "b5"]


async def test_banned_member_cannot_speak(server: RunningServer) -> None:
    alice, bob, carol = await channel_of(server, "alice", "bob", "carol")
    await ask(alice, "MODE #chan +b bob!*@*")
    msgs = await ask(bob, "PRIVMSG #chan :still here")
    assert [m.command for m in msgs] == ["404"]
    assert only(await carol.sync(), "PRIVMSG") == []


@pytest.mark.parametrize(
    ("letter", "entry", "end", "text"),
    [("e", "348", "349", "End of channel exception list"),
     ("I", "346", "347", "End of channel invite list"),
     ("q", "728", "729", "End of channel quiet list")],
)
async def test_exception_and_invite_lists(
    server: RunningServer, letter: str, entry: str, end: str, text: str
) -> None:
    alice, bob = await channel_of(server, "alice", "bob")
    await alice.send(f"MODE #chan +{letter} friend")
    msg = await bob.expect("MODE")
    assert msg.source == mask(alice) and msg.params == ["#chan", f"+{letter}", "friend!*@*"]
    # +q is listed to any member, +e and +I to channel operators only (as solanum;
    # test_quiet_abuse.py has the refusal).
    viewer = bob if letter == "q" else alice
    msgs = await ask(viewer, f"MODE #chan {letter}")
    assert [m.command for m in msgs] == [entry, end]
    where = [viewer.nick, "#chan", "q"] if letter == "q" else [viewer.nick, "#chan"]  # 728/729
    assert msgs[0].params[: len(where) + 2] == [*where, "friend!*@*", mask(alice)]
    assert msgs[1].params == [*where, text]
    assert only(await ask(bob, f"MODE #chan +{letter} other"), "482")  # ops only
    await alice.send(f"MODE #chan -{letter} FRIEND!*@*")
    assert (await bob.expect("MODE")).params[:2] == ["#chan", f"-{letter}"]
    assert [m.command for m in await ask(viewer, f"MODE #chan +{letter}")] == [end]
    # The lists are separate: +e and +I masks are not bans.
    await ask(alice, f"MODE #chan +{letter} carol")
    assert [m.command for m in await ask(alice, "MODE #chan +b")] == ["368"]


async def test_ban_exception_lets_a_banned_user_join_and_speak(server: RunningServer) -> None:
    alice, bob = await channel_of(server, "alice", "bob")
    await ask(alice, "MODE #chan +b *!*@127.0.0.1")
    assert [m.command for m in await ask(bob, "PRIVMSG #chan :hi")] == ["404"]
    await ask(alice, "MODE #chan +e bob!*@*")
    assert await ask(bob, "PRIVMSG #chan :now I may") == []
    assert (await alice.expect("PRIVMSG")).params == ["#chan", "now I may"]
    carol = await server.client("carol")
    assert [m.command for m in await ask(carol, "JOIN #chan")] == ["474"]
    await ask(bob, "PART #chan")
    assert only(await bob.join("#chan"), "JOIN")  # the exception lets him back in


async def test_invite_exception_lets_a_matching_user_join_an_invite_only_channel(
    server: RunningServer,
) -> None:
    (alice,) = await channel_of(server, "alice")
    await ask(alice, "MODE #chan +i")
    await ask(alice, "MODE #chan +I trusted*!*@*")
    stranger = await server.client("stranger")
    assert [m.command for m in await ask(stranger, "JOIN #chan")] == ["473"]
    trusted = await server.client("trusted1")
    assert only(await trusted.join("#chan"), "JOIN")
    # +I opens +i only: a ban still keeps a matching user out.
    await ask(alice, "MODE #chan +b trusted2!*@*")
    other = await server.client("trusted2")
    assert [m.command for m in await ask(other, "JOIN #chan")] == ["474"]


async def test_quieted_members_may_listen_but_not_speak(server: RunningServer) -> None:
    alice, bob, carol = await channel_of(server, "alice", "bob", "carol")
    await ask(alice, "MODE #chan +q bob")
    assert [m.command for m in await ask(bob, "PRIVMSG #chan :hello?")] == ["404"]
    assert only(await carol.sync(), "PRIVMSG") == []
    await ask(carol, "PRIVMSG #chan :bob can still read this")
    assert (await bob.expect("PRIVMSG")).params[1] == "bob can still read this"
    await ask(bob, "PART #chan")
    assert only(await bob.join("#chan"), "JOIN")  # a quiet is no ban
    # Voice lets a quieted member speak, and so does an exception. (After the rejoin,
    # bob may still get the join's history playback: look for a 404 only.)
    for change, text in (("+v bob", "voiced now"), ("-v+e bob bob", "excepted now")):
        await ask(alice, f"MODE #chan {change}")
        assert "404" not in [m.command for m in await ask(bob, f"PRIVMSG #chan :{text}")]
        await carol.expect("PRIVMSG", lambda m, text=text: m.params[1] == text)


async def test_mask_lists_are_bounded(server: RunningServer) -> None:
    (alice,) = await channel_of(server, "alice")
    for start in range(0, 100, 4):
        masks = " ".join(f"m{i}!*@*" for i in range(start, start + 4))
        await ask(alice, f"MODE #chan +eeee {masks}")
    msgs = await ask(alice, "MODE #chan +e one!*@*")
    assert [m.command for m in msgs] == ["478"]
    assert msgs[0].params[1:] == ["#chan", "one!*@*", "Channel exception list is full"]
    # The four lists share the 100 (MAXLIST=beIq:100); taking one off makes room.
    msgs = await ask(alice, "MODE #chan +b one!*@*")
    assert [m.command for m in msgs] == ["478"]
    assert msgs[0].params[1:] == ["#chan", "one!*@*", "Channel ban list is full"]
    assert only(await ask(alice, "MODE #chan -e m0!*@*"), "MODE")
    assert only(await ask(alice, "MODE #chan +b one!*@*"), "MODE")


# ---------------------------------------------------------------------- errors


async def test_unknown_channel_mode(server: RunningServer) -> None:
    alice, _bob = await channel_of(server, "alice", "bob")
    msgs = await ask(alice, "MODE #chan +zm")
    assert [m.command for m in msgs] == ["472", "MODE"]
    assert msgs[0].params[:2] == ["alice", "z"]
    assert msgs[1].params == ["#chan", "+m"]


async def test_non_operator_cannot_change_modes(server: RunningServer) -> None:
    alice, bob = await channel_of(server, "alice", "bob")
    for change in ("+m", "+o bob", "+k key", "+l 3", "+b x!*@*", "-t", "-l"):
        msgs = await ask(bob, f"MODE #chan {change}")
        assert [m.command for m in msgs] == ["482"], change
        assert msgs[0].params[:2] == ["bob", "#chan"]
    assert await alice.sync() == []
    assert await modes_of(alice, "#chan") == (set("nt"), [])
    assert await names(alice, "#chan") == ["@alice", "bob"]


async def test_outsider_cannot_change_modes(server: RunningServer) -> None:
    await channel_of(server, "alice")
    outsider = await server.client("outsider")
    msgs = await ask(outsider, "MODE #chan +m")
    # Modern IRC, MODE: "If a user does not have appropriate privileges to change modes on the
    # target channel, the server MUST not process the message, and ERR_CHANOPRIVSNEEDED (482)".
    assert [m.command for m in msgs] == ["482"]
    assert msgs[0].params[:2] == ["outsider", "#chan"]


# ---------------------------------------------------------------------- user modes


async def test_user_mode_query_and_invisible(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, "MODE alice")
    assert [m.command for m in msgs] == ["221"]
    assert msgs[0].params == ["alice", "+"]

    msgs = await ask(alice, "MODE alice +i")
    assert [(m.command, m.source, m.params) for m in msgs] == [
        ("MODE", mask(alice), ["alice", "+i"])
    ]
    assert (await ask(alice, "MODE ALICE"))[0].params == ["alice", "+i"]
    assert await ask(alice, "MODE alice +i") == []  # no change, no reply

    msgs = await ask(alice, "MODE alice -i")
    assert [m.params for m in only(msgs, "MODE")] == [["alice", "-i"]]
    assert (await ask(alice, "MODE alice"))[0].params == ["alice", "+"]


async def test_user_mode_of_other_user(server: RunningServer) -> None:
    alice = await server.client("alice")
    await server.client("bob")
    for line in ("MODE bob", "MODE bob +i"):
        msgs = await ask(alice, line)
        assert [m.command for m in msgs] == ["502"], line
        assert msgs[0].params[0] == "alice"
    msgs = await ask(alice, "MODE nobody")
    assert [m.command for m in msgs] == ["401"]
    assert msgs[0].params[:2] == ["alice", "nobody"]


async def test_unknown_user_mode_flag(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, "MODE alice +Z")
    assert [m.command for m in msgs] == ["501"]
    assert msgs[0].params[0] == "alice"
    # Known flags in the same string still apply.
    msgs = await ask(alice, "MODE alice +iZ")
    assert sorted(m.command for m in msgs) == ["501", "MODE"]
    assert only(msgs, "MODE")[0].params == ["alice", "+i"]


async def test_user_cannot_make_themselves_oper(server: RunningServer) -> None:
    alice = await server.client("alice")
    assert only(await ask(alice, "MODE alice +o"), "MODE") == []
    assert (await ask(alice, "MODE alice"))[0].params == ["alice", "+"]
