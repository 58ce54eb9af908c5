"""A message's time tag and stored time are its msgid's millisecond (the sans-IO core,
whose clock the test moves: over TCP the clock cannot be stepped back)."""

from __future__ import annotations

from chat.msgid import msgid_ms
from chat.servertime import parse_time
from server.config import ServerConfig
from server.core import ServerCore
from server.core.history import StoreMessage

NOW = [1_800_000_000.0004]


def make_core() -> ServerCore:
    config = ServerConfig(name="test.server", db="unused.db", flood_burst=0,
                          history_playback=0)
    return ServerCore(config, clock=lambda: NOW[0])


def register(core: ServerCore, conn: int, nick: str) -> None:
    core.connect(conn, "127.0.0.1", 5000 + conn)
    core.data_received(conn, (
        "CAP LS 302\r\nCAP REQ :server-time message-tags\r\n"
        f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nCAP END\r\n"
    ).encode())


def received(core: ServerCore, conn: int) -> list[str]:
    """The PRIVMSG lines the transport would write to ``conn`` now (taking them)."""
    client = core.clients[conn]
    lines: list[str] = []
    for flushed in core.take_output():
        if flushed is client:
            lines = b"".join(client.out).decode().split("\r\n")[:-1]
        flushed.out.clear()
    return [line for line in lines if " PRIVMSG " in line]


def tags(line: str) -> dict[str, str]:
    return dict(tag.split("=", 1) for tag in line[1:].split(" ", 1)[0].split(";"))


def test_a_clock_gone_back_moves_neither_times_nor_msgids_back() -> None:
    core = make_core()
    register(core, 1, "alice")
    register(core, 2, "bob")
    core.data_received(1, b"JOIN #c\r\n")
    core.data_received(2, b"JOIN #c\r\n")
    core.take_effects()
    received(core, 1)
    core.data_received(2, b"PRIVMSG #c :first\r\n")
    NOW[0] -= 5  # the wall clock stepped back five seconds
    core.data_received(2, b"PRIVMSG #c :second\r\n")
    NOW[0] += 6
    core.data_received(2, b"PRIVMSG #c :third\r\n")
    stored = [e.message for e in core.take_effects() if isinstance(e, StoreMessage)]
    lines = received(core, 1)
    assert [m.text for m in stored] == ["first", "second", "third"]
    # The store finds a msgid by the millisecond it names: every row's time is that.
    assert [m.time_ms for m in stored] == [msgid_ms(m.msgid) for m in stored]
    first, second, third = (m.time_ms for m in stored)
    assert first == second == 1_800_000_000_000  # held, not five seconds earlier
    assert third == 1_800_000_001_000
    # What alice saw live carries the same msgids and times as the rows.
    seen = [(tags(line)["msgid"], round(parse_time(tags(line)["time"]) * 1000))
            for line in lines]
    assert seen == [(m.msgid, m.time_ms) for m in stored]
