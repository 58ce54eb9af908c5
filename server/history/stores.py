"""Open the store of record named by the ``db`` setting: a SQLite path or a PostgreSQL URL."""

from __future__ import annotations

from .store import HistoryStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(url_or_path: str) -> bool:
    return url_or_path.startswith(POSTGRES_SCHEMES)


class StoreOpenError(Exception):
    """The store of record cannot be opened at start (a missing directory, no
    permission, an unreachable database): said in one line, not a traceback."""


def open_store(url_or_path: str) -> HistoryStore:
    """PostgresStore for a ``postgresql://`` or ``postgres://`` URL, SQLiteStore otherwise.

    psycopg is imported only for a PostgreSQL URL, so a SQLite-only setup never
    needs it.
    """
    try:
        if is_postgres(url_or_path):
            from .postgres_store import PostgresStore

            return PostgresStore(url_or_path)
        from .sqlite_store import SQLiteStore

        return SQLiteStore(url_or_path)
    except Exception as exc:
        # (a PostgreSQL URL may hold a password: not repeated)
        name = "the PostgreSQL database" if is_postgres(url_or_path) else url_or_path
        raise StoreOpenError(f"cannot open the history database {name}: {exc}") from exc
