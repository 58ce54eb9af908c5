"""CHATHISTORY answers matched to their requests: by label over labeled-response, in
order without it (client/history.py)."""

from __future__ import annotations

import time

import pytest

from client import history as history_module
from client.model import Buffer, HistoryAdded
from client.session import Session

from .helpers import NOW, T0, burst_without, chat_session, history_batch, make
from .netutil import ChatClient, Ircd
from .recorded import CHAT_BURST, CHAT_JOIN
from .test_hostile_server import HISTORY_CAPS, count

LABELS = "labeled-response"


def answer(
    ref: str, target: str, rows: list[tuple[str, str, str, float]], label: str | None
) -> list[str]:
    """A chathistory batch of ``rows`` (nick, text, msgid, time), the label (when given)
    on its BATCH line, as our server sends it."""
    lines = history_batch(ref, target, rows)
    return [f"@label={label} {lines[0]}", *lines[1:]] if label else lines


def sent_with(out: list[str], command: str) -> tuple[str | None, str]:
    """(label, the line without it) of the one line in ``out`` that holds ``command``."""
    [line] = [ln for ln in out if command in ln]
    if line.startswith("@label="):
        tags, _, rest = line.partition(" ")
        return tags.removeprefix("@label="), rest
    return None, line


# ---------------------------------------------------------------------- sans-IO


def feed_raw(s: Session, lines: list[str], now: float = NOW) -> list[str]:
    """Feed lines; what the session sent meanwhile, labels and all (``feed`` leaves the
    labels out)."""
    for line in lines:
        s.feed(line, now)
    return s.take_outgoing()


def test_each_request_carries_a_label_and_a_fail_or_ack_with_it_ends_that_one() -> None:
    """Over labeled-response every CHATHISTORY has a label of its own. A FAIL carrying
    one ends that request whatever its parameters name; an ACK (nothing to send) ends
    it as an empty answer, the start of history."""
    s = chat_session(channels=())
    out = feed_raw(s, [":alice!~a@h JOIN #a", ":alice!~a@h JOIN #b"])
    label_a, line_a = sent_with(out, "CHATHISTORY LATEST #a")
    label_b, line_b = sent_with(out, "CHATHISTORY LATEST #b")
    assert (line_a, line_b) == ("CHATHISTORY LATEST #a * 100", "CHATHISTORY LATEST #b * 100")
    assert label_a and label_b and label_a != label_b
    a, b = s.buffer("#a"), s.buffer("#b")
    assert a is not None and b is not None and a.history_loading and b.history_loading

    feed_raw(s, [f"@label={label_b} :test.server FAIL CHATHISTORY MESSAGE_ERROR * "
                 ":Messages could not be retrieved"])  # fmt: skip
    assert a.history_loading and not b.history_loading
    assert b.history_refused == "Messages could not be retrieved (MESSAGE_ERROR)"
    feed_raw(s, [f"@label={label_a} :test.server ACK"])
    assert not a.history_loading and a.history_complete and not a.history_refused


def test_a_labelled_answer_nested_in_a_labeled_response_batch_is_its_requests() -> None:
    """The gap fill after a reconnect is given up, and PageUp asks for older lines; a
    server wraps its answer to PageUp in a labeled-response batch carrying the label:
    it is PageUp's page, not the gap fill's late answer (as it would be in order)."""
    s = chat_session(history_lines=2)
    buf = s.buffer("#t")
    assert buf is not None
    feed_raw(s, history_batch("b0", "#t", [("bob", "m0", "M0", T0), ("bob", "m1", "M1", T0 + 1)]))
    s.connection_lost(NOW)
    s.connection_made(NOW + 5)
    feed_raw(s, CHAT_BURST, NOW + 5)
    assert sent_with(feed_raw(s, CHAT_JOIN, NOW + 5), "CHATHISTORY")[1] == (
        "CHATHISTORY AFTER #t msgid=M1 2")
    s.tick(NOW + 5 + history_module.HISTORY_TIMEOUT)  # given up
    assert s.request_older(buf, NOW + 70)
    label, line = sent_with(s.take_outgoing(), "CHATHISTORY")
    assert line == "CHATHISTORY BEFORE #t msgid=M0 2" and label is not None
    s.take_events()
    inner = history_batch("in", "#t", [("bob", "older", "Ma", T0 - 1)])
    feed_raw(s, [f"@label={label} :test.server BATCH +out labeled-response",
                 f"@batch=out {inner[0]}", *inner[1:], ":test.server BATCH -out"],
             NOW + 80)  # fmt: skip
    [page] = [e for e in s.take_events() if isinstance(e, HistoryAdded)]
    assert (page.cause, page.late, page.older) == ("older", False, True)
    assert buf.unread == 0 and not buf.history_loading
    assert [ln.text for ln in buf.lines if ln.text.startswith("Reconnected")] == [
        "Reconnected, missed messages not fetched: no answer from the server"]


