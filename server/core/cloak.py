"""Hostname cloaking: a keyed hash in place of the client's address."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress


@functools.lru_cache(maxsize=4096)  # an HMAC and an address parse per connect otherwise
def cloak_host(ip: str, key: bytes, suffix: str = "ip") -> str:
    """Stable per key, unguessable without it; v4 and v6 look different for ban masks."""
    digest = hmac.new(key, ip.encode(), hashlib.sha256).hexdigest()
    try:
        v6 = isinstance(ipaddress.ip_address(ip), ipaddress.IPv6Address)
    except ValueError:
        v6 = False
    parts = [digest[0:8], digest[8:16], digest[16:24]]
    if v6:
        return ":".join(parts) + f".{suffix}6"
    return ".".join(parts) + f".{suffix}"
