"""IRCv3 draft/multiline over real TCP, on every backend: sending, fallback, limits,
errors, history, flood control."""

from __future__ import annotations

import pytest

from chat.message import Message, parse
from server.config import ServerConfig
from tests.conftest import RunningServer, suite_config
from tests.ircclient import IRCTestClient
from tests.server.helpers import cap_ls, mask

BASE = ["message-tags", "batch", "echo-message", "server-time", "labeled-response"]
ML = [*BASE, "draft/multiline"]
CONCAT = "draft/multiline-concat"


def config(**changes: object) -> ServerConfig:
    # No history playback on JOIN: its batch would arrive among the messages under test.
    return suite_config(multiline_max_bytes=4096, multiline_max_lines=24, history_playback=0,
                        **changes)


@pytest.fixture
def server_config() -> ServerConfig:
    return config()


async def trio(server: RunningServer) -> tuple[IRCTestClient, IRCTestClient, IRCTestClient]:
    """alice and bob with draft/multiline, charlie without, all in #test."""
    alice = await server.client("alice", caps=ML)
    bob = await server.client("bob", caps=ML)
    charlie = await server.client("charlie", caps=BASE)
    for c in (alice, bob, charlie):
        await c.join("#test")
    for c in (alice, bob, charlie):
        await c.sync()
    return alice, bob, charlie


async def send_batch(c: IRCTestClient, target: str, lines: list[str], ref: str = "123",
                     opening_tags: str = "label=xyz") -> None:
    """A multiline batch; a line starting with '+' is concatenated to the one before."""
    await c.send(f"@{opening_tags} BATCH +{ref} draft/multiline {target}" if opening_tags
                 else f"BATCH +{ref} draft/multiline {target}")
    for line in lines:
        tags = f"batch={ref};{CONCAT}" if line.startswith("+") else f"batch={ref}"
        await c.send(f"@{tags} PRIVMSG {target} :{line.removeprefix('+')}")
    await c.send(f"BATCH -{ref}")


async def read_multiline(c: IRCTestClient) -> tuple[Message, list[Message]]:
    """The next draft/multiline batch: its opening line and its PRIVMSG lines."""
    start = await c.expect("BATCH")
    assert start.params[0].startswith("+") and start.params[1] == "draft/multiline", start
    ref = start.params[0][1:]
    lines: list[Message] = []
    while True:
        m = await c.read_message()
        if m.command == "BATCH":
            assert m.params == ["-" + ref]
            return start, lines
        assert m.command == "PRIVMSG" and m.tags.get("batch") == ref, m
        lines.append(m)


def joined(lines: list[Message]) -> str:
    out = ""
    for i, m in enumerate(lines):
        out += ("" if i == 0 or CONCAT in m.tags else "\n") + m.params[1]
    return out


async def test_offered_with_its_limits(server: RunningServer) -> None:
    c = await IRCTestClient.open(server.port)
    server.clients.append(c)
    assert "draft/multiline=max-bytes=4096,max-lines=24" in await cap_ls(c)


async def test_batch_reaches_everyone_as_one_message(server: RunningServer) -> None:
    alice, bob, charlie = await trio(server)
    await send_batch(alice, "#test", ["hello", "how is ", "+everyone?"])
    # The echo: one batch, labelled on its opening line, which alone has msgid and time.
    start, lines = await read_multiline(alice)
    assert start.tags["label"] == "xyz" and start.source == mask(alice)
    assert start.params == [start.params[0], "draft/multiline", "#test"]
    msgid, time = start.tags["msgid"], start.tags["time"]
    assert [m.params for m in lines] == [["#test", "hello"], ["#test", "how is "],
                                         ["#test", "everyone?"]]
    assert all("msgid" not in m.tags and "time" not in m.tags for m in lines)
    assert [CONCAT in m.tags for m in lines] == [False, False, True]
    assert joined(lines) == "hello\nhow is everyone?"
    # bob: the same batch, no label.
    start_b, lines_b = await read_multiline(bob)
    assert (start_b.tags["msgid"], start_b.tags["time"]) == (msgid, time)
    assert "label" not in start_b.tags
    assert joined(lines_b) == joined(lines)
    # charlie (no draft/multiline): the lines as sent, the msgid on the first only.
    fallback = [await charlie.expect("PRIVMSG") for _ in range(3)]
    assert [m.params[1] for m in fallback] == ["hello", "how is ", "everyone?"]
    assert [m.tags.get("msgid") for m in fallback] == [msgid, None, None]
    assert all(m.tags["time"] == time and CONCAT not in m.tags for m in fallback)
    assert [m.command for m in await charlie.sync()] == []


