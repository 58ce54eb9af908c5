"""What the account store keeps: pure data, shared by every store and the service."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Account:
    """One registered account. Frozen: stores hand the same object to several threads."""

    name: str  # the account name as registered (shown to users)
    password_hash: str  # the format of server.passwords.hash_password
    created_ms: int  # unix time in milliseconds
