"""What the account store keeps: pure data, shared by every store and the service."""

from __future__ import annotations

import heapq
from collections.abc import ItemsView
from dataclasses import dataclass
from typing import overload

# Read markers one account keeps (draft/read-marker): past it the oldest goes, in
# memory and in the store. MARKREAD takes any valid name, and each costs a row for good.
ACCOUNT_MARKERS = 1000


class Markers:
    """One account's read markers, target -> time (ms): at most ACCOUNT_MARKERS, the
    oldest going first, of equals the smallest name (as the SQL stores' ``ORDER BY
    time_ms DESC, target DESC`` keeps the others).

    The oldest is found in a heap of (time, target), kept only once the account is
    full: a linear search for it cost every MARKREAD of a full account a thousand
    comparisons on the loop. Entries a marker moved past stay in the heap until popped
    or until they outnumber the markers (then it is built again)."""

    __slots__ = ("_heap", "_times")

    def __init__(self) -> None:
        self._times: dict[str, int] = {}
        self._heap: list[tuple[int, str]] | None = None

    @overload
    def get(self, target: str) -> int | None: ...
    @overload
    def get(self, target: str, default: int) -> int: ...
    def get(self, target: str, default: int | None = None) -> int | None:
        return self._times.get(target, default)

    def __len__(self) -> int:
        return len(self._times)

    def items(self) -> ItemsView[str, int]:
        return self._times.items()

    def keep(self, target: str, time_ms: int) -> bool:
        """Keep ``time_ms`` for ``target`` unless a later time is kept; past
        ACCOUNT_MARKERS the oldest goes. False when that was this one: not kept."""
        times = self._times
        if times.get(target, -1) >= time_ms:
            return True
        times[target] = time_ms
        heap = self._heap
        if heap is not None:
            heapq.heappush(heap, (time_ms, target))
        elif len(times) > ACCOUNT_MARKERS:
            heap = self._heap = [(t, name) for name, t in times.items()]
            heapq.heapify(heap)
        kept = True
        if heap is not None and len(times) > ACCOUNT_MARKERS:
            while True:
                oldest, name = heapq.heappop(heap)
                if times.get(name) == oldest:  # else moved since, or gone: a stale entry
                    break
            del times[name]
            kept = name != target
        if heap is not None and len(heap) > 2 * len(times):
            heap[:] = [(t, name) for name, t in times.items()]
            heapq.heapify(heap)
        return kept


@dataclass(frozen=True, slots=True)
class Account:
    """One registered account. Frozen: stores hand the same object to several threads."""

    name: str  # the account name as registered (shown to users)
    password_hash: str  # the format of server.passwords.hash_password
    created_ms: int  # unix time in milliseconds
    # SASL SCRAM-SHA-256 credentials (chat.scram.Credentials.to_text), derived from the
    # password whenever the server sees it; None for an account from before SCRAM
    # until its next PLAIN login.
    scram: str | None = None


@dataclass(frozen=True, slots=True)
class RegisteredChannel:
    """A channel registered with ChanServ: who owns it, and its state when last changed."""

    name: str  # the channel name as registered (shown to users)
    founder: str  # the founder's account name, case-folded by the caller
    created_ms: int  # unix time in milliseconds
    ops: tuple[str, ...] = ()  # folded account names ChanServ gives +o on join, besides the founder
    state: str = "{}"  # JSON text of the channel's topic, modes and lists; opaque to the store


@dataclass(frozen=True, slots=True)
class Memo:
    """A message left for an account (MemoServ), kept until its recipient deletes it."""

    memo_id: int  # given by the store; increases with each memo sent, never reused
    sender: str  # the sender's account name as shown
    sent_ms: int  # unix time in milliseconds
    text: str
    read: bool = False
