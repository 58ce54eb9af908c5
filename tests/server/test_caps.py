"""What each IRCv3 capability changes on the wire, over real TCP."""

from __future__ import annotations

import re
import time

import pytest

from chat.message import Message
from chat.servertime import parse_time
from server.config import ServerConfig
from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient

SERVER = "test.server"
HOST = "127.0.0.1"
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def server_config() -> ServerConfig:
    # History off: join playback arrives asynchronously and would interleave here.
    return ServerConfig(name=SERVER, network="TestNet", db="")


def mask(nick: str) -> str:
    return f"{nick}!~{nick}@{HOST}"


def numeric(code: str, *params: str) -> Message:
    return Message(code, list(params), SERVER)


async def trio(
    server: RunningServer, alice_caps: list[str], bob_caps: list[str], channel: str = "#chan"
) -> tuple[IRCTestClient, IRCTestClient, IRCTestClient]:
    """alice (op), bob and carol (no caps) in one channel, all joins seen by everyone."""
    alice = await server.client("alice", caps=alice_caps)
    bob = await server.client("bob", caps=bob_caps)
    carol = await server.client("carol")
    for c in (alice, bob, carol):
        await c.join(channel)
    for c in (alice, bob, carol):
        await c.sync()
    return alice, bob, carol


# ---------------------------------------------------------------------- server-time


async def test_server_time_tags_relayed_messages(server: RunningServer) -> None:
    alice, bob, carol = await trio(server, [], ["server-time"])
    await alice.send("PRIVMSG #chan :hello")
    got = await bob.expect("PRIVMSG")
    assert got.params == ["#chan", "hello"] and got.source == mask("alice")
    assert set(got.tags) == {"time"}
    assert TIME_RE.match(got.tags["time"])
    assert abs(parse_time(got.tags["time"]) - time.time()) < 300  # the server's clock, in UTC
    plain = await carol.expect("PRIVMSG")
    assert plain == Message("PRIVMSG", ["#chan", "hello"], mask("alice"))


async def test_server_time_on_join_and_nick(server: RunningServer) -> None:
    alice = await server.client("alice", caps=["server-time"])
    joined = await alice.join("#chan")
    join = next(m for m in joined if m.command == "JOIN")
    assert join.params == ["#chan"] and TIME_RE.match(join.tags["time"])
    await alice.send("NICK alicia")
    nick = await alice.expect("NICK")
    assert nick.params == ["alicia"] and TIME_RE.match(nick.tags["time"])


# ---------------------------------------------------------------------- message-tags


async def test_message_tags_adds_msgid_shared_by_all_recipients(server: RunningServer) -> None:
    alice, bob, carol = await trio(
        server, ["message-tags", "echo-message"], ["message-tags", "server-time"]
    )
    await alice.send("PRIVMSG #chan :hello")
    echo = await alice.expect("PRIVMSG")
    got = await bob.expect("PRIVMSG")
    assert set(echo.tags) == {"msgid"}
    assert set(got.tags) == {"msgid", "time"}
    assert echo.tags["msgid"] and got.tags["msgid"] == echo.tags["msgid"]
    assert (await carol.expect("PRIVMSG")).tags == {}
    # A second message gets a different id.
    await alice.send("PRIVMSG #chan :again")
    assert (await bob.expect("PRIVMSG")).tags["msgid"] != got.tags["msgid"]


async def test_message_tags_relays_client_tags(server: RunningServer) -> None:
    alice, bob, carol = await trio(server, ["message-tags"], ["message-tags"])
    await alice.send(r"@+example.com/foo=a\sb\:c;+draft/reply=xyz PRIVMSG #chan :hi")
    got = await bob.expect("PRIVMSG")
    assert got.params == ["#chan", "hi"]
    assert got.tags["+example.com/foo"] == "a b;c"
    assert got.tags["+draft/reply"] == "xyz"
    assert set(got.tags) == {"msgid", "+example.com/foo", "+draft/reply"}
    assert (await carol.expect("PRIVMSG")).tags == {}


