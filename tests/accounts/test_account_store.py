"""The account store: one contract over every store (memory, SQLite, PostgreSQL),
each backend's own durability, and the login/register service on top.

Real parts only: a SQLite file under tmp_path, and a fresh schema on a real
PostgreSQL server (tests/history/postgres_fixture.py).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from chat.scram import Credentials, ScramClient, ScramError, ScramServer
from server.accounts import (
    Account,
    AccountStore,
    Memo,
    MemoryAccountStore,
    RegisteredChannel,
    open_accounts,
)
from server.accounts.model import ACCOUNT_MARKERS, Markers
from server.accounts.postgres_accounts import APPLICATION_NAME, PostgresAccountStore
from server.accounts.service import (
    RegisterResult,
    change_password,
    login,
    register,
    scram_credentials,
)
from server.accounts.sqlite_accounts import SQLiteAccountStore
from server.history.model import NewMessage
from server.history.sqlite_store import MIGRATIONS, PAGE_SIZE, SQLiteStore
from server.passwords import is_password_hash
from tests.history.postgres_fixture import (  # noqa: F401
    PostgresServer,
    pg_server_fixture,
    pg_url_fixture,
)

NOW_MS = 1_700_000_000_123  # past 2**31: a 32-bit column would not hold it
LOGGER = "chat.server.accounts"

Opener = Callable[[], AccountStore]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The --db setting: "" (memory), a SQLite file path, a PostgreSQL URL."""
    if request.param == "memory":
        return ""
    if request.param == "sqlite":
        return str(tmp_path / "chat.db")
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def opener(db: str) -> Iterator[Opener]:
    """Opens another store on the same database (another node); memory: the same one,
    since a second memory store would be a different, empty set of accounts."""
    opened: list[AccountStore] = []

    def open_() -> AccountStore:
        if not db and opened:
            return opened[0]
        s = open_accounts(db)
        expected = (
            MemoryAccountStore if not db
            else PostgresAccountStore if db.startswith("postgresql://")
            else SQLiteAccountStore
        )
        assert type(s) is expected
        opened.append(s)
        return s

    yield open_
    for s in opened:
        s.close()


@pytest.fixture
def store(opener: Opener) -> AccountStore:
    return opener()


def account(name: str, n: int = 0) -> Account:
    """An account with a distinguishable (not real) hash: the store does not care."""
    return Account(name=name, password_hash=f"scrypt$hash-{name}-{n}", created_ms=NOW_MS + n)


def mark(store: AccountStore, account: str, target: str, time_ms: int) -> None:
    """One marker, as a batch of one."""
    store.set_read_markers([(account, target, time_ms)])


def create(store: AccountStore, *folded: str) -> None:
    """Accounts the markers of a test belong to (a store keeps none for others)."""
    for name in folded:
        assert store.create(name, account(name))


def create_concurrently(stores: list[AccountStore], folded: str, count: int) -> list[bool]:
    """``count`` threads, released together, each creating ``folded`` with its own
    account (thread i uses ``stores[i % len(stores)]``)."""
    barrier = threading.Barrier(count)

    def create(i: int) -> bool:
        barrier.wait(timeout=30)
        return stores[i % len(stores)].create(folded, account("Race", i))

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(create, range(count)))


# ---------------------------------------------------------------- contract


def test_create_then_find_keeps_name_case_and_hash(store: AccountStore) -> None:
    alice = Account(name="Alice", password_hash="scrypt$16384$8$1$c2FsdA==$a2V5", created_ms=NOW_MS)
    unicode_ = Account(name="Ünïcødé", password_hash="scrypt$x", created_ms=NOW_MS + 1)
    assert store.create("alice", alice) is True
    assert store.create("ünïcødé", unicode_) is True
    assert store.find("alice") == alice
    assert store.find("ünïcødé") == unicode_


def test_a_secret_is_made_once_and_shared(opener: Opener) -> None:
    """The first ask makes it; every later ask, another store on the same database (a
    node) and a reopened one (a restart) get the same; another name, another secret."""
    first = opener()
    key = first.secret("cloak_key")
    assert len(bytes.fromhex(key)) == 32
    second = opener()
    assert second.secret("cloak_key") == key == first.secret("cloak_key")
    assert second.secret("other") not in ("", key)
    asked = [opener() for _ in range(3)]
    with ThreadPoolExecutor(max_workers=3) as pool:  # nodes starting at once
        assert set(pool.map(lambda st: st.secret("fresh"), asked)) == {asked[0].secret("fresh")}


def test_find_unknown_is_none(store: AccountStore) -> None:
    assert store.find("nobody") is None
    assert store.create("alice", account("Alice")) is True
    assert store.find("nobody") is None
    # The key is the folded name as given: the store does not fold on its own.
    assert store.find("Alice") is None
    assert store.find("alic") is None


def test_set_password_replaces_only_the_hash(store: AccountStore, opener: Opener) -> None:
    assert store.set_password("nobody", "scrypt$new") is False
    first = account("Alice", 1)
    assert store.create("alice", first)
    assert store.create("bob", account("Bob", 2))
    assert store.set_password("alice", "scrypt$new") is True
    assert opener().find("alice") == Account("Alice", "scrypt$new", first.created_ms)
    assert store.find("bob") == account("Bob", 2)


def test_scram_credentials_are_kept_and_replaced_with_the_password(
    store: AccountStore, opener: Opener
) -> None:
    # Opaque text to the stores (chat.scram.Credentials.to_text in the server).
    alice = Account("Alice", "scrypt$old", NOW_MS, scram="SCRAM-SHA-256$old")
    assert store.create("alice", alice)
    assert opener().find("alice") == alice
    assert store.set_password("alice", "scrypt$new", "SCRAM-SHA-256$new")
    assert opener().find("alice") == Account("Alice", "scrypt$new", NOW_MS, "SCRAM-SHA-256$new")
    # A new password without credentials never keeps the old password's.
    assert store.set_password("alice", "scrypt$newer")
    assert opener().find("alice") == Account("Alice", "scrypt$newer", NOW_MS, None)


def test_set_scram_only_while_the_hash_is_the_one_given(
    store: AccountStore, opener: Opener
) -> None:
    assert store.set_scram("nobody", "scrypt$x", "SCRAM-SHA-256$x") is False
    assert store.create("alice", account("Alice"))
    assert store.find("alice") == account("Alice")  # scram None: from before SCRAM
    # The password changed since the login that derived them: nothing stored.
    assert store.set_scram("alice", "scrypt$other", "SCRAM-SHA-256$stale") is False
    assert opener().find("alice") == account("Alice")
    assert store.set_scram("alice", account("Alice").password_hash, "SCRAM-SHA-256$x") is True
    found = opener().find("alice")
    assert found is not None and found.scram == "SCRAM-SHA-256$x"


