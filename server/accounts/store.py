"""The AccountStore protocol, and the in-memory store used without a database."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from .model import Account, Markers, Memo, RegisteredChannel

SECRET_BYTES = 32  # of a stored secret (AccountStore.secret), as hex


class AccountStore(Protocol):
    """Called from worker threads (any thread, several at once), never the event loop.

    ``folded`` is the account name already case-folded by the caller: the unique key.
    ``Account.name`` keeps the case as registered. Every method of a closed store
    raises; a store error (I/O, a lost database connection) raises too, and the
    caller (service.py) turns it into a refusal.
    """

    def create(self, folded: str, account: Account) -> bool:
        """Store ``account`` under ``folded``; False when ``folded`` exists already.

        Atomic on the unique key: of concurrent creates of one name (from any thread,
        or any node sharing the database), exactly one returns True.
        """
        ...

    def find(self, folded: str) -> Account | None:
        """The account stored under ``folded``, or None."""
        ...

    def names(self) -> list[str]:
        """Every account's folded name (the nicks they reserve), read at start."""
        ...

    def set_password(self, folded: str, password_hash: str, scram: str | None = None) -> bool:
        """Replace the account's password hash and its SCRAM credentials (None: none,
        never the old password's); False when there is no such account."""
        ...

    def set_scram(self, folded: str, password_hash: str, scram: str) -> bool:
        """Give the account SCRAM credentials if its password hash is still
        ``password_hash``, the password they were derived from (a change of password
        meanwhile wins); False when it is not, or there is no such account."""
        ...

    def delete(self, folded: str) -> bool:
        """Remove the account, its read markers, the channels it founded and the memos
        sent to it; False when there is no such account. One transaction: all of it
        goes, or none."""
        ...

    def read_markers(self) -> list[tuple[str, str, int]]:
        """Every (account, target, time_ms) kept: the server reads them all at start."""
        ...

    def set_read_markers(self, markers: Sequence[tuple[str, str, int]]) -> None:
        """For each (account, target, time_ms): keep ``time_ms`` unless a later one is
        kept already (markers only move forward, also when two nodes write at once);
        at most ACCOUNT_MARKERS per account, the oldest going first (``Markers``).
        Markers of an account that does not exist (dropped since they were set) are
        not kept: a new account of the name must not inherit them."""
        ...

    def drop_read_markers(self, account: str) -> None:
        """Forget the account's markers (it was dropped)."""
        ...

    def channels(self) -> list[tuple[str, RegisteredChannel]]:
        """Every registered channel as (folded channel name, registration), read at start."""
        ...

    def register_channel(self, folded: str, channel: RegisteredChannel) -> bool:
        """Store ``channel`` under ``folded``; False when ``folded`` is registered already.

        Atomic on the unique key, as ``create``: of concurrent registrations of one
        channel (any thread, any node), exactly one returns True.
        """
        ...

    def save_channel(self, folded: str, channel: RegisteredChannel) -> bool:
        """Replace the founder, ops and state of a registered channel (its name and
        created_ms stay); False, and nothing stored, when ``folded`` is not registered."""
        ...

    def drop_channel(self, folded: str) -> bool:
        """Remove the channel's registration; False when ``folded`` is not registered."""
        ...

    def send_memo(
        self, recipient: str, sender: str, sent_ms: int, text: str, limit: int
    ) -> int | None:
        """Store an unread memo for ``recipient`` and return its new memo_id; None, and
        nothing stored, when the recipient has ``limit`` memos already (read or not).

        The count and the insert are one step against concurrent senders (any thread,
        any node), so the limit is never exceeded. The store does not check that the
        account exists: the caller does.
        """
        ...

    def memos(self, recipient: str) -> list[Memo]:
        """The recipient's memos, oldest (lowest memo_id) first."""
        ...

    def mark_memo_read(self, recipient: str, memo_id: int) -> bool:
        """Mark the recipient's memo read; False when the recipient has no such memo."""
        ...

    def delete_memos(self, recipient: str, memo_ids: list[int]) -> int:
        """Delete those of ``memo_ids`` that are the recipient's memos (others'
        are never touched); returns how many were deleted."""
        ...

    def unread_memos(self) -> list[tuple[str, int]]:
        """(recipient, unread count) for every recipient with an unread memo, read at start."""
        ...

    def secret(self, name: str) -> str:
        """A random secret kept under ``name``, made on the first ask: the same for
        every server sharing the store, and across restarts."""
        ...

    def close(self) -> None:
        """Release the store's connections; later calls raise."""
        ...


