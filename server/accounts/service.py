"""Log in and register against the account store. Runs on a worker thread, never the
event loop: each call spends one scrypt hash (tens of milliseconds) and a store call.
Wherever the password is seen (a registration, a change, a PLAIN login of an account
from before SCRAM) its SCRAM-SHA-256 credentials are derived (PBKDF2, a few ms) and
stored with it, so that the account can log in with SCRAM from then on. A new
password's hash and credentials (``hash_new_password``) are made apart from the store
call that keeps them (``create``, ``store_password``), so that the server can make them
on a thread other than the one its store calls queue on.

No function here raises for a store failure: it is logged and answered as a failed
login or an unavailable registration, so a database outage refuses logins rather
than breaking the connection handling that called in.
"""

from __future__ import annotations

import base64
import enum
import logging
from dataclasses import dataclass

from chat import scram
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
    if account.scram is None:
        _upgrade(store, folded, account, password)
    return account


def _upgrade(store: AccountStore, folded: str, account: Account, password: str) -> None:
    """SCRAM credentials for an account from before SCRAM, now that its password is
    known; the login succeeds whether or not they could be stored."""
    try:
        store.set_scram(folded, account.password_hash, scram.derive(password).to_text())
    except Exception:
        log.exception("account store: storing SCRAM credentials of %r failed", folded)


def scram_credentials(store: AccountStore, folded: str) -> tuple[str, str] | None:
    """(the account's name, its SCRAM credentials as stored) for SASL SCRAM-SHA-256;
    None for an unknown account, one without credentials, or a store failure (the
    exchange then goes on with decoy credentials and fails at the proof)."""
    try:
        account = store.find(folded)
    except Exception:
        log.exception("account store: looking up account %r failed", folded)
        return None
    if account is None or account.scram is None:
        return None
    return account.name, account.scram


@dataclass(frozen=True, slots=True)
class NewPassword:
    """What an account keeps of a new password: its scrypt hash and SCRAM credentials."""

    password_hash: str
    scram: str


def hash_new_password(password: str) -> NewPassword:
    """The hash and SCRAM credentials of ``password`` (fresh salts): no store call, only
    the slow part of a registration or a password change."""
    return NewPassword(hash_password(password), scram.derive(password).to_text())


def change_password(store: AccountStore, folded: str, password: str) -> bool:
    """Give the account ``folded`` a new password (hashed, and its SCRAM credentials);
    False when it failed."""
    return store_password(store, folded, hash_new_password(password))


def store_password(store: AccountStore, folded: str, new: NewPassword) -> bool:
    """Give the account ``folded`` the password ``new`` was made of; False when it
    failed (no such account, or the store)."""
    try:
        return store.set_password(folded, new.password_hash, new.scram)
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
    return create(store, folded, name, hash_new_password(password), now_ms)


def create(
    store: AccountStore, folded: str, name: str, new: NewPassword, now_ms: int
) -> RegisterResult:
    """Create the account ``name`` (key ``folded``) with the password ``new`` was made
    of; EXISTS when ``folded`` is taken."""
    account = Account(
        name=name, password_hash=new.password_hash, created_ms=now_ms, scram=new.scram
    )
    try:
        created = store.create(folded, account)
    except Exception:
        log.exception("account store: creating account %r failed", folded)
        return RegisterResult.UNAVAILABLE
    return RegisterResult.OK if created else RegisterResult.EXISTS
