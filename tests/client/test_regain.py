"""Getting our nick back (client/regain.py): registered as alice_ because alice was in
use, the session asks for alice again when MONITOR says it is free, at keepalives
(with backoff, bounded), and after logging in to the account alice; /nick stops it."""

from __future__ import annotations

from itertools import pairwise

from client.model import Kind
from client.regain import REGAIN_CAP, REGAIN_FIRST, REGAIN_TRIES
from client.session import Session
from tests.conftest import RunningServer

from .helpers import NOW, feed, make, run
from .netutil import ChatClient
from .recorded import CHAT_BURST
from .test_accounts import make_account

MONITOR_005 = ":test.server 005 alice_ MONITOR=100 :are supported by this server"
IN_USE = ":test.server 433 * alice :Nickname is already in use"


def fallback_burst(*extra: str, taken: str = IN_USE) -> list[str]:
    """Our server's registration, the nick alice refused with ``taken``: alice_."""
    ls, ack, welcome, *rest = CHAT_BURST
    return [ls, ack, taken, welcome.replace(" 001 alice ", " 001 alice_ "), *rest[:-1], *extra,
            rest[-1]]  # fmt: skip


def registered_as_fallback(*extra: str, taken: str = IN_USE, **kw: object) -> Session:
    s = make(channels=(), **kw)
    s.connection_made(NOW)
    s.take_outgoing()
    out = feed(s, fallback_burst(*extra, taken=taken))
    assert "NICK alice_" in out and s.nick == "alice_" and s.registered
    return s


def errors(s: Session) -> list[str]:
    return [ln.text for b in s.buffers for ln in b.lines if ln.kind is Kind.ERROR]


def test_monitor_says_when_the_nick_is_free() -> None:
    s = make(channels=())
    s.connection_made(NOW)
    s.take_outgoing()
    out = feed(s, fallback_burst(MONITOR_005))
    assert out[-1] == "MONITOR + alice"
    assert any("alice is in use: trying to get it back" in ln.text for ln in s.server.lines)
    # Still held (the old connection's ghost): nothing to do.
    assert feed(s, [":test.server 730 alice_ :alice!~a@old.host"]) == []
    # Gone: asked for at once; refused (another took it first), silently.
    assert feed(s, [":test.server 731 alice_ :alice"]) == ["NICK alice"]
    assert feed(s, [":test.server 433 alice_ alice :Nickname is already in use"]) == []
    assert errors(s) == [] and s.nick == "alice_"
    assert feed(s, [":test.server 731 alice_ :alice"]) == ["NICK alice"]
    # Ours: MONITOR watches it no more; no more tries.
    assert feed(s, [":alice_!~a@h NICK alice"]) == ["MONITOR - alice"]
    assert s.nick == "alice"
    assert feed(s, [":test.server 731 alice :alice"]) == []
    s.ping(NOW + 10 * REGAIN_CAP)
    assert "NICK alice" not in s.take_outgoing()
    assert errors(s) == []


def test_a_nick_on_the_notify_list_is_not_monitored_twice_nor_dropped() -> None:
    s = make(channels=(), notify=("alice",))
    s.connection_made(NOW)
    s.take_outgoing()
    out = feed(s, fallback_burst(MONITOR_005))
    assert out[-1] == "MONITOR + alice"  # the notify list's, once
    assert feed(s, [":test.server 731 alice_ :alice"]) == ["NICK alice"]
    assert feed(s, [":alice_!~a@h NICK alice"]) == []  # still on the notify list


def test_notify_del_of_the_nick_being_regained_keeps_watching_it() -> None:
    s = make(channels=(), notify=("alice", "bob"))
    s.connection_made(NOW)
    s.take_outgoing()
    feed(s, fallback_burst(MONITOR_005))
    # bob's entry goes; alice's stays, for the regain (it was dropped with the notify one).
    assert run(s, "/notify del alice bob") == ["MONITOR - bob"]
    assert feed(s, [":test.server 731 alice_ :alice"]) == ["NICK alice"]
    # Ours: the regain's watch ends now.
    assert feed(s, [":alice_!~a@h NICK alice"]) == ["MONITOR - alice"]