async def test_blank_lines_and_client_tags(server: RunningServer) -> None:
    alice, bob, charlie = await trio(server)
    await send_batch(alice, "#test", ["", "code:", "", "  x = 1"],
                     opening_tags="label=l1;+draft/reply=abc")
    await read_multiline(alice)
    start, lines = await read_multiline(bob)
    assert start.tags["+draft/reply"] == "abc"
    assert [m.params[1] for m in lines] == ["", "code:", "", "  x = 1"]
    fallback = [await charlie.expect("PRIVMSG") for _ in range(2)]  # no blank lines
    assert [m.params[1] for m in fallback] == ["code:", "  x = 1"]
    # The client tags on the first line only, as the msgid.
    assert [m.tags.get("+draft/reply") for m in fallback] == ["abc", None]
    assert fallback[0].tags["msgid"] == start.tags["msgid"]
    assert [m.command for m in await charlie.sync()] == []


async def test_private_multiline_and_its_echo(server: RunningServer) -> None:
    alice = await server.client("alice", caps=ML)
    bob = await server.client("bob", caps=ML)
    old = await server.client("old")  # no caps at all
    await send_batch(bob, "alice", ["one", "two"], opening_tags="")
    start, lines = await read_multiline(alice)
    assert start.source == mask(bob) and start.params[2] == "alice"
    assert joined(lines) == "one\ntwo"
    echo_start, echo_lines = await read_multiline(bob)
    assert echo_start.tags["msgid"] == start.tags["msgid"] and joined(echo_lines) == "one\ntwo"
    await send_batch(bob, "old", ["three", "four"], ref="9", opening_tags="")
    got = [await old.expect("PRIVMSG") for _ in range(2)]
    assert [(m.source, m.params, m.tags) for m in got] == [
        (mask(bob), ["old", "three"], {}), (mask(bob), ["old", "four"], {})
    ]


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        (["hi", "+"], "MULTILINE_INVALID"),  # a blank concatenated line
        (["", ""], "MULTILINE_INVALID"),  # nothing but blank lines
        (["x"] * 25, "MULTILINE_MAX_LINES"),  # the limit is 24
        (["y" * 400] * 11, "MULTILINE_MAX_BYTES"),
    ],
    ids=["blank-concat", "all-blank", "lines", "bytes"],
)
async def test_invalid_batches_fail_and_send_nothing(
    server: RunningServer, lines: list[str], code: str
) -> None:
    alice, bob, charlie = await trio(server)
    await send_batch(alice, "#test", lines)
    fail = await alice.expect("FAIL")
    assert fail.params[:2] == ["BATCH", code] and fail.tags.get("label") == "xyz"
    if code == "MULTILINE_MAX_LINES":
        assert fail.params[2] == "24"
    if code == "MULTILINE_MAX_BYTES":
        assert fail.params[2] == "4096"
    # The rest of the batch is dropped without another word; nothing was relayed.
    assert [m.command for m in await alice.sync()] == []
    assert [m.command for m in await bob.sync()] == []
    assert [m.command for m in await charlie.sync()] == []
    # And the connection still works.
    await alice.send("PRIVMSG #test :after")
    assert (await bob.expect("PRIVMSG")).params == ["#test", "after"]


