"""The full-screen UI driven headlessly against our real server (in-process).

Keys go in through a prompt_toolkit pipe input (the real vt100 key parser); the
screen comes out through a vt100 output into a StringIO, so a test can read both
what the user would see (the renderer's last screen) and every byte written to the
terminal. Every wait has a deadline; nothing asserts on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output

from client.config import ClientConfig
from client.connection import Connection, ConnectionSettings
from client.model import Buffer, Event, HistoryAdded, Kind
from client.session import Session, SessionConfig
from client.ui.app import ChatUI
from tests.conftest import RunningServer
from tests.ircclient import IRCTestClient

DEADLINE = 10.0

# Keys as a terminal sends them.
ENTER = "\r"
TAB = "\t"
UP = "\x1b[A"
DOWN = "\x1b[B"
PAGE_UP = "\x1b[5~"
PAGE_DOWN = "\x1b[6~"
F7 = "\x1b[18~"
CTRL_N = "\x0e"
CTRL_P = "\x10"
CTRL_Q = "\x11"
CTRL_L = "\x0c"
END = "\x1b[F"
CTRL_END = "\x1b[1;5F"


def alt(key: str) -> str:
    return "\x1b" + key


def _holds(predicate: Callable[[], bool]) -> bool:
    try:
        return predicate()
    except AssertionError:  # e.g. a row that is not drawn yet
        return False


class UIClient:
    """A ChatUI on a real Connection, with a pipe for keys and a StringIO terminal."""

    def __init__(
        self,
        port: int,
        nick: str,
        *,
        rows: int = 30,
        columns: int = 120,
        config: ClientConfig | None = None,
        history_lines: int = 100,
        scrollback: int = 2000,
    ) -> None:
        self.session = Session(
            SessionConfig(nick=nick, history_lines=history_lines, scrollback=scrollback)
        )
        self.conn = Connection(
            self.session,
            ConnectionSettings(
                host="127.0.0.1", port=port, quit_timeout=0.5, backoff_base=0.05, backoff_cap=0.2
            ),
        )
        self.events: list[Event] = []
        self.conn.subscribe(self.events.append)
        self._stack = contextlib.ExitStack()
        self.pipe = self._stack.enter_context(create_pipe_input())
        self.stream = io.StringIO()
        self.size = Size(rows=rows, columns=columns)
        output = Vt100_Output(self.stream, lambda: self.size, term="xterm-256color")
        self.ui = ChatUI(self.conn, config or ClientConfig(), input=self.pipe, output=output)
        self.task: asyncio.Task[int] | None = None

    async def start(self) -> UIClient:
        self.task = asyncio.ensure_future(self.ui.run())
        await self.wait(lambda: self.session.registered, "registration")
        await self.wait_screen("[connected]")
        return self

    # -- the screen

    def screen(self) -> list[str]:
        """The rows the terminal shows now (the renderer's last frame)."""
        scr = self.ui.app.renderer._last_screen
        if scr is None:
            return []
        return [
            "".join(scr.data_buffer[y][x].char for x in range(self.size.columns)).rstrip()
            for y in range(self.size.rows)
        ]

    def text(self) -> str:
        return "\n".join(self.screen())

    def style_of(self, needle: str) -> str:
        """The style of the first screen cell showing ``needle``."""
        scr = self.ui.app.renderer._last_screen
        assert scr is not None
        for y, row in enumerate(self.screen()):
            x = row.find(needle)
            if x >= 0:
                return str(scr.data_buffer[y][x].style)
        raise AssertionError(f"{needle!r} is not on the screen:\n{self.text()}")

    def buffer_row(self, name: str) -> str:
        """The buffer-list row of ``name`` (the sidebar left of the first '│')."""
        for row in self.screen()[1:-2]:
            left = row.split("│", 1)[0]
            if left.split()[1:2] == [name]:
                return left
        raise AssertionError(f"{name} is not in the buffer list:\n{self.text()}")

    # -- waiting and typing

    async def wait(self, predicate: Callable[[], bool], what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while not _holds(predicate):
            if self.task is not None and self.task.done():
                raise AssertionError(f"the UI stopped while waiting for {what}")
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen:\n{self.text()}")
            await asyncio.sleep(0.01)

    async def wait_screen(self, needle: str, present: bool = True) -> None:
        what = f"{needle!r} {'on' if present else 'gone from'} the screen"
        await self.wait(lambda: (needle in self.text()) == present, what)

    def keys(self, data: str) -> None:
        self.pipe.send_text(data)

    async def redrawn(self) -> None:
        """Wait for a redraw that started after this call."""
        app = self.ui.app
        count = app.render_counter
        app.invalidate()
        await self.wait(lambda: app.render_counter > count and not app.invalidated, "a redraw")

    async def press(self, data: str) -> None:
        """Send keys and wait until they are processed and drawn."""
        app = self.ui.app
        count = app.render_counter
        self.keys(data)
        await self.wait(lambda: app.render_counter > count and not app.invalidated, "a redraw")

    async def command(self, text: str) -> None:
        self.keys(text + ENTER)
        await self.wait(lambda: self.ui.input.text == "", f"{text!r} to be sent")

    async def join(self, channel: str) -> Buffer:
        await self.command(f"/join {channel}")

        def joined() -> bool:
            buf = self.session.buffer(channel)
            return buf is not None and buf.joined and not buf.history_loading

        await self.wait(joined, f"join {channel}")
        buf = self.session.buffer(channel)
        assert buf is not None
        return buf

    async def stop(self) -> None:
        try:
            if self.task is not None and not self.task.done():
                self.conn.close("bye")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self.task), DEADLINE)
                if not self.task.done():
                    self.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self.task
        finally:
            self._stack.close()


@pytest.fixture
async def uis() -> AsyncIterator[list[UIClient]]:
    started: list[UIClient] = []
    try:
        yield started
    finally:
        for ui in started:
            await ui.stop()


