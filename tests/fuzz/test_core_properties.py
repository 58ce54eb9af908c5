"""Property tests for ServerCore: random traffic from several fake connections, no sockets.

After every step the harness (tests/fuzz/harness.py) checks that no handler raised, that
every output line is one bounded, parseable, round-tripping line, that nick, channel and
connection state agree, and that no output is held back from the transport. Profiles
("ci", "long") are registered in conftest.py; choose with CHAT_FUZZ_PROFILE.
"""

from __future__ import annotations

import os
from dataclasses import replace

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from chat.framing import MAX_LINE
from server.config import ServerConfig
from tests.fuzz import strategies as S
from tests.fuzz.harness import CoreHarness, fuzz_config

PROFILE = settings.get_profile(os.environ.get("CHAT_FUZZ_PROFILE", "ci"))

IPS = ["192.0.2.1", "192.0.2.2", "198.51.100.7", "2001:db8::1", "2001:db8::2", "::ffff:192.0.2.1"]


@st.composite
def configs(draw: st.DrawFn) -> ServerConfig:
    """The fuzz baseline with the switches that change code paths flipped at random."""
    return fuzz_config(
        casemapping=draw(st.sampled_from(["rfc1459", "ascii", "strict-rfc1459"])),
        flood_burst=draw(st.sampled_from([0, 3, 8])),
        db=draw(st.sampled_from(["", "on"])),
        password=draw(st.sampled_from([None, None, "secret"])),
        cloak_hosts=draw(st.booleans()),
        max_per_host=draw(st.sampled_from([0, 2, 4])),
        throttle_burst=draw(st.sampled_from([0, 3, 10])),
        history_playback=draw(st.sampled_from([0, 3])),
        max_clients=draw(st.sampled_from([6, 50, 50])),
    )


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for p in points:
        pieces.append(data[start:p])
        start = p
    pieces.append(data[start:])
    return [p for p in pieces if p]


