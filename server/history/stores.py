"""Open the store of record named by the ``db`` setting: a SQLite path or a PostgreSQL URL."""

from __future__ import annotations

from .store import HistoryStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(url_or_path: str) -> bool:
    return url_or_path.startswith(POSTGRES_SCHEMES)


def open_store(url_or_path: str) -> HistoryStore:
    """PostgresStore for a ``postgresql://`` or ``postgres://`` URL, SQLiteStore otherwise.

    psycopg is imported only for a PostgreSQL URL, so a SQLite-only setup never
    needs it.
    """
    if is_postgres(url_or_path):
        from .postgres_store import PostgresStore

        return PostgresStore(url_or_path)
    from .sqlite_store import SQLiteStore

    return SQLiteStore(url_or_path)
