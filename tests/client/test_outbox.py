"""The outbox (client/outbox.py): own messages pending until confirmed, failed with a
reason, kept while disconnected, and neither lost nor doubled across a reconnect."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chat.servertime import format_time
from client import history as client_history
from client.chatlog import ChatLog
from client.model import (
    Buffer,
    Delivery,
    DeliveryChanged,
    Kind,
    Line,
    LineAdded,
    QuitRequested,
)
from client.outbox import MAX_WAITING, MAYBE_LOST, NOT_YET, SECRET_HELD
from client.session import ACK_DELAY, Session
from client.ui.render import LineRenderer, plain_text
from client.ui.views import Views, status_fragments
from server.config import ServerConfig
from tests.conftest import RunningServer, start_server

from .helpers import (
    NOW,
    T0,
    burst_without,
    chat_session,
    feed,
    history_batch,
    joined_session,
    last_error,
    messages,
    privmsg,
    reconnect,
    run,
    texts,
)
from .netutil import (
    DEADLINE,
    ChatClient,
    Ircd,
    Relay,
    has_texts,
    in_channel,
    restart_server,
)
from .netutil import texts as all_texts
from .recorded import CHAT_BURST, CHAT_JOIN

NO_LABELS = burst_without("labeled-response")


def labelled(label: str, line: str) -> str:
    """``line`` (a server line with tags) carrying ``label`` too."""
    assert line.startswith("@")
    return f"@label={label};{line[1:]}"


def echo(text: str, msgid: str, t: float, target: str = "#t", label: str | None = None) -> str:
    """Our own message as the server echoes it."""
    line = privmsg("alice", target, text, msgid, t)
    return labelled(label, line) if label is not None else line


def in_t(**kw: object) -> tuple[Session, Buffer]:
    """Registered with our server, in #t (current) with bob; #t's history has one
    message of bob's (msgid M1), so a reconnect fills the gap after it."""
    s = chat_session(**kw)
    buf = s.buffer("#t")
    assert buf is not None
    s.switch(buf)
    feed(s, [":bob!b@h JOIN #t", *history_batch("b0", "#t", [("bob", "earlier", "M1", T0 + 1)])])
    s.take_events()
    return s, buf


def rejoin(s: Session, now: float = NOW + 60) -> list[str]:
    """The server's answer to the rejoin: what the session sent then."""
    join = f"@time={format_time(T0 + 60)};msgid=J2 :alice!~a@127.0.0.1 JOIN #t"
    return feed(s, [join, *CHAT_JOIN[1:]], now)


def privmsgs(out: list[str]) -> list[str]:
    return [line for line in out if " PRIVMSG " in line or line.startswith("PRIVMSG ")]


def own(buf: Buffer) -> list[Line]:
    return [ln for ln in messages(buf) if ln.own]


def states(buf: Buffer) -> list[tuple[str, Delivery, str]]:
    return [(ln.text, ln.delivery, ln.note) for ln in own(buf)]


# ---------------------------------------------------------------------- pending, confirmed


def test_a_message_is_pending_until_its_labelled_echo_replaces_it_in_place() -> None:
    s, buf = in_t()
    assert run(s, "hello") == ["@label=o1 PRIVMSG #t :hello"]
    [pending] = own(buf)
    assert pending.delivery is Delivery.PENDING and pending.note == ""
    assert pending.msgid is None and pending.nick == "alice" and pending.prefix == "@"
    events = s.take_events()
    assert [type(e) for e in events] == [LineAdded]
    feed(s, [privmsg("bob", "#t", "meanwhile", "M2", T0 + 2)])  # said before the echo
    feed(s, [echo("hello", "E1", T0 + 3, label="o1")])
    assert texts(buf) == ["earlier", "hello", "meanwhile"]  # where it was typed
    [line] = own(buf)
    assert line.delivery is Delivery.DELIVERED and line.msgid == "E1" and line.time == T0 + 3
    changed = [e for e in s.take_events() if isinstance(e, DeliveryChanged)]
    assert [(e.old, e.line) for e in changed] == [(pending, line)]
    assert buf.last_msgid == "E1" and "E1" in buf.seen  # history will not bring it again
    assert buf.unread == 0 and buf.highlights == 0


def test_without_labels_the_echo_confirms_the_oldest_pending_line_with_its_text() -> None:
    s = joined_session(NO_LABELS, ("bob",))
    buf = s.current
    assert run(s, "same\nother\nsame") == [
        "PRIVMSG #t :same",
        "PRIVMSG #t :other",
        "PRIVMSG #t :same",
    ]
    assert [ln.delivery for ln in own(buf)] == [Delivery.PENDING] * 3
    feed(s, [echo("same", "E1", T0 + 1)])
    assert [(ln.text, ln.msgid) for ln in own(buf)] == [("same", "E1"), ("other", None),
                                                        ("same", None)]  # fmt: skip
    # Ours to another target (a channel we are not in: shown here, marked), or a text
    # we did not send (another client of ours): a line of its own; nothing pending changes.
    feed(s, [echo("same", "X1", T0 + 2, target="#elsewhere"), echo("never typed", "X2", T0 + 2)])
    assert [(ln.text, ln.msgid) for ln in own(buf)] == [
        ("same", "E1"), ("other", None), ("same", None), ("same", "X1"), ("never typed", "X2")]
    feed(s, [echo("other", "E2", T0 + 3), echo("same", "E3", T0 + 4)])
    assert [(ln.text, ln.msgid, ln.delivery) for ln in own(buf)][:3] == [
        ("same", "E1", Delivery.DELIVERED), ("other", "E2", Delivery.DELIVERED),
        ("same", "E3", Delivery.DELIVERED)]  # fmt: skip
    assert not s.outbox.pending


def test_each_piece_of_a_long_message_is_a_pending_line_of_its_own() -> None:
    s, buf = in_t()
    out = run(s, "word " * 300)
    assert len(out) == 4 and [o.split()[0] for o in out] == [f"@label=o{i}" for i in (1, 2, 3, 4)]
    assert [ln.delivery for ln in own(buf)] == [Delivery.PENDING] * 4
    feed(s, [echo(out[1].split(" :", 1)[1], "E2", T0 + 2, label="o2")])
    assert [ln.msgid for ln in own(buf)] == [None, "E2", None, None]


