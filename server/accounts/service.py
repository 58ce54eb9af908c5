"""Log in and register against the account store. Runs on a worker thread, never the
event loop: each call spends one scrypt hash (tens of milliseconds) and a store call.

Neither function raises for a store failure: it is logged and answered as a failed
login or an unavailable registration, so a database outage refuses logins rather
than breaking the connection handling that called in.
"""

from __future__ import annotations

import base64
import enum
import logging

from server.passwords import (
    DEFAULT_N,
    DEFAULT_P,
    DEFAULT_R,
    KEY_BYTES,
    SALT_BYTES,
    SCHEME,
    hash_password,
    verify_password,
)

from .model import Account
from .store import AccountStore

log = logging.getLogger("chat.server.accounts")

# Verified against when the account does not exist, so that an unknown name costs
# the same scrypt as a wrong password and timing does not tell which names exist.
# The cost parameters of new hashes, a fixed salt, and a key no password derives
# (well, one in 2**256): nothing is hashed at import.
_DUMMY_HASH = "$".join(
    (
        SCHEME,
        str(DEFAULT_N),
        str(DEFAULT_R),
        str(DEFAULT_P),
        base64.b64encode(b"chat-dummy-salt!"[:SALT_BYTES]).decode("ascii"),
        base64.b64encode(bytes(KEY_BYTES)).decode("ascii"),
    )
)


class RegisterResult(enum.Enum):
    OK = "ok"
    EXISTS = "exists"
    UNAVAILABLE = "unavailable"  # the store failed (logged); try again later


def login(store: AccountStore, folded: str, password: str) -> Account | None:
    """The account ``folded`` if ``password`` is its password, else None (also for an
    unknown account or a store failure)."""
    try:
        account = store.find(folded)
    except Exception:
        log.exception("account store: looking up account %r failed", folded)
        return None
    if account is None:
        verify_password(password, _DUMMY_HASH)  # the same time as a wrong password
        return None
    if not verify_password(password, account.password_hash):
        return None
    return account


def change_password(store: AccountStore, folded: str, password: str) -> bool:
    """Give the account ``folded`` a new password (hashed); False when it failed."""
    try:
        return store.set_password(folded, hash_password(password))
    except Exception:
        log.exception("account store: changing the password of %r failed", folded)
        return False


def drop(store: AccountStore, folded: str) -> bool:
    """Delete the account ``folded``; False when there is none or the store failed."""
    try:
        return store.delete(folded)
    except Exception:
        log.exception("account store: dropping account %r failed", folded)
        return False


def register(
    store: AccountStore, folded: str, name: str, password: str, now_ms: int
) -> RegisterResult:
    """Create the account ``name`` (key ``folded``) with ``password``, hashed.

    The caller has validated the name and password; EXISTS when ``folded`` is taken.
    """
    account = Account(name=name, password_hash=hash_password(password), created_ms=now_ms)
    try:
        created = store.create(folded, account)
    except Exception:
        log.exception("account store: creating account %r failed", folded)
        return RegisterResult.UNAVAILABLE
    return RegisterResult.OK if created else RegisterResult.EXISTS
