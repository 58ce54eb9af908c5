"""Interop: real third-party IRC clients against the server.

irssi runs inside a private tmux server and is driven with ``send-keys``; its
screen is read back with ``capture-pane``.  WeeChat runs headless, is driven
through its FIFO and observed through its logger plugin.  A raw asyncio client
sits in the same channel and checks the other direction.  Every real client
connects through :class:`LoggingProxy`, so a failure shows the exact lines the
client sent and what the server answered.

The server under test is ours (``python -m server``); the same tests also run
against ngircd as a reference implementation when it is installed, which keeps
the harness itself honest.  The account tests (SASL PLAIN logins, a registered
account's reserved nick) are for our server only: ngircd has no accounts.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from .irc_clients import (
    HOST,
    Irssi,
    LoggingProxy,
    ProxyLine,
    RawClient,
    RunningServer,
    WeeChat,
    running_server,
    server_skip_reason,
)

pytestmark = pytest.mark.timeout(60)

CHANNEL = "#interop"


def _server_param(kind: str) -> object:
    reason = server_skip_reason(kind)
    marks = [pytest.mark.skip(reason=reason)] if reason else []
    return pytest.param(kind, id=kind, marks=marks)


# "chat" is our server and the point of these tests; "ngircd" is the reference.
SERVER_KINDS = [_server_param("chat"), _server_param("ngircd")]


def needs(*binaries: str) -> pytest.MarkDecorator:
    """Skip (before any server starts) unless every client binary is installed."""
    missing = [b for b in binaries if shutil.which(b) is None]
    return pytest.mark.skipif(
        bool(missing), reason=f"needs {', '.join(missing)} (apt-get install {' '.join(missing)})"
    )


@pytest.fixture(params=SERVER_KINDS)
def irc_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(request.param, tmp_path / "server") as server:
        yield server


@pytest.fixture
async def raw(irc_server: RunningServer) -> AsyncIterator[RawClient]:
    client = await RawClient("rawbob").connect(irc_server.host, irc_server.port)
    try:
        yield client
    finally:
        await client.quit()


@pytest.fixture
async def proxy(irc_server: RunningServer, tmp_path: Path) -> AsyncIterator[LoggingProxy]:
    p = await LoggingProxy(irc_server.host, irc_server.port).start()
    try:
        yield p
    finally:
        await p.close()
        # Kept for post-mortems: exactly what the real client and the server said.
        (tmp_path / "proxy-transcript.txt").write_text(p.transcript(limit=10**7), "utf-8")


@contextlib.contextmanager
def diagnostics(
    server: RunningServer, proxy: LoggingProxy, *extra: Callable[[], str]
) -> Iterator[None]:
    """Append the proxy transcript, server output and ``extra()`` to any assertion failure."""
    try:
        yield
    except AssertionError as exc:
        more = "\n\n".join(f() for f in extra)
        raise AssertionError(
            f"{exc}\n\n{proxy.transcript()}\n\n"
            f"--- {server.kind} server output (tail) ---\n{server.output()[-3000:]}\n\n{more}"
        ) from None


def _server_sent(command: str) -> Callable[[ProxyLine], bool]:
    return lambda pl: pl.direction == "S>C" and pl.msg.command == command


_welcome = _server_sent("001")


def _welcome_text(pl: ProxyLine) -> str:
    """A prefix of the 001 text, as a client would display it."""
    return pl.msg.params[-1][:40].strip() if pl.msg.params else ""


async def _weechat_took(wee: WeeChat, welcome: ProxyLine) -> None:
    """Wait until WeeChat has processed 001 (it refuses /join before; it logs the
    text then)."""
    await wee.wait_for_log(
        None, re.escape(_welcome_text(welcome)), timeout=10, what="weechat logging 001"
    )


async def _start_weechat(wee: WeeChat, proxy: LoggingProxy) -> None:
    """Start WeeChat through the proxy and wait until it has taken 001."""
    wee.start(HOST, proxy.port)
    await _weechat_took(wee, await proxy.wait_for(_welcome, timeout=15,
                                                  what="001 sent to weechat"))


def _unknown_commands(proxy: LoggingProxy) -> list[str]:
    return [pl.line for pl in proxy.lines if pl.direction == "S>C" and pl.msg.command == "421"]


@needs("irssi", "tmux")
async def test_irssi_round_trip(
    irc_server: RunningServer, raw: RawClient, proxy: LoggingProxy, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex[:10]
    irssi = Irssi(tmp_path / "irssi", "alice")
    try:
        with diagnostics(irc_server, proxy, irssi.debug):
            await raw.register()
            await raw.join(CHANNEL)

            irssi.start(HOST, proxy.port)
            welcome = await proxy.wait_for(_welcome, timeout=15, what="001 sent to irssi")
            # Commands typed before irssi has processed 001 fail with "Not connected
            # to server", so wait until the welcome text is on its screen.
            await irssi.wait_for_screen(
                re.escape(_welcome_text(welcome)), timeout=10, what="irssi showing 001"
            )

            # irssi joins: the raw client sees the JOIN, irssi shows the channel
            # with both members (exercises irssi's parsing of JOIN/353/366).
            mark = raw.mark()
            await irssi.command(f"/join {CHANNEL}")
            await raw.wait_for(
                lambda m: m.command == "JOIN" and m.nick == "alice" and m.params[:1] == (CHANNEL,),
                since=mark,
                timeout=10,
                what="alice's JOIN",
            )
            await irssi.wait_for_screen(
                rf"alice .*has joined {CHANNEL}", timeout=10, what="irssi's own join"
            )
            await irssi.wait_for_screen(
                rf"{CHANNEL}: Total of 2 nicks", timeout=10, what="irssi's NAMES summary"
            )
            # irssi then syncs the channel in the background: MODE #chan, WHO #chan,
            # MODE #chan b.  Wait for the replies that end each query.
            for numeric, query in (("324", "MODE"), ("315", "WHO"), ("368", "MODE b")):
                await proxy.wait_for(
                    _server_sent(numeric),
                    timeout=10,
                    what=f"{numeric} answering irssi's channel-sync {query} {CHANNEL}",
                )
            # Our server has WHOX, so irssi's WHO asks for fields: 354 lines, with its token.
            whox = [pl.msg for pl in proxy.lines if pl.direction == "S>C"
                    and pl.msg.command == "354"]
            if irc_server.kind == "chat":
                assert len(whox) == 2 and all(m.params[1] == "743" for m in whox), whox

            # irssi -> raw, in the channel.
            text = f"hello from irssi {token} héllo"
            mark = raw.mark()
            await irssi.command(text)
            msg = await raw.wait_for(
                lambda m: m.command == "PRIVMSG" and token in m.params[-1],
                since=mark,
                timeout=10,
                what="irssi's channel message",
            )
            assert msg.nick == "alice"
            assert msg.params == (CHANNEL, text)

            # raw -> irssi, in the channel: it must appear on irssi's screen.
            await raw.send(f"PRIVMSG {CHANNEL} :hello from raw {token} wörld")
            await irssi.wait_for_screen(
                rf"<.?rawbob> hello from raw {token} wörld",
                timeout=10,
                what="raw client's channel message",
            )

            # Private messages both ways.
            mark = raw.mark()
            await irssi.command(f"/msg rawbob psst {token}")
            msg = await raw.wait_for(
                lambda m: m.command == "PRIVMSG" and m.params[:1] == ("rawbob",),
                since=mark,
                timeout=10,
                what="irssi's private message",
            )
            assert msg.nick == "alice"
            assert msg.params[-1] == f"psst {token}"
            # The reply lands in irssi's query window, which is not on screen:
            # read it from irssi's autolog instead.
            await raw.send(f"PRIVMSG alice :psst back {token}")
            await irssi.wait_for_log(
                rf"<rawbob> psst back {token}$", timeout=10, what="raw client's private message"
            )

            # irssi leaves: the raw client sees the QUIT with irssi's reason.
            mark = raw.mark()
            await irssi.command(f"/quit leaving {token}")
            msg = await raw.wait_for(
                lambda m: m.command == "QUIT" and m.nick == "alice",
                since=mark,
                timeout=10,
                what="alice's QUIT",
            )
            assert token in msg.params[-1]

            assert not _unknown_commands(proxy), "server rejected commands irssi sent"
    finally:
        irssi.stop()


@needs("weechat-headless")
async def test_weechat_round_trip(
    irc_server: RunningServer, raw: RawClient, proxy: LoggingProxy, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex[:10]
    wee = WeeChat(tmp_path / "weechat", "weenie")
    chan_buffer = wee.buffer_name(CHANNEL)
    try:
        with diagnostics(irc_server, proxy, wee.debug):
            await raw.register()
            await raw.join(CHANNEL)

            await _start_weechat(wee, proxy)

            mark = raw.mark()
            await wee.command(f"/join {CHANNEL}", buffer=f"irc.server.{WeeChat.SERVER}")
            await raw.wait_for(
                lambda m: m.command == "JOIN" and m.nick == "weenie" and m.params[:1] == (CHANNEL,),
                since=mark,
                timeout=10,
                what="weenie's JOIN",
            )
            await wee.wait_for_log(
                CHANNEL, rf"{CHANNEL}: 2 nicks", timeout=10, what="weechat's NAMES summary"
            )

            # weechat -> raw
            text = f"hello from weechat {token} héllo"
            mark = raw.mark()
            await wee.command(text, buffer=chan_buffer)
            msg = await raw.wait_for(
                lambda m: m.command == "PRIVMSG" and token in m.params[-1],
                since=mark,
                timeout=10,
                what="weechat's channel message",
            )
            assert msg.nick == "weenie"
            assert msg.params == (CHANNEL, text)

            # raw -> weechat: it must land in weechat's channel log.
            await raw.send(f"PRIVMSG {CHANNEL} :hello from raw {token} wörld")
            await wee.wait_for_log(
                CHANNEL,
                rf"\t[~&@%+]?rawbob\thello from raw {token} wörld$",
                timeout=10,
                what="raw client's channel message",
            )

            mark = raw.mark()
            await wee.command(f"/quit leaving {token}")
            msg = await raw.wait_for(
                lambda m: m.command == "QUIT" and m.nick == "weenie",
                since=mark,
                timeout=10,
                what="weenie's QUIT",
            )
            assert token in msg.params[-1]

            assert not _unknown_commands(proxy), "server rejected commands weechat sent"
    finally:
        wee.stop()


# ---------------------------------------------------------------------------
# Accounts: SASL PLAIN logins and reserved nicks (our server only: ngircd has
# neither SASL nor accounts).
# ---------------------------------------------------------------------------

PASSWORD = "interop-secret-1"


def _chat_only(
    irc_server: RunningServer, why: str = "no SASL or account registration; accounts are ours"
) -> None:
    if irc_server.kind != "chat":
        pytest.skip(f"{irc_server.kind} has {why}")


async def _create_account(irc_server: RunningServer, account: str) -> None:
    """Register ``account`` (draft/account-registration) from a throw-away connection."""
    maker = await RawClient("maker").connect(irc_server.host, irc_server.port)
    try:
        await maker.register()
        await maker.send(f"REGISTER {account} * {PASSWORD}")
        done = await maker.wait_for(
            lambda m: m.command in ("900", "FAIL"), timeout=15, what=f"REGISTER {account}"
        )
        assert done.command == "900" and done.params[2] == account, maker.transcript()
        assert any(
            m.command == "REGISTER" and m.params[:2] == ("SUCCESS", account) for m in maker.received
        ), maker.transcript()
    finally:
        await maker.quit()


async def _whois_account(raw: RawClient, nick: str) -> str | None:
    """The account WHOIS shows for ``nick`` (330), or None; asserts the nick is online."""
    mark = raw.mark()
    await raw.send(f"WHOIS {nick}")
    await raw.wait_for(
        lambda m: m.command == "318", since=mark, timeout=10, what=f"318 end of WHOIS {nick}"
    )
    replies = raw.received[mark:]
    assert any(m.command == "311" and m.params[1] == nick for m in replies), raw.transcript()
    logged_in = [m for m in replies if m.command == "330"]
    assert len(logged_in) <= 1, logged_in
    if not logged_in:
        return None
    assert logged_in[0].params[1] == nick
    return logged_in[0].params[2]


def _requested_caps(proxy: LoggingProxy) -> set[str]:
    caps: set[str] = set()
    for pl in proxy.client_sent("CAP"):
        if pl.msg.params[:1] == ("REQ",):
            caps.update(cap.lower() for cap in pl.msg.params[-1].split())
    return caps


def _acked_caps(proxy: LoggingProxy) -> set[str]:
    caps: set[str] = set()
    for pl in proxy.lines:
        if pl.direction == "S>C" and pl.msg.command == "CAP" and pl.msg.params[1:2] == ("ACK",):
            caps.update(cap.lower() for cap in pl.msg.params[-1].split())
    return caps


def _refusals(proxy: LoggingProxy) -> list[str]:
    """Unknown-command errors, standard-reply FAILs and SASL failures sent to the client."""
    bad = {"421", "FAIL", "904", "905", "906", "907", "908"}
    return [pl.line for pl in proxy.lines if pl.direction == "S>C" and pl.msg.command in bad]


async def _join_as_account(
    raw: RawClient, proxy: LoggingProxy, nick: str, realname: str, join: Awaitable[None]
) -> None:
    """Run ``join`` (the real client's /join of CHANNEL, logged in to the account
    ``nick``): the raw client sees the JOIN, and the client's own copy is the extended
    form (account and realname) exactly when it requested extended-join."""
    mark = raw.mark()
    since = len(proxy.lines)
    await join
    await raw.wait_for(
        lambda m: m.command == "JOIN" and m.nick == nick and m.params[:1] == (CHANNEL,),
        since=mark,
        timeout=10,
        what=f"{nick}'s JOIN",
    )
    echo = await proxy.wait_for(
        lambda pl: _server_sent("JOIN")(pl) and pl.msg.nick == nick,
        since=since,
        timeout=10,
        what=f"{nick}'s own JOIN echoed to it",
    )
    if "extended-join" in _requested_caps(proxy):
        # JOIN <channel> <account> :<realname>
        assert echo.msg.params == (CHANNEL, nick, realname), echo.line
    else:
        assert echo.msg.params == (CHANNEL,), echo.line


async def _assert_sasl_login(proxy: LoggingProxy, account: str) -> None:
    """The client asked for sasl, sent AUTHENTICATE PLAIN and the server said 900 and 903,
    all before the 001 that ends registration."""
    await proxy.wait_for(_welcome, timeout=15, what="001")
    assert "sasl" in _requested_caps(proxy) and "sasl" in _acked_caps(proxy)
    plain = [pl for pl in proxy.client_sent("AUTHENTICATE") if pl.msg.params == ("PLAIN",)]
    assert len(plain) == 1, "expected one AUTHENTICATE PLAIN from the client"
    logged_in = [pl for pl in proxy.lines if _server_sent("900")(pl)]
    success = [pl for pl in proxy.lines if _server_sent("903")(pl)]
    welcome = next(pl for pl in proxy.lines if _welcome(pl))
    assert len(logged_in) == 1 and logged_in[0].msg.params[2] == account, logged_in
    assert len(success) == 1, success
    at = proxy.lines.index
    assert at(plain[0]) < at(logged_in[0]) < at(success[0]) < at(welcome), "out of order"


@needs("weechat-headless")
async def test_weechat_sasl_plain_login(
    irc_server: RunningServer, raw: RawClient, proxy: LoggingProxy, tmp_path: Path
) -> None:
    _chat_only(irc_server)
    wee = WeeChat(tmp_path / "weechat", "weenie", sasl=("weenie", PASSWORD))
    try:
        with diagnostics(irc_server, proxy, wee.debug):
            await _create_account(irc_server, "weenie")
            await raw.register()
            await raw.join(CHANNEL)

            wee.start(HOST, proxy.port)
            await _assert_sasl_login(proxy, "weenie")
            await _weechat_took(wee, next(pl for pl in proxy.lines if _welcome(pl)))
            # 900 and 903 as WeeChat shows them, in its server buffer.
            await wee.wait_for_log(
                None, r"You are now logged in as weenie", timeout=10, what="weechat logging 900"
            )
            await wee.wait_for_log(
                None, r"SASL authentication successful", timeout=10, what="weechat logging 903"
            )
            assert await _whois_account(raw, "weenie") == "weenie"

            await _join_as_account(
                raw, proxy, "weenie", "weechat interop",
                wee.command(f"/join {CHANNEL}", buffer=f"irc.server.{WeeChat.SERVER}"),
            )
            await wee.wait_for_log(
                CHANNEL, rf"{CHANNEL}: 2 nicks", timeout=10, what="weechat's NAMES summary"
            )

            assert not _refusals(proxy), "server refused something weechat sent"
    finally:
        wee.stop()


@needs("irssi", "tmux")
async def test_irssi_sasl_plain_login(
    irc_server: RunningServer, raw: RawClient, proxy: LoggingProxy, tmp_path: Path
) -> None:
    _chat_only(irc_server)
    irssi = Irssi(tmp_path / "irssi", "alice", sasl=("alice", PASSWORD))
    try:
        with diagnostics(irc_server, proxy, irssi.debug):
            await _create_account(irc_server, "alice")
            await raw.register()
            await raw.join(CHANNEL)

            irssi.start(HOST, proxy.port)
            await _assert_sasl_login(proxy, "alice")
            welcome = next(pl for pl in proxy.lines if _welcome(pl))
            await irssi.wait_for_screen(
                re.escape(_welcome_text(welcome)), timeout=10, what="irssi showing 001"
            )
            # irssi's own message for 903, and the 900 it prints as it came (the login
            # happens before irssi sends NICK, so the 900 is for "*!*@host").
            await irssi.wait_for_screen(
                r"-!- SASL authentication succeeded", timeout=10, what="irssi showing 903"
            )
            await irssi.wait_for_screen(
                r"alice You are now logged in as alice", timeout=10, what="irssi showing 900"
            )
            assert await _whois_account(raw, "alice") == "alice"

            await _join_as_account(
                raw, proxy, "alice", "irssi interop", irssi.command(f"/join {CHANNEL}")
            )
            await irssi.wait_for_screen(
                rf"alice .*has joined {CHANNEL}", timeout=10, what="irssi's own join"
            )
            await irssi.wait_for_screen(
                rf"{CHANNEL}: Total of 2 nicks", timeout=10, what="irssi's NAMES summary"
            )

            assert not _refusals(proxy), "server refused something irssi sent"
    finally:
        irssi.stop()


def _reserved_433(nick: str) -> Callable[[ProxyLine], bool]:
    return lambda pl: (
        _server_sent("433")(pl)
        and pl.msg.params[1:2] == (nick,)
        and "reserved" in pl.msg.params[-1].lower()
    )


async def _assert_fell_back(proxy: LoggingProxy, taken: str, fallback: str) -> None:
    """Registration: 433 "reserved" for ``taken``, then the client tries ``fallback``
    and gets 001 under it; no SASL was attempted."""
    refused = await proxy.wait_for(
        _reserved_433(taken), timeout=15, what=f"433 reserved for {taken}"
    )
    start = proxy.lines.index(refused)
    await proxy.wait_for(
        lambda pl: pl.direction == "C>S" and pl.msg.command == "NICK"
        and pl.msg.params[:1] == (fallback,),
        since=start,
        timeout=10,
        what=f"the client trying its alternate nick {fallback}",
    )
    welcome = await proxy.wait_for(_welcome, since=start, timeout=10, what=f"001 for {fallback}")
    assert welcome.msg.params[0] == fallback, welcome.line
    assert not proxy.client_sent("AUTHENTICATE")


@needs("irssi", "tmux")
async def test_irssi_falls_back_from_a_reserved_nick(
    irc_server: RunningServer, raw: RawClient, proxy: LoggingProxy, tmp_path: Path
) -> None:
    _chat_only(irc_server)
    irssi = Irssi(tmp_path / "irssi", "alice")  # no SASL: alice is someone else's account
    try:
        with diagnostics(irc_server, proxy, irssi.debug):
            await _create_account(irc_server, "alice")
            await raw.register()
            await raw.join(CHANNEL)

            irssi.start(HOST, proxy.port)
            await _assert_fell_back(proxy, "alice", "alice_")
            welcome = next(pl for pl in proxy.lines if _welcome(pl))
            await irssi.wait_for_screen(
                re.escape(_welcome_text(welcome)), timeout=10, what="irssi showing 001"
            )
            # irssi says nothing on screen about the refused nick; it just carries on.
            assert await _whois_account(raw, "alice_") is None

            mark = raw.mark()
            await irssi.command(f"/join {CHANNEL}")
            await raw.wait_for(
                lambda m: m.command == "JOIN" and m.nick == "alice_" and m.params[:1] == (CHANNEL,),
                since=mark,
                timeout=10,
                what="alice_'s JOIN",
            )

            # Once registered, asking for the reserved nick is refused the same way.
            since = len(proxy.lines)
            await irssi.command("/nick alice")
            await proxy.wait_for(
                _reserved_433("alice"), since=since, timeout=10, what="433 for /nick alice"
            )
            await _whois_account(raw, "alice_")  # still there under the fallback nick
            # irssi prints its own text for 433 (not the server's) in the status window.
            await irssi.command("/window 1")
            await irssi.wait_for_screen(
                r"-!- Nick alice is already in use", timeout=10, what="irssi showing the 433"
            )

            assert not _refusals(proxy), "server refused something irssi sent"
    finally:
        irssi.stop()


@needs("weechat-headless")
async def test_weechat_falls_back_from_a_reserved_nick(
    irc_server: RunningServer, raw: RawClient, proxy: LoggingProxy, tmp_path: Path
) -> None:
    _chat_only(irc_server)
    wee = WeeChat(tmp_path / "weechat", "weenie", alternates=("weenie_",))
    try:
        with diagnostics(irc_server, proxy, wee.debug):
            await _create_account(irc_server, "weenie")
            await raw.register()
            await raw.join(CHANNEL)

            wee.start(HOST, proxy.port)
            await _assert_fell_back(proxy, "weenie", "weenie_")
            await wee.wait_for_log(
                None,
                r'nickname "weenie" is already in use, trying nickname "weenie_"',
                timeout=10,
                what="weechat logging its switch to the alternate nick",
            )
            await _weechat_took(wee, next(pl for pl in proxy.lines if _welcome(pl)))
            assert await _whois_account(raw, "weenie_") is None

            mark = raw.mark()
            await wee.command(f"/join {CHANNEL}", buffer=f"irc.server.{WeeChat.SERVER}")
            await raw.wait_for(
                lambda m: m.command == "JOIN" and m.nick == "weenie_"
                and m.params[:1] == (CHANNEL,),
                since=mark,
                timeout=10,
                what="weenie_'s JOIN",
            )
            await wee.wait_for_log(
                CHANNEL, rf"{CHANNEL}: 2 nicks", timeout=10, what="weechat's NAMES summary"
            )

            assert not _refusals(proxy), "server refused something weechat sent"
    finally:
        wee.stop()


async def _hold_as_ghost(ghost: RawClient, irc_server: RunningServer, account: str) -> None:
    """``ghost`` connects, logs in to ``account`` and takes its nick: a session whose
    client has gone away without the server knowing yet."""
    await ghost.connect(irc_server.host, irc_server.port)
    await ghost.send("NICK ghost")
    await ghost.send("USER ghost 0 * :the lost session")
    await ghost.wait_for(lambda m: m.command == "001", timeout=10, what="ghost's 001")
    await ghost.send(f"NS IDENTIFY {account} {PASSWORD}")
    await ghost.wait_for(lambda m: m.command == "900", timeout=15, what="ghost's login")
    await ghost.send(f"NICK {account}")
    await ghost.wait_for(lambda m: m.command == "NICK", timeout=10, what=f"ghost as {account}")


@needs("irssi", "tmux")
async def test_irssi_regains_its_nick_and_registers_a_channel(
    irc_server: RunningServer, raw: RawClient, proxy: LoggingProxy, tmp_path: Path
) -> None:
    """A lost session holds alice; irssi logs in with SASL, falls back to alice_, takes
    the nick back with NickServ REGAIN, registers a channel with ChanServ, and gets +o
    from ChanServ when it rejoins."""
    _chat_only(irc_server)
    irssi = Irssi(tmp_path / "irssi", "alice", sasl=("alice", PASSWORD))
    ghost = RawClient("alice")
    try:
        with diagnostics(irc_server, proxy, irssi.debug):
            await _create_account(irc_server, "alice")
            await _hold_as_ghost(ghost, irc_server, "alice")
            await raw.register()

            irssi.start(HOST, proxy.port)
            await _assert_sasl_login(proxy, "alice")
            await irssi.command("/msg NickServ REGAIN")
            await ghost.wait_for(lambda m: m.command == "KILL", timeout=10, what="the KILL")
            await proxy.wait_for(
                lambda pl: _server_sent("NICK")(pl) and pl.msg.params[:1] == ("alice",),
                timeout=10, what="NICK alice for irssi",
            )
            await irssi.wait_for_screen(
                r"You're now known as alice", timeout=10, what="irssi's new nick"
            )

            await irssi.command("/join #owned")
            await irssi.wait_for_screen(
                r"Total of 1 nicks", timeout=10, what="irssi alone in #owned, its operator"
            )
            await raw.join("#owned")
            await irssi.command("/msg ChanServ REGISTER #owned")
            await irssi.wait_for_log(  # in irssi's ChanServ query window
                r"-ChanServ\(ChanServ@[^)]*\)- #owned is registered to alice", timeout=10,
                what="ChanServ's answer in irssi",
            )
            since = len(proxy.lines)
            await irssi.command("/part #owned")
            await proxy.wait_for(  # irssi joins only a channel it knows it has left
                _server_sent("PART"), since=since, timeout=10, what="irssi's PART echoed"
            )
            mark = raw.mark()
            await irssi.command("/join #owned")
            mode = await raw.wait_for(
                lambda m: m.command == "MODE" and m.params == ("#owned", "+o", "alice"),
                since=mark, timeout=10, what="ChanServ's +o",
            )
            assert mode.nick == "ChanServ"
            await irssi.wait_for_screen(
                r"mode/#owned \[\+o alice\] by ChanServ", timeout=10, what="irssi's mode line"
            )
            assert not _refusals(proxy), "server refused something irssi sent"
    finally:
        irssi.stop()
        await ghost.close()


@needs("weechat-headless")
async def test_weechat_regains_its_nick_and_registers_a_channel(
    irc_server: RunningServer, raw: RawClient, proxy: LoggingProxy, tmp_path: Path
) -> None:
    """As irssi above: WeeChat logged in with SASL falls back from a nick its lost
    session holds, takes it back with NickServ REGAIN, registers a channel and gets
    ChanServ's +o on rejoining."""
    _chat_only(irc_server)
    wee = WeeChat(tmp_path / "weechat", "wendy", alternates=("wendy_",),
                  sasl=("wendy", PASSWORD))
    ghost = RawClient("wendy")
    server_buffer = f"irc.server.{WeeChat.SERVER}"
    try:
        with diagnostics(irc_server, proxy, wee.debug):
            await _create_account(irc_server, "wendy")
            await _hold_as_ghost(ghost, irc_server, "wendy")
            await raw.register()

            wee.start(HOST, proxy.port)
            await _assert_sasl_login(proxy, "wendy")
            welcome = next(pl for pl in proxy.lines if _welcome(pl))
            assert welcome.msg.params[0] == "wendy_"
            await _weechat_took(wee, welcome)
            await wee.command("/msg NickServ REGAIN", buffer=server_buffer)
            await ghost.wait_for(lambda m: m.command == "KILL", timeout=10, what="the KILL")
            await proxy.wait_for(
                lambda pl: _server_sent("NICK")(pl) and pl.msg.params[:1] == ("wendy",),
                timeout=10, what="NICK wendy for weechat",
            )
            await wee.wait_for_log(
                None, r"You are now known as wendy", timeout=10, what="weechat's new nick"
            )

            await wee.command("/join #owned", buffer=server_buffer)
            await wee.wait_for_log(
                "#owned", r"#owned: 1 nick", timeout=10, what="weechat alone in #owned"
            )
            await raw.join("#owned")
            since = len(proxy.lines)
            await wee.command("/msg ChanServ REGISTER #owned", buffer=server_buffer)
            await proxy.wait_for(
                lambda pl: _server_sent("NOTICE")(pl)
                and pl.msg.params[-1] == "#owned is registered to wendy",
                since=since, timeout=10, what="ChanServ's answer",
            )
            since = len(proxy.lines)
            await wee.command("/part #owned", buffer=wee.buffer_name("#owned"))
            await proxy.wait_for(
                _server_sent("PART"), since=since, timeout=10, what="weechat's PART echoed"
            )
            mark = raw.mark()
            await wee.command("/join #owned", buffer=server_buffer)
            mode = await raw.wait_for(
                lambda m: m.command == "MODE" and m.params == ("#owned", "+o", "wendy"),
                since=mark, timeout=10, what="ChanServ's +o",
            )
            assert mode.nick == "ChanServ"
            await wee.wait_for_log(
                "#owned", r"\[\+o wendy\] by ChanServ", timeout=10, what="weechat's mode line"
            )
            assert not _refusals(proxy), "server refused something weechat sent"
    finally:
        wee.stop()
        await ghost.close()


