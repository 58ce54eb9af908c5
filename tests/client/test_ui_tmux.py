"""Smoke test: the real ``chat-client`` full-screen UI in a tmux pane against our server.

The client runs as a subprocess (``python -m client.cli``) in a private tmux server;
keys go in with ``send-keys`` and the screen comes back with ``capture-pane``. A raw
client on the same server talks to it. Every wait is a poll with a deadline.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prompt_toolkit.utils import get_cwidth

from tests.conftest import RunningServer
from tests.e2e.irc_clients import REPO_ROOT, Tmux
from tests.ircclient import IRCTestClient

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

DEADLINE = 15.0


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path, width=110, height=28)
    try:
        yield t
    finally:
        t.kill()


async def wait_for(tmux: Tmux, check: Callable[[str], bool], what: str) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        screen = tmux.capture()
        if check(screen):
            return screen
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; the pane shows:\n{screen}")
        await asyncio.sleep(0.05)


def start_client(tmux: Tmux, server: RunningServer, tmp_path: Path) -> None:
    tmux.start(
        [
            sys.executable,
            "-m",
            "client.cli",
            "127.0.0.1",
            "--port",
            str(server.port),
            "--nick",
            "tuser",
        ],
        env={
            "PYTHONPATH": str(REPO_ROOT),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),  # no user config file
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
        },
    )


async def test_chat_client_in_tmux(server: RunningServer, tmux: Tmux, tmp_path: Path) -> None:
    start_client(tmux, server, tmp_path)
    await wait_for(tmux, lambda s: "[connected]" in s, "the client to register")
    tmux.type("/join #t")
    tmux.press("Enter")
    await wait_for(tmux, lambda s: "tuser has joined #t" in s, "the join")

    bob = await IRCTestClient.open(server.port)
    try:
        await bob.register("bob")
        await bob.join("#t")
        await bob.send("PRIVMSG #t :hello tuser, from a raw client")
        screen = await wait_for(
            tmux, lambda s: "<bob> hello tuser, from a raw client" in s, "bob's message"
        )
        assert " 2 #t" in screen  # buffer list
        assert "[#t]" in screen  # prompt

        tmux.type("hi bob, typed in tmux")
        tmux.press("Enter")
        msg = await bob.expect("PRIVMSG", lambda m: m.params[0] == "#t")
        assert msg.params[1] == "hi bob, typed in tmux"
        await wait_for(tmux, lambda s: "<@tuser> hi bob, typed in tmux" in s, "own message")

        tmux.type("/quit")
        tmux.press("Enter")
        await bob.expect("QUIT", lambda m: (m.source or "").startswith("tuser!"))
        await wait_for(tmux, lambda s: tmux.pane_dead(), "the client to exit")
        assert "Traceback" not in tmux.capture()
    finally:
        await bob.close()


FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧, a ZWJ sequence
FLAG = "\U0001f1eb\U0001f1f7"  # 🇫🇷, a pair of regional indicators


def cursor_x(tmux: Tmux) -> int:
    result = tmux._run("display-message", "-p", "-t", tmux.target, "#{cursor_x}")
    return int(result.stdout)


def last_row(screen: str) -> str:
    return screen.splitlines()[-1].rstrip()


def cells(text: str) -> int:
    """The cells prompt_toolkit lays ``text`` out in (a code point at a time)."""
    return sum(get_cwidth(ch) for ch in text)


async def test_emoji_sequences_leave_every_cell_where_the_client_counts_it(
    server: RunningServer, tmux: Tmux, tmp_path: Path
) -> None:
    """tmux 3.3 draws a ZWJ sequence or a flag as one 2-cell glyph, where prompt_toolkit
    counts each code point: the cursor it moves relatively would drift, and the rest
    of the row land in the wrong cells. The client draws them so that both agree."""
    start_client(tmux, server, tmp_path)
    await wait_for(tmux, lambda s: "[connected]" in s, "the client to register")
    tmux.type("/join #emoji")
    tmux.press("Enter")
    await wait_for(tmux, lambda s: "tuser has joined #emoji" in s, "the join")
    # Typed in the input line: the terminal's cursor is where the client counts it.
    tmux.type(f"ab{FAMILY}{FLAG}cd")
    screen = await wait_for(tmux, lambda s: "cd" in last_row(s), "the typing")
    assert cursor_x(tmux) == cells(last_row(screen))
    assert last_row(screen) == "[#emoji] ab👨👩👧FRcd"
    tmux.press("C-c")
    bob = await IRCTestClient.open(server.port)
    try:
        await bob.register("bob")
        await bob.join("#emoji")
        await bob.send(f"PRIVMSG #emoji :family {FAMILY} here")
        await bob.send(f"PRIVMSG #emoji :try {FLAG} end")
        screen = await wait_for(tmux, lambda s: "end" in s and "here" in s, "bob's lines")
        assert "<bob> family 👨👩👧 here" in screen  # its parts, 6 cells
        assert "<bob> try FR end" in screen  # the flag's letters, 2 cells
        # A channel named with one: in the buffer list, topic, status line and prompt.
        tmux.type(f"/join #{FAMILY}fam")
        tmux.press("Enter")
        await wait_for(tmux, lambda s: "has joined #👨👩👧fam" in s, "the second join")
        tmux.type("xy")
        screen = await wait_for(tmux, lambda s: last_row(s).endswith("xy"), "the typing")
        assert cursor_x(tmux) == cells(last_row(screen))
        assert last_row(screen) == "[#👨👩👧fam] xy"
        assert "\u200d" not in screen
    finally:
        await bob.close()