Raw = Callable[[str], Awaitable[IRCTestClient]]


@pytest.fixture
async def raw(server: RunningServer) -> AsyncIterator[Raw]:
    """Registered raw clients (closed at the end)."""
    opened: list[IRCTestClient] = []

    async def make(nick: str) -> IRCTestClient:
        c = await IRCTestClient.open(server.port)
        opened.append(c)
        await c.register(nick)
        return c

    try:
        yield make
    finally:
        for c in opened:
            await c.close()


async def start_ui(uis: list[UIClient], server: RunningServer, nick: str, **kw: object) -> UIClient:
    ui = UIClient(server.port, nick, **kw)  # type: ignore[arg-type]
    uis.append(ui)
    return await ui.start()


def members_of(ui: UIClient, channel: str) -> set[str]:
    buf = ui.session.buffer(channel)
    return {m.nick for m in buf.members.values()} if buf is not None else set()


# ---------------------------------------------------------------------- tests


async def test_join_send_and_receive(server: RunningServer, uis: list[UIClient], raw: Raw) -> None:
    alice = await start_ui(uis, server, "alice")
    assert alice.buffer_row(alice.session.server.name)  # the server buffer is listed
    assert "\x1b[?1000h" not in alice.stream.getvalue()  # a drag selects text (mouse = false)
    await alice.join("#t")
    await alice.wait_screen("[#t]")  # the prompt names the current buffer
    assert "#t" in alice.buffer_row("#t")
    assert " #t" in alice.screen()[0]  # topic bar

    bob = await raw("bob")
    await bob.join("#t")
    await alice.wait(lambda: "bob" in members_of(alice, "#t"), "bob in #t")
    await alice.wait_screen("2 users")  # nick list header
    # (bob has not spoken: the smart filter hides his join until he does)
    assert "bob has joined #t" not in alice.text()

    alice.keys("hello bob, from the UI" + ENTER)
    msg = await bob.expect("PRIVMSG", lambda m: m.params[0] == "#t")
    assert msg.params[1] == "hello bob, from the UI"
    await alice.wait_screen("<@alice> hello bob, from the UI")

    await bob.send("PRIVMSG #t :hi alice, from a raw client")
    await alice.wait_screen("<bob> hi alice, from a raw client")
    await alice.wait_screen("bob has joined #t")  # he spoke right after joining
    await bob.send("PRIVMSG #t :\x01ACTION waves\x01")
    await alice.wait_screen("* bob waves")


async def test_highlight_is_counted_in_the_buffer_list(
    server: RunningServer,
    uis: list[UIClient],
    raw: Raw,
) -> None:
    alice = await start_ui(uis, server, "alice", config=ClientConfig(bell=True))
    await alice.join("#t")
    await alice.join("#u")  # now current: #t is in the background
    assert alice.session.current.name == "#u"
    bob = await raw("bob")
    await bob.join("#t")
    await alice.wait(lambda: "bob" in members_of(alice, "#t"), "bob in #t")

    await bob.send("PRIVMSG #t :just chatting")
    await alice.wait(lambda: alice.buffer_row("#t").split()[-1] == "1", "1 unread in #t")
    await bob.send("PRIVMSG #t :alice: are you there?")
    await alice.wait(lambda: alice.buffer_row("#t").split()[-2:] == ["2", "!1"], "a highlight")
    await bob.send("PRIVMSG #t :ping alice")
    await alice.wait(lambda: alice.buffer_row("#t").split()[-2:] == ["3", "!2"], "2 highlights")
    assert "class:buffer_highlight" in alice.style_of("!2")
    assert "[Act: 2!]" in alice.screen()[-2]  # status line activity
    assert alice.ui.bells >= 1 and "\x07" in alice.stream.getvalue()  # bell = true

    # Switching there resets the counters; the mention is highlighted in the pane.
    alice.keys(alt("2"))
    await alice.wait_screen("[#t]")
    await alice.wait(lambda: alice.buffer_row("#t").split() == ["2", "#t"], "counters reset")
    assert "class:highlight" in alice.style_of("are you there?")
    assert "class:highlight" not in alice.style_of("just chatting")


async def test_buffer_switching_keys(server: RunningServer, uis: list[UIClient]) -> None:
    alice = await start_ui(uis, server, "alice")
    await alice.join("#t")
    await alice.join("#u")
    s = alice.session
    assert [b.name for b in s.buffers][1:] == ["#t", "#u"]

    alice.keys(alt("2"))
    await alice.wait(lambda: s.current.name == "#t", "Alt+2")
    await alice.wait_screen("[#t]")
    alice.keys(CTRL_N)
    await alice.wait(lambda: s.current.name == "#u", "Ctrl+N")
    alice.keys(CTRL_N)
    await alice.wait(lambda: s.current is s.server, "Ctrl+N wraps around")
    alice.keys(CTRL_P)
    await alice.wait(lambda: s.current.name == "#u", "Ctrl+P")
    alice.keys(alt("1"))
    await alice.wait(lambda: s.current is s.server, "Alt+1")
    alice.keys(alt("9"))  # no ninth buffer: nothing happens
    await alice.command("/win 3")
    await alice.wait(lambda: s.current.name == "#u", "/win 3")
    await alice.wait_screen("[#u]")