def test_actions_notices_and_queries_are_pending_too() -> None:
    s, buf = in_t()
    assert run(s, "/me waves") == ["@label=o1 PRIVMSG #t :\x01ACTION waves\x01"]
    assert run(s, "/notice #t heads up") == ["@label=o2 NOTICE #t :heads up"]
    assert run(s, "/msg bob psst") == ["@label=o3 PRIVMSG bob :psst"]
    query = s.buffer("bob")
    assert query is not None  # opened for the pending line, as the echo would
    assert [(ln.kind, ln.delivery) for ln in own(buf)] == [
        (Kind.ACTION, Delivery.PENDING), (Kind.NOTICE, Delivery.PENDING)]
    assert [(ln.text, ln.delivery) for ln in own(query)] == [("psst", Delivery.PENDING)]
    feed(s, [labelled("o1", privmsg("alice", "#t", "\x01ACTION waves\x01", "E1", T0 + 2)),
             "@label=o2;msgid=E2 :alice!~a@h NOTICE #t :heads up",
             echo("psst", "E3", T0 + 3, target="bob", label="o3")])  # fmt: skip
    assert [ln.msgid for ln in own(buf)] == ["E1", "E2"] and own(query)[0].msgid == "E3"
    assert not s.outbox.pending


def test_an_answer_without_an_echo_or_an_error_delivers_it() -> None:
    # A server that echoes nothing to a service (ours, to NickServ): the end of the
    # labelled answer (here an ACK) settles it.
    s, _ = in_t()
    run(s, "/msg NickServ HELP")
    query = s.buffer("NickServ")
    assert query is not None and own(query)[0].delivery is Delivery.PENDING
    feed(s, ["@label=o1 :test.server ACK"])
    assert own(query)[0].delivery is Delivery.DELIVERED and not s.outbox.pending


def test_without_echo_message_a_message_shows_as_sent_at_once() -> None:
    s = joined_session(burst_without("echo-message"), ("bob",))
    assert run(s, "hello") == ["PRIVMSG #t :hello"]  # no label: nothing to match
    assert states(s.current) == [("hello", Delivery.DELIVERED, "")]
    assert not s.outbox.pending


def test_without_echo_message_a_pong_vouches_for_what_was_written_before_its_ping() -> None:
    """A link that dies silently takes what was written in the minute before the ping
    timeout noticed it: what no PONG vouched for is not shown as sent for good."""
    no_echo = burst_without("echo-message", "draft/chathistory")  # (as ngIRCd)
    s = joined_session(no_echo, ("bob",))
    assert run(s, "one") == ["PRIVMSG #t :one"]
    assert run(s, "two") == ["PRIVMSG #t :two"]
    assert s.outbox.unacknowledged == 2 and s.due_at == NOW + ACK_DELAY
    s.tick(NOW + 1)
    assert s.take_outgoing() == []
    s.tick(NOW + ACK_DELAY)  # one PING for both
    (ping,) = s.take_outgoing()
    assert ping.startswith("PING chat-lag-")
    assert run(s, "three") == ["PRIVMSG #t :three"]  # written after the PING
    feed(s, [f":test.server PONG test.server {ping.split()[1]}"], NOW + 3)
    assert s.outbox.unacknowledged == 1
    # The connection dies before anything vouched for "three": it may be lost, and with
    # no history to look in, it fails for /resend once the channel is rejoined.
    s.connection_lost(NOW + 4, "ping timeout")
    reconnect(s, no_echo)
    feed(s, [":alice!~a@h JOIN #t"], NOW + 61)
    assert states(s.current) == [("one", Delivery.DELIVERED, ""), ("two", Delivery.DELIVERED, ""),
                                 ("three", Delivery.FAILED, MAYBE_LOST)]  # fmt: skip
    assert run(s, "/resend") == ["PRIVMSG #t :three"]


def test_without_echo_message_a_keepalive_pong_vouches_too_and_a_paste_gets_one_ping() -> None:
    s = joined_session(burst_without("echo-message"), ("bob",))
    s.outbox.paced = True  # (as the connection sets it): the paste goes out over time
    assert s.input("a\nb\nc", NOW)
    entries = s.outbox.take_queued()
    assert s.outbox.write_queued(entries[0], NOW)
    s.tick(NOW + ACK_DELAY)
    assert s.take_outgoing() == ["PRIVMSG #t :a"]  # the rest is coming: no PING yet
    for entry in entries[1:]:
        assert s.outbox.write_queued(entry, NOW + 3)
    token = s.ping(NOW + 4)  # a keepalive's PING covers all three
    s.take_outgoing()
    s.tick(NOW + 2 * ACK_DELAY + 1)
    assert s.take_outgoing() == []  # (that PING is on its way: none more)
    feed(s, [f":test.server PONG test.server {token}"], NOW + 5)
    assert s.outbox.unacknowledged == 0
    s.connection_lost(NOW + 6)
    assert [d for _, d, _ in states(s.current)] == [Delivery.DELIVERED] * 3


# ---------------------------------------------------------------------- refused


def test_a_labelled_refusal_fails_the_line_with_the_reason() -> None:
    s, buf = in_t()
    run(s, "one")
    run(s, "two")
    before = len(buf.lines)
    feed(s, ["@label=o1 :test.server 404 alice #t :Cannot send to channel",
             "@label=o2 :test.server FAIL PRIVMSG MESSAGE_TOO_FAST #t :Slow down\x1b[2J\x02"])
    assert states(buf) == [("one", Delivery.FAILED, "not sent: Cannot send to channel"),
                           ("two", Delivery.FAILED, "not sent: Slow down (MESSAGE_TOO_FAST)")]
    assert len(buf.lines) == before  # the failed line says it all: no error line
    # (The server's words are shown without terminal escapes or formatting codes.)
    assert not s.outbox.pending


def test_a_caller_id_refusal_in_a_labelled_batch_fails_the_message() -> None:
    s, _ = in_t()
    run(s, "/msg carol hi")
    feed(s, ["@label=o1 :test.server BATCH +b1 labeled-response",
             "@batch=b1 :test.server 716 alice carol :is in +g mode (server-side ignore.)",
             "@batch=b1 :test.server 717 alice carol :has been informed that you messaged them.",
             ":test.server BATCH -b1"])  # fmt: skip
    query = s.buffer("carol")
    assert query is not None
    assert states(query) == [("hi", Delivery.FAILED,
                              "not sent: carol is in +g mode (server-side ignore.)")]
    assert [ln.kind for ln in query.lines][-2:] == [Kind.ERROR, Kind.INFO]  # 716, 717


def test_without_labels_a_refusal_goes_to_the_message_to_its_target_only() -> None:
    s = joined_session(NO_LABELS, ("bob",))
    run(s, "in the channel")
    run(s, "/msg dave are you there?")
    dave = s.buffer("dave")
    assert dave is not None
    feed(s, [":test.server 401 alice dave :No such nick/channel"])
    assert states(dave) == [("are you there?", Delivery.FAILED,
                             "not sent: No such nick/channel")]
    assert states(s.current) == [("in the channel", Delivery.PENDING, "")]  # untouched
    # A refusal naming nobody we wait for is an error line as before.
    feed(s, [":test.server 404 alice #other :Cannot send to channel"])
    assert last_error(s) == "#other: Cannot send to channel"
    assert states(s.current) == [("in the channel", Delivery.PENDING, "")]
    feed(s, [":test.server 404 alice #t :Cannot send to channel"])
    assert states(s.current) == [("in the channel", Delivery.FAILED,
                                  "not sent: Cannot send to channel")]


