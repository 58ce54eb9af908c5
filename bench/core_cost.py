"""The sans-IO core's own cost, with no sockets and no loop: steadier than the
scenarios of ``bench.run`` on a noisy machine, for comparing two trees.

connect  per registration: connect, ``NICK``/``USER``, the welcome burst, ``QUIT``,
         the close, with ``--others`` clients connected
fanout   per message: ``--members`` clients in one channel, one of them sends
         ``--batch`` PRIVMSGs per tick; with ``--history`` each tick's messages
         are committed to a real SQLite file (in a temp dir), as the transports do

Best of ``--rounds`` runs of ``--count``; ``--profile`` prints cProfile's top.

    python -m bench.core_cost connect [--count 20000] [--rounds 5] [--profile]
    python -m bench.core_cost fanout --history [--members 200] [--batch 20]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from server.config import ServerConfig
from server.core.core import ServerCore
from server.core.history import HistoryRequest, StoreMessage
from server.history.sqlite_store import SQLiteStore

# The bench server's settings (bench/run.py OURS_BENCH_FLAGS): no per-host limits.
BENCH_CONFIG = ServerConfig(
    name="bench.server", max_per_host=0, throttle_burst=0, flood_burst=0, max_clients=0
)


def drain(core: ServerCore) -> None:
    """What a transport's flush does with the core's output, minus the sockets."""
    for client in core.take_output():
        client.out.clear()


def register(core: ServerCore, conn_id: int, nick: str) -> None:
    core.connect(conn_id, "127.0.0.1", 40000)
    core.data_received(conn_id, f"NICK {nick}\r\nUSER u 0 * :bench\r\n".encode())


def registrations(core: ServerCore, first_id: int, count: int) -> None:
    """``count`` clients connect, register, quit and close, one after another."""
    for conn_id in range(first_id, first_id + count):
        register(core, conn_id, f"u{conn_id}")
        drain(core)
        core.data_received(conn_id, b"QUIT\r\n")
        drain(core)
        core.connection_lost(conn_id)
        core.take_effects()


def connect_scenario(args: argparse.Namespace) -> tuple[Callable[[int], None], str]:
    core = ServerCore(replace(BENCH_CONFIG, db=""), time.time)
    for conn_id in range(1, args.others + 1):  # clients that stay
        register(core, conn_id, f"o{conn_id}")
    next_id = [1_000_000]

    def run(count: int) -> None:
        registrations(core, next_id[0], count)
        next_id[0] += count

    return run, "registration"


def fanout_scenario(args: argparse.Namespace) -> tuple[Callable[[int], None], str]:
    tmp = tempfile.mkdtemp(prefix="core-cost-")
    db = str(Path(tmp) / "history.db") if args.history else ""
    core = ServerCore(replace(BENCH_CONFIG, db=db), time.time)
    store = SQLiteStore(db) if args.history else None
    for conn_id in range(1, args.members + 1):
        register(core, conn_id, f"m{conn_id}")
        core.data_received(conn_id, b"JOIN #bench\r\n")
    for effect in core.take_effects():  # join playback: nothing to play back yet
        if isinstance(effect, HistoryRequest):
            core.history_ready(effect.request_id, rows=[])
    drain(core)
    line = b"PRIVMSG #bench :" + b"x" * 100 + b"\r\n"
    tick = line * args.batch

    def run(count: int) -> None:
        for _ in range(count // args.batch):
            core.data_received(1, tick)
            effects = core.take_effects()
            if store is not None:
                store.append([e.message for e in effects if isinstance(e, StoreMessage)])
            drain(core)

    return run, "message"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario", choices=("connect", "fanout"))
    p.add_argument("--count", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--others", type=int, default=50, help="connect: clients connected meanwhile")
    p.add_argument("--members", type=int, default=200, help="fanout: channel members")
    p.add_argument("--batch", type=int, default=20, help="fanout: messages per tick")
    p.add_argument("--history", action="store_true", help="fanout: store to SQLite")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    setup = connect_scenario if args.scenario == "connect" else fanout_scenario
    run, unit = setup(args)
    run(args.count // 10)  # warm-up
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(run, args.count)
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        return
    best = float("inf")
    for _ in range(args.rounds):
        t0 = time.process_time()
        run(args.count)
        best = min(best, time.process_time() - t0)
    per = best / args.count * 1e6
    print(f"{per:.2f} µs of CPU per {unit} (best of {args.rounds} runs of {args.count})")


if __name__ == "__main__":
    main()
