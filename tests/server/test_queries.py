"""WHO, WHOIS, WHOWAS, ISON and USERHOST over real TCP, on every backend."""

from __future__ import annotations

import calendar
import time

import pytest

from chat.message import Message
from server.config import ServerConfig
from server.passwords import hash_password
from tests.conftest import RunningServer, start_server, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, only, quit_and_wait

OPER_PASSWORD = "hunter2"


@pytest.fixture(scope="module")
def oper_hash() -> str:
    return hash_password(OPER_PASSWORD)


@pytest.fixture
def server_config(oper_hash: str) -> ServerConfig:
    return ServerConfig(name="test.server", network="TestNet", opers={"root": oper_hash})


async def oper(c: IRCTestClient) -> None:
    assert "381" in [m.command for m in await ask(c, f"OPER root {OPER_PASSWORD}")]


async def who(c: IRCTestClient, mask: str) -> dict[str, Message]:
    """WHO replies by nick; checks the 315 that ends them."""
    msgs = await ask(c, f"WHO {mask}")
    assert msgs[-1].command == "315"
    assert msgs[-1].params == [c.nick, mask, "End of WHO list"]
    assert [m.command for m in msgs[:-1]] == ["352"] * (len(msgs) - 1)
    return {m.params[5]: m for m in msgs[:-1]}


# ---------------------------------------------------------------------- WHO