async def test_a_foreign_batch_tag_or_target_fails(server: RunningServer) -> None:
    alice, bob, _charlie = await trio(server)
    await alice.send("BATCH +1 draft/multiline #test")
    await alice.send("@batch=2 PRIVMSG #test :hi")
    assert (await alice.expect("FAIL")).params[:2] == ["BATCH", "MULTILINE_INVALID"]
    await alice.send("@batch=1 PRIVMSG #test :swallowed")
    await alice.send("BATCH -1")
    await alice.send("BATCH +3 draft/multiline #test")
    await alice.send("@batch=3 PRIVMSG #other :hi")
    fail = await alice.expect("FAIL")
    assert fail.params[:4] == ["BATCH", "MULTILINE_INVALID_TARGET", "#test", "#other"]
    await alice.send("BATCH -3")
    # A batch tag with no batch open, or a BATCH end for none.
    await alice.send("@batch=4 PRIVMSG #test :stray")
    assert (await alice.expect("FAIL")).params[:2] == ["BATCH", "MULTILINE_INVALID"]
    await alice.send("BATCH -4")
    assert (await alice.expect("FAIL")).params[:2] == ["BATCH", "MULTILINE_INVALID"]
    assert [m.command for m in await bob.sync()] == []


async def test_another_command_inside_a_batch_ends_it_and_is_handled(
    server: RunningServer,
) -> None:
    alice, bob, _charlie = await trio(server)
    await alice.send("BATCH +1 draft/multiline #test")
    await alice.send("@batch=1 PRIVMSG #test :part one")
    await alice.send("PING :still-here")  # allowed between lines
    await alice.send("TOPIC #test :new topic")  # not allowed: the batch is void
    await alice.send("@batch=1 PRIVMSG #test :part two")
    await alice.send("BATCH -1")
    got = await alice.sync()
    assert [m.command for m in got] == ["PONG", "FAIL", "TOPIC"]
    assert got[1].params[:2] == ["BATCH", "MULTILINE_INVALID"]
    assert [m.command for m in await bob.sync()] == ["TOPIC"]


async def test_batch_needs_the_capability(server: RunningServer) -> None:
    c = await server.client("plain", caps=BASE)
    await c.send("BATCH +1 draft/multiline #test")
    assert (await c.expect("FAIL")).params[:2] == ["BATCH", "MULTILINE_INVALID"]
    ml = await server.client("ml", caps=ML)
    await ml.send("BATCH +1 other/type #test")
    assert (await ml.expect("FAIL")).params[:2] == ["BATCH", "MULTILINE_INVALID"]


async def test_long_lines_are_split_not_cut(server: RunningServer) -> None:
    """A line that fits the client's 512 bytes but not the relayed line (the sender's
    mask is added) is split into concatenated pieces: nothing is lost."""
    alice, bob, charlie = await trio(server)
    text = "word " * 98  # 490 bytes: "PRIVMSG #test :" + 490 + CRLF fits 512
    await send_batch(alice, "#test", ["short", text.strip()])
    _start, lines = await read_multiline(bob)
    assert joined(lines) == "short\n" + text.strip()
    assert len(lines) == 3 and CONCAT in lines[2].tags
    # 512 bytes without the tags, CRLF included.
    assert all(len(Message(m.command, m.params, m.source).to_bytes()) <= 512 for m in lines)
    fallback = [await charlie.expect("PRIVMSG") for _ in range(3)]
    assert "".join(m.params[1] for m in fallback[1:]) == text.strip()