def test_delete_removes_one_account(store: AccountStore, opener: Opener) -> None:
    assert store.delete("nobody") is False
    assert store.create("alice", account("Alice"))
    assert store.create("bob", account("Bob"))
    assert store.delete("alice") is True
    assert opener().find("alice") is None
    assert store.names() == ["bob"]
    assert store.delete("alice") is False
    assert store.create("alice", account("Alice", 2))  # the name is free again


def test_names_lists_every_folded_name(store: AccountStore, opener: Opener) -> None:
    assert store.names() == []
    for folded, name in (("alice", "Alice"), ("bob[]", "Bob{}"), ("ünï", "Ünï")):
        assert store.create(folded, account(name))
    assert sorted(store.names()) == ["alice", "bob[]", "ünï"]
    assert sorted(opener().names()) == ["alice", "bob[]", "ünï"]  # another store object


def test_create_twice_keeps_the_first(store: AccountStore) -> None:
    first = account("Alice", 1)
    assert store.create("alice", first) is True
    assert store.create("alice", account("ALICE", 2)) is False
    assert store.find("alice") == first


def test_concurrent_creates_of_one_name_exactly_one_wins(opener: Opener) -> None:
    # Two store objects on one database (two nodes; memory: one store) so the unique
    # key itself decides, not only a store's own lock.
    stores = [opener(), opener()]
    results = create_concurrently(stores, "race", 16)
    assert results.count(True) == 1
    winner = results.index(True)
    assert stores[0].find("race") == account("Race", winner)
    assert stores[1].find("race") == account("Race", winner)


def test_closed_store_raises(store: AccountStore) -> None:
    assert store.create("alice", account("Alice")) is True
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.find("alice")
    with pytest.raises(RuntimeError, match="closed"):
        store.create("bob", account("Bob"))
    with pytest.raises(RuntimeError, match="closed"):
        store.read_markers()
    with pytest.raises(RuntimeError, match="closed"):
        mark(store, "alice", "#chan", NOW_MS)
    with pytest.raises(RuntimeError, match="closed"):
        store.drop_read_markers("alice")
    store.close()  # a second close is harmless (the fixture closes it again too)


# ---------------------------------------------------------------- read markers


def test_read_marker_set_then_read(store: AccountStore, opener: Opener) -> None:
    assert store.read_markers() == []
    create(store, "alice")
    mark(store, "alice", "#chan", NOW_MS)
    assert store.read_markers() == [("alice", "#chan", NOW_MS)]
    assert opener().read_markers() == [("alice", "#chan", NOW_MS)]  # another node


def test_read_marker_only_moves_forward(store: AccountStore) -> None:
    create(store, "alice")
    mark(store, "alice", "#chan", NOW_MS + 10)
    mark(store, "alice", "#chan", NOW_MS + 5)  # older: ignored
    assert store.read_markers() == [("alice", "#chan", NOW_MS + 10)]
    mark(store, "alice", "#chan", NOW_MS + 10)  # the same: no change
    assert store.read_markers() == [("alice", "#chan", NOW_MS + 10)]
    mark(store, "alice", "#chan", NOW_MS + 20)  # newer: kept
    assert store.read_markers() == [("alice", "#chan", NOW_MS + 20)]


def test_read_markers_per_account_and_target(store: AccountStore) -> None:
    create(store, "alice", "bob[]", "ünï")
    mark(store, "alice", "#chan", NOW_MS + 1)
    mark(store, "alice", "bob[]", NOW_MS + 2)
    mark(store, "bob[]", "#chan", NOW_MS + 3)
    mark(store, "ünï", "#ünï", NOW_MS + 4)
    mark(store, "alice", "#Chan", NOW_MS + 5)  # keys are taken as given
    # Moving one marker leaves every other where it was.
    mark(store, "alice", "#chan", NOW_MS + 6)
    assert sorted(store.read_markers()) == [
        ("alice", "#Chan", NOW_MS + 5),
        ("alice", "#chan", NOW_MS + 6),
        ("alice", "bob[]", NOW_MS + 2),
        ("bob[]", "#chan", NOW_MS + 3),
        ("ünï", "#ünï", NOW_MS + 4),
    ]


def test_an_account_keeps_its_newest_markers_only(store: AccountStore, opener: Opener) -> None:
    # MARKREAD takes any valid name: ACCOUNT_MARKERS per account, the oldest going
    # first (of two as old, the smaller name), other accounts untouched.
    create(store, "alice", "bob")
    mark(store, "bob", "#chan", NOW_MS)
    mark(store, "alice", "#b", NOW_MS)
    mark(store, "alice", "#a", NOW_MS)
    for i in range(1, ACCOUNT_MARKERS):
        mark(store, "alice", f"#t{i}", NOW_MS + i)
    mark(store, "alice", "#t1", NOW_MS + 5000)  # moved: now the newest
    for markers in (store.read_markers(), opener().read_markers()):
        alice = {target: ms for account, target, ms in markers if account == "alice"}
        assert len(alice) == ACCOUNT_MARKERS
        assert "#a" not in alice and alice["#b"] == NOW_MS and alice["#t1"] == NOW_MS + 5000
        assert ("bob", "#chan", NOW_MS) in markers
    mark(store, "alice", "#a0", NOW_MS)  # as old as #b, and the smaller name
    alice = {t: ms for a, t, ms in opener().read_markers() if a == "alice"}
    assert "#b" in alice and "#a0" not in alice and len(alice) == ACCOUNT_MARKERS
    mark(store, "alice", "#c", NOW_MS)  # as old as #b, and the greater name: #b goes
    alice = {t: ms for a, t, ms in opener().read_markers() if a == "alice"}
    assert "#c" in alice and "#b" not in alice and len(alice) == ACCOUNT_MARKERS


