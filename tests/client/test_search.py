"""Message search (soju.im/search): ``/search``, the SEARCH line, the results buffer.

Sans-IO against a recording of our server offering the capability, then end to end
against our real server.
"""

from __future__ import annotations

from pathlib import Path

from client.chatlog import ChatLog
from client.headless import format_line
from client.model import (
    BufferChanged,
    BufferCleared,
    BufferKind,
    BufferOpened,
    CurrentChanged,
    HistoryAdded,
    Kind,
    LineAdded,
)
from client.session import SEARCH_BUFFER, Session
from client.ui.render import LineRenderer, plain_text
from client.ui.views import BufferList, MessagePane, Views, status_fragments, topic_fragments
from tests.conftest import RunningServer

from .helpers import NOW, T0, burst_offering, feed, last_error, make, messages, privmsg, run
from .netutil import ChatClient, has_texts
from .recorded import CHAT_BURST, CHAT_JOIN

CAP = "soju.im/search"
BURST = burst_offering(CAP)  # our server, recorded, with the cap


def search_session(*, cap: bool = True) -> Session:
    """Registered against our server (recorded; offering soju.im/search unless ``cap``
    is False), in #t with bob and carol, #t current and holding one line from bob."""
    s = make(channels=("#t",))
    s.connection_made(NOW)
    feed(s, BURST if cap else CHAT_BURST)
    feed(s, CHAT_JOIN)
    feed(s, [":bob!b@h JOIN #t", ":carol!c@h JOIN #t", privmsg("bob", "#t", "live", "m0", T0)])
    s.switch("#t")
    s.take_outgoing()
    s.take_events()
    return s


def answer(ref: str, rows: list[tuple[str, str, str, str, float]]) -> list[str]:
    """A search answer: rows (nick, target, text, msgid, time), oldest first."""
    lines = [f":test.server BATCH +{ref} soju.im/search"]
    lines += [privmsg(n, target, text, mid, t, batch=ref) for n, target, text, mid, t in rows]
    lines.append(f":test.server BATCH -{ref}")
    return lines


RESULTS = [
    ("bob", "#t", "the needle is here", "s1", T0 - 300),
    ("alice", "#t", "alice found a needle", "s2", T0 - 200),
    ("carol", "#t", "needles, alice!", "s3", T0 - 100),
]


def results(s: Session) -> list[tuple[str, str, str, str | None, float]]:
    """(where, nick, text, msgid, time) of each result line in the search buffer."""
    buf = s.search_buffer
    assert buf is not None
    return [(ln.where, ln.nick, ln.text, ln.msgid, ln.time) for ln in messages(buf)]


def info(s: Session) -> list[str]:
    buf = s.search_buffer
    assert buf is not None
    return [ln.text for ln in buf.lines if ln.kind is Kind.INFO]


# ---------------------------------------------------------------------- capability


def test_the_capability_is_requested_with_batch() -> None:
    s = make()
    s.connection_made(NOW)
    s.take_outgoing()
    [req] = feed(s, [":srv CAP * LS :batch server-time message-tags soju.im/search"])
    assert req == "CAP REQ :server-time message-tags batch soju.im/search"
    feed(s, [":srv CAP alice ACK :server-time message-tags batch soju.im/search"])
    assert s.search_enabled


def test_the_capability_is_not_requested_without_batch() -> None:
    s = make()
    s.connection_made(NOW)
    s.take_outgoing()
    [req] = feed(s, [":srv CAP * LS :server-time soju.im/search"])
    assert req == "CAP REQ server-time"
    assert not s.search_enabled


# ---------------------------------------------------------------------- the SEARCH line


def test_search_in_the_current_channel() -> None:
    s = search_session()
    assert run(s, "/search needle") == ["SEARCH text=needle;in=#t;limit=100"]