# ---------------------------------------------------------------------------
# Caller ID (+g, ACCEPT): WeeChat knows solanum's numerics (our server only).
# ---------------------------------------------------------------------------


async def test_weechat_with_caller_id(
    irc_server: RunningServer, raw: RawClient, proxy: LoggingProxy, tmp_path: Path
) -> None:
    """A WeeChat user sets +g: a stranger's message is held back (716/717 to the
    stranger, WeeChat shows the 718), /quote ACCEPT lets it through, and WeeChat's own
    message to someone lets that someone answer."""
    _chat_only(irc_server, "no caller ID (user mode +g, ACCEPT)")
    wee = WeeChat(tmp_path / "weechat", "gwen")
    server_buffer = f"irc.server.{WeeChat.SERVER}"
    try:
        with diagnostics(irc_server, proxy, wee.debug):
            await raw.register()
            await _start_weechat(wee, proxy)
            await wee.command("/mode gwen +g", buffer=server_buffer)
            await proxy.wait_for(
                lambda pl: _server_sent("MODE")(pl) and pl.msg.params[-1:] == ("+g",),
                timeout=10, what="MODE gwen +g",
            )

            mark = raw.mark()
            await raw.send("PRIVMSG gwen :knock knock")
            refused = await raw.wait_for(
                lambda m: m.command == "716", since=mark, timeout=10, what="716"
            )
            assert refused.params[1] == "gwen"
            await raw.wait_for(lambda m: m.command == "717", since=mark, timeout=10, what="717")
            await wee.wait_for_log(
                None, r"rawbob.*is messaging you, and you have umode \+g", timeout=10,
                what="weechat showing the 718",
            )
            assert "knock knock" not in wee.log_text("rawbob")

            await wee.command("/quote ACCEPT rawbob", buffer=server_buffer)
            await wee.command("/quote ACCEPT *", buffer=server_buffer)
            await proxy.wait_for(_server_sent("282"), timeout=10, what="the accept list")
            await raw.send("PRIVMSG gwen :second try")
            await wee.wait_for_log(
                "rawbob", r"rawbob\tsecond try$", timeout=10, what="the accepted message"
            )

            # gwen writes to someone new: they may answer at once (solanum's rule).
            carol = await RawClient("carol").connect(irc_server.host, irc_server.port)
            try:
                await carol.register()
                await wee.command("/msg carol hello carol", buffer=server_buffer)
                await carol.wait_for(lambda m: m.command == "PRIVMSG", timeout=10,
                                     what="gwen's message to carol")
                await carol.send("PRIVMSG gwen :hello gwen")
                await wee.wait_for_log(
                    "carol", r"carol\thello gwen$", timeout=10, what="carol's answer"
                )
            finally:
                await carol.quit()
            assert not _refusals(proxy), "server refused something weechat sent"
    finally:
        wee.stop()


