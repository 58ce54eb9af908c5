"""UI controls: the message pane, buffer list, nick list, topic bar and status line.

Every control renders only what fits on the screen. The message pane walks the
current buffer's lines from the bottom (minus the scroll offset) and stops when the
pane is full, taking each line's wrapped rows from the :class:`LineRenderer` cache, so
a redraw costs O(visible rows) whatever the scrollback holds; the nick list sorts
members only when they changed.

Scroll positions are kept per buffer as an offset *from the bottom* (lines hidden
below the pane). Older history prepended at the top therefore never moves the view;
live lines arriving while scrolled up increase the offset so the view stays still, and
the line at the bottom of a view scrolled up is found again when lines below it went
(the hidden events a full scrollback drops first: ``View.anchor``).
A line taller than the pane (a long multi-line message) is paged through by rows:
``View.cut`` rows of the bottom line are hidden below the pane meanwhile.

Lines the join/part filter hides (``Session.hidden``, client/smartfilter.py) stay in
the buffer and count in the offset like any line, but are never drawn: the pane walks
past them, paging moves by the lines shown, and "N below" counts only those.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING

from prompt_toolkit.layout.controls import UIContent, UIControl
from prompt_toolkit.mouse_events import MouseEvent, MouseEventType

from ..model import Buffer, BufferKind, HistoryAdded, Line, State
from ..session import Session
from .render import Fragments, LineRenderer, fit, safe, span_fragments, text_width

if TYPE_CHECKING:
    from prompt_toolkit.key_binding.key_bindings import NotImplementedOrNone


@dataclass(slots=True)
class View:
    """Scroll state of one buffer's message pane."""

    offset: int = 0  # lines hidden below the bottom of the pane (0: following new lines)
    cut: int = 0  # rows of the bottom line hidden below the pane (it is taller than it)
    shown: int = 0  # lines shown completely by the last render
    clipped: int = 0  # rows of the top line above the pane in the last render
    tall: bool = False  # the bottom line was taller than the pane in the last render
    at_top: bool = True  # the oldest line was visible in the last render
    height: int = 0  # pane rows in the last render
    top_first: bool = False  # PageDown came: show a tall bottom line from its top
    below_key: tuple[int, int] = (-1, -1)  # (buffer version, offset) `below` counted at
    below: int = 0  # lines drawn (not hidden) among the `offset` lines below the pane
    # The line ``offset`` lines from the bottom when scrolled: found again when lines
    # below it went (a full scrollback's oldest hidden events, model.EVENT_SHARE).
    anchor: Line | None = None

    @property
    def scrolled(self) -> bool:
        """Not following new lines: scrolled up (by lines, or into a tall line)."""
        return self.offset > 0 or self.cut > 0


def _anchored(view: View, lines: deque[Line]) -> bool:
    """Whether the view's bottom line is ``offset`` lines from the bottom, its offset
    corrected if lines went from below it. False when it is gone (replaced by an
    edited line, or off the top): the line in its place is the bottom line now."""
    n = len(lines)
    if view.anchor is None or not 0 < view.offset < n:
        return False
    if lines[n - 1 - view.offset] is view.anchor:
        return True
    for i, line in enumerate(reversed(lines)):
        if line is view.anchor:
            view.offset = i
            return True
    view.anchor = lines[n - 1 - view.offset]
    return False


def _pin(view: View, lines: deque[Line]) -> None:
    """The line at the view's bottom is its anchor from now on (see :func:`_anchored`)."""
    n = len(lines)
    view.anchor = lines[n - 1 - view.offset] if 0 < view.offset < n else None


def _never(buffer: Buffer, line: Line) -> bool:
    return False


WHEEL_LINES = 3  # lines (or nicks) a notch of the mouse wheel scrolls, as WeeChat's


def wheel(event: MouseEvent) -> int:
    """-1 for the mouse wheel turned up, 1 down, 0 for any other mouse event."""
    if event.event_type is MouseEventType.SCROLL_UP:
        return -1
    return 1 if event.event_type is MouseEventType.SCROLL_DOWN else 0