# ---------------------------------------------------------------------- typed while away


def test_a_lost_connection_is_said_in_the_channels_and_queries_too_without_activity() -> None:
    s, buf = in_t()
    query = s.open_query("bob", NOW)
    assert query is not None
    s.switch(s.server)
    s.connection_lost(NOW + 1, "Connection reset by peer")
    for b in (s.server, buf, query):
        assert b.lines[-1].text == "Disconnected: Connection reset by peer", b.name
    assert not buf.activity and not query.unread  # (nothing was said there)
    # /reconnect: asked for, so no error anywhere; the server buffer says it.
    reconnect(s)
    s.reconnect(NOW + 70)
    s.connection_lost(NOW + 71, "connection closed by the server")
    assert s.server.lines[-1].text == "Disconnected (/reconnect)"
    assert s.server.lines[-1].kind is Kind.INFO
    assert query.lines[-1].text == "Disconnected: Connection reset by peer"  # not again
    reconnect(s)
    s.quit("bye", NOW + 80)
    s.connection_lost(NOW + 81)
    assert query.lines[-1].text == "Disconnected: Connection reset by peer"  # nor after /quit


def test_typed_while_disconnected_waits_for_the_rejoin_then_goes_out() -> None:
    s, buf = in_t()
    s.connection_lost(NOW + 1, "Connection reset by peer")
    assert s.reconnecting
    assert run(s, "anyone here?") == []
    assert run(s, "/me is back") == []
    assert states(buf) == [("anyone here?", Delivery.PENDING, NOT_YET),
                           ("is back", Delivery.PENDING, NOT_YET)]
    assert s.outbox.unsent == 2
    status = "".join(t for _, t, *_ in status_fragments(s, Views()))
    assert "[2 unsent]" in status
    # Other commands still need the server.
    assert run(s, "/whois bob") == [] and last_error(s) == "/whois: not connected"

    out = reconnect(s)
    assert out[-1] == "JOIN #t" and not privmsgs(out)  # never before the JOIN: +n
    out = rejoin(s)
    assert out == ["CHATHISTORY AFTER #t msgid=M1 100", "@label=o1 PRIVMSG #t :anyone here?",
                   "@label=o2 PRIVMSG #t :\x01ACTION is back\x01"]  # fmt: skip
    assert states(buf) == [("anyone here?", Delivery.PENDING, ""),
                           ("is back", Delivery.PENDING, "")]
    assert s.outbox.unsent == 0
    feed(s, [echo("anyone here?", "E1", T0 + 61, label="o1")])
    assert own(buf)[0].delivery is Delivery.DELIVERED


def test_typed_while_disconnected_moves_below_the_rejoin_when_it_goes_out() -> None:
    """Shown where and when it goes out, as the chat log and the others get it: not
    above the disconnect and the rejoin with a later time."""
    s, buf = in_t()
    s.connection_lost(NOW + 1, "Connection reset by peer")
    assert run(s, "typed while away") == []
    assert buf.lines[-1].text == "typed while away"
    reconnect(s)
    out = rejoin(s, NOW + 60)
    assert privmsgs(out) == ["@label=o1 PRIVMSG #t :typed while away"]
    texts_now = [ln.text for ln in buf.lines]
    assert texts_now[-1] == "typed while away" and texts_now.count("typed while away") == 1
    assert texts_now.index("Disconnected: Connection reset by peer") < len(texts_now) - 1
    assert buf.lines[-1].time == s.local_time(NOW + 60) and buf.lines[-1].note == ""
    assert any(ln.kind is Kind.JOIN for ln in list(buf.lines)[-4:-1])  # the rejoin, above it


def test_msg_and_notice_typed_while_disconnected_wait_as_typed_text_does() -> None:
    s, buf = in_t()
    s.connection_lost(NOW + 1)
    assert s.input("/msg bob a long message I typed carefully", NOW + 2)
    assert s.input("/notice #t heads up", NOW + 2)
    assert s.input("/me waves", NOW + 2)
    query = s.buffer("bob")
    assert query is not None
    assert states(query) == [("a long message I typed carefully", Delivery.PENDING, NOT_YET)]
    assert states(buf) == [("heads up", Delivery.PENDING, NOT_YET),
                           ("waves", Delivery.PENDING, NOT_YET)]  # fmt: skip
    # A channel not to be rejoined: refused.
    assert not s.input("/msg #elsewhere,bob hi", NOW + 2)
    assert last_error(s) == "Not connected, and not in #elsewhere: the message was not sent"
    assert s.outbox.unsent == 3
    assert privmsgs(reconnect(s)) == ["@label=o1 PRIVMSG bob :a long message I typed carefully"]
    assert [ln for ln in rejoin(s) if "PRIVMSG" in ln or "NOTICE" in ln] == [
        "@label=o2 NOTICE #t :heads up",
        "@label=o3 PRIVMSG #t :\x01ACTION waves\x01",
    ]
    assert s.outbox.unsent == 0


def test_msg_with_no_connection_to_come_is_refused() -> None:
    s = chat_session(channels=())
    s.quit("bye", NOW)
    s.connection_lost(NOW + 1)
    assert not s.input("/msg bob a long message", NOW + 2)
    assert last_error(s) == "Not connected: the message was not sent"
    assert not s.input("/notice bob psst", NOW + 2)


def test_service_commands_typed_while_disconnected_wait_as_msg_does() -> None:
    s, _ = in_t()
    s.connection_lost(NOW + 1)
    assert s.input("/cs INFO #t", NOW + 2)
    assert s.input("/ms LIST", NOW + 2)
    chanserv, memoserv = s.buffer("ChanServ"), s.buffer("MemoServ")
    assert chanserv is not None and memoserv is not None
    assert states(chanserv) == [("INFO #t", Delivery.PENDING, NOT_YET)]
    assert s.outbox.unsent == 2
    assert privmsgs(reconnect(s)) == ["@label=o1 PRIVMSG ChanServ :INFO #t",
                                      "@label=o2 PRIVMSG MemoServ :LIST"]  # fmt: skip


def test_service_command_with_no_connection_to_come_is_refused() -> None:
    s = chat_session(channels=())
    s.quit("bye", NOW)
    s.connection_lost(NOW + 1)
    assert not s.input("/ns HELP", NOW + 2)  # (not taken as sent: the UI can give it back)
    assert last_error(s) == "Not connected: the message was not sent"
    assert not s.input("/cs INFO #t", NOW + 2)


