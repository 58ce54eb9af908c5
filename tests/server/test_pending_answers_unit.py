"""What each client waits for from the transport (answers to checks, history reads,
nick claims) is counted per client in the sans-IO core (``ServerCore._waits``, so that
an answer need not scan everything pending): an answer releases only its own client's
held input, and nothing is left counted once the answers are in or the client has gone.
"""

from __future__ import annotations

from collections.abc import Callable

from server.cluster.events import ClaimNick
from server.config import ServerConfig
from server.core import ServerCore
from server.core.handlers.operator import CheckOper
from server.core.history import HistoryRequest
from tests.server.test_playback_order_unit import register, written


def make_core(clock: Callable[[], float] = lambda: 1_800_000_000.0,
              **overrides: object) -> ServerCore:
    settings: dict[str, object] = {
        "name": "test.server", "db": "unused.db", "flood_burst": 0, "scan_burst": 0,
    }
    settings.update(overrides)
    return ServerCore(ServerConfig(**settings), clock=clock)  # type: ignore[arg-type]


def reads(core: ServerCore) -> list[HistoryRequest]:
    return [e for e in core.take_effects() if isinstance(e, HistoryRequest)]


def nothing_pending(core: ServerCore) -> bool:
    return not (core._pending_history or core._waits or core.pending_answers
                or core.nick_pending)


def test_an_answer_releases_only_its_own_clients_held_input() -> None:
    """What a client waits for is counted per client: another's answer does not let its
    held lines go, its own last one does, and nothing is left counted afterwards."""
    core = make_core(opers={"root": "not a hash"})
    register(core, 1, "ann")
    register(core, 2, "bob")
    core.take_effects()
    core.data_received(1, b"JOIN #h\r\n")
    for request in reads(core):
        core.history_ready(request.request_id, rows=[])
    core.data_received(1, b"CHATHISTORY LATEST #h * 5\r\nOPER root pw\r\nPING one\r\n")
    history = reads(core)
    core.data_received(2, b"OPER root pw\r\n")
    checks = [e for e in core.take_effects() if isinstance(e, CheckOper)]
    written(core, 1)
    core.answered(checks[0].check_id, False)  # bob's
    assert written(core, 1) == []
    core.history_ready(history[0].request_id, rows=[])
    # ann's CHATHISTORY answered; her OPER (and the PING after it) waited behind it.
    ann = [e for e in core.take_effects() if isinstance(e, CheckOper)]
    assert len(ann) == 1
    assert not any("PONG" in line for line in written(core, 1))
    core.answered(ann[0].check_id, False)
    assert written(core, 1)[-1].endswith("PONG test.server one")
    core.data_received(1, b"OPER root pw\r\n")
    last = [e for e in core.take_effects() if isinstance(e, CheckOper)]
    core.connection_lost(1)  # gone with a check pending: answered later, forgotten
    core.answered(last[0].check_id, False)
    assert nothing_pending(core)


def test_a_nick_claim_is_counted_and_forgotten() -> None:
    core = make_core(cluster=True, node_id="a", redis="redis://x")
    core.connect(1, "127.0.0.1", 5001)
    core.data_received(1, b"NICK ann\r\nUSER ann 0 * :ann\r\nPING early\r\n")
    claim = [e for e in core.take_effects() if isinstance(e, ClaimNick)][-1]
    assert core._waits[1].input == 1
    core.nick_claim_result(claim.conn_id, claim.nick, claim.folded, True)
    assert written(core, 1)[-1].endswith("PONG test.server early")  # released
    core.data_received(1, b"NICK bob\r\n")
    claim = [e for e in core.take_effects() if isinstance(e, ClaimNick)][-1]
    core.connection_lost(1)
    core.nick_claim_result(claim.conn_id, claim.nick, claim.folded, True)
    assert nothing_pending(core)
