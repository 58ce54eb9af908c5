"""Connection registration over real TCP: CAP, PASS, NICK, USER, the welcome burst."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chat.message import Message
from server import VERSION
from server.config import ServerConfig
from server.core.caps import available
from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient

SERVER = "test.server"
HOST = "127.0.0.1"
MOTD = ("Welcome to the test network", "Be nice")

# History is off here (db=""): join playback is another module's subject, and its
# replies would interleave with what these tests read. HISTORY_CONFIG keeps the
# default db, which the conftest points at a temporary file.
BASE_CONFIG = ServerConfig(name=SERVER, network="TestNet", motd_lines=MOTD, db="")
PASSWORD_CONFIG = replace(BASE_CONFIG, password="secret")
NO_MOTD_CONFIG = replace(BASE_CONFIG, motd_lines=None)
HISTORY_CONFIG = replace(BASE_CONFIG, db=ServerConfig().db)
BOTH_HISTORY_MODES = pytest.mark.parametrize(
    "server_config", [BASE_CONFIG, HISTORY_CONFIG], ids=["no-history", "history"]
)


@pytest.fixture
def server_config() -> ServerConfig:
    return BASE_CONFIG


def history_on(server: RunningServer) -> bool:
    return bool(server.config.db)


def mask(nick: str, user: str | None = None) -> str:
    return f"{nick}!~{user or nick}@{HOST}"


def numeric(code: str, *params: str) -> Message:
    return Message(code, list(params), SERVER)


def commands(messages: list[Message]) -> list[str]:
    return [m.command for m in messages]


async def raw_register(c: IRCTestClient, nick: str, *, user_first: bool = False) -> list[Message]:
    nick_line, user_line = f"NICK {nick}", f"USER {nick} 0 * :Real {nick}"
    for line in (user_line, nick_line) if user_first else (nick_line, user_line):
        await c.send(line)
    burst = await c.collect_until("376", "422")
    c.nick = nick
    return burst


# ---------------------------------------------------------------------- the welcome burst


BURST = [
    "001", "002", "003", "004", "005", "005", "005",
    "251", "252", "253", "254", "255", "265", "266",
    "375", "372", "372", "376",
]  # fmt: skip


@pytest.mark.parametrize("user_first", [False, True], ids=["nick-user", "user-nick"])
async def test_welcome_burst_in_either_order(server: RunningServer, user_first: bool) -> None:
    c = await server.client()
    burst = await raw_register(c, "alice", user_first=user_first)
    assert commands(burst) == BURST
    assert all(m.source == SERVER and m.params[0] == "alice" for m in burst)
    assert burst[0] == numeric(
        "001", "alice", f"Welcome to the TestNet IRC Network {mask('alice')}"
    )
    assert burst[1] == numeric("002", "alice", f"Your host is {SERVER}, running version {VERSION}")
    assert burst[2].params[1].startswith("This server was created ")
    modes = ("BRgiosw", "CIbceiklmnoqrstv", "Ibekloqv")  # user, channel, channel with a parameter
    assert burst[3] == numeric("004", "alice", SERVER, VERSION, *modes)
    # The connection is usable afterwards and nothing else is pending.
    assert await c.sync() == []


@BOTH_HISTORY_MODES
async def test_isupport_tokens(server: RunningServer) -> None:
    c = await server.client()
    burst = await raw_register(c, "alice")
    lines = [m for m in burst if m.command == "005"]
    assert all(m.params[-1] == "are supported by this server" for m in lines)
    assert all(len(m.params) <= 15 for m in lines)  # at most 13 tokens per line
    tokens: dict[str, str | None] = {}
    for m in lines:
        for token in m.params[1:-1]:
            key, sep, value = token.partition("=")
            tokens[key] = value if sep else None
    cfg = server.config
    assert tokens["CASEMAPPING"] == "rfc1459"
    assert tokens["CHANTYPES"] == "#&"
    assert tokens["CHANMODES"] == "beIq,k,l,Ccimnrst"
    assert tokens["PREFIX"] == "(ov)@+"
    assert tokens["NICKLEN"] == str(cfg.nicklen)
    assert tokens["CHANNELLEN"] == str(cfg.channellen)
    assert tokens["TOPICLEN"] == str(cfg.topiclen)
    assert tokens["NETWORK"] == "TestNet"
    assert tokens["STATUSMSG"] == "@+"
    assert tokens["CALLERID"] == "g"
    assert tokens["ACCEPT"] == str(cfg.accept_limit)
    assert "UTF8ONLY" in tokens and tokens["UTF8ONLY"] is None
    if history_on(server):
        assert tokens["CHATHISTORY"] == str(cfg.chathistory_limit)
        assert tokens["MSGREFTYPES"] == "timestamp,msgid"
    else:
        assert "CHATHISTORY" not in tokens and "MSGREFTYPES" not in tokens


async def test_lusers_counts(server: RunningServer) -> None:
    await server.client("first")
    await server.client()  # connected, never registers: one unknown connection
    c = await server.client()
    await c.sync()  # make sure this one is known to the server before it registers
    burst = await raw_register(c, "second")
    lusers = {m.command: m for m in burst if m.command in ("251", "252", "253", "254", "255")}
    lusers |= {m.command: m for m in burst if m.command in ("265", "266")}
    assert lusers["251"] == numeric(
        "251", "second", "There are 2 users and 0 invisible on 1 servers"
    )
    assert lusers["252"] == numeric("252", "second", "0", "operator(s) online")
    assert lusers["253"] == numeric("253", "second", "1", "unknown connection(s)")
    assert lusers["254"] == numeric("254", "second", "0", "channels formed")
    assert lusers["255"] == numeric("255", "second", "I have 2 clients and 0 servers")
    assert lusers["265"] == numeric("265", "second", "2", "2", "Current local users 2, max 2")
    assert lusers["266"] == numeric("266", "second", "2", "2", "Current global users 2, max 2")


async def test_lusers_command_counts_channels(server: RunningServer) -> None:
    c = await server.client("alice")
    await c.join("#one")
    await c.join("#two")
    await c.send("LUSERS")
    replies = await c.collect_until("266")
    assert commands(replies) == ["251", "252", "253", "254", "255", "265", "266"]
    assert replies[3] == numeric("254", "alice", "2", "channels formed")


async def test_motd_from_config(server: RunningServer) -> None:
    c = await server.client()
    burst = await raw_register(c, "alice")
    motd = burst[-4:]
    assert motd == [
        numeric("375", "alice", f"- {SERVER} Message of the day - "),
        numeric("372", "alice", f"- {MOTD[0]}"),
        numeric("372", "alice", f"- {MOTD[1]}"),
        numeric("376", "alice", "End of /MOTD command."),
    ]
    await c.send("MOTD")
    assert await c.collect_until("376") == motd


@pytest.mark.parametrize("server_config", [NO_MOTD_CONFIG], ids=["no-motd"])
async def test_no_motd_gives_422(server: RunningServer) -> None:
    c = await server.client()
    burst = await raw_register(c, "alice")
    assert burst[-1] == numeric("422", "alice", "MOTD File is missing")
    assert "375" not in commands(burst) and "372" not in commands(burst)


# ---------------------------------------------------------------------- CAP negotiation


async def test_cap_ls_302_holds_registration_until_cap_end(server: RunningServer) -> None:
    c = await server.client()
    await c.send("CAP LS 302")
    await c.send("NICK alice")
    await c.send("USER alice 0 * :Alice")
    pending = await c.sync()
    assert commands(pending) == ["CAP"]
    assert pending[0].params[:2] == ["*", "LS"]
    await c.send("CAP END")
    burst = await c.collect_until("376", "422")
    assert burst[0].command == "001" and burst[0].params[0] == "alice"


async def test_cap_req_alone_also_holds_registration(server: RunningServer) -> None:
    c = await server.client()
    await c.send("CAP REQ :server-time")
    await c.send("NICK alice")
    await c.send("USER alice 0 * :Alice")
    pending = await c.sync()
    assert pending == [Message("CAP", ["*", "ACK", "server-time"], SERVER)]
    await c.send("CAP END")
    assert (await c.collect_until("376", "422"))[0].command == "001"


def offered(server: RunningServer) -> dict[str, str]:
    """The caps (name -> value) the server's configuration offers."""
    cfg = server.config
    return available(history_on(server), cfg.allow_register,
                     (cfg.multiline_max_bytes, cfg.multiline_max_lines))


