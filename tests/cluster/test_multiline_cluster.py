"""draft/multiline across cluster nodes: the sender's line structure reaches the other
node's users (real Redis, two nodes), and a message lost on the bus is recovered from
the store as one message (sans-IO)."""

from __future__ import annotations

from server.cluster import apply
from server.cluster.events import Publish
from server.history.model import StoredMessage
from tests.cluster.conftest import Cluster
from tests.cluster.test_apply import make_core, output, register, relay_events
from tests.cluster.test_cluster import connect
from tests.server.test_multiline import ML, joined, read_multiline, send_batch

BATCH_LINES = b"BATCH +1 draft/multiline #c\r\n@batch=1 PRIVMSG #c :one\r\n" \
    b"@batch=1 PRIVMSG #c :two \r\n@batch=1;draft/multiline-concat PRIVMSG #c :halves\r\n" \
    b"BATCH -1\r\n"


async def test_a_multiline_message_reaches_the_other_node_as_sent(cluster: Cluster) -> None:
    p1, p2 = cluster.start("n1"), cluster.start("n2")
    # draft/chathistory: no playback batch on JOIN among the messages under test.
    alice = await connect(p1, "alice", [*ML, "draft/chathistory"])
    bob = await connect(p2, "bob", [*ML, "draft/chathistory"])
    carol = await connect(p2, "carol", ["message-tags"])
    await alice.join("#c")
    for c in (bob, carol):
        await c.join("#c")
    await alice.expect("JOIN", lambda m: (m.source or "").startswith("carol!"))
    await send_batch(alice, "#c", ["first", "second ", "+half"])
    echo, _ = await read_multiline(alice)
    start, lines = await read_multiline(bob)
    assert start.tags["msgid"] == echo.tags["msgid"]
    assert [m.params[1] for m in lines] == ["first", "second ", "half"]
    assert joined(lines) == "first\nsecond half"
    fallback = [await carol.expect("PRIVMSG") for _ in range(3)]
    assert [m.params[1] for m in fallback] == ["first", "second ", "half"]
    assert [m.tags.get("msgid") for m in fallback] == [echo.tags["msgid"], None, None]
    # A private one to a user of the other node.
    await send_batch(bob, "alice", ["a", "b"], ref="7", opening_tags="")
    start, lines = await read_multiline(alice)
    assert (start.source or "").startswith("bob!") and joined(lines) == "a\nb"
    for c in (alice, bob, carol):
        await c.close()


def test_a_lost_multiline_message_is_recovered_whole() -> None:
    a, b = make_core("a"), make_core("b")
    register(a, 1, "alice")
    register(b, 1, "bob")
    register(b, 2, "carol")
    a.data_received(1, b"CAP REQ :batch draft/multiline\r\nJOIN #c\r\n")
    b.data_received(1, b"CAP REQ :batch draft/multiline\r\nJOIN #c\r\n")
    b.data_received(2, b"JOIN #c\r\n")
    relay_events(a, b)
    relay_events(b, a)
    for conn in (1, 2):
        output(b, conn)
    a.data_received(1, BATCH_LINES)
    relay_events(a, b)
    seen = output(b, 1)
    assert b"BATCH +ml" in seen and b"draft/multiline-concat" in seen
    assert output(b, 2).count(b"PRIVMSG #c") == 3
    a.data_received(1, BATCH_LINES.replace(b"one", b"lost"))
    lost = [e.event for e in a.take_effects() if isinstance(e, Publish)]  # never reaches b
    a.data_received(1, b"PRIVMSG #c :after\r\n")
    relay_events(a, b)
    assert output(b, 1) == output(b, 2) == b""  # the gap showed: held for the recovery
    src, _cmd, params, _time, msgid, _tags, _lines = lost[0]["r"]
    row = StoredMessage("#c", 3, msgid, 1000000, src, "PRIVMSG", "#c", params[1])
    assert params[1] == "lost\ntwo halves"  # the store keeps the joined text
    apply.recovered(b, "#c", [row])
    recovered, after = output(b, 1).split(b"PRIVMSG #c :after\r\n")
    assert recovered.startswith(b":alice") and b"BATCH +ml" in recovered and after == b""
    assert recovered.count(b"PRIVMSG #c") == 2  # split on its line feed
    recovered, after = output(b, 2).split(b"PRIVMSG #c :after\r\n")
    assert recovered.count(b"PRIVMSG #c") == 2 and after == b""
