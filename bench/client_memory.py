"""Memory of the client's scrollback per line: a headless Session fed N plain lines into
one channel and N mIRC-coloured lines into another (the load tester's mix, fixed seed).

    .venv/bin/python -m bench.client_memory [N]

Prints bytes per line (tracemalloc: what the model allocates and keeps, not RSS) and
the time to build the lines and to format them for the screen (client.ui.render).
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from collections.abc import Callable

from client.session import Session, SessionConfig

WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed",
         "do", "eiusmod", "tempor")


def coloured(rng: random.Random, seq: int) -> str:
    """About 24 styled runs: a coloured word or a bold one, italic+underline left on."""
    words = rng.choices(WORDS, k=12)
    return f"col {seq} " + " ".join(
        f"\x03{rng.randint(0, 15)},{rng.randint(0, 15)}{w}\x0f"
        if rng.random() < 0.6
        else f"\x02{w}\x02\x1d\x1f"
        for w in words
    )


def plain(rng: random.Random, seq: int) -> str:
    return f"msg {seq} " + " ".join(rng.choices(WORDS, k=8))


def session(n: int) -> Session:
    s = Session(SessionConfig(nick="tester", scrollback=n))
    now = time.time()
    s.connection_made(now)
    for raw in (
        ":srv 001 tester :hi",
        ":srv 005 tester PREFIX=(ov)@+ CHANTYPES=# :ok",
        ":srv 376 tester :end",
        ":tester!u@h JOIN #plain",
        ":tester!u@h JOIN #colour",
    ):
        s.feed(raw, now)
    s.take_events()
    s.take_lines()
    return s


def fill(s: Session, chan: str, n: int, make: Callable[[random.Random, int], str]) -> float:
    """Feed ``n`` messages to ``chan``; the seconds it took."""
    rng = random.Random(1)
    now = time.time()
    start = time.perf_counter()
    for i in range(n):
        s.feed(
            f"@time=2026-01-01T00:00:00.000Z;msgid=abcdefgh{chan[1:]}{i:08d} "
            f":nick{i % 50}!u@h PRIVMSG {chan} :{make(rng, i)}",
            now,
        )
        if i % 100 == 0:
            s.take_events()
            s.take_lines()
    s.take_events()
    s.take_lines()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lines", nargs="?", type=int, default=2000,
                        help="lines fed into each channel (default: 2000)")
    n = parser.parse_args().lines
    makers = (("#plain", plain), ("#colour", coloured))
    s = session(n)
    tracemalloc.start()
    for chan, make in makers:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        fill(s, chan, n, make)
        gc.collect()
        grew = tracemalloc.get_traced_memory()[0] - before
        print(f"{chan[1:]:7} {n} lines: {grew / n:5.0f} B/line, {grew / 2**20:5.2f} MB")
    tracemalloc.stop()
    # Times without tracemalloc, which slows every allocation.
    for chan, make in makers:
        took = min(fill(session(n), chan, n, make) for _ in range(3))
        print(f"{chan[1:]:7} fed: {took / n * 1e6:6.1f} µs/line (best of 3)")
    try:
        from client.ui.render import LineRenderer
    except ImportError:  # prompt_toolkit missing: memory only
        return
    for chan, _ in makers:
        buf = s.buffer(chan)
        assert buf is not None
        lines = list(buf.lines)
        best = float("inf")
        for _ in range(5):
            renderer = LineRenderer()
            start = time.perf_counter()
            for line in lines:
                renderer.fragments(line)
            best = min(best, time.perf_counter() - start)
        print(f"{chan[1:]:7} format: {best / len(lines) * 1e6:6.1f} µs/line (best of 5)")


if __name__ == "__main__":
    main()
