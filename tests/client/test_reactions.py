"""IRCv3 reactions in the client: ``+draft/react`` / ``+draft/reply`` TAGMSGs annotate the
message they answer (``  [👍 2 ❤️ 1]``), come back in history with draft/event-playback,
and are taken back with REDACT of the reaction's own msgid.

Sans-IO cases first (live, echo, history batches, take-back, bounds, commands, the chat
log), then an end-to-end case against our real server over TCP.
"""

from __future__ import annotations

import time
from pathlib import Path

from chat.message import Message
from chat.servertime import format_time, parse_time
from client.chatlog import TIME_FORMAT, ChatLog
from client.headless import format_reaction
from client.model import BufferKind, HistoryAdded, Kind, LineAdded, LineReacted, LineRedacted
from client.session import MAX_REACTION, MAX_REACTION_TEXTS, MAX_REACTIONS, Session
from client.ui.render import LineRenderer, plain_text
from tests.conftest import RunningServer

from .helpers import (
    NOW,
    T0,
    all_text,
    burst_offering,
    chat_session,
    feed,
    history_batch,
    joined_session,
    last_error,
    make,
    privmsg,
    run,
    sent,
    texts,
)
from .helpers import chathistory_batch as batch
from .netutil import ChatClient, has_texts, in_channel, messages
from .recorded import CHAT_BURST

CAPS = "draft/event-playback draft/message-redaction"
BURST = burst_offering(CAPS)  # our server, recorded, with the caps
LOGIN = ":test.server 900 alice alice!~a@h alice :You are now logged in as alice"
REDACT_TIME = "2026-11-21T07:00:00.000Z"


def react_session(channels: tuple[str, ...] = ("#t",), **kw: object) -> Session:
    """Registered against our server (recorded) offering draft/event-playback and
    draft/message-redaction, in #t with bob, carol and dave, #t current."""
    return joined_session(BURST, ("bob", "carol", "dave"), channels, **kw)


def reaction(
    nick: str,
    target: str,
    text: str,
    reply: str,
    msgid: str | None = None,
    t: float | None = None,
    batch: str | None = None,
) -> str:
    """``@+draft/react=<text>;+draft/reply=<reply> :nick TAGMSG target`` (tag values
    escaped as on the wire)."""
    tags: dict[str, str] = {}
    if batch is not None:
        tags["batch"] = batch
    if t is not None:
        tags["time"] = format_time(t)
    if msgid is not None:
        tags["msgid"] = msgid
    tags["+draft/react"] = text
    tags["+draft/reply"] = reply
    return Message("TAGMSG", [target], f"{nick}!~{nick}@host", tags).to_line()


def redact(nick: str, target: str, msgid: str, batch: str | None = None) -> str:
    tags = f"@time={REDACT_TIME};msgid=d-{msgid}" + (f";batch={batch}" if batch else "")
    return f"{tags} :{nick}!~{nick}@host REDACT {target} {msgid}"


def shown(s: Session, msgid: str, name: str = "#t") -> list[tuple[str, tuple[str, ...]]]:
    """The reactions of the line ``msgid`` of buffer ``name``: (text, nicks) by text."""
    buf = s.buffer(name)
    assert buf is not None
    line = buf.find_message(msgid)
    assert line is not None
    return [(text, nicks) for text, nicks, _ in line.reaction_groups()]


def reacted(s: Session) -> list[LineReacted]:
    return [e for e in s.take_events() if isinstance(e, LineReacted)]


def said(s: Session) -> None:
    """#t: bob's m1, ours m2 (an echo), carol's m3, newest last."""
    feed(s, [privmsg("bob", "#t", "lunch at noon?", "m1", T0 + 1),
             privmsg("alice", "#t", "sure", "m2", T0 + 2),
             privmsg("carol", "#t", "where?", "m3", T0 + 3)])


def rejoin(s: Session) -> list[str]:
    """Lose the connection, register again and rejoin #t; what the session sent then."""
    s.connection_lost(NOW, "Connection reset")
    s.connection_made(NOW + 60)
    feed(s, BURST, NOW + 60)
    return feed(s, [":alice!~a@h JOIN #t", ":bob!b@h JOIN #t", ":carol!c@h JOIN #t"], NOW + 60)


# ---------------------------------------------------------------------- capability


