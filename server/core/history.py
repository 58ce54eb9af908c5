"""Core side of history: what to store, CHATHISTORY parsing, and formatting replies.

The core never reads or writes the store: it emits ``StoreMessage`` and
``HistoryRequest`` effects, and the transport answers requests by calling
``ServerCore.history_ready`` with the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from chat import numerics as N
from chat.digits import is_digits
from chat.message import MAX_LINE_BODY, Message, parse_tags, serialize_tags
from chat.msgid import is_msgid, timestamp_ms
from chat.multiline import split_concat
from chat.names import CHANTYPES
from chat.servertime import format_time, parse_time
from chat.utf8 import utf8_size
from server.history.model import (
    CLOSED_COMMAND,
    ENDED_COMMAND,
    NO_REF,
    OPENED_COMMAND,
    REDACT_EVENT,
    TRANSIT_PREFIX,
    TRANSIT_RUN,
    DirectPair,
    NewMessage,
    Query,
    Ref,
    Search,
    StoredMessage,
)
from server.history.query import EVENT_COMMANDS, TARGETS_WALK, walk_limit

from .multiline import MultilineRelay, fallback_tags, render, stored_lines
from .relay import Relay
from .state import FORM_MULTILINE

if TYPE_CHECKING:
    from .core import ServerCore
    from .state import Channel, Client

SUBCOMMANDS = ("LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN", "TARGETS")
STORED_COMMANDS = frozenset({"PRIVMSG", "NOTICE", "TAGMSG"})
# Channel events stored beside the messages (ServerCore.on_channel_event), served to
# draft/event-playback clients where they happened.
STORED_EVENTS = frozenset(EVENT_COMMANDS)
EVENT_PLAYBACK = "draft/event-playback"
# Client tags that say something about now, not the conversation: never stored (IRCv3
# typing), so a TAGMSG carrying nothing else is relayed and not kept.
EPHEMERAL_TAGS = frozenset({"+typing", "+draft/typing"})
# A row keeps at most this much of its tags (serialised, UTF-8). What clients act on in
# history (+draft/reply, +draft/react, +draft/channel-context, account, bot) is tens of
# bytes; 4 KB of client tags made every row 4.7 times larger and a CHATHISTORY of 100
# rows 460 KB. Live relay still carries them whole (flood.line_cost charges for them).
STORED_TAG_BYTES = 512
# Clients with it are sent REDACTs, live and in history (handlers/redact.py).
REDACT_CAP = "draft/message-redaction"


@dataclass(frozen=True, slots=True)
class StoreMessage:
    """Effect: commit this message before the tick's output is flushed."""

    message: NewMessage


@dataclass(frozen=True, slots=True)
class HistoryStale:
    """Effect: another cluster node stored a message in this channel (folded), so any
    window of it this node cached is out of date."""

    target: str


@dataclass(frozen=True, slots=True)
class ChannelEnded:
    """Effect: this channel (folded) ended here, its last member that this node knows
    of gone: a window of it this node cached has nobody to serve and is dropped."""

    target: str


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """Effect: run ``query`` (or a TARGETS listing) and call ``core.history_ready``."""

    request_id: int
    query: Query | None
    targets: tuple[str, ...] = ()
    start_ms: int = 0
    end_ms: int = 0
    limit: int = 100  # TARGETS: most targets to list
    account: str = ""  # TARGETS: also this (folded) account's private conversations
    search: Search | None = None  # SEARCH (handlers/search.py), answered with rows


@dataclass(slots=True)
class Pending:
    conn_id: int
    kind: Literal["chathistory", "playback", "targets", "search"]
    channel: str  # display name used in replies
    label: str | None = None  # labeled-response label of the request, if any
    playback: Playback | None = None  # kind "playback": what the joiner has seen


def may_read_history(core: ServerCore, channel: Channel, client: Client) -> bool:
    """Members may; outsiders only where they could look in and join without more ado.

    Not a secret or invite-only channel, not one with a key, and not banned from it:
    whoever could not join must not read what was said there either.
    """
    if client in channel.members:
        return True
    if is_closed(channel):
        return False
    from .handlers.channels import is_banned  # at call time: the handlers import this module

    return not is_banned(core, channel, client)


