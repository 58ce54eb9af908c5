"""Join playback over real TCP, on every backend.

A client that will not ask for history itself (no draft/chathistory) gets the last
``history_playback`` messages of a channel when it joins: in a ``chathistory`` batch
when it has batch and server-time, else as NOTICEs ``[HH:MM UTC] <nick> text`` from the
server (``-nick- text`` for a notice). Playback never holds a message sent after the
join: the joiner gets those live, exactly once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from chat.message import Message
from chat.servertime import parse_time
from server.config import ServerConfig
from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient
from tests.server.test_chathistory import Rec, collect, read_batch

SERVER = "test.server"
N = 3  # history_playback
CONFIG = ServerConfig(name=SERVER, network="TestNet", history_playback=N)
FULL = ["batch", "server-time", "message-tags", "draft/chathistory"]


@pytest.fixture
def server_config() -> ServerConfig:
    return CONFIG


async def seed(server: RunningServer, channel: str = "#p") -> tuple[IRCTestClient, list[Rec]]:
    """alice (op) and an observer in ``channel``; six messages, of which the last
    three (what playback shows) are a NOTICE, an ACTION and a PRIVMSG, with a TAGMSG
    among them that playback never shows."""
    alice = await server.client("alice", ["message-tags"])
    observer = await server.client("observer", FULL)
    await alice.join(channel)
    await observer.join(channel)
    await alice.sync()
    await observer.sync()
    await alice.send_raw(
        "".join(
            f"{line}\r\n"
            for line in (
                f"PRIVMSG {channel} :first",
                f"PRIVMSG {channel} :second",
                f"PRIVMSG {channel} :third",
                f"NOTICE {channel} :a notice",
                f"PRIVMSG {channel} :\x01ACTION waves\x01",
                f"@+draft/react=x TAGMSG {channel}",
                f"PRIVMSG {channel} :newest",
            )
        ).encode()
    )
    stored = await collect(observer, 7, channel)
    return alice, [r for r in stored if r.command != "TAGMSG"]


def hhmm(rec: Rec) -> str:
    return datetime.fromtimestamp(parse_time(rec.time), UTC).strftime("%H:%M")


async def join(c: IRCTestClient, channel: str = "#p") -> list[Message]:
    """JOIN; returns the join burst (JOIN .. 366). Playback follows it."""
    burst = await c.join(channel)
    assert burst[0].command == "JOIN"
    return burst


async def no_playback(c: IRCTestClient, channel: str, newest: Rec) -> None:
    """Nothing arrives before the answer to a CHATHISTORY sent right after the join
    (history requests are answered in order, so a playback would come first)."""
    await c.send(f"CHATHISTORY LATEST {channel} * 1")
    first = await c.read_message()
    if first.command == "BATCH":  # batch-capable client: the answer is one batch
        assert first.params[1:] == ["chathistory", channel]
        m = await c.read_message()
        assert m.tags.get("batch") == first.params[0][1:]
        end = await c.read_message()
        assert end.command == "BATCH" and end.params == ["-" + first.params[0][1:]]
    else:
        m = first
    assert (m.command, m.params) == (newest.command, [channel, newest.text])
    assert await c.sync() == []


def test_default_playback_length() -> None:
    assert ServerConfig().history_playback == 20


async def test_batch_client_gets_last_n_in_a_chathistory_batch(server: RunningServer) -> None:
    _, stored = await seed(server)
    joiner = await server.client("joiner", ["batch", "server-time"])
    await join(joiner)
    replay = await read_batch(joiner, "chathistory", "#p")
    want = stored[-N:]
    assert [(m.command, m.source, m.params) for m in replay] == [
        (r.command, r.source, [r.target, r.text]) for r in want
    ]
    # Its original time; no msgid or client tags without message-tags.
    assert [set(m.tags) for m in replay] == [{"batch", "time"}] * N
    assert [m.tags["time"] for m in replay] == [r.time for r in want]
    assert await joiner.sync() == []

    # With message-tags too, the msgids are the ones live members saw.
    tagged = await server.client("tagged", ["batch", "server-time", "message-tags"])
    await join(tagged)
    replay = await read_batch(tagged, "chathistory", "#p")
    assert [(m.tags["msgid"], m.tags["time"]) for m in replay] == [(r.msgid, r.time) for r in want]


async def test_plain_client_gets_notices(server: RunningServer) -> None:
    _, stored = await seed(server, "#Plain")
    said = ["-alice- a notice", "* alice waves", "<alice> newest"]
    assert [r.text for r in stored[-N:]] == ["a notice", "\x01ACTION waves\x01", "newest"]
    # No caps, or batch without server-time: the time (UTC; seeded today) in the text.
    for nick, caps in (("plain", None), ("batchonly", ["batch"])):
        c = await server.client(nick, caps)
        await join(c, "#plain")  # any case: the replies use the channel's own name
        notices = [await c.read_message() for _ in range(N)]
        assert [(m.command, m.source, m.params, m.tags) for m in notices] == [
            ("NOTICE", SERVER, ["#Plain", f"[{hhmm(r)} UTC] {line}"], {})
            for r, line in zip(stored[-N:], said, strict=True)
        ], nick
        assert await c.sync() == []
    # server-time without batch: each notice carries the message's own time too, and
    # the text still says it (irssi shows the tag's time only when set up to).
    c = await server.client("timeonly", ["server-time"])
    await join(c, "#plain")
    notices = [await c.read_message() for _ in range(N)]
    assert [(m.command, m.params, m.tags) for m in notices] == [
        ("NOTICE", ["#Plain", f"[{hhmm(r)} UTC] {line}"], {"time": r.time})
        for r, line in zip(stored[-N:], said, strict=True)
    ]
    assert await c.sync() == []


@pytest.mark.parametrize("server_config", [replace(CONFIG, history_playback=0)], ids=["off"])
async def test_playback_zero_sends_nothing(server: RunningServer) -> None:
    _, stored = await seed(server)
    for nick, caps in (("plain", None), ("batchy", ["batch", "server-time"])):
        c = await server.client(nick, caps)
        await join(c)
        await no_playback(c, "#p", stored[-1])


async def test_chathistory_client_gets_no_playback(server: RunningServer) -> None:
    _, stored = await seed(server)
    for nick, caps in (("full", FULL), ("bare", ["draft/chathistory"])):
        c = await server.client(nick, caps)
        await join(c)
        await no_playback(c, "#p", stored[-1])


async def test_empty_channel_playback(server: RunningServer) -> None:
    """Nothing to play back: no batch at all (an empty one at each join was noise)."""
    for nick, caps in (("joiner", ["batch", "server-time"]), ("batchonly", ["batch"])):
        c = await server.client(nick, [*caps, "labeled-response"])
        await join(c, "#new")
        await c.send("@label=q CHATHISTORY LATEST #new * 1")  # answered after any playback
        first = await c.read_message()
        assert (first.command, first.tags.get("label")) == ("BATCH", "q"), first


async def playback_and_live(
    c: IRCTestClient, channel: str, live_texts: set[str]
) -> tuple[list[Message], list[Message]]:
    """Read until the playback batch ended and every text in ``live_texts`` arrived
    outside it; returns (playback, live)."""
    playback: list[Message] | None = None
    live: list[Message] = []
    batch_ref: str | None = None
    inside: list[Message] = []
    while playback is None or not live_texts <= {m.params[1] for m in live}:
        m = await c.read_message()
        if m.command == "BATCH" and m.params[0].startswith("+"):
            assert m.params[1:] == ["chathistory", channel] and batch_ref is None
            batch_ref = m.params[0][1:]
        elif m.command == "BATCH":
            assert batch_ref is not None and m.params == ["-" + batch_ref]
            playback = inside
        elif m.command in ("PRIVMSG", "NOTICE") and m.params[0] == channel:
            if batch_ref is not None and playback is None:
                assert m.tags.get("batch") == batch_ref
                inside.append(m)
            else:
                assert "batch" not in m.tags
                live.append(m)
    assert await c.sync() == []
    return playback, live


async def test_own_message_right_after_join_is_not_played_back(server: RunningServer) -> None:
    """JOIN and a PRIVMSG in one packet: the message is processed after the join, so
    the joiner sees it once (echo), never in the playback."""
    _, stored = await seed(server)
    joiner = await server.client("joiner", ["batch", "server-time", "message-tags", "echo-message"])
    await joiner.send_raw(b"JOIN #p\r\nPRIVMSG #p :right after\r\nPRIVMSG #p :and again\r\n")
    playback, live = await playback_and_live(joiner, "#p", {"right after", "and again"})
    assert [m.tags["msgid"] for m in playback] == [r.msgid for r in stored[-N:]]
    assert [m.params[1] for m in live] == ["right after", "and again"]


async def test_others_messages_after_join_arrive_live_exactly_once(
    server: RunningServer,
) -> None:
    alice, stored = await seed(server)
    joiner = await server.client("joiner", ["batch", "server-time", "message-tags"])
    await joiner.send("JOIN #p")
    # As soon as alice sees the join, she talks: those messages follow the join.
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("joiner!"))
    texts = [f"live {n}" for n in range(10)]
    await alice.send_raw("".join(f"PRIVMSG #p :{t}\r\n" for t in texts).encode())
    playback, live = await playback_and_live(joiner, "#p", set(texts))
    assert [m.tags["msgid"] for m in playback] == [r.msgid for r in stored[-N:]]
    assert [m.params[1] for m in live] == texts


async def test_join_and_message_back_to_back_arrive_exactly_once(
    server: RunningServer,
) -> None:
    """JOIN and another user's PRIVMSG sent at the same moment: whichever the server
    handles first, the joiner gets the message exactly once (live if it came after
    the join, else as the newest message of the playback)."""
    alice = await server.client("alice")
    observer = await server.client("observer", FULL)
    joiners = [
        await server.client(f"joiner{n}", ["batch", "server-time", "message-tags"])
        for n in range(5)
    ]
    for n in range(5):
        channel = f"#race{n}"
        await alice.join(channel)
        await observer.join(channel)
        await alice.send(f"PRIVMSG {channel} :before")
        await observer.expect("PRIVMSG", lambda m: m.params[1:] == ["before"])
        await alice.sync()
        await joiners[n].send(f"JOIN {channel}")
        await alice.send(f"PRIVMSG {channel} :racing")
        racing = await observer.expect("PRIVMSG", lambda m: m.params[1:] == ["racing"])
        assert racing.params[0] == channel
        c = joiners[n]
        playback: list[Message] | None = None
        live: list[Message] = []
        ref = None
        inside: list[Message] = []
        # Read until the playback ended; the live copy, if any, comes with the join
        # tick or later, so a sync after the batch has seen it.
        while playback is None:
            m = await c.read_message()
            if m.command == "BATCH" and m.params[0].startswith("+"):
                ref = m.params[0][1:]
            elif m.command == "BATCH":
                playback = inside
            elif m.command == "PRIVMSG":
                (inside if ref is not None and "batch" in m.tags else live).append(m)
        live += [m for m in await c.sync() if m.command == "PRIVMSG"]
        ids = [m.tags["msgid"] for m in playback + live]
        assert ids.count(racing.tags["msgid"]) == 1, (playback, live)
        assert [m.params[1] for m in playback][:1] == ["before"]
        if live:  # handled after the join: never in the playback
            assert [m.tags["msgid"] for m in live] == [racing.tags["msgid"]]
            assert [m.params[1] for m in playback] == ["before"]


def test_a_notice_of_an_earlier_day_says_the_date() -> None:
    """Without server-time the text carries the time: with the date (UTC) when the
    message is not from today."""
    from server.core import ServerCore
    from server.core.history import _send_notices
    from server.history.model import StoredMessage

    now = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC
    core = ServerCore(ServerConfig(name=SERVER, flood_burst=0), clock=lambda: now)
    core.connect(1, "127.0.0.1", 5000)
    core.data_received(1, b"NICK plain\r\nUSER plain 0 * :Plain\r\n")
    client = core.clients[1]
    client.out.clear()
    rows = [StoredMessage("#c", 1, "a" * 16, int(now - 86400) * 1000, "bob!b@h", "PRIVMSG",
                          "#c", "yesterday"),
            StoredMessage("#c", 2, "b" * 16, int(now - 60) * 1000, "bob!b@h", "PRIVMSG",
                          "#c", "just now")]  # fmt: skip
    _send_notices(core, client, "#c", rows)
    sent = b"".join(client.out).decode().splitlines()
    assert sent == [
        f":{SERVER} NOTICE #c :[2026-11-17 11:06 UTC] <bob> yesterday",
        f":{SERVER} NOTICE #c :[11:05 UTC] <bob> just now",
    ]


def fits(m: Message) -> bool:
    """Whether ``m`` without its tags fits in one line of 512 bytes."""
    return len(Message(m.command, m.params, m.source).to_bytes()) <= 512


async def test_a_line_longer_than_a_line_is_played_back_whole(server: RunningServer) -> None:
    """A draft/multiline message joined by multiline-concat only (one long line) is
    played back in lines that fit, as PRIVMSGs in the batch or as notices, nothing cut."""
    alice = await server.client("alice", ["batch", "draft/multiline"])
    await alice.join("#long")
    a, b = "A" * 399, "B" * 400
    await alice.send_raw(
        b"BATCH +x draft/multiline #long\r\n@batch=x PRIVMSG #long :" + a.encode()
        + b"\r\n@batch=x;draft/multiline-concat PRIVMSG #long :" + b.encode()
        + b"\r\nBATCH -x\r\n"
    )
    await alice.sync()
    batchy = await server.client("batchy", ["batch", "server-time"])
    await join(batchy, "#long")
    replay = await read_batch(batchy, "chathistory", "#long")
    assert "".join(m.params[1] for m in replay) == a + b and all(map(fits, replay))
    plain = await server.client("plain")
    await join(plain, "#long")
    notices = [await plain.read_message()]
    while sum(len(m.params[1].split("> ", 1)[1]) for m in notices) < len(a + b):
        notices.append(await plain.read_message())
    assert len(notices) > 1 and all(map(fits, notices))
    assert all(m.params[1].startswith("[") for m in notices)
    assert "".join(m.params[1].split("<alice> ", 1)[1] for m in notices) == a + b


async def test_ctcp_requests_are_not_history(server: RunningServer) -> None:
    """A CTCP request to a channel (VERSION, PING...) is relayed but not kept: replayed,
    irssi showed it as text. ACTIONs are part of the conversation and are kept."""
    alice = await server.client("alice")
    observer = await server.client("observer", FULL)
    for c in (alice, observer):
        await c.join("#ctcp")
        await c.sync()
    await alice.send_raw(
        b"PRIVMSG #ctcp :\x01VERSION\x01\r\nPRIVMSG #ctcp :\x01PING 1234\x01\r\n"
        b"PRIVMSG #ctcp :\x01ACTION waves\x01\r\nPRIVMSG #ctcp :hello\r\n"
    )
    live = await collect(observer, 4, "#ctcp")
    assert live[0].text == "\x01VERSION\x01"
    await observer.send("CHATHISTORY LATEST #ctcp * 10")
    replay = await read_batch(observer, "chathistory", "#ctcp")
    assert [m.params[1] for m in replay] == ["\x01ACTION waves\x01", "hello"]
    plain = await server.client("plain")
    await join(plain, "#ctcp")
    notices = [await plain.read_message() for _ in range(2)]
    assert [m.params[1].split("] ", 1)[1] for m in notices] == ["* alice waves", "<alice> hello"]
    assert await plain.sync() == []


async def test_an_action_without_its_closing_ctcp_mark_replays_as_an_action(
    server: RunningServer,
) -> None:
    alice = await server.client("alice")
    await alice.join("#acts")
    await alice.send("PRIVMSG #acts :\x01ACTION shrugs")  # the closing \x01 is optional
    await alice.send("PRIVMSG #acts :\x01ACTION\x01")  # an empty /me
    await alice.sync()
    plain = await server.client("plain")
    await plain.send("JOIN #acts")
    await plain.expect("366")
    texts = [(await plain.expect("NOTICE")).params[1] for _ in range(2)]
    assert [t.split("] ", 1)[1] for t in texts] == ["* alice shrugs", "* alice  "]
    assert not any("\x01" in t for t in texts)