class MemoryAccountStore:
    """Accounts in a dict, for ``--db ""``: everything is lost on restart."""

    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}
        # account -> target -> time_ms of the last message read (IRCv3 read markers)
        self._markers: dict[str, Markers] = {}
        self._channels: dict[str, RegisteredChannel] = {}
        self._memos: dict[str, list[Memo]] = {}  # recipient -> memos, oldest first
        self._last_memo_id = 0
        self._secrets: dict[str, str] = {}
        # Workers call in from several threads; check-then-insert must be one step.
        self._lock = threading.Lock()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the account store is closed")

    def create(self, folded: str, account: Account) -> bool:
        with self._lock:
            self._check_open()
            if folded in self._accounts:
                return False
            self._accounts[folded] = account
            return True

    def find(self, folded: str) -> Account | None:
        with self._lock:
            self._check_open()
            return self._accounts.get(folded)

    def names(self) -> list[str]:
        with self._lock:
            self._check_open()
            return list(self._accounts)

    def set_password(self, folded: str, password_hash: str, scram: str | None = None) -> bool:
        with self._lock:
            self._check_open()
            account = self._accounts.get(folded)
            if account is None:
                return False
            self._accounts[folded] = replace(account, password_hash=password_hash, scram=scram)
            return True

    def set_scram(self, folded: str, password_hash: str, scram: str) -> bool:
        with self._lock:
            self._check_open()
            account = self._accounts.get(folded)
            if account is None or account.password_hash != password_hash:
                return False
            self._accounts[folded] = replace(account, scram=scram)
            return True

    def delete(self, folded: str) -> bool:
        with self._lock:
            self._check_open()
            self._markers.pop(folded, None)
            self._memos.pop(folded, None)
            self._channels = {
                name: c for name, c in self._channels.items() if c.founder != folded
            }
            return self._accounts.pop(folded, None) is not None

    def read_markers(self) -> list[tuple[str, str, int]]:
        with self._lock:
            self._check_open()
            return [
                (account, target, time_ms)
                for account, targets in self._markers.items()
                for target, time_ms in targets.items()
            ]

    def set_read_markers(self, markers: Sequence[tuple[str, str, int]]) -> None:
        with self._lock:
            self._check_open()
            for account, target, time_ms in markers:
                if account in self._accounts:
                    self._markers.setdefault(account, Markers()).keep(target, time_ms)

    def drop_read_markers(self, account: str) -> None:
        with self._lock:
            self._check_open()
            self._markers.pop(account, None)

    def channels(self) -> list[tuple[str, RegisteredChannel]]:
        with self._lock:
            self._check_open()
            return list(self._channels.items())

    def register_channel(self, folded: str, channel: RegisteredChannel) -> bool:
        with self._lock:
            self._check_open()
            if folded in self._channels:
                return False
            self._channels[folded] = channel
            return True

    def save_channel(self, folded: str, channel: RegisteredChannel) -> bool:
        with self._lock:
            self._check_open()
            old = self._channels.get(folded)
            if old is None:
                return False
            self._channels[folded] = replace(
                old, founder=channel.founder, ops=channel.ops, state=channel.state
            )
            return True

    def drop_channel(self, folded: str) -> bool:
        with self._lock:
            self._check_open()
            return self._channels.pop(folded, None) is not None

    def send_memo(
        self, recipient: str, sender: str, sent_ms: int, text: str, limit: int
    ) -> int | None:
        with self._lock:
            self._check_open()
            kept = self._memos.get(recipient, [])
            if len(kept) >= limit:
                return None
            self._last_memo_id += 1
            memo = Memo(self._last_memo_id, sender, sent_ms, text)
            self._memos.setdefault(recipient, []).append(memo)
            return memo.memo_id

    def memos(self, recipient: str) -> list[Memo]:
        with self._lock:
            self._check_open()
            return list(self._memos.get(recipient, []))

    def mark_memo_read(self, recipient: str, memo_id: int) -> bool:
        with self._lock:
            self._check_open()
            kept = self._memos.get(recipient, [])
            for i, memo in enumerate(kept):
                if memo.memo_id == memo_id:
                    kept[i] = replace(memo, read=True)
                    return True
            return False

    def delete_memos(self, recipient: str, memo_ids: list[int]) -> int:
        with self._lock:
            self._check_open()
            kept = self._memos.get(recipient, [])
            gone = set(memo_ids)
            left = [memo for memo in kept if memo.memo_id not in gone]
            if left:
                self._memos[recipient] = left
            else:
                self._memos.pop(recipient, None)
            return len(kept) - len(left)

    def secret(self, name: str) -> str:
        with self._lock:
            self._check_open()
            return self._secrets.setdefault(name, secrets.token_hex(SECRET_BYTES))

    def unread_memos(self) -> list[tuple[str, int]]:
        with self._lock:
            self._check_open()
            counts = [
                (recipient, sum(not memo.read for memo in kept))
                for recipient, kept in self._memos.items()
            ]
            return [(recipient, n) for recipient, n in counts if n]

    def close(self) -> None:
        with self._lock:
            self._closed = True
