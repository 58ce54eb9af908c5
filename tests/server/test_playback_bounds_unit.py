"""Join playback reads bounded per client and charged to the host's scan budget, in
the sans-IO core (a fake clock, the history reads answered when the test says).

JOIN 50 / JOIN 0 churn kept the one history reader busy with playback reads (third
hostile-user round, finding 1): a client has at most ``PLAYBACK_READS`` of them being
read, the rest wait their turn in join order, and each is paid for from the budget LIST,
WHO and SEARCH pay from. What each client waits for: test_pending_answers_unit.py.
"""

from __future__ import annotations

from server.core import ServerCore
from server.core.core import PLAYBACK_READS
from server.core.history import HistoryRequest
from tests.server.test_pending_answers_unit import make_core as make_bare_core
from tests.server.test_pending_answers_unit import nothing_pending, reads
from tests.server.test_playback_order_unit import register, written

N = 10  # history_playback: without events, what a playback read costs
NOW = [1_800_000_000.0]


def make_core(**overrides: object) -> ServerCore:
    return make_bare_core(lambda: NOW[0], history_playback=N, history_events=False,
                          **overrides)


def channels_read(requests: list[HistoryRequest]) -> list[str]:
    return [r.query.target for r in requests if r.query is not None]


def test_a_client_has_a_few_playback_reads_at_once_the_rest_in_join_order() -> None:
    core = make_core()
    register(core, 1, "pj")
    core.take_effects()
    names = [f"#c{i}" for i in range(PLAYBACK_READS + 3)]
    core.data_received(1, f"JOIN {','.join(names)}\r\n".encode())
    asked = reads(core)
    assert channels_read(asked) == names[:PLAYBACK_READS]
    # Left before its turn: never read.
    core.data_received(1, f"PART {names[PLAYBACK_READS + 1]}\r\n".encode())
    assert reads(core) == []
    core.history_ready(asked[1].request_id, rows=[])
    more = reads(core)
    assert channels_read(more) == [names[PLAYBACK_READS]]  # the next in join order
    for request in [asked[0], *asked[2:], *more]:
        core.history_ready(request.request_id, rows=[])
    assert channels_read(reads(core)) == [names[PLAYBACK_READS + 2]]
    assert core.output_held(core.clients[1])
    core.history_ready(core._history_seq, rows=[])
    assert not core.output_held(core.clients[1])  # every playback in: its output goes
    assert nothing_pending(core)


def test_a_client_gone_with_playbacks_waiting_leaves_nothing_behind() -> None:
    core = make_core()
    register(core, 1, "pj")
    core.take_effects()
    core.data_received(1, f"JOIN {','.join(f'#c{i}' for i in range(9))}\r\n".encode())
    asked = reads(core)
    core.connection_lost(1)
    for request in asked:
        core.history_ready(request.request_id, rows=[])
    assert reads(core) == []  # the waiting ones are not read
    assert nothing_pending(core)


def test_playback_past_the_host_budget_is_skipped_and_told_once_until_it_refills() -> None:
    # Two playbacks' worth at once, one back every 10 s.
    core = make_core(scan_burst=2 * N, scan_rate=N / 10)
    register(core, 1, "pj")
    register(core, 2, "pj2")  # another connection from the same address
    core.take_effects()
    written(core, 1)
    core.data_received(1, b"JOIN #a\r\nJOIN #b\r\n")
    asked = reads(core)
    assert channels_read(asked) == ["#a", "#b"]
    core.data_received(1, b"JOIN #c\r\nJOIN #d\r\n")
    assert reads(core) == []
    core.data_received(2, b"JOIN #e\r\n")  # the budget is the address's
    assert reads(core) == []
    assert [line.split(" :", 1)[0] for line in written(core, 2) if " NOTICE " in line] == [
        ":test.server NOTICE #e"
    ]
    for request in asked:
        core.history_ready(request.request_id, rows=[])
    notices = [line for line in written(core, 1) if " NOTICE " in line]
    assert len(notices) == 1, notices  # once, not at every join
    assert notices[0].startswith(":test.server NOTICE #c :Recent messages in #c were not ")
    assert "CHATHISTORY LATEST #c * 10" in notices[0]
    NOW[0] += 10
    core.data_received(1, b"JOIN #f\r\n")
    assert channels_read(reads(core)) == ["#f"]  # refilled: played back again
    core.data_received(1, b"JOIN #g\r\n")
    assert reads(core) == []
    core.history_ready(core._history_seq, rows=[])
    notices = [line for line in written(core, 1) if " NOTICE " in line]
    assert [n.split(" :", 1)[0] for n in notices] == [":test.server NOTICE #g"]  # told again


def test_operators_playback_is_not_charged() -> None:
    core = make_core(scan_burst=N, scan_rate=0.001)
    register(core, 1, "pj")
    core.clients[1].modes.add("o")
    core.take_effects()
    core.data_received(1, b"JOIN #a,#b,#c\r\n")
    assert channels_read(reads(core)) == ["#a", "#b", "#c"]


def test_a_joins_playback_read_is_marked_as_playback_and_chathistory_is_not() -> None:
    # The store walks a playback read's unserved rows less far (query.walk_limit).
    core = make_core()
    register(core, 1, "pj")
    core.take_effects()
    core.data_received(1, b"JOIN #c\r\n")
    (read,) = reads(core)
    assert read.query is not None and read.query.playback
    core.history_ready(read.request_id, rows=[])
    core.data_received(1, b"CHATHISTORY LATEST #c * 10\r\n")
    (asked,) = reads(core)
    assert asked.query is not None and not asked.query.playback