async def test_end_keys_scroll_to_the_bottom_and_alt_a_goes_to_activity(
    server: RunningServer, uis: list[UIClient], raw: Raw
) -> None:
    alice = await start_ui(uis, server, "alice", rows=12)
    t = await alice.join("#t")
    bob = await raw("bob")
    await bob.join("#t")
    for i in range(30):
        await bob.send(f"PRIVMSG #t :line-{i:02d}")
    await alice.wait_screen("line-29")
    view = alice.ui.views(t)
    inp = alice.ui.input
    for key in (END, CTRL_END, alt(END)):
        await alice.press(PAGE_UP * 2)
        assert view.offset > 0
        await alice.press(key)
        await alice.wait(lambda: view.offset == 0, f"{key!r}: the bottom")
        await alice.wait_screen("line-29")
    # End in a line with text: the end of that line, the view stays.
    await alice.press(PAGE_UP)
    offset = view.offset
    alice.keys("draft\x1b[H")  # Home
    await alice.wait(lambda: inp.cursor_position == 0, "Home")
    await alice.press(END)
    assert inp.cursor_position == len("draft") and view.offset == offset
    alice.keys("\x15")

    # Alt+A: highlights first, then messages, then other activity.
    await alice.command("/filter all")  # bob's join in #u is activity
    u = await alice.join("#u")
    v = await alice.join("#v")
    await bob.join("#u")
    await bob.join("#v")
    await alice.command("/win 1")
    await bob.send("PRIVMSG #t :just talk")
    await bob.send("PRIVMSG #v :alice: look")
    await alice.wait(lambda: t.unread == 1 and v.highlights == 1 and u.activity, "activity")
    alice.keys(alt("a"))
    await alice.wait(lambda: alice.session.current is v, "Alt+A: the highlight")
    alice.keys(alt("a"))
    await alice.wait(lambda: alice.session.current is t, "Alt+A: the message")
    alice.keys(alt("a"))
    await alice.wait(lambda: alice.session.current is u, "Alt+A: bob's join")
    alice.keys(alt("a") + "x")  # nothing left: stays
    await alice.wait(lambda: inp.text == "x", "x typed")
    assert alice.session.current is u


async def test_meta_digits_switch_buffers_and_never_repeat_or_swallow_keys(
    server: RunningServer, uis: list[UIClient]
) -> None:
    # buffer_3 moved to F3: Alt+3 is bound to no action, which in prompt_toolkit's
    # Emacs mode would be a numeric argument for the next key.
    config = ClientConfig()
    config.keys["buffer_3"] = ("f3",)
    alice = await start_ui(uis, server, "alice", config=config)
    s, inp = alice.session, alice.ui.input
    await alice.join("#t")

    # Alt+0 with no tenth buffer does nothing, and the "/" after it is typed: this is
    # a command, not the message "win 1" to #t.
    alice.keys(alt("0") + "/win 1")
    await alice.wait(lambda: inp.text == "/win 1", "the command typed after Alt+0")
    alice.keys(ENTER)
    await alice.wait(lambda: s.current is s.server, "/win 1 after Alt+0")
    assert not any(line.text == "win 1" for line in s.buffer("#t").lines)  # type: ignore[union-attr]

    alice.keys(alt("3") + "ab" + alt("-") + "cd" + alt("5") + alt("7") + "e")
    await alice.wait(lambda: inp.text == "abcde", "each key typed once")
    alice.keys("\x15")  # Ctrl+U

    for n in range(2, 11):  # buffers 2..10 (the server buffer is 1)
        await alice.join(f"#c{n}")
    assert len(s.buffers) == 11 and s.buffers[9].name == "#c9"
    alice.keys(alt("0"))
    await alice.wait(lambda: s.current.name == "#c9", "Alt+0: the tenth buffer")
    alice.keys("x")
    await alice.wait(lambda: inp.text == "x", "x typed once after Alt+0")


async def test_alt_q_to_o_and_alt_j_reach_the_buffers_past_the_tenth(
    server: RunningServer, uis: list[UIClient]
) -> None:
    alice = await start_ui(uis, server, "alice")
    s, inp = alice.session, alice.ui.input
    for n in range(2, 22):  # buffers 2..21 (the server buffer is 1)
        await alice.command(f"/query q{n}")
    await alice.wait(lambda: len(s.buffers) == 21, "21 buffers")
    alice.keys(alt("q"))
    await alice.wait(lambda: s.current is s.buffers[10], "Alt+Q: buffer 11, as in irssi")
    alice.keys(alt("o"))
    await alice.wait(lambda: s.current is s.buffers[18], "Alt+O: buffer 19")

    # Alt+J and two digits (WeeChat), the status line showing those typed so far, with
    # no deadline between them (a key sequence would be cut after timeoutlen).
    alice.keys(alt("j") + "2")
    await alice.wait_screen("jump to 2_")
    await asyncio.sleep(alice.ui.app.timeoutlen + 0.2)
    alice.keys("1")
    await alice.wait(lambda: s.current is s.buffers[20], "Alt+J 2 1: buffer 21")
    await alice.wait_screen("jump to", present=False)
    assert inp.text == ""
    # Another key ends the jump and is typed, and the digits after it are text too.
    alice.keys(alt("j") + "x5")
    await alice.wait(lambda: inp.text == "x5", "typed after an abandoned jump")
    assert s.current is s.buffers[20]
    alice.keys("\x15")  # Ctrl+U
    alice.keys(alt("j") + "05")
    await alice.wait(lambda: s.current is s.buffers[4], "Alt+J 0 5: buffer 5")
    alice.keys(alt("j") + "99" + "y")  # no 99th buffer: nothing happens
    await alice.wait(lambda: inp.text == "y", "y typed after Alt+J 99")
    assert s.current is s.buffers[4]


