"""Caller ID (user mode +g and ACCEPT, as on solanum and charybdis): /accept, and the
numerics that say a private message was dropped, shown where the user looks."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.config import load
from client.model import (
    BufferChanged,
    BufferKind,
    BufferOpened,
    Delivery,
    Kind,
    Line,
    LineAdded,
)
from client.session import Session
from client.ui.views import Views, status_fragments
from tests.conftest import RunningServer

from .helpers import NOW, chat_session, feed, last_error, make, ngircd_session, privmsg, run
from .netutil import ChatClient, has_texts, texts
from .recorded import CHAT_BURST

# Our server's ISUPPORT tokens for caller ID (the recorded burst predates them).
CALLERID_005 = ":test.server 005 alice ACCEPT=50 CALLERID=g :are supported by this server"


def callerid_session(ignore: tuple[str, ...] = ()) -> Session:
    """Registered to (a recording of) our server with caller ID, in #t with bob and carol."""
    s = chat_session(ignore=ignore)
    feed(s, [CALLERID_005, ":bob!~b@h JOIN #t", ":carol!~c@h JOIN #t"])
    s.switch("#t")
    s.take_events()
    return s


def last(s: Session, buf_name: str | None = None) -> Line:
    buf = s.current if buf_name is None else s.buffer(buf_name)
    assert buf is not None
    return buf.lines[-1]


# ---------------------------------------------------------------------- /accept


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("/accept", ["ACCEPT *"]),
        ("/accept *", ["ACCEPT *"]),
        # The server confirms no change: the list it then holds is asked for and shown.
        ("/accept bob", ["ACCEPT bob", "ACCEPT *"]),
        ("/accept bob,carol", ["ACCEPT bob,carol", "ACCEPT *"]),
        ("/accept -bob", ["ACCEPT -bob", "ACCEPT *"]),
        ("/accept bob carol, -dave", ["ACCEPT bob,carol,-dave", "ACCEPT *"]),
        ("/accept bob,bob", ["ACCEPT bob", "ACCEPT *"]),
        ("/ACCEPT  dave ", ["ACCEPT dave", "ACCEPT *"]),
    ],
)
def test_accept_sends(typed: str, sent: list[str]) -> None:
    s = callerid_session()
    assert run(s, typed) == sent


def test_a_long_accept_list_is_sent_in_lines_that_fit() -> None:
    s = callerid_session()
    nicks = [f"someone{i:02}withalongnick" for i in range(40)]
    out = run(s, "/accept " + ",".join(nicks))
    assert len(out) > 2 and out[-1] == "ACCEPT *"
    assert all(len(line.encode()) <= 450 for line in out)
    sent = [nick for line in out[:-1] for nick in line.removeprefix("ACCEPT ").split(",")]
    assert sent == nicks


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("/accept #t", "Not a nick: '#t'"),
        ("/accept * bob", "Not a nick: '*'"),
        ("/accept bob,-*", "Not a nick: '-*'"),
        ("/accept -", "Invalid nick: ''"),
        ("/accept :bob", "Invalid nick: ':bob'"),
    ],
)
def test_accept_bad_usage_sends_nothing(typed: str, error: str) -> None:
    s = callerid_session()
    assert run(s, typed) == []
    assert last_error(s).startswith(error)


def test_accept_needs_a_connection() -> None:
    s = make()
    assert run(s, "/accept bob") == []
    assert last_error(s) == "/accept: not connected"


@pytest.mark.parametrize("session", [chat_session, ngircd_session])
def test_accept_needs_a_server_with_caller_id(session: object) -> None:
    s = session()  # type: ignore[operator]
    assert s.registered and "CALLERID" not in s.isupport
    for typed in ("/accept", "/accept bob"):
        assert run(s, typed) == []
        assert last_error(s) == "This server has no caller ID (+g)"


def test_caller_id_mode_letter_comes_from_isupport() -> None:
    s = chat_session()
    modes = [s.callerid_mode]
    for token in ("CALLERID", "CALLERID=G", "-CALLERID"):  # hybrid's has no letter
        feed(s, [f":test.server 005 alice {token} :are supported"])
        modes.append(s.callerid_mode)
    assert modes == [None, "g", "G", None]


def test_accept_help_and_completion() -> None:
    s = callerid_session()
    s.input("/help accept", NOW)
    assert last(s).text.startswith("/accept [NICK[,NICK...] | -NICK | *] — Caller ID:")
    s.input("/help", NOW)
    assert any(ln.text.strip().startswith("/accept [NICK") for ln in s.current.lines)
    assert s.complete("/acc").candidates == ["/accept "]
    feed(s, [privmsg("dave", "alice", "hi"), privmsg("carol", "#t", "hello")], NOW + 1)
    s.take_events()
    # Channel members (recent speakers first), then query partners; never us.
    assert s.complete("/accept ").candidates == []
    c = s.complete("/accept bo")
    assert (c.start, c.candidates) == (8, ["bob "])
    c = s.complete("/accept bob,ca")
    assert (c.start, c.end, c.candidates) == (12, 14, ["carol "])
    c = s.complete("/accept -d")
    assert (c.start, c.candidates) == (9, ["dave "])
    assert s.complete("/accept bob -c").candidates == ["carol "]
    assert s.complete("/accept al").candidates == []
    assert s.complete("/accept -").candidates == ["carol ", "bob ", "dave "]