def test_event_playback_is_requested_with_chathistory_and_message_tags() -> None:
    s = make()
    s.connection_made(NOW)
    s.take_outgoing()
    sent = feed(s, [":srv CAP * LS :message-tags batch draft/chathistory draft/event-playback"])
    assert sent == ["CAP REQ :message-tags batch draft/chathistory draft/event-playback"]
    for offered in ("message-tags draft/event-playback",  # no history: of no use
                    "draft/chathistory draft/event-playback"):  # no tags to read
        s = make()
        s.connection_made(NOW)
        s.take_outgoing()
        assert "draft/event-playback" not in feed(s, [f":srv CAP * LS :{offered}"])[0]
    assert "draft/event-playback" in react_session().caps


# ---------------------------------------------------------------------- live reactions


def test_a_reaction_annotates_its_line_in_place() -> None:
    s = react_session()
    said(s)
    buf = s.buffer("#t")
    assert buf is not None
    old = buf.find_message("m1")
    assert old is not None
    index = list(buf.lines).index(old)
    s.switch(0)  # elsewhere: reactions are still no unread, highlight or activity
    s.take_events()
    counts = (buf.unread, buf.highlights, buf.activity)
    version = buf.version

    assert feed(s, [reaction("dave", "#t", "👍", "m1", "r1", T0 + 4),
                    reaction("carol", "#t", "❤️", "m1", "r2", T0 + 5),
                    reaction("carol", "#t", "👍", "m1", "r3", T0 + 6)]) == []
    new = buf.lines[index]  # in place: the lines around it did not move
    assert [ln.msgid for ln in messages(buf)] == ["m1", "m2", "m3"]
    assert (new.text, new.nick, new.time, new.msgid) == (old.text, old.nick, old.time, "m1")
    assert shown(s, "m1") == [("👍", ("dave", "carol")), ("❤️", ("carol",))]
    assert [r.msgids for r in new.reactions] == [("r1",), ("r2",), ("r3",)]
    assert (buf.unread, buf.highlights, buf.activity) == counts and buf.version > version
    events = s.take_events()
    assert not any(isinstance(e, LineAdded) for e in events)  # no line of its own
    first, *_ = [e for e in events if isinstance(e, LineReacted)]
    assert (first.old, first.nick, first.text, first.msgid) == (old, "dave", "👍", "r1")
    assert not first.removed and not first.history and first.time == T0 + 4
    assert first.describe("07:00") == "dave reacted 👍 to bob's message of 07:00"
    assert [b.name for b in s.buffers] == ["server", "#t"]


def test_the_same_reaction_from_the_same_nick_counts_once() -> None:
    s = react_session()
    said(s)
    feed(s, [reaction("dave", "#t", "👍", "m1", "r1", T0 + 4)])
    s.take_events()
    feed(s, [reaction("DAVE", "#t", "👍", "m1", "r2", T0 + 5),  # casemapping: the same nick
             reaction("dave", "#t", "👍", "m1", "r1", T0 + 4)])  # the very same, again
    assert shown(s, "m1") == [("👍", ("dave",))]
    assert reacted(s) == []  # nothing new to show or log
    buf = s.buffer("#t")
    assert buf is not None
    line = buf.find_message("m1")
    assert line is not None and line.reactions[0].msgids == ("r1", "r2")


def test_our_own_reaction_comes_with_its_echo() -> None:
    s = react_session()
    said(s)
    feed(s, [reaction("alice", "#t", "🎉", "m1", "r1", T0 + 4),  # the echo of ours
             reaction("bob", "#t", "🎉", "m2", "r2", T0 + 5)])  # bob on our message
    buf = s.buffer("#t")
    assert buf is not None
    m1, m2 = buf.find_message("m1"), buf.find_message("m2")
    assert m1 is not None and m2 is not None
    assert [(r.nick, r.own, r.msgids) for r in m1.reactions] == [("alice", True, ("r1",))]
    assert m1.reaction_groups() == [("🎉", ("alice",), True)]
    assert m2.reaction_groups() == [("🎉", ("bob",), False)]
    assert not m2.highlight and buf.highlights == 0  # a reaction to us is no highlight
    ours, bobs = reacted(s)
    assert ours.describe("07:00") == "alice reacted 🎉 to bob's message of 07:00"
    assert bobs.describe("07:00") == "bob reacted 🎉 to alice's message of 07:00"
    feed(s, [reaction("carol", "#t", "👍", "m3", "r3", T0 + 6)])
    assert reacted(s)[0].describe("07:00") == "carol reacted 👍 to their message of 07:00"