def test_values_are_escaped_as_message_tag_values() -> None:
    s = search_session()
    sent = run(s, r"/search a;b c\d")
    assert sent == [r"SEARCH text=a\:b\sc\\d;in=#t;limit=100"]
    # One parameter: no ':' needed, and the server reads the text back exactly.
    from chat.message import parse, parse_tags

    assert parse_tags(parse(sent[0]).params[0])["text"] == r"a;b c\d"


def test_search_options() -> None:
    s = search_session()
    assert run(s, "/search -in #other -from Bob two  words") == [
        r"SEARCH text=two\s\swords;in=#other;from=Bob;limit=100"]
    assert run(s, "/search -all needle") == ["SEARCH text=needle;limit=100"]
    assert run(s, "/search -from bob") == ["SEARCH in=#t;from=bob;limit=100"]  # no text
    assert run(s, "/search -- -in is text") == [r"SEARCH text=-in\sis\stext;in=#t;limit=100"]
    assert run(s, "/search -x") == ["SEARCH text=-x;in=#t;limit=100"]  # no option: text
    s.switch(0)  # the server buffer: everywhere
    assert run(s, "/search needle") == ["SEARCH text=needle;limit=100"]
    s.open_query("bob", NOW)  # a query: that conversation
    s.take_outgoing()
    assert run(s, "/search needle") == ["SEARCH text=needle;in=bob;limit=100"]


def test_the_limit_fits_the_scrollback() -> None:
    s = make(channels=("#t",), scrollback=20)
    s.connection_made(NOW)
    feed(s, [*BURST, *CHAT_JOIN])
    s.switch("#t")
    assert run(s, "/search x") == ["SEARCH text=x;in=#t;limit=18"]


def test_local_errors_send_nothing() -> None:
    s = search_session()
    assert run(s, "/search") == []
    assert last_error(s).startswith("Search for what? Usage: /search ")
    assert run(s, "/search -in") == []
    assert last_error(s).startswith("-in needs a value")
    assert run(s, "/search -in #t   ") == []
    assert last_error(s).startswith("Search for what?")
    assert run(s, "/search -from a,b x") == []
    assert last_error(s) == "Invalid nick: 'a,b'"
    assert s.search_buffer is None

    no_cap = search_session(cap=False)
    assert run(no_cap, "/search needle") == []
    assert last_error(no_cap) == "This server has no message search (soju.im/search)"

    s.connection_lost(NOW, "gone")
    assert run(s, "/search needle") == []
    assert last_error(s) == "/search: not connected"


# ---------------------------------------------------------------------- results


def test_results_fill_the_search_buffer_and_show_it() -> None:
    s = search_session()
    chan = s.buffer("#t")
    assert chan is not None
    before = (list(chan.lines), chan.last_msgid, len(s.buffers))
    run(s, "/search needle")
    feed(s, answer("q1", RESULTS))
    buf = s.search_buffer
    assert buf is not None and buf.kind is BufferKind.SEARCH and buf.name == SEARCH_BUFFER
    assert s.current is buf  # the user was still where the search was typed
    assert info(s) == ['Search for "needle" in #t: 3 results']
    assert buf.lines[0].kind is Kind.INFO  # the header first, then oldest first
    assert results(s) == [("#t", n, text, mid, t) for n, _, text, mid, t in RESULTS]
    lines = messages(buf)
    assert all(ln.history and not ln.highlight for ln in lines)  # "alice" is no highlight
    assert [ln.own for ln in lines] == [False, True, False]
    # Nothing else changed: no channel line, unread, highlight, query or history state.
    assert (list(chan.lines), chan.last_msgid) == before[:2]
    assert chan.unread == chan.highlights == 0
    assert chan.read_marker is chan.lines[-1]  # (as any buffer left: not a result)
    assert len(s.buffers) == before[2] + 1
    assert buf.unread == buf.highlights == 0 and buf.last_msgid is None
    events = s.take_events()
    assert [type(e) for e in events if getattr(e, "buffer", buf) is not buf] == []
    assert not any(isinstance(e, LineAdded) for e in events)
    kinds = [type(e) for e in events]
    assert kinds[:3] == [BufferOpened, BufferCleared, HistoryAdded]
    assert CurrentChanged in kinds
    [added] = [e for e in events if isinstance(e, HistoryAdded)]
    assert added.lines == tuple(buf.lines) and not added.older


