"""Make hostile text safe for a terminal, and turn mIRC formatting codes into spans.

Everything a server sends is untrusted. :func:`sanitize` removes terminal escape
sequences (CSI, OSC, DCS, ...), C0/C1 control characters, DEL, bidi embedding and
override controls, line/paragraph separators and lone surrogates, and keeps only
the mIRC formatting codes (bold, colour, italic, ...). :func:`render` then turns
those codes into :class:`Span` objects, so the text handed to a UI contains no
control character at all (but the line feeds of a multi-line message, kept by
:func:`display_lines`). A span's :class:`Style` is shared by every span with the same
formatting (a bounded table, :func:`style`): a full scrollback of coloured text holds
a handful of styles, not one per run. Otherwise pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Bytes 0x80-0x9f as Windows-1252 has them (curly quotes, dashes, €...), for lines that
# are not UTF-8; the five it leaves undefined stay latin-1's C1 controls (stripped).
_CP1252 = {
    b: ch for b in range(0x80, 0xA0) if (ch := bytes([b]).decode("cp1252", "ignore"))
}


def decode(data: bytes) -> str:
    """A received line as text: UTF-8, else Windows-1252 (as irssi's usual
    ``recode_fallback``), latin-1 for the bytes cp1252 leaves undefined."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1").translate(_CP1252)


BOLD = "\x02"
COLOUR = "\x03"
HEX_COLOUR = "\x04"
RESET = "\x0f"
MONOSPACE = "\x11"
REVERSE = "\x16"
ITALIC = "\x1d"
STRIKETHROUGH = "\x1e"
UNDERLINE = "\x1f"

FORMAT_CODES = frozenset(
    BOLD + COLOUR + HEX_COLOUR + RESET + MONOSPACE + REVERSE + ITALIC + STRIKETHROUGH + UNDERLINE
)

# Escape sequences, removed as a whole so that their parameters do not leak as text.
_ESCAPES = re.compile(
    r"""
      \x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?          # CSI (final byte may be cut off)
    | \x1b[\]PX^_].*?(?:\x07|\x1b\\|\x9c|$)              # OSC, DCS, SOS, PM, APC ... ST/BEL
    | \x1b[\x20-\x2f]*[\x30-\x7e]?                      # other ESC sequences (nF, Fp, Fe, Fs)
    | \x9b[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?          # 8-bit CSI
    | [\x90\x98\x9d\x9e\x9f].*?(?:\x07|\x1b\\|\x9c|$)   # 8-bit DCS, SOS, OSC, PM, APC
    """,
    re.VERBOSE | re.DOTALL,
)

# Anything that may need work; text without it is returned untouched (the fast path).
_SUSPECT = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")

_DROP: dict[int, str | None] = {}
for _code in range(0x20):
    if chr(_code) not in FORMAT_CODES:
        _DROP[_code] = None
for _code in range(0x7F, 0xA0):
    _DROP[_code] = None
for _code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)):  # bidi embeddings/isolates
    _DROP[_code] = None
_DROP[0x09] = " "  # tab
_DROP[0x0A] = " "  # a newline can come from an unescaped tag value
_DROP[0x0D] = " "
_DROP[0x2028] = " "
_DROP[0x2029] = " "

_SURROGATES = re.compile("[\ud800-\udfff]")


def sanitize(text: str) -> str:
    """Remove escape sequences and control characters; keep mIRC formatting codes."""
    if not _SUSPECT.search(text):
        return text
    if "\x1b" in text or any(ch in text for ch in "\x90\x98\x9b\x9d\x9e\x9f"):
        text = _ESCAPES.sub("", text)
    text = text.translate(_DROP)
    if _SURROGATES.search(text):
        text = _SURROGATES.sub("\ufffd", text)
    return text