def test_private_reactions_go_to_the_query_and_open_none() -> None:
    s = react_session()
    feed(s, [privmsg("bob", "alice", "psst", "p1", T0 + 1),
             privmsg("alice", "bob", "what?", "p2", T0 + 2)])
    query = s.buffer("bob")
    assert query is not None and query.kind is BufferKind.QUERY
    feed(s, [reaction("bob", "alice", "👀", "p2", "r1", T0 + 3),  # bob to us
             reaction("alice", "bob", "😂", "p1", "r2", T0 + 4)])  # our echo, to bob
    assert shown(s, "p2", "bob") == [("👀", ("bob",))]
    assert shown(s, "p1", "bob") == [("😂", ("alice",))]
    assert [e.buffer for e in reacted(s)] == [query, query]
    feed(s, [reaction("carol", "alice", "👍", "p1", "r3"),  # no query with carol
             reaction("bob", "carol", "👍", "p1", "r4")])  # between others
    assert s.buffer("carol") is None and reacted(s) == []
    assert shown(s, "p1", "bob") == [("😂", ("alice",))]


def test_reactions_to_unknown_messages_and_malformed_ones_are_ignored() -> None:
    s = react_session()
    said(s)
    buf = s.buffer("#t")
    assert buf is not None
    before = list(buf.lines)
    s.take_events()
    feed(s, [reaction("dave", "#t", "👍", "nope", "r1"),  # no such message
             reaction("dave", "#elsewhere", "👍", "m1", "r2"),  # not where it is
             reaction("dave", "#t", "", "m1", "r3"),  # no reaction
             reaction("dave", "#t", " \x02\x03 ", "m1", "r4"),  # nothing but codes
             reaction("dave", "#t", "👍", "", "r5"),  # no message named
             "@+draft/react=👍 :dave!d@h TAGMSG #t",  # no +draft/reply at all
             "@+draft/reply=m1 :dave!d@h TAGMSG #t",  # a reply without a reaction
             "@+draft/react=👍;+draft/reply=m1 :dave!d@h TAGMSG",  # no target
             reaction("dave", "#t", "👍", "m1", "r6")[:-3]])  # #t cut: no such buffer
    assert list(buf.lines) == before and reacted(s) == []
    assert [b.name for b in s.buffers] == ["server", "#t"]
    assert not any(ln.kind is Kind.ERROR for b in s.buffers for ln in b.lines)
    # The unknown reaction is not remembered: the same msgid later, on a line, counts.
    feed(s, [reaction("dave", "#t", "👍", "m1", "r1")])
    assert shown(s, "m1") == [("👍", ("dave",))]


def test_reactions_from_ignored_nicks_are_dropped() -> None:
    s = react_session(ignore=("dave",))
    said(s)
    feed(s, [reaction("dave", "#t", "🤡", "m1", "r1"), reaction("bob", "#t", "👍", "m1", "r2")])
    assert shown(s, "m1") == [("👍", ("bob",))]


def test_reaction_text_is_sanitised_and_bounded() -> None:
    s = react_session()
    said(s)
    feed(s, [reaction("dave", "#t", "\x1b[31mhi\x1b]0;pwned\x07 \x0304red\x03\u202e", "m1", "r1"),
             reaction("carol", "#t", "  x" * 40, "m1", "r2")])
    [(first, _), (second, _)] = shown(s, "m1")
    assert first == "hi red"  # no escapes, no codes, no bidi override
    assert len(second) <= MAX_REACTION and second == ("x  " * 11)[:MAX_REACTION].strip()
    assert "\x1b" not in "".join(all_text(s))
    # A nick with codes is shown plain too.
    feed(s, [reaction("\x02eve\x02", "#t", "👍", "m2", "r3")])
    assert shown(s, "m2") == [("👍", ("eve",))]


def test_the_reactions_kept_per_line_are_bounded() -> None:
    s = react_session()
    said(s)
    feed(s, [reaction("dave", "#t", f"r{i}", "m1", f"a{i}") for i in range(MAX_REACTION_TEXTS + 5)])
    assert [t for t, _ in shown(s, "m1")] == [f"r{i}" for i in range(MAX_REACTION_TEXTS)]
    feed(s, [reaction(f"n{i}", "#t", "r0", "m1", f"b{i}") for i in range(MAX_REACTIONS + 50)])
    buf = s.buffer("#t")
    assert buf is not None
    line = buf.find_message("m1")
    assert line is not None and len(line.reactions) == MAX_REACTIONS
    # One nick's same reaction sent many times keeps a few msgids, still counted once.
    feed(s, [reaction("carol", "#t", "🙂", "m2", f"c{i}") for i in range(50)])
    m2 = buf.find_message("m2")
    assert m2 is not None and len(m2.reactions) == 1 and len(m2.reactions[0].msgids) == 4


