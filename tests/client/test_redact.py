"""IRCv3 draft/message-redaction in the client: deleted messages keep their line, with
a dimmed placeholder that says who deleted them.

Sans-IO cases first (REDACT and FAIL REDACT from the server, /redact, the chat log),
then end-to-end cases against our real server over TCP.
"""

from __future__ import annotations

import time
from pathlib import Path

from chat.servertime import format_time, parse_time
from client.chatlog import TIME_FORMAT, ChatLog
from client.headless import format_redaction
from client.model import BufferKind, HistoryAdded, Kind, LineAdded, LineRedacted
from client.session import Session
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

CAP = "draft/message-redaction"
REDACT_TIME = "2026-11-21T07:00:00.000Z"


BURST = burst_offering(CAP)  # our server, recorded, with the cap
LOGIN = ":test.server 900 alice alice!~a@h alice :You are now logged in as alice"


def redact_session(channels: tuple[str, ...] = ("#t",), **kw: object) -> Session:
    """Registered against our server (recorded) offering draft/message-redaction, in #t
    with bob and carol, #t current (its history asked for: ``CHATHISTORY LATEST``)."""
    return joined_session(BURST, ("bob", "carol"), channels, **kw)


def redact(nick: str, target: str, msgid: str, reason: str | None = None) -> str:
    """The REDACT the server relays (with its own msgid and time)."""
    tail = f" :{reason}" if reason is not None else ""
    tags = f"@time={REDACT_TIME};msgid=r-{msgid}"
    return f"{tags} :{nick}!~{nick}@host REDACT {target} {msgid}{tail}"


def redacted(s: Session) -> list[LineRedacted]:
    return [e for e in s.take_events() if isinstance(e, LineRedacted)]


def stored_redact(
    batch: str, nick: str, target: str, msgid: str, t: float, reason: str | None = None
) -> str:
    """A REDACT in a chathistory batch, as the server keeps it: at the deletion's time,
    with its own msgid (``r-`` and the deleted one's)."""
    tail = f" :{reason}" if reason is not None else ""
    tags = f"@batch={batch};time={format_time(t)};msgid=r-{msgid};account={nick}"
    return f"{tags} :{nick}!~{nick}@host REDACT {target} {msgid}{tail}"


def rejoin(s: Session, *lines: str) -> list[str]:
    """Lose the connection, register again and rejoin #t (first ``lines``, such as a
    LOGIN); what the session sent on the rejoin."""
    s.connection_lost(NOW, "Connection reset")
    s.connection_made(NOW + 60)
    feed(s, [*lines, *BURST], NOW + 60)
    return feed(s, [":alice!~a@h JOIN #t", ":bob!b@h JOIN #t", ":carol!c@h JOIN #t"], NOW + 60)


# ---------------------------------------------------------------------- capability


def test_the_capability_is_requested_with_message_tags() -> None:
    s = make()
    s.connection_made(NOW)
    s.take_outgoing()
    sent = feed(s, [f":srv CAP * LS :message-tags echo-message {CAP}"])
    assert sent == [f"CAP REQ :message-tags echo-message {CAP}"]
    feed(s, [f":srv CAP alice ACK :message-tags echo-message {CAP}"])
    assert s.redaction_enabled


def test_the_capability_is_not_requested_without_message_tags() -> None:
    s = make()
    s.connection_made(NOW)
    s.take_outgoing()
    assert feed(s, [f":srv CAP * LS :echo-message {CAP}"]) == ["CAP REQ echo-message"]
    assert not chat_session().redaction_enabled  # our recorded server: not offered


# ---------------------------------------------------------------------- REDACT


def test_a_message_deleted_by_its_sender_keeps_its_line_with_a_placeholder() -> None:
    s = redact_session()
    feed(s, [privmsg("bob", "#t", "oops, wrong window", "m1", T0 + 1),
             privmsg("carol", "#t", "after it", "m2", T0 + 2)])
    buf = s.buffer("#t")
    assert buf is not None
    old = buf.find_message("m1")
    assert old is not None
    index = list(buf.lines).index(old)
    s.take_events()
    version = buf.version

    assert feed(s, [redact("bob", "#t", "m1")]) == []
    new = buf.lines[index]  # in place: the lines around it did not move
    assert new.redacted and new.text == "(message deleted)"
    assert "".join(sp.text for sp in new.spans) == new.text
    assert (new.nick, new.time, new.msgid, new.kind) == ("bob", old.time, "m1", Kind.MESSAGE)
    assert texts(buf) == ["(message deleted)", "after it"]
    assert buf.version > version
    events = s.take_events()
    assert not any(isinstance(e, LineAdded) for e in events)  # nothing new is appended
    [event] = [e for e in events if isinstance(e, LineRedacted)]
    assert (event.buffer, event.old, event.line) == (buf, old, new)
    assert (event.by, event.reason, event.by_sender) == ("bob", "", True)
    assert event.time == parse_time(REDACT_TIME)  # the REDACT's server time


