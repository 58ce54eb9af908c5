"""The sans-IO side of clustering: numbering, gaps, snapshots, node loss (no Redis)."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from chat.msgid import encode as encode_msgid
from server.cluster import config_problem
from server.cluster.apply import recovered, recovered_direct, recovered_transit, run_of
from server.cluster.events import Publish, Recover, RecoverDirect, RecoverTransit, Resync
from server.config import ServerConfig
from server.core import ServerCore
from server.history.model import StoredMessage


def make_core(node: str, now: float = 1000.0) -> ServerCore:
    config = ServerConfig(cluster=True, node_id=node, redis="redis://x", flood_burst=0)
    return ServerCore(config, clock=lambda: now)


def register(core: ServerCore, conn: int, nick: str) -> None:
    core.connect(conn, "127.0.0.1", 5000 + conn)
    core.data_received(conn, f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
    claims = core.take_effects()
    claim = claims[-1]
    core.nick_claim_result(claim.conn_id, claim.nick, claim.folded, True)


def relay_events(src: ServerCore, dst: ServerCore) -> list[object]:
    """Hand every event ``src`` published to ``dst``; return dst's effects."""
    for effect in src.take_effects():
        if isinstance(effect, Publish):
            dst.remote_event(effect.event)
    return dst.take_effects()


def recovers(effects: list[object], channel: str) -> bool:
    """A recovery of ``channel`` is among ``effects`` (from whatever floor)."""
    return any(isinstance(e, Recover) and e.channel == channel for e in effects)


def answer_recoveries(core: ServerCore, effects: list[object]) -> None:
    """The store has nothing for the recoveries among ``effects``: each read ends."""
    for effect in effects:
        if isinstance(effect, Recover):
            recovered(core, effect.channel, [])
        elif isinstance(effect, RecoverDirect):
            for account in effect.accounts:
                recovered_direct(core, account, [])
        elif isinstance(effect, RecoverTransit):
            recovered_transit(core, [])


def gone(core: ServerCore, node: str) -> list[object]:
    """``node`` declared gone on ``core``, the recoveries of its end answered (it had
    stored nothing more): its users' QUITs are sent. Returns the effects."""
    core.remote_node_gone(node)
    effects = core.take_effects()
    answer_recoveries(core, effects)
    return effects


def output(core: ServerCore, conn: int) -> bytes:
    client = core.clients[conn]
    data = b"".join(client.out)
    client.out.clear()
    core.take_output()
    return data


def test_events_carry_per_channel_sequence_numbers() -> None:
    a = make_core("a")
    register(a, 1, "alice")
    a.take_effects()
    a.data_received(1, b"JOIN #c\r\nPRIVMSG #c :one\r\nPRIVMSG #c :two\r\n")
    events = [e.event for e in a.take_effects() if isinstance(e, Publish)]
    assert [e["k"] for e in events] == ["join", "msg", "msg"]
    assert [e["c"] for e in events] == [{"#c": 1}, {"#c": 2}, {"#c": 3}]
    assert [e["g"] for e in events] == [2, 3, 4]  # 1 was "up"


def two_nodes_in_a_channel() -> tuple[ServerCore, ServerCore]:
    """Node a with alice (conn 1), node b with bob (conn 1), both in #c, each node
    knowing the other's user; their output so far drained."""
    a, b = make_core("a"), make_core("b")
    register(a, 1, "alice")
    register(b, 1, "bob")
    relay_events(a, b)
    relay_events(b, a)
    a.data_received(1, b"JOIN #c\r\n")
    b.data_received(1, b"JOIN #c\r\n")
    relay_events(a, b)
    relay_events(b, a)
    output(a, 1)
    output(b, 1)
    return a, b


def test_remote_users_are_visible_and_a_gap_triggers_resync_and_recovery() -> None:
    a, b = two_nodes_in_a_channel()
    assert {c.nick for c in b.channels["#c"].members} == {"alice", "bob"}
    a.data_received(1, b"PRIVMSG #c :seen\r\n")
    relay_events(a, b)
    assert b"seen" in output(b, 1)
    a.data_received(1, b"PRIVMSG #c :lost\r\n")
    lost = [e for e in a.take_effects() if isinstance(e, Publish)]  # never reaches b
    a.data_received(1, b"PRIVMSG #c :after\r\n")
    effects = relay_events(a, b)
    assert Resync("a") in effects and recovers(effects, "#c")
    # The message that showed the gap waits for the recovery: it is the newer one.
    assert output(b, 1) == b""
    # The store has the lost message: b delivers it once, then the one held.
    lost_event = lost[0].event
    src, cmd, params, _time, msgid, _tags = lost_event["r"]
    row = StoredMessage("#c", 2, msgid, 1000000, src, cmd, "#c", params[1])
    recovered(b, "#c", [row])
    got = output(b, 1)
    assert got.count(b"lost") == 1 and got.index(b":lost") < got.index(b":after")
    recovered(b, "#c", [row])
    assert output(b, 1) == b""
    a.data_received(1, b"PRIVMSG #c :live again\r\n")
    relay_events(a, b)
    assert b"live again" in output(b, 1)


def test_channel_messages_wait_for_every_recovery_under_way_even_a_failed_one() -> None:
    """Messages that come while a channel is being recovered are held behind what the
    recovery finds; a read that failed releases them all the same (none is lost), and
    with two recoveries under way (two gaps) only the last one releases them."""
    a, b = two_nodes_in_a_channel()
    a.data_received(1, b"PRIVMSG #c :one\r\n")
    relay_events(a, b)
    output(b, 1)
    a.take_effects()
    a.data_received(1, b"PRIVMSG #c :lost\r\n")
    a.take_effects()  # never reaches b
    a.data_received(1, b"PRIVMSG #c :first gap\r\nPRIVMSG #c :during\r\n")
    relay_events(a, b)
    a.data_received(1, b"PRIVMSG #c :lost too\r\n")
    a.take_effects()
    a.data_received(1, b"PRIVMSG #c :second gap\r\n")
    effects = relay_events(a, b)
    assert recovers(effects, "#c")
    assert output(b, 1) == b""
    recovered(b, "#c", None)  # the first read failed: the second is still due
    assert output(b, 1) == b""
    recovered(b, "#c", None)  # so did the second: deliver what came, in order
    got = output(b, 1)
    texts = [line.split(b" :", 1)[1] for line in got.split(b"\r\n") if b"PRIVMSG" in line]
    assert texts == [b"first gap", b"during", b"second gap"]
    assert "#c" not in b.cluster_state.recovering