async def test_ctrl_v_then_a_letter_types_a_formatting_code_shown_as_caret_sent_as_is(
    server: RunningServer, uis: list[UIClient], raw: Raw
) -> None:
    """Ctrl+V, then B (or Ctrl+B, readline's quoted insert), C, I, U, V, S or O: the mIRC
    code, ^B in reverse video in the input line (as irssi and WeeChat), sent as the byte.
    Ctrl+C then is colour, not clearing the line; any other key ends the prefix."""
    alice = await start_ui(uis, server, "alice")
    inp = alice.ui.input
    await alice.join("#t")
    bob = await raw("bob")
    await bob.join("#t")
    await alice.wait(lambda: "bob" in members_of(alice, "#t"), "bob in #t")

    alice.keys("\x16")  # Ctrl+V
    await alice.wait_screen("format: b c i u v s o")
    await asyncio.sleep(alice.ui.app.timeoutlen + 0.2)  # (no deadline: a mode)
    alice.keys("b" + "bold" + "\x16\x02")  # Ctrl+V Ctrl+B: the same
    await alice.wait(lambda: inp.text == "\x02bold\x02", "^B bold ^B")
    await alice.wait_screen("format:", present=False)
    alice.keys(" \x16\x0304red\x16o \x16x")  # Ctrl+V Ctrl+C: colour; Ctrl+V x: just x
    await alice.wait(lambda: inp.text == "\x02bold\x02 \x0304red\x0f x", "colour and reset")
    await alice.wait_screen("[#t] ^Bbold^B ^C04red^O x")
    attrs = alice.ui.app.style.get_attrs_for_style_str(alice.style_of("^Bbold"))
    assert attrs.reverse  # (the prompt_toolkit default is blue, like any text)
    alice.keys("\x16I\x16_\x16\x1d" + ENTER)  # I (italic), _ (underline), Ctrl+]
    msg = await bob.expect("PRIVMSG", lambda m: m.params[0] == "#t")
    assert msg.params[1] == "\x02bold\x02 \x0304red\x0f x\x1d\x1f\x1d"
    alice.keys("gone")
    await alice.wait(lambda: inp.text == "gone", "gone typed")
    alice.keys("\x03")  # Ctrl+C alone still clears the input line
    await alice.wait(lambda: inp.text == "", "Ctrl+C clearing the line")


async def test_a_refused_input_is_cleared_and_up_brings_it_back(
    server: RunningServer, uis: list[UIClient], raw: Raw
) -> None:
    alice = await start_ui(uis, server, "alice")
    inp = alice.ui.input
    await alice.join("#t")
    bob = await raw("bob")
    await bob.join("#t")
    await alice.wait(lambda: "bob" in members_of(alice, "#t"), "bob in #t")

    typo = "/mgs bob a long message I would hate to type again"
    alice.keys(typo + ENTER)
    await alice.wait_screen("Unknown command /mgs")
    await alice.wait_screen("Up brings it back")
    assert inp.text == ""  # Enter always takes the input away (as WeeChat)...
    # ...so what is typed next is an input of its own, not run on from the refused one.
    alice.keys("sorry, ignore that" + ENTER)
    msg = await bob.expect("PRIVMSG", lambda m: m.params[0] == "#t")
    assert msg.params[1] == "sorry, ignore that"
    alice.keys(UP + UP)  # the refused line is in the input history, to be corrected
    await alice.wait(lambda: inp.text == typo and inp.cursor_position == len(typo), "Up")
    alice.keys("\x03")  # Ctrl+C

    # A bracketed paste (as a terminal sends it), then Enter.
    paste = "/etc/passwd is a file\nand another line"
    alice.keys("\x1b[200~/etc/passwd is a file\r\nand another line\x1b[201~")
    await alice.wait(lambda: "\n" in inp.text, "the paste in the input line")
    alice.keys(ENTER)
    await alice.wait_screen("several lines starting with /etc/passwd")
    assert inp.text == ""
    assert paste in alice.ui.history.entries
    alice.keys("/quit bye" + ENTER)  # a command typed next runs (it was stuck)
    quit_msg = await bob.expect("QUIT")
    assert quit_msg.params == ["Quit: bye"]
    assert alice.task is not None
    assert await asyncio.wait_for(alice.task, DEADLINE) == 0


async def test_up_brings_back_a_refused_paste_and_ctrl_home_slash_sends_it(
    server: RunningServer, uis: list[UIClient], raw: Raw
) -> None:
    alice = await start_ui(uis, server, "alice")
    inp = alice.ui.input
    await alice.join("#t")
    bob = await raw("bob")
    await bob.join("#t")
    await alice.wait(lambda: "bob" in members_of(alice, "#t"), "bob in #t")
    alice.keys("\x1b[200~/etc/passwd is a file\r\nand another line\x1b[201~" + ENTER)
    await alice.wait_screen("several lines starting with /etc/passwd")
    assert inp.text == ""
    alice.keys(UP)
    await alice.wait(lambda: inp.text == "/etc/passwd is a file\nand another line", "Up")
    # Ctrl+Home, another "/" and Enter: // sends it as a message.
    alice.keys("\x1b[1;5H/" + ENTER)
    msg = await bob.expect("PRIVMSG", lambda m: m.params[0] == "#t")
    assert msg.params[1] == "/etc/passwd is a file"
    await alice.wait(lambda: inp.text == "", "the input line cleared once sent")


def paste(text: str) -> str:
    """``text`` as a terminal sends a paste (bracketed paste)."""
    return f"\x1b[200~{text}\x1b[201~"


async def test_a_big_paste_shows_its_line_count_and_waits_for_a_second_enter(
    server: RunningServer, uis: list[UIClient], raw: Raw
) -> None:
    alice = await start_ui(uis, server, "alice")
    inp = alice.ui.input
    await alice.join("#t")
    bob = await raw("bob")
    await bob.join("#t")
    await alice.wait(lambda: "bob" in members_of(alice, "#t"), "bob in #t")
    text = "\n".join(f"pasted {i}" for i in range(6))
    await alice.press(paste(text.replace("\n", "\r\n")))
    # Only its last 5 lines are shown: the prompt says how many there are.
    assert alice.screen()[-5] == "[#t] (6 lines) pasted 1"
    await alice.press(ENTER)
    assert "[send 6 lines? Enter again: yes, Esc: no]" in alice.screen()[-6]
    assert inp.text == text  # not sent: still there
    await alice.press("\x1b")  # Esc: no
    await alice.wait_screen("send 6 lines?", present=False)
    assert inp.text == text
    await alice.press(ENTER)
    await alice.wait_screen("send 6 lines?")
    await alice.press(ENTER)  # yes
    await alice.wait(lambda: inp.text == "", "the paste sent")
    alice.keys("after the paste" + ENTER)  # (5 lines or fewer: no question)
    got: list[str] = []
    while not got or got[-1] != "after the paste":
        got.append((await bob.expect("PRIVMSG")).params[1])
    assert got == [*text.split("\n"), "after the paste"]  # the paste once, in order
    assert alice.screen()[-1] == "[#t]"