async def test_client_cannot_forge_server_tags(server: RunningServer) -> None:
    alice, bob, _ = await trio(server, ["message-tags"], ["message-tags", "server-time"])
    forged = "@msgid=forged;time=2000-01-01T00:00:00.000Z;account=admin;+ok=1"
    await alice.send(f"{forged} PRIVMSG #chan :hi")
    got = await bob.expect("PRIVMSG")
    assert got.tags["msgid"] != "forged"
    assert not got.tags["time"].startswith("2000-")
    assert "account" not in got.tags
    assert got.tags["+ok"] == "1"


async def test_client_tags_dropped_without_message_tags(server: RunningServer) -> None:
    alice, bob, _ = await trio(server, [], ["message-tags"])
    await alice.send("@+secret=1 PRIVMSG #chan :hi")
    got = await bob.expect("PRIVMSG")
    assert set(got.tags) == {"msgid"}


async def test_tagmsg_only_reaches_message_tags_clients(server: RunningServer) -> None:
    alice, bob, carol = await trio(server, ["message-tags"], ["message-tags"])
    await alice.send("@+draft/typing=active TAGMSG #chan")
    got = await bob.expect("TAGMSG")
    assert got.params == ["#chan"] and got.source == mask("alice")
    assert got.tags["+draft/typing"] == "active"
    assert await carol.sync() == []


# ---------------------------------------------------------------------- echo-message


async def test_echo_message_to_channel_and_nick(server: RunningServer) -> None:
    alice, bob, _ = await trio(server, ["echo-message"], [])
    await alice.send("PRIVMSG #chan :to the channel")
    assert await alice.expect("PRIVMSG") == Message(
        "PRIVMSG", ["#chan", "to the channel"], mask("alice")
    )
    await alice.send("PRIVMSG bob :to you")
    assert await alice.expect("PRIVMSG") == Message("PRIVMSG", ["bob", "to you"], mask("alice"))
    assert await bob.expect("PRIVMSG") == Message(
        "PRIVMSG", ["#chan", "to the channel"], mask("alice")
    )
    assert await bob.expect("PRIVMSG") == Message("PRIVMSG", ["bob", "to you"], mask("alice"))
    await alice.send("NOTICE #chan :a notice")
    assert await alice.expect("NOTICE") == Message("NOTICE", ["#chan", "a notice"], mask("alice"))


async def test_no_echo_without_cap(server: RunningServer) -> None:
    alice, bob, _ = await trio(server, [], [])
    await alice.send("PRIVMSG #chan :hello")
    await bob.expect("PRIVMSG")
    assert await alice.sync() == []


# ---------------------------------------------------------------------- labeled-response


LABEL_CAPS = ["labeled-response", "batch"]


async def test_labeled_ping_gets_one_labeled_pong(server: RunningServer) -> None:
    c = await server.client("alice", caps=LABEL_CAPS)
    await c.send("@label=abc123 PING token")
    pong = await c.expect("PONG")
    assert pong == Message("PONG", [SERVER, "token"], SERVER, {"label": "abc123"})
    assert await c.sync() == []


async def test_labeled_command_without_output_gets_ack(server: RunningServer) -> None:
    alice, bob, _ = await trio(server, LABEL_CAPS, [])
    await alice.send("@label=m1 PRIVMSG #chan :hello")
    assert await alice.expect("ACK") == Message("ACK", [], SERVER, {"label": "m1"})
    assert await bob.expect("PRIVMSG") == Message("PRIVMSG", ["#chan", "hello"], mask("alice"))
    await alice.send("@label=p1 PONG :whatever")
    assert await alice.expect("ACK") == Message("ACK", [], SERVER, {"label": "p1"})
    assert await alice.sync() == []


async def test_labeled_echo_carries_label(server: RunningServer) -> None:
    alice, bob, _ = await trio(server, [*LABEL_CAPS, "echo-message", "message-tags"], [])
    await alice.send("@label=e1 PRIVMSG #chan :hello")
    echo = await alice.expect("PRIVMSG")
    assert echo.params == ["#chan", "hello"]
    assert echo.tags["label"] == "e1" and set(echo.tags) == {"label", "msgid"}
    # The label is for the sender only.
    assert (await bob.expect("PRIVMSG")).tags == {}
    assert await alice.sync() == []