def test_node_gone_quits_its_users_and_snapshot_restores_them() -> None:
    a, b = make_core("a"), make_core("b")
    register(a, 1, "alice")
    register(b, 1, "bob")
    relay_events(a, b)
    a.data_received(1, b"JOIN #c\r\n")
    b.data_received(1, b"JOIN #c\r\n")
    relay_events(a, b)
    output(b, 1)
    snap = a.cluster_snapshot()
    gone(b, "a")
    assert b"QUIT" in output(b, 1)
    assert "alice" not in b.nicks
    b.remote_snapshot(snap)
    assert b"JOIN #c" in output(b, 1)
    assert {c.nick for c in b.channels["#c"].members} == {"alice", "bob"}


def test_a_stale_snapshot_is_read_again_after_the_next_heartbeat() -> None:
    # b subscribes while a's first events are in flight: it misses alice's "up" and
    # JOIN, sees a later event (a gap), and the snapshot it then reads was written
    # before alice existed. The next heartbeat's snapshot has her: b must read it,
    # or alice never quits on b when a dies.
    a, b = make_core("a"), make_core("b")
    old_snapshot = a.cluster_snapshot()
    register(a, 1, "alice")
    a.data_received(1, b"JOIN #c\r\n")
    missed = a.take_effects()
    assert [e.event["k"] for e in missed if isinstance(e, Publish)] == ["up", "join"]
    register(b, 1, "bob")
    b.take_effects()
    b.data_received(1, b"JOIN #c\r\n")
    b.take_effects()
    b.remote_snapshot(old_snapshot)  # what b reads when it subscribes
    a.data_received(1, b"PRIVMSG #c :hi\r\n")
    effects = relay_events(a, b)
    assert Resync("a") in effects  # the gap
    b.remote_snapshot(old_snapshot)  # still the only one: older than the events seen
    assert "alice" not in b.nicks
    asks = [e.event for e in b.take_effects() if isinstance(e, Publish)]
    assert asks == [{"k": "want", "n": "b", "of": "a"}]  # a writes one at once
    b.remote_snapshot(old_snapshot)
    assert b.take_effects() == []  # asked once per stale episode
    heartbeat = {"k": "hb", "n": "a", "g": a.cluster_snapshot()["g"]}
    b.remote_event(heartbeat)
    assert Resync("a") in b.take_effects()  # same counter, but the snapshot was stale
    b.remote_snapshot(a.cluster_snapshot())
    assert "alice" in b.nicks
    output(b, 1)
    b.remote_event(heartbeat)
    assert Resync("a") not in b.take_effects()  # up to date now: no more reads
    gone(b, "a")
    assert b"QUIT" in output(b, 1)


def ops(core: ServerCore, channel: str) -> set[str]:
    return {m.nick for m, modes in core.channels[channel].members.items() if "o" in modes}


def exchange(a: ServerCore, b: ServerCore) -> None:
    """Both nodes' published events, crossing (neither has seen the other's yet)."""
    from_a = [e.event for e in a.take_effects() if isinstance(e, Publish)]
    from_b = [e.event for e in b.take_effects() if isinstance(e, Publish)]
    for event in from_a:
        b.remote_event(event)
    for event in from_b:
        a.remote_event(event)


def race_to_create(a: ServerCore, b: ServerCore) -> None:
    """alice on a and bob on b both make #c before either hears of the other."""
    register(a, 1, "alice")
    register(b, 1, "bob")
    exchange(a, b)
    a.data_received(1, b"JOIN #c\r\n")
    b.data_received(1, b"JOIN #c\r\n")
    output(a, 1)
    output(b, 1)
    exchange(a, b)


def test_two_nodes_making_one_channel_at_once_end_with_the_older_ones_op() -> None:
    a, b = make_core("a"), make_core("b")  # the same second: node id "a" is older
    race_to_create(a, b)
    assert ops(a, "#c") == ops(b, "#c") == {"alice"}
    assert b"MODE #c -o bob" in output(b, 1)  # bob saw his op taken
    assert b"MODE" not in output(a, 1)  # alice's side never gave bob ops
    assert a.channels["#c"].origin == b.channels["#c"].origin == "a"


def test_the_earlier_creation_wins_whatever_the_node_id() -> None:
    a, b = make_core("a"), make_core("b", now=999.0)
    race_to_create(a, b)
    assert ops(a, "#c") == ops(b, "#c") == {"bob"}
    assert b"MODE #c -o alice" in output(a, 1)
    assert a.channels["#c"].created == b.channels["#c"].created == 999
    # A later join is an ordinary join: no race, no status.
    register(a, 2, "carol")
    relay_events(a, b)
    a.data_received(2, b"JOIN #c\r\n")
    relay_events(a, b)
    assert ops(a, "#c") == ops(b, "#c") == {"bob"}


def test_cluster_config_problems() -> None:
    assert config_problem(ServerConfig(), "select") is None
    assert "redis" in (config_problem(ServerConfig(cluster=True), "asyncio") or "")
    clustered = ServerConfig(cluster=True, redis="redis://x")
    assert "select" in (config_problem(clustered, "select") or "")
    assert config_problem(clustered, "uvloop") is None


def test_an_event_field_may_not_replace_the_envelope() -> None:
    core = make_core("a")
    for reserved in ("k", "n", "g", "c", "u"):
        with pytest.raises(ValueError, match="reserved"):
            core.publish("memo", (), "a:1", **{reserved: 1})
    core.publish("memo", (), "a:1", t="bob", unread=1)
    event = next(e.event for e in core.take_effects() if isinstance(e, Publish))
    assert event["n"] == "a" and event["unread"] == 1


def test_a_topic_change_drops_other_nodes_windows_and_is_never_recovered() -> None:
    """The sender's node stores the change (an event for draft/event-playback): other
    nodes drop their cached window of the channel. A missed one is not replayed from
    the store after a gap: the topic itself comes with the node's snapshot."""
    from server.core.history import HistoryStale

    a, b = two_nodes_in_a_channel()
    a.data_received(1, b"TOPIC #c :fresh\r\n")
    effects = relay_events(a, b)
    assert b":alice" in output(b, 1)
    assert b.history_enabled and HistoryStale("#c") in effects
    a.data_received(1, b"PRIVMSG #c :seen\r\n")
    relay_events(a, b)
    output(b, 1)
    row = StoredMessage("#c", 9, "0" * 16, 1000000, "alice!a@h", "TOPIC", "#c", "lost topic")
    newer = row._replace(msgid="Z" * 16)
    recovered(b, "#c", [newer])
    assert b"lost topic" not in output(b, 1)