# The 99 mIRC colours: 0-15 are the classic palette, 16-98 the extended one.
MIRC_COLOURS: tuple[str, ...] = (
    "#ffffff", "#000000", "#00007f", "#009300", "#ff0000", "#7f0000", "#9c009c", "#fc7f00",
    "#ffff00", "#00fc00", "#009393", "#00ffff", "#0000fc", "#ff00ff", "#7f7f7f", "#d2d2d2",
    "#470000", "#472100", "#474700", "#324700", "#004700", "#00472c", "#004747", "#002747",
    "#000047", "#2e0047", "#470047", "#47002a", "#740000", "#743a00", "#747400", "#517400",
    "#007400", "#007449", "#007474", "#004074", "#000074", "#4b0074", "#740074", "#740045",
    "#b50000", "#b56300", "#b5b500", "#7db500", "#00b500", "#00b571", "#00b5b5", "#0063b5",
    "#0000b5", "#7500b5", "#b500b5", "#b5006b", "#ff0000", "#ff8c00", "#ffff00", "#b2ff00",
    "#00ff00", "#00ffa0", "#00ffff", "#008cff", "#0000ff", "#a500ff", "#ff00ff", "#ff0098",
    "#ff5959", "#ffb459", "#ffff71", "#cfff60", "#6fff6f", "#65ffc9", "#6dffff", "#59b4ff",
    "#5959ff", "#c459ff", "#ff66ff", "#ff59bc", "#ff9c9c", "#ffd39c", "#ffff9c", "#e2ff9c",
    "#9cff9c", "#9cffdb", "#9cffff", "#9cd3ff", "#9c9cff", "#dc9cff", "#ff9cff", "#ff94d3",
    "#000000", "#131313", "#282828", "#363636", "#4d4d4d", "#656565", "#818181", "#9f9f9f",
    "#bcbcbc", "#e2e2e2", "#ffffff",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Style:
    """The mIRC formatting of a run of text. Colours are '#rrggbb' strings or None
    (default). Get one from :func:`style`: equal styles are then one shared object, so
    a line's many spans cost a pointer each for their style."""

    bold: bool = False
    italic: bool = False
    underline: bool = False
    strikethrough: bool = False
    monospace: bool = False
    reverse: bool = False
    fg: str | None = None
    bg: str | None = None


PLAIN = Style()  # no formatting

# Interned styles, by their attributes. Hex colours from a server are unbounded, so the
# table is emptied when full: a style made after that is still right, only not shared
# with the older ones.
_StyleKey = tuple[bool, bool, bool, bool, bool, bool, str | None, str | None]
_PLAIN_KEY: _StyleKey = (False, False, False, False, False, False, None, None)
_STYLES: dict[_StyleKey, Style] = {_PLAIN_KEY: PLAIN}
MAX_STYLES = 4096


def style(
    bold: bool = False,
    italic: bool = False,
    underline: bool = False,
    strikethrough: bool = False,
    monospace: bool = False,
    reverse: bool = False,
    fg: str | None = None,
    bg: str | None = None,
) -> Style:
    """The shared :class:`Style` with these attributes."""
    key = (bold, italic, underline, strikethrough, monospace, reverse, fg, bg)
    found = _STYLES.get(key)
    if found is None:
        if len(_STYLES) >= MAX_STYLES:
            _STYLES.clear()
            _STYLES[_PLAIN_KEY] = PLAIN
        found = _STYLES[key] = Style(*key)
    return found


@dataclass(frozen=True, slots=True)
class Span:
    """A run of text with one style (shared, see :func:`style`)."""

    text: str
    style: Style = PLAIN


# ASCII digits only: \d would read "\x03٣" as colour 3 and eat the text's first character.
_COLOUR_ARGS = re.compile(r"([0-9]{1,2})?(?:,([0-9]{1,2}))?")
_HEX_ARGS = re.compile(r"([0-9A-Fa-f]{6})?(?:,([0-9A-Fa-f]{6}))?")


def _mirc(code: str | None) -> str | None:
    if code is None:
        return None
    n = int(code)
    return MIRC_COLOURS[n] if n < len(MIRC_COLOURS) else None  # 99: default colour


_FORMATTING = re.compile("[" + re.escape("".join(sorted(FORMAT_CODES))) + "]")


def has_formatting(text: str) -> bool:
    return _FORMATTING.search(text) is not None


def strip_formatting(text: str) -> str:
    """Plain text of already sanitised ``text``: formatting codes and colour numbers removed."""
    if not has_formatting(text):
        return text
    return "".join(span.text for span in render(text))


def render(text: str) -> tuple[Span, ...]:
    """Spans of already sanitised ``text`` (call :func:`sanitize` first)."""
    if not has_formatting(text):
        return (Span(text),) if text else ()
    spans: list[Span] = []
    flags: dict[str, bool] = {}
    fg: str | None = None
    bg: str | None = None
    run: list[str] = []
    toggles = {
        BOLD: "bold",
        ITALIC: "italic",
        UNDERLINE: "underline",
        STRIKETHROUGH: "strikethrough",
        MONOSPACE: "monospace",
        REVERSE: "reverse",
    }

    def flush() -> None:
        if run:
            spans.append(Span("".join(run), style(fg=fg, bg=bg, **flags)))
            run.clear()

    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        i += 1
        if ch in toggles:
            flush()
            name = toggles[ch]
            flags[name] = not flags.get(name, False)
        elif ch == RESET:
            flush()
            flags.clear()
            fg = bg = None
        elif ch in (COLOUR, HEX_COLOUR):
            flush()
            pattern = _COLOUR_ARGS if ch == COLOUR else _HEX_ARGS
            m = pattern.match(text, i)
            assert m is not None  # every group is optional
            a, b = m.group(1), m.group(2)
            if a is None:
                # A bare code resets colours; ",NN" without a foreground stays literal text.
                fg = bg = None
                continue
            i = m.end()
            if ch == COLOUR:
                fg = _mirc(a)
                if b is not None:
                    bg = _mirc(b)
            else:
                fg = "#" + a.lower()
                if b is not None:
                    bg = "#" + b.lower()
        else:
            run.append(ch)
    flush()
    return tuple(spans)


def display(text: str) -> tuple[str, tuple[Span, ...]]:
    """Sanitise untrusted ``text``: (plain text, spans). Neither holds a control character."""
    if not _SUSPECT.search(text):  # the common case: nothing to remove or render
        return text, ((Span(text),) if text else ())
    clean = sanitize(text)
    if not has_formatting(clean):
        return clean, ((Span(clean),) if clean else ())
    spans = render(clean)
    return "".join(s.text for s in spans), spans


def display_lines(text: str) -> tuple[str, tuple[Span, ...]]:
    """:func:`display` for a message of several lines (IRCv3 multiline): each line is
    sanitised on its own and the line feeds between them are kept, the one control
    character let through (as a ``Span("\\n")`` of its own). Formatting does not run
    on into the next line, as it does not for clients that get the lines as messages."""
    if "\n" not in text:
        return display(text)
    shown: list[str] = []
    spans: list[Span] = []
    for i, part in enumerate(text.split("\n")):
        clean, part_spans = display(part)
        if i:
            spans.append(Span("\n"))
        shown.append(clean)
        spans.extend(part_spans)
    return "\n".join(shown), tuple(spans)


def plain(text: str) -> str:
    """Sanitised text without formatting: for names, reasons and other single strings."""
    return strip_formatting(sanitize(text))