async def test_a_refused_password_is_cleared_and_kept_out_of_the_history(
    server: RunningServer, uis: list[UIClient]
) -> None:
    alice = await start_ui(uis, server, "alice")
    inp = alice.ui.input
    await alice.command("/help ns")
    alice.keys("//msg NickServ IDENTIFY hunter2" + ENTER)  # (a / typed before a command)
    await alice.wait_screen("looks like a command")
    assert inp.text == "" and "Up brings it back" not in alice.text()
    alice.keys(UP)
    await alice.wait(lambda: inp.text == "/help ns", "Up: the line before")
    assert all("hunter2" not in entry for entry in alice.ui.history.entries)


async def test_tab_completion_and_input_history(
    server: RunningServer,
    uis: list[UIClient],
    raw: Raw,
) -> None:
    alice = await start_ui(uis, server, "alice")
    await alice.join("#t")
    for nick in ("bob", "bobby"):
        c = await raw(nick)
        await c.join("#t")
    await alice.wait(lambda: {"bob", "bobby"} <= members_of(alice, "#t"), "bob and bobby")
    inp = alice.ui.input

    alice.keys("bo" + TAB)
    await alice.wait(lambda: inp.text in ("bob: ", "bobby: "), "a nick completed")
    first = inp.text
    alice.keys(TAB)  # cycles to the other candidate
    await alice.wait(lambda: inp.text in ("bob: ", "bobby: ") and inp.text != first, "cycling")
    alice.keys("\x15")  # Ctrl+U: clear the line
    await alice.wait(lambda: inp.text == "", "cleared")

    alice.keys("hi bobb" + TAB)
    await alice.wait(lambda: inp.text == "hi bobby ", "a nick completed mid-line")
    alice.keys("\x15/jo" + TAB)
    await alice.wait(lambda: inp.text == "/join ", "a command completed")
    alice.keys("#" + TAB)
    await alice.wait(lambda: inp.text == "/join #t", "a channel completed")
    alice.keys("\x15")

    await alice.command("first line")
    await alice.command("second line")
    alice.keys("draft")
    alice.keys(UP)
    await alice.wait(lambda: inp.text == "second line", "Up recalls the last line")
    alice.keys(UP)
    await alice.wait(lambda: inp.text == "first line", "Up again: the one before")
    alice.keys(DOWN)
    await alice.wait(lambda: inp.text == "second line", "Down")
    alice.keys(DOWN)
    await alice.wait(lambda: inp.text == "draft", "Down past the end restores the draft")


async def test_register_keeps_the_password_off_the_screen_and_out_of_the_history(
    server: RunningServer, uis: list[UIClient]
) -> None:
    alice = await start_ui(uis, server, "alice")
    inp = alice.ui.input
    await alice.command("/help register")
    await alice.command("/register tr0ub4dor&3")
    await alice.wait(lambda: alice.session.account == "alice", "the account")
    await alice.wait_screen("You are now logged in as alice")
    assert "tr0ub4dor" not in alice.text()
    alice.keys(UP)  # the line before /register comes back, not /register
    await alice.wait(lambda: inp.text == "/help register", "Up")
    alice.keys(UP)
    await alice.redrawn()
    assert inp.text == "/help register"  # nothing older


async def test_nickserv_passwords_stay_off_the_screen_and_out_of_the_history(
    server: RunningServer, uis: list[UIClient]
) -> None:
    secret = "s3cret-Pa55word"
    alice = await start_ui(uis, server, "alice")
    s = alice.session
    inp = alice.ui.input
    await alice.command("/help ns")
    await alice.command(f"/ns REGISTER {secret}")
    await alice.wait(lambda: s.account == "alice", "the account")
    await alice.wait_screen("You are now logged in as alice")
    await alice.command("/msg NickServ HELP")  # no password: kept
    await alice.command(f"/msg nickserv SET PASSWORD {secret}2")
    await alice.command(f"/quote NS IDENTIFY alice {secret}")
    await alice.command(f"/m NICKSERV identify {secret}")
    await alice.command("/query NickServ")
    await alice.wait(lambda: s.current.name == "NickServ", "the query")
    await alice.command(f"identify alice {secret}")  # typed in the query
    await alice.command("hello")
    await alice.redrawn()
    assert secret not in alice.text()
    wanted = ["hello", "/query NickServ", "/msg NickServ HELP", "/help ns"]
    for text in wanted:  # Up walks back over the lines without a password only
        alice.keys(UP)

        def recalled(text: str = text) -> bool:
            return inp.text == text

        await alice.wait(recalled, f"Up to {text!r}")
    alice.keys(UP)
    await alice.redrawn()
    assert inp.text == "/help ns"  # nothing older
    assert all(secret not in entry for entry in alice.ui.history.entries)


async def old_lines_in_h(
    server: RunningServer, uis: list[UIClient], raw: Raw
) -> tuple[IRCTestClient, UIClient, Buffer]:
    """bob said old-00 to old-39 in #h; then alice's UI joined it and shows old-39.

    12 rows: a 9-row pane for 10 lines of history (the join, and the latest 9
    messages: the server keeps the join too, and it counts against the 10 asked for).
    """
    bob = await raw("bob")
    await bob.join("#h")
    for i in range(40):
        await bob.send(f"PRIVMSG #h :old-{i:02d}")
    await bob.sync()
    alice = await start_ui(uis, server, "alice", rows=12, columns=100, history_lines=10)
    buf = await alice.join("#h")
    await alice.wait_screen("old-39")
    return bob, alice, buf


