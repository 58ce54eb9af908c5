"""The sans-IO core's own cost per registration, with no sockets and no loop.

``connect`` scenario's server side without the transport: connect, ``NICK``/``USER``,
the welcome burst, ``QUIT``, the close, with ``--others`` clients connected. Best of
``--rounds`` runs of ``--count`` registrations; ``--profile`` prints cProfile's top.

    python -m bench.core_cost [--count 20000] [--rounds 5] [--others 50] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from server.config import ServerConfig
from server.core.core import ServerCore

# The bench server's settings (bench/run.py OURS_BENCH_FLAGS): no per-host limits.
CONFIG = ServerConfig(
    name="bench.server", max_per_host=0, throttle_burst=0, flood_burst=0, max_clients=0
)


def registrations(core: ServerCore, first_id: int, count: int) -> None:
    """``count`` clients connect, register, quit and close, one after another."""
    for conn_id in range(first_id, first_id + count):
        core.connect(conn_id, "127.0.0.1", 40000)
        core.data_received(conn_id, f"NICK u{conn_id}\r\nUSER u 0 * :bench\r\n".encode())
        for client in core.take_output():
            client.out.clear()
        core.data_received(conn_id, b"QUIT\r\n")
        for client in core.take_output():
            client.out.clear()
        core.connection_lost(conn_id)
        core.take_effects()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--others", type=int, default=50, help="clients connected meanwhile")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    core = ServerCore(CONFIG, time.time)
    registrations(core, 1, 0)
    for conn_id in range(1, args.others + 1):  # clients that stay
        core.connect(conn_id, "127.0.0.1", 40000)
        core.data_received(conn_id, f"NICK o{conn_id}\r\nUSER o 0 * :bench\r\n".encode())
    next_id = 1_000_000
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(registrations, core, next_id, args.count)
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        return
    best = float("inf")
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        registrations(core, next_id, args.count)
        best = min(best, time.perf_counter() - t0)
        next_id += args.count
    per = best / args.count * 1e6
    print(f"{per:.2f} µs per registration (best of {args.rounds} runs of {args.count})")


if __name__ == "__main__":
    main()
