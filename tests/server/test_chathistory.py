"""CHATHISTORY over real TCP, on every backend, against a known data set.

Every answer is compared, message by message, with what a live member of the
channel received (same msgid, same time, same client tags) and with an independent
model of the draft/chathistory semantics: references are exclusive, LATEST/BEFORE
take the newest matches, AFTER the oldest, BETWEEN counts from its first reference
in either direction, and a reply batch is in ascending order.

Without draft/event-playback a reply batch carries PRIVMSG and NOTICE only: a stored
TAGMSG is then not served, though its msgid is a valid reference. With it (and
message-tags) the TAGMSG comes back too, as members received it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import pytest

from chat.message import Message
from chat.servertime import format_time, parse_time
from server.config import ServerConfig
from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient
from tests.server.helpers import cap_ls

SERVER = "test.server"
LIMIT = 25  # ISUPPORT CHATHISTORY
CAPS = ["batch", "server-time", "message-tags", "draft/chathistory"]
SERVED = ("PRIVMSG", "NOTICE")
UNKNOWN_MSGID = "0000000000000000"  # well-formed, never issued


@pytest.fixture
def server_config() -> ServerConfig:
    # No join playback: every test reads history explicitly. No joins, parts, quits or
    # nick changes kept: the data set's are not history here (test_event_playback.py).
    return ServerConfig(name=SERVER, network="TestNet", chathistory_limit=LIMIT,
                        history_playback=0, history_events=False)


# ---------------------------------------------------------------------- records


@dataclass(frozen=True)
class Rec:
    """One channel message as a live member received it."""

    command: str
    source: str
    target: str
    text: str | None  # None for TAGMSG
    msgid: str
    time: str
    client_tags: tuple[tuple[str, str], ...]

    @property
    def ms(self) -> int:
        return round(parse_time(self.time) * 1000)

    @staticmethod
    def of(m: Message) -> Rec:
        return Rec(
            m.command,
            m.source or "",
            m.params[0],
            m.params[1] if m.command != "TAGMSG" else None,
            m.tags["msgid"],
            m.tags["time"],
            tuple(sorted((k, v) for k, v in m.tags.items() if k.startswith("+"))),
        )


def mask(nick: str) -> str:
    return f"{nick}!~{nick[:9]}@127.0.0.1"


async def collect(c: IRCTestClient, count: int, channel: str) -> list[Rec]:
    """The next ``count`` channel messages ``c`` receives for ``channel``, in order."""
    out: list[Rec] = []
    while len(out) < count:
        m = await c.read_message()
        if m.command in ("PRIVMSG", "NOTICE", "TAGMSG", "TOPIC") and m.params[0] == channel:
            out.append(Rec.of(m))
    return out


# ---------------------------------------------------------------------- reading history


async def read_batch(c: IRCTestClient, kind: str = "chathistory", *params: str) -> list[Message]:
    """The next line must open a batch of ``kind``; returns its lines (all tagged)."""
    assert not c.backlog, c.backlog
    opening = await c.read_message()
    assert opening.command == "BATCH", opening
    assert opening.source == SERVER
    ref = opening.params[0]
    assert ref.startswith("+") and len(ref) > 1, opening
    ref = ref[1:]
    assert opening.params[1:] == [kind, *params], opening
    inner: list[Message] = []
    while True:
        m = await c.read_message()
        if m.command == "BATCH":
            assert m.params == ["-" + ref], m
            return inner
        assert m.tags.get("batch") == ref, m
        inner.append(m)


async def history(c: IRCTestClient, line: str, target: str = "#h") -> list[Message]:
    await c.send(line)
    return await read_batch(c, "chathistory", target)


def assert_same(replies: Sequence[Message], expected: Sequence[Rec], what: str = "") -> None:
    """Replies equal the live messages: command, source, params, time, msgid, client tags."""
    got = [(m.command, m.params[1] if len(m.params) > 1 else None) for m in replies]
    want = [(r.command, r.text) for r in expected]
    assert got == want, what
    for m, r in zip(replies, expected, strict=True):
        assert m.source == r.source, what
        assert m.params == [r.target, r.text], what
        tags = {k: v for k, v in m.tags.items() if k != "batch"}
        assert tags == {"time": r.time, "msgid": r.msgid, **dict(r.client_tags)}, what


async def ask(c: IRCTestClient, line: str) -> list[Message]:
    """Everything the server answers synchronously to one line."""
    await c.sync()
    await c.send(line)
    return await c.sync()


# ---------------------------------------------------------------------- the model


Ref = tuple[str, str]  # ("msgid", msgid) | ("timestamp", time) | ("*", "")


class Model:
    """draft/chathistory semantics over the stored messages, written independently."""

    def __init__(self, stored: list[Rec]) -> None:
        self.stored = stored  # every stored row, seq order (TAGMSG included)

    def _pos(self, ref: Ref) -> int:
        return [r.msgid for r in self.stored].index(ref[1])

    def _known(self, ref: Ref) -> bool:
        return ref[0] != "msgid" or any(r.msgid == ref[1] for r in self.stored)

    def _before(self, i: int, r: Rec, ref: Ref) -> bool:
        if ref[0] == "msgid":
            return i < self._pos(ref)
        return r.ms < round(parse_time(ref[1]) * 1000)

    def _after(self, i: int, r: Rec, ref: Ref) -> bool:
        if ref[0] == "msgid":
            return i > self._pos(ref)
        return r.ms > round(parse_time(ref[1]) * 1000)

    def _time(self, ref: Ref) -> int:
        if ref[0] == "msgid":
            return self.stored[self._pos(ref)].ms
        return round(parse_time(ref[1]) * 1000)

    def answer(self, sub: str, ref: Ref, limit: int, ref2: Ref | None = None) -> list[Rec]:
        limit = min(limit, LIMIT)
        if not self._known(ref) or (ref2 is not None and not self._known(ref2)):
            return []
        rows = [(i, r) for i, r in enumerate(self.stored) if r.command in SERVED]

        def newest(sel: list[tuple[int, Rec]], n: int) -> list[Rec]:
            return [r for _, r in sel[max(0, len(sel) - n) :]] if n else []

        def oldest(sel: list[tuple[int, Rec]], n: int) -> list[Rec]:
            return [r for _, r in sel[:n]]

        if sub == "LATEST":
            if ref[0] == "*":
                return newest(rows, limit)
            return newest([(i, r) for i, r in rows if self._after(i, r, ref)], limit)
        if sub == "BEFORE":
            return newest([(i, r) for i, r in rows if self._before(i, r, ref)], limit)
        if sub == "AFTER":
            return oldest([(i, r) for i, r in rows if self._after(i, r, ref)], limit)
        if sub == "AROUND":
            older = newest([(i, r) for i, r in rows if self._before(i, r, ref)], limit // 2)
            rest = [(i, r) for i, r in rows if not self._before(i, r, ref)]
            return older + oldest(rest, limit - len(older))
        assert sub == "BETWEEN" and ref2 is not None
        if ref[0] == "msgid" and ref2[0] == "msgid":
            forwards = self._pos(ref) <= self._pos(ref2)
        else:
            forwards = self._time(ref) <= self._time(ref2)
        if forwards:
            sel = [(i, r) for i, r in rows if self._after(i, r, ref) and self._before(i, r, ref2)]
            return oldest(sel, limit)
        sel = [(i, r) for i, r in rows if self._before(i, r, ref) and self._after(i, r, ref2)]
        return newest(sel, limit)


def token(ref: Ref) -> str:
    return "*" if ref[0] == "*" else f"{ref[0]}={ref[1]}"


# ---------------------------------------------------------------------- the data set


@dataclass
class DataSet:
    reader: IRCTestClient  # member of #h with CAPS; received every message live
    alice: IRCTestClient
    bob: IRCTestClient
    stored: list[Rec]

    def by_text(self, text: str) -> Rec:
        (rec,) = [r for r in self.stored if r.text == text]
        return rec


async def build(server: RunningServer) -> DataSet:
    """31 stored rows in #h (29 PRIVMSG/NOTICE, a TAGMSG and a topic change, the last
    two served only with draft/event-playback), from two users, with bursts sharing a
    millisecond, client tags, an ACTION, a repeated text, and joins, parts, quits, a
    nick change, a STATUSMSG and a private message in between (none of which is kept)."""
    alice = await server.client("alice", ["message-tags"])
    reader = await server.client("reader", CAPS)
    bob = await server.client("bob", ["message-tags"])
    for c in (alice, reader, bob):  # alice is the channel operator
        await c.join("#h")
    for c in (alice, reader, bob):
        await c.sync()

    async def burst(c: IRCTestClient, *lines: str) -> None:
        await c.send_raw(b"".join(line.encode() + b"\r\n" for line in lines))

    await burst(alice, "PRIVMSG #h :one")
    first = await collect(reader, 1, "#h")
    await burst(bob, "NOTICE #h :two")
    await burst(alice, *(f"PRIVMSG #h :burst {n}" for n in range(1, 8)), "NOTICE #h :burst notice")
    await burst(bob, r"@+example.com/flavour=salt\sand\:pepper PRIVMSG #h :tagged")
    await burst(alice, "@+draft/react=tada TAGMSG #h")
    await burst(alice, "PRIVMSG #h :\x01ACTION waves\x01")
    await burst(bob, "PRIVMSG #h :same text", "PRIVMSG #h :same text")
    await burst(alice, "PRIVMSG @#h :ops only", "PRIVMSG bob :private", "TOPIC #h :a topic")
    carol = await server.client("carol")
    await carol.join("#h")
    await burst(carol, "PRIVMSG #h :carol was here", "PART #h :bye")
    dave = await server.client("dave")
    await dave.join("#h")
    await burst(dave, "QUIT :gone")
    await burst(bob, "NICK robert")
    await burst(bob, *(f"{'NOTICE' if n % 3 == 0 else 'PRIVMSG'} #h :b{n}" for n in range(1, 13)))
    await burst(alice, f"@+draft/reply={first[0].msgid} PRIVMSG #h :reply", "PRIVMSG #h :last")
    stored = first + await collect(reader, 30, "#h")
    await reader.sync()
    for c in (alice, bob):
        await c.sync()  # nothing was queued for them that matters
    return DataSet(reader, alice, bob, stored)


# ---------------------------------------------------------------------- tests


async def test_data_set_is_stored_as_received(server: RunningServer) -> None:
    ds = await build(server)
    stored = ds.stored
    assert len(stored) == 31
    assert [r.command for r in stored].count("TAGMSG") == 1
    assert [(r.command, r.text) for r in stored if r.command == "TOPIC"] == [("TOPIC", "a topic")]
    # Some messages share a millisecond (bursts), which timestamp references must handle.
    assert len({r.ms for r in stored}) < len(stored)
    # Nothing but channel messages, and the repeated text twice with two msgids.
    assert [r.text for r in stored].count("same text") == 2
    assert len({r.msgid for r in stored}) == 31
    # Everything served (no TAGMSG), in the order live members received it.
    replies = await history(ds.reader, "CHATHISTORY LATEST #h * 100")
    assert_same(replies, [r for r in stored if r.command in SERVED][-LIMIT:])
    everything = await history(ds.reader, f"CHATHISTORY BEFORE #h msgid={stored[10].msgid} 100")
    assert_same(everything, [r for r in stored[:10] if r.command in SERVED])
    # Joins, parts, quits, nick changes, STATUSMSG and private messages are not channel
    # history, and the topic change is an event: a full walk shows PRIVMSG/NOTICE only.
    walk = replies + everything
    assert {m.command for m in walk} <= set(SERVED)
    texts = [m.params[1] for m in walk]
    assert "ops only" not in texts and "private" not in texts
    # Client tags (with escaped values) survive storage; the nick change shows in sources.
    tagged = ds.by_text("tagged")
    assert tagged.client_tags == (("+example.com/flavour", "salt and;pepper"),)
    reply = ds.by_text("reply")
    assert reply.client_tags == (("+draft/reply", stored[0].msgid),)
    assert ds.by_text("b1").source == "robert!~bob@127.0.0.1"
    assert ds.by_text("two").source == mask("bob")


async def test_replies_come_in_the_order_of_the_commands(server: RunningServer) -> None:
    """A history read is answered later than the commands after it used to be: a PING
    sent after a CHATHISTORY (a client's "done" marker) was answered before the batch,
    and so were a later WHOIS and a later request's FAIL."""
    writer = await server.client("w")
    await writer.send("JOIN #order")
    await writer.send("PRIVMSG #order :one")
    await writer.send("PRIVMSG #order :two")
    await writer.sync()
    reader = await server.client("r", CAPS)
    await reader.send_raw(b"CHATHISTORY LATEST #order * 2\r\nPING :after-history\r\n"
                          b"WHOIS w\r\nCHATHISTORY LATEST #nowhere * 2\r\n"
                          b"PING :after-second\r\n")
    seen = [(m.command, m.params[-1]) for m in await reader.collect_until("PONG")]
    assert [c for c, _ in seen if c in ("BATCH", "PRIVMSG", "PONG")] == [
        "BATCH", "PRIVMSG", "PRIVMSG", "BATCH", "PONG"]
    later = await reader.collect_until("PONG")
    commands = [m.command for m in later]
    assert commands[0] == "311" and commands.index("318") < commands.index("FAIL")
    assert later[-1].params[-1] == "after-second"


async def test_event_playback_serves_tagmsg_as_members_received_it(
    server: RunningServer,
) -> None:
    ds = await build(server)
    stored = ds.stored
    tagmsg = next(r for r in stored if r.command == "TAGMSG")
    events = await server.client("events", [*CAPS, "draft/event-playback"])
    at = stored.index(tagmsg)

    def same(replies: list[Message], expected: list[Rec]) -> None:
        assert [Rec.of(m) for m in replies] == expected
        assert all(m.tags.get("batch") for m in replies)

    # Served and counted like any message; ordered among the others by seq.
    same(await history(events, "CHATHISTORY LATEST #h * 100"), stored[-LIMIT:])
    window = f"CHATHISTORY AROUND #h msgid={tagmsg.msgid} 5"
    same(await history(events, window), stored[at - 2 : at + 3])
    # Without message-tags (a TAGMSG is nothing but tags) it is still left out.
    bare_caps = ["batch", "server-time", "draft/chathistory", "draft/event-playback"]
    bare = await server.client("bare", bare_caps)
    replies = await history(bare, f"CHATHISTORY AFTER #h msgid={stored[at - 2].msgid} 3")
    want = [stored[at - 1], *stored[at + 1 : at + 3]]
    assert [(m.command, m.params[1]) for m in replies] == [(r.command, r.text) for r in want]
    # And a reader without event-playback gets the same page without it.
    replies = await history(ds.reader, window)
    assert "TAGMSG" not in [m.command for m in replies]


async def test_topic_changes_are_replayed_with_event_playback(server: RunningServer) -> None:
    """A topic change is kept as an event: clients with draft/event-playback get it
    in history where it happened (as its members saw it); others do not, and it never
    counts for them."""
    alice = await server.client("alice", ["message-tags", "server-time"])
    events = await server.client("events", [*CAPS, "draft/event-playback"])
    plain = await server.client("plainr", CAPS)
    for c in (alice, events, plain):
        await c.join("#t")
    await alice.sync()
    await events.sync()
    await alice.send("PRIVMSG #t :before")
    await alice.send("TOPIC #t :the new topic")
    live = await events.expect("TOPIC")
    await alice.send("PRIVMSG #t :after")
    await events.expect("PRIVMSG", lambda m: m.params[-1] == "after")
    await events.sync()
    await plain.sync()
    events.backlog.clear()
    replies = await history(events, "CHATHISTORY LATEST #t * 10", "#t")
    assert [(m.command, m.params[-1]) for m in replies] == [
        ("PRIVMSG", "before"), ("TOPIC", "the new topic"), ("PRIVMSG", "after")]
    topic = replies[1]
    assert (topic.source, topic.params) == (live.source, live.params)
    assert (topic.tags["msgid"], topic.tags["time"]) == (live.tags["msgid"], live.tags["time"])
    assert [m.params[-1] for m in await history(plain, "CHATHISTORY LATEST #t * 2", "#t")] == [
        "before", "after"]


async def test_typing_notifications_are_relayed_but_never_stored(
    server: RunningServer,
) -> None:
    alice = await server.client("alice", CAPS)
    bob = await server.client("bob", [*CAPS, "draft/event-playback"])
    for c in (alice, bob):
        await c.join("#typing")
    await bob.sync()
    await alice.send("@+typing=active TAGMSG #typing")
    live = await bob.expect("TAGMSG")
    assert live.tags.get("+typing") == "active"
    await alice.send("@+typing=active;+draft/react=wave TAGMSG #typing")
    await alice.send("PRIVMSG #typing :hello")
    await bob.expect("PRIVMSG")
    replies = await history(bob, "CHATHISTORY LATEST #typing * 10", "#typing")
    # The reaction is kept, without the typing tag; the bare typing TAGMSG is not.
    assert [(m.command, m.tags.get("+draft/react"), "+typing" in m.tags) for m in replies] == [
        ("TAGMSG", "wave", False), ("PRIVMSG", None, False)]


async def test_every_subcommand_answers_exactly(server: RunningServer) -> None:
    ds = await build(server)
    stored, reader = ds.stored, ds.reader
    model = Model(stored)
    served = [r for r in stored if r.command in SERVED]
    tagmsg = next(r for r in stored if r.command == "TAGMSG")
    # A millisecond shared by several messages, and one with none at all.
    shared = next(r for r in stored if sum(1 for s in stored if s.ms == r.ms) > 1)
    gap = next((a.ms + 1 for a, b in pairwise(stored) if b.ms - a.ms > 1), None)

    def mid(r: Rec) -> Ref:
        return ("msgid", r.msgid)

    def ts(value: Rec | int) -> Ref:
        ms = value.ms if isinstance(value, Rec) else value
        return ("timestamp", format_time(ms / 1000))

    requests: list[tuple[str, Ref, int, Ref | None]] = [
        ("LATEST", ("*", ""), 5, None),
        ("LATEST", ("*", ""), 1, None),
        ("LATEST", ("*", ""), 0, None),
        ("LATEST", ("*", ""), LIMIT, None),
        ("LATEST", ("*", ""), 1000, None),  # capped at ISUPPORT CHATHISTORY
        ("LATEST", mid(stored[24]), 3, None),
        ("LATEST", mid(stored[20]), 100, None),  # more than available
        ("LATEST", mid(stored[-1]), 10, None),  # nothing after the newest
        ("LATEST", mid(tagmsg), 4, None),
        ("LATEST", ts(shared), 50, None),
        ("LATEST", ts(stored[-1]), 50, None),
        ("BEFORE", mid(stored[15]), 5, None),
        ("BEFORE", mid(stored[15]), 100, None),
        ("BEFORE", mid(stored[0]), 5, None),  # empty
        ("BEFORE", mid(stored[29]), 1000, None),  # capped
        ("BEFORE", mid(tagmsg), 3, None),
        ("BEFORE", ts(shared), 4, None),
        ("BEFORE", ts(stored[0]), 10, None),  # empty
        ("AFTER", mid(stored[3]), 5, None),
        ("AFTER", mid(stored[20]), 100, None),
        ("AFTER", mid(stored[-1]), 5, None),  # empty
        ("AFTER", mid(tagmsg), 2, None),
        ("AFTER", ts(shared), 4, None),
        ("AFTER", ts(stored[-1]), 10, None),  # empty
        ("AFTER", ts(0), 1000, None),  # from the beginning, capped
        ("AROUND", mid(stored[12]), 5, None),
        ("AROUND", mid(stored[12]), 1, None),
        ("AROUND", mid(stored[0]), 4, None),
        ("AROUND", mid(stored[-1]), 6, None),
        ("AROUND", ts(shared), 6, None),
        ("BETWEEN", mid(stored[2]), 100, mid(stored[20])),
        ("BETWEEN", mid(stored[20]), 100, mid(stored[2])),
        ("BETWEEN", mid(stored[2]), 3, mid(stored[20])),  # the 3 after the first ref
        ("BETWEEN", mid(stored[20]), 3, mid(stored[2])),  # the 3 before the first ref
        ("BETWEEN", mid(stored[5]), 10, mid(stored[5])),  # empty
        ("BETWEEN", mid(stored[5]), 10, mid(stored[6])),  # adjacent: empty
        ("BETWEEN", ts(stored[1]), 100, ts(stored[-2])),
        ("BETWEEN", ts(stored[-2]), 4, ts(stored[1])),
        ("BETWEEN", mid(stored[4]), 50, ts(stored[-1])),
        ("BETWEEN", ts(stored[-1]), 50, mid(stored[4])),
        ("BETWEEN", ts(0), 1000, ts(stored[-1].ms + 1)),  # capped
        ("BEFORE", ("msgid", UNKNOWN_MSGID), 10, None),  # unknown: empty
        ("BETWEEN", mid(stored[2]), 10, ("msgid", UNKNOWN_MSGID)),  # unknown: empty
    ]
    if gap is not None:
        requests += [("BEFORE", ts(gap), 3, None), ("AFTER", ts(gap), 3, None)]
    for sub, ref, limit, ref2 in requests:
        line = f"CHATHISTORY {sub} #h {token(ref)}"
        line += f" {token(ref2)}" if ref2 is not None else ""
        line += f" {limit}"
        expected = model.answer(sub, ref, limit, ref2)
        assert_same(await history(reader, line), expected, line)
    # Sanity of the model itself on a few hand-checked cases.
    assert model.answer("LATEST", ("*", ""), 5, None) == served[-5:]
    # (bursts from two connections interleave either way: stored[12] may be an event)
    middle = next(r for r in stored[12:] if r.command in SERVED)
    assert model.answer("AROUND", mid(middle), 1, None) == [middle]
    assert (
        model.answer("BETWEEN", mid(stored[20]), 3, mid(stored[2]))
        == [r for r in stored[17:20] if r.command in SERVED][-3:]
    )


async def test_reply_format(server: RunningServer) -> None:
    ds = await build(server)
    reader = ds.reader
    # The batch names the channel as it was created, whatever case was asked for,
    # and the subcommand is case-insensitive.
    replies = await history(reader, "CHATHISTORY latest #H * 3")
    assert_same(replies, [r for r in ds.stored if r.command in SERVED][-3:])
    # Each reply: batch, time and msgid tags, client tags of the original message.
    replies = await history(reader, f"CHATHISTORY AROUND #h msgid={ds.by_text('tagged').msgid} 1")
    (m,) = replies
    assert m.command == "PRIVMSG" and m.source == mask("bob")
    assert set(m.tags) == {"batch", "time", "msgid", "+example.com/flavour"}
    assert m.tags["+example.com/flavour"] == "salt and;pepper"
    # An empty answer is an empty batch, never silence.
    assert await history(reader, f"CHATHISTORY AFTER #h msgid={ds.stored[-1].msgid} 10") == []
    await reader.join("#empty")
    await reader.sync()
    assert await history(reader, "CHATHISTORY LATEST #empty * 10", "#empty") == []
    # A client without message-tags gets neither msgids nor client tags; without
    # server-time no time; without batch no batch (but the same messages).
    plain = await server.client("plain", ["draft/chathistory"])
    await plain.send("CHATHISTORY LATEST #h * 3")
    got = [await plain.read_message() for _ in range(3)]
    want = [r for r in ds.stored if r.command in SERVED][-3:]
    assert [(m.command, m.source, m.params, m.tags) for m in got] == [
        (r.command, r.source, [r.target, r.text], {}) for r in want
    ]
    assert await plain.sync() == []


async def test_targets(server: RunningServer) -> None:
    alice = await server.client("alice", ["server-time", "message-tags", "echo-message"])
    reader = await server.client("reader", CAPS)
    for name in ("#t1", "#t2", "#t3"):
        await alice.join(name)
    await alice.sync()
    # Without channels there is nothing to list.
    always = ("timestamp=2000-01-01T00:00:00.000Z", "timestamp=2999-01-01T00:00:00.000Z")
    assert await targets(reader, *always) == []
    await reader.join("#t1")
    await reader.join("#T2")  # joins the existing #t2
    await reader.sync()
    sent: list[Rec] = []
    for command, line in (
        ("PRIVMSG", "PRIVMSG #t1 :a"),
        ("PRIVMSG", "PRIVMSG #t2 :b"),
        ("PRIVMSG", "PRIVMSG #t3 :c"),  # reader is not in #t3
        ("TAGMSG", "@+draft/react=x TAGMSG #t2"),  # not history that is served
        ("NOTICE", "NOTICE #t1 :d"),
    ):
        await alice.send(line)
        sent.append(Rec.of(await alice.expect(command)))
    await reader.sync()

    def expected(lo: int, hi: int) -> list[tuple[str, int]]:
        """The targets whose latest served message is inside the range (one with a
        later message is not listed)."""
        lo, hi = min(lo, hi), max(lo, hi)
        newest: dict[str, int] = {}
        for r in sent:
            if r.target in ("#t1", "#t2") and r.command in SERVED:
                newest[r.target] = max(newest.get(r.target, 0), r.ms)
        return sorted(((t, ms) for t, ms in newest.items() if lo < ms < hi),
                      key=lambda kv: kv[1])

    first, last = min(r.ms for r in sent), max(r.ms for r in sent)
    ranges = [
        (first - 1, last + 1),
        (last + 1, first - 1),  # either order
        (first - 1, sent[-1].ms),  # exclusive: the last message falls out
        (last + 1, last + 1000),  # nothing
    ]
    for lo, hi in ranges:
        got = await targets(
            reader, f"timestamp={format_time(lo / 1000)}", f"timestamp={format_time(hi / 1000)}"
        )
        want = expected(lo, hi)
        assert [ms for _, ms in got] == sorted(ms for _, ms in got)  # ascending by time
        assert sorted(got) == sorted(want), (lo, hi)


async def targets(c: IRCTestClient, start: str, end: str) -> list[tuple[str, int]]:
    await c.send(f"CHATHISTORY TARGETS {start} {end} 10")
    lines = await read_batch(c, "draft/chathistory-targets")
    out = []
    for m in lines:
        assert m.command == "CHATHISTORY" and m.source == SERVER, m
        assert m.params[0] == "TARGETS" and len(m.params) == 3, m
        out.append((m.params[1], round(parse_time(m.params[2]) * 1000)))
    return out


# ---------------------------------------------------------------------- errors


async def test_invalid_params(server: RunningServer) -> None:
    ds = await build(server)
    reader = ds.reader
    x, y = ds.stored[3].msgid, ds.stored[9].msgid
    t = ds.stored[5].time
    cases = {
        # unknown subcommand
        "CHATHISTORY FOO #h * 10": "FOO",
        "CHATHISTORY LATESTS #h * 10": "LATESTS",
        # bad limit
        "CHATHISTORY LATEST #h * abc": "LATEST",
        "CHATHISTORY LATEST #h * -1": "LATEST",
        "CHATHISTORY LATEST #h * 1.5": "LATEST",
        "CHATHISTORY LATEST #h * 0x10": "LATEST",
        "CHATHISTORY LATEST #h * \u00b2": "LATEST",  # a "digit" int() rejects
        "CHATHISTORY LATEST #h * \u0663": "LATEST",
        f"CHATHISTORY BEFORE #h msgid={x} ten": "BEFORE",
        f"CHATHISTORY BETWEEN #h msgid={x} msgid={y} many": "BETWEEN",
        "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z "
        "timestamp=2999-01-01T00:00:00.000Z all": "TARGETS",
        # bad references
        "CHATHISTORY BEFORE #h msgid=garbage 10": "BEFORE",
        "CHATHISTORY BEFORE #h msgid= 10": "BEFORE",
        "CHATHISTORY AFTER #h timestamp=garbage 10": "AFTER",
        "CHATHISTORY AFTER #h timestamp= 10": "AFTER",
        "CHATHISTORY LATEST #h timestamp=2024-13-45T99:00:00.000Z 10": "LATEST",
        f"CHATHISTORY AROUND #h {x} 10": "AROUND",  # no msgid= prefix
        f"CHATHISTORY AROUND #h id={x} 10": "AROUND",
        "CHATHISTORY LATEST #h ** 10": "LATEST",
        # * only where allowed (LATEST)
        "CHATHISTORY BEFORE #h * 10": "BEFORE",
        "CHATHISTORY AFTER #h * 10": "AFTER",
        "CHATHISTORY AROUND #h * 10": "AROUND",
        f"CHATHISTORY BETWEEN #h * msgid={y} 10": "BETWEEN",
        f"CHATHISTORY BETWEEN #h msgid={x} * 10": "BETWEEN",
        f"CHATHISTORY BETWEEN #h timestamp={t} * 10": "BETWEEN",
        "CHATHISTORY TARGETS * timestamp=2999-01-01T00:00:00.000Z 10": "TARGETS",
        f"CHATHISTORY TARGETS msgid={x} msgid={y} 10": "TARGETS",
        "CHATHISTORY TARGETS timestamp=garbage timestamp=2999-01-01T00:00:00.000Z 10": "TARGETS",
        # missing parameters
        "CHATHISTORY LATEST": "LATEST",
        "CHATHISTORY LATEST #h": "LATEST",
        "CHATHISTORY LATEST #h *": "LATEST",
        f"CHATHISTORY BEFORE #h msgid={x}": "BEFORE",
        f"CHATHISTORY BETWEEN #h msgid={x} msgid={y}": "BETWEEN",
        f"CHATHISTORY BETWEEN #h msgid={x} 10": "BETWEEN",
        "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z 10": "TARGETS",
        "CHATHISTORY TARGETS": "TARGETS",
        # excess parameters
        "CHATHISTORY LATEST #h * 10 extra": "LATEST",
        f"CHATHISTORY BEFORE #h msgid={x} msgid={y} 10": "BEFORE",
        f"CHATHISTORY BETWEEN #h msgid={x} msgid={y} 10 10": "BETWEEN",
        "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z "
        "timestamp=2999-01-01T00:00:00.000Z 10 #h": "TARGETS",
    }
    for line, sub in cases.items():
        got = await ask(reader, line)
        assert len(got) == 1, (line, got)
        (fail,) = got
        assert fail.command == "FAIL" and fail.source == SERVER, (line, fail)
        assert fail.params[:3] == ["CHATHISTORY", "INVALID_PARAMS", sub], (line, fail)
    # No parameter at all: the generic "not enough parameters" numeric.
    (numeric,) = await ask(reader, "CHATHISTORY")
    assert numeric.command == "461" and numeric.params[1] == "CHATHISTORY"
    # Nothing above left a reply behind: the next answer is the right one.
    assert_same(
        await history(reader, "CHATHISTORY LATEST #h * 2"),
        [r for r in ds.stored if r.command in SERVED][-2:],
    )


async def test_invalid_target(server: RunningServer) -> None:
    ds = await build(server)
    reader, alice = ds.reader, ds.alice
    # Channels with history that reader is not in: +s, +i, +k, +b on reader, and a public one.
    for name, mode in (
        ("#secret", "+s"),
        ("#invite", "+i"),
        ("#keyed", "+k sesame"),
        ("#banned", "+b reader!*@*"),
        ("#public", ""),
    ):
        await alice.join(name)
        if mode:
            await alice.send(f"MODE {name} {mode}")
        await alice.send(f"PRIVMSG {name} :in {name}")
    await alice.send("PRIVMSG reader :a private message")
    await reader.expect("PRIVMSG", lambda m: m.params == ["reader", "a private message"])
    await alice.sync()

    async def invalid(target: str, line: str | None = None) -> None:
        line = line or f"CHATHISTORY LATEST {target} * 10"
        got = await ask(reader, line)
        assert [(m.command, m.params) for m in got] == [
            (
                "FAIL",
                [
                    "CHATHISTORY",
                    "INVALID_TARGET",
                    line.split()[1],
                    target,
                    "Messages could not be retrieved",
                ],
            )
        ], line

    await invalid("#nosuch")
    await invalid("#secret")  # the same answer as for a channel that does not exist
    await invalid("#invite")
    await invalid("#keyed")  # who could not join without the key cannot read either
    await invalid("#banned")
    await invalid("#Secret", "CHATHISTORY BEFORE #Secret timestamp=2999-01-01T00:00:00.000Z 10")
    # Private history is not served: a nick is not an identity.
    await invalid("alice")
    await invalid("reader")
    await invalid("*")
    # A public channel is readable without joining it.
    (m,) = await history(reader, "CHATHISTORY LATEST #public * 10", "#public")
    assert (m.source, m.params) == (mask("alice"), ["#public", "in #public"])
    # Members of +s / +i channels may read them.
    await alice.send("INVITE reader #invite")
    await reader.expect("INVITE")
    for name in ("#secret", "#invite"):
        await reader.join(name)
        await reader.sync()
        (m,) = await history(reader, f"CHATHISTORY LATEST {name} * 10", name)
        assert m.params == [name, f"in {name}"]
    await reader.send("PART #secret")
    await reader.expect("PART")
    await reader.sync()
    await invalid("#secret")  # and no longer once they left
    # Knowing the key is joining: then the keyed channel reads like any other.
    await reader.send("JOIN #keyed sesame")
    await reader.expect("JOIN")
    await reader.sync()
    (m,) = await history(reader, "CHATHISTORY LATEST #keyed * 10", "#keyed")
    assert m.params == ["#keyed", "in #keyed"]


async def test_isupport_and_cap(server: RunningServer) -> None:
    c = await IRCTestClient.open(server.port)
    server.clients.append(c)
    tokens = await cap_ls(c)
    assert "draft/chathistory" in tokens
    assert "draft/event-playback" in tokens
    await c.send("CAP END")
    burst = await c.register("nick")
    tokens = [p for m in burst if m.command == "005" for p in m.params[1:-1]]
    assert f"CHATHISTORY={LIMIT}" in tokens
    assert "MSGREFTYPES=timestamp,msgid" in tokens


@pytest.mark.parametrize(
    "server_config", [ServerConfig(name=SERVER, network="TestNet", db="")], ids=["db="]
)
async def test_history_off(server: RunningServer) -> None:
    c = await IRCTestClient.open(server.port)
    server.clients.append(c)
    tokens = await cap_ls(c)
    assert "draft/chathistory" not in tokens
    assert "draft/event-playback" not in tokens
    await c.send("CAP REQ :draft/chathistory")
    nak = await c.expect("CAP")
    assert nak.params[1] == "NAK"
    await c.send("CAP END")
    burst = await c.register("nick")
    tokens = [p.split("=")[0] for m in burst if m.command == "005" for p in m.params[1:-1]]
    assert "CHATHISTORY" not in tokens and "MSGREFTYPES" not in tokens
    await c.join("#h")
    await c.send("PRIVMSG #h :not stored")
    for line in ("CHATHISTORY LATEST #h * 10", "CHATHISTORY TARGETS * * 10", "CHATHISTORY FOO"):
        got = await ask(c, line)
        assert [(m.command, m.params[1:]) for m in got] == [
            ("421", ["CHATHISTORY", "Unknown command"])
        ], line


async def test_labeled_request_labels_its_batch(server: RunningServer) -> None:
    ds = await build(server)
    reader = await server.client("labeler", [*CAPS, "labeled-response"])
    await reader.join("#h")
    await reader.sync()
    await reader.send("@label=abc CHATHISTORY LATEST #h * 2")
    opening = await reader.read_message()
    # labeled-response: the response (one batch) carries the label; no ACK.
    assert (opening.command, opening.tags.get("label")) == ("BATCH", "abc"), opening
    assert opening.params[1:] == ["chathistory", "#h"]
    replies = []
    while (m := await reader.read_message()).command != "BATCH":
        replies.append(m)
    assert_same(replies, [r for r in ds.stored if r.command in SERVED][-2:])


async def test_targets_honours_its_limit(server: RunningServer) -> None:
    c = await server.client("lister", CAPS)
    for name in ("#t1", "#t2", "#t3"):
        await c.join(name)
        await c.send(f"PRIVMSG {name} :hello")
    await c.sync()
    start, end = "timestamp=2000-01-01T00:00:00.000Z", "timestamp=2999-01-01T00:00:00.000Z"
    await c.send(f"CHATHISTORY TARGETS {start} {end} 2")
    lines = await read_batch(c, "draft/chathistory-targets")
    assert [m.params[1] for m in lines] == ["#t1", "#t2"]  # oldest activity first
