"""Services name accounts as registered (as WHOIS 330 and ACCOUNT do), not casefolded:
ChanServ INFO and ACCESS LIST, and 433 for an account's reserved nick. Real TCP."""

from __future__ import annotations

from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, chanserv_says, only, quit_and_wait

PASSWORD = "tr0ub4dor&3"


async def with_account(server: RunningServer, nick: str) -> IRCTestClient:
    c = await server.client(nick)
    msgs = await ask(c, f"REGISTER * * {PASSWORD}")
    assert [m.command for m in msgs] == ["REGISTER", "900"], msgs
    return c


async def test_chanserv_shows_accounts_as_registered(server: RunningServer) -> None:
    wendy = await with_account(server, "Wendy")
    ivan = await with_account(server, "Ivan")
    await wendy.join("#w")
    assert chanserv_says(await ask(wendy, "CS REGISTER #w")) == ["#w is registered to Wendy"]
    chanserv_says(await ask(wendy, "CS ACCESS #w ADD ivan"))
    info = chanserv_says(await ask(ivan, "CS INFO #w"))
    assert len(info) == 1 and info[0].startswith("#w is registered to Wendy since ")
    assert chanserv_says(await ask(wendy, "CS ACCESS #w LIST")) == [
        "#w: founder Wendy; operators:", "Ivan"]
    # Nobody logged in to either any more: the store has the spelling.
    await quit_and_wait(ivan)
    await quit_and_wait(wendy)
    other = await server.client("other")
    info = chanserv_says(await ask(other, "CS INFO #w"))
    assert len(info) == 1 and info[0].startswith("#w is registered to Wendy since ")


async def test_reserved_nick_names_the_account_as_registered(server: RunningServer) -> None:
    sam = await with_account(server, "sam")
    await ask(sam, "NICK sam_away")
    other = await server.client("other")
    text = only(await ask(other, "NICK SAM"), "433")[0].params[-1]
    assert text == ("Nickname is reserved for the account sam: log in to it first (SASL, or "
                    "/msg NickServ IDENTIFY sam <password>)")
    await quit_and_wait(sam)
    # Its spelling is not known here without a session: no spelling is claimed.
    text = only(await ask(other, "NICK SAM"), "433")[0].params[-1]
    assert text == ("Nickname is reserved for an account: log in to it first (SASL, or "
                    "/msg NickServ IDENTIFY SAM <password>)")