def test_deleting_a_message_drops_its_reactions() -> None:
    s = react_session()
    said(s)
    feed(s, [reaction("dave", "#t", "👍", "m1", "r1"), redact("bob", "#t", "m1")])
    buf = s.buffer("#t")
    assert buf is not None
    line = buf.find_message("m1")
    assert line is not None and line.redacted and line.reactions == ()
    s.take_events()
    feed(s, [reaction("carol", "#t", "👍", "m1", "r2")])  # to a deleted message
    assert reacted(s) == []


# ---------------------------------------------------------------------- taking back


def test_a_redact_of_the_reactions_msgid_takes_it_back() -> None:
    s = react_session()
    said(s)
    feed(s, [reaction("dave", "#t", "👍", "m1", "r1", T0 + 4),
             reaction("carol", "#t", "👍", "m1", "r2", T0 + 5)])
    buf = s.buffer("#t")
    assert buf is not None
    s.take_events()
    assert feed(s, [redact("dave", "#t", "r1")]) == []
    assert shown(s, "m1") == [("👍", ("carol",))]
    assert texts(buf) == ["lunch at noon?", "sure", "where?"]  # no line deleted
    events = s.take_events()
    assert not any(isinstance(e, LineRedacted) for e in events)
    [event] = [e for e in events if isinstance(e, LineReacted)]
    assert (event.nick, event.text, event.msgid, event.removed, event.by) == (
        "dave", "👍", "r1", True, "")
    assert event.time == parse_time(REDACT_TIME)
    assert event.describe("07:00") == "dave took back 👍 from bob's message of 07:00"
    # A channel operator removing someone else's says who.
    feed(s, [redact("bob", "#t", "r2")])
    [event] = reacted(s)
    assert event.by == "bob" and shown(s, "m1") == []
    assert event.describe("07:00") == "bob removed carol's 👍 from bob's message of 07:00"
    # Taken back, it stays so: a late copy does not bring it back; nor twice.
    feed(s, [reaction("dave", "#t", "👍", "m1", "r1"), redact("dave", "#t", "r1")])
    assert shown(s, "m1") == [] and reacted(s) == []


def test_a_reaction_sent_twice_stays_until_both_are_taken_back() -> None:
    s = react_session()
    said(s)
    feed(s, [reaction("dave", "#t", "👍", "m1", "r1"), reaction("dave", "#t", "👍", "m1", "r2")])
    s.take_events()
    feed(s, [redact("dave", "#t", "r1")])
    assert shown(s, "m1") == [("👍", ("dave",))] and reacted(s) == []
    feed(s, [redact("dave", "#t", "r2")])
    assert shown(s, "m1") == [] and [e.removed for e in reacted(s)] == [True]


def test_a_private_reaction_is_taken_back_in_the_query() -> None:
    s = react_session()
    feed(s, [privmsg("bob", "alice", "psst", "p1", T0 + 1),
             reaction("alice", "bob", "👍", "p1", "r1"),  # ours (the echo)
             reaction("bob", "alice", "👀", "p1", "r2")])
    feed(s, [redact("alice", "bob", "r1"), redact("bob", "alice", "r2")])
    assert shown(s, "p1", "bob") == []


# ---------------------------------------------------------------------- history


def test_join_history_applies_reactions_in_either_order_and_shows_no_line() -> None:
    s = react_session()
    buf = s.buffer("#t")
    assert buf is not None
    h = "h1"
    out = feed(s, batch(h, "#t", [
        privmsg("bob", "#t", "lunch at noon?", "m1", T0 + 1, batch=h),
        reaction("carol", "#t", "👍", "m1", "r1", T0 + 2, batch=h),
        reaction("dave", "#t", "🍕", "m2", "r2", T0 + 2.5, batch=h),  # before its message
        privmsg("carol", "#t", "pizza?", "m2", T0 + 3, batch=h),
        reaction("dave", "#t", "👍", "m1", "r3", T0 + 4, batch=h),
        reaction("erin", "#t", "🙃", "m1", "r4", T0 + 5, batch=h),
        redact("erin", "#t", "r4", batch=h),  # taken back: never shown
        reaction("dave", "#t", "👍", "m0", "r5", T0 + 6, batch=h),  # not in the buffer
        reaction("dave", "#elsewhere", "👍", "m1", "r6", T0 + 7, batch=h),  # not this one's
        "@batch=h1;msgid=t1 :dave!d@h TAGMSG #t",  # a TAGMSG with nothing to show
    ]))  # fmt: skip
    assert out == []
    assert texts(buf) == ["lunch at noon?", "pizza?"]  # no line of a TAGMSG or REDACT
    assert {ln.kind for ln in buf.lines} == {Kind.JOIN, Kind.MESSAGE}
    assert shown(s, "m1") == [("👍", ("carol", "dave"))]
    assert shown(s, "m2") == [("🍕", ("dave",))]
    assert buf.history_complete  # 10 of the 100 asked for: that was all
    events = s.take_events()
    [added] = [e for e in events if isinstance(e, HistoryAdded)]
    assert added.count == 2  # lines only
    history = [e for e in events if isinstance(e, LineReacted)]
    assert [(e.nick, e.text, e.time, e.history) for e in history] == [
        ("carol", "👍", T0 + 2, True), ("dave", "🍕", T0 + 2.5, True),
        ("dave", "👍", T0 + 4, True)]
    assert events.index(added) < events.index(history[0])  # the message first, for logs
    assert (buf.unread, buf.highlights) == (0, 0)
    # A live copy of one of them (or a later answer) does not count it again.
    feed(s, [reaction("carol", "#t", "👍", "m1", "r1", T0 + 2)])
    assert reacted(s) == [] and shown(s, "m1") == [("👍", ("carol", "dave"))]