@BOTH_HISTORY_MODES
async def test_cap_ls_302_lists_every_cap_with_values(server: RunningServer) -> None:
    c = await server.client()
    await c.send("CAP LS 302")
    # Lines marked '*' continue: the last one has no marker.
    lines = [await c.expect("CAP")]
    while len(lines[-1].params) == 4:
        assert lines[-1].params[2] == "*"
        lines.append(await c.expect("CAP"))
    for line in lines:
        assert line.source == SERVER
        assert line.params[:2] == ["*", "LS"]
        assert len(line.params) in (3, 4)
        assert len(line.to_line().encode()) <= 510
    tokens = [token for line in lines for token in line.params[-1].split()]
    caps = offered(server)
    expected = {f"{k}={v}" if v else k for k, v in caps.items()}
    assert sorted(tokens) == sorted(expected)  # each once
    assert ("draft/chathistory" in caps) == history_on(server)
    for cap in (
        "server-time", "message-tags", "echo-message", "labeled-response", "batch",
        "away-notify", "userhost-in-names", "multi-prefix", "setname", "cap-notify",
    ):  # fmt: skip
        assert cap in {token.partition("=")[0] for token in tokens}


@BOTH_HISTORY_MODES
async def test_cap_ls_without_version_has_no_values(server: RunningServer) -> None:
    c = await server.client()
    await c.send("CAP LS")
    reply = await c.expect("CAP")
    assert reply.params[:2] == ["*", "LS"]
    assert set(reply.params[2].split()) == set(offered(server))
    # Plain CAP LS does not enable cap-notify.
    await c.send("CAP LIST")
    assert await c.expect("CAP") == Message("CAP", ["*", "LIST", ""], SERVER)


