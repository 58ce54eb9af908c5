"""IRCv3 draft/multiline in the client (client/multiline.py): a batch of lines received
(live, in history, in search results) is one message; text with line breaks is sent as
one; the outbox, the pane, the chat log and headless mode treat it as one."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output

from chat.servertime import format_time
from client.chatlog import ChatLog
from client.config import ClientConfig
from client.connection import Connection, ConnectionSettings
from client.headless import format_line
from client.model import Buffer, Delivery, DeliveryChanged, Kind, Line, LineAdded
from client.multiline import Limits, combine, parse_limits, plan, split_concat
from client.session import Session, SessionConfig
from client.ui.app import ChatUI
from client.ui.render import LineRenderer, plain_text
from client.ui.views import MessagePane, Views, status_fragments
from tests.conftest import RunningServer

from .helpers import (
    NOW,
    T0,
    burst_offering,
    burst_without,
    feed,
    history_batch,
    joined_session,
    make,
    messages,
    privmsg,
    run,
    texts,
)
from .netutil import DEADLINE, ChatClient, Relay, has_texts, in_channel
from .recorded import CHAT_BURST

ML = "draft/multiline=max-bytes=4096,max-lines=100"
BURST = burst_offering(ML)  # our server, recorded, offering multiline messages
NO_LABELS = [line.replace(" labeled-response", "") for line in BURST]


def batch(
    ref: str,
    nick: str,
    target: str,
    lines: list[str | tuple[str, bool]],
    msgid: str | None = None,
    t: float | None = None,
    *,
    outer: str | None = None,
    label: str | None = None,
) -> list[str]:
    """A draft/multiline batch as a server sends it: the message's tags on the BATCH
    line (``outer``: nested in that batch); a (text, True) line is concatenated."""
    source = f":{nick}!~{nick}@host"
    tags = [f"label={label}"] if label else []
    tags += [f"batch={outer}"] if outer else []
    tags += [f"time={format_time(t)}"] if t is not None else []
    tags += [f"msgid={msgid}"] if msgid else []
    head = "@" + ";".join(tags) + " " if tags else ""
    out = [f"{head}{source} BATCH +{ref} draft/multiline {target}"]
    for item in lines:
        text, concat = (item, False) if isinstance(item, str) else item
        line_tags = f"batch={ref};draft/multiline-concat" if concat else f"batch={ref}"
        out.append(f"@{line_tags} {source} PRIVMSG {target} :{text}")
    out.append((f"@batch={outer} " if outer else "") + f"{source} BATCH -{ref}")
    return out


def in_t(burst: list[str] = BURST) -> Session:
    """Registered (offering multiline messages), in #t (current) with bob and carol."""
    return joined_session(burst, ("bob", "carol"))


def own(buf: Buffer) -> list[Line]:
    return [ln for ln in messages(buf) if ln.own]


# ---------------------------------------------------------------------- capability


def test_requested_with_batch_and_message_tags_and_its_limits_are_read() -> None:
    s = make()
    s.connection_made(NOW)
    s.take_outgoing()
    out = feed(s, BURST[:1])
    assert "draft/multiline" in out[0].split(" :", 1)[1].split()
    feed(s, BURST[1:])
    assert s.multiline_limits == Limits(4096, 100)
    for missing in ("batch", "message-tags"):
        s = make()
        s.connection_made(NOW)
        s.take_outgoing()
        out = feed(s, [burst_without(missing)[0] + " " + ML])
        assert "draft/multiline" not in out[0], missing


def test_the_limits_value() -> None:
    assert parse_limits("max-bytes=4096,max-lines=100") == Limits(4096, 100)
    assert parse_limits("max-lines=5,future=1,max-bytes=40000") == Limits(40000, 5)
    assert parse_limits("max-bytes=400") == Limits(400, None)  # max-lines is optional
    # max-bytes is required: without it (or with nonsense) nothing is sent as a batch.
    for value in ("", "max-lines=5", "max-bytes=0", "max-bytes=-1", "max-bytes=lots"):
        assert parse_limits(value) is None, value


# ---------------------------------------------------------------------- receiving