class CoreMachine(RuleBasedStateMachine):
    """Several connections talking at once, the clock moving, connections dropping."""

    def __init__(self) -> None:
        super().__init__()
        self.h: CoreHarness | None = None

    @property
    def harness(self) -> CoreHarness:
        assert self.h is not None
        return self.h

    @initialize(
        config=configs(),
        nicks=st.lists(S.good_nick, min_size=1, max_size=3),
        auto_close=st.sampled_from([True, True, True, False]),
    )
    def start(self, config: ServerConfig, nicks: list[str], auto_close: bool) -> None:
        self.h = CoreHarness(config, auto_close=auto_close)
        # A few registered clients to begin with, so that most lines do something.
        for i, nick in enumerate(nicks):
            conn = self.h.connect(IPS[i % len(IPS)])
            if config.password:
                self.h.send_line(conn, "PASS secret")
            self.h.send(conn, f"NICK {nick}\r\nUSER u{i} 0 * :Real {i}\r\nJOIN #chan\r\n".encode())

    def _conn(self, index: int) -> int:
        """Mostly a live connection (registered ones first); now and then any at all."""
        h = self.harness
        if index % 10 == 0:
            ids = sorted(h.conns)
        else:
            live = [c for c in h.core.clients.values() if c.closing is None]
            registered = [c.conn_id for c in live if c.registered]
            ids = registered if registered and index % 10 < 8 else [c.conn_id for c in live]
            ids = sorted(ids) or sorted(h.conns)
        return ids[(index // 10) % len(ids)]

    @rule(
        ip=st.sampled_from(IPS),
        caps=st.lists(st.sampled_from(S.CAPS), max_size=5),
        nick=st.one_of(S.good_nick, S.unique_nick, S.unique_nick, S.nick),
        with_pass=st.booleans(),
        channels=st.lists(S.good_channel, max_size=3),
    )
    def connect_and_register(
        self, ip: str, caps: list[str], nick: str, with_pass: bool, channels: list[str]
    ) -> None:
        h = self.harness
        conn = h.connect(ip, secure=ip.startswith("2001"))
        lines = ["CAP LS 302"] if caps else []
        if caps:
            lines.append("CAP REQ :" + " ".join(caps))
        if h.config.password or not with_pass:
            lines.append("PASS secret" if with_pass or len(channels) != 1 else "PASS wrong")
        lines += [f"NICK {nick}", f"USER {nick or 'x'} 0 * :{nick}"]
        if caps:
            lines.append("CAP END")
        lines += [f"JOIN {name}" for name in channels]
        h.send(conn, "".join(line + "\r\n" for line in lines).encode())

    @rule(index=st.integers(min_value=0), lines=st.lists(S.command_line(), min_size=1, max_size=6))
    def commands(self, index: int, lines: list[str]) -> None:
        for line in lines:
            self.harness.send_line(self._conn(index), line)
            index = index * 7 + 3  # the next line from someone else, often

    @rule(index=st.integers(min_value=0), data=st.data())
    def op_commands(self, index: int, data: st.DataObject) -> None:
        """A channel operator at work (most clients are not ops, so this needs its own rule)."""
        h = self.harness
        ops = sorted(
            (c.conn_id, ch.name)
            for ch in h.core.channels.values()
            for c, modes in ch.members.items()
            if "o" in modes
        )
        if not ops:
            return
        conn, name = ops[index % len(ops)]
        for line in data.draw(st.lists(S.op_command(name), min_size=1, max_size=4)):
            h.send_line(conn, line)

    @rule(
        index=st.integers(min_value=0),
        lines=st.lists(S.input_line(), min_size=1, max_size=4),
        endings=st.lists(S.ending, min_size=4, max_size=4),
        cuts=st.lists(st.integers(min_value=0), max_size=4),
    )
    def send_lines(
        self, index: int, lines: list[bytes], endings: list[bytes], cuts: list[int]
    ) -> None:
        """Lines with assorted endings, delivered in pieces cut at random points."""
        conn = self._conn(index)
        data = b"".join(line + end for line, end in zip(lines, endings, strict=False))
        for piece in _split(data, cuts):
            self.harness.send(conn, piece)

    @rule(index=st.integers(min_value=0), data=S.junk_bytes)
    def send_raw(self, index: int, data: bytes) -> None:
        self.harness.send(self._conn(index), data)

    @rule(
        index=st.integers(min_value=0),
        size=st.sampled_from([100, 600, 5000, MAX_LINE, MAX_LINE, MAX_LINE + 1, 20000]),
    )
    def send_unterminated(self, index: int, size: int) -> None:
        """A slowloris-style partial line up to and past the buffer bound."""
        conn = self._conn(index)
        self.harness.send(conn, b"PRIVMSG #chan :" + b"y" * max(size - 15, 0))
        if size <= MAX_LINE and size % 2:
            self.harness.send(conn, b"\r\n")  # the rest of the line after all
        client = self.harness.client(conn)
        if client is not None and client.closing is None:
            assert client.linebuf.pending <= MAX_LINE + 1

    @rule(
        index=st.integers(min_value=0),
        count=st.one_of(st.integers(min_value=1, max_value=12), st.integers(1, 40)),
    )
    def flood(self, index: int, count: int) -> None:
        self.harness.send(self._conn(index), b"PING :flood\r\n" * count)

    @rule(seconds=st.sampled_from([0.0, 0.2, 0.5, 1.0, 3.0, 5.0, 21.0, 31.0, 61.0, 200.0]))
    def tick(self, seconds: float) -> None:
        self.harness.tick(seconds)

    @rule(
        index=st.integers(min_value=0),
        how=st.sampled_from(["lose", "lose", "lose_closed", "lose_closed", "sendq", "shutdown"]),
    )
    def disrupt(self, index: int, how: str) -> None:
        """The transport's side: a reset, a flush that closes, SendQ, server shutdown."""
        h = self.harness
        if how == "lose":
            h.lose(self._conn(index))
        elif how == "lose_closed":
            h.lose_closed()
        elif how == "sendq":
            h.sendq_exceeded(self._conn(index))
        elif index % 7 == 0:  # rare: everyone goes
            h.shutdown()

    @precondition(lambda self: self.h is not None and bool(self.h.requests))
    @rule(index=st.integers(min_value=0), fail=st.booleans())
    def answer_history(self, index: int, fail: bool) -> None:
        self.harness.answer_history(index, fail)

    @rule(index=st.integers(min_value=0))
    def become_oper(self, index: int) -> None:
        self.harness.send_line(self._conn(index), "OPER root hunter2")

    @invariant()
    def quiet_steps_are_quiet(self) -> None:
        """Nothing happens without a cause: no time passing and no input, no output."""
        if self.h is None:
            return
        h = self.h
        if h.core._flooded:
            return  # delayed lines may be released by the tick
        assert h.tick(0.0) == {}
        assert h.core.take_effects() == []

    def teardown(self) -> None:
        if self.h is not None:
            try:
                self.h.finish()
            finally:
                self.h.close()


def core_machine() -> CoreMachine:
    # A function, not the class, for hypothesis to digest: for a class, inspect parses
    # this whole module with ast, which CPython 3.11.7 can fail with "AST constructor
    # recursion depth mismatch" when a garbage-collected task logs a traceback
    # (traceback formatting parses too) in the middle of it.
    return CoreMachine()


def test_core_state_machine() -> None:
    run_state_machine_as_test(
        core_machine,
        settings=settings(
            PROFILE,
            stateful_step_count=PROFILE.stateful_step_count,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


# ---------------------------------------------------------------------- single-step properties


def _channel_with_three(config: ServerConfig) -> tuple[CoreHarness, list[int]]:
    """alice (op, every cap), bob (no caps) and carol (tags) in #chan."""
    h = CoreHarness(config)
    conns = [
        h.register(
            "alice",
            "192.0.2.1",
            "labeled-response batch message-tags echo-message server-time multi-prefix",
        ),
        h.register("bob", "192.0.2.2"),
        h.register("carol", "192.0.2.3", "message-tags away-notify userhost-in-names"),
    ]
    for conn in conns:
        h.send_line(conn, "JOIN #chan")
    h.answer_all_history()
    return h, conns


_ONE_STEP_CONFIG = replace(fuzz_config(), flood_burst=0, throttle_burst=0, max_per_host=0)


@settings(PROFILE, suppress_health_check=[HealthCheck.too_slow])
@given(sender=st.integers(min_value=0, max_value=2), line=S.input_line(), end=S.ending)
def test_any_line_from_any_member(sender: int, line: bytes, end: bytes) -> None:
    """Each line alone, from a registered member of a busy channel, keeps every invariant."""
    h, conns = _channel_with_three(_ONE_STEP_CONFIG)
    with h:
        h.send(conns[sender], line + end + b"PING :sync\r\n")
        h.answer_all_history()
        h.finish()


@settings(PROFILE, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(S.input_line(), min_size=1, max_size=6))
def test_any_lines_before_registration(lines: list[bytes]) -> None:
    """An unregistered connection can say anything; only registration lets it do more."""
    h = CoreHarness(_ONE_STEP_CONFIG)
    with h:
        alice = h.register("alice")
        h.send_line(alice, "JOIN #chan")
        h.answer_all_history()  # (the join's playback: its output waits for it)
        stranger = h.connect("198.51.100.9")
        for line in lines:
            h.send(stranger, line + b"\r\n")
        client = h.client(stranger)
        if client is not None and not client.registered:
            assert client.channels == {}
            # An unregistered connection never reaches the registered one.
            assert h.send_line(alice, "PING :x") == {
                alice: [b":fuzz.server PONG fuzz.server x\r\n"]
            }
        h.finish()


@settings(PROFILE, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(S.command_line(), min_size=1, max_size=8),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_chunking_never_changes_what_happens(lines: list[str], cuts: list[int]) -> None:
    """The same bytes cut anywhere give the same output as sent whole (clock held still)."""
    data = b"".join(line.encode() + b"\r\n" for line in lines)
    assume(all(len(line.encode()) <= MAX_LINE for line in lines))

    def run(pieces: list[bytes]) -> tuple[list[bytes], list[bytes]]:
        h, conns = _channel_with_three(_ONE_STEP_CONFIG)
        with h:
            before = len(h.conns[conns[1]].lines)
            before_c = len(h.conns[conns[2]].lines)
            for piece in pieces:
                h.send(conns[0], piece)
            h.answer_all_history()
            h.finish()
            # Lines beyond KEEP_LINES are dropped: compare what both runs kept.
            return h.conns[conns[1]].lines[before:], h.conns[conns[2]].lines[before_c:]

    whole = run([data])
    pieces = run(_split(data, cuts))
    assert whole == pieces


@settings(PROFILE, suppress_health_check=[HealthCheck.too_slow])
@given(
    nicks=st.lists(S.nick, min_size=2, max_size=8), order=st.lists(st.integers(0, 7), max_size=10)
)
def test_nick_collisions_keep_one_owner_per_folded_nick(nicks: list[str], order: list[int]) -> None:
    h = CoreHarness(_ONE_STEP_CONFIG)
    with h:
        conns = [h.connect(f"192.0.2.{i + 1}") for i in range(4)]
        for i, nick in enumerate(nicks):
            conn = conns[i % len(conns)]
            h.send(conn, f"NICK {nick}\r\nUSER u 0 * :r\r\n".encode())
        for i in order:
            h.send_line(conns[i % len(conns)], f"NICK {nicks[i % len(nicks)]}")
        owners: dict[str, int] = {}
        for folded, client in h.core.nicks.items():
            assert folded not in owners
            owners[folded] = client.conn_id
        h.finish()