class Views:
    """Per-buffer scroll state; forgets closed buffers. ``hidden(buffer, line)``: a line
    not drawn (``Session.hidden``; the pane asks it too)."""

    def __init__(self, hidden: Callable[[Buffer, Line], bool] = _never) -> None:
        self._views: dict[Buffer, View] = {}
        self.hidden = hidden

    def __call__(self, buffer: Buffer) -> View:
        view = self._views.get(buffer)
        if view is None:
            view = self._views[buffer] = View()
        return view

    def get(self, buffer: Buffer) -> View | None:
        return self._views.get(buffer)

    def forget(self, buffer: Buffer) -> None:
        self._views.pop(buffer, None)

    def line_added(self, buffer: Buffer) -> None:
        view = self._views.get(buffer)
        if view is not None and view.scrolled:
            view.offset += 1  # keep the lines on screen where they are
            _anchored(view, buffer.lines)  # (hidden lines below it may have gone for it)

    def history_added(self, event: HistoryAdded) -> None:
        view = self._views.get(event.buffer)
        if view is None or not view.scrolled or event.older:
            return  # older lines go above: an offset from the bottom is unaffected
        lines = event.buffer.lines
        n = len(lines)
        if view.offset >= n or _anchored(view, lines):
            return
        # Lines merged below the bottom visible line push it up: follow it.
        anchor = lines[n - 1 - view.offset]
        view.offset += sum(1 for ln in event.lines if ln.time > anchor.time)

    def page_up(self, buffer: Buffer, lines: int | None = None) -> None:
        """A page up, or ``lines`` drawn lines (rows inside a tall line: the wheel)."""
        view = self(buffer)
        page = lines or max(1, view.height - 1)
        if view.tall and view.clipped > 0:  # inside a line taller than the pane
            view.cut += min(view.clipped, page)
            return
        # The top line shown whole becomes the bottom one (counting drawn lines only).
        step = lines or max(1, view.shown - 1)
        hidden = self.hidden
        _anchored(view, buffer.lines)
        offset = view.offset
        drawn = -1  # lines drawn from the bottom one up (it is 0)
        for i, line in enumerate(islice(reversed(buffer.lines), view.offset, None), view.offset):
            if not hidden(buffer, line):
                offset = i
                drawn += 1
                if drawn == step:
                    break
        view.offset = offset  # (fewer above: the top line drawn)
        view.cut = 0
        _pin(view, buffer.lines)

    def page_down(self, buffer: Buffer, lines: int | None = None) -> None:
        """A page down, or ``lines`` drawn lines (rows inside a tall line: the wheel)."""
        view = self(buffer)
        if view.cut > 0:  # inside a line taller than the pane
            view.cut = max(0, view.cut - (lines or max(1, view.height - 1)))
            return
        # The line ``step`` drawn lines below the bottom one becomes the bottom one.
        step = lines or max(1, view.shown - 1)
        hidden = self.hidden
        _anchored(view, buffer.lines)
        nearest: deque[int] = deque(maxlen=step)  # drawn lines below (offsets), nearest last
        for i, line in enumerate(islice(reversed(buffer.lines), view.offset)):
            if not hidden(buffer, line):
                nearest.append(i)
        offset = nearest[0] if len(nearest) == step else 0
        view.top_first = offset < view.offset
        view.offset = offset
        _pin(view, buffer.lines)

    def below(self, buffer: Buffer) -> int:
        """Lines drawn (not hidden) below the pane: those scrolled past."""
        view = self(buffer)
        _anchored(view, buffer.lines)
        key = (buffer.version, view.offset)
        if view.below_key != key:
            hidden = self.hidden
            below = islice(reversed(buffer.lines), view.offset)
            view.below = sum(1 for line in below if not hidden(buffer, line))
            view.below_key = key
        return view.below

    def bottom(self, buffer: Buffer) -> None:
        view = self(buffer)
        view.offset = view.cut = 0
        view.anchor = None


READ_MARKER = "─"  # the read marker's line is this, the pane's width


