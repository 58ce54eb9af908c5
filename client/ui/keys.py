"""Key bindings by action name (``[keys]`` in the config, defaults in ``DEFAULT_KEYS``).

A key is a prompt_toolkit key name (``c-n``, ``pageup``, ``f7``, ``tab``...); a
space-separated list is a sequence (``escape 1`` is Alt+1, as terminals send it).
An unknown key name is reported (one line in the server buffer), never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from prompt_toolkit.filters import Condition
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.key_binding.key_processor import KeyProcessor

from ..config import DEFAULT_KEYS
from ..keyhelp import describe as describe  # (for the UI: keys named in hints)

log = logging.getLogger(__name__)


class Actions(Protocol):
    """What the bindings call (implemented by :class:`client.ui.app.ChatUI`)."""

    def switch_relative(self, step: int) -> None: ...
    def switch_to(self, index: int) -> None: ...
    def scroll_up(self) -> None: ...
    def scroll_down(self) -> None: ...
    def complete(self, step: int = 1) -> None: ...
    def history_prev(self) -> None: ...
    def history_next(self) -> None: ...
    def toggle_nicklist(self) -> None: ...
    def scroll_nicklist(self, pages: int) -> None: ...
    def scroll_bottom(self) -> None: ...
    def end_key(self) -> None: ...
    def next_active(self) -> None: ...
    def quit(self) -> None: ...
    def interrupt(self) -> None: ...
    def insert_text(self, text: str) -> None: ...


Handler = Callable[[KeyPressEvent], None]

# The key after the formatting prefix (Ctrl+V), Ctrl held or not, and the mIRC code it
# inserts: WeeChat's letters after its prefix, and readline's Ctrl+V Ctrl+B giving ^B.
FORMAT_CODES: dict[str, str] = {
    "b": "\x02",  # bold
    "c": "\x03",  # colour: the digits follow (04 red, 04,01 red on black)
    "i": "\x1d",  # italic (Ctrl+I is Tab: Ctrl+] is the code's own key)
    "u": "\x1f",  # underline
    "_": "\x1f",
    "v": "\x16",  # reverse
    "r": "\x16",
    "s": "\x1e",  # strikethrough
    "o": "\x0f",  # reset
}

BUFFER_KEYS = 19  # buffer_1 .. buffer_19 (Alt+1..Alt+0, Alt+Q..Alt+O)


class BufferJump:
    """WeeChat's jump: Alt+J, then two digits, goes to that buffer (01-99).

    A mode rather than a key sequence: a sequence would be cut by ``timeoutlen`` (half
    a second) between the digits. Digits typed while it waits are its own; any other
    key ends it and does what it always does (``after_key_press``).
    """

    def __init__(self, switch_to: Callable[[int], None]) -> None:
        self.digits: str | None = None  # None: not waiting for digits
        self._switch_to = switch_to
        self._mine = False  # the key being handled was the jump's

    def start(self) -> None:
        self.digits = ""
        self._mine = True

    def waiting(self) -> bool:
        return self.digits is not None

    def digit(self, digit: str) -> None:
        self._mine = True
        digits = (self.digits or "") + digit
        if len(digits) < 2:
            self.digits = digits
            return
        self.digits = None
        if int(digits) > 0:
            self._switch_to(int(digits) - 1)

    def after_key_press(self, key_processor: KeyProcessor) -> None:
        if not self._mine:
            self.digits = None
        self._mine = False

class FormatPrefix:
    """The formatting prefix (Ctrl+V): the next key inserts a mIRC code (FORMAT_CODES)
    into the input line, shown there as ^B, ^C... and sent as it is.

    A mode, as :class:`BufferJump`: no deadline for the second key. Any other key ends
    it and does what it always does.
    """

    def __init__(self, insert: Callable[[str], None]) -> None:
        self.active = False
        self._insert = insert
        self._mine = False  # the key being handled was the prefix's

    def start(self) -> None:
        self.active = True
        self._mine = True

    def waiting(self) -> bool:
        return self.active

    def code(self, code: str) -> None:
        self.active = False
        self._mine = True
        self._insert(code)

    def after_key_press(self, key_processor: KeyProcessor) -> None:
        if not self._mine:
            self.active = False
        self._mine = False


class Confirm:
    """A question the next key answers: the key that asked again (Enter for a big
    paste, Ctrl+Q to quit with a line typed) says yes, any other key no, and does what
    it always does. A mode, as :class:`BufferJump`; the status line shows the question.
    """

    def __init__(self) -> None:
        self.question: str | None = None
        self._subject: object = None  # what it is about: a yes is for that only
        self._mine = False  # the key being handled asked it

    def ask(self, question: str, subject: object) -> None:
        self.question, self._subject = question, subject
        self._mine = True

    def confirmed(self, subject: object) -> bool:
        """Whether ``subject`` was asked about by the key before this one (a yes)."""
        yes = self.question is not None and self._subject == subject
        self.question = self._subject = None
        return yes

    def after_key_press(self, key_processor: KeyProcessor) -> None:
        if not self._mine:
            self.question = self._subject = None
        self._mine = False


def format_keys() -> list[tuple[str, str]]:
    """(prompt_toolkit key, code) for every key FormatPrefix takes."""
    keys = []
    for key, code in FORMAT_CODES.items():
        keys.append((key, code))
        if key.isalpha():
            keys.append((key.upper(), code))
        if key != "i":  # (Ctrl+I is Tab)
            keys.append((f"c-{key}", code))
    return [*keys, ("c-]", FORMAT_CODES["i"])]


def action_handlers(ui: Actions, jump: BufferJump, fmt: FormatPrefix) -> dict[str, Handler]:
    def call(fn: Callable[[], None]) -> Handler:
        def handler(event: KeyPressEvent) -> None:
            try:
                fn()
            except Exception:  # a UI bug must not stop the application
                log.exception("key binding failed")

        return handler

    handlers: dict[str, Handler] = {
        "next_buffer": call(lambda: ui.switch_relative(1)),
        "prev_buffer": call(lambda: ui.switch_relative(-1)),
        "scroll_up": call(ui.scroll_up),
        "scroll_down": call(ui.scroll_down),
        "complete": call(ui.complete),
        "history_prev": call(ui.history_prev),
        "history_next": call(ui.history_next),
        "toggle_nicklist": call(ui.toggle_nicklist),
        "nicklist_up": call(lambda: ui.scroll_nicklist(-1)),
        "nicklist_down": call(lambda: ui.scroll_nicklist(1)),
        "quit": call(ui.quit),
        "scroll_bottom": call(ui.scroll_bottom),
        "next_active": call(ui.next_active),
        "jump_buffer": call(jump.start),
        "format_prefix": call(fmt.start),
        # Fixed keys (not in the config): Ctrl+C, Shift+Tab and End.
        "interrupt": call(ui.interrupt),
        "complete_prev": call(lambda: ui.complete(-1)),
        "end": call(ui.end_key),
    }
    for n in range(1, BUFFER_KEYS + 1):
        handlers[f"buffer_{n}"] = call(lambda n=n: ui.switch_to(n - 1))  # type: ignore[misc]
    return handlers


def _ignore(event: KeyPressEvent) -> None:
    pass


def no_numeric_argument(key_processor: KeyProcessor) -> None:
    """After each key press: forget any Emacs numeric argument (see build_key_bindings)."""
    key_processor.arg = None


def build_key_bindings(
    ui: Actions,
    keys: Mapping[str, tuple[str, ...]],
    jump: BufferJump | None = None,
    fmt: FormatPrefix | None = None,
) -> tuple[KeyBindings, list[str]]:
    """Bindings for every action; returns (bindings, problems with the configured keys).
    ``jump``: the Alt+J state, ``fmt`` the formatting prefix's (the ``after_key_press``
    of each must run after each key)."""
    kb = KeyBindings()
    problems: list[str] = []
    if jump is None:
        jump = BufferJump(ui.switch_to)
    if fmt is None:
        fmt = FormatPrefix(ui.insert_text)
    # Fixed keys first: a configured binding of the same key wins (added later).
    handlers = action_handlers(ui, jump, fmt)
    waiting = Condition(jump.waiting)
    for digit in "0123456789":
        kb.add(digit, filter=waiting, eager=True)(
            lambda event, digit=digit: jump.digit(digit)
        )
    kb.add("c-c")(handlers["interrupt"])
    kb.add("s-tab")(handlers["complete_prev"])
    kb.add("end")(handlers["end"])  # end of the line; on an empty one, scroll to the bottom
    # prompt_toolkit's Emacs bindings make Meta+digit and Meta+- a numeric argument
    # for the next key: Alt+0 then "/" would insert "/" zero times (and Alt+5 "x" five
    # times). The input line has no use for repeat counts: every Meta+digit that is not
    # bound to an action (e.g. rebound elsewhere) does nothing. ChatUI also drops any
    # argument after each key (no_numeric_argument).
    for key in (*"0123456789", "-"):
        kb.add("escape", key)(_ignore)
    for action, handler in handlers.items():
        if action not in DEFAULT_KEYS:
            continue
        for key in keys.get(action, DEFAULT_KEYS.get(action, ())):
            parts = key.split()
            if not parts:
                continue
            try:
                kb.add(*parts)(handler)
            except (ValueError, KeyError, AssertionError):
                problems.append(f"keys.{action}: unknown key {key!r} (ignored)")
    # Last, so that while the prefix waits they win over every other binding of those
    # keys (Ctrl+C clears the input line, Ctrl+B moves back... otherwise).
    waiting_code = Condition(fmt.waiting)
    for key, code in format_keys():
        kb.add(key, filter=waiting_code, eager=True)(lambda event, code=code: fmt.code(code))
    return kb, problems