def test_without_labeled_response_requests_have_no_label_and_answers_go_in_order() -> None:
    s = make(channels=(), history_lines=2)
    s.connection_made(NOW)
    feed_raw(s, burst_without(LABELS))
    out = feed_raw(s, [":alice!~a@h JOIN #a"])
    assert sent_with(out, "CHATHISTORY") == (None, "CHATHISTORY LATEST #a * 2")
    feed_raw(s, answer("x", "#a", [("bob", "one", "M1", T0 + 1)], None))
    a = s.buffer("#a")
    assert a is not None and not a.history_loading and a.history_complete


# ---------------------------------------------------------------------- a fake server


async def register(ircd: Ircd, caps: str, n: int = 1) -> None:
    """Register the ``n``-th connection offering ``caps``."""
    await ircd.wait(lambda: count(ircd, "CAP LS") >= n, "CAP LS")
    ircd.send(f":srv CAP * LS :{caps}")
    await ircd.wait(lambda: count(ircd, "CAP REQ") >= n, "CAP REQ")
    request = [line for line in ircd.lines if line.startswith("CAP REQ")][-1]
    ircd.send(f":srv CAP * ACK {request.split(' ', 2)[2]}")
    await ircd.wait(lambda: count(ircd, "CAP END") >= n, "CAP END")
    ircd.send(":srv 001 alice :Welcome")
    ircd.send(":srv 422 alice :No MOTD")


def requests(ircd: Ircd, what: str) -> list[tuple[str | None, str]]:
    """(label, line without it) of each request received holding ``what``."""
    return [sent_with([ln], what) for ln in ircd.lines if what in ln]


async def request(ircd: Ircd, what: str) -> str | None:
    """The label of the one request holding ``what``, once received."""
    await ircd.wait(lambda: len(requests(ircd, what)) == 1, what)
    return requests(ircd, what)[0][0]


def history_events(alice: ChatClient, buf: Buffer) -> list[tuple[str, bool, tuple[str, ...]]]:
    """(cause, late, msgids) of each history merged into ``buf``."""
    return [(e.cause, e.late, tuple(ln.msgid or "" for ln in e.lines))
            for e in alice.events if isinstance(e, HistoryAdded) and e.buffer is buf]


@pytest.mark.parametrize("labels", [True, False], ids=["labeled-response", "in order"])
async def test_a_request_never_answered_does_not_take_the_next_ones_answer(
    ircd: Ircd, clients: list[ChatClient], monkeypatch: pytest.MonkeyPatch, labels: bool
) -> None:
    """After a reconnect the gap fill is not answered and is given up; PageUp asks for
    older lines. Over labeled-response the server answers PageUp's request first, and
    only then, late, the gap fill: each answer is merged as its own request's (the
    page above the lines, not as missed messages), found by its label. Without labels
    a server answers in order, the gap fill's first: matched in order, the same."""
    monkeypatch.setattr(history_module, "HISTORY_TIMEOUT", 0.3)  # (60 s: too long here)
    caps = f"{HISTORY_CAPS} {LABELS}" if labels else HISTORY_CAPS
    ircd.welcome = False
    alice = ChatClient.start(ircd.port, "alice", history_lines=2)
    clients.append(alice)
    await register(ircd, caps)
    await alice.wait(lambda: alice.session.registered, "registration")
    ircd.send(":alice!a@h JOIN #t")
    label = await request(ircd, "CHATHISTORY LATEST #t")
    assert (label is not None) == labels
    now = time.time()
    rows = [("bob", "m1", "M1", now - 50), ("bob", "m2", "M2", now - 40)]  # a full page
    for line in answer("j", "#t", rows, label):
        ircd.send(line)
    buf = alice.session.buffer("#t")
    assert buf is not None
    await alice.wait(lambda: not buf.history_loading and len(buf.lines) >= 3, "the join's")

    await alice.lose_connection()
    alice.gate.open()
    await register(ircd, caps, 2)
    await ircd.wait(lambda: count(ircd, "JOIN #t") == 1, "the rejoin")  # (the first forced)
    ircd.send(":alice!a@h JOIN #t")
    gap = await request(ircd, "CHATHISTORY AFTER #t msgid=M2")
    await alice.wait(lambda: not buf.history_loading, "the gap fill given up")  # (never answered)
    assert alice.conn.request_older(buf)
    page = await request(ircd, "CHATHISTORY BEFORE #t msgid=M1")

    older = answer("p", "#t", [("bob", "m0", "M0", now - 60)], page)
    missed = answer("g", "#t", [("bob", "missed", "M3", now - 20)], gap)
    for line in [*older, *missed] if labels else [*missed, *older]:
        ircd.send(line)
    await alice.wait(lambda: len(history_events(alice, buf)) == 3, "both answers")
    events = history_events(alice, buf)[1:]
    assert sorted(events) == [("missed", True, ("M3",)), ("older", False, ("M0",))], events
    assert [ln.msgid for ln in buf.lines if ln.msgid] == ["M0", "M1", "M2", "M3"]
    notes = [ln.text for ln in buf.lines if ln.text.startswith("Reconnected")]
    assert notes == [
        "Reconnected, missed messages not fetched: no answer from the server",
        "Reconnected, fetched 1 missed message (late: the server answered after 0.3 s)",
    ], notes
    assert not buf.history_loading