class MessagePane(UIControl):
    """The current buffer's lines, bottom-anchored, rendering only the visible rows."""

    def __init__(self, session: Session, renderer: LineRenderer, views: Views) -> None:
        self.session = session
        self.renderer = renderer
        self.views = views
        self.lines_rendered = 0  # lines looked at by the last render (bounded by height)
        # Called with -WHEEL_LINES or WHEEL_LINES for a notch of the mouse wheel.
        self.on_wheel: Callable[[int], None] | None = None

    def is_focusable(self) -> bool:
        return False

    def mouse_handler(self, mouse_event: MouseEvent) -> NotImplementedOrNone:
        step = wheel(mouse_event)
        if not step or self.on_wheel is None:
            return NotImplemented
        self.on_wheel(step * WHEEL_LINES)
        return None

    def create_content(self, width: int, height: int | None) -> UIContent:
        height = max(1, height or 1)
        buf = self.session.current
        view = self.views(buf)
        lines = buf.lines
        _anchored(view, lines)
        n = len(lines)
        offset = view.offset = max(0, min(view.offset, n - 1)) if n else 0
        rows_of = self.renderer.rows
        is_hidden = self.views.hidden
        blocks: list[list[Fragments]] = []  # newest first
        used = 0
        shown = 0
        consumed = 0  # lines walked past (drawn or hidden)
        marker = buf.read_marker
        newer = False  # lines drawn below this one (shown, or scrolled past: see below)
        cut = 0
        tall = False
        for line in islice(reversed(lines), offset, None):
            if line is marker and (newer or (offset > 0 and self.views.below(buf) > 0)):
                # Everything below arrived after we last left the buffer.
                blocks.append([[("class:read_marker", fit(READ_MARKER * width, width))]])
                used += 1
                if used >= height:
                    break
            if is_hidden(buf, line):  # (a join or part the filter hides)
                consumed += 1
                continue
            rows = rows_of(line, width)
            room = height - used
            if not newer and len(rows) > room:  # the bottom line is taller than the pane
                tall = True
                hidden = len(rows) - room  # at most: its top row at the pane's top
                cut = hidden if view.top_first else min(view.cut, hidden)
                rows = rows[: len(rows) - cut]
            blocks.append(rows)
            consumed += 1
            used += len(rows)
            newer = True
            if used <= height:
                shown += 1
            if used >= height:
                break
        at_top = used <= height and (
            offset + consumed >= n
            # (only hidden lines above)
            or all(is_hidden(buf, ln) for ln in islice(reversed(lines), offset + consumed, None))
        )
        if at_top and used < height and offset > 0:
            # Scrolled past the top: show the first page instead of empty rows.
            while offset > 0:
                line = lines[n - offset]
                if is_hidden(buf, line):
                    offset -= 1
                    continue
                rows = rows_of(line, width)
                if used + len(rows) > height:
                    break
                offset -= 1
                blocks.insert(0, rows)
                used += len(rows)
                shown += 1
            view.offset = offset
        out: list[Fragments] = []
        note = self._top_note(buf) if at_top and not tall else ""
        # Scrolled up to the oldest line (not following new lines), the note above it
        # ("beginning of history") is shown even when the pane is full: it then takes
        # the place of the bottom row.
        keep_top = bool(note) and used >= height and offset > 0
        if note and (used < height or keep_top):
            out.append([("class:loading", fit(note, width))])
        for rows in reversed(blocks):
            out.extend(rows)
        if keep_top and len(out) > height:
            out = out[:height]  # the bottom line is no longer shown whole
            shown = max(1, shown - 1)
        view.clipped = max(0, len(out) - height)
        if len(out) > height:
            out = out[len(out) - height :]
        view.cut, view.tall, view.top_first = cut, tall, False
        _pin(view, lines)
        view.shown = shown
        view.at_top = at_top
        view.height = height
        self.lines_rendered = consumed

        def get_line(i: int) -> Fragments:
            return out[i] if 0 <= i < len(out) else []

        return UIContent(get_line=get_line, line_count=len(out), show_cursor=False)

    def _top_note(self, buf: Buffer) -> str:
        if buf.history_loading:
            return "… loading older messages"
        if buf.no_history:
            return "— no history kept for this conversation —"
        if buf.cleared:  # (the server may well have older lines: /clear hid them)
            return "— cleared —"
        if buf.trimmed and buf.full and not buf.can_grow:  # (PageUp cannot load older)
            return "— scrollback full: older lines dropped —"
        if buf.history_refused and buf.kind is not BufferKind.SERVER:
            return f"— older messages not fetched: {buf.history_refused} —"
        if buf.history_complete and buf.kind is not BufferKind.SERVER:
            return "— beginning of history —"
        return ""


