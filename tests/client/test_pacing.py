"""Outgoing flood control (client/pacing.py, Connection, Outbox): a paste goes out at
the budget's pace, urgent lines never wait behind it, a batch stays whole, and own
messages held back are pending, not sent, and survive a lost connection.

Time is a clock the test moves (``Clock``), so counts and order are asserted, never
wall-clock speed; the one test against a flood-limited server has generous margins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from client.model import Buffer, Delivery
from client.outbox import NOT_YET
from client.pacing import Pacing, Priority, SendQueue, TokenBucket, command_of
from client.ui.views import Views, status_fragments
from tests.conftest import RunningServer, start_server, suite_config

from .helpers import NOW, chat_session
from .netutil import DEADLINE, ChatClient, Ircd, messages, texts


class Clock:
    """The pacer's monotonic clock: it moves only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drain(q: SendQueue, now: float) -> list[bytes]:
    """What the queue lets go at ``now`` (as Connection._pump does for plain lines)."""
    out: list[bytes] = []
    while (unit := q.head()) is not None:
        if q.ready(unit, len(unit.data), unit.size, now) > 0:
            break
        q.pop()
        q.bucket.take(len(unit.data), unit.size, now)
        out += unit.data
    return out


def msg(i: int, size: int = 20) -> str:
    return f"PRIVMSG #a :{i:03d}" + "x" * max(0, size - 16)


# ---------------------------------------------------------------------- the bucket


def test_a_burst_then_one_line_a_second() -> None:
    q = SendQueue(Pacing(5, 1.0), 0.0)
    assert q.add([msg(i) for i in range(12)], 0.0) == []
    assert len(drain(q, 0.0)) == 5
    unit = q.head()
    assert unit is not None and q.ready(unit, 1, unit.size, 0.0) == 1.0
    assert drain(q, 0.99) == []
    assert len(drain(q, 1.0)) == 1
    assert len(drain(q, 3.5)) == 2  # (half a line of credit left)
    assert len(drain(q, 100.0)) == 4  # never more than a burst at once
    assert drain(q, 1000.0) == [] and len(q) == 0


def test_lines_keep_their_order() -> None:
    q = SendQueue(Pacing(2, 1.0), 0.0)
    q.add([msg(i) for i in range(7)], 0.0)
    out = [d for t in range(10) for d in drain(q, float(t))]
    assert out == [(msg(i) + "\r\n").encode() for i in range(7)]


def test_long_lines_are_held_by_bytes() -> None:
    pacing = Pacing(5, 1.0)
    assert (pacing.burst_bytes, pacing.rate_bytes) == (4000, 1000.0)
    q = SendQueue(pacing, 0.0)
    q.add([msg(i, 1000) for i in range(5)], 0.0)
    assert len(drain(q, 0.0)) == 3  # 1001 bytes each: a fourth would pass 4000
    assert len(drain(q, 0.003)) == 0
    assert len(drain(q, 0.005)) == 1
    assert len(drain(q, 0.9)) == 0  # two lines to spare, but not the bytes
    assert len(drain(q, 1.01)) == 1


def test_urgent_lines_go_at_once_and_are_counted() -> None:
    q = SendQueue(Pacing(2, 1.0), 0.0)
    q.add([msg(i) for i in range(4)], 0.0)
    assert len(drain(q, 0.0)) == 2
    urgent = ["PONG :srv", "PING chat-lag-1", "CAP REQ :away-notify", "AUTHENTICATE +", "QUIT :bye"]
    assert q.add(urgent, 0.0) == [(line + "\r\n").encode() for line in urgent]
    assert len(q) == 2
    # Five lines past empty: the server counts them, so the paste waits longer.
    unit = q.head()
    assert unit is not None and q.ready(unit, 1, unit.size, 0.0) == 6.0
    assert q.add(["@label=x PONG :a"], 0.0) != []  # (tags do not hide the command)
    assert command_of("@a=b :me!u@h privmsg #a :x") == "PRIVMSG"