def test_a_line_names_where_it_was_said() -> None:
    s = search_session()
    run(s, "/search -all hi")
    feed(s, answer("q1", [
        ("bob", "alice", "hi alice", "p1", T0 - 30),  # to us: the conversation with bob
        ("alice", "carol", "hi carol", "p2", T0 - 20),  # from us: with carol
        ("bob", "@#t", "hi ops", "p3", T0 - 10),  # STATUSMSG: the channel
        ("dave", "alice", "\x01ACTION says hi\x01", "p4", T0 - 5),
    ]))  # fmt: skip
    assert [(w, n) for w, n, *_ in results(s)] == [
        ("bob", "bob"), ("carol", "alice"), ("#t", "bob"), ("dave", "dave")]
    assert messages(s.search_buffer)[-1].kind is Kind.ACTION  # type: ignore[arg-type]
    assert info(s) == ['Search for "hi" in all conversations: 4 results']
    # No query opened for them, and no query line.
    assert s.buffer("bob") is None and s.buffer("carol") is None and s.buffer("dave") is None
    text = plain_text(LineRenderer("%H:%M").rows(messages(s.current)[0], 200))
    assert text[6:] == "bob <bob> hi alice"


def test_a_new_search_replaces_the_results() -> None:
    s = search_session()
    run(s, "/search needle")
    feed(s, answer("q1", RESULTS))
    buf = s.search_buffer
    run(s, "/search -from carol")  # typed in the search buffer: everywhere
    feed(s, answer("q2", [RESULTS[2]]))
    assert s.search_buffer is buf and s.current is buf
    assert info(s) == ["Search for messages from carol in all conversations: 1 result"]
    assert [mid for *_, mid, _ in results(s)] == ["s3"]  # the same msgid shows again
    run(s, "/search nothing")
    feed(s, answer("q3", []))
    assert info(s) == ['Search for "nothing" in all conversations: 0 results', "No results"]
    assert results(s) == []


def test_a_full_page_says_so() -> None:
    s = make(channels=("#t",), scrollback=5)
    s.connection_made(NOW)
    feed(s, [*BURST, *CHAT_JOIN])
    s.switch("#t")
    assert run(s, "/search x") == ["SEARCH text=x;in=#t;limit=3"]
    rows = [("bob", "#t", f"x{i}", f"m{i}", T0 + i) for i in range(5)]  # a server sending more
    feed(s, answer("q", rows))
    assert info(s) == ['Search for "x" in #t: 3 results (the newest 3; narrow the search'
                       ' for older ones)']  # fmt: skip
    assert [text for _, _, text, _, _ in results(s)] == ["x2", "x3", "x4"]


def test_results_do_not_take_the_user_away_from_another_buffer() -> None:
    s = search_session()
    run(s, "/search needle")
    s.switch(0)  # elsewhere before the answer came
    s.take_events()
    feed(s, answer("q1", RESULTS))
    buf = s.search_buffer
    assert buf is not None and s.current is s.server
    assert buf.activity and buf.unread == 0 and buf.highlights == 0
    assert any(isinstance(e, BufferChanged) and e.buffer is buf for e in s.take_events())


def test_fail_search_is_an_error_line_and_answers_the_oldest_search() -> None:
    s = search_session()
    run(s, "/search -in #nowhere a")
    run(s, "/search b")
    feed(s, ["@time=2026-11-21T07:00:00.000Z :test.server FAIL SEARCH INVALID_TARGET #nowhere"
             " :No such channel"])  # fmt: skip
    assert s.current.name == "#t"
    assert last_error(s) == 'Search for "a" failed: No such channel (INVALID_TARGET)'
    assert s.search_buffer is None
    feed(s, answer("q2", [RESULTS[0]]))
    assert info(s) == ['Search for "b" in #t: 1 result']