def test_a_batch_of_markers_keeps_what_one_at_a_time_keeps(
    store: AccountStore, opener: Opener
) -> None:
    # The core writes a second's markers as one batch: the store must end where the
    # core's own Markers do, one at a time, past the cap and with moved markers.
    create(store, "alice", "bob")
    batch = [("alice", f"#t{i}", NOW_MS + i % 700) for i in range(ACCOUNT_MARKERS + 300)]
    batch += [("alice", "#t5", NOW_MS + 900), ("bob", "#t1", NOW_MS), ("alice", "#t6", NOW_MS)]
    store.set_read_markers(batch)
    expected = Markers()
    for _account, target, ms in (row for row in batch if row[0] == "alice"):
        expected.keep(target, ms)
    alice = {t: ms for a, t, ms in opener().read_markers() if a == "alice"}
    assert alice == dict(expected.items())
    assert ("bob", "#t1", NOW_MS) in store.read_markers()
    store.set_read_markers([])  # nothing to write: nothing happens


def test_no_markers_are_kept_for_an_account_that_does_not_exist(
    store: AccountStore, opener: Opener
) -> None:
    # Written behind, a marker can reach the store after its account was dropped: a
    # new account of the same name must not inherit it.
    create(store, "bob")
    store.set_read_markers([("alice", "#chan", NOW_MS), ("bob", "#chan", NOW_MS + 1)])
    assert store.read_markers() == [("bob", "#chan", NOW_MS + 1)]
    create(store, "alice")
    assert sorted(opener().read_markers()) == [("bob", "#chan", NOW_MS + 1)]


def test_delete_removes_the_accounts_markers_only(store: AccountStore, opener: Opener) -> None:
    assert store.create("alice", account("Alice"))
    assert store.create("bob", account("Bob"))
    mark(store, "alice", "#chan", NOW_MS)
    mark(store, "alice", "bob", NOW_MS + 1)
    mark(store, "bob", "#chan", NOW_MS + 2)
    mark(store, "bob", "alice", NOW_MS + 3)
    assert store.delete("alice") is True
    expected = [("bob", "#chan", NOW_MS + 2), ("bob", "alice", NOW_MS + 3)]
    assert sorted(store.read_markers()) == expected
    assert sorted(opener().read_markers()) == expected
    # A new account of the same name starts without the old one's markers.
    assert store.create("alice", account("Alice", 2))
    assert sorted(store.read_markers()) == expected


def test_drop_read_markers(store: AccountStore) -> None:
    create(store, "bob")
    assert store.create("alice", account("Alice"))
    mark(store, "alice", "#chan", NOW_MS)
    mark(store, "alice", "#other", NOW_MS + 1)
    mark(store, "bob", "#chan", NOW_MS + 2)
    store.drop_read_markers("nobody")  # no markers: nothing happens
    store.drop_read_markers("alice")
    assert store.read_markers() == [("bob", "#chan", NOW_MS + 2)]
    assert store.find("alice") == account("Alice")  # the account itself stays
    mark(store, "alice", "#chan", NOW_MS - 1)  # no old marker to stay behind
    assert sorted(store.read_markers()) == [
        ("alice", "#chan", NOW_MS - 1), ("bob", "#chan", NOW_MS + 2)
    ]


def test_concurrent_read_marker_sets_end_at_the_maximum(opener: Opener) -> None:
    # Two store objects (two nodes). Each thread writes its highest time first and
    # then lower ones, so a store where the last write wins ends below the maximum.
    stores = [opener(), opener()]
    create(stores[0], "alice")
    count, targets = 16, ["#a", "#b", "bob"]
    barrier = threading.Barrier(count)

    def set_markers(i: int) -> None:
        s = stores[i % len(stores)]
        barrier.wait(timeout=30)
        for time_ms in (NOW_MS + 1000 + i, NOW_MS + 500 + i, NOW_MS + i):
            for target in targets:
                mark(s, "alice", target, time_ms)

    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(set_markers, range(count)))
    expected = [("alice", t, NOW_MS + 1000 + count - 1) for t in targets]
    assert sorted(stores[0].read_markers()) == expected
    assert sorted(stores[1].read_markers()) == expected


@pytest.fixture(params=["sqlite", "postgres"])
def durable_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A --db setting that outlives its store: a SQLite file or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "chat.db")
    url: str = request.getfixturevalue("pg_url")
    return url


def test_read_markers_survive_close_and_reopen(durable_db: str) -> None:
    s = open_accounts(durable_db)
    try:
        create(s, "alice", "bob")
        mark(s, "alice", "#chan", NOW_MS + 7)
        mark(s, "bob", "alice", NOW_MS)
    finally:
        s.close()
    s = open_accounts(durable_db)
    try:
        assert sorted(s.read_markers()) == [
            ("alice", "#chan", NOW_MS + 7), ("bob", "alice", NOW_MS)
        ]
        mark(s, "alice", "#chan", NOW_MS + 6)  # still only moves forward
        assert ("alice", "#chan", NOW_MS + 7) in s.read_markers()
    finally:
        s.close()


def test_scram_credentials_survive_close_and_reopen(durable_db: str) -> None:
    s = open_accounts(durable_db)
    try:
        assert register(s, "alice", "Alice", "s3cret pass", NOW_MS) is RegisterResult.OK
    finally:
        s.close()
    s = open_accounts(durable_db)
    try:
        found = scram_credentials(s, "alice")
        assert found is not None and scram_logs_in(found[1], "s3cret pass")
    finally:
        s.close()


# ---------------------------------------------------------------- registered channels

# Not re-serialised by any store: odd spacing, key order, escapes and non-ASCII stay.
STATE = '{"topic": "Ünïcødé ☕ 🎉\\n", "modes":"+nt",  "bans": ["*!*@x"], "esc": "\\u00e9"}'


def channel(
    name: str, founder: str, n: int = 0, ops: tuple[str, ...] = (), state: str = "{}"
) -> RegisteredChannel:
    return RegisteredChannel(
        name=name, founder=founder, created_ms=NOW_MS + n, ops=ops, state=state
    )


def test_register_channel_then_channels(store: AccountStore, opener: Opener) -> None:
    assert store.channels() == []
    plain = channel("#Chan", "alice", 1)
    full = channel("#Ünï", "bob[]", 2, ops=("alice", "carol[]", "ünï"), state=STATE)
    one_op = channel("#one", "alice", 3, ops=("bob[]",), state="")
    assert store.register_channel("#chan", plain) is True
    assert store.register_channel("#ünï", full) is True
    assert store.register_channel("#one", one_op) is True
    expected = [("#chan", plain), ("#one", one_op), ("#ünï", full)]
    assert sorted(store.channels()) == expected
    assert sorted(opener().channels()) == expected  # another store object (node)
    # The key is the folded name as given: no folding by the store.
    assert store.register_channel("#Chan", plain) is True