def test_registration_goes_at_once_uncounted() -> None:
    q = SendQueue(Pacing(2, 1.0), 0.0)
    lines = ["CAP LS 302", "NICK alice", "USER alice 0 * alice", "CAP END", "JOIN #a"]
    assert len(q.add(lines, 0.0, urgent=True)) == 5
    assert len(drain(q, 0.0)) == 0 and len(q) == 0
    q.add([msg(i) for i in range(3)], 0.0)
    assert len(drain(q, 0.0)) == 2  # the burst is whole after registration


def test_a_batch_goes_whole_and_costs_its_lines() -> None:
    q = SendQueue(Pacing(5, 1.0), 0.0)
    q.add([msg(0), msg(1), msg(2)], 0.0)
    assert len(drain(q, 0.0)) == 3
    batch = ["@label=o1 BATCH +ml1 draft/multiline #a"]
    batch += [f"@batch=ml1 PRIVMSG #a :row {i}" for i in range(8)]
    batch += ["BATCH -ml1"]
    assert q.add(batch[:4], 0.0) == []
    # Its end not queued yet: nothing may go, however full the bucket.
    unit = q.head()
    assert unit is not None and q.ready(unit, 4, unit.size, 100.0) == float("inf")
    assert q.add(["PONG :x"], 0.0) == []  # (within the batch: never between its lines)
    q.add([*batch[4:], msg(9)], 0.0)
    assert len(q) == 2
    # Ten lines, more than a burst: it waits for a full bucket, then goes whole.
    assert drain(q, 2.9) == []
    out = drain(q, 3.0)
    assert [command_of(d.decode()) for d in out][:1] == ["BATCH"]
    assert len(out) == 11 and out[-1] == b"BATCH -ml1\r\n"
    # Its cost is what went (11 lines with the PONG): 6 of debt, the next waits 7 s.
    assert drain(q, 9.9) == [] and len(drain(q, 10.0)) == 1


def test_the_bucket_refills_only_to_its_burst() -> None:
    bucket = TokenBucket(Pacing(3, 2.0), 0.0)
    bucket.take(3, 30, 0.0)
    assert bucket.wait(1, 10, 0.0) == 0.5
    assert bucket.wait(3, 10, 1000.0) == 0.0
    assert bucket.lines == 3.0
    assert not Pacing(0, 1.0).enabled and not Pacing(5, 0).enabled and Pacing().enabled


# ---------------------------------------------------------------------- over TCP


def paced(port: int, nick: str, pacing: Pacing, clock: Clock, *channels: str) -> ChatClient:
    client = ChatClient.start(port, nick, channels, pacing=pacing)  # type: ignore[arg-type]
    client.conn._monotonic = clock  # (before it runs: the test's clock)
    return client


async def paced_alice(
    ircd: Ircd, clients: list[ChatClient], pacing: Pacing
) -> tuple[ChatClient, Clock]:
    """alice, paced by ``pacing`` on the test's clock, registered on the scripted ircd."""
    clock = Clock()
    alice = paced(ircd.port, "alice", pacing, clock)
    clients.append(alice)
    await alice.wait(lambda: alice.session.registered, "registration")
    return alice, clock


async def test_a_paste_goes_at_the_budgets_pace_and_a_pong_never_waits(
    clients: list[ChatClient], ircd: Ircd
) -> None:
    alice, clock = await paced_alice(ircd, clients, Pacing(3, 1.0))
    alice.session.open_query("bob", clock.now)
    rows = [f"row {i}" for i in range(8)]
    assert alice.conn.input("\n".join(rows))  # (no multiline here: 8 messages)
    await ircd.wait(lambda: len(ircd.privmsgs()) == 3, "the burst")
    assert alice.conn.queued == 5
    ircd.send("PING :are-you-there")
    await ircd.wait(lambda: "PONG are-you-there" in ircd.lines[-1:], "the PONG")
    assert len(ircd.privmsgs()) == 3  # the PONG went past the five waiting
    clock.now += 2.0
    alice.conn.flush()
    # Two seconds are two lines, and the PONG took one of them (the server counts it).
    await ircd.wait(lambda: len(ircd.privmsgs()) == 4, "one more after 2 s")
    assert alice.conn.queued == 4
    clock.now += 60.0
    alice.conn.flush()
    await ircd.wait(lambda: len(ircd.privmsgs()) == 7, "a burst after a long wait")
    assert alice.conn.queued == 1  # never more than a burst at once
    clock.now += 1.0
    alice.conn.flush()
    await ircd.wait(lambda: len(ircd.privmsgs()) == 8, "all of them")
    assert ircd.privmsgs() == [f"PRIVMSG bob :{row}" for row in rows]
    assert alice.conn.queued == 0


