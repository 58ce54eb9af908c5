"""Accounts over real TCP on every backend: REGISTER, SASL PLAIN, and what a login shows
(900, WHOIS 330, WHOX %a, account-notify, extended-join, account-tag), kept in the real
SQLite database of the suite's server."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from chat.message import Message
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer, serving, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import (
    ask,
    cap_ls,
    mask,
    nickserv_says,
    only,
    quit_and_wait,
    too_many_failures,
)

PASSWORD = "tr0ub4dor&3"


def plain(authcid: str, password: str, authzid: str = "") -> str:
    return base64.b64encode(f"{authzid}\0{authcid}\0{password}".encode()).decode()


async def register_account(c: IRCTestClient, account: str = "*", password: str = PASSWORD) -> None:
    msgs = await ask(c, f"REGISTER {account} * {password}")
    assert [m.command for m in msgs] == ["REGISTER", "900"], msgs


async def sasl_connection(server: RunningServer, caps: str = "sasl") -> IRCTestClient:
    """A connection that negotiated ``caps`` and has not registered yet."""
    c = await server.client()
    await c.send("CAP LS 302")
    await c.send(f"CAP REQ :{caps}")
    await c.expect("CAP", lambda m: m.params[1] == "ACK")
    return c


async def authenticate(c: IRCTestClient, *lines: str) -> list[Message]:
    """AUTHENTICATE PLAIN, then ``lines``; what the server answered to the last one."""
    await c.send("AUTHENTICATE PLAIN")
    assert (await c.expect("AUTHENTICATE")).params == ["+"]
    for line in lines[:-1]:
        await c.send(f"AUTHENTICATE {line}")
    return await ask(c, f"AUTHENTICATE {lines[-1]}")


async def finish_registration(c: IRCTestClient, nick: str) -> list[Message]:
    await c.send("CAP END")
    return await c.register(nick)


async def test_caps_are_offered(server: RunningServer) -> None:
    c = await server.client()
    tokens = await cap_ls(c)
    for cap in ("sasl=PLAIN,SCRAM-SHA-256", "account-notify", "account-tag", "extended-join",
                "draft/account-registration=before-connect,custom-account-name"):
        assert cap in tokens


async def test_register_logs_in_and_whois_shows_the_account(server: RunningServer) -> None:
    alice = await server.client("alice")
    msgs = await ask(alice, f"REGISTER * alice@example.org {PASSWORD}")
    assert [(m.command, m.params) for m in msgs] == [
        ("REGISTER", ["SUCCESS", "alice", "Account alice registered"]),
        ("900", ["alice", mask(alice), "alice", "You are now logged in as alice"]),
    ]
    bob = await server.client("bob")
    whois = await ask(bob, "WHOIS alice")
    assert only(whois, "330")[0].params == ["bob", "alice", "alice", "is logged in as"]
    assert only(await ask(bob, "WHOIS bob"), "330") == []
    # Names are case-insensitive: the account exists for ALICE too.
    msgs = await ask(bob, f"REGISTER ALICE * {PASSWORD}")
    assert [(m.command, m.params[:3]) for m in msgs] == [
        ("FAIL", ["REGISTER", "ACCOUNT_EXISTS", "ALICE"])]
    again = await ask(alice, f"REGISTER alice2 * {PASSWORD}")
    assert [(m.command, m.params[:3]) for m in again] == [
        ("FAIL", ["REGISTER", "ALREADY_AUTHENTICATED", "alice"])]


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("REGISTER * * short", "WEAK_PASSWORD"),
        ("REGISTER #chan * longenough", "BAD_ACCOUNT_NAME"),
        ("REGISTER 9lives * longenough", "BAD_ACCOUNT_NAME"),
        ("REGISTER * * " + "p" * 301, "UNACCEPTABLE_PASSWORD"),
        ("VERIFY carol 12345", "INVALID_CODE"),
    ],
)
async def test_register_refusals(server: RunningServer, line: str, code: str) -> None:
    carol = await server.client("carol")
    msgs = await ask(carol, line)
    assert [(m.command, m.params[1]) for m in msgs] == [("FAIL", code)], msgs
    assert only(await ask(carol, "WHOIS carol"), "330") == []


@pytest.mark.parametrize("server_config", [suite_config(password_min_length=3)], ids=["min3"])
async def test_the_shortest_password_is_configurable(server: RunningServer) -> None:
    carol = await server.client("carol")
    assert [(m.command, m.params[1]) for m in await ask(carol, "REGISTER * * ab")] == [
        ("FAIL", "WEAK_PASSWORD")]
    assert [m.command for m in await ask(carol, "REGISTER * * abc")] == ["REGISTER", "900"]


async def test_register_before_connect_with_its_own_name(server: RunningServer) -> None:
    c = await server.client()
    need = await ask(c, f"REGISTER * * {PASSWORD}")  # no nick yet: the account is unnamed
    assert [(m.command, m.params[:3]) for m in need] == [("FAIL", ["REGISTER", "NEED_NICK", "*"])]
    await c.send("NICK dave")
    msgs = await ask(c, f"REGISTER dave_acct * {PASSWORD}")
    assert [m.command for m in msgs] == ["REGISTER", "900"]
    assert msgs[1].params[:3] == ["dave", "dave!*@127.0.0.1", "dave_acct"]
    await c.send("USER dave 0 * :Dave")
    await c.expect("001")
    c.nick = "dave"
    whox = await ask(c, "WHO dave %na")
    assert only(whox, "354")[0].params[1:] == ["dave", "dave_acct"]


async def test_sasl_plain_before_registration(server: RunningServer) -> None:
    await register_account(await server.client("erin"))
    c = await sasl_connection(server)
    msgs = await authenticate(c, plain("Erin", PASSWORD))
    assert [(m.command, m.params[1:]) for m in msgs] == [
        ("900", ["*!*@127.0.0.1", "erin", "You are now logged in as erin"]),
        ("903", ["SASL authentication successful"]),
    ]
    await finish_registration(c, "erin_")
    assert only(await ask(c, "WHOIS erin_"), "330")[0].params[2] == "erin"
    assert only(await ask(c, "AUTHENTICATE PLAIN"), "907")


@pytest.mark.parametrize(
    "data",
    [
        plain("frank", "wrong password"),
        plain("nobody", PASSWORD),
        plain("frank", PASSWORD, authzid="root"),  # someone else's identity
        "not base64!",
        base64.b64encode(b"frank\0" + PASSWORD.encode()).decode(),  # one NUL
        base64.b64encode(b"\0frank\0\xff\xfe").decode(),  # not UTF-8
    ],
)
async def test_sasl_failures(server: RunningServer, data: str) -> None:
    await register_account(await server.client("frank"))
    c = await sasl_connection(server)
    assert [m.command for m in await authenticate(c, data)] == ["904"]
    burst = await finish_registration(c, "guest")
    assert "001" in [m.command for m in burst]
    assert only(await ask(c, "WHOIS guest"), "330") == []


async def test_sasl_protocol_errors(server: RunningServer) -> None:
    without = await server.client()
    assert [m.command for m in await ask(without, "AUTHENTICATE PLAIN")] == ["904"]
    c = await sasl_connection(server)
    msgs = await ask(c, "AUTHENTICATE EXTERNAL")
    assert [m.command for m in msgs] == ["908", "904"]
    assert msgs[0].params[1] == "PLAIN,SCRAM-SHA-256"
    await ask(c, "AUTHENTICATE PLAIN")
    assert [m.command for m in await ask(c, "AUTHENTICATE *")] == ["906"]
    assert [m.command for m in await authenticate(c, "A" * 401)] == ["905"]
    # CAP END in the middle of an exchange ends it: 906, then the welcome.
    await c.send("AUTHENTICATE PLAIN")
    await c.expect("AUTHENTICATE")
    burst = await finish_registration(c, "gina")
    assert [m.command for m in burst][:2] == ["906", "001"]


async def test_sasl_in_chunks_of_400(server: RunningServer) -> None:
    # '\0hank\0' and 294 characters make 300 bytes: exactly 400 of base64, then '+'.
    long_password = "x" * 294
    await register_account(await server.client("hank"), password=long_password)
    data = plain("hank", long_password)
    assert len(data) == 400
    c = await sasl_connection(server)
    assert [m.command for m in await authenticate(c, data, "+")] == ["900", "903"]
    c2 = await sasl_connection(server)
    half = plain("hank", PASSWORD + "x" * 300)  # over two full chunks and more: too long
    chunks = [half[i:i + 400] for i in range(0, len(half), 400)]
    assert len(chunks) >= 2
    assert [m.command for m in await authenticate(c2, *chunks)][-1:] in (["905"], ["904"])


async def test_failed_attempts_are_limited(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    await register_account(await server.client("ivan"))
    c = await sasl_connection(server)
    for _ in range(3):
        msgs = await authenticate(c, plain("ivan", "bad password"))
        assert [(m.command, m.params[-1]) for m in msgs] == [("904", "SASL authentication failed")]
    # The limit is reached: even the right password is refused for now, and the 904
    # says why instead of calling it wrong.
    [refusal] = await authenticate(c, plain("ivan", PASSWORD))
    assert refusal.command == "904" and too_many_failures(refusal.params[-1]), refusal
    assert "login as 'ivan' from 127.0.0.1 refused: too many failures" in caplog.text


async def test_failed_logins_are_limited_per_account_across_connections(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Each connection may fail three times a minute; an account, from everywhere, three
    # times here (then one more every 30 s): new connections no longer buy more guesses.
    config = suite_config(login_failures=3, login_refill=30.0)
    async with serving(config, backend, db=str(tmp_path / "chat.db")) as server:
        await register_account(await server.client("ivan"))
        await register_account(await server.client("judy"))
        for _ in range(3):
            c = await sasl_connection(server)
            msgs = await authenticate(c, plain("ivan", "bad password"))
            assert [(m.command, m.params[-1]) for m in msgs] == [
                ("904", "SASL authentication failed")]
        c = await sasl_connection(server)
        [refusal] = await authenticate(c, plain("ivan", PASSWORD))
        assert refusal.command == "904" and too_many_failures(refusal.params[-1]), refusal
        assert "login as 'ivan' from 127.0.0.1 refused: too many failures" in caplog.text
        # NickServ IDENTIFY asks the same check.
        other = await server.client("other")
        said = nickserv_says(await ask(other, f"PRIVMSG NickServ :IDENTIFY ivan {PASSWORD}"))
        assert len(said) == 1 and too_many_failures(said[0]), said
        # Another account is not held up, on the same connection.
        assert [m.command for m in await authenticate(c, plain("judy", PASSWORD))] == [
            "900", "903"]


async def test_account_notify_extended_join_and_account_tag(server: RunningServer) -> None:
    watcher = await server.client("watcher", ["account-notify", "extended-join"])
    tagged = await server.client("tagged", ["account-tag"])
    plain_client = await server.client("plainc")
    judy = await server.client("judy", ["account-notify"])
    for c in (watcher, tagged, plain_client, judy):
        await c.join("#room")
    await watcher.sync()
    await tagged.sync()
    await plain_client.sync()
    msgs = await ask(judy, f"REGISTER * * {PASSWORD}")
    # account-notify: ACCOUNT to peers with the cap, and to the user itself.
    assert [m.command for m in msgs] == ["REGISTER", "900", "ACCOUNT"]
    account = await watcher.expect("ACCOUNT")
    assert (account.source, account.params) == (mask(judy), ["judy"])
    assert only(await plain_client.sync(), "ACCOUNT") == []
    # extended-join: account and realname; '*' when not logged in.
    kim = await server.client("kim")
    await kim.join("#room")
    joined = await watcher.expect("JOIN")
    assert joined.params == ["#room", "*", "Real kim"]
    assert (await plain_client.expect("JOIN")).params == ["#room"]
    await judy.send("PART #room")
    await judy.send("JOIN #room")
    joined = await watcher.expect("JOIN", lambda m: m.source == mask(judy))
    assert joined.params == ["#room", "judy", "Real judy"]
    # account-tag: the sender's account on its messages; none for others.
    # Without message-tags, that tag alone: no msgid (irctest).
    await judy.send("PRIVMSG #room :hello")
    got = await tagged.expect("PRIVMSG")
    assert got.tags == {"account": "judy"}
    await kim.send("PRIVMSG #room :hi")
    assert (await tagged.expect("PRIVMSG")).tags == {}
    assert (await plain_client.expect("PRIVMSG")).tags == {}


async def test_account_tag_alone_gets_no_client_only_tags(server: RunningServer) -> None:
    tagged = await server.client("tagged", ["account-tag"])
    full = await server.client("full", ["message-tags"])
    sender = await server.client("sender", ["message-tags"])
    for c in (tagged, full, sender):
        await c.join("#room")
    await ask(sender, f"REGISTER * * {PASSWORD}")
    for c in (tagged, full):
        await c.sync()
    await sender.send("@+draft/reply=x PRIVMSG #room :hello")
    assert (await tagged.expect("PRIVMSG")).tags == {"account": "sender"}
    assert set((await full.expect("PRIVMSG")).tags) == {"msgid", "account", "+draft/reply"}


async def test_account_tag_is_on_every_message_a_user_sends(server: RunningServer) -> None:
    """Not only PRIVMSG: JOIN, TOPIC, INVITE, KICK, NICK, PART, QUIT (irctest's
    testInvite; the account-tag spec)."""
    tagged = await server.client("tagged", ["account-tag"])
    judy = await server.client("judy")
    await ask(judy, f"REGISTER * * {PASSWORD}")
    await tagged.join("#room")
    await tagged.send("MODE #room -t")
    await judy.send("JOIN #room")
    assert (await tagged.expect("JOIN")).tags == {"account": "judy"}
    await judy.send("TOPIC #room :new topic")
    assert (await tagged.expect("TOPIC")).tags == {"account": "judy"}
    await judy.join("#other")
    await judy.send("INVITE tagged #other")
    assert (await tagged.expect("INVITE")).tags == {"account": "judy"}
    await judy.send("NICK judy2")
    assert (await tagged.expect("NICK")).tags == {"account": "judy"}
    await judy.send("PART #room")
    assert (await tagged.expect("PART")).tags == {"account": "judy"}
    await tagged.send("JOIN #other")
    await tagged.expect("366")
    await judy.send("QUIT :bye")
    assert (await tagged.expect("QUIT")).tags == {"account": "judy"}
    # A user not logged in: none.
    kim = await server.client("kim")
    await kim.send("JOIN #room")
    assert (await tagged.expect("JOIN")).tags == {}


async def test_server_password_is_required_before_early_register(backend: str,
                                                                 tmp_path: Path) -> None:
    async with serving(suite_config(password="letmein"), backend,
                       db=str(tmp_path / "h.db")) as running:
        c = await running.client()
        await c.send("NICK mallory")
        msgs = await ask(c, f"REGISTER * * {PASSWORD}")
        assert [(m.command, m.params[1]) for m in msgs] == [
            ("FAIL", "TEMPORARILY_UNAVAILABLE")]


async def test_accounts_survive_a_restart(backend: str, tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    async with serving(suite_config(), backend, db=db) as first:
        await register_account(await first.client("lena"))
    async with serving(suite_config(), backend, db=db) as second:
        c = await sasl_connection(second)
        assert [m.command for m in await authenticate(c, plain("lena", PASSWORD))] == [
            "900", "903"]
        other = await second.client("other")
        msgs = await ask(other, f"REGISTER lena * {PASSWORD}")
        assert msgs[0].params[1] == "ACCOUNT_EXISTS"
        # The nick is still reserved after the restart (names read from the store).
        reason = reserved_for("lena", "lena")  # c is logged in to it
        assert only(await ask(other, "NICK lena"), "433")[0].params[-1] == reason


# ---------------------------------------------------------------------- reserved nicks


def reserved_for(nick: str, account: str | None = None, *, connecting: bool = False) -> str:
    """433's reason to a client logged in to no account: how to get the nick. The
    account's spelling is known here (``account``) only while someone is logged in to it;
    a client still ``connecting`` can also use PASS (its "server password")."""
    who = "an account" if account is None else f"the account {account}"
    name = account or nick
    pass_login = f"the server password {name}:<password>, " if connecting else ""
    return (f"Nickname is reserved for {who}: log in to it first (SASL, {pass_login}or "
            f"/msg NickServ IDENTIFY {name} <password>)")


async def test_a_user_of_another_account_is_told_it_is_someone_elses(
    server: RunningServer,
) -> None:
    owner = await server.client("noor")
    await register_account(owner)
    await quit_and_wait(owner)
    other = await server.client("omar")
    await register_account(other)
    assert only(await ask(other, "NICK noor"), "433")[0].params[-1] == (
        "Nickname is reserved by a different account")


async def test_an_accounts_name_is_reserved_for_it(server: RunningServer) -> None:
    owner = await server.client("mia")
    await register_account(owner)
    await owner.send("QUIT :bye")
    await owner.wait_closed()
    # Someone else connecting as mia is told, and registers once it picks another nick.
    c = await server.client()
    await c.send("NICK mia")
    await c.send("USER mia 0 * :Not Mia")
    refused = await c.expect("433")
    assert refused.params == ["*", "mia", reserved_for("mia", connecting=True)]
    await c.send("NICK mia_")
    await c.expect("001")
    c.nick = "mia_"
    assert only(await ask(c, "NICK MIA"), "433")[0].params[-1] == reserved_for("MIA")
    # Logged in with SASL, the owner gets it (case as given).
    sasl = await sasl_connection(server)
    await authenticate(sasl, plain("mia", PASSWORD))
    burst = await finish_registration(sasl, "Mia")
    assert burst[0].command == "001" and burst[0].params[0] == "Mia"
    # And a logged-in user may take its own account's nick later too.
    await ask(sasl, "NICK away_mia")
    assert only(await ask(sasl, "NICK mia"), "NICK")[0].params == ["mia"]


async def test_a_nick_in_use_cannot_become_someone_elses_account(server: RunningServer) -> None:
    await server.client("nora")
    other = await server.client("other")
    msgs = await ask(other, f"REGISTER nora * {PASSWORD}")
    assert [(m.command, m.params[:3]) for m in msgs] == [
        ("FAIL", ["REGISTER", "BAD_ACCOUNT_NAME", "nora"])]


async def test_reservation_can_be_turned_off(backend: str, tmp_path: Path) -> None:
    async with serving(suite_config(reserve_account_nicks=False), backend,
                       db=str(tmp_path / "h.db")) as running:
        owner = await running.client("olga")
        await register_account(owner)
        second = await running.client("second")
        assert only(await ask(owner, "NICK olga2"), "NICK")
        assert only(await ask(second, "NICK olga"), "NICK")[0].params == ["olga"]


# ---------------------------------------------------------------------- NickServ


async def test_nickserv_register_and_identify(server: RunningServer) -> None:
    pat = await server.client("pat")
    msgs = await ask(pat, f"PRIVMSG NickServ :REGISTER {PASSWORD} pat@example.org")
    assert nickserv_says(msgs) == ["Account pat registered"]
    assert only(msgs, "900")[0].params[2] == "pat"
    await pat.send("QUIT :bye")
    await pat.wait_closed()
    other = await server.client("pat_")
    assert nickserv_says(await ask(other, "PRIVMSG NickServ :IDENTIFY pat wrong-one")) == [
        "Invalid account name or password"]
    # With the password alone the nick names the account: a fallback nick says so.
    assert nickserv_says(await ask(other, f"PRIVMSG NickServ :IDENTIFY {PASSWORD}")) == [
        "Invalid account name or password (for account pat_; IDENTIFY <account> "
        "<password> for another)"]
    msgs = await ask(other, f"NS IDENTIFY pat {PASSWORD}")  # the NS command works too
    assert nickserv_says(msgs) == ["You are now logged in as pat"]
    assert only(msgs, "900")[0].params[2] == "pat"
    assert nickserv_says(await ask(other, f"NICKSERV IDENTIFY {PASSWORD}")) == [
        "You are already logged in as pat"]
    # Logged in, the reserved nick is pat_'s to take.
    assert only(await ask(other, "NICK pat"), "NICK")[0].params == ["pat"]


async def test_nickserv_help_and_mistakes(server: RunningServer) -> None:
    quinn = await server.client("quinn")
    help_lines = nickserv_says(await ask(quinn, "PRIVMSG NickServ :help"))
    assert any(line.startswith("REGISTER") for line in help_lines)
    assert any(line.startswith("IDENTIFY") for line in help_lines)
    assert nickserv_says(await ask(quinn, "PRIVMSG NickServ :REGISTER")) == [
        "Syntax: REGISTER <password> [email]"]
    assert nickserv_says(await ask(quinn, "PRIVMSG NickServ :REGISTER short")) == [
        "The password must be at least 8 characters long"]
    assert nickserv_says(await ask(quinn, "PRIVMSG NickServ :FROB me")) == [
        "Unknown command FROB: /msg NickServ HELP"]
    # Nobody can be NickServ, nor register it as an account.
    assert only(await ask(quinn, "NICK NickServ"), "433")[0].params[-1] == (
        "Nickname is reserved for services")
    msgs = await ask(quinn, f"REGISTER nickserv * {PASSWORD}")
    assert [(m.command, m.params[1]) for m in msgs] == [("FAIL", "BAD_ACCOUNT_NAME")]


async def test_nickserv_set_password(server: RunningServer) -> None:
    rosa = await server.client("rosa")
    assert nickserv_says(await ask(rosa, "NS SET PASSWORD new-password")) == [
        "You are not logged in"]
    await register_account(rosa)
    assert nickserv_says(await ask(rosa, "NS SET PASSWORD tiny")) == [
        "The password must be at least 8 characters long"]
    assert nickserv_says(await ask(rosa, "PRIVMSG NickServ :SET PASSWORD new-password")) == [
        "The password of rosa is changed"]
    old = await sasl_connection(server)
    assert [m.command for m in await authenticate(old, plain("rosa", PASSWORD))] == ["904"]
    new = await sasl_connection(server)
    assert [m.command for m in await authenticate(new, plain("rosa", "new-password"))] == [
        "900", "903"]


# ---------------------------------------------------------------------- +r and +R


async def test_channel_mode_r_admits_only_logged_in_users(server: RunningServer) -> None:
    op = await server.client("op")
    await op.join("#members")
    assert only(await ask(op, "MODE #members +r"), "MODE")[0].params == ["#members", "+r"]
    guest = await server.client("guest")
    refused = only(await ask(guest, "JOIN #members"), "477")
    assert refused[0].params[1] == "#members"
    member = await server.client("member")
    await register_account(member)
    assert only(await member.join("#members"), "366")
    # An invite still lets a guest in, as for +i, +k and +l.
    await ask(op, "INVITE guest #members")
    assert only(await guest.join("#members"), "366")


async def test_user_mode_r_takes_messages_only_from_accounts(server: RunningServer) -> None:
    sam = await server.client("sam")
    assert only(await ask(sam, "MODE sam +R"), "MODE")[0].params == ["sam", "+R"]
    stranger = await server.client("stranger")
    refused = only(await ask(stranger, "PRIVMSG sam :hi there"), "477")
    assert refused[0].params[1] == "sam"
    known = await server.client("known")
    await register_account(known)
    await sam.sync()
    await known.send("PRIVMSG sam :hello from an account")
    assert (await sam.expect("PRIVMSG")).params[-1] == "hello from an account"
    assert only(await ask(sam, "MODE sam -R"), "MODE")[0].params == ["sam", "-R"]
    await stranger.send("PRIVMSG sam :now?")
    assert (await sam.expect("PRIVMSG")).params[-1] == "now?"


# ---------------------------------------------------------------------- extbans


async def test_account_extbans(server: RunningServer) -> None:
    op = await server.client("op")
    await op.join("#ext")
    tokens = [t for m in await ask(op, "VERSION") if m.command == "005" for t in m.params]
    assert "EXTBAN=$,a" in tokens
    # $~a: nobody without an account gets in; an exception for one account name.
    msgs = await ask(op, "MODE #ext +b $~a")
    assert only(msgs, "MODE")[0].params == ["#ext", "+b", "$~a"]
    guest = await server.client("guest")
    assert only(await ask(guest, "JOIN #ext"), "474")
    tess = await server.client("tess")
    await register_account(tess)
    assert only(await tess.join("#ext"), "366")
    # $a:<glob> bans accounts by name, and +e $a:<glob> excepts them.
    await ask(op, "MODE #ext +b $a:uma*")
    uma = await server.client("uma")
    await register_account(uma)
    assert only(await ask(uma, "JOIN #ext"), "474")
    await ask(op, "MODE #ext +e $a:UMA")  # account names are case-insensitive
    assert only(await uma.join("#ext"), "366")
    listed = [m.params[2] for m in only(await ask(op, "MODE #ext b"), "367")]
    assert listed == ["$~a", "$a:uma*"]
    # Unknown extban types are refused, not stored as nick masks.
    bad = only(await ask(op, "MODE #ext +b $x:foo"), "696")
    assert bad[0].params[1:4] == ["#ext", "b", "$x:foo"]


async def test_account_notify_reaches_extended_monitor_watchers(server: RunningServer) -> None:
    watcher = await server.client("watcher", ["account-notify", "extended-monitor"])
    plain_watcher = await server.client("plainw", ["account-notify"])
    for c in (watcher, plain_watcher):
        await ask(c, "MONITOR + vera")
    vera = await server.client("vera")  # shares no channel with either
    await watcher.sync()
    await plain_watcher.sync()
    await register_account(vera)
    got = await watcher.expect("ACCOUNT")
    assert (got.source, got.params) == (mask(vera), ["vera"])
    assert only(await plain_watcher.sync(), "ACCOUNT") == []


# ---------------------------------------------------------------------- registration limits


async def test_accounts_per_host_are_limited(backend: str, tmp_path: Path) -> None:
    async with serving(suite_config(account_limit=2, account_refill=3600.0), backend,
                       db=str(tmp_path / "h.db")) as running:
        for nick in ("first", "second"):
            await register_account(await running.client(nick))
        third = await running.client("third")
        msgs = await ask(third, f"REGISTER * * {PASSWORD}")
        assert [(m.command, m.params[1]) for m in msgs] == [("FAIL", "TEMPORARILY_UNAVAILABLE")]
        assert "Too many accounts" in msgs[0].params[-1]
        # Logging in is not limited: the accounts made still work.
        c = await sasl_connection(running)
        assert [m.command for m in await authenticate(c, plain("first", PASSWORD))] == [
            "900", "903"]


async def test_registration_can_be_closed(backend: str, tmp_path: Path) -> None:
    async with serving(suite_config(allow_register=False), backend,
                       db=str(tmp_path / "h.db")) as running:
        c = await running.client()
        tokens = await cap_ls(c)
        assert "sasl=PLAIN,SCRAM-SHA-256" in tokens
        assert not any(t.startswith("draft/account-registration") for t in tokens)
        await c.send("CAP END")
        await c.register("wendy")
        msgs = await ask(c, f"REGISTER * * {PASSWORD}")
        assert [(m.command, m.params[1]) for m in msgs] == [("FAIL", "TEMPORARILY_UNAVAILABLE")]
        assert nickserv_says(await ask(c, f"NS REGISTER {PASSWORD}")) == [
            "Accounts are not registered here"]


# ---------------------------------------------------------------------- DROP


async def test_an_operator_drops_an_account(backend: str, oper_hash: str, tmp_path: Path) -> None:
    config = suite_config(opers={OPER_NAME: oper_hash})
    async with serving(config, backend, db=str(tmp_path / "h.db")) as running:
        spam = await running.client("spammer")
        await register_account(spam)
        await spam.join("#c")
        peer = await running.client("peer", ["account-notify"])
        await peer.join("#c")
        assert nickserv_says(await ask(peer, "NS DROP spammer")) == [
            "Syntax: DROP <your account> <password> (operators: DROP <account>)"]
        assert nickserv_says(await ask(peer, f"NS DROP spammer {PASSWORD}")) == [
            "Log in to spammer to drop it"]
        root = await running.client("root")
        assert "381" in [m.command for m in await ask(root, f"OPER {OPER_NAME} :{OPER_PASSWORD}")]
        await spam.sync()
        await peer.sync()
        assert nickserv_says(await ask(root, "PRIVMSG NickServ :DROP SPAMMER")) == [
            "Account SPAMMER dropped"]
        # Its user is logged out, and everyone who saw the login is told.
        assert (await spam.expect("901")).params[-1] == "You are now logged out"
        got = await peer.expect("ACCOUNT")
        assert (got.source, got.params) == (mask(spam), ["*"])
        assert only(await ask(peer, "WHOIS spammer"), "330") == []
        # The nick is free and the name can be registered again; logging in fails.
        assert only(await ask(peer, "NICK spammer_2"), "NICK")
        c = await sasl_connection(running)
        assert [m.command for m in await authenticate(c, plain("spammer", PASSWORD))] == ["904"]
        assert nickserv_says(await ask(root, "NS DROP spammer")) == [
            "Account spammer could not be dropped: no such account, or the database failed"]


async def test_a_user_drops_its_own_account(server: RunningServer) -> None:
    xena = await server.client("xena")
    await register_account(xena)
    assert nickserv_says(await ask(xena, "NS DROP xena wrong-password")) == [
        "Wrong password: the account stays"]
    assert only(await ask(xena, "WHOIS xena"), "330")
    msgs = await ask(xena, f"NS DROP XENA {PASSWORD}")
    assert nickserv_says(msgs) == ["Account xena dropped"]
    assert [m.command for m in msgs if m.command in ("900", "901")] == ["901"]
    assert only(await ask(xena, "WHOIS xena"), "330") == []
    # Gone: the name can be registered anew.
    assert [m.command for m in await ask(xena, f"REGISTER * * {PASSWORD}")] == [
        "REGISTER", "900"]


async def test_nickserv_logout(server: RunningServer) -> None:
    yves = await server.client("yves", ["account-notify"])
    assert nickserv_says(await ask(yves, "NS LOGOUT")) == ["You are not logged in"]
    assert [m.command for m in await ask(yves, f"REGISTER * * {PASSWORD}")] == [
        "REGISTER", "900", "ACCOUNT"]
    assert nickserv_says(await ask(yves, "NS LOGOUT")) == [
        "Change your nick first: it is reserved for your account"]
    await ask(yves, "NICK yves_away")
    msgs = await ask(yves, "NS LOGOUT")
    assert nickserv_says(msgs) == ["You are logged out of yves"]
    assert [m.command for m in msgs if m.command in ("901", "ACCOUNT")] == ["901", "ACCOUNT"]
    assert only(await ask(yves, "WHOIS yves_away"), "330") == []
    assert only(await ask(yves, "NICK yves"), "433")  # still reserved, for the account


async def test_nickserv_ghost_disconnects_a_lost_session(server: RunningServer) -> None:
    lost = await server.client("gwen")  # the session whose connection is lost
    await register_account(lost)
    carol = await server.client("carol_g")
    await lost.join("#g")
    await carol.join("#g")
    await carol.sync()
    # Back under another nick, not logged in yet: NickServ will not.
    back = await server.client("gwen_")
    assert nickserv_says(await ask(back, "NS GHOST gwen")) == ["You are not logged in"]
    assert only(await ask(back, "NICK gwen"), "433")  # held, and reserved
    await ask(back, f"NS IDENTIFY gwen {PASSWORD}")
    assert nickserv_says(await ask(back, "NS GHOST gwen_")) == ["You cannot ghost yourself"]
    assert nickserv_says(await ask(back, "NS GHOST carol_g")) == [
        "carol_g is neither your account's nick nor in use by a session logged in to gwen"]
    assert nickserv_says(await ask(back, "NS GHOST")) == ["Syntax: GHOST <nick>"]
    assert await carol.sync() == []
    msgs = await ask(back, "NS GHOST GWEN")
    assert nickserv_says(msgs) == ["gwen has been ghosted"]
    last = await lost.wait_closed()
    kill = only(last, "KILL")[0]
    assert kill.source == "NickServ!NickServ@test.server"
    assert kill.params == ["gwen", "GHOST command used by gwen_"]
    assert only(last, "ERROR")
    quit_msg = await carol.expect("QUIT")
    assert quit_msg.source == mask(lost)
    assert quit_msg.params == ["Killed (NickServ (GHOST command used by gwen_))"]
    # The nick is free for its account now; ghosting it again finds nobody.
    assert nickserv_says(await ask(back, "NS GHOST gwen")) == ["gwen is not online"]
    assert only(await ask(back, "NICK gwen"), "NICK")[0].params == ["gwen"]


async def test_nickserv_ghost_reaches_any_session_of_the_account(server: RunningServer) -> None:
    phone = await server.client("hal_phone")
    await ask(phone, f"REGISTER hal * {PASSWORD}")
    laptop = await server.client("hal_laptop")
    await ask(laptop, f"NS IDENTIFY hal {PASSWORD}")
    assert nickserv_says(await ask(laptop, "NS GHOST hal_phone")) == [
        "hal_phone has been ghosted"]
    await phone.wait_closed()
    # A nick the account neither owns nor has a session on is not its to ghost.
    other = await server.client("hal2")
    assert nickserv_says(await ask(laptop, "NS GHOST hal2")) == [
        "hal2 is neither your account's nick nor in use by a session logged in to hal"]
    assert await other.sync() == []


async def test_nickserv_regain_ghosts_and_takes_the_nick(server: RunningServer) -> None:
    lost = await server.client("ivy")
    await register_account(lost)
    watcher = await server.client("ivy_watch", ["extended-monitor"])
    await ask(watcher, "MONITOR + ivy")
    # SASL at connect, the nick held by the lost session: the client falls back.
    back = await sasl_connection(server)
    await authenticate(back, plain("ivy", PASSWORD))
    await back.send("CAP END")
    await back.send("NICK ivy")
    await back.send("USER ivy 0 * :Ivy")
    assert (await back.expect("433")).params[1] == "ivy"
    await back.send("NICK ivy_")
    await back.collect_until("376", "422")
    msgs = await ask(back, "PRIVMSG NickServ :REGAIN")
    assert nickserv_says(msgs) == ["ivy has been ghosted"]
    nick = only(msgs, "NICK")
    assert nick and nick[0].params == ["ivy"] and nick[0].source == "ivy_!~ivy@127.0.0.1"
    back.nick = "ivy"
    await lost.wait_closed()
    # MONITOR saw the nick go and come back.
    assert [m.command for m in await watcher.sync()] == ["731", "730"]
    assert nickserv_says(await ask(back, "NS RECOVER")) == ["You are ivy already"]
    # Free, REGAIN only takes it.
    await ask(back, "NICK ivy_again")
    back.nick = "ivy_again"
    msgs = await ask(back, "NS REGAIN ivy")
    assert nickserv_says(msgs) == []
    assert only(msgs, "NICK")[0].params == ["ivy"]


async def test_nickserv_ghost_respects_turned_off_reservation(
    backend: str, tmp_path: Path
) -> None:
    async with serving(suite_config(reserve_account_nicks=False), backend,
                       db=str(tmp_path / "h.db")) as running:
        owner = await running.client("jon")
        await register_account(owner)
        await ask(owner, "NICK jon_")
        squatter = await running.client("jon")  # allowed: the nick is not reserved
        msgs = await ask(owner, "NS REGAIN")
        assert nickserv_says(msgs) == [
            "jon is neither your account's nick nor in use by a session logged in to jon"]
        assert await squatter.sync() == []


async def test_nickserv_info(server: RunningServer) -> None:
    kay = await server.client("kay")
    await register_account(kay)
    phone = await server.client("kay_phone")
    await ask(phone, f"NS IDENTIFY kay {PASSWORD}")
    other = await server.client("other_k")
    said = nickserv_says(await ask(other, "NS INFO KAY"))
    assert len(said) == 2 and said[0].startswith("kay is registered since 20"), said
    assert said[1] == "Logged in now as: kay kay_phone"
    assert nickserv_says(await ask(other, "NS INFO")) == ["other_k is not a registered account"]
    await kay.send("QUIT :bye")
    await kay.wait_closed()
    await ask(phone, "NS LOGOUT")
    assert nickserv_says(await ask(other, "NS INFO kay"))[1:] == [
        "Not logged in on this server now"]
