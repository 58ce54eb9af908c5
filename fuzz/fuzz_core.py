"""Coverage-guided fuzz target (atheris) for the core's command dispatch.

Each input is a little text program for tests/fuzz/harness.py: which switches the config
has, then steps (a line from connection k, raw bytes, the clock moving, a connection
dropping, a history answer, a new client); the format is in fuzz/README.md and the seeds
in fuzz/seeds/core show it. After every step the harness checks every invariant
(no logged exception, one bounded round-tripping line per output line, nick/channel/
connection state consistent); a violation raises and libFuzzer saves the input.

    .venv/bin/python fuzz/fuzz_core.py -dict=fuzz/irc.dict -max_total_time=60 CORPUS_DIR

Reproduce a saved crash: ``.venv/bin/python fuzz/fuzz_core.py crash-<sha1>``; print its
steps: ``.venv/bin/python fuzz/fuzz_core.py --explain crash-<sha1>``.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path

import atheris  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["chat", "server.core"]):
    # Instrumented before the harness imports them; handlers are otherwise imported lazily.
    import server.core.core
    import server.core.handlers  # noqa: F401
    from tests.fuzz.harness import CoreHarness, fuzz_config

# Warnings (failed OPER...) would go to stderr through logging's last resort: silence them.
# ERRORs from chat.server.core still reach the harness's handler on that logger.
logging.getLogger().addHandler(logging.NullHandler())

NICKS = ["alice", "bob", "carol", "d[a]n", "D{A}N", "x^", "X~", "eve"]
IPS = ["192.0.2.1", "192.0.2.2", "198.51.100.7", "2001:db8::1", "2001:db8::2"]
CAPS = [
    "",
    "message-tags",
    "labeled-response batch message-tags",
    "echo-message server-time",
    "multi-prefix userhost-in-names away-notify setname",
    "draft/chathistory batch server-time",
    "labeled-response echo-message message-tags batch server-time draft/chathistory",
    "cap-notify",
]
SECONDS = [0.0, 0.1, 0.5, 1.0, 5.0, 21.0, 31.0, 61.0, 121.0, 400.0]
CASEMAPPINGS = ["rfc1459", "ascii", "strict-rfc1459"]

MAX_STEPS = 64
TRACE: list[str] | None = None  # --explain: the steps of one input, printed


def _note(step: str) -> None:
    if TRACE is not None:
        TRACE.append(step)


def build(flags: int, setup: int) -> CoreHarness:
    config = replace(
        fuzz_config(),
        flood_burst=0 if flags & 1 else 5,
        db="" if flags & 2 else "on",
        password="secret" if flags & 4 else None,
        cloak_hosts=bool(flags & 8),
        casemapping=CASEMAPPINGS[(flags >> 4) % 3],  # type: ignore[arg-type]
        max_clients=50,
        max_per_host=0 if flags & 64 else 4,
        throttle_burst=0 if flags & 64 else 6,
    )
    h = CoreHarness(config, auto_close=not flags & 128)
    _note(f"config flags={flags:#x}")
    for i in range(1 + setup % 3):
        caps = CAPS[(setup >> (2 + i)) % len(CAPS)]
        conn = h.connect(IPS[i])
        pw = "PASS secret\r\n" if config.password else ""
        cap_req = f"CAP LS 302\r\nCAP REQ :{caps}\r\n" if caps else ""
        cap_end = "CAP END\r\n" if caps else ""
        h.send(
            conn,
            f"{cap_req}{pw}NICK {NICKS[i]}\r\nUSER u 0 * :r\r\n{cap_end}JOIN #chan\r\n".encode(),
        )
        _note(f"conn {conn}: registered {NICKS[i]} caps={caps!r}, joined #chan")
    return h


def pick(h: CoreHarness, index: int) -> int:
    ids = sorted(h.conns)
    return ids[index % len(ids)]


def step(h: CoreHarness, record: bytes) -> None:
    """One record: an op byte, a number byte, then the payload (see fuzz/README.md)."""
    op = record[:1]
    num = record[1] if len(record) > 1 else 0
    who = num - 48 if 48 <= num <= 57 else num  # '0'..'9' read as digits
    payload = record[2:]
    if b"0" <= op <= b"7":  # a line from connection number <op>; the rest is the line
        conn = pick(h, op[0] - 48)
        line = record[1:]
        _note(f"conn {conn} sends {line!r} + CRLF")
        h.send(conn, line + b"\r\n")
    elif op == b"r":  # raw bytes: any framing; '\\n' in the payload is a line feed
        conn = pick(h, who)
        raw = payload.replace(b"\\n", b"\n")
        _note(f"conn {conn} sends raw {raw!r}")
        h.send(conn, raw)
    elif op == b"t":
        seconds = SECONDS[who % len(SECONDS)]
        _note(f"tick +{seconds}s")
        h.tick(seconds)
    elif op == b"x":
        conn = pick(h, who)
        _note(f"conn {conn} lost")
        h.lose(conn)
    elif op == b"c":
        _note("transport closes what the core closed")
        h.lose_closed()
    elif op == b"h":
        _note(f"history answer #{who} (fail={bool(who & 1)})")
        h.answer_history(who, fail=bool(who & 1))
    elif op == b"n":  # a new client; the payload is its CAP REQ list
        nick = NICKS[who % len(NICKS)]
        conn = h.connect(IPS[who % len(IPS)])
        lines = [b"CAP REQ :" + payload] if payload else []
        if h.config.password:
            lines.append(b"PASS secret")
        lines += [f"NICK {nick}".encode(), f"USER {nick} 0 * :{nick}".encode()]
        if payload:
            lines.append(b"CAP END")
        _note(f"conn {conn}: new client {nick} caps={payload!r}")
        h.send(conn, b"".join(line + b"\r\n" for line in lines))
    elif op == b"s":
        _note("server shutdown")
        h.shutdown()
    elif op == b"q":
        conn = pick(h, who)
        _note(f"conn {conn}: sendq exceeded")
        h.sendq_exceeded(conn)


def run(data: bytes) -> None:
    """Byte 0: config flags; byte 1: initial clients and their caps; then records, one a
    line (split on LF)."""
    flags = data[0] if data else 0
    setup = data[1] if len(data) > 1 else 0
    h = build(flags, setup)
    try:
        for record in data[2:].split(b"\n")[:MAX_STEPS]:
            if record:
                step(h, record)
        _note("everyone hangs up")
        h.finish()
    finally:
        h.close()


def test_one_input(data: bytes) -> None:
    run(data)


def explain(path: str) -> None:
    global TRACE
    TRACE = []
    try:
        run(Path(path).read_bytes())
    except Exception as exc:
        TRACE.append(f"-> {type(exc).__name__}: {exc}")
        raise
    finally:
        print("\n".join(TRACE))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--explain":
        explain(sys.argv[2])
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