async def test_pageup_at_top_loads_older_history_without_moving_the_view(
    server: RunningServer,
    uis: list[UIClient],
    raw: Raw,
) -> None:
    _bob, alice, buf = await old_lines_in_h(server, uis, raw)
    assert "old-30" not in alice.text()
    view = alice.ui.views(buf)

    # Scroll up to the top of what is loaded: no request yet.
    for _ in range(5):
        if view.at_top:
            break
        await alice.press(PAGE_UP)
    await alice.wait(lambda: view.at_top, "the top of the loaded lines")
    await alice.wait_screen("old-31")
    await alice.wait_screen("more:")  # the status line says there is more below
    pane_before = alice.screen()[1:-2]
    seen = len(alice.events)

    def loaded_older() -> bool:
        return any(isinstance(e, HistoryAdded) and e.older for e in alice.events[seen:])

    assert not loaded_older()

    # PageUp at the top: CHATHISTORY BEFORE; the older lines go above, the view stays.
    await alice.press(PAGE_UP)
    await alice.wait(loaded_older, "older history")
    await alice.wait(lambda: not buf.history_loading, "the history batch")
    await alice.redrawn()
    assert alice.screen()[1:-2] == pane_before
    assert next(ln.text for ln in buf.lines if ln.kind is Kind.MESSAGE) == "old-21"

    # The next PageUps show them.
    await alice.press(PAGE_UP)
    await alice.wait_screen("old-23")
    await alice.press(PAGE_UP)
    await alice.wait_screen("old-21")
    assert view.at_top
    alice.keys(PAGE_DOWN * 10)
    await alice.wait_screen("more:", present=False)
    await alice.wait_screen("old-39")


async def test_pageup_at_the_top_of_a_full_scrollback_loads_older_and_end_gives_it_back(
    server: RunningServer, uis: list[UIClient], raw: Raw
) -> None:
    """A full scrollback no longer stops PageUp: at its top it grows a page for older
    history (lines that fell off first); End, back to following new lines, takes it
    back to its size."""
    bob = await raw("bob")
    await bob.join("#h")
    for i in range(40):
        await bob.send(f"PRIVMSG #h :old-{i:02d}")
    await bob.sync()
    alice = await start_ui(uis, server, "alice", rows=12, columns=100, history_lines=10,
                           scrollback=15)  # fmt: skip
    buf = await alice.join("#h")
    for i in range(10):
        await bob.send(f"PRIVMSG #h :new-{i}")
    await bob.sync()
    await alice.wait_screen("new-9")
    assert buf.full and buf.trimmed
    view = alice.ui.views(buf)
    for _ in range(5):
        if view.at_top:
            break
        await alice.press(PAGE_UP)
    await alice.wait(lambda: view.at_top, "the top of the scrollback")
    await alice.press(PAGE_UP)  # at the top: older history, the scrollback full or not
    await alice.wait(lambda: len(buf.lines) > 15 and not buf.history_loading, "older lines")
    await alice.redrawn()
    await alice.press(PAGE_UP)
    await alice.wait_screen("old-33")  # (it had fallen off the top)
    await alice.press(END)
    await alice.wait(lambda: len(buf.lines) == 15, "the scrollback at its size again")
    await alice.wait_screen("new-9")


async def test_at_80_columns_more_below_stays_on_the_status_line_past_a_long_activity_list(
    server: RunningServer, uis: list[UIClient], raw: Raw
) -> None:
    bob = await raw("bob")
    await bob.join("#h")
    for i in range(40):
        await bob.send(f"PRIVMSG #h :old-{i:02d}")
    await bob.sync()
    alice = await start_ui(uis, server, "alice", rows=12, columns=80, history_lines=10)
    h = await alice.join("#h")
    await alice.wait_screen("old-39")
    channels = [f"#c{i}" for i in range(1, 15)]
    for channel in channels:
        await alice.join(channel)
    await alice.command("/win #h")
    await alice.wait(lambda: alice.session.current is h, "back in #h")
    for channel in channels:  # news in buffers 3..16
        await bob.join(channel)
        await bob.send(f"PRIVMSG {channel} :news")
    await bob.sync()
    await alice.wait(lambda: "+" in alice.screen()[-2], "the activity list, shortened")
    await alice.press(PAGE_UP)
    await alice.wait_screen("-- more: ")
    status = alice.screen()[-2]
    assert len(status) <= 80
    assert status.index("-- more: ") < status.index("[Act: "), status
    # The list names the buffers that fit; the others are counted in its +N.
    assert re.search(r"-- more: \d+ below \(PgDn\) -- \[Act: 3(,\d+)*,\+\d+\]$", status), status


async def test_pageup_at_the_top_of_a_cleared_buffer_brings_back_what_clear_took_away(
    server: RunningServer,
    uis: list[UIClient],
    raw: Raw,
) -> None:
    bob, alice, buf = await old_lines_in_h(server, uis, raw)
    view = alice.ui.views(buf)
    seen = len(alice.events)

    def loaded() -> bool:
        return any(isinstance(e, HistoryAdded) for e in alice.events[seen:])

    # Cleared with nothing since: PageUp loads the newest page again.
    await alice.command("/clear")
    await alice.wait_screen("— cleared —")
    assert "old-39" not in alice.text() and view.at_top
    await alice.press(PAGE_UP)
    await alice.wait(loaded, "history")
    await alice.wait(lambda: not buf.history_loading, "the history batch")
    await alice.wait_screen("old-39")
    await alice.redrawn()
    assert "cleared" not in alice.text()

    # Cleared again, then a line: PageUp at the top pages back from it, through what the
    # clear took away, and on to older pages as at the top of any buffer.
    await alice.command("/clear")
    await bob.send("PRIVMSG #h :new-00")
    await alice.wait_screen("new-00")
    assert "old-39" not in alice.text() and view.at_top
    seen = len(alice.events)
    await alice.press(PAGE_UP)
    await alice.wait(loaded, "history")
    await alice.wait(lambda: not buf.history_loading, "the history batch")
    await alice.redrawn()
    await alice.press(PAGE_UP)
    await alice.wait_screen("old-31")
    assert next(ln.text for ln in buf.lines if ln.kind is Kind.MESSAGE) == "old-31"
    assert "cleared" not in alice.text()
    seen = len(alice.events)
    for _ in range(3):
        if view.at_top:
            break
        await alice.press(PAGE_UP)
    await alice.wait(lambda: view.at_top, "the top of the loaded lines")
    await alice.press(PAGE_UP)
    await alice.wait(loaded, "older history")
    await alice.wait(lambda: not buf.history_loading, "the history batch")
    assert next(ln.text for ln in buf.lines if ln.kind is Kind.MESSAGE) == "old-21"


