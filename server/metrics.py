"""Prometheus metrics and a health endpoint, served from a thread of their own.

The HTTP thread never touches the event loop: at scrape time it calls a
snapshot function that copies plain counters (atomic under the GIL), so a slow
or stuck scraper cannot delay the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("chat.server.metrics")

Snapshot = Mapping[str, Any]
PREFIX = "chat_"
HEALTH_STALE_SECONDS = 5.0  # loop heartbeat older than this: unhealthy

# name -> (kind, help, label name or None)
SCHEMA: dict[str, tuple[str, str, str | None]] = {
    "connections": ("gauge", "Open client connections", None),
    "connections_opened": ("counter", "Connections accepted since start", None),
    "connections_refused": ("counter", "Connections refused, by reason", "reason"),
    "registrations": ("counter", "Clients that completed registration", None),
    "messages_in": ("counter", "Commands received, by command", "command"),
    "messages_out": ("counter", "Messages relayed to clients, by command", "command"),
    "deliveries": ("counter", "Relayed messages queued to recipients (fan-out)", None),
    "sendq_disconnects": ("counter", "Clients disconnected at their SendQ bound", None),
    "flood_disconnects": ("counter", "Clients disconnected for Excess Flood", None),
    "history_writes": ("counter", "Messages committed to the history store", None),
    "history_commits": ("counter", "History store transactions (one per tick with messages)", None),
    "history_commit_seconds": ("counter", "Total seconds spent in history commits", None),
    "history_commit_failures": ("counter", "History commits that failed", None),
    "history_unstored": ("gauge", "Messages a failed commit left, waiting for the store", None),
    "cache_hits": ("counter", "History reads answered from Redis", None),
    "cache_misses": ("counter", "History reads that missed Redis", None),
    "cache_fills": ("counter", "Windows filled into Redis", None),
    "cache_invalidations": ("counter", "Times the Redis generation was dropped", None),
    "cache_drops": ("counter", "Windows dropped because another node wrote to them", None),
    "breaker_open": ("gauge", "Redis circuit breaker: 0 closed, 1 half-open, 2 open", None),
    "loop_lag_seconds": ("gauge", "How late the last one-second timer ran", None),
    "tls_handshake_failures": ("counter", "TLS handshakes that failed or timed out", None),
    "tls_silent_closes": ("counter", "TLS connections closed before a byte (TCP probes)", None),
}


class SnapshotCollector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        data = self.snapshot()
        for name, (kind, doc, label) in SCHEMA.items():
            if name not in data:
                continue
            value = data[name]
            family: CounterMetricFamily | GaugeMetricFamily
            if kind == "counter":
                family = CounterMetricFamily(
                    PREFIX + name, doc, labels=[label] if label else None
                )
            else:
                family = GaugeMetricFamily(PREFIX + name, doc, labels=[label] if label else None)
            if label:
                for key, count in sorted(dict(value).items()):
                    family.add_metric([str(key)], float(count))
            else:
                family.add_metric([], float(value))
            yield family


class MetricsServer:
    """GET /metrics (Prometheus text format) and GET /healthz."""

    def __init__(
        self,
        host: str,
        port: int,
        snapshot: Callable[[], Snapshot],
        heartbeat: Callable[[], float],
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(SnapshotCollector(snapshot))
        self.heartbeat = heartbeat
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/metrics":
                    body = generate_latest(server.registry)
                    self._reply(200, body, "text/plain; version=0.0.4; charset=utf-8")
                elif self.path.split("?")[0] == "/healthz":
                    age = time.monotonic() - server.heartbeat()
                    if age <= HEALTH_STALE_SECONDS:
                        self._reply(200, b"ok\n", "text/plain")
                    else:
                        self._reply(503, f"loop stalled {age:.1f}s\n".encode(), "text/plain")
                else:
                    self._reply(404, b"not found\n", "text/plain")

            def _reply(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # scrapes are not worth a log line each

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="metrics-http", daemon=True
        )

    def start(self) -> int:
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics", self.httpd.server_address[0], self.port)
        return self.port

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