# ---------------------------------------------------------------------- the list


def test_the_accept_list_is_one_line_where_the_user_is() -> None:
    s = callerid_session()
    out = feed(s, [
        ":test.server 281 alice bob carol",
        ":test.server 281 alice :dave erin",  # charybdis: the nicks in one parameter
        ":test.server 282 alice :End of /ACCEPT list.",
    ])  # fmt: skip
    assert out == []
    line = last(s)
    assert (line.kind, line.text) == (Kind.INFO, "Accepted: bob, carol, dave, erin")
    assert [ln.text for ln in s.server.lines if "Accept" in ln.text or "281" in ln.text] == []
    feed(s, [":test.server 282 alice :End of /ACCEPT list."])
    assert last(s).text == "Your accept list is empty"


def test_the_list_in_progress_is_forgotten_on_reconnect() -> None:
    s = callerid_session()
    feed(s, [":test.server 281 alice bob"])
    s.connection_lost(NOW)
    s.connection_made(NOW)
    feed(s, [":test.server 282 alice :End of /ACCEPT list."])
    assert s.current.lines[-1].text == "Your accept list is empty"


# ---------------------------------------------------------------------- our message refused


def test_716_and_717_in_the_query_with_that_nick() -> None:
    s = callerid_session()
    s.open_query("bob", NOW)
    s.take_events()
    feed(s, [
        ":test.server 716 alice bob :is in +g mode (server-side ignore.)",
        ":test.server 717 alice bob :has been informed that you messaged them.",
    ])  # fmt: skip
    query = s.buffer("bob")
    assert query is not None and s.current is query
    assert [(ln.kind, ln.text) for ln in list(query.lines)[-2:]] == [
        (Kind.ERROR, "bob has +g (server-side ignore): your message was not delivered"),
        (Kind.INFO, "bob was told that you tried to message them"),
    ]
    assert not any(ln.highlight for ln in query.lines)


def test_716_without_a_query_is_shown_where_the_user_is_and_opens_none() -> None:
    s = callerid_session()
    feed(s, [":test.server 716 alice carol :is in +g mode (server-side ignore.)"])
    assert last(s).text == "carol has +g (server-side ignore): your message was not delivered"
    assert s.current.name == "#t" and s.buffer("carol") is None
    assert not any(isinstance(e, BufferOpened) for e in s.take_events())
    # Short of parameters: still an error line, never an exception.
    feed(s, [":test.server 716 alice :is in +g mode"])
    assert last(s).kind is Kind.ERROR and s.malformed == 0


# ---------------------------------------------------------------------- someone tried us


def test_718_is_a_highlight_where_the_user_is_and_in_the_senders_query() -> None:
    s = callerid_session()
    s.open_query("carol", NOW, switch=False)
    s.take_events()
    feed(s, [":test.server 718 alice carol ~c@h :is messaging you, and you have umode +g."])
    text = "carol (~c@h) is trying to message you, but you have +g: /accept carol to let them"
    chan, query = s.buffer("#t"), s.buffer("carol")
    assert chan is not None and query is not None and s.current is chan
    for buf in (chan, query):
        line = buf.lines[-1]
        assert (line.kind, line.text, line.highlight) == (Kind.INFO, text, True)
    assert (query.highlights, query.unread) == (1, 0)  # a highlight, not a message
    events = s.take_events()
    assert {e.buffer.name for e in events if isinstance(e, LineAdded)} == {"#t", "carol"}
    assert any(isinstance(e, BufferChanged) and e.buffer is query for e in events)


def test_718_opens_no_query_and_says_nothing_for_an_ignored_sender() -> None:
    s = callerid_session(ignore=("*!*@spam.example",))
    feed(s, [":test.server 718 alice dave ~d@h :is messaging you, and you have umode +g."])
    assert last(s).text.startswith("dave (~d@h) is trying to message you")
    assert s.buffer("dave") is None
    before = len(s.current.lines)
    feed(s, [":test.server 718 alice eve ~e@spam.example :is messaging you, and you have +g."])
    assert len(s.current.lines) == before and s.buffer("eve") is None


def test_718_names_the_servers_mode_letter() -> None:
    s = callerid_session()
    feed(s, [":test.server 005 alice CALLERID=G :are supported"])
    feed(s, [":test.server 718 alice dave ~d@h :is messaging you, and you have umode +G."])
    assert last(s).text.endswith("but you have +G: /accept dave to let them")


# ---------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (":test.server 456 alice :Accept list is full",
         "Accept list is full (at most 50): /accept -NICK makes room"),
        (":test.server 457 alice bob :is already on your accept list",
         "bob is already on your accept list"),
        (":test.server 458 alice bob :is not on your accept list",
         "bob is not on your accept list"),
    ],
)  # fmt: skip
def test_accept_refusals_are_error_lines_where_the_user_is(line: str, text: str) -> None:
    s = callerid_session()
    s.open_query("bob", NOW, switch=False)  # replies to /accept, typed here: not there
    feed(s, [line])
    assert s.current.name == "#t"
    assert (last(s).kind, last(s).text) == (Kind.ERROR, text)