def test_a_full_page_counts_reactions_and_pages_on_from_them() -> None:
    s = react_session(history_lines=3)
    buf = s.buffer("#t")
    assert buf is not None
    feed(s, batch("h0", "#t", []))
    said(s)
    assert rejoin(s) == ["CHATHISTORY AFTER #t msgid=m3 3"]
    # Missed while away: reactions only, a full page of them.
    g = "g1"
    out = feed(s, batch(g, "#t", [reaction("dave", "#t", "👍", "m1", "r1", T0 + 10, batch=g),
                                  reaction("bob", "#t", "👍", "m2", "r2", T0 + 11, batch=g),
                                  reaction("carol", "#t", "😂", "m2", "r3", T0 + 12, batch=g)]))
    assert out == ["CHATHISTORY AFTER #t msgid=r3 3"]  # on from the newest item
    g = "g2"
    out = feed(s, batch(g, "#t", [redact("dave", "#t", "r1", batch=g),
                                  privmsg("bob", "#t", "so?", "m4", T0 + 14, batch=g)]))
    assert out == []  # caught up
    assert shown(s, "m1") == []  # reacted, then taken back while we were away
    assert shown(s, "m2") == [("👍", ("bob",)), ("😂", ("carol",))]
    notes = [ln.text for ln in buf.lines if "Reconnected" in ln.text]
    assert notes == ["Reconnected, fetched 1 missed message"]  # not the reactions
    assert [b.name for b in s.buffers] == ["server", "#t"]


def test_page_up_brings_older_reactions_and_pages_from_the_oldest_item() -> None:
    s = react_session(history_lines=3)
    buf = s.buffer("#t")
    assert buf is not None
    feed(s, history_batch("h1", "#t", [("bob", f"n{i}", f"m{i}", T0 + i) for i in (7, 8, 9)]))
    assert s.request_older(buf, NOW)
    assert sent(s) == ["CHATHISTORY BEFORE #t msgid=m7 3"]
    h = "b1"
    feed(s, batch(h, "#t", [reaction("dave", "#t", "👍", "m2", "r1", T0 + 4, batch=h),
                            privmsg("bob", "#t", "n5", "m5", T0 + 5, batch=h),
                            reaction("carol", "#t", "👀", "m5", "r2", T0 + 6, batch=h)]))
    assert texts(buf) == ["n5", "n7", "n8", "n9"]
    assert shown(s, "m5") == [("👀", ("carol",))]
    assert not buf.history_complete  # a full page: maybe more
    assert s.request_older(buf, NOW)
    assert sent(s) == ["CHATHISTORY BEFORE #t msgid=r1 3"]  # past the reaction


def test_query_history_with_reactions_only_opens_no_query() -> None:
    s = react_session(channels=())
    feed(s, [LOGIN])
    out = feed(s, [privmsg("bob", "alice", "psst", "p1", T0 + 1)])
    assert out == ["CHATHISTORY LATEST bob * 100"]
    h = "q1"
    feed(s, batch(h, "bob", [privmsg("bob", "alice", "psst", "p1", T0 + 1, batch=h),
                             reaction("alice", "bob", "👍", "p1", "r1", T0 + 2, batch=h),
                             reaction("bob", "alice", "❤️", "p1", "r2", T0 + 3, batch=h)]))
    query = s.buffer("bob")
    assert query is not None
    line = query.find_message("p1")
    assert line is not None
    assert [(r.text, r.nick, r.own) for r in line.reactions] == [
        ("👍", "alice", True), ("❤️", "bob", False)]
    assert feed(s, batch("q2", "carol", [reaction("carol", "alice", "👍", "c1", "r3", T0,
                                                  batch="q2")])) == []
    assert s.buffer("carol") is None