@pytest.mark.parametrize(
    "line", ["MODE #c +v carol", "PART #c :bye", "KICK #c carol :out", "NICK alicia", "QUIT :gone"]
)
def test_channel_events_drop_other_nodes_windows_and_are_never_recovered(line: str) -> None:
    """Joins, parts, kicks, quits, nick and mode changes are kept for event playback by
    the node they happened on: the others drop their cached windows of the channel, and
    never replay such a row after a gap (the state comes with the node's snapshot)."""
    from server.core.history import HistoryStale

    a, b = two_nodes_in_a_channel()
    register(a, 2, "carol")
    a.data_received(2, b"JOIN #c\r\n")
    relay_events(a, b)
    a.data_received(1, f"{line}\r\n".encode())
    if line.startswith("NICK"):  # a nick is claimed cluster-wide first
        claim = a.take_effects()[-1]
        a.nick_claim_result(claim.conn_id, claim.nick, claim.folded, True)
    assert HistoryStale("#c") in relay_events(a, b)
    a.data_received(2 if line[0] in "PQ" else 1, b"PRIVMSG #c :seen\r\n")  # by a member
    relay_events(a, b)
    output(b, 1)
    row = StoredMessage("#c", 9, "Y" * 16, 1000000, "x!a@h", line.split()[0], "#c", "x y")
    recovered(b, "#c", [row])
    assert output(b, 1) == b""
    recovered(b, "#c", [row._replace(msgid="Z" * 16, command="PRIVMSG")])
    assert b"PRIVMSG #c :x y" in output(b, 1)  # a message missed would have been


def test_a_join_on_another_node_drops_the_window_unless_events_are_not_kept() -> None:
    from server.core.history import HistoryStale

    for kept in (True, False):
        a, b = two_nodes_in_a_channel()
        b.config = replace(b.config, history_events=kept)
        register(a, 2, "carol")
        relay_events(a, b)
        a.data_received(2, b"JOIN #c\r\n")
        assert (HistoryStale("#c") in relay_events(a, b)) is kept
        a.data_received(1, b"TOPIC #c :always kept\r\n")
        assert HistoryStale("#c") in relay_events(a, b)


@pytest.mark.parametrize("next_contact", ["message", "heartbeat"])
def test_a_message_missed_in_a_channel_with_none_seen_yet_is_recovered(
    next_contact: str,
) -> None:
    """No message of #c had reached b when the first one was lost: b has no msgid to
    recover after, so it recovers from its last contact with a (less clock skew)
    instead of dropping the message for good."""
    a, b = two_nodes_in_a_channel()
    assert "#c" not in b.cluster_state.recent  # type: ignore[union-attr]
    a.data_received(1, b"PRIVMSG #c :lost\r\n")
    lost = [e for e in a.take_effects() if isinstance(e, Publish)]  # never reaches b
    if next_contact == "message":
        a.data_received(1, b"PRIVMSG #c :after\r\n")
        effects = relay_events(a, b)
        assert output(b, 1) == b""  # held: after the recovered one
    else:
        b.remote_event({"k": "hb", "n": "a", "g": a.cluster_state.g})  # type: ignore[union-attr]
        effects = b.take_effects()
    assert recovers(effects, "#c")
    src, cmd, params, _time, msgid, _tags = lost[0].event["r"]
    row = StoredMessage("#c", 3, msgid, 1000000, src, cmd, "#c", params[1])
    older = row._replace(seq=1, msgid="0" * 16, text="from before b's last contact")
    recovered(b, "#c", [older, row])
    got = output(b, 1)
    assert got.count(b"lost") == 1 and b"before" not in got
    if next_contact == "message":
        assert got.index(b":lost") < got.index(b":after")
    recovered(b, "#c", [row])  # once only
    assert output(b, 1) == b""


def test_the_quits_of_a_dead_node_are_kept_once_by_the_lowest_survivor() -> None:
    """A node that died kept no QUIT rows for its users (a graceful stop does): members
    saw them quit, history did not, and a returning user's playback found no departure
    and repeated what it had seen. The surviving node with the lowest id keeps them."""
    from server.core.history import StoreMessage

    a, b = two_nodes_in_a_channel()  # b knows alice, in #c
    c = make_core("c")
    c.remote_snapshot(a.cluster_snapshot())
    c.remote_snapshot(b.cluster_snapshot())
    b.remote_snapshot(c.cluster_snapshot())
    b.take_effects()
    c.take_effects()
    kept = [e.message for e in gone(b, "a") if isinstance(e, StoreMessage)]
    assert [(m.command, m.target, m.text) for m in kept] == [("QUIT", "#c", "*.net *.split")]
    assert kept[0].source.startswith("alice!")
    assert b"QUIT :*.net *.split" in output(b, 1)  # as the members saw it
    c.remote_node_gone("a")
    assert not [e for e in c.take_effects() if isinstance(e, StoreMessage)]  # b keeps them
    # A graceful stop: the node kept its users' QUITs itself.
    a2, b2 = two_nodes_in_a_channel()
    b2.remote_event({"k": "bye", "n": "a", "e": a2.cluster_snapshot()["e"]})
    assert b"QUIT" in output(b2, 1)
    assert not [e for e in b2.take_effects() if isinstance(e, StoreMessage)]