def is_closed(channel: Channel) -> bool:
    """Secret, invite-only or keyed: closed to outsiders, and so is its history."""
    return "s" in channel.modes or "i" in channel.modes or channel.key is not None


def end_private_channel(core: ServerCore, channel: Channel) -> None:
    """``channel`` ends (its last member left, or the server stops): if it is not
    registered and was closed to outsiders, an ENDED_COMMAND row marks where, and no
    read serves its rows up to it again.

    Whoever makes a channel of that name later, or reads it from outside, could not
    have read what was said behind the closed door; an open channel's history was
    open to anyone and goes on. A registered channel keeps its modes, and its history.

    Any channel that ends also has its cached window dropped (``ChannelEnded``): a
    client churning through new channels (JOIN of many, JOIN 0) otherwise left a
    window in Redis, read by its join playback, for each of them.
    """
    if not core.history_enabled:
        return
    if is_closed(channel) and channel.folded not in core.registered_channels:
        core.emit(StoreMessage(marker_row(core, channel.folded, channel.name, ENDED_COMMAND)))
    core.emit(ChannelEnded(channel.folded))


def wait_for_cluster_view(core: ServerCore, client: Client, name: str) -> None:
    """A JOIN that would make anew a channel every node of a killed cluster left
    closed, before this node knows whether another node holds it: refused for now
    (at most ``cluster_dead_after`` after start), since its playback might otherwise
    show what was said behind the closed door (``end_unended``)."""
    core.reply(client, N.ERR_UNAVAILRESOURCE, name, "Channel is temporarily unavailable")


def end_unended(core: ServerCore) -> None:
    """Clustered, once this node's view of the cluster is whole (every node it found
    at start heard afresh, or gone): the channels a killed cluster left closed that no
    node holds end now, as a single server ends them at its start. One that a live
    node holds goes on, and ends when its last member leaves."""
    for folded, name in core.unended.items():
        if folded not in core.channels:
            core.emit(StoreMessage(marker_row(core, folded, name, ENDED_COMMAND)))
    core.unended = {}


def note_closed(core: ServerCore, channel: Channel, was_closed: bool) -> None:
    """A MODE made ``channel`` closed, or open again: a CLOSED_COMMAND or OPENED_COMMAND
    row says so, for the next start after a kill -9 (which ends no channel) to end
    those left closed (``left_closed``)."""
    closed = is_closed(channel)
    if core.history_enabled and closed != was_closed:
        command = CLOSED_COMMAND if closed else OPENED_COMMAND
        core.emit(StoreMessage(marker_row(core, channel.folded, channel.name, command)))


def marker_row(core: ServerCore, folded: str, name: str, command: str) -> NewMessage:
    """A row of the server's own about the channel ``folded`` (ENDED, CLOSED, OPENED):
    never served, it tells the reads where a channel ended."""
    msgid = core.msgids.next(core.clock())
    return NewMessage(folded, msgid, core.msgids.last_ms, core.config.name, command, name, "")


def dm_key(a: str, b: str) -> str:
    """The history target of the private conversation between the (folded) accounts
    ``a`` and ``b``: '$' occurs in no channel or account name."""
    first, second = sorted((a, b))
    return f"${first}${second}"


def is_dm_key(target: str) -> bool:
    return target[:1] == "$"


def transit_key(uid: str, run: str = "") -> str:
    """The history target of the transit rows to the cluster user ``uid`` (``node:conn``):
    private messages no conversation keeps, read back only by its node after a gap.
    ``run``, its node's run (``cluster.apply.run_of``) follows after a '/' (its ':' as
    '.', so the node's prefix and PostgreSQL's counter per node still end at the uid's
    last ':'): a uid repeats once its node restarts, and a row to a connection of an
    earlier run must never reach the newcomer that has its uid."""
    if not run:
        return TRANSIT_PREFIX + uid
    return f"{TRANSIT_PREFIX}{uid}{TRANSIT_RUN}{run.replace(':', '.')}"


def transit_recipient(target: str) -> tuple[str, str]:
    """A transit row's ``(uid, run)`` (run as in ``transit_key``, or "" in rows from
    before runs were kept)."""
    body = target[len(TRANSIT_PREFIX):]
    uid, sep, run = body.rpartition(TRANSIT_RUN)
    if not sep or ":" in run:  # no run (the uid's conn is digits: a '/' is the node's)
        return body, ""
    return uid, run.replace(".", ":")


