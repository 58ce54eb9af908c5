"""WhowasLog: bounded, newest first, oldest forgotten first across all nicks."""

from __future__ import annotations

from server.core.whowas import WhowasEntry, WhowasLog


def record(log: WhowasLog, nick: str, at: float) -> None:
    log.record(nick.lower(), nick, "~u", "host", "Real", at)


def test_lookup_is_newest_first_and_count_limits_it() -> None:
    log = WhowasLog(10)
    for at in (1.0, 2.0, 3.0):
        record(log, "alice", at)
    record(log, "bob", 4.0)
    assert log.lookup("alice")[0] == WhowasEntry("alice", "~u", "host", "Real", 3.0)
    assert [e.left_at for e in log.lookup("alice")] == [3.0, 2.0, 1.0]
    assert [e.left_at for e in log.lookup("alice", 2)] == [3.0, 2.0]
    assert [e.left_at for e in log.lookup("alice", -1)] == [3.0, 2.0, 1.0]
    assert log.lookup("carol") == []


def test_the_oldest_entry_of_any_nick_goes_first() -> None:
    log = WhowasLog(3)
    record(log, "alice", 1.0)
    record(log, "bob", 2.0)
    record(log, "alice", 3.0)
    record(log, "carol", 4.0)  # pushes out alice's first entry
    assert [e.left_at for e in log.lookup("alice")] == [3.0]
    record(log, "dave", 5.0)  # pushes out bob's only entry
    assert log.lookup("bob") == []
    assert len(log) == 3


def test_resize_forgets_the_oldest_and_zero_turns_it_off() -> None:
    log = WhowasLog(5)
    for i in range(5):
        record(log, f"n{i}", float(i))
    log.resize(2)
    assert [n for n in ("n0", "n1", "n2", "n3", "n4") if log.lookup(n)] == ["n3", "n4"]
    log.resize(0)
    record(log, "x", 9.0)
    assert len(log) == 0
    assert log.lookup("x") == []
    assert WhowasLog(-3).capacity == 0


def test_fields_come_back_as_given_and_times_in_whole_seconds() -> None:
    log = WhowasLog(4)
    log.record("[a]", "{A}", "~u", "c1.c2.ip", "Real: name with \0 and spaces ", 1_790_000_123.9)
    log.record("[a]b", "[a]b", "~v", "h", "other", 1.0)  # a longer nick with the same start
    assert log.lookup("[a]") == [
        WhowasEntry("{A}", "~u", "c1.c2.ip", "Real: name with \0 and spaces ", 1_790_000_123.0)
    ]
