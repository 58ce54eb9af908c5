"""IRCv3 draft/read-marker: ``MARKREAD`` keeps, per account and target, the time of the
last message the user has read, and tells the user's other sessions (on every node).

The markers live in ``core.read_markers`` (read from the account store at start) so
that answers need no database round trip; the changes are written behind, in
batches (``save_marker``). Markers only move forward. They belong to the person, not to a
nick: a connection not logged in keeps its own on the connection (``Client.markers``),
gone with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chat.message import Message
from chat.names import is_channel_name, is_valid_nick
from chat.servertime import format_time, parse_time
from server.accounts.model import Markers

if TYPE_CHECKING:
    from ..core import ServerCore
    from ..state import Client

CAP = "draft/read-marker"
CONNECTION_MARKERS = 100  # targets a connection not logged in keeps markers for
# At most one batch of markers written in this time, besides the timer's (see save_marker).
MARKER_BATCH_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class SaveReadMarkers:
    """Effect: keep these (account, target, time_ms) in the account store (written
    behind: nothing waits for it; the store keeps the later of two)."""

    markers: tuple[tuple[str, str, int], ...]


def handle_markread(core: ServerCore, client: Client, msg: Message) -> None:
    """``MARKREAD <target>`` (get) and ``MARKREAD <target> timestamp=...`` (set)."""
    if not msg.params or not msg.params[0]:
        core.fail(client, "MARKREAD", "NEED_MORE_PARAMS", "Missing parameters")
        return
    target = msg.params[0]
    if not (is_channel_name(target) or is_valid_nick(target, core.config.nicklen)):
        core.fail(client, "MARKREAD", "INVALID_PARAMS", target, "Invalid target")
        return
    time_ms: int | None = None
    if len(msg.params) > 1:  # a bad request is told so first, logged in or not
        text = msg.params[1]
        try:
            time_ms = _marker_time(text)
        except ValueError:
            core.fail(client, "MARKREAD", "INVALID_PARAMS", text, "Invalid timestamp")
            return
    if client.account is None:
        _connection_marker(core, client, target, time_ms)
        return
    account, folded = core.fold(client.account), marker_key(core, target)
    stored = marker_of(core, account, folded)
    if time_ms is None:
        send_marker(core, client, target, stored)
        return
    time_ms = min(time_ms, round(core.clock() * 1000))  # never ahead of the server
    if stored is not None and time_ms <= stored:
        send_marker(core, client, target, stored)  # the newer one stands
        return
    if not marker_moved(core, account, folded, target, time_ms):
        send_marker(core, client, target, None)  # older than all ACCOUNT_MARKERS kept
        return
    save_marker(core, account, folded, time_ms)
    if core.cluster:
        core.publish("markread", (), core.uid(client), a=account, t=folded, tn=target, ms=time_ms)


def _marker_time(text: str) -> int:
    """``timestamp=...`` -> epoch ms; ValueError when malformed or before 1970. No
    message is older, and a time before the year 1 in UTC (``0001-01-01T00:00:00+00:01``
    parses) could not be formatted back: each answer, and each JOIN's, failed."""
    if not text.startswith("timestamp="):
        raise ValueError(text)
    seconds = parse_time(text[len("timestamp="):])
    if seconds < 0:
        raise ValueError(text)
    return round(seconds * 1000)


def _connection_marker(
    core: ServerCore, client: Client, target: str, time_ms: int | None
) -> None:
    """MARKREAD for a connection without an account: its markers live on it alone."""
    folded = core.fold(target)
    markers = client.markers
    stored = markers.get(folded) if markers else None
    if time_ms is None or (stored is not None and time_ms <= stored):
        send_marker(core, client, target, stored)
        return
    time_ms = min(time_ms, round(core.clock() * 1000))
    if markers is None:
        markers = client.markers = {}
    elif folded not in markers and len(markers) >= CONNECTION_MARKERS:
        del markers[next(iter(markers))]  # the oldest target makes room
    markers[folded] = time_ms
    send_marker(core, client, target, time_ms)


def marker_key(core: ServerCore, target: str) -> str:
    """What a marker is kept under: a channel's folded name; for a conversation, the
    partner's account while the nick is logged in (private history is kept per account,
    and so a nick change keeps the marker), else the folded nick (for an account's
    owner, its name)."""
    folded = core.fold(target)
    if is_channel_name(target):
        return folded
    holder = core.nicks.get(folded)
    if holder is not None and holder.account is not None:
        return core.fold(holder.account)
    return folded


def marker_of(core: ServerCore, account: str, folded: str) -> int | None:
    """The marker ``account`` keeps for the target ``folded`` (None: none)."""
    kept = core.read_markers.get(account)
    return kept.get(folded) if kept else None


def keep_marker(core: ServerCore, account: str, folded: str, time_ms: int) -> bool:
    """Keep a later marker (``Markers.keep``: past ACCOUNT_MARKERS the account's oldest
    goes, and the store drops the same one). False when the new one is that oldest,
    so not kept."""
    kept = core.read_markers.get(account)
    if kept is None:
        kept = core.read_markers[account] = Markers()
    return kept.keep(folded, time_ms)


def marker_moved(core: ServerCore, account: str, folded: str, shown: str, time_ms: int) -> bool:
    """Keep the new marker and tell every local session of the account that asked;
    False when it was not kept (see keep_marker)."""
    stored = marker_of(core, account, folded)
    if stored is not None and stored >= time_ms:
        return True
    if not keep_marker(core, account, folded, time_ms):
        return False
    for other in core.account_sessions.get(account, ()):
        if CAP in other.caps and other.closing is None:
            send_marker(core, other, shown, time_ms)
    return True


def send_marker(core: ServerCore, client: Client, target: str, time_ms: int | None) -> None:
    when = "*" if time_ms is None else "timestamp=" + format_time(time_ms / 1000)
    core.send(client, Message("MARKREAD", [target, when], core.config.name))


def marker_on_join(core: ServerCore, client: Client, channel_name: str) -> None:
    """After a JOIN, before its names end: the channel's marker (``*``: none)."""
    if client.account is not None:
        stored = marker_of(core, core.fold(client.account), core.fold(channel_name))
    else:
        stored = client.markers.get(core.fold(channel_name)) if client.markers else None
    send_marker(core, client, channel_name, stored)


def save_marker(core: ServerCore, account: str, folded: str, time_ms: int) -> None:
    """Write a moved marker behind: at once if no batch went in the last second, else
    with the others of this second (``core.tick``). A MARKREAD flood from many accounts
    wrote a transaction each, holding the database file's write lock, which the loop's
    history commit waits for, for most of every second."""
    core.markers_to_save[account, folded] = time_ms
    if core.clock() - core.markers_saved_at >= MARKER_BATCH_SECONDS:
        save_markers(core)


def save_markers(core: ServerCore) -> None:
    """The markers moved since the last batch, in one write behind: from ``core.tick``
    (once a second), and at shutdown."""
    if core.markers_to_save:
        rows = tuple((account, target, ms) for (account, target), ms
                     in core.markers_to_save.items())
        core.markers_to_save = {}
        core.markers_saved_at = core.clock()
        core.emit(SaveReadMarkers(rows))


def forget_markers(core: ServerCore, account: str) -> None:
    """The account was dropped: its markers go (the store drops its rows with it, and
    keeps none for an account it no longer has)."""
    core.read_markers.pop(account, None)
    pending = core.markers_to_save
    for key in [key for key in pending if key[0] == account]:
        del pending[key]