@pytest.mark.parametrize("command", ["PRIVMSG", "NOTICE", "TAGMSG"])
async def test_a_labelled_message_to_oneself_is_an_echo_and_a_delivery(
    server: RunningServer, command: str
) -> None:
    """Two messages, the echo labelled and the delivery not, no labeled-response batch
    around them (irctest; ergo)."""
    caps = [*LABEL_CAPS, "echo-message", "message-tags"]
    alice = await server.client("alice", caps=caps)
    text = "" if command == "TAGMSG" else " :hi"
    await alice.send(f"@label=s1;+x=y {command} alice{text}")
    got = [await alice.expect(command) for _ in range(2)]
    assert sorted(m.tags.get("label", "") for m in got) == ["", "s1"]
    assert got[0].tags["msgid"] == got[1].tags["msgid"]
    assert all(m.tags["+x"] == "y" for m in got)
    assert await alice.sync() == []
    # Without echo-message, the delivery alone, unlabelled; the label gets an ACK.
    bob = await server.client("bob", caps=LABEL_CAPS)
    await bob.send("@label=s2 PRIVMSG bob :hi")
    delivered = await bob.expect("PRIVMSG")
    assert delivered.params == ["bob", "hi"] and "label" not in delivered.tags
    assert await bob.sync() == [Message("ACK", [], SERVER, {"label": "s2"})]


def check_batch(messages: list[Message], label: str) -> list[Message]:
    """Validate a labeled-response batch; return the messages inside it."""
    start, *inner, end = messages
    assert start.command == "BATCH" and start.source == SERVER
    assert start.tags == {"label": label}
    assert start.params[0].startswith("+") and start.params[1:] == ["labeled-response"]
    ref = start.params[0][1:]
    assert ref
    assert end == Message("BATCH", ["-" + ref], SERVER)
    assert inner
    assert all(m.tags == {"batch": ref} for m in inner)
    return inner


async def test_labeled_whois_comes_in_a_batch(server: RunningServer) -> None:
    c = await server.client("alice", caps=LABEL_CAPS)
    await c.send("@label=w1 WHOIS alice")
    messages = await c.collect_until("BATCH")
    messages += await c.collect_until("BATCH")
    inner = check_batch(messages, "w1")
    assert [m.command for m in inner] == ["311", "312", "378", "317", "318"]
    assert inner[0].params[:4] == ["alice", "alice", "~alice", HOST]
    assert inner[-1].params == ["alice", "alice", "End of /WHOIS list"]
    assert await c.sync() == []


async def test_labeled_names_comes_in_a_batch(server: RunningServer) -> None:
    alice, _, _ = await trio(server, LABEL_CAPS, [])
    await alice.send("@label=n1 NAMES #chan")
    messages = await alice.collect_until("BATCH")
    messages += await alice.collect_until("BATCH")
    inner = check_batch(messages, "n1")
    assert [m.command for m in inner] == ["353", "366"]
    assert inner[0].params == ["alice", "=", "#chan", "@alice bob carol"]
    # Two batches get different references.
    await alice.send("@label=n2 NAMES #chan")
    again = await alice.collect_until("BATCH")
    assert again[0].params[0] != messages[0].params[0]
    await alice.collect_until("BATCH")


async def test_label_ignored_without_cap(server: RunningServer) -> None:
    c = await server.client("alice")
    await c.send("@label=x PING token")
    assert await c.expect("PONG") == Message("PONG", [SERVER, "token"], SERVER)


# ---------------------------------------------------------------------- away-notify


async def test_away_notify(server: RunningServer) -> None:
    alice, bob, carol = await trio(server, [], ["away-notify"])
    await alice.send("AWAY :gone to lunch")
    assert await alice.expect("306") == numeric(
        "306", "alice", "You have been marked as being away"
    )
    assert await bob.expect("AWAY") == Message("AWAY", ["gone to lunch"], mask("alice"))
    await alice.send("AWAY")
    assert await alice.expect("305") == numeric(
        "305", "alice", "You are no longer marked as being away"
    )
    assert await bob.expect("AWAY") == Message("AWAY", [], mask("alice"))
    assert await carol.sync() == []
    assert await alice.sync() == []