def test_494_is_an_error_in_the_query_with_the_nick() -> None:
    s = callerid_session()
    s.open_query("dave", NOW, switch=False)
    feed(s, [
        ":test.server 494 alice dave :is not on your accept list, which is full: "
        "they cannot answer you (+g)"
    ])  # fmt: skip
    line = last(s, "dave")
    assert line.kind is Kind.ERROR
    assert line.text == (
        "dave is not on your accept list, which is full: they cannot answer you (+g)"
    )


# ---------------------------------------------------------------------- the status line


def test_plus_g_shows_with_the_nick_in_the_status_line() -> None:
    s = callerid_session()
    feed(s, [":alice!~alice@host MODE alice :+g"])
    assert s.user_modes == "g"
    status = "".join(t for _, t, *_ in status_fragments(s, Views()))
    assert status.startswith(" [alice(+g)]")
    feed(s, [":alice!~alice@host MODE alice :-g"])
    assert "(+" not in "".join(t for _, t, *_ in status_fragments(s, Views()))


# ---------------------------------------------------------------------- real server


async def test_caller_id_against_our_server(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    alice = ChatClient.start(server.port, "alice")
    bob = ChatClient.start(server.port, "bob")
    clients += [alice, bob]
    a, b = alice.session, bob.session
    await alice.wait(lambda: a.registered and a.callerid_mode == "g", "registration")
    await bob.wait(lambda: b.registered, "registration")

    alice.conn.input("/mode alice +g")
    await alice.wait(lambda: "g" in a.user_modes, "+g")
    assert "alice(+g)" in "".join(t for _, t, *_ in status_fragments(a, Views()))

    # bob's message is dropped: he is told so in the query with alice, where his
    # message shows as not sent; alice is told that he tried.
    bob.conn.input("/msg alice are you there?")
    to_alice = b.buffer("alice")
    assert to_alice is not None
    await bob.wait(lambda: any("told" in ln.text for ln in to_alice.lines), "the 716 and 717")
    assert [(ln.kind, ln.text) for ln in list(to_alice.lines)[-3:]] == [
        (Kind.MESSAGE, "are you there?"),
        (Kind.ERROR, "alice has +g (server-side ignore): your message was not delivered"),
        (Kind.INFO, "alice was told that you tried to message them"),
    ]
    assert to_alice.lines[-3].delivery is Delivery.FAILED
    assert to_alice.lines[-3].note == "not sent: alice is in +g mode (server-side ignore.)"
    def tried_lines() -> list[Line]:
        return [ln for ln in a.current.lines if "trying to message you" in ln.text]

    await alice.wait(lambda: bool(tried_lines()), "the 718")
    [tried] = tried_lines()
    assert tried.highlight and tried.text.startswith("bob (")
    assert tried.text.endswith("is trying to message you, but you have +g: /accept bob to let them")
    assert a.buffer("bob") is None  # nothing was delivered

    alice.conn.input("/accept bob")
    assert alice.sent[-2:] == ["ACCEPT bob", "ACCEPT *"]
    await alice.wait(lambda: a.current.lines[-1].text == "Accepted: bob", "the list")

    bob.conn.input("/msg alice now?")
    await alice.wait(lambda: has_texts(a.buffer("bob"), ["now?"]), "bob's message")
    query = a.buffer("bob")
    assert query is not None and query.kind is BufferKind.QUERY
    assert texts(query) == ["now?"]

    alice.conn.input("/accept -bob")
    await alice.wait(lambda: a.current.lines[-1].text == "Your accept list is empty", "the list")
    alice.conn.input("/accept -bob")  # twice: the server's refusal, then the list
    await alice.wait(
        lambda: [ln.text for ln in a.current.lines].count("Your accept list is empty") == 2,
        "the list again",
    )
    refusal = list(a.current.lines)[-2]
    assert (refusal.kind, refusal.text) == (Kind.ERROR, "bob is not on your accept list")


def test_configured_user_modes_are_set_after_every_registration(tmp_path: Path) -> None:
    """``user_modes = "+g"`` in a server's table: the server forgets a connection's
    modes, so the client sets them again after each registration."""
    path = tmp_path / "config.toml"
    path.write_text('[servers.home]\nhost = "h"\nuser_modes = "+gw"\n', encoding="utf-8")
    assert load(path).servers["home"].user_modes == "+gw"
    s = make(user_modes="+g")
    s.connection_made(NOW)
    sent = feed(s, CHAT_BURST)
    assert sent[-1] == "MODE alice +g"
    s.connection_lost(NOW + 1)
    s.connection_made(NOW + 2)
    assert feed(s, CHAT_BURST, NOW + 2).count("MODE alice +g") == 1
    plain = make()
    plain.connection_made(NOW)
    assert not [line for line in feed(plain, CHAT_BURST) if line.startswith("MODE")]