def test_an_unasked_answer_and_a_reconnect() -> None:
    s = search_session()
    feed(s, answer("q", [RESULTS[0]]))  # e.g. after /quote SEARCH text=needle
    assert info(s) == ["Search: 1 result"]
    run(s, "/search lost")
    s.connection_lost(NOW, "gone")  # its answer never comes
    s.connection_made(NOW + 1)
    feed(s, [*BURST, *CHAT_JOIN], NOW + 1)
    run(s, "/search -all found")
    feed(s, answer("q2", []), NOW + 1)
    assert info(s)[0] == 'Search for "found" in all conversations: 0 results'


def test_results_are_no_messages_of_the_search_buffer() -> None:
    s = search_session()
    run(s, "/search needle")
    feed(s, answer("q1", RESULTS))
    assert run(s, "hello") == []
    assert last_error(s).startswith("These are search results:")
    assert run(s, "/me waves") == []
    assert run(s, "/redact") == [] and run(s, "/react :+1:") == []
    assert run(s, "/unreact") == []
    assert not s.request_older(s.current, NOW)
    # A server line from a nick looking like the buffer's name never lands in it.
    feed(s, [":*search*!x@h PRIVMSG alice :boo", ":*search*!x@h NOTICE alice :boo"])
    assert "boo" not in [ln.text for ln in s.current.lines]


def test_the_search_buffer_can_be_switched_to_and_closed() -> None:
    s = search_session()
    run(s, "/search needle")
    feed(s, answer("q1", RESULTS))
    s.switch("#t")
    assert s.switch("*SEARCH*")
    run(s, "/close *search*")
    assert [b.kind for b in s.buffers] == [BufferKind.SERVER, BufferKind.CHANNEL]
    assert s.current.name == "#t"
    run(s, "/search again")
    feed(s, answer("q2", [RESULTS[1]]))
    assert s.current.kind is BufferKind.SEARCH
    run(s, "/close")
    assert [b.kind for b in s.buffers] == [BufferKind.SERVER, BufferKind.CHANNEL]


def test_casemapping_change_keeps_the_search_buffer_out_of_the_names() -> None:
    s = search_session()
    run(s, "/search needle")
    feed(s, answer("q1", RESULTS))
    feed(s, [":test.server 005 alice CASEMAPPING=ascii :are supported by this server"])
    assert s.buffer(SEARCH_BUFFER) is None and s.find_buffer(SEARCH_BUFFER) is s.search_buffer


def test_no_chat_log_lines_for_results(tmp_path: Path) -> None:
    s = search_session()
    log = ChatLog(tmp_path)
    run(s, "/search needle")
    feed(s, answer("q1", RESULTS))
    s.info("a local line here", NOW)  # even a local line in the results buffer
    for event in s.take_events():
        log.handle(event)
    log.close()
    assert list(tmp_path.iterdir()) == []


def test_headless_prints_where_each_result_was_said() -> None:
    s = search_session()
    run(s, "/search needle")
    feed(s, answer("q1", RESULTS[:1]))
    buf = s.search_buffer
    assert buf is not None
    out = [format_line(buf, ln, "") for ln in buf.lines]
    assert out == [' *search* -- Search for "needle" in #t: 1 result',
                   " *search* #t <bob> the needle is here"]  # fmt: skip


def test_the_topic_bar_of_the_search_buffer() -> None:
    s = search_session()
    run(s, "/search needle")
    feed(s, answer("q1", RESULTS))
    text = "".join(f[1] for f in topic_fragments(s))
    assert text.startswith(" *search* — message search results")