def test_a_message_deleted_by_someone_else_says_who_and_why() -> None:
    s = redact_session()
    feed(s, [privmsg("bob", "#t", "join my network", "m1", T0 + 1),
             redact("carol", "#t", "m1", "spam \x0304please\x03\x1b[2J")])
    buf = s.buffer("#t")
    assert buf is not None
    [line] = [ln for ln in buf.lines if ln.msgid == "m1"]
    assert line.text == "(message deleted by carol: spam please)"  # no codes, no ESC
    assert line.nick == "bob"  # still who sent it
    [event] = redacted(s)
    assert (event.by, event.reason, event.by_sender) == ("carol", "spam please", False)
    assert event.describe("07:00") == "carol deleted bob's message of 07:00: spam please"


def test_own_message_deleted_by_us() -> None:
    s = redact_session()
    feed(s, [privmsg("alice", "#t", "hi all, alice here", "m1", T0 + 1)])  # the echo
    feed(s, [redact("alice", "#t", "m1", "typo")])  # the confirmation
    buf = s.buffer("#t")
    assert buf is not None
    assert texts(buf) == ["(message deleted: typo)"]
    assert buf.lines[-1].own and buf.lines[-1].redacted
    [event] = redacted(s)
    assert event.describe("07:00") == "alice deleted their message of 07:00: typo"


def test_the_placeholder_is_no_highlight() -> None:
    s = redact_session()
    feed(s, [privmsg("bob", "#t", "alice: look at this", "m1", T0 + 1)])
    buf = s.buffer("#t")
    assert buf is not None and buf.lines[-1].highlight
    feed(s, [redact("bob", "#t", "m1")])
    assert not buf.lines[-1].highlight


def test_unknown_messages_and_repeated_deletions_are_ignored() -> None:
    s = redact_session()
    feed(s, [privmsg("bob", "#t", "keep me", "m1", T0 + 1)])
    buf = s.buffer("#t")
    assert buf is not None
    s.take_events()
    before = list(buf.lines)
    feed(s, [redact("bob", "#t", "nope"),  # no such message
             redact("bob", "#elsewhere", "m1"),  # not where it was
             redact("bob", "dave", "m1"),  # a private REDACT between others
             redact("bob", "alice", "m1"),  # the query with bob: there is none
             ":bob!b@h REDACT #t"])  # malformed
    assert list(buf.lines) == before and redacted(s) == []
    assert s.buffer("bob") is None  # no query is opened for it
    assert not any(ln.kind is Kind.ERROR for b in s.buffers for ln in b.lines)

    feed(s, [redact("bob", "#t", "m1")])
    assert len(redacted(s)) == 1
    feed(s, [redact("carol", "#t", "m1", "again")])  # deleted already: not twice
    assert redacted(s) == [] and texts(buf) == ["(message deleted)"]


def test_a_deleted_message_is_not_shown_again_by_history() -> None:
    s = redact_session()
    feed(s, [privmsg("bob", "#t", "secret", "m1", T0 + 1), redact("bob", "#t", "m1")])
    buf = s.buffer("#t")
    assert buf is not None
    # A server that still has it (or a history answer in flight meanwhile).
    feed(s, history_batch("h1", "#t", [("bob", "secret", "m1", T0 + 1)]))
    feed(s, [privmsg("bob", "#t", "secret", "m1", T0 + 1)])  # and a duplicate live copy
    assert texts(buf) == ["(message deleted)"]
    assert "secret" not in [ln.text for ln in buf.lines]


def test_history_lines_can_be_deleted() -> None:
    s = redact_session()
    feed(s, history_batch("h1", "#t", [("bob", "old one", "h-1", T0 - 60),
                                       ("carol", "older news", "h-2", T0 - 30)]))
    feed(s, [redact("carol", "#t", "h-1", "off topic")])
    buf = s.buffer("#t")
    assert buf is not None
    assert texts(buf) == ["(message deleted by carol: off topic)", "older news"]
    assert [ln.history for ln in buf.lines if ln.msgid == "h-1"] == [True]


# ---------------------------------------------------------------------- REDACT in history