def test_a_password_typed_while_disconnected_is_not_kept_for_later() -> None:
    """On the next connection whoever holds the nick NickServ would get it (a network
    without services, an impostor): refused."""
    s, _ = in_t()
    s.connection_lost(NOW + 1)
    assert s.reconnecting
    for typed in ("/ns IDENTIFY hunter2", "/msg NickServ IDENTIFY alice hunter2",
                  "/notice NickServ IDENTIFY hunter2", "/query NickServ identify hunter2"):
        assert not s.input(typed, NOW + 2), typed
        assert last_error(s).startswith("Not connected: a password is not kept"), typed
    query = s.buffer("NickServ")  # (opened by the /query)
    assert query is not None
    s.switch(query)
    assert not s.input("IDENTIFY hunter2", NOW + 2)
    assert not s.input("/me IDENTIFY hunter2", NOW + 2)
    # A raw line needs the connection: refused too.
    assert not s.input("/quote PRIVMSG NickServ :IDENTIFY hunter2", NOW + 2)
    assert last_error(s) == "/quote: not connected"
    assert s.input("/ns HELP", NOW + 2)  # no password: it waits, as any message
    assert s.outbox.unsent == 1
    out = reconnect(s)
    assert privmsgs(out) == ["@label=o1 PRIVMSG NickServ :HELP"]
    assert not any("hunter2" in line for line in out)


def test_a_password_held_back_by_flood_control_is_not_written_on_the_next_connection() -> None:
    s, _ = in_t()
    s.outbox.paced = True  # (as the connection sets it): written when the budget allows
    assert s.input("/ns IDENTIFY hunter2", NOW)
    query = s.buffer("NickServ")
    assert query is not None and s.outbox.queued == 1
    s.connection_lost(NOW + 1)
    out = reconnect(s)
    assert not any("hunter2" in line for line in out)
    assert s.outbox.take_queued() == []
    assert states(query) == [("IDENTIFY ********", Delivery.FAILED, SECRET_HELD)]
    s.switch(query)
    run(s, "/resend")  # the user's own decision, on this connection
    (entry,) = s.outbox.take_queued()
    assert s.outbox.write_queued(entry, NOW + 70)
    assert s.take_outgoing() == ["@label=o1 PRIVMSG NickServ :IDENTIFY hunter2"]


def test_typed_into_a_query_while_disconnected_goes_out_after_registration() -> None:
    s, _ = in_t()
    s.open_query("bob", NOW)
    s.connection_lost(NOW + 1)
    assert run(s, "still there?") == []
    query = s.buffer("bob")
    assert query is not None and states(query) == [("still there?", Delivery.PENDING, NOT_YET)]
    s.connection_made(NOW + 60)
    out = feed(s, CHAT_BURST[:-1], NOW + 60)
    assert not privmsgs(out)  # not registered before the end of the MOTD
    out = feed(s, CHAT_BURST[-1:], NOW + 60)
    assert privmsgs(out) == ["@label=o1 PRIVMSG bob :still there?"]


def test_after_quit_typing_says_not_connected() -> None:
    s, buf = in_t()
    s.quit("bye", NOW)
    s.connection_lost(NOW + 1)
    assert not s.reconnecting
    assert run(s, "hello?") == []
    assert last_error(s) == "Not connected: the message was not sent"
    assert own(buf) == []


def test_when_no_connection_will_come_waiting_messages_fail_and_typing_stops() -> None:
    """The driver gave up (reconnecting off, or closed): what waited cannot go out, and
    nothing typed afterwards waits for a connection that will not come."""
    s, buf = in_t()
    s.connection_lost(NOW + 1, "Connection reset by peer")
    assert run(s, "queued") == []
    s.stopped(NOW + 2)
    assert not s.reconnecting
    assert states(buf)[-1] == ("queued", Delivery.FAILED, "not sent (no more connections)")
    assert any(ln.text == "no more connections: 1 message not sent" for ln in buf.lines)
    assert run(s, "hello?") == []
    assert last_error(s) == "Not connected: the message was not sent"


def test_the_outbox_is_bounded() -> None:
    s, buf = in_t()
    s.connection_lost(NOW + 1)
    # One message until written (draft/multiline or not is not known yet), but room
    # is kept for the message per line it makes where the server has no multiline.
    run(s, "\n".join(f"m{i}" for i in range(MAX_WAITING)))
    assert s.outbox.pending == 1
    run(s, "one too many")
    assert last_error(s) == "Not sent: too many messages are waiting to be sent"
    assert len(own(buf)) == 1 and s.outbox.pending == 1


def test_quit_and_closing_a_buffer_drop_what_was_not_sent() -> None:
    s, buf = in_t()
    s.open_query("bob", NOW)
    s.switch(buf)
    s.connection_lost(NOW + 1)
    run(s, "one")
    run(s, "two")
    s.switch("bob")
    run(s, "psst")
    query = s.current
    run(s, "/close")
    assert s.buffer("bob") is None
    assert s.current.lines[-1].text == "Closed bob: 1 unsent message dropped"
    assert s.outbox.pending == 2
    s.switch(buf)
    s.take_events()
    run(s, "/quit")  # the first says what would be lost
    assert last_error(s) == "2 messages are not sent yet: /quit again to quit anyway"
    assert not any(isinstance(e, QuitRequested) for e in s.take_events())
    assert s.outbox.pending == 2
    run(s, "/quit")
    assert any(isinstance(e, QuitRequested) for e in s.take_events())
    assert states(buf) == [("one", Delivery.FAILED, "not sent (/quit)"),
                           ("two", Delivery.FAILED, "not sent (/quit)")]
    assert buf.lines[-1].text == "/quit: 2 messages not sent"
    assert not s.outbox.pending and own(query)  # (the closed query kept its lines)


def test_a_refused_rejoin_fails_what_waited_for_it() -> None:
    s, buf = in_t()
    s.connection_lost(NOW + 1)
    run(s, "let me back in")
    reconnect(s)
    out = feed(s, [":test.server 474 alice #t :Cannot join channel (+b)"], NOW + 60)
    assert not privmsgs(out)
    assert states(buf) == [("let me back in", Delivery.FAILED,
                            "not sent: Cannot join channel (+b)")]
    assert run(s, "and now?") == [] and last_error(s) == "You are not in #t (/join #t)"


def test_a_refused_rejoin_with_nothing_waiting_refuses_what_is_typed_next() -> None:
    s, buf = in_t()
    reconnect(s)
    feed(s, [":test.server 474 alice #t :Cannot join channel (+b)"], NOW + 60)
    assert run(s, "anyone?") == [] and last_error(s) == "You are not in #t (/join #t)"
    assert not own(buf) and not s.outbox.pending and not s.outbox.unsent
    # The next connection tries the rejoin again; typing waits for it as before.
    reconnect(s, now=NOW + 120)
    run(s, "back?")
    assert states(buf) == [("back?", Delivery.PENDING, NOT_YET)]