def test_register_channel_twice_keeps_the_first(store: AccountStore, opener: Opener) -> None:
    first = channel("#chan", "alice", 1, ops=("bob",), state='{"topic": "first"}')
    assert store.register_channel("#chan", first) is True
    assert store.register_channel("#chan", channel("#CHAN", "bob", 2)) is False
    assert opener().register_channel("#chan", channel("#Chan", "carol", 3)) is False
    assert store.channels() == [("#chan", first)]


def test_concurrent_channel_registrations_exactly_one_wins(opener: Opener) -> None:
    stores = [opener(), opener()]  # two nodes; memory: one store
    count = 16
    barrier = threading.Barrier(count)

    def attempt(i: int) -> RegisteredChannel:
        return channel("#Race", f"user{i}", i, state=f'{{"n": {i}}}')

    def register_(i: int) -> bool:
        barrier.wait(timeout=30)
        return stores[i % len(stores)].register_channel("#race", attempt(i))

    with ThreadPoolExecutor(max_workers=count) as pool:
        results = list(pool.map(register_, range(count)))
    assert results.count(True) == 1
    winner = attempt(results.index(True))
    assert stores[0].channels() == [("#race", winner)]
    assert stores[1].channels() == [("#race", winner)]


def test_save_channel_replaces_founder_ops_and_state(store: AccountStore, opener: Opener) -> None:
    first = channel("#Chan", "alice", 1, ops=("bob", "carol"), state='{"topic": "old"}')
    other = channel("#other", "alice", 2, ops=("bob",), state='{"topic": "other"}')
    assert store.register_channel("#chan", first)
    assert store.register_channel("#other", other)
    # name and created_ms in the saved object are ignored: they stay as registered.
    saved = channel("#CHAN", "dave", 99, ops=("erin", "ünï"), state=STATE)
    assert store.save_channel("#chan", saved) is True
    expected = [
        ("#chan", channel("#Chan", "dave", 1, ops=("erin", "ünï"), state=STATE)),
        ("#other", other),
    ]
    assert sorted(store.channels()) == expected
    assert sorted(opener().channels()) == expected
    # Back to no ops: the empty tuple round-trips.
    assert store.save_channel("#chan", channel("#Chan", "dave", 1, state="{}")) is True
    assert sorted(store.channels())[0] == ("#chan", channel("#Chan", "dave", 1))


def test_save_unknown_channel_inserts_nothing(store: AccountStore) -> None:
    assert store.save_channel("#nowhere", channel("#nowhere", "alice")) is False
    assert store.channels() == []
    assert store.register_channel("#chan", channel("#chan", "alice"))
    assert store.save_channel("#Chan", channel("#Chan", "bob")) is False  # key as given
    assert store.channels() == [("#chan", channel("#chan", "alice"))]


def test_drop_channel(store: AccountStore, opener: Opener) -> None:
    assert store.drop_channel("#chan") is False
    assert store.register_channel("#chan", channel("#chan", "alice", 1))
    assert store.register_channel("#other", channel("#other", "alice", 2))
    assert store.drop_channel("#chan") is True
    assert store.drop_channel("#chan") is False
    assert store.channels() == [("#other", channel("#other", "alice", 2))]
    assert opener().channels() == [("#other", channel("#other", "alice", 2))]
    assert store.save_channel("#chan", channel("#chan", "bob")) is False
    assert store.register_channel("#chan", channel("#chan", "bob", 3)) is True  # free again
    assert ("#chan", channel("#chan", "bob", 3)) in store.channels()


def test_delete_removes_the_channels_the_account_founded(
    store: AccountStore, opener: Opener
) -> None:
    assert store.create("alice", account("Alice"))
    assert store.create("bob", account("Bob"))
    assert store.register_channel("#a1", channel("#A1", "alice", 1, ops=("bob",)))
    assert store.register_channel("#a2", channel("#a2", "alice", 2))
    bobs = channel("#b", "bob", 3, ops=("carol",), state='{"topic": "kept"}')
    assert store.register_channel("#b", bobs)
    mark(store, "alice", "#a1", NOW_MS)
    assert store.delete("alice") is True
    assert store.channels() == [("#b", bobs)]
    assert opener().channels() == [("#b", bobs)]
    assert store.read_markers() == []
    assert store.find("bob") == account("Bob")
    assert store.register_channel("#a1", channel("#a1", "bob", 4)) is True  # free again


def test_closed_store_raises_on_channel_methods(store: AccountStore) -> None:
    assert store.register_channel("#chan", channel("#chan", "alice"))
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.channels()
    with pytest.raises(RuntimeError, match="closed"):
        store.register_channel("#other", channel("#other", "alice"))
    with pytest.raises(RuntimeError, match="closed"):
        store.save_channel("#chan", channel("#chan", "bob"))
    with pytest.raises(RuntimeError, match="closed"):
        store.drop_channel("#chan")
    with pytest.raises(RuntimeError, match="closed"):
        store.delete("alice")


def test_channels_survive_close_and_reopen(durable_db: str) -> None:
    registered = channel("#Chan", "alice", 1, ops=("bob", "ünï"), state=STATE)
    s = open_accounts(durable_db)
    try:
        assert s.register_channel("#chan", registered)
        assert s.register_channel("#gone", channel("#gone", "alice", 2))
        assert s.drop_channel("#gone")
    finally:
        s.close()
    s = open_accounts(durable_db)
    try:
        assert s.channels() == [("#chan", registered)]
        assert s.register_channel("#chan", channel("#chan", "bob")) is False
    finally:
        s.close()


# ---------------------------------------------------------------- memos

# Non-ASCII, quotes, a backslash, SQL and format placeholders: all kept as sent.
MEMO_TEXT = "Ünïcødé ☕ 🎉 it's \"quoted\" \\ %s ? $1 '; DROP TABLE memos; --"


def test_send_memo_then_memos(store: AccountStore, opener: Opener) -> None:
    assert store.memos("alice") == []
    first = store.send_memo("alice", "Bob", NOW_MS, "hello", 10)
    second = store.send_memo("alice", "Ünï", NOW_MS + 1, MEMO_TEXT, 10)
    to_bob = store.send_memo("bob", "Alice", NOW_MS + 2, "for bob", 10)
    third = store.send_memo("alice", "Bob", NOW_MS - 5, "", 10)  # an earlier clock
    assert first is not None and second is not None and third is not None
    assert to_bob is not None
    assert first < second < to_bob < third  # in the order sent, whatever sent_ms says
    expected = [
        Memo(first, "Bob", NOW_MS, "hello", False),
        Memo(second, "Ünï", NOW_MS + 1, MEMO_TEXT, False),
        Memo(third, "Bob", NOW_MS - 5, "", False),
    ]
    assert store.memos("alice") == expected
    assert opener().memos("alice") == expected  # another store object (node)
    assert store.memos("bob") == [Memo(to_bob, "Alice", NOW_MS + 2, "for bob")]
    # The key is the recipient as given: no folding by the store.
    assert store.memos("Alice") == []
    assert store.memos("nobody") == []


