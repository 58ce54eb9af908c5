"""KNOCK over real TCP, on every backend; the rate windows with a fake clock."""

from __future__ import annotations

from chat.message import Message
from server.core.handlers.channels import KNOCK_CHANNEL_WINDOW, KNOCK_WINDOW
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer, serving, suite_config
from tests.fuzz.harness import CoreHarness
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, mask

SERVER = "test.server"


def numeric(code: str, *params: str) -> Message:
    return Message(code, list(params), SERVER)


def knock_notice(channel: str, who: IRCTestClient, text: str) -> Message:
    return Message("NOTICE", ["@" + channel, f"[Knock] by {mask(who)} ({text})"], SERVER)


def delivered(nick: str, channel: str) -> Message:
    return numeric("711", nick, channel, "Your KNOCK has been delivered")


async def closed_channel(
    server: RunningServer, modes: str = "+i", *args: str
) -> tuple[IRCTestClient, IRCTestClient, IRCTestClient]:
    """#c with alice (op), bob (op) and carol (a plain member), then ``modes`` set."""
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")
    for c in (alice, bob, carol):
        await c.join("#c")
    await ask(alice, "MODE #c +o bob")
    await ask(alice, " ".join(["MODE #c", modes, *args]))
    for c in (alice, bob, carol):
        await c.sync()
    return alice, bob, carol


async def test_knock_tells_the_channel_operators(server: RunningServer) -> None:
    alice, bob, carol = await closed_channel(server)
    dave = await server.client("dave")
    assert await ask(dave, "KNOCK #C :let me in please") == [delivered("dave", "#c")]
    notice = knock_notice("#c", dave, "let me in please")
    assert await alice.sync() == [notice]
    assert await bob.sync() == [notice]
    assert await carol.sync() == []  # not an operator


async def test_knock_without_a_message(server: RunningServer) -> None:
    alice, _, _ = await closed_channel(server)
    dave = await server.client("dave")
    assert await ask(dave, "KNOCK #c") == [delivered("dave", "#c")]
    assert await alice.sync() == [knock_notice("#c", dave, "has asked for an invite")]


async def test_keyed_and_full_channels_are_closed_too(server: RunningServer) -> None:
    alice, _, _ = await closed_channel(server, "+k", "secret")
    dave = await server.client("dave")
    assert await ask(dave, "KNOCK #c :key?") == [delivered("dave", "#c")]
    assert await alice.sync() == [knock_notice("#c", dave, "key?")]
    # #c took its knock for this minute: a full channel is another one.
    await ask(alice, "JOIN #e")
    await ask(alice, "MODE #e +l 1")  # one member: full
    await alice.sync()
    erin = await server.client("erin")
    assert await ask(erin, "KNOCK #e :full?") == [delivered("erin", "#e")]
    assert await alice.sync() == [knock_notice("#e", erin, "full?")]


async def test_knock_on_an_open_channel(server: RunningServer) -> None:
    alice, _, _ = await closed_channel(server, "+l", "10")  # a limit not reached: open
    dave = await server.client("dave")
    assert await ask(dave, "KNOCK #c") == [numeric("713", "dave", "#c", "Channel is open")]
    assert await alice.sync() == []


async def test_knock_on_a_channel_one_is_on(server: RunningServer) -> None:
    alice, _, carol = await closed_channel(server)
    assert await ask(carol, "KNOCK #c") == [
        numeric("714", "carol", "#c", "You're already on that channel")
    ]
    assert await alice.sync() == []


async def test_knock_on_no_such_channel(server: RunningServer) -> None:
    dave = await server.client("dave")
    for target in ("#nowhere", "alice", "#nowhere,#c"):
        assert await ask(dave, f"KNOCK {target}") == [
            numeric("403", "dave", target.split(",")[0], "No such channel")
        ], target
    assert await ask(dave, "KNOCK ,#c") == [numeric("403", "dave", "*", "No such channel")]


async def test_knock_needs_a_channel(server: RunningServer) -> None:
    dave = await server.client("dave")
    for line in ("KNOCK", "KNOCK :"):
        assert await ask(dave, line) == [
            numeric("461", "dave", "KNOCK", "Not enough parameters")
        ], line


async def test_a_banned_user_cannot_knock(server: RunningServer) -> None:
    alice, _, _ = await closed_channel(server, "+ib", "dave!*@*")
    dave = await server.client("dave")
    assert await ask(dave, "KNOCK #c") == [
        numeric("404", "dave", "#c", "Cannot send to channel")
    ]
    assert await alice.sync() == []


async def test_one_knock_per_user_per_channel(server: RunningServer) -> None:
    alice, _, _ = await closed_channel(server)
    await ask(alice, "JOIN #d")
    await ask(alice, "MODE #d +i")
    dave = await server.client("dave")
    assert await ask(dave, "KNOCK #c :first") == [delivered("dave", "#c")]
    assert await ask(dave, "KNOCK #c :second") == [
        numeric("712", "dave", "#c", "Too many KNOCKs (user)")
    ]
    assert await alice.sync() == [knock_notice("#c", dave, "first")]
    assert await ask(dave, "KNOCK #d") == [delivered("dave", "#d")]  # another channel
    assert await alice.sync() == [knock_notice("#d", dave, "has asked for an invite")]


