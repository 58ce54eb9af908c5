"""IRCv3 typing notifications: shown from others, sent when enabled, over a real server."""

from __future__ import annotations

import pytest

from client.model import BufferChanged
from client.session import TYPING_EVERY, Session
from client.ui.views import Views, status_fragments, typing_text
from tests.conftest import RunningServer

from .helpers import NOW, chat_session, feed
from .netutil import ChatClient


def status(s: Session, now: float) -> str:
    return "".join(t for _, t, *_ in status_fragments(s, Views(), now=now))


@pytest.fixture
def s() -> Session:
    session = chat_session()
    session.switch("#t")
    feed(session, [":bob!b@h JOIN #t", ":carol!c@h JOIN #t"])
    session.take_events()
    return session


def test_others_typing_shows_and_ends(s: Session) -> None:
    buf = s.buffer("#t")
    assert buf is not None
    feed(s, ["@+typing=active :bob!b@h TAGMSG #t"])
    assert any(isinstance(e, BufferChanged) for e in s.take_events())
    assert s.typing_nicks(buf, NOW) == ["bob"]
    assert "[bob is typing]" in status(s, NOW)
    feed(s, ["@+typing=active :carol!c@h TAGMSG #t"])
    assert s.typing_nicks(buf, NOW) == ["bob", "carol"]
    feed(s, [":bob!b@h PRIVMSG #t :done typing"])  # a message ends it
    assert s.typing_nicks(buf, NOW) == ["carol"]
    feed(s, ["@+typing=done :carol!c@h TAGMSG #t"])
    assert s.typing_nicks(buf, NOW) == []
    assert "typing" not in status(s, NOW)


def test_typing_runs_out_and_paused_is_not_shown(s: Session) -> None:
    buf = s.buffer("#t")
    assert buf is not None
    feed(s, ["@+typing=active :bob!b@h TAGMSG #t", "@+typing=paused :carol!c@h TAGMSG #t"])
    assert s.typing_nicks(buf, NOW + 5.9) == ["bob"]
    assert s.typing_nicks(buf, NOW + 6.1) == []  # active holds 6 s without a renewal
    assert "carol" in [n for n, _, _ in buf.typing.values()]  # paused: kept, not shown
    feed(s, [":carol!c@h PART #t"])
    assert s.typing_nicks(buf, NOW) == [] and not buf.typing  # left: forgotten


def test_typing_from_strangers_and_bad_values_is_ignored(s: Session) -> None:
    before = len(s.buffers)
    feed(s, ["@+typing=active :dave!d@h TAGMSG alice",  # no query with dave: none opened
             "@+typing=maybe :bob!b@h TAGMSG #t",
             "@+typing=active :alice!a@h TAGMSG #t",  # our own echo
             ":bob!b@h TAGMSG #t"])
    buf = s.buffer("#t")
    assert buf is not None and not buf.typing and len(s.buffers) == before


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_typing_text(count: int) -> None:
    nicks = [f"n{i}" for i in range(count)]
    assert typing_text(nicks) == {
        1: "n0 is typing", 2: "n0, n1 are typing", 3: "n0, n1, n2 are typing",
        5: "5 people are typing"}[count]


def test_sending_is_off_unless_asked_for(s: Session) -> None:
    s.typed("hello", NOW)
    assert s.take_outgoing() == []


def test_sending_is_throttled_and_ends_with_done() -> None:
    s = chat_session(send_typing=True)
    s.switch("#t")
    s.typed("h", NOW)
    s.typed("he", NOW + 1)
    s.typed("hel", NOW + TYPING_EVERY)
    assert s.take_outgoing() == ["@+typing=active TAGMSG #t", "@+typing=active TAGMSG #t"]
    s.typed("", NOW + 4)  # the line was cleared
    assert s.take_outgoing() == ["@+typing=done TAGMSG #t"]
    s.typed("/join #x", NOW + 5)  # a command is not typing
    assert s.take_outgoing() == []
    s.typed("hi", NOW + 6)
    s.input("hi", NOW + 6)  # sent: the message itself ends the typing
    s.typed("", NOW + 6)
    assert s.take_outgoing() == ["@+typing=active TAGMSG #t", "@label=o1 PRIVMSG #t :hi"]
    s.switch(s.server)
    s.typed("x", NOW + 20)  # not to the server buffer
    assert s.take_outgoing() == []


async def test_typing_crosses_a_real_server(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    alice = ChatClient.start(server.port, "alice", channels=("#t",))
    alice.session.config.send_typing = True
    bob = ChatClient.start(server.port, "bob", channels=("#t",))
    clients += [alice, bob]
    for c in (alice, bob):
        await c.wait(lambda c=c: bool((b := c.session.buffer("#t")) and b.joined), "joined")
    chan = alice.session.buffer("#t")
    assert chan is not None
    await alice.wait(lambda: len(chan.members) == 2, "bob in #t")
    alice.session.switch("#t")
    alice.conn.typed("hello")
    buf = bob.session.buffer("#t")
    assert buf is not None
    await bob.wait(lambda: "alice" in [n for n, _, _ in buf.typing.values()], "typing seen")
    alice.conn.typed("")
    await bob.wait(lambda: not buf.typing, "typing done")