def test_a_live_batch_is_one_message_shown_when_it_ends() -> None:
    s = in_t()
    buf = s.current
    lines = batch("ml1", "bob", "#t", ["hello", "", "how is ", ("everyone?", True)], "M1", T0 + 5)
    feed(s, lines[:-1])
    assert texts(buf) == []  # nothing until the batch ends
    feed(s, lines[-1:])
    [line] = messages(buf)
    assert line.text == "hello\n\nhow is everyone?"
    assert (line.kind, line.nick, line.msgid, line.time) == (Kind.MESSAGE, "bob", "M1", T0 + 5)
    assert "".join(sp.text for sp in line.spans) == line.text
    added = [e for e in s.take_events() if isinstance(e, LineAdded)]
    assert [e.line for e in added] == [line]
    assert buf.last_msgid == "M1"


def test_it_counts_once_as_unread_and_as_a_highlight() -> None:
    s = in_t()
    buf = s.current
    s.switch(s.server)
    feed(s, batch("ml1", "bob", "#t", ["look", "alice: here", "and alice again"], "M1", T0))
    assert (buf.unread, buf.highlights) == (1, 1)
    assert messages(buf)[0].highlight


def test_ignored_senders_multiline_messages_are_dropped() -> None:
    s = in_t()
    run(s, "/ignore bob")
    feed(s, batch("ml1", "bob", "#t", ["one", "two"], "M1", T0))
    assert texts(s.current) == []


def test_an_action_only_when_the_first_line_is_one() -> None:
    s = in_t()
    buf = s.current
    feed(s, batch("a", "bob", "#t", ["\x01ACTION waves\x01", "at everyone"], "M1", T0))
    feed(s, batch("b", "bob", "#t", ["\x01VERSION\x01", "not a request"], "M2", T0 + 1))
    feed(s, batch("c", "bob", "#t", ["hi", "\x01ACTION is no action here\x01"], "M3", T0 + 2))
    assert [(ln.kind, ln.text) for ln in messages(buf)] == [
        (Kind.ACTION, "waves\nat everyone"),
        (Kind.MESSAGE, "VERSION\nnot a request"),
        (Kind.MESSAGE, "hi\nACTION is no action here"),
    ]
    assert not [out for out in s.take_outgoing() if "NOTICE" in out]  # no CTCP reply


def test_line_feeds_are_the_only_control_characters_kept() -> None:
    s = in_t()
    feed(s, batch("ml1", "bob", "#t", ["\x02bold", "\x1b[31mred\x07", "\u202eplain"], "M1", T0))
    [line] = messages(s.current)
    assert line.text == "bold\nred\nplain"
    assert [sp.style.bold for sp in line.spans if sp.text == "bold"] == [True]
    assert [sp.style.bold for sp in line.spans if sp.text != "bold"] == [False] * 4  # per line
    # A line feed from anywhere else (a tag value, say) is still taken out.
    feed(s, ["@+x=a\\nb :bob!b@h PRIVMSG #t :one line"])
    assert messages(s.current)[-1].text == "one line"


def test_reactions_and_deletion_by_its_msgid() -> None:
    s = joined_session(burst_offering(f"{ML} draft/message-redaction"), ("bob",))
    buf = s.current
    feed(s, batch("ml1", "bob", "#t", ["one", "two"], "M1", T0))
    feed(s, ["@+draft/react=👍;+draft/reply=M1;msgid=R1 :carol!c@h TAGMSG #t"])
    assert messages(buf)[0].reaction_groups() == [("👍", ("carol",), False)]
    feed(s, [":bob!b@h REDACT #t M1"])
    [line] = messages(buf)
    assert line.redacted and line.text == "(message deleted)" and line.msgid == "M1"


def test_nested_in_history_it_is_one_message_deduplicated_by_msgid() -> None:
    s = in_t()
    buf = s.current
    feed(s, batch("live", "bob", "#t", ["seen", "live"], "M2", T0 + 2))
    answer = [
        ":test.server BATCH +h1 chathistory #t",
        privmsg("carol", "#t", "before", "M1", T0 + 1, batch="h1"),
        *batch("ml-a", "bob", "#t", ["seen", "live"], "M2", T0 + 2, outer="h1"),
        *batch("ml-b", "carol", "#t", ["a", ("nd", True), "more"], "M3", T0 + 3, outer="h1"),
        ":test.server BATCH -h1",
    ]
    feed(s, answer)
    assert [(ln.text, ln.msgid, ln.history) for ln in messages(buf)] == [
        ("before", "M1", True), ("seen\nlive", "M2", False), ("and\nmore", "M3", True)]
    feed(s, answer)  # again (PageUp over the same messages): nothing twice
    assert texts(buf) == ["before", "seen\nlive", "and\nmore"]