def test_send_memo_limit_counts_read_and_unread(store: AccountStore) -> None:
    assert store.send_memo("alice", "Bob", NOW_MS, "one", 0) is None  # no room at all
    one = store.send_memo("alice", "Bob", NOW_MS, "one", 2)
    two = store.send_memo("alice", "Bob", NOW_MS + 1, "two", 2)
    assert one is not None and two is not None
    assert store.mark_memo_read("alice", one)
    assert store.send_memo("alice", "Carol", NOW_MS + 2, "three", 2) is None
    assert [m.memo_id for m in store.memos("alice")] == [one, two]
    assert store.unread_memos() == [("alice", 1)]
    assert store.send_memo("bob", "Carol", NOW_MS, "for bob", 2) is not None  # its own count
    assert store.delete_memos("alice", [one]) == 1
    three = store.send_memo("alice", "Carol", NOW_MS + 3, "three", 2)
    assert three is not None
    assert [m.memo_id for m in store.memos("alice")] == [two, three]
    assert store.send_memo("alice", "Carol", NOW_MS + 4, "four", 2) is None
    # The limit is the caller's, per call (a setting changed): a higher one leaves room.
    assert store.send_memo("alice", "Carol", NOW_MS + 4, "four", 3) is not None


def test_concurrent_send_memo_never_exceeds_the_limit(opener: Opener) -> None:
    # Four store objects on one database (four nodes; memory: one store), so the
    # database's own locking decides, not only a store's lock.
    stores = [opener() for _ in range(4)]
    count, limit = 24, 5
    barrier = threading.Barrier(count)

    def send(i: int) -> int | None:
        s = stores[i % len(stores)]
        barrier.wait(timeout=30)
        return s.send_memo("alice", f"user{i}", NOW_MS + i, f"memo {i}", limit)

    with ThreadPoolExecutor(max_workers=count) as pool:
        results = list(pool.map(send, range(count)))
    sent = sorted(r for r in results if r is not None)
    assert len(sent) == limit
    assert len(set(sent)) == limit
    for s in stores:
        kept = s.memos("alice")
        assert [m.memo_id for m in kept] == sent
        assert all(m.text == f"memo {results.index(m.memo_id)}" for m in kept)


def test_mark_memo_read(store: AccountStore, opener: Opener) -> None:
    one = store.send_memo("alice", "Bob", NOW_MS, "one", 10)
    two = store.send_memo("alice", "Bob", NOW_MS + 1, "two", 10)
    bobs = store.send_memo("bob", "Alice", NOW_MS + 2, "for bob", 10)
    assert one is not None and two is not None and bobs is not None
    assert store.mark_memo_read("alice", two) is True
    expected = [Memo(one, "Bob", NOW_MS, "one"), Memo(two, "Bob", NOW_MS + 1, "two", True)]
    assert store.memos("alice") == expected
    assert opener().memos("alice") == expected
    assert store.mark_memo_read("alice", two) is True  # already read: still its memo
    assert store.memos("alice") == expected
    # Not alice's: an unknown id, bob's memo (which stays unread), ids no store has.
    for memo_id in (bobs + 1000, bobs, 0, -1, 2**70):
        assert store.mark_memo_read("alice", memo_id) is False
    assert store.mark_memo_read("nobody", one) is False
    assert store.memos("bob") == [Memo(bobs, "Alice", NOW_MS + 2, "for bob", False)]
    assert store.memos("alice") == expected


def test_delete_memos_deletes_only_the_recipients_own(
    store: AccountStore, opener: Opener
) -> None:
    ids = [store.send_memo("alice", "Bob", NOW_MS + n, f"m{n}", 10) for n in range(4)]
    bobs = store.send_memo("bob", "Alice", NOW_MS, "for bob", 10)
    assert None not in ids and bobs is not None
    a0, a1, a2, a3 = (i for i in ids if i is not None)
    assert store.delete_memos("alice", []) == 0
    assert store.delete_memos("nobody", [a0, a1]) == 0
    # bob's id, an unknown one, ids no store has, and a duplicate: only two deleted.
    assert store.delete_memos("alice", [a1, bobs, a3, a3, bobs + 1000, 0, -5, 2**70]) == 2
    assert [m.memo_id for m in store.memos("alice")] == [a0, a2]
    assert [m.memo_id for m in opener().memos("alice")] == [a0, a2]
    assert store.memos("bob") == [Memo(bobs, "Alice", NOW_MS, "for bob")]
    assert store.delete_memos("alice", [a1, a3]) == 0  # gone already
    assert store.delete_memos("alice", [a2, a0]) == 2
    assert store.memos("alice") == []
    assert store.unread_memos() == [("bob", 1)]


def test_unread_memos_counts_per_recipient(store: AccountStore, opener: Opener) -> None:
    assert store.unread_memos() == []
    sent = {
        who: [store.send_memo(who, "Zed", NOW_MS + n, f"m{n}", 10) for n in range(count)]
        for who, count in (("alice", 3), ("bob[]", 2), ("ünï", 1))
    }
    assert sorted(store.unread_memos()) == [("alice", 3), ("bob[]", 2), ("ünï", 1)]
    for who, memo_id in [("alice", i) for i in sent["alice"][:2]] + [("ünï", sent["ünï"][0])]:
        assert memo_id is not None
        assert store.mark_memo_read(who, memo_id)
    # ünï has only read memos left: not listed, though the memo is still kept.
    expected = [("alice", 1), ("bob[]", 2)]
    assert sorted(store.unread_memos()) == expected
    assert sorted(opener().unread_memos()) == expected
    assert len(store.memos("ünï")) == 1
    assert store.delete_memos("bob[]", [i for i in sent["bob[]"] if i is not None]) == 2
    assert store.unread_memos() == [("alice", 1)]