def test_join_history_applies_deletions_and_never_shows_a_deleted_text() -> None:
    s = redact_session()
    buf = s.buffer("#t")
    assert buf is not None
    # A live message comes before the history answer; it was deleted meanwhile.
    feed(s, [privmsg("bob", "#t", "live, then deleted", "m4", T0 + 4)])
    s.take_events()
    h = "h1"
    out = feed(s, batch(h, "#t", [
        privmsg("bob", "#t", "hello", "m1", T0 + 1, batch=h),
        # Merged by time, a deletion can come before the message it deletes, or after.
        stored_redact(h, "carol", "#t", "m2", T0 + 2.5, "spam"),
        privmsg("dave", "#t", "buy my stuff", "m2", T0 + 2, batch=h),
        privmsg("erin", "#t", "my password is hunter2", "m3", T0 + 3, batch=h),
        stored_redact(h, "erin", "#t", "m3", T0 + 3.5),
        privmsg("bob", "#t", "live, then deleted", "m4", T0 + 4, batch=h),
        stored_redact(h, "bob", "#t", "m4", T0 + 5, "oops"),
        stored_redact(h, "carol", "#t", "m0", T0 + 6),  # unknown here: ignored
        stored_redact(h, "carol", "#elsewhere", "m1", T0 + 7),  # not this channel's
    ]))  # fmt: skip
    assert out == []
    assert texts(buf) == ["hello", "(message deleted: oops)"]
    assert {ln.kind for ln in buf.lines} == {Kind.JOIN, Kind.MESSAGE}  # no line of a REDACT
    assert not {"buy my stuff", "my password is hunter2", "live, then deleted"} & set(all_text(s))
    events = s.take_events()
    [deletion] = [e for e in events if isinstance(e, LineRedacted)]
    assert (deletion.old.msgid, deletion.by, deletion.reason) == ("m4", "bob", "oops")
    assert deletion.by_sender and deletion.time == T0 + 5  # the deletion's server time
    [added] = [e for e in events if isinstance(e, HistoryAdded)]
    assert [ln.text for ln in added.lines] == ["hello"]
    assert buf.history_complete  # 9 of the 100 asked for: that was all
    # The deleted ones stay unseen: a later answer cannot show them either.
    feed(s, history_batch("h2", "#t", [("dave", "buy my stuff", "m2", T0 + 2),
                                       ("erin", "my password is hunter2", "m3", T0 + 3)]))
    assert texts(buf) == ["hello", "(message deleted: oops)"]
    assert s.buffer("carol") is None and s.buffer("#elsewhere") is None


def test_the_gap_fill_after_a_reconnect_applies_the_deletions_made_meanwhile() -> None:
    s = redact_session(history_lines=2)
    buf = s.buffer("#t")
    assert buf is not None
    feed(s, batch("h0", "#t", []))
    feed(s, [privmsg("bob", "#t", "join my network", "m1", T0 + 1),
             privmsg("bob", "#t", "alice: did you see it?", "m2", T0 + 2)])
    assert buf.lines[-1].highlight
    s.switch(0)  # elsewhere: what was missed counts as unread
    unread, highlights = buf.unread, buf.highlights
    s.take_events()

    assert rejoin(s) == ["CHATHISTORY AFTER #t msgid=m2 2"]
    # A full page of deletions (one of a message never seen here): ask on from the last.
    g = "g1"
    out = feed(s, batch(g, "#t", [stored_redact(g, "carol", "#t", "m1", T0 + 10, "spam"),
                                  stored_redact(g, "carol", "#t", "m0", T0 + 11, "spam")]))
    assert out == ["CHATHISTORY AFTER #t msgid=r-m0 2"]
    g = "g2"
    out = feed(s, batch(g, "#t", [privmsg("bob", "#t", "alice: ping", "m3", T0 + 12, batch=g),
                                  stored_redact(g, "bob", "#t", "m2", T0 + 13)]))
    assert out == ["CHATHISTORY AFTER #t msgid=m3 2"]  # a message, not a deletion
    g = "g3"
    out = feed(s, batch(g, "#t", [stored_redact(g, "bob", "#t", "m2", T0 + 13)]))  # again
    assert out == []  # caught up
    assert texts(buf) == ["(message deleted by carol: spam)", "(message deleted)", "alice: ping"]
    notes = [ln.text for ln in buf.lines if "Reconnected" in ln.text]
    assert notes == ["Reconnected, fetched 1 missed message"]  # not the deletions
    assert (buf.unread, buf.highlights) == (unread + 1, highlights + 1)  # "alice: ping"
    events = s.take_events()
    assert [(e.old.msgid, e.by, e.time) for e in events if isinstance(e, LineRedacted)] == [
        ("m1", "carol", T0 + 10), ("m2", "bob", T0 + 13)]
    assert [e.count for e in events if isinstance(e, HistoryAdded)] == [1]
    assert [b.name for b in s.buffers] == ["server", "#t"]  # none opened