def test_search_results_hold_multiline_messages() -> None:
    s = joined_session(burst_offering(f"{ML} soju.im/search"), ("bob",))
    run(s, "/search two")
    feed(s, [
        ":test.server BATCH +s1 soju.im/search",
        *batch("ml1", "bob", "#t", ["one", "two"], "M1", T0, outer="s1"),
        ":test.server BATCH -s1",
    ])  # fmt: skip
    result = s.search_buffer
    assert result is not None and s.current is result
    assert [(ln.where, ln.nick, ln.text, ln.msgid) for ln in messages(result)] == [
        ("#t", "bob", "one\ntwo", "M1")]
    assert texts(s.current) == ["one\ntwo"] and texts(s.buffer("#t")) == []  # type: ignore[arg-type]


# ---------------------------------------------------------------------- showing


def multiline_line(text: str) -> Line:
    """bob's message of ``text`` (its lines sent as a batch), as the session makes it."""
    s = in_t()
    feed(s, batch("ml1", "bob", "#t", text.split("\n"), "M1", T0))
    return messages(s.current)[0]


def test_a_multiline_message_is_drawn_on_rows_under_its_text() -> None:
    r = LineRenderer("")  # no timestamp
    line = multiline_line("first\n\n\x02third\x02 " + "word " * 6)
    assert plain_text(r.rows(line, 80)).split("\n") == [
        "<bob> first", "      ", "      third word word word word word word "]
    wrapped = plain_text(r.rows(line, 24)).split("\n")
    assert wrapped == ["<bob> first", "      ", "      third word word ",
                       "      word word word ", "      word "]  # fmt: skip
    frags, _ = r.fragments(line)
    assert any("bold" in style for style, text, *_ in frags if text == "third")
    assert all("\n" not in text for row in r.rows(line, 24) for _, text, *_ in row)
    # Pending and failed marks, and reactions, come after the last line.
    pending = plain_text(r.rows(replace(line, delivery=Delivery.PENDING), 80)).split("\n")
    assert pending[-1].endswith("word   …")


def test_a_message_taller_than_the_pane_is_paged_through() -> None:
    s = in_t()
    buf = s.current
    feed(s, [privmsg("carol", "#t", "above", "M0", T0)])
    feed(s, batch("ml1", "bob", "#t", [f"row {i}" for i in range(25)], "M1", T0 + 1))
    views = Views()
    pane = MessagePane(s, LineRenderer(""), views)

    def screen() -> list[str]:
        content = pane.create_content(40, 10)
        return [plain_text([content.get_line(i)]) for i in range(content.line_count)]

    assert screen()[-1].strip() == "row 24" and len(screen()) == 10
    seen: list[str] = []
    for _ in range(10):  # PageUp until the line above shows
        rows = screen()
        seen += [row.strip() for row in rows]
        if "<carol> above" in rows:
            break
        views.page_up(buf)
    assert "<carol> above" in rows
    assert "<bob> row 0" in seen and all(f"row {i}" in " ".join(seen) for i in range(25))
    # Scrolled into the message, the status line says there is more below.
    views.page_down(buf)
    rows = screen()
    assert rows[0] == "<bob> row 0"  # from above, a tall message shows from its top
    status = "".join(t for _, t, *_ in status_fragments(s, views))
    assert "-- more: 1 below" in status
    while views(buf).scrolled:
        views.page_down(buf)
        screen()
    assert screen()[-1].strip() == "row 24"
    # A new line while scrolled into it keeps the view where it is.
    views.page_up(buf)
    before = screen()
    feed(s, [privmsg("carol", "#t", "later", "M2", T0 + 2)])
    views.line_added(buf)
    assert screen() == before


# ---------------------------------------------------------------------- sending


def test_text_with_line_breaks_goes_out_as_one_batch_and_one_pending_line() -> None:
    s = in_t()
    out = run(s, "one\n\ntwo  \r\nthree")
    assert out == [
        "@label=o1 BATCH +ml1 draft/multiline #t",
        "@batch=ml1 PRIVMSG #t :one",
        "@batch=ml1 PRIVMSG #t :",
        "@batch=ml1 PRIVMSG #t :two  ",
        "@batch=ml1 PRIVMSG #t :three",
        "BATCH -ml1",
    ]
    [line] = own(s.current)
    assert (line.text, line.delivery) == ("one\n\ntwo  \nthree", Delivery.PENDING)
    # Blank lines at the start and end are left out; what is left of one line is a
    # plain message.
    assert run(s, "\n\n  \nsolo\n\n") == ["@label=o2 PRIVMSG #t :solo"]