async def test_cap_ls_302_implies_cap_notify(server: RunningServer) -> None:
    c = await server.client()
    await c.send("CAP LS 302")
    await c.expect("CAP")
    await c.send("CAP LIST")
    assert await c.expect("CAP") == Message("CAP", ["*", "LIST", "cap-notify"], SERVER)


async def test_cap_req_ack_and_list(server: RunningServer) -> None:
    c = await server.client()
    await c.send("CAP LS 302")
    await c.send("CAP REQ :server-time message-tags")
    ack = await c.expect("CAP", lambda m: m.params[1] != "LS")
    assert ack == Message("CAP", ["*", "ACK", "server-time message-tags"], SERVER)
    await c.send("CAP LIST")
    listed = await c.expect("CAP")
    assert listed.params[:2] == ["*", "LIST"]
    assert sorted(listed.params[2].split()) == ["cap-notify", "message-tags", "server-time"]


async def test_cap_req_with_unknown_cap_naks_whole_request(server: RunningServer) -> None:
    c = await server.client()
    await c.send("CAP REQ :server-time bogus-cap echo-message")
    nak = await c.expect("CAP")
    assert nak == Message("CAP", ["*", "NAK", "server-time bogus-cap echo-message"], SERVER)
    await c.send("CAP LIST")
    assert await c.expect("CAP") == Message("CAP", ["*", "LIST", ""], SERVER)
    await c.send("CAP END")
    await raw_register(c, "alice")
    # Nothing from the NAKed request was applied: no echo, no time tag.
    await c.join("#chan")
    await c.send("PRIVMSG #chan :hello")
    assert await c.sync() == []


