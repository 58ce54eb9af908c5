"""The full-screen UI's keys in words: ``/help keys`` and the table in client/README.md
(``python -m client.keyhelp`` prints it; a test checks that the README has it).

Each entry is a template: ``{action}`` stands for the keys bound to that action
(``config.keys``, defaults in ``DEFAULT_KEYS``), so ``/help keys`` shows the user's own
bindings. No prompt_toolkit here: the session (and ``--headless``) use it too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .config import DEFAULT_KEYS

# Display names of keys ('pagedown' -> 'PgDn'); 'c-q' is 'Ctrl+Q', 'escape x' 'Alt+X'.
KEY_NAMES = {"pageup": "PgUp", "pagedown": "PgDn", "escape": "Alt", "tab": "Tab"}

# (keys, what they do), in the order /help keys lists them.
KEY_HELP: tuple[tuple[str, str], ...] = (
    ("{buffer_1}..{buffer_9}", "buffers 1 to 9"),
    ("{buffer_10}", "buffer 10"),
    ("{buffer_11}..{buffer_19}", "buffers 11 to 19 (as irssi)"),
    ("{jump_buffer}", "then two digits: buffer 01 to 99 (as WeeChat)"),
    ("{next_buffer} / {prev_buffer}", "next / previous buffer"),
    ("{next_active}", "the buffer with highlights, else unread messages, else other activity"),
    ("{scroll_up} / {scroll_down}", "scroll a page; {scroll_up} at the top loads older history"),
    ("{scroll_bottom}", "back to the newest line (also End on an empty input line)"),
    ("{complete}", "complete a nick, channel or command; again: the next one (Shift+Tab: back)"),
    ("{history_prev} / {history_next}", "input history (a refused input is there too)"),
    ("{toggle_nicklist}", "nick list on or off"),
    ("{nicklist_up} / {nicklist_down}", "the nick list a page up / down"),
    ("{format_prefix}", "then B, C, I, U, V, S or O (or Ctrl+B..., Ctrl+] for I): the formatting"
     " code for bold, colour (digits follow: 04 red, 04,01 on black), italic, underline,"
     " reverse, strikethrough, reset; shown as ^B, ^C..."),
    ("Ctrl+C", "clear the input line"),
    ("Ctrl+L", "draw the whole screen again (if it looks garbled)"),
    ("{quit}", "quit"),
)

_ACTION = re.compile(r"\{(\w+)\}")


def key_name(key: str) -> str:
    """A prompt_toolkit key (sequence) for display: 'c-q' -> 'Ctrl+Q', 'escape 1' -> 'Alt+1'."""
    out = []
    for part in key.split():
        if part.startswith("c-") and len(part) > 2:
            name = part[2:]
            out.append("Ctrl+" + (name.upper() if len(name) == 1 else name.capitalize()))
        elif part in KEY_NAMES:
            out.append(KEY_NAMES[part])
        else:
            out.append(part[:1].upper() + part[1:])
    return "+".join(out) if out and out[0] == "Alt" else " ".join(out)


def describe(keys: Mapping[str, tuple[str, ...]], action: str) -> str:
    """The first key of ``action`` for display ('' when it has none)."""
    names = keys.get(action, DEFAULT_KEYS.get(action, ()))
    return key_name(names[0]) if names else ""


def _keys(keys: Mapping[str, tuple[str, ...]], template: str) -> str:
    def each(match: re.Match[str]) -> str:
        names = keys.get(match[1], DEFAULT_KEYS.get(match[1], ()))
        return " or ".join(key_name(k) for k in names) or "(none)"

    return _ACTION.sub(each, template)


def help_lines(keys: Mapping[str, tuple[str, ...]] = DEFAULT_KEYS) -> list[str]:
    """``/help keys``: a line per entry, with ``keys``' bindings."""
    rows = [(_keys(keys, k), _keys(keys, text)) for k, text in KEY_HELP]
    width = max(len(k) for k, _ in rows)
    return [f"  {k:<{width}}  {text}" for k, text in rows]


def markdown() -> str:
    """The README's table: the default keys, what they do, the actions to rebind."""
    rows = ["| keys | what they do | action (`[keys]`) |", "|---|---|---|"]
    for k, text in KEY_HELP:
        actions = _ACTION.sub(lambda m: f"`{m[1]}`", k) if _ACTION.search(k) else ""
        rows.append(f"| {_keys(DEFAULT_KEYS, k)} | {_keys(DEFAULT_KEYS, text)} | {actions} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
