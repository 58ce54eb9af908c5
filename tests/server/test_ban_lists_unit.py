"""Channel ban lists are matched with each mask compiled once (the sans-IO core): every
message to a channel matches its sender against the b and q lists, and 100 glob bans
cost 0.4 ms a message when each mask was folded and looked up again each time (fourth
hostile-user round, finding 8)."""

from __future__ import annotations

import pytest

from chat import masks
from server.config import ServerConfig
from server.core import ServerCore
from server.core.handlers import channels
from tests.server.test_playback_order_unit import register, written

NOW = 1_800_000_000.0


def make_core() -> ServerCore:
    return ServerCore(ServerConfig(name="test.server", db="", flood_burst=0),
                      clock=lambda: NOW)


def test_each_ban_mask_is_compiled_once_however_many_messages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compiled: list[str] = []

    def counting(mask: str, fold: object) -> masks.Glob:
        compiled.append(mask)
        return masks.compile_mask(mask, fold)  # type: ignore[arg-type]

    monkeypatch.setattr(channels, "compile_mask", counting)
    core = make_core()
    register(core, 1, "op")
    register(core, 2, "Speaker")
    core.data_received(1, b"JOIN #c\r\n")
    core.data_received(2, b"JOIN #c\r\n")
    core.data_received(1, b"MODE #c +bbq *!*@*.evil.example BAD*!*@* *!*quiet@*\r\n")
    written(core, 1)
    for n in range(20):
        core.data_received(2, f"PRIVMSG #c :line {n}\r\n".encode())
    assert sorted(compiled) == ["*!*@*.evil.example", "*!*quiet@*", "BAD*!*@*"]
    heard = written(core, 1)
    assert [line.rsplit(":", 1)[1] for line in heard] == [f"line {n}" for n in range(20)]


def test_a_compiled_ban_still_matches_by_the_casemapping_and_each_sender() -> None:
    core = make_core()
    register(core, 1, "op")
    register(core, 2, "badguy")
    core.data_received(1, b"JOIN #c\r\n")
    core.data_received(2, b"JOIN #c\r\n")
    core.data_received(1, b"MODE #c +b BAD*!*@*\r\n")
    written(core, 1)
    written(core, 2)
    core.data_received(2, b"PRIVMSG #c :first\r\n")  # banned (case-insensitively)
    assert any(" 404 " in line for line in written(core, 2))
    assert not any("first" in line for line in written(core, 1))
    register(core, 3, "goodguy")  # the same compiled mask, another sender
    core.data_received(3, b"JOIN #c\r\nPRIVMSG #c :second\r\n")
    assert any("PRIVMSG #c :second" in line for line in written(core, 1))
    core.data_received(2, b"PRIVMSG #c :third\r\n")  # still banned
    assert not any("third" in line for line in written(core, 1))