async def test_one_knock_per_channel_from_anyone(server: RunningServer) -> None:
    """Many nicks knocking on one channel reach its operators once per window."""
    alice, bob, _ = await closed_channel(server)
    await ask(alice, "JOIN #d")
    await ask(alice, "MODE #d +i")
    dave = await server.client("dave")
    erin = await server.client("erin")
    assert await ask(dave, "KNOCK #c :first") == [delivered("dave", "#c")]
    too_many = numeric("712", "erin", "#c", "Too many KNOCKs (channel)")
    assert await ask(erin, "KNOCK #c :me too") == [too_many]
    assert await alice.sync() == [knock_notice("#c", dave, "first")]
    assert await bob.sync() == [knock_notice("#c", dave, "first")]
    # The channel's window is not a user's: erin may knock on another channel at once.
    assert await ask(erin, "KNOCK #d") == [delivered("erin", "#d")]
    assert await alice.sync() == [knock_notice("#d", erin, "has asked for an invite")]


async def test_operators_are_held_by_the_channel_window(
    backend: str, oper_hash: str
) -> None:
    """As in solanum, an IRC operator's KNOCK waits for the channel's window too."""
    async with serving(suite_config(opers={OPER_NAME: oper_hash}), backend) as server:
        alice, _, _ = await closed_channel(server)
        dave = await server.client("dave")
        oper = await server.client("oper")
        await oper.send(f"OPER {OPER_NAME} :{OPER_PASSWORD}")
        await oper.expect("381")
        await oper.sync()
        assert await ask(dave, "KNOCK #c") == [delivered("dave", "#c")]
        assert await ask(oper, "KNOCK #c") == [
            numeric("712", "oper", "#c", "Too many KNOCKs (channel)")
        ]
        assert await alice.sync() == [knock_notice("#c", dave, "has asked for an invite")]


async def test_isupport_advertises_knock(server: RunningServer) -> None:
    c = await IRCTestClient.open(server.port)
    server.clients.append(c)
    burst = await c.register("alice")
    tokens = [t for m in burst if m.command == "005" for t in m.params[1:-1]]
    assert "KNOCK" in tokens


def test_the_window_passes_with_the_core_clock() -> None:
    """The core reads time only from its clock: a fake one moves the window."""
    with CoreHarness(suite_config(name=SERVER, db="")) as h:

        def register(nick: str) -> int:
            conn = h.connect()
            h.send_line(conn, f"NICK {nick}")
            h.send_line(conn, f"USER {nick} 0 * :{nick}")
            return conn

        alice, dave = register("alice"), register("dave")
        h.send_line(alice, "JOIN #c")
        h.send_line(alice, "MODE #c +i")

        def knock() -> tuple[list[bytes], list[bytes]]:
            got = h.send_line(dave, "KNOCK #c")
            return got.get(dave, []), got.get(alice, [])

        notice = (
            b":test.server NOTICE @#c :[Knock] by dave!~dave@192.0.2.1"
            b" (has asked for an invite)\r\n"
        )
        ok = b":test.server 711 dave #c :Your KNOCK has been delivered\r\n"
        too_many = b":test.server 712 dave #c :Too many KNOCKs (user)\r\n"
        assert knock() == ([ok], [notice])
        h.tick(KNOCK_WINDOW - 1)
        assert knock() == ([too_many], [])
        h.tick(1)
        assert knock() == ([ok], [notice])
        client = h.client(dave)
        assert client is not None and client.knocks is not None
        h.tick(KNOCK_WINDOW)
        h.send_line(dave, "KNOCK #nowhere")  # an error: the window is untouched
        assert knock() == ([ok], [notice])
        assert list(client.knocks) == ["#c"]  # knocks older than the window are dropped


def test_the_channel_window_passes_with_the_core_clock() -> None:
    """After a delivered KNOCK, a channel takes no other, from anyone, for its window."""
    with CoreHarness(suite_config(name=SERVER, db="")) as h:
        alice = h.register("alice")
        dave, erin, frank = h.register("dave"), h.register("erin"), h.register("frank")
        for channel in ("#c", "#d"):
            h.send_line(alice, f"JOIN {channel}")
            h.send_line(alice, f"MODE {channel} +i")

        def knock(conn: int, nick: str, channel: str) -> tuple[list[bytes], list[bytes]]:
            got = h.send_line(conn, f"KNOCK {channel}")
            reply = got.get(conn, [])
            notices = got.get(alice, [])
            assert all(f"[Knock] by {nick}!".encode() in n for n in notices)
            return reply, notices

        def ok(nick: str, channel: str) -> bytes:
            return f":test.server 711 {nick} {channel} :Your KNOCK has been delivered\r\n".encode()

        def too_many(nick: str, channel: str) -> bytes:
            return f":test.server 712 {nick} {channel} :Too many KNOCKs (channel)\r\n".encode()

        assert knock(dave, "dave", "#c")[0] == [ok("dave", "#c")]
        h.tick(KNOCK_CHANNEL_WINDOW - 1)
        assert knock(erin, "erin", "#c") == ([too_many("erin", "#c")], [])
        reply, notices = knock(frank, "frank", "#d")  # another channel, its own window
        assert reply == [ok("frank", "#d")] and len(notices) == 1
        h.tick(1)
        reply, notices = knock(erin, "erin", "#c")  # the refusal did not extend it
        assert reply == [ok("erin", "#c")] and len(notices) == 1
        assert knock(frank, "frank", "#c") == ([too_many("frank", "#c")], [])
        channel = h.core.channels["#c"]
        assert channel.last_knock == h.clock()