def test_a_long_line_is_cut_into_concatenated_pieces_at_words() -> None:
    s = in_t()
    long = " ".join(f"wörd{i}" for i in range(200))  # 1500 bytes, not ASCII
    out = run(s, "short\n" + long)
    inner = [line for line in out if line.startswith("@batch=")]
    pieces = [line.split(" :", 1)[1] if " :" in line else line.rsplit(" ", 1)[1]
              for line in inner]  # fmt: skip
    assert pieces[0] == "short" and "".join(pieces[1:]) == long
    assert [";draft/multiline-concat" in line for line in inner] == [False, False] + [True] * (
        len(inner) - 2)
    budget = 510 - len(":alice!~a@h PRIVMSG #t :")  # (the mask of our JOIN)
    assert all(len(p.encode()) <= budget for p in pieces)
    assert all(p.endswith(" ") for p in pieces[1:-1])  # at a word, the space kept
    [line] = own(s.current)
    assert line.text == "short\n" + long


def test_split_concat_never_cuts_a_character() -> None:
    text = "é" * 101 + "€" * 50 + "😀" * 30
    for limit in (4, 5, 7, 100, 333):
        pieces = split_concat(text, limit)
        assert "".join(pieces) == text
        assert all(0 < len(p.encode()) <= limit for p in pieces), limit


def test_over_the_limits_it_goes_out_as_several_messages_within_them() -> None:
    s = in_t([line.replace("max-bytes=4096,max-lines=100", "max-bytes=40,max-lines=3")
              for line in BURST])  # fmt: skip
    out = run(s, "one\ntwo\nthree\nfour\nfive")
    assert [line for line in out if "BATCH" in line] == [
        "@label=o1 BATCH +ml1 draft/multiline #t", "BATCH -ml1",
        "@label=o2 BATCH +ml2 draft/multiline #t", "BATCH -ml2"]  # fmt: skip
    assert [ln.text for ln in own(s.current)] == ["one\ntwo\nthree", "four\nfive"]
    # A line over max-bytes: concatenated pieces, in as many messages as it takes.
    limits = Limits(40, 3)
    for text in ("x" * 100 + "\nend", "a\n" * 9):
        groups = plan(text, 400, limits)
        for group in groups:
            assert len(group) <= 3
            assert sum(len(t) for t, _ in group) + sum(not c for _, c in group[1:]) <= 40
            assert not group[0][1]  # a message never starts with a concatenated line
        assert "\n".join(combine(group) for group in groups).replace("\n", "") == text.replace(
            "\n", "")
    assert [len(group) for group in plan("x" * 100 + "\nend", 400, limits)] == [1, 1, 2]


def test_without_the_capability_each_line_is_a_message() -> None:
    s = in_t(CHAT_BURST)
    assert s.multiline_limits is None
    assert run(s, "one\n\ntwo") == ["@label=o1 PRIVMSG #t :one", "@label=o2 PRIVMSG #t :two"]
    assert [ln.text for ln in own(s.current)] == ["one", "two"]


def test_actions_and_notices_stay_one_line() -> None:
    s = in_t()
    assert run(s, "/me waves\nat all") == ["@label=o1 PRIVMSG #t :\x01ACTION waves at all\x01"]
    assert run(s, "/notice #t heads\nup") == ["@label=o2 NOTICE #t :heads up"]


def test_a_password_to_nickserv_is_never_a_multiline_message() -> None:
    s = in_t()
    out = run(s, "/msg NickServ IDENTIFY secret\nHELP")
    assert out == [
        "@label=o1 PRIVMSG NickServ :IDENTIFY secret",
        "@label=o2 PRIVMSG NickServ :HELP",
    ]
    query = s.buffer("NickServ")
    assert query is not None
    assert [ln.text for ln in own(query)] == ["IDENTIFY ********", "HELP"]


# ---------------------------------------------------------------------- the outbox


