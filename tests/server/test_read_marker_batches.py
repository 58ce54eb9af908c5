"""Read markers are written behind in batches, at most about one a second (the sans-IO
core, whose timer the test drives: over TCP, which MARKREADs share a second is not
repeatable).

A MARKREAD flood from many accounts wrote one account-store transaction each, holding
the database file's write lock that the loop's history commit waits for."""

from __future__ import annotations

from chat.servertime import parse_time
from server.config import ServerConfig
from server.core import ServerCore
from server.core.handlers.accounts import Login, account_dropped
from server.core.handlers.readmarker import SaveReadMarkers
from server.core.state import Client

NOW = 1_800_000_000.0
# Before NOW: a marker is never ahead of the server's clock.
T1, T2, T3 = "2027-01-15T07:59:57.000Z", "2027-01-15T07:59:58.000Z", "2027-01-15T07:59:59.000Z"


def logged_in(core: ServerCore, conn: int, nick: str, account: str) -> Client:
    core.connect(conn, "127.0.0.1", 5000 + conn)
    core.data_received(conn, f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
    core.account_names.add(account)
    core.data_received(conn, f"NS IDENTIFY {account} secret-password\r\n".encode())
    (login,) = [e for e in core.take_effects() if isinstance(e, Login)]
    core.answered(login.check_id, account)
    client = core.clients[conn]
    assert client.account == account
    return client


def saved(effects: list[object]) -> list[SaveReadMarkers]:
    return [e for e in effects if isinstance(e, SaveReadMarkers)]


def make_core() -> ServerCore:
    return ServerCore(ServerConfig(name="test.server", db="unused.db"), clock=lambda: NOW)


def test_markers_moved_within_a_second_are_written_as_one_batch() -> None:
    core = make_core()
    logged_in(core, 1, "ann", "ann")
    logged_in(core, 2, "bob", "bob")
    ms = {t: round(parse_time(t) * 1000) for t in (T1, T2, T3)}
    # The first after a quiet second goes at once (another node may read the store
    # for it soon: after a cluster outage, say).
    core.data_received(1, f"MARKREAD #a timestamp={T1}\r\n".encode())
    assert [b.markers for b in saved(core.take_effects())] == [(("ann", "#a", ms[T1]),)]
    core.data_received(1, f"MARKREAD #a timestamp={T2}\r\nMARKREAD #b timestamp={T1}\r\n"
                          f"MARKREAD #A timestamp={T3}\r\n".encode())
    core.data_received(2, f"MARKREAD #a timestamp={T1}\r\n".encode())
    assert saved(core.take_effects()) == []  # the rest of the second waits
    core.tick()
    (batch,) = saved(core.take_effects())
    assert sorted(batch.markers) == [
        ("ann", "#a", ms[T3]), ("ann", "#b", ms[T1]), ("bob", "#a", ms[T1])
    ]
    core.tick()
    assert saved(core.take_effects()) == []  # nothing moved since


def test_a_dropped_accounts_pending_markers_are_not_written() -> None:
    core = make_core()
    logged_in(core, 1, "ann", "ann")
    logged_in(core, 2, "bob", "bob")
    core.data_received(1, f"MARKREAD #a timestamp={T1}\r\n".encode())  # at once
    core.data_received(1, f"MARKREAD #a timestamp={T2}\r\n".encode())
    core.data_received(2, f"MARKREAD #a timestamp={T1}\r\n".encode())
    core.take_effects()
    account_dropped(core, "ann")
    core.tick()
    (batch,) = saved(core.take_effects())
    assert [account for account, _target, _ms in batch.markers] == ["bob"]


def test_shutdown_writes_the_pending_markers() -> None:
    core = make_core()
    logged_in(core, 1, "ann", "ann")
    core.data_received(1, f"MARKREAD #a timestamp={T1}\r\n".encode())  # at once
    core.data_received(1, f"MARKREAD #b timestamp={T1}\r\n".encode())
    core.take_effects()
    core.shutdown()
    (batch,) = saved(core.take_effects())
    assert [(a, t) for a, t, _ms in batch.markers] == [("ann", "#b")]