def test_keepalives_try_again_with_backoff_and_give_up() -> None:
    s = registered_as_fallback()  # no MONITOR on this server
    tried: list[float] = []
    at = NOW
    while at < NOW + 4 * 3600:
        at += 30
        s.ping(at)
        if "NICK alice" in s.take_outgoing():
            tried.append(at - NOW)
            assert feed(s, [":test.server 433 alice_ alice :Nickname is already in use"]) == []
    assert len(tried) == REGAIN_TRIES
    assert tried[0] >= REGAIN_FIRST
    gaps = [b - a for a, b in pairwise(tried)]
    assert gaps == sorted(gaps) and gaps[0] < gaps[-1] and gaps[-1] <= REGAIN_CAP + 30
    assert errors(s) == []
    assert "alice is still in use: no more tries to get it back (/nick alice to try again)" in [
        ln.text for ln in s.server.lines]


def test_a_keepalive_try_that_works() -> None:
    s = registered_as_fallback()
    s.ping(NOW + REGAIN_FIRST)
    assert "NICK alice" in s.take_outgoing()
    feed(s, [":alice_!~a@h NICK alice"])
    assert s.nick == "alice"
    s.ping(NOW + 10 * REGAIN_CAP)
    assert "NICK alice" not in s.take_outgoing()


def test_logging_in_to_the_account_of_that_name_takes_the_nick_at_once() -> None:
    """Our server keeps an account's name for it: at registration alice was refused
    (not logged in); /ns IDENTIFY, the 900, and NICK alice goes out at once."""
    reserved = (":test.server 433 * alice :Nickname is reserved for the account alice: log"
                " in to it first (SASL, or /msg NickServ IDENTIFY alice <password>)")
    s = registered_as_fallback(taken=reserved)
    run(s, "/ns IDENTIFY alice hunter22")
    out = feed(s, [":test.server 900 alice_ alice_!~a@h alice :You are now logged in as alice"])
    assert out == ["NICK alice"]
    feed(s, [":alice_!~a@h NICK alice"])
    assert s.nick == "alice" and s.account == "alice"


RESERVED = (":test.server 433 * alice :Nickname is reserved for the account alice: log in"
            " to it first (SASL, or /msg NickServ IDENTIFY alice <password>)")


def test_a_nick_reserved_for_an_account_is_not_waited_for_only_logged_in_to() -> None:
    """Nobody holds it, and it will not become free: only logging in to the account
    gets it. No "trying to get it back when it is free", no MONITOR, no tries."""
    s = make(channels=(), notify=("bob", "alice"))
    s.connection_made(NOW)
    s.take_outgoing()
    out = feed(s, fallback_burst(MONITOR_005, taken=RESERVED))
    assert "MONITOR + bob,alice" in out  # (the notify list's own)
    said = [ln.text for ln in s.server.lines]
    assert not any("trying to get it back" in text for text in said), said
    assert "alice is reserved for an account: log in to it to get it back" in said
    assert any(text.startswith("Nickname is reserved for the account alice") for text in said)
    assert feed(s, [":test.server 731 alice_ :alice"]) == []  # offline: still reserved
    for i in range(REGAIN_TRIES + 2):
        s.ping(NOW + (i + 1) * REGAIN_CAP)
        assert "NICK alice" not in s.take_outgoing()
    out = feed(s, [":test.server 900 alice_ alice_!~a@h alice :You are now logged in as alice"])
    assert out == ["NICK alice"]
    feed(s, [":alice_!~a@h NICK alice"])
    assert s.nick == "alice" and errors(s) == []


def test_a_try_refused_as_reserved_stops_the_tries_until_a_login() -> None:
    s = registered_as_fallback(MONITOR_005)
    assert feed(s, [":test.server 731 alice_ :alice"]) == ["NICK alice"]  # its holder left
    reserved = RESERVED.replace(" * alice ", " alice_ alice ")
    assert feed(s, [reserved]) == ["MONITOR - alice"]
    assert s.server.lines[-1].text == "alice is reserved for an account: log in to it to get " \
        "it back"
    s.ping(NOW + 10 * REGAIN_CAP)
    assert "NICK alice" not in s.take_outgoing()
    out = feed(s, [":test.server 900 alice_ alice_!~a@h alice :You are now logged in as alice"])
    assert out == ["NICK alice"] and errors(s) == []