def test_memo_ids_are_not_reused_after_deletion(store: AccountStore) -> None:
    first = store.send_memo("alice", "Bob", NOW_MS, "one", 10)
    last = store.send_memo("bob", "Alice", NOW_MS, "two", 10)
    assert first is not None and last is not None
    # Delete the highest id, then every memo: the next id is still higher.
    assert store.delete_memos("bob", [last]) == 1
    again = store.send_memo("bob", "Alice", NOW_MS, "three", 10)
    assert again is not None and again > last
    assert store.delete_memos("alice", [first]) == 1
    assert store.delete_memos("bob", [again]) == 1
    after = store.send_memo("alice", "Bob", NOW_MS, "four", 10)
    assert after is not None and after > again
    assert store.memos("alice") == [Memo(after, "Bob", NOW_MS, "four")]


def test_delete_removes_the_accounts_memos(store: AccountStore, opener: Opener) -> None:
    assert store.create("alice", account("Alice"))
    assert store.create("bob", account("Bob"))
    for n in range(3):
        assert store.send_memo("alice", "Bob", NOW_MS + n, f"to alice {n}", 10) is not None
    to_bob = store.send_memo("bob", "Alice", NOW_MS, "from alice", 10)
    assert to_bob is not None
    assert store.delete("alice") is True
    assert store.memos("alice") == []
    assert opener().memos("alice") == []
    # Memos alice sent stay with their recipient.
    assert store.memos("bob") == [Memo(to_bob, "Alice", NOW_MS, "from alice")]
    assert store.unread_memos() == [("bob", 1)]
    # A new account of the same name starts without the old one's memos, with room.
    assert store.create("alice", account("Alice", 2))
    assert store.memos("alice") == []
    assert store.send_memo("alice", "Bob", NOW_MS, "new", 1) is not None


def test_closed_store_raises_on_memo_methods(store: AccountStore) -> None:
    memo_id = store.send_memo("alice", "Bob", NOW_MS, "hello", 10)
    assert memo_id is not None
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.send_memo("alice", "Bob", NOW_MS, "again", 10)
    with pytest.raises(RuntimeError, match="closed"):
        store.memos("alice")
    with pytest.raises(RuntimeError, match="closed"):
        store.mark_memo_read("alice", memo_id)
    with pytest.raises(RuntimeError, match="closed"):
        store.delete_memos("alice", [memo_id])
    with pytest.raises(RuntimeError, match="closed"):
        store.delete_memos("alice", [])
    with pytest.raises(RuntimeError, match="closed"):
        store.unread_memos()


def test_memos_survive_close_and_reopen(durable_db: str) -> None:
    s = open_accounts(durable_db)
    try:
        kept = s.send_memo("alice", "Bob", NOW_MS, MEMO_TEXT, 10)
        read = s.send_memo("alice", "Carol", NOW_MS + 1, "read", 10)
        gone = s.send_memo("bob", "Alice", NOW_MS + 2, "gone", 10)
        assert kept is not None and read is not None and gone is not None
        assert s.mark_memo_read("alice", read)
        assert s.delete_memos("bob", [gone]) == 1
    finally:
        s.close()
    s = open_accounts(durable_db)
    try:
        assert s.memos("alice") == [
            Memo(kept, "Bob", NOW_MS, MEMO_TEXT, False),
            Memo(read, "Carol", NOW_MS + 1, "read", True),
        ]
        assert s.memos("bob") == []
        assert s.unread_memos() == [("alice", 1)]
        assert s.send_memo("alice", "Dave", NOW_MS, "third", 2) is None  # still counted
        later = s.send_memo("bob", "Alice", NOW_MS + 3, "later", 10)
        assert later is not None and later > gone  # the deleted id stays used
    finally:
        s.close()


# ---------------------------------------------------------------- SQLite


def test_sqlite_survives_close_and_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "chat.db")
    s = SQLiteAccountStore(path)
    assert s.create("alice", account("Alice")) is True
    s.close()
    s = SQLiteAccountStore(path)
    try:
        assert s.find("alice") == account("Alice")
        assert s.create("alice", account("Alice", 2)) is False
    finally:
        s.close()


# The accounts table as the first account stores made it (no scram column), holding
# account("Alice"); the same DDL for SQLite and PostgreSQL.
OLD_ACCOUNTS = (
    "CREATE TABLE accounts (folded TEXT PRIMARY KEY, name TEXT NOT NULL, "
    "password_hash TEXT NOT NULL, created_ms BIGINT NOT NULL)"
)
OLD_ALICE = "INSERT INTO accounts VALUES ('alice', 'Alice', 'scrypt$hash-Alice-0', 1700000000123)"


def old_sqlite_file(tmp_path: Path) -> str:
    """A file written before registered_channels, memos and SCRAM existed."""
    path = str(tmp_path / "chat.db")
    old = sqlite3.connect(path)
    try:
        old.execute(OLD_ACCOUNTS)
        old.execute(OLD_ALICE)
        old.commit()
    finally:
        old.close()
    return path


def test_sqlite_file_from_before_channels_gains_the_tables(tmp_path: Path) -> None:
    # Opening adds the tables and keeps the accounts.
    path = old_sqlite_file(tmp_path)
    s = SQLiteAccountStore(path)
    try:
        assert s.find("alice") == account("Alice")
        assert s.channels() == []
        assert s.register_channel("#chan", channel("#chan", "alice")) is True
        assert s.channels() == [("#chan", channel("#chan", "alice"))]
        assert s.memos("alice") == []
        memo_id = s.send_memo("alice", "Bob", NOW_MS, "hello", 10)
        assert memo_id is not None
        assert s.memos("alice") == [Memo(memo_id, "Bob", NOW_MS, "hello")]
    finally:
        s.close()


def assert_gains_the_scram_column(opened: Callable[[], AccountStore]) -> None:
    """An old database opened (twice: the column is added once): the accounts are
    kept, without credentials, and take them."""
    s, again = opened(), opened()
    try:
        assert s.find("alice") == account("Alice")
        assert s.set_scram("alice", "scrypt$hash-Alice-0", "SCRAM-SHA-256$x")
        found = again.find("alice")
        assert found is not None and found.scram == "SCRAM-SHA-256$x"
        assert s.create("bob", Account("Bob", "scrypt$b", NOW_MS, "SCRAM-SHA-256$b"))
        assert again.find("bob") == Account("Bob", "scrypt$b", NOW_MS, "SCRAM-SHA-256$b")
    finally:
        s.close()
        again.close()


def test_sqlite_file_from_before_scram_gains_the_column(tmp_path: Path) -> None:
    path = old_sqlite_file(tmp_path)
    assert_gains_the_scram_column(lambda: SQLiteAccountStore(path))