def sender_key(core: ServerCore, client: Client) -> str:
    """Who sent a message, as stored for REDACT: the account when logged in, else
    this connection."""
    if client.account is not None:
        return "a:" + core.fold(client.account)
    return connection_key(core, client)


def connection_key(core: ServerCore, client: Client) -> str:
    """This connection, for good: its uid and this server run's id (conn ids restart)."""
    return f"c:{core.uid(client)}:{core.run_id}"


def message_to_store(
    target: str,
    channel: str,
    source: str,
    command: str,
    text: list[str],
    client_tags: dict[str, str] | None,
    msgid: str,
    time_ms: int,
    dm: DirectPair | None = None,
    sender: str = "",
) -> NewMessage | None:
    if client_tags and not EPHEMERAL_TAGS.isdisjoint(client_tags):
        client_tags = {k: v for k, v in client_tags.items() if k not in EPHEMERAL_TAGS}
    tags = serialize_tags(client_tags) if client_tags else ""
    if client_tags and utf8_size(tags) > STORED_TAG_BYTES:
        client_tags = tags_to_store(client_tags)
        tags = serialize_tags(client_tags) if client_tags else ""
    if command == "TAGMSG" and not any(k[0] == "+" for k in client_tags or ()):
        return None  # nothing a client said: only the server's "bot" tag, or nothing
    if text and is_ctcp_request(text[0]):
        return None
    return NewMessage(  # positional: half the cost of keywords, once per message
        target,
        msgid,
        time_ms,
        source,
        command,
        channel,
        text[0] if text else "",
        tags,
        dm,
        sender,
    )


def tags_to_store(tags: dict[str, str]) -> dict[str, str]:
    """``tags`` within STORED_TAG_BYTES: the server's all, then the client-only ones in
    their order, each that still fits (an oversized one is dropped, the small ones after
    it kept)."""
    kept = {k: v for k, v in tags.items() if k[0] != "+"}
    # Each tag counted with a ';' before it: one more than the limit, for the first.
    room = STORED_TAG_BYTES + 1 - (utf8_size(serialize_tags(kept)) + 1 if kept else 0)
    for key, value in tags.items():
        if key[0] == "+":
            size = utf8_size(serialize_tags({key: value})) + 1
            if size <= room:
                kept[key] = value
                room -= size
    return kept


def is_ctcp_request(text: str) -> bool:
    """A CTCP message other than ACTION (VERSION, PING, DCC...): asked of the clients
    present, not said to the channel; replayed, clients show it as text."""
    return text[:1] == "\x01" and text[1:].partition(" ")[0].rstrip("\x01") != "ACTION"


def parse_ref(token: str) -> Ref | None:
    if token == "*":
        return NO_REF
    kind, sep, value = token.partition("=")
    if not sep:
        return None
    if kind == "msgid" and is_msgid(value):
        return Ref("msgid", msgid=value)
    if kind == "timestamp":
        try:
            return Ref("timestamp", time_ms=round(parse_time(value) * 1000))
        except ValueError:
            return None
    return None