async def test_cap_req_minus_removes_cap(server: RunningServer) -> None:
    c = await server.client("alice", caps=["server-time", "echo-message"])
    await c.send("CAP REQ :-server-time")
    assert await c.expect("CAP") == Message("CAP", ["alice", "ACK", "-server-time"], SERVER)
    await c.send("CAP LIST")
    listed = await c.expect("CAP")
    assert sorted(listed.params[2].split()) == ["cap-notify", "echo-message"]
    await c.join("#chan")
    await c.send("PRIVMSG #chan :hello")
    echo = await c.expect("PRIVMSG")
    assert echo.tags == {}


async def test_cap_req_after_registration_applies(server: RunningServer) -> None:
    c = await server.client("alice")
    await c.send("CAP REQ :echo-message")
    assert await c.expect("CAP") == Message("CAP", ["alice", "ACK", "echo-message"], SERVER)
    await c.join("#chan")
    await c.send("PRIVMSG #chan :hello")
    echo = await c.expect("PRIVMSG")
    assert echo == Message("PRIVMSG", ["#chan", "hello"], mask("alice"))


async def test_cap_unknown_subcommand_gives_410(server: RunningServer) -> None:
    c = await server.client()
    await c.send("CAP FROB")
    assert await c.expect("410") == numeric("410", "*", "FROB", "Invalid CAP command")


# ---------------------------------------------------------------------- PASS


@pytest.mark.parametrize("server_config", [PASSWORD_CONFIG], ids=["password"])
async def test_correct_password_registers(server: RunningServer) -> None:
    c = await server.client()
    await c.send("PASS secret")
    burst = await raw_register(c, "alice")
    assert burst[0].command == "001"


@pytest.mark.parametrize("server_config", [PASSWORD_CONFIG], ids=["password"])
@pytest.mark.parametrize("password", ["wrong", "Secret", None], ids=["wrong", "case", "missing"])
async def test_bad_or_missing_password_is_rejected(
    server: RunningServer, password: str | None
) -> None:
    c = await server.client()
    if password is not None:
        await c.send(f"PASS {password}")
    await c.send("NICK alice")
    await c.send("USER alice 0 * :Alice")
    before_close = await c.wait_closed()
    assert before_close == [
        numeric("464", "alice", "Password incorrect"),
        Message("ERROR", [f"Closing Link: {HOST} (Bad password)"]),
    ]
    # The rejected nick was released.
    d = await server.client()
    await d.send("PASS secret")
    assert (await raw_register(d, "alice"))[0].command == "001"


@pytest.mark.parametrize("server_config", [PASSWORD_CONFIG], ids=["password"])
async def test_pass_after_registration_gives_462(server: RunningServer) -> None:
    c = await server.client()
    await c.send("PASS secret")
    await raw_register(c, "alice")
    await c.send("PASS secret")
    assert await c.expect("462") == numeric("462", "alice", "You may not reregister")


async def test_pass_without_param_gives_461(server: RunningServer) -> None:
    c = await server.client()
    await c.send("PASS")
    assert await c.expect("461") == numeric("461", "*", "PASS", "Not enough parameters")


# ---------------------------------------------------------------------- USER


async def test_user_twice_gives_462(server: RunningServer) -> None:
    c = await server.client()
    await c.send("USER alice 0 * :Alice")
    await c.send("USER other 0 * :Other")
    assert await c.expect("462") == numeric("462", "*", "You may not reregister")
    burst = await raw_register(c, "alice")
    assert burst[0].params[1].endswith(mask("alice"))  # the first USER counted


async def test_user_after_registration_gives_462(server: RunningServer) -> None:
    c = await server.client("alice")
    await c.send("USER again 0 * :Again")
    assert await c.expect("462") == numeric("462", "alice", "You may not reregister")


@pytest.mark.parametrize(
    "line", ["USER", "USER a", "USER a 0", "USER a 0 *", "USER a 0 * :", "USER : 0 * :R"]
)  # an empty realname or username is a missing one (modern-irc issue 85)
async def test_user_with_too_few_params_gives_461(server: RunningServer, line: str) -> None:
    c = await server.client()
    await c.send(line)
    assert await c.expect("461") == numeric("461", "*", "USER", "Not enough parameters")
    # Still unregistered and able to register properly.
    assert (await raw_register(c, "alice"))[0].command == "001"