# ---------------------------------------------------------------------- written, then lost


def test_unconfirmed_at_disconnect_and_found_in_the_gap_fill_is_not_sent_again() -> None:
    s, buf = in_t()
    s.input("did this arrive?", NOW + 10)  # (the server's clock: T0 + 10)
    assert s.take_outgoing() == ["@label=o1 PRIVMSG #t :did this arrive?"]
    reconnect(s)
    assert states(buf) == [("did this arrive?", Delivery.PENDING, "")]
    s.input("typed while away", NOW + 50)  # behind it: waits for what the history says
    out = rejoin(s)
    assert out == ["CHATHISTORY AFTER #t msgid=M1 100"]  # nothing sent yet
    rows = [("bob", "missed", "M2", T0 + 5), ("alice", "did this arrive?", "M3", T0 + 10.2),
            ("bob", "answer", "M4", T0 + 12)]  # fmt: skip
    out = feed(s, history_batch("g1", "#t", rows), NOW + 61)
    assert privmsgs(out) == ["@label=o2 PRIVMSG #t :typed while away"]  # not the first again
    assert texts(buf) == ["earlier", "missed", "did this arrive?", "answer", "typed while away"]
    confirmed = own(buf)[0]
    assert confirmed.delivery is Delivery.DELIVERED and confirmed.msgid == "M3"
    assert confirmed.prefix == "@"  # (our rank when we said it: history does not tell)
    assert [ln.text for ln in buf.lines if "Reconnected" in ln.text] == [
        "Reconnected, fetched 2 missed messages"]  # ours is not one of them


def test_our_own_messages_in_the_gap_fill_are_not_counted_as_missed() -> None:
    s = joined_session(burst_without("echo-message"), ("bob",))  # ours: shown when written
    buf = s.current
    feed(s, history_batch("b0", "#t", [("bob", "earlier", "M1", T0 + 1)]))
    assert run(s, "mine") == ["PRIVMSG #t :mine"]
    reconnect(s, burst_without("echo-message"))
    rejoin(s)
    rows = [("alice", "mine", "M2", T0 + 5), ("bob", "missed", "M3", T0 + 6),
            ("alice", "typed after the reconnect", "M4", T0 + 61)]  # fmt: skip
    feed(s, history_batch("g1", "#t", rows), NOW + 61)
    assert [ln.text for ln in buf.lines if "Reconnected" in ln.text] == [
        "Reconnected, fetched 1 missed message"]  # bob's alone


def test_without_echo_message_ours_in_the_gap_fill_takes_the_shown_lines_place() -> None:
    """Without echo-message our message is shown at once, without a msgid: the gap fill
    after a reconnect holding it gives that line its msgid and time (no second copy)."""
    no_echo = burst_without("echo-message")
    s = joined_session(no_echo, ("bob",))
    buf = s.current
    feed(s, [privmsg("bob", "#t", "earlier", "M1", T0 + 1)])  # (the server's clock: T0 + 1)
    assert run(s, "mine") == ["PRIVMSG #t :mine"]
    s.take_events()
    reconnect(s, no_echo)
    rejoin(s)
    rows = [("alice", "mine", "M2", T0 + 5), ("bob", "missed", "M3", T0 + 6)]
    feed(s, history_batch("g1", "#t", rows), NOW + 61)
    assert texts(buf) == ["earlier", "mine", "missed"]
    [mine] = own(buf)
    assert (mine.msgid, mine.time, mine.delivery) == ("M2", T0 + 5, Delivery.DELIVERED)
    assert "M2" in buf.seen
    # Shown (and logged) once already: no event says it again.
    assert not [e for e in s.take_events() if isinstance(e, DeliveryChanged | LineAdded)
                and e.line.text == "mine"]  # fmt: skip


def test_without_echo_message_a_repeated_message_is_matched_one_to_one_in_order() -> None:
    no_echo = burst_without("echo-message")
    s = joined_session(no_echo, ("bob",))
    buf = s.current
    feed(s, [privmsg("bob", "#t", "earlier", "M1", T0 + 1)])  # (the server's clock: T0 + 1)
    run(s, "ok")
    run(s, "ok")  # said twice: two messages
    run(s, "later")
    reconnect(s, no_echo)
    rejoin(s)
    # The server got the first "ok" and "later"; the second "ok" was lost. An "ok" of
    # ours from long before (another session) is no copy of either.
    rows = [("alice", "ok", "M0", T0 - 600), ("alice", "ok", "M2", T0 + 2),
            ("alice", "later", "M3", T0 + 3)]  # fmt: skip
    feed(s, history_batch("g1", "#t", rows), NOW + 61)
    assert [(ln.text, ln.msgid) for ln in own(buf)] == [  # (the lost one written again,
        ("ok", "M0"), ("ok", "M2"), ("later", "M3"), ("ok", None)]  # from the bottom)


def test_without_echo_message_ours_in_a_querys_history_under_another_nick_is_merged() -> None:
    """In a query every line not from the partner is ours: what we said as alice_ (our
    nick then) is the line shown as sent."""
    no_echo = burst_without("echo-message")
    s = joined_session(no_echo, ("bob",))
    feed(s, [privmsg("bob", "alice", "psst", "Q1", T0 + 1)])  # (the server's clock: T0 + 1)
    query = s.buffer("bob")
    assert query is not None
    run(s, "/msg bob hi")
    rows = [("alice_", "hi", "Q2", T0 + 3), ("bob", "hi yourself", "Q3", T0 + 4)]
    feed(s, history_batch("q1", "bob", rows))
    assert [(ln.nick, ln.text, ln.msgid, ln.own) for ln in messages(query)] == [
        ("bob", "psst", "Q1", False), ("alice_", "hi", "Q2", True),
        ("bob", "hi yourself", "Q3", False)]  # fmt: skip


def test_ours_in_history_before_its_echo_is_not_shown_twice() -> None:
    """With echo-message, a message written on this connection whose copy comes in
    history before its echo: the history line confirms it, the echo adds nothing."""
    s, buf = in_t()
    reconnect(s)
    assert rejoin(s) == ["CHATHISTORY AFTER #t msgid=M1 100"]
    assert run(s, "hello") == ["@label=o1 PRIVMSG #t :hello"]  # written at once
    rows = [("bob", "missed", "M2", T0 + 50), ("alice", "hello", "M3", T0 + 61)]
    feed(s, history_batch("g1", "#t", rows), NOW + 61)
    assert texts(buf) == ["earlier", "missed", "hello"]
    assert states(buf) == [("hello", Delivery.DELIVERED, "")] and own(buf)[0].msgid == "M3"
    feed(s, [echo("hello", "M3", T0 + 61, label="o1")])
    assert texts(buf) == ["earlier", "missed", "hello"] and not s.outbox.pending
    assert [ln.text for ln in buf.lines if "Reconnected" in ln.text] == [
        "Reconnected, fetched 1 missed message"]