def handle_chathistory(core: ServerCore, client: Client, msg: Message) -> None:
    params = msg.params
    sub = params[0].upper()
    fail = core.fail
    if not core.history_enabled:
        core.reply(client, "421", "CHATHISTORY", "Unknown command")
        return
    if sub not in SUBCOMMANDS:
        fail(client, "CHATHISTORY", "INVALID_PARAMS", params[0], "Unknown subcommand")
        return
    needed = 5 if sub == "BETWEEN" else 4  # subcommand, target/refs..., limit
    if len(params) < needed:
        fail(client, "CHATHISTORY", "INVALID_PARAMS", sub, "Not enough parameters")
        return
    if len(params) > needed:
        fail(client, "CHATHISTORY", "INVALID_PARAMS", sub, "Too many parameters")
        return
    limit_text = params[needed - 1]
    if not is_digits(limit_text):
        fail(client, "CHATHISTORY", "INVALID_PARAMS", sub, "Invalid limit")
        return
    limit = min(int(limit_text), core.config.chathistory_limit)
    if sub == "TARGETS":
        a, b = parse_ref(params[1]), parse_ref(params[2])
        if a is None or b is None or a.kind != "timestamp" or b.kind != "timestamp":
            fail(client, "CHATHISTORY", "INVALID_PARAMS", sub, "Invalid timestamp")
            return
        targets = tuple(client.channels)
        if not read_charged(core, client, sub, "*", targets_cost(core, len(targets))):
            return
        rid = core.new_history_request(client, "targets", "")
        account = core.fold(client.account) if client.account is not None else ""
        core.emit(HistoryRequest(rid, None, targets, a.time_ms, b.time_ms, limit, account))
        return
    target = params[1]
    channel = core.channels.get(core.fold(target))
    key = channel.folded if channel is not None else conversation_of(core, client, target)
    if key is None or (channel is not None and not may_read_history(core, channel, client)):
        fail(
            client, "CHATHISTORY", "INVALID_TARGET", sub, target, "Messages could not be retrieved"
        )
        return
    ref = parse_ref(params[2])
    ref2 = parse_ref(params[3]) if sub == "BETWEEN" else NO_REF
    if (
        ref is None
        or ref2 is None
        or (ref.kind == "none" and sub != "LATEST")
        or (sub == "BETWEEN" and ref2.kind == "none")
    ):
        fail(client, "CHATHISTORY", "INVALID_PARAMS", sub, params[2], "Invalid reference")
        return
    q = Query(
        sub,  # type: ignore[arg-type]
        key,
        ref,
        limit,
        ref2,
        with_tagmsg=wants_tagmsg(client),
        with_events=EVENT_PLAYBACK in client.caps,
        with_redactions=REDACT_CAP in client.caps,
    )
    if not read_charged(core, client, sub, target, read_cost(core, q)):
        return
    rid = core.new_history_request(client, "chathistory", channel.name if channel else target)
    core.emit(HistoryRequest(rid, q))