async def test_a_channel_full_of_hidden_joins_shows_its_messages_and_pages_by_them(
    server: RunningServer,
    uis: list[UIClient],
    raw: Raw,
) -> None:
    # 12 rows: a 9-row pane.
    alice = await start_ui(uis, server, "alice", rows=12, columns=100)
    buf = await alice.join("#f")
    bob = await raw("bob")
    await bob.join("#f")
    zed = await raw("zed")  # comes and goes, never says a word
    for i in range(20):
        for _ in range(2):
            await zed.join("#f")
            await zed.send("PART #f")
        await bob.send(f"PRIVMSG #f :line-{i:02d}")
    await bob.sync()
    await alice.wait_screen("line-19")
    assert sum(ln.nick == "zed" for ln in buf.lines) == 80  # kept, not drawn
    pane = "\n".join(alice.screen()[1:-2])
    assert "zed" not in pane and "line-11" in pane and "line-10" not in pane
    assert "more:" not in alice.text()

    # PageUp: the top line drawn becomes the bottom one, past the hidden lines.
    await alice.press(PAGE_UP)
    pane = "\n".join(alice.screen()[1:-2])
    assert "line-03" in pane and "line-11" in pane and "line-12" not in pane
    assert "zed" not in pane
    assert "-- more: 8 below" in alice.text()  # the messages below, not the joins
    await alice.press(PAGE_DOWN)
    await alice.wait_screen("line-19")
    assert "more:" not in alice.text()

    # Shown again for this session: the joins are drawn.
    await alice.command("/filter all")
    await alice.wait_screen("zed has left #f")


async def test_pageup_goes_on_through_history_pages_of_hidden_joins(
    server: RunningServer,
    uis: list[UIClient],
    raw: Raw,
) -> None:
    bob = await raw("bob")
    await bob.join("#g")
    for i in range(5):
        await bob.send(f"PRIVMSG #g :old-{i:02d}")
    zed = await raw("zed")
    for _ in range(20):
        await zed.join("#g")
        await zed.send("PART #g")
    for i in range(2):
        await bob.send(f"PRIVMSG #g :new-{i:02d}")
    await bob.sync()

    # Pages of 10: the latest holds zed's comings and goings (hidden) and the 2 new
    # messages; the older ones only his. Each PageUp at the top asks for the next.
    alice = await start_ui(uis, server, "alice", rows=12, columns=100, history_lines=10)
    buf = await alice.join("#g")
    await alice.wait_screen("new-01")
    view = alice.ui.views(buf)
    for _ in range(8):
        if "old-04" in alice.text():
            break
        assert view.at_top and "zed" not in alice.text()
        await alice.press(PAGE_UP)
        await alice.wait(lambda: not buf.history_loading, "the history batch")
        await alice.redrawn()
    await alice.wait_screen("old-04")
    assert "zed" not in alice.text()
    assert sum(ln.nick == "zed" for ln in buf.lines) == 40


async def test_nicklist_toggles(server: RunningServer, uis: list[UIClient], raw: Raw) -> None:
    alice = await start_ui(uis, server, "alice")
    await alice.join("#t")
    bob = await raw("bob")
    await bob.join("#t")
    await alice.wait_screen("2 users")
    assert "@alice" in alice.text()
    alice.keys(F7)
    await alice.wait_screen("2 users", present=False)
    assert "@alice" not in alice.text()
    alice.keys(F7)
    await alice.wait_screen("2 users")
    # Not shown outside channels.
    alice.keys(alt("1"))
    await alice.wait_screen("2 users", present=False)


def wheel(up: bool, column: int, row: int) -> str:
    """A notch of the mouse wheel at 1-based (column, row), as an xterm (SGR) sends it."""
    return f"\x1b[<{64 if up else 65};{column};{row}M"


async def test_the_mouse_wheel_scrolls_the_nick_list_and_the_message_pane(
    server: RunningServer, uis: list[UIClient], raw: Raw
) -> None:
    # 12 rows: a 9-row pane, and a nick list of the header and 8 rows.
    alice = await start_ui(uis, server, "alice", rows=12, columns=100,
                           config=ClientConfig(mouse=True))  # fmt: skip
    assert "\x1b[?1000h" in alice.stream.getvalue()  # the terminal reports the mouse
    buf = await alice.join("#w")
    others = [await raw(f"u{i:02}") for i in range(12)]
    for other in others:
        await other.join("#w")
    for i in range(20):
        await others[0].send(f"PRIVMSG #w :line-{i:02}")
    await others[0].sync()
    await alice.wait_screen("line-19")
    await alice.wait_screen("13 users")

    def nicks() -> list[str]:
        return [row.rsplit("│", 1)[1].strip() for row in alice.screen()[2:10]]

    assert nicks()[0] == "@alice" and nicks()[-1] == "+6 more"
    right = alice.size.columns  # (the nick list's column)
    await alice.press(wheel(False, right, 4))
    assert nicks()[0] == "↑ 3 more" and nicks()[1] == "u02"
    await alice.press(wheel(False, right, 4) * 5)  # past the end: it stops at the last
    assert nicks()[0] == "↑ 6 more" and nicks()[-1] == "u11"
    await alice.press(wheel(True, right, 4) * 2)
    assert nicks()[0] == "@alice"

    # Over the message pane it scrolls the lines, 3 a notch.
    await alice.press(wheel(True, 40, 4))
    assert "-- more: 3 below" in alice.text() and "line-16" in alice.screen()[-3]
    await alice.press(wheel(False, 40, 4))
    assert "more:" not in alice.text() and "line-19" in alice.screen()[-3]
    assert alice.ui.views(buf).offset == 0
    assert alice.ui.input.text == ""  # (the wheel is no Up or Down: no input history)