async def test_history_replays_it_whole(server: RunningServer) -> None:
    alice, bob, _charlie = await trio(server)
    await send_batch(alice, "#test", ["first", "second", "+ and more"])
    start, _lines = await read_multiline(bob)
    msgid = start.tags["msgid"]
    caps = [*ML, "draft/chathistory"]
    late = await server.client("late", caps=caps)
    await late.send("CHATHISTORY LATEST #test * 10")
    outer = await late.expect("BATCH")
    assert outer.params[1] == "chathistory"
    ref = outer.params[0][1:]
    inner_start = await late.read_message()
    assert inner_start.command == "BATCH" and inner_start.tags["batch"] == ref
    assert inner_start.params[1:] == ["draft/multiline", "#test"]
    assert inner_start.tags["msgid"] == msgid
    inner_ref = inner_start.params[0][1:]
    lines = []
    while (m := await late.read_message()).command == "PRIVMSG":
        assert m.tags["batch"] == inner_ref
        lines.append(m)
    assert m.params == ["-" + inner_ref] and m.tags["batch"] == ref
    # Stored as the combined text: replayed split on its line feeds.
    assert [x.params[1] for x in lines] == ["first", "second and more"]
    assert (await late.read_message()).params == ["-" + ref]
    # Without draft/multiline: its non-blank lines, the msgid on the first.
    plain = await server.client("plainh", caps=[*BASE, "draft/chathistory"])
    await plain.send("CHATHISTORY LATEST #test * 10")
    opening = await plain.expect("BATCH")
    got = [m for m in await plain.collect_until("BATCH") if m.command == "PRIVMSG"]
    assert all(m.tags["batch"] == opening.params[0][1:] for m in got)
    assert [(m.params[1], m.tags.get("msgid")) for m in got] == [
        ("first", msgid), ("second and more", None)
    ]


async def test_search_and_redact_treat_it_as_one_message(server: RunningServer) -> None:
    alice, bob, _charlie = await trio(server)
    await send_batch(alice, "#test", ["needle in", "a haystack"])
    start, _ = await read_multiline(bob)
    msgid = start.tags["msgid"]
    searcher = await server.client("searcher", caps=[*ML, "soju.im/search"])
    await searcher.join("#test")
    await searcher.send("SEARCH text=haystack")
    outer = await searcher.expect("BATCH")
    assert outer.params[1] == "soju.im/search"
    found = await searcher.expect("BATCH")
    assert found.params[1] == "draft/multiline" and found.tags["msgid"] == msgid
    # The sender deletes it by its msgid (the batch's): gone from search too.
    await alice.send(f"REDACT #test {msgid} :oops")
    assert (await alice.expect("REDACT")).params[:2] == ["#test", msgid]
    await searcher.send("SEARCH text=haystack")
    outer = await searcher.expect("BATCH")
    assert [m.command for m in await searcher.collect_until("BATCH")] == ["BATCH"]


@pytest.mark.parametrize("server_config", [suite_config(multiline_max_bytes=0)], ids=["off"])
async def test_not_offered_when_off(server: RunningServer) -> None:
    c = await server.client("c", caps=BASE)
    assert not [t for t in await cap_ls(c) if t.startswith("draft/multiline")]
    await c.send("CAP REQ :draft/multiline")
    assert (await c.expect("CAP")).params[1] == "NAK"


@pytest.mark.parametrize(
    "server_config", [config(flood_burst=5, flood_rate=20.0, flood_max_queue=20)],
    ids=["flood-control"],
)
async def test_a_pasted_block_passes_flood_control(server: RunningServer) -> None:
    """26 lines at once (BATCH, 24 lines, BATCH) from a client allowed a burst of 5 and
    20 delayed lines: the batch's lines cost a tenth each, so it is not disconnected."""
    alice, bob, _charlie = await trio(server)
    await send_batch(alice, "#test", [f"line {i}" for i in range(24)])
    _start, lines = await read_multiline(bob)
    assert [m.params[1] for m in lines] == [f"line {i}" for i in range(24)]
    # Plain lines still cost a token each: a flood of them is still one.
    await alice.send_raw(b"".join(b"PRIVMSG #test :flood %d\r\n" % i for i in range(40)))
    closing = await alice.wait_closed()
    assert closing[-1].command == "ERROR" and "Excess Flood" in closing[-1].params[-1]


async def test_a_block_longer_than_a_line_comes_back_whole(server: RunningServer) -> None:
    """The echo and the history replay of a message of many lines (far more than one
    line's 512 bytes in all) are each one batch, every line as sent."""
    alice, bob, _charlie = await trio(server)
    block = [f"{i:02d} " + "z" * 60 for i in range(20)]
    await send_batch(alice, "#test", block)
    start, echo = await read_multiline(alice)
    assert start.tags["label"] == "xyz"
    assert [m.params[1] for m in echo] == block
    await read_multiline(bob)
    late = await server.client("late2", caps=[*ML, "draft/chathistory"])
    await late.send("@label=h CHATHISTORY LATEST #test * 10")
    outer = await late.expect("BATCH")
    assert outer.tags["label"] == "h" and outer.params[1] == "chathistory"
    _inner, lines = await read_multiline(late)
    assert [m.params[1] for m in lines] == block
    assert (await late.read_message()).params == ["-" + outer.params[0][1:]]