async def test_who_channel(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")
    for c in (alice, bob, carol):
        await c.join("#chan")
    await oper(carol)
    await ask(alice, "MODE #chan +v carol")
    await ask(bob, "AWAY :away for a bit")
    replies = await who(bob, "#chan")
    assert replies["alice"].params == [
        "bob", "#chan", "~alice", "127.0.0.1", "test.server", "alice", "H@", "0 Real alice"
    ]  # fmt: skip
    assert replies["bob"].params[6] == "G"
    assert replies["carol"].params[6] == "H*+"
    assert set(replies) == {"alice", "bob", "carol"}


async def test_who_channel_multi_prefix(server: RunningServer) -> None:
    alice = await server.client("alice", caps=["multi-prefix"])
    await alice.join("#chan")
    await ask(alice, "MODE #chan +v alice")
    assert (await who(alice, "#chan"))["alice"].params[6] == "H@+"


async def test_who_nick(server: RunningServer) -> None:
    alice = await server.client("alice")
    await server.client("bob")
    replies = await who(alice, "BOB")
    assert list(replies) == ["bob"]
    params = replies["bob"].params
    assert params[0] == "alice"
    assert params[2:8] == ["~bob", "127.0.0.1", "test.server", "bob", "H", "0 Real bob"]


async def test_who_wildcard_mask(server: RunningServer) -> None:
    alice = await server.client("alice")
    for nick in ("bob", "bobby", "rob"):
        await server.client(nick)
    assert set(await who(alice, "bob*")) == {"bob", "bobby"}
    assert set(await who(alice, "?ob")) == {"bob", "rob"}
    assert set(await who(alice, "*!~rob@127.0.0.*")) == {"rob"}
    assert set(await who(alice, "nomatch*")) == set()


async def test_who_hides_invisible_users_unless_sharing_a_channel(
    server: RunningServer,
) -> None:
    alice = await server.client("alice")
    ghost = await server.client("ghost")
    await server.client("visible")
    await ask(ghost, "MODE ghost +i")
    assert set(await who(alice, "*")) == {"alice", "visible"}
    assert set(await who(ghost, "*")) == {"alice", "ghost", "visible"}
    await alice.join("#shared")
    await ghost.join("#shared")
    assert set(await who(alice, "*")) == {"alice", "ghost", "visible"}


async def test_who_exact_nick_finds_invisible_user(server: RunningServer) -> None:
    """Modern IRC: a mask pattern lists visible users; an exact nickname returns that user."""
    alice = await server.client("alice")
    ghost = await server.client("ghost")
    await ask(ghost, "MODE ghost +i")
    assert set(await who(alice, "GHOST")) == {"ghost"}
    assert set(await who(alice, "gho*")) == set()


async def test_who_channel_hides_invisible_from_outsiders(server: RunningServer) -> None:
    alice = await server.client("alice")
    ghost = await server.client("ghost")
    outsider = await server.client("outsider")
    await ask(ghost, "MODE ghost +i")
    await alice.join("#chan")
    await ghost.join("#chan")
    assert set(await who(outsider, "#chan")) == {"alice"}
    assert set(await who(alice, "#chan")) == {"alice", "ghost"}


async def test_who_secret_channel_from_outside(server: RunningServer) -> None:
    alice = await server.client("alice")
    outsider = await server.client("outsider")
    await alice.join("#secret")
    await ask(alice, "MODE #secret +s")
    assert await who(outsider, "#secret") == {}
    assert await who(outsider, "#nope") == {}


# ---------------------------------------------------------------------- WHOIS


async def test_whox_fields_in_fixed_order_with_token(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    for c in (alice, bob):
        await c.join("#chan")
    tokens = [t for m in await ask(alice, "VERSION") if m.command == "005" for t in m.params]
    assert "WHOX" in tokens
    # Asked in any order, answered as t c u i h s n f d l a o r; realname last.
    msgs = await ask(alice, "WHO #chan %rnatcfhuisdlo,42")
    assert [m.command for m in msgs] == ["354", "354", "315"]
    by_nick = {m.params[7]: m.params for m in msgs[:-1]}
    bob_fields = by_nick["bob"]
    assert bob_fields[:10] == ["alice", "42", "#chan", "~bob", "127.0.0.1", "127.0.0.1",
                               "test.server", "bob", "H", "0"]
    assert bob_fields[10].isdigit()  # idle seconds
    assert bob_fields[11:] == ["0", "n/a", "Real bob"]  # no account, no op level
    assert by_nick["alice"][8] == "H@"
    assert msgs[-1].params == ["alice", "#chan", "End of WHO list"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [("%n", ["bob"]), ("%tn", ["0", "bob"]), ("%nt,1234", ["0", "bob"]),
     ("%cn,7", ["*", "bob"]), ("o%n", [])],  # o: operators only
)
async def test_whox_by_nick(server: RunningServer, options: str, expected: list[str]) -> None:
    alice = await server.client("alice")
    await server.client("bob")
    msgs = await ask(alice, f"WHO bob {options}")
    assert [m.params[1:] for m in msgs if m.command == "354"] == ([expected] if expected else [])
    assert msgs[-1].command == "315"


async def test_whox_hides_cloaked_addresses_from_users(backend: str) -> None:
    # Cloaks are a product default the suite turns off: start with them on.
    config = suite_config(cloak_hosts=True, db="")
    server = start_server(config, backend, suite_defaults=False)
    try:
        alice = await server.client("alice")
        bob = await server.client("bob")
        msgs = await ask(alice, "WHO bob %ih")
        [(ip, host)] = [m.params[1:] for m in msgs if m.command == "354"]
        assert ip == "255.255.255.255" and host.endswith(".ip")
        msgs = await ask(bob, "WHO bob %ih")
        assert [m.params[1] for m in msgs if m.command == "354"] == ["127.0.0.1"]
    finally:
        for c in server.clients:
            await c.close()
        server.handle.stop()


async def test_whois(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#more")
    await bob.join("#more")
    await bob.join("#bobs")
    assert only(await ask(alice, "MODE #more +v bob"), "MODE")
    msgs = await ask(alice, "WHOIS bob")
    assert msgs[-1].command == "318"
    assert msgs[-1].params == ["alice", "bob", "End of /WHOIS list"]
    by = {m.command: m for m in msgs}
    assert by["311"].params == ["alice", "bob", "~bob", "127.0.0.1", "*", "Real bob"]
    assert by["319"].params[:2] == ["alice", "bob"]
    assert sorted(by["319"].params[2].split()) == ["+#more", "@#bobs"]
    assert by["312"].params == ["alice", "bob", "test.server", "TestNet"]
    assert by["317"].params[:2] == ["alice", "bob"]
    assert by["317"].params[2].isdigit() and by["317"].params[3].isdigit()
    assert "313" not in by and "301" not in by
    assert [m.command for m in msgs].index("311") == 0


async def test_whois_oper_and_away(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await oper(bob)
    await ask(bob, "AWAY :in a meeting")
    msgs = await ask(alice, "WHOIS BOB")
    by = {m.command: m for m in msgs}
    assert by["313"].params[:2] == ["alice", "bob"]
    assert by["301"].params == ["alice", "bob", "in a meeting"]
    assert "319" not in by  # on no channels
    assert msgs[-1].command == "318"


async def test_whois_hides_secret_channels(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await bob.join("#secret")
    await bob.join("#public")
    await ask(bob, "MODE #secret +s")
    msgs = await ask(alice, "WHOIS bob")
    assert only(msgs, "319")[0].params[2] == "@#public"
    msgs = await ask(bob, "WHOIS bob")
    assert sorted(only(msgs, "319")[0].params[2].split()) == ["@#public", "@#secret"]


async def test_whois_unknown_nick(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, "WHOIS nobody")
    assert [m.command for m in msgs] == ["401", "318"]
    assert msgs[0].params[:2] == ["alice", "nobody"]
    assert msgs[1].params[:2] == ["alice", "nobody"]


async def test_whois_needs_a_nick(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, "WHOIS")
    assert [m.command for m in msgs] == ["461"]
    # An empty nick is ERR_NONICKNAMEGIVEN, not a 401/318 with an empty parameter.
    msgs = await ask(alice, "WHOIS ,bob")
    assert [m.command for m in msgs] == ["431"]
    assert msgs[0].params == ["alice", "No nickname given"]


# ---------------------------------------------------------------------- WHOWAS


async def whowas(c: IRCTestClient, line: str) -> list[Message]:
    """The replies to one WHOWAS; checks the 369 that ends them."""
    msgs = await ask(c, line)
    assert msgs[-1].command == "369"
    return msgs


async def test_whowas_shows_who_quit_newest_first(server: RunningServer) -> None:
    bob = await server.client("bob")
    for _ in range(2):
        await quit_and_wait(await server.client("alice"))
    old = await server.client("carol")
    await ask(old, "NICK alice")  # a NICK gives the old one up too
    await ask(old, "NICK Alice")  # a case-only change keeps it: nothing new recorded
    await quit_and_wait(old)
    before = time.time()
    msgs = await whowas(bob, "WHOWAS ALICE")  # casemapped, as every nick lookup
    assert [m.command for m in msgs] == ["314", "312"] * 3 + ["369"]
    users = [m.params for m in only(msgs, "314")]
    # Newest first: carol's client quit as "Alice" last (its NICK gave up "carol").
    assert users[0] == ["bob", "Alice", "~carol", "127.0.0.1", "*", "Real carol"]
    assert users[1:3] == [["bob", "alice", "~alice", "127.0.0.1", "*", "Real alice"]] * 2
    servers = [m.params for m in only(msgs, "312")]
    assert {tuple(p[:3]) for p in servers} == {("bob", "Alice", "test.server"),
                                               ("bob", "alice", "test.server")}  # fmt: skip
    left = [calendar.timegm(time.strptime(p[3], "%a %b %d %H:%M:%S %Y")) for p in servers]
    assert all(before - 60 <= t <= time.time() + 1 for t in left)  # when they left, in UTC
    assert msgs[-1].params == ["bob", "ALICE", "End of WHOWAS"]
    carol = only(await whowas(bob, "WHOWAS carol"), "314")
    assert [m.params[1:4] for m in carol] == [["carol", "~carol", "127.0.0.1"]]


async def test_whowas_count_limits_the_entries(server: RunningServer) -> None:
    bob = await server.client("bob")
    for _ in range(3):
        await quit_and_wait(await server.client("alice"))
    for count, expected in (("1", 1), ("2", 2), ("9", 3), ("0", 3), ("-1", 3), ("x", 3)):
        msgs = await whowas(bob, f"WHOWAS alice {count}")
        assert len(only(msgs, "314")) == expected, count
    # A target server parameter is accepted and ignored: there is one server.
    assert len(only(await whowas(bob, "WHOWAS alice 2 test.server"), "314")) == 2


async def test_whowas_unknown_online_and_unregistered_nicks(server: RunningServer) -> None:
    bob = await server.client("bob")
    for nick in ("nobody", "bob"):  # never used, and in use but never given up
        msgs = await whowas(bob, f"WHOWAS {nick}")
        assert [m.command for m in msgs] == ["406", "369"]
        assert msgs[0].params == ["bob", nick, "There was no such nickname"]
        assert msgs[1].params == ["bob", nick, "End of WHOWAS"]
    half = await server.client()
    await half.send("NICK dave")  # never registers: not a user anyone could see
    await quit_and_wait(half)
    assert [m.command for m in await whowas(bob, "WHOWAS dave")] == ["406", "369"]
    # Garbage is echoed safely: a nick that cannot be a middle parameter becomes "*".
    msgs = await whowas(bob, "WHOWAS :a b")
    assert msgs[0].params == ["bob", "*", "There was no such nickname"]


async def test_whowas_needs_a_nick(server: RunningServer) -> None:
    bob = await server.client("bob")
    assert [m.command for m in await ask(bob, "WHOWAS")] == ["461"]
    msgs = await ask(bob, "WHOWAS ,alice")
    assert [m.command for m in msgs] == ["431"]
    assert msgs[0].params == ["bob", "No nickname given"]


@pytest.mark.parametrize("server_config", [suite_config(whowas_size=2)])
async def test_whowas_remembers_at_most_whowas_size(server: RunningServer) -> None:
    bob = await server.client("bob")
    for nick in ("n1", "n2", "n3"):
        await quit_and_wait(await server.client(nick))
    assert [m.command for m in await whowas(bob, "WHOWAS n1")] == ["406", "369"]
    for nick in ("n2", "n3"):
        assert len(only(await whowas(bob, f"WHOWAS {nick}"), "314")) == 1


# ---------------------------------------------------------------------- ISON / USERHOST


async def test_ison(server: RunningServer) -> None:
    alice = await server.client("alice")
    await server.client("Bob")
    msgs = await ask(alice, "ISON bob nobody ALICE")
    assert [m.command for m in msgs] == ["303"]
    assert msgs[0].params == ["alice", "Bob alice"]
    msgs = await ask(alice, "ISON :nobody bob")
    assert msgs[0].params == ["alice", "Bob"]
    msgs = await ask(alice, "ISON nobody")
    assert msgs[0].params == ["alice", ""]


async def test_userhost(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await oper(bob)
    await ask(bob, "AWAY :away")
    msgs = await ask(alice, "USERHOST alice nobody BOB")
    assert [m.command for m in msgs] == ["302"]
    assert msgs[0].params[0] == "alice"
    assert msgs[0].params[1].split() == ["alice=+~alice@127.0.0.1", "bob*=-~bob@127.0.0.1"]


async def test_userhost_needs_a_nick(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, "USERHOST")
    assert [m.command for m in msgs] == ["461"]
    assert msgs[0].params[:2] == ["alice", "USERHOST"]
