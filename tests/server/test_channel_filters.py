"""Channel modes +C (no CTCPs but ACTION) and +c (colours and formatting stripped), as on
solanum, over real TCP on every backend."""

from __future__ import annotations

from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, only

HISTORY_CAPS = ["batch", "server-time", "message-tags", "draft/chathistory"]


async def channel(server: RunningServer, *clients: IRCTestClient, modes: str) -> None:
    """Everyone joins #f (the first makes it and is its operator), then it gets ``modes``."""
    for c in clients:
        await c.join("#f")
    op = clients[0]
    await op.send(f"MODE #f {modes}")
    assert (await op.expect("MODE")).params == ["#f", modes]
    for c in clients:
        await c.sync()


async def test_plus_C_refuses_ctcps_but_lets_actions_through(server: RunningServer) -> None:
    alice = await server.client("alice")  # operator
    bob = await server.client("bob")
    carol = await server.client("carol", ["echo-message"])
    await channel(server, alice, bob, carol, modes="+C")
    # A CTCP VERSION to the channel: 404, nobody hears it, not even with echo-message.
    msgs = await ask(carol, "PRIVMSG #f :\x01VERSION\x01")
    assert [(m.command, m.params) for m in msgs] == [
        ("404", ["carol", "#f", "Cannot send to channel (+C: no CTCPs)"])]
    assert await bob.sync() == []
    # As on solanum, channel operators and voiced users are held to it as well.
    assert only(await ask(alice, "PRIVMSG #f :\x01PING 123\x01"), "404")
    await alice.send("MODE #f +v bob")
    await alice.expect("MODE")
    await carol.expect("MODE")
    assert only(await ask(bob, "PRIVMSG #f :\x01TIME\x01"), "404")
    assert await carol.sync() == []
    # ACTION (/me) passes, in any case, and so does text with \x01 further in.
    for text in ("\x01ACTION waves\x01", "\x01action waves\x01", "\x01ACTION\x01", "a \x01b\x01"):
        await carol.send(f"PRIVMSG #f :{text}")
        assert (await bob.expect("PRIVMSG")).params == ["#f", text]
        assert (await carol.expect("PRIVMSG")).params == ["#f", text]  # echo
    # Something that only looks like ACTION is still a CTCP.
    assert only(await ask(carol, "PRIVMSG #f :\x01ACTIONS\x01"), "404")
    # A CTCP NOTICE is dropped without a word (no automatic replies to a NOTICE).
    assert await ask(carol, "NOTICE #f :\x01VERSION\x01") == []
    assert await bob.sync() == []
    # Private CTCPs are not the channel's business.
    await carol.send("PRIVMSG bob :\x01VERSION\x01")
    assert (await bob.expect("PRIVMSG")).params == ["bob", "\x01VERSION\x01"]
    await bob.send("NOTICE carol :\x01VERSION chat 1.0\x01")
    assert (await carol.expect("NOTICE")).params == ["carol", "\x01VERSION chat 1.0\x01"]
    # -C lifts it.
    await alice.send("MODE #f -C")
    assert (await alice.expect("MODE")).params == ["#f", "-C"]
    await bob.sync()
    await carol.send("PRIVMSG #f :\x01VERSION\x01")
    assert (await bob.expect("PRIVMSG")).params == ["#f", "\x01VERSION\x01"]


