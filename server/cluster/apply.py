"""The sans-IO side of a cluster: number outgoing events, apply incoming ones.

Everything here runs inside the core's thread of control, never awaits and
reads no clock: the bus (``server.cluster.bus``) feeds events and snapshots in
through ``ServerCore.remote_event`` / ``remote_snapshot`` / ``remote_node_gone``
and carries out the effects the core emits (``Publish``, ``ClaimNick``,
``ReleaseNick``, ``Resync``, ``Recover``, ``RecoverDirect``, ``RecoverTransit``).

Remote users are ``Client`` objects with ``remote`` set to their uid
(``node:conn``). They sit in ``core.nicks``, ``core.remote`` and in channel member
lists, so NAMES, WHO, WHOIS, LIST and LUSERS see them; ``write`` and ``fan_out``
skip them, so no byte is ever queued for them.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chat.message import Message, parse_tags
from chat.msgid import decode as decode_msgid
from chat.msgid import encode as encode_msgid
from chat.msgid import is_msgid, timestamp_ms
from server.core.handlers.accounts import account_dropped, account_registered, notify_account
from server.core.handlers.channels import announce_join, set_channel_record
from server.core.handlers.chanserv import channel_changed, from_record
from server.core.handlers.memoserv import memo_count
from server.core.handlers.readmarker import marker_moved
from server.core.history import (
    REDACT_CAP,
    STORED_COMMANDS,
    STORED_EVENTS,
    HistoryStale,
    relay_from_row,
    transit_key,
    transit_recipient,
)
from server.core.multiline import MultilineRelay
from server.core.relay import Relay
from server.core.state import Channel, Client
from server.history.model import StoredMessage, is_transit

from .events import Came, Event, Publish, Recover, RecoverDirect, RecoverTransit, Resync, encode

if TYPE_CHECKING:
    from server.core.core import ServerCore

log = logging.getLogger("chat.server.cluster")

RECENT_IDS = 512  # msgids remembered per channel, to tell recovered rows from seen ones
# How far two nodes' clocks may disagree: a channel that had no message here yet is
# recovered from this long before the last contact with the node that went silent.
CLOCK_SKEW_MS = 5000
# Above every msgid: this node's own generator in a ``Came`` (all its rows were
# delivered here when they were sent).
_EVERY = "Z" * 16


@dataclass(slots=True)
class ChannelRetry:
    """What a channel's recovery whose first read failed skips when tried again: what
    the first would have (``floor``, ``ids``: the channel's msgids remembered then), not
    what is remembered at the retry, past which more than RECENT_IDS live messages have
    moved it (the lost ones were skipped); and, per msgid generator, the first message
    that came live since (``live``: that run's later ones came after it, in order)."""

    floor: str | None
    ids: frozenset[str]
    live: dict[int, str] = field(default_factory=dict)


class ClusterState:
    """Counters and bookkeeping a clustered core keeps (no I/O)."""

    def __init__(self) -> None:
        self.g = 0  # events this node published
        self.chan_seq: dict[str, int] = {}  # folded channel -> last seq this node used
        self.seen_g: dict[str, int] = {}  # node -> last event counter applied
        self.seen_chan: dict[tuple[str, str], int] = {}  # (node, channel) -> last seq
        self.gaps = 0  # gaps noticed (metrics, tests)
        # Nodes whose snapshot was older than events already applied: what those events
        # carried (a user who joined before we subscribed) is only in a later snapshot.
        self.stale: set[str] = set()
        self.recent: dict[str, tuple[deque[str], set[str]]] = {}
        # Folded account -> msgids of private messages it sent or was sent here: a
        # recovery of its conversations delivers only the others.
        self.direct: dict[str, tuple[deque[str], set[str]]] = {}
        # Uid of a user here -> msgids of private messages to it that were kept as
        # transit rows (not between accounts), sent or recovered here: a recovery
        # delivers only the others. Users gone are swept out (``_seen_transit``).
        self.transit: dict[str, tuple[deque[str], set[str]]] = {}
        # Uid -> msgid generator (a sender node's run) -> (msgid, since): a recovery read
        # every transit row to the user sent since ``since`` up to that msgid (one node
        # stores its rows in msgid order), and handled them. Another recovery, or a live
        # event, skips those without asking ``transit``, whose 512 are too few for a long
        # gap's rows (each gap brings two recoveries: the second delivered them again).
        self.transit_floor: dict[str, dict[int, tuple[str, int]]] = {}
        # The same for private messages between accounts, per (folded account here,
        # conversation, generator): each conversation is read on its own, up to a limit.
        self.direct_floor: dict[tuple[str, str, int], tuple[str, int]] = {}
        # And for channels, per (folded channel, generator): the messages held while a
        # recovery read them, more than ``recent`` remembers at a high rate, were
        # delivered again when released.
        self.channel_floor: dict[tuple[str, int], tuple[str, int]] = {}
        # node -> the msgid of its last ``msg`` event applied. Its run's msgids grow in
        # the order it publishes, so every message of that run up to it came here (or
        # was lost in a gap, whose recovery was asked for with the floor of then): a
        # recovery skips them (``Came``). The window it reads starts clock skew before
        # the last contact: at 200 messages a second, 1,000 that came live, of which
        # the 512 msgids remembered per account or channel left most to deliver again.
        self.stream: dict[str, str] = {}
        # This node's own msgid generator (from the messages the core says it stored):
        # its rows were delivered here when sent, so no recovery delivers one.
        self.local: int | None = None
        # node -> when its last in-order event was sent (its "w", by its clock; when it
        # came, for a node that sends none): a gap's recovery starts there, less clock
        # skew. Not when it came: Redis paused then resumed delivers what was sent
        # before the pause late, and the pause's first events, lost, were older.
        self.heard_ms: dict[str, int] = {}
        self.runs: dict[str, str] = {}  # node -> the run of it we know (event key "e")
        # Channel -> msgid floor for its recovery, when it had no message here yet.
        self.recover_from: dict[str, str] = {}
        # Channel -> (recoveries under way, its live messages held until they end): a
        # message that showed the gap, or came during the read, would otherwise reach
        # members before the older ones the recovery finds.
        self.recovering: dict[str, tuple[int, list[Event]]] = {}
        # Channel -> its recoveries whose first read failed, until their retries end:
        # each notes the live messages that come meanwhile (``ChannelRetry.live``).
        self.retrying: dict[str, list[ChannelRetry]] = {}
        # The same for private messages: folded account (its conversations) or transit
        # prefix (``%node:``, every user here: their transit rows are read at once) ->
        # (recoveries under way, live private messages to its users held until they end).
        self.recovering_private: dict[str, tuple[int, list[Event]]] = {}
        self.remote_ids = itertools.count(-1, -1)  # conn ids of remote Client objects
        # node -> its server name, from its snapshots (LINKS); dropped when the node goes.
        self.names: dict[str, str] = {}
        # node -> the bans and removals of its last merged snapshot: an unchanged list
        # (nearly every heartbeat) is not parsed and merged again.
        self.ban_views: dict[str, Any] = {}
        # Bumped whenever another node's event (not a heartbeat), snapshot or loss is
        # applied here; with ``g``, whether what this node's snapshot holds may have
        # changed (``snapshot_version``): an unchanged one is not built again.
        self.applied = 0
        # Folded channel -> (what its record is made of, the record encoded), for the
        # channels of the last snapshot encoded: long ban lists made one node re-encode
        # megabytes every heartbeat for one channel that changed, or none.
        self.records: dict[str, tuple[tuple[Any, ...], bytes]] = {}

    def seen(self, channel: str, msgid: str) -> None:
        """A message of this node's in ``channel`` (stored, and delivered here)."""
        self.local = _generator(msgid)
        _remember(self.recent, channel, msgid)

    def seen_direct(self, account: str, msgid: str) -> None:
        """A private message of this node's, sent by or to ``account`` (folded)."""
        self.local = _generator(msgid)
        _remember(self.direct, account, msgid)

    def came(self) -> Came:
        """What a recovery asked for now may skip (``Came``)."""
        newest: dict[int, str] = {}
        for msgid in self.stream.values():
            generator = _generator(msgid)
            if generator is not None:  # (two runs that drew one generator: the lower)
                newest[generator] = min(newest.get(generator, msgid), msgid)
        if self.local is not None:
            newest[self.local] = _EVERY
        return tuple(sorted(newest.items()))


def merge_came(a: Came, b: Came) -> Came:
    """What two recoveries answered by one read may both skip."""
    other = dict(b)
    return tuple((g, min(m, other[g])) for g, m in a if g in other)


def _came_before(came: dict[int, str], msgid: str) -> bool:
    """``msgid`` came here live before the recovery was asked for (``Came``)."""
    generator = _generator(msgid)
    floor = None if generator is None else came.get(generator)
    return floor is not None and msgid <= floor


def _remember(table: dict[str, tuple[deque[str], set[str]]], key: str, msgid: str) -> None:
    """``msgid`` among the last RECENT_IDS of ``key``."""
    entry = table.get(key)
    if entry is None:
        entry = table[key] = (deque(), set())
    order, ids = entry
    if msgid in ids:
        return
    order.append(msgid)
    ids.add(msgid)
    if len(order) > RECENT_IDS:
        ids.discard(order.popleft())


def _msgid_ms(msgid: str) -> int:
    """The time in a msgid (0 for one not made by ``MsgIdGenerator``: nothing skipped)."""
    return timestamp_ms(msgid) if is_msgid(msgid) else 0


def _generator(msgid: str) -> int | None:
    """The generator (a node's run) of a msgid from ``MsgIdGenerator``: its low 16 bits."""
    return decode_msgid(msgid) & 0xFFFF if is_msgid(msgid) else None


def _below_channel_floor(state: ClusterState, folded: str, msgid: str) -> bool:
    """A recovery of channel ``folded`` read ``msgid`` already (see ``channel_floor``)."""
    generator = _generator(msgid)
    floor = None if generator is None else state.channel_floor.get((folded, generator))
    return floor is not None and msgid <= floor[0] and _msgid_ms(msgid) >= floor[1]


def _below_direct_floor(
    state: ClusterState, account: str, conversation: str, msgid: str, time_ms: int
) -> bool:
    """A recovery of ``account``'s conversation read ``msgid`` already (see ``direct``)."""
    generator = _generator(msgid)
    if generator is None:
        return False
    floor = state.direct_floor.get((account, conversation, generator))
    return floor is not None and msgid <= floor[0] and time_ms >= floor[1]


def _seen_transit(core: ServerCore, uid: str, msgid: str, time_ms: int) -> bool:
    """``msgid`` (sent at ``time_ms``), kept as a transit row to our user ``uid``, is
    handled here: False if it was already (delivered live, or by a recovery)."""
    state = _state(core)
    table = state.transit
    generator = _generator(msgid)
    floor = None if generator is None else state.transit_floor.get(uid, {}).get(generator)
    if floor is not None and msgid <= floor[0] and time_ms >= floor[1]:
        return False  # a recovery read it (and everything before it from its node)
    entry = table.get(uid)
    if entry is not None and msgid in entry[1]:
        return False
    if entry is None and len(table) >= 2 * len(core.clients) + 64:
        # Entries of users gone since: swept once the table outgrows the users twice
        # over, so a sweep costs no more than the additions since the last one.
        for gone in [u for u in table if resolve(core, u) is None]:
            del table[gone]
        for gone in [u for u in state.transit_floor if resolve(core, u) is None]:
            del state.transit_floor[gone]
    _remember(table, uid, msgid)
    return True


def _state(core: ServerCore) -> ClusterState:
    state = core.cluster_state
    assert isinstance(state, ClusterState)
    return state


# ---------------------------------------------------------------------- outgoing


# Every event's own keys: kind, node, counters, user, the node's run (``e``: the
# counters start again when a node restarts, under the same node id), when it was sent
# (``w``, ms by the sender's clock: where a recovery window starts) and, with an
# addressee (``to``), the run of the addressee's node as the sender knew it (``tr``).
_ENVELOPE = frozenset(("k", "n", "g", "c", "u", "e", "w", "tr"))


def publish(
    core: ServerCore, kind: str, channels: Iterable[str], uid: str, fields: dict[str, Any]
) -> None:
    state = _state(core)
    state.g += 1
    seqs: dict[str, int] = {}
    for folded in channels:
        seq = state.chan_seq.get(folded, 0) + 1
        state.chan_seq[folded] = seq
        seqs[folded] = seq
    if fields.keys() & _ENVELOPE:  # a field named like these would silently replace it
        raise ValueError(f"cluster event fields {sorted(fields.keys() & _ENVELOPE)} are reserved")
    event: Event = {
        "k": kind, "n": core.node_id, "g": state.g, "c": seqs, "u": uid, "e": run_of(core),
        "w": int(core.clock() * 1000), **fields,
    }
    to = fields.get("to")
    if isinstance(to, str):
        # A uid repeats once its node restarts: the run says which connection is meant.
        run = state.runs.get(_node_of(to))
        if run is not None:
            event["tr"] = run
    core.emit(Publish(event))


def snapshot(core: ServerCore) -> Event:
    """This node's users, their channels and its bans, as another node applies them."""
    from server.core.handlers.channels import channel_record

    users, channels = _snapshot_users(core)
    return {
        **_snapshot_head(core), "w": int(core.clock() * 1000), "users": users,
        "chans": {folded: channel_record(channel) for folded, channel in channels.items()},
        **_snapshot_bans(core),
    }


@dataclass(frozen=True, slots=True)
class EncodedSnapshot:
    """``snapshot`` as JSON in parts, without its time ``w``: two are equal when the
    snapshots they make are (the channels' records, cached until their channel changes,
    compare by identity first)."""

    g: int
    head: bytes
    users: bytes
    chans: tuple[bytes, ...]  # '"folded":{record}' each
    bans: bytes

    def data(self, w: int) -> bytes:
        """The snapshot as written to Redis, made at ``w`` (ms by this node's clock)."""
        return b"".join((
            self.head[:-1], b',"w":%d,"users":' % w, self.users,
            b',"chans":{', b",".join(self.chans), b"},", self.bans[1:],
        ))


def encoded_snapshot(core: ServerCore) -> EncodedSnapshot:
    """``snapshot``, encoded: a channel's record is encoded again only if it changed."""
    from server.core.handlers.channels import channel_record

    state = _state(core)
    users, channels = _snapshot_users(core)
    records: dict[str, tuple[tuple[Any, ...], bytes]] = {}
    for folded, channel in channels.items():
        made_of = _record_parts(channel)
        cached = state.records.get(folded)
        if cached is None or cached[0] != made_of:
            cached = (made_of, encode(folded) + b":" + encode(channel_record(channel)))
        records[folded] = cached
    state.records = records  # (channels no longer in it are forgotten)
    return EncodedSnapshot(
        state.g, encode(_snapshot_head(core)), encode(users),
        tuple(record for _, record in records.values()), encode(_snapshot_bans(core)),
    )


def snapshot_version(core: ServerCore) -> tuple[int, int]:
    """Moves whenever what this node's snapshot holds may have changed: with every
    event it publishes, and with every event, snapshot or loss of another node applied
    here (a ban set from there in a channel of ours moves no counter of ours)."""
    state = _state(core)
    return state.g, state.applied


def _record_parts(channel: Channel) -> tuple[Any, ...]:
    """Everything ``channel_record`` reads of ``channel``: the list entries themselves,
    which compare by identity, then by value (a ``Ban`` is replaced, never changed)."""
    return (
        channel.name, channel.created, channel.topic, channel.topic_setter,
        channel.topic_time, frozenset(channel.modes), channel.key, channel.limit,
        channel.origin, tuple(channel.bans), tuple(channel.excepts), tuple(channel.invex),
        tuple(channel.quiets),
    )


def _snapshot_head(core: ServerCore) -> Event:
    state = _state(core)
    return {
        "k": "snapshot", "n": core.node_id, "g": state.g, "c": dict(state.chan_seq),
        "e": run_of(core), "name": core.config.name,
    }


def _snapshot_users(core: ServerCore) -> tuple[list[dict[str, Any]], dict[str, Channel]]:
    """The records of this node's users, and the channels they are in."""
    from server.core.handlers.registration import user_record

    users = []
    channels: dict[str, Channel] = {}
    for client in core.clients.values():
        if not client.registered or client.closing is not None:
            continue
        record = user_record(client)
        record["uid"] = core.uid(client)
        record["ch"] = {f: ch.members.get(client, "") for f, ch in client.channels.items()}
        if client.accepting:  # caller ID: the users it lets through (+g)
            record["acc"] = [core.uid(user) for user in client.accepting]
        users.append(record)
        for folded, channel in client.channels.items():
            channels.setdefault(folded, channel)
    return users, channels


def _snapshot_bans(core: ServerCore) -> Event:
    return {
        "bans": [b.to_record() for b in core.bans],
        "unbans": [r.to_record() for r in core.bans.removals()],
    }


def other_servers(core: ServerCore) -> list[str]:
    """The server names of the other nodes this one knows of (LINKS).

    A node is known from its snapshot (which names it) or from its users (LUSERS
    counts those); one whose snapshot has not been read yet shows as its node id.
    """
    state = _state(core)
    nodes = set(state.names) | {_node_of(uid) for uid in core.remote}
    nodes.discard(core.node_id)
    return sorted(state.names.get(node, node) for node in nodes)


# ---------------------------------------------------------------------- helpers


def _relay(wire: list[Any]) -> Relay:
    """The relay ``relay_wire`` describes (a seventh item: a multiline message's lines)."""
    source, command, params, time, msgid, tags = wire[:6]
    if len(wire) > 6 and wire[6]:
        lines = [(str(text), bool(concat)) for text, concat in wire[6]]
        return MultilineRelay(str(source), str(params[0]), lines, str(time), str(msgid),
                              tags or None)
    return Relay(str(source), str(command), list(params), str(time), str(msgid), tags or None)


def server_name(core: ServerCore, client: Client) -> str:
    """The server name of the node a remote user is on (its node id until known)."""
    node = _node_of(client.remote or "")
    return _state(core).names.get(node, node)


def _node_of(uid: str) -> str:
    return uid.rsplit(":", 1)[0]


def resolve(core: ServerCore, uid: str) -> Client | None:
    """The Client for a uid: one of ours or a remote one."""
    node, _, conn = uid.rpartition(":")
    if node == core.node_id:
        try:
            client = core.clients.get(int(conn))
        except ValueError:
            return None
        return client if client is not None and client.registered else None
    return core.remote.get(uid)


def _addressee(core: ServerCore, event: Event) -> Client | None:
    """The user of ours an event is addressed to (``to``), if it is for this run of the
    node: one for a connection of an earlier run (the sender had not heard of our
    restart yet) would reach whoever has that uid now."""
    target = resolve(core, str(event["to"]))
    if target is None or target.remote is not None:
        return None
    run = event.get("tr")
    if isinstance(run, str) and run != run_of(core):
        log.debug("%s event from %s for %s of an earlier run dropped",
                  event.get("k"), event.get("n"), event["to"])
        return None
    return target


def user_run(core: ServerCore, client: Client) -> str:
    """The run of a remote user's node as we know it ("" when unknown): with its uid,
    which connection a message is for (``history.transit_key``)."""
    return _state(core).runs.get(_node_of(client.remote or ""), "")


def _since(state: ClusterState, node: str, heard_ms: int) -> int:
    """Where a recovery of a gap in ``node``'s events reads from (ms, by its clock): clock
    skew before the last contact, or its last message that came, when later. What the
    gap lost is newer than that one (its run's msgids grow); at 2,000 private messages a
    second the 5 s before held more rows than a recovery reads (3,000), and the end of a
    killed node's, the newest, were never reached."""
    since = max(heard_ms - CLOCK_SKEW_MS, 0)
    last = state.stream.get(node)
    return since if last is None else max(since, _msgid_ms(last))


def _recover(core: ServerCore, folded: str, node: str, heard_ms: int | None) -> None:
    """Recover ``folded`` from the store after a gap in ``node``'s events. A channel no
    message of which came here yet has no msgid to recover after: it gets a floor from
    the last contact with the node that went silent (``heard_ms``), so a message missed
    in it is delivered late rather than never."""
    state = _state(core)
    entry = state.recent.get(folded)
    if (entry is None or not entry[0]) and heard_ms is not None:
        floor = encode_msgid(max(heard_ms - CLOCK_SKEW_MS, 0) << 32)
        known = state.recover_from.get(folded)
        state.recover_from[folded] = floor if known is None else min(known, floor)
    if core.history_enabled:  # a window cached here may lack what never came
        core.emit(HistoryStale(folded))
    # The store is read from the floor ``recovered`` will apply (oldest first, in
    # pages: its newest rows alone missed the start of a longer gap), or from the last
    # contact less clock skew when later: what the silent node sent before that came.
    start = state.recover_from.get(folded)
    if start is None and entry is not None and entry[0]:
        start = min(entry[0])
        if heard_ms is not None:
            start = max(start, encode_msgid(_since(state, node, heard_ms) << 32))
    _hold(state.recovering, folded)
    since = _msgid_ms(start) if start and is_msgid(start) else None
    core.emit(Recover(folded, since, state.came()))


def run_of(core: ServerCore) -> str:
    """This run of the node, as events carry it: its start time first, so a later run
    sorts after an earlier one."""
    return f"{core.started_ms:013d}:{core.run_id}"


def _current_run(core: ServerCore, node: str, event: Event) -> bool:
    """A node restarted under its id (a new run, say within --cluster-dead-after): its
    counters start again, so what we knew of it is forgotten and its old users quit,
    and the new run is taken as a node never heard of (its snapshot is read). False
    for what an earlier run left behind (its snapshot, read before the new one's)."""
    run = event.get("e")
    if not isinstance(run, str):
        return True  # a node from before runs were sent: as before
    state = _state(core)
    known = state.runs.get(node)
    if known is not None and run < known:
        return False
    if known is not None and run != known:
        log.warning("node %s restarted (a new run): its earlier users quit", node)
        node_gone(core, node, "*.net *.split", restarted=True)
    state.runs[node] = run
    return True


def _recover_direct(core: ServerCore, node: str, heard_ms: int | None) -> list[str]:
    """After a gap in ``node``'s events: private messages from its users may be among
    what never came. All are in the store since the last contact (``_since``): those
    between accounts in the conversations of our logged-in users, the others as transit
    rows addressed to our users (one read for all of them). Returns the keys of
    ``recovering_private`` held meanwhile."""
    if heard_ms is None or not core.history_enabled:
        return []
    state = _state(core)
    since = _since(state, node, heard_ms)
    accounts: set[str] = set()
    anyone = False
    for c in core.clients.values():
        if c.registered and c.closing is None:
            anyone = True
            if c.account is not None:
                accounts.add(core.fold(c.account))
    # Until each read ends, live private messages to its recipients wait: the one that
    # showed the gap is newer than those the read finds (``_to_user``).
    came = state.came()
    held = sorted(accounts)
    if accounts:
        for account in accounts:
            _hold(state.recovering_private, account)
        core.emit(RecoverDirect(tuple(held), since, came))
    if anyone:
        prefix = _transit_prefix(core)
        _hold(state.recovering_private, prefix)
        core.emit(RecoverTransit(prefix, since, came))
        held.append(prefix)
    return held


def _recover_end(
    core: ServerCore, node: str
) -> list[tuple[dict[str, tuple[int, list[Event]]], str]]:
    """Recover what ``node``, gone, stored after its last event heard in order: in the
    channels it shared with users here, their conversations and the transit rows to
    them. Returns the recoveries asked for, as (table, key) of their holds."""
    state = _state(core)
    heard = state.heard_ms.get(node)
    if heard is None:
        return []
    held: list[tuple[dict[str, tuple[int, list[Event]]], str]] = []
    for folded in sorted(_shared_channels(core, node)):
        channel = core.channels.get(folded)
        if channel is not None and any(m.remote is None for m in channel.members):
            _recover(core, folded, node, heard)
            held.append((state.recovering, folded))
    held += [(state.recovering_private, key) for key in _recover_direct(core, node, heard)]
    return held


def _transit_prefix(core: ServerCore) -> str:
    """What the transit rows to every user here start with (one read recovers them)."""
    return transit_key(core.node_id + ":")


def _hold(table: dict[str, tuple[int, list[Event]]], key: str) -> None:
    """A recovery of ``key`` is under way: its live messages wait (``_release``)."""
    pending, held = table.get(key, (0, []))
    table[key] = (pending + 1, held)


def _shared_channels(core: ServerCore, node: str) -> set[str]:
    return {
        f for c in core.remote.values() if c.remote and _node_of(c.remote) == node
        for f in c.channels
    }


def _local_peers(core: ServerCore, client: Client) -> list[Client]:
    return [m for m in core.peers(client, include_self=False) if m.remote is None]


def _new_remote(core: ServerCore, uid: str, record: dict[str, Any]) -> Client | None:
    old = core.remote.get(uid)
    if old is not None:
        return old
    client = Client(next(_state(core).remote_ids), "", 0, float(record.get("since", 0)), False)
    client.remote = uid
    client.registered = True
    client.nick = str(record["nick"])
    client.folded = core.fold(client.nick)
    client.user = str(record.get("user", ""))
    client.host = str(record.get("host", ""))
    client.ip = client.host
    client.realname = str(record.get("realname", ""))
    away = record.get("away")
    client.away = str(away) if away is not None else None
    client.modes = set(record.get("modes", ()))
    client.secure = bool(record.get("secure", False))
    client.account = _account(record)
    holder = core.nicks.get(client.folded)
    if holder is None or holder.remote is not None or _collision(core, holder, client):
        core.nicks[client.folded] = client
        core.nick_online(client)
    core.remote[uid] = client
    return client


def _collision(core: ServerCore, local: Client, remote: Client) -> bool:
    """A remote user has the nick a local one holds: two nodes each granted it while they
    could not reach Redis (a claim is granted locally then). Every node decides alike:
    whoever connected first keeps it (then the lower uid). A local user who loses is
    renamed to a free nick, told why, and the others hear of the change. True when the
    remote user gets the nick here."""
    assert remote.remote is not None
    ours, theirs = (local.connected_at, core.uid(local)), (remote.connected_at, remote.remote)
    log.warning("nick collision on %s between %s (here) and %s: %s keeps it", local.nick,
                ours[1], theirs[1], ours[1] if ours <= theirs else theirs[1])
    if ours <= theirs:
        return False
    from server.core.handlers.registration import apply_nick

    taken = local.nick
    nick = _free_nick(core, taken)
    apply_nick(core, local, nick, core.fold(nick))
    core.send(local, Message("NOTICE", [nick, (
        f"*** {taken} was given to someone else as well while the servers could not reach "
        f"each other; they had it first, so you are {nick} now")], core.config.name))
    return True


def _free_nick(core: ServerCore, nick: str) -> str:
    """``nick`` with a suffix that makes it one nobody here holds, within NICKLEN."""
    room = core.config.nicklen
    for n in itertools.count(1):
        tail = f"_{n}" if n > 1 else "_"
        candidate = nick[: room - len(tail)] + tail
        if core.fold(candidate) not in core.nicks:
            return candidate
    raise AssertionError("unreachable")


def _channel(core: ServerCore, folded: str, record: dict[str, Any] | None) -> Channel | None:
    channel = core.channels.get(folded)
    if channel is not None or record is None:
        return channel
    channel = Channel(
        name=str(record["name"]), folded=folded, created=int(record["created"]),
        origin=str(record.get("origin", "")),
    )
    set_channel_record(channel, record)
    core.channels[folded] = channel
    return channel


def _remove_remote(core: ServerCore, client: Client) -> None:
    for channel in list(client.channels.values()):
        core.remove_member(channel, client)
    if client.folded and core.nicks.get(client.folded) is client:
        del core.nicks[client.folded]
        core.nick_offline(client.folded, client.nick)
        if core.regaining:
            from server.core.handlers.nickserv import nick_freed

            nick_freed(core, client.folded)
    core.accept.forget(client)
    if client.remote is not None:
        core.remote.pop(client.remote, None)


def _quit_remote(
    core: ServerCore,
    client: Client,
    reason: str,
    relay: Relay | None,
    departure: _Departure | None = None,
) -> None:
    """``client`` quit; its QUIT line goes to members here now, or with ``departure``."""
    if relay is None:
        relay = core.new_relay(client, "QUIT", [reason])
    peers = _local_peers(core, client)
    if departure is None:
        core.fan_out(peers, relay)
    else:
        departure.quits.append((peers, relay))
    core.remember(client)
    _remove_remote(core, client)


class _Departure:
    """The QUIT lines of a dead node's users, held until the recoveries of what it
    stored last have delivered that (its users sent those messages before they quit)."""

    def __init__(self, waiting: int) -> None:
        self.waiting = waiting  # recoveries (of a channel, an account...) not over yet
        self.quits: list[tuple[list[Client], Relay]] = []


# The kind of the entry a departure puts among the messages each of its recoveries
# holds, behind them: ``_release`` counts it off, and the last sends the QUITs.
_DEPARTED = "departed"


def _departed(core: ServerCore, departure: _Departure) -> None:
    departure.waiting -= 1
    if departure.waiting == 0:
        for peers, relay in departure.quits:
            core.fan_out(peers, relay)


# ---------------------------------------------------------------------- incoming


def remote_event(core: ServerCore, event: Event) -> None:
    node = event.get("n")
    if not isinstance(node, str) or node == core.node_id:
        return
    if not _current_run(core, node, event):
        return
    state = _state(core)
    kind = event.get("k")
    g = event.get("g")
    heard = state.heard_ms.get(node)
    sent = event.get("w")
    sent_ms = sent if isinstance(sent, int) else int(core.clock() * 1000)
    if kind == "hb" and isinstance(g, int):
        # A heartbeat carries the node's event counter without taking a number itself.
        last = state.seen_g.get(node)
        if last is None or g >= last:
            state.heard_ms[node] = sent_ms  # every event up to g came (or was recovered)
        if last is None or g > last:
            if last is not None:
                state.gaps += 1
                log.warning("cluster gap from node %s: heartbeat at %d after %d", node, g, last)
                for folded in _shared_channels(core, node):
                    _recover(core, folded, node, heard)
                _recover_direct(core, node, heard)
            core.emit(Resync(node))
        elif node in state.stale and g >= last:
            # The node writes its snapshot just before this heartbeat: now it is new enough.
            core.emit(Resync(node))
        return
    if isinstance(g, int):
        last = state.seen_g.get(node)
        if last is not None and g <= last:
            return  # a duplicate, or older than a snapshot already applied
        state.seen_g[node] = g
        state.heard_ms[node] = sent_ms
        gap = last is not None and g != last + 1
        if kind == "hello":
            gap = True  # a node (re)joined: read its state
        gapped = []
        for folded, seq in event.get("c", {}).items():
            before = state.seen_chan.get((node, folded))
            state.seen_chan[(node, folded)] = seq
            if before is not None and seq != before + 1:
                gapped.append(folded)
        if gap or gapped:
            if kind != "hello":
                state.gaps += 1
                log.warning(
                    "cluster gap from node %s: event %s after %s (channels %s)",
                    node, g, last, ",".join(gapped) or "-",
                )
            core.emit(Resync(node))
            chans = set(gapped)
            if gap and kind != "hello":  # which channels missed what is unknown: all shared
                chans |= _shared_channels(core, node)
            for folded in sorted(chans):
                _recover(core, folded, node, heard)
            if gap and kind != "hello":
                _recover_direct(core, node, heard)
        wire = event.get("r")
        if kind == "msg" and isinstance(wire, list) and len(wire) > 4:
            msgid = wire[4]
            if isinstance(msgid, str) and is_msgid(msgid):
                state.stream[node] = msgid  # (after the recoveries: it came, the gap's not)
    handler = _HANDLERS.get(str(kind))
    if handler is None:
        return
    if core.history_enabled and (
        kind == "topic" or (kind in _STORED_EVENT_KINDS and core.config.history_events)
    ):
        # The sending node kept it in those channels' history (event playback).
        for folded in event.get("c", {}):
            core.emit(HistoryStale(str(folded)))
    state.applied += 1
    try:
        handler(core, event)
    except (KeyError, TypeError, ValueError):
        log.exception("bad cluster event from %s: %r", node, event.get("k"))


# Events whose channels' windows cached here are out of date once they arrive.
_STORED_EVENT_KINDS = frozenset({"join", "part", "kick", "quit", "nick", "mode", "topic"})


def _on_nick(core: ServerCore, event: Event) -> None:
    client = core.remote.get(event["u"])
    if client is None:
        return
    relay = _relay(event["r"])
    core.fan_out(_local_peers(core, client), relay)
    nick = str(event["nick"])
    folded = core.fold(nick)
    given_up = folded != client.folded
    if given_up:
        core.remember(client)
    if core.nicks.get(client.folded) is client:
        del core.nicks[client.folded]
        if given_up:
            core.nick_offline(client.folded, client.nick)
    client.nick, client.folded = nick, folded
    holder = core.nicks.get(folded)
    if holder is None or holder.remote is not None or _collision(core, holder, client):
        core.nicks[folded] = client
        if given_up:
            core.nick_online(client)


def _on_quit(core: ServerCore, event: Event) -> None:
    client = core.remote.get(event["u"])
    if client is not None:
        relay = _relay(event["r"])
        _quit_remote(core, client, str(relay.params[0]) if relay.params else "", relay)


def _on_join(core: ServerCore, event: Event) -> None:
    client = core.remote.get(event["u"])
    if client is None:
        return
    folded = str(event["t"])
    known = core.channels.get(folded)
    record = event.get("ch")
    channel = _channel(core, folded, record)
    if channel is None or client in channel.members:
        return
    status = str(event.get("p", ""))
    if known is not None and event.get("new") and record is not None:
        status = _creation_race(core, channel, record, str(event["n"]), status)
    channel.members[client] = status
    client.channels[folded] = channel
    announce_join(core, client, channel, _relay(event["r"]))
    if client.away is not None:
        away = core.new_relay(client, "AWAY", [client.away])
        core.fan_out(channel.members, away, need_cap="away-notify")


def _creation_race(
    core: ServerCore, channel: Channel, record: dict[str, Any], node: str, status: str
) -> str:
    """Two nodes made the same channel before hearing of each other: the older wins.

    As TS6 servers do: the channel made first (by time, then by node id) keeps its
    creator's ops; the other side's members lose their statuses (a MODE from the
    server tells local members) and its metadata gives way. Every node decides the
    same way from the same two records, so all end with one set of ops. Returns the
    status the joining (remote) creator keeps.
    """
    theirs = (int(record["created"]), node)
    ours = (channel.created, channel.origin)
    if theirs >= ours:
        return "" if theirs > ours else status  # ours is older: their creator gets nothing
    channel.created, channel.origin = theirs
    set_channel_record(channel, record)
    for member, modes in list(channel.members.items()):
        if not modes:
            continue
        channel.members[member] = ""
        letters = "".join(m for m in "ov" if m in modes)
        change = core.new_relay(
            core.config.name, "MODE", [channel.name, "-" + letters, *[member.nick] * len(letters)]
        )
        core.fan_out(channel.members, change)
    return status


def _on_part(core: ServerCore, event: Event) -> None:
    client = core.remote.get(event["u"])
    channel = core.channels.get(str(event["t"]))
    if client is None or channel is None or client not in channel.members:
        return
    core.fan_out(channel.members, _relay(event["r"]))
    core.remove_member(channel, client)


def _on_kick(core: ServerCore, event: Event) -> None:
    channel = core.channels.get(str(event["t"]))
    target = resolve(core, str(event["who"]))
    if channel is None or target is None or target not in channel.members:
        return
    core.fan_out(channel.members, _relay(event["r"]))
    core.remove_member(channel, target)


def _on_topic(core: ServerCore, event: Event) -> None:
    channel = core.channels.get(str(event["t"]))
    if channel is None:
        return
    record = event["ch"]
    channel.topic = str(record.get("topic", ""))
    channel.topic_setter = str(record.get("setter", ""))
    channel.topic_time = int(record.get("ttime", 0))
    core.fan_out(channel.members, _relay(event["r"]))
    channel_changed(core, channel, here=False)


def _on_mode(core: ServerCore, event: Event) -> None:
    channel = core.channels.get(str(event["t"]))
    if channel is None:
        return
    set_channel_record(channel, event["ch"])
    for uid, prefix in event.get("pre", {}).items():
        member = resolve(core, uid)
        if member is not None and member in channel.members:
            channel.members[member] = str(prefix)
    for wire in event.get("rs", ()):
        core.fan_out(channel.members, _relay(wire))
    channel_changed(core, channel, here=False)


def _on_chanreg(core: ServerCore, event: Event) -> None:
    """A channel registered, or its access list changed, on another node."""
    core.registered_channels[str(event["t"])] = from_record(event["reg"])


def _on_memo(core: ServerCore, event: Event) -> None:
    """An account's unread memos changed on another node (``f``: a new one, from whom)."""
    memo_count(core, str(event["t"]), int(event["unread"]), str(event.get("f") or ""))


def _on_chandrop(core: ServerCore, event: Event) -> None:
    core.registered_channels.pop(str(event["t"]), None)


_CHANGES_HISTORY = STORED_COMMANDS | {"REDACT"}
# What a member needs to be sent a recovered row of these kinds.
_NEEDS_CAP = {"TAGMSG": "message-tags", "REDACT": REDACT_CAP}


def _on_msg(core: ServerCore, event: Event) -> None:
    if event.get("to") is not None:
        kept = event.get("h")
        if kept is not None and core.history_enabled:
            core.emit(HistoryStale(str(kept)))  # a private conversation's window
        _to_user(core, event)
        return
    relay = _relay(event["r"])
    need_cap = event.get("cap")
    folded = str(event["t"])
    channel = core.channels.get(folded)
    if channel is None:
        return
    recovering = _state(core).recovering.get(folded)
    if recovering is not None:
        recovering[1].append(event)  # after what the recovery finds (``recovered``)
        return
    state = _state(core)
    generator = _generator(relay.msgid)
    if generator is not None:
        for retry in state.retrying.get(folded, ()):
            retry.live.setdefault(generator, relay.msgid)
    entry = state.recent.get(folded)
    if (entry is not None and relay.msgid in entry[1]) or _below_channel_floor(
        state, folded, relay.msgid
    ):
        return  # a recovery read it from the store (before its event came): delivered
    _remember(state.recent, folded, relay.msgid)
    status = str(event.get("st", ""))
    if core.history_enabled and not status and relay.command in _CHANGES_HISTORY:
        # The sender's node stored it in (or deleted it from) the shared store.
        core.emit(HistoryStale(folded))
    if status:
        allowed = "o" if "+" not in status else "ov"
        members = [m for m, modes in channel.members.items() if any(c in modes for c in allowed)]
        core.fan_out(core.not_played(members, relay.msgid), relay, need_cap=need_cap)
    else:
        core.fan_out(core.not_played(channel.members, relay.msgid), relay, need_cap=need_cap)


def _to_user(core: ServerCore, event: Event) -> None:
    """A private message to a user here: delivered unless a recovery did already, or
    held while one of the recipient's is under way (``recovered_direct``/``_transit``)."""
    target = _addressee(core, event)
    if target is None:
        return
    state = _state(core)
    relay = _relay(event["r"])
    kept = event.get("h")
    account = core.fold(target.account) if target.account is not None else None
    # A conversation's message is recovered with the account's, any other (a transit
    # row, or not stored) with every user's here.
    recovery = account if kept is not None and account is not None else _transit_prefix(core)
    recovering = state.recovering_private.get(recovery)
    if recovering is not None:
        recovering[1].append(event)
        return
    if kept is not None and account is not None:
        entry = state.direct.get(account)
        if (entry is not None and relay.msgid in entry[1]) or _below_direct_floor(
            state, account, str(kept), relay.msgid, _msgid_ms(relay.msgid)
        ):
            return  # a recovery of its conversation delivered it before it came
    if (
        kept is None
        and relay.command in STORED_COMMANDS
        and not _seen_transit(core, str(event["to"]), relay.msgid, _msgid_ms(relay.msgid))
    ):
        # The sender's node kept it as a transit row, and a recovery read it from
        # there before its event came (a later gap): delivered already.
        return
    need_cap = event.get("cap")
    if need_cap is None or need_cap in target.caps:
        core.deliver(target, relay)
        if account is not None:
            _remember(state.direct, account, relay.msgid)
        sender = core.remote.get(str(event.get("u")))
        if sender is not None:  # the local user may answer the remote one freely
            from server.core.handlers.messaging import note_sender

            note_sender(core, target, sender.folded)


def _on_stale(core: ServerCore, event: Event) -> None:
    """Another node changed a private conversation's history that no user here was
    sent anything about: a window of it cached here is out of date."""
    if core.history_enabled:
        core.emit(HistoryStale(str(event["h"])))


def _on_kill(core: ServerCore, event: Event) -> None:
    """A KILL (or NickServ GHOST) of one of our users, issued on another node."""
    target = resolve(core, str(event["u"]))
    if target is None or target.remote is not None:
        return
    from server.core.handlers.operator import kill

    kill(core, target, str(event["s"]), str(event["by"]), str(event["why"]))


def _on_setname(core: ServerCore, event: Event) -> None:
    client = core.remote.get(event["u"])
    if client is None:
        return
    client.realname = str(event["name"])
    audience = core.with_watchers(client, _local_peers(core, client))
    core.fan_out(audience, _relay(event["r"]), need_cap="setname")


def _on_umode(core: ServerCore, event: Event) -> None:
    client = core.remote.get(event["u"])
    if client is None:
        return
    if event.get("on"):
        client.modes.add(str(event["m"]))
    else:
        client.modes.discard(str(event["m"]))


def _users(core: ServerCore, uids: Iterable[Any]) -> list[Client]:
    """The users behind ``uids`` that this node knows (an accept list's entries)."""
    found = (resolve(core, str(uid)) for uid in uids)
    return [user for user in found if user is not None and user.closing is None]


def _on_accept(core: ServerCore, event: Event) -> None:
    """A remote user's accept list changed: our copy, which our users' messages to it
    are checked against (caller ID is enforced on the sender's node)."""
    owner = core.remote.get(event["u"])
    if owner is not None:
        core.accept.replace(owner, _users(core, event["a"]))


def _on_callerid(core: ServerCore, event: Event) -> None:
    """A user of another node messaged one of ours through +g, and was refused there:
    718 to ours (at most once a minute), and ``informed`` back when it went out."""
    from server.core.handlers.callerid import notify

    target = _addressee(core, event)
    if target is None or target.closing is not None:
        return
    if "g" in target.modes and notify(core, target, str(event["s"]), str(event["h"])):
        core.publish("informed", (), core.uid(target), to=str(event["u"]), t=target.nick)


def _on_informed(core: ServerCore, event: Event) -> None:
    """The +g user of another node was told of our user's message: 717 to ours."""
    from server.core.handlers.callerid import informed

    sender = _addressee(core, event)
    if sender is not None and sender.closing is None:
        informed(core, sender, str(event["t"]))


def _account(record: Any) -> str | None:
    account = record.get("account")
    return str(account) if account is not None else None


def _on_account(core: ServerCore, event: Event) -> None:
    client = core.remote.get(event["u"])
    if client is None:
        return
    account = str(event["a"])
    client.account = None if account == "*" else account  # "*": logged out
    notify_account(core, client, _relay(event["r"]))


def _on_newacct(core: ServerCore, event: Event) -> None:
    account_registered(core, str(event["f"]))


def _on_dropacct(core: ServerCore, event: Event) -> None:
    account_dropped(core, str(event["f"]), here=False)


def _on_markread(core: ServerCore, event: Event) -> None:
    marker_moved(core, str(event["a"]), str(event["t"]), str(event["tn"]), int(event["ms"]))


def _on_invite(core: ServerCore, event: Event) -> None:
    from server.core.handlers.channels import invite, notify_invite

    relay = _relay(event["r"])
    target = _addressee(core, event)
    channel = core.channels.get(str(event["t"]))
    if target is not None and target.closing is None:
        invite(target, str(event["t"]), channel)
        core.deliver(target, relay)
    if channel is not None and not event.get("q"):  # q: the inviter may not speak there
        notify_invite(core, channel, relay, () if target is None else (target,))


def _on_away(core: ServerCore, event: Event) -> None:
    client = core.remote.get(event["u"])
    if client is None:
        return
    away = event.get("away")
    client.away = str(away) if away is not None else None
    audience = core.with_watchers(client, _local_peers(core, client))
    core.fan_out(audience, _relay(event["r"]), need_cap="away-notify")


def _on_user(core: ServerCore, event: Event) -> None:
    _new_remote(core, str(event["u"]), event["rec"])


def _on_wallops(core: ServerCore, event: Event) -> None:
    from server.core.handlers.operator import deliver_wallops

    deliver_wallops(core, _relay(event["r"]))


def _on_knock(core: ServerCore, event: Event) -> None:
    from server.core.handlers.channels import deliver_knock

    channel = core.channels.get(str(event["t"]))
    if channel is not None:
        deliver_knock(core, channel, _relay(event["r"]))


def _on_snotice(core: ServerCore, event: Event) -> None:
    core.snotice(str(event["t"]), local=True)


def _on_ban(core: ServerCore, event: Event) -> None:
    from server.core.bans import ServerBan
    from server.core.handlers.bans import merge_remote

    merge_remote(core, [ServerBan.from_record(event["b"])], [])  # enforced here, and saved


def _on_unban(core: ServerCore, event: Event) -> None:
    from server.core.bans import Removal
    from server.core.handlers.bans import merge_remote

    merge_remote(core, [], [Removal(str(event["t"]), str(event["m"]), float(event["at"]))])


def _merge_bans(core: ServerCore, snap: Event) -> None:
    """Bans set or lifted while this node was away reach it through the snapshots."""
    from server.core.bans import Removal, ServerBan
    from server.core.handlers.bans import merge_remote

    node = str(snap.get("n"))
    views = _state(core).ban_views
    view = (snap.get("bans"), snap.get("unbans"))
    if views.get(node) == view:
        return
    try:
        bans = [ServerBan.from_record(r) for r in snap.get("bans", ())]
        removals = [Removal.from_record(r) for r in snap.get("unbans", ())]
    except (TypeError, ValueError):
        log.warning("bad bans in the snapshot of node %s", node)
        return
    merge_remote(core, bans, removals)
    views[node] = view


def _on_bye(core: ServerCore, event: Event) -> None:
    node_gone(core, str(event["n"]), "*.net *.split", stored=True)


_HANDLERS = {
    "up": _on_user,
    "nick": _on_nick,
    "quit": _on_quit,
    "join": _on_join,
    "part": _on_part,
    "kick": _on_kick,
    "topic": _on_topic,
    "mode": _on_mode,
    "msg": _on_msg,
    "stale": _on_stale,
    "kill": _on_kill,
    "away": _on_away,
    "account": _on_account,
    "newacct": _on_newacct,
    "dropacct": _on_dropacct,
    "chanreg": _on_chanreg,
    "chandrop": _on_chandrop,
    "memo": _on_memo,
    "markread": _on_markread,
    "invite": _on_invite,
    "setname": _on_setname,
    "umode": _on_umode,
    "accept": _on_accept,
    "callerid": _on_callerid,
    "informed": _on_informed,
    "wallops": _on_wallops,
    "knock": _on_knock,
    "snotice": _on_snotice,
    "ban": _on_ban,
    "unban": _on_unban,
    "bye": _on_bye,
}


# ---------------------------------------------------------------------- resync


def node_gone(
    core: ServerCore, node: str, reason: str, *, stored: bool = False, restarted: bool = False
) -> None:
    """``node`` stopped or died: its users quit here. Their QUITs are kept in the
    channels' history by one surviving node (the lowest id this node knows of), unless
    the node ``stored`` them itself (a graceful stop keeps its users' QUITs).

    A node that died (not ``stored``: no ``bye``, or a new run of it came) may have
    stored and echoed messages it never published (a kill -9 leaves its publisher's
    backlog, a quarter of a second at a high rate): the end of its events is recovered
    as a gap is, and its users' QUIT lines reach members here after what it finds;
    at once if it ``restarted`` (a new run came): its users, the same people often, join
    again from there, and a QUIT after such a JOIN would take them off members' lists."""
    gone = [c for uid, c in core.remote.items() if _node_of(uid) == node]
    if gone:
        log.warning("node %s is gone: %d users quit", node, len(gone))
    others = [n for n in _state(core).seen_g if n != node]
    # (Two nodes that see the cluster differently may both keep them: a QUIT twice in
    # history is better than none, which left a rejoining user's playback no departure.)
    keep = not stored and core.node_id <= min(others, default=core.node_id)
    held = [] if stored else _recover_end(core, node)
    departure = _Departure(len(held)) if held and not restarted else None
    for client in gone:
        relay = core.new_relay(client, "QUIT", [reason])
        if keep:
            core.on_channel_event(client.channels.values(), client.mask, relay, reason)
        _quit_remote(core, client, reason, relay, departure)
    if departure is not None:
        for table, waiting in held:
            table[waiting][1].append({"k": _DEPARTED, "d": departure})
    state = _state(core)
    state.applied += 1
    state.seen_g.pop(node, None)
    state.heard_ms.pop(node, None)
    state.stream.pop(node, None)
    state.stale.discard(node)
    state.names.pop(node, None)
    state.ban_views.pop(node, None)
    for key in [k for k in state.seen_chan if k[0] == node]:
        del state.seen_chan[key]


def _warn_shared_name(core: ServerCore, node: str, name: str) -> None:
    """Server names are how users tell servers apart (LINKS, WHOIS 312, server notices'
    tags say the node too): two nodes under one name, often both left at the default,
    is a set-up mistake worth a line in the log."""
    here = {core.node_id: core.config.name, **_state(core).names}
    same = sorted(other for other, known in here.items()
                  if other != node and core.fold(known) == core.fold(name))
    if same:
        log.warning("cluster: node %s has the server name %s, as node %s does: give each "
                    "node its own --name, or LINKS and WHOIS cannot tell them apart",
                    node, name, ", ".join(same))


def remote_snapshot(core: ServerCore, snap: Event) -> None:
    """Make our view of ``snap``'s node match it, telling local members what changed."""
    node = snap.get("n")
    if not isinstance(node, str) or node == core.node_id:
        return
    if not _current_run(core, node, snap):
        return
    state = _state(core)
    name = snap.get("name")
    if isinstance(name, str) and name:
        if state.names.get(node) != name:  # (said once, when the name is learnt)
            _warn_shared_name(core, node, name)
        state.names[node] = name
    g = int(snap.get("g", 0))
    last = state.seen_g.get(node)
    if last is not None and g < last:
        log.info(
            "snapshot of node %s is older than its events (%d < %d): kept ours, "
            "asked for a new one", node, g, last,
        )
        if node not in state.stale:
            state.stale.add(node)
            # Ask for a snapshot now: waiting for the next heartbeat leaves a second in
            # which the node may die with users we never heard of (they would never quit).
            core.emit(Publish({"k": "want", "n": core.node_id, "of": node}))
        return
    state.stale.discard(node)
    state.seen_g[node] = g
    state.applied += 1
    _merge_bans(core, snap)
    heard = state.heard_ms.get(node)
    if last is not None and g > last:  # events that never came: private messages too
        _recover_direct(core, node, heard)
    for folded, seq in snap.get("c", {}).items():
        before = state.seen_chan.get((node, folded))
        state.seen_chan[(node, folded)] = int(seq)
        if before is not None and int(seq) > before and folded in core.channels:
            # Events in it that never came (published while Redis was away, or while
            # we were not subscribed): its messages are in the store.
            _recover(core, str(folded), node, heard)
    chans: dict[str, Any] = snap.get("chans", {})
    want = {str(u["uid"]): u for u in snap.get("users", ())}
    for uid, gone in list(core.remote.items()):
        if _node_of(uid) == node and uid not in want:
            _quit_remote(core, gone, "*.net *.split", None)
    for uid, record in want.items():
        existing = core.remote.get(uid)
        client = existing or _new_remote(core, uid, record)
        if client is None:
            continue
        if existing is not None and client.nick != record["nick"]:
            relay = core.new_relay(client, "NICK", [str(record["nick"])])
            core.fan_out(_local_peers(core, client), relay)
            if core.nicks.get(client.folded) is client:
                del core.nicks[client.folded]
            client.nick = str(record["nick"])
            client.folded = core.fold(client.nick)
            holder = core.nicks.get(client.folded)
            if holder is None or (holder.remote is None and _collision(core, holder, client)):
                core.nicks[client.folded] = client
        away = record.get("away")
        client.away = str(away) if away is not None else None
        client.account = _account(record)
        member_of: dict[str, str] = record.get("ch", {})
        for folded in list(client.channels):
            if folded not in member_of:
                left = client.channels[folded]
                core.fan_out(left.members, core.new_relay(client, "PART", [left.name]))
                core.remove_member(left, client)
        for folded, prefix in member_of.items():
            existed = folded in core.channels
            channel = _channel(core, folded, chans.get(folded))
            if channel is None:
                continue
            if existed and folded in chans:
                record_ch = chans[folded]
                if int(record_ch.get("ttime", 0)) > channel.topic_time:
                    channel.topic = str(record_ch.get("topic", ""))
                    channel.topic_setter = str(record_ch.get("setter", ""))
                    channel.topic_time = int(record_ch.get("ttime", 0))
            if client in channel.members:
                channel.members[client] = str(prefix)
                continue
            channel.members[client] = str(prefix)
            client.channels[folded] = channel
            relay = core.new_relay(client, "JOIN", [channel.name])
            announce_join(core, client, channel, relay)
    # Accept lists once every user of the snapshot is known (they may name each other).
    for uid, record in want.items():
        owner = core.remote.get(uid)
        if owner is not None and (owner.accepting or record.get("acc")):
            core.accept.replace(owner, _users(core, record.get("acc", ())))


def recovered_direct(
    core: ServerCore,
    account: str,
    rows: list[StoredMessage] | None,
    since_ms: int | None = None,
    *,
    held: bool = True,
    came: Came = (),
) -> None:
    """After a gap: deliver the stored private messages to ``account`` (folded) that its
    sessions here were not sent, each to every one of them (by its nick now), then
    the live ones held meanwhile (``rows`` None: the read failed; not ``held``: a
    retry after that, for which nothing was held). ``since_ms``: each conversation's
    rows are all those sent since then up to its newest here (the oldest first), so
    later recoveries may skip them by msgid. ``came``: those that came live before."""
    state = _state(core)
    try:
        if rows:
            _deliver_direct(core, state, account, rows, since_ms, dict(came))
    finally:
        if held:
            _release(core, state.recovering_private, account, _to_user)


def _deliver_direct(
    core: ServerCore,
    state: ClusterState,
    account: str,
    rows: list[StoredMessage],
    since_ms: int | None,
    came: dict[int, str],
) -> None:
    sessions = [
        c for c in core.clients.values()
        if c.registered and c.closing is None and c.account is not None
        and core.fold(c.account) == account
    ]
    entry = state.direct.get(account)
    seen = entry[1] if entry is not None else set()
    count = 0
    newest: dict[tuple[str, str, int], str] = {}  # its conversations' newest rows read
    for row in sorted(rows, key=lambda r: (r.time_ms, r.seq)):
        generator = _generator(row.msgid)
        if generator is not None:
            key = (account, row.target, generator)
            newest[key] = max(newest.get(key, row.msgid), row.msgid)
        if (
            row.msgid in seen
            or row.command not in STORED_COMMANDS
            or _came_before(came, row.msgid)
            or _below_direct_floor(state, account, row.target, row.msgid, row.time_ms)
        ):
            continue
        sender = parse_tags(row.tags).get("account", "") if row.tags else ""
        if not sender or core.fold(sender) == account:
            continue  # one of its own (from a session elsewhere), or not between accounts
        need_cap = _NEEDS_CAP.get(row.command)
        for session in sessions:
            if need_cap is None or need_cap in session.caps:
                core.deliver(session, relay_from_row(row._replace(channel=session.nick)))
        _remember(state.direct, account, row.msgid)
        count += 1
    if since_ms is not None:
        floors = state.direct_floor
        if newest and len(floors) > 4 * len(core.clients) + 256:
            # Accounts with no session here any more (counted once a sweep is due).
            here = {core.fold(c.account) for c in core.clients.values() if c.account}
            for gone in [k for k in floors if k[0] not in here]:
                del floors[gone]
        for key, msgid in newest.items():
            floor = floors.get(key)
            if floor is None or msgid > floor[0]:
                floors[key] = (msgid, since_ms)
    if count:
        log.warning("recovered %d missed private messages to %s from the store", count, account)


def recovered_transit(
    core: ServerCore,
    rows: list[StoredMessage] | None,
    since_ms: int | None = None,
    *,
    held: int = 1,
    came: Came = (),
) -> None:
    """After a gap: deliver the transit rows (private messages to users here that no
    conversation keeps) that were not handled here yet, each only to the connection it
    was sent to, if still here, then the live ones held meanwhile (``rows`` None: the
    read failed). ``held``: how many recoveries under way the read answers (the bus
    reads once for those asked for in one tick; 0: a retry, for which nothing was held).

    A uid (``node:conn``) is used again after this node restarts: a row for another run
    of ours (its target names the run) is for an earlier connection, and so is one
    older than the connection (rows without a run). ``since_ms``: the rows are every
    one sent since then (the read was not cut short), so later recoveries may skip them
    by msgid (``ClusterState.transit_floor``). ``came``: those that came live before."""
    try:
        if rows:
            _deliver_transit(core, rows, since_ms, dict(came))
    finally:
        if held:
            _release(core, _state(core).recovering_private, _transit_prefix(core), _to_user,
                     held)


def _deliver_transit(
    core: ServerCore, rows: list[StoredMessage], since_ms: int | None, came: dict[int, str]
) -> None:
    count = 0
    ours = run_of(core)
    newest: dict[str, dict[int, str]] = {}  # uid -> generator -> its newest msgid read
    for row in sorted(rows, key=lambda r: (r.time_ms, r.target, r.seq)):
        if row.command not in STORED_COMMANDS or not is_transit(row.target):
            continue
        uid, run = transit_recipient(row.target)
        if run and run != ours:
            continue  # to whoever had this uid in another run of this node
        user = resolve(core, uid)
        if (
            user is None
            or user.remote is not None
            or user.closing is not None
            or row.time_ms < user.connected_at * 1000
        ):
            continue
        generator = _generator(row.msgid)
        if generator is not None:
            read = newest.setdefault(uid, {})
            read[generator] = max(read.get(generator, row.msgid), row.msgid)
        if _came_before(came, row.msgid) or not _seen_transit(core, uid, row.msgid,
                                                               row.time_ms):
            continue  # delivered live, or by an earlier recovery
        need_cap = _NEEDS_CAP.get(row.command)
        if need_cap is None or need_cap in user.caps:
            core.deliver(user, relay_from_row(row._replace(channel=user.nick)))
        count += 1
    if since_ms is not None:
        floors = _state(core).transit_floor
        for uid, read in newest.items():
            known = floors.setdefault(uid, {})
            for generator, msgid in read.items():
                floor = known.get(generator)
                if floor is None or msgid > floor[0]:
                    known[generator] = (msgid, since_ms)
    if count:
        log.warning("recovered %d missed private messages from the store", count)


def recovered(
    core: ServerCore,
    folded: str,
    rows: list[StoredMessage] | None,
    *,
    held: bool = True,
    since_ms: int | None = None,
    came: Came = (),
    retry: ChannelRetry | None = None,
) -> None:
    """After a gap: deliver stored messages of ``folded`` this node has not seen, then
    the live ones held meanwhile (``rows`` None: the read failed; not ``held``: a
    retry after that, for which nothing was held).

    Only rows newer than the oldest msgid remembered for the channel count (when no
    message of it came here yet: those since the last contact with the node that went
    silent, less clock skew), so a node never replays much it never had to deliver;
    nor those that ``came`` live before. ``since_ms``: the rows are all those sent since
    then (the oldest first), so later ones may skip them by msgid (``channel_floor``).
    ``retry``: a retry's (from ``read_failed``), whose floor and msgids are those of
    the first read, and which skips what came live since.
    """
    state = _state(core)
    try:
        if rows is not None:
            _deliver_recovered(core, state, folded, rows, since_ms, dict(came), retry)
    finally:
        if held:
            _release(core, state.recovering, folded, _on_msg)


def read_failed(core: ServerCore, folded: str) -> ChannelRetry:
    """The first read of a recovery of ``folded`` failed: release the live messages held
    for it, and return what its retries are to skip (noting what comes live until
    ``retry_over``): the floor the read would have used, before those released and the
    live messages after them move it past what the gap lost."""
    state = _state(core)
    pending = state.recovering.get(folded, (1, []))[0]
    # The retry applies it now; but a recovery still under way may not have yet.
    gap_floor = (state.recover_from.pop(folded, None) if pending <= 1
                 else state.recover_from.get(folded))
    floor, ids = _floor(state, folded, gap_floor)
    retry = ChannelRetry(floor, frozenset(ids))
    state.retrying.setdefault(folded, []).append(retry)
    recovered(core, folded, None)
    return retry


def retry_over(core: ServerCore, folded: str, retry: ChannelRetry) -> None:
    """The retries of a recovery of ``folded`` ended (delivered, given up, stopped)."""
    retries = _state(core).retrying
    left = [r for r in retries.get(folded, ()) if r is not retry]
    if left:
        retries[folded] = left
    else:
        retries.pop(folded, None)


def _floor(
    state: ClusterState, folded: str, gap_floor: str | None
) -> tuple[str | None, set[str]]:
    """The msgid at or below which a recovery of ``folded`` delivers nothing (None:
    nothing at all), and the msgids remembered for it."""
    entry = state.recent.get(folded)
    ids = entry[1] if entry is not None else set()
    if gap_floor is not None:  # nothing had come here at the gap: from the last contact
        return gap_floor, ids
    if entry is not None and entry[0]:
        return min(entry[0]), ids
    return None, ids


def _release(
    core: ServerCore,
    table: dict[str, tuple[int, list[Event]]],
    key: str,
    deliver: Callable[[ServerCore, Event], None],
    ended: int = 1,
) -> None:
    """``ended`` recoveries of ``key`` are over: the last one delivers the messages held."""
    entry = table.pop(key, None)
    if entry is None:
        return
    pending, waiting = entry
    if pending > ended:
        table[key] = (pending - ended, waiting)  # a later gap's read is due
    else:
        for event in waiting:  # (one a recovery delivered is skipped as seen)
            if event.get("k") == _DEPARTED:
                _departed(core, event["d"])
            else:
                deliver(core, event)


def _deliver_recovered(
    core: ServerCore,
    state: ClusterState,
    folded: str,
    rows: list[StoredMessage],
    since_ms: int | None,
    came: dict[int, str],
    retry: ChannelRetry | None,
) -> None:
    channel = core.channels.get(folded)
    ids: Collection[str]
    if retry is None:
        floor, ids = _floor(state, folded, state.recover_from.pop(folded, None))
        live: dict[int, str] = {}
    else:
        floor, ids = retry.floor, retry.ids | _floor(state, folded, None)[1]
        live = retry.live
    if channel is None or floor is None:
        return
    count = 0
    newest: dict[int, str] = {}  # generator -> its newest row read
    for row in sorted(rows, key=lambda r: r.seq):
        generator = _generator(row.msgid)
        if generator is not None:
            newest[generator] = max(newest.get(generator, row.msgid), row.msgid)
        first_live = None if generator is None else live.get(generator)
        if (
            row.msgid <= floor
            or row.msgid in ids
            or _came_before(came, row.msgid)
            or (first_live is not None and row.msgid >= first_live)
            or _below_channel_floor(state, folded, row.msgid)
        ):
            continue
        if row.command in STORED_EVENTS:
            continue  # a join, topic change...: its state comes with the node's snapshot
        relay = relay_from_row(row)
        need_cap = _NEEDS_CAP.get(row.command)
        core.fan_out(channel.members, relay, need_cap=need_cap)
        _remember(state.recent, folded, row.msgid)
        count += 1
    if since_ms is not None:
        floors = state.channel_floor
        if newest and len(floors) > 4 * len(core.channels) + 256:
            for gone in [k for k in floors if k[0] not in core.channels]:
                del floors[gone]
        for generator, msgid in newest.items():
            known = floors.get((folded, generator))
            if known is None or msgid > known[0]:
                floors[(folded, generator)] = (msgid, since_ms)
    if count:
        log.warning("recovered %d missed messages in %s from the store", count, channel.name)