def test_a_reconnect_with_only_deletions_missed() -> None:
    s = redact_session()
    buf = s.buffer("#t")
    assert buf is not None
    feed(s, batch("h0", "#t", []))
    feed(s, [privmsg("bob", "#t", "typo", "m1", T0 + 1)])
    assert rejoin(s) == ["CHATHISTORY AFTER #t msgid=m1 100"]
    feed(s, batch("g1", "#t", [stored_redact("g1", "bob", "#t", "m1", T0 + 2)]))
    assert texts(buf) == ["(message deleted)"]
    assert buf.lines[-1].text == "Reconnected, no missed messages"
    # The next reconnect asks from the same message; its deletion is not applied twice.
    assert rejoin(s) == ["CHATHISTORY AFTER #t msgid=m1 100"]
    s.take_events()
    feed(s, batch("g2", "#t", [stored_redact("g2", "bob", "#t", "m1", T0 + 2)]))
    assert redacted(s) == [] and texts(buf) == ["(message deleted)"]


def test_page_up_applies_deletions_and_pages_from_real_messages() -> None:
    s = redact_session(history_lines=3)
    buf = s.buffer("#t")
    assert buf is not None
    feed(s, history_batch("h1", "#t", [("bob", f"n{i}", f"m{i}", T0 + i) for i in (7, 8, 9)]))
    s.take_events()
    assert s.request_older(buf, NOW)
    assert sent(s) == ["CHATHISTORY BEFORE #t msgid=m7 3"]
    h = "b1"
    feed(s, batch(h, "#t", [
        stored_redact(h, "carol", "#t", "m1", T0 + 4),  # the oldest of the page
        privmsg("bob", "#t", "n5", "m5", T0 + 5, batch=h),
        privmsg("bob", "#t", "n6", "m6", T0 + 6, batch=h),
    ]))  # fmt: skip
    assert texts(buf) == ["n5", "n6", "n7", "n8", "n9"]
    assert not buf.history_complete  # a full page: maybe more
    [added] = [e for e in s.take_events() if isinstance(e, HistoryAdded)]
    assert added.count == 2
    assert s.request_older(buf, NOW)
    assert sent(s) == ["CHATHISTORY BEFORE #t msgid=m5 3"]  # a real message's
    # A page of deletions only (m1's again, two of messages older still).
    h = "b2"
    feed(s, batch(h, "#t", [stored_redact(h, "carol", "#t", "m2", T0 + 3.5),
                            stored_redact(h, "carol", "#t", "m3", T0 + 3.6),
                            stored_redact(h, "carol", "#t", "m1", T0 + 4)]))
    assert texts(buf) == ["n5", "n6", "n7", "n8", "n9"] and not buf.history_complete
    assert s.request_older(buf, NOW)
    assert sent(s) == ["CHATHISTORY BEFORE #t msgid=r-m2 3"]  # past them
    # A server that still returns the deleted messages: they are not shown.
    feed(s, history_batch("b3", "#t", [("bob", "n1", "m1", T0 + 1), ("bob", "n2", "m2", T0 + 2),
                                       ("bob", "n3", "m3", T0 + 3)]))
    assert texts(buf) == ["n5", "n6", "n7", "n8", "n9"] and redacted(s) == []


def test_query_history_applies_deletions_of_either_side() -> None:
    s = redact_session(channels=())
    feed(s, [LOGIN])
    out = feed(s, [privmsg("bob", "alice", "psst", "p1", T0 + 1),
                   privmsg("alice", "bob", "what?", "p2", T0 + 2)])
    assert out == ["CHATHISTORY LATEST bob * 100"]
    query = s.buffer("bob")
    assert query is not None
    counts = (query.unread, query.highlights)
    h = "q1"
    feed(s, batch(h, "bob", [
        privmsg("bob", "alice", "psst", "p1", T0 + 1, batch=h),
        privmsg("alice", "bob", "what?", "p2", T0 + 2, batch=h),
        stored_redact(h, "bob", "alice", "p1", T0 + 3),  # bob deleted his: to us
        stored_redact(h, "alice", "bob", "p2", T0 + 4, "nm"),  # we did (another session)
        privmsg("bob", "alice", "gone", "p3", T0 + 5, batch=h),
        stored_redact(h, "bob", "alice", "p3", T0 + 6),
        stored_redact(h, "bob", "#t", "p4", T0 + 7),  # a channel's: not this query's
    ]))  # fmt: skip
    assert texts(query) == ["(message deleted)", "(message deleted: nm)"]
    assert [(e.buffer, e.by) for e in redacted(s)] == [(query, "bob"), (query, "alice")]
    # Nothing new counts; bob's "psst", unread (a private message: a highlight), was
    # deleted, so it no longer does.
    assert counts == (1, 1) and (query.unread, query.highlights) == (0, 0)
    # A conversation not open that had only deletions opens no query.
    assert feed(s, batch("q2", "carol", [stored_redact("q2", "carol", "alice", "c1", T0)])) == []
    assert s.buffer("carol") is None