@needs("weechat-headless")
async def test_weechat_gets_a_multiline_message_as_its_lines(
    irc_server: RunningServer, raw: RawClient, proxy: LoggingProxy, tmp_path: Path
) -> None:
    """A draft/multiline message from a client with the capability reaches WeeChat
    (3.8: without it) as the lines it was sent in, blank lines left out, a long
    concatenated line as its pieces; nothing WeeChat cannot parse."""
    _chat_only(irc_server, "no draft/multiline")
    wee = WeeChat(tmp_path / "weechat", "mona")
    try:
        with diagnostics(irc_server, proxy, wee.debug):
            await raw.send("CAP REQ :batch draft/multiline")
            await raw.wait_for(lambda m: m.command == "CAP" and m.params[1] == "ACK",
                               timeout=10, what="CAP ACK")
            await raw.send("CAP END")
            await raw.register()
            await raw.join(CHANNEL)
            await _start_weechat(wee, proxy)
            mark = raw.mark()
            await wee.command(f"/join {CHANNEL}", buffer=f"irc.server.{WeeChat.SERVER}")
            await raw.wait_for(lambda m: m.command == "JOIN" and m.nick == "mona", since=mark,
                               timeout=10, what="mona's JOIN")
            for line in (f"BATCH +p1 draft/multiline {CHANNEL}",
                         f"@batch=p1 PRIVMSG {CHANNEL} :first line",
                         f"@batch=p1 PRIVMSG {CHANNEL} :",
                         f"@batch=p1 PRIVMSG {CHANNEL} :  indented second ",
                         f"@batch=p1;draft/multiline-concat PRIVMSG {CHANNEL} :and its tail",
                         "BATCH -p1"):
                await raw.send(line)
            for text in ("first line", "  indented second ", "and its tail"):
                await wee.wait_for_log(CHANNEL, rf"rawbob\t{re.escape(text.rstrip())}",
                                       timeout=10, what=f"the line {text!r}")
            relayed = [pl.msg for pl in proxy.lines
                       if pl.direction == "S>C" and pl.msg.command == "PRIVMSG"]
            assert [m.params[-1] for m in relayed] == [
                "first line", "  indented second ", "and its tail"]
            assert not _refusals(proxy), "server refused something weechat sent"
    finally:
        wee.stop()