# ---------------------------------------------------------------------- /react, /unreact


def test_react_sends_a_tagmsg_for_the_newest_message() -> None:
    s = react_session()
    said(s)
    assert run(s, "/react 👍") == ["@+draft/react=👍;+draft/reply=m3 TAGMSG #t"]
    assert run(s, "/react :+1: bob") == ["@+draft/react=👍;+draft/reply=m1 TAGMSG #t"]
    assert run(s, "/react :TADA: BOB") == ["@+draft/react=🎉;+draft/reply=m1 TAGMSG #t"]
    assert run(s, "/react lol alice") == ["@+draft/react=lol;+draft/reply=m2 TAGMSG #t"]
    # Nothing changes before the echo comes back with the reaction's msgid.
    assert shown(s, "m3") == []
    feed(s, [reaction("alice", "#t", "👍", "m3", "r1")])
    assert shown(s, "m3") == [("👍", ("alice",))]
    assert run(s, "/react 👍") == []
    assert last_error(s) == "You reacted 👍 to that message already (/unreact 👍)"
    assert run(s, "/react ❤️") == ["@+draft/react=❤️;+draft/reply=m3 TAGMSG #t"]


def test_react_in_a_query_and_without_echo_message() -> None:
    s = react_session()
    feed(s, [privmsg("bob", "alice", "psst", "p1", T0 + 1)])
    s.switch("bob")
    assert run(s, "/react 👀") == ["@+draft/react=👀;+draft/reply=p1 TAGMSG bob"]
    # A server without echo-message: shown at once (it cannot be taken back: no msgid).
    s = react_session()
    s.caps.discard("echo-message")
    said(s)
    assert run(s, "/react 👍 carol") == ["@+draft/react=👍;+draft/reply=m3 TAGMSG #t"]
    assert shown(s, "m3") == [("👍", ("alice",))]
    [event] = reacted(s)
    assert event.msgid is None and event.line.reactions[0].own
    assert run(s, "/unreact") == []
    assert last_error(s) == "No reaction of yours to take back in #t"


def test_react_local_errors() -> None:
    s = react_session()
    said(s)
    feed(s, [":bob!b@h PRIVMSG #t :no msgid from this server"])
    assert run(s, "/react 👍 erin") == []
    assert last_error(s) == "No message from erin to react to in #t"
    assert run(s, "/react") == [] and last_error(s) == "Usage: /react EMOJI [NICK]"
    assert run(s, "/react 👍 bob extra") == []
    assert "Usage" in last_error(s)
    assert run(s, f"/react {'x' * (MAX_REACTION + 1)}") == []
    assert last_error(s).startswith("A reaction is an emoji, a :shortcode: or a word")
    assert run(s, "/react \x02bold") == [] and "A reaction is" in last_error(s)
    feed(s, [redact("carol", "#t", "m3")])
    assert run(s, "/react 👍 carol") == []  # deleted: nothing to react to
    assert last_error(s) == "No message from carol to react to in #t"
    feed(s, [":alice!~a@h PART #t"])
    assert run(s, "/react 👍") == [] and last_error(s) == "You are not in #t (/join #t)"
    s.switch(0)
    assert run(s, "/react 👍") == [] and "channel or query" in last_error(s)
    s.switch("#t")
    s.connection_lost(NOW)
    assert run(s, "/react 👍") == [] and last_error(s) == "/react: not connected"

    s = make(channels=("#t",))  # no message-tags at all (ngIRCd, say)
    s.connection_made(NOW)
    feed(s, [":srv CAP * LS :multi-prefix", ":srv CAP alice ACK :multi-prefix", *CHAT_BURST[2:],
             ":alice!~a@h JOIN #t", privmsg("bob", "#t", "hi", "m1")])
    s.switch("#t")
    assert run(s, "/react 👍") == []
    assert last_error(s) == "This server cannot carry reactions (no message-tags)"

    s = react_session()
    feed(s, [":bob!b@h PRIVMSG #t :no msgid"])
    assert run(s, "/react 👍") == [] and last_error(s) == "No message to react to in #t"