async def test_hostile_text_never_reaches_the_terminal(
    server: RunningServer,
    uis: list[UIClient],
    raw: Raw,
) -> None:
    mallory = await raw("mallory")
    await mallory.join("#evil")
    await mallory.send("TOPIC #evil :\x1b]0;PWNED-TOPIC\x07calm \x1b[5mtopic")
    await mallory.sync()
    alice = await start_ui(uis, server, "alice")
    await alice.join("#evil")
    await alice.wait_screen("calm topic")

    payloads = [
        "PRIVMSG #evil :\x1b]0;PWNED-TITLE\x07first \x1b[2J\x1b[Hsecond \x1bcthird",
        "PRIVMSG #evil :\x1b]8;;http://evil.example/\x07link\x1b]8;;\x07 \x9b6n done",
        "PRIVMSG #evil :\x1bP+q544e\x1b\\dcs \x07bell \x08back \x7fdel \u202eRTL",
        "NOTICE #evil :\x1b[1337mnotice \x1b[?1049lscreen",
        "PRIVMSG #evil :\x01ACTION \x1b[31mgrins\x01",
        "PRIVMSG #evil :\x02bold\x02 and \x0304red\x03 and \x1funder\x1f done",
    ]
    for line in payloads:
        await mallory.send(line)
    await alice.wait_screen("bold and red and under done")
    await alice.wait_screen("* mallory grins")
    text = alice.text()
    for visible in ("first second third", "link  done", "dcs bell back del RTL", "notice screen"):
        assert visible in text

    written = alice.stream.getvalue()
    for raw_sequence in (
        "PWNED",
        "\x1b]0;",
        "\x1b]8;",
        "\x1bc",
        "\x9b",
        "\x1bP",
        "\x1b[1337m",
        "\x1b[5m",
        "\x1b[?1049lscreen",
        "\x07",  # no bell: the bell option is off
        "\x08",
        "\x7f",
        "\u202e",
        "\x02",
        "\x03",
        "\x1f",
        "\x01",
    ):
        assert raw_sequence not in written, repr(raw_sequence)
    # mIRC formatting is rendered through styles.
    assert "bold" in alice.style_of("bold and")
    assert "fg:#ff0000" in alice.style_of("red and")
    assert "underline" in alice.style_of("under done")


async def test_rendering_is_bounded_by_the_screen(
    server: RunningServer, uis: list[UIClient]
) -> None:
    alice = await start_ui(uis, server, "alice", rows=20)
    await alice.join("#t")
    renderer = alice.ui.renderer
    buf = alice.session.current
    for i in range(1500):
        alice.session.info(f"line {i}", 0.0, buf)
    before = renderer.formatted
    await alice.redrawn()
    renders = alice.ui.app.render_counter
    alice.conn.flush()  # 1500 LineAdded events: coalesced into one redraw
    await alice.wait_screen("line 1499")
    await alice.redrawn()
    assert alice.ui.app.render_counter - renders <= 3
    # Only the lines that fit on the screen were formatted, not the scrollback.
    assert renderer.formatted - before <= 20
    assert alice.ui.pane.lines_rendered <= 20
    alice.keys(PAGE_UP)
    await alice.wait_screen("more:")
    assert renderer.formatted - before <= 40


async def test_quit_key_exits(server: RunningServer, uis: list[UIClient], raw: Raw) -> None:
    bob = await raw("bob")
    await bob.join("#t")
    alice = await start_ui(uis, server, "alice")
    await alice.join("#t")
    alice.keys(CTRL_Q)
    quit_msg = await bob.expect("QUIT")
    assert quit_msg.source is not None and quit_msg.source.startswith("alice!")
    assert alice.task is not None
    assert await asyncio.wait_for(alice.task, DEADLINE) == 0


async def test_ctrl_q_with_a_line_typed_quits_only_when_pressed_again(
    server: RunningServer, uis: list[UIClient], raw: Raw
) -> None:
    bob = await raw("bob")
    await bob.join("#t")
    alice = await start_ui(uis, server, "alice")
    await alice.join("#t")
    alice.keys("half a line")
    await alice.wait_screen("[#t] half a line")
    await alice.press(CTRL_Q)  # (had it quit, the UI would stop here)
    await alice.wait_screen("[quit and lose the line typed? Ctrl+Q again: yes, Esc: no]")
    await alice.press("!")  # another key: no, and typed
    await alice.wait_screen("quit and lose", present=False)
    assert alice.ui.input.text == "half a line!"
    assert alice.task is not None and not alice.task.done()
    await alice.press(CTRL_Q)
    await alice.wait_screen("quit and lose")
    alice.keys(CTRL_Q)  # yes
    quit_msg = await bob.expect("QUIT")
    assert quit_msg.source is not None and quit_msg.source.startswith("alice!")
    assert await asyncio.wait_for(alice.task, DEADLINE) == 0


async def test_ctrl_l_draws_the_screen_again_and_help_keys_says_so(
    server: RunningServer, uis: list[UIClient]
) -> None:
    alice = await start_ui(uis, server, "alice")
    written = len(alice.stream.getvalue())
    await alice.press(CTRL_L)
    assert "\x1b[2J" in alice.stream.getvalue()[written:]  # erased, then drawn whole
    assert "[connected]" in alice.text()
    await alice.command("/help keys")
    await alice.wait_screen("Ctrl+L")
    row = next(r for r in alice.screen() if "Ctrl+L" in r)
    assert "draw the whole screen again" in row
