"""Join playback comes before what others say after the join (the sans-IO core, whose
history read is answered when the test says: over TCP the race is not repeatable)."""

from __future__ import annotations

from server.config import ServerConfig
from server.core import ServerCore
from server.core.history import HistoryRequest, StoreMessage
from server.history.model import StoredMessage

NOW = [1_800_000_000.0]


def make_core() -> ServerCore:
    config = ServerConfig(name="test.server", db="unused.db", flood_burst=0,
                          history_playback=10, history_events=False)
    return ServerCore(config, clock=lambda: NOW[0])


def register(core: ServerCore, conn: int, nick: str) -> None:
    core.connect(conn, "127.0.0.1", 5000 + conn)
    core.data_received(conn, f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())


def written(core: ServerCore, conn: int) -> list[str]:
    """What the transport would write to ``conn`` now (taking it, as a flush does)."""
    client = core.clients[conn]
    lines: list[str] = []
    for flushed in core.take_output():  # a flush writes (and empties) every one of them
        if flushed is client:
            lines = b"".join(client.out).decode().split("\r\n")[:-1]
        flushed.out.clear()
    return lines


def answer_all(core: ServerCore, effects: list[object]) -> None:
    """Answer every history read among ``effects`` with nothing."""
    for effect in effects:
        if isinstance(effect, HistoryRequest):
            core.history_ready(effect.request_id, rows=[])


def stored_rows(effects: list[object]) -> list[StoredMessage]:
    messages = [e.message for e in effects if isinstance(e, StoreMessage)]
    return [StoredMessage(m.target, n, m.msgid, m.time_ms, m.source, m.command, m.channel,
                          m.text, m.tags) for n, m in enumerate(messages, 1)]  # fmt: skip


def test_playback_goes_before_what_was_said_after_the_join() -> None:
    """The playback is read from the store after the join, and what others said in the
    meantime reached the joiner first: older lines came below newer ones."""
    core = make_core()
    register(core, 1, "bob")
    register(core, 2, "pj")
    core.data_received(1, b"JOIN #big\r\n")
    core.data_received(2, b"JOIN #big\r\nPART #big\r\n")
    answer_all(core, core.take_effects())
    written(core, 1)
    NOW[0] += 1
    core.data_received(1, b"PRIVMSG #big :older\r\n")
    rows = stored_rows(core.take_effects())
    NOW[0] += 1
    core.data_received(2, b"JOIN #big\r\n")
    request = next(e for e in core.take_effects() if isinstance(e, HistoryRequest))
    core.data_received(1, b"PRIVMSG #big :newer\r\n")
    core.take_effects()
    assert written(core, 2) == []  # held while the playback is read
    core.history_ready(request.request_id, rows=rows)
    got = written(core, 2)
    assert got[0].startswith(":pj!") and " JOIN " in got[0]
    assert [line.split(" :", 1)[-1][-5:] for line in got[-2:]] == ["older", "newer"]
    assert " 366 " in got[-3]
    core.data_received(1, b"PRIVMSG #big :live\r\n")
    assert written(core, 2)[-1].endswith("PRIVMSG #big :live")  # no longer held


def test_a_slow_store_holds_the_joiner_for_a_few_seconds_at_most() -> None:
    core = make_core()
    register(core, 1, "bob")
    register(core, 2, "pj")
    core.data_received(1, b"JOIN #big\r\n")
    answer_all(core, core.take_effects())
    written(core, 1)
    core.data_received(2, b"JOIN #big\r\n")
    request = next(e for e in core.take_effects() if isinstance(e, HistoryRequest))
    written(core, 2)
    core.data_received(1, b"PRIVMSG #big :waiting\r\n")
    assert written(core, 2) == []
    NOW[0] += 6
    core.tick()
    assert any(line.endswith(":waiting") for line in written(core, 2))
    core.history_ready(request.request_id, rows=[])  # late: nothing to add
    assert written(core, 2) == []
