"""Cluster effects emitted by the core, and the JSON wire format of events.

An event is a JSON object. Every event carries ``n`` (the originating node), ``g``
(that node's event counter) and ``c`` (``{folded channel: seq}``, the node's
per-channel counter for each channel the event touches), so a receiver can tell
when it missed something, and ``e`` (the node's run: its counters start again when
it restarts under the same id, which a new ``e`` tells; heartbeats and snapshots
carry it too). ``k`` names the kind: up, nick, quit, join, part, kick,
topic, mode, msg, kill, away, account, newacct, dropacct, markread, chanreg, chandrop,
memo, invite, setname, umode, accept, callerid, informed, wallops, knock, ban, unban,
snotice, want (from the core) and hb, bye (from the bus); hello is still understood.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

Event = dict[str, Any]
# Per msgid generator (one node's run: the low 16 bits of its msgids), the newest msgid
# of it that had come here in order when a recovery was asked for: every message of that
# run up to it was delivered live (or is held), so a recovery skips those rows.
Came = tuple[tuple[int, str], ...]

CHANNEL = "chat:cluster:events"  # the pub/sub channel every node publishes to
NICK_KEY = "chat:cluster:nick:"  # + folded nick -> owner uid, with a lease
NODE_KEY = "chat:cluster:node:"  # + node id -> JSON snapshot, with a lease
NODES_KEY = "chat:cluster:nodes"  # set of node ids that ever announced themselves


@dataclass(frozen=True, slots=True)
class Publish:
    """Send ``event`` to the other nodes (after the tick's history commit)."""

    event: Event


@dataclass(frozen=True, slots=True)
class ClaimNick:
    """Claim ``folded`` for ``uid`` in Redis; answer with core.nick_claim_result()."""

    conn_id: int
    uid: str
    nick: str
    folded: str
    ghost: str = ""  # NickServ REGAIN: the uid of a ghost whose claim may be taken over


@dataclass(frozen=True, slots=True)
class ReleaseNick:
    uid: str
    folded: str


@dataclass(frozen=True, slots=True)
class Resync:
    """Fetch ``node``'s snapshot from Redis and hand it to core.remote_snapshot()."""

    node: str


@dataclass(frozen=True, slots=True)
class Recover:
    """Messages of ``channel`` may have been missed: query the store, hand rows to
    apply.recovered(core, channel, rows). ``since_ms``: those sent since then, oldest first
    (None: the newest)."""

    channel: str
    since_ms: int | None = None
    came: Came = ()


@dataclass(frozen=True, slots=True)
class RecoverDirect:
    """Private messages to these (folded) accounts, users here, may have been missed
    since ``since_ms``: read their conversations since then from the store, hand the
    rows to apply.recovered_direct(account, rows)."""

    accounts: tuple[str, ...]
    since_ms: int
    came: Came = ()


@dataclass(frozen=True, slots=True)
class RecoverTransit:
    """Private messages to users here that no conversation keeps (transit rows, under
    ``prefix``: ``%`` and this node's id) may have been missed since ``since_ms``: read
    them from the store in one query, hand the rows to apply.recovered_transit()."""

    prefix: str
    since_ms: int
    came: Came = ()


def encode(event: Any) -> bytes:
    """An event, or a part of one, as JSON."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def decode(data: bytes | str) -> Event:
    event = json.loads(data)
    if not isinstance(event, dict) or not isinstance(event.get("n"), str):
        raise ValueError("not a cluster event")
    return event