def test_unreact_takes_back_our_newest_reaction() -> None:
    s = react_session()
    said(s)
    feed(s, [reaction("alice", "#t", "👍", "m1", "r1", T0 + 4),
             reaction("alice", "#t", "🍕", "m1", "r2", T0 + 5),
             reaction("alice", "#t", "👍", "m3", "r3", T0 + 6),
             reaction("dave", "#t", "❤️", "m3", "r4", T0 + 7)])
    assert run(s, "/unreact") == ["REDACT #t r3"]
    assert run(s, "/unreact 🍕") == ["REDACT #t r2"]
    assert run(s, "/unreact :+1:") == ["REDACT #t r3"]
    assert shown(s, "m3") == [("👍", ("alice",)), ("❤️", ("dave",))]  # until the server says
    feed(s, [redact("alice", "#t", "r3")])  # the confirmation
    assert shown(s, "m3") == [("❤️", ("dave",))]
    assert run(s, "/unreact 👍") == ["REDACT #t r1"]
    assert run(s, "/unreact ❤️") == []  # dave's, not ours
    assert last_error(s) == "No reaction ❤️ of yours to take back in #t"
    # Sent twice (another session of ours, say): both copies go.
    feed(s, [reaction("alice", "#t", "👀", "m2", "r5", T0 + 8),
             reaction("alice", "#t", "👀", "m2", "r6", T0 + 9)])
    assert run(s, "/unreact") == ["REDACT #t r5", "REDACT #t r6"]


def test_unreact_local_errors() -> None:
    s = chat_session()  # no draft/message-redaction
    s.switch("#t")
    feed(s, [privmsg("bob", "#t", "hi", "m1"), reaction("alice", "#t", "👍", "m1", "r1")])
    assert run(s, "/unreact") == []
    assert last_error(s) == "This server cannot take reactions back (no draft/message-redaction)"
    s = react_session()
    said(s)
    assert run(s, "/unreact") == [] and last_error(s) == "No reaction of yours to take back in #t"
    assert run(s, "/unreact a b") == [] and "Usage" in last_error(s)
    s.switch(0)
    assert run(s, "/unreact") == [] and "channel or query" in last_error(s)


def test_react_help_and_completion() -> None:
    s = react_session()
    said(s)
    feed(s, [reaction("dave", "#t", "lol", "m1", "r1"), reaction("alice", "#t", "🍕", "m1", "r2")])
    run(s, "/help react")
    assert s.current.lines[-1].text.startswith("/react EMOJI [NICK] — React to the newest")
    run(s, "/help unreact")
    assert s.current.lines[-1].text.startswith("/unreact [EMOJI] — Take back your newest")
    assert s.complete("/rea").candidates == ["/react "]
    assert s.complete("/unr").candidates == ["/unreact "]
    assert s.complete("/react :thumbsu").candidates == ["👍 "]  # shortcodes become the emoji
    assert s.complete("/react :t").candidates == ["👍 ", "👎 ", "🤔 ", "🎉 "]
    assert s.complete("/react l").candidates == ["lol "]  # used here already
    assert s.complete("/react 👍 b").candidates == ["bob "]  # who wrote here
    assert s.complete("/react 👍 c").candidates == ["carol "]
    assert s.complete("/react 👍 a").candidates == []  # not ourselves
    assert s.complete("/unreact 🍕").candidates == ["🍕 "]  # ours only
    assert s.complete("/unreact l").candidates == []


# ---------------------------------------------------------------------- logs


def test_the_chat_log_writes_each_reaction_once(tmp_path: Path) -> None:
    s = react_session()
    log = ChatLog(tmp_path)

    def logged(lines: list[str]) -> None:
        feed(s, lines)
        for event in s.take_events():
            log.handle(event)

    logged(batch("h0", "#t", []))
    logged([privmsg("bob", "#t", "lunch at noon?", "m1", T0 + 1),
            reaction("dave", "#t", "👍", "m1", "r1", T0 + 2)])
    rejoin(s)
    g = "g1"  # the gap fill brings it again, and one made while away
    logged(batch(g, "#t", [reaction("dave", "#t", "👍", "m1", "r1", T0 + 2, batch=g),
                           reaction("carol", "#t", "🍕", "m1", "r2", T0 + 3, batch=g)]))
    logged([redact("dave", "#t", "r1")])
    log.close()

    def stamp(t: float) -> str:
        return time.strftime(TIME_FORMAT, time.localtime(t))

    written = (tmp_path / "#t.log").read_text(encoding="utf-8").splitlines()
    assert [ln for ln in written if "<" in ln or "message of" in ln] == [
        f"{stamp(T0 + 1)} <bob> lunch at noon?",
        f"{stamp(T0 + 2)} -!- dave reacted 👍 to bob's message of {stamp(T0 + 1)}",
        f"{stamp(T0 + 3)} -!- carol reacted 🍕 to bob's message of {stamp(T0 + 1)}",
        f"{stamp(parse_time(REDACT_TIME))} -!- dave took back 👍 from bob's message of "
        f"{stamp(T0 + 1)}",
    ]