def test_the_chat_log_records_a_deletion_learnt_from_history_once(tmp_path: Path) -> None:
    s = redact_session()
    log = ChatLog(tmp_path)

    def logged(lines: list[str]) -> None:
        feed(s, lines)
        for event in s.take_events():
            log.handle(event)

    logged(batch("h0", "#t", []))
    logged([privmsg("bob", "#t", "buy my stuff", "m1", T0 + 1)])
    rejoin(s)
    g = "g1"
    logged(batch(g, "#t", [privmsg("dave", "#t", "never seen", "m2", T0 + 2, batch=g),
                           stored_redact(g, "carol", "#t", "m1", T0 + 3, "spam"),
                           stored_redact(g, "dave", "#t", "m2", T0 + 4)]))
    rejoin(s)  # again: the same deletion comes again
    logged(batch("g2", "#t", [stored_redact("g2", "carol", "#t", "m1", T0 + 3, "spam")]))
    log.close()

    def stamp(t: float) -> str:
        return time.strftime(TIME_FORMAT, time.localtime(t))

    written = (tmp_path / "#t.log").read_text(encoding="utf-8").splitlines()
    assert [ln for ln in written if "<" in ln or "deleted" in ln] == [
        f"{stamp(T0 + 1)} <bob> buy my stuff",
        f"{stamp(T0 + 3)} -!- carol deleted bob's message of {stamp(T0 + 1)}: spam",
    ]


def test_private_messages_are_found_in_the_query_with_the_other_party() -> None:
    s = redact_session()
    feed(s, [privmsg("bob", "alice", "psst", "p1", T0 + 1),  # bob to us: query bob
             privmsg("alice", "bob", "what?", "p2", T0 + 2)])  # our echo: query bob too
    query = s.buffer("bob")
    assert query is not None and query.kind is BufferKind.QUERY
    feed(s, [redact("bob", "alice", "p1")])  # bob deletes his: the target is us
    feed(s, [redact("alice", "bob", "p2")])  # we delete ours: the target is bob
    assert texts(query) == ["(message deleted)", "(message deleted)"]
    assert [(e.buffer, e.by) for e in redacted(s)] == [(query, "bob"), (query, "alice")]


def test_the_read_marker_follows_the_replaced_line() -> None:
    s = redact_session()
    feed(s, [privmsg("bob", "#t", "last before leaving", "m1", T0 + 1)])
    s.switch(0)  # leave #t: its newest line is the read marker
    buf = s.buffer("#t")
    assert buf is not None and buf.read_marker is not None and buf.read_marker.msgid == "m1"
    feed(s, [redact("bob", "#t", "m1")])
    assert buf.read_marker is buf.lines[-1] and buf.read_marker.redacted


def test_the_chat_log_records_the_deletion_as_a_line_of_its_own(tmp_path: Path) -> None:
    s = redact_session()
    log = ChatLog(tmp_path)
    feed(s, [privmsg("bob", "#t", "buy my stuff", "m1", T0 + 1),
             privmsg("bob", "#t", "sorry", "m2", T0 + 2),
             redact("carol", "#t", "m1", "spam"),
             privmsg("bob", "alice", "oops", "p1", T0 + 3),
             redact("bob", "alice", "p1")])
    for event in s.take_events():
        log.handle(event)
    log.close()

    def stamp(t: float) -> str:
        return time.strftime(TIME_FORMAT, time.localtime(t))

    deleted_at = stamp(parse_time(REDACT_TIME))
    channel = (tmp_path / "#t.log").read_text(encoding="utf-8").splitlines()
    assert channel[-3:] == [  # what was written stays; the deletion follows
        f"{stamp(T0 + 1)} <bob> buy my stuff",
        f"{stamp(T0 + 2)} <bob> sorry",
        f"{deleted_at} -!- carol deleted bob's message of {stamp(T0 + 1)}: spam",
    ]
    query = (tmp_path / "bob.log").read_text(encoding="utf-8").splitlines()
    assert query == [f"{stamp(T0 + 3)} <bob> oops",
                     f"{deleted_at} -!- bob deleted their message of {stamp(T0 + 3)}"]


