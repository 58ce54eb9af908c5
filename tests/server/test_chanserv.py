"""ChanServ over real TCP on every backend: registering a channel, what it keeps when it
empties and across a restart (the real SQLite file), who gets +o, the access list,
and dropping it."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import RunningServer, serving, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import ask, chanserv_says, only, quit_and_wait

PASSWORD = "tr0ub4dor&3"
CHANSERV = "ChanServ!ChanServ@test.server"


async def with_account(server: RunningServer, nick: str) -> IRCTestClient:
    c = await server.client(nick)
    msgs = await ask(c, f"REGISTER * * {PASSWORD}")
    assert [m.command for m in msgs] == ["REGISTER", "900"], msgs
    return c


async def registered_channel(server: RunningServer, founder: str, channel: str) -> IRCTestClient:
    c = await with_account(server, founder)
    await c.join(channel)
    msgs = await ask(c, f"PRIVMSG ChanServ :REGISTER {channel}")
    assert chanserv_says(msgs) == [f"{channel} is registered to {founder}"]
    return c


async def leave(*clients: IRCTestClient) -> None:
    for c in clients:
        await quit_and_wait(c)


async def test_register_needs_an_account_and_ops(server: RunningServer) -> None:
    anon = await server.client("anon")
    await anon.join("#cs1")
    assert chanserv_says(await ask(anon, "CS REGISTER #cs1")) == [
        "You must be logged in to an account to register a channel"]
    member = await with_account(server, "member")
    await member.join("#cs1")
    assert chanserv_says(await ask(member, "CS REGISTER #cs1")) == [
        "You must be an operator of #cs1 to register it"]
    assert chanserv_says(await ask(member, "CS REGISTER #nowhere")) == [
        "You must be an operator of #nowhere to register it"]
    assert chanserv_says(await ask(member, "CS REGISTER")) == ["Syntax: REGISTER <#channel>"]
    assert chanserv_says(await ask(member, "CHANSERV FROB #cs1")) == [
        "Unknown command FROB: /msg ChanServ HELP"]
    help_lines = chanserv_says(await ask(member, "PRIVMSG ChanServ :help"))
    assert any(line.startswith("REGISTER <#channel>") for line in help_lines)
    # Nobody can be ChanServ.
    assert only(await ask(member, "NICK ChanServ"), "433")
    owner = await registered_channel(server, "owner", "#cs2")
    assert chanserv_says(await ask(owner, "CS REGISTER #CS2")) == ["#cs2 is registered already"]
    info = chanserv_says(await ask(anon, "CS INFO #Cs2"))
    assert len(info) == 1 and info[0].startswith("#cs2 is registered to owner since ")
    assert chanserv_says(await ask(anon, "CS INFO #cs1")) == ["#cs1 is not registered"]


async def test_a_registered_channel_keeps_its_topic_modes_and_bans(
    server: RunningServer,
) -> None:
    founder = await registered_channel(server, "fiona", "#keep")
    await ask(founder, "TOPIC #keep :kept across empties")
    await ask(founder, "MODE #keep +m")
    await ask(founder, "MODE #keep +b spammer!*@*")
    await leave(founder)
    # Empty now, so gone as IRC channels go; made anew, it has what it had.
    bob = await server.client("bob")
    joined = await bob.join("#keep")
    assert only(joined, "332")[0].params[-1] == "kept across empties"
    names = only(joined, "353")[0].params[-1].split()
    assert names == ["bob"]  # not an op: bob is not on the access list
    modes = only(await ask(bob, "MODE #keep"), "324")[0].params[2]
    assert "m" in modes and "n" in modes and "t" in modes
    bans = await ask(bob, "MODE #keep +b")
    assert [m.params[2] for m in only(bans, "367")] == ["spammer!*@*"]
    # The kept ban keeps its target out, even as the first to join.
    await leave(bob)
    spammer = await server.client("spammer")
    assert only(await ask(spammer, "JOIN #keep"), "474")
    # bob's topic change would be kept too, but without +o under +t he may not.
    bob2 = await server.client("bob2")
    await bob2.join("#keep")
    assert only(await ask(bob2, "TOPIC #keep :mine now"), "482")


async def test_the_founder_gets_op_from_chanserv_and_passes_key_and_invite_only(
    server: RunningServer,
) -> None:
    founder = await registered_channel(server, "gail", "#door")
    await ask(founder, "MODE #door +ik secret")
    guest = await server.client("guest")
    await founder.send("INVITE guest #door")
    await guest.expect("INVITE")
    await guest.send("JOIN #door secret")
    await guest.collect_until("366")
    await ask(founder, "PART #door")
    # The founder comes back without key or invitation, and ChanServ ops her.
    joined = await ask(founder, "JOIN #door")
    assert only(joined, "474") == only(joined, "473") == only(joined, "475") == []
    mode = await guest.expect("MODE")
    assert mode.source == CHANSERV and mode.params == ["#door", "+o", "gail"]
    assert only(await ask(founder, "TOPIC #door :set by the founder"), "TOPIC")
    # DEOP and OP through ChanServ.
    msgs = await ask(founder, "CS DEOP #door")
    assert [(m.source, m.params) for m in only(msgs, "MODE")] == [
        (CHANSERV, ["#door", "-o", "gail"])]
    assert chanserv_says(await ask(guest, "CS OP #door guest")) == [
        "You are not on the access list of #door"]
    msgs = await ask(founder, "CS OP #door guest")
    assert [(m.source, m.params) for m in only(msgs, "MODE")] == [
        (CHANSERV, ["#door", "+o", "guest"])]
    # Asking for what is so already: said, not silently ignored.
    assert chanserv_says(await ask(founder, "CS OP #door guest")) == [
        "guest is already an operator of #door"]
    assert chanserv_says(await ask(founder, "CS DEOP #door")) == [
        "gail is not an operator of #door"]


async def test_the_access_list(server: RunningServer) -> None:
    founder = await registered_channel(server, "hana", "#acl")
    helper = await with_account(server, "helper")
    stranger = await with_account(server, "stranger")
    assert chanserv_says(await ask(founder, "CS ACCESS #acl ADD nobody")) == [
        "nobody is not a registered account"]
    assert chanserv_says(await ask(stranger, "CS ACCESS #acl ADD stranger")) == [
        "Only the founder of #acl changes its access list"]
    assert chanserv_says(await ask(founder, "CS ACCESS #acl ADD Helper")) == [
        "Helper added to the access list of #acl"]
    assert chanserv_says(await ask(founder, "CS ACCESS #acl LIST")) == [
        "#acl: founder hana; operators:", "helper"]
    info = chanserv_says(await ask(founder, "CS INFO #acl"))
    assert len(info) == 1 and info[0].endswith("; 1 more account on its access list")
    assert chanserv_says(await ask(stranger, "CS ACCESS #acl LIST")) == [
        "You are not on the access list of #acl"]
    joined = await helper.join("#acl")
    mode = await founder.expect("MODE")
    assert mode.source == CHANSERV and mode.params == ["#acl", "+o", "helper"]
    assert only(joined, "353")  # NAMES came before ChanServ's MODE
    await stranger.join("#acl")
    seen = await founder.sync()
    assert [m.command for m in seen] == ["JOIN"]  # and no +o for a stranger
    assert chanserv_says(await ask(founder, "CS ACCESS #acl DEL helper")) == [
        "helper removed from the access list of #acl"]
    await ask(helper, "PART #acl")
    await helper.join("#acl")
    assert [m.command for m in await founder.sync()] == ["PART", "JOIN"]


async def test_drop(server: RunningServer) -> None:
    founder = await registered_channel(server, "ines", "#gone")
    other = await with_account(server, "other_i")
    assert chanserv_says(await ask(other, "CS DROP #gone")) == [
        "Only the founder of #gone (or an IRC operator) may drop it"]
    assert chanserv_says(await ask(founder, "CS DROP #GONE")) == ["#gone is no longer registered"]
    assert chanserv_says(await ask(founder, "CS INFO #gone")) == ["#gone is not registered"]
    await ask(founder, "TOPIC #gone :not kept")
    await leave(founder)
    # An ordinary channel again: its first joiner is its operator, and nothing was kept.
    joined = await other.join("#gone")
    assert only(joined, "332") == []
    assert only(joined, "353")[0].params[-1] == "@other_i"


async def test_a_dropped_account_loses_its_channels_and_access(server: RunningServer) -> None:
    founder = await registered_channel(server, "jade", "#jade")
    lee = await registered_channel(server, "lee", "#lee")
    await ask(lee, "CS ACCESS #lee ADD jade")
    await ask(founder, f"NS DROP jade {PASSWORD}")
    assert chanserv_says(await ask(founder, "CS INFO #jade")) == ["#jade is not registered"]
    # Whoever registers the name next inherits no access either.
    assert chanserv_says(await ask(lee, "CS ACCESS #lee LIST")) == [
        "#lee: founder lee; operators: (none)"]


async def test_registrations_and_state_survive_a_restart(backend: str, tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    async with serving(suite_config(), backend, db=db) as running:
        founder = await registered_channel(running, "kim", "#lasting")
        helper = await with_account(running, "kims_helper")
        await ask(founder, "CS ACCESS #lasting ADD kims_helper")
        await ask(founder, "TOPIC #lasting :still here")
        await ask(founder, "MODE #lasting +l 50")
        await leave(founder, helper)
    async with serving(suite_config(), backend, db=db) as running:
        helper = await running.client("kh")  # kims_helper is reserved for the account
        msgs = await ask(helper, f"NS IDENTIFY kims_helper {PASSWORD}")
        assert only(msgs, "900")
        joined = await helper.join("#lasting")
        assert only(joined, "332")[0].params[-1] == "still here"
        assert only(joined, "353")[0].params[-1] == "@kh"  # on the access list
        modes = only(await ask(helper, "MODE #lasting"), "324")[0].params
        assert modes[2].startswith("+") and "l" in modes[2] and "50" in modes[3:]


async def test_logging_in_on_the_channel_gets_op(server: RunningServer) -> None:
    founder = await registered_channel(server, "mona", "#later")
    await ask(founder, "NICK mona_away")
    await ask(founder, "NS LOGOUT")
    await ask(founder, "CS DEOP #later")  # refused: logged out, not on the access list
    assert only(await ask(founder, "MODE #later -o mona_away"), "MODE")
    watcher = await server.client("watcher_m")
    await watcher.join("#later")
    msgs = await ask(founder, f"NS IDENTIFY mona {PASSWORD}")
    assert [(m.source, m.params) for m in only(msgs, "MODE")] == [
        (CHANSERV, ["#later", "+o", "mona_away"])]
    assert (await watcher.expect("MODE")).params == ["#later", "+o", "mona_away"]


async def test_set_founder_gives_the_channel_away(server: RunningServer) -> None:
    founder = await registered_channel(server, "nora", "#gift")
    heir = await with_account(server, "heir")
    assert chanserv_says(await ask(heir, "CS SET #gift FOUNDER heir")) == [
        "Only the founder of #gift gives it away"]
    assert chanserv_says(await ask(founder, "CS SET #gift FOUNDER nobody")) == [
        "nobody is not a registered account"]
    assert chanserv_says(await ask(founder, "CS SET #gift")) == [
        "Syntax: SET <#channel> FOUNDER <account>"]
    assert chanserv_says(await ask(founder, "CS SET #gift FOUNDER Heir")) == [
        "#gift now belongs to Heir"]
    assert chanserv_says(await ask(heir, "CS ACCESS #gift LIST")) == [
        "#gift: founder heir; operators:", "nora"]
    assert chanserv_says(await ask(heir, "CS ACCESS #gift DEL nora")) == [
        "nora removed from the access list of #gift"]
    assert chanserv_says(await ask(founder, "CS ACCESS #gift ADD nora")) == [
        "Only the founder of #gift changes its access list"]
    info = chanserv_says(await ask(founder, "CS INFO #gift"))
    assert info[0].startswith("#gift is registered to heir since ")
