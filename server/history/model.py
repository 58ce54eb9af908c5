"""What history stores and how it is asked for: pure data, shared by store and cache."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal, NamedTuple

Subcommand = Literal["LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN"]

# The ``command`` of a redacted message's row (draft/message-redaction): a tombstone
# with empty text and tags. Never served (see query.SERVED_COMMANDS), but its msgid
# still resolves as a reference and its seq keeps the channel's numbering gap-free.
REDACTED_COMMAND = "REDACTED"
# The ``command`` of the row that records a deletion: the REDACT as relayed (its own
# msgid and time, the redactor as source; text: "<deleted msgid>[ <reason>]"), served
# to clients with draft/message-redaction, so that those who were away learn of it.
REDACT_EVENT = "REDACT"
# The ``command`` of the row that marks where an unregistered channel ended while it was
# secret, invite-only or keyed (core.history.end_private_channel): the rows up to it
# were said in an earlier channel of that name, which nobody in a new one could have
# read, so no read (CHATHISTORY, join playback, SEARCH, TARGETS, REDACT's lookup)
# serves or finds them. Kept, not deleted: never served itself.
ENDED_COMMAND = "ENDED"
# The ``command`` of the rows that say a MODE made a channel closed (secret, invite-only
# or keyed) or open again (core.history.note_closed), never served: a server killed
# (kill -9) ends no channel, so at the next start each channel whose newest of these is
# CLOSED, with no ENDED row after it, gets its ENDED row then (``left_closed``).
CLOSED_COMMAND = "CLOSED"
OPENED_COMMAND = "OPENED"
# Targets starting with this hold transit rows: private messages to a user of another
# cluster node that no conversation keeps (not between two accounts), stored under this
# and the recipient's uid ("node:conn", then TRANSIT_RUN and its node's run) only so
# that its node can deliver one whose event was lost (a gap). No nick, account or
# channel name starts with it or holds a ':', so no request of a client (CHATHISTORY,
# SEARCH, TARGETS, REDACT, join playback) can name such a target; no conversation row
# lists it; the cache never holds it.
TRANSIT_PREFIX = "%"
# Between the uid and its node's run in a transit target (``%node:conn/run``): the run
# tells the connections of two runs apart, which have the same uid.
TRANSIT_RUN = "/"


def is_transit(target: str) -> bool:
    return target[:1] == TRANSIT_PREFIX


def transit_bounds(prefix: str) -> tuple[str, str]:
    """The range [low, high) of the targets that start with ``prefix`` (non-empty), as
    both stores compare text (bytewise: "C" collation, SQLite's BINARY)."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


class StoredMessage(NamedTuple):
    """One channel message. ``seq`` is assigned by the store: a per-channel total order.

    A tuple, so the SQLite store hands the very objects it returns to ``executemany``.
    """

    target: str  # folded channel name
    seq: int
    msgid: str
    time_ms: int
    source: str  # nick!user@host
    command: str  # PRIVMSG, NOTICE or TAGMSG; REDACTED_COMMAND once redacted
    channel: str  # channel name as sent (display case)
    text: str  # empty for TAGMSG
    tags: str = ""  # client-only tags, serialised as in a message ("+a=b;+c")

    def to_json(self) -> str:
        return json.dumps(self, separators=(",", ":"))  # a JSON array, in field order

    @staticmethod
    def from_json(data: str | bytes) -> StoredMessage:
        t, seq, msgid, time_ms, source, command, channel, text, tags = json.loads(data)
        return StoredMessage(
            str(t), int(seq), str(msgid), int(time_ms), str(source), str(command),
            str(channel), str(text), str(tags),
        )


class FoundMessage(NamedTuple):
    """A message looked up by msgid and who sent it."""

    row: StoredMessage
    sender: str  # as in NewMessage.sender


@dataclass(frozen=True, slots=True)
class DirectPair:
    """The two accounts of a direct message: who sent it and to whom (folded and as shown)."""

    sender: str
    sender_name: str
    recipient: str
    recipient_name: str


class NewMessage(NamedTuple):
    """A message accepted by the core this tick, before the store numbers it.

    A direct message between accounts has ``target`` = its conversation key and
    ``dm`` set: the store then also records the conversation for both accounts.
    A tuple rather than a frozen dataclass: one is made per stored message, on the
    loop, and a frozen dataclass's ``__init__`` cost five times as much.
    """

    target: str
    msgid: str
    time_ms: int
    source: str
    command: str
    channel: str
    text: str
    tags: str = ""
    dm: DirectPair | None = None  # set on direct messages between accounts only
    # Who sent it, for REDACT's "own message" check: "a:<folded account>" or
    # "c:<connection id>". Stored with the row, never served in replies.
    sender: str = ""

    def numbered(self, seq: int) -> StoredMessage:
        """The row a store makes of this message once it has numbered it ``seq``."""
        return StoredMessage(self.target, seq, self.msgid, self.time_ms, self.source,
                             self.command, self.channel, self.text, self.tags)


@dataclass(frozen=True, slots=True)
class Ref:
    """A CHATHISTORY reference: a msgid, a timestamp (ms), or '*' (none)."""

    kind: Literal["msgid", "timestamp", "none"]
    msgid: str = ""
    time_ms: int = 0


NO_REF = Ref("none")


@dataclass(frozen=True, slots=True)
class Query:
    """A resolved CHATHISTORY request against one channel."""

    subcommand: Subcommand
    target: str  # folded
    ref: Ref
    limit: int
    ref2: Ref = NO_REF  # BETWEEN's second reference
    # Only messages whose msgid sorts before this one (join playback: nothing sent
    # after the join, which the joiner receives live anyway).
    until_msgid: str = ""
    # The client negotiated message-tags: TAGMSG rows (reactions, typing...) are served too.
    with_tagmsg: bool = False
    # The client negotiated draft/event-playback: channel events (topic changes) too.
    with_events: bool = False
    # The client negotiated draft/message-redaction: REDACT_EVENT rows are served too.
    with_redactions: bool = False
    # A join's playback: a convenience (the client may ask CHATHISTORY for more), so its
    # walk past unserved rows stops sooner (query.walk_limit).
    playback: bool = False


@dataclass(frozen=True, slots=True)
class Search:
    """A SEARCH request, resolved to the history targets the user may read."""

    targets: tuple[str, ...]  # folded channel names and/or conversation keys ("$a$b")
    text: str = ""  # substring to find, case-insensitive for ASCII letters ("" matches all)
    sender: str = ""  # only messages from this nick (case-insensitive, ASCII), "" any
    after_ms: int = 0  # only messages strictly after this time (0: no bound)
    before_ms: int = 0  # only messages strictly before this time (0: no bound)
    limit: int = 100
    # Also the newest store.SEARCH_CONVERSATIONS private conversations of this (folded)
    # account, from the store's conversations table (the core does not hold their
    # keys); "" none.
    account: str = ""