async def test_away_notify_on_join_of_away_user(server: RunningServer) -> None:
    alice = await server.client("alice")
    dave = await server.client("dave", caps=["away-notify"])
    await dave.join("#other")
    await alice.send("AWAY :brb")
    await alice.expect("306")
    await alice.join("#other")
    assert await dave.expect("JOIN") == Message("JOIN", ["#other"], mask("alice"))
    assert await dave.expect("AWAY") == Message("AWAY", ["brb"], mask("alice"))


# ---------------------------------------------------------------------- NAMES variants


async def test_userhost_in_names(server: RunningServer) -> None:
    alice, bob, _ = await trio(server, ["userhost-in-names"], [])
    await alice.send("NAMES #chan")
    names = await alice.expect("353")
    assert names.params == [
        "alice", "=", "#chan", f"@{mask('alice')} {mask('bob')} {mask('carol')}"
    ]  # fmt: skip
    await bob.send("NAMES #chan")
    assert (await bob.expect("353")).params[-1] == "@alice bob carol"


async def test_multi_prefix(server: RunningServer) -> None:
    alice, bob, _ = await trio(server, ["multi-prefix"], [])
    await alice.send("MODE #chan +v alice")
    await alice.expect("MODE")
    await alice.send("NAMES #chan")
    assert (await alice.expect("353")).params[-1] == "@+alice bob carol"
    await alice.send("WHOIS alice")
    assert await alice.expect("319") == numeric("319", "alice", "alice", "@+#chan")
    await bob.send("NAMES #chan")
    assert (await bob.expect("353")).params[-1] == "@alice bob carol"


async def test_multi_prefix_with_userhost_in_names(server: RunningServer) -> None:
    alice, _, _ = await trio(server, ["multi-prefix", "userhost-in-names"], [])
    await alice.send("MODE #chan +v alice")
    await alice.expect("MODE")
    await alice.send("NAMES #chan")
    names = (await alice.expect("353")).params[-1].split()
    assert names[0] == "@+" + mask("alice")


# ---------------------------------------------------------------------- setname


async def test_setname_broadcast_to_cap_holders(server: RunningServer) -> None:
    alice, bob, carol = await trio(server, ["setname"], ["setname"])
    await alice.send("SETNAME :Alice Liddell")
    expected = Message("SETNAME", ["Alice Liddell"], mask("alice"))
    assert await alice.expect("SETNAME") == expected
    assert await bob.expect("SETNAME") == expected
    assert await carol.sync() == []
    await carol.send("WHOIS alice")
    assert (await carol.expect("311")).params[-1] == "Alice Liddell"


@pytest.mark.parametrize("realname", ["x" * 201, "é" * 101], ids=["ascii", "multibyte"])
async def test_setname_too_long_fails(server: RunningServer, realname: str) -> None:
    alice = await server.client("alice", caps=["setname"])
    await alice.send(f"SETNAME :{realname}")
    assert await alice.expect("FAIL") == Message(
        "FAIL", ["SETNAME", "INVALID_REALNAME", "Realname is not valid"], SERVER
    )
    await alice.send("WHOIS alice")
    assert (await alice.expect("311")).params[-1] == "Real alice"


async def test_setname_at_limit_is_accepted(server: RunningServer) -> None:
    alice = await server.client("alice", caps=["setname"])
    realname = "é" * 100  # 200 bytes
    await alice.send(f"SETNAME :{realname}")
    assert (await alice.expect("SETNAME")).params == [realname]


# ---------------------------------------------------------------------- cap-notify


async def test_cap_notify_is_listed_after_ls_302(server: RunningServer) -> None:
    alice = await server.client("alice", caps=["server-time"])  # registers with CAP LS 302
    await alice.send("CAP LIST")
    listed = await alice.expect("CAP")
    assert listed.params[:2] == ["alice", "LIST"]
    assert sorted(listed.params[2].split()) == ["cap-notify", "server-time"]