async def test_a_labelled_answer_with_more_wraps_the_multiline_batch_whole(
    server: RunningServer,
) -> None:
    """A private multiline message to an away user: the echo and the 301 go back in one
    labeled-response batch, the multiline batch nested in it (its opening and closing
    lines in the outer batch, its PRIVMSGs in its own)."""
    alice = await server.client("alice", caps=ML)
    bob = await server.client("bob", caps=ML)
    await bob.send("AWAY :gone")
    await bob.expect("306")
    await send_batch(alice, "bob", ["one", "two"], opening_tags="label=dm")
    outer = await alice.expect("BATCH")
    assert outer.tags["label"] == "dm" and outer.params[1] == "labeled-response"
    ref = outer.params[0][1:]
    got = await alice.collect_until("BATCH")  # up to the nested batch's opening line
    while got[-1].params[0] != "-" + ref:
        got += await alice.collect_until("BATCH")
    got.pop()  # the labeled-response batch's own end
    for m in got:
        if m.command == "BATCH" or m.command == "301":
            assert m.tags["batch"] == ref, m
        else:
            assert m.command == "PRIVMSG" and m.tags["batch"].startswith("ml"), m
    assert [m.params[1] for m in got if m.command == "PRIVMSG"] == ["one", "two"]
    assert "301" in [m.command for m in got]


def fits(m: Message) -> bool:
    """Whether ``m`` without its tags fits in one line of 512 bytes."""
    return len(Message(m.command, m.params, m.source).to_bytes()) <= 512


async def test_a_line_split_with_concat_replays_whole(server: RunningServer) -> None:
    """A long line a client split with draft/multiline-concat only is stored without a
    line feed: history still replays all of it, in lines that fit (concatenated again
    for draft/multiline clients), not as one line of 800 characters that gets cut."""
    alice, bob, _charlie = await trio(server)
    a, b = "A" * 399, "B" * 400
    await send_batch(alice, "#test", [a, "+" + b])
    start, _ = await read_multiline(bob)
    late = await server.client("late", caps=[*ML, "draft/chathistory"])
    await late.send("CHATHISTORY LATEST #test * 1")
    outer = await late.expect("BATCH")
    inner, lines = await read_multiline(late)
    assert inner.tags["msgid"] == start.tags["msgid"]
    assert joined(lines) == a + b and len(lines) > 1 and all(map(fits, lines))
    assert (await late.read_message()).params == ["-" + outer.params[0][1:]]
    plain = await server.client("plainh", caps=[*BASE, "draft/chathistory"])
    await plain.send("CHATHISTORY LATEST #test * 1")
    await plain.expect("BATCH")
    got = [m for m in await plain.collect_until("BATCH") if m.command == "PRIVMSG"]
    assert "".join(m.params[1] for m in got) == a + b and all(map(fits, got))
    assert got[0].tags["msgid"] == start.tags["msgid"]


def test_a_recovered_long_line_is_relayed_in_lines_that_fit() -> None:
    """The cluster's gap recovery relays a stored line longer than one line as a
    multiline message too: a batch that concatenates, or plain lines."""
    from server.core.history import relay_from_row
    from server.core.state import FORM_MULTILINE
    from server.history.model import StoredMessage

    text = "A" * 399 + "B" * 400
    row = StoredMessage("#c", 1, "a" * 16, 1_795_000_000_000, "bob!b@h", "PRIVMSG", "#c", text)
    relay = relay_from_row(row)
    for form in (0, FORM_MULTILINE):
        lines = [m for m in map(parse, relay.build(form).decode().splitlines())
                 if m.command == "PRIVMSG"]
        assert len(lines) > 1 and all(map(fits, lines))
        assert "".join(m.params[1] for m in lines) == text
