"""The full-screen application: layout, input line, history, completion, events.

::

     #chan: topic                                              <- topic bar
      1 server      │12:01 <bob> hi alice             │3 users    <- buffer list,
      2 #chan   4 !1│12:02 --> carol has joined #chan │@alice        message pane,
      3 bob     1 !1│12:03 * alice waves              │ bob          nick list
     [alice] [2:#chan (3)] [lag 12 ms] [Act: 3!]               <- status line
    [#chan] hello wor_                                         <- input line

:func:`run` is what ``chat-client`` calls; tests and the benchmark build a
:class:`ChatUI` with their own prompt_toolkit input and output.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from prompt_toolkit.application import Application
from prompt_toolkit.buffer import Buffer as InputBuffer
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.history import DummyHistory
from prompt_toolkit.input import Input
from prompt_toolkit.layout import (
    ConditionalContainer,
    Dimension,
    HSplit,
    Layout,
    VSplit,
    Window,
)
from prompt_toolkit.layout.controls import BufferControl, FormattedTextControl
from prompt_toolkit.output import Output

from ..commands import secret_input
from ..config import ClientConfig
from ..connection import Connection
from ..model import (
    Buffer,
    BufferChanged,
    BufferCleared,
    BufferClosed,
    CurrentChanged,
    DeliveryChanged,
    Event,
    HistoryAdded,
    LineAdded,
    LineReacted,
    LineRedacted,
)
from .keys import (
    BufferJump,
    Confirm,
    FormatPrefix,
    build_key_bindings,
    describe,
    no_numeric_argument,
)
from .render import (
    DrawnInput,
    Fragments,
    LineRenderer,
    build_style,
    fit,
    nick_palette,
    safe,
    text_width,
)
from .views import (
    BufferList,
    MessagePane,
    NickList,
    Views,
    status_fragments,
    topic_fragments,
)

log = logging.getLogger(__name__)

HISTORY_LIMIT = 500  # input lines remembered for Up/Down
REDRAW_INTERVAL = 0.05  # incoming lines redraw at most 20 times per second...
MAX_REDRAW_INTERVAL = 0.25  # ...or fewer when redraws are slow, but at least 4 times
# Changes out of view (lines in other buffers, their counters) redraw at most ~3 times
# a second: a full redraw for a counter in the buffer list cost a third of a core.
BACKGROUND_REDRAW_INTERVAL = 0.3
BELL_INTERVAL = 1.0  # at most one bell per second
MIN_SIDEBAR_COLUMNS = 50  # narrower terminals hide the buffer list
MIN_NICKLIST_COLUMNS = 70
# An input of more lines (a paste) is sent only after a second Enter, as irssi's
# paste_verify_line_count (5) and WeeChat's paste_max_lines ask first.
PASTE_CONFIRM_LINES = 5


class InputHistory:
    """Lines typed before, for Up/Down; the line being edited is kept as a draft."""

    def __init__(self, limit: int = HISTORY_LIMIT) -> None:
        self.limit = limit
        self.entries: list[str] = []
        self.index: int | None = None  # position while browsing
        self.draft = ""

    def add(self, text: str) -> None:
        if text and (not self.entries or self.entries[-1] != text):
            self.entries.append(text)
            if len(self.entries) > self.limit:
                del self.entries[: len(self.entries) - self.limit]
        self.index = None
        self.draft = ""

    def prev(self, current: str) -> str | None:
        if not self.entries:
            return None
        if self.index is None:
            self.draft = current
            self.index = len(self.entries) - 1
        elif self.index > 0:
            self.index -= 1
        else:
            return None
        return self.entries[self.index]

    def next(self) -> str | None:
        if self.index is None:
            return None
        if self.index < len(self.entries) - 1:
            self.index += 1
            return self.entries[self.index]
        self.index = None
        return self.draft


@dataclass(slots=True)
class _Completing:
    start: int  # where the replaced word starts
    candidates: list[str]
    index: int
    text: str  # the input after the last completion (cycling continues while unchanged)
    cursor: int


class ChatUI:
    """The prompt_toolkit application for one :class:`Connection`."""

    def __init__(
        self,
        connection: Connection,
        config: ClientConfig,
        *,
        input: Input | None = None,
        output: Output | None = None,
        redraw_interval: float = REDRAW_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self.session = connection.session
        self.config = config
        self.views = Views(self.session.hidden)  # (joins and parts the filter hides)
        self._member_versions: dict[Buffer, int] = {}
        self.show_nicklist = config.nicklist
        self.history = InputHistory()
        self._completing: _Completing | None = None
        self._last_bell = 0.0
        self.bells = 0
        self.redraw_interval = redraw_interval
        self.background_interval = BACKGROUND_REDRAW_INTERVAL
        self.clock = clock  # (of the redraw pacing; tests drive it)
        self._redraw_handle: asyncio.TimerHandle | None = None
        self._redraw_background = False  # the redraw waiting is for changes out of view
        self.redraw_at = 0.0  # when it is due (clock time)
        self._last_render = 0.0
        self.render_cost = 0.0  # moving average of a redraw's duration (s)

        style, problems = build_style(config)
        palette = nick_palette(config.nick_colours)
        self.renderer = LineRenderer(config.timestamp_format, len(palette))
        self.pane = MessagePane(self.session, self.renderer, self.views)
        self.pane.on_wheel = self.wheel
        self.buffer_list = BufferList(self.session)
        self.nick_list = NickList(self.session, self._members_version)
        self.input = InputBuffer(
            multiline=False,
            accept_handler=self._accept,
            history=DummyHistory(),
            name="input",
            on_text_changed=self._typed,
        )
        self._typing_handle: asyncio.TimerHandle | None = None
        self.input_window = Window(
            # (Drawn as the rest: an emoji sequence typed or pasted must not shift the row.)
            BufferControl(buffer=self.input, input_processors=[DrawnInput()]),
            width=lambda: Dimension.exact(self._input_width()),
            height=Dimension(min=1, max=5),
            dont_extend_height=True,
            wrap_lines=True,
            style="class:input",
        )
        self.jump = BufferJump(self.switch_to)  # Alt+J NN
        self.format = FormatPrefix(self.insert_text)  # Ctrl+V B: ^B
        self.confirm = Confirm()  # a big paste's second Enter, Ctrl+Q's second press
        key_bindings, key_problems = build_key_bindings(
            self, config.keys, self.jump, self.format
        )
        problems += key_problems
        self.app: Application[int] = Application(
            layout=Layout(self._layout(), focused_element=self.input_window),
            key_bindings=key_bindings,
            style=style,
            full_screen=True,
            mouse_support=config.mouse,  # (the wheel: see MessagePane and NickList)
            input=input,
            output=output,
        )
        # Keys redraw at once (prompt_toolkit invalidates after each key); incoming lines
        # only ask for a redraw at most every `redraw_interval` (see _schedule_redraw).
        self.app.before_render += self._before_render
        self.app.after_render += self._after_render
        self.app.timeoutlen = 0.5  # Alt+N arrives as ESC N: do not wait long for the N
        self.app.ttimeoutlen = 0.05
        self.app.key_processor.after_key_press += no_numeric_argument
        self.app.key_processor.after_key_press += self.jump.after_key_press
        self.app.key_processor.after_key_press += self.format.after_key_press
        self.app.key_processor.after_key_press += self.confirm.after_key_press
        now = time.time()
        for problem in problems:
            self.session.error(f"config: {problem}", now, self.session.server)
        connection.subscribe(self._on_event)
        connection.flush()

    # ------------------------------------------------------------------ layout

    def _layout(self) -> HSplit:
        # Every width is exact: prompt_toolkit then skips its cell-by-cell distribution
        # of spare width, which is a measurable part of a redraw on wide terminals.
        sidebar = ConditionalContainer(
            VSplit(
                [
                    Window(
                        self.buffer_list,
                        width=lambda: Dimension.exact(self.buffer_list.width()),
                        style="class:sidebar",
                    ),
                    Window(width=1, char="│", style="class:separator"),
                ]
            ),
            filter=Condition(self._sidebar_visible),
        )
        nicklist = ConditionalContainer(
            VSplit(
                [
                    Window(width=1, char="│", style="class:separator"),
                    Window(
                        self.nick_list,
                        width=lambda: Dimension.exact(self.nick_list.width()),
                    ),
                ]
            ),
            filter=Condition(self._nicklist_visible),
        )
        pane = Window(
            self.pane,
            width=lambda: Dimension.exact(self._pane_width()),
            wrap_lines=False,
        )
        return HSplit(
            [
                Window(
                    FormattedTextControl(self._topic),
                    height=1,
                    style="class:topic_bar",
                    wrap_lines=False,
                ),
                VSplit([sidebar, pane, nicklist]),
                Window(
                    FormattedTextControl(self._status),
                    height=1,
                    style="class:status_bar",
                    wrap_lines=False,
                ),
                VSplit(
                    [
                        Window(
                            FormattedTextControl(self._prompt),
                            width=lambda: Dimension.exact(self._prompt_width()),
                            style="class:prompt",
                        ),
                        self.input_window,
                    ]
                ),
            ]
        )

    def _columns(self) -> int:
        return self.app.output.get_size().columns

    def _sidebar_visible(self) -> bool:
        return self._columns() >= MIN_SIDEBAR_COLUMNS

    def _nicklist_visible(self) -> bool:
        return (
            self.show_nicklist
            and self.session.current.is_channel
            and self._columns() >= MIN_NICKLIST_COLUMNS
        )

    def _pane_width(self) -> int:
        width = self._columns()
        if self._sidebar_visible():
            width -= self.buffer_list.width() + 1
        if self._nicklist_visible():
            width -= self.nick_list.width() + 1
        return max(1, width)

    def _prompt_text(self) -> str:
        prompt = fit(f"[{safe(self.session.current.name)}] ", max(1, self._columns() // 3))
        lines = self.input.text.count("\n") + 1
        # (The input line shows its last 5 lines: the count says how much more there is.)
        return prompt + f"({lines} lines) " if lines > 1 else prompt

    def _prompt_width(self) -> int:
        return text_width(self._prompt_text())

    def _input_width(self) -> int:
        return max(1, self._columns() - self._prompt_width())

    def _topic(self) -> Fragments:
        return topic_fragments(self.session)

    def _status(self) -> Fragments:
        now = time.time()
        jump: Fragments = []
        if self.jump.digits is not None:  # Alt+J: the digits so far
            jump = [("", " ["), ("class:pending", f"jump to {self.jump.digits:_<2}"), ("", "]")]
        elif self.format.active:  # Ctrl+V: the keys it takes next
            jump = [("", " ["), ("class:pending", "format: b c i u v s o"), ("", "]")]
        elif self.confirm.question:  # a big paste, or a quit with a line typed
            jump = [("", " ["), ("class:pending", self.confirm.question), ("", "]")]
        frags = status_fragments(
            self.session, self.views, more_key=describe(self.config.keys, "scroll_down"),
            now=now, sending=self.connection.queued,
            width=self._columns() - sum(text_width(f[1]) for f in jump),
        )
        frags += jump
        typing = self.session.current.typing
        if typing:  # redraw when the first notice runs out, so "is typing" goes away
            until = min(u for _, _, u in typing.values())
            with contextlib.suppress(RuntimeError):
                loop = asyncio.get_running_loop()
                if self._typing_handle is not None:
                    self._typing_handle.cancel()
                self._typing_handle = loop.call_later(
                    max(until - now, 0.0) + 0.05, self.app.invalidate
                )
        return frags

    def _typed(self, buff: InputBuffer) -> None:
        self.connection.typed(buff.text)

    def _prompt(self) -> Fragments:
        return [("class:prompt", self._prompt_text())]

    def _members_version(self, buffer: Buffer) -> int:
        return self._member_versions.get(buffer, 0)

    # ------------------------------------------------------------------ events

    def _on_event(self, event: Event) -> None:
        """Connection events: cheap bookkeeping, then one (coalesced) redraw request."""
        background = False  # only what is out of view changed: redraw at a slower pace
        if isinstance(event, LineAdded):
            self.views.line_added(event.buffer)
            line = event.line
            alert = line.highlight and not line.own and not line.history
            if alert and self.config.bell:
                self.bell()
            # (A highlight or a private message shows in the buffer list at once.)
            background = event.buffer is not self.session.current and not alert
        elif isinstance(event, HistoryAdded):
            self.views.history_added(event)
            background = event.buffer is not self.session.current
        elif isinstance(event, (LineRedacted, LineReacted, DeliveryChanged)):
            background = event.buffer is not self.session.current
        elif isinstance(event, BufferChanged):
            buf = event.buffer
            self._member_versions[buf] = self._member_versions.get(buf, 0) + 1
            background = buf is not self.session.current  # (its counters, members...)
        elif isinstance(event, BufferClosed):
            self.views.forget(event.buffer)
            self._member_versions.pop(event.buffer, None)
        elif isinstance(event, BufferCleared):
            self.views.bottom(event.buffer)
        elif isinstance(event, CurrentChanged):
            self._completing = None
        self._schedule_redraw(background)

    def _schedule_redraw(self, background: bool = False) -> None:
        """Redraw soon, but not more often than every ``redraw_interval`` seconds.

        At 1000 incoming lines per second every line asks for a redraw; this turns them
        into a steady ~20 redraws per second. When redraws are slow (a big terminal, a
        slow or busy machine) the interval grows so that redraws caused by incoming
        lines take at most about a third of the time (up to MAX_REDRAW_INTERVAL). Key
        presses are not throttled: they redraw at once, and that redraw shows the new
        lines too. A ``background`` change (out of view: another buffer's lines and
        counters) waits at least ``background_interval``: it only changes a number in
        the buffer list or the status line, and any redraw before shows it as well.
        """
        if self.app.invalidated:
            return
        if self._redraw_handle is not None:
            if background or not self._redraw_background:
                return
            self._redraw_handle.cancel()  # something in view: no waiting for the slow one
            self._redraw_handle = None
        interval = min(MAX_REDRAW_INTERVAL, max(self.redraw_interval, 3 * self.render_cost))
        if background:
            interval = max(interval, self.background_interval)
        now = self.clock()
        wait = self._last_render + interval - now
        if wait <= 0:
            self.app.invalidate()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.app.invalidate()
            return
        self._redraw_handle = loop.call_later(wait, self._deferred_redraw)
        self._redraw_background = background
        self.redraw_at = now + wait

    def _deferred_redraw(self) -> None:
        self._redraw_handle = None
        self.app.invalidate()

    def _after_render(self, _: object) -> None:
        cost = self.clock() - self._last_render
        self.render_cost = cost if not self.render_cost else 0.8 * self.render_cost + 0.2 * cost

    def _before_render(self, _: object) -> None:
        self._last_render = self.clock()
        if self._redraw_handle is not None:  # this redraw shows everything anyway
            self._redraw_handle.cancel()
            self._redraw_handle = None

    def bell(self) -> None:
        now = time.monotonic()
        if now - self._last_bell < BELL_INTERVAL:
            return
        self._last_bell = now
        self.bells += 1
        with contextlib.suppress(Exception):
            self.app.output.bell()
            self.app.output.flush()

    # ------------------------------------------------------------------ actions (keys)

    def _accept(self, buff: InputBuffer) -> bool:
        """Enter: the input line is run or sent, and always cleared (as WeeChat): one
        refused (an unknown command, a paste starting with "/") goes into the input
        history, and the error line says that Up brings it back to be corrected. Left
        in the input line, whatever was typed next ran on from it, refused again.
        More than PASTE_CONFIRM_LINES lines (a paste) wait for a second Enter."""
        text = buff.text
        current = self.session.current
        self._completing = None
        lines = text.count("\n") + 1
        if lines > PASTE_CONFIRM_LINES and not self.confirm.confirmed(("send", text)):
            self.confirm.ask(f"send {lines} lines? Enter again: yes, Esc: no", ("send", text))
            return True  # kept in the input line
        # No passwords in the history (nor "//msg NickServ IDENTIFY pw", refused).
        secret = secret_input(text, current) or (
            text.startswith("//") and secret_input(text[1:], current))
        key = describe(self.config.keys, "history_prev")
        recall = f"{key} brings it back" if key and not secret else ""
        taken = self.connection.input(text, recall)
        if not secret:
            self.history.add(text)
        if not taken or (text.strip() and not text.startswith("/")):
            self.views.bottom(current)  # the error line, or a message sent: follow the chat
            self.session.follow(current)
        return False  # clear the input line

    def switch_relative(self, step: int) -> None:
        self.connection.switch_relative(step)

    def switch_to(self, index: int) -> None:
        self.connection.switch(index)

    def scroll_up(self, lines: int | None = None) -> None:
        """A page up (``lines``: that many lines), or older history at the top."""
        buf = self.session.current
        view = self.views(buf)
        if view.at_top:
            # Already showing the oldest line: ask the server for older history. It is
            # merged above, so the bottom-anchored view does not move.
            self.connection.request_older(buf)
        else:
            self.views.page_up(buf, lines)
        self.app.invalidate()

    def scroll_down(self, lines: int | None = None) -> None:
        buf = self.session.current
        self.views.page_down(buf, lines)
        if not self.views(buf).scrolled:
            self.session.follow(buf)
        self.app.invalidate()

    def wheel(self, lines: int) -> None:
        """The mouse wheel over the message pane: ``lines`` up (negative) or down."""
        if lines < 0:
            self.scroll_up(-lines)
        else:
            self.scroll_down(lines)

    def scroll_bottom(self) -> None:
        """Back to the newest line, following new ones again."""
        self.views.bottom(self.session.current)
        self.session.follow(self.session.current)
        self.app.invalidate()

    def end_key(self) -> None:
        """End: the end of the input line; on an empty one, scroll to the bottom."""
        if self.input.text:
            self.input.cursor_position += self.input.document.get_end_of_line_position()
        else:
            self.scroll_bottom()

    def next_active(self) -> None:
        """Alt+A: the buffer with highlights, else unread messages, else activity."""
        buf = self.session.next_active()
        if buf is not None:
            self.connection.switch(buf)

    def complete(self, step: int = 1) -> None:
        doc = self.input.document
        text, cursor = doc.text, doc.cursor_position
        state = self._completing
        if state is None or state.text != text or state.cursor != cursor:
            result = self.session.complete(text, cursor)
            if not result.candidates:
                self._completing = None
                return
            state = _Completing(result.start, result.candidates, -1 if step > 0 else 0, "", 0)
            before, after = text[: result.start], text[result.end :]
        else:
            before = text[: state.start]
            after = text[state.start + len(state.candidates[state.index]) :]
        state.index = (state.index + step) % len(state.candidates)
        choice = state.candidates[state.index]
        if after.startswith(" ") and choice.endswith(" "):
            after = after[1:]
        new_text = before + choice + after
        new_cursor = len(before) + len(choice)
        self.input.set_document(Document(new_text, new_cursor))
        state.text, state.cursor = new_text, new_cursor
        self._completing = state

    def history_prev(self) -> None:
        text = self.history.prev(self.input.text)
        if text is not None:
            self.input.text = text
            self.input.cursor_position = len(text)

    def history_next(self) -> None:
        text = self.history.next()
        if text is not None:
            self.input.text = text
            self.input.cursor_position = len(text)

    def toggle_nicklist(self) -> None:
        self.show_nicklist = not self.show_nicklist
        self.app.invalidate()

    def scroll_nicklist(self, pages: int) -> None:
        if self._nicklist_visible():
            self.nick_list.scroll(pages)
            self.app.invalidate()

    def quit(self) -> None:
        """Ctrl+Q: quit; with a line typed, only when pressed again (one key must not
        throw away a half-typed line)."""
        if self.input.text and not self.confirm.confirmed("quit"):
            key = describe(self.config.keys, "quit")
            self.confirm.ask(f"quit and lose the line typed? {key} again: yes, Esc: no", "quit")
            return
        self.connection.input("/quit")

    def interrupt(self) -> None:
        """Ctrl+C: clear the input line; on an empty line, say how to quit."""
        if self.input.text:
            self.input.reset()
            self.history.index = None
            return
        key = describe(self.config.keys, "quit")
        hint = f"press {key} or type /quit" if key else "type /quit"
        self.session.info(f"To leave, {hint}", time.time())
        self.connection.flush()

    def insert_text(self, text: str) -> None:
        """Put ``text`` in the input line at the cursor (a formatting code, Ctrl+V B)."""
        self.input.insert_text(text)

    # ------------------------------------------------------------------ running

    async def run(self, *, handle_sigint: bool = False) -> int:
        """Run the connection and the application until /quit (or the app exits)."""
        conn = self.connection
        task = asyncio.ensure_future(conn.run())

        def stop(_: object = None) -> None:
            if self.app.is_running and not self.app.is_done:
                self.app.exit(result=0)

        task.add_done_callback(stop)
        try:
            result = await self.app.run_async(
                pre_run=lambda: stop() if task.done() else None,
                handle_sigint=handle_sigint,
            )
        finally:
            if not task.done():
                conn.close()
                try:
                    await asyncio.wait_for(asyncio.shield(task), conn.settings.quit_timeout + 2.0)
                except (TimeoutError, asyncio.CancelledError):
                    task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return int(result or 0)


class _LogToBuffer(logging.Handler):
    """While the full-screen UI runs, log records become error lines in the server buffer
    (writing them to stderr would garble the screen)."""

    def __init__(self, ui: ChatUI) -> None:
        super().__init__(logging.WARNING)
        self.ui = ui
        self._busy = False

    def emit(self, record: logging.LogRecord) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f": {record.exc_info[1]!r}"
            session = self.ui.session
            session.error(f"internal: {text[:300]}", time.time(), session.server)
            self.ui.app.invalidate()
        except Exception:
            pass
        finally:
            self._busy = False


def build_application(
    connection: Connection,
    config: ClientConfig,
    *,
    input: Input | None = None,
    output: Output | None = None,
) -> ChatUI:
    return ChatUI(connection, config, input=input, output=output)


def tune_gc() -> None:
    """Shorter, rarer garbage-collector pauses for a long-running interactive process.

    Everything alive after start-up (modules, prompt_toolkit's bindings and caches) is
    moved out of the collector's view (``gc.freeze``), and the youngest generation is
    collected every 5000 allocations instead of 700: a redraw allocates thousands of
    short-lived objects, and full collections over the whole heap were the longest
    pauses (tens of ms) while a busy channel scrolled. Reference counting still frees
    almost everything at once; cycles are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(5000, 10, 10)


async def run_async(
    connection: Connection,
    config: ClientConfig,
    *,
    input: Input | None = None,
    output: Output | None = None,
) -> int:
    ui = ChatUI(connection, config, input=input, output=output)
    tune_gc()
    root = logging.getLogger()
    handler = _LogToBuffer(ui)
    root.addHandler(handler)
    try:
        return await ui.run(handle_sigint=True)
    finally:
        root.removeHandler(handler)


def run(connection: Connection, config: ClientConfig) -> int:
    """Entry point used by ``chat-client``: full screen until /quit."""
    try:
        return asyncio.run(run_async(connection, config))
    except KeyboardInterrupt:
        return 130