def test_headless_mode_prints_the_deletion() -> None:
    s = redact_session()
    feed(s, [privmsg("bob", "#t", "buy my stuff", "m1", T0 + 1),
             redact("carol", "#t", "m1", "spam")])
    [event] = redacted(s)

    def hm(t: float) -> str:
        return time.strftime("%H:%M", time.localtime(t))

    assert format_redaction(event, "%H:%M") == (
        f"{hm(parse_time(REDACT_TIME))} #t -- carol deleted bob's message of {hm(T0 + 1)}: spam"
    )


# ---------------------------------------------------------------------- FAIL REDACT


def test_fail_redact_is_an_error_line_in_the_buffer_concerned() -> None:
    s = redact_session()
    feed(s, [privmsg("alice", "bob", "hi", "p1", T0 + 1)])
    s.switch(0)  # the server buffer is current
    feed(s, [
        ":srv FAIL REDACT REDACT_FORBIDDEN #t m1 :You are not authorised to delete this message",
        ":srv FAIL REDACT REDACT_WINDOW_EXPIRED bob p1 300 :You can no longer delete this message",
        ":srv FAIL REDACT INVALID_TARGET #nowhere :You cannot delete messages from #nowhere",
    ])
    chan, query = s.buffer("#t"), s.buffer("bob")
    assert chan is not None and query is not None
    assert (chan.lines[-1].kind, chan.lines[-1].text) == (
        Kind.ERROR,
        "Message not deleted: You are not authorised to delete this message (REDACT_FORBIDDEN)",
    )
    assert (query.lines[-1].kind, query.lines[-1].text) == (
        Kind.ERROR,
        "Message not deleted: You can no longer delete this message (REDACT_WINDOW_EXPIRED)",
    )
    last = s.server.lines[-1]  # no such buffer: where the user is
    assert last.kind is Kind.ERROR and "(INVALID_TARGET)" in last.text


# ---------------------------------------------------------------------- /redact


def chatted(s: Session) -> None:
    """#t: ours m1 and m4 (echoes), bob's m2 and m5, carol's m3; newest last."""
    feed(s, [privmsg("alice", "#t", "first of mine", "m1", T0 + 1),
             privmsg("bob", "#t", "bob speaks", "m2", T0 + 2),
             privmsg("carol", "#t", "spam spam", "m3", T0 + 3),
             privmsg("alice", "#t", "second of mine", "m4", T0 + 4),
             privmsg("bob", "#t", "bob again", "m5", T0 + 5)])


def test_redact_deletes_our_newest_message_here() -> None:
    s = redact_session()
    chatted(s)
    assert run(s, "/redact") == ["REDACT #t m4"]
    # Nothing changes before the server's REDACT comes back.
    buf = s.buffer("#t")
    assert buf is not None and not any(ln.redacted for ln in buf.lines)
    feed(s, [redact("alice", "#t", "m4")])
    assert run(s, "/redact") == ["REDACT #t m1"]  # deleted ones are skipped


def test_redact_reason_and_nick() -> None:
    s = redact_session()
    chatted(s)
    assert run(s, "/redact oops, typo") == ["REDACT #t m4 :oops, typo"]  # not a nick here
    assert run(s, "/redact bob") == ["REDACT #t m5"]
    assert run(s, "/redact BOB spam, sorry") == ["REDACT #t m5 :spam, sorry"]  # casemapping
    assert run(s, "/redact carol spam") == ["REDACT #t m3 spam"]
    assert run(s, "/redact alice ours") == ["REDACT #t m4 ours"]  # our own nick: ours
    # A member who never wrote here is no nick for /redact: it all is the reason.
    feed(s, [":dave!d@h JOIN #t"])
    assert run(s, "/redact dave is wrong") == ["REDACT #t m4 :dave is wrong"]


def test_redact_in_a_query() -> None:
    s = redact_session()
    feed(s, [privmsg("alice", "bob", "to bob", "p1", T0 + 1),
             privmsg("bob", "alice", "to alice", "p2", T0 + 2)])
    s.switch("bob")
    assert run(s, "/redact") == ["REDACT bob p1"]
    assert run(s, "/redact bob rude") == ["REDACT bob p2 rude"]  # the server will refuse