def test_what_a_dead_node_stored_last_is_recovered_before_its_users_quit() -> None:
    """A node killed (kill -9) had stored and echoed messages its publisher had not sent
    yet: neither its death nor its next run recovered them, so users of the other nodes
    never saw them live. Its end is now recovered as a gap is (the channels it shared,
    private messages to users here), and its users' QUIT lines come after what that
    finds: they sent those messages before they quit."""
    from server.cluster.apply import recovered
    from server.core.history import StoreMessage

    a, b = two_nodes_in_a_channel()
    a.remote_snapshot(b.cluster_snapshot())  # (a knows bob)
    a.data_received(1, b"PRIVMSG #c :seen\r\n")
    effects = a.take_effects()
    for effect in effects:
        if isinstance(effect, Publish):
            b.remote_event(effect.event)
    b.take_effects()
    assert b"seen" in output(b, 1)
    a.data_received(1, b"PRIVMSG #c :last words\r\nPRIVMSG bob :last words too\r\n")
    effects += a.take_effects()  # stored, never published: a dies
    rows = [e.message.numbered(n) for n, e in enumerate(effects, 3)
            if isinstance(e, StoreMessage)]
    b.remote_node_gone("a")
    asked = b.take_effects()
    channel = next(e for e in asked if isinstance(e, Recover))
    transit = next(e for e in asked if isinstance(e, RecoverTransit))
    assert channel.channel == "#c"
    assert "alice" not in b.nicks and output(b, 1) == b""  # the QUIT line waits
    recovered(b, "#c", [r for r in rows if r.target == "#c"], since_ms=channel.since_ms,
              came=channel.came)
    assert output(b, 1).endswith(b" PRIVMSG #c :last words\r\n")  # once, "seen" not again
    recovered_transit(b, [r for r in rows if r.target != "#c"], transit.since_ms,
                      came=transit.came)
    got = [line.split(b" ", 2)[1:] for line in output(b, 1).split(b"\r\n") if line]
    assert got == [[b"PRIVMSG", b"bob :last words too"], [b"QUIT", b":*.net *.split"]]


@pytest.mark.parametrize("first", ["playback", "event"])
def test_a_message_in_flight_at_a_join_reaches_the_joiner_once(first: str) -> None:
    """Another node's message stored just before a join here but heard just after it
    was both in the joiner's playback and delivered live: shown twice."""
    from server.core.history import HistoryRequest, StoreMessage

    a, b = two_nodes_in_a_channel()  # b knows alice, in #c
    register(b, 2, "carol")
    b.take_effects()
    a.data_received(1, b"PRIVMSG #c :in flight\r\n")
    effects = a.take_effects()
    event = next(e.event for e in effects if isinstance(e, Publish))
    m = next(e.message for e in effects if isinstance(e, StoreMessage))
    row = m.numbered(1)
    b.data_received(2, b"JOIN #c\r\n")
    request = next(e for e in b.take_effects() if isinstance(e, HistoryRequest))
    if first == "playback":
        b.history_ready(request.request_id, rows=[row])
        b.remote_event(event)
    else:
        b.remote_event(event)
        b.history_ready(request.request_id, rows=[row])
    assert output(b, 2).count(b"in flight") == 1
    assert output(b, 1).count(b"in flight") == 1  # bob, in the channel all along
    a.data_received(1, b"PRIVMSG #c :after\r\n")
    relay_events(a, b)
    assert output(b, 2).count(b"after") == 1


def test_a_node_restarted_under_its_id_is_heard_again() -> None:
    """Restarted within --cluster-dead-after under the same id, a node's counters start
    again: its events used to be dropped as duplicates and its snapshot as stale, for
    good (its new users invisible, its old ones ghosts). A new run resets our view."""
    a, b = two_nodes_in_a_channel()
    for n in range(5):
        a.data_received(1, f"PRIVMSG #c :before {n}\r\n".encode())
    relay_events(a, b)
    output(b, 1)
    again = make_core("a", now=1001.0)  # the same node id, a new run, counters from zero
    assert again.run_id != a.run_id
    register(again, 1, "carol")
    again.data_received(1, b"JOIN #c\r\nPRIVMSG #c :hello again\r\n")
    answer_recoveries(b, relay_events(again, b))  # (of what the old run stored last)
    seen = output(b, 1)
    assert b"alice" in seen and b"QUIT" in seen  # the old run's user is gone
    assert b"JOIN #c" in seen and b"hello again" in seen
    # At once, not after the recovery of what it stored last: its users join again from
    # the new run, and a QUIT after that JOIN would take them off members' lists.
    assert seen.index(b"QUIT") < seen.index(b"JOIN #c")
    assert {c.nick for c in b.channels["#c"].members} == {"bob", "carol"}
    assert "alice" not in b.nicks and "carol" in b.nicks


def test_a_snapshot_of_a_new_run_replaces_the_old_one() -> None:
    a, b = two_nodes_in_a_channel()
    for n in range(3):
        a.data_received(1, f"PRIVMSG #c :m{n}\r\n".encode())
    relay_events(a, b)
    old_snapshot = a.cluster_snapshot()
    again = make_core("a", now=1001.0)
    register(again, 1, "dora")
    again.take_effects()
    b.remote_snapshot(again.cluster_snapshot())
    assert "alice" not in b.nicks and "dora" in b.nicks
    # The earlier run's snapshot, read late (its key not yet overwritten): ignored, or
    # the new run's users would quit and the old ones come back.
    b.remote_snapshot(old_snapshot)
    assert "alice" not in b.nicks and "dora" in b.nicks


def test_a_snapshot_newer_than_the_events_recovers_the_channels_that_moved() -> None:
    """Events published while Redis was away never come; the snapshot read when it is
    back shows their channels' counters ahead of ours: those channels are recovered
    from the store (the counters were taken over silently, the messages lost)."""
    a, b = two_nodes_in_a_channel()
    a.data_received(1, b"PRIVMSG #c :seen\r\n")
    relay_events(a, b)
    output(b, 1)
    a.data_received(1, b"PRIVMSG #c :during the outage\r\n")
    lost = [e for e in a.take_effects() if isinstance(e, Publish)]
    b.remote_snapshot(a.cluster_snapshot())
    assert recovers(b.take_effects(), "#c")
    src, cmd, params, _time, msgid, _tags = lost[0].event["r"]
    recovered(b, "#c", [StoredMessage("#c", 9, msgid, 1000000, src, cmd, "#c", params[1])])
    assert output(b, 1).count(b"during the outage") == 1
    b.remote_snapshot(a.cluster_snapshot())  # nothing moved since: nothing to recover
    assert not recovers(b.take_effects(), "#c")


def test_a_nick_given_on_two_nodes_during_an_outage_goes_to_who_came_first() -> None:
    """Without Redis each node grants nicks locally: two users got "twin". When the
    nodes hear of each other, both decide alike: the one connected first keeps it,
    the other is renamed (told why) and every node learns the new nick."""
    a, b = make_core("a", now=1000.0), make_core("b", now=1001.0)
    register(a, 1, "twin")  # connected first
    register(b, 1, "twin")
    for core in (a, b):
        core.data_received(1, b"JOIN #s\r\n")
    from_a, from_b = (
        [e.event for e in core.take_effects() if isinstance(e, Publish)] for core in (a, b))
    for event in from_a:  # a's user and join reach b: b's twin loses the nick
        b.remote_event(event)
    told = output(b, 1)
    assert b":twin!" in told and b"NICK twin_" in told and b"had it first" in told
    assert b.clients[1].nick == "twin_"
    for event in from_b:  # b's user (still "twin" then) and join reach a: a's keeps it
        a.remote_event(event)
    relay_events(b, a)  # then b's nick change
    assert a.clients[1].nick == "twin"
    for core in (a, b):
        assert {c.nick for c in core.channels["#s"].members} == {"twin", "twin_"}
        assert core.nicks["twin"].nick == "twin" and core.nicks["twin_"].nick == "twin_"
    assert a.nicks["twin"].remote is None and b.nicks["twin"].remote == a.uid(a.clients[1])


