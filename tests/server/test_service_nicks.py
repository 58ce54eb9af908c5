"""The built-in services as pseudo-clients (WHOIS, WHO, ISON, USERHOST, MONITOR), their
reserved nicks, over real TCP on every backend."""

from __future__ import annotations

from tests.conftest import RunningServer
from tests.server.helpers import ask, nickserv_says, only


async def test_whois_shows_a_network_service(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, "WHOIS nickserv")
    assert [m.command for m in msgs] == ["311", "312", "313", "318"]
    assert msgs[0].params == ["alice", "NickServ", "NickServ", "test.server", "*",
                              "Nickname Services"]
    assert msgs[1].params[:3] == ["alice", "NickServ", "test.server"]
    assert msgs[2].params == ["alice", "NickServ", "is a Network Service"]
    assert msgs[3].params == ["alice", "NickServ", "End of /WHOIS list"]
    msgs = await ask(alice, "WHOIS ChanServ ChanServ")  # the remote form: the same answer
    assert [m.params[1:3] for m in only(msgs, "311")] == [["ChanServ", "ChanServ"]]


async def test_whowas_knows_no_service(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, "WHOWAS NickServ")
    assert [m.command for m in msgs] == ["406", "369"]


async def test_ison_and_userhost_see_services_online(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, "ISON nickserv CHANSERV nobody MemoServ")
    assert msgs[0].params == ["alice", "NickServ ChanServ MemoServ"]
    msgs = await ask(alice, "USERHOST NickServ nobody alice")
    assert msgs[0].params[1].split() == [
        "NickServ=+NickServ@test.server", "alice=+~alice@127.0.0.1"
    ]


async def test_who_and_whox_list_a_service(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, "WHO NickServ")
    assert [m.command for m in msgs] == ["352", "315"]
    assert msgs[0].params == ["alice", "*", "NickServ", "test.server", "test.server",
                              "NickServ", "H", "0 Nickname Services"]
    msgs = await ask(alice, "WHO memoserv %tcuihsnfdlaor,7")
    assert [m.command for m in msgs] == ["354", "315"]
    assert msgs[0].params == ["alice", "7", "*", "MemoServ", "255.255.255.255",
                              "test.server", "test.server", "MemoServ", "H", "0", "0", "0",
                              "n/a", "Memo Services"]
    # Not an IRC operator: WHO's "o" filter leaves it out.
    assert [m.command for m in await ask(alice, "WHO NickServ o")] == ["315"]


async def test_who_with_a_pattern_lists_the_services_it_matches(server: RunningServer) -> None:
    alice = await server.client("alice")
    await server.client("servbot")
    msgs = await ask(alice, "WHO *Serv*")
    assert sorted(m.params[5] for m in only(msgs, "352")) == [
        "ChanServ", "MemoServ", "NickServ", "servbot"]  # fmt: skip
    msgs = await ask(alice, "WHO *!*@test.server")  # their mask
    assert sorted(m.params[5] for m in only(msgs, "352")) == ["ChanServ", "MemoServ", "NickServ"]
    # "Everyone" lists users, as it did; the "o" filter never lists a service.
    assert [m.params[5] for m in only(await ask(alice, "WHO *"), "352")] == ["alice", "servbot"]
    assert only(await ask(alice, "WHO *Serv* o"), "352") == []


async def test_monitor_sees_services_online(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, "MONITOR + NickServ,nobody,chanserv")
    assert [m.params[-1] for m in only(msgs, "730")] == [
        "NickServ!NickServ@test.server,ChanServ!ChanServ@test.server"
    ]
    assert [m.params[-1] for m in only(msgs, "731")] == ["nobody"]
    msgs = await ask(alice, "MONITOR S")
    assert [m.params[-1] for m in only(msgs, "730")] == [
        "NickServ!NickServ@test.server,ChanServ!ChanServ@test.server"
    ]


async def test_monitor_keeps_one_entry_per_casemapped_nick(server: RunningServer) -> None:
    alice = await server.client("alice")
    await server.client("mnbo")
    msgs = await ask(alice, "MONITOR + mnbo,nosucho,MNBo,NOSUCHO")
    assert [m.params[-1] for m in only(msgs, "730")] == ["mnbo!~mnbo@127.0.0.1"]
    assert [m.params[-1] for m in only(msgs, "731")] == ["nosucho"]
    msgs = await ask(alice, "MONITOR + MNBO")  # already there: told again, not listed twice
    assert [m.params[-1] for m in only(msgs, "730")] == ["mnbo!~mnbo@127.0.0.1"]
    assert [m.params[-1] for m in only(await ask(alice, "MONITOR L"), "732")] == [
        "mnbo,nosucho"
    ]


async def test_usual_service_nicks_are_reserved_in_any_case(server: RunningServer) -> None:
    early = await server.client()
    await early.send("NICK OperServ")
    assert (await early.expect("433")).params == [
        "*", "OperServ", "Nickname is reserved for services"
    ]
    alice = await server.client("alice")
    for nick in ("hostserv", "BOTSERV", "Global", "SaslServ", "StatServ", "ChanFix", "ALIS"):
        msgs = await ask(alice, f"NICK {nick}")
        assert [m.params for m in only(msgs, "433")] == [
            ["alice", nick, "Nickname is reserved for services"]
        ]
    msgs = await ask(alice, "REGISTER operserv * long-enough-password")
    assert [(m.command, m.params[1:]) for m in msgs] == [
        ("FAIL", ["BAD_ACCOUNT_NAME", "operserv", "That name is reserved for services"])
    ]


async def test_services_answer_at_their_server_name(server: RunningServer) -> None:
    alice = await server.client("alice")
    for target in ("NickServ@test.server", "nickserv@TEST.SERVER"):
        assert nickserv_says(await ask(alice, f"PRIVMSG {target} :FROB me")) == [
            "Unknown command FROB: /msg NickServ HELP"
        ]
    # Another server's NickServ is not ours: the password goes nowhere.
    msgs = await ask(alice, "PRIVMSG NickServ@elsewhere.example :IDENTIFY secret")
    assert [m.params[1:] for m in only(msgs, "401")] == [
        ["NickServ@elsewhere.example", "No such nick/channel"]
    ]
    # Reserved but not run here: nobody holds the nick.
    msgs = await ask(alice, "PRIVMSG OperServ :HELP")
    assert [m.params[1:] for m in only(msgs, "401")] == [["OperServ", "No such nick/channel"]]


async def test_a_ctcp_to_a_service_is_answered_or_ignored_never_a_command(
    server: RunningServer,
) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, "PRIVMSG NickServ :\x01PING 12345\x01")
    assert [(m.source, m.params) for m in msgs] == [
        ("NickServ!NickServ@test.server", ["alice", "\x01PING 12345\x01"])
    ]
    msgs = await ask(alice, "PRIVMSG ChanServ :\x01VERSION\x01")
    assert [m.params[1].startswith("\x01VERSION ") for m in msgs] == [True]
    assert await ask(alice, "PRIVMSG MemoServ :\x01CLIENTINFO\x01") == []