def test_ours_in_history_before_its_unlabelled_echo_confirms_the_right_copy() -> None:
    """Without labels the echo is matched by its text: the echo of a message history
    has confirmed already must not confirm the next pending one with the same text."""
    s = joined_session(NO_LABELS, ("bob",))
    buf = s.current
    assert run(s, "same\nsame") == ["PRIVMSG #t :same", "PRIVMSG #t :same"]
    # (LATEST history, e.g. after a rejoin, that holds the first one already)
    feed(s, history_batch("h1", "#t", [("alice", "same", "E1", T0 + 1)]))
    assert [(ln.text, ln.msgid) for ln in own(buf)] == [("same", "E1"), ("same", None)]
    feed(s, [echo("same", "E1", T0 + 1)])  # the first one's echo: nothing new
    assert [(ln.text, ln.msgid) for ln in own(buf)] == [("same", "E1"), ("same", None)]
    feed(s, [echo("same", "E2", T0 + 2)])
    assert [(ln.text, ln.msgid, ln.delivery) for ln in own(buf)] == [
        ("same", "E1", Delivery.DELIVERED), ("same", "E2", Delivery.DELIVERED)]
    assert not s.outbox.pending


def test_unconfirmed_and_not_in_the_gap_fill_is_sent_again_once() -> None:
    s, buf = in_t(history_lines=2)
    run(s, "lost in transit")
    reconnect(s)
    assert rejoin(s) == ["CHATHISTORY AFTER #t msgid=M1 2"]
    # Ours, but said long before (another session of ours): not this one.
    old = [("alice", "lost in transit", "M0", T0 - 600), ("bob", "missed", "M2", T0 + 2)]
    out = feed(s, history_batch("g1", "#t", old), NOW + 61)
    assert out == ["CHATHISTORY AFTER #t msgid=M2 2"]  # a full page: the fill goes on
    out = feed(s, history_batch("g2", "#t", [("bob", "more", "M3", T0 + 3)]), NOW + 61)
    assert out == ["@label=o2 PRIVMSG #t :lost in transit"]  # caught up: written again
    feed(s, [echo("lost in transit", "E9", T0 + 62, label="o2")])
    assert [(ln.text, ln.msgid, ln.delivery) for ln in own(buf)] == [
        ("lost in transit", "M0", Delivery.DELIVERED),  # (the old one, from history)
        ("lost in transit", "E9", Delivery.DELIVERED)]  # fmt: skip
    assert not s.outbox.pending


def test_unconfirmed_and_a_gap_fill_cut_short_fails_instead_of_a_duplicate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gap fill stops at MAX_GAP_PAGES without catching up: our message may be in
    what it did not fetch, so it is not written again (it could arrive twice) but
    failed for /resend."""
    monkeypatch.setattr(client_history, "MAX_GAP_PAGES", 1)
    s, buf = in_t(history_lines=2)
    run(s, "maybe sent")
    reconnect(s)
    assert rejoin(s) == ["CHATHISTORY AFTER #t msgid=M1 2"]
    page = [("bob", "one", "M2", T0 + 2), ("bob", "two", "M3", T0 + 3)]  # full: not caught up
    out = feed(s, history_batch("g1", "#t", page), NOW + 61)
    assert privmsgs(out) == []  # neither another page nor a second copy
    assert states(buf)[-1] == ("maybe sent", Delivery.FAILED, MAYBE_LOST)


def test_unconfirmed_without_history_fails_and_resend_sends_it_again() -> None:
    no_history = burst_without("draft/chathistory")
    s = joined_session(no_history, ("bob",))
    buf = s.current
    assert run(s, "hello?") == ["@label=o1 PRIVMSG #t :hello?"]
    reconnect(s, no_history)
    assert not privmsgs(rejoin(s))
    assert states(buf) == [("hello?", Delivery.FAILED, MAYBE_LOST)]
    assert run(s, "/resend") == ["@label=o2 PRIVMSG #t :hello?"]
    # Sent again from the bottom of the buffer, pending.
    assert buf.lines[-1].text == "hello?" and buf.lines[-1].delivery is Delivery.PENDING
    assert len(own(buf)) == 1
    feed(s, [echo("hello?", "E2", T0 + 70, label="o2")])
    assert states(buf) == [("hello?", Delivery.DELIVERED, "")]
    assert run(s, "/resend") == [] and last_error(s) == "No failed messages to resend in #t"


def test_a_query_without_history_while_not_logged_in_fails_instead_of_guessing() -> None:
    s, _ = in_t()
    run(s, "/msg bob ping")
    query = s.buffer("bob")
    assert query is not None
    reconnect(s)  # not logged in: the server keeps no private history for us
    assert states(query) == [("ping", Delivery.FAILED, MAYBE_LOST)]
    s.switch(query)
    assert run(s, "/resend") == ["@label=o2 PRIVMSG bob :ping"]


def test_help_describes_resend() -> None:
    s, _ = in_t()
    run(s, "/help resend")
    assert s.current.lines[-1].text.startswith("/resend — Send this buffer's failed messages")


# ---------------------------------------------------------------------- logs and drawing


def test_the_chat_log_has_a_message_once_when_confirmed_never_pending_or_failed(
    tmp_path: Path,
) -> None:
    s, _ = in_t()
    log = ChatLog(tmp_path)
    run(s, "confirmed one")
    run(s, "refused one")
    for event in s.take_events():
        log.handle(event)
    assert not (tmp_path / "#t.log").exists()  # nothing while pending
    feed(s, [echo("confirmed one", "E1", T0 + 2, label="o1"),
             "@label=o2 :test.server 404 alice #t :Cannot send to channel"])  # fmt: skip
    for event in s.take_events():
        log.handle(event)
    log.close()
    logged = [ln[20:] for ln in (tmp_path / "#t.log").read_text().splitlines()]
    assert logged == ["<@alice> confirmed one"]


def test_pending_and_failed_lines_are_drawn_with_their_marker() -> None:
    s, buf = in_t()
    s.connection_lost(NOW + 1)
    run(s, "later")
    r = LineRenderer("")
    [line] = own(buf)
    assert plain_text(r.rows(line, 80)) == "<alice> later  … not sent yet"
    frags, _ = r.fragments(line)
    assert all("class:pending" in style for style, *_ in frags[-2:])  # dimmed
    s.quit("", NOW + 2)
    [line] = own(buf)
    assert plain_text(r.rows(line, 80)) == "<alice> later  ✗ not sent (/quit)"
    assert r.fragments(line)[0][-1][0] == "class:failed"


# ---------------------------------------------------------------------- our server, over TCP


async def talking_in_t(
    port: int, relay: Relay, clients: list[ChatClient]
) -> tuple[ChatClient, ChatClient, Buffer, Buffer]:
    """alice (through ``relay``) and bob (straight to the server) in #t, each having
    seen bob's "before"; #t current for both."""
    alice = ChatClient.start(relay.port, "alice", ("#t",))
    bob = ChatClient.start(port, "bob", ("#t",))
    clients += [alice, bob]
    a_buf, b_buf = await alice.joined("#t"), await bob.joined("#t")
    alice.conn.switch(a_buf)
    bob.conn.switch(b_buf)
    bob.conn.input("before")
    await alice.wait(lambda: has_texts(a_buf, ["before"]), "bob's message")
    return alice, bob, a_buf, b_buf


