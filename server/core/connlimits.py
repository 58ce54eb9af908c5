"""Connection admission: global cap, per-host concurrency and connect-rate throttle;
and the per-host token bucket that the throttle (and account registration) use."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass


@functools.lru_cache(maxsize=4096)  # clients reconnect from the same few addresses
def host_key(ip: str) -> str:
    """IPv4 addresses count alone; IPv6 addresses count per /64 (one customer's block)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class HostRate:
    """A token bucket per host: ``burst`` at once, refilled at ``rate`` per second.
    Off (everything allowed) when either is 0; both may change at run time (REHASH)."""

    def __init__(self, burst: int, rate: float) -> None:
        self.burst = burst
        self.rate = rate
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens of ``key``'s bucket (at most ``burst``: a full bucket
        pays for anything); False when there are not that many left."""
        if not self.burst or self.rate <= 0:
            return True
        cost = min(cost, float(self.burst))
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = self._tokens(bucket, now)
            bucket.updated = now
        if bucket.tokens < cost:
            return False
        bucket.tokens -= cost
        return True

    def give(self, key: str, now: float, cost: float = 1.0) -> None:
        """Give back ``cost`` tokens spent on something that turned out not to count (at
        most a full bucket)."""
        bucket = self._buckets.get(key)
        if bucket is None or not self.burst or self.rate <= 0:
            return
        bucket.tokens = min(float(self.burst), self._tokens(bucket, now) + cost)
        bucket.updated = now

    def full(self, key: str, now: float) -> bool:
        """True when ``key`` has its whole burst to spend (always, when off)."""
        bucket = self._buckets.get(key)
        if bucket is None or not self.burst or self.rate <= 0:
            return True
        return self._tokens(bucket, now) >= self.burst

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` has a token to spend (0: now), spending none."""
        bucket = self._buckets.get(key)
        if bucket is None or not self.burst or self.rate <= 0:
            return 0.0
        tokens = self._tokens(bucket, now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _tokens(self, bucket: _Bucket, now: float) -> float:
        """What ``bucket`` holds at ``now``, refilled since it was last spent from."""
        return min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)

    def expire(self, now: float) -> None:
        """Forget buckets that have refilled completely."""
        if not self._buckets or self.rate <= 0:
            return
        full = self.burst / self.rate
        stale = [k for k, b in self._buckets.items() if now - b.updated >= full]
        for key in stale:
            del self._buckets[key]


THROTTLED = "Connecting too fast; try again later"  # a host past its connect rate


class ConnectionLimits:
    """Decides whether a new connection may stay; the core keeps the live counts."""

    def __init__(
        self, max_clients: int, max_per_host: int, throttle_burst: int, throttle_rate: float
    ) -> None:
        self.max_clients = max_clients
        self.max_per_host = max_per_host
        self.throttle = HostRate(throttle_burst, throttle_rate)  # connects per host
        self.per_host: dict[str, int] = {}

    def admit(self, key: str, total: int, now: float) -> str | None:
        """None to accept, or the reason to refuse (sent as ERROR)."""
        full = self.full(key, total)
        if full is not None:
            return full
        if not self.throttle.take(key, now):
            return THROTTLED
        return None

    def full(self, key: str, total: int, host_extra: int = 0) -> str | None:
        """The reason to refuse one more connection when ``total`` are open, ``host_extra``
        of the host's beside those counted here (TLS handshakes in flight); None: room.
        The throttle is the caller's (``admit`` charges it)."""
        if self.max_clients and total >= self.max_clients:
            return "Server is full"
        if self.max_per_host and self.per_host.get(key, 0) + host_extra >= self.max_per_host:
            return "Too many connections from your host"
        return None

    def opened(self, key: str) -> None:
        self.per_host[key] = self.per_host.get(key, 0) + 1

    def closed(self, key: str) -> None:
        count = self.per_host.get(key, 0) - 1
        if count > 0:
            self.per_host[key] = count
        else:
            self.per_host.pop(key, None)

    def expire(self, now: float) -> None:
        self.throttle.expire(now)