def test_logging_in_to_another_account_does_not() -> None:
    s = registered_as_fallback()
    out = feed(s, [":test.server 900 alice_ alice_!~a@h bob :You are now logged in as bob"])
    assert "NICK alice" not in out


def test_nick_typed_by_the_user_stops_it() -> None:
    s = make(channels=())
    s.connection_made(NOW)
    s.take_outgoing()
    feed(s, fallback_burst(MONITOR_005))
    assert run(s, "/nick carol") == ["MONITOR - alice", "NICK carol"]
    assert feed(s, [":test.server 731 alice_ :alice"]) == []
    s.ping(NOW + 10 * REGAIN_CAP)
    assert "NICK alice" not in s.take_outgoing()
    # Refused, the user's own /nick is an error line as ever.
    feed(s, [":test.server 433 alice_ carol :Nickname is already in use"])
    assert errors(s) == ["carol: Nickname is already in use"]


def test_no_regain_for_an_erroneous_nick_nor_when_the_nick_was_free() -> None:
    s = make(nick="bad.nick", channels=())
    s.connection_made(NOW)
    s.take_outgoing()
    assert feed(s, [":srv 432 * bad.nick :Erroneous nickname"]) == ["NICK badnick_"]
    feed(s, [":srv 001 badnick_ :Welcome", ":srv 422 badnick_ :No MOTD"])
    s.ping(NOW + 10 * REGAIN_CAP)
    assert not any(line.startswith("NICK") for line in s.take_outgoing())
    t = make(channels=())
    t.connection_made(NOW)
    feed(t, CHAT_BURST)
    t.ping(NOW + REGAIN_FIRST)
    assert not any(line.startswith("NICK") for line in t.take_outgoing())


def test_a_reconnect_starts_over() -> None:
    s = registered_as_fallback()
    s.connection_lost(NOW + 1, "Connection reset by peer")
    s.connection_made(NOW + 2)
    assert "NICK alice" in s.take_outgoing()  # the preferred nick, as before
    feed(s, CHAT_BURST, NOW + 2)  # and it is free now
    assert s.nick == "alice"
    s.ping(NOW + 2 + REGAIN_FIRST)
    assert not any(line.startswith("NICK") for line in s.take_outgoing())


# ---------------------------------------------------------------------- our server


async def test_the_nick_comes_back_when_its_holder_leaves(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    """The old connection still holds alice when the new one registers (alice_); it
    goes, MONITOR tells, and the new one is alice."""
    old = ChatClient.start(server.port, "alice")
    clients.append(old)
    await old.wait(lambda: old.session.registered, "the old connection")
    new = ChatClient.start(server.port, "alice")
    clients.append(new)
    s = new.session
    await new.wait(lambda: s.registered and s.monitor_supported, "the new one, as alice_")
    assert s.nick == "alice_"
    await new.wait(lambda: "MONITOR + alice" in new.sent, "watching alice")
    await old.stop()
    await new.wait(lambda: s.nick == "alice", "alice back")
    assert not [ln.text for ln in s.server.lines if ln.kind is Kind.ERROR]


async def test_identify_takes_the_accounts_nick(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    await make_account(server, "alice", "s3cret-Pa55word")
    alice = ChatClient.start(server.port, "alice")
    clients.append(alice)
    s = alice.session
    await alice.wait(lambda: s.registered, "registration")
    assert s.nick == "alice_"  # reserved for the account
    said = [ln.text for ln in s.server.lines]
    assert "alice is reserved for an account: log in to it to get it back" in said, said
    assert not any("trying to get it back" in text for text in said), said
    alice.conn.input("/ns IDENTIFY alice s3cret-Pa55word")
    await alice.wait(lambda: s.nick == "alice", "the nick, once logged in")
    assert s.account == "alice"