def test_postgres_database_from_before_scram_gains_the_column(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(OLD_ACCOUNTS)
        admin.execute(OLD_ALICE)
    assert_gains_the_scram_column(lambda: PostgresAccountStore(pg_url))


def test_sqlite_bad_path_fails_at_open(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        SQLiteAccountStore(str(tmp_path / "no-such-dir" / "chat.db"))
    not_db = tmp_path / "not.db"
    not_db.write_bytes(b"this is not a database file" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        SQLiteAccountStore(str(not_db))


def test_sqlite_shares_the_file_with_a_busy_history_store(tmp_path: Path) -> None:
    path = str(tmp_path / "chat.db")
    # The account store opens (creates) the file first: it must leave it as the
    # history store would have made it (WAL, its page size).
    accounts = SQLiteAccountStore(path)
    history = SQLiteStore(path)
    ticks, per_tick, names = 300, 5, 60
    errors: list[BaseException] = []

    def append_history() -> None:
        try:
            for t in range(ticks):
                history.append([
                    NewMessage(
                        target="#chan", msgid=f"m{t}-{i}", time_ms=NOW_MS + t,
                        source="nick!user@host", command="PRIVMSG", channel="#chan",
                        text=f"tick {t} message {i}",
                    )
                    for i in range(per_tick)
                ])
        except BaseException as e:  # reported by the assertion below
            errors.append(e)

    writer = threading.Thread(target=append_history)
    try:
        writer.start()
        with ThreadPoolExecutor(max_workers=4) as pool:
            created = list(
                pool.map(lambda i: accounts.create(f"user{i}", account(f"User{i}", i)),
                         range(names))
            )
        writer.join(60)
        assert not writer.is_alive()
        assert errors == []
        assert created == [True] * names
        assert all(accounts.find(f"user{i}") == account(f"User{i}", i) for i in range(names))
        rows = history.window("#chan", ticks * per_tick + 10)
        assert len(rows) == ticks * per_tick
        assert [r.seq for r in rows] == list(range(1, ticks * per_tick + 1))
        assert history.schema_version() == len(MIGRATIONS)
    finally:
        history.close()
        accounts.close()
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert check.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
        assert check.execute("SELECT COUNT(*) FROM accounts").fetchone()[0] == names
        assert check.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == ticks * per_tick
    finally:
        check.close()


# ---------------------------------------------------------------- PostgreSQL


def test_postgres_survives_a_new_store_object(pg_url: str) -> None:
    s = PostgresAccountStore(pg_url)
    assert s.create("alice", account("Alice")) is True
    s.close()
    # The other spelling of the scheme opens the same kind of store.
    s2 = open_accounts(pg_url.replace("postgresql://", "postgres://", 1))
    try:
        assert isinstance(s2, PostgresAccountStore)
        assert s2.find("alice") == account("Alice")
        assert s2.create("alice", account("Alice", 2)) is False
    finally:
        s2.close()


def test_postgres_nodes_starting_together_all_open(pg_url: str) -> None:
    # Concurrent CREATE TABLE IF NOT EXISTS of one table can fail in PostgreSQL;
    # the stores serialise it, so every node starts.
    count = 6
    barrier = threading.Barrier(count)

    def open_() -> PostgresAccountStore:
        barrier.wait(timeout=30)
        return PostgresAccountStore(pg_url)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(open_) for _ in range(count)]
        stores = [f.result(timeout=60) for f in futures]
    try:
        assert stores[0].create("alice", account("Alice")) is True
        assert all(s.find("alice") == account("Alice") for s in stores)
    finally:
        for s in stores:
            s.close()


def terminate_account_connections(pg_server: PostgresServer) -> int:
    """Kill the account stores' server connections, as a PostgreSQL restart would;
    returns how many, once they are gone."""
    query = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
    with pg_server.admin() as admin:
        pids = [r[0] for r in admin.execute(query, (APPLICATION_NAME,)).fetchall()]
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while admin.execute(query, (APPLICATION_NAME,)).fetchall():
            assert time.monotonic() < deadline, "connections not terminated"
            time.sleep(0.01)
    return len(pids)


def test_postgres_reconnects_after_losing_its_connection(
    pg_url: str, pg_server: PostgresServer
) -> None:
    s = PostgresAccountStore(pg_url)
    try:
        assert s.create("alice", account("Alice")) is True
        assert terminate_account_connections(pg_server) == 1
        assert s.find("alice") == account("Alice")  # the first call after the loss
        assert terminate_account_connections(pg_server) == 1
        assert s.create("bob", account("Bob")) is True
        assert s.find("bob") == account("Bob")
    finally:
        s.close()


def test_postgres_send_memo_after_losing_its_connection(
    pg_url: str, pg_server: PostgresServer
) -> None:
    # The connection died while idle: the send fails before anything reaches the
    # database, so the store retries it, and it is stored once.
    s = PostgresAccountStore(pg_url)
    try:
        first = s.send_memo("alice", "Bob", NOW_MS, "one", 10)
        assert terminate_account_connections(pg_server) == 1
        second = s.send_memo("alice", "Bob", NOW_MS + 1, "two", 10)
        assert first is not None and second is not None and second > first
        assert s.memos("alice") == [
            Memo(first, "Bob", NOW_MS, "one"), Memo(second, "Bob", NOW_MS + 1, "two")
        ]
        assert terminate_account_connections(pg_server) == 1
        assert s.delete_memos("alice", [first, second]) == 2
        assert s.memos("alice") == []
    finally:
        s.close()


def test_postgres_send_memo_lost_at_commit_is_not_sent_again(pg_url: str) -> None:
    """A connection lost during COMMIT leaves unknown whether the memo was stored:
    the store raises rather than send it again (and maybe deliver it twice)."""
    s = PostgresAccountStore(pg_url)
    try:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            # A deferred trigger runs inside COMMIT: the first time, it ends its own
            # connection there (so this memo is not stored).
            admin.execute("CREATE SEQUENCE memo_commits")
            admin.execute(
                "CREATE FUNCTION die_at_first_commit() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN IF nextval('memo_commits') = 1 THEN "
                "PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); "
                "END IF; RETURN NULL; END $$"
            )
            admin.execute(
                "CREATE CONSTRAINT TRIGGER die_at_first_commit AFTER INSERT ON memos "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                "EXECUTE FUNCTION die_at_first_commit()"
            )
        with pytest.raises(psycopg.OperationalError):
            s.send_memo("alice", "Bob", NOW_MS, "lost", 10)
        assert s.memos("alice") == []  # on a new connection
        memo_id = s.send_memo("alice", "Bob", NOW_MS + 1, "sent", 10)
        assert memo_id is not None
        assert s.memos("alice") == [Memo(memo_id, "Bob", NOW_MS + 1, "sent")]
    finally:
        s.close()


# ---------------------------------------------------------------- service


def test_register_then_login(store: AccountStore) -> None:
    assert register(store, "alice", "Alice", "s3cret pass", NOW_MS) is RegisterResult.OK
    got = login(store, "alice", "s3cret pass")
    assert got is not None
    assert got.name == "Alice"
    assert got.created_ms == NOW_MS
    assert is_password_hash(got.password_hash)
    assert "s3cret" not in got.password_hash
    assert login(store, "alice", "wrong pass") is None
    assert login(store, "nobody", "s3cret pass") is None
    # Taken: the second registration changes nothing, the first password still works.
    assert register(store, "alice", "ALICE", "other pass", NOW_MS + 5) is RegisterResult.EXISTS
    assert login(store, "alice", "other pass") is None
    again = login(store, "alice", "s3cret pass")
    assert again == got


def scram_logs_in(stored: str, password: str) -> bool:
    """Whether a SCRAM-SHA-256 exchange with ``password`` passes these stored credentials."""
    credentials = Credentials.from_text(stored)
    assert credentials is not None
    client = ScramClient("alice", password)
    server = ScramServer(client.first())
    try:
        client.verify(server.final(client.final(server.first(credentials))))
    except ScramError:
        return False
    return True


def test_the_password_gives_scram_credentials_wherever_it_is_seen(store: AccountStore) -> None:
    assert scram_credentials(store, "alice") is None
    assert register(store, "alice", "Alice", "first pass", NOW_MS) is RegisterResult.OK
    found = scram_credentials(store, "alice")
    assert found is not None and found[0] == "Alice"
    assert scram_logs_in(found[1], "first pass") and not scram_logs_in(found[1], "other pass")
    assert "first pass" not in found[1]
    assert change_password(store, "alice", "second pass")
    found = scram_credentials(store, "alice")
    assert found is not None and scram_logs_in(found[1], "second pass")
    assert not scram_logs_in(found[1], "first pass")


def test_a_plain_login_gives_an_account_from_before_scram_its_credentials(
    store: AccountStore,
) -> None:
    assert register(store, "alice", "Alice", "the pass", NOW_MS) is RegisterResult.OK
    old = store.find("alice")
    assert old is not None
    assert store.set_password("alice", old.password_hash)  # as before SCRAM: none
    assert scram_credentials(store, "alice") is None
    assert login(store, "alice", "wrong pass") is None
    assert scram_credentials(store, "alice") is None  # a failed login derives nothing
    assert login(store, "alice", "the pass") is not None
    found = scram_credentials(store, "alice")
    assert found is not None and scram_logs_in(found[1], "the pass")


def test_unknown_account_costs_a_password_check() -> None:
    store = MemoryAccountStore()
    assert register(store, "alice", "Alice", "pw", NOW_MS) is RegisterResult.OK

    def fastest(fn: Callable[[], object]) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            assert fn() is None
            best = min(best, time.perf_counter() - start)
        return best

    wrong = fastest(lambda: login(store, "alice", "wrong"))
    unknown = fastest(lambda: login(store, "nobody", "wrong"))
    # Without the dummy check an unknown name answers ~1000 times faster.
    assert unknown > wrong / 4, (unknown, wrong)


def assert_logged_failure(caplog: pytest.LogCaptureFixture, *passwords: str) -> None:
    """The failure was logged as an error with its traceback, and no password with it."""
    records = [r for r in caplog.records if r.name == LOGGER]
    assert records, "the store failure was not logged"
    assert all(r.levelno == logging.ERROR and r.exc_info is not None for r in records)
    for password in passwords:
        assert password not in caplog.text


def test_closed_store_refuses_without_raising(
    store: AccountStore, caplog: pytest.LogCaptureFixture
) -> None:
    assert register(store, "alice", "Alice", "pw one", NOW_MS) is RegisterResult.OK
    store.close()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert register(store, "bob", "Bob", "pw two", NOW_MS) is RegisterResult.UNAVAILABLE
        assert login(store, "alice", "pw one") is None
    assert_logged_failure(caplog, "pw one", "pw two")
    assert len([r for r in caplog.records if r.name == LOGGER]) == 2


def test_sqlite_locked_database_refuses_then_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(tmp_path / "chat.db")
    store = SQLiteAccountStore(path, busy_timeout_ms=50)
    assert register(store, "alice", "Alice", "pw one", NOW_MS) is RegisterResult.OK
    # Another process holding the file's lock for longer than the busy timeout.
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with caplog.at_level(logging.ERROR, logger=LOGGER):
            assert register(store, "bob", "Bob", "pw two", NOW_MS) is RegisterResult.UNAVAILABLE
        assert_logged_failure(caplog, "pw two")
        assert "locked" in caplog.text
        other.execute("ROLLBACK")
        # Once the lock is gone, the store works again: the failure left nothing behind.
        assert register(store, "bob", "Bob", "pw two", NOW_MS) is RegisterResult.OK
        assert login(store, "bob", "pw two") is not None
        assert login(store, "alice", "pw one") is not None
    finally:
        other.close()
        store.close()


def test_postgres_missing_table_refuses_without_raising(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = PostgresAccountStore(pg_url)
    try:
        assert register(store, "alice", "Alice", "pw one", NOW_MS) is RegisterResult.OK
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("DROP TABLE accounts")
        with caplog.at_level(logging.ERROR, logger=LOGGER):
            assert register(store, "bob", "Bob", "pw two", NOW_MS) is RegisterResult.UNAVAILABLE
            assert login(store, "alice", "pw one") is None
        assert_logged_failure(caplog, "pw one", "pw two")
        assert "accounts" in caplog.text
    finally:
        store.close()


def test_postgres_statements_time_out(pg_url: str) -> None:
    """A statement that cannot finish (here: a row locked by another transaction) fails
    after the store's statement timeout instead of holding the worker thread."""
    store = PostgresAccountStore(pg_url, statement_timeout_ms=300)
    try:
        assert store.create("alice", account("Alice"))
        with psycopg.connect(pg_url) as locker:
            locker.execute("SELECT 1 FROM accounts WHERE folded = 'alice' FOR UPDATE")
            with pytest.raises(psycopg.errors.QueryCanceled):
                store.set_password("alice", "scrypt$new")
            locker.rollback()
        assert store.set_password("alice", "scrypt$new")  # the lock is gone: it works
    finally:
        store.close()