async def settled(c: ChatClient, buf: Buffer, connects: int) -> None:
    """``c`` reconnected ``connects`` times in all, rejoined, history fetched, and has
    nothing on its way."""
    s = c.session
    await c.wait(
        lambda: s.connects >= connects and buf.joined and not buf.history_loading
        and not s.outbox.pending,
        "the reconnect, the gap fill and the outbox",
    )


def shown_once(buf: Buffer, text: str) -> Line:
    """The one line of ``buf`` saying ``text``: confirmed, with the server's msgid."""
    lines = [ln for ln in messages(buf) if ln.text == text]
    assert len(lines) == 1, lines
    assert lines[0].delivery is Delivery.DELIVERED and lines[0].msgid
    return lines[0]


async def in_history_once(port: int, text: str, clients: list[ChatClient]) -> None:
    """A newcomer to #t gets ``text`` from the server's history exactly once."""
    _carol, c_buf = await in_channel(clients, port, "carol")
    assert all_texts(c_buf).count(text) == 1, all_texts(c_buf)


async def test_without_echo_message_what_a_dead_link_took_fails_and_what_a_pong_vouched_for_stays(
    ircd: Ircd, alice: ChatClient
) -> None:
    """A server without echo-message or history (as ngIRCd): the connection PINGs by
    itself shortly after a message, and the PONG vouches for it; one written after the
    last PONG, on a link that then died, fails for /resend instead of showing as sent."""
    alice.conn.input("/msg bob first")
    await ircd.wait(lambda: any(ln.startswith("PING chat-lag-") for ln in ircd.lines),
                    "the PING after it, with no other traffic")  # fmt: skip
    ping = next(ln for ln in ircd.lines if ln.startswith("PING chat-lag-"))
    ircd.send(f":srv PONG srv {ping.split()[1]}")
    await alice.wait(lambda: alice.session.outbox.unacknowledged == 0, "the PONG")
    alice.conn.input("/msg bob second")
    await ircd.wait(lambda: "PRIVMSG bob :second" in ircd.lines, "the second message")
    ircd.writers[-1].close()  # the link dies before anything vouched for it
    query = alice.session.buffer("bob")
    assert query is not None
    await alice.wait(lambda: any(ln.delivery is Delivery.FAILED for ln in messages(query)),
                     "the second one failed after the reconnect")  # fmt: skip
    assert [(ln.text, ln.delivery) for ln in messages(query)] == [
        ("first", Delivery.DELIVERED), ("second", Delivery.FAILED)]
    assert messages(query)[-1].note == MAYBE_LOST


async def test_a_message_whose_echo_died_with_the_server_is_kept_once(
    tmp_path: Path, clients: list[ChatClient]
) -> None:
    db = str(tmp_path / "history.db")
    first = start_server(ServerConfig(name="test.server", network="TestNet"), "asyncio", db=db)
    port = first.port
    handles = [first.handle]
    relay = Relay(port)
    await relay.start()
    try:
        alice, bob, a_buf, b_buf = await talking_in_t(port, relay, clients)
        relay.hold_down = True  # what the server sends alice now is lost
        alice.conn.input("did it arrive?")
        await bob.wait(lambda: has_texts(b_buf, ["did it arrive?"]), "alice's message")
        [pending] = [ln for ln in messages(a_buf) if ln.text == "did it arrive?"]
        assert pending.delivery is Delivery.PENDING  # delivered, but alice cannot know

        # The server dies before the echo reaches alice; it comes back on the same
        # port and database.
        handles.remove(first.handle)
        handles.append(await restart_server(first, db, alice))
        relay.hold_down = False
        alice.gate.open()
        await settled(alice, a_buf, 2)

        # The gap fill had it: its line took the pending one's place; never sent again.
        shown_once(a_buf, "did it arrive?")
        assert alice.untagged.count("PRIVMSG #t :did it arrive?") == 1
        assert all_texts(a_buf) == ["before", "did it arrive?"]
        await in_history_once(port, "did it arrive?", clients)
    finally:
        for c in clients:
            await c.stop()
        clients.clear()
        await relay.stop()
        for handle in handles:
            handle.stop()