class BufferList(UIControl):
    """Numbered buffers with unread counts ('!N': highlights); keeps the current one
    visible, with "↑ N more" / "+N more" rows for those that do not fit."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def is_focusable(self) -> bool:
        return False

    def preferred_width(self, max_available_width: int) -> int | None:
        return self.width()

    def width(self) -> int:
        longest = max((text_width(b.name) for b in self.session.buffers), default=6)
        return max(12, min(24, longest + 9))

    def create_content(self, width: int, height: int | None) -> UIContent:
        height = max(1, height or 1)
        session = self.session
        buffers = session.buffers
        try:
            current = buffers.index(session.current)
        except ValueError:
            current = 0
        start, end = list_window(len(buffers), height, current)
        rows = [self._row(i, buffers[i], i == current, width) for i in range(start, end)]
        marks = height >= 3  # (list_window leaves rows for them then)
        if start and marks:
            rows.insert(0, self._more(f"↑ {start} more", buffers[:start], width))
        if end < len(buffers) and marks:
            rows.append(self._more(f"+{len(buffers) - end} more", buffers[end:], width))

        def get_line(i: int) -> Fragments:
            return rows[i] if 0 <= i < len(rows) else []

        return UIContent(get_line=get_line, line_count=len(rows), show_cursor=False)

    @staticmethod
    def _more(text: str, hidden: list[Buffer], width: int) -> Fragments:
        """A row for the buffers out of the list, coloured as the most pressing of them."""
        level = max((activity_level(b) for b in hidden), default=0)
        style = ("class:sidebar", "class:buffer_activity", "class:buffer_unread",
                 "class:buffer_highlight")[level]  # fmt: skip
        return [(style, fit(text, width))]

    @staticmethod
    def _row(index: int, buf: Buffer, current: bool, width: int) -> Fragments:
        counter: Fragments = []
        if not current:
            if buf.unread:
                counter.append(("class:buffer_unread", str(min(buf.unread, 9999))))
            if buf.highlights:
                if counter:
                    counter.append(("", " "))
                counter.append(("class:buffer_highlight", f"!{min(buf.highlights, 999)}"))
        counter_w = sum(len(f[1]) for f in counter)
        number = f"{index + 1:>2} "
        name_w = max(1, width - len(number) - counter_w - (1 if counter else 0))
        name = fit(safe(buf.name), name_w)
        pad = " " * max(0, width - len(number) - text_width(name) - counter_w)
        if current:
            style = "class:buffer_current"
        elif buf.highlights:
            style = "class:buffer_highlight"
        elif buf.unread:
            style = "class:buffer_unread"
        elif buf.activity:
            style = "class:buffer_activity"
        elif buf.kind is BufferKind.CHANNEL and not buf.joined:
            style = "class:buffer_parted"
        else:
            style = "class:sidebar"
        if current:
            return [(style, number + name + pad)]
        return [("class:buffer_number", number), (style, name + pad), *counter]


class NickList(UIControl):
    """The current channel's members, ops first; sorted again only when they changed."""

    def __init__(self, session: Session, versions: Callable[[Buffer], int]) -> None:
        self.session = session
        self.versions = versions
        self._key: tuple[int, int, int] | None = None
        self._rows: list[tuple[str, str, bool]] = []  # (prefix, nick, away)
        self._width = 8
        self.sorts = 0
        self._buffer: Buffer | None = None  # the channel whose list is scrolled...
        self._offset = 0  # ...by this many nicks (back to the top in another buffer)
        self._rows_shown = 1  # rows for nicks at the last draw (a page)

    def is_focusable(self) -> bool:
        return False

    def scroll(self, pages: int) -> None:
        """Move the list by ``pages`` pages (negative: up), as far as it goes."""
        page = max(1, self._rows_shown - 2)  # (keep a nick or two of the last page)
        self.scroll_nicks(pages * page)

    def scroll_nicks(self, nicks: int) -> None:
        """Move the list by ``nicks`` (negative: up), as far as it goes."""
        self._current_offset()
        self._offset = max(0, self._offset + nicks)

    def mouse_handler(self, mouse_event: MouseEvent) -> NotImplementedOrNone:
        step = wheel(mouse_event)
        if not step:
            return NotImplemented
        self.scroll_nicks(step * WHEEL_LINES)
        return None

    def _current_offset(self) -> int:
        if self._buffer is not self.session.current:
            self._buffer, self._offset = self.session.current, 0
        return self._offset

    def _members(self) -> list[tuple[str, str, bool]]:
        buf = self.session.current
        key = (id(buf), self.versions(buf), len(buf.members))
        if key != self._key:
            members = buf.sorted_members(self.session.member_ranks())
            self._rows = [(safe(m.prefix), safe(m.nick), m.away) for m in members]
            longest = max((text_width(n) for _, n, _ in self._rows), default=4)
            self._width = max(10, min(20, longest + 2))
            self._key = key
            self.sorts += 1
        return self._rows

    def width(self) -> int:
        self._members()
        return self._width

    def preferred_width(self, max_available_width: int) -> int | None:
        return self.width()

    def create_content(self, width: int, height: int | None) -> UIContent:
        height = max(1, height or 1)
        members = self._members()
        count = len(members)
        out: list[Fragments] = [
            [("class:nicklist_header", fit(f"{count} user{'s' if count != 1 else ''}", width))]
        ]
        room = height - 1
        self._rows_shown = max(1, room)
        start, end = nick_window(count, room, self._current_offset())
        self._offset = start  # (scrolled past the end: back to where it stops)
        if start and room > 0:
            out.append([("class:nicklist_away", fit(f"↑ {start} more", width))])
        for prefix, nick, away in members[start:end]:
            style = "class:nicklist_away" if away else "class:nicklist"
            out.append([("class:prefix", prefix or " "), (style, fit(nick, width - 1))])
        if end < count and room > 0:
            out.append([("class:nicklist_away", fit(f"+{count - end} more", width))])

        def get_line(i: int) -> Fragments:
            return out[i] if 0 <= i < len(out) else []

        return UIContent(get_line=get_line, line_count=len(out), show_cursor=False)