def test_redact_needs_a_message_with_a_msgid() -> None:
    s = redact_session()
    feed(s, [privmsg("bob", "#t", "no msgid from this server"),
             r"@msgid=bad\sid :carol!c@h PRIVMSG #t :an id with a space"])
    buf = s.buffer("#t")
    assert buf is not None and buf.lines[-1].msgid == "bad id"  # not usable as a parameter
    assert run(s, "/redact") == []
    assert last_error(s) == "No message of yours to delete in #t"
    assert run(s, "/redact bob") == []
    assert last_error(s) == "No message from bob to delete in #t"
    assert run(s, "/redact carol") == []
    assert last_error(s) == "No message from carol to delete in #t"
    feed(s, [privmsg("carol", "#t", "spam", "m2", T0 + 2), redact("carol", "#t", "m2")])
    assert run(s, "/redact carol") == []  # deleted already
    assert last_error(s) == "No message from carol to delete in #t"


def test_redact_local_errors() -> None:
    s = chat_session()  # no draft/message-redaction
    s.switch("#t")
    feed(s, [privmsg("alice", "#t", "mine", "m1", T0 + 1)])
    assert run(s, "/redact") == []
    assert last_error(s) == "This server cannot delete messages (no draft/message-redaction)"

    s = redact_session()
    chatted(s)
    s.switch(0)
    assert run(s, "/redact") == []
    assert "channel or query" in last_error(s)
    s.switch("#t")
    s.connection_lost(NOW)
    assert run(s, "/redact") == []
    assert last_error(s) == "/redact: not connected"


def test_redact_help_and_completion() -> None:
    s = redact_session()
    chatted(s)
    run(s, "/help redact")
    assert s.current.lines[-1].text.startswith("/redact [NICK] [reason] — Delete your newest")
    assert s.complete("/red").candidates == ["/redact "]
    feed(s, [":bobby!b@h JOIN #t", ":dave!d@h JOIN #t"])  # members who never wrote here
    assert s.complete("/redact b").candidates == ["bob "]
    assert s.complete("/redact ").candidates == []
    assert s.complete("/redact c").candidates == ["carol "]
    assert s.complete("/redact a").candidates == []  # not ourselves
    assert s.complete("hi b").candidates == ["bob ", "bobby "]  # elsewhere: members


# ---------------------------------------------------------------------- real server


