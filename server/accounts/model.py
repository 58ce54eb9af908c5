"""What the account store keeps: pure data, shared by every store and the service."""

from __future__ import annotations

from dataclasses import dataclass

# Read markers one account keeps (draft/read-marker): past it the oldest goes, in
# memory and in the store. MARKREAD takes any valid name, and each costs a row for good.
ACCOUNT_MARKERS = 1000


def oldest_marker(markers: dict[str, int]) -> str:
    """The target whose marker goes first: the oldest, of equals the greatest name (as
    the SQL stores' ``ORDER BY time_ms DESC, target`` keeps the others)."""
    oldest = min(markers.values())
    return max(target for target, time_ms in markers.items() if time_ms == oldest)


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