def logged_in(core: ServerCore, conn: int, nick: str) -> None:
    """``register``, logged in to the account ``nick`` (as SASL before the welcome)."""
    core.connect(conn, "127.0.0.1", 5000 + conn)
    core.clients[conn].account = nick
    core.data_received(conn, f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
    claim = core.take_effects()[-1]
    core.nick_claim_result(claim.conn_id, claim.nick, claim.folded, True)


def alice_and_bob_logged_in() -> tuple[ServerCore, ServerCore]:
    """Nodes a (alice) and b (bob), both logged in to their accounts, each knowing the
    other's user; bob's output so far taken."""
    a, b = make_core("a"), make_core("b")
    logged_in(a, 1, "alice")
    logged_in(b, 1, "bob")
    ups = [[e.event for e in core.take_effects() if isinstance(e, Publish)] for core in (a, b)]
    for event in ups[0]:
        b.remote_event(event)
    for event in ups[1]:
        a.remote_event(event)
    output(b, 1)
    return a, b


def test_a_private_message_lost_in_a_gap_is_recovered_from_the_store() -> None:
    """Private messages cross nodes only as events: one lost (Redis away) used to be
    lost to its recipient for good. After the gap the recipient's node reads its
    conversations since the last contact and delivers what it was not sent, once."""
    from server.cluster.events import RecoverDirect
    from server.core.history import StoreMessage

    a, b = alice_and_bob_logged_in()
    a.data_received(1, b"PRIVMSG bob :seen live\r\n")
    relay_events(a, b)
    assert b"seen live" in output(b, 1)
    a.data_received(1, b"PRIVMSG bob :lost in the gap\r\nPRIVMSG bob :after\r\n")
    effects = a.take_effects()
    stored = [e.message for e in effects if isinstance(e, StoreMessage)]
    events = [e.event for e in effects if isinstance(e, Publish)]
    b.remote_event(events[1])  # the first never came
    assert output(b, 1) == b""  # the one that showed the gap waits for the recovery
    asked = [e for e in b.take_effects() if isinstance(e, RecoverDirect)]
    assert [e.accounts for e in asked] == [("bob",)]
    rows = [m.numbered(n) for n, m in enumerate(stored, 2)]
    recovered_direct(b, "bob", rows)
    got = output(b, 1)
    assert got.count(b"PRIVMSG bob :lost in the gap") == 1 and got.count(b"after") == 1
    assert got.index(b"lost in the gap") < got.index(b"after")
    recovered_direct(b, "bob", rows)  # once only
    assert output(b, 1) == b""
    # Its own messages (sent from a session elsewhere) are not delivered to it.
    mine = rows[0]._replace(msgid="Z" * 16, tags="account=bob", source="bob2!b@h")
    recovered_direct(b, "bob", [mine])
    assert output(b, 1) == b""


def test_a_private_message_outside_conversations_lost_in_a_gap_is_recovered_once() -> None:
    """Not between two accounts, a private message to a user of another node is kept as
    a transit row only (the recipient's uid as its target, no conversation), which the
    recipient's node reads back after a gap in the sender's events: each row delivered
    once (not what came live), only to the connection it was sent to, and never one
    older than that connection (uids are used again after a node restarts)."""
    from server.cluster.events import RecoverTransit
    from server.core.history import StoreMessage, transit_key

    a, b = make_core("a"), make_core("b")
    register(a, 1, "alice")
    relay_events(a, b)
    for conn, nick in ((1, "bob"), (2, "carol")):
        register(b, conn, nick)
        relay_events(b, a)
    output(b, 1)
    output(b, 2)
    b.data_received(1, b"PRIVMSG carol :same node\r\n")  # no event to lose: not kept
    assert [e for e in b.take_effects() if isinstance(e, StoreMessage)] == []
    assert b"same node" in output(b, 2)
    a.data_received(1, b"PRIVMSG bob :seen live\r\n")
    live = a.take_effects()
    for effect in live:
        if isinstance(effect, Publish):
            assert effect.event["h"] is None  # no conversation's window to drop
            b.remote_event(effect.event)
    assert b"seen live" in output(b, 1)
    a.data_received(1, b"PRIVMSG bob :lost\r\nNOTICE bob :also lost\r\nPRIVMSG bob :after\r\n")
    effects = a.take_effects()
    stored = [e.message for e in [*live, *effects] if isinstance(e, StoreMessage)]
    key = transit_key("b:1", run_of(b))  # bob's uid, and the run of b it is for
    assert key.startswith("%b:1/") and [(m.target, m.dm) for m in stored] == [(key, None)] * 4
    events = [e.event for e in effects if isinstance(e, Publish)]
    b.remote_event(events[2])  # the first two never came
    assert output(b, 1) == b""  # the one that showed the gap waits for the recovery
    asked = [e for e in b.take_effects() if isinstance(e, RecoverTransit)]
    # Read from the last message of a's that came ("seen live"): those lost are newer.
    assert [(e.prefix, e.since_ms) for e in asked] == [("%b:", 1_000_000)]
    rows = [m.numbered(n) for n, m in enumerate(stored, 1)]
    recovered_transit(b, rows)
    got = output(b, 1)
    texts = [line.split(b" :", 1)[1] for line in got.split(b"\r\n") if b" bob :" in line]
    assert texts == [b"lost", b"also lost", b"after"]  # in order, each once
    recovered_transit(b, rows)  # once only
    assert output(b, 1) == b""
    # Older than bob's connection: to an earlier one under the same uid.
    before = rows[0]._replace(msgid="Z" * 16, time_ms=999_999, text="to a former b:1")
    # To a user gone, or to one of another node: nobody here is sent it.
    elsewhere = [rows[0]._replace(msgid="Y" * 16, target="%b:9"),
                 rows[0]._replace(msgid="X" * 16, target="%a:1")]
    recovered_transit(b, [before, *elsewhere])
    assert output(b, 1) == b"" and output(b, 2) == b""
    # Recovered before its event came (read while the event was on its way): the event
    # does not deliver it again.
    a.data_received(1, b"PRIVMSG bob :raced\r\n")
    effects = a.take_effects()
    m = next(e.message for e in effects if isinstance(e, StoreMessage))
    recovered_transit(b, [m.numbered(9)])
    assert output(b, 1).count(b"raced") == 1
    for effect in effects:
        if isinstance(effect, Publish):
            b.remote_event(effect.event)
    assert output(b, 1) == b""


def test_a_private_message_for_a_connection_of_an_earlier_run_reaches_nobody() -> None:
    """A node restarted while the others could not hear it (Redis away): they still
    address its old users, whose uids (``node:conn``) the new run gives to newcomers.
    The live event and the transit row name the run they are for, and neither reaches
    the newcomer with that uid (it was mallory, not alice, who got them)."""
    from server.core.history import StoreMessage

    a, b = make_core("a", now=1020.0), make_core("b", now=1000.0)
    register(a, 1, "bob")
    relay_events(a, b)
    register(b, 1, "alice")
    relay_events(b, a)
    b_again = make_core("b", now=1010.0)  # b restarted: a new run, conn ids from 1 again
    assert run_of(b_again) != run_of(b)
    register(b_again, 1, "mallory")
    b_again.take_effects()
    output(b_again, 1)
    a.data_received(1, b"PRIVMSG alice :for alice only\r\n")  # a knows b's old run only
    effects = a.take_effects()
    event = next(e.event for e in effects if isinstance(e, Publish))
    assert event["to"] == "b:1"
    b_again.remote_event(event)
    live = output(b_again, 1)  # mallory's
    a.data_received(1, b"PRIVMSG alice :lost, for alice only\r\n")  # its event never came
    m = next(e.message for e in a.take_effects() if isinstance(e, StoreMessage))
    row = m.numbered(1)
    assert row.time_ms > b_again.clients[1].connected_at * 1000  # newer than mallory
    recovered_transit(b_again, [row])
    assert (live, output(b_again, 1)) == (b"", b"")
    # The run it was meant for still delivers it (b before its restart).
    recovered_transit(b, [row])
    assert output(b, 1).count(b"PRIVMSG alice :lost, for alice only") == 1
    # An event from a node that sends no run (older code) is delivered as before.
    a.data_received(1, b"PRIVMSG alice :from an older node\r\n")
    event = next(e.event for e in a.take_effects() if isinstance(e, Publish))
    b.remote_event({k: v for k, v in event.items() if k != "tr"})
    recovered_transit(b, [])  # (b missed a's two events before: a gap, now recovered)
    assert b"PRIVMSG alice :from an older node" in output(b, 1)


def test_a_gap_is_recovered_from_when_the_last_event_heard_was_sent() -> None:
    """Redis paused, then resumed, delivers what was sent before the pause late, and
    loses the pause's first events: the recovery window starts at the sending time of
    the last event heard in order (by the sender's clock, ``w``), not its arrival,
    which is after those lost. A channel that had no message here yet gets its floor
    from there too."""
    from server.cluster.events import RecoverTransit

    a, b = make_core("a", now=1000.0), make_core("b", now=1010.0)  # b hears 10 s late
    register(a, 1, "alice")
    relay_events(a, b)
    register(b, 1, "bob")
    relay_events(b, a)
    a.data_received(1, b"JOIN #c\r\n")
    b.data_received(1, b"JOIN #c\r\n")
    relay_events(a, b)
    relay_events(b, a)
    a.data_received(1, b"PRIVMSG bob :sent before the pause\r\n")
    relay_events(a, b)  # came in order, when Redis resumed
    a.data_received(1, b"PRIVMSG bob :lost\r\nPRIVMSG #c :lost\r\nPRIVMSG bob :after\r\n")
    events = [e.event for e in a.take_effects() if isinstance(e, Publish)]
    b.remote_event(events[-1])
    effects = b.take_effects()
    since = 1_000_000 - 5000  # the sending time less clock skew (not 1_010_000 - 5000)
    assert recovers(effects, "#c")
    assert b.cluster_state.recover_from["#c"] == encode_msgid(since << 32)
    # Private messages from the last of a's that came, when later: those lost are newer.
    asked = [(e.prefix, e.since_ms) for e in effects if isinstance(e, RecoverTransit)]
    assert asked == [("%b:", 1_000_000)]
    # A heartbeat in order moves the window's start to its sending time likewise.
    b.remote_event({"k": "hb", "n": "a", "g": events[-1]["g"], "e": events[-1]["e"],
                    "w": 1_000_500})
    assert b.cluster_state.heard_ms["a"] == 1_000_500
    # From a node that sends no time: when the event came, as before.
    b.remote_event({"k": "hb", "n": "a", "g": events[-1]["g"], "e": events[-1]["e"]})
    assert b.cluster_state.heard_ms["a"] == 1_010_000


def test_a_second_recovery_of_many_transit_rows_delivers_none_again() -> None:
    """Each gap brings two recoveries (the heartbeat's and the event's, in different
    ticks). With more rows than the 512 msgids remembered per user, the second one
    delivered every row again (each one remembered pushed out the next to check): a
    recovery now remembers, per sender's msgid generator, the newest row it read since
    when, and skips what is at or below it, live events too."""
    from server.core.history import StoreMessage

    a, b = make_core("a"), make_core("b")
    register(a, 1, "alice")
    relay_events(a, b)
    register(b, 1, "bob")
    relay_events(b, a)
    output(b, 1)
    a.data_received(1, b"".join(b"PRIVMSG bob :lost %d\r\n" % n for n in range(600)))
    effects = a.take_effects()  # none of their events reaches b
    stored = [e.message for e in effects if isinstance(e, StoreMessage)]
    events = [e.event for e in effects if isinstance(e, Publish)]
    rows = [m.numbered(n) for n, m in enumerate(stored, 1)]
    since = 1_000_000 - 5000
    recovered_transit(b, rows, since)
    assert output(b, 1).count(b"PRIVMSG bob :lost ") == 600
    recovered_transit(b, rows, since)  # the gap's second recovery: nothing again
    assert output(b, 1) == b""
    b.remote_event(events[0])  # the first one's event, late: delivered already
    assert output(b, 1) == b""
    # A row newer than the first read is still delivered by a later one, once.
    a.data_received(1, b"PRIVMSG bob :lost after the first read\r\n")
    m = next(e.message for e in a.take_effects() if isinstance(e, StoreMessage))
    newer = m.numbered(601)
    recovered_transit(b, [*rows, newer], since)
    assert output(b, 1).count(b"PRIVMSG bob :lost") == 1


def test_a_second_recovery_of_a_conversation_delivers_none_again() -> None:
    """Between accounts likewise: a second recovery of the same conversation delivered
    again what the first did once over 512 (the msgids remembered per account), and a
    live event that came after its row was recovered was delivered a second time."""
    from server.core.history import StoreMessage

    a, b = alice_and_bob_logged_in()
    a.data_received(1, b"".join(b"PRIVMSG bob :lost %d\r\n" % n for n in range(600)))
    effects = a.take_effects()  # none of their events reaches b
    stored = [e.message for e in effects if isinstance(e, StoreMessage)]
    events = [e.event for e in effects if isinstance(e, Publish) and e.event["k"] == "msg"]
    rows = [m.numbered(n) for n, m in enumerate(stored, 1)]
    since = 1_000_000 - 5000
    recovered_direct(b, "bob", rows, since)
    assert output(b, 1).count(b"PRIVMSG bob :lost ") == 600
    b.remote_event(events[-1])  # the last one's event, late: delivered already
    assert output(b, 1) == b""
    recovered_direct(b, "bob", rows, since)  # the gap's second recovery: nothing again
    assert output(b, 1) == b""
    b.remote_event(events[0])  # the first one's too (no longer among the 512)
    assert output(b, 1) == b""
    a.data_received(1, b"PRIVMSG bob :lost after the first read\r\n")
    m = next(e.message for e in a.take_effects() if isinstance(e, StoreMessage))
    newer = m.numbered(601)
    recovered_direct(b, "bob", [*rows, newer], since)
    assert output(b, 1).count(b"PRIVMSG bob :lost") == 1


def test_a_channel_message_recovered_before_its_event_came_is_not_delivered_again() -> None:
    """A recovery reads the store while later events are still on their way (Redis
    resumed, or a heartbeat that overtook them): the event of a message it delivered
    used to be delivered a second time."""
    a, b = two_nodes_in_a_channel()
    a.data_received(1, b"PRIVMSG #c :seen\r\n")
    relay_events(a, b)
    a.data_received(1, b"PRIVMSG #c :lost\r\nPRIVMSG #c :on its way\r\nPRIVMSG #c :after\r\n")
    effects = a.take_effects()
    events = [e.event for e in effects if isinstance(e, Publish)]
    rows = [StoredMessage("#c", n, e["r"][4], 1_000_000, e["r"][0], "PRIVMSG", "#c",
                          e["r"][2][-1]) for n, e in enumerate(events, 2)]  # fmt: skip
    b.remote_event(events[2])  # the gap shows
    b.take_effects()
    recovered(b, "#c", rows)
    got = output(b, 1)
    assert got.count(b"PRIVMSG #c :lost") == 1 and got.count(b"PRIVMSG #c :on its way") == 1
    b.remote_event(events[1])  # late: older than the gap event, dropped as before
    assert output(b, 1) == b""
    a.data_received(1, b"PRIVMSG #c :raced\r\n")
    event = next(e.event for e in a.take_effects() if isinstance(e, Publish))
    recovered(b, "#c", [*rows, StoredMessage("#c", 9, event["r"][4], 1_000_000, event["r"][0],
                                            "PRIVMSG", "#c", "raced")])
    assert output(b, 1).count(b"raced") == 1
    b.remote_event(event)  # its event, after the recovery delivered it
    assert output(b, 1) == b""


def test_a_private_message_whose_msgid_is_not_ours_is_delivered() -> None:
    """The recovery floors read a msgid's time and generator: an event whose msgid
    another implementation made (not base32 of ours) is delivered all the same, not
    refused as a bad event."""
    a, b = make_core("a"), make_core("b")
    register(a, 1, "alice")
    relay_events(a, b)
    register(b, 1, "bob")
    relay_events(b, a)
    output(b, 1)
    a.data_received(1, b"PRIVMSG bob :odd id\r\n")
    event = next(e.event for e in a.take_effects() if isinstance(e, Publish))
    event["r"][4] = "not-a-msgid!"
    b.remote_event(event)
    assert b"PRIVMSG bob :odd id" in output(b, 1)


def private_texts(data: bytes) -> list[bytes]:
    """The texts of the PRIVMSGs in ``data``, in order."""
    return [line.split(b" :", 1)[1] for line in data.split(b"\r\n") if b" PRIVMSG " in line]


def test_private_messages_wait_for_their_recipients_recovery_even_a_failed_one() -> None:
    """The live private message that showed a gap reached its recipient before the older
    ones the recovery found. Now it waits: one of a conversation for the account's
    recovery, any other for the transit rows'. A failed read releases what it held,
    and a retry after it (nothing was held for it) does not release a later gap's."""
    from server.cluster.events import RecoverDirect, RecoverTransit
    from server.core.history import StoreMessage

    a, b = alice_and_bob_logged_in()
    register(a, 2, "carol")  # no account: her messages to bob are transit rows
    relay_events(a, b)
    output(b, 1)

    def lose(conn: int, text: str) -> StoredMessage:
        a.data_received(conn, f"PRIVMSG bob :{text}\r\n".encode())
        effects = a.take_effects()  # its event never reaches b
        return next(e.message for e in effects if isinstance(e, StoreMessage)).numbered(1)

    lost, lost_too = lose(1, "lost"), lose(2, "lost too")
    a.data_received(1, b"PRIVMSG bob :after\r\n")
    a.data_received(2, b"PRIVMSG bob :after too\r\n")
    effects = relay_events(a, b)
    assert [type(e) for e in effects if isinstance(e, RecoverDirect | RecoverTransit)] == [
        RecoverDirect, RecoverTransit]
    assert output(b, 1) == b""
    recovered_transit(b, None)  # the transit read failed: its live message goes on
    assert private_texts(output(b, 1)) == [b"after too"]
    recovered_direct(b, "bob", [lost])
    assert private_texts(output(b, 1)) == [b"lost", b"after"]
    # A second gap while the first's transit read is tried again.
    lose(2, "lost again")
    a.data_received(2, b"PRIVMSG bob :after again\r\n")
    relay_events(a, b)
    recovered_direct(b, "bob", [])
    recovered_transit(b, [lost_too], held=0)  # the retry: after the live one, as found
    assert private_texts(output(b, 1)) == [b"lost too"]
    recovered_transit(b, [])  # the second gap's read ends: its live message goes on
    assert private_texts(output(b, 1)) == [b"after again"]
    assert b.cluster_state.recovering_private == {}


def test_transit_recoveries_answered_by_one_read_release_together() -> None:
    """Gaps of two nodes in one tick ask for two transit recoveries, which the bus makes
    one read: it ends both holds (counted in ``held``), and a live message waits for it."""

    a, b, c = make_core("a"), make_core("b"), make_core("c")
    register(b, 1, "bob")
    bob_up = [e.event for e in b.take_effects() if isinstance(e, Publish)]
    for sender, nick in ((a, "alice"), (c, "carol")):
        register(sender, 1, nick)
        relay_events(sender, b)
        for event in bob_up:
            sender.remote_event(event)
    output(b, 1)
    for sender in (a, c):
        sender.data_received(1, b"PRIVMSG bob :lost\r\n")
        sender.take_effects()
        sender.data_received(1, b"PRIVMSG bob :showed the gap\r\n")
        relay_events(sender, b)
    assert b.cluster_state.recovering_private["%b:"][0] == 2
    assert output(b, 1) == b""
    recovered_transit(b, [], held=2)
    assert private_texts(output(b, 1)) == [b"showed the gap"] * 2


def test_a_recovery_delivers_none_of_the_many_private_messages_that_came_before_the_gap() -> None:
    """A gap's recovery reads from clock skew (5 s) before the last contact: after a
    Redis outage at 200 messages a second, that is 1,000 that came live, and only the
    512 msgids remembered per account (per user, for transit rows) kept them from being
    delivered again. Now what came from each node's run in order, and every message of
    this node's own, is skipped whatever the count: only the lost ones are delivered."""
    from server.cluster.apply import merge_came
    from server.cluster.events import RecoverDirect, RecoverTransit
    from server.core.history import StoreMessage
    from server.history.model import is_transit

    a, b = alice_and_bob_logged_in()
    register(a, 2, "carol")  # no account: her messages to bob are transit rows
    logged_in(b, 2, "dave")  # on bob's node: his never cross the bus
    relay_events(a, b)
    relay_events(b, a)
    output(b, 1)
    stored = []
    for core, conn in ((a, 1), (a, 2), (b, 2)):
        core.data_received(conn, b"".join(b"PRIVMSG bob :live %d\r\n" % n for n in range(600)))
        effects = core.take_effects()
        stored += [e.message for e in effects if isinstance(e, StoreMessage)]
        for effect in effects:
            if isinstance(effect, Publish) and core is a:
                b.remote_event(effect.event)
    b.take_effects()
    assert len(private_texts(output(b, 1))) == 1800
    a.data_received(1, b"PRIVMSG bob :lost\r\n")
    a.data_received(2, b"PRIVMSG bob :lost\r\nPRIVMSG bob :after\r\n")
    effects = a.take_effects()
    stored += [e.message for e in effects if isinstance(e, StoreMessage)]
    b.remote_event([e.event for e in effects if isinstance(e, Publish)][-1])
    asked = b.take_effects()
    direct = next(e for e in asked if isinstance(e, RecoverDirect))
    transit = next(e for e in asked if isinstance(e, RecoverTransit))
    rows = [m.numbered(n) for n, m in enumerate(stored, 1)]
    recovered_direct(b, "bob", [r for r in rows if not is_transit(r.target)],
                     direct.since_ms, came=direct.came)
    recovered_transit(b, [r for r in rows if is_transit(r.target)], transit.since_ms,
                      came=transit.came)
    assert sorted(private_texts(output(b, 1))) == [b"after", b"lost", b"lost"]
    # One read for two recoveries skips only what both may skip.
    assert merge_came(((1, "B"), (2, "C")), ((1, "A"), (3, "D"))) == ((1, "A"),)


def test_channel_messages_held_during_a_recovery_are_delivered_once_however_many() -> None:
    """At 1,000 messages a second, the messages that came while a channel's recovery
    read the store (held meanwhile) were among the rows it delivered, more than the 512
    msgids remembered per channel: released, the oldest of them were delivered again.
    The recovery now remembers per msgid generator the newest row it read."""
    from server.cluster.apply import recovered
    from server.core.history import StoreMessage

    a, b = two_nodes_in_a_channel()
    a.data_received(1, b"PRIVMSG #c :seen\r\n")
    relay_events(a, b)
    output(b, 1)
    lines = b"".join(b"PRIVMSG #c :during %d\r\n" % n for n in range(600))
    a.data_received(1, b"PRIVMSG #c :lost\r\n" + lines)
    effects = a.take_effects()
    for effect in [e for e in effects if isinstance(e, Publish)][1:]:  # the first is lost
        b.remote_event(effect.event)
    asked = next(e for e in b.take_effects() if isinstance(e, Recover))
    assert output(b, 1) == b""  # held behind the recovery
    stored = [e.message for e in effects if isinstance(e, StoreMessage)]
    rows = [m.numbered(n) for n, m in enumerate(stored, 3)]
    recovered(b, "#c", rows, since_ms=asked.since_ms, came=asked.came)
    texts = [line.split(b" :", 1)[1] for line in output(b, 1).split(b"\r\n") if line]
    assert texts == [b"lost", *(b"during %d" % n for n in range(600))]


@pytest.mark.parametrize(("name", "warned"), [("chat.local", True), ("b.chat.local", False)])
def test_a_node_with_our_server_name_is_a_warning_in_the_log(
    caplog: pytest.LogCaptureFixture, name: str, warned: bool
) -> None:
    """Two nodes left at the default name: LINKS and WHOIS show one server twice."""
    a, b = make_core("a"), make_core("b")
    a.config = replace(a.config, name="chat.local")
    b.config = replace(b.config, name=name)
    with caplog.at_level(logging.WARNING, logger="chat.server.cluster"):
        a.remote_snapshot(b.cluster_snapshot())
        a.remote_snapshot(b.cluster_snapshot())  # (said once)
    said = [r.getMessage() for r in caplog.records if "server name" in r.getMessage()]
    assert said == ([f"cluster: node b has the server name {name}, as node a does: give "
                     "each node its own --name, or LINKS and WHOIS cannot tell them apart"]
                    if warned else [])
