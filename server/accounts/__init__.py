"""Registered accounts (SASL PLAIN and SCRAM-SHA-256, IRCv3 account registration), the channels
registered with ChanServ and the memos MemoServ keeps: the store of record.

``open_accounts(db)`` opens the store for the server's ``--db`` setting, the same
database the history store uses: nothing for ``""`` (accounts kept in memory), a
PostgreSQL URL, or a SQLite file path.
"""

from __future__ import annotations

from server.history.stores import is_postgres

from .model import Account, Memo, RegisteredChannel
from .store import AccountStore, MemoryAccountStore

__all__ = [
    "Account",
    "AccountStore",
    "Memo",
    "MemoryAccountStore",
    "RegisteredChannel",
    "open_accounts",
]


def open_accounts(db: str) -> AccountStore:
    """MemoryAccountStore for ``""``, PostgresAccountStore for a ``postgresql://`` or
    ``postgres://`` URL, SQLiteAccountStore for anything else (a file path).

    The database modules are imported only when chosen, so a SQLite-only setup never
    imports psycopg.
    """
    if not db:
        return MemoryAccountStore()
    if is_postgres(db):
        from .postgres_accounts import PostgresAccountStore

        return PostgresAccountStore(db)
    from .sqlite_accounts import SQLiteAccountStore

    return SQLiteAccountStore(db)
