"""Pure rendering for the terminal UI: display lines to styled fragments, wrapped rows.

Nothing here touches an application, a terminal or the event loop. All text comes
from :class:`~client.model.Line` objects (already sanitised by the session); styles are
prompt_toolkit class names (``class:timestamp``, ``class:nick-3``...) resolved by the
style sheet from :func:`build_style`, and mIRC formatting becomes inline style
attributes (``bold``, ``fg:#rrggbb``...), never control codes.

The costly part (word wrapping) is cached per (line, width) in :class:`LineRenderer`,
so a redraw only formats lines that have not been drawn at that width before.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from itertools import accumulate

from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.layout.processors import Processor, Transformation, TransformationInput
from prompt_toolkit.styles import ANSI_COLOR_NAMES, Style
from prompt_toolkit.utils import get_cwidth

from ..config import DEFAULT_COLOURS, DEFAULT_NICK_COLOURS, ClientConfig
from ..formatting import Span
from ..model import Delivery, Kind, Line

Fragments = StyleAndTextTuples

# UI classes that are not (yet) configurable; the config's [colours] keys come first.
EXTRA_STYLES: dict[str, str] = {
    "nick_punct": "#808080",
    "prefix": "bold",
    "separator": "#4e4e4e",
    "sidebar": "",
    "buffer_parted": "#6c6c6c",
    "buffer_number": "#808080",
    "nicklist_header": "bold underline",
    "prompt": "bold",
    "more": "bold",
    "loading": "italic #808080",
    "status_item": "",
    "typing": "italic",
    "read_marker": "#5f5f87",
    "where": "#5f87af",  # a search result's channel or conversation
    # A formatting code in the input line (prompt_toolkit draws \x02 as ^B in this
    # class): reverse, as irssi and WeeChat show them.
    "control-character": "reverse fg:default",
}

# What precedes the nick of an event line (joins, parts and quits are compact and dim).
EVENT_MARKS: dict[Kind, str] = {
    Kind.JOIN: "-->",
    Kind.PART: "<--",
    Kind.QUIT: "<--",
    Kind.KICK: "<--",
    Kind.NICK: "--",
    Kind.TOPIC: "--",
    Kind.MODE: "--",
}

# Between the lines of a multi-line message in a line's fragments: rows() starts a new
# row there (it never reaches the terminal).
ROW_BREAK: tuple[str, str] = ("", "\n")

# What follows our own message on its way: pending (dimmed) or failed (with the reason).
PENDING_MARK = "…"
FAILED_MARK = "✗"

# Translation table that drops any character a terminal could interpret. The session
# already guarantees this; it is repeated here (cheaply, once per cached line) so the
# UI can never be the one that writes a raw control character.
_CONTROL = {c: None for c in (*range(0x00, 0x20), *range(0x7F, 0xA0))}


# Grapheme clusters are drawn in a form every terminal draws as wide as prompt_toolkit
# counts it. prompt_toolkit gives each code point its own wcwidth cells (a zero-width
# one joins the cell before) and moves the cursor by that count, but terminals that
# know emoji sequences (tmux 3.3, kitty, WezTerm...) draw 👨‍👩‍👧 or 🇫🇷 as one 2-cell
# glyph, where it counted 6 and 4 (and tmux draws a lone regional indicator in 1, and
# 👍🏽 in 4 where kitty takes 2): the rest of the row lands in the wrong cells, and
# stale ones stay.
# Measuring clusters the terminal's way would not help, since prompt_toolkit still lays
# them out per code point, and terminals disagree. So what is drawn (never what is kept,
# logged or sent) loses what makes a sequence: U+200D (zero width joiner), so a ZWJ
# sequence shows as its parts (👨👩👧, 6 cells); VS15/VS16 (U+FE0E/U+FE0F), each
# character in its default width (❤ 1); a skin-tone modifier after an emoji (👍🏽 is
# 👍); tag characters (a subdivision flag is its black flag); and a regional indicator
# is its letter (🇫🇷 is FR, 2 cells as the flag). Combining marks stay: no terminal
# gives them a cell.
_CLUSTERING = re.compile(
    "[\u200d\ufe0e\ufe0f\U0001f1e6-\U0001f1ff\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]"
)
_REGIONAL = range(0x1F1E6, 0x1F200)  # regional indicators A to Z
_MODIFIERS = range(0x1F3FB, 0x1F400)  # skin tones


def _emoji(ch: str) -> bool:
    """Whether a skin-tone modifier after ``ch`` would join it (the blocks of every
    Emoji_Modifier_Base: symbols, dingbats and the emoji planes)."""
    code = ord(ch)
    return 0x2600 <= code <= 0x27BF or code >= 0x1F000


def drawn_parts(text: str) -> list[str]:
    """What each code point of ``text`` is drawn as ('' for none; see _CLUSTERING)."""
    parts: list[str] = []
    last = ""  # the last character drawn
    for ch in text:
        if _CLUSTERING.match(ch) is None:
            part = ch
        elif ord(ch) in _REGIONAL:
            part = chr(ord("A") + ord(ch) - _REGIONAL.start)
        elif ord(ch) in _MODIFIERS and not (last and _emoji(last)):
            part = ch  # (a lone swatch is 2 cells everywhere)
        else:
            part = ""
        parts.append(part)
        last = part or last
    return parts


def drawn(text: str) -> str:
    """``text`` as the UI draws it: grapheme clusters in a form whose width every
    terminal and prompt_toolkit agree on (see _CLUSTERING)."""
    if text.isascii() or _CLUSTERING.search(text) is None:
        return text
    return "".join(drawn_parts(text))


def safe(text: str) -> str:
    """``text`` without C0/C1 control characters (defence in depth), as drawn."""
    if not text.isprintable():
        text = text.translate(_CONTROL)
    return drawn(text)


def text_width(text: str) -> int:
    """Terminal cells taken by ``text`` once drawn: what prompt_toolkit counts, and
    what the terminal takes, for its grapheme clusters (see _CLUSTERING)."""
    return len(text) if text.isascii() else get_cwidth(drawn(text))


def clusters(text: str) -> Iterator[tuple[str, int]]:
    """(cluster, cells) of ``text`` as drawn: a character with the zero-width ones
    after it (combining marks), never cut apart."""
    text = drawn(text)
    start = cells = 0
    for i, ch in enumerate(text):
        w = get_cwidth(ch)
        if w and i > start:
            yield text[start:i], cells
            start, cells = i, 0
        cells += w
    if text:
        yield text[start:], cells


def fit(text: str, width: int) -> str:
    """``text`` as drawn, cut to at most ``width`` cells ('…' marks a cut)."""
    if width <= 0:
        return ""
    text = drawn(text)
    if text_width(text) <= width:
        return text
    out: list[str] = []
    used = 0
    for cluster, w in clusters(text):
        if used + w > width - 1:
            break
        out.append(cluster)
        used += w
    return "".join(out) + "…"


class DrawnInput(Processor):
    """The input line drawn as the rest of the UI is (:func:`drawn`); its text is
    kept, and sent, as typed. The cursor moves over what is drawn."""

    def apply_transformation(self, transformation_input: TransformationInput) -> Transformation:
        fragments = transformation_input.fragments
        text = "".join(f[1] for f in fragments)
        if text.isascii() or _CLUSTERING.search(text) is None:
            return Transformation(fragments)
        parts = drawn_parts(text)
        out: Fragments = []
        i = 0
        for frag in fragments:
            n = len(frag[1])
            out.append((frag[0], "".join(parts[i : i + n]), *frag[2:]))
            i += n
        return Transformation(out, *position_maps(parts))


def position_maps(parts: list[str]) -> tuple[Callable[[int], int], Callable[[int], int]]:
    """(source to drawn, drawn to source) positions for :func:`drawn_parts`."""
    starts = list(accumulate((len(p) for p in parts), initial=0))
    sources = [i for i, p in enumerate(parts) for _ in p]

    def to_drawn(i: int) -> int:
        return starts[min(max(i, 0), len(parts))]

    def to_source(i: int) -> int:
        return sources[i] if 0 <= i < len(sources) else len(parts)

    return to_drawn, to_source


# ---------------------------------------------------------------------- styles


def _valid_style(value: str) -> bool:
    """Whether prompt_toolkit can parse *and later output* the style string."""
    try:
        attrs = Style([("x", value)]).get_attrs_for_style_str("class:x")
    except (ValueError, AssertionError):
        return False
    # The parser lets '#zzzzzz' through; the terminal output would fail on it.
    return all(_valid_colour(c) for c in (attrs.color, attrs.bgcolor))


def _valid_colour(colour: str | None) -> bool:
    if not colour or colour == "default" or colour in ANSI_COLOR_NAMES:
        return True
    return len(colour) == 6 and all(c in "0123456789abcdefABCDEF" for c in colour)


def build_style(config: ClientConfig) -> tuple[Style, list[str]]:
    """The style sheet for ``config``; invalid entries fall back to the defaults.

    Returns (style, problems): one line per rejected setting, for the server buffer.
    """
    problems: list[str] = []
    rules: list[tuple[str, str]] = []
    for name, value in EXTRA_STYLES.items():
        rules.append((name, value))
    for name, default in DEFAULT_COLOURS.items():
        value = config.colours.get(name, default)
        if not _valid_style(value):
            problems.append(f"colours.{name}: invalid style {value!r}, using {default!r}")
            value = default
        rules.append((name, value))
    palette = nick_palette(config.nick_colours, problems)
    for i, value in enumerate(palette):
        rules.append((f"nick-{i}", value))
    return Style(rules), problems


def nick_palette(colours: Iterable[str], problems: list[str] | None = None) -> tuple[str, ...]:
    good = []
    for value in colours:
        if _valid_style(value):
            good.append(value)
        elif problems is not None:
            problems.append(f"colours.nicks: invalid style {value!r} ignored")
    return tuple(good) or DEFAULT_NICK_COLOURS


def nick_class(nick: str, palette_size: int) -> str:
    """A stable colour class for ``nick`` (the same in every run and every buffer)."""
    if palette_size <= 0:
        return ""
    return f"class:nick-{zlib.crc32(nick.lower().encode('utf-8', 'replace')) % palette_size}"


@lru_cache(maxsize=2048)
def _span_style(
    base: str,
    bold: bool,
    italic: bool,
    underline: bool,
    strike: bool,
    reverse: bool,
    fg: str | None,
    bg: str | None,
) -> str:
    parts = [base] if base else []
    if bold:
        parts.append("bold")
    if italic:
        parts.append("italic")
    if underline:
        parts.append("underline")
    if strike:
        parts.append("strike")
    if reverse:
        parts.append("reverse")
    # Colours come from client.formatting as '#rrggbb' (validated there); check anyway.
    if fg is not None and _is_hex(fg):
        parts.append(f"fg:{fg}")
    if bg is not None and _is_hex(bg):
        parts.append(f"bg:{bg}")
    return " ".join(parts)


def _is_hex(colour: str) -> bool:
    return (
        len(colour) == 7
        and colour[0] == "#"
        and all(c in "0123456789abcdefABCDEF" for c in colour[1:])
    )


def span_style(base: str, span: Span) -> str:
    """The prompt_toolkit style of an mIRC-formatted span on top of ``base``."""
    # By attribute, not by the Style itself: hashing these is cheaper than the
    # dataclass's __hash__ (a Python call per span).
    st = span.style
    return _span_style(
        base, st.bold, st.italic, st.underline, st.strikethrough, st.reverse, st.fg, st.bg
    )


def span_fragments(spans: Iterable[Span], base: str) -> Fragments:
    return [(span_style(base, sp), safe(sp.text)) for sp in spans if sp.text]


# ---------------------------------------------------------------------- lines


@lru_cache(maxsize=4096)
def format_timestamp(fmt: str, when: int) -> str:
    if not fmt:
        return ""
    try:
        return safe(time.strftime(fmt, time.localtime(when)))
    except (ValueError, OverflowError, OSError):
        return "?" * max(1, len(time.strftime(fmt, time.localtime(0))))


class LineRenderer:
    """Formats display lines and caches their wrapped rows per (line, width)."""

    def __init__(
        self,
        timestamp_format: str = "%H:%M",
        palette_size: int = len(DEFAULT_NICK_COLOURS),
        cache_size: int = 4096,
    ) -> None:
        self.timestamp_format = timestamp_format
        self.palette_size = palette_size
        self.cache_size = max(64, cache_size)
        # (id(line), width) -> (line, rows). The line is kept so an id reused by a new
        # object after the old one was dropped can never return stale rows.
        self._rows: dict[tuple[int, int], tuple[Line, list[Fragments]]] = {}
        self.formatted = 0  # lines formatted so far (a cache-miss counter for tests/bench)

    def nick_style(self, line: Line) -> str:
        if line.own:
            return "class:own_nick"
        if line.highlight:
            return "class:highlight"
        return nick_class(line.nick, self.palette_size)

    def fragments(self, line: Line) -> tuple[Fragments, int]:
        """(fragments of the whole line, cells taken by the part before the text)."""
        frags: Fragments = []
        stamp = format_timestamp(self.timestamp_format, int(line.time))
        if stamp:
            ts_style = "class:timestamp class:history" if line.history else "class:timestamp"
            frags.append((ts_style, stamp + " "))
        if line.where:  # a search result: where it was said
            frags.append(("class:where", safe(line.where) + " "))
        kind = line.kind
        hl = " class:highlight" if line.highlight else ""
        nick = safe(line.nick)
        if kind is Kind.MESSAGE:
            frags += [
                ("class:nick_punct", "<"),
                ("class:prefix", safe(line.prefix)),
                (self.nick_style(line), nick),
                ("class:nick_punct", "> "),
            ]
            base = "class:message" + hl
        elif kind is Kind.ACTION:
            frags += [
                ("class:action" + hl, "* "),
                (self.nick_style(line) + " class:action", nick),
                ("class:action", " "),
            ]
            base = "class:action" + hl
        elif kind is Kind.NOTICE:
            frags += [
                ("class:notice", "-"),
                (self.nick_style(line), nick),
                ("class:notice", "- "),
            ]
            base = "class:notice" + hl
        elif kind is Kind.INFO:
            frags.append(("class:info", "-- "))
            base = "class:info" + hl
        elif kind is Kind.ERROR:
            frags.append(("class:error", "!! "))
            base = "class:error"
        else:  # joins, parts, quits, kicks, nick changes, topics, modes: one dim line
            style = f"class:{kind.value}"
            frags.append((style, EVENT_MARKS.get(kind, "--") + " "))
            if nick:
                frags += [(style + " bold", nick), (style, " ")]
            base = style + hl
        indent = sum(text_width(f[1]) for f in frags)
        if line.redacted:  # a deleted message: its placeholder, dimmed
            base = "class:redacted"
        elif line.delivery is Delivery.PENDING:  # not confirmed by the server yet
            base += " class:pending"
        spans = line.spans or ((Span(line.text),) if line.text else ())
        if "\n" in line.text:  # a multi-line message: ROW_BREAK between its lines
            frags += multiline_fragments(spans, base)
        else:
            frags += span_fragments(spans, base)
        if line.reactions:
            frags += reaction_fragments(line)
        if line.delivery is not Delivery.DELIVERED:
            frags += delivery_fragments(line)
        return frags, indent

    def rows(self, line: Line, width: int) -> list[Fragments]:
        """The line's rows at ``width`` cells (cached)."""
        key = (id(line), width)
        hit = self._rows.get(key)
        if hit is not None and hit[0] is line:
            return hit[1]
        frags, indent = self.fragments(line)
        rows = wrap_lines(frags, width, indent)
        self.formatted += 1
        cache = self._rows
        if len(cache) >= self.cache_size:
            # Forget the oldest quarter (insertion order); visible lines come back cheaply.
            for old in list(cache)[: self.cache_size // 4]:
                del cache[old]
        cache[key] = (line, rows)
        return rows

    def clear(self) -> None:
        self._rows.clear()


def multiline_fragments(spans: Iterable[Span], base: str) -> Fragments:
    """:func:`span_fragments` of a multi-line message's text, with a ROW_BREAK where
    each line feed was (the session keeps them only there)."""
    frags: Fragments = []
    for sp in spans:
        style = span_style(base, sp)
        for i, part in enumerate(sp.text.split("\n")):
            if i:
                frags.append(ROW_BREAK)
            if part:
                frags.append((style, safe(part)))
    return frags


def delivery_fragments(line: Line) -> Fragments:
    """After our message on its way: ``  …`` while pending (``  … not sent yet`` while
    it waits for the connection), ``  ✗ not sent: reason`` when it failed."""
    if line.delivery is Delivery.FAILED:
        return [("class:failed", f"  {FAILED_MARK} {safe(line.note)}".rstrip())]
    return [("class:pending", f"  {PENDING_MARK} {safe(line.note)}".rstrip())]


def reaction_fragments(line: Line) -> Fragments:
    """The reactions after a message, ``  [👍 2 ❤️ 1]`` (IRCv3 reactions): each text
    with how many reacted with it, in the order they first came; ours in bold."""
    frags: Fragments = [("class:reactions", "  [")]
    for i, (text, nicks, own) in enumerate(line.reaction_groups()):
        style = "class:reactions bold" if own else "class:reactions"
        frags.append((style, f"{' ' if i else ''}{safe(text)} {len(nicks)}"))
    frags.append(("class:reactions", "]"))
    return frags


def wrap(frags: Fragments, width: int, indent: int = 0) -> list[Fragments]:
    """Word-wrap ``frags`` to rows of at most ``width`` cells.

    Continuation rows start with ``indent`` spaces (aligned under the message text)
    unless that would leave less than half the width. Breaks at the last space of a
    row when there is one after the prefix, else inside the word.
    """
    total = sum(text_width(f[1]) for f in frags)
    if width <= 0 or total <= width:
        return [frags]
    if indent > width // 2:
        indent = 0
    cells: list[tuple[str, str, int]] = []
    for frag in frags:
        style, text = frag[0], frag[1]
        if text.isascii():
            cells.extend((style, ch, 1) for ch in text)
        else:  # (a character and its combining marks stay together)
            cells.extend((style, cluster, w) for cluster, w in clusters(text))
    # Cells of the first row that belong to the prefix: never break inside it.
    prefix_cells = 0
    used = 0
    for _, _, w in cells:
        if used >= indent:
            break
        used += w
        prefix_cells += 1

    rows: list[list[tuple[str, str, int]]] = []
    row: list[tuple[str, str, int]] = []
    row_w = 0
    avail = width
    min_break = prefix_cells
    last_space = -1
    for cell in cells:
        w = cell[2]
        if row and row_w + w > avail:
            if last_space >= 0:
                rows.append(row[: last_space + 1])
                row = row[last_space + 1 :]
            else:
                rows.append(row)
                row = []
            avail = width - indent
            min_break = 0
            row_w = sum(c[2] for c in row)
            while row_w > avail:  # a carried word longer than a continuation row
                k, taken = 0, 0
                while k < len(row) and (k == 0 or taken + row[k][2] <= avail):
                    taken += row[k][2]
                    k += 1
                rows.append(row[:k])
                row = row[k:]
                row_w -= taken
            last_space = -1
            for j, c in enumerate(row):
                if c[1] == " ":
                    last_space = j
        if not row and rows and cell[1] == " ":
            continue  # no leading space on a continuation row
        row.append(cell)
        row_w += w
        if cell[1] == " " and len(row) > min_break:
            last_space = len(row) - 1
    if row or not rows:
        rows.append(row)

    out: list[Fragments] = []
    pad: Fragments = [("", " " * indent)] if indent else []
    for n, cells_row in enumerate(rows):
        merged: Fragments = list(pad) if n else []
        current: str | None = None
        chars: list[str] = []
        for st, ch, _ in cells_row:
            if st != current:
                if chars and current is not None:
                    merged.append((current, "".join(chars)))
                current, chars = st, []
            chars.append(ch)
        if chars and current is not None:
            merged.append((current, "".join(chars)))
        out.append(merged)
    return out


def wrap_lines(frags: Fragments, width: int, indent: int = 0) -> list[Fragments]:
    """:func:`wrap`, each line of a multi-line message (ROW_BREAK between them) on rows
    of its own: the first after the timestamp and nick, the others indented under it
    (as wrapped rows are)."""
    if ROW_BREAK not in frags:
        return wrap(frags, width, indent)
    pad = indent if indent <= width // 2 else 0
    lines: list[Fragments] = [[]]
    for frag in frags:
        if frag == ROW_BREAK:
            lines.append([("", " " * pad)] if pad else [])
        else:
            lines[-1].append(frag)
    rows = wrap(lines[0], width, indent)
    for line in lines[1:]:
        rows += wrap(line, width, pad)
    return rows


def plain_text(rows: Iterable[Fragments]) -> str:
    """The text of rendered rows (for tests and debugging)."""
    return "\n".join("".join(f[1] for f in row) for row in rows)


def style_names(colours: Mapping[str, str]) -> list[str]:
    """The class names a config may set (for documentation and tests)."""
    return [*colours, *EXTRA_STYLES]