async def test_a_message_deleted_by_its_sender_shows_as_deleted_to_the_others(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    alice = ChatClient.start(server.port, "alice", ("#room",))
    bob = ChatClient.start(server.port, "bob", ("#room",))
    clients += [alice, bob]
    mine, theirs = await alice.joined("#room"), await bob.joined("#room")
    assert CAP in alice.session.caps and CAP in bob.session.caps  # offered, and requested
    alice.conn.switch("#room")
    alice.conn.input("meet at 5, the code is 1234")
    for c, buf in ((alice, mine), (bob, theirs)):
        await c.wait(lambda buf=buf: has_texts(buf, ["meet at 5, the code is 1234"]), "it")
    [sent] = messages(mine)  # the echo, with its msgid
    assert sent.msgid

    alice.conn.input("/redact wrong channel, sorry")  # "wrong" is nobody's nick: a reason
    assert [ln for ln in alice.sent if ln.startswith("REDACT")] == [
        f"REDACT #room {sent.msgid} :wrong channel, sorry"]
    await bob.wait(lambda: any(ln.redacted for ln in theirs.lines), "the deletion")
    [line] = messages(theirs)
    assert (line.nick, line.text, line.msgid) == (
        "alice", "(message deleted: wrong channel, sorry)", sent.msgid)
    assert [(e.by, e.reason) for e in bob.events if isinstance(e, LineRedacted)] == [
        ("alice", "wrong channel, sorry")]
    # The sender's own line changes with the server's confirmation.
    await alice.wait(lambda: any(ln.redacted for ln in mine.lines), "the confirmation")
    assert texts(mine) == ["(message deleted: wrong channel, sorry)"]


async def test_the_server_refusing_a_deletion_is_an_error_line(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    # alice is first in: the channel operator.
    alice, mine = await in_channel(clients, server.port, "alice", "#room")
    bob, theirs = await in_channel(clients, server.port, "bob", "#room")
    assert CAP in bob.session.caps
    alice.conn.switch("#room")
    bob.conn.switch("#room")
    alice.conn.input("not yours to delete")
    for c, buf in ((alice, mine), (bob, theirs)):
        await c.wait(lambda buf=buf: has_texts(buf, ["not yours to delete"]), "alice's message")

    bob.conn.input("/redact alice")  # bob is no operator
    await bob.wait(lambda: theirs.lines[-1].kind is Kind.ERROR, "the refusal")
    assert theirs.lines[-1].text.startswith("Message not deleted: ")
    assert theirs.lines[-1].text.endswith("(REDACT_FORBIDDEN)")
    assert texts(theirs) == texts(mine) == ["not yours to delete"]  # still there


async def test_a_deletion_made_while_away_is_applied_when_back(
    server: RunningServer, clients: list[ChatClient], tmp_path: Path
) -> None:
    alice = ChatClient.start(server.port, "alice", ("#room",))
    bob = ChatClient.start(server.port, "bob", ("#room",))
    clients += [alice, bob]
    mine, theirs = await alice.joined("#room"), await bob.joined("#room")
    log = ChatLog(tmp_path / "logs")
    bob.conn.subscribe(log.handle)
    alice.conn.switch("#room")
    alice.conn.input("hello")
    alice.conn.input("the door code is 1234")
    for c, buf in ((alice, mine), (bob, theirs)):
        await c.wait(lambda buf=buf: has_texts(buf, ["hello", "the door code is 1234"]), "it")
    [secret] = [ln for ln in messages(mine) if ln.text == "the door code is 1234"]

    # bob's connection goes down; meanwhile alice deletes it, and says something else.
    s = bob.session
    await bob.lose_connection()
    alice.conn.input("/redact")
    await alice.wait(lambda: any(ln.redacted for ln in mine.lines), "the confirmation")
    alice.conn.input("sorry, wrong window")
    await alice.wait(lambda: has_texts(mine, ["sorry, wrong window"]), "the echo")
    bob.gate.open()
    await bob.wait(lambda: s.connects == 2 and s.registered, "the reconnect")
    await bob.wait(
        lambda: has_texts(theirs, ["sorry, wrong window"]) and not theirs.history_loading,
        "the gap fill",
    )
    assert [ln for ln in bob.untagged if ln.startswith("CHATHISTORY AFTER")] == [
        f"CHATHISTORY AFTER #room msgid={secret.msgid} 100"]
    assert texts(theirs) == ["hello", "(message deleted)", "sorry, wrong window"]
    [line] = [ln for ln in theirs.lines if ln.msgid == secret.msgid]
    assert line.redacted and line.nick == "alice"
    assert [(e.by, e.by_sender) for e in bob.events if isinstance(e, LineRedacted)] == [
        ("alice", True)]
    notes = [ln.text for ln in theirs.lines if "Reconnected" in ln.text]
    assert notes == ["Reconnected, fetched 1 missed message"]  # not the deletion
    log.close()
    written = (tmp_path / "logs" / "#room.log").read_text(encoding="utf-8")
    assert written.count("alice deleted their message of") == 1

    # A new client for bob, joining: the join history neither has it nor says REDACT.
    other, fresh = await in_channel(clients, server.port, "bob2", "#room")
    assert texts(fresh) == ["hello", "sorry, wrong window"]
    assert not any("1234" in ln.text or "REDACT" in ln.text for ln in fresh.lines)
    assert not any(isinstance(e, LineRedacted) for e in other.events)


def test_a_deleted_unread_message_no_longer_counts() -> None:
    """Unread and highlight counters drop by a deleted message that was still unread;
    one already read, or ours, changes nothing."""
    s = redact_session()
    feed(s, [privmsg("bob", "#t", "read already", "m0", T0 + 1)])  # #t is current
    s.switch(0)  # away to the server buffer
    buf = s.buffer("#t")
    assert buf is not None and s.current is not buf
    feed(s, [
        privmsg("bob", "#t", "one", "m1", T0 + 2),
        privmsg("bob", "#t", "alice: two", "m2", T0 + 3),
        privmsg("carol", "#t", "three", "m3", T0 + 4),
    ])
    assert (buf.unread, buf.highlights) == (3, 1)
    feed(s, [redact("bob", "#t", "m2")])
    assert (buf.unread, buf.highlights) == (2, 0)
    feed(s, [redact("bob", "#t", "m0")])  # read before we left: not counted
    assert (buf.unread, buf.highlights) == (2, 0)
    feed(s, [redact("bob", "#t", "m1"), redact("carol", "#t", "m3")])
    assert (buf.unread, buf.highlights) == (0, 0)