def test_the_labelled_echo_batch_confirms_the_pending_line() -> None:
    s = in_t()
    buf = s.current
    run(s, "one\ntwo")
    [pending] = own(buf)
    s.take_events()
    feed(s, batch("mlE1", "alice", "#t", ["one", "two"], "E1", T0 + 3, label="o1"))
    [line] = own(buf)
    assert (line.text, line.msgid, line.delivery) == ("one\ntwo", "E1", Delivery.DELIVERED)
    changed = [e for e in s.take_events() if isinstance(e, DeliveryChanged)]
    assert [(e.old, e.line) for e in changed] == [(pending, line)]
    assert not s.outbox.pending and len(messages(buf)) == 1


def test_without_labels_the_echo_is_matched_by_its_text() -> None:
    s = in_t(NO_LABELS)
    buf = s.current
    assert run(s, "one\ntwo")[0] == "BATCH +ml1 draft/multiline #t"
    run(s, "three\nfour")
    # The server may cut the lines elsewhere (a longer mask): the text is what counts.
    feed(s, batch("x", "alice", "#t", ["thr", ("ee", True), "four"], "E2", T0 + 2))
    feed(s, batch("y", "alice", "#t", ["one", "two"], "E1", T0 + 3))
    assert [(ln.text, ln.msgid) for ln in own(buf)] == [("one\ntwo", "E1"), ("three\nfour", "E2")]
    assert not s.outbox.pending


def test_a_fail_batch_fails_the_pending_line_with_the_reason() -> None:
    s = in_t()
    run(s, "one\ntwo")
    feed(s, ["@label=o1 :test.server FAIL BATCH MULTILINE_MAX_BYTES 4096 "
             ":Multiline batch max-bytes exceeded"])  # fmt: skip
    [line] = own(s.current)
    assert line.delivery is Delivery.FAILED
    assert line.note == "not sent: Multiline batch max-bytes exceeded (MULTILINE_MAX_BYTES)"
    # Without labels: our oldest multi-line message awaiting its echo.
    s = in_t(NO_LABELS)
    run(s, "plain")
    run(s, "one\ntwo")
    feed(s, [":test.server FAIL BATCH MULTILINE_INVALID :Invalid multiline batch"])
    assert [(ln.text, ln.delivery) for ln in own(s.current)] == [
        ("plain", Delivery.PENDING), ("one\ntwo", Delivery.FAILED)]


def test_without_echo_message_it_shows_as_sent_at_once() -> None:
    s = in_t([line.replace(" echo-message", "") for line in BURST])
    assert run(s, "one\ntwo") == [
        "BATCH +ml1 draft/multiline #t", "@batch=ml1 PRIVMSG #t :one",
        "@batch=ml1 PRIVMSG #t :two", "BATCH -ml1"]  # fmt: skip
    assert [(ln.text, ln.delivery) for ln in own(s.current)] == [("one\ntwo", Delivery.DELIVERED)]


def test_after_a_reconnect_history_confirms_it_or_its_lines_go_out_alone() -> None:
    s = in_t()
    buf = s.current
    feed(s, history_batch("h0", "#t", [("bob", "earlier", "M1", T0 + 1)]))
    run(s, "one\ntwo")
    s.connection_lost(NOW + 1, "reset")
    s.connection_made(NOW + 60)
    feed(s, BURST, NOW + 60)
    rejoin = f"@time={format_time(T0 + 60)};msgid=J2 :alice!~a@127.0.0.1 JOIN #t"
    out = feed(s, [rejoin], NOW + 60)
    assert out[-1] == "CHATHISTORY AFTER #t msgid=M1 100"  # and nothing written yet
    feed(s, [":test.server BATCH +h1 chathistory #t",
             *batch("ml", "alice", "#t", ["one", "two"], "E1", T0 + 5, outer="h1"),
             ":test.server BATCH -h1"], NOW + 60)  # fmt: skip
    assert [(ln.text, ln.msgid, ln.delivery) for ln in own(buf)] == [
        ("one\ntwo", "E1", Delivery.DELIVERED)]
    # Written as a batch just before the connection died (its echo lost), or typed
    # while away (one message until written), then written after a reconnect to a
    # server without multiline messages: their lines go out as messages of their own.
    assert run(s, "five\nsix")[0] == "@label=o2 BATCH +ml2 draft/multiline #t"
    s.connection_lost(NOW + 70, "reset")
    run(s, "three\nfour")
    assert [(ln.text, ln.note) for ln in own(buf)][1:] == [
        ("five\nsix", ""), ("three\nfour", "not sent yet")]
    s.connection_made(NOW + 80)
    feed(s, CHAT_BURST, NOW + 80)
    out = feed(s, [rejoin.replace("J2", "J3")], NOW + 80)
    assert out[-1] == "CHATHISTORY AFTER #t msgid=E1 100"  # (did five/six get there?)
    out = feed(s, [":test.server BATCH +h2 chathistory #t", ":test.server BATCH -h2"], NOW + 81)
    assert [line for line in out if "PRIVMSG" in line] == [
        "@label=o3 PRIVMSG #t :five", "@label=o4 PRIVMSG #t :six",
        "@label=o5 PRIVMSG #t :three", "@label=o6 PRIVMSG #t :four"]  # fmt: skip
    assert [(ln.text, ln.delivery) for ln in own(buf)][1:] == [
        ("five", Delivery.PENDING), ("six", Delivery.PENDING),
        ("three", Delivery.PENDING), ("four", Delivery.PENDING)]  # fmt: skip