def read_cost(core: ServerCore, q: Query) -> int:
    """The rows a CHATHISTORY read of ``q`` may examine: its walk (``walk_limit``, two
    of them for AROUND), each no longer than a channel's rows (``history_max_rows``)."""
    limits = (q.limit // 2, q.limit) if q.subcommand == "AROUND" else (q.limit,)
    return sum(_rows_walked(core, walk_limit(n)) for n in limits)


def targets_cost(core: ServerCore, channels: int) -> int:
    """The rows a TARGETS read may examine: TARGETS_WALK per channel. (The account's
    conversations are one index range of at most ``limit`` rows: not counted.)"""
    return channels * _rows_walked(core, TARGETS_WALK)


def _rows_walked(core: ServerCore, walk: int) -> int:
    """A walk of ``walk`` rows of one target, which holds ``history_max_rows`` at most."""
    cap = core.config.history_max_rows
    return min(walk, cap) if cap else walk


def read_charged(core: ServerCore, client: Client, sub: str, target: str, rows: int) -> bool:
    """Whether the host's scan budget (``core.scan_allowed``) pays for a CHATHISTORY read
    of ``rows`` rows; if not, the client is told to try again (the spec's FAIL).

    Uncharged, ten connections of one address kept the one history reader busy and
    every other read and join playback waited seconds (RELIABILITY.md, fifth round).
    Charged up front by what a read may walk, 10,000 rows at the defaults: the burst
    pays for 20, and one connection's flood rate (5 lines/s) is the budget's rate.
    """
    if core.scan_allowed(client, rows):
        return True
    core.fail(client, "CHATHISTORY", "MESSAGE_ERROR", sub, target,
              "Too much history was read from your host just now; try again in a few seconds")
    return False


def conversation_of(core: ServerCore, client: Client, nick: str) -> str | None:
    """The history key of ``client``'s private conversation with ``nick``: only between
    accounts (a nick is not an identity). ``nick`` is a user logged in now, or an
    account's name (its owner may be away)."""
    if client.account is None or nick[:1] in CHANTYPES:
        return None
    folded = core.fold(nick)
    holder = core.nicks.get(folded)
    if holder is not None and holder.account is not None:
        partner = core.fold(holder.account)
    elif folded in core.account_names:
        partner = folded
    else:
        return None
    return dm_key(core.fold(client.account), partner)


# Join playback without a departure in memory (after a restart, or a first visit) reads
# this many rows per message it may play: the channel's events too, among which it
# looks for where the joiner left (``last_departure``).
PLAYBACK_WINDOW = 4
# A departure older than this is not used (nor, as newer ones replace it, kept): it
# matters for a reconnect or a rejoin minutes later; after longer, the stored events
# (``last_departure``) or the last N messages serve.
DEPARTURE_MAX_AGE_MS = 30 * 60 * 1000


@dataclass(slots=True)
class Playback:
    """A join playback under way: where its rows end and what the joiner has seen."""

    folded: str  # the channel
    until: str  # msgid taken at the join: later messages reach the joiner live
    since: str | None  # msgid marking its last departure, when this server run saw it
    fallback: bool  # no departure in memory: look for one among the stored events


def departure_keys(core: ServerCore, client: Client) -> tuple[str, ...]:
    """Who ``client`` is whatever its nick: its account when logged in, and its
    user@host (ident and cloaked host)."""
    host = "h:" + core.fold(f"{client.user}@{client.host}")
    if client.account is not None:
        return ("a:" + core.fold(client.account), host)
    return (host,)


def record_departure(core: ServerCore, client: Client, folded: str) -> None:
    """``client`` left channel ``folded``: its join playback starts after this.

    A fresh msgid marks the moment: it sorts after every message the client may have
    seen there and before every later one, even within the same millisecond.
    """
    mark = core.msgids.next(core.clock())
    for key in departure_keys(core, client):
        core.departures.record(f"{folded} {key}", mark)


def departed(core: ServerCore, client: Client, folded: str) -> str | None:
    """The mark of ``client``'s newest known departure from ``folded``, under any key."""
    oldest = int(core.clock() * 1000) - DEPARTURE_MAX_AGE_MS
    marks = [m for k in departure_keys(core, client)
             if (m := core.departures.get(f"{folded} {k}")) is not None
             and timestamp_ms(m) >= oldest]
    return max(marks) if marks else None


def gets_events(client: Client) -> bool:
    """Whether history sent to ``client`` includes channel events."""
    return "batch" in client.caps and "server-time" in client.caps and (
        EVENT_PLAYBACK in client.caps)


def request_playback(core: ServerCore, client: Client, folded: str, name: str) -> None:
    """Ask for the channel's newest rows to replay to ``client``, who just joined.

    Not when another session of its account is in the channel: that one has seen it all.
    """
    if core.config.history_playback <= 0:
        return
    if client.account is not None:
        channel = core.channels.get(folded)
        sessions = core.account_sessions.get(core.fold(client.account), ())
        if channel is not None and any(s is not client and s in channel.members
                                       for s in sessions):
            return
    # Bound the replay at the join: later messages reach the joiner live.
    now = core.clock()
    until = core.msgids.next(now)
    since = departed(core, client, folded)
    # Reading the stored events (past the cache, from the store) is worth it only while
    # departures from before this run could still be young enough to be in memory; later
    # a departure not in memory is older than any kept, and the last N are the answer.
    # (A soak's churn of joins through that path tripled echo latency.)
    recent_start = int(now * 1000) - core.started_ms < DEPARTURE_MAX_AGE_MS
    fallback = since is None and recent_start and core.config.history_events
    ask_playback(core, client, name, Playback(folded, until, since, fallback))


def ask_playback(
    core: ServerCore, client: Client, name: str, playback: Playback, *, first: bool = True
) -> None:
    """Ask for the read of ``playback``: the newest N rows the joiner is sent, or, to
    look for its departure, N * PLAYBACK_WINDOW rows with the events.

    The rows are charged to the host's scan budget (``playback_charged``). ``first``: a
    join's first read, which waits its turn behind the client's other playback reads
    (``ServerCore.read_playback``); a fallback's second read is part of one already
    under way and goes at once.
    """
    count = core.config.history_playback
    rows = count * PLAYBACK_WINDOW if playback.fallback else count
    if not playback_charged(core, client, name, rows):
        return
    batched = "batch" in client.caps and "server-time" in client.caps  # else NOTICEs
    query = Query(
        "LATEST",
        playback.folded,
        NO_REF,
        rows,
        until_msgid=playback.until,
        with_tagmsg=batched and wants_tagmsg(client),
        with_events=playback.fallback or gets_events(client),
        with_redactions=batched and REDACT_CAP in client.caps,
        playback=True,
    )
    pending = Pending(client.conn_id, "playback", name, None, playback)
    core.read_playback(client, pending, query, first=first)


def playback_charged(core: ServerCore, client: Client, name: str, rows: int) -> bool:
    """Whether the host's scan budget (``core.scan_allowed``, which LIST, WHO, NAMES and SEARCH
    pay from too) pays for a playback read of ``rows`` rows of channel ``name``.

    JOIN 50 / JOIN 0 churn from one address kept the one history reader busy for
    minutes. Past the budget the playback is skipped, and the client is told so once
    (until a playback is read again), in the channel's window, with how to fetch it.
    """
    told = core.told_playback_skipped
    if core.scan_allowed(client, rows):
        told.pop(client, None)
        return True
    if client not in told:
        told[client] = None
        count = core.config.history_playback
        text = (f"Recent messages in {name} were not replayed: too much history was read "
                "from your address just now (your next joins may skip it too, for a "
                f"moment). To see them, send CHATHISTORY LATEST {name} * {count} in a few "
                "seconds (/quote in most clients), or use your client's history command.")
        core.send(client, Message("NOTICE", [name, text], core.config.name))
    return False


def last_departure(core: ServerCore, client: Client, rows: list[StoredMessage]) -> int | None:
    """Where in ``rows`` ``client`` last left: a PART or QUIT under one of its
    ``departure_keys`` (the row's account tag, or its source's user@host, whatever the
    nick), or a KICK of its nick."""
    keys = departure_keys(core, client)
    for i in range(len(rows) - 1, -1, -1):
        row = rows[i]
        if row.command in ("PART", "QUIT"):
            if "h:" + core.fold(row.source.partition("!")[2]) in keys:
                return i
            account = parse_tags(row.tags).get("account") if "account=" in row.tags else None
            if account and "a:" + core.fold(account) in keys:
                return i
        elif row.command == "KICK" and core.fold(row.text.split(" ", 1)[0]) == client.folded:
            return i
    return None


def unseen(core: ServerCore, client: Client, playback: Playback, rows: list[StoredMessage],
           ) -> list[StoredMessage] | None:
    """The newest of ``rows`` that ``client`` has not seen: playback fills the gap since
    it was last in the channel, not the last N lines again at every rejoin or reconnect.

    Seen is what came before its last departure (``playback.since``, else one found
    among the stored events) and what its read marker passed. None when no departure
    was found and the window, full of events, held fewer than N messages: then the
    caller asks for the last N messages themselves.
    """
    count = core.config.history_playback
    events = gets_events(client)
    start = 0
    if playback.fallback:
        found = last_departure(core, client, rows)
        if found is not None:
            start = found + 1
        elif len(rows) >= count * PLAYBACK_WINDOW and sum(
                events or r.command not in STORED_EVENTS for r in rows) < count:
            return None
    if client.account is not None:
        markers = core.read_markers.get(core.fold(client.account))
        marker = markers.get(playback.folded, 0) if markers is not None else 0
    else:
        marker = (client.markers or {}).get(playback.folded, 0)
    since = playback.since or ""
    kept = [r for r in rows[start:]
            if r.msgid > since and r.time_ms > marker
            and (events or r.command not in STORED_EVENTS)
            # Rows stored before CTCP requests were kept out are still never replayed.
            and not is_ctcp_request(r.text)]
    return kept[-count:]


def wants_tagmsg(client: Client) -> bool:
    """TAGMSGs are history for clients that asked for events and can read tags."""
    return EVENT_PLAYBACK in client.caps and "message-tags" in client.caps


def deliver_history(
    core: ServerCore,
    client: Client,
    pending: Pending,
    rows: list[StoredMessage] | None,
    targets: list[tuple[str, int]] | None,
) -> None:
    if pending.kind == "targets":
        _send_targets(core, client, targets or [])
        return
    if pending.kind == "search":
        _send_results(core, client, rows)
        return
    if rows is None:
        if pending.kind == "chathistory":
            core.fail(
                client,
                "CHATHISTORY",
                "MESSAGE_ERROR",
                "*",
                pending.channel,
                "Messages could not be retrieved",
            )
        return
    if pending.kind == "playback" and pending.playback is not None:
        kept = unseen(core, client, pending.playback, rows)
        if kept is None:  # a window of events: the last N messages, in a second query
            ask_playback(core, client, pending.channel,
                         replace(pending.playback, fallback=False), first=False)
            return
        if not kept:
            return  # nobody asked: an empty batch at each join is only noise
        rows = kept
    else:
        # Rows stored before CTCP requests were kept out are still never replayed.
        rows = [r for r in rows if not is_ctcp_request(r.text)]
    if pending.kind == "playback" and not ("batch" in client.caps and "server-time" in client.caps):
        _send_notices(core, client, pending.channel, rows)
        return
    name = pending.channel
    if name[:1] not in CHANTYPES:
        name = spelled(core, name, rows)
    use_batch = "batch" in client.caps
    ref = core.next_batch_id()
    if use_batch:
        core.send(client, Message("BATCH", ["+" + ref, "chathistory", name], core.config.name))
    batch = ref if use_batch else None
    for row in rows:
        # A private message is replayed as it was sent: to the nick it was sent to.
        shown = row.channel if is_dm_key(row.target) else pending.channel
        core.write(client, format_row(client, row, shown, batch))
    if use_batch:
        core.send(client, Message("BATCH", ["-" + ref], core.config.name))


def spelled(core: ServerCore, nick: str, rows: list[StoredMessage]) -> str:
    """A private conversation's name as the chathistory batch gives it (the target's
    canonical name, not as the request spelled it): the partner's nick as its user
    spells it now, else as the newest row that names it stored it."""
    folded = core.fold(nick)
    holder = core.nicks.get(folded)
    if holder is not None:
        return holder.nick
    for row in reversed(rows):
        for name in (row.channel, row.source.split("!", 1)[0]):
            if core.fold(name) == folded:
                return name
    return nick


def format_row(client: Client, row: StoredMessage, channel: str, batch: str | None) -> bytes:
    """A stored row as ``client`` is sent it (a multiline message: as a nested batch, or
    its lines), inside history batch ``batch`` when not None."""
    tags: dict[str, str] = {}
    if "server-time" in client.caps:
        tags["time"] = format_time(row.time_ms / 1000)
    if "message-tags" in client.caps:
        tags["msgid"] = row.msgid
        if row.tags:
            tags.update(parse_tags(row.tags))
    if row.command in ("PRIVMSG", "NOTICE"):
        lines = stored_lines(row.source, channel, row.text)
        if len(lines) > 1:
            rest = fallback_tags(tags)
            # Only PRIVMSGs are ever received as draft/multiline: a long NOTICE (a
            # longer mask than its sender counted on) comes back as its lines.
            multiline = row.command == "PRIVMSG" and client.tag_form & FORM_MULTILINE
            ref = "ml" + row.msgid if multiline else None
            return render(row.source, channel, lines, head=tags, rest=rest, ref=ref,
                          outer=batch, command=row.command)
    if batch is not None:
        tags = {"batch": batch, **tags}
    params = row_params(row, channel, extended_join="extended-join" in client.caps)
    return Message(row.command, params, row.source, tags).to_bytes()


def relay_from_row(row: StoredMessage) -> Relay:
    """A stored row relayed again as it was first (cluster gap recovery)."""
    tags = parse_tags(row.tags) if row.tags else None
    time = format_time(row.time_ms / 1000)
    if row.command == "PRIVMSG":
        lines = stored_lines(row.source, row.channel, row.text)
        if len(lines) > 1:
            return MultilineRelay(row.source, row.channel, lines, time, row.msgid, tags or None)
    return Relay(row.source, row.command, row_params(row, row.channel), time, row.msgid,
                 tags or None)


def row_params(row: StoredMessage, target: str, *, extended_join: bool = False) -> list[str]:
    """A stored row's parameters as relayed to ``target`` (a JOIN with the account and
    realname for ``extended_join`` clients). ``text`` holds an event's parameters
    as ``ServerCore.on_channel_event`` was given them."""
    command, text = row.command, row.text
    if command in ("PRIVMSG", "NOTICE", "TOPIC"):
        return [target, text]
    if command == "TAGMSG":
        return [target]
    if command == REDACT_EVENT:  # text: "<deleted msgid>[ <reason>]"
        return [target, *text.split(" ", 1)]
    if command == "JOIN":  # text: "<account or *> <realname>"
        return [target, *text.split(" ", 1)] if extended_join else [target]
    if command == "PART":  # text: the reason, or ""
        return [target, text] if text else [target]
    if command == "KICK":  # text: "<nick> <reason>"
        return [target, *text.split(" ", 1)]
    if command == "MODE":  # text: the changes and their arguments, space-separated
        return [target, *text.split(" ")]
    return [text]  # QUIT (the reason) and NICK (the new nick): no target


def _send_results(core: ServerCore, client: Client, rows: list[StoredMessage] | None) -> None:
    """SEARCH's answer: a ``soju.im/search`` batch of the rows, each where it was said."""
    if rows is None:
        core.fail(client, "SEARCH", "TEMPORARILY_UNAVAILABLE", "Messages could not be searched")
        return
    use_batch = "batch" in client.caps
    ref = core.next_batch_id()
    if use_batch:
        core.send(client, Message("BATCH", ["+" + ref, "soju.im/search"], core.config.name))
    for row in rows:
        core.write(client, format_row(client, row, row.channel, ref if use_batch else None))
    if use_batch:
        core.send(client, Message("BATCH", ["-" + ref], core.config.name))


def _send_notices(
    core: ServerCore, client: Client, channel: str, rows: list[StoredMessage]
) -> None:
    """Join playback for clients that cannot tell a batch of history from live lines:
    notices from the server whose text says when, in UTC (with the date unless it was
    today). With server-time they carry the message's time too, but the text keeps
    it: irssi shows that tag only with show_server_time, off by default, and old
    lines would look new."""
    stamped = "server-time" in client.caps
    server = core.config.name
    today = datetime.fromtimestamp(core.clock(), UTC).date()
    for row in rows:
        if row.command not in ("PRIVMSG", "NOTICE"):
            continue
        nick = row.source.split("!", 1)[0]
        tags = {"time": format_time(row.time_ms / 1000)} if stamped else {}
        at = datetime.fromtimestamp(row.time_ms / 1000, UTC)
        when = f"[{at.strftime('%H:%M UTC' if at.date() == today else '%Y-%m-%d %H:%M UTC')}] "
        for text in row.text.split("\n"):  # a multiline message: a notice per line
            if not text:
                continue
            if text.startswith("\x01ACTION"):  # the closing \x01 is optional (CTCP)
                head, text = f"{when}* {nick} ", text[8:].removesuffix("\x01") or " "
            elif row.command == "NOTICE":  # as clients show a notice, not a message
                head = f"{when}-{nick}- "
            else:
                head = f"{when}<{nick}> "
            # A line longer than a notice has room for (joined by multiline-concat, or
            # the prefix) continues in the next notice: cut, it would lose its end.
            room = MAX_LINE_BODY - utf8_size(f":{server} NOTICE {channel} :{head}\r\n")
            for piece in split_concat(text, room):
                core.send(client, Message("NOTICE", [channel, head + piece], server, tags))


def partner_nick(core: ServerCore, account: str) -> str:
    """A conversation is kept per account: named by its partner's nick while the
    partner is online here (the nick it goes by, and that a query window is named
    after), else by the account's name."""
    folded = core.fold(account)
    sessions = core.account_sessions.get(folded)
    if not sessions:
        return account
    for session in sessions:
        if session.folded == folded and session.registered:
            return session.nick
    return next((s.nick for s in sessions if s.registered), account)


def _send_targets(core: ServerCore, client: Client, targets: list[tuple[str, int]]) -> None:
    use_batch = "batch" in client.caps
    ref = core.next_batch_id()
    if use_batch:
        core.send(
            client, Message("BATCH", ["+" + ref, "draft/chathistory-targets"], core.config.name)
        )
    for name, time_ms in targets:
        if name[:1] not in CHANTYPES:
            name = partner_nick(core, name)
        tags = {"batch": ref} if use_batch else {}
        core.send(
            client,
            Message(
                "CHATHISTORY",
                ["TARGETS", name, format_time(time_ms / 1000)],
                core.config.name,
                tags,
            ),
        )
    if use_batch:
        core.send(client, Message("BATCH", ["-" + ref], core.config.name))