def test_history_reactions_older_than_the_log_are_not_written_again(tmp_path: Path) -> None:
    def stamp(t: float) -> str:
        return time.strftime(TIME_FORMAT, time.localtime(t))

    (tmp_path / "#t.log").write_text(
        f"{stamp(T0 + 1)} <bob> lunch at noon?\n"
        f"{stamp(T0 + 2)} -!- dave reacted 👍 to bob's message of {stamp(T0 + 1)}\n",
        encoding="utf-8",
    )
    s = react_session()
    log = ChatLog(tmp_path)
    h = "h1"  # a new run: the join history holds what the file has, and one more
    feed(s, batch(h, "#t", [privmsg("bob", "#t", "lunch at noon?", "m1", T0 + 1, batch=h),
                            reaction("dave", "#t", "👍", "m1", "r1", T0 + 2, batch=h),
                            reaction("carol", "#t", "🍕", "m1", "r2", T0 + 5, batch=h)]))
    for event in s.take_events():
        log.handle(event)
    log.close()
    written = (tmp_path / "#t.log").read_text(encoding="utf-8").splitlines()
    assert written[2:] == [f"{stamp(T0 + 5)} -!- carol reacted 🍕 to bob's message of "
                           f"{stamp(T0 + 1)}"]  # fmt: skip


def test_headless_mode_prints_the_reaction() -> None:
    s = react_session()
    feed(s, [privmsg("bob", "#t", "lunch at noon?", "m1", T0 + 1),
             reaction("dave", "#t", "👍", "m1", "r1", T0 + 2)])
    [event] = reacted(s)

    def hm(t: float) -> str:
        return time.strftime("%H:%M", time.localtime(t))

    assert format_reaction(event, "%H:%M") == (
        f"{hm(T0 + 2)} #t -- dave reacted 👍 to bob's message of {hm(T0 + 1)}"
    )


# ---------------------------------------------------------------------- real server


def drawn(line: object) -> str:
    """A line as the message pane draws it (no timestamp)."""
    return plain_text(LineRenderer("").rows(line, 200))  # type: ignore[arg-type]


async def test_a_reaction_reaches_others_is_kept_in_history_and_taken_back(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    alice = ChatClient.start(server.port, "alice", ("#room",))
    bob = ChatClient.start(server.port, "bob", ("#room",))
    clients += [alice, bob]
    mine, theirs = await alice.joined("#room"), await bob.joined("#room")
    assert "draft/event-playback" in alice.session.caps  # offered, and requested
    bob.conn.switch("#room")
    bob.conn.input("lunch at noon?")
    for c, buf in ((alice, mine), (bob, theirs)):
        await c.wait(lambda buf=buf: has_texts(buf, ["lunch at noon?"]), "bob's message")
    [said] = messages(theirs)
    assert said.msgid

    alice.conn.switch("#room")
    alice.conn.input("/react 👍")
    assert f"@+draft/react=👍;+draft/reply={said.msgid} TAGMSG #room" in alice.sent
    await bob.wait(lambda: bool(messages(theirs)[0].reactions), "the reaction")
    [line] = messages(theirs)
    assert drawn(line) == "<bob> lunch at noon?  [👍 1]"
    assert line.reaction_groups() == [("👍", ("alice",), False)]
    await alice.wait(lambda: bool(messages(mine)[0].reactions), "the echo")
    [own] = messages(mine)[0].reactions
    assert own.own and own.msgids  # the echo brought its msgid

    # carol joins later: the join history brings the reaction, not a line of it.
    carol, hers = await in_channel(clients, server.port, "carol", "#room")
    assert [drawn(ln) for ln in messages(hers)] == ["<bob> lunch at noon?  [👍 1]"]
    assert not any("TAGMSG" in ln.text or "👍" in ln.text for ln in hers.lines)

    alice.conn.input("/unreact")
    assert f"REDACT #room {own.msgids[0]}" in alice.sent
    for c, buf in ((bob, theirs), (carol, hers), (alice, mine)):
        await c.wait(lambda buf=buf: not messages(buf)[0].reactions, "the take-back")
    assert drawn(messages(theirs)[0]) == "<bob> lunch at noon?"
    removed = [e for e in bob.events if isinstance(e, LineReacted) and e.removed]
    assert [(e.nick, e.text) for e in removed] == [("alice", "👍")]

    # dave, later still: taken back, it is not in history either.
    _dave, his = await in_channel(clients, server.port, "dave", "#room")
    assert [drawn(ln) for ln in messages(his)] == ["<bob> lunch at noon?"]