# ---------------------------------------------------------------------- logs


def test_the_chat_log_and_headless_mode_write_it_once_indented(tmp_path: Path) -> None:
    s = in_t()
    log = ChatLog(tmp_path)
    feed(s, batch("ml1", "bob", "#t", ["first", "", "third"], "M1", T0))
    for event in s.take_events():
        log.handle(event)
    log.close()
    written = (tmp_path / "#t.log").read_text(encoding="utf-8").splitlines()
    assert [line[20:] for line in written] == ["<bob> first", "      ", "      third"]
    assert written[1] == " " * 26 and written[2] == " " * 26 + "third"
    shown = format_line(s.current, messages(s.current)[0], "%H:%M").split("\n")
    assert shown[0].endswith(" #t <bob> first")
    assert shown[2] == " " * len(shown[0][: -len("first")]) + "third"


# ---------------------------------------------------------------------- our server


async def test_a_pasted_block_is_one_message_for_the_others_and_in_history(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    alice = ChatClient.start(server.port, "alice", ("#t",))
    bob = ChatClient.start(server.port, "bob", ("#t",))
    clients += [alice, bob]
    a_buf = await alice.joined("#t")
    b_buf = await bob.joined("#t")
    assert alice.session.multiline_limits == Limits(4096, 100)
    await alice.wait(lambda: "bob" in a_buf.members, "bob in #t")
    alice.conn.switch(a_buf)
    long = " ".join(f"wörd{i}" for i in range(120))  # 1000 bytes: three IRC lines
    block = "first line\n\n" + long
    alice.conn.input(block)
    await bob.wait(lambda: has_texts(b_buf, [block]), "the block")
    [got] = messages(b_buf)
    assert got.text == block and got.msgid and not got.own
    await alice.wait(lambda: has_texts(a_buf, [block]), "alice's echo")
    [mine] = messages(a_buf)
    assert mine.own and mine.msgid == got.msgid and not alice.session.outbox.pending
    batches = [line for line in alice.untagged if line.startswith("BATCH")]
    assert batches == ["BATCH +ml1 draft/multiline #t", "BATCH -ml1"]
    assert sum("draft/multiline-concat" in line for line in alice.sent) >= 2

    # bob is away while alice sends another; his reconnect's gap fill brings it, once.
    await bob.lose_connection()
    await alice.wait(lambda: "bob" not in a_buf.members, "bob gone")
    alice.conn.input("while\nyou were away")
    await alice.wait(lambda: has_texts(a_buf, ["while\nyou were away"]), "the second")
    bob.gate.open()
    note = "Reconnected, fetched 1 missed message"
    await bob.wait(lambda: any(ln.text == note for ln in b_buf.lines), "the gap fill")
    assert [m.text for m in messages(b_buf)] == [block, "while\nyou were away"]
    # A newcomer gets both from history (LATEST), each once.
    _carol, c_buf = await in_channel(clients, server.port, "carol")
    assert [(m.text, m.history) for m in messages(c_buf)] == [
        (block, True), ("while\nyou were away", True)]


async def test_a_block_typed_while_disconnected_is_one_message_when_written(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    """Whether the server takes multi-line messages is not known while disconnected
    (here a retry was let in by a proxy and closed, as the server behind it is down):
    the block waits as one message, planned when it is written after the rejoin."""
    relay = Relay(server.port)
    await relay.start()
    try:
        alice = ChatClient.start(relay.port, "alice", ("#t",))
        bob = ChatClient.start(server.port, "bob", ("#t",))
        clients += [alice, bob]
        a_buf, b_buf = await alice.joined("#t"), await bob.joined("#t")
        alice.conn.switch(a_buf)
        down = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        relay.upstream_port = down.sockets[0].getsockname()[1]
        down.close()
        await down.wait_closed()
        await alice.lose_connection(relay.cut)
        alice.gate.open()
        alice.gate.close()  # one retry, then it waits again
        await asyncio.wait_for(alice.gate.waiting.wait(), DEADLINE)
        assert alice.session.connects == 2 and not alice.session.caps

        block = "ml down one\nml down two"
        assert alice.conn.input(block + "\n")
        assert [(ln.text, ln.delivery, ln.note) for ln in own(a_buf)] == [
            (block, Delivery.PENDING, "not sent yet")]
        assert alice.session.outbox.unsent == 1
        relay.upstream_port = server.port
        alice.gate.open()
        await bob.wait(lambda: has_texts(b_buf, [block]), "the block, as one message")
        assert texts(b_buf) == [block]
        await alice.wait(lambda: has_texts(a_buf, [block]) and not alice.session.outbox.pending,
                         "alice's echo")  # fmt: skip
        assert [ln.text for ln in own(a_buf)] == [block]
        assert [line for line in alice.untagged if line.startswith("BATCH")] == [
            "BATCH +ml1 draft/multiline #t", "BATCH -ml1"]
    finally:
        await relay.stop()


@pytest.fixture
async def ui_alice(server: RunningServer) -> AsyncIterator[tuple[ChatUI, PipeInput]]:
    """alice in the full-screen UI: keys go in through the pipe, the screen into a
    StringIO."""
    session = Session(SessionConfig(nick="alice", channels=("#t",)))
    settings = ConnectionSettings(host="127.0.0.1", port=server.port, quit_timeout=0.5)
    conn = Connection(session, settings)
    with create_pipe_input() as pipe:
        size = Size(rows=20, columns=100)
        output = Vt100_Output(io.StringIO(), lambda: size, term="xterm-256color")
        ui = ChatUI(conn, ClientConfig(), input=pipe, output=output)
        task = asyncio.ensure_future(ui.run())
        try:
            yield ui, pipe
        finally:
            conn.close("bye")
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, DEADLINE)


async def test_a_paste_into_the_input_is_sent_as_one_message(
    server: RunningServer, clients: list[ChatClient], ui_alice: tuple[ChatUI, PipeInput]
) -> None:
    ui, pipe = ui_alice
    bob, b_buf = await in_channel(clients, server.port, "bob")
    conn = ui.connection

    def joined() -> bool:
        buf = ui.session.buffer("#t")
        return buf is not None and buf.joined and "bob" in buf.members

    await conn.wait_until(joined, DEADLINE)
    ui.session.switch("#t")
    # A bracketed paste (as a terminal sends it), then Enter.
    pipe.send_text("\x1b[200~line one\r\n\r\nline three\x1b[201~")
    await poll(lambda: "\n" in ui.input.text, "the paste in the input field")
    pipe.send_text("\r")
    await bob.wait(lambda: has_texts(b_buf, ["line one\n\nline three"]), "the paste")
    a_buf = ui.session.buffer("#t")
    await conn.wait_until(lambda: has_texts(a_buf, ["line one\n\nline three"]), DEADLINE)

    def drawn() -> list[str]:
        screen = ui.app.renderer._last_screen
        if screen is None:
            return []
        return ["".join(screen.data_buffer[y][x].char for x in range(100)).rstrip()
                for y in range(20)]  # fmt: skip

    def shows() -> bool:
        rows = [(row.split("│")[1] if "│" in row else row).rstrip() for row in drawn()]
        at = next((i for i, row in enumerate(rows) if row.endswith("alice> line one")), -1)
        if at < 0 or at + 2 >= len(rows):
            return False
        indent = rows[at].index("line one")
        return rows[at + 2] == " " * indent + "line three"

    ui.app.invalidate()
    await poll(shows, "the message on rows of its own", lambda: "\n".join(drawn()))


async def poll(
    predicate: Callable[[], bool], what: str, show: Callable[[], str] = lambda: ""
) -> None:
    """Wait until ``predicate()`` holds, looking again every 10 ms (keys and the screen
    are no connection state to be told about); fail after DEADLINE, showing ``show()``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}\n{show()}"
        await asyncio.sleep(0.01)
