"""A real PostgreSQL server for the tests: Debian's binaries, initdb into a temp dir.

``pg_server`` (session scope) runs one throwaway cluster on a free 127.0.0.1 port
with its unix socket in the same temp dir, and creates the tests' database;
``pg_url`` (per test) creates a fresh schema in it and drops it afterwards: its URL
sets ``search_path``, so every test starts from an empty database as far as the
code under test can tell (CREATE DATABASE per test costs ~0.1-0.6 s each).

initdb and postgres refuse to run as root: as root they run as the ``postgres``
system user (created by Debian's ``postgresql`` package) and the temp dir is
handed to it. Durability settings are off (fsync, full_page_writes): the data is
thrown away, and PostgreSQL's own crash safety is not what these tests are about.

Use from a test module: import the fixture functions (pytest finds them by their
names, ``pg_server`` and ``pg_url``; the functions are named differently so that a
test's ``pg_url`` parameter does not shadow the import)::

    from tests.history.postgres_fixture import pg_server_fixture, pg_url_fixture  # noqa: F401
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.net import free_port

try:
    import psycopg
except ImportError:  # pragma: no cover - the dependency is declared; say so if missing
    psycopg = None  # type: ignore[assignment]

__all__ = ["PostgresServer", "find_pg_bin", "pg_server_fixture", "pg_url_fixture"]


def find_pg_bin() -> Path | None:
    """The bin dir of the newest PostgreSQL found (Debian layout first, then PATH)."""

    def major(path: str) -> int:
        try:
            return int(Path(path).parts[-3])
        except ValueError:
            return 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=major)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is not None and shutil.which("pg_ctl") is not None:
        return Path(initdb).parent
    return None


class PostgresServer:
    """One throwaway PostgreSQL cluster listening on 127.0.0.1:``port`` only."""

    def __init__(self, bin_dir: Path, directory: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "postgres.log"
        self.port = port
        self.user = "postgres"
        self.dbname = "postgres"  # the tests' database, once created
        self._names = itertools.count(1)
        # Root may not run the server: hand everything to the postgres system user.
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root, PostgreSQL needs the 'postgres' system user "
                    "(Debian's postgresql package creates it)"
                ) from None
            os.chown(directory, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, tool: str, *args: str) -> None:
        cmd = [*self._as, str(self.bin_dir / tool), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{tool} failed ({done.returncode}): {done.stdout}{done.stderr}\n{log}"
            )

    def start(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", self.user, "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        )
        options = " ".join([
            "-c listen_addresses=127.0.0.1",
            f"-p {self.port}",
            f"-k {self.directory}",  # unix socket in the temp dir, not /var/run
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off",
            "-c max_connections=200",
        ])
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
                  "-l", str(self.log), "-o", options)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.data))

    def url(self, dbname: str = "postgres", schema: str = "") -> str:
        url = f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"
        if schema:  # every connection of the URL works in that schema
            url += f"?options=-csearch_path%3D{schema}"
        return url

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url(dbname), autocommit=True)

    def create_database(self) -> str:
        """A fresh, empty database. Its default collation is ICU en-US, not byte
        order, so code that needs byte order (msgid comparisons) must say so."""
        name = f"chat_test_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(
                f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING UTF8 '
                "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            )
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def create_schema(self, dbname: str) -> str:
        """A fresh, empty schema in ``dbname``: much cheaper than a database."""
        name = f"t_{next(self._names)}"
        with self.admin(dbname) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return name

    def drop_schema(self, dbname: str, name: str) -> None:
        with self.admin(dbname) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="session", name="pg_server")
def pg_server_fixture() -> Iterator[PostgresServer]:
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql): no initdb found")
    if psycopg is None:
        pytest.skip("psycopg is not installed (pip install 'psycopg[binary]>=3.1')")
    # Not under pytest's tmp dirs: those are root-only (0700), which the postgres
    # user could not traverse.
    directory = Path(tempfile.mkdtemp(prefix="chat-pg-"))
    server = PostgresServer(bin_dir, directory, free_port())
    try:
        server.start()
        server.dbname = server.create_database()
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(name="pg_url")
def pg_url_fixture(pg_server: PostgresServer) -> Iterator[str]:
    """A URL whose connections see only a new empty schema (dropped after the test)
    of the session's test database: as good as a fresh database, and cheap."""
    schema = pg_server.create_schema(pg_server.dbname)
    try:
        yield pg_server.url(pg_server.dbname, schema)
    finally:
        pg_server.drop_schema(pg_server.dbname, schema)