async def test_username_is_marked_and_truncated(server: RunningServer) -> None:
    c = await server.client()
    await c.send("NICK alice")
    await c.send("USER averyveryverylongusername 0 * :Alice Liddell")
    burst = await c.collect_until("376", "422")
    room = server.config.userlen - 1  # the '~' counts within USERLEN
    assert burst[0].params[1].endswith(f"alice!~{'averyveryverylongusername'[:room]}@{HOST}")


# ---------------------------------------------------------------------- before registration


@pytest.mark.parametrize(
    "line", ["JOIN #chan", "PRIVMSG alice :hi", "WHOIS alice", "MODE alice", "FROBNICATE"]
)
async def test_commands_before_registration_give_451(server: RunningServer, line: str) -> None:
    c = await server.client()
    await c.send(line)
    assert await c.expect("451") == numeric("451", "*", "You have not registered")
    # PING is allowed before registration.
    assert await c.sync() == []


async def test_privmsg_before_registration_is_not_delivered(server: RunningServer) -> None:
    alice = await server.client("alice")
    c = await server.client()
    await c.send("PRIVMSG alice :sneaky")
    await c.expect("451")
    assert await alice.sync() == []


async def test_unknown_command_after_registration_gives_421(server: RunningServer) -> None:
    c = await server.client("alice")
    await c.send("FROBNICATE a b :c")
    assert await c.expect("421") == numeric("421", "alice", "FROBNICATE", "Unknown command")


# ---------------------------------------------------------------------- NICK


@pytest.mark.parametrize("line", ["NICK", "NICK :"])
async def test_nick_without_nick_gives_431(server: RunningServer, line: str) -> None:
    c = await server.client()
    await c.send(line)
    assert await c.expect("431") == numeric("431", "*", "No nickname given")


@pytest.mark.parametrize(
    "bad",
    [
        "1alice",
        "-alice",
        "#alice",
        "a" * 31,
        "ali,ce",
        "ali!ce",
        "ali@ce",
        "ali.ce",
        "ali ce",
        ":x",
    ],
)
async def test_erroneous_nick_gives_432(server: RunningServer, bad: str) -> None:
    # A nick that cannot be a middle parameter (space, leading ':') is echoed as '*'.
    shown = "*" if " " in bad or bad.startswith(":") else bad
    c = await server.client()
    await c.send(f"NICK :{bad}")
    assert await c.expect("432") == numeric("432", "*", shown, "Erroneous nickname")
    # A registered client keeps its nick on a bad change.
    d = await server.client("dave")
    await d.send(f"NICK :{bad}")
    assert await d.expect("432") == numeric("432", "dave", shown, "Erroneous nickname")
    await d.send("WHOIS dave")
    assert (await d.expect("311")).params[1] == "dave"


async def test_nick_at_nicklen_is_accepted(server: RunningServer) -> None:
    nick = "a" + "b" * (server.config.nicklen - 1)
    c = await server.client()
    burst = await raw_register(c, nick)
    assert burst[0].params[0] == nick


@pytest.mark.parametrize(
    ("taken", "wanted"),
    [("alice", "alice"), ("alice", "ALICE"), ("Nick[]", "nick{}"), ("a|b\\c", "A\\B|C")],
)
async def test_nick_in_use_gives_433(server: RunningServer, taken: str, wanted: str) -> None:
    await server.client(taken)
    c = await server.client()
    await c.send(f"NICK {wanted}")
    assert await c.expect("433") == numeric("433", "*", wanted, "Nickname is already in use")
    # Registered clients get the same answer and keep their nick.
    d = await server.client("dave")
    await d.send(f"NICK {wanted}")
    assert await d.expect("433") == numeric("433", "dave", wanted, "Nickname is already in use")