async def settle(client: ChatClient, clock: Clock, done: Callable[[], bool], what: str) -> None:
    """Let time pass for ``client``'s pacer until ``done()``."""

    async def until() -> None:
        while not done():
            clock.now += 10.0
            client.conn.flush()
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(until(), DEADLINE)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def joined(client: ChatClient, clock: Clock, channel: str) -> Buffer:
    """``channel`` joined (its history in), with nothing left to send and a full bucket."""

    def ok() -> bool:
        buf = client.session.buffer(channel)
        return buf is not None and buf.joined and not buf.history_loading

    await settle(client, clock, lambda: ok() and client.conn.queued == 0, f"join {channel}")
    clock.now += 100.0
    buf = client.session.buffer(channel)
    assert buf is not None
    client.conn.switch(buf)
    return buf


async def test_queued_messages_are_pending_not_sent_and_wait_for_the_reconnect(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    clock = Clock()
    bob = ChatClient.start(server.port, "bob", channels=("#p",))
    alice = paced(server.port, "alice", Pacing(2, 1.0), clock, "#p")
    clients += [bob, alice]
    chan = await bob.joined("#p")
    mine = await joined(alice, clock, "#p")
    rows = [f"line {i}" for i in range(6)]
    for row in rows:
        assert alice.conn.input(row)
    outbox = alice.session.outbox
    written = [ln for ln in alice.untagged if ln.startswith("PRIVMSG #p")]
    assert written == ["PRIVMSG #p :line 0", "PRIVMSG #p :line 1"]
    assert (outbox.queued, outbox.pending, outbox.unsent) == (4, 6, 0)
    shown = messages(mine)[-6:]
    assert [ln.text for ln in shown] == rows
    # Held back, they look as any message awaiting its echo: nothing new to see.
    assert all(ln.delivery is Delivery.PENDING and ln.note == "" for ln in shown)
    await bob.wait(lambda: texts(chan)[-2:] == rows[:2], "the two written")
    await alice.wait(lambda: outbox.pending == 4, "the echoes of the two")

    await alice.lose_connection()  # the connection lost: the four were never written
    assert (outbox.queued, outbox.pending, outbox.unsent) == (0, 4, 4)
    waiting = messages(mine)[-4:]
    assert [ln.text for ln in waiting] == rows[2:]
    assert all(ln.delivery is Delivery.PENDING and ln.note == NOT_YET for ln in waiting)
    assert [ln for ln in alice.untagged if ln.startswith("PRIVMSG #p")] == written

    alice.gate.open()
    await settle(alice, clock, lambda: texts(chan)[-6:] == rows, "the rest after the rejoin")
    await alice.wait(
        lambda: all(ln.delivery is Delivery.DELIVERED for ln in messages(mine)), "the echoes"
    )
    assert texts(chan).count("line 3") == 1
    assert [ln.text for ln in messages(mine)] == rows
    assert outbox.pending == 0


async def test_the_rejoin_goes_before_what_was_typed_while_away(
    clients: list[ChatClient], ircd: Ircd
) -> None:
    """Messages typed to a query while disconnected are released at registration, as
    the rejoin's JOIN is sent: the JOIN goes first (a channel not joined misses what is
    said there, and its own waiting messages wait for it). A server without caps or
    history (as ngIRCd), so nothing else comes between."""
    clock = Clock()
    alice = paced(ircd.port, "alice", Pacing(1, 1.0), clock, "#r")
    clients.append(alice)
    await ircd.wait(lambda: "JOIN #r" in ircd.lines, "the JOIN")
    ircd.send(":alice!a@h JOIN #r")
    await alice.wait(lambda: (b := alice.session.buffer("#r")) is not None and b.joined,
                     "joined")  # fmt: skip
    await alice.lose_connection(ircd.writers[-1].close)
    for i in range(3):
        assert alice.conn.input(f"/msg bob away {i}")
    start = len(ircd.lines)
    clock.now += 100.0  # a full budget again
    alice.gate.open()
    await ircd.wait(lambda: ircd.lines.count("USER alice 0 * alice") == 2, "reconnected")
    await settle(alice, clock, lambda: "PRIVMSG bob :away 2" in ircd.lines, "all written")
    after = [ln for ln in ircd.lines[start:] if ln.startswith(("JOIN", "PRIVMSG"))]
    assert after == ["JOIN #r", "PRIVMSG bob :away 0", "PRIVMSG bob :away 1",
                     "PRIVMSG bob :away 2"]  # fmt: skip


async def test_quit_goes_at_once_and_what_waited_is_not_sent(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    clock = Clock()
    alice = paced(server.port, "alice", Pacing(2, 1.0), clock, "#q")
    clients.append(alice)
    mine = await joined(alice, clock, "#q")
    for i in range(5):
        alice.conn.input(f"q {i}")
    alice.conn.close("bye")
    await asyncio.wait_for(alice.task, DEADLINE)
    sent = [ln for ln in alice.untagged if ln.startswith(("PRIVMSG", "QUIT"))]
    assert sent == ["PRIVMSG #q :q 0", "PRIVMSG #q :q 1", "QUIT bye"]
    failed = [ln for ln in messages(mine) if ln.delivery is Delivery.FAILED]
    assert [ln.text for ln in failed] == ["q 2", "q 3", "q 4"]
    assert all(ln.note == "not sent (/quit)" for ln in failed)


async def test_a_paste_gets_through_a_flood_limited_server(
    tmp_path: Path, clients: list[ChatClient]
) -> None:
    # Our server with a small flood budget (5 at once, 40 a second, 20 lines held back
    # at most, then Excess Flood) in the place of InspIRCd's and Solanum's; the client
    # sends at most 5 at once and 20 a second, so half the server's rate is a margin
    # for a slow machine.
    config = suite_config(flood_burst=5, flood_rate=40.0, flood_max_queue=20)
    running = start_server(config, "asyncio", db=str(tmp_path / "history.db"))
    try:
        bob = ChatClient.start(running.port, "bob", channels=("#f",))
        alice = ChatClient.start(
            running.port, "alice", channels=("#f",), pacing=Pacing(5, 20.0)  # type: ignore[arg-type]
        )
        clients += [bob, alice]
        chan = await bob.joined("#f")
        alice.conn.switch(await alice.joined("#f"))
        rows = [f"paste row {i:02d} " + "y" * 180 for i in range(60)]
        for row in rows:
            assert alice.conn.input(row)
        await bob.wait(lambda: texts(chan)[-60:] == rows, "the whole paste")
        assert alice.session.connects == 1  # never disconnected for flooding
        assert not any("Excess Flood" in ln.text for ln in alice.session.server.lines)
    finally:
        running.handle.stop()


async def test_a_paste_held_back_shows_its_lines_waiting_and_unqueue_drops_them(
    tmp_path: Path, clients: list[ChatClient]
) -> None:
    """A paste made of several multi-line messages behind flood control: [sending N]
    counts the lines of text still waiting, not one per message, from the first
    message of ours; /unqueue drops what is not written yet, and /resend sends it."""
    running = start_server(suite_config(multiline_max_lines=4), "asyncio",
                           db=str(tmp_path / "history.db"))  # fmt: skip
    try:
        clock = Clock()
        bob = ChatClient.start(running.port, "bob", channels=("#m",))
        alice = paced(running.port, "alice", Pacing(5, 1.0), clock, "#m")
        clients += [bob, alice]
        chan = await bob.joined("#m")
        mine = await joined(alice, clock, "#m")

        def status() -> str:
            frags = status_fragments(alice.session, Views(), sending=alice.conn.queued)
            return "".join(t for _, t, *_ in frags)

        rows = [f"paste row {i}" for i in range(10)]  # messages of 4, 4 and 2 lines
        assert alice.conn.input("\n".join(rows))
        await bob.wait(lambda: texts(chan)[-1:] == ["\n".join(rows[:4])], "the first")
        assert alice.conn.queued == 6 and "[sending 6]" in status()
        clock.now += 6.0  # (the first batch, 6 lines with its BATCH lines, left a debt)
        alice.conn.flush()
        await bob.wait(lambda: texts(chan)[-1:] == ["\n".join(rows[4:8])], "the second")
        assert alice.conn.queued == 2 and "[sending 2]" in status()

        assert alice.conn.input("/unqueue")
        assert alice.conn.queued == 0 and "sending" not in status()
        last = messages(mine)[-1]
        assert last.text == "\n".join(rows[8:])
        assert (last.delivery, last.note) == (Delivery.FAILED, "not sent (/unqueue)")
        assert mine.lines[-1].text == "Not sending 1 message (2 lines); /resend sends them again"
        clock.now += 100.0
        alice.conn.flush()
        await alice.wait(lambda: messages(mine)[-2].delivery is Delivery.DELIVERED, "echo")
        assert sum(ln.startswith("BATCH +") for ln in alice.untagged) == 2  # never the third

        assert alice.conn.input("/resend")
        await bob.wait(lambda: texts(chan)[-1:] == ["\n".join(rows[8:])], "the resent one")
        assert texts(chan)[-3:] == ["\n".join(rows[:4]), "\n".join(rows[4:8]),
                                    "\n".join(rows[8:])]  # fmt: skip
    finally:
        running.handle.stop()


async def test_without_echo_message_a_held_back_message_is_not_shown_as_sent(
    clients: list[ChatClient], ircd: Ircd
) -> None:
    # The tiny server offers no echo-message: a message counts as delivered when it is
    # written, so one still waiting for the budget must stay pending, and a connection
    # lost meanwhile must not lose it as if it had gone.
    alice, clock = await paced_alice(ircd, clients, Pacing(2, 1.0))
    query = alice.session.open_query("bob", clock.now)
    rows = [f"row {i}" for i in range(5)]
    for row in rows:
        assert alice.conn.input(row)
    await ircd.wait(lambda: len(ircd.privmsgs()) == 2, "the burst")
    shown = messages(query)[-5:]
    assert [ln.text for ln in shown] == rows
    assert [ln.delivery for ln in shown] == [Delivery.DELIVERED] * 2 + [Delivery.PENDING] * 3
    await alice.lose_connection()
    waiting = messages(query)[-3:]
    assert all(ln.delivery is Delivery.PENDING and ln.note == NOT_YET for ln in waiting)
    alice.gate.open()
    await settle(alice, clock, lambda: len(ircd.privmsgs()) == 5, "the rest after reconnecting")
    assert ircd.privmsgs() == [f"PRIVMSG bob :{row}" for row in rows]


# ---------------------------------------------------------------------- priorities


def test_typed_lines_go_before_automatic_ones_in_order() -> None:
    q = SendQueue(Pacing(1, 1.0), 0.0)
    q.add([f"CHATHISTORY LATEST #c{i} * 50" for i in range(20)], 0.0)
    q.add(["WHOIS bob", "JOIN #b"], 0.0, priority=Priority.TYPED)
    q.add(["WHO #c1"], 0.0)
    out = [d.decode().rstrip() for t in range(30) for d in drain(q, float(t))]
    assert out[:2] == ["WHOIS bob", "JOIN #b"]
    assert out[2:] == [f"CHATHISTORY LATEST #c{i} * 50" for i in range(20)] + ["WHO #c1"]


def test_typed_commands_go_before_a_paste_which_stays_in_order() -> None:
    q = SendQueue(Pacing(1, 1.0), 0.0)
    paste = [f"PRIVMSG #a :row {i}" for i in range(6)]
    q.add(paste, 0.0, priority=Priority.BULK)
    assert len(drain(q, 0.0)) == 1
    q.add(["WHOIS bob"], 0.0, priority=Priority.TYPED)
    q.add(["PRIVMSG #b :meanwhile in #b"], 0.0, priority=Priority.TYPED)
    out = [d.decode().rstrip() for t in range(1, 10) for d in drain(q, float(t))]
    assert out == ["WHOIS bob", "PRIVMSG #b :meanwhile in #b", *paste[1:]]


def test_a_message_never_goes_before_an_earlier_one_to_its_target() -> None:
    q = SendQueue(Pacing(1, 1.0), 0.0)
    q.add([f"CHATHISTORY LATEST #c{i} * 50" for i in range(3)], 0.0)
    q.add(["NOTICE Bob :\x01VERSION chat\x01"], 0.0)  # an automatic CTCP reply
    q.add([f"PRIVMSG #a :row {i}" for i in range(3)], 0.0, priority=Priority.BULK)
    # Typed into #a during its paste: after it. To bob: the reply is moved up with it.
    q.add(["PRIVMSG #A :typed", "PRIVMSG bob :hi"], 0.0, priority=Priority.TYPED)
    out = [d.decode().rstrip() for t in range(20) for d in drain(q, float(t))]
    assert out[:2] == ["NOTICE Bob :\x01VERSION chat\x01", "PRIVMSG bob :hi"]
    assert out[2:6] == [*(f"PRIVMSG #a :row {i}" for i in range(3)), "PRIVMSG #A :typed"]
    assert out[6:] == [f"CHATHISTORY LATEST #c{i} * 50" for i in range(3)]


def test_the_history_of_the_buffer_in_view_goes_first_among_automatic_lines() -> None:
    q = SendQueue(Pacing(1, 1.0), 0.0)
    q.view("#c9")
    q.add(["WHO #c0"], 0.0)
    q.add([f"CHATHISTORY LATEST #c{i} * 50" for i in range(10)], 0.0)
    q.add(["CHATHISTORY TARGETS timestamp=a timestamp=b 50"], 0.0)
    q.add(["JOIN #d"], 0.0, priority=Priority.TYPED)
    out = [d.decode().rstrip() for d in drain(q, 0.0) + drain(q, 1.0)]
    assert out == ["JOIN #d", "CHATHISTORY LATEST #c9 * 50"]  # typed lines still first
    q.view("#C4")  # switched to: its request, still waiting, goes next
    q.add(["CHATHISTORY BEFORE #c4 msgid=x 50"], 0.0)  # and later ones behind it
    q.add(["PRIVMSG #a :typed"], 0.0, priority=Priority.TYPED)
    out = [d.decode().rstrip() for t in range(2, 20) for d in drain(q, float(t))]
    assert out[:3] == ["PRIVMSG #a :typed", "CHATHISTORY LATEST #c4 * 50",
                       "CHATHISTORY BEFORE #c4 msgid=x 50"]  # fmt: skip
    rest = [f"CHATHISTORY LATEST #c{i} * 50" for i in (0, 1, 2, 3, 5, 6, 7, 8)]
    assert out[3:] == ["WHO #c0", *rest, "CHATHISTORY TARGETS timestamp=a timestamp=b 50"]


def test_tickets_count_their_lines_and_dropped_ones_are_purged_in_order() -> None:
    q = SendQueue(Pacing(1, 1.0), 0.0)
    q.add(["WHO #z"], 0.0)
    q.add_ticket("paste 1", "#a", Priority.BULK, lines=100)
    q.add_ticket("paste 2", "#a", Priority.BULK, lines=50)
    q.add_ticket("typed", "#a", Priority.TYPED)  # (behind the paste: the same target)
    assert len(q) == 4 and q.lines == 152
    assert q.purge(lambda ticket: ticket != "paste 2") == 1
    assert q.lines == 102
    order = []
    while (unit := q.head()) is not None:
        q.pop()
        order.append(unit.ticket or unit.data[0].decode().rstrip())
    assert order == ["paste 1", "typed", "WHO #z"]


def test_sending_shows_from_the_first_own_message_waiting_else_from_three_lines() -> None:
    s = chat_session()
    assert s.switch("#t")

    def status(sending: int) -> str:
        return "".join(t for _, t, *_ in status_fragments(s, Views(), sending=sending))

    assert "sending" not in status(2)  # a command's lines, the client's own: soon gone
    assert "[sending 3]" in status(3)
    s.outbox.paced = True  # (as the connection sets it)
    assert s.input("a paste, or one line behind one", NOW) and s.outbox.queued == 1
    assert "[sending 1]" in status(1)


def test_a_stale_typing_notification_is_dropped() -> None:
    q = SendQueue(Pacing(1, 1.0), 0.0)
    q.add(["WHO #z"], 0.0)
    assert len(drain(q, 0.0)) == 1
    q.add(["@+typing=active TAGMSG #a", "@+typing=active TAGMSG #b"], 0.0)
    q.add(["@+typing=paused TAGMSG #a"], 0.0)  # the newer state replaces the older
    q.add(["PRIVMSG #b :sent"], 0.0, priority=Priority.TYPED)  # (typing ends with it)
    out = [d.decode().rstrip() for t in range(1, 10) for d in drain(q, float(t))]
    assert out == ["PRIVMSG #b :sent", "@+typing=paused TAGMSG #a"]


def test_the_lines_input_writes_are_marked_typed() -> None:
    s = chat_session(channels=())
    s.feed(":srv PING :x", NOW)
    assert s.input("/whois bob", NOW)
    s.send("MODE", "#auto")
    assert s.take_lines() == [("PONG x", False), ("WHOIS bob", True), ("MODE #auto", False)]
    assert s.take_lines() == []


async def test_a_command_typed_during_a_paste_goes_first_and_automatic_lines_last(
    clients: list[ChatClient], ircd: Ircd
) -> None:
    alice, clock = await paced_alice(ircd, clients, Pacing(1, 1.0))
    alice.session.open_query("bob", clock.now)
    for i in range(3):  # answered on its own: the first at once, two wait
        ircd.send(f":u{i}!u@h PRIVMSG alice :\x01VERSION\x01")
    await alice.wait(lambda: alice.conn.queued == 2, "two automatic replies waiting")
    assert alice.conn.switch("bob")
    assert alice.conn.input("\n".join(f"row {i}" for i in range(5)))
    assert alice.conn.input("/whois carol")
    assert alice.conn.queued == 8
    status = "".join(t for _, t, *_ in status_fragments(
        alice.session, Views(), sending=alice.conn.queued))  # fmt: skip
    assert "[sending 8]" in status
    await settle(alice, clock, lambda: alice.conn.queued == 0, "all of them")
    await ircd.wait(lambda: ircd.lines[-1].startswith("NOTICE u2"), "the last reply")
    assert [ln.split(" :")[0] for ln in ircd.lines[3:]] == [
        "NOTICE u0",
        "WHOIS carol",
        *["PRIVMSG bob"] * 5,
        "NOTICE u1",
        "NOTICE u2",
    ]
    assert ircd.privmsgs() == [f"PRIVMSG bob :row {i}" for i in range(5)]


async def test_the_buffer_switched_to_gets_its_history_before_the_others(
    server: RunningServer, clients: list[ChatClient]
) -> None:
    """Joining many channels queues a history request each, at one a second: the buffer
    in view (the last joined, then the one switched to) is not left loading meanwhile."""
    clock = Clock()
    alice = paced(server.port, "alice", Pacing(1, 1.0), clock)
    clients.append(alice)
    await alice.wait(lambda: alice.session.registered, "registration")
    names = [f"#h{i}" for i in range(8)]
    assert alice.conn.input("/join " + ",".join(names))  # (the budget's one line)

    def loading() -> list[str]:
        return [b.name for b in alice.session.buffers if b.history_loading]

    await alice.wait(lambda: len(loading()) == 8, "the joins")
    assert alice.session.current.name == "#h7"
    clock.now += 1.0  # one line of budget: the history of the buffer in view
    alice.conn.flush()
    await alice.wait(lambda: "#h7" not in loading(), "the history of #h7")
    assert loading() == names[:7]
    assert alice.conn.switch("#h3")
    clock.now += 1.0
    alice.conn.flush()
    await alice.wait(lambda: "#h3" not in loading(), "the history of #h3")
    assert loading() == [n for n in names[:7] if n != "#h3"]