async def test_plus_c_strips_formatting_for_everyone_and_in_history(
    server: RunningServer,
) -> None:
    alice = await server.client("alice", HISTORY_CAPS)  # operator
    bob = await server.client("bob")
    carol = await server.client("carol", ["echo-message", *HISTORY_CAPS])
    await channel(server, alice, bob, carol, modes="+c")
    coloured = "\x02bold\x02 \x0304,12red\x03 \x04FF8800hex\x04 \x1ditalic\x0f é \x1f☃\x1f"
    await carol.send(f"PRIVMSG #f :{coloured}")
    plain = "bold red hex italic é ☃"
    for c in (alice, bob, carol):  # carol: the echo
        got = await c.expect("PRIVMSG")
        assert got.params == ["#f", plain] and got.source and got.source.startswith("carol!")
    # ACTION's \x01 markers are not formatting; operators' text is stripped too.
    await alice.send("PRIVMSG #f :\x01ACTION \x02waves\x02\x01")
    assert (await bob.expect("PRIVMSG")).params == ["#f", "\x01ACTION waves\x01"]
    # A NOTICE is stripped as well; @#channel (STATUSMSG) too.
    await carol.send("NOTICE #f :\x1fnote\x1f")
    assert (await bob.expect("NOTICE")).params == ["#f", "note"]
    await carol.send("PRIVMSG @#f :\x02ops\x02")
    assert (await alice.expect("PRIVMSG")).params == ["@#f", "ops"]
    # Nothing but formatting: nothing to send (412), and nothing at all for a NOTICE.
    msgs = await ask(carol, "PRIVMSG #f :\x02\x0304,05\x03\x0f")
    assert [(m.command, m.params) for m in msgs] == [("412", ["carol", "No text to send"])]
    assert await ask(carol, "NOTICE #f :\x02\x1d") == []
    assert await bob.sync() == []
    # History keeps what the channel saw: the stripped text.
    await alice.sync()
    await alice.send("CHATHISTORY LATEST #f * 10")
    await alice.expect("BATCH")
    rows = await alice.collect_until("BATCH")
    stored = [(m.command, m.params[1]) for m in rows[:-1]]
    assert stored == [
        ("PRIVMSG", plain), ("PRIVMSG", "\x01ACTION waves\x01"), ("NOTICE", "note")]
    # Private messages keep their colours.
    await carol.send("PRIVMSG bob :\x02still bold\x02")
    assert (await bob.expect("PRIVMSG")).params == ["bob", "\x02still bold\x02"]
    # -c lifts it.
    await alice.send("MODE #f -c")
    assert (await alice.expect("MODE")).params == ["#f", "-c"]
    await bob.sync()
    await carol.send("PRIVMSG #f :\x02bold again\x02")
    assert (await bob.expect("PRIVMSG")).params == ["#f", "\x02bold again\x02"]


async def test_plus_c_strips_before_plus_C_looks(server: RunningServer) -> None:
    """A code in front of \\x01 cannot carry a CTCP past +C once +c has stripped it."""
    alice = await server.client("alice")
    bob = await server.client("bob")
    await channel(server, alice, bob, modes="+Cc")
    assert only(await ask(bob, "PRIVMSG #f :\x02\x01VERSION\x01"), "404")
    assert await alice.sync() == []


async def test_modes_are_shown_listed_and_explained(server: RunningServer) -> None:
    alice = await server.client()
    burst = await alice.register("alice")
    myinfo = only(burst, "004")[0]
    assert "C" in myinfo.params[4] and "c" in myinfo.params[4]
    assert "C" not in myinfo.params[5] and "c" not in myinfo.params[5]  # no parameter
    tokens = [t for m in only(burst, "005") for t in m.params[1:-1]]
    chanmodes = next(t for t in tokens if t.startswith("CHANMODES="))
    assert chanmodes == "CHANMODES=beIq,k,l,Ccimnrst"  # type D: no parameter
    bob = await server.client("bob")
    await channel(server, alice, bob, modes="+Cc")
    for c in (alice, bob):
        reply = only(await ask(c, "MODE #f"), "324")[0]
        assert reply.params[:3] == [c.nick, "#f", "+Ccnt"]
    # Only operators change them.
    assert only(await ask(bob, "MODE #f -C"), "482")
    assert await alice.sync() == []
    # Setting what is set already changes nothing and says nothing.
    assert await ask(alice, "MODE #f +c") == []
    helped = [m.params[2] for m in await ask(alice, "HELP CMODES") if m.command == "705"]
    assert any("+C no CTCPs" in t and "+c colours and formatting stripped" in t
               for t in helped)