async def test_nick_reserved_by_unregistered_client(server: RunningServer) -> None:
    a = await server.client()
    await a.send("NICK alice")
    await a.sync()
    b = await server.client()
    await b.send("NICK ALICE")
    assert await b.expect("433") == numeric("433", "*", "ALICE", "Nickname is already in use")


async def test_nick_freed_after_quit(server: RunningServer) -> None:
    a = await server.client("alice")
    await a.send("QUIT :bye")
    await a.wait_closed()
    b = await server.client()
    assert (await raw_register(b, "Alice"))[0].params[0] == "Alice"


async def test_nick_change_before_registration(server: RunningServer) -> None:
    c = await server.client()
    await c.send("NICK first")
    await c.send("NICK second")
    burst = await raw_register(c, "third")
    assert burst[0].params[0] == "third"
    # Earlier reservations were dropped.
    d = await server.client()
    assert (await raw_register(d, "first"))[0].params[0] == "first"


async def test_nick_change_broadcast_once_to_peers_and_self(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    carol = await server.client("carol")  # shares no channel with alice
    for channel in ("#one", "#two"):
        await alice.join(channel)
        await bob.join(channel)
    await alice.sync()
    await alice.send("NICK alicia")
    expected = Message("NICK", ["alicia"], mask("alice"))
    assert await alice.expect("NICK") == expected
    assert await alice.sync() == []
    assert await bob.sync() == [expected]  # exactly once, though two channels are shared
    assert await carol.sync() == []
    # The new nick is in use, the old one is free.
    d = await server.client()
    await d.send("NICK alicia")
    assert (await d.expect("433")).params[1] == "alicia"
    assert (await raw_register(d, "alice"))[0].params[0] == "alice"


async def test_nick_change_to_other_case_of_own_nick(server: RunningServer) -> None:
    alice = await server.client("alice")
    await alice.send("NICK ALICE")
    assert await alice.expect("NICK") == Message("NICK", ["ALICE"], mask("alice"))
    await alice.send("WHOIS alice")
    whois = await alice.expect("311")
    assert whois.params[1] == "ALICE"
    other = await server.client()
    await other.send("NICK alice")
    assert (await other.expect("433")).params[1] == "alice"


async def test_nick_change_to_same_nick_is_silent(server: RunningServer) -> None:
    alice = await server.client("alice")
    bob = await server.client("bob")
    await alice.join("#chan")
    await bob.join("#chan")
    await alice.sync()
    await alice.send("NICK alice")
    assert await alice.sync() == []
    assert await bob.sync() == []


@pytest.mark.parametrize("line", ["USER", "PASS", "USER u", "PASS x", "USER u 0 * :real"])
async def test_user_or_pass_after_registration_is_462_whatever_the_params(
    server: RunningServer, line: str
) -> None:
    c = await server.client("regdone")
    await c.send(line)
    reply = await c.expect("462")
    assert reply.params == ["regdone", "You may not reregister"]


async def test_a_cap_req_is_bounded_only_by_its_ack_fitting_a_line(server: RunningServer) -> None:
    """Every cap offered at once already takes ~400 bytes: a longer request is granted
    while its ACK (which echoes it whole) fits one line, refused beyond."""
    c = await IRCTestClient.open(server.port)
    await c.send("CAP LS 302")
    offered: list[str] = []
    while True:
        ls = await c.expect("CAP")
        offered += [t.partition("=")[0] for t in ls.params[-1].split()]
        if ls.params[2] != "*":
            break
    room = 512 - len(f":{SERVER} CAP * ACK :\r\n".encode())
    request = " ".join(cap for cap in offered if cap != "sts")
    while len((request + " server-time").encode()) <= room:
        request += " server-time"
    assert 400 < len(request.encode()) <= room
    await c.send(f"CAP REQ :{request}")
    assert (await c.expect("CAP")).params[1:] == ["ACK", request]
    longer = request + " server-time"  # still a legal line to send, but no ACK fits
    assert len(f"CAP REQ :{longer}\r\n".encode()) <= 512
    await c.send(f"CAP REQ :{longer}")
    assert (await c.expect("CAP")).params[1] == "NAK"
    await c.close()