def test_the_ui_draws_the_search_buffer() -> None:
    s = search_session()
    run(s, "/search needle")
    feed(s, answer("q1", RESULTS))
    views = Views()
    pane = MessagePane(s, LineRenderer("%H:%M"), views).create_content(60, 10)
    rows = [plain_text([pane.get_line(i)]) for i in range(pane.line_count)]
    assert [r[6:] for r in rows] == ['-- Search for "needle" in #t: 3 results',
                                     "#t <bob> the needle is here",
                                     "#t <alice> alice found a needle",
                                     "#t <carol> needles, alice!"]  # fmt: skip
    listed = BufferList(s).create_content(20, 5)
    assert "*search*" in plain_text([listed.get_line(2)])
    status = "".join(f[1] for f in status_fragments(s, views))
    assert "[3:*search*]" in status


# ---------------------------------------------------------------------- help, completion


def test_help_and_completion() -> None:
    s = search_session()
    feed(s, [":bobby!b@h JOIN #t"])
    s.open_query("bea", NOW, switch=False)
    s.input("/help search", NOW)
    assert s.current.lines[-1].text.startswith("/search [-in TARGET] [-from NICK] [-all] TEXT — ")
    assert s.complete("/sea").candidates == ["/search "]
    assert s.complete("/search -").candidates == ["-in ", "-from ", "-all "]
    assert s.complete("/search -f").candidates == ["-from "]
    assert s.complete("/search -in #").candidates == ["#t "]
    assert s.complete("/search -in b").candidates == ["bea "]
    assert s.complete("/search -from b").candidates == ["bob ", "bobby ", "bea "]
    assert s.complete("/search -from al").candidates == ["alice "]
    assert s.complete("/search -in #t -from c").candidates == ["carol "]
    assert s.complete("/search -in #t -").candidates == ["-in ", "-from ", "-all "]
    # In the text, ordinary completion (channel names, nicks).
    assert s.complete("/search hello b").candidates == ["bob ", "bobby "]
    assert s.complete("/search about #").candidates == ["#t"]


# ---------------------------------------------------------------------- real server


async def test_search_against_our_server(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    alice = ChatClient.start(server.port, "alice", ("#t",))
    bob = ChatClient.start(server.port, "bob", ("#t",))
    clients += [alice, bob]
    mine, theirs = await alice.joined("#t"), await bob.joined("#t")
    assert CAP in alice.session.caps, "our server does not offer soju.im/search"
    alice.conn.switch("#t")
    bob.conn.switch("#t")
    said = [(alice, "where is the needle?"), (bob, "no idea"), (bob, "the NEEDLE is here"),
            (alice, "a haystack"), (bob, "needles and pins")]  # fmt: skip
    for c, text in said:
        c.conn.input(text)
        await alice.wait(lambda: has_texts(mine, [text]), text)  # noqa: B023 (awaited here)
    shown = list(mine.lines)
    alice.conn.input("/search needle")
    assert alice.sent[-1] == "SEARCH text=needle;in=#t;limit=100"
    await alice.wait(lambda: alice.session.search_buffer is not None, "the results")
    buf = alice.session.search_buffer
    assert buf is not None and alice.session.current is buf
    wanted = [text for _, text in said if "needle" in text.lower()]
    assert [ln.text for ln in messages(buf)] == wanted
    assert [ln.nick for ln in messages(buf)] == ["alice", "bob", "bob"]
    assert all(ln.where == "#t" and ln.msgid and ln.history for ln in messages(buf))
    by_id = {ln.msgid: ln for ln in messages(mine)}
    assert [by_id[ln.msgid].time for ln in messages(buf)] == [ln.time for ln in messages(buf)]
    assert buf.lines[0].text == f'Search for "needle" in #t: {len(wanted)} results'
    assert list(mine.lines) == shown  # the channel is untouched
    assert has_texts(theirs, wanted)

