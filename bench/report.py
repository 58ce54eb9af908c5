"""Summarise ``bench.run --out`` JSON lines as Markdown tables (median of repeats).

    python -m bench.report results.jsonl [more.jsonl ...]

Each cell is the median over the runs of one scenario on one server; ``n`` is the
number of runs, and the spread of the headline figure is given as min..max.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

Row = dict[str, Any]


def load(paths: Iterable[str]) -> list[Row]:
    rows: list[Row] = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    rows.append(json.loads(line))
    return rows


def median(rows: list[Row], get: Callable[[Row], Any]) -> float | None:
    values = [v for v in (get(r) for r in rows) if isinstance(v, (int, float))]
    return statistics.median(values) if values else None


def spread(rows: list[Row], get: Callable[[Row], Any]) -> str:
    values = [v for v in (get(r) for r in rows) if isinstance(v, (int, float))]
    if len(values) < 2:
        return ""
    return f" ({min(values) / 1e6:.2f}..{max(values) / 1e6:.2f}M)"


def num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def grouped(rows: list[Row], mode: str) -> dict[tuple[str, str], list[Row]]:
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        if r.get("mode") == mode and "error" not in r and r.get("scenario") != "history":
            groups[(str(r["scenario"]), str(r["target"]))].append(r)
    return groups


HISTORY_ORDER = {"off": 0, "sqlite": 1, "sqlite+redis": 2}


def history_table(rows: list[Row]) -> list[str]:
    """The history scenario's fan-out runs: each configuration against history off."""
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        if r.get("scenario") == "history" and r.get("mode") == "traffic" and "error" not in r:
            groups[(str(r["target"]), str(r.get("history")))].append(r)
    if not groups:
        return []
    out = [
        "| server | history | n | deliveries/s | vs off | deliveries per server CPU-s | vs off "
        "| per (server + Redis) CPU-s | lost | p50 ms | p99 ms | server CPU % (sys) "
        "| Redis CPU % (est.) | others CPU % |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]

    def per_both(r: Row) -> float | None:
        cpu = r.get("server_cpu_pct")
        if not isinstance(cpu, (int, float)):
            return None
        total = cpu + (r.get("redis_cpu_pct_est") or 0.0)
        return float(r["deliveries_per_s"]) * 100 / total if total else None

    def rel(value: float | None, base: float | None, config: str) -> str:
        if config == "off":
            return "base"
        if value is None or not base:
            return "-"
        return f"{100 * (value / base - 1):+.0f} %"

    keys = sorted(groups, key=lambda k: (k[0], HISTORY_ORDER.get(k[1], 9)))
    for target, config in keys:
        rs = groups[(target, config)]
        base = groups.get((target, "off"), [])
        rate = median(rs, lambda r: r["deliveries_per_s"])
        per_cpu = median(rs, lambda r: r["deliveries_per_server_cpu_s"])
        redis = median(rs, lambda r: r.get("redis_cpu_pct_est"))
        out.append(
            f"| {target} | {config} | {len(rs)} | {num(rate)} "
            f"| {rel(rate, median(base, lambda r: r['deliveries_per_s']), config)} "
            f"| {num(per_cpu)}{spread(rs, lambda r: r['deliveries_per_server_cpu_s'])} "
            f"| {rel(per_cpu, median(base, lambda r: r['deliveries_per_server_cpu_s']), config)} "
            f"| {num(median(rs, per_both))} "
            f"| {num(median(rs, lambda r: r['lost']))} "
            f"| {num(median(rs, lambda r: r['latency']['p50_ms']), 2)} "
            f"| {num(median(rs, lambda r: r['latency']['p99_ms']), 2)} "
            f"| {num(median(rs, lambda r: r['server_cpu_pct']), 1)} "
            f"({num(median(rs, lambda r: r.get('server_sys_pct')), 1)}) "
            f"| {'-' if redis is None else num(redis, 1)} "
            f"| {num(median(rs, lambda r: r.get('others_cpu_pct')), 1)} |"
        )
    return out


def chathistory_table(rows: list[Row]) -> list[str]:
    """CHATHISTORY LATEST latency per cache state (median of the runs' percentiles)."""
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        if r.get("mode") == "chathistory" and "error" not in r:
            for state in ("warm", "cold", "store"):
                if state in r:
                    groups[(str(r["target"]), state)].append(r[state] | {"limit": r["limit"]})
    if not groups:
        return []
    what = {
        "warm": "SQLite + Redis, warm cache (hits)",
        "cold": "SQLite + Redis, FLUSHALL before each request",
        "store": "SQLite only (no --redis)",
    }
    out = [
        "| server | cache | n | requests | p50 ms | p90 ms | p99 ms | max ms "
        "| server CPU ms per request | cache hits / misses (last run) |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    order = {"warm": 0, "cold": 1, "store": 2}
    for target, state in sorted(groups, key=lambda k: (k[0], order[k[1]])):
        rs = groups[(target, state)]
        counters = rs[-1].get("server_counters") or {}
        hm = (
            f"{counters.get('cache_hits', 0):.0f} / {counters.get('cache_misses', 0):.0f}"
            if counters
            else "-"
        )
        out.append(
            f"| {target} | {what[state]} | {len(rs)} | {rs[0]['requests']} x LATEST * "
            f"{rs[0]['limit']} "
            f"| {num(median(rs, lambda r: r['latency']['p50_ms']), 2)} "
            f"| {num(median(rs, lambda r: r['latency']['p90_ms']), 2)} "
            f"| {num(median(rs, lambda r: r['latency']['p99_ms']), 2)} "
            f"| {num(median(rs, lambda r: r['latency']['max_ms']), 2)} "
            f"| {num(median(rs, lambda r: r.get('server_cpu_ms_per_request')), 2)} | {hm} |"
        )
    return out


def traffic_table(rows: list[Row]) -> list[str]:
    groups = grouped(rows, "traffic")
    if not groups:
        return []
    out = [
        "| scenario | server | n | deliveries/s | deliveries per server CPU-s | msgs sent/s "
        "| lost | p50 ms | p99 ms | server CPU % (sys) | generator CPU % | others CPU % |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for (scenario, target), rs in sorted(groups.items()):

        def lat(key: str) -> Callable[[Row], Any]:
            return lambda r: r["latency"][key]

        per_cpu = median(rs, lambda r: r["deliveries_per_server_cpu_s"])
        out.append(
            f"| {scenario} | {target} | {len(rs)} "
            f"| {num(median(rs, lambda r: r['deliveries_per_s']))} "
            f"| {num(per_cpu)}{spread(rs, lambda r: r['deliveries_per_server_cpu_s'])} "
            f"| {num(median(rs, lambda r: r['sent_per_s']))} "
            f"| {num(median(rs, lambda r: r['lost']))} "
            f"| {num(median(rs, lat('p50_ms')), 2)} | {num(median(rs, lat('p99_ms')), 2)} "
            f"| {num(median(rs, lambda r: r['server_cpu_pct']), 1)} "
            f"({num(median(rs, lambda r: r.get('server_sys_pct')), 1)}) "
            f"| {num(median(rs, lambda r: r['generator_cpu_pct']), 1)} "
            f"| {num(median(rs, lambda r: r.get('others_cpu_pct')), 1)} |"
        )
    return out


def idle_table(rows: list[Row]) -> list[str]:
    groups = grouped(rows, "idle")
    if not groups:
        return []
    out = [
        "| server | n | connections | RSS KiB per connection | server RSS primed -> held KiB "
        "| registrations/s (concurrency) | idle server CPU % |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for (_, target), rs in sorted(groups.items()):
        r0 = rs[0]
        out.append(
            f"| {target} | {len(rs)} | {r0['clients']} "
            f"| {num(median(rs, lambda r: r['rss_kb_per_conn']), 2)} "
            f"| {r0['server_rss_kb']['primed']} -> {r0['server_rss_kb']['held']} "
            f"| {num(median(rs, lambda r: r['registrations_per_s']))} "
            f"({r0.get('concurrency', '?')}) "
            f"| {num(median(rs, lambda r: r['server_cpu_pct_idle']), 2)} |"
        )
    return out


def connect_table(rows: list[Row]) -> list[str]:
    groups = grouped(rows, "connect")
    if not groups:
        return []
    out = [
        "| server | n | registrations/s | registrations per server CPU-s | server CPU % "
        "| register p50 ms | p99 ms |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for (_, target), rs in sorted(groups.items()):
        out.append(
            f"| {target} | {len(rs)} | {num(median(rs, lambda r: r['registrations_per_s']))} "
            f"| {num(median(rs, lambda r: r['registrations_per_server_cpu_s']))} "
            f"| {num(median(rs, lambda r: r['server_cpu_pct']), 1)} "
            f"| {num(median(rs, lambda r: r['register_latency']['p50_ms']), 2)} "
            f"| {num(median(rs, lambda r: r['register_latency']['p99_ms']), 2)} |"
        )
    return out


def errors(rows: list[Row]) -> list[str]:
    return [
        f"- {r.get('scenario')} on {r.get('target')}: {str(r['error']).splitlines()[0][:200]}"
        for r in rows
        if "error" in r
    ]


def render(rows: list[Row]) -> str:
    parts: list[str] = []
    for title, table in (
        ("Traffic", traffic_table(rows)),
        ("History: fan-out with history off / SQLite / SQLite + Redis", history_table(rows)),
        ("History: CHATHISTORY LATEST latency", chathistory_table(rows)),
        ("Idle connections", idle_table(rows)),
        ("Connect/register/QUIT churn", connect_table(rows)),
    ):
        if table:
            parts += [f"### {title}", "", *table, ""]
    errs = errors(rows)
    if errs:
        parts += ["### Failed runs", "", *errs, ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    p.add_argument("files", nargs="+", help="JSON lines written by bench.run --out")
    args = p.parse_args(argv)
    print(render(load(args.files)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
