"""HELP over real TCP on every backend (704/705/706, 524), and that every command the
server knows has its help."""

from __future__ import annotations

import pytest

from chat.message import MAX_LINE_BODY, Message
from server.config import ServerConfig
from server.core.handlers import COMMANDS
from server.core.handlers.help import ALIASES, OPER_TOPICS, TOPICS, WRAP, wrap_words
from tests.conftest import OPER_NAME, OPER_PASSWORD, RunningServer
from tests.server.helpers import ask, only


@pytest.fixture
def server_config(oper_hash: str) -> ServerConfig:
    return ServerConfig(name="test.server", network="TestNet", opers={OPER_NAME: oper_hash})


def help_lines(msgs: list[Message]) -> list[tuple[str, str, str]]:
    return [(m.command, m.params[1], m.params[-1]) for m in msgs
            if m.command in ("704", "705", "706")]


def test_every_command_has_help() -> None:
    known = set(TOPICS) | set(OPER_TOPICS) | set(ALIASES)
    assert set(COMMANDS) - known == set()


def test_help_lines_fit_a_line_with_a_long_nick() -> None:
    for subject, lines in {**TOPICS, **OPER_TOPICS}.items():
        for text in lines:
            line = Message("705", ["n" * 30, subject.lower(), text], "s" * 63).to_bytes()
            assert len(line) <= MAX_LINE_BODY, (subject, len(line))


async def test_help_index_and_a_topic(server: RunningServer) -> None:
    c = await server.client("helpee")
    index = help_lines(await ask(c, "HELP"))
    assert index[0] == ("704", "*", "Help topics (HELP <topic>):")
    assert index[-1] == ("706", "*", "End of /HELP")
    listed = " ".join(text for cmd, _, text in index if cmd == "705").split()
    assert {"JOIN", "PRIVMSG", "CHANSERV", "CMODES"} <= set(listed)
    assert "KILL" not in listed  # operators' commands, for operators
    join = help_lines(await ask(c, "HELP join"))
    assert join[0][:2] == ("704", "join") and join[0][2].startswith("JOIN <#channel>")
    assert [cmd for cmd, _, _ in join] == ["704", "705", "706"]
    # Aliases, HELPOP.
    assert help_lines(await ask(c, "HELP cs"))[0][1] == "chanserv"
    assert help_lines(await ask(c, "HELPOP MODE"))[0][1] == "mode"


async def test_unknown_and_operator_topics(server: RunningServer) -> None:
    c = await server.client("curious")
    msgs = await ask(c, "HELP frobnicate")
    assert [(m.command, m.params) for m in msgs] == [
        ("524", ["curious", "frobnicate", "No help available on this topic"])]
    assert only(await ask(c, "HELP KILL"), "524")
    assert only(await ask(c, f"OPER {OPER_NAME} :{OPER_PASSWORD}"), "381")
    kill = help_lines(await ask(c, "HELP kill"))
    assert kill[0] == ("704", "kill", "KILL <nick> [:<reason>]")
    index = " ".join(text for _, _, text in help_lines(await ask(c, "HELP")))
    assert "KLINE" in index.split()


def test_wrapped_names_fit_their_lines() -> None:
    names = [f"account{i:02}" + "x" * 20 for i in range(50)]  # ChanServ's longest list
    lines = wrap_words(names)
    assert " ".join(lines).split() == names
    assert all(len(line) <= WRAP for line in lines) and len(lines) > 1
    assert wrap_words([]) == [] and wrap_words(["y" * 400]) == ["y" * 400]
