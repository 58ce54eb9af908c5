"""IRCv3 draft/multiline in the client (client/multiline.py): a batch of lines received
(live, in history, in search results) is one message."""

from __future__ import annotations

from dataclasses import replace

from chat.servertime import format_time
from client.model import Buffer, Delivery, Kind, Line, LineAdded
from client.session import Session
from client.ui.render import LineRenderer, plain_text
from client.ui.views import MessagePane, Views, status_fragments

from .helpers import (
    NOW,
    T0,
    burst_offering,
    burst_without,
    feed,
    joined_session,
    make,
    messages,
    privmsg,
    run,
    texts,
)

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


def test_requested_with_batch_and_message_tags() -> None:
    s = make()
    s.connection_made(NOW)
    s.take_outgoing()
    out = feed(s, BURST[:1])
    assert "draft/multiline" in out[0].split(" :", 1)[1].split()
    for missing in ("batch", "message-tags"):
        s = make()
        s.connection_made(NOW)
        s.take_outgoing()
        out = feed(s, [burst_without(missing)[0] + " " + ML])
        assert "draft/multiline" not in out[0], missing


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
    assert [sp.bold for sp in line.spans if sp.text == "bold"] == [True]
    assert [sp.bold for sp in line.spans if sp.text != "bold"] == [False] * 4  # per line
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
