"""Chat logs on disk: one text file per buffer, appended as lines arrive (``log_dir``).

Live lines are written as they come. History lines (CHATHISTORY when a channel is
joined or a query opens, PageUp, the gap fill after a reconnect) are written only when
they are newer than the file was when this run first opened it, and not already written
in this run (by msgid): what was missed while the client was away or disconnected lands
in the log, nothing twice. The file's times have whole seconds, so "newer" means a later
second: a line in the same second as the file's last one is taken as logged already.

A deleted message (IRCv3 message-redaction) is not taken out of the file: the deletion
is a line of its own, at the time it was made, naming the message by its sender and time:
``-!- carol deleted bob's message of 2026-11-21 19:55:03: spam``. A reaction (IRCv3
``+draft/react``) is a line of its own too, once (by its msgid; one from history only
when newer than the file), and so is taking it back:
``-!- alice reacted 👍 to bob's message of 2026-11-21 19:55:03``.

A message of several lines (IRCv3 multiline) is written once, its first line after the
time and nick and the others below it, indented under the text:
``2026-11-21 19:55:03 <bob> first`` then ``                          second``.

Our own messages are written once, when the server confirms them (their echo, or the
history after a reconnect; at once on a server without echo-message), never while
pending; one that failed was not said, and is not written.

The file follows the pane's order, the time order: a buffer's lines are held while its
history is loading (the join's, the gap fill after a reconnect, PageUp) and while a
message of ours in it waits for its echo, then written merged by time (our message
where the pane shows it: a 301 answering it comes after it). Never for ever: what is
held is written when the load ends or fails, and on ``close``; a hold for an echo ends
after HOLD_SECONDS, one for history after LOADING_HOLD_SECONDS (a reconnect's gap fill
waits its turn behind the other channels' requests, paced at a line a second). History
that comes later still is written after the lines released, below a line saying it is
late and what it is (missed messages, the history of a join, PageUp's scrollback): the
file then goes back in time, and says why. So is an answer that came after the client
gave its request up (``HistoryAdded.late``: the session's HISTORY_TIMEOUT), and every
PageUp page: older than the lines above it always (any older than the file's last line
at the start of the run are left out), it can never be merged in time order.

File names come from buffer names (``safe_name``): a name that had to be changed (an
unsafe character, too long) ends in ``~`` and a hash of the whole name, so that names
that differ never share a file; the server buffer's file is SERVER_FILE, which no name
gives. A file that cannot be written is given up alone, said once; the others go on.

Logs from before those names (``old_name``: ``server.log`` for the server buffer,
``bob_.log`` for ``bob|``) take the new name once, when their buffer is first logged
(``_adopt``), the server's at once: ``server.log`` is a nick's file now. Which files
are that old is listed when the client first logs into a folder (LEGACY_FILE), so a
file written under the new names is never taken for one. Where a file of the new name
is there already, the old one is kept beside it, renamed ``<new name>@old.log`` (``@``
is in no name a buffer gives; ``@old2``... when taken), never merged into it nor
left for another buffer; so is an old network folder's log when the folder of the
new name exists (``log_root`` moves its files in). Nothing is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .model import (
    MAX_CLOCK_SKEW,
    Buffer,
    BufferClosed,
    BufferKind,
    Delivery,
    DeliveryChanged,
    HistoryAdded,
    HistoryCause,
    Kind,
    Line,
    LineAdded,
    LineReacted,
    LineRedacted,
)

log = logging.getLogger("chat.client.chatlog")

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
OPEN_FILES = 32  # least recently written files are closed beyond this
SEEN_IDS = 2000  # msgids remembered per file for this run
HOLD_SECONDS = 5.0  # a buffer's lines are held at most this long for our message's echo
# ...and for its history: the gap fills of 90 channels take 90 s at a line a second, a
# second page each as long again; a server that never answers is not waited for longer.
LOADING_HOLD_SECONDS = 300.0
_UNSAFE = re.compile(r"[^\w#&+.-]")
# UTF-8 bytes of a name kept: with "~", the hash and ".log", well under the 255 bytes
# file systems take (NAME_MAX); a longer name is cut and hashed.
NAME_BYTES = 150
HASH_MARK = "~"  # never in a name kept as it is (_UNSAFE replaces it)
SERVER_FILE = "@server"  # the server buffer's log: no buffer name gives it (no "@" either)
OLD_SERVER_FILE = "server"  # ...and its name before: a nick called server has it now
# The logs in a folder that were there before the names changed and are not renamed
# yet, one a line (written when the client first logs there; no buffer gives a dot-file).
LEGACY_FILE = ".old-names"
OLD_MARK = "@old"  # an old log kept beside the new one of its buffer (no name has "@")
_EVENT_KINDS = frozenset({Kind.JOIN, Kind.PART, Kind.QUIT, Kind.KICK, Kind.NICK, Kind.TOPIC,
                          Kind.MODE, Kind.INFO, Kind.ERROR})


def safe_name(name: str) -> str:
    """A file name from a buffer or network name: no path separators, no dot-files, at
    most NAME_BYTES of UTF-8. One that had to be changed (not the case) ends in
    HASH_MARK and a hash of the whole name: ``#a/b`` and ``#a_b``, or ``bob|`` and
    ``bob_``, get files of their own."""
    lowered = name.lower()
    cleaned = _UNSAFE.sub("_", lowered).lstrip(".")
    cut = cleaned.encode()[:NAME_BYTES].decode("utf-8", "ignore")  # (whole characters)
    if cut and cut == lowered:
        return cut
    digest = hashlib.sha256(lowered.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cut or '_'}{HASH_MARK}{digest}"


def old_name(name: str) -> str:
    """The file name ``safe_name`` gave before names were bounded and hashed (to find an
    older client's log): cut at 100 characters, so two names could share a file."""
    return _UNSAFE.sub("_", name.lower())[:100].lstrip(".") or "_"


def log_root(log_dir: Path, network: str) -> Path:
    """The folder of ``network``'s logs, an older client's folder renamed to it first,
    or its logs moved into it when both exist (once: a folder this version logged into
    has a LEGACY_FILE, and is never moved)."""
    root, old = log_dir / safe_name(network), log_dir / old_name(network)
    if old == root or not old.is_dir() or (old / LEGACY_FILE).exists():
        return root
    if root.exists():
        _move_logs(old, root)
        return root
    try:
        old.rename(root)
    except OSError as exc:
        log.warning("cannot rename the chat logs %s to %s: %s", old, root, exc)
        return old  # (logged where they were, rather than split in two)
    return root


def _move_logs(old: Path, root: Path) -> None:
    """An older client's logs in ``old`` go into ``root``, the folder of the new name:
    each keeps its name where it is free (an old name still, listed in ``root``'s
    LEGACY_FILE when there is one, to take the new name when its buffer is logged),
    else goes beside the file there as ``<name>@old``; the server buffer's is
    SERVER_FILE's, or ``@server.old``. Nothing is overwritten; ``old`` goes once empty."""
    try:
        paths = sorted(old.glob("*.log"))
    except OSError as exc:
        log.warning("chat logs: cannot read %s: %s", old, exc)
        return
    moved = []
    for path in paths:
        if path.stem == OLD_SERVER_FILE:
            stem = _spare(root, SERVER_FILE, f"{SERVER_FILE}.old")
        else:
            stem = _spare(root, path.stem, path.stem + OLD_MARK)
        if _rename_file(path, root / f"{stem}.log") and stem == path.stem:
            moved.append(stem)
    listing = root / LEGACY_FILE
    try:
        legacy = set(listing.read_text(encoding="utf-8").splitlines()) if moved else None
    except FileNotFoundError:  # (not logged there yet: they are listed when it is)
        legacy = None
    except (OSError, ValueError) as exc:
        log.warning("chat logs: cannot read %s: %s", listing, exc)
        legacy = None
    if legacy is not None:
        _save_listing(root, legacy | set(moved))
    with contextlib.suppress(OSError):
        old.rmdir()  # (only when empty: anything else there stays)


def _save_listing(root: Path, legacy: set[str]) -> None:
    """Write ``root``'s LEGACY_FILE: ``legacy``, a stem a line."""
    try:
        (root / LEGACY_FILE).write_text(
            "".join(f"{stem}\n" for stem in sorted(legacy)), encoding="utf-8")
    except OSError as exc:
        log.warning("chat logs: cannot write %s: %s", root / LEGACY_FILE, exc)


def _spare(folder: Path, first: str, then: str) -> str:
    """``first`` when ``folder`` has no log of that name, else the first free of
    ``then``, ``then2``, ``then3``..."""
    if not (folder / f"{first}.log").exists():
        return first
    n = 1
    while (folder / f"{then}{n if n > 1 else ''}.log").exists():
        n += 1
    return f"{then}{n if n > 1 else ''}"


def _rename_file(source: Path, target: Path) -> bool:
    """Rename ``source`` to ``target``, never over a file there. True when done."""
    try:
        if target.exists():
            return False
        source.rename(target)
    except OSError as exc:
        log.warning("chat logs: cannot rename %s to %s: %s", source, target, exc)
        return False
    return True


def format_line(line: Line) -> str:
    stamp = time.strftime(TIME_FORMAT, time.localtime(line.time))
    if line.kind is Kind.MESSAGE:
        head = f"{stamp} <{line.prefix}{line.nick}> "
    elif line.kind is Kind.ACTION:
        head = f"{stamp} * {line.nick} "
    elif line.kind is Kind.NOTICE:
        head = f"{stamp} -{line.nick}- "
    else:
        actor = f"{line.nick} " if line.nick and line.kind in _EVENT_KINDS else ""
        head = f"{stamp} -!- {actor}"
    return head + indent_lines(line.text, len(head))


def indent_lines(text: str, width: int) -> str:
    """A multi-line message's text with its lines after the first indented by ``width``
    spaces (under the first line's text); other text as it is."""
    if "\n" not in text:
        return text
    return text.replace("\n", "\n" + " " * width)


def format_redaction(event: LineRedacted) -> str:
    """The log line of a deletion: when it was made, who deleted which message."""
    stamp = time.strftime(TIME_FORMAT, time.localtime(event.time))
    sent = time.strftime(TIME_FORMAT, time.localtime(event.old.time))
    return f"{stamp} -!- {event.describe(sent)}"


def format_reaction(event: LineReacted) -> str:
    """The log line of a reaction (or of taking it back): when, who, to which message."""
    stamp = time.strftime(TIME_FORMAT, time.localtime(event.time))
    sent = time.strftime(TIME_FORMAT, time.localtime(event.old.time))
    return f"{stamp} -!- {event.describe(sent)}"


def _newest_time(path: Path) -> float:
    """The time of the file's last line, 0 when there is none (or it cannot be read).
    A line dated in the future (past MAX_CLOCK_SKEW: a bad server time written by an
    older version) is passed over, or no history would ever be logged again."""
    latest = time.time() + MAX_CLOCK_SKEW
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return 0.0
    for text in reversed(tail):
        try:
            when = time.mktime(time.strptime(text[:19], TIME_FORMAT))
        except (ValueError, OverflowError):
            continue
        if when <= latest:
            return when
    return 0.0


class _File:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.since = _newest_time(path)  # history at or before this is in the file already
        self.failed = False  # a write failed: this file is not written again in this run
        self._order: deque[str] = deque()
        self._ids: set[str] = set()

    def first_sight(self, msgid: str) -> bool:
        """True the first time ``msgid`` is seen in this run (the last SEEN_IDS count)."""
        if msgid in self._ids:
            return False
        self._ids.add(msgid)
        self._order.append(msgid)
        if len(self._order) > SEEN_IDS:
            self._ids.discard(self._order.popleft())
        return True


@dataclass
class _Held:
    """One line held back: ``text`` None while it is our message awaiting its echo."""

    time: float  # where the pane has it
    text: str | None
    pending: Line | None = None


@dataclass
class _Hold:
    name: str
    entry: _File
    started: float
    lines: list[_Held] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    timer_at: float = 0.0  # (the clock's time the timer is set for)

    def waiting(self) -> bool:
        return any(held.text is None for held in self.lines)


class ChatLog:
    """Subscribe ``handle`` to a connection's events; ``close`` at exit."""

    def __init__(
        self,
        root: Path,
        hold_seconds: float = HOLD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        loading_hold_seconds: float = LOADING_HOLD_SECONDS,
    ) -> None:
        self.root = root
        self.hold_seconds = hold_seconds
        self.loading_hold_seconds = loading_hold_seconds
        self._clock = clock
        self._files: dict[str, _File] = {}
        self._open: OrderedDict[str, TextIO] = OrderedDict()
        self._holds: dict[Buffer, _Hold] = {}
        # Buffers whose history took longer than the hold: what it brings now is late,
        # written where it lands (below a line saying so), and holds nothing back.
        self._late: set[Buffer] = set()
        self.failed = False  # the folder cannot be made: logging stopped (said once)
        self._legacy: set[str] | None = None  # old-named logs not renamed yet (LEGACY_FILE)

    def handle(self, event: object) -> None:
        if self.failed:
            return
        buffer = getattr(event, "buffer", None)
        if buffer is not None and buffer.kind is BufferKind.SEARCH:
            return  # search results: old messages, logged (if at all) where they were said
        if isinstance(event, LineAdded):
            self._added(event.buffer, event.line)
        elif isinstance(event, DeliveryChanged):
            self._delivered(event)
        elif isinstance(event, HistoryAdded) and event.lines:
            self._write(event.buffer, list(event.lines), history=event.cause, late=event.late)
        elif isinstance(event, LineRedacted):
            self._put(event.buffer, event.time, [format_redaction(event) + "\n"])
        elif isinstance(event, LineReacted):
            self._reaction(event)
        self._release(closed=event.buffer if isinstance(event, BufferClosed) else None)

    def close(self) -> None:
        self._release(everything=True)
        for handle in self._open.values():
            handle.close()
        self._open.clear()

    def _added(self, buffer: Buffer, line: Line) -> None:
        if line.delivery is Delivery.DELIVERED:
            self._write(buffer, [line], history=None)
        elif line.delivery is Delivery.PENDING and not line.note:
            # About to be written: its echo replaces it in place, above what comes
            # meanwhile. (One "not sent yet" moves to the bottom when it is written.)
            self._hold(buffer).lines.append(_Held(line.time, None, line))

    def _delivered(self, event: DeliveryChanged) -> None:
        hold = self._holds.get(event.buffer)
        held = next((h for h in hold.lines if h.pending is event.old), None) if hold else None
        if hold is None or held is None:
            if event.line.delivery is Delivery.DELIVERED:
                self._write(event.buffer, [event.line], history=None)
            return
        if event.line.delivery is Delivery.PENDING:
            held.pending = event.line
        elif event.line.delivery is Delivery.FAILED:
            hold.lines.remove(held)
        else:
            held.pending = None
            held.text = "".join(self._lines(hold.entry, [event.line], history=False))

    def _hold(self, buffer: Buffer) -> _Hold:
        hold = self._holds.get(buffer)
        if hold is None:
            name, entry = self._file(buffer)
            hold = self._holds[buffer] = _Hold(name, entry, self._clock())
            self._arm(hold, self._until(buffer, hold))
        return hold

    def _holding(self, buffer: Buffer) -> bool:
        return buffer in self._holds or self._loading(buffer)

    def _loading(self, buffer: Buffer) -> bool:
        return buffer.history_loading and buffer not in self._late

    def _until(self, buffer: Buffer, hold: _Hold) -> float:
        """When ``hold`` is over at the latest (the clock's time)."""
        seconds = self.loading_hold_seconds if self._loading(buffer) else self.hold_seconds
        return hold.started + seconds

    def _arm(self, hold: _Hold, at: float) -> None:
        """Release at ``at`` even when no event comes (history that never does)."""
        if hold.timer is not None:
            if hold.timer_at == at:
                return
            hold.timer.cancel()
            hold.timer = None
        with contextlib.suppress(RuntimeError):  # (no loop: the next event or close)
            loop = asyncio.get_running_loop()
            hold.timer = loop.call_later(max(0.0, at - self._clock()), self._release)
            hold.timer_at = at

    def _put(self, buffer: Buffer, when: float, out: list[str]) -> None:
        """Append ``out`` (lines at time ``when``), or hold it while the buffer is held."""
        if not out:
            return
        if self._holding(buffer):
            self._hold(buffer).lines.append(_Held(when, "".join(out)))
        else:
            name, entry = self._file(buffer)
            self._append(name, entry, out)

    def _release(self, *, everything: bool = False, closed: Buffer | None = None) -> None:
        """Write the holds that are over: their history came (or failed), our messages
        in them were answered, the buffer was closed, or they were held too long."""
        now = self._clock()
        for buffer, hold in list(self._holds.items()):
            over = not buffer.history_loading and not hold.waiting()
            until = self._until(buffer, hold)
            if not (everything or over or now >= until or buffer is closed):
                self._arm(hold, until)
                continue
            if now >= until and self._loading(buffer) and not everything:
                self._late.add(buffer)
            del self._holds[buffer]
            if hold.timer is not None:
                hold.timer.cancel()
            ordered = sorted(hold.lines, key=lambda held: held.time)  # (stable)
            if not self.failed:
                self._append(hold.name, hold.entry,
                             [held.text for held in ordered if held.text is not None])
        self._late = {b for b in self._late if b.history_loading and b is not closed}

    def _file(self, buffer: Buffer) -> tuple[str, _File]:
        name = SERVER_FILE if buffer.kind is BufferKind.SERVER else safe_name(buffer.name)
        entry = self._files.get(name)
        if entry is None:
            legacy = self._legacy_names()  # (the server buffer's renamed first)
            if buffer.kind is not BufferKind.SERVER:
                self._adopt(legacy, name, old_name(buffer.name))
            entry = self._files[name] = _File(self.root / f"{name}.log")
        return name, entry

    def _adopt(self, legacy: set[str], name: str, old: str) -> None:
        """The buffer logged as ``name`` now is first logged in this run: an older
        client's log of it, as ``old``, takes the new name, or, when a file has that
        name already, ``<name>@old`` beside it (neither loses a line); a file that
        already has the new name is the buffer's, never renamed later (for another
        buffer whose old name it is: ``_bob_`` is ``[bob]``'s old name)."""
        if name in legacy:
            legacy.discard(name)
        elif old in legacy:
            legacy.discard(old)
            self._rename(old, _spare(self.root, name, name + OLD_MARK))
        else:
            return
        self._save_legacy(legacy)

    def _legacy_names(self) -> set[str]:
        """The old-named logs left to rename, listed the first time the folder is
        logged into; the server buffer's is renamed then."""
        if self._legacy is not None:
            return self._legacy
        if not self.root.is_dir():
            return set()  # (nothing old; listed when the first file makes the folder)
        try:
            text = (self.root / LEGACY_FILE).read_text(encoding="utf-8")
        except FileNotFoundError:
            self._legacy = self._list_old_logs()
            self._save_legacy(self._legacy)
        except (OSError, ValueError) as exc:
            log.warning("chat logs: cannot read %s: %s", self.root / LEGACY_FILE, exc)
            self._legacy = set()
        else:
            self._legacy = set(text.splitlines())
        return self._legacy

    def _list_old_logs(self) -> set[str]:
        """The logs in the folder before this version logged there (not the new names
        only it gives), the server buffer's moved to its new name."""
        try:
            stems = {p.stem for p in self.root.glob("*.log")
                     if HASH_MARK not in p.stem and p.stem != SERVER_FILE}
        except OSError:
            return set()
        if OLD_SERVER_FILE in stems:
            stems.discard(OLD_SERVER_FILE)
            # (With a log of the new name already, from the version that changed the
            # names, the old one is kept beside it: never a nick's file.)
            self._rename(OLD_SERVER_FILE, _spare(self.root, SERVER_FILE, f"{SERVER_FILE}.old"))
        return stems

    def _rename(self, old: str, new: str) -> None:
        _rename_file(self.root / f"{old}.log", self.root / f"{new}.log")

    def _save_legacy(self, legacy: set[str]) -> None:
        _save_listing(self.root, legacy)

    def _reaction(self, event: LineReacted) -> None:
        _, entry = self._file(event.buffer)
        if not event.removed and event.msgid is not None and not entry.first_sight(event.msgid):
            return  # written already
        if event.history and not event.removed and int(event.time) <= entry.since:
            return  # before the file's last line: in it already
        self._put(event.buffer, event.time, [format_reaction(event) + "\n"])

    def _write(
        self, buffer: Buffer, lines: list[Line], *, history: HistoryCause | None,
        late: bool = False,
    ) -> None:
        """Write (or hold) ``lines``: live ones, or ``history`` asked for that cause
        (``late``: answered after the request was given up, its hold long over)."""
        _, entry = self._file(buffer)
        held = [_Held(line.time, text) for line in lines
                for text in self._lines(entry, [line], history=history is not None)]
        # (A PageUp page is older than every line written above it: never in order.)
        if history is not None and held and (
            late or history == "older" or buffer in self._late
        ):
            held.insert(0, _Held(held[0].time, self._late_note(held, history, buffer)))
        if self._holding(buffer):
            self._hold(buffer).lines += held
        else:
            self._put(buffer, 0.0, [h.text for h in held if h.text is not None])

    @staticmethod
    def _late_note(held: list[_Held], cause: HistoryCause, buffer: Buffer) -> str:
        """The line before late history, at its first line's time: where the file goes
        back in time, it says why, in the words of what the history was asked for."""
        first, last = (time.strftime("%H:%M:%S", time.localtime(t))
                       for t in (held[0].time, held[-1].time))
        span = f"of {first}" if first == last else f"from {first} to {last}"
        stamp = time.strftime(TIME_FORMAT, time.localtime(held[0].time))
        if cause == "missed":  # a reconnect's gap fill
            what = f"Missed messages {span} follow, late: their history came"
        elif cause == "older":
            what = f"Older messages {span} follow, late: the scrollback asked for with PageUp came"
        else:
            opening = "opening the query" if buffer.kind is BufferKind.QUERY else "joining"
            what = f"Earlier messages {span} follow, late: the history fetched on {opening} came"
        return f"{stamp} -!- {what} after the lines above\n"

    @staticmethod
    def _lines(entry: _File, lines: list[Line], *, history: bool) -> list[str]:
        """The file's lines for ``lines``: those not written yet."""
        out = []
        for line in lines:
            if line.msgid is not None and not entry.first_sight(line.msgid):
                continue
            if history and int(line.time) <= entry.since:  # the file has whole seconds
                continue
            out.append(format_line(line) + "\n")
        return out

    def _append(self, name: str, entry: _File, out: list[str]) -> None:
        if not out or entry.failed:
            return
        try:
            handle = self._handle(name, entry)
            handle.write("".join(out))
            handle.flush()
        except OSError as exc:
            if not self.root.is_dir():  # no folder: no file can be written
                self.failed = True
                log.warning("chat logs stopped: cannot write %s: %s", entry.path, exc)
                self.close()
                return
            # One file (a name the file system refuses, a full quota): the others go on.
            entry.failed = True
            log.warning("chat log of this buffer stopped: cannot write %s: %s", entry.path, exc)
            with contextlib.suppress(OSError):
                if (broken := self._open.pop(name, None)) is not None:
                    broken.close()

    def _handle(self, name: str, entry: _File) -> TextIO:
        handle = self._open.pop(name, None)
        if handle is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._legacy_names()  # (a folder just made: listed, with nothing old in it)
            handle = entry.path.open("a", encoding="utf-8")
            if len(self._open) >= OPEN_FILES:
                _, oldest = self._open.popitem(last=False)
                oldest.close()
        self._open[name] = handle  # most recently written last
        return handle