def nick_window(count: int, room: int, offset: int) -> tuple[int, int]:
    """The nicks (start, end) a list of ``room`` rows shows from ``offset`` on: a row
    for "↑ N more" above them when start > 0, one for "+N more" below when end < count."""
    if count <= room:
        return 0, count
    if room < 3:  # no room for both marks: the first nicks and "+N more"
        return 0, max(0, room - 1)
    last = count - (room - 1)  # the furthest start: the mark above, then the last nicks
    start = min(max(0, offset), last)
    end = start + (room - 1 if start else room) - (1 if start < last else 0)
    return start, min(end, count)


def list_window(count: int, room: int, keep: int) -> tuple[int, int]:
    """The items (start, end) a list of ``room`` rows shows around item ``keep``: a row
    for "↑ N more" above them when start > 0, one for "+N more" below when end < count."""
    if count <= room:
        return 0, count
    if room < 3:  # no room for the marks: the rows around ``keep``
        start = max(0, min(keep - room // 2, count - room))
        return start, start + room
    shown = room - 2  # (both marks)
    start = max(0, min(keep - shown // 2, count - shown))
    if start == 0:
        return 0, room - 1
    if start + shown >= count:
        return count - (room - 1), count
    return start, start + shown


def topic_fragments(session: Session) -> Fragments:
    buf = session.current
    name = safe(buf.name)
    if buf.kind is BufferKind.CHANNEL:
        head: Fragments = [("bold", f" {name}")]
        if not buf.joined:  # before the topic, which may be long (and is the old one)
            head.append(("", " (not joined)"))
        if buf.topic:
            return [*head, ("", ": "), *span_fragments(buf.topic_spans, "")]
        return head if not buf.joined else [*head, ("", " (no topic)")]
    if buf.kind is BufferKind.QUERY:
        return [("", " Private conversation with "), ("bold", name)]
    if buf.kind is BufferKind.SEARCH:
        return [
            ("bold", f" {name}"),
            ("", " — message search results (/search TEXT again, /close to close)"),
        ]
    label = safe(session.network or session.server_name or name)
    return [("bold", f" {label}"), ("", " — server messages (/help for commands)")]


# Lines held back by flood control from which the status line says so when none is a
# message of ours (a command's, the client's own requests): fewer go within a few
# seconds at the default pace. A message of ours waiting shows it at once: it may be a
# paste of 150 lines, all in one or two multi-line messages.
SENDING_HINT = 3


def status_fragments(
    session: Session,
    views: Views,
    *,
    more_key: str = "PageDown",
    now: float = 0.0,
    sending: int = 0,
    width: int | None = None,
) -> Fragments:
    """The status line; ``sending``: lines flood control holds back (connection.queued;
    a multi-line message of ours counts its lines).
    The activity list comes last, after the scroll indicator (as WeeChat's hotlist after
    its ``-MORE-``), and names only as many buffers as fit in ``width`` cells: a long
    list must not push "more below" off the line, the one sign that new lines are not
    being followed."""
    frags: Fragments = []

    def item(text: str, style: str = "class:status_item") -> None:
        frags.append(("", " ["))
        frags.append((style, text))
        frags.append(("", "]"))

    nick = safe(session.nick)
    if session.user_modes:
        nick += f"(+{safe(session.user_modes)})"
    item(nick + (" (away)" if session.away else ""))
    buffers = session.buffers
    cur = session.current
    try:
        number = buffers.index(cur) + 1
    except ValueError:
        number = 0
    label = f"{number}:{safe(cur.name)}"
    if cur.kind is BufferKind.CHANNEL and cur.joined:
        label += f" ({len(cur.members)})"
    item(label)
    item(_connection_text(session))
    unsent = session.outbox.unsent  # typed while the connection was down, not written yet
    if unsent:
        item(f"{unsent} unsent", "class:pending")
    # Typed lines are accepted, only waiting their turn (/unqueue drops ours).
    if sending >= SENDING_HINT or (sending and session.outbox.queued):
        item(f"sending {sending}", "class:pending")
    view = views.get(cur)
    # (Lines drawn below: those the join/part filter hides do not count.)
    below = views.below(cur) + (view.cut > 0) if view is not None and view.scrolled else 0
    if below:  # (a tall line partly below counts)
        frags.append(("", " "))
        frags.append(("class:more", f"-- more: {below} below ({more_key}) --"))
    typing = session.typing_nicks(cur, now) if cur.typing else []
    if typing:
        item(typing_text([safe(n) for n in typing]), "class:typing")
    act, more = activity(buffers, cur)
    room = None if width is None else width - sum(text_width(f[1]) for f in frags)
    return frags + activity_fragments(act, more, room)


def activity_fragments(
    act: list[tuple[int, Buffer]], more: int, room: int | None = None
) -> Fragments:
    """`` [Act: 66!,3,+57]``, naming the first of ``act`` that fit in ``room`` cells
    (the others join the ``+N`` count); nothing when not even ``[Act: +N]`` fits."""
    for shown in range(len(act), -1, -1):
        frags: Fragments = []
        rest = more + len(act) - shown
        if not shown and not rest:
            return []
        frags.append(("", " [Act: "))
        for j, (number, buf) in enumerate(act[:shown]):
            if j:
                frags.append(("", ","))
            if buf.highlights:
                frags.append(("class:buffer_highlight", f"{number}!"))
            else:
                frags.append(("" if buf.unread else "class:buffer_activity", str(number)))
        if rest:
            frags.append(("", f",+{rest}" if shown else f"+{rest}"))
        frags.append(("", "]"))
        if room is None or sum(text_width(f[1]) for f in frags) <= room:
            return frags
    return []


# Buffers named in the status line's activity list; the rest are counted ("+14").
ACTIVITY_SHOWN = 12


def activity_level(buf: Buffer) -> int:
    """How much a buffer's news matters: 3 highlights or a private message, 2 messages,
    1 other lines (joins, parts...), 0 nothing."""
    if buf.highlights or (buf.unread and buf.kind is BufferKind.QUERY):
        return 3
    return 2 if buf.unread else 1 if buf.activity else 0


def activity(
    buffers: list[Buffer], current: Buffer, limit: int = ACTIVITY_SHOWN
) -> tuple[list[tuple[int, Buffer]], int]:
    """The status line's activity list as WeeChat's hotlist: (1-based number, buffer) of
    highlights and private messages first, then messages, then other activity, each in
    buffer order, at most ``limit`` of them; and how many more have any."""
    levels: list[list[tuple[int, Buffer]]] = [[], [], []]
    for i, buf in enumerate(buffers):
        level = activity_level(buf) if buf is not current else 0
        if level:
            levels[3 - level].append((i + 1, buf))
    ordered = levels[0] + levels[1] + levels[2]
    return ordered[:limit], max(0, len(ordered) - limit)


def typing_text(nicks: list[str]) -> str:
    if len(nicks) == 1:
        return f"{nicks[0]} is typing"
    if len(nicks) <= 3:
        return f"{', '.join(nicks)} are typing"
    return f"{len(nicks)} people are typing"


def _connection_text(session: Session) -> str:
    state = session.state
    if state is State.CONNECTED:
        if session.waiting_reply is not None:
            return f"no reply for {session.waiting_reply:.0f} s"
        lag = session.lag
        if lag is None:
            return "connected"
        return f"lag {lag * 1000:.0f} ms" if lag < 1 else f"lag {lag:.1f} s"
    if state is State.REGISTERING and session.waiting_reply is not None:
        return f"registering, no reply for {session.waiting_reply:.0f} s"
    if state is State.DISCONNECTED and session.reconnect_delay:
        return f"disconnected, retrying in {session.reconnect_delay:.0f} s"
    if state is State.DISCONNECTED and session.not_retrying:
        return "disconnected, not retrying: /reconnect"
    return state.value