async def test_lost_on_the_way_or_typed_while_away_it_arrives_once(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    relay = Relay(server.port)
    await relay.start()
    try:
        alice, bob, a_buf, b_buf = await talking_in_t(server.port, relay, clients)

        # Written, but lost on the way with the connection: not in the gap fill, so
        # written again, once.
        relay.hold_up = True
        alice.conn.input("lost on the way")
        async with asyncio.timeout(DEADLINE):
            while not relay.held:
                await asyncio.sleep(0.01)
        relay.hold_up = False
        relay.cut()
        await settled(alice, a_buf, 2)
        shown_once(a_buf, "lost on the way")
        assert alice.untagged.count("PRIVMSG #t :lost on the way") == 2
        await bob.wait(lambda: has_texts(b_buf, ["lost on the way"]), "alice's message")
        assert all_texts(b_buf).count("lost on the way") == 1

        # Typed while the connection is down: pending, then sent after the rejoin.
        await alice.lose_connection(relay.cut)
        alice.conn.input("typed while away")
        [waiting] = [ln for ln in messages(a_buf) if ln.text == "typed while away"]
        assert (waiting.delivery, waiting.note) == (Delivery.PENDING, NOT_YET)
        alice.gate.open()
        await settled(alice, a_buf, 3)
        shown_once(a_buf, "typed while away")
        await bob.wait(lambda: has_texts(b_buf, ["typed while away"]), "alice's message")
        assert all_texts(a_buf) == ["before", "lost on the way", "typed while away"]
        await in_history_once(server.port, "lost on the way", clients)
    finally:
        await relay.stop()


async def test_written_again_after_a_reconnect_it_moves_below_the_gap_fill(
    server: RunningServer, clients: list[ChatClient], tmp_path: Path
) -> None:
    relay = Relay(server.port)
    await relay.start()
    try:
        alice, bob, a_buf, b_buf = await talking_in_t(server.port, relay, clients)
        log = ChatLog(tmp_path)
        alice.conn.subscribe(log.handle)
        relay.hold_up = relay.hold_down = True  # the link goes silent both ways
        alice.conn.input("lost in the blackhole")
        async with asyncio.timeout(DEADLINE):
            while not relay.held:
                await asyncio.sleep(0.01)
        bob.conn.input("bob talks meanwhile")
        await bob.wait(lambda: has_texts(b_buf, ["bob talks meanwhile"]), "bob's echo")
        relay.hold_up = relay.hold_down = False
        relay.cut()
        await settled(alice, a_buf, 2)
        shown_once(a_buf, "lost in the blackhole")
        assert alice.untagged.count("PRIVMSG #t :lost in the blackhole") == 2  # not in the fill
        log.close()

        # Written again after the gap fill: shown (and logged) after it, with that time.
        note = "Reconnected, fetched 1 missed message"
        assert [ln.text for ln in a_buf.lines][-2:] == [note, "lost in the blackhole"]
        disconnected = next(ln for ln in a_buf.lines if ln.text.startswith("Disconnected"))
        assert a_buf.lines[-1].time >= disconnected.time
        logged = [ln[20:] for ln in (tmp_path / "#t.log").read_text().splitlines()]
        assert logged[-2:] == [f"-!- {note}", "<alice> lost in the blackhole"], logged
    finally:
        await relay.stop()


async def test_a_join_by_hand_after_a_refused_rejoin_is_no_reconnect(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    bob, b_buf = await in_channel(clients, server.port, "bob")  # first in: the operator
    alice, a_buf = await in_channel(clients, server.port, "alice")
    await alice.lose_connection()
    await bob.wait(lambda: "alice" not in b_buf.members, "the server to notice")
    bob.conn.switch(b_buf)
    bob.conn.input("/mode +i")
    await bob.wait(lambda: any("+i" in ln.text for ln in b_buf.lines), "+i")
    alice.gate.open()
    await alice.wait(lambda: any("#t: " in ln.text for ln in a_buf.lines
                                 if ln.kind is Kind.ERROR), "the refused rejoin")  # fmt: skip
    bob.conn.input("/invite alice")
    await alice.wait(lambda: any("invites" in ln.text for ln in alice.session.server.lines
                                 + alice.session.current.lines), "the invitation")  # fmt: skip
    joins = sum(ln.kind is Kind.JOIN for ln in a_buf.lines)
    alice.conn.input("/join #t")
    await alice.joined("#t")
    assert sum(ln.kind is Kind.JOIN for ln in a_buf.lines) == joins + 1
    assert not [ln.text for ln in a_buf.lines if "Reconnected" in ln.text]


async def test_a_paste_larger_than_the_outbox_says_so_not_that_messages_are_waiting(
    ircd: Ircd, alice: ChatClient
) -> None:
    # (The ircd offers no CAP, no draft/multiline: a message per line.)
    ircd.send(":alice!a@h JOIN #t")
    await alice.joined("#t")
    alice.conn.switch("#t")
    paste = "\n".join(f"big paste {i}" for i in range(1, 121))
    assert alice.conn.input(paste) is False
    assert alice.session.outbox.pending == 0
    assert [ln.text for ln in alice.session.current.lines if ln.kind is Kind.ERROR] == [
        f"Not sent: this paste makes 120 messages, more than the {MAX_WAITING} that "
        "can wait to be sent; paste it in parts"]  # fmt: skip
    assert not ircd.privmsgs()


# ---------------------------------------------------------------------- kicked, parted


@pytest.mark.parametrize(
    ("event", "note"),
    [(":bob!b@h KICK #t alice :out", "not sent: kicked from #t"),
     (":alice!a@h PART #t", "not sent: left #t")],
)  # fmt: skip
def test_what_flood_control_holds_for_a_channel_we_left_fails(event: str, note: str) -> None:
    s, buf = in_t()
    assert run(s, "written") == ["@label=o1 PRIVMSG #t :written"]
    s.outbox.paced = True  # (as the connection sets it): the rest wait their turn
    for row in ("row 1", "row 2"):
        assert run(s, row) == []
    queued = s.outbox.take_queued()
    assert len(queued) == 2
    feed(s, [event])
    assert states(buf) == [("written", Delivery.PENDING, ""),  # (its answer may still come)
                           ("row 1", Delivery.FAILED, note),
                           ("row 2", Delivery.FAILED, note)]  # fmt: skip
    assert not any(s.outbox.write_queued(e, NOW) for e in queued)  # never written
    assert s.take_outgoing() == [] and s.outbox.queued == 0


def test_unqueue_drops_the_buffers_messages_not_written_yet_for_resend() -> None:
    """/unqueue: what is not written yet (held back by flood control, typed while
    disconnected) fails as not sent; what was written stays (the server may have it),
    and so do other buffers' messages."""
    s, buf = in_t()
    query = s.open_query("bob", NOW, switch=False)
    assert query is not None
    assert run(s, "written") == ["@label=o1 PRIVMSG #t :written"]
    s.outbox.paced = True  # (as the connection sets it): held back by flood control
    assert run(s, "held 1") == [] and run(s, "held 2") == []
    s.switch(query)
    assert run(s, "to bob") == []
    s.switch(buf)
    assert s.outbox.queued == 3
    assert run(s, "/unqueue") == []
    dropped = "not sent (/unqueue)"
    assert states(buf) == [("written", Delivery.PENDING, ""),
                           ("held 1", Delivery.FAILED, dropped),
                           ("held 2", Delivery.FAILED, dropped)]  # fmt: skip
    assert buf.lines[-1].text == "Not sending 2 messages; /resend sends them again"
    assert s.outbox.queued == 1 and states(query)[0][1] is Delivery.PENDING  # bob's waits
    assert run(s, "/unqueue") == []
    assert last_error(s) == "No messages waiting to be sent in #t"

    s.connection_lost(NOW + 1)  # "written" may have gone: it stays, for the gap fill
    assert run(s, "typed\nwhile away") == []  # (one message, planned when written)
    assert run(s, "/unqueue") == []
    assert buf.lines[-1].text == "Not sending 1 message (2 lines); /resend sends them again"
    assert states(buf)[0] == ("written", Delivery.PENDING, "")
    assert states(buf)[-1] == ("typed\nwhile away", Delivery.FAILED, dropped)
    assert s.outbox.unsent == 2  # "written" (unconfirmed) and bob's
    assert run(s, "/resend") == []
    assert [(text, state) for text, state, _ in states(buf)] == [
        ("written", Delivery.PENDING), ("held 1", Delivery.PENDING),
        ("held 2", Delivery.PENDING), ("typed\nwhile away", Delivery.PENDING)]  # fmt: skip
